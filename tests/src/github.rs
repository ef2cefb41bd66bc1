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
        if action == "labeled"
            && let Some(label) = self.labels.last()
        {
            payload["label"] = json!({"name": label});
        }
        payload
    }

    /// An `issues.unlabeled` payload: `label` is removed from the issue first, as on GitHub.
    pub fn unlabel(&mut self, label: &str) -> Value {
        self.labels.retain(|l| l != label);
        let mut payload = self.event("unlabeled");
        payload["label"] = json!({"name": label});
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

/// `sha256=<lowercase hex HMAC-SHA256(secret, body)>`: the value GitHub puts in
/// `X-Hub-Signature-256` and Jira in `X-Hub-Signature`. Computed here independently of the product's
/// own signer, so that a bug there cannot hide itself.
pub fn signature(secret: &str, body: &[u8]) -> String {
    use hmac::{KeyInit, Mac};
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes keys of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// An `issues.opened` payload of about `bytes` bytes (never less), as GitHub would send it, but
/// pretty-printed and with non-ASCII text, quotes and newlines in the body, so that a byte-for-byte
/// comparison catches any re-serialisation on the way.
pub fn opened_payload_of_size(issue: &GithubIssue, bytes: usize) -> Vec<u8> {
    const LINE: &str = "Ünïcödé \"quoted\" text, a tab\tand a backslash \\ — ✓ line\n";
    let mut issue = issue.clone();
    let base = serde_json::to_vec_pretty(&issue.event("opened"))
        .expect("payload is JSON")
        .len();
    let per_line = serde_json::to_string(LINE).expect("JSON").len() - 2;
    let lines = bytes.saturating_sub(base).div_ceil(per_line);
    issue.body = format!("{}\n{}", issue.body, LINE.repeat(lines));
    serde_json::to_vec_pretty(&issue.event("opened")).expect("payload is JSON")
}

/// An `issues.opened` payload of about `bytes` bytes whose body text no compressor can shrink
/// (hex of a SHA-256 chain: no repeats for LZ4 to find), for tests about bytes on disk.
pub fn incompressible_opened_payload(issue: &GithubIssue, bytes: usize) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    let mut issue = issue.clone();
    let mut block = Sha256::digest(issue.html_url().as_bytes()).to_vec();
    let mut text = String::with_capacity(bytes);
    while text.len() < bytes {
        block = Sha256::digest(&block).to_vec();
        text.push_str(&hex::encode(&block));
    }
    issue.body = text;
    serde_json::to_vec(&issue.event("opened")).expect("payload is JSON")
}

/// One webhook request as a provider sends it: headers and the exact body bytes.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The delivery id (`X-GitHub-Delivery` or `X-Atlassian-Webhook-Identifier`).
    pub id: String,
    pub body: Vec<u8>,
    pub headers: Vec<(String, String)>,
}

impl Delivery {
    /// A GitHub delivery of `event` with a JSON body, not yet signed.
    pub fn github(event: &str, payload: &Value) -> Self {
        Self::github_raw(event, serde_json::to_vec(payload).expect("payload is JSON"))
    }

    /// A GitHub delivery of `event` with exactly these body bytes (`application/json`).
    pub fn github_raw(event: &str, body: Vec<u8>) -> Self {
        let id = delivery_id();
        Self {
            headers: vec![
                ("Content-Type".into(), "application/json".into()),
                ("X-GitHub-Event".into(), event.into()),
                ("X-GitHub-Delivery".into(), id.clone()),
                ("X-GitHub-Hook-ID".into(), "424242".into()),
                ("User-Agent".into(), "GitHub-Hookshot/044aadd".into()),
            ],
            id,
            body,
        }
    }

    /// A GitHub delivery whose hook is configured with `application/x-www-form-urlencoded`: the body
    /// is `payload=<url-encoded JSON>`.
    pub fn github_form(event: &str, payload: &Value) -> Self {
        let json = serde_json::to_vec(payload).expect("payload is JSON");
        let body = format!(
            "payload={}",
            url::form_urlencoded::byte_serialize(&json).collect::<String>()
        );
        Self::github_raw(event, body.into_bytes())
            .header("Content-Type", "application/x-www-form-urlencoded")
    }

    /// A Jira Cloud admin webhook delivery with `X-Atlassian-Webhook-Identifier`, not yet signed.
    pub fn jira(payload: &Value) -> Self {
        let id = format!("jira-{}", delivery_id());
        Self {
            headers: vec![
                // What Jira Cloud sends: with a charset parameter.
                (
                    "Content-Type".into(),
                    "application/json; charset=UTF-8".into(),
                ),
                ("X-Atlassian-Webhook-Identifier".into(), id.clone()),
                ("User-Agent".into(), "Atlassian Webhook HTTP Client".into()),
            ],
            id,
            body: serde_json::to_vec(payload).expect("payload is JSON"),
        }
    }

    /// Sets (or replaces) a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Removes a header.
    pub fn without(mut self, name: &str) -> Self {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self
    }

    /// Signs the body the GitHub way: `X-Hub-Signature-256`.
    pub fn signed(self, secret: &str) -> Self {
        let value = signature(secret, &self.body);
        self.header("X-Hub-Signature-256", &value)
    }

    /// Signs the body the Jira way: `X-Hub-Signature`.
    pub fn jira_signed(self, secret: &str) -> Self {
        let value = signature(secret, &self.body);
        self.header("X-Hub-Signature", &value)
    }

    /// The signature header's value, if signed.
    pub fn signature(&self) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.starts_with("X-Hub-Signature"))
            .map(|(_, v)| v.as_str())
    }

    /// A POST of this delivery to `url`.
    pub fn post(&self, client: &reqwest::Client, url: &str) -> reqwest::RequestBuilder {
        self.headers
            .iter()
            .fold(client.post(url), |request, (name, value)| {
                request.header(name, value)
            })
            .body(self.body.clone())
    }
}

/// A Jira `jira:issue_updated` payload with a status change of `key`.
pub fn jira_issue_updated(key: &str, to: &str) -> Value {
    json!({
        "timestamp": 1_763_888_400_000_u64,
        "webhookEvent": "jira:issue_updated",
        "issue_event_type_name": "issue_generic",
        "user": {"accountId": "5b10a2844c20165700ede21g", "displayName": "Ada Approver"},
        "issue": {
            "id": "10042",
            "key": key,
            "fields": {"status": {"id": "3", "name": to}, "summary": "Change request"},
        },
        "changelog": {"id": "10100", "items": [{
            "field": "status", "fieldId": "status",
            "from": "10000", "fromString": "To Do", "to": "3", "toString": to,
        }]},
    })
}

/// One GitHub pull request, for building `pull_request` events about it with the shape GitHub
/// documents ("Webhook events and payloads", `pull_request`: `action`, `number`, the pull
/// request with `state`, `merged`, `merged_at`, `head`/`base` `{ref, sha, label}`, `updated_at`;
/// `repository`, `sender`).
#[derive(Debug, Clone)]
pub struct GithubPullRequest {
    pub repo: String,
    pub number: u64,
    pub title: String,
    pub body: String,
    /// The head branch (`head.ref`).
    pub branch: String,
    pub base: String,
    pub author: String,
    /// `open` or `closed`.
    pub state: String,
    pub merged: bool,
    /// Seconds after 2026-11-29T10:00:00Z of `updated_at`: each event built moves it on, as
    /// GitHub's clock does.
    pub clock: u64,
}

impl GithubPullRequest {
    pub fn new(repo: &str, number: u64) -> Self {
        Self {
            repo: repo.to_owned(),
            number,
            title: format!("Pull request {number}"),
            body: String::new(),
            branch: format!("topic-{number}"),
            base: "main".to_owned(),
            author: "octocat".to_owned(),
            state: "open".to_owned(),
            merged: false,
            clock: 0,
        }
    }

    pub fn html_url(&self) -> String {
        format!("https://github.com/{}/pull/{}", self.repo, self.number)
    }

    fn at(&self) -> String {
        let start = chrono::DateTime::parse_from_rfc3339("2026-11-29T10:00:00Z")
            .expect("a time")
            .with_timezone(&chrono::Utc);
        (start + chrono::Duration::seconds(self.clock as i64))
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    }

    /// The `pull_request` object as it is now.
    pub fn json(&self) -> Value {
        let sha = format!("{:040x}", self.number * 7_919 + self.clock);
        let closed = self.state == "closed";
        json!({
            "url": format!("https://api.github.com/repos/{}/pulls/{}", self.repo, self.number),
            "id": 2_000_000 + self.number,
            "node_id": format!("PR_kw{}", self.number),
            "html_url": self.html_url(),
            "issue_url": format!("https://api.github.com/repos/{}/issues/{}", self.repo, self.number),
            "number": self.number,
            "state": self.state,
            "locked": false,
            "title": self.title,
            "user": {"login": self.author, "id": 1, "type": "User"},
            "body": if self.body.is_empty() { Value::Null } else { json!(self.body) },
            "created_at": "2026-11-29T10:00:00Z",
            "updated_at": self.at(),
            "closed_at": if closed { json!(self.at()) } else { Value::Null },
            "merged_at": if self.merged { json!(self.at()) } else { Value::Null },
            "merge_commit_sha": if self.merged { json!(sha) } else { Value::Null },
            "draft": false,
            "labels": [],
            "head": {
                "label": format!("{}:{}", self.repo.split('/').next().unwrap_or(""), self.branch),
                "ref": self.branch,
                "sha": sha,
                "user": {"login": self.author, "id": 1, "type": "User"},
            },
            "base": {
                "label": format!("{}:{}", self.repo.split('/').next().unwrap_or(""), self.base),
                "ref": self.base,
                "sha": "0000000000000000000000000000000000000001",
            },
            "author_association": "MEMBER",
            "merged": self.merged,
            "mergeable": null,
            "comments": 0,
            "commits": 1,
            "additions": 3,
            "deletions": 1,
            "changed_files": 1,
        })
    }

    /// A `pull_request` event with `action`, sent by `sender`; the clock moves on first.
    pub fn event_by(&mut self, action: &str, sender: &str) -> Value {
        self.clock += 60;
        json!({
            "action": action,
            "number": self.number,
            "pull_request": self.json(),
            "repository": {
                "full_name": self.repo,
                "html_url": format!("https://github.com/{}", self.repo),
                "private": false,
            },
            "sender": {"login": sender, "id": 3, "type": "User"},
        })
    }

    /// A `pull_request` event with `action` by the author.
    pub fn event(&mut self, action: &str) -> Value {
        let author = self.author.clone();
        self.event_by(action, &author)
    }

    /// `pull_request.closed` after a merge: `state` `closed`, `merged` true.
    pub fn merge(&mut self, by: &str) -> Value {
        self.state = "closed".to_owned();
        self.merged = true;
        self.event_by("closed", by)
    }
}

/// A `push` event as GitHub sends it ("Webhook events and payloads", `push`: `ref`, `before`,
/// `after`, `created`, `deleted`, `forced`, `commits[]` with `id`, `message`, `url`, `distinct`,
/// `author`, `head_commit`, `pusher`, `repository`, `sender`) of `(sha, message)` commits to
/// `branch`.
pub fn push_event(repo: &str, branch: &str, commits: &[(&str, &str)]) -> Value {
    let commits: Vec<Value> = commits
        .iter()
        .map(|(sha, message)| {
            json!({
                "id": sha,
                "tree_id": format!("{sha:0>40}"),
                "distinct": true,
                "message": message,
                "timestamp": "2026-11-29T10:00:00Z",
                "url": format!("https://github.com/{repo}/commit/{sha}"),
                "author": {"name": "Mona Lisa", "email": "mona@example.test", "username": "monalisa"},
                "committer": {"name": "Mona Lisa", "email": "mona@example.test", "username": "monalisa"},
                "added": [],
                "removed": [],
                "modified": ["README.md"],
            })
        })
        .collect();
    let after = commits
        .last()
        .and_then(|c| c["id"].as_str())
        .unwrap_or("0000000000000000000000000000000000000000")
        .to_owned();
    json!({
        "ref": format!("refs/heads/{branch}"),
        "before": "1111111111111111111111111111111111111111",
        "after": after,
        "created": false,
        "deleted": false,
        "forced": false,
        "base_ref": null,
        "compare": format!("https://github.com/{repo}/compare/111111111111...{}", &after[..12.min(after.len())]),
        "head_commit": commits.last().cloned().unwrap_or(Value::Null),
        "commits": commits,
        "repository": {
            "full_name": repo,
            "html_url": format!("https://github.com/{repo}"),
            "private": false,
        },
        "pusher": {"name": "monalisa", "email": "mona@example.test"},
        "sender": {"login": "monalisa", "id": 4, "type": "User"},
    })
}
