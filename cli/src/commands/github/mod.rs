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

mod api;
mod backfill;

use api::{ApiError, Attempt, Github, list_attempts};

/// What the token needs, for the errors that say it lacks it.
const TOKEN_NEEDS: &str = "the token needs the admin:repo_hook scope (classic token) or the \
                           repository permission \"Webhooks\": read and write (fine-grained token \
                           or GitHub App)";

#[derive(Debug, clap::Subcommand)]
pub enum GithubCommand {
    /// Redeliver a repository webhook's failed deliveries of the last days (GitHub keeps 3), unless
    /// a later attempt succeeded or hookbridge's store says the delivery was processed.
    Redeliver(Box<RedeliverArgs>),
    /// Sync a repository's existing issues to Jira (those not synced yet), through the worker's
    /// exactly-once path: safe to interrupt and run again.
    Backfill(Box<backfill::BackfillArgs>),
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
        GithubCommand::Backfill(args) => backfill::backfill(*args).await,
    }
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
    fn repo_must_be_owner_slash_name() {
        assert!(parse_repo("acme/api").is_ok());
        for bad in ["acme", "acme/", "/api", "acme/api/x", "acme/a pi"] {
            assert!(parse_repo(bad).is_err(), "{bad}");
        }
    }
}
