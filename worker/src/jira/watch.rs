//! Watching a Jira that went down (see [`super::health`]): said once — log, metric, audit record
//! and one Slack alert per outage — then probed until it answers, and said again when it does.

use chrono::Utc;
use tokio_util::sync::CancellationToken;

use super::JiraClient;
use super::health::{PROBE_EVERY, State};
use crate::alerts::{Alert, AlertKind, AlertWaker};
use crate::audit::{AuditLog, Entry};
use crate::metrics::pipeline;
use crate::store::{Store, Transaction};

/// Runs until `shutdown`.
pub async fn watch(
    client: JiraClient,
    store: Store,
    audit: AuditLog,
    alerts: AlertWaker,
    shutdown: CancellationToken,
) {
    let health = client.health().clone();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = health.wait_down() => {}
        }
        let State::Down(reason) = health.state() else {
            continue;
        };
        pipeline::jira_up(false);
        tracing::error!(%reason, "Jira is unavailable: the worker takes no work until it answers again; events stay queued");
        record(&audit, "jira.unavailable", "failed", &reason).await;
        alert(&store, &alerts, &reason).await;
        while !health.is_up() {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = health.wait_up() => break,
                () = tokio::time::sleep(PROBE_EVERY) => {
                    // An answer other than 401 marks Jira up inside the client.
                    let _ = client.myself().await;
                }
            }
        }
        pipeline::jira_up(true);
        tracing::info!("Jira answers again: the worker takes work again");
        record(&audit, "jira.available", "ok", "Jira answers again").await;
    }
}

async fn record(audit: &AuditLog, action: &str, outcome: &str, reason: &str) {
    let entry = Entry::new(action, "jira")
        .outcome(outcome)
        .detail(serde_json::json!({"reason": reason}));
    if let Err(e) = audit.record(entry).await {
        tracing::error!(error = %e, "Jira's availability not audited");
    }
}

/// One Slack alert per outage (its id is the outage's start).
async fn alert(store: &Store, alerts: &AlertWaker, reason: &str) {
    let at = Utc::now();
    let alert = Alert {
        id: format!("jira-unavailable:{}", at.timestamp_millis()),
        at,
        kind: AlertKind::JiraUnavailable,
        subject: "Jira".into(),
        summary: None,
        status: None,
        previous_status: None,
        by: None,
        link: None,
        detail: Some(reason.to_owned()),
    };
    let mut tx = Transaction::new();
    let queued = alert
        .enqueue(&mut tx)
        .map(|()| tx)
        .map_err(|e| e.to_string());
    match queued {
        Ok(tx) => match store.commit(&tx).await {
            Ok(_) => alerts.wake(),
            Err(e) => tracing::error!(error = %e, "the Jira outage alert could not be queued"),
        },
        Err(e) => tracing::error!(error = %e, "the Jira outage alert could not be queued"),
    }
}
