//! A GitHub comment mirrored to its Jira issue once: a done record per comment, and an intent
//! before posting so that a crash between "posted" and "recorded" is reconciled by looking for the
//! comment's marker among the Jira issue's comments (a consistent read, unlike search). The marker
//! is a paragraph of its own at the end of the bridge's comment, matched exactly: another comment
//! that quotes the GitHub comment's URL (or even the marker, inside its own text) is not taken for
//! it.

use chrono::Utc;

use super::text::{comment_marker, has_marker, with_marker};
use super::{CommentRecord, GithubSync, Intent};
use crate::events::github::{IssueEvent, IssueIdentity};
use crate::handler::Failure;
use crate::jira::adf;
use crate::store::LockGuard;
use crate::store::keys::{CommentIntent, CommentSynced};

impl GithubSync {
    pub(super) async fn comment_once(
        &self,
        guard: &LockGuard,
        event: &IssueEvent,
        identity: &IssueIdentity,
        jira_key: &str,
    ) -> Result<(), Failure> {
        let Some(comment) = &event.comment else {
            return Err(Failure::Fail(
                "issue_comment event without a comment".into(),
            ));
        };
        if self.is_own(&comment.user.login) {
            return Ok(());
        }
        let done_key = CommentSynced(identity, comment.id);
        if self.store.read(&done_key).await?.is_some() {
            return Ok(());
        }
        let done = CommentRecord {
            jira: jira_key.to_owned(),
        };
        let intent_key = CommentIntent(identity, comment.id);
        let marker = comment_marker(identity, comment.id);
        if self.store.read(&intent_key).await?.is_some()
            && self
                .jira
                .comment_bodies(jira_key)
                .await?
                .iter()
                .any(|body| has_marker(body, &marker))
        {
            self.write_fenced(guard, &done_key, &done).await?;
            return Ok(());
        }
        self.write_fenced(guard, &intent_key, &Intent { at: Utc::now() })
            .await?;
        let body = with_marker(
            adf::comment_body(
                &comment.user.login,
                &comment.html_url,
                comment.body.as_deref().unwrap_or(""),
            ),
            &marker,
        );
        if let Err(e) = self.jira.add_comment(jira_key, body).await {
            if e.proves_nothing_happened() {
                self.clear_intent(guard, &intent_key).await;
            }
            return Err(e.into());
        }
        self.write_fenced(guard, &done_key, &done).await?;
        self.clear_intent(guard, &intent_key).await;
        Ok(())
    }
}
