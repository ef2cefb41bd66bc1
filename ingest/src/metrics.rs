//! Prometheus metrics of the ingest: requests by route and status, enqueue latency, queue errors,
//! spooled events and claim checks. Route labels are the route patterns, never raw paths, so the
//! label set stays bounded.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry, TextEncoder,
};

/// Another part of the process whose figures the ingest's `/metrics` shows too (in `hookbridge
/// run`, the worker's), as Prometheus text.
pub trait MetricsSource: Send + Sync {
    fn render(&self) -> RenderFuture<'_>;
}

/// What [`MetricsSource::render`] returns: the text, once gathered.
pub type RenderFuture<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = String> + Send + 'a>>;

/// The ingest's metric families; cheap to clone (the collectors are shared).
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    pub requests: IntCounterVec,
    pub request_seconds: HistogramVec,
    pub enqueue_seconds: HistogramVec,
    pub queue_errors: IntCounterVec,
    pub spooled: IntCounter,
    /// Spooled events the queue refused for good, set aside in the spool's dead-letter table.
    pub spool_dead_letters: IntCounter,
    pub claim_checks: IntCounter,
    /// Mirrors the queue backend's own write-call counter at each scrape.
    pub queue_write_calls: IntCounter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Builds and registers every family. Names are fixed and valid, so registration cannot fail.
    #[allow(clippy::expect_used)]
    pub fn new() -> Self {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "hookbridge_http_requests_total",
                "HTTP requests by route and status",
            ),
            &["route", "status"],
        )
        .expect("valid metric");
        let request_seconds = HistogramVec::new(
            HistogramOpts::new(
                "hookbridge_http_request_duration_seconds",
                "HTTP request latency",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ]),
            &["route"],
        )
        .expect("valid metric");
        let enqueue_seconds = HistogramVec::new(
            HistogramOpts::new(
                "hookbridge_enqueue_duration_seconds",
                "time from a verified request to the queue confirming the event is stored",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ]),
            &["backend"],
        )
        .expect("valid metric");
        let queue_errors = IntCounterVec::new(
            Opts::new(
                "hookbridge_queue_errors_total",
                "failed attempts to store an event",
            ),
            &["backend"],
        )
        .expect("valid metric");
        let spooled = IntCounter::new(
            "hookbridge_spooled_events_total",
            "events kept in the local spool because the queue was unavailable",
        )
        .expect("valid metric");
        let spool_dead_letters = IntCounter::new(
            "hookbridge_spool_dead_letters_total",
            "spooled events the queue refused for good (set aside in the spool; see the logs)",
        )
        .expect("valid metric");
        let claim_checks = IntCounter::new(
            "hookbridge_claim_checks_total",
            "payloads stored aside because they exceeded the queue's message size",
        )
        .expect("valid metric");
        let queue_write_calls = IntCounter::new(
            "hookbridge_queue_write_calls_total",
            "write calls made to the queue backend (embedded: group commits; sqs: send requests)",
        )
        .expect("valid metric");
        for collector in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(request_seconds.clone()),
            Box::new(enqueue_seconds.clone()),
            Box::new(queue_errors.clone()),
            Box::new(spooled.clone()),
            Box::new(spool_dead_letters.clone()),
            Box::new(claim_checks.clone()),
            Box::new(queue_write_calls.clone()),
        ] {
            registry
                .register(collector)
                .expect("metric names are unique");
        }
        Self {
            registry,
            requests,
            request_seconds,
            enqueue_seconds,
            queue_errors,
            spooled,
            spool_dead_letters,
            claim_checks,
            queue_write_calls,
        }
    }

    /// Brings the write-call counter up to the backend's own figure (it only grows).
    pub fn sync_queue_write_calls(&self, backend_total: u64) {
        let current = self.queue_write_calls.get();
        if backend_total > current {
            self.queue_write_calls.inc_by(backend_total - current);
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buffer);
        String::from_utf8(buffer).unwrap_or_default()
    }
}

/// Middleware: counts every request by route pattern and status.
pub async fn record_request(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let metrics = req
        .app_data::<actix_web::web::Data<crate::AppState>>()
        .map(|state| state.metrics.clone());
    let response = next.call(req).await?;
    if let Some(metrics) = metrics {
        let route = response
            .request()
            .match_pattern()
            .unwrap_or_else(|| "unmatched".into());
        let status = response.status().as_u16().to_string();
        metrics.requests.with_label_values(&[&route, &status]).inc();
        metrics
            .request_seconds
            .with_label_values(&[&route])
            .observe(started.elapsed().as_secs_f64());
    }
    Ok(response)
}
