//! What the bridge writes into Jira fields for a GitHub issue: the summary, Jira-safe labels, the
//! marker label by which a Jira issue is found again after a crash, and the marker paragraph by
//! which one of the bridge's comments is.

use serde_json::{Value, json};
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

/// The marker of the Jira comment mirroring GitHub comment `comment_id` of `identity`.
pub fn comment_marker(identity: &IssueIdentity, comment_id: u64) -> String {
    let digest = hex::encode(Sha256::digest(
        format!("{}#comment-{comment_id}", identity.as_str()).as_bytes(),
    ));
    format!("hookbridge:ghcomment-{}", &digest[..16])
}

/// The marker of the Jira comment that stands in for a closed/reopened transition the workflow
/// lacks; one per GitHub delivery, so a later close or reopen comments again, a retry does not.
pub fn closure_marker(delivery: &str) -> String {
    let digest = hex::encode(Sha256::digest(delivery.as_bytes()));
    format!("hookbridge:ghclosure-{}", &digest[..16])
}

/// `doc` (an ADF document) with `marker` appended as a paragraph of its own.
pub fn with_marker(mut doc: Value, marker: &str) -> Value {
    if let Some(content) = doc["content"].as_array_mut() {
        content.push(json!({"type": "paragraph", "content": [{"type": "text", "text": marker}]}));
    }
    doc
}

/// Whether `doc` (a Jira comment body in ADF) is the one [`with_marker`] made with `marker`: its
/// last block is a paragraph holding exactly that text and nothing else. Matched exactly, so a
/// comment that merely quotes a URL or a marker in its text is never taken for the bridge's own.
pub fn has_marker(doc: &Value, marker: &str) -> bool {
    let Some(last) = doc["content"].as_array().and_then(|c| c.last()) else {
        return false;
    };
    let nodes = last["content"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    last["type"] == "paragraph"
        && matches!(nodes, [only] if only["type"] == "text" && only["text"] == marker)
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

    #[test]
    fn comment_markers_match_exactly() {
        let one = IssueIdentity::new("octo/api", 1);
        let marker = comment_marker(&one, 7);
        assert_ne!(marker, comment_marker(&one, 70));
        assert_ne!(
            marker,
            comment_marker(&IssueIdentity::new("octo/api", 2), 7)
        );
        let doc = json!({"type": "doc", "version": 1, "content": [
            {"type": "paragraph", "content": [{"type": "text", "text": "hello"}]}]});
        let marked = with_marker(doc.clone(), &marker);
        assert!(has_marker(&marked, &marker));
        assert!(!has_marker(&doc, &marker));
        assert!(!has_marker(&marked, &comment_marker(&one, 70)));
        // Quoting the marker inside other text is not the marker.
        let quoted = with_marker(doc, &format!("see {marker}"));
        assert!(!has_marker(&quoted, &marker));
    }
}
