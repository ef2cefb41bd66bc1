//! The Jira twin of a GitHub issue: found through the stored mapping, recovered by its marker label
//! after an interrupted create, or created — once.

use std::future::Future;
use std::pin::Pin;

use chrono::Utc;
use hookbridge_shared::routing::Target;

use super::text::{labels_for, marker_label, summary};
use super::{GithubSync, Intent, Mapping};
use crate::events::github::{Issue, IssueEvent, IssueIdentity};
use crate::handler::Failure;
use crate::jira::adf;
use crate::jira::ops::NewIssue;
use crate::jira_sync::GithubTwin;
use crate::store::keys::{IssueCreateIntent, IssueMapping, JiraTwin};
use crate::store::{LockGuard, Transaction};

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

impl GithubSync {
    /// Returns the mapped Jira issue, creating it (once) when there is none; `true` when it was
    /// created now.
    pub(super) async fn ensure_issue(
        &self,
        guard: &LockGuard,
        event: &IssueEvent,
        identity: &IssueIdentity,
        target: &Target,
    ) -> Result<(Mapping, bool), Failure> {
        let issue = &event.issue;
        let map_key = IssueMapping(identity);
        if let Some(mut mapping) = self.store.read(&map_key).await? {
            if !mapping.linked {
                self.link(&mapping.jira_key, issue).await?;
                mapping.linked = true;
                self.write_mapping(guard, event, identity, &mapping).await?;
            }
            return Ok((mapping, false));
        }
        let intent_key = IssueCreateIntent(identity);
        if let Some(intent) = self.store.read(&intent_key).await? {
            let age = (Utc::now() - intent.at).to_std().unwrap_or_default();
            if age < self.config.search_lag {
                return Err(Failure::Retry {
                    after: self.config.search_lag - age + std::time::Duration::from_millis(250),
                    reason: format!(
                        "an earlier attempt may have created the Jira issue for {identity}; \
                         waiting for Jira search to catch up before checking"
                    ),
                });
            }
            if let Some(found) = self.jira.find_by_label(&marker_label(identity)).await? {
                tracing::warn!(issue = %identity, jira = %found, "recovered the Jira issue an interrupted attempt created");
                let mapping = Mapping {
                    jira_key: found,
                    linked: false,
                };
                self.write_mapping(guard, event, identity, &mapping).await?;
                return Box::pin(self.ensure_issue(guard, event, identity, target)).await;
            }
        }
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
        // The intent is recorded (and its time taken) right before the request leaves, after
        // the rate-limiter wait, so the search lag a later attempt waits out is counted from the
        // real send (README, "Worker (GitHub → Jira)").
        let record_intent = || -> BoxFuture<'_, Result<(), String>> {
            Box::pin(async {
                match self
                    .store
                    .write_fenced(guard, &intent_key, &Intent { at: Utc::now() }, None)
                    .await
                {
                    Ok(true) => Ok(()),
                    Ok(false) => Err(format!("lost the lock {} before sending", guard.key)),
                    Err(e) => Err(format!("could not record the creation intent: {e}")),
                }
            })
        };
        let jira_key = match self.jira.create_issue(&new_issue, &record_intent).await {
            Ok(key) => key,
            Err(e) => {
                if e.proves_nothing_happened() {
                    self.clear_intent(guard, &intent_key).await;
                }
                return Err(e.into());
            }
        };
        tracing::info!(issue = %identity, jira = %jira_key, "created Jira issue");
        let mut mapping = Mapping {
            jira_key,
            linked: false,
        };
        self.write_mapping(guard, event, identity, &mapping).await?;
        self.clear_intent(guard, &intent_key).await;
        self.link(&mapping.jira_key, issue).await?;
        mapping.linked = true;
        self.write_mapping(guard, event, identity, &mapping).await?;
        Ok((mapping, true))
    }

    /// Writes the mapping and its reverse (Jira key → GitHub issue, for the Jira → GitHub sync) in
    /// one transaction, only while `guard` holds the issue's lock; losing the lock is a retry.
    async fn write_mapping(
        &self,
        guard: &LockGuard,
        event: &IssueEvent,
        identity: &IssueIdentity,
        mapping: &Mapping,
    ) -> Result<(), Failure> {
        let twin = GithubTwin {
            repository: event.repository.full_name.clone(),
            number: event.issue.number,
        };
        let mut tx = Transaction::new();
        tx.expect_held(guard);
        tx.put(&IssueMapping(identity), mapping, None)?;
        tx.put(&JiraTwin(&mapping.jira_key), &twin, None)?;
        if self.store.commit(&tx).await? {
            Ok(())
        } else {
            Err(Failure::Retry {
                after: std::time::Duration::from_secs(1),
                reason: format!("lost the lock {} before writing the mapping", guard.key),
            })
        }
    }

    async fn link(&self, jira_key: &str, issue: &Issue) -> Result<(), Failure> {
        let title = format!("GitHub issue #{}: {}", issue.number, issue.title);
        self.jira
            .add_remote_link(jira_key, &issue.html_url, &issue.html_url, &title)
            .await?;
        Ok(())
    }
}
