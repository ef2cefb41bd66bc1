//! `hookbridge dlq`: the dead-letter queue for the engineer on call — list and show what failed
//! and why, move messages back to be processed once more, purge. The same commands on SQS and on
//! the embedded queue; every redrive and purge is audited (README, "Dead-letter queue").

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use hookbridge_shared::config::CommonArgs;
use hookbridge_shared::queue::{Progress, Queue, QueueError};
use hookbridge_worker::audit::AuditLog;
use hookbridge_worker::dead_letters::{self, Listed};
use hookbridge_worker::settings::StoreArgs;
use hookbridge_worker::store::Store;
use indicatif::ProgressBar;
use serde_json::Value;

use crate::Failure;

/// Most dead letters `list` reads before filtering.
const LIST_SCAN: usize = 10_000;

#[derive(Debug, clap::Subcommand)]
pub enum DlqCommand {
    /// Dead letters: id, source, event, action, delivery, first seen, receive count, last error.
    List {
        /// Only this source (github, jira).
        #[arg(long)]
        source: Option<String>,
        /// Only this event (issues, issue_comment, jira:issue_updated, …).
        #[arg(long)]
        event: Option<String>,
        /// Only messages first seen longer ago than this (e.g. 2h, 3d).
        #[arg(long, value_parser = humantime::parse_duration)]
        older_than: Option<Duration>,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: usize,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        settings: DlqArgs,
    },
    /// One dead letter: its envelope and why each attempt failed.
    Show {
        id: String,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        settings: DlqArgs,
    },
    /// Move a dead letter (or all of them) back to the main queue, to be processed once more.
    Redrive {
        /// The dead letter's id (from `dlq list`).
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        id: Option<String>,
        #[arg(long)]
        all: bool,
        /// At most this many messages a second (with --all).
        #[arg(long, requires = "all")]
        rate: Option<u32>,
        #[command(flatten)]
        settings: DlqArgs,
    },
    /// Delete every dead letter (refused without --yes).
    Purge {
        #[arg(long)]
        yes: bool,
        #[command(flatten)]
        settings: DlqArgs,
    },
}

/// What the `dlq` commands open: the queue (and its DLQ), the store that holds why messages
/// failed, the audit trail.
#[derive(Debug, clap::Args)]
pub struct DlqArgs {
    #[command(flatten)]
    common: CommonArgs,
    #[command(flatten)]
    store: StoreArgs,
    /// The audit trail's directory (default: <data dir>/audit).
    #[arg(long = "audit-trail-dir", env = "HOOKBRIDGE_AUDIT_DIR")]
    audit_trail_dir: Option<PathBuf>,
}

struct Opened {
    queue: Queue,
    store: Option<Store>,
    audit: AuditLog,
}

impl DlqArgs {
    /// Opens the queue (exit 2 when it cannot be), and the store when it can be: without it the
    /// commands still work, only without the failure history.
    async fn open(&self) -> Result<Opened, Failure> {
        let queue = self
            .common
            .open_queue()
            .await
            .map_err(|e| Failure::config(format!("queue: {e}")))?;
        let store = match self
            .store
            .settings()
            .map_err(Failure::config)?
            .open(&self.common)
            .await
        {
            Ok(store) => Some(store),
            Err(e) => {
                eprintln!(
                    "hookbridge: warning: the store ({e}) cannot be read: no failure history"
                );
                None
            }
        };
        let trail = self
            .audit_trail_dir
            .clone()
            .unwrap_or_else(|| self.common.data_dir.join("audit"));
        let audit = AuditLog::open(&trail, "cli", store.clone());
        Ok(Opened {
            queue,
            store,
            audit,
        })
    }
}

/// A dead letter as `list` shows it (README: the JSON shape of `dlq list --json`).
fn row_json(row: &Listed) -> Value {
    serde_json::to_value(row).unwrap_or(Value::Null)
}

pub async fn run(command: DlqCommand) -> Result<(), Failure> {
    match command {
        DlqCommand::List {
            source,
            event,
            older_than,
            limit,
            json,
            settings,
        } => {
            let opened = settings.open().await?;
            let filter = Filter {
                source,
                event,
                older_than,
            };
            list(&opened, &filter, limit, json).await
        }
        DlqCommand::Show { id, json, settings } => show(&settings.open().await?, &id, json).await,
        DlqCommand::Redrive {
            id,
            all,
            rate,
            settings,
        } => {
            let opened = settings.open().await?;
            match (id, all) {
                (Some(id), false) => redrive_one(&opened, &id).await,
                _ => redrive_all(&opened, rate).await,
            }
        }
        DlqCommand::Purge { yes, settings } => {
            if !yes {
                return Err(Failure::config(
                    "purge deletes every dead letter for good: add --yes to do it",
                ));
            }
            purge(&settings.open().await?).await
        }
    }
}

fn queue_failure(e: QueueError) -> Failure {
    match e {
        QueueError::NotFound(id) => Failure::check(format!("no dead letter with id {id}")),
        QueueError::Rejected(reason) => Failure::config(reason),
        QueueError::Unavailable(reason) => Failure::check(format!("the queue: {reason}")),
    }
}

struct Filter {
    source: Option<String>,
    event: Option<String>,
    older_than: Option<Duration>,
}

impl Filter {
    fn keeps(&self, row: &Listed, now: DateTime<Utc>) -> bool {
        let same = |wanted: &Option<String>, actual: Option<&str>| {
            wanted
                .as_deref()
                .is_none_or(|w| actual.is_some_and(|a| a.eq_ignore_ascii_case(w)))
        };
        let old_enough = self.older_than.is_none_or(|age| {
            let age = chrono::Duration::from_std(age).unwrap_or(chrono::Duration::MAX);
            row.first_seen.is_some_and(|at| now - at >= age)
        });
        same(&self.source, row.source.as_deref())
            && same(&self.event, row.event.as_deref())
            && old_enough
    }
}

async fn list(opened: &Opened, filter: &Filter, limit: usize, json: bool) -> Result<(), Failure> {
    let now = Utc::now();
    let mut rows = Vec::new();
    for dead_letter in opened
        .queue
        .dead_letters(LIST_SCAN)
        .await
        .map_err(queue_failure)?
    {
        if rows.len() >= limit {
            break;
        }
        let row = Listed::new(&dead_letter, opened.store.as_ref()).await;
        if filter.keeps(&row, now) {
            rows.push(row);
        }
    }
    if json {
        let all: Vec<Value> = rows.iter().map(row_json).collect();
        println!("{}", Value::Array(all));
        return Ok(());
    }
    if rows.is_empty() {
        println!("no dead letters");
        return Ok(());
    }
    for row in &rows {
        let j = row_json(row);
        let text = |k: &str| j[k].as_str().unwrap_or("-").to_owned();
        println!(
            "{}  {} {}{}  delivery {}  first seen {}  received {}×\n    {}",
            text("id"),
            text("source"),
            text("event"),
            j["action"]
                .as_str()
                .map(|a| format!(".{a}"))
                .unwrap_or_default(),
            text("delivery"),
            text("first_seen"),
            row.receive_count,
            row.last_error.as_deref().unwrap_or("(no error recorded)")
        );
    }
    println!("{} dead letter(s)", rows.len());
    Ok(())
}

async fn show(opened: &Opened, id: &str, json: bool) -> Result<(), Failure> {
    let shown = dead_letters::show(&opened.queue, opened.store.as_ref(), id)
        .await
        .map_err(queue_failure)?;
    let out = serde_json::to_value(&shown).unwrap_or(Value::Null);
    if json {
        println!("{out}");
        return Ok(());
    }
    println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    Ok(())
}

/// A progress bar (see [`crate::progress`]) the queue reports to.
struct Bar(ProgressBar);

impl Bar {
    fn new(what: &str) -> Self {
        Self(crate::progress::bar(what))
    }
}

impl Progress for Bar {
    fn advanced(&self, done: u64, total: Option<u64>) {
        if let Some(total) = total {
            self.0.set_length(total);
        }
        self.0.set_position(done);
    }
}

async fn redrive_one(opened: &Opened, id: &str) -> Result<(), Failure> {
    let delivery = dead_letters::redrive(&opened.queue, &opened.audit, "cli", id)
        .await
        .map_err(queue_failure)?;
    println!(
        "redrove {id}{}: back on the main queue",
        delivery
            .map(|d| format!(" (delivery {d})"))
            .unwrap_or_default()
    );
    Ok(())
}

async fn redrive_all(opened: &Opened, rate: Option<u32>) -> Result<(), Failure> {
    let bar = Bar::new("redriving");
    let result = dead_letters::redrive_all(&opened.queue, &opened.audit, "cli", rate, &bar).await;
    bar.0.finish_and_clear();
    let done = result.map_err(queue_failure)?;
    println!(
        "redrive: {} moved back to the main queue, {} failed",
        done.moved, done.failed
    );
    if done.failed > 0 {
        return Err(Failure::check(format!(
            "{} dead letter(s) could not be moved; run it again",
            done.failed
        )));
    }
    Ok(())
}

async fn purge(opened: &Opened) -> Result<(), Failure> {
    let count = dead_letters::purge(&opened.queue, &opened.audit, "cli")
        .await
        .map_err(queue_failure)?;
    println!("purge: {count} dead letter(s) deleted");
    Ok(())
}
