//! What the remote links on a Jira issue show: a pull request (title, state, branches, author)
//! and a commit. Each thing linked has one `globalId` (its GitHub URL), so linking it again —
//! a redelivery, a later action, the same commit pushed to another branch — updates the link
//! instead of adding one.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::events::github::{PullRequest, PushCommit, PushEvent};
use crate::jira::remote_links::{LinkStatus, RemoteLink, one_line};

/// Where a pull request stands, as its link shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PullState {
    Open,
    Closed,
    Merged,
}

impl PullState {
    pub fn of(pull: &PullRequest) -> Self {
        if pull.is_merged() {
            PullState::Merged
        } else if pull.state.eq_ignore_ascii_case("closed") {
            PullState::Closed
        } else {
            PullState::Open
        }
    }

    fn name(self) -> &'static str {
        match self {
            PullState::Open => "Open",
            PullState::Closed => "Closed",
            PullState::Merged => "Merged",
        }
    }
}

/// A pull request as far as its link goes, kept with what was linked so that a delivery
/// arriving late (GitHub does not order them) cannot set an older state over a newer one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullSnapshot {
    pub number: u64,
    pub title: String,
    pub url: String,
    pub state: PullState,
    pub head: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<String>,
    pub author: String,
    /// GitHub's `updated_at`; `None` in payloads without it (then arrival order decides).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<DateTime<Utc>>,
}

impl PullSnapshot {
    pub fn of(pull: &PullRequest) -> Self {
        Self {
            number: pull.number,
            title: pull.title.clone(),
            url: pull.html_url.clone(),
            state: PullState::of(pull),
            head: pull.head.name.clone(),
            base: pull.base.as_ref().map(|b| b.name.clone()),
            author: pull.user.login.clone(),
            updated_at: pull.updated_at,
        }
    }

    /// The newer of `self` (what was stored) and `event`: the event unless it is older by
    /// GitHub's clock. A pull request merged stays merged whatever comes after (GitHub cannot
    /// unmerge one).
    pub fn newest(self, event: PullSnapshot) -> PullSnapshot {
        let older =
            matches!((self.updated_at, event.updated_at), (Some(kept), Some(new)) if new < kept);
        if self.state == PullState::Merged && event.state != PullState::Merged {
            return self;
        }
        if older && event.state != PullState::Merged {
            self
        } else {
            event
        }
    }

    /// The pull request's link.
    pub fn link(&self) -> RemoteLink {
        let branches = match &self.base {
            Some(base) => format!("{} → {base}", self.head),
            None => self.head.clone(),
        };
        RemoteLink {
            global_id: self.url.clone(),
            url: self.url.clone(),
            title: format!("PR #{}: {}", self.number, self.title),
            summary: Some(format!(
                "{} · {branches} · by @{}",
                self.state.name(),
                self.author
            )),
            relationship: "GitHub pull request".into(),
            icon_title: "Pull request".into(),
            status: Some(LinkStatus {
                name: self.state.name().into(),
                resolved: self.state != PullState::Open,
            }),
        }
    }
}

/// A pushed commit's link: one per commit (its URL is the `globalId`), whichever push carries it.
pub fn commit_link(push: &PushEvent, commit: &PushCommit) -> RemoteLink {
    let short: String = commit.id.chars().take(7).collect();
    let first_line = commit.message.lines().next().unwrap_or_default();
    let by = commit
        .author
        .as_ref()
        .and_then(|a| {
            a.username
                .as_deref()
                .map(|u| format!("@{u}"))
                .or_else(|| a.name.clone())
        })
        .or_else(|| push.pusher.as_ref().map(|p| p.name.clone()))
        .unwrap_or_else(|| format!("@{}", push.sender.login));
    RemoteLink {
        global_id: commit.url.clone(),
        url: commit.url.clone(),
        title: format!("Commit {short}: {}", one_line(first_line, 200)),
        summary: Some(format!(
            "{} · pushed to {} by {by}",
            push.repository.full_name,
            push.branch()
        )),
        relationship: "GitHub commit".into(),
        icon_title: "Commit".into(),
        status: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(state: PullState, at: Option<&str>) -> PullSnapshot {
        PullSnapshot {
            number: 7,
            title: "Fix it".into(),
            url: "https://github.com/octo/api/pull/7".into(),
            state,
            head: "feature/ABC-1".into(),
            base: Some("main".into()),
            author: "octocat".into(),
            updated_at: at.map(|a| a.parse().unwrap()),
        }
    }

    #[test]
    fn the_newest_state_wins_and_merged_stays() {
        let open = snapshot(PullState::Open, Some("2026-11-29T10:00:00Z"));
        let closed = snapshot(PullState::Closed, Some("2026-11-29T11:00:00Z"));
        assert_eq!(open.clone().newest(closed.clone()).state, PullState::Closed);
        assert_eq!(closed.clone().newest(open.clone()).state, PullState::Closed);
        let merged = snapshot(PullState::Merged, Some("2026-11-29T12:00:00Z"));
        assert_eq!(merged.clone().newest(open).state, PullState::Merged);
        let undated = snapshot(PullState::Open, None);
        assert_eq!(closed.newest(undated).state, PullState::Open);
    }

    #[test]
    fn links_show_the_state() {
        let link = snapshot(PullState::Merged, None).link();
        assert_eq!(link.title, "PR #7: Fix it");
        assert_eq!(link.global_id, link.url);
        assert!(link.status.as_ref().unwrap().resolved);
        assert!(
            !snapshot(PullState::Open, None)
                .link()
                .status
                .unwrap()
                .resolved
        );
    }
}
