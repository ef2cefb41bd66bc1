//! A GitHub comment mirrored to its Jira issue once: a done record per comment, and an intent
//! before posting so that a crash between "posted" and "recorded" is reconciled by looking for the
//! comment's marker among the Jira issue's comments (a consistent read, unlike search). The marker
//! is a paragraph of its own at the end of the bridge's comment, matched exactly: another comment
//! that quotes the GitHub comment's URL (or even the marker, inside its own text) is not taken for
//! it.

use chrono::Utc;
use hookbridge_shared::routing::OnCommentDeleted;

use super::text::{comment_marker, has_marker, with_marker};
use super::{CommentRecord, GithubSync, Intent};
use crate::events::github::{Comment, IssueEvent, IssueIdentity};
use crate::handler::Failure;
use crate::jira::adf;
use crate::store::LockGuard;
use crate::store::keys::{CommentIntent, CommentSynced};

impl GithubSync {
    /// The event's comment, unless the bridge wrote it (then `None`: nothing to mirror).
    fn others_comment<'e>(&self, event: &'e IssueEvent) -> Result<Option<&'e Comment>, Failure> {
        let comment = event
            .comment
            .as_ref()
            .ok_or_else(|| Failure::Fail("issue_comment event without a comment".into()))?;
        // A comment the Jira → GitHub sync posted carries its marker: never mirrored back.
        let mirrored = comment
            .body
            .as_deref()
            .is_some_and(crate::jira_sync::comment::has_jira_marker);
        Ok((!self.is_own(&comment.user.login) && !mirrored).then_some(comment))
    }

    pub(super) async fn comment_once(
        &self,
        guard: &LockGuard,
        event: &IssueEvent,
        identity: &IssueIdentity,
        jira_key: &str,
    ) -> Result<(), Failure> {
        let Some(comment) = self.others_comment(event)? else {
            return Ok(());
        };
        let done_key = CommentSynced(identity, comment.id);
        if self.store.read(&done_key).await?.is_some() {
            return Ok(());
        }
        let mut done = CommentRecord {
            jira: jira_key.to_owned(),
            comment: None,
        };
        let intent_key = CommentIntent(identity, comment.id);
        let marker = comment_marker(identity, comment.id);
        if self.store.read(&intent_key).await?.is_some()
            && let Some((id, _)) = self
                .jira
                .comments(jira_key)
                .await?
                .into_iter()
                .find(|(_, body)| has_marker(body, &marker))
        {
            done.comment = Some(id);
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
        match self.jira.add_comment(jira_key, body).await {
            Ok(id) => done.comment = Some(id),
            Err(e) => {
                if e.proves_nothing_happened() {
                    self.clear_intent(guard, &intent_key).await;
                }
                return Err(e.into());
            }
        }
        self.write_fenced(guard, &done_key, &done).await?;
        self.clear_intent(guard, &intent_key).await;
        Ok(())
    }

    /// The Jira comment made for GitHub comment `comment_id` on `jira_key`, as it is now: found
    /// by its marker in a consistent read of the issue's comments (the stored id is not trusted
    /// alone: a retry must see a deletion that already happened). `None`: there is none (never
    /// mirrored, or deleted already).
    async fn jira_twin_of(
        &self,
        identity: &IssueIdentity,
        comment_id: u64,
        jira_key: &str,
    ) -> Result<Option<String>, Failure> {
        let marker = comment_marker(identity, comment_id);
        Ok(self
            .jira
            .comments(jira_key)
            .await?
            .into_iter()
            .find(|(_, body)| has_marker(body, &marker))
            .map(|(id, _)| id))
    }

    /// `issue_comment.edited`: the Jira comment gets the new text (a whole-value write, so a
    /// retry repeats it harmlessly). A comment not mirrored yet (GitHub does not order its
    /// deliveries: the edit may come first) is posted now, with the new text, once.
    pub(super) async fn comment_edited(
        &self,
        guard: &LockGuard,
        event: &IssueEvent,
        identity: &IssueIdentity,
        jira_key: &str,
    ) -> Result<(), Failure> {
        let Some(comment) = self.others_comment(event)? else {
            return Ok(());
        };
        if self
            .store
            .read(&CommentSynced(identity, comment.id))
            .await?
            .is_none()
        {
            return self.comment_once(guard, event, identity, jira_key).await;
        }
        let Some(id) = self.jira_twin_of(identity, comment.id, jira_key).await? else {
            tracing::info!(
                jira = jira_key,
                comment = comment.id,
                "the Jira comment is gone; edit not applied"
            );
            return Ok(());
        };
        let marker = comment_marker(identity, comment.id);
        let body = with_marker(
            adf::comment_body(
                &comment.user.login,
                &comment.html_url,
                comment.body.as_deref().unwrap_or(""),
            ),
            &marker,
        );
        self.jira.edit_comment(jira_key, &id, body).await?;
        Ok(())
    }

    /// `issue_comment.deleted`: the Jira comment is deleted, or marked as deleted on GitHub
    /// (keeping its marker, so it is still found). A comment already gone is left alone: a retry
    /// after the delete went through does nothing.
    pub(super) async fn comment_deleted(
        &self,
        event: &IssueEvent,
        identity: &IssueIdentity,
        jira_key: &str,
        what: OnCommentDeleted,
    ) -> Result<(), Failure> {
        let Some(comment) = self.others_comment(event)? else {
            return Ok(());
        };
        let Some(id) = self.jira_twin_of(identity, comment.id, jira_key).await? else {
            tracing::info!(
                jira = jira_key,
                comment = comment.id,
                "no Jira comment for it; nothing to delete"
            );
            return Ok(());
        };
        match what {
            OnCommentDeleted::Delete => self.jira.delete_comment(jira_key, &id).await?,
            OnCommentDeleted::Mark => {
                let text = format!(
                    "This comment by @{} was deleted on GitHub by @{}: {}",
                    comment.user.login, event.sender.login, comment.html_url
                );
                let body = with_marker(
                    adf::markdown_to_adf(&text),
                    &comment_marker(identity, comment.id),
                );
                self.jira.edit_comment(jira_key, &id, body).await?;
            }
        }
        Ok(())
    }
}
