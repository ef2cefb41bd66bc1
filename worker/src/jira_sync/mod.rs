//! Where a Jira event becomes GitHub calls: the Jira twin of a synced GitHub issue moved to a
//! Done status category closes the GitHub issue (its close reason from the Jira resolution),
//! moved out of Done reopens it, and a Jira comment becomes one GitHub comment naming its author.
//! Opt-in per route (`sync_from_jira`, README "Jira → GitHub").
//!
//! Exactly once, as the GitHub → Jira side ([`crate::github_sync`]) keeps it:
//! 1. **Dedupe** by delivery id (the router checks; the check is repeated under the lock).
//! 2. **Serialise per GitHub issue**: the work runs under the same fenced store lock as the
//!    GitHub → Jira work on that issue, bounded by its lease ([`lock::leased`]).
//! 3. **Close and reopen compare first**: GitHub's current state is read, and a PATCH is sent
//!    only when it differs — a whole-value write, so a retry after a lost answer is harmless.
//! 4. **Comments**: a done record per Jira comment, and an intent before posting; a later attempt
//!    that finds an intent looks for the comment's hidden marker among the GitHub issue's
//!    comments (a consistent read) before posting again.
//!
//! No loops (README, "Loop prevention"): a Jira event whose actor is the bridge's own Jira account
//! (`GET /rest/api/3/myself`, asked once) is ignored, and so is a Jira comment that ends with the
//! bridge's marker (decided in [`crate::events::jira`]); on GitHub, the bridge's login joins the
//! ignored logins, and a GitHub comment carrying [`comment::has_jira_marker`] is never mirrored
//! back into Jira.
//!
//! # Layout
//! - [`github`]: GitHub's issue REST calls, as a token or as the GitHub App.
//! - `twin`: which GitHub issue a Jira issue is the twin of (store, else its remote links).
//! - [`state`]: close / reopen, and the close reason a Jira resolution means.
//! - [`comment`]: a Jira comment posted on GitHub once, and its marker.

pub mod comment;
pub mod github;
pub mod state;
mod twin;

use std::sync::Arc;
use std::time::Duration;

use hookbridge_shared::envelope::Envelope;
use hookbridge_shared::routing::{Routing, Target};
use serde::{Deserialize, Serialize};
use tokio::sync::OnceCell;

use crate::audit::{AuditLog, Entry};
use crate::events::github::IssueIdentity;
use crate::events::jira::{JiraActor, JiraComment, StatusChange};
use crate::github_app::GithubAppError;
use crate::handler::{Failure, Outcome, held_elsewhere, under_lease};
use crate::jira::JiraClient;
use crate::jira::ops::JiraOps;
use crate::store::keys::{JiraStatusSeen, JiraTwin};
use crate::store::{LockGuard, LockName, Store, lock};

pub use github::GithubIssues;

/// The GitHub issue a Jira issue is the twin of (the value of [`crate::store::keys::JiraTwin`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GithubTwin {
    /// `owner/name`, as GitHub spells it.
    pub repository: String,
    pub number: u64,
}

impl GithubTwin {
    pub fn identity(&self) -> IssueIdentity {
        IssueIdentity::new(&self.repository, self.number)
    }
}

/// A Jira comment that has its GitHub twin.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JiraCommentRecord {
    /// The GitHub comment's id.
    pub github_comment: u64,
}

/// Tunables of the Jira → GitHub sync.
#[derive(Debug, Clone)]
pub struct JiraSyncConfig {
    /// How long the per-issue lock lives without being extended.
    pub lock_ttl: Duration,
    /// How long to wait for a busy lock before giving the message back.
    pub lock_wait: Duration,
    /// How long a delivery id is remembered as done.
    pub done_ttl: Duration,
    /// The bridge's own Jira accountId, when known without asking Jira (dry-run, tests).
    pub bridge_account: Option<String>,
}

impl Default for JiraSyncConfig {
    fn default() -> Self {
        Self {
            lock_ttl: Duration::from_secs(15),
            lock_wait: Duration::from_secs(15),
            done_ttl: Duration::from_secs(7 * 24 * 3600),
            bridge_account: None,
        }
    }
}

/// The Jira → GitHub sync.
pub struct JiraSync {
    pub store: Store,
    /// Live Jira (the bridge's account, remote links); `None` in dry-run.
    pub jira: Option<JiraClient>,
    pub github: Arc<GithubIssues>,
    pub routing: Routing,
    pub config: JiraSyncConfig,
    /// Every GitHub write is a line here (after GitHub answered).
    pub audit: AuditLog,
    /// The bridge's Jira accountId, asked of Jira once.
    account: OnceCell<Option<String>>,
}

/// A GitHub failure as the consumer acts on it.
pub(crate) fn github_failure(error: GithubAppError) -> Failure {
    match error {
        GithubAppError::Transient {
            reason,
            retry_after,
        } => Failure::Retry {
            after: retry_after.unwrap_or(Duration::from_secs(5)),
            reason: format!("GitHub: {reason}"),
        },
        other => Failure::Fail(other.to_string()),
    }
}

/// What one Jira event asks of the GitHub issue.
enum Work<'a> {
    Status(&'a StatusChange),
    Comment(&'a JiraComment),
}

impl JiraSync {
    pub fn new(
        store: Store,
        jira: Option<JiraClient>,
        github: Arc<GithubIssues>,
        routing: Routing,
        config: JiraSyncConfig,
        audit: AuditLog,
    ) -> Self {
        Self {
            store,
            jira,
            github,
            routing,
            config,
            audit,
            account: OnceCell::new(),
        }
    }

    /// The bridge's own Jira accountId (`GET /rest/api/3/myself`, once); `None` in dry-run.
    async fn bridge_account(&self) -> Result<Option<&str>, Failure> {
        let account = self
            .account
            .get_or_try_init(|| async {
                if let Some(known) = &self.config.bridge_account {
                    return Ok(Some(known.clone()));
                }
                let Some(client) = &self.jira else {
                    return Ok(None);
                };
                let me = client
                    .myself()
                    .await
                    .map_err(|e| Failure::from(crate::jira::ops::OpsError::from(e)))?;
                Ok::<_, Failure>(me["accountId"].as_str().map(str::to_owned))
            })
            .await?;
        Ok(account.as_deref())
    }

    /// Whether `actor` is the bridge's own Jira account.
    async fn is_bridge(&self, actor: Option<&JiraActor>) -> Result<bool, Failure> {
        let Some(id) = actor.and_then(|a| a.account_id.as_deref()) else {
            return Ok(false);
        };
        Ok(self.bridge_account().await? == Some(id))
    }

    /// A Jira status change of a (possible) twin.
    ///
    /// # Errors
    /// [`Failure`], classified.
    pub async fn handle_status(
        &self,
        envelope: &Envelope,
        change: &StatusChange,
    ) -> Result<Outcome, Failure> {
        if self.is_bridge(change.user.as_ref()).await? {
            // Its time still counts: an older change delivered late must not undo it.
            self.saw(&change.key, change.at).await?;
            return self
                .skip(envelope, &change.key, "the bridge's own Jira change")
                .await;
        }
        if !change.is_done() && !change.resolution_cleared {
            // Neither into Done nor out of it: nothing for GitHub. Its time counts for a twin.
            if self.store.read(&JiraTwin(&change.key)).await?.is_some() {
                self.saw(&change.key, change.at).await?;
            }
            return self
                .skip(
                    envelope,
                    &change.key,
                    "a status change within To Do / In Progress",
                )
                .await;
        }
        self.handle(
            envelope,
            &change.key,
            change.labels.as_deref(),
            Work::Status(change),
        )
        .await
    }

    /// A Jira comment on a (possible) twin.
    ///
    /// # Errors
    /// [`Failure`], classified.
    pub async fn handle_comment(
        &self,
        envelope: &Envelope,
        comment: &JiraComment,
    ) -> Result<Outcome, Failure> {
        if self.is_bridge(comment.author.as_ref()).await? {
            return self
                .skip(
                    envelope,
                    &comment.key,
                    "a comment by the bridge's own Jira account",
                )
                .await;
        }
        self.handle(
            envelope,
            &comment.key,
            comment.labels.as_deref(),
            Work::Comment(comment),
        )
        .await
    }

    /// Audits a GitHub write the sync made for Jira issue `key`.
    async fn audited(
        &self,
        action: &str,
        key: &str,
        twin: &GithubTwin,
        detail: serde_json::Value,
    ) -> Result<(), Failure> {
        let entry = Entry::new(action, twin.identity().as_str())
            .outcome("done")
            .id("jira", key)
            .id("github", twin.identity().as_str())
            .detail(detail);
        self.audit.record(entry).await?;
        Ok(())
    }

    /// Records `at` as the newest status change seen for `key`, unless a newer one is recorded.
    async fn saw(&self, key: &str, at: chrono::DateTime<chrono::Utc>) -> Result<(), Failure> {
        let seen = self.store.read(&JiraStatusSeen(key)).await?;
        if seen.is_none_or(|newest| newest < at) {
            self.store.write(&JiraStatusSeen(key), &at, None).await?;
        }
        Ok(())
    }

    async fn skip(&self, envelope: &Envelope, key: &str, why: &str) -> Result<Outcome, Failure> {
        tracing::info!(delivery = %envelope.delivery.as_str(), jira = key, why, "no GitHub effect");
        self.store
            .mark_done(envelope.delivery.as_str(), self.config.done_ttl)
            .await?;
        Ok(Outcome::Done)
    }

    async fn handle(
        &self,
        envelope: &Envelope,
        key: &str,
        labels: Option<&[String]>,
        work: Work<'_>,
    ) -> Result<Outcome, Failure> {
        let Some(twin) = self.twin(key, labels).await? else {
            return self
                .skip(envelope, key, "not the twin of a GitHub issue")
                .await;
        };
        let Some(issue) = self
            .github
            .issue(&twin.repository, twin.number)
            .await
            .map_err(github_failure)?
        else {
            return self
                .skip(envelope, key, "the GitHub issue is gone (deleted or moved)")
                .await;
        };
        let target = self
            .routing
            .route_from_jira(&twin.repository, &issue.labels);
        let Some(target) = target.filter(|t| t.sync_from_jira) else {
            return self
                .skip(envelope, key, "no route with sync_from_jira for this issue")
                .await;
        };
        let identity = twin.identity();
        let name = LockName::github_issue(&identity);
        let Some(guard) = lock::acquire(
            &self.store,
            &name,
            self.config.lock_ttl,
            self.config.lock_wait,
        )
        .await?
        else {
            return Ok(held_elsewhere(&identity));
        };
        let run = self.under_lock(&guard, envelope, key, &twin, &target, work);
        under_lease(&self.store, &guard, self.config.lock_ttl, run).await
    }

    async fn under_lock(
        &self,
        guard: &LockGuard,
        envelope: &Envelope,
        key: &str,
        twin: &GithubTwin,
        target: &Target,
        work: Work<'_>,
    ) -> Result<Outcome, Failure> {
        let delivery = envelope.delivery.as_str();
        if self.store.is_done(delivery).await? {
            return Ok(Outcome::Done);
        }
        match work {
            Work::Status(change) => {
                let seen = self.store.read(&JiraStatusSeen(key)).await?;
                if seen.is_some_and(|newest| change.at < newest) {
                    tracing::info!(
                        delivery,
                        jira = key,
                        "an older status change delivered late; not applied"
                    );
                } else {
                    self.apply_status(twin, target, change).await?;
                    self.saw(key, change.at).await?;
                }
            }
            Work::Comment(comment) => self.comment_once(guard, twin, comment).await?,
        }
        self.store.mark_done(delivery, self.config.done_ttl).await?;
        tracing::info!(delivery, jira = key, github = %twin.identity(), "synced to GitHub");
        Ok(Outcome::Done)
    }
}

/// The sync the worker's settings describe, and the bridge's GitHub login (to be ignored as an
/// actor); `None` when no route has `sync_from_jira`. `GITHUB_TOKEN` wins over the GitHub App.
///
/// # Errors
/// A one-line reason naming the key: a client that cannot be built, or GitHub refusing to say
/// who the credentials are (the worker does not start without knowing its own login, or the
/// bridge's GitHub writes would come back into Jira).
pub async fn from_settings(
    store: &Store,
    jira: &JiraOps,
    audit: &AuditLog,
    settings: &crate::settings::WorkerSettings,
) -> Result<Option<(JiraSync, String)>, String> {
    let sync = &settings.jira_sync;
    if !sync.enabled {
        return Ok(None);
    }
    let api = settings.deployment_rule.api.clone();
    let (github, key) = match (&sync.token, &settings.deployment_rule.app) {
        (Some(token), _) => (GithubIssues::with_token(api, token.clone()), "GITHUB_TOKEN"),
        (None, Some(app)) => (
            GithubIssues::with_app(
                api,
                app.credentials()
                    .map_err(|e| format!("GITHUB_APP_PRIVATE_KEY_FILE: {e}"))?,
            ),
            "GITHUB_APP_ID",
        ),
        (None, None) => {
            return Err(
                "GITHUB_TOKEN: is not set, nor GITHUB_APP_ID, and a route has sync_from_jira"
                    .into(),
            );
        }
    };
    let github = github.map_err(|e| format!("GITHUB_API_URL: {e}"))?;
    let login = github
        .login()
        .await
        .map_err(|e| format!("{key}: GitHub could not say who the bridge is: {e}"))?;
    tracing::info!(login = %login, "Jira → GitHub sync on: the bridge's GitHub login is ignored as an actor");
    let config = JiraSyncConfig {
        lock_ttl: settings.lock_ttl,
        ..JiraSyncConfig::default()
    };
    Ok(Some((
        JiraSync::new(
            store.clone(),
            jira.live_client().cloned(),
            Arc::new(github),
            settings.routing.clone(),
            config,
            audit.clone(),
        ),
        login,
    )))
}
