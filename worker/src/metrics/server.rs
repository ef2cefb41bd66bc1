//! The worker's `/metrics` listener (`WORKER_METRICS_BIND`). A worker has no other HTTP surface;
//! this one answers `GET /metrics` and nothing else, on one thread.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::{App, HttpResponse, HttpServer, web};
use tokio_util::sync::CancellationToken;

use super::WorkerMetrics;

/// A bound listener, ready to serve.
pub struct MetricsListener {
    listener: TcpListener,
}

impl MetricsListener {
    /// Binds `address` (`host:port`; port 0 picks a free one).
    ///
    /// # Errors
    /// A one-line reason naming `WORKER_METRICS_BIND` when the address cannot be bound.
    pub fn bind(address: &str) -> Result<Self, String> {
        TcpListener::bind(address)
            .map(|listener| Self { listener })
            .map_err(|e| format!("WORKER_METRICS_BIND: cannot listen on {address}: {e}"))
    }

    /// `http://host:port` of the bound listener.
    pub fn url(&self) -> String {
        match self.listener.local_addr() {
            Ok(addr) => format!("http://{addr}"),
            Err(_) => "http://(unknown)".into(),
        }
    }

    /// Serves `/metrics` until `shutdown`.
    pub async fn serve(self, metrics: WorkerMetrics, shutdown: CancellationToken) {
        let metrics = web::Data::from(Arc::new(metrics));
        let server = match HttpServer::new(move || {
            App::new()
                .app_data(metrics.clone())
                .route("/metrics", web::get().to(render))
        })
        .disable_signals()
        .workers(1)
        .shutdown_timeout(1)
        .listen(self.listener)
        {
            Ok(server) => server.run(),
            Err(e) => {
                tracing::error!(error = %e, "the metrics listener could not start");
                return;
            }
        };
        let handle = server.handle();
        let stopper = tokio::spawn(async move {
            shutdown.cancelled().await;
            handle.stop(true).await;
        });
        if let Err(e) = server.await {
            tracing::error!(error = %e, "the metrics listener stopped");
        }
        stopper.abort();
    }
}

async fn render(metrics: web::Data<WorkerMetrics>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(prometheus::TEXT_FORMAT)
        .body(metrics.render().await)
}
