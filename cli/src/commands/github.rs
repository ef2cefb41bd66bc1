//! `hookbridge github redeliver`: GitHub does not redeliver a failed webhook delivery by itself,
//! and advises a scheduled script that lists a hook's recent deliveries and asks again for those
//! that failed (docs.github.com, "Handling failed webhook deliveries"). This is that script: it
//! lists the repository hook's deliveries (REST `GET /repos/{owner}/{repo}/hooks/{hook_id}/
//! deliveries`, cursor paging through the `Link` header), groups the attempts by `guid` (the
//! `X-GitHub-Delivery` id every redelivery shares), skips a guid when any attempt succeeded or when
//! hookbridge's store says the delivery was processed (GitHub records a delivery that took longer
//! than its timeout as failed even though the ingest kept it), and asks GitHub to redeliver the
//! newest failed attempt of the others (`POST …/deliveries/{delivery_id}/attempts`, answered 202).
//! Every redelivery asked is audited (`github.redeliver`).

use std::collections::HashMap;

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Utc};
use hookbridge_shared::config::{parse_http_url, parse_secret, secret_setting};
use hookbridge_worker::audit::{AuditLog, Entry};
use hookbridge_worker::settings::{StoreArgs, StoreSettings};
use hookbridge_worker::store::{EMBEDDED_FILE_NAME, Store};

use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode, Url};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use crate::Failure;

/// The REST API version asked for (GitHub's `X-GitHub-Api-Version`).
const API_VERSION: &str = "2022-11-28";
/// Deliveries per page: GitHub's maximum for this endpoint.
const PER_PAGE: u32 = 100;
/// The longest rate-limit wait sat out; a later reset ends the run, saying when.
const LONGEST_WAIT: Duration = Duration::from_secs(60);
/// Rate-limit answers waited out for one request before giving up.
const MAX_WAITS: u32 = 5;
/// What the token needs, for the errors that say it lacks it.
const TOKEN_NEEDS: &str = "the token needs the admin:repo_hook scope (classic token) or the \
                           repository permission \"Webhooks\": read and write (fine-grained token \
                           or GitHub App)";

#[derive(Debug, clap::Subcommand)]
pub enum GithubCommand {
    /// Redeliver a repository webhook's failed deliveries of the last days (GitHub keeps 3), unless
    /// a later attempt succeeded or hookbridge's store says the delivery was processed.
    Redeliver(Box<RedeliverArgs>),
}

/// `hookbridge github redeliver` arguments.
#[derive(Debug, clap::Args)]
pub struct RedeliverArgs {
    /// The repository, OWNER/NAME.
    #[arg(long, value_parser = parse_repo)]
    repo: String,
    /// The webhook's id (Settings → Webhooks → the hook's URL, or the X-GitHub-Hook-ID header).
    #[arg(long)]
    hook_id: u64,
    /// Look at deliveries of this long ago at most (GitHub keeps 3 days).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "3d")]
    since: Duration,
    /// List what would be redelivered; ask GitHub nothing but the list.
    #[arg(long)]
    dry_run: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    api: GithubApiArgs,
    /// The data dir, where the embedded store and the audit trail live.
    #[arg(long, env = "HOOKBRIDGE_DATA_DIR", default_value = "./data")]
    data_dir: PathBuf,
    #[command(flatten)]
    store: StoreArgs,
    /// The audit trail's directory (default: <data dir>/audit).
    #[arg(long = "audit-trail-dir", env = "HOOKBRIDGE_AUDIT_DIR")]
    audit_trail_dir: Option<PathBuf>,
}

/// How GitHub's REST API is reached.
#[derive(Debug, clap::Args)]
pub struct GithubApiArgs {
    /// A token allowed to read and redeliver the hook's deliveries. A secret: pass it by
    /// environment or by GITHUB_TOKEN_FILE, never as a flag.
    #[arg(long, env = "GITHUB_TOKEN", hide_env_values = true, value_parser = parse_secret)]
    github_token: Option<SecretString>,
    /// A file holding GITHUB_TOKEN (trailing newline stripped).
    #[arg(long, env = "GITHUB_TOKEN_FILE")]
    github_token_file: Option<PathBuf>,
    /// The REST API's root; GitHub Enterprise Server: https://HOST/api/v3.
    #[arg(long, env = "GITHUB_API_URL", default_value = "https://api.github.com",
          value_parser = parse_http_url)]
    github_api_url: Url,
}

fn parse_repo(value: &str) -> Result<String, String> {
    let ok_part = |p: &str| {
        !p.is_empty()
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    match value.split_once('/') {
        Some((owner, name)) if ok_part(owner) && ok_part(name) => Ok(value.to_owned()),
        _ => Err("expected OWNER/NAME, such as acme/api".to_owned()),
    }
}

pub async fn run(command: GithubCommand) -> Result<(), Failure> {
    match command {
        GithubCommand::Redeliver(args) => redeliver(*args).await,
    }
}

/// One delivery attempt as GitHub lists it (`hook-delivery-item`).
#[derive(Debug, Clone)]
struct Attempt {
    id: u64,
    guid: String,
    delivered_at: Option<DateTime<Utc>>,
    status: String,
    status_code: i64,
    event: String,
    action: Option<String>,
}

impl Attempt {
    fn parse(v: &Value) -> Option<Self> {
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
    fn succeeded(&self) -> bool {
        (200..300).contains(&self.status_code) && self.status.eq_ignore_ascii_case("OK")
    }

    fn event_name(&self) -> String {
        match &self.action {
            Some(a) => format!("{}.{a}", self.event),
            None => self.event.clone(),
        }
    }
}

/// Why a request to GitHub did not get the answer wanted.
enum ApiError {
    /// 401, or 403 without a rate limit: the token is bad or lacks a permission.
    Refused(String),
    NotFound,
    /// A rate limit whose reset is too far away to wait for.
    RateLimited(String),
    /// Anything else: another status, a network error, an unreadable answer.
    Other(String),
}

struct Github {
    http: reqwest::Client,
    base: Url,
    token: SecretString,
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
    fn new(args: &GithubApiArgs) -> Result<Self, Failure> {
        let token = secret_setting(
            "GITHUB_TOKEN",
            args.github_token.as_ref(),
            "GITHUB_TOKEN_FILE",
            args.github_token_file.as_deref(),
        )
        .map_err(Failure::config)?
        .ok_or_else(|| {
            Failure::config(format!(
                "GITHUB_TOKEN (or GITHUB_TOKEN_FILE) is not set: {TOKEN_NEEDS}"
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
        Ok(Self { http, base, token })
    }

    fn url(&self, path: &str) -> Result<Url, ApiError> {
        self.base
            .join(path)
            .map_err(|e| ApiError::Other(format!("GITHUB_API_URL: {e}")))
    }

    /// Sends one request, sitting out short rate limits; the answer when it is a success.
    async fn send(&self, method: Method, url: &Url) -> Result<reqwest::Response, ApiError> {
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
                    "GitHub refused the token (401 {message}): check GITHUB_TOKEN; {TOKEN_NEEDS}"
                )),
                StatusCode::FORBIDDEN => ApiError::Refused(format!(
                    "GitHub refused the request (403 {message}): {TOKEN_NEEDS}"
                )),
                StatusCode::NOT_FOUND => ApiError::NotFound,
                other => ApiError::Other(format!("GitHub answered {other}: {message}")),
            });
        }
    }
}

/// The URL of the `rel="next"` page in a `Link` header.
fn next_link(headers: &HeaderMap) -> Option<String> {
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

fn repo_failure(e: ApiError, repo: &str, hook_id: u64) -> Failure {
    match e {
        ApiError::Refused(reason) => Failure::config(reason),
        ApiError::NotFound => Failure::check(format!(
            "GitHub knows no webhook {hook_id} on {repo} (404): check --repo and --hook-id (a \
             token that cannot see the repository gets 404 too)"
        )),
        ApiError::RateLimited(reason) | ApiError::Other(reason) => Failure::check(reason),
    }
}

/// Every delivery attempt of the last `since`, newest first.
async fn list_attempts(
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

/// A failed delivery (every attempt failed) and what became of it.
struct Failed {
    newest: Attempt,
    attempts: usize,
    outcome: &'static str,
    error: Option<String>,
}

impl Failed {
    fn json(&self) -> Value {
        json!({
            "guid": self.newest.guid,
            "delivery_id": self.newest.id,
            "event": self.newest.event,
            "action": self.newest.action,
            "status_code": self.newest.status_code,
            "status": self.newest.status,
            "delivered_at": self.newest.delivered_at,
            "attempts": self.attempts,
            "outcome": self.outcome,
            "error": self.error,
        })
    }
}

/// Groups attempts by guid; the guids no attempt of which succeeded, newest attempt first.
fn failed_guids(attempts: Vec<Attempt>) -> Vec<Failed> {
    let mut order: Vec<String> = Vec::new();
    let mut groups: HashMap<String, Vec<Attempt>> = HashMap::new();
    for attempt in attempts {
        if !groups.contains_key(&attempt.guid) {
            order.push(attempt.guid.clone());
        }
        groups
            .entry(attempt.guid.clone())
            .or_default()
            .push(attempt);
    }
    order
        .into_iter()
        .filter_map(|guid| {
            let group = groups.remove(&guid)?;
            if group.iter().any(Attempt::succeeded) {
                return None;
            }
            let count = group.len();
            let newest = group.into_iter().max_by_key(|a| (a.delivered_at, a.id))?;
            Some(Failed {
                newest,
                attempts: count,
                outcome: "pending",
                error: None,
            })
        })
        .collect()
}

async fn open_store(args: &RedeliverArgs) -> Result<Option<Store>, Failure> {
    // As `StoreSettings::open` does, without the queue settings this command has no use for.
    let opened = match args.store.settings().map_err(Failure::config)? {
        StoreSettings::Redis { url, prefix } => Store::connect_redis(url.expose_secret(), &prefix)
            .await
            .map_err(|e| format!("REDIS_URL: {e}")),
        StoreSettings::Embedded => Store::open_embedded(&args.data_dir.join(EMBEDDED_FILE_NAME))
            .map_err(|e| format!("embedded store: {e}")),
    };
    match opened {
        Ok(store) => Ok(Some(store)),
        Err(e) => {
            eprintln!(
                "hookbridge: warning: the store cannot be opened ({e}): relying on GitHub's \
                 statuses only"
            );
            Ok(None)
        }
    }
}

async fn redeliver(args: RedeliverArgs) -> Result<(), Failure> {
    if args.since.is_zero() {
        return Err(Failure::config("--since must be longer than 0"));
    }
    let github = Github::new(&args.api)?;
    let store = open_store(&args).await?;
    let trail = args
        .audit_trail_dir
        .clone()
        .unwrap_or_else(|| args.data_dir.join("audit"));
    let audit = AuditLog::open(&trail, "cli", store.clone());
    let (repo, hook_id) = (args.repo.as_str(), args.hook_id);

    let attempts = list_attempts(&github, repo, hook_id, args.since).await?;
    let mut failed = failed_guids(attempts);
    let mut processed = 0usize;
    let mut store_warned = false;
    if let Some(store) = &store {
        for f in &mut failed {
            match store.is_done(&f.newest.guid).await {
                Ok(true) => {
                    f.outcome = "processed";
                    processed += 1;
                }
                Ok(false) => {}
                Err(e) if !store_warned => {
                    store_warned = true;
                    eprintln!(
                        "hookbridge: warning: the store cannot be read ({e}): relying on \
                         GitHub's statuses"
                    );
                }
                Err(_) => {}
            }
        }
    }

    let to_ask = failed.iter().filter(|f| f.outcome == "pending").count();
    let progress = crate::progress::bar(if args.dry_run {
        "to redeliver"
    } else {
        "redelivering"
    });
    progress.set_length(u64::try_from(to_ask).unwrap_or(u64::MAX));
    let (mut redelivered, mut refused) = (0usize, 0usize);
    let mut stop: Option<Failure> = None;
    for f in failed.iter_mut().filter(|f| f.outcome == "pending") {
        if args.dry_run {
            f.outcome = "would_redeliver";
            continue;
        }
        if stop.is_some() {
            f.outcome = "not_asked";
            continue;
        }
        let result = match github.url(&format!(
            "repos/{repo}/hooks/{hook_id}/deliveries/{}/attempts",
            f.newest.id
        )) {
            Ok(url) => github.send(Method::POST, &url).await.map(|_| ()),
            Err(e) => Err(e),
        };
        let error = match result {
            Ok(()) => None,
            Err(ApiError::NotFound) => Some(format!(
                "GitHub knows no delivery {} of hook {hook_id} on {repo} (404)",
                f.newest.id
            )),
            Err(ApiError::Refused(reason)) => {
                stop = Some(Failure::config(&reason));
                Some(reason)
            }
            Err(ApiError::RateLimited(reason)) => {
                stop = Some(Failure::check(&reason));
                Some(reason)
            }
            Err(ApiError::Other(reason)) => Some(reason),
        };
        let entry = Entry::new("github.redeliver", format!("{repo} hook {hook_id}"))
            .actor("cli")
            .outcome(if error.is_none() { "ok" } else { "failed" })
            .id("delivery", &f.newest.guid)
            .id("attempt", f.newest.id.to_string())
            .detail(json!({
                "repo": repo,
                "hook_id": hook_id,
                "event": f.newest.event_name(),
                "status_code": f.newest.status_code,
                "status": f.newest.status,
                "error": error,
            }));
        if let Err(e) = audit.record(entry).await {
            eprintln!("hookbridge: warning: not appended to the audit trail: {e}");
        }
        if error.is_none() {
            f.outcome = "redelivered";
            redelivered += 1;
        } else {
            f.outcome = "failed";
            f.error = error;
            refused += 1;
        }
        progress.inc(1);
    }
    progress.finish_and_clear();
    let not_asked = failed.iter().filter(|f| f.outcome == "not_asked").count();
    let failures = refused + not_asked;
    let counted = if args.dry_run { to_ask } else { redelivered };

    if args.json {
        let out = json!({
            "repo": repo,
            "hook_id": hook_id,
            "dry_run": args.dry_run,
            "failed": failed.len(),
            "processed": processed,
            "redelivered": counted,
            "redelivery_failed": failures,
            "deliveries": failed.iter().map(Failed::json).collect::<Vec<_>>(),
        });
        println!("{out}");
    } else {
        for f in &failed {
            let what = match f.outcome {
                "processed" => "already processed (hookbridge's store)",
                "would_redeliver" => "would redeliver",
                "redelivered" => "redelivered",
                "not_asked" => "not asked",
                _ => "redelivery failed",
            };
            println!(
                "{}  {}  delivery {}  {} {}  {}{}",
                f.newest.guid,
                f.newest.event_name(),
                f.newest.id,
                f.newest.status_code,
                f.newest.status,
                what,
                f.error
                    .as_deref()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default()
            );
        }
        println!(
            "redeliver: {} failed deliveries, {processed} already processed, {counted} {}, \
             {failures} failed",
            failed.len(),
            if args.dry_run {
                "to redeliver (dry run)"
            } else {
                "redelivered"
            }
        );
    }
    if let Some(failure) = stop {
        return Err(failure);
    }
    if failures > 0 {
        return Err(Failure::check(format!(
            "{failures} redelivery request(s) failed; run it again"
        )));
    }
    Ok(())
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

    #[test]
    fn repo_must_be_owner_slash_name() {
        assert!(parse_repo("acme/api").is_ok());
        for bad in ["acme", "acme/", "/api", "acme/api/x", "acme/a pi"] {
            assert!(parse_repo(bad).is_err(), "{bad}");
        }
    }
}
