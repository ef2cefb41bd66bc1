//! Assembling the worker's [`Router`] in-process for tests that drive it message by message, from
//! the parts a test chooses (store, Jira, CR configuration), with the defaults of the real binary
//! for the rest.

use std::path::Path;
use std::time::Duration;

use hookbridge_shared::claim::ClaimStore;
use hookbridge_shared::routing::{JiraProjectKey, Routing};
use hookbridge_worker::alerts::AlertWaker;
use hookbridge_worker::audit::AuditLog;
use hookbridge_worker::change_requests::fields::CrFields;
use hookbridge_worker::change_requests::transition::CrStatuses;
use hookbridge_worker::change_requests::{ChangeRequests, CrConfig};
use hookbridge_worker::deployments::reference::KeyFinder;
use hookbridge_worker::deployments::rule::DeploymentRule;
use hookbridge_worker::events::Decoder;
use hookbridge_worker::events::jira::CrFilter;
use hookbridge_worker::gate::Policy;
use hookbridge_worker::github_sync::{GithubSync, SyncConfig};
use hookbridge_worker::handler::Outcome;
use hookbridge_worker::jira::ops::JiraOps;
use hookbridge_worker::router::Router;
use hookbridge_worker::store::{EMBEDDED_FILE_NAME, Store};

/// The CR configuration of the binary's defaults: project `CR`, approvers in
/// `customfield_10102`, signature in `customfield_10103`, `Approved` / `Rejected`, 24 h.
pub fn default_cr_config() -> CrConfig {
    CrConfig {
        fields: CrFields {
            approver_field: "customfield_10102".into(),
            approver_roles: Vec::new(),
            signature_field: "customfield_10103".into(),
        },
        statuses: CrStatuses {
            approved: vec!["Approved".into()],
            rejected: vec!["Rejected".into()],
        },
        ttl: Duration::from_secs(24 * 3600),
    }
}

/// Issues of project `CR` are Change Requests.
pub fn default_cr_filter() -> CrFilter {
    CrFilter {
        projects: vec![JiraProjectKey::parse("CR").expect("a project key")],
        issue_types: Vec::new(),
    }
}

/// The parts a test chooses.
pub struct Parts {
    pub store: Store,
    pub jira: JiraOps,
    pub audit: AuditLog,
    pub routing: Routing,
    pub sync: SyncConfig,
    pub cr: CrConfig,
    pub claims_dir: std::path::PathBuf,
    /// The Jira → GitHub sync (none unless a test sets it).
    pub jira_sync: Option<hookbridge_worker::jira_sync::JiraSync>,
}

impl Parts {
    /// A store, Jira and audit trail; the rest as the binary has it (no routing rules).
    pub fn new(store: Store, jira: JiraOps, audit: AuditLog, dir: &Path) -> Self {
        Self {
            store,
            jira,
            audit,
            routing: Routing {
                rules: Vec::new(),
                default_project: None,
                default_issue_type: "Task".into(),
            },
            sync: SyncConfig::default(),
            cr: default_cr_config(),
            claims_dir: dir.join("claims"),
            jira_sync: None,
        }
    }
}

/// The router made of `parts`, and the waker its alerts ring.
pub fn router(parts: Parts) -> (Router, AlertWaker) {
    let waker = AlertWaker::default();
    let jira_health = parts.jira.health();
    let change_requests = ChangeRequests {
        store: parts.store.clone(),
        audit: parts.audit.clone(),
        config: parts.cr,
        alerts: waker.clone(),
    };
    let router = Router {
        jira_health,
        audit: parts.audit.clone(),
        decoder: Decoder::new(
            ClaimStore::new(parts.claims_dir),
            parts.sync.ignore_logins.clone(),
            default_cr_filter(),
        )
        .with_sync_from_jira(parts.jira_sync.is_some()),
        jira_sync: parts.jira_sync,
        store: parts.store.clone(),
        github: GithubSync {
            store: parts.store.clone(),
            jira: parts.jira,
            routing: parts.routing,
            config: parts.sync,
        },
        change_requests: change_requests.clone(),
        deployments: DeploymentRule {
            store: parts.store,
            audit: parts.audit,
            alerts: waker.clone(),
            app: None,
            gates: Vec::new(),
            policy: Policy {
                statuses: change_requests.config.statuses.clone(),
                pki: None,
            },
            keys: KeyFinder::new(&default_cr_filter().projects),
            change_requests,
            jira: None,
            filter: default_cr_filter(),
        },
        alerts: waker.clone(),
    };
    (router, waker)
}

/// Which store a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Embedded,
    Redis,
}

/// A fresh store of `backend`: a file in `dir`, or the shared test Redis (from
/// `scripts/with-test-services.sh`) under a key prefix of its own starting with `prefix`.
///
/// # Panics
/// When the store cannot be opened, or Redis is asked for outside `scripts/with-test-services.sh`.
pub async fn open_store(backend: Backend, dir: &Path, prefix: &str) -> Store {
    match backend {
        Backend::Embedded => {
            Store::open_embedded(&dir.join(EMBEDDED_FILE_NAME)).expect("embedded store")
        }
        Backend::Redis => {
            let url = std::env::var("HOOKBRIDGE_TEST_REDIS_URL").expect(
                "HOOKBRIDGE_TEST_REDIS_URL: run under scripts/with-test-services.sh (make test)",
            );
            let prefix = format!("{prefix}:{}:", uuid::Uuid::new_v4().simple());
            Store::connect_redis(&url, &prefix)
                .await
                .expect("test Redis")
        }
    }
}

/// Handles a message like the consumer would: again while the outcome says retry or busy (after
/// the asked delay, at most 2 s), ten times at most.
pub async fn deliver(router: &Router, body: &[u8]) -> Outcome {
    let mut outcome = router.handle_body(body).await;
    for _ in 0..10 {
        match &outcome {
            Outcome::Retry { after, .. } | Outcome::Busy { after, .. } => {
                tokio::time::sleep((*after).min(Duration::from_secs(2))).await;
                outcome = router.handle_body(body).await;
            }
            _ => break,
        }
    }
    outcome
}
