//! What the bridge writes into Jira fields for a GitHub issue: the summary, Jira-safe labels, and
//! the marker label by which a Jira issue is found again after a crash.

use sha2::{Digest, Sha256};

use crate::events::github::{Issue, IssueIdentity};
use hookbridge_shared::routing::Target;

/// Marks every issue the bridge created.
pub const BRIDGE_LABEL: &str = "github";

/// The label that marks a Jira issue as the twin of one GitHub issue (searchable, Jira-safe).
pub fn marker_label(identity: &IssueIdentity) -> String {
    let digest = hex::encode(Sha256::digest(identity.as_str().as_bytes()));
    format!("ghissue-{}", &digest[..16])
}

/// GitHub label → Jira label: no whitespace (Jira refuses it), at most 255 characters.
pub fn jira_label(name: &str) -> Option<String> {
    let cleaned: String = name
        .trim()
        .chars()
        .map(|c| if c.is_whitespace() { '-' } else { c })
        .take(255)
        .collect();
    (!cleaned.is_empty()).then_some(cleaned)
}

/// `GitHub Issue: <title>` cut to 255 characters (not bytes).
pub fn summary(title: &str) -> String {
    let full = format!("GitHub Issue: {}", title.trim());
    if full.chars().count() <= 255 {
        full
    } else {
        let mut cut: String = full.chars().take(254).collect();
        cut.push('…');
        cut
    }
}

/// The labels every synced issue carries: `github` and its marker.
pub fn is_bridge_label(label: &str, identity: &IssueIdentity) -> bool {
    label == BRIDGE_LABEL || label == marker_label(identity)
}

/// The labels of a new Jira issue: GitHub's (made Jira-safe), the route's, and the bridge's own.
pub fn labels_for(issue: &Issue, identity: &IssueIdentity, target: &Target) -> Vec<String> {
    let mut labels: Vec<String> = issue
        .labels
        .iter()
        .filter_map(|l| jira_label(&l.name))
        .chain(target.labels.iter().filter_map(|l| jira_label(l)))
        .chain([BRIDGE_LABEL.to_owned(), marker_label(identity)])
        .collect();
    labels.sort();
    labels.dedup();
    labels
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_and_labels() {
        assert_eq!(summary("  Crash  "), "GitHub Issue: Crash");
        let long = summary(&"é".repeat(400));
        assert_eq!(long.chars().count(), 255);
        assert!(long.ends_with('…'));
        assert_eq!(
            jira_label("good first issue").as_deref(),
            Some("good-first-issue")
        );
        assert_eq!(jira_label("   "), None);
        let one = IssueIdentity::new("octo/api", 1);
        assert_eq!(
            marker_label(&one),
            marker_label(&IssueIdentity::new("Octo/API", 1))
        );
        assert_ne!(
            marker_label(&one),
            marker_label(&IssueIdentity::new("octo/api", 2))
        );
    }
}
