//! `hookbridge github backfill`: adopting hookbridge on a repository that already has issues. The
//! webhook only reports what happens from now on, so this lists the repository's issues (REST `GET
//! /repos/{owner}/{repo}/issues`, page-numbered paging through the `Link` header; pull requests,
//! which GitHub lists as issues with a `pull_request` key, are skipped — GitHub Docs, "List
//! repository issues") and hands each one not synced yet to the worker's own GitHub → Jira sync
//! ([`GithubSync::handle`]) as an `issues.opened` event made from the listed issue, under a delivery
//! id of its own per issue (`backfill-<owner>-<repo>-<number>`).
//!
//! That path is what makes a backfill safe to interrupt and run again: the sync works under the
//! issue's store lock, finds an issue already mapped (`IssueMapping`, whether a webhook or an
//! earlier backfill synced it) and never creates it again, and after an interrupted create finds
//! the Jira issue by its marker label before creating anything. The routing rules are the worker's:
//! an issue no route takes is skipped, and never marked done, so a later run with a route syncs it.
//! `--dry-run` lists what would be created, reads the store and writes nothing, and asks Jira
//! nothing. The summary is audited once (`github.backfill`); every Jira write is audited by the
//! sync itself.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use hookbridge_shared::envelope::{DeliveryId, Envelope, Source};
use hookbridge_shared::routing::EventFacts;
use hookbridge_worker::events::github::{IssueEvent, IssueIdentity};
use hookbridge_worker::github_sync::{GithubSync, marker_label};
use hookbridge_worker::handler::{Failure as SyncFailure, Outcome};
use hookbridge_worker::jira::ops::JiraOps;
use hookbridge_worker::jira::{JiraClient, JiraError};
use hookbridge_worker::settings::{WorkerArgs, WorkerSettings};
use hookbridge_worker::store::keys::IssueMapping;

use super::api::next_link;
use super::*;

/// What the token needs to list issues.
const TOKEN_NEEDS: &str = "the token needs the repository permission \"Issues\": read \
                           (fine-grained token or GitHub App), or the repo scope for a private \
                           repository (classic token)";
/// Issues per page: GitHub's maximum.
const PER_PAGE: u32 = 100;
/// Attempts at one issue whose sync asks to be tried again (a busy lock, an earlier interrupted
/// create waiting for Jira's search, Jira or the store briefly unavailable).
const ATTEMPTS: u32 = 5;
/// The longest wait between two attempts at one issue.
const LONGEST_RETRY_WAIT: Duration = Duration::from_secs(60);

/// Which issues to list: GitHub's `state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum IssueState {
    /// Open issues only.
    Open,
    /// Open and closed issues.
    All,
}

impl IssueState {
    fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::All => "all",
        }
    }
}

/// `hookbridge github backfill` arguments: the worker's own settings (store, Jira, routing, the
/// config file) and GitHub's.
#[derive(Debug, clap::Args)]
pub struct BackfillArgs {
    /// The repository, OWNER/NAME.
    #[arg(long, value_parser = parse_repo)]
    repo: String,
    /// Only issues updated at or after this time (GitHub's `since`): 2026-01-31 (midnight UTC)
    /// or 2026-01-31T12:00:00Z.
    #[arg(long, value_parser = parse_since)]
    since: Option<DateTime<Utc>>,
    /// Which issues: open ones, or all (closed ones too).
    #[arg(long, value_enum, default_value = "open")]
    state: IssueState,
    /// List what would be created; create nothing, write nothing to the store.
    #[arg(long)]
    dry_run: bool,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
    /// A token allowed to read the repository's issues. A secret: pass it by environment or by
    /// GITHUB_TOKEN_FILE, never as a flag. (GITHUB_API_URL is the worker's.)
    #[arg(long, env = "GITHUB_TOKEN", hide_env_values = true, value_parser = parse_secret)]
    github_token: Option<SecretString>,
    /// A file holding GITHUB_TOKEN (trailing newline stripped).
    #[arg(long, env = "GITHUB_TOKEN_FILE")]
    github_token_file: Option<PathBuf>,
    #[command(flatten)]
    common: hookbridge_shared::config::CommonArgs,
    #[command(flatten)]
    worker: WorkerArgs,
}

fn parse_since(value: &str) -> Result<DateTime<Utc>, String> {
    let value = value.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(value) {
        return Ok(t.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
        .ok_or_else(|| "expected a date (2026-01-31) or a time (2026-01-31T12:00:00Z)".to_owned())
}

/// What became of one listed issue.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Fate {
    Created(String),
    WouldCreate,
    AlreadySynced(String),
    NoRoute,
    Own,
    Failed(String),
}

impl Fate {
    fn name(&self) -> &'static str {
        match self {
            Fate::Created(_) => "created",
            Fate::WouldCreate => "would_create",
            Fate::AlreadySynced(_) => "already_synced",
            Fate::NoRoute => "skipped_no_route",
            Fate::Own => "skipped_own",
            Fate::Failed(_) => "failed",
        }
    }
}

struct Done {
    number: u64,
    title: String,
    fate: Fate,
}

/// The delivery id of issue `number`'s backfill: the same on every run.
fn delivery_id(repo: &str, identity: &IssueIdentity, number: u64) -> Result<DeliveryId, String> {
    // Lowercase, as GitHub's names are case-insensitive: `--repo Acme/API` is the same issue.
    let plain = format!(
        "backfill-{}-{number}",
        repo.to_ascii_lowercase().replacen('/', "-", 1)
    );
    DeliveryId::parse(&plain)
        .or_else(|_| DeliveryId::parse(&format!("backfill-{}", marker_label(identity))))
        .map_err(|e| format!("delivery id: {e}"))
}

/// The `issues.opened` event GitHub would have sent for a listed issue.
fn opened_event(repo: &str, item: &Value) -> Result<(Value, IssueEvent), String> {
    let payload = json!({
        "action": "opened",
        "issue": item,
        "repository": {"full_name": repo},
        "sender": item["user"],
    });
    let event = serde_json::from_value(payload.clone())
        .map_err(|e| format!("GitHub's issue is not understood: {e}"))?;
    Ok((payload, event))
}

fn list_failure(e: ApiError, repo: &str) -> Failure {
    match e {
        ApiError::Refused(reason) => Failure::config(reason),
        ApiError::NotFound => Failure::check(format!(
            "GitHub knows no repository {repo} (404): check --repo (a token that cannot see the \
             repository gets 404 too; {TOKEN_NEEDS})"
        )),
        ApiError::RateLimited(reason) | ApiError::Other(reason) => Failure::check(reason),
    }
}

/// Every issue and pull request GitHub lists, oldest first.
async fn list_issues(github: &Github, args: &BackfillArgs) -> Result<Vec<Value>, Failure> {
    let repo = args.repo.as_str();
    let mut path = format!(
        "repos/{repo}/issues?state={}&per_page={PER_PAGE}&sort=created&direction=asc",
        args.state.as_str()
    );
    if let Some(since) = args.since {
        path.push_str(&format!("&since={}", since.format("%Y-%m-%dT%H:%M:%SZ")));
    }
    let mut next = Some(github.url(&path).map_err(|e| list_failure(e, repo))?);
    let progress = crate::progress::bar("listing issues");
    let mut items = Vec::new();
    let mut pages = 0u64;
    while let Some(url) = next.take() {
        let response = github
            .send(Method::GET, &url)
            .await
            .map_err(|e| list_failure(e, repo))?;
        let link = next_link(response.headers());
        let page: Value = response
            .json()
            .await
            .map_err(|e| Failure::check(format!("GitHub's list of issues: {e}")))?;
        let Value::Array(page) = page else {
            return Err(Failure::check(
                "GitHub's list of issues is not a JSON array",
            ));
        };
        let empty = page.is_empty();
        items.extend(page);
        pages += 1;
        progress.set_position(pages);
        progress.set_message(format!("listing issues ({} so far)", items.len()));
        if empty {
            break;
        }
        next = link
            .map(|l| Url::parse(&l))
            .transpose()
            .map_err(|e| Failure::check(format!("GitHub's Link header has a bad URL: {e}")))?;
    }
    progress.finish_and_clear();
    Ok(items)
}

/// Opens the worker's Jira: live (its credentials checked) or, for `--dry-run`, dry-run.
async fn jira_ops(
    settings: &WorkerSettings,
    store: &hookbridge_worker::store::Store,
    audit: &AuditLog,
    dry_run: bool,
) -> Result<JiraOps, Failure> {
    if dry_run {
        return Ok(JiraOps::dry_run(audit.clone()));
    }
    let Some(jira) = &settings.jira else {
        return Err(Failure::config(
            "JIRA_BASE_URL is not set: backfill creates Jira issues (--dry-run shows which it \
             would create without Jira)",
        ));
    };
    let client = JiraClient::with_store(jira, Some(store.clone()))
        .map_err(|e| Failure::config(format!("JIRA_BASE_URL: {e}")))?;
    match client.myself().await {
        Err(JiraError::Unavailable {
            reason,
            credentials_refused: true,
            ..
        }) => return Err(Failure::config(format!("JIRA_API_TOKEN: {reason}"))),
        Err(e) => eprintln!("hookbridge: warning: Jira could not be asked who we are: {e}"),
        Ok(_) => {}
    }
    Ok(JiraOps::live(client, audit.clone()))
}

/// Syncs one issue through the worker's path, trying again while the sync asks to.
async fn sync_one(
    sync: &GithubSync,
    envelope: &Envelope,
    event: &IssueEvent,
    identity: &IssueIdentity,
) -> Fate {
    let mut reason = String::new();
    for attempt in 1..=ATTEMPTS {
        let wait = match sync.handle(envelope, event).await {
            Ok(Outcome::Done) => {
                return match sync.store.read(&IssueMapping(identity)).await {
                    Ok(Some(mapping)) => Fate::Created(mapping.jira_key),
                    Ok(None) => Fate::Failed("the sync ended without a Jira issue".to_owned()),
                    Err(e) => Fate::Failed(format!("the store: {e}")),
                };
            }
            Ok(Outcome::Fail { reason }) | Err(SyncFailure::Fail(reason)) => {
                return Fate::Failed(reason);
            }
            Ok(Outcome::Retry { after, reason: why } | Outcome::Busy { after, reason: why })
            | Err(
                SyncFailure::Retry { after, reason: why }
                | SyncFailure::Wait { after, reason: why },
            ) => {
                reason = why;
                after
            }
        };
        if attempt == ATTEMPTS || wait > LONGEST_RETRY_WAIT {
            break;
        }
        tokio::time::sleep(wait).await;
    }
    Fate::Failed(reason)
}

pub(super) async fn backfill(args: BackfillArgs) -> Result<(), Failure> {
    let settings =
        WorkerSettings::from_args(&args.worker, &args.common).map_err(Failure::config)?;
    let api = GithubApiArgs {
        github_token: args.github_token.clone(),
        github_token_file: args.github_token_file.clone(),
        github_api_url: settings.deployment_rule.api.clone(),
    };
    let github = Github::needing(&api, TOKEN_NEEDS)?;
    if settings.routing.default_project.is_none() && settings.routing.rules.is_empty() {
        eprintln!(
            "hookbridge: warning: neither JIRA_PROJECT_KEY nor routing rules are set: every issue \
             is skipped (no route)"
        );
    }
    let store = settings
        .store
        .open(&args.common)
        .await
        .map_err(Failure::config)?;
    // A dry run writes nothing to the store: not even its audit chain's head.
    let audit = AuditLog::open(
        &settings.audit_dir,
        "cli",
        (!args.dry_run).then(|| store.clone()),
    );
    let jira = jira_ops(&settings, &store, &audit, args.dry_run).await?;
    let sync = GithubSync::from_settings(store, jira, &settings);
    let repo = args.repo.as_str();

    let items = list_issues(&github, &args).await?;
    let listed = items.len();
    let (pulls, issues): (Vec<Value>, Vec<Value>) = items
        .into_iter()
        .partition(|i| i.get("pull_request").is_some_and(|p| !p.is_null()));

    let progress = crate::progress::bar(if args.dry_run { "checked" } else { "synced" });
    progress.set_length(u64::try_from(issues.len()).unwrap_or(u64::MAX));
    let mut done = Vec::with_capacity(issues.len());
    for item in &issues {
        let number = item["number"].as_u64().unwrap_or(0);
        let title = item["title"].as_str().unwrap_or_default().to_owned();
        let fate = one(&sync, repo, item, args.dry_run).await;
        done.push(Done {
            number,
            title,
            fate,
        });
        progress.inc(1);
    }
    progress.finish_and_clear();

    let count = |name: &str| done.iter().filter(|d| d.fate.name() == name).count();
    let created = count("created");
    let would_create = count("would_create");
    let already = count("already_synced");
    let no_route = count("skipped_no_route");
    let own = count("skipped_own");
    let failed: Vec<&Done> = done
        .iter()
        .filter(|d| matches!(d.fate, Fate::Failed(_)))
        .collect();
    let summary = json!({
        "repo": repo,
        "state": args.state.as_str(),
        "since": args.since.map(|t| t.to_rfc3339()),
        "dry_run": args.dry_run,
        "listed": listed,
        "issues": issues.len(),
        "created": created,
        "would_create": would_create,
        "already_synced": already,
        "skipped": {
            "no_route": no_route,
            "pull_requests": pulls.len(),
            "own_account": own,
        },
        "failed": failed.len(),
        "failures": failed.iter().map(|d| json!({
            "number": d.number,
            "reason": match &d.fate { Fate::Failed(r) => r.as_str(), _ => "" },
        })).collect::<Vec<_>>(),
    });
    if !args.dry_run {
        let entry = Entry::new("github.backfill", repo)
            .actor("cli")
            .outcome(if failed.is_empty() { "ok" } else { "failed" })
            .detail(summary.clone());
        if let Err(e) = audit.record(entry).await {
            eprintln!("hookbridge: warning: not appended to the audit trail: {e}");
        }
    }

    if args.json {
        let mut out = summary;
        out["results"] = done
            .iter()
            .map(|d| {
                let (jira, reason) = match &d.fate {
                    Fate::Created(k) | Fate::AlreadySynced(k) => (Some(k.as_str()), None),
                    Fate::Failed(r) => (None, Some(r.as_str())),
                    _ => (None, None),
                };
                json!({"number": d.number, "outcome": d.fate.name(), "jira": jira, "error": reason})
            })
            .collect();
        println!("{out}");
    } else {
        for d in &done {
            let what = match &d.fate {
                Fate::Created(key) => format!("created {key}"),
                Fate::WouldCreate => "would create".to_owned(),
                Fate::NoRoute => "skipped (no route)".to_owned(),
                Fate::Own => "skipped (opened by the bridge's own account)".to_owned(),
                Fate::Failed(reason) => format!("failed: {reason}"),
                Fate::AlreadySynced(_) => continue,
            };
            println!("#{}  {}  {what}", d.number, d.title);
        }
        println!(
            "backfill {repo}: {listed} listed, {} {}, {already} already synced, {} skipped \
             ({no_route} no route, {} pull requests{}), {} failed",
            if args.dry_run { would_create } else { created },
            if args.dry_run {
                "to create (dry run)"
            } else {
                "created"
            },
            no_route + pulls.len() + own,
            pulls.len(),
            if own > 0 {
                format!(", {own} by the bridge's own account")
            } else {
                String::new()
            },
            failed.len(),
        );
    }
    if !failed.is_empty() {
        let numbers: Vec<String> = failed.iter().map(|d| format!("#{}", d.number)).collect();
        return Err(Failure::check(format!(
            "{} issue(s) failed to sync ({}); run it again",
            failed.len(),
            numbers.join(", ")
        )));
    }
    Ok(())
}

/// Decides and, unless `dry_run`, does what one listed issue needs.
async fn one(sync: &GithubSync, repo: &str, item: &Value, dry_run: bool) -> Fate {
    let (payload, event) = match opened_event(repo, item) {
        Ok(parsed) => parsed,
        Err(reason) => return Fate::Failed(reason),
    };
    if sync
        .config
        .ignore_logins
        .iter()
        .any(|l| l.eq_ignore_ascii_case(&event.sender.login))
    {
        // The worker ignores the bridge's own events (no loops); so does the backfill.
        return Fate::Own;
    }
    let identity = event.issue.identity(&event.repository);
    match sync.store.read(&IssueMapping(&identity)).await {
        Ok(Some(mapping)) => return Fate::AlreadySynced(mapping.jira_key),
        Ok(None) => {}
        Err(e) => return Fate::Failed(format!("the store: {e}")),
    }
    let labels = event.issue.label_names();
    let facts = EventFacts {
        repository: &event.repository.full_name,
        labels: &labels,
        event: "issues",
        action: "opened",
    };
    // Decided here, before the sync: the sync marks a delivery no route takes as done, which would
    // keep this issue's backfill delivery from syncing it once a route takes it.
    if sync.routing.route(&facts).is_none() {
        return Fate::NoRoute;
    }
    if dry_run {
        return Fate::WouldCreate;
    }
    let delivery = match delivery_id(repo, &identity, event.issue.number) {
        Ok(id) => id,
        Err(reason) => return Fate::Failed(reason),
    };
    let raw = match serde_json::value::to_raw_value(&payload) {
        Ok(raw) => raw,
        Err(e) => return Fate::Failed(format!("the event: {e}")),
    };
    let headers = BTreeMap::from([("x-github-event".to_owned(), "issues".to_owned())]);
    let envelope = Envelope::new(
        Source::Github,
        "issues".to_owned(),
        Some("opened".to_owned()),
        delivery,
        headers,
        raw,
    );
    sync_one(sync, &envelope, &event, &identity).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_a_date_or_a_time() {
        assert_eq!(
            parse_since("2026-01-31").map(|t| t.to_rfc3339()),
            Ok("2026-01-31T00:00:00+00:00".to_owned())
        );
        assert_eq!(
            parse_since("2026-01-31T12:30:00Z").map(|t| t.to_rfc3339()),
            Ok("2026-01-31T12:30:00+00:00".to_owned())
        );
        assert!(parse_since("yesterday").is_err());
    }

    #[test]
    fn the_delivery_id_is_the_same_on_every_run_and_valid() {
        let identity = IssueIdentity::new("acme/api.v2", 7);
        let id = delivery_id("acme/api.v2", &identity, 7).expect("id");
        assert_eq!(id.as_str(), "backfill-acme-api.v2-7");
        assert_eq!(
            delivery_id("Acme/API", &IssueIdentity::new("Acme/API", 7), 7)
                .expect("id")
                .as_str(),
            "backfill-acme-api-7"
        );
        // GitHub allows 39 characters for an owner, 100 for a repository: too long for an id.
        let long = format!("{}/{}", "o".repeat(39), "x".repeat(100));
        let identity = IssueIdentity::new(&long, 7);
        let id = delivery_id(&long, &identity, 7).expect("id");
        assert!(id.as_str().starts_with("backfill-ghissue-"), "{id}");
    }
}
