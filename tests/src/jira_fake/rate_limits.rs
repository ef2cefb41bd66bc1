//! Jira Cloud's rate limits, per endpoint as its burst limits are: a token bucket of
//! `rate_limit` requests per second with `burst` capacity for each endpoint; over it, 429 with
//! `Retry-After`, `X-RateLimit-*` and `RateLimit-Reason`, and `X-RateLimit-NearLimit` once less
//! than 20 % of a bucket is left. Tests change the limit with [`JiraFake::set_rate_limit`] and
//! check the worker kept to it with [`JiraFake::max_accepted_in_window`].
//!
//! Separate because it is decided before any route, per endpoint rather than per issue.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::json;

use super::{Data, FakeConfig, JiraFake, jira_error};

pub(super) struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl JiraFake {
    /// Changes the rate limit from now on.
    pub fn set_rate_limit(&self, rate: Option<f64>, burst: f64) {
        let mut config = self.config();
        config.rate_limit = rate;
        config.burst = burst;
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

/// Takes a token from the endpoint's bucket, or answers 429.
pub(super) fn rate_limit(
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

pub(super) fn near_limit(data: &Data, config: &FakeConfig, endpoint: &'static str) -> bool {
    config.rate_limit.is_some()
        && data
            .buckets
            .get(endpoint)
            .is_some_and(|b| b.tokens < 0.2 * config.burst)
}
