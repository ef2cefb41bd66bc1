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
//!   transitions follow a small To Do → In Progress →
//!   Done workflow, and one that the issue's status does not offer gets 400; the transition to
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

use std::collections::{BTreeMap, HashMap};

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine;

use crate::serve::Server;
use serde_json::{Value, json};

mod remote_links;
mod webhooks;

pub use webhooks::{CrSpec, JiraUser, WebhookDelivery};

/// Jira's limit on a text field, in characters.
const TEXT_FIELD_LIMIT: usize = 32_767;

/// How the fake behaves.
#[derive(Debug, Clone)]
pub struct FakeConfig {
    /// Added to every answer.
    pub latency: Duration,
    /// Requests per second per endpoint; `None`: unlimited.
    pub rate_limit: Option<f64>,
    /// Bucket capacity per endpoint (requests that may arrive at once).
    pub burst: f64,
    /// How long after a write search sees it.
    pub search_lag: Duration,
    pub email: String,
    pub token: String,
    /// `(key, name)` of the projects that exist.
    pub projects: Vec<(String, String)>,
    pub issue_types: Vec<String>,
    pub components: Vec<String>,
    /// Custom fields of the site: `(id, name, custom type)` with types as Jira names them
    /// (`…customfieldtypes:multiuserpicker`, `…:userpicker`, `…:textarea`).
    pub custom_fields: Vec<(String, String, String)>,
}

impl Default for FakeConfig {
    fn default() -> Self {
        Self {
            latency: Duration::ZERO,
            rate_limit: None,
            burst: 10.0,
            search_lag: Duration::ZERO,
            email: "bot@example.test".into(),
            token: "fake-api-token".into(),
            projects: vec![
                ("DEMO".into(), "Demo".into()),
                ("OPS".into(), "Operations".into()),
                ("CR".into(), "Change Requests".into()),
            ],
            issue_types: vec![
                "Task".into(),
                "Bug".into(),
                "Story".into(),
                "Change Request".into(),
            ],
            components: vec!["Backend".into(), "Frontend".into()],
            custom_fields: [
                ("customfield_10102", "Approvers", "multiuserpicker"),
                ("customfield_10103", "PKI Signature", "textarea"),
                ("customfield_10201", "Change Manager", "userpicker"),
                ("customfield_10202", "Deployment Notes", "textfield"),
            ]
            .iter()
            .map(|(id, name, kind)| {
                (
                    (*id).to_owned(),
                    (*name).to_owned(),
                    format!("com.atlassian.jira.plugin.system.customfieldtypes:{kind}"),
                )
            })
            .collect(),
        }
    }
}

/// `GET /rest/api/3/field`: the system fields the fake knows and the site's custom fields, each
/// with its `schema` as Jira describes it.
fn site_fields(config: &FakeConfig) -> Vec<Value> {
    let system = [
        (
            "summary",
            "Summary",
            json!({"type": "string", "system": "summary"}),
        ),
        (
            "description",
            "Description",
            json!({"type": "string", "system": "description"}),
        ),
        (
            "status",
            "Status",
            json!({"type": "status", "system": "status"}),
        ),
        (
            "assignee",
            "Assignee",
            json!({"type": "user", "system": "assignee"}),
        ),
        (
            "labels",
            "Labels",
            json!({"type": "array", "items": "string", "system": "labels"}),
        ),
    ];
    let mut fields: Vec<Value> = system
        .into_iter()
        .map(|(id, name, schema)| {
            json!({"id": id, "key": id, "name": name, "custom": false, "orderable": true,
                   "navigable": true, "searchable": true, "clauseNames": [id], "schema": schema})
        })
        .collect();
    for (id, name, custom) in &config.custom_fields {
        let number = id.trim_start_matches("customfield_");
        let schema = match custom.rsplit(':').next() {
            Some("multiuserpicker") => json!({"type": "array", "items": "user", "custom": custom}),
            Some("userpicker") => json!({"type": "user", "custom": custom}),
            _ => json!({"type": "string", "custom": custom}),
        };
        let mut schema = schema;
        schema["customId"] = json!(number.parse::<u64>().unwrap_or_default());
        fields.push(
            json!({"id": id, "key": id, "name": name, "custom": true, "orderable": true,
                           "navigable": true, "searchable": true,
                           "clauseNames": [format!("cf[{number}]"), name], "schema": schema}),
        );
    }
    fields
}

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

#[derive(Debug, Clone)]
enum Scripted {
    Fail {
        status: u16,
        retry_after: Option<u64>,
    },
    /// Process the request, then wait this long before answering.
    Stall(Duration),
}

#[derive(Debug)]
struct Script {
    method: Method,
    path_prefix: String,
    what: Scripted,
    remaining: u32,
}

struct Bucket {
    tokens: f64,
    updated: Instant,
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

    /// Changes the rate limit from now on.
    pub fn set_rate_limit(&self, rate: Option<f64>, burst: f64) {
        let mut config = self.config();
        config.rate_limit = rate;
        config.burst = burst;
    }

    /// The next `times` requests whose method is `method` and whose path starts with
    /// `path_prefix` get `status` (with `Retry-After` when given) and have no effect.
    pub fn fail_next(
        &self,
        method: Method,
        path_prefix: &str,
        status: u16,
        retry_after: Option<u64>,
        times: u32,
    ) {
        self.data().scripts.push(Script {
            method,
            path_prefix: path_prefix.to_owned(),
            what: Scripted::Fail {
                status,
                retry_after,
            },
            remaining: times,
        });
    }

    /// Ends every scripted failure still pending (the outage is over).
    pub fn clear_failures(&self) {
        self.data()
            .scripts
            .retain(|s| !matches!(s.what, Scripted::Fail { .. }));
    }

    /// The next matching request takes effect, then its answer is held back for `hold` (a window
    /// in which a test can kill the client between "Jira did it" and "the client knows").
    pub fn stall_next(&self, method: Method, path_prefix: &str, hold: Duration) {
        self.data().scripts.push(Script {
            method,
            path_prefix: path_prefix.to_owned(),
            what: Scripted::Stall(hold),
            remaining: 1,
        });
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

    /// The most requests to one endpoint that were *accepted* (not 429) within any window of
    /// `window`, over all endpoints: what "never exceeded the limit" is checked against.
    pub fn max_accepted_in_window(&self, window: Duration) -> usize {
        let log = self.request_log();
        let mut by_endpoint: HashMap<&'static str, Vec<Instant>> = HashMap::new();
        for r in log.iter().filter(|r| r.status != 429) {
            by_endpoint.entry(r.endpoint).or_default().push(r.at);
        }
        let mut best = 0;
        for times in by_endpoint.values_mut() {
            times.sort();
            let mut start = 0;
            for end in 0..times.len() {
                while times[end].duration_since(times[start]) >= window {
                    start += 1;
                }
                best = best.max(end - start + 1);
            }
        }
        best
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

/// Takes a token from the endpoint's bucket, or answers 429.
fn rate_limit(
    data: &mut Data,
    config: &FakeConfig,
    endpoint: &'static str,
    now: Instant,
) -> Option<Response> {
    let rate = config.rate_limit?;
    let bucket = data.buckets.entry(endpoint).or_insert(Bucket {
        tokens: config.burst,
        updated: now,
    });
    let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
    bucket.tokens = (bucket.tokens + elapsed * rate).min(config.burst);
    bucket.updated = now;
    if bucket.tokens >= 1.0 {
        bucket.tokens -= 1.0;
        return None;
    }
    let reset = chrono::Utc::now() + chrono::Duration::seconds(1);
    let mut response = jira_error(
        StatusCode::TOO_MANY_REQUESTS,
        &["Rate limit exceeded."],
        json!({}),
    );
    let headers = response.headers_mut();
    headers.insert("retry-after", HeaderValue::from_static("1"));
    headers.insert("x-ratelimit-limit", HeaderValue::from(rate.round() as u64));
    headers.insert("x-ratelimit-remaining", HeaderValue::from_static("0"));
    if let Ok(reset) = HeaderValue::from_str(&reset.to_rfc3339()) {
        headers.insert("x-ratelimit-reset", reset);
    }
    headers.insert(
        "ratelimit-reason",
        HeaderValue::from_static("jira-burst-based"),
    );
    Some(response)
}

fn near_limit(data: &Data, config: &FakeConfig, endpoint: &'static str) -> bool {
    config.rate_limit.is_some()
        && data
            .buckets
            .get(endpoint)
            .is_some_and(|b| b.tokens < 0.2 * config.burst)
}

fn take_script(data: &mut Data, method: &Method, path: &str) -> Option<Scripted> {
    let index = data
        .scripts
        .iter()
        .position(|s| s.method == method && path.starts_with(&s.path_prefix))?;
    let script = &mut data.scripts[index];
    let what = script.what.clone();
    script.remaining = script.remaining.saturating_sub(1);
    if script.remaining == 0 {
        data.scripts.remove(index);
    }
    Some(what)
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

/// Field checks shared by create and edit; `creating` requires the create-only fields.
fn check_fields(fields: &Value, config: &FakeConfig, creating: bool) -> Result<(), Value> {
    let mut errors = serde_json::Map::new();
    if creating {
        let project = fields["project"]["key"].as_str().unwrap_or_default();
        if !config.projects.iter().any(|(k, _)| k == project) {
            errors.insert("project".into(), json!("valid project is required"));
        }
        let issue_type = fields["issuetype"]["name"].as_str().unwrap_or_default();
        if !config.issue_types.iter().any(|t| t == issue_type) {
            errors.insert("issuetype".into(), json!("valid issue type is required"));
        }
    }
    if creating || fields.get("summary").is_some() {
        match fields["summary"].as_str() {
            None | Some("") => {
                errors.insert(
                    "summary".into(),
                    json!("You must specify a summary of the issue."),
                );
            }
            Some(s) if s.chars().count() > 255 => {
                errors.insert(
                    "summary".into(),
                    json!("Summary must be less than 255 characters."),
                );
            }
            Some(s) if s.contains('\n') || s.contains('\r') => {
                errors.insert(
                    "summary".into(),
                    json!("The summary is invalid because it contains newline characters."),
                );
            }
            Some(_) => {}
        }
    }
    if let Some(description) = fields.get("description").filter(|d| !d.is_null()) {
        if let Err(e) = hookbridge_worker::jira::adf::validate(description) {
            errors.insert("description".into(), json!(e));
        } else if hookbridge_worker::jira::adf::text_length(description) > TEXT_FIELD_LIMIT {
            errors.insert(
                "description".into(),
                json!("The entered text is too long. It exceeds the allowed limit of 32,767 characters."),
            );
        }
    }
    if let Some(labels) = fields.get("labels") {
        match labels.as_array() {
            None => {
                errors.insert("labels".into(), json!("labels must be an array of strings"));
            }
            Some(labels) => {
                if let Some(e) = labels.iter().find_map(label_error) {
                    errors.insert("labels".into(), json!(e));
                }
            }
        }
    }
    if let Some(components) = fields.get("components").and_then(Value::as_array) {
        for c in components {
            let name = c["name"].as_str().unwrap_or_default();
            if !config.components.iter().any(|k| k == name) {
                errors.insert(
                    "components".into(),
                    json!(format!("Component name '{name}' is not valid")),
                );
            }
        }
    }
    if let Some(priority) = fields.get("priority") {
        let name = priority["name"].as_str().unwrap_or_default();
        if !["Highest", "High", "Medium", "Low", "Lowest"].contains(&name) {
            errors.insert(
                "priority".into(),
                json!(format!("The priority selected is invalid.")),
            );
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Value::Object(errors))
    }
}

/// What Jira says about one label value, if it refuses it.
fn label_error(label: &Value) -> Option<String> {
    match label.as_str() {
        Some(l) if l.is_empty() || l.chars().count() > 255 => {
            Some(format!("The label '{l}' is invalid."))
        }
        Some(l) if l.chars().any(char::is_whitespace) => {
            Some(format!("The label '{l}' contains spaces which is invalid."))
        }
        Some(_) => None,
        None => Some("labels must be strings".into()),
    }
}

/// The `update.labels` operations of an edit (`[{"add": l}, {"remove": l}, {"set": [..]}]`),
/// checked as Jira checks them.
fn label_operations(update: &Value) -> Result<Vec<(&str, &Value)>, String> {
    let Some(ops) = update.as_array() else {
        return Err("labels operations must be an array".into());
    };
    let mut out = Vec::new();
    for op in ops {
        let Some((verb, value)) = op
            .as_object()
            .filter(|o| o.len() == 1)
            .and_then(|o| o.iter().next())
        else {
            return Err("each labels operation is an object with one verb".into());
        };
        match verb.as_str() {
            "add" | "remove" => {
                if let Some(e) = label_error(value) {
                    return Err(e);
                }
            }
            "set" => {
                let Some(labels) = value.as_array() else {
                    return Err("set takes an array of labels".into());
                };
                if let Some(e) = labels.iter().find_map(label_error) {
                    return Err(e);
                }
            }
            other => return Err(format!("Operation '{other}' is not supported for labels.")),
        }
        out.push((verb.as_str(), value));
    }
    Ok(out)
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect()
}

fn create_issue(data: &mut Data, config: &FakeConfig, base: &str, request: &Value) -> Response {
    let fields = &request["fields"];
    if !fields.is_object() {
        return jira_error(StatusCode::BAD_REQUEST, &["fields are required"], json!({}));
    }
    if let Err(errors) = check_fields(fields, config, true) {
        return jira_error(StatusCode::BAD_REQUEST, &[], errors);
    }
    let project = fields["project"]["key"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let number = data.next_number.entry(project.clone()).or_insert(0);
    *number += 1;
    let key = format!("{project}-{number}");
    data.next_id += 1;
    let id = 10_000 + data.next_id;
    let labels = strings(&fields["labels"]);
    let now = Instant::now();
    data.issues.insert(
        key.clone(),
        FakeIssue {
            id,
            key: key.clone(),
            project,
            issue_type: fields["issuetype"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            summary: fields["summary"].as_str().unwrap_or_default().to_owned(),
            description: fields["description"].clone(),
            labels: labels.clone(),
            components: fields["components"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| c["name"].as_str().map(str::to_owned))
                .collect(),
            priority: fields["priority"]["name"].as_str().map(str::to_owned),
            status: "To Do".into(),
            resolution: None,
            assignee: None,
            remote_links: Vec::new(),
            comments: Vec::new(),
            custom_fields: BTreeMap::new(),
            updated: data.clock.tick(),
            created_at: now,
            search_history: vec![(now + config.search_lag, labels)],
        },
    );
    json_answer(
        StatusCode::CREATED,
        json!({"id": id.to_string(), "key": key, "self": format!("{base}/rest/api/3/issue/{id}")}),
    )
}

fn edit_issue(data: &mut Data, config: &FakeConfig, key: &str, request: &Value) -> Response {
    let fields = &request["fields"];
    if let Err(errors) = check_fields(fields, config, false) {
        return jira_error(StatusCode::BAD_REQUEST, &[], errors);
    }
    let label_ops = match request.pointer("/update/labels") {
        None => Vec::new(),
        Some(_) if fields.get("labels").is_some() => {
            return jira_error(
                StatusCode::BAD_REQUEST,
                &[],
                json!({"labels": "Field 'labels' cannot be set and updated in the same request."}),
            );
        }
        Some(update) => match label_operations(update) {
            Ok(ops) => ops,
            Err(e) => return jira_error(StatusCode::BAD_REQUEST, &[], json!({"labels": e})),
        },
    };
    let Some(issue) = data.issues.get_mut(key) else {
        return not_found();
    };
    if let Some(summary) = fields["summary"].as_str() {
        issue.summary = summary.to_owned();
    }
    if fields.get("description").is_some() {
        issue.description = fields["description"].clone();
    }
    let mut labels_changed = false;
    if fields.get("labels").is_some() {
        issue.labels = strings(&fields["labels"]);
        labels_changed = true;
    }
    for (verb, value) in label_ops {
        let label = value.as_str().unwrap_or_default().to_owned();
        match verb {
            "add" if !issue.labels.contains(&label) => issue.labels.push(label),
            "remove" => issue.labels.retain(|l| *l != label),
            "set" => issue.labels = strings(value),
            _ => {}
        }
        labels_changed = true;
    }
    if labels_changed {
        issue
            .search_history
            .push((Instant::now() + config.search_lag, issue.labels.clone()));
    }
    StatusCode::NO_CONTENT.into_response()
}

/// `GET /rest/api/3/issue/{key}`: only the fields asked for with `fields=` (all without it, or
/// with `*all`), as Jira answers; custom fields that are not set are `null`.
fn issue_json(issue: &FakeIssue, base: &str, wanted: Option<&str>) -> Value {
    let mut fields = serde_json::Map::new();
    fields.insert("summary".into(), json!(issue.summary));
    fields.insert("description".into(), issue.description.clone());
    fields.insert("labels".into(), json!(issue.labels));
    fields.insert(
        "status".into(),
        json!({"name": issue.status, "id": webhooks::status_id(&issue.status)}),
    );
    fields.insert("issuetype".into(), json!({"name": issue.issue_type}));
    fields.insert(
        "assignee".into(),
        issue
            .assignee
            .as_ref()
            .map_or(Value::Null, |id| json!({"accountId": id})),
    );
    fields.insert(
        "resolution".into(),
        issue
            .resolution
            .as_ref()
            .map_or(Value::Null, |name| json!({"name": name})),
    );
    fields.insert("project".into(), json!({"key": issue.project}));
    fields.insert("updated".into(), json!(webhooks::jira_time(issue.updated)));
    for (id, value) in &issue.custom_fields {
        fields.insert(id.clone(), value.clone());
    }
    if let Some(wanted) = wanted.filter(|w| !w.split(',').any(|f| f.trim() == "*all")) {
        let wanted: Vec<&str> = wanted.split(',').map(str::trim).collect();
        fields.retain(|name, _| wanted.contains(&name.as_str()));
        for name in wanted.iter().filter(|n| n.starts_with("customfield_")) {
            fields.entry((*name).to_owned()).or_insert(Value::Null);
        }
    }
    json!({
        "id": issue.id.to_string(),
        "key": issue.key,
        "self": format!("{base}/rest/api/3/issue/{}", issue.id),
        "fields": fields,
    })
}

fn add_comment(data: &mut Data, base: &str, key: &str, request: &Value) -> Response {
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
fn comment_id(data: &Data, key: &str, i: usize) -> u64 {
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
fn edit_comment(data: &mut Data, base: &str, key: &str, id: &str, request: &Value) -> Response {
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
fn delete_comment(data: &mut Data, key: &str, id: &str) -> Response {
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

fn list_comments(data: &Data, key: &str, query: &HashMap<String, String>) -> Response {
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

const WORKFLOW: &[(&str, &str)] = &[("11", "To Do"), ("21", "In Progress"), ("31", "Done")];

fn transitions_from(status: &str) -> Vec<Value> {
    WORKFLOW
        .iter()
        .filter(|(_, to)| *to != status)
        .map(|(id, to)| json!({"id": id, "name": to, "to": {"name": to}}))
        .collect()
}

fn transition(data: &mut Data, key: &str, request: &Value) -> Response {
    let id = request["transition"]["id"].as_str().unwrap_or_default();
    let Some(issue) = data.issues.get_mut(key) else {
        return not_found();
    };
    let Some((_, to)) = WORKFLOW
        .iter()
        .find(|(tid, to)| *tid == id && *to != issue.status)
    else {
        return jira_error(
            StatusCode::BAD_REQUEST,
            &[&format!(
                "Transition id '{id}' is not valid for this issue."
            )],
            json!({}),
        );
    };
    let resolution = match request["fields"].get("resolution") {
        None => None,
        Some(_) if *to != "Done" => {
            return jira_error(
                StatusCode::BAD_REQUEST,
                &[],
                json!({"resolution": "Field 'resolution' cannot be set. It is not on the appropriate screen, or unknown."}),
            );
        }
        Some(resolution) => match resolution["name"]
            .as_str()
            .and_then(|name| RESOLUTIONS.iter().find(|r| **r == name))
        {
            Some(name) => Some((*name).to_owned()),
            None => {
                return jira_error(
                    StatusCode::BAD_REQUEST,
                    &[],
                    json!({"resolution": "Could not find valid 'id' or 'name' in resolution object."}),
                );
            }
        },
    };
    if *to != "Done" {
        issue.resolution = None;
    } else if resolution.is_some() {
        issue.resolution = resolution;
    }
    issue.status = (*to).to_owned();
    StatusCode::NO_CONTENT.into_response()
}

/// The accounts of the fake site that can be assigned issues (the bot's own, from `/myself`,
/// among them).
pub const ACCOUNTS: &[&str] = &[
    "5b10ac8d82e05b22cc7d4ef5",
    "5b10a2844c20165700ede21g",
    "5b109f2e9729b51b54dc274d",
    "557058:f58131cb-b67d-43c7-b30d-6b58d40bd077",
];

/// `PUT /rest/api/3/issue/{key}/assignee`: `{"accountId": id}` assigns, `null` unassigns (204);
/// no `accountId` member, or an account the site does not have, is 400.
fn assign(data: &mut Data, key: &str, request: &Value) -> Response {
    let Some(account) = request.get("accountId") else {
        return jira_error(
            StatusCode::BAD_REQUEST,
            &[],
            json!({"assignee": "accountId is required to assign an issue."}),
        );
    };
    let assignee = match account {
        Value::Null => None,
        Value::String(id) if ACCOUNTS.contains(&id.as_str()) => Some(id.clone()),
        other => {
            let shown = other
                .as_str()
                .map_or_else(|| other.to_string(), str::to_owned);
            return jira_error(
                StatusCode::BAD_REQUEST,
                &[],
                json!({"assignee": format!("User '{shown}' cannot be assigned issues.")}),
            );
        }
    };
    let updated = data.clock.tick();
    let Some(issue) = data.issues.get_mut(key) else {
        return not_found();
    };
    issue.assignee = assignee;
    issue.updated = updated;
    StatusCode::NO_CONTENT.into_response()
}

/// The resolutions of the fake site: Jira Cloud's defaults.
pub const RESOLUTIONS: &[&str] = &["Done", "Won't Do", "Duplicate", "Cannot Reproduce"];

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

fn search(data: &Data, config: &FakeConfig, request: &Value) -> Response {
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
