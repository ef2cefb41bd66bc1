//! Jira → GitHub, driven message by message against the Jira fake and the GitHub fake on both
//! stores: a twin moved to Done closes the GitHub issue with the close reason its resolution
//! means, leaving Done reopens it, a Jira comment becomes one GitHub comment; and nothing the
//! bridge wrote on one side comes back as a new effect on the other (the round trips).

use std::sync::Arc;
use std::time::Duration;

use hookbridge_shared::config::FileConfig;
use hookbridge_shared::routing::{JiraProjectKey, Routing};
use hookbridge_tests::github::{Delivery, GithubIssue, delivery_id, envelope};
use hookbridge_tests::github_app_fake::APP_PRIVATE_KEY_PEM;
use hookbridge_tests::github_fake::{APP_SLUG, GithubConfig, GithubFake, RepoIssue};
use hookbridge_tests::jira_fake::{FakeConfig, FakeIssue, JiraFake, JiraUser, WebhookDelivery};
use hookbridge_tests::wait::eventually;
use hookbridge_tests::worker::{Backend, Parts, deliver, open_store, router};
use hookbridge_worker::audit::AuditLog;
use hookbridge_worker::events::github::IssueIdentity;
use hookbridge_worker::github_app::AppCredentials;
use hookbridge_worker::github_sync::SyncConfig;
use hookbridge_worker::handler::Outcome;
use hookbridge_worker::jira::JiraClient;
use hookbridge_worker::jira::ops::JiraOps;
use hookbridge_worker::jira_sync::{GithubIssues, JiraSync, JiraSyncConfig};
use hookbridge_worker::router::Router;
use hookbridge_worker::store::keys::{IssueMapping, JiraTwin};
use hookbridge_worker::store::{Store, Transaction};
use url::Url;

const REPO: &str = "octo/api";

const SYNCED: &str = r#"
[[routes]]
name = "api"
repositories = ["octo/api"]
project = "DEMO"
sync_from_jira = true
github_state_reasons = { "Cannot Reproduce" = "completed" }
"#;

const NOT_SYNCED: &str = r#"
[[routes]]
name = "api"
repositories = ["octo/api"]
project = "DEMO"
"#;

struct Setup {
    jira: JiraFake,
    github: GithubFake,
    store: Store,
    pipeline: Arc<Router>,
    dir: tempfile::TempDir,
}

fn human() -> JiraUser {
    JiraUser::new("5b10a2844c20165700ede21g", "Ann Lee")
}

async fn setup(backend: Backend, toml: &str) -> Setup {
    setup_as(backend, toml, false).await
}

/// The App this setup acts as, when it acts as one.
const APP_ID: u64 = 31_337;

/// [`setup`], acting on GitHub as the GitHub App (`app`) or as a token's user.
async fn setup_as(backend: Backend, toml: &str, app: bool) -> Setup {
    let jira = JiraFake::start(FakeConfig::default()).await;
    let github = GithubFake::start(GithubConfig {
        app_id: app.then_some(APP_ID),
        ..GithubConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open_store(backend, dir.path(), "hbj2g").await;
    let client = JiraClient::with_timeout(
        &jira.settings(100.0),
        Some(store.clone()),
        Duration::from_secs(30),
    )
    .expect("client");
    let audit = AuditLog::open(&dir.path().join("audit"), "test", None);
    let mut parts = Parts::new(
        store.clone(),
        JiraOps::live(client.clone(), audit.clone()),
        audit,
        dir.path(),
    );
    parts.routing = Routing {
        rules: FileConfig::parse(toml).expect("routes").routes,
        default_project: Some(JiraProjectKey::parse("DEMO").expect("key")),
        default_issue_type: "Task".to_owned(),
    };
    parts.routing.validate().expect("valid routing");
    let api = Url::parse(&github.api_url()).expect("url");
    let issues = if app {
        let credentials = AppCredentials::from_pem(APP_ID, APP_PRIVATE_KEY_PEM).expect("key");
        GithubIssues::with_app(api, credentials)
    } else {
        GithubIssues::with_token(api, github.token().into())
    }
    .expect("GitHub client");
    // The bridge's GitHub login is what the worker adds to the ignored logins at start.
    let login = issues.login().await.expect("GET /user or GET /app");
    let expected = if app {
        format!("{APP_SLUG}[bot]")
    } else {
        "hookbridge-bot".to_owned()
    };
    assert_eq!(login, expected);
    parts.sync = SyncConfig {
        ignore_logins: vec![login],
        search_lag: Duration::from_millis(300),
        ..SyncConfig::default()
    };
    parts.jira_sync = Some(JiraSync::new(
        store.clone(),
        Some(client),
        Arc::new(issues),
        parts.routing.clone(),
        JiraSyncConfig::default(),
        parts.audit.clone(),
    ));
    let (pipeline, _) = router(parts);
    Setup {
        jira,
        github,
        store,
        pipeline: Arc::new(pipeline),
        dir,
    }
}

/// A GitHub issue that exists on GitHub and was opened through the bridge: its Jira twin's key.
async fn opened(s: &Setup, number: u64) -> (GithubIssue, String) {
    let issue = GithubIssue::new(REPO, number);
    s.github.add_issue(
        REPO,
        RepoIssue::new(
            number,
            &issue.title,
            &issue.body,
            "open",
            &[],
            false,
            Duration::ZERO,
        ),
    );
    let body = envelope("issues", &delivery_id(), &issue.event("opened"));
    assert_eq!(deliver(&s.pipeline, &body).await, Outcome::Done);
    let key = twin(&s.jira, &issue).key;
    (issue, key)
}

fn twin(jira: &JiraFake, issue: &GithubIssue) -> FakeIssue {
    jira.issues()
        .into_iter()
        .find(|i| {
            i.remote_links
                .iter()
                .any(|(_, url, _)| *url == issue.html_url())
        })
        .expect("the Jira twin")
}

async fn jira_event(s: &Setup, delivery: &WebhookDelivery) -> Outcome {
    deliver(&s.pipeline, &delivery.envelope()).await
}

/// Delivers every webhook GitHub sent for the bridge's writes since the last call.
async fn github_echoes(s: &Setup) -> usize {
    let hooks = s.github.take_webhooks();
    for (event, payload) in &hooks {
        let body = envelope(event, &delivery_id(), payload);
        assert_eq!(deliver(&s.pipeline, &body).await, Outcome::Done);
    }
    hooks.len()
}

fn patches(github: &GithubFake) -> usize {
    github
        .requests()
        .iter()
        .filter(|r| r.method == "PATCH")
        .count()
}

fn state(s: &Setup, number: u64) -> (String, Option<String>) {
    let issue = s.github.issue(REPO, number).expect("GitHub issue");
    (issue.state, issue.state_reason)
}

macro_rules! on_both_backends {
    ($name:ident) => {
        mod $name {
            use super::Backend;

            #[tokio::test]
            async fn embedded() {
                super::$name(Backend::Embedded).await;
            }

            #[tokio::test]
            async fn redis() {
                super::$name(Backend::Redis).await;
            }
        }
    };
}

async fn each_resolution_closes_with_its_reason(backend: Backend) {
    let s = setup(backend, SYNCED).await;
    for (number, resolution, expected) in [
        (1, "Done", "completed"),
        (2, "Won't Do", "not_planned"),
        (3, "Duplicate", "not_planned"),
        // The route's github_state_reasons overrides the default (not_planned).
        (4, "Cannot Reproduce", "completed"),
    ] {
        let (_, key) = opened(&s, number).await;
        let moved = s.jira.move_issue(&key, "Done", Some(resolution), &human());
        assert_eq!(jira_event(&s, &moved).await, Outcome::Done);
        assert_eq!(
            state(&s, number),
            ("closed".to_owned(), Some(expected.to_owned())),
            "{resolution}"
        );
    }
    assert_eq!(patches(&s.github), 4);
    let audited = hookbridge_tests::audit::records(&s.dir.path().join("audit"))
        .iter()
        .filter(|r| r["action"] == "github.issue.closed")
        .count();
    assert_eq!(audited, 4);
}
on_both_backends!(each_resolution_closes_with_its_reason);

async fn back_to_to_do_reopens(backend: Backend) {
    let s = setup(backend, SYNCED).await;
    let (_, key) = opened(&s, 7).await;
    let done = s.jira.move_issue(&key, "Done", Some("Done"), &human());
    assert_eq!(jira_event(&s, &done).await, Outcome::Done);
    assert_eq!(state(&s, 7).0, "closed");
    let back = s.jira.move_issue(&key, "To Do", None, &human());
    assert_eq!(jira_event(&s, &back).await, Outcome::Done);
    assert_eq!(
        state(&s, 7),
        ("open".to_owned(), Some("reopened".to_owned()))
    );
    // To Do → In Progress is no way out of Done: nothing on GitHub.
    let progress = s.jira.move_issue(&key, "In Progress", None, &human());
    assert_eq!(jira_event(&s, &progress).await, Outcome::Done);
    assert_eq!(patches(&s.github), 2);
}
on_both_backends!(back_to_to_do_reopens);

async fn a_redelivered_webhook_changes_nothing_more(backend: Backend) {
    let s = setup(backend, SYNCED).await;
    let (_, key) = opened(&s, 8).await;
    let done = s.jira.move_issue(&key, "Done", Some("Won't Do"), &human());
    assert_eq!(jira_event(&s, &done).await, Outcome::Done);
    // Jira's retry of the same delivery, and the same event under another delivery id.
    assert_eq!(jira_event(&s, &done).await, Outcome::Done);
    let mut replay = done.clone();
    replay.identifier = uuid::Uuid::new_v4().to_string();
    assert_eq!(jira_event(&s, &replay).await, Outcome::Done);
    assert_eq!(patches(&s.github), 1);
    let comment = s.jira.comment_as(&key, "Closing: out of scope.", &human());
    for _ in 0..2 {
        assert_eq!(jira_event(&s, &comment).await, Outcome::Done);
    }
    let mut replay = comment.clone();
    replay.identifier = uuid::Uuid::new_v4().to_string();
    assert_eq!(jira_event(&s, &replay).await, Outcome::Done);
    assert_eq!(s.github.comments(REPO, 8).len(), 1);
}
on_both_backends!(a_redelivered_webhook_changes_nothing_more);

async fn a_human_jira_comment_becomes_one_github_comment(backend: Backend) {
    let s = setup(backend, SYNCED).await;
    let (_, key) = opened(&s, 9).await;
    let comment = s
        .jira
        .comment_as(&key, "Reproduced on staging.\nSee the logs.", &human());
    assert_eq!(jira_event(&s, &comment).await, Outcome::Done);
    let comments = s.github.comments(REPO, 9);
    assert_eq!(comments.len(), 1);
    let body = &comments[0].body;
    assert!(body.contains("**Ann Lee**"), "{body}");
    let id = comment.payload()["comment"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    assert!(
        body.contains(&format!("/browse/{key}?focusedCommentId={id}")),
        "{body}"
    );
    assert!(body.contains("> Reproduced on staging."), "{body}");
    assert!(
        body.trim_end()
            .ends_with(&format!("<!-- hookbridge:jira-comment {key}/{id} -->")),
        "{body}"
    );
}
on_both_backends!(a_human_jira_comment_becomes_one_github_comment);

async fn the_bridges_own_jira_comments_go_nowhere(backend: Backend) {
    let s = setup(backend, SYNCED).await;
    let (issue, key) = opened(&s, 10).await;
    // A GitHub comment mirrored into Jira by the bridge (it carries the bridge's marker)…
    let github_comment = envelope(
        "issue_comment",
        &delivery_id(),
        &issue.comment(555, "octocat", "Looks like a race."),
    );
    assert_eq!(deliver(&s.pipeline, &github_comment).await, Outcome::Done);
    let mirrored = twin(&s.jira, &issue).comments.len() - 1;
    // …comes back as comment_created: marked, and by the bridge's account.
    let echo = s
        .jira
        .comment_created_for(&key, mirrored, &s.jira.bridge_user());
    assert_eq!(jira_event(&s, &echo).await, Outcome::Done);
    // The marker alone is enough (whoever Jira names as the author)…
    let by_someone = s.jira.comment_created_for(&key, mirrored, &human());
    assert_eq!(jira_event(&s, &by_someone).await, Outcome::Done);
    // …and so is the bridge's account alone.
    let plain = s
        .jira
        .comment_as(&key, "no marker here", &s.jira.bridge_user());
    assert_eq!(jira_event(&s, &plain).await, Outcome::Done);
    assert!(s.github.comments(REPO, 10).is_empty());
    assert!(s.github.requests().iter().all(|r| r.method != "POST"));
}
on_both_backends!(the_bridges_own_jira_comments_go_nowhere);

async fn a_comment_round_trip_never_echoes(backend: Backend) {
    let s = setup(backend, SYNCED).await;
    // GitHub issue opened → Jira issue.
    let (issue, key) = opened(&s, 11).await;
    let before = twin(&s.jira, &issue).comments.len();
    // Jira human comment → GitHub comment.
    let comment = s.jira.comment_as(&key, "Can you attach a trace?", &human());
    assert_eq!(jira_event(&s, &comment).await, Outcome::Done);
    assert_eq!(s.github.comments(REPO, 11).len(), 1);
    // Its issue_comment webhook (sender: the bridge's login) → nothing new in Jira.
    assert_eq!(github_echoes(&s).await, 1);
    assert_eq!(twin(&s.jira, &issue).comments.len(), before + 1);
    // Even with another sender, the marker keeps it out of Jira.
    let posted = s.github.comments(REPO, 11).remove(0);
    let mut payload = issue.comment(posted.id, "someone-else", &posted.body);
    payload["sender"]["login"] = "someone-else".into();
    let body = envelope("issue_comment", &delivery_id(), &payload);
    assert_eq!(deliver(&s.pipeline, &body).await, Outcome::Done);
    assert_eq!(twin(&s.jira, &issue).comments.len(), before + 1);
}
on_both_backends!(a_comment_round_trip_never_echoes);

async fn a_close_round_trip_never_echoes(backend: Backend) {
    let s = setup(backend, SYNCED).await;
    let (issue, key) = opened(&s, 12).await;
    // A person closes the issue on GitHub: GitHub → Jira transitions the twin to Done.
    s.github.add_issue(
        REPO,
        RepoIssue::new(
            12,
            &issue.title,
            &issue.body,
            "closed",
            &[],
            false,
            Duration::ZERO,
        ),
    );
    let mut closed = issue.event("closed");
    closed["issue"]["state"] = "closed".into();
    closed["issue"]["state_reason"] = "completed".into();
    let body = envelope("issues", &delivery_id(), &closed);
    assert_eq!(deliver(&s.pipeline, &body).await, Outcome::Done);
    assert_eq!(twin(&s.jira, &issue).status, "Done");
    // The jira:issue_updated that transition causes (actor: the bridge) → not even a GitHub read.
    let asked = s.github.requests().len();
    let echo = s
        .jira
        .issue_updated_by(&key, "To Do", &s.jira.bridge_user());
    assert_eq!(jira_event(&s, &echo).await, Outcome::Done);
    assert_eq!(s.github.requests().len(), asked);
    assert_eq!(patches(&s.github), 0);
    // The other way: Jira Done → GitHub closed; GitHub's issues.closed (sender: the bridge) →
    // nothing in Jira (no comment standing in for a transition the twin no longer offers).
    let (issue, key) = opened(&s, 13).await;
    let done = s.jira.move_issue(&key, "Done", Some("Done"), &human());
    assert_eq!(jira_event(&s, &done).await, Outcome::Done);
    assert_eq!(patches(&s.github), 1);
    let comments = twin(&s.jira, &issue).comments.len();
    assert_eq!(github_echoes(&s).await, 1);
    assert_eq!(twin(&s.jira, &issue).comments.len(), comments);
    assert_eq!(twin(&s.jira, &issue).status, "Done");
}
on_both_backends!(a_close_round_trip_never_echoes);

async fn a_route_without_sync_from_jira_does_nothing(backend: Backend) {
    let s = setup(backend, NOT_SYNCED).await;
    let (_, key) = opened(&s, 14).await;
    let done = s.jira.move_issue(&key, "Done", Some("Done"), &human());
    assert_eq!(jira_event(&s, &done).await, Outcome::Done);
    let comment = s.jira.comment_as(&key, "hello", &human());
    assert_eq!(jira_event(&s, &comment).await, Outcome::Done);
    assert_eq!(state(&s, 14).0, "open");
    assert_eq!(patches(&s.github), 0);
    assert!(s.github.comments(REPO, 14).is_empty());
}
on_both_backends!(a_route_without_sync_from_jira_does_nothing);

async fn an_older_mapping_is_found_through_its_remote_link(backend: Backend) {
    let s = setup(backend, SYNCED).await;
    let (_, key) = opened(&s, 15).await;
    assert!(s.store.read(&JiraTwin(&key)).await.expect("read").is_some());
    // A mapping made before the reverse key existed: only the forward mapping and the link.
    let mut tx = Transaction::new();
    tx.delete(&JiraTwin(&key));
    assert!(s.store.commit(&tx).await.expect("commit"));
    let done = s.jira.move_issue(&key, "Done", Some("Won't Do"), &human());
    assert_eq!(jira_event(&s, &done).await, Outcome::Done);
    assert_eq!(
        state(&s, 15),
        ("closed".to_owned(), Some("not_planned".to_owned()))
    );
    let stored = s.store.read(&JiraTwin(&key)).await.expect("read");
    assert_eq!(
        stored.map(|t| (t.repository, t.number)),
        Some((REPO.to_owned(), 15))
    );
}
on_both_backends!(an_older_mapping_is_found_through_its_remote_link);

/// A Jira issue that is nobody's twin (no reverse key, and its link is not confirmed by a forward
/// mapping) is left alone.
#[tokio::test]
async fn an_issue_that_is_no_twin_is_left_alone() {
    let s = setup(Backend::Embedded, SYNCED).await;
    let (_, key) = opened(&s, 16).await;
    let mut tx = Transaction::new();
    tx.delete(&JiraTwin(&key));
    tx.delete(&IssueMapping(&IssueIdentity::new(REPO, 16)));
    assert!(s.store.commit(&tx).await.expect("commit"));
    let done = s.jira.move_issue(&key, "Done", Some("Done"), &human());
    assert_eq!(jira_event(&s, &done).await, Outcome::Done);
    assert_eq!(patches(&s.github), 0);
    assert_eq!(state(&s, 16).0, "open");
}

async fn a_late_older_change_is_not_applied(backend: Backend) {
    let s = setup(backend, SYNCED).await;
    let (_, key) = opened(&s, 17).await;
    let done = s.jira.move_issue(&key, "Done", Some("Done"), &human());
    let back = s.jira.move_issue(&key, "To Do", None, &human());
    // Jira delivers the newer change first, the older one late.
    assert_eq!(jira_event(&s, &back).await, Outcome::Done);
    assert_eq!(jira_event(&s, &done).await, Outcome::Done);
    assert_eq!(state(&s, 17).0, "open");
    assert_eq!(patches(&s.github), 0);
}
on_both_backends!(a_late_older_change_is_not_applied);

/// A route with `sync_from_jira` and no GitHub credentials stops the worker at start, naming the
/// key.
#[tokio::test]
async fn the_worker_refuses_sync_from_jira_without_github_credentials() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("hookbridge.toml");
    std::fs::write(&config, SYNCED).expect("config");
    let data = dir.path().join("data").display().to_string();
    let (status, output) = hookbridge_tests::process::run_to_end(
        "hookbridge-worker",
        &["--config", &config.display().to_string()],
        &[("HOOKBRIDGE_DATA_DIR", data)],
        Duration::from_secs(30),
    )
    .await;
    let text = output.join("\n");
    assert_eq!(status.code(), Some(2), "{text}");
    assert!(text.contains("GITHUB_TOKEN"), "{text}");
    assert!(text.contains("routes[0] (api)"), "{text}");
}

/// As the GitHub App: the installation is found with the App's JWT, the writes are made with an
/// installation token and show as `<slug>[bot]`, and their webhooks come back to nothing.
async fn as_the_github_app(backend: Backend) {
    let s = setup_as(backend, SYNCED, true).await;
    let (issue, key) = opened(&s, 18).await;
    let comment = s.jira.comment_as(&key, "Seen on staging.", &human());
    assert_eq!(jira_event(&s, &comment).await, Outcome::Done);
    let done = s.jira.move_issue(&key, "Done", Some("Won't Do"), &human());
    assert_eq!(jira_event(&s, &done).await, Outcome::Done);
    assert_eq!(
        state(&s, 18),
        ("closed".to_owned(), Some("not_planned".to_owned()))
    );
    let comments = s.github.comments(REPO, 18);
    assert_eq!(comments.len(), 1);
    assert_eq!(comments[0].user, format!("{APP_SLUG}[bot]"));
    let jira_comments = twin(&s.jira, &issue).comments.len();
    assert_eq!(github_echoes(&s).await, 2);
    assert_eq!(twin(&s.jira, &issue).comments.len(), jira_comments);
    assert_eq!(twin(&s.jira, &issue).status, "Done");
    let asked = s.github.requests();
    assert!(
        asked
            .iter()
            .any(|r| r.target == format!("/repos/{REPO}/installation") && r.status == 200)
    );
    assert!(
        asked
            .iter()
            .filter(|r| r.target.starts_with(&format!("/repos/{REPO}/issues/")))
            .all(|r| r
                .authorization
                .as_deref()
                .is_some_and(|a| a.starts_with("Bearer ghs_")))
    );
}
on_both_backends!(as_the_github_app);

/// The worker as a process with the sync on: it asks GitHub who the token belongs to at start
/// and says so; a token GitHub refuses stops it, naming `GITHUB_TOKEN` and never printing it.
#[tokio::test]
async fn the_worker_learns_its_github_login_at_start() {
    let jira = JiraFake::start(FakeConfig::default()).await;
    let github = GithubFake::start(GithubConfig::default()).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("hookbridge.toml");
    std::fs::write(&config, SYNCED).expect("config");
    let common: Vec<(&'static str, String)> = vec![
        ("HOOKBRIDGE_CONFIG", config.display().to_string()),
        ("JIRA_BASE_URL", jira.base_url()),
        ("JIRA_EMAIL", jira.email()),
        ("JIRA_API_TOKEN", jira.token()),
        ("GITHUB_API_URL", github.api_url()),
    ];
    let mut env = common.clone();
    env.push((
        "HOOKBRIDGE_DATA_DIR",
        dir.path().join("data").display().to_string(),
    ));
    env.push(("GITHUB_TOKEN", github.token()));
    let started = tokio::task::spawn_blocking(move || {
        let mut worker = hookbridge_tests::process::Proc::spawn("hookbridge-worker", &[], &env);
        let line = worker.wait_for_line("Jira → GitHub sync on", Duration::from_secs(30));
        worker.terminate();
        worker.wait_exit(Duration::from_secs(30));
        line
    });
    let line = started.await.expect("join");
    assert!(line.contains("hookbridge-bot"), "{line}");
    let refused = "ghp_refusedREFUSEDrefused0123456789";
    let mut env = common;
    env.push((
        "HOOKBRIDGE_DATA_DIR",
        dir.path().join("data2").display().to_string(),
    ));
    env.push(("GITHUB_TOKEN", refused.to_owned()));
    let (status, output) = hookbridge_tests::process::run_to_end(
        "hookbridge-worker",
        &[],
        &env,
        Duration::from_secs(30),
    )
    .await;
    let text = output.join("\n");
    assert_eq!(status.code(), Some(2), "{text}");
    assert!(text.contains("GITHUB_TOKEN"), "{text}");
    assert!(!text.contains(refused), "the token was printed: {text}");
}

/// Every audit record of `dir` whose delivery is `id`.
fn audited(dir: &std::path::Path, id: &str) -> Vec<serde_json::Value> {
    hookbridge_tests::audit::records(dir)
        .into_iter()
        .filter(|r| r["ids"]["delivery"] == id)
        .collect()
}

/// The whole loop through `hookbridge run` (ingest + worker), signed webhooks in: GitHub issue
/// opened → Jira twin; a person comments and resolves it in Jira → one GitHub comment, the issue
/// closed as not planned; the webhooks GitHub sends for those writes come back in → nothing new
/// in Jira.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_round_trip_through_hookbridge_run_never_echoes() {
    const GITHUB_SECRET: &str = "github-webhook-s3cret-for-j2g";
    const JIRA_SECRET: &str = "jira-webhook-s3cret-for-j2g";
    let jira = JiraFake::start(FakeConfig::default()).await;
    let github = GithubFake::start(GithubConfig::default()).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("hookbridge.toml");
    std::fs::write(&config, SYNCED).expect("config");
    let issue = GithubIssue::new(REPO, 21);
    github.add_issue(
        REPO,
        RepoIssue::new(
            21,
            &issue.title,
            &issue.body,
            "open",
            &[],
            false,
            Duration::ZERO,
        ),
    );
    let env: Vec<(&str, String)> = vec![
        (
            "HOOKBRIDGE_DATA_DIR",
            dir.path().join("data").display().to_string(),
        ),
        ("HOOKBRIDGE_BIND", "127.0.0.1:0".to_owned()),
        ("HOOKBRIDGE_CONFIG", config.display().to_string()),
        ("JIRA_BASE_URL", jira.base_url()),
        ("JIRA_EMAIL", jira.email()),
        ("JIRA_API_TOKEN", jira.token()),
        ("JIRA_RATE_LIMIT", "100".to_owned()),
        ("GITHUB_API_URL", github.api_url()),
        ("GITHUB_TOKEN", github.token()),
        ("GITHUB_WEBHOOK_SECRET", GITHUB_SECRET.to_owned()),
        ("JIRA_WEBHOOK_SECRET", JIRA_SECRET.to_owned()),
    ];
    let (mut run, url) = tokio::task::spawn_blocking(move || {
        let mut run = hookbridge_tests::process::Proc::spawn("hookbridge", &["run"], &env);
        let url = run.wait_listening(Duration::from_secs(60));
        (run, url)
    })
    .await
    .expect("join");
    let audit = dir.path().join("data").join("audit");
    let client = reqwest::Client::new();
    let post_github = |event: &str, payload: &serde_json::Value| {
        let delivery = Delivery::github(event, payload).signed(GITHUB_SECRET);
        let request = delivery.post(&client, &format!("{url}/webhooks/github"));
        (delivery.id.clone(), request)
    };
    let (_, request) = post_github("issues", &issue.event("opened"));
    assert_eq!(request.send().await.expect("post").status(), 202);
    eventually("the Jira twin", Duration::from_secs(30), || async {
        jira.issues().len() == 1
    })
    .await;
    let key = twin(&jira, &issue).key;
    let jira_url = format!("{url}/webhooks/jira");
    for delivery in [
        jira.comment_as(&key, "Not something we will do.", &human()),
        jira.move_issue(&key, "Done", Some("Won't Do"), &human()),
    ] {
        assert_eq!(delivery.post(&client, &jira_url, JIRA_SECRET).await, 202);
    }
    eventually(
        "the GitHub comment and close",
        Duration::from_secs(30),
        || async {
            github.comments(REPO, 21).len() == 1
                && github.issue(REPO, 21).is_some_and(|i| i.state == "closed")
        },
    )
    .await;
    assert_eq!(
        github
            .issue(REPO, 21)
            .and_then(|i| i.state_reason)
            .as_deref(),
        Some("not_planned")
    );
    let comments = twin(&jira, &issue).comments.len();
    let mut echoes = Vec::new();
    for (event, payload) in github.take_webhooks() {
        let (id, request) = post_github(&event, &payload);
        assert_eq!(request.send().await.expect("post").status(), 202);
        echoes.push(id);
    }
    assert_eq!(echoes.len(), 2);
    eventually("the echoes handled", Duration::from_secs(30), || async {
        echoes.iter().all(|id| {
            audited(&audit, id)
                .iter()
                .any(|r| r["action"] == "event.ignored")
        })
    })
    .await;
    assert_eq!(twin(&jira, &issue).comments.len(), comments);
    assert_eq!(twin(&jira, &issue).status, "Done");
    assert_eq!(patches(&github), 1);
    run.terminate();
    tokio::task::spawn_blocking(move || run.wait_exit(Duration::from_secs(30)))
        .await
        .expect("join");
}
