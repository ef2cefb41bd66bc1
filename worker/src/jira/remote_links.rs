//! Remote issue links with everything Jira shows of them: title, summary, icon, and a status
//! whose `resolved` strikes the link through (Jira REST v3 "Create or update remote issue link",
//! and Atlassian's "Using fields in Remote Issue Links": `object.url` and `object.title` are
//! required, `globalId` is at most 255 characters and makes the POST an update of the link that
//! has it).

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// Jira's limit on `globalId`.
const GLOBAL_ID_LIMIT: usize = 255;
/// What the bridge keeps of a title (Jira shows a line; a title is no place for a novel).
const TITLE_LIMIT: usize = 255;

/// The icon GitHub links carry (GitHub's own favicon).
pub const GITHUB_ICON: &str = "https://github.com/favicon.ico";

/// One remote link, as it is upserted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteLink {
    /// What makes a second POST an update: the same thing linked gets the same id.
    pub global_id: String,
    pub url: String,
    pub title: String,
    /// The grey text beside the title.
    pub summary: Option<String>,
    /// Groups links in Jira's UI (`links to` when absent).
    pub relationship: String,
    /// The tooltip of the link's icon.
    pub icon_title: String,
    /// `Some(resolved)` shows a status: resolved links are struck through.
    pub status: Option<LinkStatus>,
}

/// A link's status: its name (the status icon's tooltip) and whether it is resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkStatus {
    pub name: String,
    pub resolved: bool,
}

/// `id` as a `globalId`: itself when it fits, else a digest of it (still deterministic).
pub fn global_id(id: &str) -> String {
    if id.chars().count() <= GLOBAL_ID_LIMIT {
        id.to_owned()
    } else {
        format!(
            "hookbridge:sha256:{}",
            hex::encode(Sha256::digest(id.as_bytes()))
        )
    }
}

/// `text` on one line, cut to `limit` characters (with `…` when cut).
pub fn one_line(text: &str, limit: usize) -> String {
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() <= limit {
        return line;
    }
    let mut cut: String = line.chars().take(limit.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

impl RemoteLink {
    /// The `POST /rest/api/3/issue/{key}/remotelink` body (the dry run records this same body).
    pub fn body(&self) -> Value {
        let mut object = json!({
            "url": self.url,
            "title": one_line(&self.title, TITLE_LIMIT),
            "icon": {"url16x16": GITHUB_ICON, "title": self.icon_title},
        });
        if let Some(summary) = self.summary.as_deref().filter(|s| !s.trim().is_empty()) {
            object["summary"] = json!(one_line(summary, TITLE_LIMIT));
        }
        if let Some(status) = &self.status {
            object["status"] = json!({
                "resolved": status.resolved,
                "icon": {"title": status.name, "link": self.url},
            });
        }
        json!({
            "globalId": global_id(&self.global_id),
            "application": {"type": "com.github", "name": "GitHub"},
            "relationship": self.relationship,
            "object": object,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_carry_what_jira_requires_and_ids_fit() {
        let link = RemoteLink {
            global_id: "https://github.com/octo/api/pull/7".into(),
            url: "https://github.com/octo/api/pull/7".into(),
            title: "PR #7:\n  Fix   the login".into(),
            summary: Some("merged".into()),
            relationship: "pull request".into(),
            icon_title: "Pull request".into(),
            status: Some(LinkStatus {
                name: "Merged".into(),
                resolved: true,
            }),
        };
        let body = link.body();
        assert_eq!(body["globalId"], "https://github.com/octo/api/pull/7");
        assert_eq!(body["object"]["title"], "PR #7: Fix the login");
        assert_eq!(body["object"]["status"]["resolved"], true);
        assert_eq!(body["object"]["url"], "https://github.com/octo/api/pull/7");
        let long = "x".repeat(300);
        assert!(global_id(&long).len() <= 255);
        assert_eq!(global_id(&long), global_id(&long));
        assert_ne!(global_id(&long), global_id(&"y".repeat(300)));
        assert_eq!(one_line(&"é".repeat(300), 10).chars().count(), 10);
    }
}
