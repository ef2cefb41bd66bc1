//! Assembling a worker from its settings: the store (Redis or embedded), Jira (live or dry-run),
//! routing and the consumer's tunables. Shared by `hookbridge-worker` and `hookbridge run`, so
//! both behave the same.

use std::time::Duration;

use hookbridge_shared::config::CommonArgs;

use crate::audit::AuditLog;
use crate::consumer::ConsumerConfig;
use crate::events::Decoder;
use crate::github_sync::{GithubSync, SyncConfig};
use crate::jira::JiraClient;
use crate::jira::ops::JiraOps;
use crate::router::Router;
use crate::settings::{WorkerArgs, WorkerSettings};
use crate::store::{EMBEDDED_FILE_NAME, Store};

/// Opens the store and the Jira client and builds the worker's [`Router`].
///
/// # Errors
/// A one-line reason naming what could not be opened (Redis unreachable at start, an unreadable
/// embedded store, a Jira client that cannot be built).
pub async fn router(settings: &WorkerSettings, common: &CommonArgs) -> Result<Router, String> {
    let store = match &settings.redis_url {
        Some(url) => Store::connect_redis(url, &settings.redis_prefix)
            .await
            .map_err(|e| format!("REDIS_URL: {e}"))?,
        None => {
            let path = common.data_dir.join(EMBEDDED_FILE_NAME);
            Store::open_embedded(&path).map_err(|e| format!("embedded store: {e}"))?
        }
    };
    let jira = match &settings.jira {
        Some(jira) => JiraOps::Live(
            JiraClient::with_store(jira, Some(store.clone()))
                .map_err(|e| format!("JIRA_BASE_URL: {e}"))?,
        ),
        None => {
            let audit = AuditLog::in_dir(&settings.audit_dir);
            tracing::warn!(
                audit = %audit.path().display(),
                "JIRA_BASE_URL is not set: dry-run, the Jira requests are written to the audit trail"
            );
            JiraOps::DryRun(audit)
        }
    };
    if settings.routing.default_project.is_none() && settings.routing.rules.is_empty() {
        tracing::warn!(
            "neither JIRA_PROJECT_KEY nor routing rules are set: GitHub issues have nowhere to go and are ignored"
        );
    }
    tracing::info!(store = store.backend_name(), "worker store ready");
    Ok(Router {
        decoder: Decoder::new(common.claim_store(), settings.ignore_logins.clone()),
        store: store.clone(),
        github: GithubSync {
            store,
            jira,
            routing: settings.routing.clone(),
            config: SyncConfig {
                ignore_logins: settings.ignore_logins.clone(),
                search_lag: settings.search_lag,
                lock_ttl: settings.lock_ttl,
                ..SyncConfig::default()
            },
        },
    })
}

/// The consumer's tunables from the flags.
pub fn consumer_config(args: &WorkerArgs, common: &CommonArgs) -> ConsumerConfig {
    ConsumerConfig {
        concurrency: args.worker_concurrency as usize,
        visibility: args.visibility_timeout.max(Duration::from_secs(1)),
        max_attempts: common.max_receive_count,
        drain_timeout: args.drain_timeout,
        ..ConsumerConfig::default()
    }
}
