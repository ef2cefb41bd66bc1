//! The overview's figures: read from the same metric families `/metrics` shows (so the page and
//! a scrape agree), and kept every [`SAMPLE_EVERY`] for the last hour to draw its charts.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use hookbridge_shared::queue::Queue;
use prometheus::proto::{MetricFamily, MetricType};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::metrics::WorkerMetrics;

/// How often the figures are sampled for the charts.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(10);
/// How many samples the charts show: the last hour.
pub const SAMPLES_KEPT: usize = 360;

/// The figures of one moment; counters are totals since this process started.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Figures {
    pub received: u64,
    pub processed: u64,
    pub retried: u64,
    pub dead_lettered: u64,
    /// Messages settled, and the seconds they took in all (processing latency).
    pub settled: u64,
    pub processing_seconds: f64,
    pub queue_visible: u64,
    pub queue_in_flight: u64,
    pub queue_delayed: u64,
    /// `None` when no dead-letter queue is known.
    pub dead_letters: Option<u64>,
    /// Jira answers with status 429.
    pub jira_429: u64,
    /// Jira requests that waited for their rate-limiter slot, and the seconds waited in all.
    pub limiter_waits: u64,
    pub limiter_wait_seconds: f64,
    pub slack_sent: u64,
    pub slack_failed: u64,
    /// Events waiting in the ingest's spool (SQS unavailable); `None` when this process has no
    /// spool (a worker; `hookbridge run` on the embedded queue).
    pub spool: Option<u64>,
    /// `hookbridge_store_up` / `hookbridge_jira_up` (`None`: not reported by this process).
    pub store_up: Option<bool>,
    pub jira_up: Option<bool>,
}

fn label<'a>(metric: &'a prometheus::proto::Metric, name: &str) -> Option<&'a str> {
    metric
        .get_label()
        .iter()
        .find(|l| l.name() == name)
        .map(|l| l.value())
}

#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // Counts are whole, ≥ 0.
fn whole(value: f64) -> u64 {
    value.max(0.0).round() as u64
}

impl Figures {
    /// The figures in `families`.
    pub fn of(families: &[MetricFamily]) -> Self {
        let mut f = Self::default();
        for family in families {
            let name = family.name();
            for metric in family.get_metric() {
                let value = match family.get_field_type() {
                    MetricType::COUNTER => metric.get_counter().value(),
                    MetricType::GAUGE => metric.get_gauge().value(),
                    _ => 0.0,
                };
                match name {
                    "hookbridge_worker_messages_received_total" => f.received += whole(value),
                    "hookbridge_worker_messages_processed_total" => f.processed += whole(value),
                    "hookbridge_worker_messages_retried_total" => f.retried += whole(value),
                    "hookbridge_worker_messages_dead_lettered_total" => {
                        f.dead_lettered += whole(value);
                    }
                    "hookbridge_worker_processing_seconds" => {
                        let h = metric.get_histogram();
                        f.settled += h.sample_count();
                        f.processing_seconds += h.sample_sum();
                    }
                    "hookbridge_queue_messages" => match label(metric, "state") {
                        Some("visible") => f.queue_visible = whole(value),
                        Some("in_flight") => f.queue_in_flight = whole(value),
                        Some("delayed") => f.queue_delayed = whole(value),
                        Some("dead_letters") => f.dead_letters = Some(whole(value)),
                        _ => {}
                    },
                    "hookbridge_jira_requests_total" if label(metric, "status") == Some("429") => {
                        f.jira_429 += whole(value);
                    }
                    "hookbridge_jira_rate_limiter_wait_seconds" => {
                        let h = metric.get_histogram();
                        // The first bucket counts the requests that went at once.
                        let at_once = h.bucket.first().map_or(0, |b| b.cumulative_count());
                        f.limiter_waits += h.sample_count().saturating_sub(at_once);
                        f.limiter_wait_seconds += h.sample_sum();
                    }
                    "hookbridge_slack_alerts_total" => match label(metric, "outcome") {
                        Some("sent") => f.slack_sent += whole(value),
                        Some("failed") => f.slack_failed += whole(value),
                        _ => {}
                    },
                    "hookbridge_store_up" => f.store_up = Some(value >= 1.0),
                    "hookbridge_jira_up" => f.jira_up = Some(value >= 1.0),
                    _ => {}
                }
            }
        }
        f
    }

    /// The figures now: `metrics`' families, and `spool`'s depth when there is one.
    pub async fn read(metrics: &WorkerMetrics, spool: Option<&Queue>) -> Self {
        let mut figures = Self::of(&metrics.families().await);
        if let Some(spool) = spool {
            figures.spool = spool
                .depth()
                .await
                .ok()
                .map(|d| d.visible + d.in_flight + d.delayed);
        }
        figures
    }

    /// Average processing time in milliseconds of what settled between `earlier` and `self`.
    pub fn latency_ms_since(&self, earlier: &Figures) -> Option<f64> {
        let count = self
            .settled
            .checked_sub(earlier.settled)
            .filter(|n| *n > 0)?;
        #[allow(clippy::cast_precision_loss)]
        Some((self.processing_seconds - earlier.processing_seconds) * 1000.0 / count as f64)
    }
}

/// One sample of the last hour.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    pub at: DateTime<Utc>,
    pub figures: Figures,
}

/// The samples of the last hour, oldest first; cheap to clone (shared).
#[derive(Debug, Clone, Default)]
pub struct History {
    samples: Arc<Mutex<VecDeque<Sample>>>,
}

impl History {
    /// Adds a sample, forgetting the oldest beyond [`SAMPLES_KEPT`].
    pub fn add(&self, sample: Sample) {
        let mut samples = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        samples.push_back(sample);
        while samples.len() > SAMPLES_KEPT {
            samples.pop_front();
        }
    }

    /// The samples, oldest first.
    pub fn samples(&self) -> Vec<Sample> {
        let samples = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        samples.iter().cloned().collect()
    }

    /// Samples `metrics` (and `spool`'s depth) every [`SAMPLE_EVERY`] until `shutdown`.
    pub async fn run(
        self,
        metrics: WorkerMetrics,
        spool: Option<Queue>,
        shutdown: CancellationToken,
    ) {
        let mut every = tokio::time::interval(SAMPLE_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = every.tick() => {}
            }
            let figures = Figures::read(&metrics, spool.as_ref()).await;
            self.add(Sample {
                at: Utc::now(),
                figures,
            });
        }
    }
}
