//! Worker flags and environment (the README's "Configuration"), validated once into the pieces the
//! worker needs. Each group of flags is its own `clap::Args`, so the CLI commands that need the same
//! settings (the store, Jira, the CR fields) flatten the same group and read them the same way.
//!
//! # Layout
//! - [`store`]: `REDIS_URL` or the embedded store.
//! - [`jira`]: the Jira connection, or dry-run.
//! - [`change_requests`]: CR fields, statuses, cache TTL, Slack.
//! - [`deployments`]: the GitHub App, the deployment gates and PKI of the deployment rule.
//! - [`admin`]: the operator's page — where it listens, the token it asks for.

pub mod admin;
pub mod change_requests;
pub mod deployments;
pub mod jira;
pub mod jira_sync;
pub mod store;

use std::path::PathBuf;
use std::time::Duration;

use hookbridge_shared::config::{CommonArgs, ConfigError, parse_seconds};
use hookbridge_shared::queue::Queue;
use hookbridge_shared::routing::{JiraProjectKey, Routing};

pub use admin::{AdminArgs, AdminSettings};
pub use change_requests::{CrArgs, CrSettings};
pub use deployments::{DeploymentRuleArgs, DeploymentRuleSettings};
pub use jira::{JiraArgs, JiraSettings};
pub use store::{StoreArgs, StoreSettings};

/// Refuses a worker on an SQS queue with no dead-letter queue (README, "Configuration":
/// `SQS_DLQ_URL`): with neither a `RedrivePolicy` on the queue nor `SQS_DLQ_URL`, a message that
/// always fails is retried until the queue's retention deletes it, unseen by anyone. A redrive
/// policy whose DLQ could not be resolved yet still counts: the queue resolves it on first use.
/// The embedded queue always has its dead-letter table.
///
/// # Errors
/// [`ConfigError`] naming `SQS_DLQ_URL` and `RedrivePolicy`.
pub fn require_dead_letter_queue(queue: &Queue) -> Result<(), ConfigError> {
    match queue {
        Queue::Sqs(sqs)
            if sqs.dead_letter_queue_url().is_none()
                && sqs.redrive_max_receive_count().is_none() =>
        {
            Err(ConfigError::new(
                "SQS_DLQ_URL",
                "the SQS queue has no dead-letter queue (no RedrivePolicy on the queue and \
                 SQS_DLQ_URL unset): a message that always fails would be retried until the \
                 queue's retention deleted it; give the queue a RedrivePolicy or set SQS_DLQ_URL",
            ))
        }
        _ => Ok(()),
    }
}

/// Where the audit trail is written.
#[derive(Debug, Clone, clap::Args)]
pub struct AuditArgs {
    /// Audit trail directory (default: <data dir>/audit).
    #[arg(long, env = "HOOKBRIDGE_AUDIT_DIR")]
    pub audit_dir: Option<PathBuf>,
}

impl AuditArgs {
    pub fn dir(&self, common: &CommonArgs) -> PathBuf {
        self.audit_dir
            .clone()
            .unwrap_or_else(|| common.data_dir.join("audit"))
    }
}

/// Worker flags.
#[derive(Debug, Clone, clap::Args)]
pub struct WorkerArgs {
    /// Messages this process handles at once.
    #[arg(long, env = "WORKER_CONCURRENCY", default_value_t = 32,
          value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub worker_concurrency: u32,

    /// Seconds a received message stays invisible to other workers (extended while in work).
    #[arg(long, env = "HOOKBRIDGE_VISIBILITY_TIMEOUT", default_value = "60", value_parser = parse_seconds)]
    pub visibility_timeout: Duration,

    /// Seconds in-flight messages get to finish after SIGTERM before they are released.
    #[arg(long, env = "HOOKBRIDGE_DRAIN_TIMEOUT", default_value = "30", value_parser = parse_seconds)]
    pub drain_timeout: Duration,

    #[command(flatten)]
    pub store: StoreArgs,

    #[command(flatten)]
    pub jira: JiraArgs,

    /// Default Jira project for GitHub issues.
    #[arg(long, env = "JIRA_PROJECT_KEY")]
    pub jira_project_key: Option<String>,

    /// Default Jira issue type for GitHub issues.
    #[arg(long, env = "JIRA_ISSUE_TYPE", default_value = "Task")]
    pub jira_issue_type: String,

    /// Seconds Jira search may lag behind a create (crash recovery waits this long before
    /// searching for an issue an interrupted attempt may have created).
    #[arg(long, env = "HOOKBRIDGE_JIRA_SEARCH_LAG", default_value = "30", value_parser = parse_seconds)]
    pub jira_search_lag: Duration,

    /// Seconds a per-issue lock outlives a worker that died holding it (live workers extend it
    /// every third of this).
    #[arg(long, env = "HOOKBRIDGE_LOCK_TTL", default_value = "15", value_parser = parse_seconds)]
    pub lock_ttl: Duration,

    /// GitHub logins of the bridge itself, comma-separated: their events are ignored (no loops).
    #[arg(long, env = "GITHUB_BOT_LOGIN", value_delimiter = ',')]
    pub github_bot_login: Vec<String>,

    #[command(flatten)]
    pub audit: AuditArgs,

    #[command(flatten)]
    pub change_requests: CrArgs,

    #[command(flatten)]
    pub deployment_rule: DeploymentRuleArgs,

    #[command(flatten)]
    pub jira_sync: jira_sync::JiraSyncArgs,

    /// `host:port` of the worker's Prometheus `/metrics` listener (off unless set).
    #[arg(long, env = "WORKER_METRICS_BIND")]
    pub metrics_bind: Option<String>,

    #[command(flatten)]
    pub admin: AdminArgs,
}

/// A `host:port` listen address, checked for form (the port is a number) but not resolved: the
/// listener resolves and binds it at start.
fn listen_address(value: &str) -> Result<String, String> {
    match value.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {
            Ok(value.to_owned())
        }
        _ => Err(format!("{value:?} is not host:port (e.g. 0.0.0.0:9102)")),
    }
}

/// Validated worker settings.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    pub jira: Option<JiraSettings>,
    pub store: StoreSettings,
    pub routing: Routing,
    pub audit_dir: PathBuf,
    pub search_lag: Duration,
    pub lock_ttl: Duration,
    pub ignore_logins: Vec<String>,
    pub change_requests: CrSettings,
    pub deployment_rule: DeploymentRuleSettings,
    /// The Jira → GitHub sync's GitHub credentials (`GITHUB_TOKEN`; else the App above).
    pub jira_sync: jira_sync::JiraSyncSettings,
    /// `WORKER_METRICS_BIND`, when set.
    pub metrics_bind: Option<String>,
    /// The operator's page, when on (`hookbridge run` turns it on by default, see
    /// [`AdminArgs::settings`]).
    pub admin: Option<AdminSettings>,
    /// The TOML's `[users]`: GitHub login → Jira accountId.
    pub users: std::collections::BTreeMap<String, String>,
}

impl WorkerSettings {
    /// # Errors
    /// [`ConfigError`] naming the key: half a Jira configuration, a malformed URL or project key,
    /// invalid routing rules or CR settings, contradicting claim settings.
    pub fn from_args(args: &WorkerArgs, common: &CommonArgs) -> Result<Self, ConfigError> {
        common.check_claim_settings()?;
        let jira = args.jira.settings()?;
        let default_project = args
            .jira_project_key
            .as_deref()
            .filter(|v| !v.trim().is_empty())
            .map(JiraProjectKey::parse)
            .transpose()
            .map_err(|e| ConfigError::new("JIRA_PROJECT_KEY", e))?;
        let file = common.file_config()?;
        let routing = Routing {
            rules: file.routes.clone(),
            default_project,
            default_issue_type: args.jira_issue_type.trim().to_owned(),
        };
        let config_key = common
            .config_file
            .as_ref()
            .map_or("JIRA_ISSUE_TYPE".to_owned(), |p| p.display().to_string());
        routing
            .validate()
            .map_err(|e| ConfigError::new(config_key, e))?;
        let deployment_rule = args.deployment_rule.settings(&file)?;
        let jira_sync = args
            .jira_sync
            .settings(&routing, deployment_rule.app.is_some())?;
        Ok(Self {
            jira,
            jira_sync,
            store: args.store.settings()?,
            routing,
            audit_dir: args.audit.dir(common),
            search_lag: args.jira_search_lag,
            lock_ttl: args.lock_ttl.max(Duration::from_secs(1)),
            ignore_logins: args
                .github_bot_login
                .iter()
                .map(|l| l.trim().to_owned())
                .filter(|l| !l.is_empty())
                .collect(),
            users: file.users.clone(),
            change_requests: args.change_requests.settings(&file)?,
            deployment_rule,
            metrics_bind: args
                .metrics_bind
                .as_deref()
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(|v| listen_address(v).map_err(|e| ConfigError::new("WORKER_METRICS_BIND", e)))
                .transpose()?,
            admin: args.admin.settings(None)?,
        })
    }
}
