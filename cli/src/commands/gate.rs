//! `hookbridge cr validate` and `hookbridge gate`: the CR gate CI/CD pipelines call before a
//! deployment (policy in `hookbridge_worker::gate`). Exit 0 pass, 1 the check failed, 2 usage or
//! configuration error. Every decision is written as an audit JSON file (its path printed, its id
//! in `jira-approval-audit-id.txt` beside it, as the governance seed's pipeline expects), appended
//! to the audit trail, and — inside GitHub Actions — written to the step's outputs and summary.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::Utc;
use hookbridge_worker::audit::Entry;
use hookbridge_worker::change_requests::lookup::{Found, LookupError, Source};
use hookbridge_worker::change_requests::record::CrKey;
use hookbridge_worker::gate::deployment::{self, Environment, Tier};
use hookbridge_worker::gate::{self, DEFAULT_ROLE, Policy, ReasonCode, Verdict};
use hookbridge_worker::metrics::governance::{self, Asker};
use hookbridge_worker::pki::trust::TrustedKeys;
use hookbridge_worker::store::keys::CrRecordKey;
use serde_json::{Value, json};

use super::governance::{Governance, GovernanceArgs};
use crate::Failure;

/// Where `cr validate` reads the CR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SourceArg {
    /// The store only.
    Cache,
    /// Jira, always (and the answer is stored).
    Jira,
    /// The store when it has the CR, else Jira.
    Auto,
}

/// What the gate needs beyond the governance settings.
#[derive(Debug, clap::Args)]
pub struct GateArgs {
    /// Require a valid PKI signature by a trusted key.
    #[arg(long, env = "ENFORCE_PKI_VALIDATION", default_value_t = false,
          action = clap::ArgAction::Set, value_parser = clap::builder::BoolishValueParser::new())]
    pub enforce_pki_validation: bool,
    /// Trusted public keys / certificates for CR signatures (*.pub, *.crt), beside the config
    /// file's [pki] table.
    #[arg(long, env = "HOOKBRIDGE_PKI_TRUSTED_DIR")]
    pub pki_trusted_dir: Option<PathBuf>,
    /// Where the audit JSON file (and jira-approval-audit-id.txt) goes (default: the system temp
    /// dir).
    #[arg(long)]
    pub audit_dir: Option<PathBuf>,
    /// Print the decision as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub settings: GovernanceArgs,
}

impl GateArgs {
    fn policy(&self, g: &Governance) -> Result<Policy, Failure> {
        let pki = if self.enforce_pki_validation {
            let file = self
                .settings
                .common
                .file_config()
                .map_err(Failure::config)?;
            let trusted = TrustedKeys::load(self.pki_trusted_dir.as_deref(), &file.pki)
                .map_err(|e| Failure::config(format!("trusted keys: {e}")))?;
            Some(trusted.ok_or_else(|| {
                Failure::config(
                    "ENFORCE_PKI_VALIDATION is on but no key is trusted: set HOOKBRIDGE_PKI_TRUSTED_DIR or the config file's [pki] table",
                )
            })?)
        } else {
            None
        };
        Ok(Policy {
            statuses: g.settings.config.statuses.clone(),
            pki,
        })
    }
}

/// Reads the CR from where `source` says.
async fn find(g: &Governance, key: &CrKey, source: SourceArg) -> Result<Option<Found>, Failure> {
    let cr = &g.change_requests;
    let filter = &g.settings.filter;
    let result = match source {
        SourceArg::Cache => match g.store.read(&CrRecordKey(key)).await {
            Ok(None) => return Ok(None),
            Ok(Some(_)) => cr.lookup(key, None, filter, false).await,
            Err(e) => return Err(Failure::check(format!("the store: {e}"))),
        },
        SourceArg::Jira => cr.lookup(key, g.jira.as_ref(), filter, true).await,
        SourceArg::Auto => cr.lookup(key, g.jira.as_ref(), filter, false).await,
    };
    match result {
        Ok(found) => Ok(Some(found)),
        Err(LookupError::NoJira(_)) => Err(Failure::config(
            "the CR is not in the store and JIRA_BASE_URL is not set: cannot read it",
        )),
        Err(LookupError::NotFound(_)) => Ok(None),
        Err(e) => Err(Failure::check(e)),
    }
}

/// A decision, made.
struct Decision {
    passed: bool,
    /// The reason's fixed code, for the governance metrics.
    code: ReasonCode,
    /// Whether a CR was checked (not a deployment that needs none or named none).
    checked_cr: bool,
    reason: String,
    warnings: Vec<String>,
    detail: Value,
}

/// Writes the audit JSON file and its id file, the audit trail line, the GitHub outputs; prints
/// the decision; the exit status.
async fn conclude(
    g: &Governance,
    args: &GateArgs,
    asker: Asker,
    action: &str,
    subject: &str,
    agent: &str,
    decision: Decision,
) -> Result<(), Failure> {
    let id = uuid::Uuid::new_v4().to_string();
    let now = Utc::now();
    let dir = args.audit_dir.clone().unwrap_or_else(std::env::temp_dir);
    let file = dir.join(format!("audit-{}-{id}.json", now.format("%Y%m%dT%H%M%SZ")));
    let record = json!({
        "audit_id": id,
        "timestamp": now,
        "action": action,
        "agent": agent,
        "subject": subject,
        "decision": if decision.passed { "pass" } else { "fail" },
        "reason": decision.reason,
        "reason_code": decision.code.as_str(),
        "warnings": decision.warnings,
        "detail": decision.detail,
    });
    write_audit_files(&dir, &file, &id, &record)?;
    let entry = Entry::new(action, subject)
        .actor(format!("agent:{agent}"))
        .outcome(if decision.passed { "pass" } else { "fail" })
        .id("audit", &id)
        .detail(record.clone());
    if let Err(e) = g.audit.record(entry).await {
        // The decision stands (the audit file has it); failing now would block a deployment
        // for a disk problem of the trail.
        eprintln!("hookbridge: warning: decision not appended to the audit trail: {e}");
    }
    if let Err(e) = governance::record_decision(
        &g.store,
        asker,
        decision.passed,
        decision.code,
        decision.checked_cr,
    )
    .await
    {
        // As above: metrics are not worth blocking a deployment for.
        eprintln!("hookbridge: warning: decision not counted in the governance metrics: {e}");
    }
    github_outputs(&decision, &id, &file, action, subject)?;
    if args.json {
        println!(
            "{}",
            json!({"decision": record["decision"], "reason": decision.reason, "reason_code": decision.code.as_str(), "warnings": decision.warnings, "audit_id": id, "audit_file": file})
        );
    } else {
        let verdict = if decision.passed { "PASS" } else { "FAIL" };
        println!("{verdict}: {}", decision.reason);
        for warning in &decision.warnings {
            println!("warning: {warning}");
        }
        println!("audit: {}", file.display());
    }
    if decision.passed {
        Ok(())
    } else {
        Err(Failure::check(decision.reason))
    }
}

fn write_audit_files(dir: &Path, file: &Path, id: &str, record: &Value) -> Result<(), Failure> {
    let err = |e: std::io::Error, what: &Path| {
        Failure::config(format!("audit file {}: {e}", what.display()))
    };
    std::fs::create_dir_all(dir).map_err(|e| err(e, dir))?;
    let text = serde_json::to_string_pretty(record).unwrap_or_default();
    std::fs::write(file, format!("{text}\n")).map_err(|e| err(e, file))?;
    let id_file = dir.join("jira-approval-audit-id.txt");
    std::fs::write(&id_file, format!("{id}\n")).map_err(|e| err(e, &id_file))
}

/// Inside GitHub Actions: `decision`, `reason`, `audit-id`, `audit-file` outputs, and a summary.
fn github_outputs(
    decision: &Decision,
    id: &str,
    file: &Path,
    action: &str,
    subject: &str,
) -> Result<(), Failure> {
    let append = |variable: &str, text: &str| -> Result<(), Failure> {
        let Some(path) = std::env::var_os(variable) else {
            return Ok(());
        };
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(text.as_bytes()))
            .map_err(|e| Failure::config(format!("{variable}: {e}")))
    };
    let verdict = if decision.passed { "pass" } else { "fail" };
    // A multi-line-safe value: `name<<DELIMITER`, with a delimiter the value cannot contain.
    let delimiter = format!("hookbridge-{}", uuid::Uuid::new_v4().simple());
    let reason = decision.reason.replace(&delimiter, "");
    append(
        "GITHUB_OUTPUT",
        &format!(
            "decision={verdict}\nreason<<{delimiter}\n{reason}\n{delimiter}\naudit-id={id}\naudit-file={}\n",
            file.display()
        ),
    )?;
    let icon = if decision.passed { "✅" } else { "❌" };
    let mut summary = format!(
        "### {icon} hookbridge {action}: {}\n\n| | |\n| --- | --- |\n| subject | `{subject}` |\n| reason | {} |\n| audit id | `{id}` |\n",
        verdict.to_uppercase(),
        reason.replace('|', "\\|").replace('\n', " ")
    );
    for warning in &decision.warnings {
        summary.push_str(&format!("| warning | {} |\n", warning.replace('|', "\\|")));
    }
    append("GITHUB_STEP_SUMMARY", &format!("{summary}\n"))
}

fn source_name(found: &Found) -> &'static str {
    match found.source {
        Source::Cache => "cache",
        Source::Jira => "jira",
    }
}

/// `hookbridge cr validate AGENT_ID CR_ID [ROLE]`.
pub async fn validate(
    agent: &str,
    cr_id: &str,
    role: Option<&str>,
    source: SourceArg,
    args: &GateArgs,
) -> Result<(), Failure> {
    let key = CrKey::parse(cr_id).map_err(Failure::config)?;
    let g = args.settings.open().await?;
    let policy = args.policy(&g)?;
    let role = role
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .unwrap_or(DEFAULT_ROLE);
    let decision = match find(&g, &key, source).await? {
        None => Decision {
            passed: false,
            code: ReasonCode::NotFound,
            checked_cr: true,
            reason: match source {
                SourceArg::Cache => format!("{key} is not in the store (--source cache)"),
                _ => format!("{key} not found in Jira"),
            },
            warnings: Vec::new(),
            detail: json!({"cr_id": key, "required_role": role}),
        },
        Some(found) => {
            let verdict = gate::check(&found.record, Some(role), &policy, Utc::now());
            decide(&found, &verdict, Some(role), source_name(&found))
        }
    };
    conclude(
        &g,
        args,
        Asker::CrValidate,
        "cr.validate",
        key.as_str(),
        agent,
        decision,
    )
    .await
}

fn decide(found: &Found, verdict: &Verdict, role: Option<&str>, source: &str) -> Decision {
    let r = &found.record;
    let (passed, code, reason, warnings) = match verdict.denial() {
        None => (
            true,
            ReasonCode::Approved,
            format!("{} is {} (read from {source})", r.key, r.status),
            verdict_warnings(verdict),
        ),
        Some(denial) => (false, denial.code, denial.reason.clone(), Vec::new()),
    };
    Decision {
        passed,
        code,
        checked_cr: true,
        reason,
        warnings,
        detail: json!({
            "cr_id": r.key, "status": r.status, "required_role": role, "source": source,
            "approvers": r.approvers.iter().map(|a| json!({"name": a.name, "role": a.role})).collect::<Vec<_>>(),
            "signature_present": r.signature.is_some(),
            "updated_at": r.updated_at,
        }),
    }
}

/// `hookbridge gate`.
#[allow(clippy::too_many_arguments)]
pub async fn deployment_gate(
    tier: u8,
    environment: Environment,
    agent: &str,
    cr_id: Option<&str>,
    role: Option<&str>,
    wait: Option<Duration>,
    interval: Duration,
    args: &GateArgs,
) -> Result<(), Failure> {
    let tier = Tier::new(tier).map_err(Failure::config)?;
    let key = cr_id
        .map(CrKey::parse)
        .transpose()
        .map_err(Failure::config)?;
    let g = args.settings.open().await?;
    let policy = args.policy(&g)?;
    let subject = format!("tier {} to {environment}", tier.get());
    let key = match (key, deployment::exemption(tier, environment)) {
        (Some(key), None) => key,
        (key, exemption) => {
            let (passed, code, reason) = match exemption {
                Some(free) => (true, free.code, free.reason),
                None => (
                    false,
                    ReasonCode::NoCrId,
                    format!(
                        "a tier {} deployment to {environment} needs an approved Change Request: give --jira-cr-id",
                        tier.get()
                    ),
                ),
            };
            let decision = Decision {
                passed,
                code,
                checked_cr: false,
                reason,
                warnings: Vec::new(),
                detail: json!({"tier": tier, "environment": environment, "cr_id": key}),
            };
            return conclude(
                &g,
                args,
                Asker::Gate,
                "gate.decision",
                &subject,
                agent,
                decision,
            )
            .await;
        }
    };
    let role = role
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .unwrap_or(DEFAULT_ROLE);
    let started = Instant::now();
    let mut last_jira_read: Option<Instant> = None;
    let decision = loop {
        // The store first (Jira's webhooks keep it fresh); Jira only when the store has nothing,
        // and then at most once per interval.
        // Without Jira, a wait can still be ended by a webhook that brings the CR to the store.
        let store_only = g.jira.is_none() && wait.is_some();
        let source = match (g.store.read(&CrRecordKey(&key)).await, last_jira_read) {
            (Ok(Some(_)), _) => SourceArg::Cache,
            _ if store_only => SourceArg::Cache,
            (_, Some(at)) if at.elapsed() < interval => SourceArg::Cache,
            _ => {
                last_jira_read = Some(Instant::now());
                SourceArg::Auto
            }
        };
        let found = find(&g, &key, source).await?;
        let mut decision = match &found {
            None => Decision {
                passed: false,
                code: ReasonCode::NotFound,
                checked_cr: true,
                reason: if store_only {
                    format!(
                        "{key} is not in the store, and JIRA_BASE_URL is not set: only a Jira webhook can bring it"
                    )
                } else {
                    format!("{key} not found")
                },
                warnings: Vec::new(),
                detail: json!({"cr_id": key}),
            },
            Some(found) => {
                let verdict = deployment::check_cr(
                    &found.record,
                    found.usage.as_ref(),
                    role,
                    &policy,
                    Utc::now(),
                );
                let refused = matches!(verdict, Verdict::Refused(_));
                let mut d = decide(found, &verdict, Some(role), source_name(found));
                if refused {
                    d.detail["final"] = true.into();
                }
                d
            }
        };
        decision.detail["tier"] = json!(tier);
        decision.detail["environment"] = json!(environment);
        let final_now = decision.passed || decision.detail["final"] == true;
        match wait {
            Some(wait) if !final_now && started.elapsed() < wait => {
                tokio::time::sleep(
                    Duration::from_millis(250).min(wait.saturating_sub(started.elapsed())),
                )
                .await;
            }
            Some(wait) if !final_now => {
                decision.code = ReasonCode::TimedOut;
                decision.reason = format!(
                    "timed out after {}s waiting: {}",
                    wait.as_secs(),
                    decision.reason
                );
                break decision;
            }
            _ => break decision,
        }
    };
    conclude(
        &g,
        args,
        Asker::Gate,
        "gate.decision",
        key.as_str(),
        agent,
        decision,
    )
    .await
}

fn verdict_warnings(verdict: &Verdict) -> Vec<String> {
    match verdict {
        Verdict::Pass { warnings } => warnings.clone(),
        _ => Vec::new(),
    }
}
