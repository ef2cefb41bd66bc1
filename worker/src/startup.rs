//! Assembling a worker from its settings: the store (Redis or embedded), the audit trail, Jira
//! (live or dry-run), the GitHub sync, the CR records, the alert dispatcher and the consumer's
//! tunables. Shared by `hookbridge-worker` and `hookbridge run`, so both behave the same.

use std::sync::Arc;
use std::time::Duration;

use hookbridge_shared::config::CommonArgs;
use hookbridge_shared::queue::Queue;
use tokio_util::sync::CancellationToken;

use crate::admin::AdminState;
use crate::admin::access::Access;
use crate::admin::figures::History;
use crate::alerts::AlertWaker;
use crate::alerts::dispatcher::{Dispatcher, DispatcherConfig, Sink};
use crate::alerts::slack::SlackClient;
use crate::audit::AuditLog;
use crate::change_requests::ChangeRequests;
use crate::consumer::{self, ConsumerConfig};
use crate::deployments::reference::KeyFinder;
use crate::deployments::rule::DeploymentRule;
use crate::events::Decoder;
use crate::gate::Policy;
use crate::github_app::GithubApp;
use crate::github_sync::GithubSync;
use crate::jira::health::JiraHealth;
use crate::jira::ops::JiraOps;
use crate::jira::{JiraClient, JiraError};
use crate::listener::Listener;
use crate::metrics::WorkerMetrics;
use crate::router::Router;
use crate::settings::{WorkerArgs, WorkerSettings};
use crate::store::Store;

/// A worker, assembled: the handler the consumer drives, the dispatcher that sends its alerts,
/// its metrics and, when `WORKER_METRICS_BIND` is set, their bound listener.
pub struct Worker {
    pub router: Router,
    pub dispatcher: Dispatcher,
    pub metrics: WorkerMetrics,
    pub metrics_listener: Option<Listener>,
    /// How often the deployments waiting on CRs are re-checked; `None` without a GitHub App or
    /// with `HOOKBRIDGE_DEPLOYMENT_RECHECK=0`.
    pub deployment_recheck: Option<Duration>,
    /// The operator's page, bound, and what it shows; `None` when off.
    pub admin: Option<(Listener, AdminState)>,
}

/// Opens the store and the Jira client and builds a [`Worker`] for `queue`. `role` names the
/// process in its audit chain (`worker`, `run`).
///
/// # Errors
/// A one-line reason naming what could not be opened (Redis unreachable at start, an unreadable
/// embedded store, a Jira or Slack client that cannot be built, a metrics address that cannot
/// be bound).
pub async fn build(
    settings: &WorkerSettings,
    common: &CommonArgs,
    role: &str,
    queue: &Queue,
) -> Result<Worker, String> {
    crate::settings::require_dead_letter_queue(queue).map_err(|e| e.to_string())?;
    let store = settings.store.open(common).await?;
    let metrics_listener = settings
        .metrics_bind
        .as_deref()
        .map(|bind| Listener::bind(bind, "WORKER_METRICS_BIND"))
        .transpose()?;
    let admin_listener = settings
        .admin
        .as_ref()
        .map(|admin| Listener::bind(&admin.bind, "HOOKBRIDGE_ADMIN_BIND"))
        .transpose()?;
    let audit = AuditLog::open(&settings.audit_dir, role, Some(store.clone()));
    let jira = match &settings.jira {
        Some(jira) => {
            let client = JiraClient::with_store(jira, Some(store.clone()))
                .map_err(|e| format!("JIRA_BASE_URL: {e}"))?;
            check_credentials(&client).await?;
            JiraOps::live(client, audit.clone())
        }
        None => {
            tracing::warn!(
                audit = %audit.dir().display(),
                "JIRA_BASE_URL is not set: dry-run, the Jira requests are written to the audit trail"
            );
            JiraOps::dry_run(audit.clone())
        }
    };
    if settings.routing.default_project.is_none() && settings.routing.rules.is_empty() {
        tracing::warn!(
            "neither JIRA_PROJECT_KEY nor routing rules are set: GitHub issues have nowhere to go and are ignored"
        );
    }
    let cr = &settings.change_requests;
    let sink = match &cr.slack {
        Some(webhook) => Sink::Slack(
            SlackClient::new(webhook.clone()).map_err(|e| format!("SLACK_WEBHOOK_URL: {e}"))?,
        ),
        None => {
            tracing::warn!("SLACK_WEBHOOK_URL is not set: alerts are written to the audit trail");
            Sink::DryRun
        }
    };
    let waker = AlertWaker::default();
    let change_requests = ChangeRequests {
        store: store.clone(),
        audit: audit.clone(),
        config: cr.config.clone(),
        alerts: waker.clone(),
    };
    let deployments = deployment_rule(settings, &store, &audit, &waker, &jira, &change_requests)?;
    let deployment_recheck = deployments
        .app
        .as_ref()
        .and(settings.deployment_rule.recheck);
    let jira_sync = crate::jira_sync::from_settings(&store, &jira, &audit, settings).await?;
    let mut ignore_logins = settings.ignore_logins.clone();
    if let Some((_, login)) = &jira_sync {
        ignore_logins.push(login.clone());
    }
    let jira_health = jira.health();
    let mut github = GithubSync::from_settings(store.clone(), jira, settings);
    github.config.ignore_logins.clone_from(&ignore_logins);
    tracing::info!(
        store = store.backend_name(),
        audit_chain = audit.chain(),
        "worker store ready"
    );
    let metrics = WorkerMetrics::new(store.clone(), queue.clone());
    let admin = admin_listener.map(|listener| {
        let state = admin_state(
            settings,
            &store,
            queue,
            &audit,
            &metrics,
            jira_health.clone(),
        );
        (listener, state)
    });
    Ok(Worker {
        router: Router {
            jira_health,
            audit: audit.clone(),
            decoder: Decoder::new(common.claim_store(), ignore_logins, cr.filter.clone())
                .with_sync_from_jira(jira_sync.is_some()),
            store: store.clone(),
            github,
            jira_sync: jira_sync.map(|(sync, _)| sync),
            change_requests,
            deployments,
            alerts: waker.clone(),
        },
        dispatcher: Dispatcher {
            store: store.clone(),
            sink,
            audit,
            waker,
            config: DispatcherConfig::default(),
        },
        metrics,
        metrics_listener,
        deployment_recheck,
        admin,
    })
}

/// The operator's page's state: what it reads and acts on.
fn admin_state(
    settings: &WorkerSettings,
    store: &Store,
    queue: &Queue,
    audit: &AuditLog,
    metrics: &WorkerMetrics,
    jira: Option<JiraHealth>,
) -> AdminState {
    let cr = &settings.change_requests;
    AdminState {
        store: store.clone(),
        queue: queue.clone(),
        spool: None,
        audit: audit.clone(),
        metrics: metrics.clone(),
        history: History::default(),
        access: Access::new(settings.admin.as_ref().and_then(|a| a.token.clone())),
        jira,
        jira_browse: settings
            .jira
            .as_ref()
            .and_then(|j| j.base_url.join("browse/").ok())
            .map(|u| u.to_string()),
        slack: cr.slack.is_some(),
        statuses: cr.config.statuses.clone(),
        trusted: settings.deployment_rule.pki.clone(),
        cr_ttl: cr.config.ttl,
        audit_dir: settings.audit_dir.clone(),
    }
}

/// The deployment protection rule: the GitHub App when configured, the gates, the gate's policy.
///
/// # Errors
/// A one-line reason naming `GITHUB_APP_PRIVATE_KEY_FILE` or `GITHUB_API_URL`.
fn deployment_rule(
    settings: &WorkerSettings,
    store: &Store,
    audit: &AuditLog,
    waker: &AlertWaker,
    jira: &JiraOps,
    change_requests: &ChangeRequests,
) -> Result<DeploymentRule, String> {
    let rule = &settings.deployment_rule;
    let app = match &rule.app {
        Some(key) => {
            let credentials = key
                .credentials()
                .map_err(|e| format!("GITHUB_APP_PRIVATE_KEY_FILE: {e}"))?;
            let app = GithubApp::new(credentials, rule.api.clone())
                .map_err(|e| format!("GITHUB_API_URL: {e}"))?;
            tracing::info!(app_id = key.id, api = %rule.api, gates = rule.gates.len(),
                "GitHub App ready: answering deployment protection rule events");
            Some(Arc::new(app))
        }
        None => {
            if !rule.gates.is_empty() {
                tracing::warn!(
                    "[[deployment_gates]] are configured but GITHUB_APP_ID is not set: deployment protection rule events cannot be answered"
                );
            }
            None
        }
    };
    let cr = &settings.change_requests;
    Ok(DeploymentRule {
        store: store.clone(),
        audit: audit.clone(),
        alerts: waker.clone(),
        app,
        gates: rule.gates.clone(),
        policy: Policy {
            statuses: cr.config.statuses.clone(),
            pki: rule.pki.clone(),
        },
        keys: KeyFinder::new(&cr.filter.projects),
        change_requests: change_requests.clone(),
        jira: jira.live_client().cloned(),
        filter: cr.filter.clone(),
    })
}

/// Asks Jira who the credentials belong to (`GET /rest/api/3/myself`): refused credentials stop
/// the worker at start; a Jira that cannot be reached does not (the worker then waits for it, see
/// [`crate::jira::health`]).
///
/// # Errors
/// A one-line reason naming `JIRA_API_TOKEN` when Jira answers 401.
async fn check_credentials(client: &JiraClient) -> Result<(), String> {
    match client.myself().await {
        Ok(me) => {
            tracing::info!(
                user = me["displayName"].as_str().unwrap_or(""),
                "Jira accepts the credentials"
            );
            Ok(())
        }
        Err(JiraError::Unavailable {
            reason,
            credentials_refused: true,
            ..
        }) => Err(format!("JIRA_API_TOKEN: {reason}")),
        Err(e) => {
            tracing::warn!(error = %e, "Jira could not be asked at start; the worker waits for it");
            Ok(())
        }
    }
}

/// Consumes `queue` and sends alerts until `shutdown`; in-flight messages are drained (see
/// [`consumer::run`]), and the dispatcher stops between two sends.
pub async fn run(
    worker: Worker,
    queue: Queue,
    config: ConsumerConfig,
    shutdown: CancellationToken,
) {
    if let Some(client) = worker.router.github.jira.live_client() {
        tokio::spawn(crate::jira::watch::watch(
            client.clone(),
            worker.router.store.clone(),
            worker.router.audit.clone(),
            worker.router.alerts.clone(),
            shutdown.clone(),
        ));
    }
    tokio::spawn(crate::store::watch::watch(
        worker.router.store.clone(),
        worker.router.audit.clone(),
        shutdown.clone(),
    ));
    if let Some(every) = worker.deployment_recheck {
        tokio::spawn(crate::deployments::recheck::run(
            worker.router.deployments.clone(),
            every,
            shutdown.clone(),
        ));
    }
    let dispatcher = tokio::spawn(worker.dispatcher.run(shutdown.clone()));
    if let Some(listener) = worker.metrics_listener {
        tracing::info!(url = %listener.url(), "worker metrics at /metrics");
        tokio::spawn(crate::metrics::server::serve(
            listener,
            worker.metrics.clone(),
            shutdown.clone(),
        ));
    }
    if let Some((listener, state)) = worker.admin {
        tracing::info!(url = %listener.url(), "the operator's page");
        tokio::spawn(state.history.clone().run(
            worker.metrics.clone(),
            state.spool.clone(),
            shutdown.clone(),
        ));
        tokio::spawn(crate::admin::server::serve(
            listener,
            state,
            shutdown.clone(),
        ));
    }
    consumer::run(queue, Arc::new(worker.router), config, shutdown).await;
    if let Err(e) = dispatcher.await {
        tracing::error!(error = %e, "the alert dispatcher stopped abnormally");
    }
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
