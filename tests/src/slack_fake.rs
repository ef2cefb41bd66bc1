//! A Slack incoming-webhook fake: an HTTP server inside the test suite that answers like
//! `hooks.slack.com/services/…` does, so alerts are tested against Slack's rules.
//!
//! What it enforces, as Slack documents for incoming webhooks (api.slack.com, "Sending messages
//! using incoming webhooks"; "Changes to errors for incoming webhooks", 2016-05-17; Block Kit
//! reference for block limits):
//! - a JSON body, else `400 invalid_payload`; a message with neither `text` nor `blocks`, `400
//!   no_text`; blocks that break Block Kit's rules (more than 50, an unknown type, a section
//!   without text or with text over 3,000 characters, a text object that is neither `mrkdwn` nor
//!   `plain_text`), `400 invalid_blocks`;
//! - about one message per second per webhook with a short burst allowed: beyond it, `429` with
//!   `Retry-After` (seconds) and nothing posted;
//! - success is `200` with the body `ok` (`text/plain`).
//!
//! Tests script failures ([`SlackFake::fail_next`]: `500 rollup_error`, `403 action_prohibited`,
//! `404 channel_not_found`, `410 channel_is_archived`, …) and read what was posted
//! ([`SlackFake::messages`]).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use crate::serve::Server;

/// Block types Block Kit knows in messages.
const BLOCK_TYPES: &[&str] = &[
    "section",
    "divider",
    "header",
    "context",
    "actions",
    "image",
    "rich_text",
    "input",
    "file",
    "video",
];

/// How the fake limits.
#[derive(Debug, Clone)]
pub struct SlackConfig {
    /// Messages per second per webhook.
    pub rate: f64,
    /// Messages that may arrive at once.
    pub burst: f64,
}

impl Default for SlackConfig {
    fn default() -> Self {
        Self {
            rate: 1.0,
            burst: 3.0,
        }
    }
}

/// One request the fake answered.
#[derive(Debug, Clone)]
pub struct SlackRequest {
    pub status: u16,
    pub body: Value,
    pub at: Instant,
}

struct Scripted {
    status: u16,
    body: String,
    retry_after: Option<u64>,
    remaining: u32,
}

struct Data {
    tokens: f64,
    updated: Instant,
    log: Vec<SlackRequest>,
    scripts: Vec<Scripted>,
}

struct Shared {
    config: SlackConfig,
    data: Mutex<Data>,
}

/// A running fake; stops when dropped.
pub struct SlackFake {
    shared: Arc<Shared>,
    server: Server,
}

impl SlackFake {
    /// Starts the fake on a free port of 127.0.0.1.
    ///
    /// # Panics
    /// When no port can be bound.
    pub async fn start(config: SlackConfig) -> Self {
        let (listener, _) = crate::serve::bind("Slack fake").await;
        let shared = Arc::new(Shared {
            data: Mutex::new(Data {
                tokens: config.burst,
                updated: Instant::now(),
                log: Vec::new(),
                scripts: Vec::new(),
            }),
            config,
        });
        let app = Router::new().fallback(handle).with_state(shared.clone());
        Self {
            shared,
            server: Server::start(listener, app),
        }
    }

    /// The webhook URL, shaped like Slack's.
    pub fn url(&self) -> String {
        format!(
            "http://{}/services/T0000/B0000/s3cr3tW3bh00kT0k3n",
            self.server.addr()
        )
    }

    fn data(&self) -> std::sync::MutexGuard<'_, Data> {
        self.shared.data.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The next `times` messages get `status` with `body` (and `Retry-After` when given), and
    /// are not posted.
    pub fn fail_next(&self, status: u16, body: &str, retry_after: Option<u64>, times: u32) {
        self.data().scripts.push(Scripted {
            status,
            body: body.into(),
            retry_after,
            remaining: times,
        });
    }

    /// The messages Slack posted (answered 200), oldest first.
    pub fn messages(&self) -> Vec<Value> {
        self.data()
            .log
            .iter()
            .filter(|r| r.status == 200)
            .map(|r| r.body.clone())
            .collect()
    }

    /// Every request, with its answer.
    pub fn requests(&self) -> Vec<SlackRequest> {
        self.data().log.clone()
    }
}

fn answer(status: u16, body: &str) -> Response {
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        [("content-type", "text/plain")],
        body.to_owned(),
    )
        .into_response()
}

/// Why Block Kit refuses `message`, if it does.
fn block_problem(message: &Value) -> Option<&'static str> {
    let blocks = message.get("blocks")?;
    let Some(blocks) = blocks.as_array() else {
        return Some("invalid_blocks");
    };
    if blocks.len() > 50 {
        return Some("invalid_blocks");
    }
    for block in blocks {
        let kind = block.get("type").and_then(Value::as_str).unwrap_or("");
        if !BLOCK_TYPES.contains(&kind) {
            return Some("invalid_blocks");
        }
        if kind == "section" {
            let Some(text) = block.get("text") else {
                if block.get("fields").is_none() {
                    return Some("invalid_blocks");
                }
                continue;
            };
            let text_type = text.get("type").and_then(Value::as_str).unwrap_or("");
            let content = text.get("text").and_then(Value::as_str).unwrap_or("");
            if !matches!(text_type, "mrkdwn" | "plain_text")
                || content.is_empty()
                || content.chars().count() > 3000
            {
                return Some("invalid_blocks");
            }
        }
    }
    None
}

async fn handle(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let now = Instant::now();
    let parsed: Option<Value> = serde_json::from_slice(&body).ok().filter(Value::is_object);
    let mut data = shared.data.lock().unwrap_or_else(|p| p.into_inner());
    let log_body = parsed.clone().unwrap_or(Value::Null);
    let elapsed = now.duration_since(data.updated).as_secs_f64();
    data.tokens = (data.tokens + elapsed * shared.config.rate).min(shared.config.burst);
    data.updated = now;
    let json_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let (status, text, retry_after) =
        if let Some(i) = data.scripts.iter().position(|s| s.remaining > 0) {
            let script = &mut data.scripts[i];
            script.remaining -= 1;
            (script.status, script.body.clone(), script.retry_after)
        } else if data.tokens < 1.0 {
            let wait = ((1.0 - data.tokens) / shared.config.rate).ceil().max(1.0);
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            (429, "rate_limited".into(), Some(wait as u64))
        } else {
            match &parsed {
                None => (400, "invalid_payload".into(), None),
                Some(_) if !json_type => (400, "invalid_payload".into(), None),
                Some(m)
                    if m.get("text")
                        .and_then(Value::as_str)
                        .is_none_or(str::is_empty)
                        && m.get("blocks").is_none() =>
                {
                    (400, "no_text".into(), None)
                }
                Some(m) => match block_problem(m) {
                    Some(problem) => (400, problem.into(), None),
                    None => {
                        data.tokens -= 1.0;
                        (200, "ok".into(), None)
                    }
                },
            }
        };
    data.log.push(SlackRequest {
        status,
        body: log_body,
        at: now,
    });
    drop(data);
    let mut response = answer(status, &text);
    if let Some(seconds) = retry_after
        && let Ok(value) = seconds.to_string().parse()
    {
        response.headers_mut().insert("retry-after", value);
    }
    response
}

/// Waits up to `timeout` until `check` holds, polling.
///
/// # Panics
/// When it does not hold in time.
pub async fn wait_until(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
