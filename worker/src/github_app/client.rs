//! [`GithubApp`]: the REST calls a custom deployment protection rule makes, as an installation.
//!
//! "Creating custom deployment protection rules": GitHub sends the App a
//! `deployment_protection_rule` webhook whose `deployment_callback_url` is the "Review custom
//! deployment protection rules for a workflow run" endpoint of that run, `POST
//! /repos/{owner}/{repo}/actions/runs/{run_id}/deployment_protection_rule` with
//! `{"environment_name", "state": "approved"|"rejected", "comment"}`, answered `204`. The App
//! posts its decision there — but only when that URL is on the configured API's origin and has
//! that shape: an installation token is never sent anywhere else, whatever a payload says.
//!
//! What GitHub answers a decision on a deployment that is no longer waiting is not documented;
//! this client takes a `422` whose message says nothing is pending (or already decided) as
//! [`ReviewOutcome::AlreadyDecided`] (a guess, modelled on the `422 "No pending deployment
//! requests to approve or reject"` recalled — not verified — for the sibling endpoint "Review
//! pending deployments for a workflow run"), and a `404` as [`ReviewOutcome::Gone`] (an unknown
//! run, GitHub's usual answer for what it does not know).
//!
//! "Get a commit" (`GET /repos/{owner}/{repo}/commits/{ref}` → `commit.message`; `404`, or `422
//! "No commit found for SHA"`, for an unknown one) and "List pull requests associated with a
//! commit" (`GET /repos/{owner}/{repo}/commits/{commit_sha}/pulls` → `[{"number", "title",
//! "head": {"ref"}}]`).
//!
//! Every request sends `Accept: application/vnd.github+json`, `X-GitHub-Api-Version:
//! 2022-11-28` and a `User-Agent`. A `401` to an installation token makes the client forget it,
//! fetch a new one and try once more.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::Deserialize;
use url::Url;

use super::auth::{AppCredentials, InstallationTokens};
use super::{Failed, GithubAppError, Reply, classify, exchange, message};

/// How long one request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// Pull requests read for a commit (one page; a commit in more is not a case the rule handles).
const PULLS_PER_PAGE: u32 = 100;

/// A decision on a deployment waiting for this App's rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReviewState {
    Approved,
    Rejected,
}

impl ReviewState {
    /// GitHub's word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Approved => "approved",
            Self::Rejected => "rejected",
        }
    }
}

/// What became of a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReviewOutcome {
    /// GitHub recorded it (`204`).
    Recorded,
    /// The deployment was no longer waiting: decided already (by this App, a retry of the same
    /// message, or otherwise).
    AlreadyDecided,
    /// GitHub does not know the run (`404`): deleted, or never was.
    Gone,
}

/// A pull request a commit belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullRef {
    pub number: u64,
    pub title: String,
    /// The branch it merges from.
    pub head_ref: String,
}

#[derive(Deserialize)]
struct CommitAnswer {
    commit: CommitInner,
}

#[derive(Deserialize)]
struct CommitInner {
    message: String,
}

#[derive(Deserialize)]
struct PullAnswer {
    number: u64,
    title: String,
    head: HeadAnswer,
}

#[derive(Deserialize)]
struct HeadAnswer {
    #[serde(rename = "ref")]
    ref_name: String,
}

/// The App's REST client. `Debug` shows the API and the App ID, never a key or token.
pub struct GithubApp {
    http: reqwest::Client,
    api: Url,
    tokens: InstallationTokens,
}

impl fmt::Debug for GithubApp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GithubApp")
            .field("api", &self.api.as_str())
            .field("tokens", &self.tokens)
            .finish()
    }
}

/// A successful answer's body.
struct Answer {
    body: String,
}

impl GithubApp {
    /// A client for `credentials`' App on `api` ([`super::DEFAULT_API_URL`] for github.com; a
    /// missing final `/` is added, so GitHub Enterprise's `…/api/v3` works as given).
    ///
    /// # Errors
    /// [`GithubAppError::Other`] when `api` is not http(s) or the HTTP client cannot be built.
    pub fn new(credentials: AppCredentials, api: Url) -> Result<Self, GithubAppError> {
        let mut api = api;
        if !matches!(api.scheme(), "https" | "http") || api.cannot_be_a_base() {
            return Err(GithubAppError::Other(
                "the GitHub API URL must be http(s)".into(),
            ));
        }
        if !api.path().ends_with('/') {
            let path = format!("{}/", api.path());
            api.set_path(&path);
        }
        api.set_query(None);
        api.set_fragment(None);
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|_| GithubAppError::Other("building the HTTP client failed".into()))?;
        let tokens = InstallationTokens::new(http.clone(), api.clone(), Arc::new(credentials));
        Ok(Self { http, api, tokens })
    }

    /// Uses a cached installation token until `margin` before it expires (default 5 minutes).
    #[must_use]
    pub fn with_refresh_margin(mut self, margin: Duration) -> Self {
        self.tokens = self.tokens.with_refresh_margin(margin);
        self
    }

    /// The installation tokens (to forget one, or to read one for another client).
    pub fn tokens(&self) -> &InstallationTokens {
        &self.tokens
    }

    /// Answers a `deployment_protection_rule` callback: `state` for `environment_name`, with
    /// `comment`, posted to `callback_url`.
    ///
    /// # Errors
    /// [`GithubAppError::Other`] without sending anything when `callback_url` is not a review
    /// endpoint on the configured API (another host, scheme or port, or another path) or
    /// `environment_name` is empty; otherwise as GitHub answers.
    pub async fn review_deployment(
        &self,
        installation_id: u64,
        callback_url: &str,
        environment_name: &str,
        state: ReviewState,
        comment: &str,
    ) -> Result<ReviewOutcome, GithubAppError> {
        let url = self.callback(callback_url)?;
        if environment_name.trim().is_empty() {
            return Err(GithubAppError::Other(
                "no environment name to review".into(),
            ));
        }
        let body = serde_json::json!({
            "environment_name": environment_name,
            "state": state.as_str(),
            "comment": comment,
        });
        let answer = self
            .send(installation_id, Method::POST, url, Some(&body))
            .await;
        match answer {
            Ok(_) => Ok(ReviewOutcome::Recorded),
            Err(Failed::Status(StatusCode::NOT_FOUND, _)) => Ok(ReviewOutcome::Gone),
            Err(Failed::Status(StatusCode::UNPROCESSABLE_ENTITY, body)) => {
                let said = message(&body);
                let lower = said.to_lowercase();
                if lower.contains("pending") || lower.contains("already") {
                    Ok(ReviewOutcome::AlreadyDecided)
                } else {
                    Err(GithubAppError::Other(format!("422 {said}")))
                }
            }
            Err(failed) => Err(failed.into_error()),
        }
    }

    /// The message of commit `sha` in `owner_repo` (`owner/name`), or `None` when GitHub knows no
    /// such commit.
    ///
    /// # Errors
    /// [`GithubAppError::Other`] for a malformed `owner_repo` or `sha`; otherwise as GitHub
    /// answers.
    pub async fn commit_message(
        &self,
        installation_id: u64,
        owner_repo: &str,
        sha: &str,
    ) -> Result<Option<String>, GithubAppError> {
        let url = self.repo_url(owner_repo, &["commits", sha])?;
        match self.send(installation_id, Method::GET, url, None).await {
            Ok(answer) => serde_json::from_str::<CommitAnswer>(&answer.body)
                .map(|c| Some(c.commit.message))
                .map_err(|_| GithubAppError::Other("unexpected commit answer".into())),
            Err(Failed::Status(StatusCode::NOT_FOUND | StatusCode::UNPROCESSABLE_ENTITY, _)) => {
                Ok(None)
            }
            Err(failed) => Err(failed.into_error()),
        }
    }

    /// The pull requests commit `sha` of `owner_repo` belongs to (the first 100), none when GitHub
    /// knows no such commit.
    ///
    /// # Errors
    /// As [`commit_message`](Self::commit_message).
    pub async fn pulls_for_commit(
        &self,
        installation_id: u64,
        owner_repo: &str,
        sha: &str,
    ) -> Result<Vec<PullRef>, GithubAppError> {
        let mut url = self.repo_url(owner_repo, &["commits", sha, "pulls"])?;
        url.query_pairs_mut()
            .append_pair("per_page", &PULLS_PER_PAGE.to_string());
        match self.send(installation_id, Method::GET, url, None).await {
            Ok(answer) => serde_json::from_str::<Vec<PullAnswer>>(&answer.body)
                .map(|pulls| {
                    pulls
                        .into_iter()
                        .map(|p| PullRef {
                            number: p.number,
                            title: p.title,
                            head_ref: p.head.ref_name,
                        })
                        .collect()
                })
                .map_err(|_| GithubAppError::Other("unexpected pulls answer".into())),
            Err(Failed::Status(StatusCode::NOT_FOUND | StatusCode::UNPROCESSABLE_ENTITY, _)) => {
                Ok(Vec::new())
            }
            Err(failed) => Err(failed.into_error()),
        }
    }

    /// `callback_url` when it is `{api}repos/{owner}/{repo}/actions/runs/{run_id}/
    /// deployment_protection_rule` on the configured API's origin (scheme, host and port).
    fn callback(&self, callback_url: &str) -> Result<Url, GithubAppError> {
        let refuse = |why: &str| GithubAppError::Other(format!("callback URL refused: {why}"));
        let url = Url::parse(callback_url).map_err(|_| refuse("not a URL"))?;
        if url.origin() != self.api.origin() {
            return Err(refuse("not on the GitHub API's origin"));
        }
        if !url.username().is_empty()
            || url.password().is_some()
            || url.query().is_some()
            || url.fragment().is_some()
        {
            return Err(refuse("unexpected parts"));
        }
        let rest = url
            .path()
            .strip_prefix(self.api.path())
            .ok_or_else(|| refuse("not under the GitHub API's path"))?;
        let parts: Vec<&str> = rest.split('/').collect();
        let shaped = match parts.as_slice() {
            [
                "repos",
                owner,
                repo,
                "actions",
                "runs",
                run,
                "deployment_protection_rule",
            ] => name_ok(owner) && name_ok(repo) && run.parse::<u64>().is_ok(),
            _ => false,
        };
        if !shaped {
            return Err(refuse("not a deployment review endpoint"));
        }
        Ok(url)
    }

    /// `{api}repos/{owner}/{repo}/{tail…}`, each part checked (no `..`, no extra `/`).
    fn repo_url(&self, owner_repo: &str, tail: &[&str]) -> Result<Url, GithubAppError> {
        let (owner, repo) = owner_repo
            .split_once('/')
            .filter(|(o, r)| name_ok(o) && name_ok(r))
            .ok_or_else(|| GithubAppError::Other("malformed owner/repo".into()))?;
        if tail.iter().any(|part| !name_ok(part)) {
            return Err(GithubAppError::Other("malformed commit reference".into()));
        }
        let mut url = self.api.clone();
        {
            let mut segments = url
                .path_segments_mut()
                .map_err(|()| GithubAppError::Other("bad GitHub API URL".into()))?;
            segments.pop_if_empty().extend(["repos", owner, repo]);
            segments.extend(tail);
        }
        Ok(url)
    }

    /// Sends one request as `installation_id`; on a `401`, forgets the token, fetches a new one
    /// and sends once more.
    async fn send(
        &self,
        installation_id: u64,
        method: Method,
        url: Url,
        body: Option<&serde_json::Value>,
    ) -> Result<Answer, Failed> {
        for attempt in 0..2 {
            let token = self
                .tokens
                .token(installation_id)
                .await
                .map_err(Failed::Error)?;
            let Reply {
                status,
                headers,
                body: text,
            } = exchange(&self.http, &token, method.clone(), url.clone(), body)
                .await
                .map_err(Failed::Error)?;
            if status.is_success() {
                return Ok(Answer { body: text });
            }
            if status == StatusCode::UNAUTHORIZED {
                self.tokens.forget(installation_id);
                if attempt == 0 {
                    tracing::info!(
                        installation_id,
                        "GitHub refused the installation token; fetching a new one"
                    );
                    continue;
                }
                return Err(Failed::Error(GithubAppError::Refused(format!(
                    "the installation token was refused after a refresh: {}",
                    message(&text)
                ))));
            }
            if matches!(
                status,
                StatusCode::NOT_FOUND | StatusCode::UNPROCESSABLE_ENTITY
            ) {
                return Err(Failed::Status(status, text));
            }
            return Err(Failed::Error(classify(status, &headers, &text)));
        }
        Err(Failed::Error(GithubAppError::Other(
            "no answer after a token refresh".into(),
        )))
    }
}

/// An owner, repository or commit name GitHub could have made: ASCII letters, digits, `-`, `_`
/// and `.`, not `.` or `..`.
fn name_ok(part: &str) -> bool {
    !part.is_empty()
        && part != "."
        && part != ".."
        && part.len() <= 100
        && part
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(api: &str) -> GithubApp {
        let credentials = AppCredentials::from_pem(1, TEST_KEY).expect("key");
        GithubApp::new(credentials, Url::parse(api).expect("url")).expect("app")
    }

    use crate::github_app::auth::tests::KEY as TEST_KEY;

    #[test]
    fn callbacks_only_on_the_api() {
        let github = app("https://api.github.com");
        let ok = "https://api.github.com/repos/o/r/actions/runs/42/deployment_protection_rule";
        assert!(github.callback(ok).is_ok());
        for refused in [
            "https://evil.example/repos/o/r/actions/runs/42/deployment_protection_rule",
            "http://api.github.com/repos/o/r/actions/runs/42/deployment_protection_rule",
            "https://api.github.com:8443/repos/o/r/actions/runs/42/deployment_protection_rule",
            "https://api.github.com.evil.example/repos/o/r/actions/runs/42/deployment_protection_rule",
            "https://user:pw@api.github.com/repos/o/r/actions/runs/42/deployment_protection_rule",
            "https://api.github.com/repos/o/r/actions/runs/42/deployment_protection_rule?x=1",
            "https://api.github.com/repos/o/r/actions/runs/x/deployment_protection_rule",
            "https://api.github.com/repos/o/r/issues",
            "https://api.github.com/repos/o/../actions/runs/42/deployment_protection_rule",
            "not a url",
        ] {
            assert!(github.callback(refused).is_err(), "{refused}");
        }
    }

    #[test]
    fn enterprise_callbacks_under_the_api_path() {
        let github = app("https://ghe.example/api/v3");
        assert!(
            github
                .callback(
                    "https://ghe.example/api/v3/repos/o/r/actions/runs/1/deployment_protection_rule"
                )
                .is_ok()
        );
        assert!(
            github
                .callback("https://ghe.example/repos/o/r/actions/runs/1/deployment_protection_rule")
                .is_err()
        );
    }

    #[test]
    fn repo_urls_are_checked() {
        let github = app("https://api.github.com/");
        let url = github
            .repo_url("octo/hello.world", &["commits", "abc123"])
            .expect("url");
        assert_eq!(
            url.as_str(),
            "https://api.github.com/repos/octo/hello.world/commits/abc123"
        );
        assert!(github.repo_url("octo", &["commits", "a"]).is_err());
        assert!(github.repo_url("octo/r/x", &["commits", "a"]).is_err());
        assert!(github.repo_url("../r", &["commits", "a"]).is_err());
        assert!(github.repo_url("o/r", &["commits", "a/../b"]).is_err());
    }

    #[test]
    fn debug_shows_no_key() {
        let shown = format!("{:?}", app("https://api.github.com/"));
        assert!(!shown.contains("PRIVATE"), "{shown}");
        assert!(shown.contains("api.github.com"), "{shown}");
    }
}
