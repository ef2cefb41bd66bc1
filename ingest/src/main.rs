//! `hookbridge-ingest`: the thin HTTP service. See the crate docs of `hookbridge_ingest`.

use clap::Parser;
use hookbridge_ingest::enqueue::Enqueuer;
use hookbridge_ingest::settings::{IngestArgs, IngestSettings};
use hookbridge_ingest::{Application, open_spool};
use hookbridge_shared::config::CommonArgs;
use hookbridge_shared::telemetry::{self, LogFormat};

#[derive(Parser)]
#[command(
    name = "hookbridge-ingest",
    version,
    about = "Verify webhooks and enqueue them durably"
)]
struct Cli {
    #[command(flatten)]
    common: CommonArgs,
    #[command(flatten)]
    ingest: IngestArgs,
}

fn fail(reason: impl std::fmt::Display) -> ! {
    eprintln!("hookbridge-ingest: {reason}");
    std::process::exit(2)
}

#[tokio::main]
async fn main() {
    let cli: Cli = hookbridge_shared::args::parse("hookbridge-ingest");
    let format = LogFormat::from_env().unwrap_or_else(|e| fail(e));
    telemetry::init(format);
    let settings = IngestSettings::from_args(&cli.ingest, &cli.common).unwrap_or_else(|e| fail(e));
    for warning in settings.warnings() {
        tracing::warn!("{warning}");
    }
    let queue = cli
        .common
        .open_queue()
        .await
        .unwrap_or_else(|e| fail(format!("queue: {e}")));
    let spool = open_spool(&cli.common, &cli.ingest, &queue)
        .unwrap_or_else(|e| fail(format!("spool: {e}")));
    let enqueuer = Enqueuer::new(queue, cli.common.claim_store(), spool);
    let app = Application::build(settings, enqueuer).unwrap_or_else(|e| fail(format!("{e:#}")));
    let shutdown = hookbridge_shared::shutdown::on_signal();
    tracing::info!(url = %app.base_url(), version = hookbridge_shared::VERSION, "hookbridge-ingest listening");
    if let Err(e) = app.run_until_stopped(shutdown).await {
        fail(format!("{e:#}"));
    }
    tracing::info!("hookbridge-ingest stopped");
}
