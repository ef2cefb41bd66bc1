//! The one [`Handler`] the consumer drives: a message is decoded into an [`Event`] (see
//! [`crate::events`]), a delivery already done is acknowledged without effect, and the rest goes to
//! the part of the worker that owns it — [`crate::github_sync`] for GitHub issues and comments,
//! [`crate::change_requests`] for Jira Change Requests, [`crate::deployments`] for GitHub's
//! deployment protection rule, [`crate::pull_requests`] for pull requests and pushes (with the
//! GitHub sync's store, Jira and routing). Whether an event was accepted or ignored,
//! and every dead-lettered message, is audited here; a dead-lettered message is also alerted, and
//! every failed attempt is recorded ([`crate::failures`]).

use hookbridge_shared::envelope::Envelope;
use hookbridge_shared::queue::Received;
use serde_json::json;

use crate::alerts::{Alert, AlertKind, AlertWaker};
use crate::audit::{AuditLog, Entry, within_delivery};
use crate::change_requests::ChangeRequests;
use crate::deliveries::{self, DeliveryOutcome, DeliveryRow};
use crate::deployments::rule::DeploymentRule;
use crate::events::{Decoded, Decoder, Event};
use crate::failures;
use crate::github_sync::GithubSync;
use crate::handler::{Failure, Handler, Outcome};
use crate::jira::health::JiraHealth;
use crate::jira_sync::JiraSync;
use crate::pull_requests::PullRequests;
use crate::store::health::{PROBE_EVERY, State as StoreState};
use crate::store::keys::{AlertQueued, IssueMapping};
use crate::store::{Store, Transaction};

/// How long a dead-letter alert is remembered as queued (a message is dead-lettered once).
const ALERT_QUEUED_TTL: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 3600);

/// Decode → dedupe → dispatch.
pub struct Router {
    pub audit: AuditLog,
    pub decoder: Decoder,
    pub store: Store,
    pub github: GithubSync,
    pub change_requests: ChangeRequests,
    /// The deployment protection rule; CR events release the deployments waiting on them.
    pub deployments: DeploymentRule,
    pub alerts: AlertWaker,
    /// Live Jira's state; no work is taken while it is down (see [`crate::jira::health`]), nor
    /// while the store is (its state is [`Store::health`]).
    pub jira_health: Option<JiraHealth>,
    /// The Jira → GitHub sync, when a route has `sync_from_jira` (see [`crate::jira_sync`]).
    pub jira_sync: Option<JiraSync>,
}

impl Handler for Router {
    async fn handle(&self, message: &Received) -> Outcome {
        self.handle_body(&message.body).await
    }

    /// Ready while Jira (when live) and the store answer; waits for both. A store that is down is
    /// probed from here every [`PROBE_EVERY`] (its answer marks it up, see
    /// [`crate::store::health`]).
    async fn ready(&self) {
        loop {
            if let Some(health) = &self.jira_health {
                health.wait_up().await;
            }
            let store = self.store.health();
            while !store.is_up() {
                tokio::select! {
                    () = store.wait_up() => {}
                    () = tokio::time::sleep(PROBE_EVERY) => {
                        let _ = self.store.check_ready().await;
                    }
                }
            }
            if self.jira_health.as_ref().is_none_or(JiraHealth::is_up) {
                return;
            }
        }
    }

    async fn failed(&self, message: &Received, reason: &str, will_retry: bool) {
        if let Err(e) = failures::record(
            &self.store,
            &message.body,
            message.receive_count,
            reason,
            will_retry,
        )
        .await
        {
            tracing::warn!(error = %e, message_id = %message.id, "why the message failed was not recorded");
        }
    }

    async fn dead_lettered(&self, message: &Received, reason: &str) {
        let mut entry = Entry::new("message.dead_lettered", &message.id)
            .outcome("failed")
            .id("message", &message.id)
            .detail(json!({"reason": reason, "receive_count": message.receive_count}));
        let mut what = "message".to_owned();
        if let Ok(envelope) = Envelope::decode(&message.body) {
            entry = entry
                .id("delivery", envelope.delivery.as_str())
                .id("source", envelope.source.as_str())
                .id("event", &envelope.event);
            what = format!(
                "{} {} {}",
                envelope.source, envelope.event, envelope.delivery
            );
        }
        if let Err(e) = self.audit.record(entry).await {
            tracing::error!(error = %e, message_id = %message.id, "dead-lettered message not audited");
        }
        if let Err(e) = self.alert_dead_letter(message, &what, reason).await {
            tracing::error!(error = %e, message_id = %message.id, "dead-lettered message not alerted");
        }
        if let Ok(envelope) = Envelope::decode(&message.body) {
            self.log_outcome(
                &envelope,
                DeliveryOutcome::DeadLettered,
                None,
                Some(reason.to_owned()),
            )
            .await;
        }
    }
}

/// The audit entry for `envelope`'s event.
fn event_entry(action: &str, envelope: &Envelope) -> Entry {
    let mut entry = Entry::new(action, envelope.delivery.as_str())
        .id("delivery", envelope.delivery.as_str())
        .id("source", envelope.source.as_str())
        .id("event", &envelope.event);
    if let Some(event_action) = &envelope.action {
        entry = entry.id("action", event_action);
    }
    entry
}

impl Router {
    /// Queues the alert for a dead-lettered message, once per message however often it is told.
    async fn alert_dead_letter(
        &self,
        message: &Received,
        what: &str,
        reason: &str,
    ) -> Result<(), crate::store::StoreError> {
        let id = format!("dead-letter:{}", message.id);
        let alert = Alert {
            id: id.clone(),
            at: chrono::Utc::now(),
            kind: AlertKind::DeadLettered,
            subject: what.to_owned(),
            summary: None,
            status: None,
            previous_status: None,
            by: None,
            link: None,
            detail: Some(format!("message {}: {reason}", message.id)),
        };
        let mut tx = Transaction::new();
        tx.expect_absent(&AlertQueued(&id));
        tx.put(&AlertQueued(&id), &true, Some(ALERT_QUEUED_TTL))?;
        alert.enqueue(&mut tx)?;
        if self.store.commit(&tx).await? {
            self.alerts.wake();
        }
        Ok(())
    }

    /// Handles one queue message body (an encoded envelope); what the consumer calls for each
    /// message, and what tests call directly.
    pub async fn handle_body(&self, body: &[u8]) -> Outcome {
        let outcome = match self.route(body).await {
            Ok(outcome) => outcome,
            Err(failure) => failure.into(),
        };
        self.unless_store_down(outcome).await
    }

    /// A failed attempt made while the store cannot be reached is the store's failure, whatever
    /// step it surfaced in (a store call, a lock lease that could not be extended, an intent that
    /// could not be recorded): asked after every failed attempt, a store that does not answer its
    /// probe is marked down (the consumer stops taking work, see [`crate::store::health`]) and the
    /// message waits without using up an attempt.
    async fn unless_store_down(&self, outcome: Outcome) -> Outcome {
        let reason = match &outcome {
            Outcome::Retry { reason, .. } | Outcome::Busy { reason, .. } => reason.clone(),
            Outcome::Done | Outcome::Fail { .. } => return outcome,
        };
        let down = match self.store.health().state() {
            StoreState::Down(why) => Some(why),
            StoreState::Up => match self.store.check_ready().await {
                Err(e) if e.is_unavailable() => Some(e.to_string()),
                _ => None,
            },
        };
        match (down, outcome) {
            (None, outcome) | (Some(_), outcome @ Outcome::Busy { .. }) => outcome,
            (Some(why), _) => Outcome::Busy {
                after: PROBE_EVERY,
                reason: format!("{why} (the attempt failed with: {reason})"),
            },
        }
    }

    async fn route(&self, body: &[u8]) -> Result<Outcome, Failure> {
        let decoded = self.decoder.decode(body).await?;
        let delivery = decoded.envelope.delivery.as_str().to_owned();
        within_delivery(&delivery, self.route_decoded(decoded)).await
    }

    async fn route_decoded(&self, decoded: Decoded) -> Result<Outcome, Failure> {
        let Decoded { envelope, event } = decoded;
        let delivery = envelope.delivery.as_str();
        if let Event::Ignored(why) = &event {
            tracing::info!(delivery, source = %envelope.source, event = %envelope.event, %why, "ignored");
            let entry = event_entry("event.ignored", &envelope)
                .outcome("ignored")
                .detail(json!({"why": why}));
            self.audit.record(entry).await?;
            self.log_outcome(&envelope, DeliveryOutcome::Ignored, None, Some(why.clone()))
                .await;
            return Ok(Outcome::Done);
        }
        if self.store.is_done(delivery).await? {
            tracing::info!(delivery, "delivery already processed; acknowledged again");
            return Ok(Outcome::Done);
        }
        let mut accepted = event_entry("event.accepted", &envelope)
            .detail(json!({"received_at": envelope.received_at}));
        if let Some(actor) = event.actor() {
            accepted = accepted.actor(actor);
        }
        self.audit.record(accepted).await?;
        let outcome = self.dispatch(&envelope, &event).await?;
        if matches!(outcome, Outcome::Done) {
            let jira_key = self.jira_key_of(&event).await;
            self.log_outcome(&envelope, DeliveryOutcome::Done, jira_key, None)
                .await;
        }
        Ok(outcome)
    }

    /// The Jira issue `event` is about, for the delivery log: a GitHub issue's twin (once made),
    /// a CR's key.
    async fn jira_key_of(&self, event: &Event) -> Option<String> {
        match event {
            Event::GithubIssue(e) | Event::GithubComment(e) => {
                let identity = e.issue.identity(&e.repository);
                match self.store.read(&IssueMapping(&identity)).await {
                    Ok(mapping) => mapping.map(|m| m.jira_key),
                    Err(_) => None,
                }
            }
            Event::ChangeRequest(cr) => cr.issue["key"].as_str().map(str::to_owned),
            _ => None,
        }
    }

    /// Adds the delivery's outcome to the delivery log (see [`crate::deliveries`]); a log line
    /// that cannot be written is logged, never a reason to do the work again.
    async fn log_outcome(
        &self,
        envelope: &Envelope,
        outcome: DeliveryOutcome,
        jira_key: Option<String>,
        detail: Option<String>,
    ) {
        let row = DeliveryRow {
            at: chrono::Utc::now(),
            delivery: envelope.delivery.as_str().to_owned(),
            source: envelope.source.as_str().to_owned(),
            event: envelope.event.clone(),
            action: envelope.action.clone(),
            outcome,
            jira_key,
            detail,
        };
        if let Err(e) = deliveries::record(&self.store, &row).await {
            tracing::warn!(error = %e, delivery = %row.delivery, "the delivery log was not written");
        }
    }

    async fn dispatch(&self, envelope: &Envelope, event: &Event) -> Result<Outcome, Failure> {
        match event {
            Event::GithubIssue(issue) | Event::GithubComment(issue) => {
                self.github.handle(envelope, issue).await
            }
            Event::ChangeRequest(cr) => {
                self.change_requests
                    .handle(envelope, cr, &self.deployments)
                    .await
            }
            Event::DeploymentRule(deployment) => {
                self.deployments.handle(envelope, deployment).await
            }
            Event::GithubPullRequest(pull) => {
                PullRequests::new(&self.github)
                    .handle_pull_request(envelope, pull)
                    .await
            }
            Event::GithubPush(push) => {
                PullRequests::new(&self.github)
                    .handle_push(envelope, push)
                    .await
            }
            Event::JiraStatus(change) => match &self.jira_sync {
                Some(sync) => sync.handle_status(envelope, change).await,
                None => Ok(Outcome::Done),
            },
            Event::JiraComment(comment) => match &self.jira_sync {
                Some(sync) => sync.handle_comment(envelope, comment).await,
                None => Ok(Outcome::Done),
            },
            Event::Ignored(_) => Ok(Outcome::Done),
        }
    }
}
