//! The HTTP contract (the README's "HTTP contract (ingest)").

pub mod body;
mod health;
mod webhooks;

use actix_web::{HttpResponse, web};

pub use body::BodyBudget;

use crate::error::IngestError;

/// The largest webhook body accepted (GitHub caps payloads at 25 MB).
pub const MAX_BODY_BYTES: usize = 25 * 1024 * 1024;

/// Registers every route; webhook routes answer 405 with `Allow: POST` to other methods.
pub fn configure(cfg: &mut web::ServiceConfig) {
    for path in ["/webhooks/github", "/createJIRA"] {
        cfg.service(
            web::resource(path)
                .route(web::post().to(webhooks::github))
                .default_service(web::to(method_not_allowed)),
        );
    }
    for path in ["/webhooks/jira", "/jira/webhook"] {
        cfg.service(
            web::resource(path)
                .route(web::post().to(webhooks::jira))
                .default_service(web::to(method_not_allowed)),
        );
    }
    cfg.service(web::resource("/health").route(web::get().to(health::health)))
        .service(web::resource("/ready").route(web::get().to(health::ready)))
        .service(web::resource("/metrics").route(web::get().to(health::metrics)))
        .default_service(web::to(not_found));
}

async fn method_not_allowed() -> Result<HttpResponse, IngestError> {
    Err(IngestError::MethodNotAllowed)
}

async fn not_found() -> Result<HttpResponse, IngestError> {
    Err(IngestError::NotFound)
}
