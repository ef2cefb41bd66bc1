//! One line of the audit trail, and what a caller says to make one.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The `prev` of a chain's first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One audit line. Its fields are written in this order, so the same record is always the same
/// bytes; its hash is the SHA-256 of those bytes (the line without its newline), and the next
/// record of its chain carries that hash as `prev`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditRecord {
    /// When the decision was taken.
    pub ts: DateTime<Utc>,
    /// The writing process's chain.
    pub chain: String,
    /// Position in the chain, from 1.
    pub seq: u64,
    /// Hash of the chain's previous line ([`GENESIS`] for the first).
    pub prev: String,
    /// Who caused the decision: a Jira or GitHub user, or the process itself.
    pub actor: String,
    /// What was decided, dotted: `event.accepted`, `jira.issue.created`, `cr.status.changed`, …
    pub action: String,
    /// What it was about: a CR key, a GitHub issue, a delivery or message id.
    pub subject: String,
    /// How it ended: `ok`, `ignored`, `failed`, `dry_run`, `stale`, …
    pub outcome: String,
    /// Identifiers to correlate by (delivery, message, Jira key, …).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub ids: BTreeMap<String, String>,
    /// Anything else worth keeping (a request body, a reason, a transition).
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub detail: Value,
}

/// The hash that links a line into its chain.
pub fn line_hash(line: &[u8]) -> String {
    hex::encode(Sha256::digest(line))
}

/// The trail's file for `day`: `audit-YYYY-MM-DD.jsonl`.
pub fn file_name(day: NaiveDate) -> String {
    format!("audit-{}.jsonl", day.format("%Y-%m-%d"))
}

/// The day of a trail file name, or `None` for any other file.
pub fn file_day(name: &str) -> Option<NaiveDate> {
    let date = name.strip_prefix("audit-")?.strip_suffix(".jsonl")?;
    NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()
}

/// What a caller records; [`super::AuditLog::record`] adds time, chain, sequence and link.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub actor: Option<String>,
    pub action: String,
    pub subject: String,
    pub outcome: String,
    pub ids: BTreeMap<String, String>,
    pub detail: Value,
}

impl Entry {
    /// `action` on `subject`, outcome `ok`, by the recording process.
    pub fn new(action: impl Into<String>, subject: impl Into<String>) -> Self {
        Self {
            actor: None,
            action: action.into(),
            subject: subject.into(),
            outcome: "ok".into(),
            ids: BTreeMap::new(),
            detail: Value::Null,
        }
    }

    /// Who caused it (a Jira or GitHub user); without one, the recording process is the actor.
    pub fn actor(mut self, actor: impl Into<String>) -> Self {
        self.actor = Some(actor.into());
        self
    }

    pub fn outcome(mut self, outcome: impl Into<String>) -> Self {
        self.outcome = outcome.into();
        self
    }

    pub fn id(mut self, name: &str, value: impl Into<String>) -> Self {
        self.ids.insert(name.to_owned(), value.into());
        self
    }

    pub fn detail(mut self, detail: Value) -> Self {
        self.detail = detail;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_round_trip_and_other_files_are_not_days() {
        let day = NaiveDate::from_ymd_opt(2026, 11, 29).expect("date");
        assert_eq!(file_name(day), "audit-2026-11-29.jsonl");
        assert_eq!(file_day(&file_name(day)), Some(day));
        assert_eq!(file_day("audit.jsonl"), None);
        assert_eq!(file_day("audit-2026-13-01.jsonl"), None);
        assert_eq!(file_day("audit-2026-11-29.jsonl.gz"), None);
    }
}
