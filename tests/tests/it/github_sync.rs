//! The GitHub → Jira sync, driven message by message against the Jira fake and the real test
//! Redis: exactly one Jira issue per GitHub issue whatever the redeliveries and races, comments
//! once on the right issue, permanent errors dead-lettered with Jira's reason, dry-run to the audit
//! trail.

use std::sync::Arc;
use std::time::Duration;

use hookbridge_shared::routing::{JiraProjectKey, Routing};
use hookbridge_tests::github::{GithubIssue, delivery_id, envelope};
use hookbridge_tests::jira_fake::{FakeConfig, JiraFake};
use hookbridge_tests::worker::{Parts, deliver, router};
use hookbridge_worker::audit::AuditLog;
use hookbridge_worker::events::github::IssueIdentity;
use hookbridge_worker::github_sync::{SyncConfig, marker_label};
use hookbridge_worker::handler::Outcome;
use hookbridge_worker::jira::JiraClient;
use hookbridge_worker::jira::ops::JiraOps;
use hookbridge_worker::router::Router;
use hookbridge_worker::store::{LockGuard, LockName, Store};

struct Setup {
    fake: JiraFake,
    pipeline: Arc<Router>,
    store: Store,
    _dir: tempfile::TempDir,
}

async fn redis_store() -> Store {
    let url = std::env::var("HOOKBRIDGE_TEST_REDIS_URL")
        .expect("HOOKBRIDGE_TEST_REDIS_URL: run under scripts/with-test-services.sh (make test)");
    let prefix = format!("hbpipe:{}:", uuid::Uuid::new_v4().simple());
    Store::connect_redis(&url, &prefix)
        .await
        .expect("test Redis")
}

fn routing(issue_type: &str) -> Routing {
    Routing {
        rules: Vec::new(),
        default_project: Some(JiraProjectKey::parse("DEMO").expect("key")),
        default_issue_type: issue_type.to_owned(),
    }
}

fn sync_config() -> SyncConfig {
    SyncConfig {
        ignore_logins: vec!["hookbridge-bot".to_owned()],
        search_lag: Duration::from_millis(300),
        ..SyncConfig::default()
    }
}

async fn setup(config: FakeConfig, issue_type: &str) -> Setup {
    setup_with(config, issue_type, sync_config(), Duration::from_secs(30)).await
}

/// [`setup`] with another sync configuration and Jira request timeout.
async fn setup_with(
    config: FakeConfig,
    issue_type: &str,
    sync: SyncConfig,
    request_timeout: Duration,
) -> Setup {
    let fake = JiraFake::start(config).await;
    let store = redis_store().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let client =
        JiraClient::with_timeout(&fake.settings(100.0), Some(store.clone()), request_timeout)
            .expect("client");
    let audit = AuditLog::open(&dir.path().join("audit"), "test", None);
    let mut parts = Parts::new(
        store.clone(),
        JiraOps::live(client, audit.clone()),
        audit,
        dir.path(),
    );
    parts.routing = routing(issue_type);
    parts.sync = sync;
    let (pipeline, _) = router(parts);
    Setup {
        fake,
        pipeline: Arc::new(pipeline),
        store,
        _dir: dir,
    }
}

/// Handles a message like the consumer would: retried while the outcome says retry (with the
/// asked delay, capped), up to `attempts`.
/// Delivers `issue`'s `issues.<action>` event (with a fresh delivery id) and expects it done.
async fn deliver_issue_event(pipeline: &Router, issue: &GithubIssue, action: &str) {
    let body = envelope("issues", &delivery_id(), &issue.event(action));
    assert_eq!(deliver(pipeline, &body).await, Outcome::Done, "{action}");
}

#[tokio::test]
async fn the_same_delivery_three_times_makes_one_issue() {
    let s = setup(FakeConfig::default(), "Task").await;
    let issue = GithubIssue::new("octo/api", 1).with_labels(&["bug", "good first issue"]);
    let body = envelope("issues", &delivery_id(), &issue.event("opened"));
    for _ in 0..3 {
        assert_eq!(deliver(&s.pipeline, &body).await, Outcome::Done);
    }
    // And three at once.
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..3 {
        let pipeline = s.pipeline.clone();
        let body = body.clone();
        tasks.spawn(async move { deliver(&pipeline, &body).await });
    }
    while let Some(outcome) = tasks.join_next().await {
        assert_eq!(outcome.expect("task"), Outcome::Done);
    }
    let issues = s.fake.issues();
    assert_eq!(issues.len(), 1, "{issues:#?}");
    let created = &issues[0];
    assert_eq!(created.summary, "GitHub Issue: Issue 1 of octo/api");
    assert!(created.labels.contains(&"github".to_owned()));
    assert!(created.labels.contains(&"good-first-issue".to_owned()));
    assert!(
        created
            .labels
            .contains(&marker_label(&IssueIdentity::new("octo/api", 1)))
    );
    let description = created.description.to_string();
    assert!(description.contains("https://github.com/octo/api/issues/1"));
    assert!(description.contains("octocat"));
    assert!(description.contains("codeBlock"));
    assert_eq!(created.remote_links.len(), 1);
    assert_eq!(created.remote_links[0].0, issue.html_url());
}

#[tokio::test]
async fn opened_and_labeled_together_make_one_issue_with_the_label() {
    let s = setup(
        FakeConfig {
            latency: Duration::from_millis(30),
            ..FakeConfig::default()
        },
        "Task",
    )
    .await;
    for number in 1..=5 {
        let issue = GithubIssue::new("octo/web", number).with_labels(&["triage"]);
        let opened = envelope("issues", &delivery_id(), &issue.event("opened"));
        let labeled = envelope("issues", &delivery_id(), &issue.event("labeled"));
        let (a, b) = tokio::join!(
            deliver(&s.pipeline, &opened),
            deliver(&s.pipeline, &labeled)
        );
        assert_eq!((a, b), (Outcome::Done, Outcome::Done));
    }
    let issues = s.fake.issues();
    assert_eq!(issues.len(), 5, "{issues:#?}");
    for issue in issues {
        assert!(issue.labels.contains(&"triage".to_owned()), "{issue:?}");
        assert_eq!(issue.remote_links.len(), 1);
    }
}

#[tokio::test]
async fn comments_land_once_on_the_right_issue() {
    let s = setup(FakeConfig::default(), "Task").await;
    let first = GithubIssue::new("octo/api", 10);
    let second = GithubIssue::new("octo/api", 11);
    for issue in [&first, &second] {
        let body = envelope("issues", &delivery_id(), &issue.event("opened"));
        assert_eq!(deliver(&s.pipeline, &body).await, Outcome::Done);
    }
    let comment = envelope(
        "issue_comment",
        &delivery_id(),
        &second.comment(
            777,
            "hubot-human",
            "Same here on **v2**.\nWorkaround: restart.",
        ),
    );
    for _ in 0..2 {
        assert_eq!(deliver(&s.pipeline, &comment).await, Outcome::Done);
    }
    // The same comment under a new delivery id (GitHub redelivered it as a new delivery).
    let again = envelope(
        "issue_comment",
        &delivery_id(),
        &second.comment(
            777,
            "hubot-human",
            "Same here on **v2**.\nWorkaround: restart.",
        ),
    );
    assert_eq!(deliver(&s.pipeline, &again).await, Outcome::Done);
    // The bridge's own comments are not mirrored back.
    let own = envelope(
        "issue_comment",
        &delivery_id(),
        &second.comment(778, "hookbridge-bot", "synced"),
    );
    assert_eq!(deliver(&s.pipeline, &own).await, Outcome::Done);

    let issues = s.fake.issues();
    let target = issues
        .iter()
        .find(|i| i.remote_links[0].0 == second.html_url())
        .expect("the second issue");
    let other = issues
        .iter()
        .find(|i| i.remote_links[0].0 == first.html_url())
        .expect("the first issue");
    assert_eq!(target.comments.len(), 1, "{:#?}", target.comments);
    assert!(other.comments.is_empty());
    let text = target.comments[0].to_string();
    assert!(
        text.contains("issuecomment-777")
            && text.contains("hubot-human")
            && text.contains("Workaround")
    );
}

#[tokio::test]
async fn edits_labels_closing_and_reopening_follow() {
    let s = setup(FakeConfig::default(), "Task").await;
    let mut issue = GithubIssue::new("octo/api", 20);
    deliver_issue_event(&s.pipeline, &issue, "opened").await;
    issue.title = "Renamed".into();
    issue.body = "new body".into();
    deliver_issue_event(&s.pipeline, &issue, "edited").await;
    // A label set by hand in Jira survives GitHub's label changes; only the label an event names
    // changes.
    let key = s.fake.issues()[0].key.clone();
    s.fake.label_by_hand(&key, "sprint-7");
    issue.labels = vec!["p1".into()];
    deliver_issue_event(&s.pipeline, &issue, "labeled").await;
    issue.labels = vec!["p1".into(), "needs triage".into()];
    let labeled = envelope("issues", &delivery_id(), &issue.event("labeled"));
    assert_eq!(deliver(&s.pipeline, &labeled).await, Outcome::Done);
    let unlabeled = envelope("issues", &delivery_id(), &issue.unlabel("p1"));
    assert_eq!(deliver(&s.pipeline, &unlabeled).await, Outcome::Done);
    let labels = s.fake.issues()[0].labels.clone();
    for kept in ["github", "sprint-7", "needs-triage"] {
        assert!(
            labels.contains(&kept.to_owned()),
            "{kept} missing: {labels:?}"
        );
    }
    assert!(
        !labels.contains(&"p1".to_owned()),
        "p1 was removed: {labels:?}"
    );
    assert!(
        labels.iter().any(|l| l.starts_with("ghissue-")),
        "{labels:?}"
    );
    // Removing a GitHub label that happens to be the bridge's own keeps it in Jira.
    issue.labels.push("github".into());
    let unlabeled = envelope("issues", &delivery_id(), &issue.unlabel("github"));
    assert_eq!(deliver(&s.pipeline, &unlabeled).await, Outcome::Done);
    assert!(s.fake.issues()[0].labels.contains(&"github".to_owned()));
    issue.labels = vec!["p1".into()];
    deliver_issue_event(&s.pipeline, &issue, "labeled").await;
    deliver_issue_event(&s.pipeline, &issue, "closed").await;
    let jira = &s.fake.issues()[0];
    assert_eq!(jira.summary, "GitHub Issue: Renamed");
    assert!(jira.description.to_string().contains("new body"));
    assert!(jira.labels.contains(&"p1".to_owned()));
    assert_eq!(jira.status, "Done");
    deliver_issue_event(&s.pipeline, &issue, "reopened").await;
    assert_eq!(s.fake.issues()[0].status, "To Do");
    assert_eq!(s.fake.count_issues(), 1);
}

#[tokio::test]
async fn a_permanent_400_fails_with_jiras_reason_and_creates_nothing() {
    let s = setup(FakeConfig::default(), "Epic").await;
    let body = envelope(
        "issues",
        &delivery_id(),
        &GithubIssue::new("octo/api", 30).event("opened"),
    );
    match s.pipeline.handle_body(&body).await {
        Outcome::Fail { reason } => {
            assert!(
                reason.contains("400") && reason.contains("issue type"),
                "{reason}"
            )
        }
        other => panic!("expected a permanent failure, got {other:?}"),
    }
    assert_eq!(s.fake.count_issues(), 0);
    // A 400 proves nothing was created, so no search is needed before a later attempt.
    assert!(
        !s.fake
            .request_log()
            .iter()
            .any(|r| r.path.contains("/search"))
    );
}

#[tokio::test]
async fn a_create_with_an_unknown_outcome_is_reconciled_before_creating_again() {
    let s = setup(
        FakeConfig {
            search_lag: Duration::from_millis(200),
            ..FakeConfig::default()
        },
        "Task",
    )
    .await;
    let issue = GithubIssue::new("octo/api", 40);
    let body = envelope("issues", &delivery_id(), &issue.event("opened"));
    s.fake.fail_next(
        reqwest::Method::POST,
        "/rest/api/3/issue/DEMO-1/remotelink",
        400,
        None,
        1,
    );
    // First attempt: creates DEMO-1, then the remote link is refused (permanent) — the mapping
    // was saved before linking, so the next attempt links without creating.
    let first = s.pipeline.handle_body(&body).await;
    assert!(matches!(first, Outcome::Fail { .. }), "{first:?}");
    assert_eq!(deliver(&s.pipeline, &body).await, Outcome::Done);
    assert_eq!(s.fake.count_issues(), 1);
    assert_eq!(s.fake.issues()[0].remote_links.len(), 1);

    // A create answered by a 500: the worker cannot tell it from a create whose answer was lost
    // after Jira made the issue.
    let lost = GithubIssue::new("octo/api", 41);
    let lost_body = envelope("issues", &delivery_id(), &lost.event("opened"));
    s.fake
        .fail_next(reqwest::Method::POST, "/rest/api/3/issue", 500, None, 1);
    let outcome = s.pipeline.handle_body(&lost_body).await;
    assert!(matches!(outcome, Outcome::Retry { .. }), "{outcome:?}");
    // The fake refused that create, but the worker cannot tell a 500 from a lost answer: it must
    // search before creating again, and, finding nothing after the lag, create exactly once.
    assert_eq!(deliver(&s.pipeline, &lost_body).await, Outcome::Done);
    assert_eq!(s.fake.count_issues(), 2);
    let searched = s
        .fake
        .request_log()
        .iter()
        .any(|r| r.path == "/rest/api/3/search/jql");
    assert!(
        searched,
        "the retry after an unknown outcome must search by marker first"
    );
}

#[tokio::test]
async fn dry_run_writes_the_exact_request_to_the_audit_trail() {
    let dir = tempfile::tempdir().expect("temp dir");
    let audit_dir = dir.path().join("audit");
    let audit = AuditLog::open(&audit_dir, "test", None);
    let mut parts = Parts::new(
        redis_store().await,
        JiraOps::dry_run(audit.clone()),
        audit,
        dir.path(),
    );
    parts.routing = routing("Task");
    let (pipeline, _) = router(parts);
    let issue = GithubIssue::new("octo/api", 50).with_labels(&["bug"]);
    let body = envelope("issues", &delivery_id(), &issue.event("opened"));
    assert_eq!(deliver(&pipeline, &body).await, Outcome::Done);
    let records = hookbridge_tests::audit::records(&audit_dir);
    let create = records
        .iter()
        .find(|r| r["detail"]["request"]["path"] == "/rest/api/3/issue")
        .expect("the create request");
    assert_eq!(create["detail"]["request"]["method"], "POST");
    assert_eq!(create["action"], "jira.issue.created");
    assert_eq!(create["outcome"], "dry_run");
    let fields = &create["detail"]["request"]["body"]["fields"];
    assert_eq!(fields["project"]["key"], "DEMO");
    assert_eq!(fields["summary"], "GitHub Issue: Issue 50 of octo/api");
    hookbridge_worker::jira::adf::validate(&fields["description"]).expect("ADF description");
    assert!(records.iter().any(|r| {
        r["detail"]["request"]["path"]
            .as_str()
            .is_some_and(|p| p.ends_with("/remotelink"))
    }));
}

/// The comment that stands in for a close the workflow has no transition for is posted once, even
/// when the first attempt's answer was lost and the delivery is retried.
#[tokio::test]
async fn a_retried_close_without_a_transition_comments_once() {
    let s = setup_with(
        FakeConfig::default(),
        "Task",
        sync_config(),
        Duration::from_millis(500),
    )
    .await;
    let issue = GithubIssue::new("octo/api", 60);
    deliver_issue_event(&s.pipeline, &issue, "opened").await;
    deliver_issue_event(&s.pipeline, &issue, "closed").await;
    let key = s.fake.issues()[0].key.clone();
    assert_eq!(s.fake.issues()[0].status, "Done");
    // Closed again (GitHub sends it; Jira's "Done" offers no "Done"): the fallback comment is
    // made, but its answer does not come back in time.
    s.fake.stall_next(
        reqwest::Method::POST,
        &format!("/rest/api/3/issue/{key}/comment"),
        Duration::from_secs(2),
    );
    let closed = envelope("issues", &delivery_id(), &issue.event("closed"));
    let first = s.pipeline.handle_body(&closed).await;
    assert!(matches!(first, Outcome::Retry { .. }), "{first:?}");
    assert_eq!(deliver(&s.pipeline, &closed).await, Outcome::Done);
    let comments = s.fake.issue(&key).expect("issue").comments;
    assert_eq!(comments.len(), 1, "{comments:#?}");
    assert!(comments[0].to_string().contains("was closed by"));
}

/// Recovering a comment whose first post had an unknown outcome looks for that comment's own
/// marker: another comment quoting its GitHub URL does not count as "already posted".
#[tokio::test]
async fn a_quoted_comment_url_is_not_taken_for_the_comment() {
    let s = setup(FakeConfig::default(), "Task").await;
    let issue = GithubIssue::new("octo/api", 61);
    deliver_issue_event(&s.pipeline, &issue, "opened").await;
    let key = s.fake.issues()[0].key.clone();
    // The first post is answered 500: the worker cannot tell whether it was made.
    s.fake.fail_next(
        reqwest::Method::POST,
        &format!("/rest/api/3/issue/{key}/comment"),
        500,
        None,
        1,
    );
    let original = envelope(
        "issue_comment",
        &delivery_id(),
        &issue.comment(901, "alice", "the original words"),
    );
    let first = s.pipeline.handle_body(&original).await;
    assert!(matches!(first, Outcome::Retry { .. }), "{first:?}");
    // Meanwhile someone quotes that comment's URL in another comment, which is synced.
    let quoting = envelope(
        "issue_comment",
        &delivery_id(),
        &issue.comment(
            902,
            "bob",
            &format!("As {}#issuecomment-901 says.", issue.html_url()),
        ),
    );
    assert_eq!(deliver(&s.pipeline, &quoting).await, Outcome::Done);
    assert_eq!(deliver(&s.pipeline, &original).await, Outcome::Done);
    let comments: Vec<String> = s
        .fake
        .issue(&key)
        .expect("issue")
        .comments
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(comments.len(), 2, "{comments:#?}");
    assert_eq!(
        comments
            .iter()
            .filter(|c| c.contains("the original words"))
            .count(),
        1,
        "{comments:#?}"
    );
}

/// A worker whose per-issue lock is taken over while it waits for its rate-limiter slot stops:
/// the successor posts the comment, and the first worker, when its slot comes, posts nothing.
#[tokio::test]
async fn a_worker_that_lost_its_issue_lock_stops_before_posting() {
    let s = setup_with(
        FakeConfig::default(),
        "Task",
        SyncConfig {
            lock_ttl: Duration::from_millis(1500),
            ..sync_config()
        },
        Duration::from_secs(30),
    )
    .await;
    let issue = GithubIssue::new("octo/api", 80);
    deliver_issue_event(&s.pipeline, &issue, "opened").await;
    let key = s.fake.issues()[0].key.clone();
    // A's post is throttled: it waits 3 s for its next slot, holding the lock meanwhile.
    s.fake.fail_next(
        reqwest::Method::POST,
        &format!("/rest/api/3/issue/{key}/comment"),
        429,
        Some(3),
        1,
    );
    let comment = issue.comment(801, "alice", "only once, please");
    let first = {
        let pipeline = s.pipeline.clone();
        let body = envelope("issue_comment", &delivery_id(), &comment);
        tokio::spawn(async move { pipeline.handle_body(&body).await })
    };
    tokio::time::sleep(Duration::from_millis(700)).await;
    // A's lock is lost — as when the store did not take its extensions for a whole TTL — and
    // taken over: B, the same comment delivered again, gets the lock.
    let name = LockName::github_issue(&IssueIdentity::new("octo/api", 80));
    for token in 1..=100 {
        let guard = LockGuard {
            key: name.as_str().to_owned(),
            token,
        };
        s.store.unlock(&guard).await.expect("store");
    }
    let again = envelope("issue_comment", &delivery_id(), &comment);
    assert_eq!(deliver(&s.pipeline, &again).await, Outcome::Done);
    let first = first.await.expect("task");
    assert!(matches!(first, Outcome::Retry { .. }), "{first:?}");
    let comments = s.fake.issue(&key).expect("issue").comments;
    assert_eq!(comments.len(), 1, "{comments:#?}");
}

/// A create that waited for its rate-limiter slot (Jira throttled it) and whose answer was then
/// lost: the next attempt waits out the search lag from when the request was really sent, finds
/// the issue by its marker, and creates nothing more.
#[tokio::test]
async fn the_search_lag_counts_from_when_the_create_was_sent() {
    let lag = Duration::from_millis(1500);
    let s = setup_with(
        FakeConfig {
            search_lag: lag,
            ..FakeConfig::default()
        },
        "Task",
        SyncConfig {
            search_lag: lag,
            ..sync_config()
        },
        Duration::from_millis(500),
    )
    .await;
    let issue = GithubIssue::new("octo/api", 70);
    let body = envelope("issues", &delivery_id(), &issue.event("opened"));
    // Throttled first (2 s before the next slot), then made, but the answer is lost.
    s.fake
        .fail_next(reqwest::Method::POST, "/rest/api/3/issue", 429, Some(2), 1);
    s.fake.stall_next(
        reqwest::Method::POST,
        "/rest/api/3/issue",
        Duration::from_secs(3),
    );
    let first = s.pipeline.handle_body(&body).await;
    assert!(matches!(first, Outcome::Retry { .. }), "{first:?}");
    assert_eq!(s.fake.count_issues(), 1);
    // Redelivered at once (after a crash, say): more than the lag has passed since the intent
    // was first recorded, but not since the create was sent.
    assert_eq!(deliver(&s.pipeline, &body).await, Outcome::Done);
    let issues = s.fake.issues();
    assert_eq!(issues.len(), 1, "{issues:#?}");
}
