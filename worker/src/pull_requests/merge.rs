//! The comment a merged pull request adds to each Jira issue it links: once per pull request and
//! Jira issue. A done record per pair, an intent written before the comment is posted, and a
//! marker paragraph at its end: an attempt that finds the intent but no record looks for the
//! marker among the issue's comments (a consistent read) before posting again.

use chrono::Utc;
use sha2::{Digest, Sha256};

use super::links::PullSnapshot;
use super::{MergeComment, PullRequests};
use crate::events::github::IssueIdentity;
use crate::github_sync::Intent;
use crate::github_sync::text::{has_marker, with_marker};
use crate::handler::Failure;
use crate::jira::adf;
use crate::store::LockGuard;
use crate::store::keys::{MergeCommentIntent, MergeCommented};

/// The marker of the merge comment of pull request `identity`.
pub fn merge_marker(identity: &IssueIdentity) -> String {
    let digest = hex::encode(Sha256::digest(
        format!("{}#merged", identity.as_str()).as_bytes(),
    ));
    format!("hookbridge:ghpullmerged-{}", &digest[..16])
}

impl PullRequests<'_> {
    /// Posts the merge comment of `snapshot` on `jira_key` unless it was posted already.
    pub(super) async fn merge_comment_once(
        &self,
        guard: &LockGuard,
        identity: &IssueIdentity,
        jira_key: &str,
        snapshot: &PullSnapshot,
        merged_by: Option<&str>,
    ) -> Result<(), Failure> {
        let store = &self.sync.store;
        let done_key = MergeCommented(identity, jira_key);
        if store.read(&done_key).await?.is_some() {
            return Ok(());
        }
        let intent_key = MergeCommentIntent(identity, jira_key);
        let marker = merge_marker(identity);
        if store.read(&intent_key).await?.is_some()
            && let Some((id, _)) = self
                .sync
                .jira
                .comments(jira_key)
                .await?
                .into_iter()
                .find(|(_, body)| has_marker(body, &marker))
        {
            self.write_fenced(guard, &done_key, &MergeComment { comment: Some(id) })
                .await?;
            self.clear_intent(guard, &intent_key).await;
            return Ok(());
        }
        self.write_fenced(guard, &intent_key, &Intent { at: Utc::now() })
            .await?;
        let into = snapshot
            .base
            .as_deref()
            .map(|b| format!(" into `{b}`"))
            .unwrap_or_default();
        let by = merged_by.map(|l| format!(" by @{l}")).unwrap_or_default();
        let text = format!(
            "Pull request [#{number}]({url}) was merged{into}{by}: {title}",
            number = snapshot.number,
            url = snapshot.url,
            title = snapshot.title.trim(),
        );
        let body = with_marker(adf::markdown_to_adf(&text), &marker);
        let id = match self.sync.jira.add_comment(jira_key, body).await {
            Ok(id) => id,
            Err(e) => {
                if e.proves_nothing_happened() {
                    self.clear_intent(guard, &intent_key).await;
                }
                return Err(e.into());
            }
        };
        self.write_fenced(guard, &done_key, &MergeComment { comment: Some(id) })
            .await?;
        self.clear_intent(guard, &intent_key).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_pull_request_has_its_marker() {
        let one = IssueIdentity::new("octo/api", 7);
        assert_eq!(
            merge_marker(&one),
            merge_marker(&IssueIdentity::new("Octo/API", 7))
        );
        assert_ne!(
            merge_marker(&one),
            merge_marker(&IssueIdentity::new("octo/api", 8))
        );
        // The Jira → GitHub sync knows it for the bridge's own: no echo back to GitHub.
        assert!(crate::events::jira::is_bridge_comment(&format!(
            "Pull request #7 was merged\n\n{}",
            merge_marker(&one)
        )));
    }
}
