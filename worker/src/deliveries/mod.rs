//! What became of each delivery, for the operator's page (README, "The operator's page"): a log of
//! outcomes, newest first, that pages and filters in the store (never in the browser), and each
//! delivery's journey — the audit trail's records about it, copied to the store as they are
//! written (see [`crate::audit`]), so one delivery's story is one read however long the trail.
//!
//! Both are bounded: the log keeps the newest [`LOG_KEPT`] outcomes (and as many per outcome),
//! a journey [`JOURNEY_KEPT`] steps for [`JOURNEY_TTL`].

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::store::keys::{DeliveryJourney, DeliveryLog, DeliveryOutcomeLog};
use crate::store::{Store, StoreError, Transaction};

/// How many outcomes the log keeps (and each per-outcome log).
pub const LOG_KEPT: usize = 100_000;
/// How many steps of one delivery's journey are kept.
pub const JOURNEY_KEPT: usize = 200;
/// How long a journey is kept after its last step (GitHub redelivers for 3 days).
pub const JOURNEY_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// How a delivery's processing ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryOutcome {
    /// Processed: its effects are made.
    Done,
    /// Nothing to do (an event or action the worker does not act on, the bridge's own).
    Ignored,
    /// Given up on: in the dead-letter queue.
    DeadLettered,
}

impl DeliveryOutcome {
    pub const ALL: [DeliveryOutcome; 3] = [Self::Done, Self::Ignored, Self::DeadLettered];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Done => "done",
            Self::Ignored => "ignored",
            Self::DeadLettered => "dead_lettered",
        }
    }

    /// The outcome named `text` (as [`as_str`](Self::as_str) writes it).
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.as_str() == text)
    }
}

impl fmt::Display for DeliveryOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One line of the delivery log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliveryRow {
    pub at: DateTime<Utc>,
    pub delivery: String,
    pub source: String,
    pub event: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    pub outcome: DeliveryOutcome,
    /// The Jira issue the delivery is about, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jira_key: Option<String>,
    /// Why it was ignored, or the last error of a dead letter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Appends `row` to the log and to its outcome's log, together.
///
/// # Errors
/// [`StoreError`] when the store cannot be written.
pub async fn record(store: &Store, row: &DeliveryRow) -> Result<(), StoreError> {
    let mut tx = Transaction::new();
    tx.push(&DeliveryLog, row, Some(LOG_KEPT), None)?;
    tx.push(&DeliveryOutcomeLog(row.outcome), row, Some(LOG_KEPT), None)?;
    // The journey ends with the outcome (the trail has no record of its own for it).
    let detail = match (&row.jira_key, &row.detail) {
        (Some(key), _) => serde_json::json!({"jira": key}),
        (None, Some(detail)) => serde_json::json!({"why": detail}),
        (None, None) => Value::Null,
    };
    let step = JourneyStep::new(
        row.at,
        &format!("delivery.{}", row.outcome),
        row.outcome.as_str(),
        &row.delivery,
        "hookbridge",
        &detail,
    );
    add_step(&mut tx, &row.delivery, &step)?;
    store.commit(&tx).await.map(|_| ())
}

/// A page of the log: up to `count` rows after the `start` newest, newest first, only `outcome`'s
/// when given; and how many rows there are in all.
///
/// # Errors
/// [`StoreError`] when the store cannot be read.
pub async fn page(
    store: &Store,
    outcome: Option<DeliveryOutcome>,
    start: usize,
    count: usize,
) -> Result<(Vec<DeliveryRow>, usize), StoreError> {
    match outcome {
        None => Ok((
            store.list_newest(&DeliveryLog, start, count).await?,
            store.list_len(&DeliveryLog).await?,
        )),
        Some(outcome) => {
            let log = DeliveryOutcomeLog(outcome);
            Ok((
                store.list_newest(&log, start, count).await?,
                store.list_len(&log).await?,
            ))
        }
    }
}

/// One step of a delivery's journey: an audit record about it, as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JourneyStep {
    pub at: DateTime<Utc>,
    pub action: String,
    pub outcome: String,
    pub subject: String,
    pub actor: String,
    /// The record's detail; cut to [`DETAIL_KEPT`] bytes of JSON text when longer.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub detail: Value,
}

/// Most bytes of a step's detail kept in the store (the trail itself keeps all of it).
pub const DETAIL_KEPT: usize = 4096;

impl JourneyStep {
    /// The step for an audit record; a detail longer than [`DETAIL_KEPT`] is kept as its
    /// beginning, as text.
    pub fn new(
        at: DateTime<Utc>,
        action: &str,
        outcome: &str,
        subject: &str,
        actor: &str,
        detail: &Value,
    ) -> Self {
        let text = detail.to_string();
        let detail = if text.len() > DETAIL_KEPT {
            let mut cut = DETAIL_KEPT;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            Value::String(format!(
                "{}… (cut; the audit trail has it all)",
                &text[..cut]
            ))
        } else {
            detail.clone()
        };
        Self {
            at,
            action: action.to_owned(),
            outcome: outcome.to_owned(),
            subject: subject.to_owned(),
            actor: actor.to_owned(),
            detail,
        }
    }
}

/// Adds `step` to `delivery`'s journey in `tx`.
///
/// # Errors
/// [`StoreError::Corrupt`] when the step cannot be encoded.
pub fn add_step(
    tx: &mut Transaction,
    delivery: &str,
    step: &JourneyStep,
) -> Result<(), StoreError> {
    tx.push(
        &DeliveryJourney(delivery),
        step,
        Some(JOURNEY_KEPT),
        Some(JOURNEY_TTL),
    )
}

/// `delivery`'s journey, oldest step first.
///
/// # Errors
/// [`StoreError`] when the store cannot be read.
pub async fn journey(store: &Store, delivery: &str) -> Result<Vec<JourneyStep>, StoreError> {
    store
        .list(&DeliveryJourney(delivery), 0, JOURNEY_KEPT)
        .await
}
