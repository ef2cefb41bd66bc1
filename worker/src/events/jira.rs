//! The Jira webhooks the worker reads: `jira:issue_created`, `jira:issue_updated` and
//! `jira:issue_deleted`, which carry the whole issue, who changed it, when (`timestamp`, in
//! milliseconds), and for an update the `changelog` of what changed; and `comment_created`, which
//! carries the comment (`id`, `author`, `body` — text, as Jira's webhooks use REST v2) and the
//! issue it is on.
//!
//! Issues of the CR projects are Change Requests, as before. With the Jira → GitHub sync on
//! ([`decode_with`]), a status change of another issue is a [`StatusChange`] and a comment on one
//! a [`JiraComment`]; whether the issue is the twin of a GitHub issue is for
//! [`crate::jira_sync`] to find out.

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
    comment: Option<Value>,
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
    #[serde(default, rename = "toString")]
    to_string: Option<String>,
}

impl ChangelogItem {
    fn is(&self, field: &str) -> bool {
        self.field_id.as_deref() == Some(field) || self.field.as_deref() == Some(field)
    }
}

/// Who did something in Jira, as a webhook names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JiraActor {
    pub account_id: Option<String>,
    pub display_name: String,
}

impl JiraActor {
    fn from_json(user: &Value) -> Option<Self> {
        let account_id = user["accountId"].as_str().map(str::to_owned);
        let display_name = user["displayName"]
            .as_str()
            .or_else(|| user["name"].as_str())
            .map(str::to_owned);
        (account_id.is_some() || display_name.is_some()).then(|| Self {
            display_name: display_name
                .or_else(|| account_id.clone())
                .unwrap_or_default(),
            account_id,
        })
    }
}

/// `jira:issue_updated` whose changelog moved the issue to another status.
#[derive(Debug, Clone)]
pub struct StatusChange {
    /// The issue key (`API-12`).
    pub key: String,
    pub at: DateTime<Utc>,
    pub user: Option<JiraActor>,
    pub from: Option<String>,
    pub to: Option<String>,
    /// The new status's category key (`new`, `indeterminate`, `done`), as the issue shows it.
    pub category: Option<String>,
    /// The issue's resolution now (its name), if any.
    pub resolution: Option<String>,
    /// The changelog cleared the resolution: what Jira's workflows do on the way out of Done.
    pub resolution_cleared: bool,
    /// The issue's labels, when the webhook shows them.
    pub labels: Option<Vec<String>>,
}

impl StatusChange {
    /// Whether the new status is in the Done category.
    pub fn is_done(&self) -> bool {
        self.category.as_deref() == Some("done")
    }
}

/// `comment_created` on an issue that is not a CR.
#[derive(Debug, Clone)]
pub struct JiraComment {
    /// The issue key.
    pub key: String,
    pub id: String,
    pub author: Option<JiraActor>,
    /// The comment's text (a webhook's body is text; an Atlassian document is flattened).
    pub body: String,
    /// The comment's REST URL (`self`), whose origin is the Jira site.
    pub url: Option<String>,
    /// The issue's labels, when the webhook shows them (a comment's webhook may not).
    pub labels: Option<Vec<String>>,
}

/// `fields.labels` of a webhook's issue, when present.
fn labels_of(issue: &Value) -> Option<Vec<String>> {
    issue.pointer("/fields/labels")?.as_array().map(|labels| {
        labels
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect()
    })
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
    /// A status change of an issue that is not a CR (Jira → GitHub sync on).
    StatusChange(StatusChange),
    /// A comment on an issue that is not a CR, not written by the bridge (sync on).
    Comment(JiraComment),
    /// Not about a Change Request, and why.
    Ignored(String),
}

/// Whether `webhook_event` is one the worker may act on: an issue event, or `comment_created`.
pub fn is_handled(webhook_event: &str) -> bool {
    IssueEventKind::of(webhook_event).is_some() || webhook_event == "comment_created"
}

/// Decodes a Jira payload, with the Jira → GitHub sync off (only CRs are events).
///
/// # Errors
/// A reason when the payload is not a Jira webhook, or an issue event without an issue or a time.
pub fn decode(payload: &[u8], filter: &CrFilter) -> Result<JiraEvent, String> {
    decode_with(payload, filter, false)
}

/// Whether `project` is one of the CR projects.
fn is_cr_project(filter: &CrFilter, project: &str) -> bool {
    filter
        .projects
        .iter()
        .any(|p| p.as_str().eq_ignore_ascii_case(project))
}

/// The project of an issue as a webhook shows it (its `fields.project.key`, else its key's).
fn project_of(issue: &Value) -> &str {
    let key = issue.get("key").and_then(Value::as_str).unwrap_or_default();
    issue
        .pointer("/fields/project/key")
        .and_then(Value::as_str)
        .unwrap_or_else(|| key.split('-').next().unwrap_or_default())
}

/// A comment body as text: webhooks send text; an Atlassian document is flattened to a line per
/// block.
pub fn comment_text(body: &Value) -> String {
    match body {
        Value::String(text) => text.clone(),
        Value::Object(_) => {
            fn text_of(node: &Value, out: &mut String) {
                if let Some(text) = node["text"].as_str() {
                    out.push_str(text);
                }
                for child in node["content"].as_array().into_iter().flatten() {
                    text_of(child, out);
                }
            }
            body["content"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|block| {
                    let mut line = String::new();
                    text_of(block, &mut line);
                    line
                })
                .collect::<Vec<_>>()
                .join("\n\n")
        }
        _ => String::new(),
    }
}

/// Whether a comment's text ends with one of the bridge's own markers (the last paragraph of
/// what the GitHub → Jira sync writes, `hookbridge:gh…-<16 hex>`): the bridge's own comment.
pub fn is_bridge_comment(text: &str) -> bool {
    let Some(last) = text.lines().map(str::trim).rfind(|l| !l.is_empty()) else {
        return false;
    };
    let Some(rest) = last.strip_prefix("hookbridge:gh") else {
        return false;
    };
    let Some((kind, digest)) = rest.rsplit_once('-') else {
        return false;
    };
    !kind.is_empty()
        && kind.bytes().all(|b| b.is_ascii_lowercase())
        && digest.len() == 16
        && digest.bytes().all(|b| b.is_ascii_hexdigit())
}

fn decode_comment(payload: Payload, filter: &CrFilter) -> Result<JiraEvent, String> {
    let comment = payload
        .comment
        .ok_or_else(|| "comment_created without a comment".to_owned())?;
    let issue = payload
        .issue
        .ok_or_else(|| "comment_created without an issue".to_owned())?;
    let key = issue["key"]
        .as_str()
        .filter(|k| !k.is_empty())
        .ok_or_else(|| "comment_created without an issue key".to_owned())?
        .to_owned();
    if is_cr_project(filter, project_of(&issue)) {
        return Ok(JiraEvent::Ignored(format!("a comment on the CR {key}")));
    }
    let id = match &comment["id"] {
        Value::String(id) => id.clone(),
        Value::Number(id) => id.to_string(),
        _ => return Err("comment_created without a comment id".into()),
    };
    let body = comment_text(&comment["body"]);
    if is_bridge_comment(&body) {
        return Ok(JiraEvent::Ignored(format!(
            "comment {id} on {key} carries the bridge's marker"
        )));
    }
    Ok(JiraEvent::Comment(JiraComment {
        key,
        id,
        author: JiraActor::from_json(&comment["author"]),
        body,
        url: comment["self"].as_str().map(str::to_owned),
        labels: labels_of(&issue),
    }))
}

/// Decodes a Jira payload; `sync_from_jira` makes status changes and comments of issues that are
/// not CRs events (otherwise they are ignored, as they were before the sync existed).
///
/// # Errors
/// A reason when the payload is not a Jira webhook, or an issue event without an issue or a time.
pub fn decode_with(
    payload: &[u8],
    filter: &CrFilter,
    sync_from_jira: bool,
) -> Result<JiraEvent, String> {
    let payload: Payload = serde_json::from_slice(payload)
        .map_err(|e| format!("Jira payload is not understood: {e}"))?;
    if payload.webhook_event == "comment_created" {
        if !sync_from_jira {
            return Ok(JiraEvent::Ignored(
                "Jira event comment_created not handled".into(),
            ));
        }
        return decode_comment(payload, filter);
    }
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
    if !is_cr_project(filter, project) {
        if sync_from_jira && kind == IssueEventKind::Updated {
            return Ok(status_change(
                payload.timestamp,
                payload.user.as_ref(),
                payload.changelog.as_ref(),
                &issue,
                key,
            ));
        }
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

/// A `jira:issue_updated` of an issue that is not a CR: a [`StatusChange`] when its changelog
/// has a status item, else ignored.
fn status_change(
    timestamp: Option<i64>,
    user: Option<&Value>,
    changelog: Option<&Changelog>,
    issue: &Value,
    key: &str,
) -> JiraEvent {
    let items = changelog.map(|c| c.items.as_slice()).unwrap_or_default();
    let Some(status) = items.iter().find(|i| i.is("status")) else {
        return JiraEvent::Ignored(format!("{key}: no status change"));
    };
    let resolution_cleared = items.iter().any(|i| {
        i.is("resolution")
            && i.from_string.as_deref().is_some_and(|f| !f.is_empty())
            && i.to_string.as_deref().is_none_or(str::is_empty)
    });
    let at = timestamp
        .and_then(DateTime::<Utc>::from_timestamp_millis)
        .unwrap_or_else(Utc::now);
    JiraEvent::StatusChange(StatusChange {
        key: key.to_owned(),
        at,
        user: user.and_then(JiraActor::from_json),
        from: status.from_string.clone(),
        to: status.to_string.clone(),
        category: issue
            .pointer("/fields/status/statusCategory/key")
            .and_then(Value::as_str)
            .map(str::to_owned),
        resolution: issue
            .pointer("/fields/resolution/name")
            .and_then(Value::as_str)
            .map(str::to_owned),
        resolution_cleared,
        labels: labels_of(issue),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn filter() -> CrFilter {
        CrFilter {
            projects: vec![JiraProjectKey::parse("CR").expect("key")],
            issue_types: Vec::new(),
        }
    }

    #[test]
    fn bridge_markers_are_recognised_exactly() {
        assert!(is_bridge_comment(
            "hello\n\nhookbridge:ghcomment-0123456789abcdef"
        ));
        assert!(is_bridge_comment(
            "x\nhookbridge:ghclosure-0123456789abcdef\n"
        ));
        assert!(!is_bridge_comment(
            "hookbridge:ghcomment-0123456789abcdef and more"
        ));
        assert!(!is_bridge_comment(
            "see hookbridge:ghcomment-0123456789abcdef"
        ));
        assert!(!is_bridge_comment("hookbridge:ghcomment-xyz"));
        assert!(!is_bridge_comment(""));
    }

    #[test]
    fn status_changes_only_with_the_sync_on() {
        let payload = json!({
            "webhookEvent": "jira:issue_updated", "timestamp": 1_700_000_000_000_i64,
            "user": {"accountId": "abc", "displayName": "Ann"},
            "issue": {"key": "API-1", "fields": {"project": {"key": "API"},
                "status": {"name": "Done", "statusCategory": {"key": "done"}},
                "resolution": {"name": "Won't Do"}}},
            "changelog": {"items": [
                {"field": "resolution", "fieldId": "resolution", "fromString": null, "toString": "Won't Do"},
                {"field": "status", "fieldId": "status", "fromString": "To Do", "toString": "Done"}]}
        });
        let bytes = serde_json::to_vec(&payload).expect("json");
        assert!(matches!(
            decode(&bytes, &filter()),
            Ok(JiraEvent::Ignored(_))
        ));
        let Ok(JiraEvent::StatusChange(change)) = decode_with(&bytes, &filter(), true) else {
            panic!("a status change");
        };
        assert!(change.is_done());
        assert_eq!(change.resolution.as_deref(), Some("Won't Do"));
        assert!(!change.resolution_cleared);
        assert_eq!(
            change.user.and_then(|u| u.account_id).as_deref(),
            Some("abc")
        );
    }

    #[test]
    fn comments_of_the_bridge_are_ignored() {
        let comment = |body: &str| {
            serde_json::to_vec(&json!({
                "webhookEvent": "comment_created",
                "comment": {"id": "7", "body": body, "author": {"accountId": "a", "displayName": "Ann"}},
                "issue": {"key": "API-1", "fields": {"project": {"key": "API"}}}
            }))
            .expect("json")
        };
        assert!(matches!(
            decode_with(&comment("hi"), &filter(), true),
            Ok(JiraEvent::Comment(c)) if c.id == "7" && c.body == "hi"
        ));
        assert!(matches!(
            decode_with(
                &comment("x\n\nhookbridge:ghcomment-0123456789abcdef"),
                &filter(),
                true
            ),
            Ok(JiraEvent::Ignored(_))
        ));
        assert!(matches!(
            decode_with(&comment("hi"), &filter(), false),
            Ok(JiraEvent::Ignored(_))
        ));
    }
}
