//! Remote issue links as Jira Cloud keeps them (REST v3 "Create or update remote issue link",
//! "Get remote issue links"; Atlassian's "Using fields in Remote Issue Links"):
//! - `POST /rest/api/3/issue/{key}/remotelink`: `object.url` and `object.title` are required
//!   (400 `{"errors": {"title": "'title' is required."}}` otherwise), `globalId` is at most 255
//!   characters, `object.status.resolved` is a boolean; a link with the request's `globalId`
//!   is replaced by the request (200), any other request adds a link (201); an unknown issue is
//!   404 (checked before, with every issue route);
//! - `GET /rest/api/3/issue/{key}/remotelink[?globalId=…]`: every link of the issue, or the one
//!   with that `globalId` (404 when there is none), each with `id`, `self`, `globalId`,
//!   `application`, `relationship` and `object` as they were sent.

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use super::{Data, JiraFake, jira_error, json_answer};

const GLOBAL_ID_LIMIT: usize = 255;

/// What Jira says about a remote-link request it refuses (field → message), if it does.
fn refusal(request: &Value) -> Option<Value> {
    if !request.is_object() {
        return Some(json!({"object": "The request body must be a JSON object."}));
    }
    let object = &request["object"];
    for field in ["url", "title"] {
        if object[field].as_str().is_none_or(|v| v.trim().is_empty()) {
            return Some(json!({field: format!("'{field}' is required.")}));
        }
    }
    if let Some(global_id) = request.get("globalId")
        && global_id
            .as_str()
            .is_none_or(|g| g.chars().count() > GLOBAL_ID_LIMIT)
    {
        return Some(
            json!({"globalId": "The global ID must be a string of at most 255 characters."}),
        );
    }
    if let Some(resolved) = object.pointer("/status/resolved")
        && !resolved.is_boolean()
    {
        return Some(json!({"status": "'resolved' must be a boolean."}));
    }
    for text in [
        "/summary",
        "/icon/url16x16",
        "/icon/title",
        "/status/icon/title",
    ] {
        if object.pointer(text).is_some_and(|v| !v.is_string()) {
            return Some(json!({text.trim_start_matches('/'): "must be a string"}));
        }
    }
    None
}

/// `POST /rest/api/3/issue/{key}/remotelink`.
pub(super) fn upsert(data: &mut Data, base: &str, key: &str, request: &Value) -> Response {
    if let Some(errors) = refusal(request) {
        return jira_error(StatusCode::BAD_REQUEST, &[], errors);
    }
    let url = request["object"]["url"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let title = request["object"]["title"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let global_id = request["globalId"].as_str().unwrap_or_default().to_owned();
    let Some(issue) = data.issues.get_mut(key) else {
        return super::not_found();
    };
    let bodies = data.remote_link_bodies.entry(key.to_owned()).or_default();
    bodies.resize(issue.remote_links.len(), Value::Null);
    let existing = (!global_id.is_empty())
        .then(|| {
            issue
                .remote_links
                .iter()
                .position(|(g, _, _)| *g == global_id)
        })
        .flatten();
    let (status, link_id) = match existing {
        Some(index) => {
            issue.remote_links[index] = (global_id, url, title);
            let id = bodies[index]["id"].as_u64().unwrap_or(0);
            (StatusCode::OK, id)
        }
        None => {
            data.next_link_id += 1;
            issue.remote_links.push((global_id, url, title));
            bodies.push(Value::Null);
            (StatusCode::CREATED, data.next_link_id)
        }
    };
    let index = existing.unwrap_or(bodies.len() - 1);
    let self_url = format!("{base}/rest/api/3/issue/{key}/remotelink/{link_id}");
    let mut stored = json!({"id": link_id, "self": self_url});
    for field in ["globalId", "application", "relationship", "object"] {
        if let Some(value) = request.get(field) {
            stored[field] = value.clone();
        }
    }
    bodies[index] = stored;
    json_answer(status, json!({"id": link_id, "self": self_url}))
}

/// The links of `key` as `GET …/remotelink` shows them.
fn links_of(data: &Data, key: &str) -> Vec<Value> {
    let Some(issue) = data.issues.get(key) else {
        return Vec::new();
    };
    let bodies = data.remote_link_bodies.get(key);
    issue
        .remote_links
        .iter()
        .enumerate()
        .map(|(i, (global_id, url, title))| {
            bodies
                .and_then(|b| b.get(i))
                .filter(|b| !b.is_null())
                .cloned()
                .unwrap_or_else(
                    || json!({"globalId": global_id, "object": {"url": url, "title": title}}),
                )
        })
        .collect()
}

/// `GET /rest/api/3/issue/{key}/remotelink[?globalId=…]`.
pub(super) fn get(data: &Data, key: &str, global_id: Option<&String>) -> Response {
    let links = links_of(data, key);
    match global_id {
        None => json_answer(StatusCode::OK, Value::Array(links)),
        Some(wanted) => match links.into_iter().find(|l| l["globalId"] == **wanted) {
            Some(link) => json_answer(StatusCode::OK, link),
            None => jira_error(
                StatusCode::NOT_FOUND,
                &["No remote link with the given global ID was found."],
                json!({}),
            ),
        },
    }
}

impl JiraFake {
    /// Every remote link of `key` as Jira would answer `GET …/remotelink` (the whole `object`,
    /// status included); none for an unknown issue.
    pub fn remote_links(&self, key: &str) -> Vec<Value> {
        links_of(&self.data(), key)
    }
}
