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

/// A pull request's head or base: the branch (`ref`) and the commit it points at.
#[derive(Debug, Clone, Deserialize)]
pub struct Branch {
    #[serde(rename = "ref")]
    pub name: String,
    #[serde(default)]
    pub sha: Option<String>,
}

/// The parts of `pull_request` (the object GitHub sends in `pull_request` events) the links
/// need.
#[derive(Debug, Clone, Deserialize)]
pub struct PullRequest {
    pub number: u64,
    pub title: String,
    #[serde(default)]
    pub body: Option<String>,
    pub html_url: String,
    /// `open` or `closed`; a merged pull request is `closed` with `merged: true`.
    pub state: String,
    /// Absent in some older payloads; `merged_at` tells then.
    #[serde(default)]
    pub merged: Option<bool>,
    #[serde(default)]
    pub merged_at: Option<String>,
    #[serde(default)]
    pub draft: Option<bool>,
    /// When GitHub last changed it: orders deliveries that arrive out of order.
    #[serde(default)]
    pub updated_at: Option<chrono::DateTime<chrono::Utc>>,
    pub head: Branch,
    #[serde(default)]
    pub base: Option<Branch>,
    #[serde(default)]
    pub labels: Vec<Label>,
    pub user: User,
}

impl PullRequest {
    /// Whether it was merged (`merged`, or a `merged_at` where `merged` is missing).
    pub fn is_merged(&self) -> bool {
        self.merged
            .unwrap_or_else(|| self.merged_at.as_deref().is_some_and(|m| !m.is_empty()))
    }

    pub fn label_names(&self) -> Vec<String> {
        self.labels.iter().map(|l| l.name.clone()).collect()
    }
}

/// `pull_request` deliveries.
#[derive(Debug, Clone, Deserialize)]
pub struct PullRequestEvent {
    pub action: String,
    pub pull_request: PullRequest,
    pub repository: Repository,
    pub sender: User,
}

/// Who wrote a commit, as a push shows it (`username` only when GitHub knows the account).
#[derive(Debug, Clone, Deserialize)]
pub struct CommitPerson {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
}

/// One commit of a push.
#[derive(Debug, Clone, Deserialize)]
pub struct PushCommit {
    /// The commit's SHA.
    pub id: String,
    pub message: String,
    /// Its page on GitHub.
    pub url: String,
    /// `false` when the commit was pushed to the repository before (another branch).
    #[serde(default)]
    pub distinct: Option<bool>,
    #[serde(default)]
    pub author: Option<CommitPerson>,
}

/// Who pushed (`pusher` carries a name and an email, not a login).
#[derive(Debug, Clone, Deserialize)]
pub struct Pusher {
    pub name: String,
}

/// `push` deliveries.
#[derive(Debug, Clone, Deserialize)]
pub struct PushEvent {
    /// `refs/heads/<branch>` or `refs/tags/<tag>`.
    #[serde(rename = "ref")]
    pub git_ref: String,
    /// The branch was deleted (then there are no commits).
    #[serde(default)]
    pub deleted: bool,
    #[serde(default)]
    pub forced: bool,
    #[serde(default)]
    pub commits: Vec<PushCommit>,
    pub repository: Repository,
    #[serde(default)]
    pub pusher: Option<Pusher>,
    pub sender: User,
}

impl PushEvent {
    /// The branch (or tag) name, without `refs/heads/` (or `refs/tags/`).
    pub fn branch(&self) -> &str {
        self.git_ref
            .strip_prefix("refs/heads/")
            .or_else(|| self.git_ref.strip_prefix("refs/tags/"))
            .unwrap_or(&self.git_ref)
    }
}
