//! The audit trail's check: `hookbridge audit verify`, run when the page is asked for.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Serialize;

use super::{Chrome, error, respond};
use crate::admin::AdminState;
use crate::audit::verify::{self, Report};

#[derive(Debug, Clone, Serialize)]
pub struct AuditCheck {
    pub dir: String,
    #[serde(flatten)]
    pub report: Report,
}

impl std::ops::Deref for AuditCheck {
    type Target = Report;
    fn deref(&self) -> &Report {
        &self.report
    }
}

#[derive(Template)]
#[template(path = "admin/audit.html")]
struct Page<'a> {
    chrome: Chrome,
    data: &'a AuditCheck,
}

/// `GET /audit`.
pub async fn show(req: HttpRequest, state: web::Data<AdminState>, chrome: Chrome) -> HttpResponse {
    match verify::verify(&state.audit_dir, &state.store).await {
        Ok(report) => {
            let data = AuditCheck {
                dir: state.audit_dir.display().to_string(),
                report,
            };
            respond(
                &req,
                &data,
                Page {
                    chrome,
                    data: &data,
                },
            )
        }
        Err(e) => error(
            &req,
            chrome,
            StatusCode::SERVICE_UNAVAILABLE,
            "audit_unreadable",
            &e.to_string(),
        ),
    }
}
