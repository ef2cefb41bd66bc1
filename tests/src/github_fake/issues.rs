//! The issue routes of the GitHub fake (see the module's doc comment for the rules and their
//! sources): get and update an issue, list and create its comments, and the webhooks those writes
//! cause.

use axum::http::{HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{Data, Shared, error, query_param};

/// One comment on an issue.
#[derive(Debug, Clone)]
pub struct IssueComment {
    pub id: u64,
    pub body: String,
    /// The author's login.
    pub user: String,
}

impl IssueComment {
    fn json(&self, base: &str, repo: &str, number: u64) -> Value {
        json!({
            "id": self.id,
            "node_id": format!("IC_kw{}", self.id),
            "url": format!("{base}/repos/{repo}/issues/comments/{}", self.id),
            "html_url": format!("https://github.com/{repo}/issues/{number}#issuecomment-{}", self.id),
            "issue_url": format!("{base}/repos/{repo}/issues/{number}"),
            "body": self.body,
            "user": {"login": self.user, "id": 41_000_000, "type": "User"},
            "created_at": "2026-11-29T12:00:00Z",
            "updated_at": "2026-11-29T12:00:00Z",
            "author_association": "MEMBER",
        })
    }
}

pub(super) fn json_answer(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [("content-type", "application/json; charset=utf-8")],
        body.to_string(),
    )
        .into_response()
}

fn not_found(doc: &str) -> Response {
    error(StatusCode::NOT_FOUND, "Not Found", doc)
}

fn invalid(field: &str, value: &Value, doc: &str) -> Response {
    json_answer(
        StatusCode::UNPROCESSABLE_ENTITY,
        &json!({
            "message": "Validation Failed",
            "errors": [{"resource": "Issue", "field": field, "code": "invalid", "value": value}],
            "documentation_url": format!("https://docs.github.com/{doc}"),
            "status": "422",
        }),
    )
}

/// The `repository` and `sender` of a webhook the fake's writes cause.
fn context(repo: &str, sender: &str) -> (Value, Value) {
    let kind = if sender.ends_with("[bot]") {
        "Bot"
    } else {
        "User"
    };
    (
        json!({"full_name": repo, "html_url": format!("https://github.com/{repo}"), "private": false}),
        json!({"login": sender, "id": 41_000_000, "type": kind}),
    )
}

/// `GET /repos/{owner}/{repo}/issues/{n}`.
pub(super) fn get_issue(shared: &Shared, data: &Data, repo: &str, number: u64) -> Response {
    match data
        .issues
        .get(&repo.to_lowercase())
        .and_then(|list| list.iter().find(|i| i.number == number))
    {
        Some(issue) => json_answer(StatusCode::OK, &issue.json(&shared.base, repo)),
        None => not_found("rest/issues/issues#get-an-issue"),
    }
}

/// `PATCH /repos/{owner}/{repo}/issues/{n}` with `state` / `state_reason`.
pub(super) fn update_issue(
    shared: &Shared,
    data: &mut Data,
    repo: &str,
    number: u64,
    body: &[u8],
    sender: &str,
) -> Response {
    const DOC: &str = "rest/issues/issues#update-an-issue";
    let Ok(request) = serde_json::from_slice::<Value>(body) else {
        return error(StatusCode::BAD_REQUEST, "Problems parsing JSON", DOC);
    };
    let state = match request.get("state") {
        None => None,
        Some(Value::String(s)) if s == "open" || s == "closed" => Some(s.clone()),
        Some(other) => return invalid("state", other, DOC),
    };
    let reason = match request.get("state_reason") {
        None | Some(Value::Null) => None,
        Some(Value::String(r))
            if matches!(
                r.as_str(),
                "completed" | "not_planned" | "duplicate" | "reopened"
            ) =>
        {
            Some(r.clone())
        }
        Some(other) => return invalid("state_reason", other, DOC),
    };
    let Some(issue) = data
        .issues
        .get_mut(&repo.to_lowercase())
        .and_then(|list| list.iter_mut().find(|i| i.number == number))
    else {
        return not_found(DOC);
    };
    let mut event = None;
    if let Some(state) = state
        && state != issue.state
    {
        // "Ignored unless `state` is changed."
        issue.state_reason = Some(match (state.as_str(), reason) {
            ("closed", Some(r)) if r != "reopened" => r,
            ("closed", _) => "completed".to_owned(),
            _ => "reopened".to_owned(),
        });
        issue.state.clone_from(&state);
        issue.updated_at = chrono::Utc::now();
        event = Some(if state == "closed" {
            "closed"
        } else {
            "reopened"
        });
    }
    let answer = issue.json(&shared.base, repo);
    if let Some(action) = event {
        let (repository, sender) = context(repo, sender);
        data.webhooks.push((
            "issues".to_owned(),
            json!({"action": action, "issue": answer, "repository": repository, "sender": sender}),
        ));
    }
    json_answer(StatusCode::OK, &answer)
}

/// `GET /repos/{owner}/{repo}/issues/{n}/comments`, paged by page number.
pub(super) fn list_comments(
    shared: &Shared,
    data: &Data,
    repo: &str,
    number: u64,
    uri: &Uri,
) -> Response {
    let exists = data
        .issues
        .get(&repo.to_lowercase())
        .is_some_and(|list| list.iter().any(|i| i.number == number));
    if !exists {
        return not_found("rest/issues/comments#list-issue-comments");
    }
    let comments = data
        .comments
        .get(&(repo.to_lowercase(), number))
        .map(Vec::as_slice)
        .unwrap_or_default();
    let per_page = query_param(uri, "per_page")
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(30)
        .clamp(1, 100);
    let page = query_param(uri, "page")
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);
    let items: Vec<Value> = comments
        .iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .map(|c| c.json(&shared.base, repo, number))
        .collect();
    let mut response = json_answer(StatusCode::OK, &Value::Array(items));
    let last = comments.len().div_ceil(per_page).max(1);
    let link = |n: usize| {
        format!(
            "<{}/repos/{repo}/issues/{number}/comments?per_page={per_page}&page={n}>",
            shared.base
        )
    };
    let mut links = Vec::new();
    if page < last {
        links.push(format!("{}; rel=\"next\"", link(page + 1)));
        links.push(format!("{}; rel=\"last\"", link(last)));
    }
    if page > 1 {
        links.push(format!("{}; rel=\"first\"", link(1)));
    }
    if !links.is_empty()
        && let Ok(value) = HeaderValue::from_str(&links.join(", "))
    {
        response.headers_mut().insert("link", value);
    }
    response
}

/// `POST /repos/{owner}/{repo}/issues/{n}/comments` with `body`.
pub(super) fn create_comment(
    shared: &Shared,
    data: &mut Data,
    repo: &str,
    number: u64,
    body: &[u8],
    sender: &str,
) -> Response {
    const DOC: &str = "rest/issues/comments#create-an-issue-comment";
    let Ok(request) = serde_json::from_slice::<Value>(body) else {
        return error(StatusCode::BAD_REQUEST, "Problems parsing JSON", DOC);
    };
    let Some(text) = request["body"].as_str().filter(|b| !b.trim().is_empty()) else {
        return invalid("body", &request["body"], DOC);
    };
    if text.chars().count() > 65_536 {
        return invalid("body", &json!("too long"), DOC);
    }
    let Some(issue) = data
        .issues
        .get(&repo.to_lowercase())
        .and_then(|list| list.iter().find(|i| i.number == number))
    else {
        return not_found(DOC);
    };
    let issue_json = issue.json(&shared.base, repo);
    data.next_comment_id += 1;
    let comment = IssueComment {
        id: data.next_comment_id,
        body: text.to_owned(),
        user: sender.to_owned(),
    };
    let answer = comment.json(&shared.base, repo, number);
    data.comments
        .entry((repo.to_lowercase(), number))
        .or_default()
        .push(comment);
    let (repository, sender) = context(repo, sender);
    data.webhooks.push((
        "issue_comment".to_owned(),
        json!({"action": "created", "issue": issue_json, "comment": answer,
               "repository": repository, "sender": sender}),
    ));
    json_answer(StatusCode::CREATED, &answer)
}
