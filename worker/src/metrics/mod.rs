//! The worker's Prometheus metrics (README, "Metrics"): what this process counts ([`pipeline`]),
//! the queue's depth read at each scrape, and the governance figures every process keeps in the
//! store ([`governance`]).
//!
//! They are served by the worker's own listener ([`server`], `WORKER_METRICS_BIND`, off unless
//! set) and, in `hookbridge run`, on the ingest's `/metrics` beside the ingest's own.
//!
//! # Layout
//! - [`pipeline`]: messages, processing time, Jira calls, rate-limiter waits, Slack alerts.
//! - [`governance`]: gate decisions, failed CR checks, approval latency — counters in the store.
//! - [`server`]: the `/metrics` listener.

pub mod governance;
pub mod pipeline;
pub mod server;

use hookbridge_shared::queue::Queue;
use prometheus::core::Collector;
use prometheus::proto::MetricFamily;
use prometheus::{Encoder, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder};

use crate::store::Store;

/// The worker's metrics; cheap to clone (the collectors and the store connection are shared).
#[derive(Clone)]
pub struct WorkerMetrics {
    registry: Registry,
    store: Store,
    queue: Queue,
    /// 1 when the last scrape could read the store's figures, else 0.
    store_up: IntGauge,
    /// The queue's messages by state, read at each scrape.
    depth: IntGaugeVec,
}

impl WorkerMetrics {
    /// Builds and registers every family. Names are fixed and valid, so registration cannot fail.
    #[allow(clippy::expect_used)]
    pub fn new(store: Store, queue: Queue) -> Self {
        pipeline::register_all();
        let registry = Registry::new();
        let store_up = IntGauge::new(
            "hookbridge_worker_store_up",
            "1 when the worker could read the store at the last scrape",
        )
        .expect("valid metric");
        let depth = IntGaugeVec::new(
            Opts::new(
                "hookbridge_queue_messages",
                "messages in the queue by state (visible, in_flight, delayed, dead_letters); approximate on SQS",
            ),
            &["state"],
        )
        .expect("valid metric");
        for collector in [
            Box::new(store_up.clone()) as Box<dyn Collector>,
            Box::new(depth.clone()),
        ] {
            registry
                .register(collector)
                .expect("metric names are unique");
        }
        Self {
            registry,
            store,
            queue,
            store_up,
            depth,
        }
    }

    async fn read_depth(&self) {
        match self.queue.depth().await {
            Ok(depth) => {
                let mut states = vec![
                    ("visible", depth.visible),
                    ("in_flight", depth.in_flight),
                    ("delayed", depth.delayed),
                ];
                states.extend(depth.dead_letters.map(|n| ("dead_letters", n)));
                for (state, n) in states {
                    self.depth
                        .with_label_values(&[state])
                        .set(i64::try_from(n).unwrap_or(i64::MAX));
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "metrics: the queue's depth could not be read");
                pipeline::depth_unreadable();
            }
        }
    }

    /// The Prometheus text exposition: this process's families and the store's. A store that
    /// cannot be read leaves its families out and says so in `hookbridge_worker_store_up`.
    pub async fn render(&self) -> String {
        let families = self.families().await;
        let mut buffer = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&families, &mut buffer) {
            tracing::error!(error = %e, "metrics could not be encoded");
        }
        String::from_utf8(buffer).unwrap_or_default()
    }

    /// Every family [`render`](Self::render) shows, read now (the operator's page reads its
    /// figures here, so they are the ones `/metrics` shows).
    pub async fn families(&self) -> Vec<MetricFamily> {
        let stored = match governance::families(&self.store).await {
            Ok(families) => {
                self.store_up.set(1);
                families
            }
            Err(e) => {
                tracing::warn!(error = %e, "metrics: the governance figures could not be read");
                self.store_up.set(0);
                Vec::new()
            }
        };
        self.read_depth().await;
        let mut families: Vec<MetricFamily> = self.registry.gather();
        families.extend(pipeline::REGISTRY.gather());
        families.extend(stored.into_iter().filter(|f| !f.get_metric().is_empty()));
        families
    }
}
