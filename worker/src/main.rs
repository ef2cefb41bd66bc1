//! `hookbridge-worker`: one worker process. See the crate docs of `hookbridge_worker`.

use std::sync::Arc;

use clap::Parser;
use hookbridge_shared::config::CommonArgs;
use hookbridge_shared::telemetry::{self, LogFormat};
use hookbridge_worker::consumer::{self, ConsumerConfig};
use hookbridge_worker::handler::LogOnly;
use hookbridge_worker::settings::WorkerArgs;

#[derive(Parser)]
#[command(
    name = "hookbridge-worker",
    version,
    about = "Consume the hookbridge queue"
)]
struct Cli {
    #[command(flatten)]
    common: CommonArgs,
    #[command(flatten)]
    worker: WorkerArgs,
}

fn fail(reason: impl std::fmt::Display) -> ! {
    eprintln!("hookbridge-worker: {reason}");
    std::process::exit(2)
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    telemetry::init(LogFormat::from_env().unwrap_or_else(|e| fail(e)));
    let queue = cli
        .common
        .open_queue()
        .await
        .unwrap_or_else(|e| fail(format!("queue: {e}")));
    let shutdown = hookbridge_shared::shutdown::on_signal();
    let config = ConsumerConfig {
        concurrency: cli.worker.worker_concurrency as usize,
        visibility: cli.worker.visibility_timeout,
        max_attempts: cli.common.max_receive_count,
        drain_timeout: cli.worker.drain_timeout,
        ..ConsumerConfig::default()
    };
    consumer::run(queue, Arc::new(LogOnly), config, shutdown).await;
}
