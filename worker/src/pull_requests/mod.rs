//! Where a pull request or a push becomes Jira remote links (README, "Pull requests and commits
//! in Jira"): on a route with `sync_pull_requests = true`, the Jira issues a pull request names —
//! a key in its title or head branch, or a synced GitHub issue it closes (`Fixes #12`) — get a
//! link to it that follows its state (open, closed, merged), and one comment when it is merged;
//! the Jira issues a pushed commit's message names get a link to the commit.
//!
//! Exactly once, with the mechanisms of [`crate::github_sync`]:
//! - links are upserts by `globalId` (the pull request's or the commit's URL): sent again, they
//!   update the same link, so a redelivery, a retry or two workers at once never add a second;
//! - all work on one pull request runs under its fenced store lock (`pull:owner/repo#N`), which
//!   orders its deliveries; the newest state by GitHub's `updated_at` is kept with the keys
//!   linked so far ([`PullRecord`]), so a late `opened` cannot reopen a merged link and a key
//!   dropped from an edited title still has its link follow the pull request;
//! - the merge comment is posted once per Jira issue: a done record per pull request and Jira
//!   key, an intent written before posting, and a marker paragraph looked for among the issue's
//!   comments (a consistent read) when an intent shows an earlier attempt may have posted it;
//! - pushes take no lock: their only effects are upserts.
//!
//! A key whose issue Jira does not have (404) is skipped quietly: logged and audited
//! (`jira.remote_link.skipped`), never a failure. Only keys of the route's `project` and
//! `link_projects` count, at most [`MAX_KEYS`] per pull request and [`MAX_LINKS_PER_PUSH`] links
//! per push.
//!
//! # Layout
//! - [`keys`]: Jira keys in text, and the issues a pull request closes.
//! - [`links`]: what a pull request's or a commit's link shows.
//! - `merge`: the merge comment, once.
//! - `push`: a push's commits.

pub mod keys;
pub mod links;
mod merge;
mod push;

use std::collections::BTreeSet;

use hookbridge_shared::envelope::Envelope;
use hookbridge_shared::routing::{EventFacts, Target};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::events::github::{IssueIdentity, PullRequestEvent};
use crate::github_sync::GithubSync;
use crate::handler::{Failure, Outcome, held_elsewhere, under_lease};
use crate::jira::ops::OpsError;
use crate::jira::remote_links::RemoteLink;
use crate::store::keys::{IssueMapping, PullLinks};
use crate::store::{LockGuard, LockName, StoreKey, lock};

use keys::KeyFilter;
use links::{PullSnapshot, PullState};

/// The most Jira issues one pull request links (GitHub allows long titles and bodies).
pub const MAX_KEYS: usize = 20;
/// The most links one push makes (a push may carry hundreds of commits).
pub const MAX_LINKS_PER_PUSH: usize = 50;

/// What the bridge linked for one pull request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PullRecord {
    /// The newest state seen.
    pub snapshot: PullSnapshot,
    /// The Jira issues that have its link.
    pub keys: BTreeSet<String>,
}

/// The merge comment a pull request made on one Jira issue.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MergeComment {
    /// The Jira comment's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// Pull requests and pushes, with the GitHub → Jira sync's store, Jira, routing and tunables.
pub struct PullRequests<'a> {
    sync: &'a GithubSync,
}

/// What linking one key came to.
enum Linked {
    Yes,
    /// Jira has no such issue (404): skipped quietly.
    NoSuchIssue,
}

impl<'a> PullRequests<'a> {
    pub fn new(sync: &'a GithubSync) -> Self {
        Self { sync }
    }

    /// Writes a record only while `guard` holds the pull request's lock; losing it is a retry.
    async fn write_fenced<K: StoreKey>(
        &self,
        guard: &LockGuard,
        key: &K,
        value: &K::Value,
    ) -> Result<(), Failure> {
        if self
            .sync
            .store
            .write_fenced(guard, key, value, None)
            .await?
        {
            Ok(())
        } else {
            Err(Failure::Retry {
                after: std::time::Duration::from_secs(1),
                reason: format!("lost the lock {} before writing {}", guard.key, key.name()),
            })
        }
    }

    /// A stale intent only makes a later attempt read the comments first: worth a line, no more.
    async fn clear_intent<K: StoreKey>(&self, guard: &LockGuard, key: &K) {
        match self.sync.store.remove_fenced(guard, key).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(key = %key.name(), "lock lost before clearing an intent; it stays")
            }
            Err(e) => {
                tracing::warn!(error = %e, key = %key.name(), "could not clear an intent; it stays")
            }
        }
    }

    /// The route for a pull request or push, when it asks for links; `None` (logged) else.
    fn route(&self, facts: &EventFacts<'_>, delivery: &str) -> Option<Target> {
        match self.sync.routing.route(facts) {
            Some(target) if target.sync_pull_requests => Some(target),
            Some(target) => {
                tracing::info!(delivery, route = %target.rule, event = facts.event,
                    "route does not sync pull requests; ignored");
                None
            }
            None => {
                tracing::info!(
                    delivery,
                    event = facts.event,
                    "no route for this event; ignored"
                );
                None
            }
        }
    }

    /// The keys whose projects the route lets pull requests and commits name.
    fn filter(target: &Target) -> KeyFilter {
        let mut projects = vec![target.project.clone()];
        projects.extend(target.link_projects.iter().cloned());
        KeyFilter::new(projects)
    }

    /// Upserts `link` on `key`; a 404 (no such issue) is audited as skipped, not an error.
    async fn link(&self, key: &str, link: &RemoteLink, delivery: &str) -> Result<Linked, Failure> {
        match self.sync.jira.upsert_remote_link(key, link).await {
            Ok(()) => Ok(Linked::Yes),
            Err(OpsError::Jira(e)) if e.status() == Some(404) => {
                tracing::info!(delivery, jira = key, url = %link.url,
                    "no such Jira issue; link skipped");
                self.sync
                    .jira
                    .skipped(
                        "jira.remote_link.skipped",
                        key,
                        json!({"url": link.url, "why": "no such Jira issue (404)", "delivery": delivery}),
                    )
                    .await?;
                Ok(Linked::NoSuchIssue)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Applies one `pull_request` delivery (decoded, not yet done).
    ///
    /// # Errors
    /// [`Failure`], classified.
    pub async fn handle_pull_request(
        &self,
        envelope: &Envelope,
        event: &PullRequestEvent,
    ) -> Result<Outcome, Failure> {
        let delivery = envelope.delivery.as_str();
        let labels = event.pull_request.label_names();
        let facts = EventFacts {
            repository: &event.repository.full_name,
            labels: &labels,
            event: &envelope.event,
            action: &event.action,
        };
        let Some(target) = self.route(&facts, delivery) else {
            self.sync
                .store
                .mark_done(delivery, self.sync.config.done_ttl)
                .await?;
            return Ok(Outcome::Done);
        };
        let identity = IssueIdentity::new(&event.repository.full_name, event.pull_request.number);
        let config = &self.sync.config;
        let name = LockName::github_pull_request(&identity);
        let Some(guard) =
            lock::acquire(&self.sync.store, &name, config.lock_ttl, config.lock_wait).await?
        else {
            return Ok(held_elsewhere(format!("pull request {identity}")));
        };
        let work = self.under_lock(&guard, envelope, event, &identity, &target);
        under_lease(&self.sync.store, &guard, config.lock_ttl, work).await
    }

    /// The Jira keys `event` names now, in order: its title's and branch's, then the twins of
    /// the synced issues it closes.
    async fn keys_named(
        &self,
        event: &PullRequestEvent,
        filter: &KeyFilter,
    ) -> Result<Vec<String>, Failure> {
        let pull = &event.pull_request;
        let mut keys = filter.keys_in(&pull.title);
        keys.extend(filter.keys_in(&pull.head.name));
        let body = pull.body.as_deref().unwrap_or("");
        for number in keys::closed_issues(body, &event.repository.full_name)
            .into_iter()
            .take(MAX_KEYS)
        {
            let issue = IssueIdentity::new(&event.repository.full_name, number);
            // Only a synced issue has a Jira twin: its key comes from the mapping, whatever its
            // project (the route made it).
            if let Some(mapping) = self.sync.store.read(&IssueMapping(&issue)).await? {
                keys.push(mapping.jira_key);
            }
        }
        let mut seen = BTreeSet::new();
        keys.retain(|k| seen.insert(k.clone()));
        Ok(keys)
    }

    async fn under_lock(
        &self,
        guard: &LockGuard,
        envelope: &Envelope,
        event: &PullRequestEvent,
        identity: &IssueIdentity,
        target: &Target,
    ) -> Result<Outcome, Failure> {
        let delivery = envelope.delivery.as_str();
        let store = &self.sync.store;
        if store.is_done(delivery).await? {
            return Ok(Outcome::Done);
        }
        let named = self.keys_named(event, &Self::filter(target)).await?;
        let record_key = PullLinks(identity);
        let stored = store.read(&record_key).await?;
        let seen_now = PullSnapshot::of(&event.pull_request);
        let (snapshot, mut keys, shown) = match stored {
            Some(record) => {
                let shown = record.snapshot.link();
                (record.snapshot.newest(seen_now), record.keys, Some(shown))
            }
            None => (seen_now, BTreeSet::new(), None),
        };
        // The keys whose link already shows exactly this: not sent again (Jira records every
        // upsert in the issue's history, even one that changes nothing).
        let current: BTreeSet<String> = match &shown {
            Some(shown) if *shown == snapshot.link() => keys.clone(),
            _ => BTreeSet::new(),
        };
        for key in named {
            if keys.len() >= MAX_KEYS {
                tracing::info!(delivery, pull = %identity, jira = %key,
                    "more Jira keys than {MAX_KEYS}; the rest are not linked");
                break;
            }
            keys.insert(key);
        }
        let link = snapshot.link();
        let mut linked = BTreeSet::new();
        for key in &keys {
            if current.contains(key) {
                linked.insert(key.clone());
            } else if let Linked::Yes = self.link(key, &link, delivery).await? {
                linked.insert(key.clone());
            }
        }
        let record = PullRecord {
            snapshot: snapshot.clone(),
            keys: linked.clone(),
        };
        self.write_fenced(guard, &record_key, &record).await?;
        if snapshot.state == PullState::Merged {
            let merged_by = (event.action == "closed" && event.pull_request.is_merged())
                .then_some(event.sender.login.as_str());
            for key in &linked {
                self.merge_comment_once(guard, identity, key, &snapshot, merged_by)
                    .await?;
            }
        }
        store.mark_done(delivery, self.sync.config.done_ttl).await?;
        tracing::info!(delivery, pull = %identity, action = %event.action,
            jira = ?linked, state = ?snapshot.state, "pull request linked in Jira");
        Ok(Outcome::Done)
    }
}
