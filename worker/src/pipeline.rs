//! GitHub issues and comments → Jira issues and comments, each effect exactly once.
//!
//! How "exactly once" is kept with at-least-once delivery, several workers and crashes:
//! 1. **Dedupe** by delivery id: a delivery marked done is acknowledged without effect.
//! 2. **Serialise per GitHub issue**: all work on `owner/repo#N` happens under a store lock with a
//!    fencing token, so `opened` and `labeled` fired together cannot both create an issue. Every
//!    record is written with `put_fenced`: a worker whose lock expired cannot overwrite newer state.
//! 3. **Durable mapping** GitHub issue → Jira key in the store, written right after the create.
//! 4. **Crash recovery**: before creating, a *creation intent* is recorded. A later attempt that
//!    finds an intent but no mapping knows a Jira issue may exist: it waits until Jira's search has
//!    caught up (`search_lag` after the intent; search is eventually consistent) and looks for the
//!    issue by its marker label before creating again. An answer from Jira with an error status
//!    proves nothing was created, so then the intent is cleared at once.
//! 5. Comments get the same treatment keyed by the GitHub comment id, with the GitHub comment URL in
//!    the Jira comment as the marker (reading an issue's comments is consistent, unlike search).
//! 6. Remote links are upserts by `globalId`, edits set whole values: both are idempotent.

use std::time::Duration;

use chrono::{DateTime, Utc};
use hookbridge_shared::claim::ClaimStore;
use hookbridge_shared::envelope::{Envelope, Source};
use hookbridge_shared::queue::Received;
use hookbridge_shared::routing::{EventFacts, Routing, Target};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::adf;
use crate::github::{Issue, IssueEvent};
use crate::handler::{Handler, Outcome};
use crate::jira_ops::{JiraOps, NewIssue, OpsError};
use crate::store::{LockGuard, Store, StoreError};

/// Tunables of the pipeline.
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    /// GitHub logins whose events are the bridge's own (ignored, so no loops).
    pub ignore_logins: Vec<String>,
    /// How long a per-issue lock lives without being extended.
    pub lock_ttl: Duration,
    /// How long to wait for a busy per-issue lock before giving the message back.
    pub lock_wait: Duration,
    /// How long Jira search may lag behind a create.
    pub search_lag: Duration,
    /// How long a delivery id is remembered as done (GitHub redelivers for 3 days).
    pub done_ttl: Duration,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        Self {
            ignore_logins: Vec::new(),
            lock_ttl: Duration::from_secs(15),
            lock_wait: Duration::from_secs(15),
            search_lag: Duration::from_secs(30),
            done_ttl: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// The GitHub → Jira handler.
pub struct Pipeline {
    pub store: Store,
    pub jira: JiraOps,
    pub routing: Routing,
    pub claims: ClaimStore,
    pub config: PipelineConfig,
}

/// A failed step, already classified.
#[derive(Debug)]
enum Step {
    Retry { after: Duration, reason: String },
    Fail(String),
}

impl From<StoreError> for Step {
    fn from(e: StoreError) -> Self {
        if e.is_transient() {
            Step::Retry {
                after: Duration::from_secs(5),
                reason: e.to_string(),
            }
        } else {
            Step::Fail(e.to_string())
        }
    }
}

impl From<OpsError> for Step {
    fn from(e: OpsError) -> Self {
        match e.retry_after() {
            Some(after) => Step::Retry {
                after,
                reason: e.to_string(),
            },
            None => Step::Fail(e.to_string()),
        }
    }
}

/// The stored mapping of one GitHub issue.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Mapping {
    jira_key: String,
    /// The remote link back to GitHub exists.
    linked: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Intent {
    at: DateTime<Utc>,
}

fn map_key(identity: &str) -> String {
    format!("map:{identity}")
}

fn create_intent_key(identity: &str) -> String {
    format!("intent:create:{identity}")
}

fn comment_key(identity: &str, comment_id: u64) -> String {
    format!("comment:{identity}:{comment_id}")
}

fn comment_intent_key(identity: &str, comment_id: u64) -> String {
    format!("intent:comment:{identity}:{comment_id}")
}

/// The label that marks a Jira issue as the twin of one GitHub issue (searchable, Jira-safe).
pub fn marker_label(identity: &str) -> String {
    let digest = hex::encode(Sha256::digest(identity.as_bytes()));
    format!("ghissue-{}", &digest[..16])
}

/// GitHub label → Jira label: no whitespace (Jira refuses it), at most 255 characters.
pub fn jira_label(name: &str) -> Option<String> {
    let cleaned: String = name
        .trim()
        .chars()
        .map(|c| if c.is_whitespace() { '-' } else { c })
        .take(255)
        .collect();
    (!cleaned.is_empty()).then_some(cleaned)
}

/// `GitHub Issue: <title>` cut to 255 characters (not bytes).
pub fn summary(title: &str) -> String {
    let full = format!("GitHub Issue: {}", title.trim());
    if full.chars().count() <= 255 {
        full
    } else {
        let mut cut: String = full.chars().take(254).collect();
        cut.push('…');
        cut
    }
}

/// Marks every issue the bridge created.
const BRIDGE_LABEL: &str = "github";

/// The labels every synced issue carries: `github` and its marker.
fn is_bridge_label(label: &str, identity: &str) -> bool {
    label == BRIDGE_LABEL || label == marker_label(identity)
}

fn labels_for(issue: &Issue, identity: &str, target: &Target) -> Vec<String> {
    let mut labels: Vec<String> = issue
        .labels
        .iter()
        .filter_map(|l| jira_label(&l.name))
        .chain(target.labels.iter().filter_map(|l| jira_label(l)))
        .chain([BRIDGE_LABEL.to_owned(), marker_label(identity)])
        .collect();
    labels.sort();
    labels.dedup();
    labels
}

impl Handler for Pipeline {
    async fn handle(&self, message: &Received) -> Outcome {
        self.handle_body(&message.body).await
    }
}

impl Pipeline {
    /// Handles one queue message body (an encoded envelope); what the consumer calls for each
    /// message, and what tests call directly.
    pub async fn handle_body(&self, body: &[u8]) -> Outcome {
        match self.process(body).await {
            Ok(outcome) => outcome,
            Err(Step::Retry { after, reason }) => Outcome::Retry { after, reason },
            Err(Step::Fail(reason)) => Outcome::Fail { reason },
        }
    }

    async fn process(&self, body: &[u8]) -> Result<Outcome, Step> {
        let envelope = Envelope::decode(body).map_err(|e| Step::Fail(e.to_string()))?;
        let delivery = envelope.delivery.as_str().to_owned();
        if envelope.source == Source::Jira {
            tracing::info!(delivery = %delivery, event = %envelope.event, "Jira event: nothing to do for it yet");
            return Ok(Outcome::Done);
        }
        if !matches!(envelope.event.as_str(), "issues" | "issue_comment") {
            tracing::info!(delivery = %delivery, event = %envelope.event, "GitHub event not handled; ignored");
            return Ok(Outcome::Done);
        }
        let payload = self.payload(&envelope).await?;
        let event: IssueEvent = serde_json::from_slice(&payload).map_err(|e| {
            Step::Fail(format!("{} payload is not understood: {e}", envelope.event))
        })?;
        if event.issue.pull_request.is_some() {
            tracing::info!(delivery = %delivery, "pull request event; ignored");
            return Ok(Outcome::Done);
        }
        if self
            .config
            .ignore_logins
            .iter()
            .any(|l| l.eq_ignore_ascii_case(&event.sender.login))
        {
            tracing::info!(delivery = %delivery, sender = %event.sender.login, "event from the bridge's own account; ignored");
            return Ok(Outcome::Done);
        }
        if self.store.is_done(&delivery).await? {
            tracing::info!(delivery = %delivery, "delivery already processed; acknowledged again");
            return Ok(Outcome::Done);
        }
        let identity = event.issue.identity(&event.repository);
        let labels = event.issue.label_names();
        let facts = EventFacts {
            repository: &event.repository.full_name,
            labels: &labels,
            event: &envelope.event,
            action: &event.action,
        };
        let Some(target) = self.routing.route(&facts) else {
            tracing::info!(delivery = %delivery, issue = %identity, "no route for this event; ignored");
            self.store
                .mark_done(&delivery, self.config.done_ttl)
                .await?;
            return Ok(Outcome::Done);
        };
        let guard = self.lock(&identity).await?;
        let work = self.under_lock(&guard, &envelope, &event, &identity, &target);
        let result = self.with_lock_kept_alive(&guard, work).await;
        if let Err(e) = self.store.unlock(&guard).await {
            tracing::warn!(error = %e, issue = %identity, "unlock failed; the lock expires by itself");
        }
        result
    }

    async fn payload(&self, envelope: &Envelope) -> Result<Vec<u8>, Step> {
        if let Some(raw) = &envelope.payload {
            return Ok(raw.get().as_bytes().to_vec());
        }
        let Some(claim) = envelope.payload_claim.clone() else {
            return Err(Step::Fail("envelope without payload".into()));
        };
        let claims = self.claims.clone();
        tokio::task::spawn_blocking(move || claims.get(&claim))
            .await
            .map_err(|e| Step::Retry {
                after: Duration::from_secs(5),
                reason: e.to_string(),
            })?
            .map_err(|e| Step::Retry {
                after: Duration::from_secs(30),
                reason: format!("claimed payload unavailable: {e}"),
            })
    }

    /// Waits up to `lock_wait` for the per-issue lock.
    async fn lock(&self, identity: &str) -> Result<LockGuard, Step> {
        let deadline = tokio::time::Instant::now() + self.config.lock_wait;
        let mut nap = Duration::from_millis(20);
        loop {
            if let Some(guard) = self
                .store
                .try_lock(&format!("issue:{identity}"), self.config.lock_ttl)
                .await?
            {
                return Ok(guard);
            }
            if tokio::time::Instant::now() + nap > deadline {
                return Err(Step::Retry {
                    after: Duration::from_secs(2),
                    reason: format!("{identity} is being worked on by another worker"),
                });
            }
            tokio::time::sleep(nap).await;
            nap = (nap * 2).min(Duration::from_millis(500));
        }
    }

    /// Runs `work` while extending the lock every third of its TTL.
    async fn with_lock_kept_alive<F>(&self, guard: &LockGuard, work: F) -> Result<Outcome, Step>
    where
        F: std::future::Future<Output = Result<Outcome, Step>>,
    {
        let period = self.config.lock_ttl / 3;
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        tokio::pin!(work);
        loop {
            tokio::select! {
                result = &mut work => return result,
                _ = tick.tick() => {
                    match self.store.extend_lock(guard, self.config.lock_ttl).await {
                        Ok(true) => {}
                        Ok(false) => tracing::warn!(lock = %guard.key, "lock lost while working; fenced writes will refuse"),
                        Err(e) => tracing::warn!(error = %e, lock = %guard.key, "lock extension failed"),
                    }
                }
            }
        }
    }

    async fn under_lock(
        &self,
        guard: &LockGuard,
        envelope: &Envelope,
        event: &IssueEvent,
        identity: &str,
        target: &Target,
    ) -> Result<Outcome, Step> {
        let delivery = envelope.delivery.as_str();
        if self.store.is_done(delivery).await? {
            return Ok(Outcome::Done);
        }
        let (mapping, created) = self.ensure_issue(guard, event, identity, target).await?;
        let key = mapping.jira_key.as_str();
        let issue = &event.issue;
        match (envelope.event.as_str(), event.action.as_str()) {
            ("issues", "opened") => {}
            ("issues", "edited") if !created => {
                let description = adf::issue_description(
                    &issue.html_url,
                    &issue.user.login,
                    issue.body.as_deref().unwrap_or(""),
                );
                self.jira
                    .edit_fields(key, &summary(&issue.title), description)
                    .await?;
            }
            // One label changes: Jira's other labels (the marker, routing's, and any set by hand
            // in Jira) stay. An issue created just now already has GitHub's labels.
            ("issues", action @ ("labeled" | "unlabeled")) if !created => {
                let add = action == "labeled";
                let label = event.label.as_ref().and_then(|l| jira_label(&l.name));
                // The bridge's own labels stay: the marker finds the issue again after a crash.
                if let Some(label) = label.filter(|l| add || !is_bridge_label(l, identity)) {
                    self.jira.change_label(key, &label, add).await?;
                }
            }
            ("issues", "closed") if target.sync_closure => {
                self.transition_or_comment(
                    key,
                    target.close_transition.as_deref(),
                    event,
                    "closed",
                )
                .await?;
            }
            ("issues", "reopened") if target.sync_closure => {
                self.transition_or_comment(
                    key,
                    target.reopen_transition.as_deref(),
                    event,
                    "reopened",
                )
                .await?;
            }
            ("issue_comment", "created") if target.sync_comments => {
                self.comment_once(guard, event, identity, key).await?;
            }
            (name, action) => {
                tracing::debug!(event = name, action, "no Jira effect for this action");
            }
        }
        self.store.mark_done(delivery, self.config.done_ttl).await?;
        tracing::info!(delivery, issue = identity, jira = key, action = %event.action, "synced to Jira");
        Ok(Outcome::Done)
    }

    /// Returns the mapped Jira issue, creating it (once) when there is none.
    async fn ensure_issue(
        &self,
        guard: &LockGuard,
        event: &IssueEvent,
        identity: &str,
        target: &Target,
    ) -> Result<(Mapping, bool), Step> {
        let issue = &event.issue;
        if let Some(mut mapping) = self.read_mapping(identity).await? {
            if !mapping.linked {
                self.link(&mapping.jira_key, issue).await?;
                mapping.linked = true;
                self.write_fenced(guard, &map_key(identity), &mapping)
                    .await?;
            }
            return Ok((mapping, false));
        }
        let marker = marker_label(identity);
        let intent_key = create_intent_key(identity);
        if let Some(raw) = self.store.get(&intent_key).await? {
            let intent: Intent = serde_json::from_str(&raw)
                .map_err(|e| Step::Fail(format!("corrupt intent record {intent_key}: {e}")))?;
            let age = (Utc::now() - intent.at).to_std().unwrap_or_default();
            if age < self.config.search_lag {
                return Err(Step::Retry {
                    after: self.config.search_lag - age + Duration::from_millis(250),
                    reason: format!(
                        "an earlier attempt may have created the Jira issue for {identity}; \
                         waiting for Jira search to catch up before checking"
                    ),
                });
            }
            if let Some(found) = self.jira.find_by_label(&marker).await? {
                tracing::warn!(issue = identity, jira = %found, "recovered the Jira issue an interrupted attempt created");
                let mapping = Mapping {
                    jira_key: found,
                    linked: false,
                };
                self.write_fenced(guard, &map_key(identity), &mapping)
                    .await?;
                return Box::pin(self.ensure_issue(guard, event, identity, target)).await;
            }
        }
        let intent = Intent { at: Utc::now() };
        self.write_fenced(guard, &intent_key, &intent).await?;
        let new_issue = NewIssue {
            project: target.project.as_str().to_owned(),
            issue_type: target.issue_type.clone(),
            summary: summary(&issue.title),
            description: adf::issue_description(
                &issue.html_url,
                &issue.user.login,
                issue.body.as_deref().unwrap_or(""),
            ),
            labels: labels_for(issue, identity, target),
            components: target.components.clone(),
            priority: target.priority.clone(),
        };
        let jira_key = match self.jira.create_issue(&new_issue).await {
            Ok(key) => key,
            Err(e) => {
                if e.proves_nothing_happened() {
                    let _ = self.store.delete_fenced(guard, &intent_key).await;
                }
                return Err(e.into());
            }
        };
        tracing::info!(issue = identity, jira = %jira_key, "created Jira issue");
        let mut mapping = Mapping {
            jira_key,
            linked: false,
        };
        self.write_fenced(guard, &map_key(identity), &mapping)
            .await?;
        let _ = self.store.delete_fenced(guard, &intent_key).await;
        self.link(&mapping.jira_key, issue).await?;
        mapping.linked = true;
        self.write_fenced(guard, &map_key(identity), &mapping)
            .await?;
        Ok((mapping, true))
    }

    async fn read_mapping(&self, identity: &str) -> Result<Option<Mapping>, Step> {
        match self.store.get(&map_key(identity)).await? {
            Some(raw) => serde_json::from_str(&raw)
                .map(Some)
                .map_err(|e| Step::Fail(format!("corrupt mapping for {identity}: {e}"))),
            None => Ok(None),
        }
    }

    async fn write_fenced<T: Serialize>(
        &self,
        guard: &LockGuard,
        key: &str,
        value: &T,
    ) -> Result<(), Step> {
        let raw = serde_json::to_string(value).map_err(|e| Step::Fail(e.to_string()))?;
        if self.store.put_fenced(guard, key, &raw, None).await? {
            Ok(())
        } else {
            Err(Step::Retry {
                after: Duration::from_secs(1),
                reason: format!("lost the lock {} before writing {key}", guard.key),
            })
        }
    }

    async fn link(&self, jira_key: &str, issue: &Issue) -> Result<(), Step> {
        let title = format!("GitHub issue #{}: {}", issue.number, issue.title);
        self.jira
            .add_remote_link(jira_key, &issue.html_url, &issue.html_url, &title)
            .await?;
        Ok(())
    }

    async fn transition_or_comment(
        &self,
        key: &str,
        transition: Option<&str>,
        event: &IssueEvent,
        what: &str,
    ) -> Result<(), Step> {
        if let Some(name) = transition
            && self.jira.transition_named(key, name).await?
        {
            return Ok(());
        }
        let text = format!(
            "The GitHub issue was {what} by {}: {}",
            event.sender.login, event.issue.html_url
        );
        self.jira
            .add_comment(key, adf::markdown_to_adf(&text))
            .await?;
        Ok(())
    }

    async fn comment_once(
        &self,
        guard: &LockGuard,
        event: &IssueEvent,
        identity: &str,
        jira_key: &str,
    ) -> Result<(), Step> {
        let Some(comment) = &event.comment else {
            return Err(Step::Fail("issue_comment event without a comment".into()));
        };
        if event
            .comment
            .as_ref()
            .is_some_and(|c| self.is_own(&c.user.login))
        {
            return Ok(());
        }
        let done_key = comment_key(identity, comment.id);
        if self.store.get(&done_key).await?.is_some() {
            return Ok(());
        }
        let intent_key = comment_intent_key(identity, comment.id);
        if self.store.get(&intent_key).await?.is_some()
            && self
                .jira
                .has_comment_containing(jira_key, &comment.html_url)
                .await?
        {
            self.write_fenced(guard, &done_key, &serde_json::json!({"jira": jira_key}))
                .await?;
            return Ok(());
        }
        self.write_fenced(guard, &intent_key, &Intent { at: Utc::now() })
            .await?;
        let body = adf::comment_body(
            &comment.user.login,
            &comment.html_url,
            comment.body.as_deref().unwrap_or(""),
        );
        if let Err(e) = self.jira.add_comment(jira_key, body).await {
            if e.proves_nothing_happened() {
                let _ = self.store.delete_fenced(guard, &intent_key).await;
            }
            return Err(e.into());
        }
        self.write_fenced(guard, &done_key, &serde_json::json!({"jira": jira_key}))
            .await?;
        let _ = self.store.delete_fenced(guard, &intent_key).await;
        Ok(())
    }

    fn is_own(&self, login: &str) -> bool {
        self.config
            .ignore_logins
            .iter()
            .any(|l| l.eq_ignore_ascii_case(login))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_and_labels() {
        assert_eq!(summary("  Crash  "), "GitHub Issue: Crash");
        let long = summary(&"é".repeat(400));
        assert_eq!(long.chars().count(), 255);
        assert!(long.ends_with('…'));
        assert_eq!(
            jira_label("good first issue").as_deref(),
            Some("good-first-issue")
        );
        assert_eq!(jira_label("   "), None);
        assert_eq!(marker_label("octo/api#1"), marker_label("octo/api#1"));
        assert_ne!(marker_label("octo/api#1"), marker_label("octo/api#2"));
    }
}
