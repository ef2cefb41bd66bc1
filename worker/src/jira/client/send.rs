//! One request's way out and back: the client paces it with the shared [`Limiter`], gives it
//! no more time than the lease of the lock it runs under allows, sends it with Basic auth,
//! classifies the answer into a [`JiraError`] and retries what is safe to retry (reads and
//! idempotent writes after server errors; anything Jira throttled or never received).

use std::time::Duration;

use rand::RngExt;
use reqwest::{Method, StatusCode};
use secrecy::ExposeSecret;
use serde_json::Value;
use url::Url;

use super::JiraClient;
use crate::jira::error::{JiraError, describe_error_body};
use crate::metrics::pipeline;

/// How long one request may take, answer included.
pub(super) const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
pub(super) const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Attempts per call, the first included.
const ATTEMPTS: u32 = 4;
/// Longest `Retry-After` waited for inside the client; longer ones go back to the caller (the
/// message is released with that delay instead of holding a task).
const MAX_INLINE_WAIT: Duration = Duration::from_secs(10);
/// Cap on any `Retry-After` we honour.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(600);
/// Waited after a 429/503 without `Retry-After`.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(5);
const BACKOFF_BASE: Duration = Duration::from_millis(250);
const BACKOFF_CAP: Duration = Duration::from_secs(8);

/// Least time a request is given: with less lease left on the lock it is sent under, it is not
/// sent at all.
const MIN_REQUEST_TIME: Duration = Duration::from_millis(500);
/// Kept between the end of a request's time and the end of its lock's lease, for the clocks and
/// the network on the way back.
const LEASE_MARGIN: Duration = Duration::from_millis(250);

/// Runs right before a request leaves — after its rate-limiter slot, each time it is sent — so
/// that what it records (a creation intent and its time) is as close to the real send as can be;
/// an `Err` keeps the request unsent.
pub type BeforeSend<'a> = dyn Fn() -> std::pin::Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>
    + Send
    + Sync
    + 'a;

/// Whether a request may be sent again after an outcome that leaves its effect unknown.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Idempotent {
    Yes,
    No,
}

/// One request, described for sending, retrying and error messages.
pub(super) struct Call<'a> {
    pub(super) op: &'static str,
    /// Which rate schedule it counts against (Jira limits per endpoint).
    pub(super) endpoint: &'static str,
    pub(super) method: Method,
    pub(super) path: &'a [&'a str],
    pub(super) query: &'a [(&'a str, String)],
    pub(super) body: Option<&'a Value>,
    pub(super) idempotent: Idempotent,
}

impl<'a> Call<'a> {
    /// A read: `GET`, no body, safe to send again.
    pub(super) fn get(
        op: &'static str,
        endpoint: &'static str,
        path: &'a [&'a str],
        query: &'a [(&'a str, String)],
    ) -> Self {
        Self {
            op,
            endpoint,
            method: Method::GET,
            path,
            query,
            body: None,
            idempotent: Idempotent::Yes,
        }
    }
}

impl JiraClient {
    pub(super) fn url(&self, call: &Call<'_>) -> Result<Url, JiraError> {
        let mut url = self.inner.base.clone();
        {
            let mut segments = url.path_segments_mut().map_err(|()| {
                JiraError::Config("JIRA_BASE_URL cannot be a base for paths".into())
            })?;
            segments.pop_if_empty();
            segments.extend(call.path);
        }
        if !call.query.is_empty() {
            url.query_pairs_mut()
                .extend_pairs(call.query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        Ok(url)
    }

    /// Sends `call` with pacing and the retries the module docs describe; returns the JSON body
    /// of a 2xx (`Null` when empty).
    pub(super) async fn call(&self, call: Call<'_>) -> Result<Value, JiraError> {
        self.call_with(call, None).await
    }

    /// [`JiraClient::call`] with `before_send` run right before each send. Work under a store lock
    /// ([`crate::store::lock::leased`]) never has a request outlive the lock's lease: after the
    /// rate-limiter wait, a request is sent only when enough lease is left, and it is given no
    /// more time than that.
    pub(super) async fn call_with(
        &self,
        call: Call<'_>,
        before_send: Option<&BeforeSend<'_>>,
    ) -> Result<Value, JiraError> {
        let url = self.url(&call)?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let last = attempt >= ATTEMPTS;
            self.inner.limiter.acquire(call.endpoint).await;
            let timeout = self.time_for(&call)?;
            if let Some(before_send) = before_send {
                before_send().await.map_err(|reason| JiraError::NotSent {
                    op: call.op,
                    reason,
                })?;
            }
            let started = std::time::Instant::now();
            let mut request = self
                .inner
                .http
                .request(call.method.clone(), url.clone())
                .timeout(timeout)
                .basic_auth(&self.inner.email, Some(self.inner.token.expose_secret()))
                .header("Accept", "application/json");
            if let Some(body) = call.body {
                request = request.json(body);
            }
            let outcome = request.send().await;
            let response = match outcome {
                Ok(response) => response,
                Err(e) => {
                    pipeline::jira_request(call.endpoint, None);
                    let connect = e.is_connect();
                    let message = transport_message(&e);
                    tracing::debug!(
                        op = call.op,
                        method = %call.method,
                        endpoint = call.endpoint,
                        attempt,
                        millis = started.elapsed().as_millis() as u64,
                        error = %message,
                        "Jira request failed"
                    );
                    let error = JiraError::Transport {
                        op: call.op,
                        message,
                        connect,
                    };
                    let may_retry = connect || call.idempotent == Idempotent::Yes;
                    if may_retry && !last {
                        tokio::time::sleep(backoff(attempt)).await;
                        continue;
                    }
                    if let JiraError::Transport {
                        connect: true,
                        message,
                        ..
                    } = &error
                    {
                        // Not one request's problem: no connection could be made at all.
                        let reason = format!("Jira cannot be reached: {message}");
                        self.inner.health.mark_down(&reason);
                        return Err(JiraError::Unavailable {
                            op: call.op,
                            reason,
                            credentials_refused: false,
                        });
                    }
                    return Err(error);
                }
            };
            let status = response.status();
            pipeline::jira_request(call.endpoint, Some(status.as_u16()));
            if status == StatusCode::UNAUTHORIZED {
                let body = response.text().await.unwrap_or_default();
                let reason = format!(
                    "Jira refused the credentials (401: {}); check JIRA_EMAIL and JIRA_API_TOKEN",
                    describe_error_body(&body)
                );
                self.inner.health.mark_down(&reason);
                return Err(JiraError::Unavailable {
                    op: call.op,
                    reason,
                    credentials_refused: true,
                });
            }
            // Any other answer proves Jira is there and takes these credentials.
            self.inner.health.mark_up();
            let near_limit = response
                .headers()
                .get("x-ratelimit-nearlimit")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.eq_ignore_ascii_case("true"));
            let retry_after = retry_after(response.headers());
            tracing::debug!(
                op = call.op,
                method = %call.method,
                endpoint = call.endpoint,
                attempt,
                status = status.as_u16(),
                millis = started.elapsed().as_millis() as u64,
                "Jira answered"
            );
            if status.is_success() {
                self.inner.limiter.answered(near_limit);
                let bytes = response.bytes().await.map_err(|e| JiraError::Protocol {
                    op: call.op,
                    message: transport_message(&e),
                })?;
                if bytes.is_empty() {
                    return Ok(Value::Null);
                }
                return serde_json::from_slice(&bytes).map_err(|e| JiraError::Protocol {
                    op: call.op,
                    message: format!("body is not JSON: {e}"),
                });
            }
            let body = response.text().await.unwrap_or_default();
            if status == StatusCode::TOO_MANY_REQUESTS
                || (status == StatusCode::SERVICE_UNAVAILABLE && retry_after.is_some())
            {
                let wait = retry_after.unwrap_or(DEFAULT_RETRY_AFTER);
                self.inner.limiter.throttled(call.endpoint, wait).await;
                if !last && wait <= MAX_INLINE_WAIT {
                    // The limiter holds every request back until `wait` has passed.
                    continue;
                }
                return Err(JiraError::Throttled {
                    op: call.op,
                    status: status.as_u16(),
                    retry_after: wait,
                });
            }
            if status.is_server_error() {
                let error = JiraError::Server {
                    op: call.op,
                    status: status.as_u16(),
                    message: describe_error_body(&body),
                };
                if call.idempotent == Idempotent::Yes && !last {
                    tokio::time::sleep(backoff(attempt)).await;
                    continue;
                }
                return Err(error);
            }
            return Err(JiraError::Rejected {
                op: call.op,
                status: status.as_u16(),
                message: describe_error_body(&body),
            });
        }
    }

    /// How long `call` may take now: the request timeout, cut to the lease left on the lock the
    /// work runs under (less a margin); [`JiraError::NotSent`] when that is too little.
    fn time_for(&self, call: &Call<'_>) -> Result<Duration, JiraError> {
        let Some(left) = crate::store::lock::remaining() else {
            return Ok(self.inner.request_timeout);
        };
        let usable = left.saturating_sub(LEASE_MARGIN);
        if usable < MIN_REQUEST_TIME {
            return Err(JiraError::NotSent {
                op: call.op,
                reason: format!(
                    "the lock it is sent under has {} ms of lease left",
                    left.as_millis()
                ),
            });
        }
        Ok(usable.min(self.inner.request_timeout))
    }
}

/// Full-jitter exponential backoff for attempt `n` (1-based).
fn backoff(attempt: u32) -> Duration {
    let ceiling = BACKOFF_BASE
        .saturating_mul(1 << attempt.min(10))
        .min(BACKOFF_CAP);
    ceiling.mul_f64(rand::rng().random_range(0.0..=1.0))
}

/// `Retry-After` in seconds (Jira sends seconds), capped.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(|s| Duration::from_secs_f64(s).min(MAX_RETRY_AFTER))
}

/// A transport error without the URL's query (which could hold data) and without any header.
fn transport_message(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else if e.is_body() || e.is_decode() {
        "broken answer body"
    } else {
        "request failed"
    };
    let host = e
        .url()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_default();
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(e);
    let mut detail = String::new();
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    if detail.is_empty() {
        format!("{kind} ({host})")
    } else {
        format!("{kind} ({host}): {detail}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::JiraSettings;
    use secrecy::SecretString;

    #[test]
    fn backoff_stays_under_its_cap() {
        for attempt in 1..20 {
            assert!(backoff(attempt) <= BACKOFF_CAP);
        }
    }

    #[test]
    fn retry_after_is_seconds_and_capped() {
        let mut headers = reqwest::header::HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert("retry-after", "3".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(3)));
        headers.insert("retry-after", "99999".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(MAX_RETRY_AFTER));
        headers.insert("retry-after", "soon".parse().unwrap());
        assert_eq!(retry_after(&headers), None);
    }

    #[test]
    fn urls_escape_keys_and_keep_a_base_path() {
        let client = JiraClient::new(&JiraSettings {
            base_url: Url::parse("http://127.0.0.1:9/jira").unwrap(),
            email: "bot@acme.test".into(),
            api_token: SecretString::from("t".to_owned()),
            rate_per_sec: 10.0,
        })
        .unwrap();
        let url = client
            .url(&Call::get(
                "x",
                "x",
                &["rest", "api", "3", "issue", "A B/../C"],
                &[("fields", "key,summary".into())],
            ))
            .unwrap();
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:9/jira/rest/api/3/issue/A%20B%2F..%2FC?fields=key%2Csummary"
        );
    }
}
