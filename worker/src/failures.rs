//! Why a message failed: every failed attempt of a message (the reason, bounded, and whether it
//! will be retried) is kept in the store, under a key made from the message body, so that
//! `hookbridge dlq list` and `show` can say why a dead letter died on SQS too — where a message
//! the queue's redrive policy moved to the DLQ carries nothing but its body (README,
//! "Dead-letter queue").

use std::time::Duration;

use chrono::{DateTime, Utc};
use hookbridge_shared::envelope::Envelope;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::store::keys::FailureHistory;
use crate::store::{Store, StoreError, Transaction};

/// Failed attempts kept per message (the newest).
pub const KEPT: usize = 20;

/// How long a history is kept after its last failure: as long as SQS keeps a dead letter (14
/// days at most).
pub const TTL: Duration = Duration::from_secs(14 * 24 * 3600);

/// The longest reason kept, in characters.
const MAX_REASON_CHARS: usize = 1000;

/// One failed attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedAttempt {
    pub at: DateTime<Utc>,
    /// The message's receive count at that attempt.
    pub attempt: u32,
    pub reason: String,
    /// Whether the worker gave the message back to be tried again (else it dead-lettered it).
    pub will_retry: bool,
}

/// The store key of a message's history: its delivery id when the body is an envelope (stable
/// across queues, redrives and SQS's own DLQ moves), else a hash of the body.
pub fn message_key(body: &[u8]) -> String {
    match Envelope::decode(body) {
        Ok(envelope) => format!("delivery:{}", envelope.delivery),
        Err(_) => format!("body:{}", hex::encode(&Sha256::digest(body)[..16])),
    }
}

/// Appends one failed attempt of the message `body` to its history.
///
/// # Errors
/// [`StoreError`] when the store cannot be written.
pub async fn record(
    store: &Store,
    body: &[u8],
    attempt: u32,
    reason: &str,
    will_retry: bool,
) -> Result<(), StoreError> {
    let reason: String = reason.chars().take(MAX_REASON_CHARS).collect();
    let key = message_key(body);
    let mut tx = Transaction::new();
    tx.push(
        &FailureHistory(&key),
        &FailedAttempt {
            at: Utc::now(),
            attempt,
            reason,
            will_retry,
        },
        Some(KEPT),
        Some(TTL),
    )?;
    store.commit(&tx).await.map(|_| ())
}

/// The failed attempts of delivery `delivery`, oldest first (the operator's page).
///
/// # Errors
/// [`StoreError`] when the store cannot be read.
pub async fn history_of_delivery(
    store: &Store,
    delivery: &str,
) -> Result<Vec<FailedAttempt>, StoreError> {
    store
        .list(&FailureHistory(&format!("delivery:{delivery}")), 0, KEPT)
        .await
}

/// The failed attempts of the message `body`, oldest first.
///
/// # Errors
/// [`StoreError`] when the store cannot be read.
pub async fn history(store: &Store, body: &[u8]) -> Result<Vec<FailedAttempt>, StoreError> {
    store
        .list(&FailureHistory(&message_key(body)), 0, KEPT)
        .await
}
