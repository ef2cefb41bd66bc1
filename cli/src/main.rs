//! `hookbridge`: the operator CLI. Exit codes: 0 success, 1 the check failed / not found,
//! 2 usage or configuration error.

mod commands;
mod progress;

use clap::{Parser, Subcommand};
use hookbridge_shared::telemetry::{self, LogFormat};

#[derive(Parser)]
#[command(name = "hookbridge", version, about = "hookbridge operator CLI")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the ingest and a worker in one process (one-machine mode, embedded queue by default).
    Run(Box<commands::run::RunArgs>),
    /// Sign and post a sample GitHub `issues.opened` event to a running ingest.
    SendTestEvent(commands::send_test_event::SendTestEventArgs),
    /// Configuration file tools.
    #[command(subcommand)]
    Config(commands::config::ConfigCommand),
    /// Change Requests: status, token usage.
    #[command(subcommand)]
    Cr(commands::cr::CrCommand),
    /// Jira set-up helpers: projects and their issue types, fields and their ids.
    #[command(subcommand)]
    Jira(Box<commands::jira::JiraCommand>),
    /// The deployment gate: does an approved Change Request cover this deployment?
    Gate(Box<GateCommand>),
    /// PKI for CR approvals: keygen, sign, verify.
    #[command(subcommand)]
    Pki(Box<commands::pki::PkiCommand>),
    /// The dead-letter queue: list, show, redrive, purge.
    #[command(subcommand)]
    Dlq(Box<commands::dlq::DlqCommand>),
    /// The audit trail: verify its hash chains.
    #[command(subcommand)]
    Audit(Box<commands::audit::AuditCommand>),
    /// GitHub helpers: redeliver a repository webhook's failed deliveries.
    #[command(subcommand)]
    Github(commands::github::GithubCommand),
}

/// `hookbridge gate` arguments.
#[derive(Debug, clap::Args)]
struct GateCommand {
    /// Tier of the service or agent, 1 to 4 (3 and 4 need a CR in staging and prod).
    #[arg(long)]
    tier: u8,
    #[arg(long, value_enum)]
    environment: hookbridge_worker::gate::deployment::Environment,
    /// The agent (or service) being deployed.
    #[arg(long)]
    agent: String,
    /// The Change Request covering the deployment.
    #[arg(long)]
    jira_cr_id: Option<String>,
    /// The approver role required (default: Change Manager).
    #[arg(long)]
    required_approver_role: Option<String>,
    /// Wait this long for the CR to be approved (e.g. 30m); fail at once when it is rejected.
    #[arg(long, value_parser = humantime::parse_duration)]
    wait: Option<std::time::Duration>,
    /// While waiting, ask Jira this often when the store has no record of the CR.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "30s")]
    interval: std::time::Duration,
    #[command(flatten)]
    gate: commands::gate::GateArgs,
}

impl GateCommand {
    async fn run(self) -> Result<(), Failure> {
        commands::gate::deployment_gate(
            self.tier,
            self.environment,
            &self.agent,
            self.jira_cr_id.as_deref(),
            self.required_approver_role.as_deref(),
            self.wait,
            self.interval,
            &self.gate,
        )
        .await
    }
}

/// A failure with its exit code; printed as one line `hookbridge: <reason>`.
pub struct Failure {
    pub code: i32,
    pub reason: String,
}

impl Failure {
    /// Usage or configuration error (exit 2).
    pub fn config(reason: impl std::fmt::Display) -> Self {
        Self {
            code: 2,
            reason: reason.to_string(),
        }
    }

    /// The check failed or the thing was not found (exit 1).
    pub fn check(reason: impl std::fmt::Display) -> Self {
        Self {
            code: 1,
            reason: reason.to_string(),
        }
    }
}

#[tokio::main]
async fn main() {
    let cli: Cli = hookbridge_shared::args::parse("hookbridge");
    let format = match LogFormat::from_env() {
        Ok(f) => f,
        Err(e) => exit(Failure::config(e)),
    };
    telemetry::init(format);
    let result = match cli.command {
        Command::Run(args) => commands::run::run(*args).await,
        Command::SendTestEvent(args) => commands::send_test_event::run(args).await,
        Command::Config(command) => commands::config::run(command),
        Command::Cr(command) => commands::cr::run(command).await,
        Command::Audit(command) => commands::audit::run(*command).await,
        Command::Jira(command) => commands::jira::run(*command).await,
        Command::Pki(command) => commands::pki::run(*command),
        Command::Gate(command) => command.run().await,
        Command::Dlq(command) => commands::dlq::run(*command).await,
        Command::Github(command) => commands::github::run(command).await,
    };
    if let Err(failure) = result {
        exit(failure);
    }
}

fn exit(failure: Failure) -> ! {
    eprintln!("hookbridge: {}", failure.reason);
    std::process::exit(failure.code)
}
