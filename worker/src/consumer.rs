//! The consumer loop.
//!
//! Invariants:
//! - a message is deleted only after its [`Handler`] returned [`Outcome::Done`] (or dead-lettered
//!   after [`Outcome::Fail`] / the last failed attempt); nothing is acked early;
//! - while a message is being handled its visibility is extended every half timeout, so long work
//!   is not handed to a second worker;
//! - on shutdown the loop stops receiving, lets in-flight work finish for `drain_timeout`, then
//!   releases (makes visible again) whatever is still unfinished: never lost, only redelivered;
//! - a message whose work could not start ([`Outcome::Busy`]) never uses up its attempts: it is
//!   released with its delay while the queue would still hand it out again, and once it has been
//!   received as often as the queue allows (the queue itself, SQS's redrive policy or the embedded
//!   queue, dead-letters a message received `max_attempts` times), a copy is sent to the back of
//!   the queue before the original is deleted. The copy starts with a receive count of zero; if
//!   deleting the original fails, both are handled and the delivery-id dedupe makes the second
//!   one a no-op.

use std::sync::Arc;
use std::time::Duration;

use hookbridge_shared::queue::{Delivery, Queue, ReceiveOptions};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::handler::{Handler, Outcome};
use crate::metrics::pipeline::MessageLabels;

/// How the loop consumes.
#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    /// Messages handled at once by this process.
    pub concurrency: usize,
    /// How long a received message stays invisible (extended while it is handled).
    pub visibility: Duration,
    /// After this many receives, a failing message is dead-lettered instead of retried.
    pub max_attempts: u32,
    /// Long-poll wait per receive call.
    pub receive_wait: Duration,
    /// How long in-flight work may take to finish after shutdown was requested.
    pub drain_timeout: Duration,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        Self {
            concurrency: 32,
            visibility: Duration::from_secs(60),
            max_attempts: 5,
            receive_wait: Duration::from_secs(2),
            drain_timeout: Duration::from_secs(30),
        }
    }
}

/// Consumes `queue` with `handler` until `shutdown` is cancelled and in-flight work is settled.
pub async fn run<H: Handler>(
    queue: Queue,
    handler: Arc<H>,
    config: ConsumerConfig,
    shutdown: CancellationToken,
) {
    let permits = Arc::new(Semaphore::new(config.concurrency.max(1)));
    let hard_stop = CancellationToken::new();
    let mut tasks = JoinSet::new();
    let mut backoff = Duration::from_millis(200);
    tracing::info!(
        backend = queue.backend_name(),
        concurrency = config.concurrency,
        "worker consuming"
    );
    while !shutdown.is_cancelled() {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            () = handler.ready() => {}
        }
        let first = tokio::select! {
            _ = shutdown.cancelled() => break,
            permit = permits.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let mut held = vec![first];
        while held.len() < 10 {
            match permits.clone().try_acquire_owned() {
                Ok(p) => held.push(p),
                Err(_) => break,
            }
        }
        // The receive is never cancelled half-way: a dropped call could leave received messages
        // invisible for a whole timeout. It is short (long poll) and what it brings after a
        // shutdown request is released at once.
        let received = queue
            .receive(ReceiveOptions {
                max_messages: held.len(),
                wait: config.receive_wait,
                visibility: config.visibility,
            })
            .await;
        let deliveries = match received {
            Ok(d) => {
                backoff = Duration::from_millis(200);
                d
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "receive failed");
                tokio::select! {
                    _ = shutdown.cancelled() => {}
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(10));
                continue;
            }
        };
        for delivery in deliveries {
            if shutdown.is_cancelled() {
                if let Err(e) = delivery.release(Duration::ZERO).await {
                    tracing::warn!(error = %e, "could not release a message at shutdown; it returns after its timeout");
                }
                continue;
            }
            let Some(permit) = held.pop() else { break };
            tasks.spawn(process(
                delivery,
                queue.clone(),
                permit,
                handler.clone(),
                config.clone(),
                hard_stop.clone(),
            ));
        }
        while tasks.try_join_next().is_some() {}
    }
    let in_flight = tasks.len();
    if in_flight > 0 {
        tracing::info!(in_flight, "draining in-flight messages");
    }
    let drained = tokio::time::timeout(config.drain_timeout, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            remaining = tasks.len(),
            "drain timeout: releasing unfinished messages"
        );
        hard_stop.cancel();
        while tasks.join_next().await.is_some() {}
    }
    tracing::info!("worker stopped");
}

async fn process<H: Handler>(
    delivery: Delivery,
    queue: Queue,
    _permit: OwnedSemaphorePermit,
    handler: Arc<H>,
    config: ConsumerConfig,
    hard_stop: CancellationToken,
) {
    let started = std::time::Instant::now();
    let labels = MessageLabels::of(&delivery.message.body);
    labels.received();
    let half = (config.visibility / 2).max(Duration::from_millis(500));
    let mut extend = tokio::time::interval_at(tokio::time::Instant::now() + half, half);
    let message = delivery.message.clone();
    let work = handler.handle(&message);
    tokio::pin!(work);
    let outcome = loop {
        tokio::select! {
            outcome = &mut work => break Some(outcome),
            _ = extend.tick() => {
                if let Err(e) = delivery.extend(config.visibility).await {
                    tracing::warn!(error = %e, message_id = %delivery.message.id, "visibility extension failed");
                }
            }
            _ = hard_stop.cancelled() => break None,
        }
    };
    let Some(outcome) = outcome else {
        let _ = delivery.release(Duration::ZERO).await;
        return;
    };
    settle(
        delivery,
        &queue,
        outcome,
        config.max_attempts,
        handler.as_ref(),
        |settled| {
            let took = started.elapsed();
            match settled {
                Settled::Acked => labels.processed(took),
                Settled::Released => labels.retried(took),
                Settled::DeadLettered => labels.dead_lettered(took),
            }
        },
    )
    .await;
}

/// How a message was settled, once the queue confirmed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    Acked,
    Released,
    DeadLettered,
}

/// Acts on the outcome: ack, release with delay, or dead-letter with the reason (and tell the
/// handler, which audits and alerts it).
pub async fn settle<H: Handler>(
    delivery: Delivery,
    queue: &Queue,
    outcome: Outcome,
    max_attempts: u32,
    handler: &H,
    settled: impl FnOnce(Settled),
) {
    let id = delivery.message.id.clone();
    let attempts = delivery.message.receive_count;
    let message = delivery.message.clone();
    let mut dead_letter_reason = None;
    let how = match &outcome {
        Outcome::Done => Settled::Acked,
        Outcome::Retry { .. } if attempts < max_attempts => Settled::Released,
        Outcome::Busy { .. } => Settled::Released,
        _ => Settled::DeadLettered,
    };
    let result = match outcome {
        Outcome::Done => delivery.ack().await,
        Outcome::Retry { after, reason } if attempts < max_attempts => {
            tracing::warn!(message_id = %id, attempts, retry_in_s = after.as_secs(), %reason, "transient failure; will retry");
            handler.failed(&message, &reason, true).await;
            delivery.release(after).await
        }
        Outcome::Retry { reason, .. } => {
            tracing::error!(message_id = %id, attempts, %reason, "giving up after the last attempt; dead-lettering");
            let reason = format!("after {attempts} attempts: {reason}");
            handler.failed(&message, &reason, false).await;
            let result = delivery.dead_letter(&reason).await;
            dead_letter_reason = Some(reason);
            result
        }
        Outcome::Busy { after, reason } if attempts < max_attempts => {
            tracing::info!(message_id = %id, attempts, retry_in_ms = after.as_millis() as u64, %reason, "busy; given back");
            delivery.release(after).await
        }
        Outcome::Busy { after, reason } => requeue(delivery, queue, after, &reason).await,
        Outcome::Fail { reason } => {
            tracing::error!(message_id = %id, %reason, "permanent failure; dead-lettering");
            handler.failed(&message, &reason, false).await;
            let result = delivery.dead_letter(&reason).await;
            dead_letter_reason = Some(reason);
            result
        }
    };
    match (result, dead_letter_reason) {
        (Err(e), _) => {
            tracing::warn!(message_id = %id, error = %e, "settling the message failed; it will be redelivered");
        }
        (Ok(()), Some(reason)) => {
            settled(how);
            handler.dead_lettered(&message, &reason).await;
        }
        (Ok(()), None) => settled(how),
    }
}

/// Puts a busy message that the queue would not hand out again (it was received `max_attempts`
/// times) back as a fresh copy: sent first, then the original deleted, so it is never lost — at
/// worst both are handled and the dedupe by delivery id acknowledges the second. The copy is
/// visible at once; the handler's wait for the lock paces it.
async fn requeue(
    delivery: Delivery,
    queue: &Queue,
    after: Duration,
    reason: &str,
) -> Result<(), hookbridge_shared::queue::QueueError> {
    let id = delivery.message.id.clone();
    match queue.send(delivery.message.body.clone()).await {
        Ok(copy) => {
            tracing::info!(message_id = %id, copy = %copy, %reason, "busy on its last receive; sent back as a fresh copy");
            delivery.ack().await
        }
        Err(e) => {
            tracing::warn!(message_id = %id, error = %e, %reason, "busy on its last receive and no copy could be sent; given back (the queue may dead-letter it)");
            delivery.release(after).await
        }
    }
}
