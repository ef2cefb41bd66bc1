//! A repository's issues as "List repository issues" pages them (see the module's doc comment).

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::{Data, Shared, error, query_param};

/// One issue (or pull request) of a repository, as "List repository issues" shows it.
#[derive(Debug, Clone)]
pub struct RepoIssue {
    pub number: u64,
    pub title: String,
    pub body: Option<String>,
    /// `open` or `closed`.
    pub state: String,
    /// Why it is in its state (`completed`, `not_planned`, `duplicate`, `reopened`, or none).
    pub state_reason: Option<String>,
    pub labels: Vec<String>,
    pub is_pull_request: bool,
    /// The author's login.
    pub user: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl RepoIssue {
    /// An issue created and last updated `age` ago, by `octocat`.
    pub fn new(
        number: u64,
        title: &str,
        body: &str,
        state: &str,
        labels: &[&str],
        is_pull_request: bool,
        age: Duration,
    ) -> Self {
        let at = Utc::now() - chrono::Duration::from_std(age).expect("age");
        Self {
            number,
            title: title.to_owned(),
            body: Some(body.to_owned()),
            state: state.to_owned(),
            state_reason: (state == "closed").then(|| "completed".to_owned()),
            labels: labels.iter().map(|l| (*l).to_owned()).collect(),
            is_pull_request,
            user: "octocat".to_owned(),
            created_at: at,
            updated_at: at,
        }
    }

    /// The `issue` object as GitHub lists it in `repo` (REST API version 2022-11-28).
    pub fn json(&self, base: &str, repo: &str) -> Value {
        let time = |t: &DateTime<Utc>| t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
        let html = format!(
            "https://github.com/{repo}/{}/{}",
            if self.is_pull_request {
                "pull"
            } else {
                "issues"
            },
            self.number
        );
        let closed = self.state == "closed";
        let mut issue = json!({
            "id": 1_000_000 + self.number,
            "node_id": format!("I_kwDO{}", self.number),
            "url": format!("{base}/repos/{repo}/issues/{}", self.number),
            "repository_url": format!("{base}/repos/{repo}"),
            "html_url": html,
            "number": self.number,
            "state": self.state,
            "state_reason": self.state_reason,
            "title": self.title,
            "body": self.body,
            "user": {"login": self.user, "id": 1, "type": "User"},
            "labels": self.labels.iter().enumerate().map(|(i, name)| json!({
                "id": 200 + i, "name": name, "color": "f29513", "default": false,
            })).collect::<Vec<_>>(),
            "assignee": null,
            "assignees": [],
            "milestone": null,
            "locked": false,
            "comments": 0,
            "closed_at": if closed { json!(time(&self.updated_at)) } else { Value::Null },
            "created_at": time(&self.created_at),
            "updated_at": time(&self.updated_at),
            "author_association": "OWNER",
        });
        if self.is_pull_request {
            issue["pull_request"] = json!({
                "url": format!("{base}/repos/{repo}/pulls/{}", self.number),
                "html_url": html,
                "diff_url": format!("{html}.diff"),
                "patch_url": format!("{html}.patch"),
                "merged_at": null,
            });
        }
        issue
    }
}

fn validation_failed(field: &str, value: &str) -> Response {
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        [("content-type", "application/json; charset=utf-8")],
        json!({
            "message": "Validation Failed",
            "errors": [{"resource": "Issue", "field": field, "code": "invalid", "value": value}],
            "documentation_url":
                "https://docs.github.com/rest/issues/issues#list-repository-issues",
            "status": "422",
        })
        .to_string(),
    )
        .into_response()
}

/// `GET /repos/{owner}/{repo}/issues`: "List repository issues", paged by page number.
pub(super) fn list_issues(shared: &Shared, data: &Data, repo: &str, uri: &Uri) -> Response {
    let Some(issues) = data.issues.get(&repo.to_lowercase()) else {
        return error(
            StatusCode::NOT_FOUND,
            "Not Found",
            "rest/issues/issues#list-repository-issues",
        );
    };
    let state = query_param(uri, "state").unwrap_or_else(|| "open".to_owned());
    if !matches!(state.as_str(), "open" | "closed" | "all") {
        return validation_failed("state", &state);
    }
    let since = match query_param(uri, "since") {
        None => None,
        Some(text) => match DateTime::parse_from_rfc3339(&text) {
            Ok(t) => Some(t.with_timezone(&Utc)),
            Err(_) => return validation_failed("since", &text),
        },
    };
    let sort = query_param(uri, "sort").unwrap_or_else(|| "created".to_owned());
    let ascending = query_param(uri, "direction").is_some_and(|d| d == "asc");
    let per_page = query_param(uri, "per_page")
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(30)
        .clamp(1, 100);
    let page = query_param(uri, "page")
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);
    let mut selected: Vec<&RepoIssue> = issues
        .iter()
        .filter(|i| state == "all" || i.state == state)
        .filter(|i| since.is_none_or(|s| i.updated_at >= s))
        .collect();
    selected.sort_by_key(|i| {
        let at = if sort == "updated" {
            i.updated_at
        } else {
            i.created_at
        };
        (at, i.number)
    });
    if !ascending {
        selected.reverse();
    }
    let items: Vec<Value> = selected
        .iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .map(|i| i.json(&shared.base, repo))
        .collect();
    let mut response = (
        StatusCode::OK,
        [("content-type", "application/json; charset=utf-8")],
        Value::Array(items).to_string(),
    )
        .into_response();
    // The other parameters are kept as asked; only `page` changes from link to link.
    let kept: Vec<(String, String)> =
        url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
            .filter(|(k, _)| k != "page")
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
    let link_to = |n: usize| {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in &kept {
            query.append_pair(k, v);
        }
        query.append_pair("page", &n.to_string());
        format!("<{}/repos/{repo}/issues?{}>", shared.base, query.finish())
    };
    let last = selected.len().div_ceil(per_page).max(1);
    let mut links = Vec::new();
    if page < last {
        links.push(format!("{}; rel=\"next\"", link_to(page + 1)));
        links.push(format!("{}; rel=\"last\"", link_to(last)));
    }
    if page > 1 {
        links.push(format!("{}; rel=\"first\"", link_to(1)));
        links.push(format!("{}; rel=\"prev\"", link_to((page - 1).min(last))));
    }
    if !links.is_empty()
        && let Ok(value) = HeaderValue::from_str(&links.join(", "))
    {
        response.headers_mut().insert("link", value);
    }
    response
}
