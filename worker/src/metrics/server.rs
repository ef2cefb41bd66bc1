//! The worker's `/metrics` listener (`WORKER_METRICS_BIND`). A worker has no other HTTP surface;
//! this one answers `GET /metrics` and nothing else, on one thread.

use std::sync::Arc;

use actix_web::{App, HttpResponse, HttpServer, web};
use tokio_util::sync::CancellationToken;

use super::WorkerMetrics;
use crate::listener::{Listener, serve_until};

/// Serves `/metrics` on `listener` until `shutdown`.
pub async fn serve(listener: Listener, metrics: WorkerMetrics, shutdown: CancellationToken) {
    let metrics = web::Data::from(Arc::new(metrics));
    let server = HttpServer::new(move || {
        App::new()
            .app_data(metrics.clone())
            .route("/metrics", web::get().to(render))
    })
    .disable_signals()
    .workers(1)
    .shutdown_timeout(1)
    .listen(listener.into_socket())
    .map(HttpServer::run);
    serve_until(server, "the metrics listener", shutdown).await;
}

async fn render(metrics: web::Data<WorkerMetrics>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(prometheus::TEXT_FORMAT)
        .body(metrics.render().await)
}
