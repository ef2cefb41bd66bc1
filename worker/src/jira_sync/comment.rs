//! A Jira comment posted on the GitHub twin once: a done record per Jira comment, and an intent
//! before posting, so that a crash between "posted" and "recorded" is settled by looking for the
//! comment's hidden marker (`<!-- hookbridge:jira-comment KEY/ID -->`, its last line) among the
//! GitHub issue's comments. The same marker tells the GitHub → Jira sync that a GitHub comment is
//! the bridge's own, never to be mirrored back.

use chrono::Utc;
use url::Url;

use super::{GithubTwin, JiraCommentRecord, JiraSync, github_failure};
use crate::events::jira::JiraComment;
use crate::github_sync::Intent;
use crate::handler::Failure;
use crate::store::LockGuard;
use crate::store::keys::{JiraCommentIntent, JiraCommentSynced};

/// GitHub's limit on a comment body is 65,536 characters; the quote is cut well before.
const QUOTE_LIMIT: usize = 60_000;

/// The hidden marker of the GitHub comment made for Jira comment `id` of `key`.
pub fn jira_comment_marker(key: &str, id: &str) -> String {
    format!(
        "<!-- hookbridge:jira-comment {}/{} -->",
        key.to_ascii_uppercase(),
        id
    )
}

/// Whether a GitHub comment body is one the bridge made for a Jira comment: its last non-empty
/// line is exactly a marker of [`jira_comment_marker`]'s shape (a quote of a marker inside the
/// text is not).
pub fn has_jira_marker(body: &str) -> bool {
    let Some(last) = body.lines().map(str::trim).rfind(|l| !l.is_empty()) else {
        return false;
    };
    let Some(inner) = last
        .strip_prefix("<!-- hookbridge:jira-comment ")
        .and_then(|rest| rest.strip_suffix(" -->"))
    else {
        return false;
    };
    matches!(inner.split_once('/'), Some((key, id))
        if !key.is_empty() && !id.is_empty()
            && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            && id.bytes().all(|b| b.is_ascii_digit()))
}

/// Markdown's special characters in a name, escaped.
fn escaped(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars().filter(|c| !c.is_control()) {
        if "\\`*_[]<>#!|~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The Jira site's origin, from the comment's REST URL.
fn site(comment: &JiraComment) -> Option<String> {
    let url = Url::parse(comment.url.as_deref()?).ok()?;
    matches!(url.scheme(), "https" | "http").then(|| url.origin().ascii_serialization())
}

/// The GitHub comment for `comment`: who wrote it, a link back, the text quoted, the marker.
pub fn github_body(comment: &JiraComment) -> String {
    let author = comment
        .author
        .as_ref()
        .map_or_else(|| "Someone".to_owned(), |a| escaped(&a.display_name));
    let key = comment.key.to_ascii_uppercase();
    let link = match site(comment) {
        Some(site) => format!(
            "[{key}]({site}/browse/{key}?focusedCommentId={id})",
            id = comment.id
        ),
        None => key.clone(),
    };
    let mut text: String = comment.body.chars().take(QUOTE_LIMIT).collect();
    if text.len() < comment.body.len() {
        text.push('…');
    }
    let quoted: Vec<String> = text.lines().map(|l| format!("> {l}")).collect();
    format!(
        "**{author}** commented in Jira on {link}:\n\n{}\n\n{}",
        quoted.join("\n"),
        jira_comment_marker(&key, &comment.id)
    )
}

impl JiraSync {
    pub(super) async fn comment_once(
        &self,
        guard: &LockGuard,
        twin: &GithubTwin,
        comment: &JiraComment,
    ) -> Result<(), Failure> {
        let done_key = JiraCommentSynced(&comment.key, &comment.id);
        if self.store.read(&done_key).await?.is_some() {
            return Ok(());
        }
        let marker = jira_comment_marker(&comment.key, &comment.id);
        let intent_key = JiraCommentIntent(&comment.key, &comment.id);
        if self.store.read(&intent_key).await?.is_some()
            && let Some(id) = self
                .github
                .find_comment(&twin.repository, twin.number, &marker)
                .await
                .map_err(github_failure)?
        {
            self.fenced(guard, &done_key, &JiraCommentRecord { github_comment: id })
                .await?;
            return Ok(());
        }
        self.fenced(guard, &intent_key, &Intent { at: Utc::now() })
            .await?;
        let posted = self
            .github
            .post_comment(&twin.repository, twin.number, &github_body(comment))
            .await;
        let id = match posted {
            Ok(id) => id,
            Err(e) => {
                if super::github::proves_nothing_happened(&e) {
                    let _ = self.store.remove_fenced(guard, &intent_key).await;
                }
                return Err(github_failure(e));
            }
        };
        self.fenced(guard, &done_key, &JiraCommentRecord { github_comment: id })
            .await?;
        self.audited(
            "github.comment.created",
            &comment.key,
            twin,
            serde_json::json!({"jira_comment": comment.id, "github_comment": id}),
        )
        .await?;
        if let Err(e) = self.store.remove_fenced(guard, &intent_key).await {
            tracing::warn!(error = %e, "could not clear an intent; it stays");
        }
        Ok(())
    }

    async fn fenced<K: crate::store::StoreKey>(
        &self,
        guard: &LockGuard,
        key: &K,
        value: &K::Value,
    ) -> Result<(), Failure> {
        if self.store.write_fenced(guard, key, value, None).await? {
            Ok(())
        } else {
            Err(Failure::Retry {
                after: std::time::Duration::from_secs(1),
                reason: format!("lost the lock {} before writing {}", guard.key, key.name()),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::jira::JiraActor;

    #[test]
    fn markers_are_matched_on_the_last_line_only() {
        let marker = jira_comment_marker("api-1", "10001");
        assert_eq!(marker, "<!-- hookbridge:jira-comment API-1/10001 -->");
        assert!(has_jira_marker(&format!("hello\n\n{marker}\n")));
        assert!(!has_jira_marker(&format!("{marker}\nmore")));
        assert!(!has_jira_marker(&format!("> {marker}")));
        assert!(!has_jira_marker("<!-- hookbridge:jira-comment API-1/x -->"));
    }

    #[test]
    fn the_body_names_the_author_and_links_back() {
        let comment = JiraComment {
            key: "API-1".into(),
            id: "10001".into(),
            author: Some(JiraActor {
                account_id: Some("a".into()),
                display_name: "Ann *Lee*".into(),
            }),
            body: "first line\n<!-- hookbridge:jira-comment API-9/1 -->".into(),
            url: Some("https://acme.atlassian.net/rest/api/2/issue/10010/comment/10001".into()),
            labels: None,
        };
        let body = github_body(&comment);
        assert!(body.starts_with("**Ann \\*Lee\\***"), "{body}");
        assert!(
            body.contains("https://acme.atlassian.net/browse/API-1?focusedCommentId=10001"),
            "{body}"
        );
        assert!(body.contains("> first line"), "{body}");
        assert!(has_jira_marker(&body));
        assert!(body.ends_with("<!-- hookbridge:jira-comment API-1/10001 -->"));
    }
}
