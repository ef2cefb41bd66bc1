//! `/health` (the process is up), `/ready` (events can be stored now) and `/metrics`.

use actix_web::{HttpResponse, web};
use hookbridge_shared::VERSION;

use crate::AppState;

pub async fn health() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({
        "status": "healthy",
        "service": "hookbridge-ingest",
        "version": VERSION,
        "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    }))
}

pub async fn ready(state: web::Data<AppState>) -> HttpResponse {
    match state.enqueuer.ready().await {
        Ok(store) => {
            // Still 200 (events are accepted), but an operator should know the queue is out.
            let status = if store == "spool" {
                "degraded"
            } else {
                "ready"
            };
            HttpResponse::Ok().json(serde_json::json!({"status": status, "store": store}))
        }
        Err(reason) => HttpResponse::ServiceUnavailable().json(serde_json::json!({
            "error": "not ready",
            "detail": reason,
        })),
    }
}

pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    state
        .metrics
        .sync_queue_write_calls(state.enqueuer.queue().write_calls());
    let mut body = state.metrics.render();
    if let Some(more) = &state.more_metrics {
        body.push_str(&more.render().await);
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(body)
}
