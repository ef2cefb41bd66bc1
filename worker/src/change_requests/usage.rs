//! Token usage recorded against a CR's budget (`hookbridge cr usage`): counted atomically in the
//! store however many agents report at once, with one Slack alert when usage first reaches 80 %
//! of the budget and one when it reaches 100 %.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::Utc;
use serde::{Deserialize, Serialize};

use super::record::{CrKey, CrRecord};
use crate::alerts::{Alert, AlertKind};
use crate::store::keys::CrUsage;
use crate::store::{Store, StoreError, Transaction};

/// How long usage is kept after its last report. Longer than a CR record lives, so that a budget
/// cannot be reset by waiting for the cache to expire.
pub const USAGE_TTL: Duration = Duration::from_secs(90 * 24 * 3600);

/// The share of the budget at which an alert goes out, once each.
pub const THRESHOLDS: [(u8, AlertKind); 2] = [
    (80, AlertKind::BudgetWarning),
    (100, AlertKind::BudgetExhausted),
];

/// Tokens used so far against one CR.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub used_tokens: u64,
    /// Per agent (`--agent`); reports without one count under `unnamed`.
    #[serde(default)]
    pub by_agent: BTreeMap<String, u64>,
    /// Thresholds (percent) already alerted.
    #[serde(default)]
    pub alerted_percent: Vec<u8>,
}

impl Usage {
    /// Used share of `budget`, in percent.
    pub fn percent_of(&self, budget: u64) -> Option<f64> {
        #[allow(clippy::cast_precision_loss)] // Token counts far below 2^52.
        (budget > 0).then(|| self.used_tokens as f64 * 100.0 / budget as f64)
    }
}

/// What one report did.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub usage: Usage,
    /// The alerts it queued (at most one per threshold, ever).
    pub alerts: Vec<Alert>,
}

/// Why usage could not be recorded.
#[derive(Debug, thiserror::Error)]
pub enum UsageError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}: recorded usage would overflow")]
    Overflow(CrKey),
    #[error("{0}: usage kept changing while it was recorded; try again")]
    Contended(CrKey),
}

/// Adds `tokens` used by `agent` to `key`'s usage; `record` (when known) gives the budget the
/// thresholds are measured against and what the alerts say.
///
/// # Errors
/// [`UsageError`].
pub async fn record(
    store: &Store,
    key: &CrKey,
    record: Option<&CrRecord>,
    tokens: u64,
    agent: Option<&str>,
) -> Result<Recorded, UsageError> {
    let usage_key = CrUsage(key);
    let agent = agent
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .unwrap_or("unnamed");
    for _ in 0..50 {
        let read = store.read_versioned(&usage_key).await?;
        let mut usage = read.value.clone().unwrap_or_default();
        usage.used_tokens = usage
            .used_tokens
            .checked_add(tokens)
            .ok_or_else(|| UsageError::Overflow(key.clone()))?;
        let per_agent = usage.by_agent.entry(agent.to_owned()).or_default();
        *per_agent = per_agent.saturating_add(tokens);
        let mut tx = Transaction::new();
        tx.expect_unchanged(&usage_key, &read);
        let mut alerts = Vec::new();
        if let Some(budget) = record.and_then(|r| r.budget_tokens).filter(|b| *b > 0) {
            for (percent, kind) in THRESHOLDS {
                let reached =
                    u128::from(usage.used_tokens) * 100 >= u128::from(budget) * u128::from(percent);
                if reached && !usage.alerted_percent.contains(&percent) {
                    usage.alerted_percent.push(percent);
                    alerts.push(budget_alert(
                        key, record, &usage, budget, percent, kind, agent,
                    ));
                }
            }
        }
        tx.put(&usage_key, &usage, Some(USAGE_TTL))?;
        for alert in &alerts {
            alert.enqueue(&mut tx)?;
        }
        if store.commit(&tx).await? {
            return Ok(Recorded { usage, alerts });
        }
    }
    Err(UsageError::Contended(key.clone()))
}

fn budget_alert(
    key: &CrKey,
    record: Option<&CrRecord>,
    usage: &Usage,
    budget: u64,
    percent: u8,
    kind: AlertKind,
    agent: &str,
) -> Alert {
    Alert {
        id: format!("{key}:budget:{percent}"),
        at: Utc::now(),
        kind,
        subject: key.to_string(),
        summary: record.and_then(|r| r.summary.clone()),
        status: record.map(|r| r.status.clone()),
        previous_status: None,
        by: Some(agent.to_owned()),
        link: record.and_then(|r| r.url.clone()),
        detail: Some(format!(
            "{} of {budget} tokens used ({:.1} %), last reported by {agent}",
            usage.used_tokens,
            usage.percent_of(budget).unwrap_or_default()
        )),
    }
}
