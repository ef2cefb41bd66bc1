//! GitHub webhook deliveries as GitHub sends them: realistic `issues` / `issue_comment` payloads,
//! signed requests, and the queue envelopes the ingest makes of them.

use std::collections::BTreeMap;

use hookbridge_shared::envelope::{DeliveryId, Envelope, Source};
use serde_json::{Value, json};

/// One GitHub issue, for building events about it.
#[derive(Debug, Clone)]
pub struct GithubIssue {
    pub repo: String,
    pub number: u64,
    pub title: String,
    pub body: String,
    pub labels: Vec<String>,
    pub author: String,
}

impl GithubIssue {
    pub fn new(repo: &str, number: u64) -> Self {
        Self {
            repo: repo.to_owned(),
            number,
            title: format!("Issue {number} of {repo}"),
            body: format!(
                "Steps to reproduce:\n\n1. open\n2. **crash**\n\n```sh\nmake run\n```\n(#{number})"
            ),
            labels: Vec::new(),
            author: "octocat".to_owned(),
        }
    }

    pub fn with_labels(mut self, labels: &[&str]) -> Self {
        self.labels = labels.iter().map(|l| (*l).to_owned()).collect();
        self
    }

    pub fn html_url(&self) -> String {
        format!("https://github.com/{}/issues/{}", self.repo, self.number)
    }

    fn issue_json(&self) -> Value {
        json!({
            "id": 1_000_000 + self.number,
            "node_id": format!("I_kw{}", self.number),
            "number": self.number,
            "title": self.title,
            "body": self.body,
            "html_url": self.html_url(),
            "url": format!("https://api.github.com/repos/{}/issues/{}", self.repo, self.number),
            "state": "open",
            "labels": self.labels.iter().map(|l| json!({"name": l, "color": "d73a4a"})).collect::<Vec<_>>(),
            "user": {"login": self.author, "id": 1, "type": "User"},
            "created_at": "2026-11-23T10:00:00Z",
            "updated_at": "2026-11-23T10:00:00Z",
        })
    }

    fn repository_json(&self) -> Value {
        json!({
            "full_name": self.repo,
            "html_url": format!("https://github.com/{}", self.repo),
            "private": false,
        })
    }

    /// An `issues` event payload with `action` (`opened`, `labeled`, `closed`, …).
    pub fn event(&self, action: &str) -> Value {
        let mut payload = json!({
            "action": action,
            "issue": self.issue_json(),
            "repository": self.repository_json(),
            "sender": {"login": self.author, "id": 1, "type": "User"},
        });
        if (action == "labeled" || action == "unlabeled")
            && let Some(label) = self.labels.last()
        {
            payload["label"] = json!({"name": label});
        }
        payload
    }

    /// An `issue_comment.created` payload.
    pub fn comment(&self, comment_id: u64, author: &str, body: &str) -> Value {
        json!({
            "action": "created",
            "issue": self.issue_json(),
            "comment": {
                "id": comment_id,
                "body": body,
                "html_url": format!("{}#issuecomment-{comment_id}", self.html_url()),
                "user": {"login": author, "id": 2, "type": "User"},
            },
            "repository": self.repository_json(),
            "sender": {"login": author, "id": 2, "type": "User"},
        })
    }
}

/// The queue message the ingest makes of a GitHub delivery.
///
/// # Panics
/// When `delivery` is not a valid delivery id.
pub fn envelope(event: &str, delivery: &str, payload: &Value) -> Vec<u8> {
    let raw = serde_json::value::to_raw_value(payload).expect("payload is JSON");
    let mut headers = BTreeMap::new();
    headers.insert("x-github-event".to_owned(), event.to_owned());
    Envelope::new(
        Source::Github,
        event.to_owned(),
        payload["action"].as_str().map(str::to_owned),
        DeliveryId::parse(delivery).expect("delivery id"),
        headers,
        raw,
    )
    .encode()
}

/// A fresh GitHub-style delivery id.
pub fn delivery_id() -> String {
    uuid::Uuid::new_v4().to_string()
}
