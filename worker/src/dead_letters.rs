//! The dead-letter operations the engineer on call uses, shared by `hookbridge dlq` and the
//! operator's page so both show the same facts and audit the same way (README, "Dead-letter
//! queue"): a dead letter as listed (with the worker's own last error, which says more than a
//! redrive policy's "moved after N receives"), one with its envelope and every failed attempt,
//! and redrive (one or all) and purge, each audited with who asked.

use chrono::{DateTime, Utc};
use hookbridge_shared::envelope::Envelope;
use hookbridge_shared::queue::{DeadLetter, Progress, Queue, QueueError, Redriven};
use serde::Serialize;
use serde_json::{Value, json};

use crate::audit::{AuditLog, Entry};
use crate::failures::{self, FailedAttempt};
use crate::store::Store;

/// A dead letter as listed (README: the JSON shape of `dlq list --json`).
#[derive(Debug, Clone, Serialize)]
pub struct Listed {
    pub id: String,
    pub source: Option<String>,
    pub event: Option<String>,
    pub action: Option<String>,
    pub delivery: Option<String>,
    pub first_seen: Option<DateTime<Utc>>,
    pub receive_count: u32,
    pub last_error: Option<String>,
}

impl Listed {
    /// `dead_letter` as listed; `store`, when it can be read, adds the worker's own last error.
    pub async fn new(dead_letter: &DeadLetter, store: Option<&Store>) -> Self {
        let envelope = Envelope::decode(&dead_letter.body).ok();
        let recorded = match store {
            Some(store) => failures::history(store, &dead_letter.body)
                .await
                .ok()
                .and_then(|h| h.last().map(|a| a.reason.clone())),
            None => None,
        };
        // The worker's own record says more than "moved after N receives" of a redrive policy.
        let last_error = match (&dead_letter.last_error, recorded) {
            (Some(own), _) if !own.starts_with("received ") => Some(own.clone()),
            (queue_says, recorded) => recorded.or_else(|| queue_says.clone()),
        };
        let e = envelope.as_ref();
        Self {
            id: dead_letter.id.clone(),
            source: e.map(|e| e.source.as_str().to_owned()),
            event: e.map(|e| e.event.clone()),
            action: e.and_then(|e| e.action.clone()),
            delivery: e.map(|e| e.delivery.as_str().to_owned()),
            first_seen: dead_letter.sent_at,
            receive_count: dead_letter.receive_count,
            last_error,
        }
    }
}

/// One dead letter in full: as listed, its envelope (JSON, or the raw text when it is not), and
/// why each attempt failed.
#[derive(Debug, Clone, Serialize)]
pub struct Shown {
    #[serde(flatten)]
    pub listed: Listed,
    pub envelope: Value,
    pub errors: Vec<FailedAttempt>,
}

/// The dead letter `id` in full.
///
/// # Errors
/// [`QueueError::NotFound`] when there is no such dead letter; [`QueueError`] when the queue
/// cannot be read.
pub async fn show(queue: &Queue, store: Option<&Store>, id: &str) -> Result<Shown, QueueError> {
    let dead_letter = queue.dead_letter_by_id(id).await?;
    let errors = match store {
        Some(store) => failures::history(store, &dead_letter.body)
            .await
            .unwrap_or_default(),
        None => Vec::new(),
    };
    let envelope: Value = serde_json::from_slice(&dead_letter.body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&dead_letter.body).into()));
    Ok(Shown {
        listed: Listed::new(&dead_letter, store).await,
        envelope,
        errors,
    })
}

/// Writes `entry`; an audit trail that cannot be written is said, not a reason to undo the move.
async fn audit(audit: &AuditLog, entry: Entry) {
    if let Err(e) = audit.record(entry).await {
        tracing::warn!(error = %e, "a dead-letter operation was not appended to the audit trail");
    }
}

/// Moves the dead letter `id` back to the main queue, audited as `dlq.redrive` by `actor`; its
/// delivery id when the body is an envelope.
///
/// # Errors
/// [`QueueError::NotFound`] when there is no such dead letter; [`QueueError`] when it cannot be
/// moved.
pub async fn redrive(
    queue: &Queue,
    trail: &AuditLog,
    actor: &str,
    id: &str,
) -> Result<Option<String>, QueueError> {
    let dead_letter = queue.dead_letter_by_id(id).await?;
    let delivery = Envelope::decode(&dead_letter.body)
        .map(|e| e.delivery.to_string())
        .ok();
    let result = queue.redrive(id).await;
    let mut entry = Entry::new("dlq.redrive", id)
        .actor(actor)
        .outcome(if result.is_ok() { "ok" } else { "failed" })
        .id("message", id);
    if let Some(delivery) = &delivery {
        entry = entry.id("delivery", delivery);
    }
    if let Err(e) = &result {
        entry = entry.detail(json!({"error": e.to_string()}));
    }
    audit(trail, entry).await;
    result.map(|()| delivery)
}

/// Moves every dead letter back, at most `rate` a second when given, audited as
/// `dlq.redrive_all` by `actor`.
///
/// # Errors
/// [`QueueError`] when the dead-letter store cannot be read at all (single failures are counted
/// in [`Redriven::failed`]).
pub async fn redrive_all(
    queue: &Queue,
    trail: &AuditLog,
    actor: &str,
    rate: Option<u32>,
    progress: &dyn Progress,
) -> Result<Redriven, QueueError> {
    let result = queue.redrive_all(rate, progress).await;
    let entry = match &result {
        Ok(done) => Entry::new("dlq.redrive_all", "dead-letter queue")
            .actor(actor)
            .outcome(if done.failed == 0 { "ok" } else { "partial" })
            .detail(json!({"moved": done.moved, "failed": done.failed, "rate": rate})),
        Err(e) => Entry::new("dlq.redrive_all", "dead-letter queue")
            .actor(actor)
            .outcome("failed")
            .detail(json!({"error": e.to_string(), "rate": rate})),
    };
    audit(trail, entry).await;
    result
}

/// Deletes every dead letter, audited as `dlq.purge` by `actor`; how many there were.
///
/// # Errors
/// [`QueueError`] when the dead-letter store cannot be emptied.
pub async fn purge(queue: &Queue, trail: &AuditLog, actor: &str) -> Result<u64, QueueError> {
    let result = queue.purge_dead_letters().await;
    let entry = match &result {
        Ok(count) => Entry::new("dlq.purge", "dead-letter queue")
            .actor(actor)
            .outcome("ok")
            .detail(json!({"deleted": count})),
        Err(e) => Entry::new("dlq.purge", "dead-letter queue")
            .actor(actor)
            .outcome("failed")
            .detail(json!({"error": e.to_string()})),
    };
    audit(trail, entry).await;
    result
}
