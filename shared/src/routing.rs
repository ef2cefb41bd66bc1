//! Routing rules: which GitHub events become what in Jira. Read from the `[[routes]]` tables of the
//! TOML file; the first rule that matches an event wins, and an event no rule matches goes to the
//! default project (`JIRA_PROJECT_KEY` / `JIRA_ISSUE_TYPE`), or is ignored when there is none.
//!
//! ```toml
//! [[routes]]
//! name = "api bugs"
//! repositories = ["octo-org/api", "octo-org/*"]   # empty or absent: any repository
//! labels_any = ["bug"]                            # matches when the issue has one of these
//! events = ["issues", "issue_comment"]            # absent: any
//! actions = ["opened", "labeled"]                 # absent: any
//! project = "API"
//! issue_type = "Bug"
//! labels = ["backend"]                            # extra Jira labels
//! components = ["API"]
//! priority = "High"
//! sync_comments = true
//! sync_closure = true
//! close_transition = "Done"
//! reopen_transition = "To Do"
//! # optional: the Jira resolution the close transition sets, by GitHub's `state_reason`
//! resolutions = { completed = "Done", not_planned = "Won't Do", duplicate = "Duplicate" }
//! # optional: GitHub assignees → Jira assignee, through the top-level `[users]` table
//! sync_assignee = true
//! # optional: GitHub comment edits and deletions follow to the Jira comment made for it
//! sync_comment_edits = true
//! on_comment_deleted = "delete"                   # or "mark"; absent: nothing happens
//! # optional: pull requests and pushes → remote links on the Jira issues they name
//! sync_pull_requests = true
//! link_projects = ["OPS"]                         # keys of these projects count too
//! # optional: Jira → GitHub (needs GITHUB_TOKEN or the GitHub App): Done closes, leaving Done
//! # reopens, Jira comments are mirrored; the close reason by Jira resolution, over the defaults
//! sync_from_jira = true
//! github_state_reasons = { "Won't Fix" = "not_planned", "Fixed" = "completed" }
//! ```

use std::fmt;

use serde::Deserialize;

/// A Jira project key: an uppercase letter, then uppercase letters, digits or `_`, at most 255.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize)]
#[serde(try_from = "String")]
pub struct JiraProjectKey(String);

impl JiraProjectKey {
    /// # Errors
    /// A reason when the value is not a valid Jira project key.
    pub fn parse(value: &str) -> Result<Self, String> {
        let value = value.trim();
        let mut chars = value.chars();
        let valid = matches!(chars.next(), Some(c) if c.is_ascii_uppercase())
            && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
            && value.len() <= 255;
        if valid {
            Ok(Self(value.to_owned()))
        } else {
            Err(format!(
                "{value:?} is not a Jira project key (uppercase letter, then uppercase letters, digits or _)"
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for JiraProjectKey {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl fmt::Display for JiraProjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A repository pattern: a glob on `owner/name`, matched without regard to case — `acme/api`,
/// `acme/*`, `acme/payments-*`, `*/docs`, `acme/{api,web}` — or `*` for every repository. A `*`
/// never crosses the `/` between owner and name.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "String")]
pub struct RepoPattern {
    text: String,
    /// `None` for `*` (every repository).
    glob: Option<globset::GlobMatcher>,
}

impl PartialEq for RepoPattern {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for RepoPattern {}

impl TryFrom<String> for RepoPattern {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        let text = value.trim().to_ascii_lowercase();
        if text == "*" {
            return Ok(Self { text, glob: None });
        }
        let refused = |why: &str| {
            format!(
                "{value:?} is not a repository pattern ({why}; e.g. acme/api, acme/payments-* or *)"
            )
        };
        match text.split_once('/') {
            Some((owner, name)) if !owner.is_empty() && !name.is_empty() && !name.contains('/') => {
            }
            _ => return Err(refused("a glob on owner/name needs exactly one /")),
        }
        let glob = globset::GlobBuilder::new(&text)
            .case_insensitive(true)
            .literal_separator(true)
            .build()
            .map_err(|e| refused(&e.kind().to_string()))?;
        Ok(Self {
            text,
            glob: Some(glob.compile_matcher()),
        })
    }
}

impl RepoPattern {
    pub fn matches(&self, full_name: &str) -> bool {
        self.glob.as_ref().is_none_or(|g| g.is_match(full_name))
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// One `[[routes]]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteRule {
    /// Shown in logs and `config check`.
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub repositories: Vec<RepoPattern>,
    #[serde(default)]
    pub labels_any: Vec<String>,
    #[serde(default)]
    pub events: Vec<String>,
    #[serde(default)]
    pub actions: Vec<String>,
    /// `true`: matching events are dropped (no Jira effect).
    #[serde(default)]
    pub ignore: bool,
    pub project: Option<JiraProjectKey>,
    pub issue_type: Option<String>,
    #[serde(default)]
    pub labels: Vec<String>,
    #[serde(default)]
    pub components: Vec<String>,
    pub priority: Option<String>,
    #[serde(default = "yes")]
    pub sync_comments: bool,
    #[serde(default = "yes")]
    pub sync_closure: bool,
    /// Transition used when the GitHub issue is closed; absent: a comment is added instead.
    #[serde(default = "default_close")]
    pub close_transition: Option<String>,
    /// Transition used when the GitHub issue is reopened; absent: a comment is added instead.
    #[serde(default = "default_reopen")]
    pub reopen_transition: Option<String>,
    /// The Jira resolution the close transition sets, by GitHub's `state_reason`; absent: none is
    /// sent (the workflow decides, as before).
    #[serde(default)]
    pub resolutions: Option<Resolutions>,
    /// `issues.assigned` / `unassigned` set or clear the Jira assignee (logins mapped by the
    /// top-level `[users]` table; an unmapped login changes nothing).
    #[serde(default)]
    pub sync_assignee: bool,
    /// `issue_comment.edited` updates the Jira comment made for the GitHub comment.
    #[serde(default)]
    pub sync_comment_edits: bool,
    /// What `issue_comment.deleted` does to that Jira comment; absent: nothing.
    #[serde(default)]
    pub on_comment_deleted: Option<OnCommentDeleted>,
    /// `pull_request` and `push` events link the Jira issues they name (remote links, and one
    /// comment when a pull request is merged).
    #[serde(default)]
    pub sync_pull_requests: bool,
    /// Jira projects whose keys count in pull requests and commits besides `project`'s.
    #[serde(default)]
    pub link_projects: Vec<JiraProjectKey>,
    /// Jira → GitHub: a twin moved to a Done status category closes the GitHub issue, moved out
    /// of it reopens it, and Jira comments become GitHub comments.
    #[serde(default)]
    pub sync_from_jira: bool,
    /// The GitHub close reason by Jira resolution name, over the built-in defaults.
    #[serde(default)]
    pub github_state_reasons: std::collections::BTreeMap<String, GithubStateReason>,
}

/// Why a GitHub issue is closed (`state_reason` of GitHub's "Update an issue").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GithubStateReason {
    Completed,
    NotPlanned,
}

impl GithubStateReason {
    /// GitHub's word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Completed => "completed",
            Self::NotPlanned => "not_planned",
        }
    }
}

/// What a GitHub comment's deletion does to its Jira twin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnCommentDeleted {
    /// Delete the Jira comment.
    Delete,
    /// Keep it, its text replaced by a note that it was deleted on GitHub.
    Mark,
}

/// Jira resolution names by GitHub close reason (`issue.state_reason` of `issues.closed`). A
/// reason without a name here closes without a resolution: never a guessed one, so "not planned"
/// cannot become "Done".
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resolutions {
    #[serde(default)]
    pub completed: Option<String>,
    #[serde(default)]
    pub not_planned: Option<String>,
    #[serde(default)]
    pub duplicate: Option<String>,
}

impl Resolutions {
    /// The resolution for a `state_reason`, if one is configured.
    pub fn for_reason(&self, state_reason: Option<&str>) -> Option<&str> {
        match state_reason? {
            "completed" => self.completed.as_deref(),
            "not_planned" => self.not_planned.as_deref(),
            "duplicate" => self.duplicate.as_deref(),
            _ => None,
        }
    }

    fn names(&self) -> impl Iterator<Item = &str> {
        [&self.completed, &self.not_planned, &self.duplicate]
            .into_iter()
            .filter_map(|n| n.as_deref())
    }
}

fn yes() -> bool {
    true
}

fn default_close() -> Option<String> {
    Some("Done".into())
}

fn default_reopen() -> Option<String> {
    Some("To Do".into())
}

/// What the event facts are matched on.
#[derive(Debug, Clone, Copy)]
pub struct EventFacts<'a> {
    pub repository: &'a str,
    pub labels: &'a [String],
    pub event: &'a str,
    pub action: &'a str,
}

/// The decision for one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub rule: String,
    pub project: JiraProjectKey,
    pub issue_type: String,
    pub labels: Vec<String>,
    pub components: Vec<String>,
    pub priority: Option<String>,
    pub sync_comments: bool,
    pub sync_closure: bool,
    pub close_transition: Option<String>,
    pub reopen_transition: Option<String>,
    /// `None`: the close transition sets no resolution.
    pub resolutions: Option<Resolutions>,
    pub sync_assignee: bool,
    pub sync_comment_edits: bool,
    pub on_comment_deleted: Option<OnCommentDeleted>,
    pub sync_pull_requests: bool,
    /// Projects whose keys a pull request or commit may name: `project`, then `link_projects`.
    pub link_projects: Vec<JiraProjectKey>,
    pub sync_from_jira: bool,
    pub github_state_reasons: std::collections::BTreeMap<String, GithubStateReason>,
}

/// The rules plus the defaults from the environment.
#[derive(Debug, Clone, Default)]
pub struct Routing {
    pub rules: Vec<RouteRule>,
    pub default_project: Option<JiraProjectKey>,
    pub default_issue_type: String,
}

impl RouteRule {
    fn matches(&self, facts: &EventFacts<'_>) -> bool {
        (self.repositories.is_empty()
            || self
                .repositories
                .iter()
                .any(|r| r.matches(facts.repository)))
            && (self.labels_any.is_empty()
                || self
                    .labels_any
                    .iter()
                    .any(|l| facts.labels.iter().any(|have| have.eq_ignore_ascii_case(l))))
            && (self.events.is_empty() || self.events.iter().any(|e| e == facts.event))
            && (self.actions.is_empty() || self.actions.iter().any(|a| a == facts.action))
    }
}

impl Routing {
    /// Checks what serde cannot: every rule that creates issues must end up with a project.
    ///
    /// # Errors
    /// `routes[N] (name): reason`.
    pub fn validate(&self) -> Result<(), String> {
        for (i, rule) in self.rules.iter().enumerate() {
            let label = rule.name.as_deref().unwrap_or("unnamed");
            if !rule.ignore && rule.project.is_none() && self.default_project.is_none() {
                return Err(format!(
                    "routes[{i}] ({label}): no project and no JIRA_PROJECT_KEY default"
                ));
            }
            if rule
                .issue_type
                .as_deref()
                .is_some_and(|t| t.trim().is_empty())
            {
                return Err(format!("routes[{i}] ({label}): issue_type is empty"));
            }
            if let Some(resolutions) = &rule.resolutions
                && resolutions.names().any(|n| n.trim().is_empty())
            {
                return Err(format!("routes[{i}] ({label}): a resolution name is empty"));
            }
            if rule
                .github_state_reasons
                .keys()
                .any(|n| n.trim().is_empty())
            {
                return Err(format!(
                    "routes[{i}] ({label}): github_state_reasons has an empty resolution name"
                ));
            }
        }
        if self.default_issue_type.trim().is_empty() {
            return Err("JIRA_ISSUE_TYPE: is empty".into());
        }
        Ok(())
    }

    /// The target for an event, or `None` when it is ignored (an `ignore` rule, or no rule and no
    /// default project).
    pub fn route(&self, facts: &EventFacts<'_>) -> Option<Target> {
        match self
            .rules
            .iter()
            .enumerate()
            .find(|(_, r)| r.matches(facts))
        {
            Some((_, rule)) if rule.ignore => None,
            Some((i, rule)) => Some(Target {
                rule: rule.name.clone().unwrap_or_else(|| format!("routes[{i}]")),
                project: rule
                    .project
                    .clone()
                    .or_else(|| self.default_project.clone())?,
                issue_type: rule
                    .issue_type
                    .clone()
                    .unwrap_or_else(|| self.default_issue_type.clone()),
                labels: rule.labels.clone(),
                components: rule.components.clone(),
                priority: rule.priority.clone(),
                sync_comments: rule.sync_comments,
                sync_closure: rule.sync_closure,
                close_transition: rule.close_transition.clone(),
                reopen_transition: rule.reopen_transition.clone(),
                resolutions: rule.resolutions.clone(),
                sync_assignee: rule.sync_assignee,
                sync_comment_edits: rule.sync_comment_edits,
                on_comment_deleted: rule.on_comment_deleted,
                sync_pull_requests: rule.sync_pull_requests,
                link_projects: rule.link_projects.clone(),
                sync_from_jira: rule.sync_from_jira,
                github_state_reasons: rule.github_state_reasons.clone(),
            }),
            None => Some(Target {
                rule: "default".into(),
                project: self.default_project.clone()?,
                issue_type: self.default_issue_type.clone(),
                labels: Vec::new(),
                components: Vec::new(),
                priority: None,
                sync_comments: true,
                sync_closure: true,
                close_transition: default_close(),
                reopen_transition: default_reopen(),
                resolutions: None,
                sync_assignee: false,
                sync_comment_edits: false,
                on_comment_deleted: None,
                sync_pull_requests: false,
                link_projects: Vec::new(),
                sync_from_jira: false,
                github_state_reasons: std::collections::BTreeMap::new(),
            }),
        }
    }

    /// The target for a change made in Jira to the twin of a GitHub issue of `repository` with
    /// `labels`: the first rule whose repositories and labels match (its `events` and `actions`
    /// name GitHub events, so they are not consulted here). `None` as for [`Routing::route`].
    pub fn route_from_jira(&self, repository: &str, labels: &[String]) -> Option<Target> {
        let unfiltered = Routing {
            rules: self
                .rules
                .iter()
                .map(|r| RouteRule {
                    events: Vec::new(),
                    actions: Vec::new(),
                    ..r.clone()
                })
                .collect(),
            ..self.clone()
        };
        unfiltered.route(&EventFacts {
            repository,
            labels,
            event: "",
            action: "",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::FileConfig;

    fn facts<'a>(repo: &'a str, labels: &'a [String], action: &'a str) -> EventFacts<'a> {
        EventFacts {
            repository: repo,
            labels,
            event: "issues",
            action,
        }
    }

    #[test]
    fn first_matching_rule_wins_and_defaults_apply() {
        let file = FileConfig::parse(
            r#"
[[routes]]
name = "drop docs"
repositories = ["octo/docs"]
ignore = true

[[routes]]
name = "bugs"
repositories = ["octo/*"]
labels_any = ["Bug"]
project = "BUG"
issue_type = "Bug"
labels = ["triage"]
"#,
        )
        .unwrap();
        let routing = Routing {
            rules: file.routes,
            default_project: Some(JiraProjectKey::parse("PROJ").unwrap()),
            default_issue_type: "Task".into(),
        };
        routing.validate().unwrap();
        let bug = vec!["bug".to_string()];
        let t = routing.route(&facts("Octo/API", &bug, "opened")).unwrap();
        assert_eq!((t.project.as_str(), t.issue_type.as_str()), ("BUG", "Bug"));
        assert_eq!(t.labels, vec!["triage".to_string()]);
        assert!(routing.route(&facts("octo/docs", &bug, "opened")).is_none());
        assert!(
            routing
                .route(&facts("octo/api/x", &bug, "opened"))
                .is_some_and(|t| t.rule == "default")
        );
        let t = routing.route(&facts("other/x", &[], "opened")).unwrap();
        assert_eq!((t.project.as_str(), t.rule.as_str()), ("PROJ", "default"));
    }

    #[test]
    fn repository_patterns_are_globs_on_owner_and_name() {
        let pattern = |p: &str| RepoPattern::try_from(p.to_owned()).unwrap();
        assert!(pattern("acme/payments-*").matches("Acme/Payments-API"));
        assert!(!pattern("acme/payments-*").matches("acme/billing"));
        assert!(!pattern("acme/payments-*").matches("other/payments-api"));
        assert!(pattern("acme/*").matches("acme/anything"));
        assert!(pattern("*/docs").matches("octo/docs"));
        assert!(pattern("acme/{api,web}").matches("acme/web"));
        assert!(!pattern("acme/{api,web}").matches("acme/webhooks"));
        assert!(pattern("*").matches("any/repo"));
        assert!(pattern("acme/api").matches("ACME/api"));
        assert!(!pattern("acme/api").matches("acme/api2"));
        for bad in ["no-slash", "a/b/c", "/name", "owner/", "acme/[unclosed"] {
            assert!(RepoPattern::try_from(bad.to_owned()).is_err(), "{bad}");
        }
    }

    #[test]
    fn invalid_rules_are_refused_with_a_line() {
        let err = FileConfig::parse("[[routes]]\nproject = \"lower\"\n").unwrap_err();
        assert!(err.starts_with("line 2"), "{err}");
        assert!(err.contains("not a Jira project key"), "{err}");
        let err = FileConfig::parse("[[routes]]\nrepositories = [\"no-slash\"]\n").unwrap_err();
        assert!(err.starts_with("line 2"), "{err}");
        let err = FileConfig::parse("[[routes]]\nprojet = \"X\"\n").unwrap_err();
        assert!(err.contains("projet"), "{err}");
        let routing = Routing {
            rules: FileConfig::parse("[[routes]]\nname = \"x\"\n")
                .unwrap()
                .routes,
            default_project: None,
            default_issue_type: "Task".into(),
        };
        assert!(routing.validate().unwrap_err().contains("routes[0] (x)"));
    }

    #[test]
    fn jira_changes_route_by_repository_and_labels_only() {
        let file = FileConfig::parse(
            r#"
[[routes]]
name = "opened only"
repositories = ["octo/api"]
events = ["issues"]
actions = ["opened"]
project = "API"
sync_from_jira = true
github_state_reasons = { "Won't Fix" = "not_planned", "Obsolete" = "completed" }
"#,
        )
        .unwrap();
        let routing = Routing {
            rules: file.routes,
            default_project: None,
            default_issue_type: "Task".into(),
        };
        routing.validate().unwrap();
        let t = routing.route_from_jira("Octo/API", &[]).unwrap();
        assert!(t.sync_from_jira);
        assert_eq!(t.rule, "opened only");
        assert_eq!(
            t.github_state_reasons.get("Won't Fix"),
            Some(&GithubStateReason::NotPlanned)
        );
        assert!(routing.route_from_jira("octo/web", &[]).is_none());
        let err = FileConfig::parse("[[routes]]\ngithub_state_reasons = { X = \"wontfix\" }\n")
            .unwrap_err();
        assert!(err.contains("wontfix"), "{err}");
    }

    #[test]
    fn resolutions_are_opt_in_and_strict() {
        let file = FileConfig::parse(
            r#"
[[routes]]
name = "with"
repositories = ["octo/api"]
project = "API"
resolutions = { completed = "Done", not_planned = "Won't Do" }

[[routes]]
name = "without"
project = "API"
"#,
        )
        .unwrap();
        let routing = Routing {
            rules: file.routes,
            default_project: None,
            default_issue_type: "Task".into(),
        };
        routing.validate().unwrap();
        let t = routing.route(&facts("octo/api", &[], "closed")).unwrap();
        let r = t.resolutions.unwrap();
        assert_eq!(r.for_reason(Some("completed")), Some("Done"));
        assert_eq!(r.for_reason(Some("not_planned")), Some("Won't Do"));
        assert_eq!(r.for_reason(Some("duplicate")), None);
        assert_eq!(r.for_reason(None), None);
        let t = routing.route(&facts("octo/web", &[], "closed")).unwrap();
        assert!(t.resolutions.is_none());
        let err = FileConfig::parse("[[routes]]\nresolutions = { wontfix = \"X\" }\n").unwrap_err();
        assert!(err.contains("wontfix"), "{err}");
        let rules = FileConfig::parse(
            "[[routes]]\nproject = \"API\"\nclose_transition = \"\"\nresolutions = { completed = \" \" }\n",
        )
        .unwrap()
        .routes;
        let routing = Routing {
            rules,
            default_project: None,
            default_issue_type: "Task".into(),
        };
        assert!(
            routing
                .validate()
                .unwrap_err()
                .contains("resolution name is empty")
        );
    }
}
