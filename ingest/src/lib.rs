//! The ingest service: verify a webhook's signature, put the event durably on the queue, answer.
//!
//! It never calls Jira, Slack or Redis: its only effect is an enqueued [`Envelope`]. A `2xx` is sent
//! only after the queue (or, on SQS, the local spool) has confirmed the event is stored.
//!
//! # Layout
//! - [`settings`]: flags/environment → validated [`settings::IngestSettings`].
//! - [`routes`]: the HTTP contract of the README (webhooks, `/health`, `/ready`, `/metrics`).
//! - [`enqueue`]: envelope → queue, with claim checks for oversize payloads and the SQS spool.
//! - [`error`]: every error answer, as JSON, in one place.
//! - [`metrics`], [`tls`]: Prometheus registry and rustls set-up.
//! - [`connections`]: counting open connections, to say so when the cap is reached.
//!
//! [`Envelope`]: hookbridge_shared::envelope::Envelope

pub mod connections;
pub mod enqueue;
pub mod error;
pub mod metrics;
pub mod routes;
pub mod settings;
pub mod tls;

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use actix_web::{App, HttpServer, web};
use anyhow::Context;
use tokio_util::sync::CancellationToken;

use crate::enqueue::Enqueuer;
use crate::metrics::{Metrics, MetricsSource};
use crate::settings::IngestSettings;

/// Shared, read-only state of the HTTP handlers.
pub struct AppState {
    pub settings: IngestSettings,
    pub enqueuer: Enqueuer,
    pub metrics: Metrics,
    /// Memory for large bodies, shared by all requests (see [`routes::body`]).
    pub body_budget: routes::BodyBudget,
    /// Figures of another part of the process shown on the same `/metrics` (`hookbridge run`:
    /// the worker's).
    pub more_metrics: Option<Arc<dyn MetricsSource>>,
}

/// A bound, not yet running, ingest server.
pub struct Application {
    listener: TcpListener,
    state: AppState,
    tls: Option<rustls::ServerConfig>,
}

impl Application {
    /// Binds the listener (port 0 picks a free port) and prepares TLS if configured.
    ///
    /// # Errors
    /// When the address cannot be bound or the TLS files cannot be loaded.
    pub fn build(settings: IngestSettings, enqueuer: Enqueuer) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(&settings.bind)
            .with_context(|| format!("HOOKBRIDGE_BIND: cannot listen on {}", settings.bind))?;
        let tls = match &settings.tls {
            Some(files) => Some(tls::server_config(files)?),
            None => None,
        };
        raise_open_file_limit(settings.max_connections);
        let metrics = Metrics::new();
        enqueuer.attach_metrics(&metrics);
        enqueuer.cap_spool(settings.spool_max_bytes);
        // Expose the error counter at 0 from the start, so alerts on it have a series to watch.
        metrics
            .queue_errors
            .with_label_values(&[enqueuer.queue().backend_name()]);
        Ok(Self {
            listener,
            state: AppState {
                body_budget: routes::BodyBudget::new(settings.body_budget_bytes),
                settings,
                enqueuer,
                metrics,
                more_metrics: None,
            },
            tls,
        })
    }

    /// Shows `source`'s figures on this server's `/metrics` after the ingest's own.
    #[must_use]
    pub fn with_more_metrics(mut self, source: Arc<dyn MetricsSource>) -> Self {
        self.state.more_metrics = Some(source);
        self
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// `http://…` or `https://…` base URL of the bound listener.
    pub fn base_url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        match self.local_addr() {
            Ok(addr) => format!("{scheme}://{addr}"),
            Err(_) => format!("{scheme}://{}", self.state.settings.bind),
        }
    }

    /// Serves until `shutdown` is cancelled, then stops accepting, lets in-flight requests finish
    /// (up to the shutdown timeout) and stops the spool forwarder.
    ///
    /// # Errors
    /// When the server fails to start.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let workers = self.state.settings.http_workers;
        let shutdown_timeout = self.state.settings.shutdown_timeout;
        let max_connections = self.state.settings.max_connections;
        let open = connections::Open::new(max_connections);
        let forwarder = self.state.enqueuer.start_spool_forwarder(shutdown.clone());
        let sweeper = self.state.enqueuer.start_claim_sweeper(shutdown.clone());
        let state = web::Data::new(self.state);
        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .wrap(actix_web::middleware::from_fn(metrics::record_request))
                .configure(routes::configure)
        })
        .disable_signals()
        .shutdown_timeout(shutdown_timeout.as_secs().max(1))
        .workers(workers)
        // actix counts per worker thread; the setting is for the whole process.
        .max_connections(max_connections.div_ceil(workers.max(1)).max(1))
        // Headers must arrive within 5 s of the connection (GitHub sends them at once).
        .client_request_timeout(Duration::from_secs(5))
        .client_disconnect_timeout(Duration::from_secs(1))
        .on_connect(move |_, extensions| open.connected(extensions));
        let server = match self.tls {
            Some(config) => server.listen_rustls_0_23(self.listener, config)?,
            None => server.listen(self.listener)?,
        }
        .run();
        let handle = server.handle();
        let stopper = tokio::spawn(async move {
            shutdown.cancelled().await;
            handle.stop(true).await;
        });
        let result = server.await;
        stopper.abort();
        sweeper.abort();
        if let Some(forwarder) = forwarder {
            let _ = tokio::time::timeout(Duration::from_secs(5), forwarder).await;
        }
        result.context("ingest HTTP server failed")
    }
}

/// Raises the soft limit on open files to the hard limit (as Go's runtime does at start): the
/// common service default of 1,024 would cap connections far below `max_connections`.
fn raise_open_file_limit(max_connections: usize) {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => {
            // Files besides connections: the queue, the spool, claims, logs — keep room for them.
            if (limit as usize) < max_connections + 64 {
                tracing::warn!(
                    open_files = limit,
                    max_connections,
                    "the open-file limit is below HOOKBRIDGE_MAX_CONNECTIONS: connections past it will be refused by the kernel; raise LimitNOFILE / ulimit -n"
                );
            } else {
                tracing::debug!(open_files = limit, "open-file limit raised");
            }
        }
        Err(e) => tracing::warn!(error = %e, "the open-file limit could not be raised"),
    }
}

/// The local spool in front of SQS (`<data dir>/spool.db`); `None` for the embedded queue, which is
/// local and durable already, and when `HOOKBRIDGE_SQS_SPOOL=false`.
///
/// # Errors
/// When the spool database cannot be opened.
pub fn open_spool(
    common: &hookbridge_shared::config::CommonArgs,
    args: &settings::IngestArgs,
    queue: &hookbridge_shared::queue::Queue,
) -> Result<Option<hookbridge_shared::queue::EmbeddedQueue>, hookbridge_shared::queue::QueueError> {
    use hookbridge_shared::queue::embedded::{EmbeddedOptions, EmbeddedQueue};
    match queue {
        hookbridge_shared::queue::Queue::Embedded(_) => Ok(None),
        hookbridge_shared::queue::Queue::Sqs(_) if !args.sqs_spool => Ok(None),
        hookbridge_shared::queue::Queue::Sqs(_) => {
            let mut options = EmbeddedOptions::in_dir(&common.data_dir, "spool.db");
            // Spooled events wait for SQS as long as it takes; they are never dead-lettered here.
            options.max_receive_count = u32::MAX;
            EmbeddedQueue::open(options).map(Some)
        }
    }
}
