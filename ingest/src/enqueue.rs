//! Envelope → durable storage. The ingest answers 2xx only after [`Enqueuer::enqueue`] returns Ok.
//!
//! - Oversize payloads (envelope larger than the queue's message limit, 256 KiB on SQS by default)
//!   are written to the claim store (a directory or S3) first and the envelope carries a
//!   reference: never dropped. When the claim store cannot take the payload the event is answered
//!   503, not spooled: the spool forwards to the same queue, which cannot take the payload inline.
//! - With SQS, a local spool (an embedded queue in the data dir) takes the event when SQS cannot,
//!   so a short SQS outage costs no deliveries; a forwarder moves spooled events to SQS as soon as
//!   it answers again. `/ready` stays 200 while either can take events.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hookbridge_shared::claim::ClaimStore;
use hookbridge_shared::envelope::Envelope;
use hookbridge_shared::queue::{EmbeddedQueue, Queue, ReceiveOptions};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::error::IngestError;
use crate::metrics::Metrics;

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
            }),
        }
    }

    pub fn queue(&self) -> &Queue {
        &self.inner.queue
    }

    pub(crate) fn attach_metrics(&self, metrics: &Metrics) {
        let _ = self.inner.metrics.set(metrics.clone());
    }

    /// Encodes the envelope (claim-checking an oversize payload) and stores it durably.
    ///
    /// # Errors
    /// [`IngestError::Unavailable`] when neither the queue nor the spool stored the event.
    pub async fn enqueue(&self, mut envelope: Envelope) -> Result<Stored, IngestError> {
        let started = Instant::now();
        let backend = self.inner.queue.backend_name();
        let mut body = envelope.encode();
        if let Some(limit) = self.inner.queue.max_message_bytes()
            && body.len() > limit
        {
            self.claim_payload(&mut envelope).await?;
            body = envelope.encode();
        }
        let body = Bytes::from(body);
        let outcome = match self.inner.queue.send(body.clone()).await {
            Ok(_) => Ok(Stored::Queue),
            Err(queue_error) => {
                self.count_queue_error(backend);
                match &self.inner.spool {
                    Some(spool) => match spool.send(body).await {
                        Ok(_) => {
                            tracing::warn!(error = %queue_error, delivery = %envelope.delivery,
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
                }
            }
        };
        if let Some(m) = self.inner.metrics.get() {
            m.enqueue_seconds
                .with_label_values(&[backend])
                .observe(started.elapsed().as_secs_f64());
        }
        outcome
    }

    async fn claim_payload(&self, envelope: &mut Envelope) -> Result<(), IngestError> {
        let Some(payload) = envelope.payload.take() else {
            return Ok(());
        };
        let bytes = Bytes::from(String::from(Box::<str>::from(payload)));
        let claim = self.inner.claims.put(bytes).await.map_err(|e| {
            tracing::error!(error = %e, delivery = %envelope.delivery, "claim store write failed");
            IngestError::Unavailable("the oversize event could not be stored aside".into())
        })?;
        tracing::info!(delivery = %envelope.delivery, bytes = claim.bytes, sha256 = %claim.sha256,
            claims = %self.inner.claims,
            "payload exceeds the queue message limit; stored with a claim check");
        if let Some(m) = self.inner.metrics.get() {
            m.claim_checks.inc();
        }
        envelope.payload_claim = Some(claim);
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
        let queue_error = match self.inner.queue.check_ready().await {
            Ok(()) => return Ok(self.inner.queue.backend_name()),
            Err(e) => e,
        };
        match &self.inner.spool {
            Some(spool) => match spool.check_ready().await {
                Ok(()) => Ok("spool"),
                Err(spool_error) => Err(format!("queue: {queue_error}; spool: {spool_error}")),
            },
            None => Err(format!("queue: {queue_error}")),
        }
    }

    /// Moves spooled events to the queue until `shutdown`; `None` when there is no spool.
    pub fn start_spool_forwarder(&self, shutdown: CancellationToken) -> Option<JoinHandle<()>> {
        let spool = self.inner.spool.clone()?;
        let queue = self.inner.queue.clone();
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
                for (delivery, result) in deliveries.into_iter().zip(results) {
                    match result {
                        Ok(_) => {
                            if let Err(e) = delivery.ack().await {
                                // The spool will hand it out again: a duplicate the worker dedupes.
                                tracing::warn!(error = %e, "forwarded event could not be removed from the spool");
                            }
                        }
                        Err(_) => {
                            failed += 1;
                            let _ = delivery.release(backoff).await;
                        }
                    }
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
