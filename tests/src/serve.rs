//! Serving a fake: an axum app on a free port of 127.0.0.1, stopped when its [`Server`] is
//! dropped.

use std::net::SocketAddr;

use axum::Router;
use tokio::net::TcpListener;

/// A running server; stops when dropped.
pub struct Server {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A listener on a free port of 127.0.0.1 and its address (for apps that must know their own URL
/// before they serve).
///
/// # Panics
/// When no port can be bound.
pub async fn bind(what: &str) -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("bind the {what}: {e}"));
    let addr = listener.local_addr().expect("local addr");
    (listener, addr)
}

impl Server {
    /// Serves `app` on `listener`, on the current tokio runtime.
    pub fn start(listener: TcpListener, app: Router) -> Self {
        let addr = listener.local_addr().expect("local addr");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        Self {
            addr,
            stop: Some(stop),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}
