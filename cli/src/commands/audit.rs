//! `hookbridge audit verify [--json]`: checks every hash chain of the audit trail against the
//! heads in the store; exit 1 naming file and line on any tampering.

use hookbridge_shared::config::CommonArgs;
use hookbridge_worker::audit::verify::{Report, verify};
use hookbridge_worker::settings::{AuditArgs, StoreArgs};

use crate::Failure;

#[derive(Debug, clap::Subcommand)]
pub enum AuditCommand {
    /// Check the audit trail's hash chains; exit 1 on any tampering, naming file and line.
    Verify {
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        common: CommonArgs,
        #[command(flatten)]
        store: StoreArgs,
        #[command(flatten)]
        audit: AuditArgs,
    },
}

pub async fn run(command: AuditCommand) -> Result<(), Failure> {
    let AuditCommand::Verify {
        json,
        common,
        store,
        audit,
    } = command;
    let dir = audit.dir(&common);
    let store = store
        .settings()
        .map_err(Failure::config)?
        .open(&common)
        .await
        .map_err(Failure::config)?;
    let report = verify(&dir, &store).await.map_err(Failure::config)?;
    if json {
        println!("{}", serde_json::to_string(&report).unwrap_or_default());
    } else {
        print_report(&dir, &report);
    }
    if report.ok {
        Ok(())
    } else {
        let first = &report.problems[0];
        Err(Failure::check(format!(
            "audit trail tampered with: {}:{}: {}{}",
            first.file,
            first.line,
            first.problem,
            match report.problems.len() {
                1 => String::new(),
                n => format!(" (and {} more)", n - 1),
            }
        )))
    }
}

fn print_report(dir: &std::path::Path, report: &Report) {
    for p in &report.problems {
        let chain = p
            .chain
            .as_deref()
            .map(|c| format!(" [chain {c}]"))
            .unwrap_or_default();
        println!("{}:{}: {}{chain}", p.file, p.line, p.problem);
    }
    let count = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
    println!(
        "{}: {}, {}, {}{}: {}",
        dir.display(),
        count(report.files, "file"),
        count(report.records, "record"),
        count(report.chains, "chain"),
        if report.expired_chains > 0 {
            format!(" ({} expired by retention)", report.expired_chains)
        } else {
            String::new()
        },
        if report.ok { "ok" } else { "TAMPERED" }
    );
}
