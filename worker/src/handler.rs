//! The unit of work: one queue message in, one [`Outcome`] out. The consumer loop only adds
//! concurrency, visibility extension and settling; everything that decides what an event means
//! lives behind [`Handler`], so tests can drive it deterministically.

use std::future::Future;
use std::time::Duration;

use hookbridge_shared::envelope::Envelope;
use hookbridge_shared::queue::Received;

/// What to do with a message after handling it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The effect happened (or had already happened): delete the message.
    Done,
    /// A transient failure: make the message visible again after `after`; after the last allowed
    /// attempt it is dead-lettered with `reason`.
    Retry { after: Duration, reason: String },
    /// A permanent failure: dead-letter now with `reason`, no retry storm.
    Fail { reason: String },
    /// The work could not start because another worker holds what it needs (the per-issue lock),
    /// or could not be done because something every message needs is unavailable (Jira, the
    /// store): try again after `after`. This never counts as a failed attempt and never
    /// dead-letters the message — a burst of events on one issue must wait its turn, and a backlog
    /// must outlive an outage, not use up its attempts waiting.
    Busy { after: Duration, reason: String },
}

/// Handles one message.
pub trait Handler: Send + Sync + 'static {
    fn handle(&self, message: &Received) -> impl Future<Output = Outcome> + Send;

    /// Returns once the handler can do work: the consumer takes no message before (a Jira that
    /// refuses every request would otherwise fail them all). The default is always ready.
    fn ready(&self) -> impl Future<Output = ()> + Send {
        async {}
    }

    /// Told after an attempt at `message` failed with `reason`, before it is given back
    /// (`will_retry`) or dead-lettered (to record why); the default does nothing.
    fn failed(
        &self,
        message: &Received,
        reason: &str,
        will_retry: bool,
    ) -> impl Future<Output = ()> + Send {
        let _ = (message, reason, will_retry);
        async {}
    }

    /// Told after `message` was moved to the dead-letter queue with `reason` (to audit and alert
    /// it); the default does nothing.
    fn dead_lettered(&self, message: &Received, reason: &str) -> impl Future<Output = ()> + Send {
        let _ = (message, reason);
        async {}
    }
}

/// Decodes the envelope, logs it and acknowledges it. Used until the Jira pipeline is configured,
/// and by tests of the consumer loop.
#[derive(Debug, Default, Clone)]
pub struct LogOnly;

impl Handler for LogOnly {
    async fn handle(&self, message: &Received) -> Outcome {
        match Envelope::decode(&message.body) {
            Ok(envelope) => {
                tracing::info!(source = %envelope.source, event = %envelope.event,
                    action = envelope.action.as_deref().unwrap_or(""), delivery = %envelope.delivery,
                    receive_count = message.receive_count, "event consumed");
                Outcome::Done
            }
            Err(e) => Outcome::Fail {
                reason: e.to_string(),
            },
        }
    }
}

/// A failed step of a handler, already sorted into retry-later and give-up; `?` converts store
/// and Jira errors into it, and it becomes the message's [`Outcome`].
#[derive(Debug)]
pub enum Failure {
    Retry {
        after: Duration,
        reason: String,
    },
    Fail(String),
    /// Not this message's failure (Jira refuses every request, or Jira or the store cannot be
    /// reached): it waits, without using up an attempt.
    Wait {
        after: Duration,
        reason: String,
    },
}

impl From<Failure> for Outcome {
    fn from(failure: Failure) -> Self {
        match failure {
            Failure::Retry { after, reason } => Outcome::Retry { after, reason },
            Failure::Fail(reason) => Outcome::Fail { reason },
            Failure::Wait { after, reason } => Outcome::Busy { after, reason },
        }
    }
}

/// A store that cannot be reached is everyone's failure, not this message's: it waits without using
/// up an attempt (and the router stops the consumer until the store answers, see
/// [`crate::store::health`]). A store that answered with an error that may repeat (a script error,
/// out of memory) is retried as this message's failure, so a message that always meets it still
/// ends in the dead-letter queue; corrupt data is dead-lettered at once.
impl From<crate::store::StoreError> for Failure {
    fn from(e: crate::store::StoreError) -> Self {
        if e.is_unavailable() {
            Failure::Wait {
                after: crate::store::health::PROBE_EVERY,
                reason: e.to_string(),
            }
        } else if e.is_transient() {
            Failure::Retry {
                after: Duration::from_secs(5),
                reason: e.to_string(),
            }
        } else {
            Failure::Fail(e.to_string())
        }
    }
}

impl From<crate::jira::ops::OpsError> for Failure {
    fn from(e: crate::jira::ops::OpsError) -> Self {
        if e.is_systemic() {
            return Failure::Wait {
                after: crate::jira::health::PROBE_EVERY,
                reason: e.to_string(),
            };
        }
        match e.retry_after() {
            Some(after) => Failure::Retry {
                after,
                reason: e.to_string(),
            },
            None => Failure::Fail(e.to_string()),
        }
    }
}

/// An audit record that cannot be written stops the work (the trail must not miss a decision);
/// the message is retried once the disk takes writes again.
impl From<crate::audit::AuditError> for Failure {
    fn from(e: crate::audit::AuditError) -> Self {
        Failure::Retry {
            after: Duration::from_secs(10),
            reason: e.to_string(),
        }
    }
}

impl From<crate::events::DecodeError> for Failure {
    fn from(e: crate::events::DecodeError) -> Self {
        match e {
            crate::events::DecodeError::Permanent(reason) => Failure::Fail(reason),
            crate::events::DecodeError::Transient { after, reason } => {
                Failure::Retry { after, reason }
            }
        }
    }
}

/// The answer for a message whose lock another worker still holds after the wait: it comes back
/// later, costing no attempt.
pub fn held_elsewhere(what: impl std::fmt::Display) -> Outcome {
    Outcome::Busy {
        after: Duration::from_secs(1),
        reason: format!("{what} is being worked on by another worker"),
    }
}

/// Runs `work` under `guard`'s lock, bounded by its lease ([`crate::store::lock::leased`]: the
/// work stops the moment the lock is no longer surely ours, and is retried), then releases the
/// lock (one that cannot be released expires by itself).
///
/// # Errors
/// What `work` fails with, or a retry when the lease was lost.
pub async fn under_lease<F>(
    store: &crate::store::Store,
    guard: &crate::store::LockGuard,
    ttl: Duration,
    work: F,
) -> Result<Outcome, Failure>
where
    F: Future<Output = Result<Outcome, Failure>>,
{
    let result = crate::store::lock::leased(store, guard, ttl, work)
        .await
        .unwrap_or_else(|lost| {
            Err(Failure::Retry {
                after: Duration::from_secs(1),
                reason: lost.to_string(),
            })
        });
    if let Err(e) = store.unlock(guard).await {
        tracing::warn!(error = %e, lock = %guard.key, "unlock failed; the lock expires by itself");
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreError;

    #[test]
    fn an_unreachable_store_waits_a_failing_one_retries_a_corrupt_one_fails() {
        let unreachable =
            StoreError::Unavailable("redis: Connection refused (os error 111)".into());
        assert!(
            matches!(
                Outcome::from(Failure::from(unreachable)),
                Outcome::Busy { .. }
            ),
            "an unreachable store must not use up the message's attempts"
        );
        let script = StoreError::Failed("redis: ERR Error running script".into());
        assert!(
            matches!(Outcome::from(Failure::from(script)), Outcome::Retry { .. }),
            "an error that may repeat for this message is one of its attempts"
        );
        let corrupt = StoreError::Corrupt("redis: WRONGTYPE".into());
        assert!(matches!(
            Outcome::from(Failure::from(corrupt)),
            Outcome::Fail { .. }
        ));
    }
}
