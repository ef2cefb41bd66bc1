//! The parts of GitHub webhook payloads the worker reads. Unknown fields are ignored; missing
//! required ones make the event permanently unprocessable (dead-lettered with the reason).

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
pub struct User {
    pub login: String,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Label {
    pub name: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Repository {
    pub full_name: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Issue {
    pub number: u64,
    pub title: String,
    #[serde(default)]
    pub body: Option<String>,
    pub html_url: String,
    #[serde(default)]
    pub state: Option<String>,
    /// Why it was closed (`completed`, `not_planned`, `duplicate`) or `reopened`; may be null.
    #[serde(default)]
    pub state_reason: Option<String>,
    #[serde(default)]
    pub labels: Vec<Label>,
    pub user: User,
    /// Present when the "issue" is a pull request (GitHub sends PR comments as issue comments).
    #[serde(default)]
    pub pull_request: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Comment {
    pub id: u64,
    #[serde(default)]
    pub body: Option<String>,
    pub html_url: String,
    pub user: User,
}

/// `issues` and `issue_comment` deliveries (the comment is absent on `issues`).
#[derive(Debug, Clone, Deserialize)]
pub struct IssueEvent {
    pub action: String,
    pub issue: Issue,
    pub repository: Repository,
    pub sender: User,
    #[serde(default)]
    pub comment: Option<Comment>,
    /// The label that was added or removed (`labeled` / `unlabeled`).
    #[serde(default)]
    pub label: Option<Label>,
    /// The user who was assigned or unassigned (`assigned` / `unassigned`).
    #[serde(default)]
    pub assignee: Option<User>,
}

impl Issue {
    pub fn label_names(&self) -> Vec<String> {
        self.labels.iter().map(|l| l.name.clone()).collect()
    }

    /// The identity of a GitHub issue across all events: `owner/repo#number`, lowercase.
    pub fn identity(&self, repository: &Repository) -> IssueIdentity {
        IssueIdentity::new(&repository.full_name, self.number)
    }
}

/// One GitHub issue, the same in every event about it: `owner/repo#number`, lowercase. Store keys,
/// locks and the marker label on the Jira twin are derived from it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IssueIdentity(String);

impl IssueIdentity {
    /// The identity of issue `number` of `repository` (`owner/name`, any case).
    pub fn new(repository: &str, number: u64) -> Self {
        Self(format!("{}#{number}", repository.to_ascii_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for IssueIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
