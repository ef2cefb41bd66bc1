//! A Jira Cloud fake: an HTTP server inside the test suite that answers like Jira Cloud REST v3
//! does, so the worker is tested against Jira's rules rather than against a mock that accepts
//! anything.
//!
//! What it enforces, as Jira does:
//! - Basic auth on every route (401 otherwise);
//! - issue fields: known project and issue type, a summary of 1–255 characters without newline,
//!   labels without spaces, known components and priorities, and an Atlassian Document for the
//!   description and comment bodies (a plain string gets Jira's "Operation value must be an
//!   Atlassian Document" 400), at most 32,767 characters of text;
//! - the old search path `/rest/api/3/search` answers 410 Gone; `/rest/api/3/search/jql` pages with
//!   `nextPageToken`/`isLast` and no `total`, and is **eventually consistent**: an issue (and a label
//!   change) becomes visible to search only `search_lag` after the write;
//! - remote links are upserted by `globalId` and checked as Jira checks them (`remote_links.rs`);
//!   transitions follow a small To Do → In Progress → Done workflow, and one that the issue's status does not offer gets 400; the transition to
//!   Done may set `fields.resolution` by name (one of [`RESOLUTIONS`], Jira Cloud's defaults;
//!   another name, or a resolution on another transition, gets 400 with `errors.resolution`);
//! - **rate limits per endpoint** (Jira's burst limits are per endpoint): a token bucket of
//!   `rate_limit` requests per second with `burst` capacity per endpoint; over it, 429 with
//!   `Retry-After`, `X-RateLimit-*` and `RateLimit-Reason`; `X-RateLimit-NearLimit: true` once less
//!   than 20 % of a bucket is left.
//!
//! Every answer waits `latency` first (without holding any lock, so concurrent requests overlap as
//! on a real network). Tests script failures with [`JiraFake::fail_next`] and crash windows with
//! [`JiraFake::stall_next`], and inspect what Jira would hold with [`JiraFake::issues`] and the
//! request log.
//!
//! This file holds the shared state, the public API and the one handler, which checks auth, rate
//! limits (`rate_limits.rs`) and scripted failures (`scripted_failures.rs`; both add their part of
//! the API), then routes: the site and its configuration are in `site.rs`, issues in `issues.rs`
//! (their fields checked by `fields.rs`), comments in `comments.rs`, search in `search.rs`, remote
//! links in `remote_links.rs`, and the webhooks of changes made in Jira's UI in `webhooks.rs`.

use std::collections::{BTreeMap, HashMap};

use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine;

use crate::serve::Server;
use serde_json::{Value, json};

mod comments;
mod fields;
mod issues;
mod rate_limits;
mod remote_links;
mod scripted_failures;
mod search;
mod site;
mod webhooks;

use comments::{add_comment, delete_comment, edit_comment, list_comments};
use issues::{assign, create_issue, edit_issue, issue_json, transition, transitions_from};
use rate_limits::{Bucket, near_limit, rate_limit};
use scripted_failures::{Script, Scripted, take_script};
use search::search;
use site::site_fields;

pub use site::{ACCOUNTS, FakeConfig, RESOLUTIONS};
pub use webhooks::{CrSpec, JiraUser, WebhookDelivery};

/// An issue as the fake holds it.
#[derive(Debug, Clone)]
pub struct FakeIssue {
    pub id: u64,
    pub key: String,
    pub project: String,
    pub issue_type: String,
    pub summary: String,
    pub description: Value,
    pub labels: Vec<String>,
    pub components: Vec<String>,
    pub priority: Option<String>,
    pub status: String,
    /// The resolution's name (`fields.resolution`), set by a transition that sets one; a
    /// transition out of Done clears it, as Jira's default workflows do.
    pub resolution: Option<String>,
    /// The assignee's accountId (one of [`ACCOUNTS`]).
    pub assignee: Option<String>,
    /// `(globalId, url, title)`.
    pub remote_links: Vec<(String, String, String)>,
    /// Comment bodies (ADF), oldest first.
    pub comments: Vec<Value>,
    /// Custom fields by id (`customfield_10102`), as REST v3 shows them.
    pub custom_fields: BTreeMap<String, Value>,
    /// When the issue last changed (Jira's `fields.updated`).
    pub updated: chrono::DateTime<chrono::Utc>,
    pub created_at: Instant,
    /// What search sees: the labels as of each write, with the time it becomes searchable.
    search_history: Vec<(Instant, Vec<String>)>,
}

/// One request the fake answered.
#[derive(Debug, Clone)]
pub struct LoggedRequest {
    pub method: String,
    pub path: String,
    pub endpoint: &'static str,
    pub status: u16,
    /// When it arrived.
    pub at: Instant,
}

#[derive(Default)]
struct Data {
    /// Jira's clock: strictly increasing milliseconds, so no two events share a `timestamp`.
    clock: webhooks::Clock,
    issues: BTreeMap<String, FakeIssue>,
    next_id: u64,
    next_number: HashMap<String, u64>,
    next_comment_id: u64,
    /// Each issue's comment ids, in the order of its `comments`.
    comment_ids: HashMap<String, Vec<u64>>,
    next_link_id: u64,
    /// Each issue's remote links as they were sent, in the order of its `remote_links`.
    remote_link_bodies: HashMap<String, Vec<Value>>,
    log: Vec<LoggedRequest>,
    scripts: Vec<Script>,
    buckets: HashMap<&'static str, Bucket>,
}

struct Shared {
    config: Mutex<FakeConfig>,
    data: Mutex<Data>,
    base_url: String,
}

/// A running fake; the server stops when this is dropped.
pub struct JiraFake {
    shared: Arc<Shared>,
    server: Server,
}

/// An error answer in Jira's shape.
fn jira_error(status: StatusCode, messages: &[&str], errors: Value) -> Response {
    (
        status,
        [("content-type", "application/json")],
        json!({"errorMessages": messages, "errors": errors}).to_string(),
    )
        .into_response()
}

fn json_answer(status: StatusCode, body: Value) -> Response {
    (
        status,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// Which rate bucket a request counts against.
fn endpoint_of(method: &Method, segments: &[&str]) -> &'static str {
    match (method.as_str(), segments) {
        ("POST", ["issue"]) => "issue.create",
        ("PUT", ["issue", _]) => "issue.edit",
        ("GET", ["issue", _]) => "issue.get",
        ("POST", ["issue", _, "comment"]) => "issue.comment",
        ("GET", ["issue", _, "comment"]) => "issue.comments",
        ("PUT", ["issue", _, "comment", _]) => "issue.comment.edit",
        ("DELETE", ["issue", _, "comment", _]) => "issue.comment.delete",
        ("GET", ["issue", _, "transitions"]) => "issue.transitions",
        ("POST", ["issue", _, "transitions"]) => "issue.transition",
        ("PUT", ["issue", _, "assignee"]) => "issue.assignee",
        (_, ["issue", _, "remotelink"]) => "issue.remotelink",
        (_, ["search", ..]) => "search",
        (_, ["project", ..]) => "project",
        (_, ["field"]) => "field",
        (_, ["issue", "createmeta", ..]) => "createmeta",
        _ => "other",
    }
}

impl JiraFake {
    /// Starts the fake on a free port of 127.0.0.1, serving on the current tokio runtime (from a
    /// `#[tokio::test]`, or inside `block_on` of a runtime the caller keeps alive).
    ///
    /// # Panics
    /// When no port can be bound.
    pub async fn start(config: FakeConfig) -> Self {
        let (listener, addr) = crate::serve::bind("Jira fake").await;
        let shared = Arc::new(Shared {
            config: Mutex::new(config),
            data: Mutex::new(Data::default()),
            base_url: format!("http://{addr}"),
        });
        let app = Router::new().fallback(handle).with_state(shared.clone());
        Self {
            shared,
            server: Server::start(listener, app),
        }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.server.addr())
    }

    /// What the worker needs to talk to this fake, paced at `rate_per_sec` per endpoint.
    ///
    /// # Panics
    /// Never: the fake's URL is always valid.
    pub fn settings(&self, rate_per_sec: f64) -> hookbridge_worker::settings::JiraSettings {
        hookbridge_worker::settings::JiraSettings {
            base_url: url::Url::parse(&self.base_url()).expect("the fake's URL"),
            email: self.email(),
            api_token: secrecy::SecretString::from(self.token()),
            rate_per_sec,
        }
    }

    pub fn email(&self) -> String {
        self.config().email.clone()
    }

    pub fn token(&self) -> String {
        self.config().token.clone()
    }

    /// From now on only `token` is accepted (an administrator revoked or rotated the old one).
    pub fn set_token(&self, token: &str) {
        self.config().token = token.to_owned();
    }

    fn config(&self) -> std::sync::MutexGuard<'_, FakeConfig> {
        self.shared.config.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn data(&self) -> std::sync::MutexGuard<'_, Data> {
        self.shared.data.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every issue, in key order.
    pub fn issues(&self) -> Vec<FakeIssue> {
        self.data().issues.values().cloned().collect()
    }

    /// A person adds `label` to an issue in Jira's UI.
    ///
    /// # Panics
    /// When there is no such issue.
    pub fn label_by_hand(&self, key: &str, label: &str) {
        let mut data = self.data();
        let issue = data.issues.get_mut(key).expect("no such issue");
        issue.labels.push(label.to_owned());
    }

    pub fn issue(&self, key: &str) -> Option<FakeIssue> {
        self.data().issues.get(key).cloned()
    }

    pub fn count_issues(&self) -> usize {
        self.data().issues.len()
    }

    pub fn request_log(&self) -> Vec<LoggedRequest> {
        self.data().log.clone()
    }

    /// Answers with this status so far.
    pub fn count_status(&self, status: u16) -> usize {
        self.data()
            .log
            .iter()
            .filter(|r| r.status == status)
            .count()
    }
}

/// The one handler: auth, rate limit, scripted failures, then the route.
async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let arrived = Instant::now();
    let config = shared
        .config
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let path = uri.path().to_owned();
    let api_path = path.strip_prefix("/rest/api/3/").unwrap_or("");
    let segments: Vec<&str> = api_path.split('/').filter(|s| !s.is_empty()).collect();
    let endpoint = endpoint_of(&method, &segments);

    let (mut response, stall) = {
        let mut data = shared.data.lock().unwrap_or_else(|p| p.into_inner());
        let data = &mut *data;
        let mut stall = None;
        let mut response = if !authorised(&headers, &config) {
            jira_error(
                StatusCode::UNAUTHORIZED,
                &["You are not authenticated. Authentication required to perform this operation."],
                json!({}),
            )
        } else if let Some(limited) = rate_limit(data, &config, endpoint, arrived) {
            limited
        } else {
            let scripted = take_script(data, &method, &path);
            match scripted {
                Some(Scripted::Fail {
                    status,
                    retry_after,
                }) => {
                    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
                    let mut r =
                        jira_error(status, &["Scripted failure from the Jira fake"], json!({}));
                    if let Some(seconds) = retry_after {
                        r.headers_mut()
                            .insert("retry-after", HeaderValue::from(seconds));
                    }
                    r
                }
                other => {
                    if let Some(Scripted::Stall(hold)) = other {
                        stall = Some(hold);
                    }
                    route(
                        data,
                        &config,
                        &shared.base_url,
                        &method,
                        &segments,
                        &uri,
                        &body,
                    )
                }
            }
        };
        if near_limit(data, &config, endpoint) && response.status().is_success() {
            response
                .headers_mut()
                .insert("x-ratelimit-nearlimit", HeaderValue::from_static("true"));
        }
        data.log.push(LoggedRequest {
            method: method.to_string(),
            path: path.clone(),
            endpoint,
            status: response.status().as_u16(),
            at: arrived,
        });
        (response, stall)
    };
    tokio::time::sleep(config.latency + stall.unwrap_or_default()).await;
    response
        .headers_mut()
        .insert("x-fake", HeaderValue::from_static("jira"));
    response
}

fn authorised(headers: &HeaderMap, config: &FakeConfig) -> bool {
    let Some(value) = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
    else {
        return false;
    };
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(value.trim()) else {
        return false;
    };
    decoded == format!("{}:{}", config.email, config.token).as_bytes()
}

fn route(
    data: &mut Data,
    config: &FakeConfig,
    base: &str,
    method: &Method,
    segments: &[&str],
    uri: &Uri,
    body: &Bytes,
) -> Response {
    let query = parse_query(uri.query().unwrap_or(""));
    let json_body = || serde_json::from_slice::<Value>(body);
    match (method.as_str(), segments) {
        (_, ["search"]) => jira_error(
            StatusCode::GONE,
            &[
                "The requested API has been removed. Please migrate to the /rest/api/3/search/jql API. \
                 A full migration guideline is available at https://developer.atlassian.com/changelog/#CHANGE-2046",
            ],
            json!({}),
        ),
        ("GET" | "POST", ["search", "jql"]) => {
            let request = if method == Method::POST {
                match json_body() {
                    Ok(v) => v,
                    Err(_) => return malformed_body(),
                }
            } else {
                json!({
                    "jql": query.get("jql").cloned().unwrap_or_default(),
                    "maxResults": query.get("maxResults").and_then(|m| m.parse::<u64>().ok()),
                    "nextPageToken": query.get("nextPageToken"),
                })
            };
            search(data, config, &request)
        }
        // The user the credentials belong to (GET /rest/api/3/myself, Jira Cloud REST v3).
        ("GET", ["myself"]) => json_answer(
            StatusCode::OK,
            json!({
                "accountId": "5b10ac8d82e05b22cc7d4ef5",
                "accountType": "atlassian",
                "emailAddress": config.email,
                "displayName": "hookbridge bot",
                "active": true,
                "timeZone": "UTC",
            }),
        ),
        ("GET", ["field"]) => json_answer(StatusCode::OK, Value::Array(site_fields(config))),
        ("GET", ["project"]) => json_answer(
            StatusCode::OK,
            Value::Array(
                config
                    .projects
                    .iter()
                    .enumerate()
                    .map(|(i, (key, name))| json!({"id": (10000 + i).to_string(), "key": key, "name": name}))
                    .collect(),
            ),
        ),
        ("GET", ["issue", "createmeta", project, "issuetypes"]) => {
            if !config.projects.iter().any(|(k, _)| k == project) {
                return jira_error(
                    StatusCode::NOT_FOUND,
                    &[&format!("No project could be found with key '{project}'.")],
                    json!({}),
                );
            }
            let types: Vec<Value> = config
                .issue_types
                .iter()
                .enumerate()
                .map(|(i, name)| json!({"id": (10001 + i).to_string(), "name": name}))
                .collect();
            json_answer(
                StatusCode::OK,
                json!({"issueTypes": types, "maxResults": 50, "startAt": 0, "total": types.len()}),
            )
        }
        ("POST", ["issue"]) => match json_body() {
            Ok(request) => create_issue(data, config, base, &request),
            Err(_) => malformed_body(),
        },
        (_, ["issue", key, rest @ ..]) => {
            if !data.issues.contains_key(*key) {
                return jira_error(
                    StatusCode::NOT_FOUND,
                    &["Issue does not exist or you do not have permission to see it."],
                    json!({}),
                );
            }
            let key = (*key).to_owned();
            match (method.as_str(), rest) {
                ("GET", []) => json_answer(
                    StatusCode::OK,
                    issue_json(&data.issues[&key], base, query.get("fields").map(String::as_str)),
                ),
                ("PUT", []) => match json_body() {
                    Ok(request) => edit_issue(data, config, &key, &request),
                    Err(_) => malformed_body(),
                },
                ("POST", ["comment"]) => match json_body() {
                    Ok(request) => add_comment(data, base, &key, &request),
                    Err(_) => malformed_body(),
                },
                ("GET", ["comment"]) => list_comments(data, &key, &query),
                ("PUT", ["comment", id]) => match json_body() {
                    Ok(request) => edit_comment(data, base, &key, id, &request),
                    Err(_) => malformed_body(),
                },
                ("DELETE", ["comment", id]) => delete_comment(data, &key, id),
                ("GET", ["transitions"]) => json_answer(
                    StatusCode::OK,
                    json!({"transitions": transitions_from(&data.issues[&key].status)}),
                ),
                ("POST", ["transitions"]) => match json_body() {
                    Ok(request) => transition(data, &key, &request),
                    Err(_) => malformed_body(),
                },
                ("PUT", ["assignee"]) => match json_body() {
                    Ok(request) => assign(data, &key, &request),
                    Err(_) => malformed_body(),
                },
                ("POST", ["remotelink"]) => match json_body() {
                    Ok(request) => remote_links::upsert(data, base, &key, &request),
                    Err(_) => malformed_body(),
                },
                ("GET", ["remotelink"]) => remote_links::get(data, &key, query.get("globalId")),
                _ => not_found(),
            }
        }
        _ => not_found(),
    }
}

fn not_found() -> Response {
    jira_error(StatusCode::NOT_FOUND, &["Not found"], json!({}))
}

fn malformed_body() -> Response {
    jira_error(
        StatusCode::BAD_REQUEST,
        &["Unexpected character: the request body is not valid JSON."],
        json!({}),
    )
}

fn parse_query(query: &str) -> HashMap<String, String> {
    url::form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}
