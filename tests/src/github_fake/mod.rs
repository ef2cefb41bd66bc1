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
//! Issues as the Jira → GitHub sync uses them (GitHub Docs, "REST API endpoints for issues" —
//! "Get an issue", "Update an issue"; "REST API endpoints for issue comments" — "List issue
//! comments", "Create an issue comment"; "Get the authenticated user"):
//! - `GET /repos/{owner}/{repo}/issues/{n}`: the issue, 404 for an unknown one;
//! - `PATCH` the same: `state` must be `open` or `closed` and `state_reason` one of `completed`,
//!   `not_planned`, `duplicate`, `reopened` or null, else `422 Validation Failed`; the reason is
//!   "ignored unless `state` is changed"; a close without a reason is `completed`, a reopen is
//!   `reopened`; a change of state is what makes GitHub send an `issues` webhook
//!   (`closed`/`reopened`), with the token's user as `sender`;
//! - `GET …/issues/{n}/comments`: oldest first, `per_page` (at most 100) and `page`, with a `link`
//!   header; `POST` the same with a non-empty `body`: `201` with the comment, and an
//!   `issue_comment.created` webhook whose `sender` is the token's user;
//! - `GET /user`: the token's user ([`GithubConfig::login`]).
//!
//! [`GithubFake::take_webhooks`] hands a test the webhooks GitHub would send for those writes.
//!
//! Tests read what was asked with [`GithubFake::redelivered`] and [`GithubFake::requests`].
//!
//! Layout: `mod.rs` (the server, authentication, rate limit, routing), `hooks.rs` (webhook
//! deliveries), `listing.rs` (listing a repository's issues), `issues.rs` (one issue, its
//! comments, and the webhooks writes cause), `app.rs` (the GitHub App's JWT and installations).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::serve::Server;

mod app;
mod hooks;
mod issues;
mod listing;

pub use app::{APP_SLUG, INSTALLATION_ID};

pub use hooks::Delivery;
pub use issues::IssueComment;
pub use listing::RepoIssue;

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
    /// The login of the token's user (`GET /user`; the `sender` of the webhooks its writes cause).
    pub login: String,
    /// Also answer as GitHub does to this GitHub App (its key: the App fake's), installed on
    /// every repository that has issues (see `app.rs`).
    pub app_id: Option<u64>,
}

impl Default for GithubConfig {
    fn default() -> Self {
        Self {
            token: "ghp_fakeTOKENfakeTOKENfakeTOKEN0123456789".into(),
            rate_limit: 5000,
            redeliveries_succeed: true,
            read_only: false,
            login: "hookbridge-bot".into(),
            app_id: None,
        }
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
    /// `(owner/repo lowercased, issue number)` → its comments, oldest first.
    comments: HashMap<(String, u64), Vec<IssueComment>>,
    next_comment_id: u64,
    /// The webhooks GitHub would send for the writes made through the API: `(event, payload)`.
    webhooks: Vec<(String, Value)>,
    /// Installation tokens issued to the App.
    installation_tokens: Vec<String>,
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
                comments: HashMap::new(),
                next_comment_id: 1_500_000_000,
                webhooks: Vec::new(),
                installation_tokens: Vec::new(),
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

    /// Issue `number` of `repo` as the fake holds it.
    pub fn issue(&self, repo: &str, number: u64) -> Option<RepoIssue> {
        self.data()
            .issues
            .get(&repo.to_lowercase())?
            .iter()
            .find(|i| i.number == number)
            .cloned()
    }

    /// The comments on issue `number` of `repo`, oldest first.
    pub fn comments(&self, repo: &str, number: u64) -> Vec<IssueComment> {
        self.data()
            .comments
            .get(&(repo.to_lowercase(), number))
            .cloned()
            .unwrap_or_default()
    }

    /// The webhooks GitHub would have sent since the last call, for the writes made through the
    /// API (`issues` closed/reopened, `issue_comment` created), oldest first: `(event, payload)`.
    pub fn take_webhooks(&self) -> Vec<(String, Value)> {
        std::mem::take(&mut self.data().webhooks)
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

/// `/repos/{owner}/{repo}/hooks/{id}/deliveries[/{delivery}/attempts]`, the issue routes, `/user`.
enum Route {
    Issues(String),
    GetIssue(String, u64),
    App,
    Installation(String),
    AccessToken(u64),
    UpdateIssue(String, u64),
    ListComments(String, u64),
    CreateComment(String, u64),
    User,
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
        (&Method::GET, ["user"]) => Route::User,
        (&Method::GET, ["app"]) => Route::App,
        (&Method::GET, ["repos", owner, repo, "installation"]) => {
            Route::Installation(format!("{owner}/{repo}"))
        }
        (&Method::POST, ["app", "installations", id, "access_tokens"]) => {
            id.parse().map_or(Route::Unknown, Route::AccessToken)
        }
        (method, ["repos", owner, repo, "issues", number, rest @ ..]) => {
            let Ok(number) = number.parse::<u64>() else {
                return Route::Unknown;
            };
            let repo = format!("{owner}/{repo}");
            match (method, rest) {
                (&Method::GET, []) => Route::GetIssue(repo, number),
                (&Method::PATCH, []) => Route::UpdateIssue(repo, number),
                (&Method::GET, ["comments"]) => Route::ListComments(repo, number),
                (&Method::POST, ["comments"]) => Route::CreateComment(repo, number),
                _ => Route::Unknown,
            }
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
    body: axum::body::Bytes,
) -> Response {
    let mut data = shared.data.lock().unwrap_or_else(|p| p.into_inner());
    let response = answer(&shared, &mut data, &method, &uri, &headers, &body);
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
    body: &[u8],
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
    let route = route(method, uri.path());
    let is_app_route = matches!(
        route,
        Route::App | Route::Installation(_) | Route::AccessToken(_)
    );
    // Who is calling: the token's user, an installation of the App, or the App itself (JWT).
    let sender = match (token.as_deref(), shared.config.app_id) {
        (Some(t), _) if t == shared.config.token && !is_app_route => shared.config.login.clone(),
        (Some(t), Some(_)) if data.installation_tokens.iter().any(|i| i == t) && !is_app_route => {
            app::bot_login()
        }
        (Some(t), Some(app_id)) if is_app_route => match app::check_jwt(app_id, t) {
            Ok(()) => String::new(),
            Err(message) => return error(StatusCode::UNAUTHORIZED, message, "rest"),
        },
        _ => return error(StatusCode::UNAUTHORIZED, "Bad credentials", "rest"),
    };
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
        match route {
            Route::Issues(repo) => listing::list_issues(shared, data, &repo, uri),
            Route::List(repo, hook) => hooks::list(shared, data, &repo, hook, uri),
            Route::Redeliver(repo, hook, delivery) => {
                hooks::redeliver(shared, data, &repo, hook, delivery)
            }
            Route::GetIssue(repo, number) => issues::get_issue(shared, data, &repo, number),
            Route::UpdateIssue(repo, number) => {
                issues::update_issue(shared, data, &repo, number, body, &sender)
            }
            Route::App => app::get_app(shared.config.app_id.unwrap_or_default()),
            Route::Installation(repo) => {
                app::installation(data, shared.config.app_id.unwrap_or_default(), &repo)
            }
            Route::AccessToken(id) => app::access_token(data, id),
            Route::ListComments(repo, number) => {
                issues::list_comments(shared, data, &repo, number, uri)
            }
            Route::CreateComment(repo, number) => {
                issues::create_comment(shared, data, &repo, number, body, &sender)
            }
            Route::User => issues::json_answer(
                StatusCode::OK,
                &json!({"login": shared.config.login, "id": 41_000_000, "type": "User"}),
            ),
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
