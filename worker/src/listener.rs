//! The worker's own small HTTP listeners — `/metrics` (`WORKER_METRICS_BIND`) and the operator's
//! page (`HOOKBRIDGE_ADMIN_BIND`): bound at start, so a taken address stops the process with the
//! key's name, and served until shutdown.

use std::net::TcpListener;

use actix_web::dev::Server;
use tokio_util::sync::CancellationToken;

/// A bound listener, ready to serve.
pub struct Listener {
    listener: TcpListener,
}

impl Listener {
    /// Binds `address` (`host:port`; port 0 picks a free one).
    ///
    /// # Errors
    /// A one-line reason naming `key` when the address cannot be bound.
    pub fn bind(address: &str, key: &str) -> Result<Self, String> {
        TcpListener::bind(address)
            .map(|listener| Self { listener })
            .map_err(|e| format!("{key}: cannot listen on {address}: {e}"))
    }

    /// `http://host:port` of the bound listener.
    pub fn url(&self) -> String {
        match self.listener.local_addr() {
            Ok(addr) => format!("http://{addr}"),
            Err(_) => "http://(unknown)".into(),
        }
    }

    /// The socket, for the server that serves it.
    pub fn into_socket(self) -> TcpListener {
        self.listener
    }
}

/// Runs `server` until `shutdown` (then lets it finish what it is answering); `what` names it in
/// the log when it cannot start or stops on its own.
pub async fn serve_until(server: std::io::Result<Server>, what: &str, shutdown: CancellationToken) {
    let server = match server {
        Ok(server) => server,
        Err(e) => {
            tracing::error!(error = %e, "{what} could not start");
            return;
        }
    };
    let handle = server.handle();
    let stopper = tokio::spawn(async move {
        shutdown.cancelled().await;
        handle.stop(true).await;
    });
    if let Err(e) = server.await {
        tracing::error!(error = %e, "{what} stopped");
    }
    stopper.abort();
}
