//! Change Requests in the Jira fake, and the webhooks Jira sends about them.
//!
//! A person works on a CR in Jira's UI ([`JiraFake::create_change_request`],
//! [`JiraFake::move_change_request`], [`JiraFake::set_field`], [`JiraFake::delete_issue`]); each
//! change returns the [`WebhookDelivery`] Jira Cloud would send for it: `jira:issue_created`,
//! `jira:issue_updated` (with `changelog.items` for what changed) or `jira:issue_deleted`, with
//! `timestamp` in milliseconds, the acting `user`, and the issue in REST v2 representation (Jira's
//! webhooks use v2: the description and text fields are plain strings, where REST v3 gives Atlassian
//! documents). Delivery identifiers are unique per delivery, and each delivery can be signed the way
//! an admin webhook with a secret signs it (`X-Hub-Signature: sha256=<hex>`). Jira retries and
//! late deliveries are the test's to simulate by sending a delivery again, or later.
//!
//! Issues that are not CRs (the twins of GitHub issues) get the same treatment for the Jira →
//! GitHub sync: a person moves one ([`JiraFake::move_issue`], with a resolution when the target is
//! Done; leaving Done clears it, and the changelog says so) or comments on it
//! ([`JiraFake::comment_as`], `comment_created`); [`JiraFake::issue_updated_by`] and
//! [`JiraFake::comment_created_for`] give the deliveries Jira sends for what the bridge itself
//! did through the API (the actor is then the bridge's account, [`JiraFake::bridge_user`]). The
//! issue's `fields.status` carries its `statusCategory` (`new`, `indeterminate`, `done`) and
//! `fields.resolution` its resolution or null, as Jira Cloud's webhooks do; `comment_created`
//! carries `comment` (`id`, `self`, `author`, `body` as text, `created`) and the issue.
//!
//! Sources: Atlassian's webhook documentation ("Issue: created, updated, deleted"; the
//! `X-Atlassian-Webhook-Identifier` header) and published payload examples of `jira:issue_updated`
//! (a status change is `{"field":"status","fieldtype":"jira","fieldId":"status","from":"10000",
//! "fromString":"To Do","to":"3","toString":"In Progress"}`).

use std::collections::BTreeMap;
use std::time::Instant;

use chrono::{DateTime, Utc};
use hookbridge_shared::envelope::{DeliveryId, Envelope, Source};
use serde_json::{Value, json};

use super::{FakeIssue, JiraFake};

/// Jira's clock in the fake: strictly increasing milliseconds.
#[derive(Debug, Default)]
pub struct Clock {
    last_ms: i64,
}

impl Clock {
    pub fn tick(&mut self) -> DateTime<Utc> {
        let now = Utc::now().timestamp_millis().max(self.last_ms + 1);
        self.last_ms = now;
        DateTime::from_timestamp_millis(now).unwrap_or_default()
    }
}

/// `2026-11-29T06:50:52.123+0000`, as Jira writes times.
pub fn jira_time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string()
}

/// The id Jira gives a status name (stable per name, as a workflow's are).
pub fn status_id(name: &str) -> String {
    match name {
        "To Do" => "10000".into(),
        "In Progress" => "3".into(),
        "Done" => "10001".into(),
        "Draft" => "10100".into(),
        "Pending Approval" => "10101".into(),
        "Approved" => "10102".into(),
        "Rejected" => "10103".into(),
        other => (20_000 + other.bytes().map(u64::from).sum::<u64>()).to_string(),
    }
}

/// A status's category as Jira Cloud shows it (`statusCategory`): To Do → `new`, In Progress and
/// the CR workflow's waiting states → `indeterminate`, Done → `done`.
pub fn status_category(name: &str) -> Value {
    let (id, key, category) = match name {
        "Done" => (3, "done", "Done"),
        "In Progress" | "Pending Approval" => (4, "indeterminate", "In Progress"),
        _ => (2, "new", "To Do"),
    };
    json!({
        "self": format!("https://example.atlassian.net/rest/api/2/statuscategory/{id}"),
        "id": id,
        "key": key,
        "colorName": if key == "done" { "green" } else if key == "new" { "blue-gray" } else { "yellow" },
        "name": category,
    })
}

/// A Jira user, as webhooks and user-picker fields show one.
#[derive(Debug, Clone)]
pub struct JiraUser {
    pub account_id: String,
    pub display_name: String,
}

impl JiraUser {
    pub fn new(account_id: &str, display_name: &str) -> Self {
        Self {
            account_id: account_id.into(),
            display_name: display_name.into(),
        }
    }

    /// The user object of a webhook's `user` or a user-picker field.
    pub fn json(&self) -> Value {
        json!({
            "self": format!("https://example.atlassian.net/rest/api/2/user?accountId={}", self.account_id),
            "accountId": self.account_id,
            "displayName": self.display_name,
            "active": true,
            "timeZone": "UTC",
            "accountType": "atlassian",
        })
    }

    /// The same user with a `role` key, as the approver field of shape (a) holds it.
    pub fn with_role(&self, role: &str) -> Value {
        let mut user = self.json();
        user["role"] = json!(role);
        user
    }
}

/// A Change Request to create.
#[derive(Debug, Clone)]
pub struct CrSpec {
    pub project: String,
    pub issue_type: String,
    pub summary: String,
    /// Plain text; REST v3 shows it as a paragraph per line.
    pub description: String,
    pub status: String,
    /// Custom fields as REST shows them (user pickers: arrays of users). A `String` value is a text
    /// field: plain in webhooks, an Atlassian document in REST v3.
    pub fields: BTreeMap<String, Value>,
}

impl CrSpec {
    pub fn new(summary: &str) -> Self {
        Self {
            project: "CR".into(),
            issue_type: "Change Request".into(),
            summary: summary.into(),
            description: String::new(),
            status: "Draft".into(),
            fields: BTreeMap::new(),
        }
    }

    #[must_use]
    pub fn description(mut self, text: &str) -> Self {
        self.description = text.into();
        self
    }

    #[must_use]
    pub fn status(mut self, status: &str) -> Self {
        self.status = status.into();
        self
    }

    #[must_use]
    pub fn field(mut self, id: &str, value: Value) -> Self {
        self.fields.insert(id.into(), value);
        self
    }
}

/// One webhook delivery as Jira sends it.
#[derive(Debug, Clone)]
pub struct WebhookDelivery {
    /// `X-Atlassian-Webhook-Identifier`: the same on Jira's retries of this delivery.
    pub identifier: String,
    pub event: String,
    pub body: Vec<u8>,
}

impl WebhookDelivery {
    fn new(event: &str, payload: &Value) -> Self {
        Self {
            identifier: uuid::Uuid::new_v4().to_string(),
            event: event.into(),
            body: serde_json::to_vec(payload).expect("payload is JSON"),
        }
    }

    pub fn payload(&self) -> Value {
        serde_json::from_slice(&self.body).expect("payload is JSON")
    }

    /// The headers of the delivery, signed with `secret` as an admin webhook with a secret is.
    pub fn headers(&self, secret: &str) -> Vec<(&'static str, String)> {
        vec![
            ("content-type", "application/json".into()),
            ("x-atlassian-webhook-identifier", self.identifier.clone()),
            (
                "x-hub-signature",
                crate::github::signature(secret, &self.body),
            ),
            ("user-agent", "Atlassian Webhook HTTP Client".into()),
        ]
    }

    /// Posts the delivery to `url` (the ingest's Jira route); returns the status.
    ///
    /// # Panics
    /// When the request cannot be sent.
    pub async fn post(&self, client: &reqwest::Client, url: &str, secret: &str) -> u16 {
        let mut request = client.post(url).body(self.body.clone());
        for (name, value) in self.headers(secret) {
            request = request.header(name, value);
        }
        request
            .send()
            .await
            .expect("post the webhook")
            .status()
            .as_u16()
    }

    /// The queue message the ingest makes of this delivery, for tests that drive the worker
    /// directly.
    pub fn envelope(&self) -> Vec<u8> {
        let payload = self.payload();
        let raw = serde_json::value::to_raw_value(&payload).expect("payload is JSON");
        let mut headers = BTreeMap::new();
        headers.insert(
            "x-atlassian-webhook-identifier".to_owned(),
            self.identifier.clone(),
        );
        Envelope::new(
            Source::Jira,
            self.event.clone(),
            payload["issue_event_type_name"].as_str().map(str::to_owned),
            DeliveryId::parse(&self.identifier).expect("delivery id"),
            headers,
            raw,
        )
        .encode()
    }
}

/// Plain text → an Atlassian document, a paragraph per line.
fn adf(text: &str) -> Value {
    let paragraphs: Vec<Value> = text
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| json!({"type": "paragraph", "content": [{"type": "text", "text": l}]}))
        .collect();
    json!({"type": "doc", "version": 1, "content": paragraphs})
}

/// An Atlassian document → its text, a line per paragraph.
fn text_of(doc: &Value) -> String {
    doc["content"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            p["content"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|t| t["text"].as_str())
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A field value as REST v3 stores it: text becomes an Atlassian document.
fn v3_value(value: Value) -> Value {
    match value {
        Value::String(text) => adf(&text),
        other => other,
    }
}

/// A field value as a webhook (REST v2) shows it: documents become text.
fn v2_value(value: &Value) -> Value {
    if value["type"] == "doc" {
        json!(text_of(value))
    } else {
        value.clone()
    }
}

/// The issue as a webhook carries it (REST v2 representation).
fn webhook_issue(issue: &FakeIssue, base: &str) -> Value {
    let mut fields = serde_json::Map::new();
    fields.insert("summary".into(), json!(issue.summary));
    fields.insert("description".into(), v2_value(&issue.description));
    fields.insert("labels".into(), json!(issue.labels));
    fields.insert(
        "status".into(),
        json!({"name": issue.status, "id": status_id(&issue.status),
               "statusCategory": status_category(&issue.status)}),
    );
    fields.insert(
        "resolution".into(),
        issue.resolution.as_ref().map_or(
            Value::Null,
            |name| json!({"self": format!("{base}/rest/api/2/resolution/1"), "name": name}),
        ),
    );
    fields.insert("issuetype".into(), json!({"name": issue.issue_type}));
    fields.insert("project".into(), json!({"key": issue.project}));
    fields.insert("updated".into(), json!(jira_time(issue.updated)));
    for (id, value) in &issue.custom_fields {
        fields.insert(id.clone(), v2_value(value));
    }
    json!({
        "id": issue.id.to_string(),
        "self": format!("{base}/rest/api/2/issue/{}", issue.id),
        "key": issue.key,
        "fields": fields,
    })
}

fn payload(
    event: &str,
    type_name: &str,
    at: DateTime<Utc>,
    by: &JiraUser,
    issue: Value,
    items: Option<Vec<Value>>,
) -> Value {
    let mut payload = json!({
        "timestamp": at.timestamp_millis(),
        "webhookEvent": event,
        "issue_event_type_name": type_name,
        "user": by.json(),
        "issue": issue,
    });
    if let Some(items) = items {
        payload["changelog"] = json!({"id": at.timestamp_millis().to_string(), "items": items});
    }
    payload
}

impl JiraFake {
    /// `by` creates a CR in Jira's UI; returns its key and the `jira:issue_created` delivery.
    pub fn create_change_request(&self, spec: CrSpec, by: &JiraUser) -> (String, WebhookDelivery) {
        let mut data = self.data();
        let data = &mut *data;
        let number = data.next_number.entry(spec.project.clone()).or_insert(0);
        *number += 1;
        let key = format!("{}-{number}", spec.project);
        data.next_id += 1;
        let at = data.clock.tick();
        let issue = FakeIssue {
            id: 10_000 + data.next_id,
            key: key.clone(),
            project: spec.project,
            issue_type: spec.issue_type,
            summary: spec.summary,
            description: adf(&spec.description),
            labels: Vec::new(),
            components: Vec::new(),
            priority: None,
            status: spec.status,
            resolution: None,
            assignee: None,
            remote_links: Vec::new(),
            comments: Vec::new(),
            custom_fields: spec
                .fields
                .into_iter()
                .map(|(id, value)| (id, v3_value(value)))
                .collect(),
            updated: at,
            created_at: Instant::now(),
            search_history: Vec::new(),
        };
        let body = payload(
            "jira:issue_created",
            "issue_created",
            at,
            by,
            webhook_issue(&issue, &self.shared.base_url),
            None,
        );
        data.issues.insert(key.clone(), issue);
        (key, WebhookDelivery::new("jira:issue_created", &body))
    }

    /// `by` moves a CR to `status` (a workflow transition); returns the `jira:issue_updated`
    /// delivery, whose changelog says from which status.
    ///
    /// # Panics
    /// When there is no such issue.
    pub fn move_change_request(&self, key: &str, status: &str, by: &JiraUser) -> WebhookDelivery {
        let mut data = self.data();
        let data = &mut *data;
        let at = data.clock.tick();
        let issue = data.issues.get_mut(key).expect("no such issue");
        let from = std::mem::replace(&mut issue.status, status.to_owned());
        issue.updated = at;
        self.issue_updated(at, by, issue, vec![status_item(&from, status)])
    }

    /// `by` edits a field (`description`, or a custom field id); returns the delivery.
    ///
    /// # Panics
    /// When there is no such issue.
    pub fn set_field(
        &self,
        key: &str,
        field: &str,
        value: Value,
        by: &JiraUser,
    ) -> WebhookDelivery {
        let mut data = self.data();
        let data = &mut *data;
        let at = data.clock.tick();
        let issue = data.issues.get_mut(key).expect("no such issue");
        let value = v3_value(value);
        if field == "description" {
            issue.description = value;
        } else {
            issue.custom_fields.insert(field.to_owned(), value);
        }
        issue.updated = at;
        let item = json!({"field": field, "fieldtype": "custom", "fieldId": field});
        let body = payload(
            "jira:issue_updated",
            "issue_updated",
            at,
            by,
            webhook_issue(issue, &self.shared.base_url),
            Some(vec![item]),
        );
        WebhookDelivery::new("jira:issue_updated", &body)
    }

    /// `by` deletes an issue; returns the `jira:issue_deleted` delivery.
    ///
    /// # Panics
    /// When there is no such issue.
    pub fn delete_issue(&self, key: &str, by: &JiraUser) -> WebhookDelivery {
        let mut data = self.data();
        let data = &mut *data;
        let at = data.clock.tick();
        let issue = data.issues.remove(key).expect("no such issue");
        let body = payload(
            "jira:issue_deleted",
            "issue_deleted",
            at,
            by,
            webhook_issue(&issue, &self.shared.base_url),
            None,
        );
        WebhookDelivery::new("jira:issue_deleted", &body)
    }
}

impl JiraFake {
    /// The bridge's own account, as `/myself` answers and as webhooks name it.
    pub fn bridge_user(&self) -> JiraUser {
        JiraUser::new("5b10ac8d82e05b22cc7d4ef5", "hookbridge bot")
    }

    /// `by` moves any issue to `status` in Jira's UI, setting `resolution` when the status is
    /// Done (leaving Done clears the resolution, as Jira's default workflows do); returns the
    /// `jira:issue_updated` delivery with the status (and resolution) changelog items.
    ///
    /// # Panics
    /// When there is no such issue.
    pub fn move_issue(
        &self,
        key: &str,
        status: &str,
        resolution: Option<&str>,
        by: &JiraUser,
    ) -> WebhookDelivery {
        let mut data = self.data();
        let data = &mut *data;
        let at = data.clock.tick();
        let issue = data.issues.get_mut(key).expect("no such issue");
        let from = std::mem::replace(&mut issue.status, status.to_owned());
        let old_resolution = issue.resolution.clone();
        issue.resolution = if status == "Done" {
            resolution.map(str::to_owned)
        } else {
            None
        };
        issue.updated = at;
        let mut items = Vec::new();
        if old_resolution != issue.resolution {
            items.push(resolution_item(
                old_resolution.as_deref(),
                issue.resolution.as_deref(),
            ));
        }
        items.push(status_item(&from, status));
        self.issue_updated(at, by, issue, items)
    }

    /// The `jira:issue_updated` delivery Jira sends when `by` (the bridge, through the API)
    /// moved `key` from status `from` to the one it has now.
    ///
    /// # Panics
    /// When there is no such issue.
    pub fn issue_updated_by(&self, key: &str, from: &str, by: &JiraUser) -> WebhookDelivery {
        let mut data = self.data();
        let data = &mut *data;
        let at = data.clock.tick();
        let issue = data.issues.get(key).expect("no such issue");
        let mut items = Vec::new();
        if issue.resolution.is_some() {
            items.push(resolution_item(None, issue.resolution.as_deref()));
        }
        items.push(status_item(from, &issue.status));
        self.issue_updated(at, by, issue, items)
    }

    /// The `jira:issue_updated` delivery of `issue` as changed by `by` at `at`, with the
    /// changelog `items`.
    fn issue_updated(
        &self,
        at: DateTime<Utc>,
        by: &JiraUser,
        issue: &FakeIssue,
        items: Vec<Value>,
    ) -> WebhookDelivery {
        let body = payload(
            "jira:issue_updated",
            "issue_generic",
            at,
            by,
            webhook_issue(issue, &self.shared.base_url),
            Some(items),
        );
        WebhookDelivery::new("jira:issue_updated", &body)
    }

    /// `by` comments `text` on `key` in Jira's UI; returns the `comment_created` delivery.
    ///
    /// # Panics
    /// When there is no such issue.
    pub fn comment_as(&self, key: &str, text: &str, by: &JiraUser) -> WebhookDelivery {
        let index = {
            let mut data = self.data();
            let data = &mut *data;
            data.next_comment_id += 1;
            let id = data.next_comment_id;
            let issue = data.issues.get_mut(key).expect("no such issue");
            issue.comments.push(adf(text));
            data.comment_ids.entry(key.to_owned()).or_default().push(id);
            data.issues[key].comments.len() - 1
        };
        self.comment_created_for(key, index, by)
    }

    /// The `comment_created` delivery for the `index`th comment of `key`, written by `by` (the
    /// bridge's own comments: `by` is [`JiraFake::bridge_user`]). The body is text, as webhooks
    /// carry it: a line per paragraph.
    ///
    /// # Panics
    /// When there is no such issue or comment.
    pub fn comment_created_for(&self, key: &str, index: usize, by: &JiraUser) -> WebhookDelivery {
        let mut data = self.data();
        let data = &mut *data;
        let at = data.clock.tick();
        let id = super::comments::comment_id(data, key, index);
        let issue = data.issues.get(key).expect("no such issue");
        let body = issue.comments.get(index).expect("no such comment");
        let base = &self.shared.base_url;
        let payload = json!({
            "timestamp": at.timestamp_millis(),
            "webhookEvent": "comment_created",
            "comment": {
                "self": format!("{base}/rest/api/2/issue/{}/comment/{id}", issue.id),
                "id": id.to_string(),
                "author": by.json(),
                "body": text_of(body),
                "updateAuthor": by.json(),
                "created": jira_time(at),
                "updated": jira_time(at),
                "jsdPublic": true,
            },
            "issue": webhook_issue(issue, base),
        });
        WebhookDelivery::new("comment_created", &payload)
    }
}

/// A changelog item of the resolution (`10000`, the id of Jira Cloud's first resolution, stands
/// in for every one: the bridge reads the names).
fn resolution_item(from: Option<&str>, to: Option<&str>) -> Value {
    json!({
        "field": "resolution", "fieldtype": "jira", "fieldId": "resolution",
        "from": from.map(|_| "10000"), "fromString": from,
        "to": to.map(|_| "10000"), "toString": to,
    })
}

fn status_item(from: &str, to: &str) -> Value {
    json!({
        "field": "status",
        "fieldtype": "jira",
        "fieldId": "status",
        "from": status_id(from),
        "fromString": from,
        "to": status_id(to),
        "toString": to,
    })
}
