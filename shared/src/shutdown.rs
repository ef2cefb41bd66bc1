//! SIGTERM/SIGINT handling: one cancellation token that every part of a process watches, so that
//! the HTTP server drains in-flight requests and the worker stops receiving and settles what it
//! holds.

use std::future::Future;

use tokio_util::sync::CancellationToken;

/// A token cancelled on the first SIGTERM or SIGINT.
///
/// The handlers are installed before this returns (not when a task first runs), so a signal that
/// arrives right after the process announced it is ready already drains instead of killing it.
/// Call it from inside the Tokio runtime, before announcing readiness.
pub fn on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let trigger = token.clone();
    let signalled = install();
    tokio::spawn(async move {
        signalled.await;
        tracing::info!("shutdown signal received; draining");
        trigger.cancel();
    });
    token
}

#[cfg(unix)]
fn install() -> impl Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::{SignalKind, signal};
    let term = signal(SignalKind::terminate()).ok();
    let int = signal(SignalKind::interrupt()).ok();
    async move {
        match (term, int) {
            (Some(mut term), Some(mut int)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            }
            (Some(mut term), None) => {
                term.recv().await;
            }
            (None, Some(mut int)) => {
                int.recv().await;
            }
            (None, None) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
}

#[cfg(not(unix))]
fn install() -> impl Future<Output = ()> + Send + 'static {
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}
