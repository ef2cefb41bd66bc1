//! Draining the alert outbox into Slack (or, without Slack, into the audit trail).
//!
//! One process drains at a time: the dispatcher takes a store lock, sends the oldest alerts (up to
//! [`DispatcherConfig::batch`] coalesced into one message), removes what was sent in a
//! transaction fenced by that lock, and goes on until the outbox is empty. Sends are paced through
//! a schedule in the store, one per [`DispatcherConfig::interval`], so several processes together
//! keep to Slack's one message a second per webhook.
//!
//! Failures, by what Slack said:
//! - `429`: every process holds off for `Retry-After`; the same alerts go next.
//! - another `4xx`: the message will never be taken. A batch is then sent one alert at a time, so
//!   that only the alert Slack refuses is dropped (audited as failed).
//! - `5xx`, timeouts: retried with backoff up to [`DispatcherConfig::max_attempts`] times, then
//!   dropped (audited as failed).
//!
//! Exactly once: an alert leaves the outbox only after Slack took it. A dispatcher that dies after
//! Slack answered but before the outbox was updated leaves it there, and the next one sends it
//! again — the one window in which an alert can be doubled; Slack's webhooks have no idempotency
//! key to close it.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::slack::{self, SendError, SlackClient};
use super::{Alert, AlertWaker};
use crate::audit::{AuditLog, Entry};
use crate::metrics::pipeline;
use crate::store::keys::{AlertDispatch, AlertOutbox};
use crate::store::{LockGuard, LockName, Store, StoreError, Transaction, lock};

/// The store schedule that paces posts to Slack.
const SCHEDULE: &str = "slack:webhook";

/// Where alerts go.
#[derive(Debug, Clone)]
pub enum Sink {
    Slack(SlackClient),
    /// No `SLACK_WEBHOOK_URL`: each message is written to the audit trail instead.
    DryRun,
}

/// Tunables.
#[derive(Debug, Clone)]
pub struct DispatcherConfig {
    /// Most alerts coalesced into one message.
    pub batch: usize,
    /// At most one message per this, across all processes.
    pub interval: Duration,
    /// Sends of one message before it is given up.
    pub max_attempts: u32,
    /// The wait after a first failed send; it doubles with each further one, up to five minutes.
    pub retry_base: Duration,
    /// How often the outbox is looked at without being woken (alerts of other processes).
    pub poll: Duration,
    pub lock_ttl: Duration,
}

impl Default for DispatcherConfig {
    fn default() -> Self {
        Self {
            batch: 10,
            interval: Duration::from_secs(1),
            max_attempts: 8,
            retry_base: Duration::from_secs(1),
            poll: Duration::from_secs(2),
            lock_ttl: Duration::from_secs(30),
        }
    }
}

/// How sending the outbox's oldest alert has gone so far (in the store, so a dispatcher taking
/// over from a dead one continues the count).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DispatchState {
    /// The alert these attempts are about.
    pub head: String,
    pub attempts: u32,
    pub not_before: Option<DateTime<Utc>>,
    /// Send one alert at a time (Slack refused a batch).
    pub single: bool,
}

/// Drains the outbox.
#[derive(Debug, Clone)]
pub struct Dispatcher {
    pub store: Store,
    pub sink: Sink,
    pub audit: AuditLog,
    pub waker: AlertWaker,
    pub config: DispatcherConfig,
}

/// What the send of one batch came to.
enum Sent {
    /// Gone out (or written, dry): remove it.
    Done { dry_run_message: Option<Value> },
    /// Try again (the state says when).
    Again,
    /// Give up on the first `n` alerts.
    GiveUp { count: usize, reason: String },
}

impl Dispatcher {
    /// Drains the outbox whenever woken or every `poll`, until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        loop {
            // The outbox is in the store: nothing to drain while it cannot be reached (said once,
            // by the store's watch), and a warning every poll would only repeat that.
            if self.store.health().is_up()
                && let Err(e) = self.drain(&shutdown).await
            {
                tracing::warn!(error = %e, "alert outbox not drained; trying again");
            }
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = self.waker.woken() => {}
                () = tokio::time::sleep(self.config.poll) => {}
            }
        }
    }

    /// Sends what the outbox holds until it is empty or `stop` is cancelled; does nothing when
    /// another process is draining. Returns how many alerts left the outbox.
    ///
    /// # Errors
    /// [`StoreError`] when the store cannot be reached.
    pub async fn drain(&self, stop: &CancellationToken) -> Result<usize, StoreError> {
        // A read first: polling an empty outbox must not cost a lock write every few seconds.
        if self.store.list(&AlertOutbox, 0, 1).await?.is_empty() {
            return Ok(0);
        }
        let Some(guard) = self
            .store
            .try_lock(&LockName::alert_dispatcher(), self.config.lock_ttl)
            .await?
        else {
            return Ok(0);
        };
        let work = self.drain_locked(&guard, stop);
        let result = lock::kept_alive(&self.store, &guard, self.config.lock_ttl, work).await;
        if let Err(e) = self.store.unlock(&guard).await {
            tracing::warn!(error = %e, "alert dispatcher lock not released; it expires by itself");
        }
        result
    }

    async fn drain_locked(
        &self,
        guard: &LockGuard,
        stop: &CancellationToken,
    ) -> Result<usize, StoreError> {
        let mut drained = 0;
        while !stop.is_cancelled() {
            let pending = self.store.list(&AlertOutbox, 0, self.config.batch).await?;
            let Some(head) = pending.first() else { break };
            let mut state = self
                .store
                .read(&AlertDispatch)
                .await?
                .filter(|s| s.head == head.id)
                .unwrap_or_else(|| DispatchState {
                    head: head.id.clone(),
                    ..DispatchState::default()
                });
            if let Some(not_before) = state.not_before
                && let Ok(wait) = (not_before - Utc::now()).to_std()
            {
                if !self.pause(wait, stop).await {
                    break;
                }
                continue;
            }
            let batch = if state.single {
                &pending[..1]
            } else {
                &pending[..]
            };
            // Slack's pace; a dry run writes to the audit trail and need not wait.
            if matches!(self.sink, Sink::Slack(_)) {
                let wait = self
                    .store
                    .reserve_slot(SCHEDULE, self.config.interval)
                    .await?;
                if !self.pause(wait, stop).await {
                    break;
                }
            }
            match self.send(batch, &mut state).await? {
                Sent::Done { dry_run_message } => {
                    if !self.remove(guard, batch.len()).await? {
                        break;
                    }
                    drained += batch.len();
                    self.audit_sent(batch, dry_run_message).await;
                }
                Sent::Again => {
                    if !self
                        .store
                        .write_fenced(guard, &AlertDispatch, &state, None)
                        .await?
                    {
                        break;
                    }
                }
                Sent::GiveUp { count, reason } => {
                    if !self.remove(guard, count).await? {
                        break;
                    }
                    drained += count;
                    self.audit_failed(&batch[..count], &reason, state.attempts)
                        .await;
                }
            }
        }
        Ok(drained)
    }

    /// Sleeps `wait` unless stopped first; whether to go on.
    async fn pause(&self, wait: Duration, stop: &CancellationToken) -> bool {
        if wait.is_zero() {
            return true;
        }
        tokio::select! {
            () = stop.cancelled() => false,
            () = tokio::time::sleep(wait) => true,
        }
    }

    async fn send(&self, batch: &[Alert], state: &mut DispatchState) -> Result<Sent, StoreError> {
        let message = slack::message(batch);
        let client = match &self.sink {
            Sink::DryRun => {
                return Ok(Sent::Done {
                    dry_run_message: Some(message),
                });
            }
            Sink::Slack(client) => client,
        };
        let error = match client.send(&message).await {
            Ok(()) => {
                return Ok(Sent::Done {
                    dry_run_message: None,
                });
            }
            Err(error) => error,
        };
        state.attempts += 1;
        tracing::warn!(error = %error, alerts = batch.len(), attempts = state.attempts, "Slack alert not sent");
        self.audit_retry(batch, &error, state.attempts).await;
        let next = self.after_failure(batch, error, state).await?;
        if matches!(next, Sent::Again) {
            pipeline::slack_alerts("retry", batch.len());
        }
        Ok(next)
    }

    /// What a failed send leads to: the same batch again (later, or one by one), or giving up.
    async fn after_failure(
        &self,
        batch: &[Alert],
        error: SendError,
        state: &mut DispatchState,
    ) -> Result<Sent, StoreError> {
        match error {
            SendError::Refused { status, body } if batch.len() > 1 => {
                tracing::warn!(status, %body, "Slack refused a batch; sending its alerts one by one");
                state.single = true;
                state.attempts = 0;
                Ok(Sent::Again)
            }
            SendError::Refused { status, body } => Ok(Sent::GiveUp {
                count: 1,
                reason: format!("Slack refused it: {status} {body}"),
            }),
            _ if state.attempts >= self.config.max_attempts => Ok(Sent::GiveUp {
                count: batch.len(),
                reason: format!("not sent after {} attempts: {error}", state.attempts),
            }),
            SendError::RateLimited(after) => {
                self.store.hold_off(SCHEDULE, after).await?;
                Ok(Sent::Again)
            }
            SendError::Failed(_) => {
                let backoff =
                    Duration::from_secs(1 << state.attempts.min(8)).min(Duration::from_secs(300));
                state.not_before = chrono::Duration::from_std(backoff)
                    .ok()
                    .map(|b| Utc::now() + b);
                Ok(Sent::Again)
            }
        }
    }

    /// Removes the `count` oldest alerts, while this dispatcher still holds the lock; `false` when
    /// it lost it (another dispatcher goes on from here).
    async fn remove(&self, guard: &LockGuard, count: usize) -> Result<bool, StoreError> {
        let mut tx = Transaction::new();
        tx.expect_held(guard);
        tx.pop_front(&AlertOutbox, count);
        tx.delete(&AlertDispatch);
        self.store.commit(&tx).await
    }

    async fn audit_sent(&self, batch: &[Alert], dry_run_message: Option<Value>) {
        let outcome = if dry_run_message.is_some() {
            "dry_run"
        } else {
            "sent"
        };
        pipeline::slack_alerts(outcome, batch.len());
        for alert in batch {
            let entry = match &dry_run_message {
                None => Entry::new("slack.alert.sent", &alert.subject),
                Some(message) => Entry::new("slack.alert.sent", &alert.subject)
                    .outcome("dry_run")
                    .detail(json!({"message": message})),
            };
            self.audit_alert(entry, alert).await;
        }
    }

    async fn audit_retry(&self, batch: &[Alert], error: &SendError, attempts: u32) {
        for alert in batch {
            let entry = Entry::new("slack.alert.retry", &alert.subject)
                .outcome("retry")
                .detail(json!({"error": error.to_string(), "attempts": attempts}));
            self.audit_alert(entry, alert).await;
        }
    }

    async fn audit_failed(&self, batch: &[Alert], reason: &str, attempts: u32) {
        pipeline::slack_alerts("failed", batch.len());
        for alert in batch {
            tracing::error!(alert = %alert.id, %reason, "Slack alert given up");
            let entry = Entry::new("slack.alert.failed", &alert.subject)
                .outcome("failed")
                .detail(json!({"reason": reason, "attempts": attempts}));
            self.audit_alert(entry, alert).await;
        }
    }

    /// An audit line about an alert that cannot be written is logged: the alert itself has gone
    /// (or failed) either way, and holding the outbox back for the disk would only double it.
    async fn audit_alert(&self, entry: Entry, alert: &Alert) {
        let entry = entry.id("alert", &alert.id).id("kind", alert.kind.as_str());
        if let Err(e) = self.audit.record(entry).await {
            tracing::error!(error = %e, alert = %alert.id, "alert outcome not audited");
        }
    }
}
