//! `hookbridge run`: one-machine mode — the ingest and a worker loop in one process, sharing one
//! queue (embedded by default) and one shutdown signal.

use std::sync::Arc;

use hookbridge_ingest::enqueue::Enqueuer;
use hookbridge_ingest::settings::{IngestArgs, IngestSettings};
use hookbridge_ingest::{Application, open_spool};
use hookbridge_shared::config::CommonArgs;
use hookbridge_worker::consumer::{self, ConsumerConfig};
use hookbridge_worker::handler::LogOnly;
use hookbridge_worker::settings::WorkerArgs;

use crate::Failure;

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
    let enqueuer = Enqueuer::new(queue.clone(), args.common.claim_store(), spool);
    let app =
        Application::build(settings, enqueuer).map_err(|e| Failure::config(format!("{e:#}")))?;
    let url = app.base_url();
    let data_dir =
        std::path::absolute(&args.common.data_dir).unwrap_or_else(|_| args.common.data_dir.clone());
    println!(
        "hookbridge {} — one-machine mode",
        hookbridge_shared::VERSION
    );
    println!("  listening on   {url}  (GitHub: {url}/webhooks/github, Jira: {url}/webhooks/jira)");
    println!("  health         {url}/health");
    println!("  queue          {}", queue.backend_name());
    println!("  data dir       {}", data_dir.display());
    println!(
        "  send a test event:  GITHUB_WEBHOOK_SECRET=<secret> hookbridge send-test-event --url {url}"
    );
    let shutdown = hookbridge_shared::shutdown::on_signal();
    let config = ConsumerConfig {
        concurrency: args.worker.worker_concurrency as usize,
        visibility: args.worker.visibility_timeout,
        max_attempts: args.common.max_receive_count,
        drain_timeout: args.worker.drain_timeout,
        ..ConsumerConfig::default()
    };
    let worker = tokio::spawn(consumer::run(
        queue,
        Arc::new(LogOnly),
        config,
        shutdown.clone(),
    ));
    let served = app.run_until_stopped(shutdown.clone()).await;
    shutdown.cancel();
    let _ = worker.await;
    served.map_err(|e| Failure::config(format!("{e:#}")))
}
