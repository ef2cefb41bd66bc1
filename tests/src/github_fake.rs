//! A GitHub REST API fake for the repository-webhook delivery endpoints and a repository's issues:
//! an HTTP server inside the test suite that answers like `api.github.com` does, so `hookbridge
//! github redeliver` and `hookbridge github backfill` are tested against GitHub's rules.
//!
//! Sources (GitHub Docs, REST API version 2022-11-28): "REST API endpoints for repository webhooks"
//! — "List deliveries for a repository webhook" (`GET /repos/{owner}/{repo}/hooks/{hook_id}/
//! deliveries`, `per_page` default 30 and at most 100, `cursor` "the starting delivery from which
//! the page of deliveries is fetched; refer to the link header for the next and previous page
//! cursors"; items `id`, `guid` — shared by every redelivery of the event —, `delivered_at`,
//! `redelivery`, `duration`, `status` ("OK" on success), `status_code`, `event`, `action`,
//! `installation_id`, `repository_id`) and "Redeliver a delivery for a repository webhook"
//! (`POST …/deliveries/{delivery_id}/attempts`, `202 Accepted`); "Using pagination in the REST API"
//! (the `link` header, `rel="next"`, omitted on the last page); "Rate limits for the REST API"
//! (`x-ratelimit-limit`, `-remaining`, `-used`, `-reset` in UTC epoch seconds, `-resource`; over
//! the primary limit, 403 or 429 with `x-ratelimit-remaining: 0` and "API rate limit exceeded");
//! "Handling failed webhook deliveries" (GitHub does not redeliver by itself; a failed delivery
//! has a `status` that is not OK).
//!
//! Issues (GitHub Docs, "REST API endpoints for issues" — "List repository issues", `GET
//! /repos/{owner}/{repo}/issues`): `state` `open` (the default), `closed` or `all`; `since` "only
//! show results that were last updated after the given time", ISO 8601 `YYYY-MM-DDTHH:MM:SSZ`;
//! `sort` `created` (the default), `updated` or `comments`; `direction` `desc` (the default) or
//! `asc`; `per_page` default 30, at most 100; `page` default 1. "GitHub's REST API considers every
//! pull request an issue, but not every issue is a pull request": pull requests are listed too,
//! told apart by their `pull_request` key. "Using pagination in the REST API": this endpoint pages
//! by page number, with `rel="next"`, `"last"`, `"first"` and `"prev"` links in the `link` header
//! (no `next` on the last page). A bad `state` or `since` is `422 Validation Failed`.
//!
//! What it enforces, as GitHub does:
//! - `Authorization: Bearer <token>` (or `token <token>`): otherwise `401 {"message":"Bad
//!   credentials",…}`; a request without `User-Agent` gets 403;
//! - a token without write access to the hook ([`GithubConfig::read_only`]) lists deliveries but
//!   gets `403 Resource not accessible by personal access token` when it asks for a redelivery;
//! - an unknown repository or hook: `404 {"message":"Not Found",…}`;
//! - newest-first pages of `per_page` (at most 100) with a `link` header whose `next` carries a
//!   `cursor`;
//! - the primary rate limit, counted per token, with the `x-ratelimit-*` headers on every answer;
//!   exhausted ([`GithubFake::exhaust_rate_limit`]), `403 {"message":"API rate limit exceeded …"}`
//!   until the reset;
//! - a redelivery is answered `202 {}` and recorded; it then appears in the list as a new attempt
//!   (`redelivery: true`, same `guid`) whose status is [`GithubConfig::redeliveries_succeed`].
//!
//! - issues are added with [`GithubFake::add_issue`] ([`RepoIssue`]), a repository with none is
//!   404 like an unknown repository.
//!
//! Tests read what was asked with [`GithubFake::redelivered`] and [`GithubFake::requests`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::serve::Server;

/// How the fake behaves.
#[derive(Debug, Clone)]
pub struct GithubConfig {
    /// The token it accepts.
    pub token: String,
    /// Requests per hour of the primary rate limit.
    pub rate_limit: u32,
    /// Whether a redelivery it is asked for succeeds (appears as an `OK` attempt).
    pub redeliveries_succeed: bool,
    /// The token may read the hook's deliveries but not redeliver them (a fine-grained token with
    /// "Webhooks: read-only"): a redelivery gets `403 Resource not accessible by personal access
    /// token`.
    pub read_only: bool,
}

impl Default for GithubConfig {
    fn default() -> Self {
        Self {
            token: "ghp_fakeTOKENfakeTOKENfakeTOKEN0123456789".into(),
            rate_limit: 5000,
            redeliveries_succeed: true,
            read_only: false,
        }
    }
}

/// One delivery attempt, as the list shows it.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub id: u64,
    pub guid: String,
    pub delivered_at: DateTime<Utc>,
    pub redelivery: bool,
    pub status_code: u16,
    pub event: String,
    pub action: Option<String>,
}

impl Delivery {
    /// An `issues.opened` delivery answered `status_code`, `age` ago.
    pub fn new(id: u64, guid: &str, age: Duration, status_code: u16) -> Self {
        Self {
            id,
            guid: guid.to_owned(),
            delivered_at: Utc::now() - chrono::Duration::from_std(age).expect("age"),
            redelivery: false,
            status_code,
            event: "issues".into(),
            action: Some("opened".into()),
        }
    }

    /// GitHub's `status`: `OK` for a 2xx answer, else a description.
    fn status(&self) -> String {
        match self.status_code {
            200..=299 => "OK".into(),
            0 => "timed out".into(),
            code => format!("Invalid HTTP Response: {code}"),
        }
    }

    fn json(&self) -> Value {
        json!({
            "id": self.id,
            "guid": self.guid,
            "delivered_at": self.delivered_at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            "redelivery": self.redelivery,
            "duration": 0.27,
            "status": self.status(),
            "status_code": self.status_code,
            "event": self.event,
            "action": self.action,
            "installation_id": null,
            "repository_id": 456,
        })
    }
}

/// One issue (or pull request) of a repository, as "List repository issues" shows it.
#[derive(Debug, Clone)]
pub struct RepoIssue {
    pub number: u64,
    pub title: String,
    pub body: Option<String>,
    /// `open` or `closed`.
    pub state: String,
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
            "state_reason": if closed { json!("completed") } else { Value::Null },
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

/// One request the fake answered.
#[derive(Debug, Clone)]
pub struct GithubRequest {
    pub method: String,
    /// Path and query.
    pub target: String,
    pub status: u16,
    pub authorization: Option<String>,
    pub accept: Option<String>,
    pub api_version: Option<String>,
    pub user_agent: Option<String>,
}

struct Data {
    /// `(owner/repo lowercased, hook id)` → attempts, newest first.
    hooks: HashMap<(String, u64), Vec<Delivery>>,
    /// owner/repo lowercased → its issues and pull requests, in the order added.
    issues: HashMap<String, Vec<RepoIssue>>,
    remaining: u32,
    /// UTC epoch seconds.
    reset: u64,
    redelivered: Vec<u64>,
    next_id: u64,
    log: Vec<GithubRequest>,
}

struct Shared {
    config: GithubConfig,
    base: String,
    data: Mutex<Data>,
}

/// A running fake; stops when dropped.
pub struct GithubFake {
    shared: Arc<Shared>,
    _server: Server,
}

/// Now, in whole UTC epoch seconds (as `x-ratelimit-reset` counts).
pub(crate) fn epoch_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl GithubFake {
    /// Starts the fake on a free port of 127.0.0.1.
    ///
    /// # Panics
    /// When no port can be bound.
    pub async fn start(config: GithubConfig) -> Self {
        let (listener, addr) = crate::serve::bind("GitHub fake").await;
        let shared = Arc::new(Shared {
            base: format!("http://{addr}"),
            data: Mutex::new(Data {
                hooks: HashMap::new(),
                issues: HashMap::new(),
                remaining: config.rate_limit,
                reset: epoch_now() + 3600,
                redelivered: Vec::new(),
                next_id: 9_000_000_000,
                log: Vec::new(),
            }),
            config,
        });
        let app = Router::new().fallback(handle).with_state(shared.clone());
        Self {
            shared,
            _server: Server::start(listener, app),
        }
    }

    /// What `GITHUB_API_URL` should be.
    pub fn api_url(&self) -> String {
        self.shared.base.clone()
    }

    pub fn token(&self) -> String {
        self.shared.config.token.clone()
    }

    fn data(&self) -> std::sync::MutexGuard<'_, Data> {
        self.shared.data.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Creates hook `hook_id` on `repo` (`owner/name`) with these attempts (any order).
    pub fn add_hook(&self, repo: &str, hook_id: u64, mut deliveries: Vec<Delivery>) {
        deliveries.sort_by_key(|d| std::cmp::Reverse((d.delivered_at, d.id)));
        self.data()
            .hooks
            .insert((repo.to_lowercase(), hook_id), deliveries);
    }

    /// Adds an issue or pull request to `repo` (`owner/name`); one with the same number is
    /// replaced.
    pub fn add_issue(&self, repo: &str, issue: RepoIssue) {
        let mut data = self.data();
        let list = data.issues.entry(repo.to_lowercase()).or_default();
        list.retain(|i| i.number != issue.number);
        list.push(issue);
    }

    /// Issue `number` of `repo` as GitHub lists it, if there is one.
    pub fn issue_json(&self, repo: &str, number: u64) -> Option<Value> {
        self.data()
            .issues
            .get(&repo.to_lowercase())?
            .iter()
            .find(|i| i.number == number)
            .map(|i| i.json(&self.shared.base, repo))
    }

    /// No request is left for at least `reset_in` from now: the reset is the first whole second
    /// (`x-ratelimit-reset` has no fraction) at or after now + `reset_in`, so the window is never
    /// shorter than asked, whatever fraction of a second it is now. Then the limit is full again.
    pub fn exhaust_rate_limit(&self, reset_in: Duration) {
        let until = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            + reset_in;
        let mut data = self.data();
        data.remaining = 0;
        data.reset = until.as_secs() + u64::from(until.subsec_nanos() > 0);
    }

    /// The delivery ids a redelivery was asked for (and answered 202), in order.
    pub fn redelivered(&self) -> Vec<u64> {
        self.data().redelivered.clone()
    }

    /// Every request, with its answer.
    pub fn requests(&self) -> Vec<GithubRequest> {
        self.data().log.clone()
    }
}

/// An error answer as GitHub's REST API words it: `message`, `documentation_url`, `status`.
pub(crate) fn error(status: StatusCode, message: &str, doc: &str) -> Response {
    (
        status,
        [("content-type", "application/json; charset=utf-8")],
        json!({
            "message": message,
            "documentation_url": format!("https://docs.github.com/{doc}"),
            "status": status.as_u16().to_string(),
        })
        .to_string(),
    )
        .into_response()
}

/// A request header's value, when it is text.
pub(crate) fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn query_param(uri: &Uri, name: &str) -> Option<String> {
    url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// `/repos/{owner}/{repo}/hooks/{id}/deliveries[/{delivery}/attempts]`.
enum Route {
    Issues(String),
    List(String, u64),
    Redeliver(String, u64, u64),
    Unknown,
}

fn route(method: &Method, path: &str) -> Route {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (method, parts.as_slice()) {
        (&Method::GET, ["repos", owner, repo, "issues"]) => {
            Route::Issues(format!("{owner}/{repo}"))
        }
        (&Method::GET, ["repos", owner, repo, "hooks", id, "deliveries"]) => {
            id.parse().map_or(Route::Unknown, |id| {
                Route::List(format!("{owner}/{repo}"), id)
            })
        }
        (
            &Method::POST,
            [
                "repos",
                owner,
                repo,
                "hooks",
                id,
                "deliveries",
                delivery,
                "attempts",
            ],
        ) => match (id.parse(), delivery.parse()) {
            (Ok(id), Ok(delivery)) => Route::Redeliver(format!("{owner}/{repo}"), id, delivery),
            _ => Route::Unknown,
        },
        _ => Route::Unknown,
    }
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let mut data = shared.data.lock().unwrap_or_else(|p| p.into_inner());
    let response = answer(&shared, &mut data, &method, &uri, &headers);
    data.log.push(GithubRequest {
        method: method.to_string(),
        target: uri
            .path_and_query()
            .map_or_else(|| uri.path().to_owned(), ToString::to_string),
        status: response.status().as_u16(),
        authorization: header(&headers, "authorization"),
        accept: header(&headers, "accept"),
        api_version: header(&headers, "x-github-api-version"),
        user_agent: header(&headers, "user-agent"),
    });
    response
}

fn answer(
    shared: &Shared,
    data: &mut Data,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
) -> Response {
    if header(headers, "user-agent").is_none_or(|u| u.trim().is_empty()) {
        return error(
            StatusCode::FORBIDDEN,
            "Request forbidden by administrative rules. Please make sure your request has a \
             User-Agent header",
            "rest/overview/resources-in-the-rest-api#user-agent-required",
        );
    }
    let token = header(headers, "authorization").and_then(|a| {
        a.strip_prefix("Bearer ")
            .or_else(|| a.strip_prefix("token "))
            .map(str::to_owned)
    });
    if token.as_deref() != Some(shared.config.token.as_str()) {
        return error(StatusCode::UNAUTHORIZED, "Bad credentials", "rest");
    }
    if let Some(version) = header(headers, "x-github-api-version")
        && version != "2022-11-28"
    {
        return error(
            StatusCode::BAD_REQUEST,
            &format!("Invalid API version: {version}"),
            "rest/overview/api-versions",
        );
    }
    // The primary rate limit, counted per (the one) token.
    let now = epoch_now();
    if now >= data.reset {
        data.remaining = shared.config.rate_limit;
        data.reset = now + 3600;
    }
    let limited = data.remaining == 0;
    if !limited {
        data.remaining -= 1;
    }
    let mut response = if limited {
        error(
            StatusCode::FORBIDDEN,
            "API rate limit exceeded for user ID 1. If you reach out to GitHub Support for help, \
             please include the request ID.",
            "rest/overview/rate-limits-for-the-rest-api",
        )
    } else {
        match route(method, uri.path()) {
            Route::Issues(repo) => list_issues(shared, data, &repo, uri),
            Route::List(repo, hook) => list(shared, data, &repo, hook, uri),
            Route::Redeliver(repo, hook, delivery) => {
                redeliver(shared, data, &repo, hook, delivery)
            }
            Route::Unknown => error(StatusCode::NOT_FOUND, "Not Found", "rest/repos/webhooks"),
        }
    };
    let limit = shared.config.rate_limit;
    for (name, value) in [
        ("x-ratelimit-limit", limit.to_string()),
        ("x-ratelimit-remaining", data.remaining.to_string()),
        ("x-ratelimit-used", (limit - data.remaining).to_string()),
        ("x-ratelimit-reset", data.reset.to_string()),
        ("x-ratelimit-resource", "core".to_owned()),
    ] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

fn list(shared: &Shared, data: &Data, repo: &str, hook: u64, uri: &Uri) -> Response {
    let Some(deliveries) = data.hooks.get(&(repo.to_lowercase(), hook)) else {
        return error(
            StatusCode::NOT_FOUND,
            "Not Found",
            "rest/repos/webhooks#list-deliveries-for-a-repository-webhook",
        );
    };
    let per_page = query_param(uri, "per_page")
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(30)
        .clamp(1, 100);
    let start = match query_param(uri, "cursor") {
        None => 0,
        Some(cursor) => {
            let Some(position) = cursor
                .strip_prefix("v1_")
                .and_then(|id| id.parse::<u64>().ok())
                .and_then(|id| deliveries.iter().position(|d| d.id == id))
            else {
                return error(
                    StatusCode::BAD_REQUEST,
                    "Bad Request",
                    "rest/repos/webhooks#list-deliveries-for-a-repository-webhook",
                );
            };
            position
        }
    };
    let page: Vec<Value> = deliveries
        .iter()
        .skip(start)
        .take(per_page)
        .map(Delivery::json)
        .collect();
    let mut response = (
        StatusCode::OK,
        [("content-type", "application/json; charset=utf-8")],
        Value::Array(page).to_string(),
    )
        .into_response();
    let path = format!("{}/repos/{repo}/hooks/{hook}/deliveries", shared.base);
    let mut links = Vec::new();
    if let Some(next) = deliveries.get(start + per_page) {
        links.push(format!(
            "<{path}?per_page={per_page}&cursor=v1_{}>; rel=\"next\"",
            next.id
        ));
    }
    if start > 0 {
        links.push(format!("<{path}?per_page={per_page}>; rel=\"first\""));
    }
    if !links.is_empty()
        && let Ok(value) = HeaderValue::from_str(&links.join(", "))
    {
        response.headers_mut().insert("link", value);
    }
    response
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
fn list_issues(shared: &Shared, data: &Data, repo: &str, uri: &Uri) -> Response {
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

fn redeliver(shared: &Shared, data: &mut Data, repo: &str, hook: u64, delivery: u64) -> Response {
    let key = (repo.to_lowercase(), hook);
    if shared.config.read_only && data.hooks.contains_key(&key) {
        return error(
            StatusCode::FORBIDDEN,
            "Resource not accessible by personal access token",
            "rest/repos/webhooks#redeliver-a-delivery-for-a-repository-webhook",
        );
    }
    let Some(original) = data
        .hooks
        .get(&key)
        .and_then(|d| d.iter().find(|d| d.id == delivery))
        .cloned()
    else {
        return error(
            StatusCode::NOT_FOUND,
            "Not Found",
            "rest/repos/webhooks#redeliver-a-delivery-for-a-repository-webhook",
        );
    };
    data.redelivered.push(delivery);
    data.next_id += 1;
    let attempt = Delivery {
        id: data.next_id,
        delivered_at: Utc::now(),
        redelivery: true,
        status_code: if shared.config.redeliveries_succeed {
            200
        } else {
            502
        },
        ..original
    };
    if let Some(list) = data.hooks.get_mut(&key) {
        list.insert(0, attempt);
    }
    (
        StatusCode::ACCEPTED,
        [("content-type", "application/json; charset=utf-8")],
        "{}",
    )
        .into_response()
}
