//! Jira's enhanced search, `/rest/api/3/search/jql`: the small JQL subset the fake understands
//! (`labels`, `project`, `key` joined by `AND`, `ORDER BY created|key`), paging with
//! `nextPageToken`/`isLast` and no `total`, and eventual consistency (an issue is found by what
//! its labels were `search_lag` ago).
//!
//! Separate because it is a small query language of its own, and the only reader of each issue's
//! search history.

use std::time::Instant;

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use super::{Data, FakeConfig, FakeIssue, jira_error, json_answer};

/// One `field = value` condition of the JQL subset the fake understands.
enum Condition {
    Label(String),
    Project(String),
    Key(String),
}

fn parse_jql(jql: &str) -> Result<(Vec<Condition>, bool), String> {
    let lower = jql.to_ascii_lowercase();
    let (filter, order) = match lower.find(" order by ") {
        Some(i) => (&jql[..i], lower[i + " order by ".len()..].trim().to_owned()),
        None => (jql, String::new()),
    };
    let descending = match order.as_str() {
        "" | "created asc" | "created" | "key asc" => false,
        "created desc" | "key desc" => true,
        other => {
            return Err(format!(
                "Error in the JQL Query: unsupported ORDER BY '{other}'."
            ));
        }
    };
    let mut conditions = Vec::new();
    for part in split_and(filter) {
        let Some((field, value)) = part.split_once('=') else {
            return Err(format!(
                "Error in the JQL Query: expecting an operator in '{}'.",
                part.trim()
            ));
        };
        let value = value.trim().trim_matches('"').to_owned();
        match field.trim().to_ascii_lowercase().as_str() {
            "labels" => conditions.push(Condition::Label(value)),
            "project" => conditions.push(Condition::Project(value)),
            "key" | "issuekey" => conditions.push(Condition::Key(value)),
            other => {
                return Err(format!(
                    "Error in the JQL Query: the field '{other}' is not supported by this fake."
                ));
            }
        }
    }
    Ok((conditions, descending))
}

fn split_and(filter: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let lower = filter.to_ascii_lowercase();
    let mut start = 0;
    while let Some(i) = lower[start..].find(" and ") {
        parts.push(&filter[start..start + i]);
        start += i + " and ".len();
    }
    if !filter[start..].trim().is_empty() {
        parts.push(&filter[start..]);
    }
    parts
}

pub(super) fn search(data: &Data, config: &FakeConfig, request: &Value) -> Response {
    let _ = config;
    let jql = request["jql"].as_str().unwrap_or_default();
    let (conditions, descending) = match parse_jql(jql) {
        Ok(parsed) => parsed,
        Err(message) => return jira_error(StatusCode::BAD_REQUEST, &[&message], json!({})),
    };
    let now = Instant::now();
    let mut found: Vec<&FakeIssue> = data
        .issues
        .values()
        .filter(|issue| {
            // What the index knows: the newest write that has become searchable.
            let Some((_, labels)) = issue.search_history.iter().rev().find(|(at, _)| *at <= now)
            else {
                return false;
            };
            conditions.iter().all(|c| match c {
                Condition::Label(l) => labels.contains(l),
                Condition::Project(p) => issue.project.eq_ignore_ascii_case(p),
                Condition::Key(k) => issue.key.eq_ignore_ascii_case(k),
            })
        })
        .collect();
    found.sort_by_key(|i| i.id);
    if descending {
        found.reverse();
    }
    let max = request["maxResults"].as_u64().unwrap_or(50).clamp(1, 5000) as usize;
    let start: usize = request["nextPageToken"]
        .as_str()
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    let page: Vec<Value> = found
        .iter()
        .skip(start)
        .take(max)
        .map(|i| json!({"id": i.id.to_string(), "key": i.key, "fields": {"summary": i.summary, "labels": i.labels}}))
        .collect();
    let is_last = start + page.len() >= found.len();
    let mut answer = json!({"issues": page, "isLast": is_last});
    if !is_last {
        answer["nextPageToken"] = json!((start + max).to_string());
    }
    json_answer(StatusCode::OK, answer)
}
