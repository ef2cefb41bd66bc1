//! The Jira webhooks the worker reads: `jira:issue_created`, `jira:issue_updated` and
//! `jira:issue_deleted`, which carry the whole issue, who changed it, when (`timestamp`, in
//! milliseconds), and for an update the `changelog` of what changed.

use chrono::{DateTime, Utc};
use hookbridge_shared::routing::JiraProjectKey;
use serde::Deserialize;
use serde_json::Value;

use crate::change_requests::record::Person;

/// Which issue event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssueEventKind {
    Created,
    Updated,
    Deleted,
}

impl IssueEventKind {
    /// The kind of a `webhookEvent`, when it is an issue event.
    pub fn of(webhook_event: &str) -> Option<Self> {
        match webhook_event {
            "jira:issue_created" => Some(Self::Created),
            "jira:issue_updated" => Some(Self::Updated),
            "jira:issue_deleted" => Some(Self::Deleted),
            _ => None,
        }
    }
}

/// An issue event about a Change Request.
#[derive(Debug, Clone)]
pub struct CrEvent {
    pub kind: IssueEventKind,
    /// When Jira raised the event: what orders a CR's records.
    pub at: DateTime<Utc>,
    /// Who made the change.
    pub user: Option<Person>,
    /// The issue as Jira sent it (`key`, `self`, `fields`).
    pub issue: Value,
    /// The status before this change, when the changelog has a status item.
    pub status_from: Option<String>,
}

/// Which Jira issues are Change Requests: those of `CR_PROJECT_KEYS`, and, when `CR_ISSUE_TYPES`
/// is set, only of those issue types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrFilter {
    pub projects: Vec<JiraProjectKey>,
    pub issue_types: Vec<String>,
}

#[derive(Deserialize)]
struct Payload {
    #[serde(rename = "webhookEvent")]
    webhook_event: String,
    #[serde(default)]
    timestamp: Option<i64>,
    #[serde(default)]
    user: Option<Value>,
    #[serde(default)]
    issue: Option<Value>,
    #[serde(default)]
    changelog: Option<Changelog>,
}

#[derive(Deserialize)]
struct Changelog {
    #[serde(default)]
    items: Vec<ChangelogItem>,
}

#[derive(Deserialize)]
struct ChangelogItem {
    #[serde(default)]
    field: Option<String>,
    #[serde(default, rename = "fieldId")]
    field_id: Option<String>,
    #[serde(default, rename = "fromString")]
    from_string: Option<String>,
}

/// Jira's own time format (`2026-11-29T06:50:52.123+0000`), or RFC 3339.
pub fn parse_jira_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f%z")
        .or_else(|_| DateTime::parse_from_rfc3339(text))
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// What a Jira payload means to the worker.
#[derive(Debug)]
pub enum JiraEvent {
    ChangeRequest(CrEvent),
    /// Not about a Change Request, and why.
    Ignored(String),
}

/// Decodes a Jira payload.
///
/// # Errors
/// A reason when the payload is not a Jira webhook, or an issue event without an issue or a time.
pub fn decode(payload: &[u8], filter: &CrFilter) -> Result<JiraEvent, String> {
    let payload: Payload = serde_json::from_slice(payload)
        .map_err(|e| format!("Jira payload is not understood: {e}"))?;
    let Some(kind) = IssueEventKind::of(&payload.webhook_event) else {
        return Ok(JiraEvent::Ignored(format!(
            "Jira event {} not handled",
            payload.webhook_event
        )));
    };
    let issue = payload
        .issue
        .ok_or_else(|| format!("{} without an issue", payload.webhook_event))?;
    let key = issue.get("key").and_then(Value::as_str).unwrap_or_default();
    let project = issue
        .pointer("/fields/project/key")
        .and_then(Value::as_str)
        .unwrap_or_else(|| key.split('-').next().unwrap_or_default());
    if !filter
        .projects
        .iter()
        .any(|p| p.as_str().eq_ignore_ascii_case(project))
    {
        return Ok(JiraEvent::Ignored(format!(
            "Jira issue {key} is not in a CR project"
        )));
    }
    if !filter.issue_types.is_empty() {
        let issue_type = issue
            .pointer("/fields/issuetype/name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !filter
            .issue_types
            .iter()
            .any(|t| t.eq_ignore_ascii_case(issue_type))
        {
            return Ok(JiraEvent::Ignored(format!(
                "Jira issue {key} is a {issue_type:?}, not a CR issue type"
            )));
        }
    }
    let at = payload
        .timestamp
        .and_then(DateTime::<Utc>::from_timestamp_millis)
        .or_else(|| {
            issue
                .pointer("/fields/updated")
                .and_then(Value::as_str)
                .and_then(parse_jira_time)
        })
        .ok_or_else(|| format!("{} for {key} has no timestamp", payload.webhook_event))?;
    let status_from = payload.changelog.and_then(|c| {
        c.items
            .into_iter()
            .find(|i| {
                i.field_id.as_deref() == Some("status") || i.field.as_deref() == Some("status")
            })
            .and_then(|i| i.from_string)
    });
    Ok(JiraEvent::ChangeRequest(CrEvent {
        kind,
        at,
        user: payload.user.as_ref().and_then(Person::from_jira),
        issue,
        status_from,
    }))
}
