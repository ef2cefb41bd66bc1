//! Comments on an issue as Jira Cloud REST v3 keeps them: add (201), edit (200), delete (204),
//! and list (paged with `startAt`/`maxResults`/`total`); bodies must be Atlassian Documents, an
//! unknown comment is 404 with Jira's message.
//!
//! Separate because comments have their own ids, numbered across the site, which the webhooks
//! (`webhooks.rs`) share through [`comment_id`].

use std::collections::HashMap;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{Data, jira_error, json_answer, not_found};

pub(super) fn add_comment(data: &mut Data, base: &str, key: &str, request: &Value) -> Response {
    let body = &request["body"];
    if let Err(e) = hookbridge_worker::jira::adf::validate(body) {
        return jira_error(StatusCode::BAD_REQUEST, &[], json!({"comment": e}));
    }
    data.next_comment_id += 1;
    let id = data.next_comment_id;
    let Some(issue) = data.issues.get_mut(key) else {
        return not_found();
    };
    issue.comments.push(body.clone());
    data.comment_ids.entry(key.to_owned()).or_default().push(id);
    json_answer(
        StatusCode::CREATED,
        json!({"id": id.to_string(), "self": format!("{base}/rest/api/3/issue/{key}/comment/{id}"), "body": body}),
    )
}

/// The id of the `i`th comment of `key` (comments made other than through the API are numbered
/// from 1).
pub(super) fn comment_id(data: &Data, key: &str, i: usize) -> u64 {
    data.comment_ids
        .get(key)
        .and_then(|ids| ids.get(i).copied())
        .unwrap_or(i as u64 + 1)
}

/// Where comment `id` is among `key`'s comments.
fn comment_index(data: &Data, key: &str, id: &str) -> Option<usize> {
    let id: u64 = id.parse().ok()?;
    let count = data.issues.get(key)?.comments.len();
    (0..count).find(|i| comment_id(data, key, *i) == id)
}

fn comment_not_found(id: &str) -> Response {
    jira_error(
        StatusCode::NOT_FOUND,
        &[&format!("Can not find a comment for the id: {id}.")],
        json!({}),
    )
}

/// `PUT /rest/api/3/issue/{key}/comment/{id}`: the body is replaced (200 with the comment), an
/// invalid document is 400, an unknown comment 404.
pub(super) fn edit_comment(
    data: &mut Data,
    base: &str,
    key: &str,
    id: &str,
    request: &Value,
) -> Response {
    let Some(index) = comment_index(data, key, id) else {
        return comment_not_found(id);
    };
    let body = &request["body"];
    if let Err(e) = hookbridge_worker::jira::adf::validate(body) {
        return jira_error(StatusCode::BAD_REQUEST, &[], json!({"comment": e}));
    }
    let Some(issue) = data.issues.get_mut(key) else {
        return not_found();
    };
    issue.comments[index] = body.clone();
    json_answer(
        StatusCode::OK,
        json!({"id": id, "self": format!("{base}/rest/api/3/issue/{key}/comment/{id}"), "body": body}),
    )
}

/// `DELETE /rest/api/3/issue/{key}/comment/{id}`: 204, or 404 for an unknown comment.
pub(super) fn delete_comment(data: &mut Data, key: &str, id: &str) -> Response {
    let Some(index) = comment_index(data, key, id) else {
        return comment_not_found(id);
    };
    let count = data.issues.get(key).map_or(0, |i| i.comments.len());
    let mut ids: Vec<u64> = (0..count).map(|i| comment_id(data, key, i)).collect();
    ids.remove(index);
    data.comment_ids.insert(key.to_owned(), ids);
    if let Some(issue) = data.issues.get_mut(key) {
        issue.comments.remove(index);
    }
    StatusCode::NO_CONTENT.into_response()
}

pub(super) fn list_comments(data: &Data, key: &str, query: &HashMap<String, String>) -> Response {
    let issue = &data.issues[key];
    let start: usize = query
        .get("startAt")
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let max: usize = query
        .get("maxResults")
        .and_then(|s| s.parse().ok())
        .unwrap_or(50)
        .min(100);
    let comments: Vec<Value> = issue
        .comments
        .iter()
        .enumerate()
        .skip(start)
        .take(max)
        .map(|(i, body)| json!({"id": comment_id(data, key, i).to_string(), "body": body}))
        .collect();
    json_answer(
        StatusCode::OK,
        json!({"startAt": start, "maxResults": max, "total": issue.comments.len(), "comments": comments}),
    )
}
