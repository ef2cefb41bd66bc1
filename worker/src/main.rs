//! `hookbridge-worker`: one worker process. See the crate docs of `hookbridge_worker`.

use clap::Parser;
use hookbridge_shared::config::CommonArgs;
use hookbridge_shared::telemetry::{self, LogFormat};
use hookbridge_worker::settings::{WorkerArgs, WorkerSettings};
use hookbridge_worker::startup;

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
    let cli: Cli = hookbridge_shared::args::parse("hookbridge-worker");
    telemetry::init(LogFormat::from_env().unwrap_or_else(|e| fail(e)));
    let settings = WorkerSettings::from_args(&cli.worker, &cli.common).unwrap_or_else(|e| fail(e));
    let queue = cli
        .common
        .open_queue()
        .await
        .unwrap_or_else(|e| fail(format!("queue: {e}")));
    let worker = startup::build(&settings, &cli.common, "worker", &queue)
        .await
        .unwrap_or_else(|e| fail(e));
    let shutdown = hookbridge_shared::shutdown::on_signal();
    let config = startup::consumer_config(&cli.worker, &cli.common);
    startup::run(worker, queue, config, shutdown).await;
    tracing::info!("hookbridge-worker stopped");
}
