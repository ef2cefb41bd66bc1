//! What the governance commands (`cr`, `audit`) share: the worker's own settings groups, read the
//! same way, and the store, audit chain and CR records they open from them.

use hookbridge_shared::config::CommonArgs;
use hookbridge_worker::alerts::AlertWaker;
use hookbridge_worker::audit::AuditLog;
use hookbridge_worker::change_requests::ChangeRequests;
use hookbridge_worker::jira::JiraClient;
use hookbridge_worker::settings::{CrArgs, CrSettings, JiraArgs, StoreArgs};
use hookbridge_worker::store::Store;

use crate::Failure;

/// The settings every governance command takes.
#[derive(Debug, clap::Args)]
pub struct GovernanceArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub jira: JiraArgs,
    /// The audit trail's directory (default: <data dir>/audit). A flag of its own name here:
    /// `--audit-dir` of `cr validate` and `gate` is where their audit JSON file goes.
    #[arg(long = "audit-trail-dir", env = "HOOKBRIDGE_AUDIT_DIR")]
    pub audit_trail_dir: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub change_requests: CrArgs,
}

/// What a governance command works with.
pub struct Governance {
    pub store: Store,
    pub audit: AuditLog,
    pub jira: Option<JiraClient>,
    pub settings: CrSettings,
    pub change_requests: ChangeRequests,
}

impl GovernanceArgs {
    /// Validates the settings (exit 2 with the key on a bad one) and opens the store (exit 2 when
    /// it cannot be opened: the command cannot do anything without it).
    ///
    /// # Errors
    /// [`Failure`] with exit code 2.
    pub async fn open(&self) -> Result<Governance, Failure> {
        let file = self.common.file_config().map_err(Failure::config)?;
        let settings = self
            .change_requests
            .settings(&file)
            .map_err(Failure::config)?;
        let jira_settings = self.jira.settings().map_err(Failure::config)?;
        let store = self
            .store
            .settings()
            .map_err(Failure::config)?
            .open(&self.common)
            .await
            .map_err(Failure::config)?;
        let jira = jira_settings
            .map(|s| JiraClient::with_store(&s, Some(store.clone())))
            .transpose()
            .map_err(|e| Failure::config(format!("JIRA_BASE_URL: {e}")))?;
        let trail = self
            .audit_trail_dir
            .clone()
            .unwrap_or_else(|| self.common.data_dir.join("audit"));
        let audit = AuditLog::open(&trail, "cli", Some(store.clone()));
        let change_requests = ChangeRequests {
            store: store.clone(),
            audit: audit.clone(),
            config: settings.config.clone(),
            alerts: AlertWaker::default(),
        };
        Ok(Governance {
            store,
            audit,
            jira,
            settings,
            change_requests,
        })
    }
}
