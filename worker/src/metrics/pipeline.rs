//! The pipeline's own figures, counted by this process (README, "Metrics"): messages received,
//! processed, retried and dead-lettered by source and event; how long handling took; Jira calls
//! by endpoint and status; rate-limiter waits; Slack alerts by outcome.
//!
//! They live in process-wide collectors, registered once in the crate's registry, so that the
//! consumer, the Jira client and the alert dispatcher count without being handed a metrics
//! object each; [`super::WorkerMetrics`] gathers them with the store's and the queue's figures.

use std::sync::LazyLock;
use std::time::Duration;

use hookbridge_shared::envelope::Envelope;
use prometheus::core::Collector;
use prometheus::{Counter, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry};

/// This process's pipeline collectors.
pub static REGISTRY: LazyLock<Registry> = LazyLock::new(Registry::new);

/// Registers `collector` in [`REGISTRY`]; names are fixed and valid, so this cannot fail.
#[allow(clippy::expect_used)]
fn registered<C: Collector + Clone + 'static>(collector: prometheus::Result<C>) -> C {
    let collector = collector.expect("valid metric");
    REGISTRY
        .register(Box::new(collector.clone()))
        .expect("metric names are unique");
    collector
}

fn counter_vec(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    registered(IntCounterVec::new(Opts::new(name, help), labels))
}

static RECEIVED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "hookbridge_worker_messages_received_total",
        "queue messages received, by source and event",
        &["source", "event"],
    )
});
static PROCESSED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "hookbridge_worker_messages_processed_total",
        "queue messages handled to the end and deleted, by source and event",
        &["source", "event"],
    )
});
static RETRIED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "hookbridge_worker_messages_retried_total",
        "failed attempts given back to be tried again, by source and event",
        &["source", "event"],
    )
});
static DEAD_LETTERED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "hookbridge_worker_messages_dead_lettered_total",
        "messages moved to the dead-letter queue, by source and event",
        &["source", "event"],
    )
});
static PROCESSING: LazyLock<HistogramVec> = LazyLock::new(|| {
    registered(HistogramVec::new(
        HistogramOpts::new(
            "hookbridge_worker_processing_seconds",
            "time from receiving a message to settling it, by source",
        )
        .buckets(vec![
            0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
        ]),
        &["source"],
    ))
});
static JIRA_REQUESTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "hookbridge_jira_requests_total",
        "Jira REST requests by endpoint and HTTP status (`error` when no answer came)",
        &["endpoint", "status"],
    )
});
static LIMITER_WAIT: LazyLock<HistogramVec> = LazyLock::new(|| {
    registered(HistogramVec::new(
        HistogramOpts::new(
            "hookbridge_jira_rate_limiter_wait_seconds",
            "time each Jira request waited for its rate-limiter slot, by endpoint (the first bucket counts requests that went at once)",
        )
        .buckets(vec![0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]),
        &["endpoint"],
    ))
});
static SLACK_ALERTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "hookbridge_slack_alerts_total",
        "Slack alerts by outcome (sent, dry_run, retry, failed)",
        &["outcome"],
    )
});
static JIRA_UP: LazyLock<IntGauge> = LazyLock::new(|| {
    registered(IntGauge::new(
        "hookbridge_jira_up",
        "1 while Jira takes the worker's requests; 0 while it refuses the credentials or cannot be reached (the worker then takes no work)",
    ))
});
static STORE_UP: LazyLock<IntGauge> = LazyLock::new(|| {
    registered(IntGauge::new(
        "hookbridge_store_up",
        "1 while the worker's store (Redis or embedded) answers; 0 while it cannot be reached (the worker then takes no work, and messages use up no attempts)",
    ))
});
static DEPTH_ERRORS: LazyLock<Counter> = LazyLock::new(|| {
    registered(Counter::new(
        "hookbridge_worker_queue_depth_errors_total",
        "scrapes that could not read the queue's depth (hookbridge_queue_messages then shows the last figures read)",
    ))
});

/// The events the worker acts on, whose series exist from the start.
const KNOWN_EVENTS: [(&str, &str); 5] = [
    ("github", "issues"),
    ("github", "issue_comment"),
    ("jira", "jira:issue_created"),
    ("jira", "jira:issue_updated"),
    ("jira", "jira:issue_deleted"),
];

/// Makes every family, and the series of known label values, show from the first scrape: a
/// series at zero can be graphed and alerted on; a missing one cannot.
pub fn register_all() {
    for (source, event) in KNOWN_EVENTS {
        for family in [&*RECEIVED, &*PROCESSED, &*RETRIED, &*DEAD_LETTERED] {
            family.with_label_values(&[source, event]);
        }
        PROCESSING.with_label_values(&[source]);
    }
    for outcome in ["sent", "dry_run", "retry", "failed"] {
        SLACK_ALERTS.with_label_values(&[outcome]);
    }
    LazyLock::force(&RECEIVED);
    LazyLock::force(&PROCESSED);
    LazyLock::force(&RETRIED);
    LazyLock::force(&DEAD_LETTERED);
    LazyLock::force(&PROCESSING);
    LazyLock::force(&JIRA_REQUESTS);
    LazyLock::force(&LIMITER_WAIT);
    LazyLock::force(&SLACK_ALERTS);
    LazyLock::force(&DEPTH_ERRORS);
    JIRA_UP.set(1);
    STORE_UP.set(1);
}

/// The `source` and `event` labels of a message: from its envelope, the event name kept only
/// when it looks like one (a bounded label set, whatever a sender puts in its header).
#[derive(Debug, Clone)]
pub struct MessageLabels {
    source: String,
    event: String,
}

impl MessageLabels {
    pub fn of(body: &[u8]) -> Self {
        match Envelope::decode(body) {
            Ok(envelope) => {
                let event = envelope.event.as_str();
                let plain = event.len() <= 64
                    && event
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"_:.-".contains(&b));
                Self {
                    source: envelope.source.as_str().to_owned(),
                    event: if plain {
                        event.to_owned()
                    } else {
                        "other".into()
                    },
                }
            }
            Err(_) => Self {
                source: "unknown".into(),
                event: "unknown".into(),
            },
        }
    }

    fn pair(&self) -> [&str; 2] {
        [&self.source, &self.event]
    }

    pub fn received(&self) {
        RECEIVED.with_label_values(&self.pair()).inc();
    }

    pub fn processed(&self, took: Duration) {
        PROCESSED.with_label_values(&self.pair()).inc();
        self.took(took);
    }

    pub fn retried(&self, took: Duration) {
        RETRIED.with_label_values(&self.pair()).inc();
        self.took(took);
    }

    pub fn dead_lettered(&self, took: Duration) {
        DEAD_LETTERED.with_label_values(&self.pair()).inc();
        self.took(took);
    }

    fn took(&self, took: Duration) {
        PROCESSING
            .with_label_values(&[self.source.as_str()])
            .observe(took.as_secs_f64());
    }
}

/// One Jira request answered with `status` (or `None`: no answer).
pub fn jira_request(endpoint: &str, status: Option<u16>) {
    let status = status.map_or_else(|| "error".to_owned(), |s| s.to_string());
    JIRA_REQUESTS.with_label_values(&[endpoint, &status]).inc();
}

/// A Jira request waited `waited` for its rate-limiter slot (zero: it went at once).
pub fn limiter_waited(endpoint: &str, waited: Duration) {
    LIMITER_WAIT
        .with_label_values(&[endpoint])
        .observe(waited.as_secs_f64());
}

/// `count` Slack alerts ended with `outcome`.
pub fn slack_alerts(outcome: &str, count: usize) {
    SLACK_ALERTS
        .with_label_values(&[outcome])
        .inc_by(count as u64);
}

/// Whether Jira takes the worker's requests (see [`crate::jira::health`]).
pub fn jira_up(up: bool) {
    JIRA_UP.set(i64::from(up));
}

/// Whether the store answers (see [`crate::store::health`]).
pub fn store_up(up: bool) {
    STORE_UP.set(i64::from(up));
}

/// A scrape could not read the queue's depth.
pub fn depth_unreadable() {
    DEPTH_ERRORS.inc();
}
