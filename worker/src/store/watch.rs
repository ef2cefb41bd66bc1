//! Watching a store that went down (see [`super::health`]): said once — log line, metric
//! (`hookbridge_store_up`) and audit record — and said again when it answers (the waiting consumer
//! probes it every [`PROBE_EVERY`](super::health::PROBE_EVERY)). The record written when it
//! answers again also brings the audit chain's head in the store up to date, which the records
//! written during the outage could not.
//!
//! No Slack alert: the alert outbox is in the store.

use tokio_util::sync::CancellationToken;

use super::Store;
use super::health::State;
use crate::audit::{AuditLog, Entry};
use crate::metrics::pipeline;

/// Runs until `shutdown`.
pub async fn watch(store: Store, audit: AuditLog, shutdown: CancellationToken) {
    let health = store.health().clone();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = health.wait_down() => {}
        }
        let State::Down(reason) = health.state() else {
            continue;
        };
        let began = std::time::Instant::now();
        pipeline::store_up(false);
        tracing::error!(backend = store.backend_name(), %reason,
            "store unavailable: the worker takes no work until it answers again; events stay queued, no attempt is used up");
        record(&audit, &store, "store.unavailable", "failed", &reason).await;
        // The consumer probes the store while it waits for it (`Router::ready`); an answer marks
        // the store up.
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = health.wait_up() => {}
        }
        pipeline::store_up(true);
        let down_s = began.elapsed().as_secs();
        tracing::warn!(
            backend = store.backend_name(),
            down_s,
            "the store answers again: the worker takes work again"
        );
        record(
            &audit,
            &store,
            "store.available",
            "ok",
            &format!("the store answers again after about {down_s} s"),
        )
        .await;
    }
}

async fn record(audit: &AuditLog, store: &Store, action: &str, outcome: &str, reason: &str) {
    let entry = Entry::new(action, store.backend_name())
        .outcome(outcome)
        .detail(serde_json::json!({"reason": reason}));
    if let Err(e) = audit.record(entry).await {
        tracing::error!(error = %e, "the store's availability not audited");
    }
}
