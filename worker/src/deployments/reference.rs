//! Which Change Request a deployment names. Looked for, in this order (README, "Gating
//! deployments without a CI step"): `jira_cr_id` in the deployment's payload, a CR key in the head
//! commit's message, in a linked pull request's title or branch name, in the ref. A key counts
//! only when its project is one of `CR_PROJECT_KEYS`, so `JIRA-1234` in a commit message does not
//! pass for a CR.

use std::fmt;

use hookbridge_shared::routing::JiraProjectKey;
use regex::Regex;

use crate::change_requests::record::CrKey;

/// Where a deployment's CR key was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    DeploymentPayload,
    CommitMessage,
    PullRequestTitle,
    PullRequestBranch,
    Ref,
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Place::DeploymentPayload => "the deployment's jira_cr_id",
            Place::CommitMessage => "the head commit's message",
            Place::PullRequestTitle => "a linked pull request's title",
            Place::PullRequestBranch => "a linked pull request's branch",
            Place::Ref => "the ref",
        })
    }
}

/// Finds keys of the CR projects in free text.
#[derive(Debug, Clone)]
pub struct KeyFinder {
    pattern: Regex,
}

impl KeyFinder {
    /// A finder for keys of `projects` (without regard to case: branch names are often
    /// lowercase, `cr-42-fix-login`).
    pub fn new(projects: &[JiraProjectKey]) -> Self {
        let alternatives: Vec<String> =
            projects.iter().map(|p| regex::escape(p.as_str())).collect();
        // A key is the project, `-`, and numbers joined by `-` (CR-42, CR-2026-0001); not glued to
        // a letter or digit on either side (so `XCR-1` and `CR-1a` are not CR-1).
        let pattern = format!(
            r"(?i)(?:^|[^A-Za-z0-9_])((?:{})-[0-9]+(?:-[0-9]+)*)(?:$|[^A-Za-z0-9])",
            alternatives.join("|")
        );
        Self {
            // The alternatives are escaped literals, so the pattern always compiles; a project
            // list that somehow did not would find nothing rather than pass anything.
            pattern: Regex::new(&pattern).unwrap_or_else(|_| Regex::new("$^").expect("empty")),
        }
    }

    /// The first CR key in `text`.
    pub fn first(&self, text: &str) -> Option<CrKey> {
        self.pattern
            .captures_iter(text)
            .find_map(|c| CrKey::parse(&c[1]).ok())
    }
}

/// A pull request linked to a deployment, as far as naming a CR goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkedPull {
    pub title: Option<String>,
    pub branch: Option<String>,
}

/// What a deployment offers to name its CR, each fetched only when the ones before named none.
pub trait Evidence {
    fn payload_cr_id(&self) -> Option<String>;
    fn commit_message(&mut self) -> impl Future<Output = Result<Option<String>, String>> + Send;
    fn pull_requests(&mut self) -> impl Future<Output = Result<Vec<LinkedPull>, String>> + Send;
    fn git_ref(&self) -> Option<String>;
}

/// The outcome of looking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    Key(CrKey, Place),
    /// `jira_cr_id` was given but is not a key of a CR project: the deployment named something,
    /// just not a CR — refused rather than guessed past.
    Invalid(String),
    Nothing,
}

/// Looks for the CR in `evidence`, in the documented order.
///
/// # Errors
/// When GitHub could not be asked for the commit or its pull requests (worth a retry).
pub async fn find<E: Evidence>(evidence: &mut E, keys: &KeyFinder) -> Result<Found, String> {
    if let Some(given) = evidence.payload_cr_id() {
        return Ok(match CrKey::parse(&given) {
            Ok(key) if keys.first(key.as_str()).as_ref() == Some(&key) => {
                Found::Key(key, Place::DeploymentPayload)
            }
            _ => Found::Invalid(given),
        });
    }
    if let Some(key) = evidence
        .commit_message()
        .await?
        .and_then(|m| keys.first(&m))
    {
        return Ok(Found::Key(key, Place::CommitMessage));
    }
    for pull in evidence.pull_requests().await? {
        if let Some(key) = pull.title.as_deref().and_then(|t| keys.first(t)) {
            return Ok(Found::Key(key, Place::PullRequestTitle));
        }
        if let Some(key) = pull.branch.as_deref().and_then(|b| keys.first(b)) {
            return Ok(Found::Key(key, Place::PullRequestBranch));
        }
    }
    Ok(evidence
        .git_ref()
        .and_then(|r| keys.first(&r))
        .map_or(Found::Nothing, |key| Found::Key(key, Place::Ref)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finder() -> KeyFinder {
        KeyFinder::new(&[
            JiraProjectKey::parse("CR").unwrap(),
            JiraProjectKey::parse("CHG").unwrap(),
        ])
    }

    #[test]
    fn keys_of_cr_projects_are_found_in_text() {
        let f = finder();
        let key = |t: &str| f.first(t).map(|k| k.as_str().to_owned());
        assert_eq!(key("Deploy CR-42: new limits").as_deref(), Some("CR-42"));
        assert_eq!(key("feature/cr-7-login").as_deref(), Some("CR-7"));
        assert_eq!(
            key("refs/heads/CHG-2026-0001").as_deref(),
            Some("CHG-2026-0001")
        );
        assert_eq!(key("(CR-9)").as_deref(), Some("CR-9"));
        for none in ["JIRA-12 only", "XCR-1", "CR-1a", "CR-", "cr 12", ""] {
            assert_eq!(key(none), None, "{none}");
        }
    }

    struct Fixed {
        payload: Option<String>,
        message: Option<String>,
        pulls: Vec<LinkedPull>,
        git_ref: Option<String>,
        asked: Vec<&'static str>,
    }

    impl Evidence for Fixed {
        fn payload_cr_id(&self) -> Option<String> {
            self.payload.clone()
        }
        async fn commit_message(&mut self) -> Result<Option<String>, String> {
            self.asked.push("commit");
            Ok(self.message.clone())
        }
        async fn pull_requests(&mut self) -> Result<Vec<LinkedPull>, String> {
            self.asked.push("pulls");
            Ok(self.pulls.clone())
        }
        fn git_ref(&self) -> Option<String> {
            self.git_ref.clone()
        }
    }

    fn fixed() -> Fixed {
        Fixed {
            payload: None,
            message: Some("CR-2 in the commit".into()),
            pulls: vec![LinkedPull {
                title: Some("CR-3 title".into()),
                branch: Some("cr-4-branch".into()),
            }],
            git_ref: Some("refs/heads/cr-5".into()),
            asked: Vec::new(),
        }
    }

    #[tokio::test]
    async fn the_documented_order_is_followed_and_nothing_more_is_asked() {
        let f = finder();
        let mut e = fixed();
        e.payload = Some("CR-1".into());
        assert_eq!(
            find(&mut e, &f).await.unwrap(),
            Found::Key(CrKey::parse("CR-1").unwrap(), Place::DeploymentPayload)
        );
        assert!(e.asked.is_empty());
        let mut e = fixed();
        assert_eq!(
            find(&mut e, &f).await.unwrap(),
            Found::Key(CrKey::parse("CR-2").unwrap(), Place::CommitMessage)
        );
        assert_eq!(e.asked, ["commit"]);
        let mut e = fixed();
        e.message = None;
        assert_eq!(
            find(&mut e, &f).await.unwrap(),
            Found::Key(CrKey::parse("CR-3").unwrap(), Place::PullRequestTitle)
        );
        e.pulls[0].title = None;
        assert_eq!(
            find(&mut e, &f).await.unwrap(),
            Found::Key(CrKey::parse("CR-4").unwrap(), Place::PullRequestBranch)
        );
        e.pulls.clear();
        assert_eq!(
            find(&mut e, &f).await.unwrap(),
            Found::Key(CrKey::parse("CR-5").unwrap(), Place::Ref)
        );
        e.git_ref = Some("refs/heads/main".into());
        assert_eq!(find(&mut e, &f).await.unwrap(), Found::Nothing);
    }

    #[tokio::test]
    async fn a_given_id_that_is_not_a_cr_key_is_refused_not_passed_over() {
        let f = finder();
        for given in ["JIRA-5", "nonsense"] {
            let mut e = fixed();
            e.payload = Some(given.into());
            assert_eq!(
                find(&mut e, &f).await.unwrap(),
                Found::Invalid(given.into())
            );
        }
    }
}
