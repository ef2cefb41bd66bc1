//! What a pull request or a commit names: Jira keys in free text (a title, a branch, a commit
//! message) and the GitHub issues a pull request closes (`Fixes #12`, GitHub's closing keywords).

use std::sync::LazyLock;

use hookbridge_shared::routing::JiraProjectKey;
use regex::Regex;

/// A Jira key as Jira writes it: an uppercase project key (a letter, then letters, digits or
/// `_`), `-`, a number. Boundaries are checked around each match (see [`jira_keys`]).
static KEY: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"[A-Z][A-Z0-9_]+-[0-9]+").expect("a valid pattern"));

/// GitHub's closing keywords ("Linking a pull request to an issue": close, closes, closed, fix,
/// fixes, fixed, resolve, resolves, resolved; any case), then `#N` or `owner/repo#N`. A colon
/// after the keyword is accepted as GitHub does.
static CLOSING: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)(?:^|[^A-Za-z0-9_])(?:close[sd]?|fix(?:es|ed)?|resolve[sd]?):?[ \t]+(?:([A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+))?#([0-9]+)\b",
    )
    .expect("a valid pattern")
});

/// The Jira keys in `text`, in order of appearance, each once. A key glued to a letter, digit or
/// `_` before it, or to a letter or digit after it, is not one (`xABC-1`, `ABC-1a`); a branch's
/// `feature/ABC-12-login` or `ABC-12_fix` names ABC-12.
pub fn jira_keys(text: &str) -> Vec<String> {
    let mut keys: Vec<String> = Vec::new();
    for found in KEY.find_iter(text) {
        let before = text[..found.start()].chars().next_back();
        let after = text[found.end()..].chars().next();
        let glued_before = before.is_some_and(|c| c.is_alphanumeric() || c == '_');
        let glued_after = after.is_some_and(char::is_alphanumeric);
        if !glued_before && !glued_after && !keys.iter().any(|k| k == found.as_str()) {
            keys.push(found.as_str().to_owned());
        }
    }
    keys
}

/// The project part of a Jira key (`ABC` of `ABC-12`).
pub fn project_of(key: &str) -> &str {
    key.rsplit_once('-').map_or(key, |(project, _)| project)
}

/// Which keys count: those of the listed projects only, so `UTF-8` or `SHA-256` in a title never
/// become a Jira request.
#[derive(Debug, Clone)]
pub struct KeyFilter {
    projects: Vec<JiraProjectKey>,
}

impl KeyFilter {
    pub fn new(projects: Vec<JiraProjectKey>) -> Self {
        Self { projects }
    }

    pub fn allows(&self, key: &str) -> bool {
        let project = project_of(key);
        self.projects.iter().any(|p| p.as_str() == project)
    }

    /// The keys of `text` this filter allows.
    pub fn keys_in(&self, text: &str) -> Vec<String> {
        jira_keys(text)
            .into_iter()
            .filter(|k| self.allows(k))
            .collect()
    }
}

/// The numbers of the issues of `repository` (`owner/name`) that `body` closes, in order, each
/// once. A reference to another repository's issue is left out: its route is not this one.
pub fn closed_issues(body: &str, repository: &str) -> Vec<u64> {
    let mut numbers = Vec::new();
    for found in CLOSING.captures_iter(body) {
        let same_repo = found
            .get(1)
            .is_none_or(|r| r.as_str().eq_ignore_ascii_case(repository));
        if let (true, Some(Ok(number))) = (same_repo, found.get(2).map(|n| n.as_str().parse()))
            && !numbers.contains(&number)
        {
            numbers.push(number);
        }
    }
    numbers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_found_with_word_boundaries() {
        assert_eq!(jira_keys("feature/ABC-12-x"), vec!["ABC-12"]);
        assert_eq!(jira_keys("ABC-12_fix"), vec!["ABC-12"]);
        assert_eq!(
            jira_keys("ABC-1 and OPS_2-30, (DEMO-4) ABC-1"),
            vec!["ABC-1", "OPS_2-30", "DEMO-4"]
        );
        assert_eq!(jira_keys("[ABC-7]: fix"), vec!["ABC-7"]);
        for none in [
            "xABC-1", "_ABC-1", "ABC-1a", "abc-12", "A-1", "ABC-", "ABC 12", "9ABC-1", "",
        ] {
            assert!(jira_keys(none).is_empty(), "{none}");
        }
        assert_eq!(jira_keys("ABC-1-2"), vec!["ABC-1"]);
        assert_eq!(jira_keys("ÄABC-1 éABC-2"), Vec::<String>::new());
    }

    #[test]
    fn only_the_allowed_projects_count() {
        let filter = KeyFilter::new(vec![
            JiraProjectKey::parse("ABC").unwrap(),
            JiraProjectKey::parse("OPS").unwrap(),
        ]);
        assert_eq!(
            filter.keys_in("ABC-1: UTF-8 and SHA-256, see OPS-2 and XYZ-3"),
            vec!["ABC-1", "OPS-2"]
        );
        assert_eq!(project_of("OPS_2-30"), "OPS_2");
    }

    #[test]
    fn closing_keywords_name_issues_of_the_same_repository() {
        let repo = "Octo/API";
        assert_eq!(closed_issues("Fixes #12", repo), vec![12]);
        for keyword in [
            "close", "closes", "closed", "fix", "fixes", "fixed", "resolve", "resolves",
            "resolved", "CLOSES", "Resolved",
        ] {
            assert_eq!(
                closed_issues(&format!("{keyword} #3"), repo),
                vec![3],
                "{keyword}"
            );
        }
        assert_eq!(
            closed_issues(
                "This PR:\n- fixes #1, closes octo/api#2\nResolves: #3\nfixes other/repo#4",
                repo
            ),
            vec![1, 2, 3]
        );
        assert_eq!(closed_issues("Fixes #5 and fixes #5", repo), vec![5]);
        for none in [
            "see #12",
            "prefixes #12",
            "fixes#12",
            "fixing #12",
            "fixes #12abc",
            "closes 12",
            "",
        ] {
            assert!(closed_issues(none, repo).is_empty(), "{none}");
        }
    }
}
