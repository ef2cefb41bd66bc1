//! `hookbridge run`: one-machine mode — the ingest and a worker loop in one process, sharing one
//! queue (embedded by default) and one shutdown signal.

use std::sync::Arc;

use hookbridge_ingest::enqueue::Enqueuer;
use hookbridge_ingest::metrics::{MetricsSource, RenderFuture};
use hookbridge_ingest::settings::{IngestArgs, IngestSettings};
use hookbridge_ingest::{Application, open_spool};
use hookbridge_shared::config::CommonArgs;
use hookbridge_shared::queue::Queue;
use hookbridge_worker::metrics::WorkerMetrics;
use hookbridge_worker::settings::admin::RUN_DEFAULT_BIND;
use hookbridge_worker::settings::{WorkerArgs, WorkerSettings};
use hookbridge_worker::startup;

use crate::Failure;

/// The worker's figures on the ingest's `/metrics`: one scrape target for the one process.
struct WorkerFigures(WorkerMetrics);

impl MetricsSource for WorkerFigures {
    fn render(&self) -> RenderFuture<'_> {
        Box::pin(self.0.render())
    }
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    common: CommonArgs,
    #[command(flatten)]
    ingest: IngestArgs,
    #[command(flatten)]
    worker: WorkerArgs,
}

pub async fn run(args: RunArgs) -> Result<(), Failure> {
    let settings =
        IngestSettings::from_args(&args.ingest, &args.common).map_err(Failure::config)?;
    let mut worker_settings =
        WorkerSettings::from_args(&args.worker, &args.common).map_err(Failure::config)?;
    // One-machine mode shows the operator's page unless told not to (HOOKBRIDGE_ADMIN_BIND=off).
    worker_settings.admin = args
        .worker
        .admin
        .settings(Some(RUN_DEFAULT_BIND))
        .map_err(Failure::config)?;
    for warning in settings.warnings() {
        tracing::warn!("{warning}");
    }
    let queue = args
        .common
        .open_queue()
        .await
        .map_err(|e| Failure::config(format!("queue: {e}")))?;
    let spool = open_spool(&args.common, &args.ingest, &queue)
        .map_err(|e| Failure::config(format!("spool: {e}")))?;
    let spool_queue = spool.clone().map(Queue::Embedded);
    let enqueuer = Enqueuer::new(queue.clone(), args.common.claim_store(), spool);
    let mut worker = startup::build(&worker_settings, &args.common, "run", &queue)
        .await
        .map_err(Failure::config)?;
    if let Some((_, admin)) = &mut worker.admin {
        admin.spool = spool_queue;
    }
    let app = Application::build(settings, enqueuer)
        .map_err(|e| Failure::config(format!("{e:#}")))?
        .with_more_metrics(Arc::new(WorkerFigures(worker.metrics.clone())));
    let url = app.base_url();
    let data_dir =
        std::path::absolute(&args.common.data_dir).unwrap_or_else(|_| args.common.data_dir.clone());
    // Signal handlers first: a SIGTERM right after the banner must drain, not kill.
    let shutdown = hookbridge_shared::shutdown::on_signal();
    println!(
        "hookbridge {} — one-machine mode",
        hookbridge_shared::VERSION
    );
    println!("  listening on   {url}  (GitHub: {url}/webhooks/github, Jira: {url}/webhooks/jira)");
    println!("  health         {url}/health");
    println!("  metrics        {url}/metrics  (the ingest's and the worker's)");
    if let Some(listener) = &worker.metrics_listener {
        println!("  worker metrics {}/metrics", listener.url());
    }
    match &worker.admin {
        Some((listener, state)) => println!(
            "  operator's page {}/{}",
            listener.url(),
            if state.access.needs_token() {
                "  (asks for HOOKBRIDGE_ADMIN_TOKEN)"
            } else {
                "  (this machine only)"
            }
        ),
        None => println!("  operator's page off (HOOKBRIDGE_ADMIN_BIND=off)"),
    }
    println!("  queue          {}", queue.backend_name());
    println!("  data dir       {}", data_dir.display());
    match &worker_settings.jira {
        Some(jira) => println!("  jira           {}", jira.base_url),
        None => println!(
            "  jira           dry-run (no JIRA_BASE_URL): requests are written to {}",
            worker_settings
                .audit_dir
                .join("audit-YYYY-MM-DD.jsonl")
                .display()
        ),
    }
    let cr = &worker_settings.change_requests;
    println!(
        "  change requests {} (approved: {})",
        cr.filter
            .projects
            .iter()
            .map(|p| p.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        cr.config.statuses.approved.join(", ")
    );
    println!(
        "  slack          {}",
        if cr.slack.is_some() {
            "alerts to SLACK_WEBHOOK_URL"
        } else {
            "dry-run (no SLACK_WEBHOOK_URL): alerts are written to the audit trail"
        }
    );
    println!("  audit trail    {}", worker_settings.audit_dir.display());
    println!(
        "  send a test event:  GITHUB_WEBHOOK_SECRET=<secret> hookbridge send-test-event --url {url}"
    );
    println!(
        "  approve a test CR:  JIRA_WEBHOOK_SECRET=<secret> hookbridge send-test-event --url {url} --cr CR-2026-0001"
    );
    let config = startup::consumer_config(&args.worker, &args.common);
    let worker = tokio::spawn(startup::run(worker, queue, config, shutdown.clone()));
    let served = app.run_until_stopped(shutdown.clone()).await;
    shutdown.cancel();
    let _ = worker.await;
    served.map_err(|e| Failure::config(format!("{e:#}")))
}
