//! `hookbridge cr status CR-ID` and `hookbridge cr usage CR-ID --tokens N`: a Change Request as the
//! store (or Jira) has it, and token usage recorded against its budget.

use std::time::Duration;

use hookbridge_worker::alerts::dispatcher::{Dispatcher, DispatcherConfig, Sink};
use hookbridge_worker::alerts::slack::SlackClient;
use hookbridge_worker::audit::Entry;
use hookbridge_worker::change_requests::lookup::{Found, LookupError};
use hookbridge_worker::change_requests::record::{CrKey, CrRecord};
use hookbridge_worker::change_requests::usage;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::governance::{Governance, GovernanceArgs};
use crate::Failure;

/// How long `cr usage` spends sending the alerts it queued before leaving them to the workers.
const ALERT_SEND_TIME: Duration = Duration::from_secs(10);

#[derive(Debug, clap::Subcommand)]
pub enum CrCommand {
    /// Show a Change Request: from the store, or read from Jira when the store has none.
    Status {
        /// The CR's Jira key, e.g. CR-2026-0001.
        cr_id: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// Read it from Jira even when the store has it (and store the answer).
        #[arg(long)]
        refresh: bool,
        #[command(flatten)]
        settings: Box<GovernanceArgs>,
    },
    /// Exit 0 when the CR allows a deployment: approved, the role among its approvers, and (with
    /// ENFORCE_PKI_VALIDATION=true) a valid signature; 1 with the reason otherwise.
    Validate {
        /// The agent (or pipeline) asking.
        agent_id: String,
        /// The CR's Jira key.
        cr_id: String,
        /// The approver role required (default: Change Manager).
        required_approver_role: Option<String>,
        /// Where to read the CR: the store, Jira, or the store else Jira.
        #[arg(long, value_enum, default_value_t = super::gate::SourceArg::Auto)]
        source: super::gate::SourceArg,
        #[command(flatten)]
        gate: Box<super::gate::GateArgs>,
    },
    /// Record tokens an agent used against the CR's budget; alerts at 80 % and 100 %.
    Usage {
        /// The CR's Jira key.
        cr_id: String,
        /// Tokens used (a whole number, at least 1).
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
        tokens: u64,
        /// The agent that used them.
        #[arg(long)]
        agent: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        settings: Box<GovernanceArgs>,
    },
}

pub async fn run(command: CrCommand) -> Result<(), Failure> {
    match command {
        CrCommand::Status {
            cr_id,
            json,
            refresh,
            settings,
        } => status(&cr_id, json, refresh, &settings).await,
        CrCommand::Usage {
            cr_id,
            tokens,
            agent,
            json,
            settings,
        } => record_usage(&cr_id, tokens, agent.as_deref(), json, &settings).await,
        CrCommand::Validate {
            agent_id,
            cr_id,
            required_approver_role,
            source,
            gate,
        } => {
            super::gate::validate(
                &agent_id,
                &cr_id,
                required_approver_role.as_deref(),
                source,
                &gate,
            )
            .await
        }
    }
}

fn parse_key(cr_id: &str) -> Result<CrKey, Failure> {
    CrKey::parse(cr_id).map_err(Failure::config)
}

/// A lookup failure with its exit code: missing configuration is 2, everything else 1.
fn lookup_failure(e: LookupError) -> Failure {
    match e {
        LookupError::NoJira(_) => Failure::config(e),
        _ => Failure::check(e),
    }
}

async fn status(
    cr_id: &str,
    as_json: bool,
    refresh: bool,
    args: &GovernanceArgs,
) -> Result<(), Failure> {
    let key = parse_key(cr_id)?;
    let g = args.open().await?;
    let found = g
        .change_requests
        .lookup(&key, g.jira.as_ref(), &g.settings.filter, refresh)
        .await
        .map_err(lookup_failure)?;
    if as_json {
        println!("{}", status_json(&found));
    } else {
        print_status(&found);
    }
    Ok(())
}

/// `cr status --json`: the record, where it came from, usage and history.
fn status_json(found: &Found) -> Value {
    let mut out = serde_json::to_value(&found.record).unwrap_or_else(|_| json!({}));
    out["source"] = json!(found.source);
    out["budget_used_tokens"] = json!(found.usage.as_ref().map_or(0, |u| u.used_tokens));
    out["history"] = json!(found.history);
    out
}

fn print_status(found: &Found) {
    let r = &found.record;
    let source = match found.source {
        hookbridge_worker::change_requests::lookup::Source::Cache => "from the store",
        hookbridge_worker::change_requests::lookup::Source::Jira => "read from Jira",
    };
    let by = r
        .changed_by
        .as_ref()
        .map(|p| format!(" by {}", p.name))
        .unwrap_or_default();
    println!(
        "{}  {}  ({source}; updated {}{by})",
        r.key,
        r.status,
        r.updated_at.to_rfc3339()
    );
    if let Some(summary) = &r.summary {
        println!("  summary    {summary}");
    }
    let approvers: Vec<String> = r
        .approvers
        .iter()
        .map(|a| format!("{} ({})", a.name, a.role.as_deref().unwrap_or("no role")))
        .collect();
    println!(
        "  approvers  {}",
        if approvers.is_empty() {
            "none".into()
        } else {
            approvers.join(", ")
        }
    );
    let signature = match (&r.signature, &r.signature_problem) {
        (Some(_), _) => "present".to_owned(),
        (None, Some(problem)) => format!("unreadable: {problem}"),
        (None, None) => "none".to_owned(),
    };
    println!("  signature  {signature}");
    println!(
        "  budget     {}",
        budget_line(r, found.usage.as_ref().map_or(0, |u| u.used_tokens))
    );
    if let Some(url) = &r.url {
        println!("  link       {url}");
    }
    for h in &found.history {
        println!(
            "  history    {}  {} → {}{}",
            h.at.to_rfc3339(),
            h.from.as_deref().unwrap_or("(new)"),
            h.to,
            h.by.as_deref()
                .map(|b| format!(" by {b}"))
                .unwrap_or_default()
        );
    }
    for warning in &r.warnings {
        println!("  warning    {warning}");
    }
}

fn budget_line(record: &CrRecord, used: u64) -> String {
    match record.budget_tokens {
        Some(budget) if budget > 0 => {
            #[allow(clippy::cast_precision_loss)] // Token counts far below 2^52.
            let percent = used as f64 * 100.0 / budget as f64;
            format!("{used} of {budget} tokens used ({percent:.1} %)")
        }
        _ => format!("{used} tokens used; no budget set (`Budget: N tokens` in the description)"),
    }
}

async fn record_usage(
    cr_id: &str,
    tokens: u64,
    agent: Option<&str>,
    as_json: bool,
    args: &GovernanceArgs,
) -> Result<(), Failure> {
    let key = parse_key(cr_id)?;
    let g = args.open().await?;
    let record = match g
        .change_requests
        .lookup(&key, g.jira.as_ref(), &g.settings.filter, false)
        .await
    {
        Ok(found) => Some(found.record),
        // Usage is recorded even when the CR cannot be read: losing a report is worse than
        // alerting late. Jira saying there is no such CR is another matter.
        Err(LookupError::NoJira(_)) => {
            eprintln!(
                "hookbridge: warning: {key} is not in the store and JIRA_BASE_URL is not set; \
                 recording usage without a budget to measure it against"
            );
            None
        }
        Err(e) => return Err(lookup_failure(e)),
    };
    let recorded = usage::record(&g.store, &key, record.as_ref(), tokens, agent)
        .await
        .map_err(Failure::check)?;
    let budget = record.as_ref().and_then(|r| r.budget_tokens);
    let percent = budget.and_then(|b| recorded.usage.percent_of(b));
    let mut entry = Entry::new("cr.usage.recorded", key.as_str())
        .id("jira", key.as_str())
        .detail(json!({
            "tokens": tokens,
            "used_tokens": recorded.usage.used_tokens,
            "budget_tokens": budget,
            "alerts": recorded.alerts.iter().map(|a| a.kind.as_str()).collect::<Vec<_>>(),
        }));
    if let Some(agent) = agent {
        entry = entry.actor(format!("agent:{agent}"));
    }
    // The usage is recorded: failing now would make the agent report it again, counted twice.
    if let Err(e) = g.audit.record(entry).await {
        eprintln!("hookbridge: warning: usage recorded but not audited: {e}");
    }
    if !recorded.alerts.is_empty() {
        send_alerts(&g).await;
    }
    if as_json {
        println!(
            "{}",
            json!({
                "key": key,
                "tokens": tokens,
                "agent": agent,
                "used_tokens": recorded.usage.used_tokens,
                "budget_tokens": budget,
                "percent": percent,
                "alerts": recorded.alerts.iter().map(|a| a.kind.as_str()).collect::<Vec<_>>(),
            })
        );
    } else {
        match (budget, percent) {
            (Some(budget), Some(percent)) => println!(
                "{key}: {} of {budget} tokens used ({percent:.1} %)",
                recorded.usage.used_tokens
            ),
            _ => println!(
                "{key}: {} tokens used; no budget set",
                recorded.usage.used_tokens
            ),
        }
        for alert in &recorded.alerts {
            println!("  alert queued: {}", alert.kind.as_str());
        }
    }
    Ok(())
}

/// Sends the outbox for a little while (the workers send what is left).
async fn send_alerts(g: &Governance) {
    let sink = match &g.settings.slack {
        Some(webhook) => match SlackClient::new(webhook.clone()) {
            Ok(client) => Sink::Slack(client),
            Err(e) => {
                eprintln!("hookbridge: warning: alerts left to the workers: {e}");
                return;
            }
        },
        None => Sink::DryRun,
    };
    let dispatcher = Dispatcher {
        store: g.store.clone(),
        sink,
        audit: g.audit.clone(),
        waker: g.change_requests.alerts.clone(),
        config: DispatcherConfig::default(),
    };
    let stop = CancellationToken::new();
    let timer = {
        let stop = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(ALERT_SEND_TIME).await;
            stop.cancel();
        })
    };
    if let Err(e) = dispatcher.drain(&stop).await {
        eprintln!("hookbridge: warning: alerts left to the workers: {e}");
    }
    timer.abort();
}
