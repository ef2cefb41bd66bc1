//! hookbridge as a GitHub App: authenticating as the App (a JWT signed with its private key),
//! as one of its installations (short-lived installation tokens, cached), and the few REST calls a
//! custom deployment protection rule needs — answering GitHub's callback, and reading the commit
//! and pull requests a deployment is for.
//!
//! - [`auth`]: the App's key and JWTs ([`AppCredentials`]), the installation-token cache
//!   ([`InstallationTokens`]).
//! - [`client`]: [`GithubApp`], the REST client.
//!
//! Sources (GitHub Docs, REST API version 2022-11-28): "Authenticating as a GitHub App",
//! "Generating a JSON Web Token (JWT) for a GitHub App"
//! (<https://docs.github.com/en/apps/creating-github-apps/authenticating-with-a-github-app/generating-a-json-web-token-jwt-for-a-github-app>),
//! "Generating an installation access token for a GitHub App", "Creating custom deployment
//! protection rules", "REST API endpoints for workflow runs" — "Review custom deployment
//! protection rules for a workflow run", "REST API endpoints for commits" — "Get a commit" and
//! "List pull requests associated with a commit", "Rate limits for the REST API".
//!
//! No token, JWT or private key appears in a `Debug` output, a log line or an error: they are
//! [`secrecy::SecretString`]s, `Authorization` headers are marked sensitive, and error reasons
//! carry GitHub's `message` and a status, never a header.

pub mod auth;
pub mod client;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::StatusCode;
use reqwest::header::HeaderMap;

pub use auth::{AppCredentials, InstallationTokens};
pub use client::{GithubApp, PullRef, ReviewOutcome, ReviewState};

/// The API version every request asks for (`X-GitHub-Api-Version`).
pub const API_VERSION: &str = "2022-11-28";

/// Where GitHub's REST API lives, unless configured otherwise (GitHub Enterprise Server:
/// `https://HOSTNAME/api/v3/`).
pub const DEFAULT_API_URL: &str = "https://api.github.com/";

/// The `User-Agent` GitHub requires on every request.
pub const USER_AGENT: &str = concat!("hookbridge/", env!("CARGO_PKG_VERSION"));

/// Why a call to GitHub failed, in the terms a caller acts on: try again later, or not.
#[derive(Debug, thiserror::Error)]
pub enum GithubAppError {
    /// A 5xx, a network failure or a rate limit: the same call may succeed later, at the earliest
    /// after `retry_after` when GitHub said how long.
    #[error("GitHub is unavailable for now: {reason}")]
    Transient {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// GitHub refused the App: its JWT (wrong key or App ID), a token refused again after a
    /// refresh, or a permission the installation lacks. Retrying does not help.
    #[error("GitHub refused the App: {0}")]
    Refused(String),
    /// Anything else: an answer this client does not expect, or a request it will not send.
    #[error("GitHub call failed: {0}")]
    Other(String),
}

impl GithubAppError {
    /// Whether the same call may succeed later.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Transient { .. })
    }
}

/// Why a request to GitHub did not succeed: a status its caller reads itself (a 404 or 422 that
/// means something to it), or an error. Shared by the App's client and the Jira → GitHub client.
pub(crate) enum Failed {
    Status(StatusCode, String),
    Error(GithubAppError),
}

impl Failed {
    pub(crate) fn into_error(self) -> GithubAppError {
        match self {
            Self::Status(status, body) => {
                GithubAppError::Other(format!("{} {}", status.as_u16(), message(&body)))
            }
            Self::Error(error) => error,
        }
    }
}

/// GitHub's `message` from an error body, cut short (it names no secret, but may be long).
pub(crate) fn message(body: &str) -> String {
    let message = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_owned))
        .unwrap_or_default();
    message.chars().take(200).collect()
}

/// The answer to a failed call as a [`GithubAppError`], except a 401, which the caller handles
/// (refresh once, then [`GithubAppError::Refused`]).
///
/// Rate limits ("Rate limits for the REST API"): a 403 or 429 with `retry-after` (secondary
/// limit: wait that many seconds) or with `x-ratelimit-remaining: 0` (primary limit: wait until
/// `x-ratelimit-reset`, UTC epoch seconds) is transient; a 403 without either is a missing
/// permission or a suspended App.
pub(crate) fn classify(status: StatusCode, headers: &HeaderMap, body: &str) -> GithubAppError {
    let what = format!("{} {}", status.as_u16(), message(body));
    let what = what.trim_end().to_owned();
    if status.is_server_error() {
        return GithubAppError::Transient {
            reason: what,
            retry_after: retry_after(headers),
        };
    }
    if status == StatusCode::FORBIDDEN || status == StatusCode::TOO_MANY_REQUESTS {
        let exhausted = header(headers, "x-ratelimit-remaining").as_deref() == Some("0");
        let wait = retry_after(headers);
        if exhausted || wait.is_some() || status == StatusCode::TOO_MANY_REQUESTS {
            return GithubAppError::Transient {
                reason: format!("rate limited ({what})"),
                retry_after: wait,
            };
        }
        return GithubAppError::Refused(what);
    }
    if status == StatusCode::UNAUTHORIZED {
        return GithubAppError::Refused(what);
    }
    GithubAppError::Other(what)
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_owned())
}

/// How long GitHub asked to wait: `retry-after` seconds, else until `x-ratelimit-reset` when no
/// request is left (at least one second: the reset has no fraction).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    if let Some(seconds) = header(headers, "retry-after").and_then(|s| s.parse::<u64>().ok()) {
        return Some(Duration::from_secs(seconds));
    }
    if header(headers, "x-ratelimit-remaining").as_deref() != Some("0") {
        return None;
    }
    let reset = header(headers, "x-ratelimit-reset").and_then(|s| s.parse::<u64>().ok())?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    Some(Duration::from_secs(reset.saturating_sub(now).max(1)))
}

/// What GitHub answered to one request, whatever its status.
pub(crate) struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

/// Sends one REST request to GitHub as `token` (a JWT or an access token, as a sensitive bearer
/// header) with what GitHub's REST API asks of every caller — its JSON media type, the API
/// version, a `User-Agent` — and `body` as JSON when given. Every hookbridge call to GitHub goes
/// through here; what a status means is the caller's to decide.
///
/// # Errors
/// [`GithubAppError`] when the token cannot be a header or no answer came (transient).
pub(crate) async fn exchange(
    http: &reqwest::Client,
    token: &secrecy::SecretString,
    method: reqwest::Method,
    url: url::Url,
    body: Option<&serde_json::Value>,
) -> Result<Reply, GithubAppError> {
    use reqwest::header::{ACCEPT, AUTHORIZATION, USER_AGENT as USER_AGENT_HEADER};
    let mut request = http
        .request(method, url)
        .header(AUTHORIZATION, auth::bearer(token)?)
        .header(ACCEPT, "application/vnd.github+json")
        .header("x-github-api-version", API_VERSION)
        .header(USER_AGENT_HEADER, USER_AGENT);
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await.map_err(|e| network(&e))?;
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.text().await.map_err(|e| network(&e))?;
    Ok(Reply {
        status,
        headers,
        body,
    })
}

/// A network failure, without the URL (short; the caller knows what it called).
pub(crate) fn network(error: &reqwest::Error) -> GithubAppError {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    GithubAppError::Transient {
        reason: format!("network: {kind}"),
        retry_after: None,
    }
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).expect("value"));
        }
        map
    }

    #[test]
    fn rate_limits_are_transient_with_a_wait() {
        let secondary = classify(
            StatusCode::FORBIDDEN,
            &headers(&[("retry-after", "30")]),
            r#"{"message":"You have exceeded a secondary rate limit"}"#,
        );
        assert!(matches!(
            secondary,
            GithubAppError::Transient { retry_after: Some(d), .. } if d == Duration::from_secs(30)
        ));
        let reset = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock")
            .as_secs()
            + 120;
        let primary = classify(
            StatusCode::FORBIDDEN,
            &headers(&[
                ("x-ratelimit-remaining", "0"),
                ("x-ratelimit-reset", &reset.to_string()),
            ]),
            r#"{"message":"API rate limit exceeded"}"#,
        );
        assert!(matches!(
            primary,
            GithubAppError::Transient { retry_after: Some(d), .. }
                if d <= Duration::from_secs(120) && d >= Duration::from_secs(118)
        ));
    }

    #[test]
    fn a_forbidden_without_rate_limit_is_refused() {
        let error = classify(
            StatusCode::FORBIDDEN,
            &headers(&[("x-ratelimit-remaining", "4999")]),
            r#"{"message":"Resource not accessible by integration"}"#,
        );
        assert!(
            matches!(&error, GithubAppError::Refused(r) if r.contains("not accessible")),
            "{error:?}"
        );
    }

    #[test]
    fn server_errors_are_transient() {
        let error = classify(StatusCode::BAD_GATEWAY, &HeaderMap::new(), "<html>");
        assert!(error.is_transient());
    }
}
