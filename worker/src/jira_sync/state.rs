//! Close and reopen: a twin moved to a status of the Done category closes the GitHub issue, with
//! the close reason its resolution means; a twin leaving Done (Jira's workflows clear the
//! resolution on the way out, and the changelog says so) reopens it. GitHub's current state is
//! compared first, so a redelivered or repeated event sends nothing new.

use std::collections::BTreeMap;

use hookbridge_shared::routing::{GithubStateReason, Target};

use super::{GithubTwin, JiraSync, github_failure};
use crate::events::jira::StatusChange;
use crate::handler::Failure;

/// Jira resolutions that mean "not planned" unless the route says otherwise: Jira Cloud's
/// defaults and the common additions.
const NOT_PLANNED: &[&str] = &[
    "won't do",
    "won't fix",
    "duplicate",
    "cannot reproduce",
    "declined",
];

/// A resolution name compared without case and with typographic apostrophes made plain.
fn normalised(name: &str) -> String {
    name.trim()
        .replace(['\u{2019}', '\u{2018}'], "'")
        .to_lowercase()
}

/// The GitHub close reason for Jira `resolution`: the route's `github_state_reasons` first (names
/// compared without case), then the defaults — Won't Do, Won't Fix, Duplicate, Cannot Reproduce,
/// Declined → `not_planned`; anything else, or no resolution, → `completed`.
pub fn state_reason(
    resolution: Option<&str>,
    overrides: &BTreeMap<String, GithubStateReason>,
) -> GithubStateReason {
    let Some(resolution) = resolution.map(normalised).filter(|r| !r.is_empty()) else {
        return GithubStateReason::Completed;
    };
    if let Some(reason) = overrides
        .iter()
        .find(|(name, _)| normalised(name) == resolution)
        .map(|(_, reason)| *reason)
    {
        return reason;
    }
    if NOT_PLANNED.contains(&resolution.as_str()) {
        GithubStateReason::NotPlanned
    } else {
        GithubStateReason::Completed
    }
}

impl JiraSync {
    pub(super) async fn apply_status(
        &self,
        twin: &GithubTwin,
        target: &Target,
        change: &StatusChange,
    ) -> Result<(), Failure> {
        // Read again under the lock: the state read before it may be stale by now.
        let Some(issue) = self
            .github
            .issue(&twin.repository, twin.number)
            .await
            .map_err(github_failure)?
        else {
            return Ok(());
        };
        let closed = issue.state == "closed";
        if change.is_done() {
            if closed {
                tracing::info!(jira = %change.key, github = %twin.identity(), "already closed on GitHub");
                return Ok(());
            }
            let reason = state_reason(change.resolution.as_deref(), &target.github_state_reasons);
            self.github
                .set_state(&twin.repository, twin.number, true, Some(reason.as_str()))
                .await
                .map_err(github_failure)?;
            tracing::info!(jira = %change.key, github = %twin.identity(), reason = reason.as_str(), "closed on GitHub");
            self.audited(
                "github.issue.closed",
                &change.key,
                twin,
                serde_json::json!({"state_reason": reason.as_str(), "resolution": change.resolution}),
            )
            .await?;
        } else if change.resolution_cleared {
            if !closed {
                return Ok(());
            }
            self.github
                .set_state(&twin.repository, twin.number, false, None)
                .await
                .map_err(github_failure)?;
            tracing::info!(jira = %change.key, github = %twin.identity(), "reopened on GitHub");
            self.audited(
                "github.issue.reopened",
                &change.key,
                twin,
                serde_json::json!({"status": change.to}),
            )
            .await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolutions_become_close_reasons() {
        let none = BTreeMap::new();
        assert_eq!(
            state_reason(Some("Done"), &none),
            GithubStateReason::Completed
        );
        assert_eq!(state_reason(None, &none), GithubStateReason::Completed);
        for name in [
            "Won't Do",
            "won’t fix",
            "Duplicate",
            "Cannot Reproduce",
            "DECLINED",
        ] {
            assert_eq!(
                state_reason(Some(name), &none),
                GithubStateReason::NotPlanned,
                "{name}"
            );
        }
        assert_eq!(
            state_reason(Some("Fixed"), &none),
            GithubStateReason::Completed
        );
    }

    #[test]
    fn the_route_overrides_the_defaults() {
        let overrides = BTreeMap::from([
            ("duplicate".to_owned(), GithubStateReason::Completed),
            ("Obsolete".to_owned(), GithubStateReason::NotPlanned),
        ]);
        assert_eq!(
            state_reason(Some("Duplicate"), &overrides),
            GithubStateReason::Completed
        );
        assert_eq!(
            state_reason(Some("obsolete"), &overrides),
            GithubStateReason::NotPlanned
        );
        assert_eq!(
            state_reason(Some("Won't Do"), &overrides),
            GithubStateReason::NotPlanned
        );
    }
}
