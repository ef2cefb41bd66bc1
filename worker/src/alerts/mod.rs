//! Alerts: what is worth telling people at once — a CR approved, rejected or revoked, a token
//! budget at 80 % or 100 %, a message dead-lettered — and how each reaches Slack exactly once.
//!
//! An alert is never sent from the work that raises it. It is appended to the **outbox**, a list
//! in the store, in the same transaction as the change it reports (a CR record, a usage count), so
//! an alert exists if and only if its change was stored, however often the event is redelivered.
//! A [`dispatcher::Dispatcher`] in each worker process drains the outbox: one process at a time
//! (a store lock), paced to Slack's one message a second per webhook, coalescing a burst into one
//! message, honouring `429 Retry-After`, retrying a failed send a bounded number of times and
//! auditing every send and failure. The pipeline never waits for Slack.
//!
//! Without `SLACK_WEBHOOK_URL`, the dispatcher writes each alert's message to the audit trail as a
//! dry run instead.
//!
//! # Layout
//! - [`slack`]: the Slack incoming-webhook client and the Block Kit messages.
//! - [`dispatcher`]: draining the outbox.

pub mod dispatcher;
pub mod slack;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::change_requests::record::CrRecord;
use crate::change_requests::transition::{CrAlertKind, StatusChange};
use crate::store::keys::AlertOutbox;
use crate::store::{StoreError, Transaction};

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    CrApproved,
    CrRejected,
    CrRevoked,
    /// Recorded token usage reached 80 % of the CR's budget.
    BudgetWarning,
    /// Recorded token usage reached the CR's budget.
    BudgetExhausted,
    DeadLettered,
    /// Jira refuses the worker's credentials or cannot be reached: the worker paused.
    JiraUnavailable,
    /// The deployment protection rule let a GitHub deployment go.
    DeploymentApproved,
    /// The deployment protection rule stopped a GitHub deployment.
    DeploymentRejected,
}

impl AlertKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::CrApproved => "cr_approved",
            AlertKind::CrRejected => "cr_rejected",
            AlertKind::CrRevoked => "cr_revoked",
            AlertKind::BudgetWarning => "budget_warning",
            AlertKind::BudgetExhausted => "budget_exhausted",
            AlertKind::DeadLettered => "dead_lettered",
            AlertKind::JiraUnavailable => "jira_unavailable",
            AlertKind::DeploymentApproved => "deployment_approved",
            AlertKind::DeploymentRejected => "deployment_rejected",
        }
    }
}

/// One alert, as the outbox keeps it until it is sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    /// Unique per alert: what makes "the same alert" recognisable in the audit trail.
    pub id: String,
    pub at: DateTime<Utc>,
    pub kind: AlertKind,
    /// The CR key, or the dead-lettered message's id.
    pub subject: String,
    pub summary: Option<String>,
    pub status: Option<String>,
    pub previous_status: Option<String>,
    /// Who made the change.
    pub by: Option<String>,
    pub link: Option<String>,
    /// A reason, or usage figures.
    pub detail: Option<String>,
}

impl Alert {
    /// The alert for a CR's status change.
    pub fn for_change(kind: CrAlertKind, record: &CrRecord, change: &StatusChange) -> Self {
        let kind = match kind {
            CrAlertKind::Approved => AlertKind::CrApproved,
            CrAlertKind::Rejected => AlertKind::CrRejected,
            CrAlertKind::Revoked => AlertKind::CrRevoked,
        };
        Self {
            id: format!(
                "{}:{}:{}",
                record.key,
                record.updated_at.timestamp_millis(),
                kind.as_str()
            ),
            at: record.updated_at,
            kind,
            subject: record.key.to_string(),
            summary: record.summary.clone(),
            status: Some(change.to.clone()),
            previous_status: change.from.clone(),
            by: record.changed_by.as_ref().map(|p| p.name.clone()),
            link: record.url.clone(),
            detail: None,
        }
    }

    /// Appends this alert to the outbox as part of `tx`.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] when the alert cannot be encoded.
    pub fn enqueue(&self, tx: &mut Transaction) -> Result<(), StoreError> {
        tx.push(&AlertOutbox, self, None, None)
    }
}

/// Wakes this process's dispatcher when its own work queued an alert (others' alerts are found by
/// polling). Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct AlertWaker(Arc<tokio::sync::Notify>);

impl AlertWaker {
    pub fn wake(&self) {
        self.0.notify_one();
    }

    pub async fn woken(&self) {
        self.0.notified().await;
    }
}
