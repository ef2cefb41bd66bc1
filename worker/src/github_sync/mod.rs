//! GitHub issues and comments → Jira issues and comments, each effect exactly once.
//!
//! How "exactly once" is kept with at-least-once delivery, several workers and crashes:
//! 1. **Dedupe** by delivery id: a delivery marked done is acknowledged without effect (the router
//!    checks first; the check is repeated under the lock).
//! 2. **Serialise per GitHub issue**: all work on `owner/repo#N` happens under a store lock with a
//!    fencing token, so `opened` and `labeled` fired together cannot both create an issue. Every
//!    record is written fenced: a worker whose lock expired cannot overwrite newer state.
//! 3. **Durable mapping** GitHub issue → Jira key in the store, written right after the create.
//! 4. **Crash recovery**: right before the create request leaves (after its rate-limiter wait, so
//!    its time is the send's), a *creation intent* is recorded. A later attempt that
//!    finds an intent but no mapping knows a Jira issue may exist: it waits until Jira's search has
//!    caught up (`search_lag` after the intent; search is eventually consistent) and looks for the
//!    issue by its marker label before creating again. An answer from Jira with an error status
//!    proves nothing was created, so then the intent is cleared at once.
//! 5. Comments get the same treatment keyed by the GitHub comment id, with a marker paragraph at the
//!    end of the Jira comment, matched exactly (reading an issue's comments is consistent, unlike
//!    search). The comment that stands in for a missing close/reopen transition carries a marker
//!    of its delivery and is looked for before it is posted.
//! 6. Remote links are upserts by `globalId`, edits set whole values: both are idempotent.
//! 7. **The lock bounds the work**: the work runs under [`lock::leased`], which stops it as soon as
//!    the lock is lost or about to expire, and no Jira request is given more time than the lease
//!    has left, so a successor never acts while this worker still can. A lock still busy after
//!    `lock_wait` gives the message back as [`Outcome::Busy`], which costs it no attempt.
//!
//! # Layout
//! - `issue`: the Jira twin of a GitHub issue, created once ([`GithubSync::ensure_issue`]).
//! - `comment`: a GitHub comment posted once.
//! - [`text`]: summary, labels and the marker label.

mod comment;
mod issue;
pub mod text;

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use hookbridge_shared::envelope::Envelope;
use hookbridge_shared::routing::{EventFacts, Routing, Target};
use serde::{Deserialize, Serialize};

use crate::events::github::{IssueEvent, IssueIdentity};
use crate::handler::{Failure, Outcome, held_elsewhere, under_lease};
use crate::jira::adf;
use crate::jira::ops::JiraOps;
use crate::settings::WorkerSettings;
use crate::store::{LockGuard, LockName, Store, StoreKey, lock};

pub use text::marker_label;

/// Tunables of the GitHub → Jira sync.
#[derive(Debug, Clone)]
pub struct SyncConfig {
    /// GitHub logins of the bridge itself (their comments are never mirrored back).
    pub ignore_logins: Vec<String>,
    /// How long a per-issue lock lives without being extended.
    pub lock_ttl: Duration,
    /// How long to wait for a busy per-issue lock before giving the message back as
    /// [`Outcome::Busy`] (which costs it no attempt); the consumer keeps the message invisible
    /// meanwhile, so waiting here costs no receive either.
    pub lock_wait: Duration,
    /// How long Jira search may lag behind a create.
    pub search_lag: Duration,
    /// How long a delivery id is remembered as done (GitHub redelivers for 3 days).
    pub done_ttl: Duration,
    /// The TOML's `[users]`: GitHub login → Jira accountId (for `sync_assignee` routes).
    pub users: BTreeMap<String, String>,
}

impl Default for SyncConfig {
    fn default() -> Self {
        Self {
            ignore_logins: Vec::new(),
            lock_ttl: Duration::from_secs(15),
            lock_wait: Duration::from_secs(15),
            search_lag: Duration::from_secs(30),
            done_ttl: Duration::from_secs(7 * 24 * 3600),
            users: BTreeMap::new(),
        }
    }
}

/// The GitHub → Jira sync.
pub struct GithubSync {
    pub store: Store,
    pub jira: JiraOps,
    pub routing: Routing,
    pub config: SyncConfig,
}

impl GithubSync {
    /// The sync the worker's settings describe (routing, bot logins, search lag, lock TTL): what
    /// the worker and `hookbridge github backfill` both run.
    pub fn from_settings(store: Store, jira: JiraOps, settings: &WorkerSettings) -> Self {
        Self {
            store,
            jira,
            routing: settings.routing.clone(),
            config: SyncConfig {
                ignore_logins: settings.ignore_logins.clone(),
                search_lag: settings.search_lag,
                lock_ttl: settings.lock_ttl,
                users: settings.users.clone(),
                ..SyncConfig::default()
            },
        }
    }
}

/// The stored mapping of one GitHub issue.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Mapping {
    pub jira_key: String,
    /// The remote link back to GitHub exists.
    pub linked: bool,
}

/// A write to Jira that may have happened: recorded before it is sent.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Intent {
    pub at: DateTime<Utc>,
}

/// A GitHub comment that has its Jira twin.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CommentRecord {
    pub jira: String,
    /// The Jira comment's id, when known (records from before it was kept have none; the
    /// comment's marker finds it then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

impl GithubSync {
    /// Applies one GitHub issue or comment event (already decoded and not yet done).
    ///
    /// # Errors
    /// [`Failure`], classified.
    pub async fn handle(
        &self,
        envelope: &Envelope,
        event: &IssueEvent,
    ) -> Result<Outcome, Failure> {
        let delivery = envelope.delivery.as_str();
        let identity = event.issue.identity(&event.repository);
        let labels = event.issue.label_names();
        let facts = EventFacts {
            repository: &event.repository.full_name,
            labels: &labels,
            event: &envelope.event,
            action: &event.action,
        };
        let Some(target) = self.routing.route(&facts) else {
            tracing::info!(delivery, issue = %identity, "no route for this event; ignored");
            self.store.mark_done(delivery, self.config.done_ttl).await?;
            return Ok(Outcome::Done);
        };
        let name = LockName::github_issue(&identity);
        let Some(guard) = lock::acquire(
            &self.store,
            &name,
            self.config.lock_ttl,
            self.config.lock_wait,
        )
        .await?
        else {
            // Contention is not a failure: the message waits its turn without using up an
            // attempt (README, "Worker (GitHub → Jira)").
            return Ok(held_elsewhere(&identity));
        };
        let work = self.under_lock(&guard, envelope, event, &identity, &target);
        // Work stops the moment the lock is no longer surely ours (README, "Worker (GitHub →
        // Jira)"): a successor may already be doing it.
        under_lease(&self.store, &guard, self.config.lock_ttl, work).await
    }

    async fn under_lock(
        &self,
        guard: &LockGuard,
        envelope: &Envelope,
        event: &IssueEvent,
        identity: &IssueIdentity,
        target: &Target,
    ) -> Result<Outcome, Failure> {
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
                    .edit_fields(key, &text::summary(&issue.title), description)
                    .await?;
            }
            // One label changes: Jira's other labels (the marker, routing's, and any set by hand
            // in Jira) stay. An issue created just now already has GitHub's labels.
            ("issues", action @ ("labeled" | "unlabeled")) if !created => {
                let add = action == "labeled";
                let label = event.label.as_ref().and_then(|l| text::jira_label(&l.name));
                // The bridge's own labels stay: the marker finds the issue again after a crash.
                if let Some(label) = label.filter(|l| add || !text::is_bridge_label(l, identity)) {
                    self.jira.change_label(key, &label, add).await?;
                }
            }
            ("issues", "closed") if target.sync_closure => {
                // Opt-in per route: the close reason picks the resolution; a reason without one
                // configured sets none (README, "Worker (GitHub → Jira)").
                let resolution = target
                    .resolutions
                    .as_ref()
                    .and_then(|r| r.for_reason(issue.state_reason.as_deref()));
                if target.resolutions.is_some() && resolution.is_none() {
                    tracing::info!(
                        delivery,
                        issue = %identity,
                        state_reason = issue.state_reason.as_deref().unwrap_or("null"),
                        "no resolution configured for this close reason; closing without one"
                    );
                }
                self.transition_or_comment(
                    delivery,
                    key,
                    target.close_transition.as_deref(),
                    resolution,
                    event,
                    "closed",
                )
                .await?;
            }
            ("issues", "reopened") if target.sync_closure => {
                self.transition_or_comment(
                    delivery,
                    key,
                    target.reopen_transition.as_deref(),
                    None,
                    event,
                    "reopened",
                )
                .await?;
            }
            ("issues", action @ ("assigned" | "unassigned")) if target.sync_assignee => {
                self.sync_assignee(delivery, key, event, action == "assigned")
                    .await?;
            }
            ("issue_comment", "created") if target.sync_comments => {
                self.comment_once(guard, event, identity, key).await?;
            }
            ("issue_comment", "edited") if target.sync_comments && target.sync_comment_edits => {
                self.comment_edited(guard, event, identity, key).await?;
            }
            ("issue_comment", "deleted") if target.sync_comments => {
                if let Some(what) = target.on_comment_deleted {
                    self.comment_deleted(event, identity, key, what).await?;
                }
            }
            (name, action) => {
                tracing::debug!(event = name, action, "no Jira effect for this action");
            }
        }
        self.store.mark_done(delivery, self.config.done_ttl).await?;
        tracing::info!(delivery, issue = %identity, jira = key, action = %event.action, "synced to Jira");
        Ok(Outcome::Done)
    }

    /// Writes a record only while `guard` holds the issue's lock; losing the lock is a retry.
    async fn write_fenced<K: StoreKey>(
        &self,
        guard: &LockGuard,
        key: &K,
        value: &K::Value,
    ) -> Result<(), Failure> {
        if self.store.write_fenced(guard, key, value, None).await? {
            Ok(())
        } else {
            Err(Failure::Retry {
                after: Duration::from_secs(1),
                reason: format!("lost the lock {} before writing {}", guard.key, key.name()),
            })
        }
    }

    /// Clears an intent after its write is settled. Failing to is harmless but worth a line: a
    /// stale intent only makes the next create wait out the search lag and search first.
    async fn clear_intent<K: StoreKey>(&self, guard: &LockGuard, key: &K) {
        match self.store.remove_fenced(guard, key).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(key = %key.name(), "lock lost before clearing an intent; it stays")
            }
            Err(e) => {
                tracing::warn!(error = %e, key = %key.name(), "could not clear an intent; it stays")
            }
        }
    }

    /// Applies the transition, or, when the workflow has none by that name now, says in a comment
    /// what happened on GitHub — once per delivery.
    async fn transition_or_comment(
        &self,
        delivery: &str,
        key: &str,
        transition: Option<&str>,
        resolution: Option<&str>,
        event: &IssueEvent,
        what: &str,
    ) -> Result<(), Failure> {
        if let Some(name) = transition
            && self
                .jira
                .transition_named_with(key, name, resolution)
                .await?
        {
            return Ok(());
        }
        // A retry must not comment twice: the comment carries this delivery's marker, looked for
        // first (a consistent read; closing without a transition is rare enough to afford it).
        let marker = text::closure_marker(delivery);
        let posted = self.jira.comment_bodies(key).await?;
        if posted.iter().any(|body| text::has_marker(body, &marker)) {
            return Ok(());
        }
        let text = format!(
            "The GitHub issue was {what} by {}: {}",
            event.sender.login, event.issue.html_url
        );
        self.jira
            .add_comment(key, text::with_marker(adf::markdown_to_adf(&text), &marker))
            .await?;
        Ok(())
    }

    /// Sets (`assign`) or clears the Jira assignee for the GitHub user the event names. A login
    /// `[users]` does not map changes nothing in Jira (audited as skipped); unassigning clears
    /// Jira's assignee only while it is that user's account. Both are whole-value writes, so a
    /// retry repeats them harmlessly.
    async fn sync_assignee(
        &self,
        delivery: &str,
        key: &str,
        event: &IssueEvent,
        assign: bool,
    ) -> Result<(), Failure> {
        let Some(login) = event.assignee.as_ref().map(|u| u.login.as_str()) else {
            tracing::debug!(delivery, jira = key, "no assignee in the payload");
            return Ok(());
        };
        let account = self
            .config
            .users
            .iter()
            .find(|(l, _)| l.eq_ignore_ascii_case(login))
            .map(|(_, account)| account.as_str());
        let Some(account) = account else {
            tracing::info!(
                delivery,
                jira = key,
                login,
                "GitHub user not in [users]; Jira assignee left as is"
            );
            self.jira
                .skipped(
                    "jira.issue.assignee_skipped",
                    key,
                    serde_json::json!({"github_login": login, "action": event.action, "why": "not in [users]"}),
                )
                .await?;
            return Ok(());
        };
        if assign {
            self.jira.assign(key, Some(account)).await?;
        } else if !self.jira.unassign_if(key, account).await? {
            tracing::info!(
                delivery,
                jira = key,
                login,
                "Jira assignee is someone else now; left as is"
            );
        }
        Ok(())
    }

    fn is_own(&self, login: &str) -> bool {
        self.config
            .ignore_logins
            .iter()
            .any(|l| l.eq_ignore_ascii_case(login))
    }
}
