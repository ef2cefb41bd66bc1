//! GitHub's REST API as `github redeliver` uses it: listing a hook's deliveries page by page,
//! asking for a redelivery, and sitting out rate limits (docs.github.com: "List deliveries for a
//! repository webhook", "Redeliver a delivery for a repository webhook", "Using pagination in the
//! REST API", "Rate limits for the REST API").

use super::*;

/// The REST API version asked for (GitHub's `X-GitHub-Api-Version`).
const API_VERSION: &str = "2022-11-28";
/// Deliveries per page: GitHub's maximum for this endpoint.
const PER_PAGE: u32 = 100;
/// The longest rate-limit wait sat out; a later reset ends the run, saying when.
const LONGEST_WAIT: Duration = Duration::from_secs(60);
/// Rate-limit answers waited out for one request before giving up.
const MAX_WAITS: u32 = 5;

/// One delivery attempt as GitHub lists it (`hook-delivery-item`).
#[derive(Debug, Clone)]
pub(super) struct Attempt {
    pub(super) id: u64,
    pub(super) guid: String,
    pub(super) delivered_at: Option<DateTime<Utc>>,
    pub(super) status: String,
    pub(super) status_code: i64,
    pub(super) event: String,
    pub(super) action: Option<String>,
}

impl Attempt {
    pub(super) fn parse(v: &Value) -> Option<Self> {
        Some(Self {
            id: v["id"].as_u64()?,
            guid: v["guid"].as_str()?.to_owned(),
            delivered_at: v["delivered_at"]
                .as_str()
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.with_timezone(&Utc)),
            status: v["status"].as_str().unwrap_or_default().to_owned(),
            status_code: v["status_code"].as_i64().unwrap_or(0),
            event: v["event"].as_str().unwrap_or_default().to_owned(),
            action: v["action"].as_str().map(str::to_owned),
        })
    }

    /// GitHub's own test: a delivery failed when its status is not `OK`; a non-2xx code too.
    pub(super) fn succeeded(&self) -> bool {
        (200..300).contains(&self.status_code) && self.status.eq_ignore_ascii_case("OK")
    }

    pub(super) fn event_name(&self) -> String {
        match &self.action {
            Some(a) => format!("{}.{a}", self.event),
            None => self.event.clone(),
        }
    }
}

/// Why a request to GitHub did not get the answer wanted.
pub(super) enum ApiError {
    /// 401, or 403 without a rate limit: the token is bad or lacks a permission.
    Refused(String),
    NotFound,
    /// A rate limit whose reset is too far away to wait for.
    RateLimited(String),
    /// Anything else: another status, a network error, an unreadable answer.
    Other(String),
}

pub(super) struct Github {
    http: reqwest::Client,
    base: Url,
    token: SecretString,
    /// What the token needs, said when GitHub refuses it.
    needs: &'static str,
}

/// GitHub's `message` in an error answer, else the status.
async fn message_of(response: reqwest::Response) -> String {
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|v| v["message"].as_str().map(str::to_owned))
        .unwrap_or_else(|| status.to_string())
}

fn header_u64(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

fn epoch_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn when(epoch: u64) -> String {
    i64::try_from(epoch)
        .ok()
        .and_then(|s| DateTime::<Utc>::from_timestamp(s, 0))
        .map_or_else(|| epoch.to_string(), |t| t.to_rfc3339())
}

/// How long a rate-limited answer says to wait, if it is one (GitHub's "Rate limits for the REST
/// API": `retry-after` seconds; else, with `x-ratelimit-remaining: 0`, until `x-ratelimit-reset`).
fn rate_limit_wait(status: StatusCode, headers: &HeaderMap) -> Option<Result<Duration, String>> {
    if status != StatusCode::FORBIDDEN && status != StatusCode::TOO_MANY_REQUESTS {
        return None;
    }
    if let Some(seconds) = header_u64(headers, "retry-after") {
        let wait = Duration::from_secs(seconds);
        return Some(if wait <= LONGEST_WAIT {
            Ok(wait)
        } else {
            Err(format!(
                "GitHub's rate limit: retry after {seconds} s ({})",
                when(epoch_now() + seconds)
            ))
        });
    }
    if header_u64(headers, "x-ratelimit-remaining") == Some(0) {
        let reset = header_u64(headers, "x-ratelimit-reset").unwrap_or(0);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let wait = Duration::from_secs(reset).saturating_sub(now) + Duration::from_millis(250);
        return Some(if wait <= LONGEST_WAIT {
            Ok(wait)
        } else {
            Err(format!(
                "GitHub's rate limit is exhausted until {} (x-ratelimit-reset); run it again then",
                when(reset)
            ))
        });
    }
    if status == StatusCode::TOO_MANY_REQUESTS {
        return Some(Err(
            "GitHub's secondary rate limit (429 without retry-after): wait a minute or more and \
             run it again"
                .to_owned(),
        ));
    }
    None
}

impl Github {
    pub(super) fn new(args: &GithubApiArgs) -> Result<Self, Failure> {
        Self::needing(args, TOKEN_NEEDS)
    }

    /// [`Github::new`] for a command whose token needs `needs` (said in the refusals).
    pub(super) fn needing(args: &GithubApiArgs, needs: &'static str) -> Result<Self, Failure> {
        let token = secret_setting(
            "GITHUB_TOKEN",
            args.github_token.as_ref(),
            "GITHUB_TOKEN_FILE",
            args.github_token_file.as_deref(),
        )
        .map_err(Failure::config)?
        .ok_or_else(|| {
            Failure::config(format!(
                "GITHUB_TOKEN (or GITHUB_TOKEN_FILE) is not set: {needs}"
            ))
        })?
        .value;
        let mut base = args.github_api_url.clone();
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        let http = reqwest::Client::builder()
            .user_agent(concat!("hookbridge/", env!("CARGO_PKG_VERSION")))
            .timeout(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| Failure::config(format!("HTTP client: {e}")))?;
        Ok(Self {
            http,
            base,
            token,
            needs,
        })
    }

    pub(super) fn url(&self, path: &str) -> Result<Url, ApiError> {
        self.base
            .join(path)
            .map_err(|e| ApiError::Other(format!("GITHUB_API_URL: {e}")))
    }

    /// Sends one request, sitting out short rate limits; the answer when it is a success.
    pub(super) async fn send(
        &self,
        method: Method,
        url: &Url,
    ) -> Result<reqwest::Response, ApiError> {
        // The token goes to GITHUB_API_URL's origin only, never where a Link header points.
        if url.origin() != self.base.origin() {
            return Err(ApiError::Other(format!(
                "GitHub pointed to another host ({}): not following",
                url.host_str().unwrap_or("?")
            )));
        }
        let mut waits = 0;
        loop {
            let response = self
                .http
                .request(method.clone(), url.clone())
                .header("Accept", "application/vnd.github+json")
                .header("X-GitHub-Api-Version", API_VERSION)
                .header(
                    "Authorization",
                    HeaderValue::from_str(&format!("Bearer {}", self.token.expose_secret()))
                        .map(|mut v| {
                            v.set_sensitive(true);
                            v
                        })
                        .map_err(|_| {
                            ApiError::Refused(
                                "GITHUB_TOKEN holds characters a token cannot".to_owned(),
                            )
                        })?,
                )
                .send()
                .await
                .map_err(|e| ApiError::Other(format!("GitHub did not answer: {e}")))?;
            let status = response.status();
            if status.is_success() {
                return Ok(response);
            }
            match rate_limit_wait(status, response.headers()) {
                Some(Ok(wait)) if waits < MAX_WAITS => {
                    waits += 1;
                    eprintln!(
                        "hookbridge: GitHub's rate limit: waiting {:.1} s",
                        wait.as_secs_f64()
                    );
                    tokio::time::sleep(wait).await;
                    continue;
                }
                Some(Ok(_)) => {
                    return Err(ApiError::RateLimited(
                        "GitHub kept answering rate limited; run it again later".to_owned(),
                    ));
                }
                Some(Err(reason)) => return Err(ApiError::RateLimited(reason)),
                None => {}
            }
            let message = message_of(response).await;
            return Err(match status {
                StatusCode::UNAUTHORIZED => ApiError::Refused(format!(
                    "GitHub refused the token (401 {message}): check GITHUB_TOKEN; {}",
                    self.needs
                )),
                StatusCode::FORBIDDEN => ApiError::Refused(format!(
                    "GitHub refused the request (403 {message}): {}",
                    self.needs
                )),
                StatusCode::NOT_FOUND => ApiError::NotFound,
                other => ApiError::Other(format!("GitHub answered {other}: {message}")),
            });
        }
    }
}

/// The URL of the `rel="next"` page in a `Link` header.
pub(super) fn next_link(headers: &HeaderMap) -> Option<String> {
    let link = headers.get("link")?.to_str().ok()?;
    link.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        let is_next = params
            .split(';')
            .any(|p| p.trim().replace(' ', "") == "rel=\"next\"");
        let target = target.trim();
        (is_next && target.starts_with('<') && target.ends_with('>'))
            .then(|| target[1..target.len() - 1].to_owned())
    })
}

/// Every delivery attempt of the last `since`, newest first.
pub(super) async fn list_attempts(
    github: &Github,
    repo: &str,
    hook_id: u64,
    since: Duration,
) -> Result<Vec<Attempt>, Failure> {
    let cutoff = Utc::now() - chrono::Duration::from_std(since).unwrap_or(chrono::Duration::MAX);
    let first = github
        .url(&format!(
            "repos/{repo}/hooks/{hook_id}/deliveries?per_page={PER_PAGE}"
        ))
        .map_err(|e| repo_failure(e, repo, hook_id))?;
    let progress = crate::progress::bar("listing deliveries");
    let mut next = Some(first);
    let mut attempts = Vec::new();
    let mut pages = 0u64;
    while let Some(url) = next.take() {
        let response = github
            .send(Method::GET, &url)
            .await
            .map_err(|e| repo_failure(e, repo, hook_id))?;
        let link = next_link(response.headers());
        let page: Value = response
            .json()
            .await
            .map_err(|e| Failure::check(format!("GitHub's list of deliveries: {e}")))?;
        let items = page.as_array().ok_or_else(|| {
            Failure::check("GitHub's list of deliveries is not a JSON array".to_owned())
        })?;
        let mut older_seen = false;
        for attempt in items.iter().filter_map(Attempt::parse) {
            if attempt.delivered_at.is_some_and(|t| t < cutoff) {
                older_seen = true;
                continue;
            }
            attempts.push(attempt);
        }
        pages += 1;
        progress.set_position(pages);
        progress.set_message(format!("listing deliveries ({} so far)", attempts.len()));
        if older_seen || items.is_empty() {
            break;
        }
        next =
            match link {
                Some(link) => Some(Url::parse(&link).map_err(|e| {
                    Failure::check(format!("GitHub's Link header has a bad URL: {e}"))
                })?),
                None => None,
            };
    }
    progress.finish_and_clear();
    Ok(attempts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_next_link() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "link",
            HeaderValue::from_static(
                "<https://api.github.com/repos/a/b/hooks/1/deliveries?per_page=100&cursor=v1_9>; \
                 rel=\"next\", <https://api.github.com/repos/a/b/hooks/1/deliveries?per_page=100>; \
                 rel=\"first\"",
            ),
        );
        assert_eq!(
            next_link(&headers).as_deref(),
            Some("https://api.github.com/repos/a/b/hooks/1/deliveries?per_page=100&cursor=v1_9")
        );
        headers.insert(
            "link",
            HeaderValue::from_static("<https://x/>; rel=\"prev\""),
        );
        assert_eq!(next_link(&headers), None);
    }
}
