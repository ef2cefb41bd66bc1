//! GitHub → Jira, deeper: what a route opts into beyond issues and comments, driven message by
//! message against the Jira fake on both stores: the close reason (`state_reason`) → the Jira
//! resolution the close transition sets; GitHub assignees → the Jira assignee through `[users]`;
//! GitHub comment edits and deletions → the Jira comment made for the GitHub comment.

use std::sync::Arc;
use std::time::Duration;

use hookbridge_shared::config::FileConfig;
use hookbridge_shared::routing::{JiraProjectKey, Routing};
use hookbridge_tests::github::{GithubIssue, delivery_id, envelope};
use hookbridge_tests::jira_fake::{FakeConfig, FakeIssue, JiraFake};
use hookbridge_tests::worker::{Backend, Parts, deliver, open_store, router};
use hookbridge_worker::audit::AuditLog;
use hookbridge_worker::github_sync::SyncConfig;
use hookbridge_worker::handler::Outcome;
use hookbridge_worker::jira::JiraClient;
use hookbridge_worker::jira::ops::JiraOps;
use hookbridge_worker::router::Router;

struct Setup {
    fake: JiraFake,
    pipeline: Arc<Router>,
    _dir: tempfile::TempDir,
}

/// A router over `backend` whose routes are the `[[routes]]` of `toml` (none: the default route).
async fn setup(backend: Backend, toml: &str) -> Setup {
    let fake = JiraFake::start(FakeConfig::default()).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open_store(backend, dir.path(), "hbdeep").await;
    let client = JiraClient::with_timeout(
        &fake.settings(100.0),
        Some(store.clone()),
        Duration::from_secs(30),
    )
    .expect("client");
    let audit = AuditLog::open(&dir.path().join("audit"), "test", None);
    let mut parts = Parts::new(
        store,
        JiraOps::live(client, audit.clone()),
        audit,
        dir.path(),
    );
    let file = FileConfig::parse(toml).expect("routes");
    parts.routing = Routing {
        rules: file.routes,
        default_project: Some(JiraProjectKey::parse("DEMO").expect("key")),
        default_issue_type: "Task".to_owned(),
    };
    parts.routing.validate().expect("valid routing");
    parts.sync = SyncConfig {
        ignore_logins: vec!["hookbridge-bot".to_owned()],
        search_lag: Duration::from_millis(300),
        users: file.users,
        ..SyncConfig::default()
    };
    let (pipeline, _) = router(parts);
    Setup {
        fake,
        pipeline: Arc::new(pipeline),
        _dir: dir,
    }
}

/// `issues.closed` as GitHub sends it: `issue.state` `closed` and `issue.state_reason`.
fn closed_event(issue: &GithubIssue, state_reason: Option<&str>) -> Vec<u8> {
    let mut payload = issue.event("closed");
    payload["issue"]["state"] = "closed".into();
    payload["issue"]["state_reason"] = state_reason.into();
    envelope("issues", &delivery_id(), &payload)
}

async fn open(s: &Setup, issue: &GithubIssue) {
    let body = envelope("issues", &delivery_id(), &issue.event("opened"));
    assert_eq!(deliver(&s.pipeline, &body).await, Outcome::Done);
}

fn jira_twin(fake: &JiraFake, issue: &GithubIssue) -> FakeIssue {
    fake.issues()
        .into_iter()
        .find(|i| i.summary == format!("GitHub Issue: {}", issue.title))
        .expect("the Jira twin")
}

const ALL_REASONS: &str = r#"
[[routes]]
name = "teams"
repositories = ["octo/*"]
resolutions = { completed = "Done", not_planned = "Won't Do", duplicate = "Duplicate" }
"#;

async fn each_close_reason_sets_its_resolution(backend: Backend) {
    let s = setup(backend, ALL_REASONS).await;
    let cases = [
        (1, Some("completed"), Some("Done")),
        (2, Some("not_planned"), Some("Won't Do")),
        (3, Some("duplicate"), Some("Duplicate")),
        // No reason given (older payloads): no resolution is guessed.
        (4, None, None),
    ];
    for (number, reason, _) in cases {
        let issue = GithubIssue::new("octo/api", number);
        open(&s, &issue).await;
        let closed = closed_event(&issue, reason);
        // Delivered twice: one transition.
        for _ in 0..2 {
            assert_eq!(deliver(&s.pipeline, &closed).await, Outcome::Done);
        }
    }
    for (number, reason, resolution) in cases {
        let twin = jira_twin(&s.fake, &GithubIssue::new("octo/api", number));
        assert_eq!(twin.status, "Done", "{reason:?}");
        assert_eq!(twin.resolution.as_deref(), resolution, "{reason:?}");
    }
    let not_planned = jira_twin(&s.fake, &GithubIssue::new("octo/api", 2));
    assert_ne!(not_planned.resolution.as_deref(), Some("Done"));
    let transitions = s
        .fake
        .request_log()
        .iter()
        .filter(|r| r.endpoint == "issue.transition")
        .count();
    assert_eq!(transitions, cases.len(), "one transition per close");
}

#[tokio::test]
async fn each_close_reason_sets_its_resolution_embedded() {
    each_close_reason_sets_its_resolution(Backend::Embedded).await;
}

#[tokio::test]
async fn each_close_reason_sets_its_resolution_redis() {
    each_close_reason_sets_its_resolution(Backend::Redis).await;
}

async fn without_resolutions_closing_is_unchanged(backend: Backend) {
    // The default route and a route without `resolutions`: today's close, no resolution sent.
    for toml in ["", "[[routes]]\nrepositories = [\"octo/*\"]\n"] {
        let s = setup(backend, toml).await;
        let issue = GithubIssue::new("octo/api", 7);
        open(&s, &issue).await;
        let closed = closed_event(&issue, Some("not_planned"));
        assert_eq!(deliver(&s.pipeline, &closed).await, Outcome::Done);
        let twin = jira_twin(&s.fake, &issue);
        assert_eq!(twin.status, "Done", "{toml:?}");
        assert_eq!(twin.resolution, None, "{toml:?}");
    }
}

#[tokio::test]
async fn without_resolutions_closing_is_unchanged_embedded() {
    without_resolutions_closing_is_unchanged(Backend::Embedded).await;
}

#[tokio::test]
async fn without_resolutions_closing_is_unchanged_redis() {
    without_resolutions_closing_is_unchanged(Backend::Redis).await;
}

#[tokio::test]
async fn a_reason_without_a_configured_resolution_closes_without_one() {
    let s = setup(
        Backend::Embedded,
        "[[routes]]\nresolutions = { completed = \"Done\" }\n",
    )
    .await;
    let issue = GithubIssue::new("octo/api", 8);
    open(&s, &issue).await;
    let closed = closed_event(&issue, Some("not_planned"));
    assert_eq!(deliver(&s.pipeline, &closed).await, Outcome::Done);
    let twin = jira_twin(&s.fake, &issue);
    assert_eq!(twin.status, "Done");
    assert_eq!(twin.resolution, None, "not planned never becomes Done");
}

#[tokio::test]
async fn an_unknown_resolution_is_refused_like_jira_and_dead_lettered() {
    let s = setup(
        Backend::Embedded,
        "[[routes]]\nresolutions = { not_planned = \"Wont Fix\" }\n",
    )
    .await;
    let issue = GithubIssue::new("octo/api", 9);
    open(&s, &issue).await;
    let closed = closed_event(&issue, Some("not_planned"));
    match deliver(&s.pipeline, &closed).await {
        Outcome::Fail { reason } => {
            assert!(reason.contains("resolution"), "{reason}");
        }
        other => panic!("expected a permanent failure, got {other:?}"),
    }
    let twin = jira_twin(&s.fake, &issue);
    assert_eq!(twin.status, "To Do", "a refused transition changes nothing");
    assert_eq!(twin.resolution, None);
    assert!(s.fake.count_status(400) >= 1);
}

const OCTOCAT: &str = "5b10a2844c20165700ede21g";
const MONALISA: &str = "5b109f2e9729b51b54dc274d";

const ASSIGNEES: &str = r#"
[users]
octocat = "5b10a2844c20165700ede21g"
monalisa = "5b109f2e9729b51b54dc274d"

[[routes]]
name = "teams"
repositories = ["octo/*"]
sync_assignee = true
"#;

/// `issues.assigned` / `unassigned` of `login`, as GitHub sends it (a fresh delivery id).
fn assignee_event(issue: &GithubIssue, action: &str, login: &str) -> Vec<u8> {
    let mut payload = issue.event(action);
    let user = serde_json::json!({"login": login, "id": 583_231, "type": "User"});
    payload["assignee"] = user.clone();
    payload["issue"]["assignee"] = if action == "assigned" {
        user.clone()
    } else {
        serde_json::Value::Null
    };
    payload["issue"]["assignees"] = if action == "assigned" {
        serde_json::json!([user])
    } else {
        serde_json::json!([])
    };
    envelope("issues", &delivery_id(), &payload)
}

fn assignee_writes(fake: &JiraFake) -> usize {
    fake.request_log()
        .iter()
        .filter(|r| r.endpoint == "issue.assignee")
        .count()
}

async fn a_mapped_assignee_is_set_once(backend: Backend) {
    let s = setup(backend, ASSIGNEES).await;
    let issue = GithubIssue::new("octo/api", 11);
    open(&s, &issue).await;
    let assigned = assignee_event(&issue, "assigned", "Octocat");
    for _ in 0..2 {
        assert_eq!(deliver(&s.pipeline, &assigned).await, Outcome::Done);
    }
    assert_eq!(
        jira_twin(&s.fake, &issue).assignee.as_deref(),
        Some(OCTOCAT)
    );
    assert_eq!(assignee_writes(&s.fake), 1, "delivered twice, set once");
}

#[tokio::test]
async fn a_mapped_assignee_is_set_once_embedded() {
    a_mapped_assignee_is_set_once(Backend::Embedded).await;
}

#[tokio::test]
async fn a_mapped_assignee_is_set_once_redis() {
    a_mapped_assignee_is_set_once(Backend::Redis).await;
}

async fn an_unmapped_user_leaves_the_jira_assignee(backend: Backend) {
    let s = setup(backend, ASSIGNEES).await;
    let issue = GithubIssue::new("octo/api", 12);
    open(&s, &issue).await;
    let assigned = assignee_event(&issue, "assigned", "octocat");
    assert_eq!(deliver(&s.pipeline, &assigned).await, Outcome::Done);
    for action in ["assigned", "unassigned"] {
        let body = assignee_event(&issue, action, "hubot");
        assert_eq!(deliver(&s.pipeline, &body).await, Outcome::Done, "{action}");
        assert_eq!(
            jira_twin(&s.fake, &issue).assignee.as_deref(),
            Some(OCTOCAT),
            "{action} of an unmapped user"
        );
    }
    assert_eq!(assignee_writes(&s.fake), 1);
}

#[tokio::test]
async fn an_unmapped_user_leaves_the_jira_assignee_embedded() {
    an_unmapped_user_leaves_the_jira_assignee(Backend::Embedded).await;
}

#[tokio::test]
async fn an_unmapped_user_leaves_the_jira_assignee_redis() {
    an_unmapped_user_leaves_the_jira_assignee(Backend::Redis).await;
}

async fn unassigning_clears_only_that_users_assignment(backend: Backend) {
    let s = setup(backend, ASSIGNEES).await;
    let issue = GithubIssue::new("octo/api", 13);
    open(&s, &issue).await;
    let steps = [
        ("assigned", "octocat", Some(OCTOCAT)),
        ("unassigned", "octocat", None),
        ("assigned", "octocat", Some(OCTOCAT)),
        ("assigned", "monalisa", Some(MONALISA)),
        // Not octocat's any more: left to monalisa.
        ("unassigned", "octocat", Some(MONALISA)),
        ("unassigned", "monalisa", None),
    ];
    for (action, login, expected) in steps {
        let body = assignee_event(&issue, action, login);
        assert_eq!(deliver(&s.pipeline, &body).await, Outcome::Done);
        assert_eq!(
            jira_twin(&s.fake, &issue).assignee.as_deref(),
            expected,
            "{action} {login}"
        );
    }
}

#[tokio::test]
async fn unassigning_clears_only_that_users_assignment_embedded() {
    unassigning_clears_only_that_users_assignment(Backend::Embedded).await;
}

#[tokio::test]
async fn unassigning_clears_only_that_users_assignment_redis() {
    unassigning_clears_only_that_users_assignment(Backend::Redis).await;
}

#[tokio::test]
async fn assignees_are_not_synced_unless_the_route_asks() {
    let s = setup(
        Backend::Embedded,
        "[users]\noctocat = \"5b10a2844c20165700ede21g\"\n",
    )
    .await;
    let issue = GithubIssue::new("octo/api", 14);
    open(&s, &issue).await;
    let assigned = assignee_event(&issue, "assigned", "octocat");
    assert_eq!(deliver(&s.pipeline, &assigned).await, Outcome::Done);
    assert_eq!(jira_twin(&s.fake, &issue).assignee, None);
    assert_eq!(assignee_writes(&s.fake), 0);
}

#[tokio::test]
async fn an_account_jira_does_not_have_is_refused_and_dead_lettered() {
    let s = setup(
        Backend::Embedded,
        "[users]\noctocat = \"no-such-account\"\n\n[[routes]]\nsync_assignee = true\n",
    )
    .await;
    let issue = GithubIssue::new("octo/api", 15);
    open(&s, &issue).await;
    let assigned = assignee_event(&issue, "assigned", "octocat");
    match deliver(&s.pipeline, &assigned).await {
        Outcome::Fail { reason } => assert!(reason.contains("cannot be assigned"), "{reason}"),
        other => panic!("expected a permanent failure, got {other:?}"),
    }
    assert_eq!(jira_twin(&s.fake, &issue).assignee, None);
}

const COMMENT_CHANGES: &str = r#"
[[routes]]
name = "teams"
repositories = ["octo/*"]
sync_comment_edits = true
on_comment_deleted = "delete"
"#;

/// `issue_comment.<action>` of comment `id` with `body`, as GitHub sends it (a fresh delivery).
fn comment_event(issue: &GithubIssue, action: &str, id: u64, body: &str) -> Vec<u8> {
    let mut payload = issue.comment(id, "monalisa", body);
    payload["action"] = action.into();
    if action == "edited" {
        payload["changes"] = serde_json::json!({"body": {"from": "the old text"}});
    }
    envelope("issue_comment", &delivery_id(), &payload)
}

fn requests_to(fake: &JiraFake, endpoint: &str) -> usize {
    fake.request_log()
        .iter()
        .filter(|r| r.endpoint == endpoint)
        .count()
}

fn comment_texts(fake: &JiraFake, issue: &GithubIssue) -> Vec<String> {
    jira_twin(fake, issue)
        .comments
        .iter()
        .map(serde_json::Value::to_string)
        .collect()
}

async fn an_edited_comment_is_updated_once(backend: Backend) {
    let s = setup(backend, COMMENT_CHANGES).await;
    let issue = GithubIssue::new("octo/api", 21);
    open(&s, &issue).await;
    let created = comment_event(&issue, "created", 501, "the first text");
    assert_eq!(deliver(&s.pipeline, &created).await, Outcome::Done);
    let edited = comment_event(&issue, "edited", 501, "the second text");
    for _ in 0..2 {
        assert_eq!(deliver(&s.pipeline, &edited).await, Outcome::Done);
    }
    let texts = comment_texts(&s.fake, &issue);
    assert_eq!(texts.len(), 1, "{texts:?}");
    assert!(texts[0].contains("the second text"), "{texts:?}");
    assert!(!texts[0].contains("the first text"), "{texts:?}");
    assert_eq!(requests_to(&s.fake, "issue.comment.edit"), 1);
}

#[tokio::test]
async fn an_edited_comment_is_updated_once_embedded() {
    an_edited_comment_is_updated_once(Backend::Embedded).await;
}

#[tokio::test]
async fn an_edited_comment_is_updated_once_redis() {
    an_edited_comment_is_updated_once(Backend::Redis).await;
}

async fn an_edit_that_comes_first_posts_the_new_text_once(backend: Backend) {
    let s = setup(backend, COMMENT_CHANGES).await;
    let issue = GithubIssue::new("octo/api", 22);
    open(&s, &issue).await;
    let edited = comment_event(&issue, "edited", 502, "the edited text");
    assert_eq!(deliver(&s.pipeline, &edited).await, Outcome::Done);
    let created = comment_event(&issue, "created", 502, "the original text");
    assert_eq!(deliver(&s.pipeline, &created).await, Outcome::Done);
    let texts = comment_texts(&s.fake, &issue);
    assert_eq!(texts.len(), 1, "{texts:?}");
    assert!(texts[0].contains("the edited text"), "{texts:?}");
}

#[tokio::test]
async fn an_edit_that_comes_first_posts_the_new_text_once_embedded() {
    an_edit_that_comes_first_posts_the_new_text_once(Backend::Embedded).await;
}

#[tokio::test]
async fn an_edit_that_comes_first_posts_the_new_text_once_redis() {
    an_edit_that_comes_first_posts_the_new_text_once(Backend::Redis).await;
}

async fn a_deleted_comment_is_deleted_once(backend: Backend) {
    let s = setup(backend, COMMENT_CHANGES).await;
    let issue = GithubIssue::new("octo/api", 23);
    open(&s, &issue).await;
    for (id, text) in [(503, "goes away"), (504, "stays")] {
        let created = comment_event(&issue, "created", id, text);
        assert_eq!(deliver(&s.pipeline, &created).await, Outcome::Done);
    }
    let deleted = comment_event(&issue, "deleted", 503, "goes away");
    for _ in 0..2 {
        assert_eq!(deliver(&s.pipeline, &deleted).await, Outcome::Done);
    }
    // Redelivered under a new delivery id (e.g. `github redeliver`): the comment is gone already.
    let again = comment_event(&issue, "deleted", 503, "goes away");
    assert_eq!(deliver(&s.pipeline, &again).await, Outcome::Done);
    let texts = comment_texts(&s.fake, &issue);
    assert_eq!(texts.len(), 1, "{texts:?}");
    assert!(texts[0].contains("stays"), "{texts:?}");
    assert_eq!(requests_to(&s.fake, "issue.comment.delete"), 1);
}

#[tokio::test]
async fn a_deleted_comment_is_deleted_once_embedded() {
    a_deleted_comment_is_deleted_once(Backend::Embedded).await;
}

#[tokio::test]
async fn a_deleted_comment_is_deleted_once_redis() {
    a_deleted_comment_is_deleted_once(Backend::Redis).await;
}

async fn a_deleted_comment_can_be_marked_instead(backend: Backend) {
    let s = setup(
        backend,
        "[[routes]]\nsync_comment_edits = true\non_comment_deleted = \"mark\"\n",
    )
    .await;
    let issue = GithubIssue::new("octo/api", 24);
    open(&s, &issue).await;
    let created = comment_event(&issue, "created", 505, "a secret pasted by mistake");
    assert_eq!(deliver(&s.pipeline, &created).await, Outcome::Done);
    let deleted = comment_event(&issue, "deleted", 505, "a secret pasted by mistake");
    for _ in 0..2 {
        assert_eq!(deliver(&s.pipeline, &deleted).await, Outcome::Done);
    }
    let texts = comment_texts(&s.fake, &issue);
    assert_eq!(texts.len(), 1, "{texts:?}");
    assert!(texts[0].contains("deleted on GitHub"), "{texts:?}");
    assert!(!texts[0].contains("a secret pasted"), "{texts:?}");
    assert_eq!(requests_to(&s.fake, "issue.comment.delete"), 0);
    assert_eq!(requests_to(&s.fake, "issue.comment.edit"), 1);
}

#[tokio::test]
async fn a_deleted_comment_can_be_marked_instead_embedded() {
    a_deleted_comment_can_be_marked_instead(Backend::Embedded).await;
}

#[tokio::test]
async fn a_deleted_comment_can_be_marked_instead_redis() {
    a_deleted_comment_can_be_marked_instead(Backend::Redis).await;
}

#[tokio::test]
async fn comment_edits_and_deletions_are_ignored_unless_the_route_asks() {
    let s = setup(Backend::Embedded, "").await;
    let issue = GithubIssue::new("octo/api", 25);
    open(&s, &issue).await;
    let created = comment_event(&issue, "created", 506, "the first text");
    assert_eq!(deliver(&s.pipeline, &created).await, Outcome::Done);
    for (action, text) in [
        ("edited", "the second text"),
        ("deleted", "the second text"),
    ] {
        let body = comment_event(&issue, action, 506, text);
        assert_eq!(deliver(&s.pipeline, &body).await, Outcome::Done, "{action}");
    }
    let texts = comment_texts(&s.fake, &issue);
    assert_eq!(texts.len(), 1, "{texts:?}");
    assert!(texts[0].contains("the first text"), "{texts:?}");
    assert_eq!(requests_to(&s.fake, "issue.comment.edit"), 0);
    assert_eq!(requests_to(&s.fake, "issue.comment.delete"), 0);
}
