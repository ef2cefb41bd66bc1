//! [`GithubIssues`]: the GitHub REST calls the Jira → GitHub sync makes, as a token's user
//! (`GITHUB_TOKEN`) or as the GitHub App's installation on the repository.
//!
//! Sources (GitHub Docs, REST API version 2022-11-28): "REST API endpoints for issues" — "Get an
//! issue" (`GET /repos/{owner}/{repo}/issues/{issue_number}`; `404`, or `410 Gone` for a deleted
//! issue; a transferred issue answers `301`), "Update an issue" (`PATCH …/issues/{issue_number}`
//! with `state` `open`|`closed` and `state_reason` `completed`|`not_planned`|`duplicate`|
//! `reopened`|null, `422 Validation Failed` otherwise); "REST API endpoints for issue comments" —
//! "List issue comments" (`GET …/issues/{issue_number}/comments`, `per_page` at most 100, `page`,
//! the `link` header's `rel="next"`) and "Create an issue comment" (`POST …/comments` with
//! `body`, `201`); "Get the authenticated user" (`GET /user`, `login`); "Get the authenticated
//! app" (`GET /app` with the App's JWT, `slug`; the App acts as `<slug>[bot]`); "Get a repository
//! installation for the authenticated app" (`GET /repos/{owner}/{repo}/installation`, JWT, `id`).
//!
//! No token or JWT appears in a log line or an error (they are [`SecretString`]s and errors carry
//! GitHub's `message` and a status only). Redirects are not followed, so a token is never sent
//! anywhere but `GITHUB_API_URL`'s origin.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, LINK};
use reqwest::{Method, StatusCode};
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::{Value, json};
use url::Url;

use crate::github_app::{
    AppCredentials, Failed, GithubAppError, InstallationTokens, Reply, classify, exchange,
};

/// How long one request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// Comments read per page (GitHub's maximum).
const PER_PAGE: u32 = 100;
/// Pages of comments read at most when looking for a marker (10,000 comments).
const MAX_PAGES: u32 = 100;

/// Who the bridge is on GitHub.
enum Auth {
    /// A personal access token (classic or fine-grained) or any bearer token.
    Token(SecretString),
    /// The GitHub App: its JWT finds the installation on a repository, whose token is used.
    App(Box<AppAuth>),
}

/// The App's side of [`Auth`].
struct AppAuth {
    credentials: Arc<AppCredentials>,
    tokens: InstallationTokens,
    /// `owner/name` (lowercase) → installation id.
    installations: Mutex<HashMap<String, u64>>,
}

/// A GitHub issue as the sync needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueState {
    /// `open` or `closed`.
    pub state: String,
    pub state_reason: Option<String>,
    pub labels: Vec<String>,
    pub html_url: String,
}

#[derive(Deserialize)]
struct IssueAnswer {
    state: String,
    #[serde(default)]
    state_reason: Option<String>,
    #[serde(default)]
    labels: Vec<LabelAnswer>,
    #[serde(default)]
    html_url: String,
}

#[derive(Deserialize)]
struct LabelAnswer {
    name: String,
}

#[derive(Deserialize)]
struct CommentAnswer {
    id: u64,
    #[serde(default)]
    body: Option<String>,
}

/// GitHub's issue REST calls. `Debug` shows the API only.
pub struct GithubIssues {
    http: reqwest::Client,
    api: Url,
    auth: Auth,
}

impl std::fmt::Debug for GithubIssues {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let auth = match self.auth {
            Auth::Token(_) => "token",
            Auth::App(_) => "app",
        };
        f.debug_struct("GithubIssues")
            .field("api", &self.api.as_str())
            .field("auth", &auth)
            .finish()
    }
}

/// Whether a failed write surely had no effect: GitHub answered with a 4xx (refused, or an error
/// status this client reads), or the request was never sent. A 5xx, a rate limit or a lost
/// answer proves nothing (the comment may exist: its marker is looked for before posting again).
pub fn proves_nothing_happened(error: &GithubAppError) -> bool {
    match error {
        GithubAppError::Refused(_) => true,
        GithubAppError::Other(reason) => reason.starts_with('4'),
        GithubAppError::Transient { .. } => false,
    }
}

/// An owner or repository name GitHub could have made.
fn name_ok(part: &str) -> bool {
    !part.is_empty()
        && part != "."
        && part != ".."
        && part.len() <= 100
        && part
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// `api` made a base (a final `/`, no query).
fn base(mut api: Url) -> Result<Url, GithubAppError> {
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
    Ok(api)
}

fn client() -> Result<reqwest::Client, GithubAppError> {
    reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|_| GithubAppError::Other("building the HTTP client failed".into()))
}

/// Whether a `link` header has a `rel="next"`.
fn has_next(headers: &HeaderMap) -> bool {
    headers
        .get(LINK)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|links| {
            links
                .split(',')
                .any(|l| l.contains("rel=\"next\"") || l.contains("rel=next"))
        })
}

impl GithubIssues {
    /// A client acting as the user of `token`.
    ///
    /// # Errors
    /// [`GithubAppError::Other`] when `api` is not http(s) or the HTTP client cannot be built.
    pub fn with_token(api: Url, token: SecretString) -> Result<Self, GithubAppError> {
        Ok(Self {
            http: client()?,
            api: base(api)?,
            auth: Auth::Token(token),
        })
    }

    /// A client acting as the App's installation on each repository.
    ///
    /// # Errors
    /// As [`GithubIssues::with_token`].
    pub fn with_app(api: Url, credentials: AppCredentials) -> Result<Self, GithubAppError> {
        let http = client()?;
        let api = base(api)?;
        let credentials = Arc::new(credentials);
        let tokens = InstallationTokens::new(http.clone(), api.clone(), credentials.clone());
        Ok(Self {
            http,
            api,
            auth: Auth::App(Box::new(AppAuth {
                credentials,
                tokens,
                installations: Mutex::new(HashMap::new()),
            })),
        })
    }

    /// `{api}{parts…}`, each part checked.
    fn url(&self, parts: &[&str]) -> Result<Url, GithubAppError> {
        let mut url = self.api.clone();
        {
            let mut segments = url
                .path_segments_mut()
                .map_err(|()| GithubAppError::Other("bad GitHub API URL".into()))?;
            segments.pop_if_empty().extend(parts);
        }
        Ok(url)
    }

    /// `{api}repos/{owner}/{repo}/issues/{number}{tail…}`.
    fn issue_url(&self, repo: &str, number: u64, tail: &[&str]) -> Result<Url, GithubAppError> {
        let (owner, name) = repo
            .split_once('/')
            .filter(|(o, r)| name_ok(o) && name_ok(r))
            .ok_or_else(|| GithubAppError::Other("malformed owner/repo".into()))?;
        let number = number.to_string();
        let mut parts = vec!["repos", owner, name, "issues", number.as_str()];
        parts.extend(tail);
        self.url(&parts)
    }

    /// The login the bridge's writes show on GitHub: the token's user, or `<slug>[bot]` for the
    /// App. Its events are the bridge's own and are ignored (no loops).
    ///
    /// # Errors
    /// As GitHub answers.
    pub async fn login(&self) -> Result<String, GithubAppError> {
        let answer = match &self.auth {
            Auth::Token(token) => {
                self.once(token, Method::GET, self.url(&["user"])?, None)
                    .await
            }
            Auth::App(app) => {
                let jwt = app.credentials.jwt(SystemTime::now())?;
                self.once(&jwt, Method::GET, self.url(&["app"])?, None)
                    .await
            }
        }
        .map_err(Failed::into_error)?;
        let body: Value = serde_json::from_str(&answer.1)
            .map_err(|_| GithubAppError::Other("unexpected answer about the bridge".into()))?;
        match &self.auth {
            Auth::Token(_) => body["login"].as_str().map(str::to_owned),
            Auth::App(_) => body["slug"].as_str().map(|slug| format!("{slug}[bot]")),
        }
        .ok_or_else(|| GithubAppError::Other("no login in GitHub's answer".into()))
    }

    /// Issue `number` of `repo`, or `None` when GitHub has it no more (404, 410, moved).
    ///
    /// # Errors
    /// As GitHub answers.
    pub async fn issue(
        &self,
        repo: &str,
        number: u64,
    ) -> Result<Option<IssueState>, GithubAppError> {
        let url = self.issue_url(repo, number, &[])?;
        match self.send(repo, Method::GET, url, None).await {
            Ok((_, body)) => {
                let issue: IssueAnswer = serde_json::from_str(&body)
                    .map_err(|_| GithubAppError::Other("unexpected issue answer".into()))?;
                Ok(Some(IssueState {
                    state: issue.state,
                    state_reason: issue.state_reason,
                    labels: issue.labels.into_iter().map(|l| l.name).collect(),
                    html_url: issue.html_url,
                }))
            }
            Err(Failed::Status(
                StatusCode::NOT_FOUND | StatusCode::GONE | StatusCode::MOVED_PERMANENTLY,
                _,
            )) => Ok(None),
            Err(failed) => Err(failed.into_error()),
        }
    }

    /// Closes (with `state_reason`) or reopens issue `number` of `repo`: a whole-value write, so
    /// sending it again changes nothing.
    ///
    /// # Errors
    /// As GitHub answers.
    pub async fn set_state(
        &self,
        repo: &str,
        number: u64,
        closed: bool,
        state_reason: Option<&str>,
    ) -> Result<(), GithubAppError> {
        let url = self.issue_url(repo, number, &[])?;
        let body = if closed {
            json!({"state": "closed", "state_reason": state_reason})
        } else {
            json!({"state": "open"})
        };
        self.send(repo, Method::PATCH, url, Some(&body))
            .await
            .map(drop)
            .map_err(Failed::into_error)
    }

    /// The id of the comment on issue `number` whose body contains `marker`, looking through
    /// every page (a consistent read: what was posted is listed).
    ///
    /// # Errors
    /// As GitHub answers.
    pub async fn find_comment(
        &self,
        repo: &str,
        number: u64,
        marker: &str,
    ) -> Result<Option<u64>, GithubAppError> {
        for page in 1..=MAX_PAGES {
            let mut url = self.issue_url(repo, number, &["comments"])?;
            url.query_pairs_mut()
                .append_pair("per_page", &PER_PAGE.to_string())
                .append_pair("page", &page.to_string());
            let (headers, body) = self
                .send(repo, Method::GET, url, None)
                .await
                .map_err(Failed::into_error)?;
            let comments: Vec<CommentAnswer> = serde_json::from_str(&body)
                .map_err(|_| GithubAppError::Other("unexpected comments answer".into()))?;
            if let Some(found) = comments
                .iter()
                .find(|c| c.body.as_deref().is_some_and(|b| b.contains(marker)))
            {
                return Ok(Some(found.id));
            }
            if !has_next(&headers) || comments.is_empty() {
                return Ok(None);
            }
        }
        Ok(None)
    }

    /// Posts `body` as a comment on issue `number`; its id.
    ///
    /// # Errors
    /// As GitHub answers (a timeout leaves it unknown whether the comment exists).
    pub async fn post_comment(
        &self,
        repo: &str,
        number: u64,
        body: &str,
    ) -> Result<u64, GithubAppError> {
        let url = self.issue_url(repo, number, &["comments"])?;
        let (_, answer) = self
            .send(repo, Method::POST, url, Some(&json!({"body": body})))
            .await
            .map_err(Failed::into_error)?;
        serde_json::from_str::<CommentAnswer>(&answer)
            .map(|c| c.id)
            .map_err(|_| GithubAppError::Other("unexpected comment answer".into()))
    }

    /// The App's installation on `repo` (cached).
    async fn installation(
        &self,
        credentials: &AppCredentials,
        installations: &Mutex<HashMap<String, u64>>,
        repo: &str,
    ) -> Result<u64, Failed> {
        let key = repo.to_ascii_lowercase();
        if let Some(id) = installations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            return Ok(*id);
        }
        let (owner, name) = repo
            .split_once('/')
            .filter(|(o, r)| name_ok(o) && name_ok(r))
            .ok_or_else(|| Failed::Error(GithubAppError::Other("malformed owner/repo".into())))?;
        let url = self
            .url(&["repos", owner, name, "installation"])
            .map_err(Failed::Error)?;
        let jwt = credentials.jwt(SystemTime::now()).map_err(Failed::Error)?;
        let (_, body) = match self.once(&jwt, Method::GET, url, None).await {
            Err(Failed::Status(StatusCode::NOT_FOUND, _)) => {
                return Err(Failed::Error(GithubAppError::Refused(format!(
                    "the GitHub App is not installed on {repo}"
                ))));
            }
            other => other?,
        };
        let id = serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|v| v["id"].as_u64())
            .ok_or_else(|| {
                Failed::Error(GithubAppError::Other(
                    "unexpected installation answer".into(),
                ))
            })?;
        installations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, id);
        Ok(id)
    }

    /// One request for `repo`'s resources; with the App, a `401` forgets the installation token
    /// and tries once more with a new one.
    async fn send(
        &self,
        repo: &str,
        method: Method,
        url: Url,
        body: Option<&Value>,
    ) -> Result<(HeaderMap, String), Failed> {
        match &self.auth {
            Auth::Token(token) => self.once(token, method, url, body).await,
            Auth::App(app) => {
                let AppAuth {
                    credentials,
                    tokens,
                    installations,
                } = app.as_ref();
                let id = self.installation(credentials, installations, repo).await?;
                for _ in 0..2 {
                    let token = tokens.token(id).await.map_err(Failed::Error)?;
                    match self.once(&token, method.clone(), url.clone(), body).await {
                        Err(Failed::Status(StatusCode::UNAUTHORIZED, _)) => tokens.forget(id),
                        other => return other,
                    }
                }
                Err(Failed::Error(GithubAppError::Refused(
                    "the installation token was refused after a refresh".into(),
                )))
            }
        }
    }

    async fn once(
        &self,
        token: &SecretString,
        method: Method,
        url: Url,
        body: Option<&Value>,
    ) -> Result<(HeaderMap, String), Failed> {
        let Reply {
            status,
            headers,
            body: text,
        } = exchange(&self.http, token, method, url, body)
            .await
            .map_err(Failed::Error)?;
        if status.is_success() {
            return Ok((headers, text));
        }
        if matches!(
            status,
            StatusCode::NOT_FOUND
                | StatusCode::GONE
                | StatusCode::MOVED_PERMANENTLY
                | StatusCode::UNPROCESSABLE_ENTITY
        ) || (status == StatusCode::UNAUTHORIZED && matches!(self.auth, Auth::App(_)))
        {
            return Err(Failed::Status(status, text));
        }
        Err(Failed::Error(classify(status, &headers, &text)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue_urls_are_checked() {
        let github = GithubIssues::with_token(
            Url::parse("https://ghe.example/api/v3").expect("url"),
            SecretString::from("t"),
        )
        .expect("client");
        assert_eq!(
            github
                .issue_url("Octo/api", 7, &["comments"])
                .expect("url")
                .as_str(),
            "https://ghe.example/api/v3/repos/Octo/api/issues/7/comments"
        );
        assert!(github.issue_url("octo", 1, &[]).is_err());
        assert!(github.issue_url("../x", 1, &[]).is_err());
        let shown = format!("{github:?}");
        assert!(!shown.contains("\"t\""), "{shown}");
    }
}
