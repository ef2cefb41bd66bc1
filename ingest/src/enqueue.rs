//! Envelope → durable storage. The ingest answers 2xx only after [`Enqueuer::enqueue`] returns Ok.
//!
//! - Oversize payloads (envelope larger than the queue's message limit, 256 KiB on SQS by default)
//!   are written to the claim store (a directory or S3) first and the envelope carries a
//!   reference: never dropped. When the claim store cannot take the payload the event is answered
//!   503, not spooled: the spool forwards to the same queue, which cannot take the payload inline.
//! - With SQS, a local spool (an embedded queue in the data dir) takes the event when SQS cannot,
//!   so a short SQS outage costs no deliveries; a forwarder moves spooled events to SQS as soon as
//!   it answers again. `/ready` stays 200 while either can take events.
//! - SQS may hang rather than refuse (a brown-out): a send that has not finished within
//!   [`SEND_DEADLINE`] goes to the spool, well inside GitHub's 10 s, and for [`TRIP`] afterwards
//!   events go straight to the spool instead of waiting on SQS again; then one send at a time
//!   probes SQS while the rest keep to the spool ([`Detour`]; README, "Reliability").
//! - What SQS refuses for good (not what it fails to answer) is never spooled: the spool would
//!   offer it forever. The claim-check decision is made on the size SQS will count, after its
//!   escaping; and the forwarder dead-letters (in the spool) anything SQS refuses.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hookbridge_shared::claim::ClaimStore;
use hookbridge_shared::envelope::OutgoingEnvelope;
use hookbridge_shared::queue::{EmbeddedQueue, Queue, QueueError, ReceiveOptions};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::error::IngestError;
use crate::metrics::Metrics;

/// How long a send to the queue may take before the event goes to the spool instead.
pub const SEND_DEADLINE: Duration = Duration::from_secs(3);

/// After a failed or late send, how long events go straight to the spool.
pub const TRIP: Duration = Duration::from_secs(10);

/// How old a claim gets before it is collected: longer than any queue keeps a message naming it
/// (SQS keeps a message 14 days at most, the dead-letter queue included).
pub const CLAIM_MAX_AGE: Duration = Duration::from_secs(15 * 24 * 3600);

/// How often claims are collected.
const CLAIM_SWEEP_EVERY: Duration = Duration::from_secs(3600);

/// How long `/ready` waits for the queue to answer before it asks the spool.
const READY_DEADLINE: Duration = Duration::from_secs(2);

/// The spool detour after the queue failed or hung: for [`TRIP`] every send goes to the spool;
/// after that one send at a time tries the queue (the probe) while the others keep to the spool,
/// so that a queue that still hangs costs one delivery a [`SEND_DEADLINE`], not every delivery
/// arriving meanwhile. The probe's success, or the spool forwarder's, ends the detour.
#[derive(Debug, Default)]
struct Detour {
    until: Option<Instant>,
    probing: bool,
}

/// Where one send goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Queue,
    Spool,
    /// The queue, as the one send that finds out whether it answers again.
    Probe,
}

/// Held by the probing send; a probe that ends without a verdict (its request was dropped) lets
/// the next send probe instead.
struct ProbeGuard<'a>(&'a Enqueuer);

impl Drop for ProbeGuard<'_> {
    fn drop(&mut self) {
        self.0.detour().probing = false;
    }
}

/// Where an accepted event was stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    Queue,
    Spool,
}

struct Inner {
    queue: Queue,
    spool: Option<Queue>,
    claims: ClaimStore,
    metrics: OnceLock<Metrics>,
    /// The largest the spool file may grow to (`HOOKBRIDGE_SPOOL_MAX_MB`).
    spool_cap: OnceLock<u64>,
    /// Whether sends skip the queue for the spool (the queue just failed or hung).
    detour: Mutex<Detour>,
}

/// Stores envelopes; cheap to clone.
#[derive(Clone)]
pub struct Enqueuer {
    inner: Arc<Inner>,
}

impl Enqueuer {
    /// `spool` is only useful in front of a remote queue (SQS); the embedded queue is local already.
    pub fn new(queue: Queue, claims: ClaimStore, spool: Option<EmbeddedQueue>) -> Self {
        Self {
            inner: Arc::new(Inner {
                queue,
                spool: spool.map(Queue::Embedded),
                claims,
                metrics: OnceLock::new(),
                spool_cap: OnceLock::new(),
                detour: Mutex::new(Detour::default()),
            }),
        }
    }

    pub fn queue(&self) -> &Queue {
        &self.inner.queue
    }

    pub(crate) fn attach_metrics(&self, metrics: &Metrics) {
        let _ = self.inner.metrics.set(metrics.clone());
    }

    /// Sets the spool's size cap: past it, the spool takes no more events (503 instead).
    pub(crate) fn cap_spool(&self, bytes: u64) {
        let _ = self.inner.spool_cap.set(bytes);
    }

    /// Whether the spool file has reached its cap.
    fn spool_full(&self, spool: &Queue) -> bool {
        let (Some(cap), Queue::Embedded(embedded)) = (self.inner.spool_cap.get(), spool) else {
            return false;
        };
        // The database, its write-ahead log and its inbox files together.
        embedded.disk_bytes() >= *cap
    }

    /// Encodes the envelope (claim-checking an oversize payload) and stores it durably.
    ///
    /// # Errors
    /// [`IngestError::Unavailable`] when neither the queue nor the spool stored the event.
    pub async fn enqueue(&self, mut envelope: OutgoingEnvelope) -> Result<Stored, IngestError> {
        let started = Instant::now();
        let backend = self.inner.queue.backend_name();
        let mut body = envelope.encode();
        if let Some(limit) = self.inner.queue.max_message_bytes()
            && self.encoded_len(&body)? > limit
        {
            self.claim_payload(&mut envelope).await?;
            body = envelope.encode();
        }
        let body = Bytes::from(body);
        let route = self.route();
        let sent = if route == Route::Spool {
            Err("the queue failed moments ago; straight to the spool".to_owned())
        } else {
            let probe = (route == Route::Probe).then(|| ProbeGuard(self));
            match tokio::time::timeout(SEND_DEADLINE, self.inner.queue.send(body.clone())).await {
                Ok(Ok(_)) => {
                    if probe.is_some() {
                        tracing::info!("the queue answers again; events go to it, not the spool");
                        self.untrip();
                    }
                    Ok(())
                }
                Ok(Err(QueueError::Rejected(reason))) => {
                    // The queue answered: a probe's verdict is that it is back.
                    if probe.is_some() {
                        self.untrip();
                    }
                    // Permanent: the spool would only offer it to the same refusal forever.
                    self.count_queue_error(backend);
                    tracing::error!(delivery = %envelope.head.delivery, %reason, "the queue refused the event");
                    return Err(IngestError::Unavailable(format!(
                        "the queue refused the event: {reason}"
                    )));
                }
                Ok(Err(e)) => {
                    self.trip();
                    self.count_queue_error(backend);
                    Err(e.to_string())
                }
                Err(_) => {
                    self.trip();
                    self.count_queue_error(backend);
                    Err(format!(
                        "the queue did not answer within {}s",
                        SEND_DEADLINE.as_secs()
                    ))
                }
            }
        };
        let outcome = match sent {
            Ok(()) => Ok(Stored::Queue),
            Err(queue_error) => match &self.inner.spool {
                Some(spool) if self.spool_full(spool) => {
                    self.count_queue_error("spool");
                    tracing::error!(error = %queue_error, delivery = %envelope.head.delivery,
                        "queue unavailable and the spool is full (HOOKBRIDGE_SPOOL_MAX_MB): event refused");
                    Err(IngestError::Unavailable(format!(
                        "the event could not be stored ({queue_error}; the spool is full); \
                         retry the delivery later"
                    )))
                }
                Some(spool) => match spool.send(body).await {
                    Ok(_) => {
                        tracing::warn!(error = %queue_error, delivery = %envelope.head.delivery,
                            "queue unavailable; event kept in the local spool");
                        if let Some(m) = self.inner.metrics.get() {
                            m.spooled.inc();
                        }
                        Ok(Stored::Spool)
                    }
                    Err(spool_error) => {
                        self.count_queue_error("spool");
                        Err(IngestError::Unavailable(format!(
                            "the event could not be stored ({queue_error}; spool: {spool_error}); \
                             retry the delivery later"
                        )))
                    }
                },
                None => Err(IngestError::Unavailable(format!(
                    "the event could not be stored ({queue_error}); retry the delivery later"
                ))),
            },
        };
        if let Some(m) = self.inner.metrics.get() {
            m.enqueue_seconds
                .with_label_values(&[backend])
                .observe(started.elapsed().as_secs_f64());
        }
        outcome
    }

    /// The size the queue will count for `body`; a body it could never take is refused here.
    fn encoded_len(&self, body: &[u8]) -> Result<usize, IngestError> {
        self.inner
            .queue
            .encoded_len(body)
            .map_err(|e| IngestError::Unavailable(format!("the queue cannot take this event: {e}")))
    }

    fn detour(&self) -> std::sync::MutexGuard<'_, Detour> {
        self.inner.detour.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Where the next send goes (see [`Detour`]).
    fn route(&self) -> Route {
        if self.inner.spool.is_none() {
            return Route::Queue;
        }
        let mut detour = self.detour();
        match detour.until {
            None => Route::Queue,
            Some(until) if Instant::now() < until => Route::Spool,
            Some(_) if detour.probing => Route::Spool,
            Some(_) => {
                detour.probing = true;
                Route::Probe
            }
        }
    }

    /// Whether the detour's first [`TRIP`] is still running.
    fn tripped(&self) -> bool {
        self.detour()
            .until
            .is_some_and(|until| Instant::now() < until)
    }

    fn trip(&self) {
        if self.inner.spool.is_some() {
            *self.detour() = Detour {
                until: Some(Instant::now() + TRIP),
                probing: false,
            };
        }
    }

    fn untrip(&self) {
        *self.detour() = Detour::default();
    }

    async fn claim_payload(&self, envelope: &mut OutgoingEnvelope) -> Result<(), IngestError> {
        let Some(payload) = envelope.payload.take() else {
            return Ok(());
        };
        let bytes = payload.into_bytes();
        let claim = self.inner.claims.put(bytes).await.map_err(|e| {
            tracing::error!(error = %e, delivery = %envelope.head.delivery, "claim store write failed");
            IngestError::Unavailable("the oversize event could not be stored aside".into())
        })?;
        tracing::info!(delivery = %envelope.head.delivery, bytes = claim.bytes, sha256 = %claim.sha256,
            claims = %self.inner.claims,
            "payload exceeds the queue message limit; stored with a claim check");
        if let Some(m) = self.inner.metrics.get() {
            m.claim_checks.inc();
        }
        envelope.head.payload_claim = Some(claim);
        Ok(())
    }

    fn count_queue_error(&self, backend: &str) {
        if let Some(m) = self.inner.metrics.get() {
            m.queue_errors.with_label_values(&[backend]).inc();
        }
    }

    /// Which store can take events now: the queue, else the spool.
    ///
    /// # Errors
    /// A reason when neither answers.
    pub async fn ready(&self) -> Result<&'static str, String> {
        let queue_error = if self.tripped() && self.inner.spool.is_some() {
            "it failed moments ago".to_owned()
        } else {
            match tokio::time::timeout(READY_DEADLINE, self.inner.queue.check_ready()).await {
                Ok(Ok(())) => return Ok(self.inner.queue.backend_name()),
                Ok(Err(e)) => e.to_string(),
                Err(_) => format!("no answer within {}s", READY_DEADLINE.as_secs()),
            }
        };
        match &self.inner.spool {
            Some(spool) => match spool.check_ready().await {
                Ok(()) => Ok("spool"),
                Err(spool_error) => Err(format!("queue: {queue_error}; spool: {spool_error}")),
            },
            None => Err(format!("queue: {queue_error}")),
        }
    }

    /// Collects claims older than [`CLAIM_MAX_AGE`] at start and every hour until `shutdown`, so
    /// that oversize events cannot fill the disk over time (README, "Configuration").
    pub fn start_claim_sweeper(&self, shutdown: CancellationToken) -> JoinHandle<()> {
        let claims = self.inner.claims.clone();
        tokio::spawn(async move {
            loop {
                match claims.remove_older_than(CLAIM_MAX_AGE).await {
                    Ok(0) => {}
                    Ok(removed) => {
                        tracing::info!(removed, claims = %claims, "old claims collected")
                    }
                    Err(e) => tracing::warn!(error = %e, "old claims could not be collected"),
                }
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(CLAIM_SWEEP_EVERY) => {}
                }
            }
        })
    }

    /// Moves spooled events to the queue until `shutdown`; `None` when there is no spool.
    pub fn start_spool_forwarder(&self, shutdown: CancellationToken) -> Option<JoinHandle<()>> {
        let spool = self.inner.spool.clone()?;
        let queue = self.inner.queue.clone();
        let enqueuer = self.clone();
        Some(tokio::spawn(async move {
            let mut backoff = Duration::from_millis(500);
            loop {
                let received = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    r = spool.receive(ReceiveOptions {
                        max_messages: 10,
                        wait: Duration::from_secs(2),
                        visibility: Duration::from_secs(60),
                    }) => r,
                };
                let deliveries = match received {
                    Ok(d) if d.is_empty() => continue,
                    Ok(d) => d,
                    Err(e) => {
                        tracing::warn!(error = %e, "spool unreadable");
                        tokio::time::sleep(backoff).await;
                        continue;
                    }
                };
                let bodies = deliveries.iter().map(|d| d.message.body.clone()).collect();
                let results = queue.send_batch(bodies).await;
                let mut failed = 0;
                let mut forwarded = 0;
                for (delivery, result) in deliveries.into_iter().zip(results) {
                    match result {
                        Ok(_) => {
                            forwarded += 1;
                            if let Err(e) = delivery.ack().await {
                                // The spool will hand it out again: a duplicate the worker dedupes.
                                tracing::warn!(error = %e, "forwarded event could not be removed from the spool");
                            }
                        }
                        Err(QueueError::Rejected(reason)) => {
                            // It can never be sent: kept aside, not offered again and again.
                            tracing::error!(message_id = %delivery.message.id, %reason,
                                "the queue refuses a spooled event for good; it is dead-lettered in the spool");
                            if let Some(m) = enqueuer.inner.metrics.get() {
                                m.spool_dead_letters.inc();
                            }
                            if let Err(e) = delivery.dead_letter(&reason).await {
                                tracing::warn!(error = %e, "the refused event could not be dead-lettered in the spool");
                            }
                        }
                        Err(_) => {
                            failed += 1;
                            let _ = delivery.release(backoff).await;
                        }
                    }
                }
                if forwarded > 0 {
                    // The queue answers again: new events go to it, not to the spool.
                    enqueuer.untrip();
                }
                if failed > 0 {
                    tracing::warn!(failed, "queue still unavailable; spooled events wait");
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                    tokio::time::sleep(backoff).await;
                } else {
                    backoff = Duration::from_millis(500);
                    tracing::info!("spooled events forwarded to the queue");
                }
            }
        }))
    }
}
