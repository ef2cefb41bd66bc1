//! `hookbridge github backfill` on the real binary against the GitHub and Jira fakes: 120 issues
//! (and a few pull requests) of which 30 were synced already by the worker's webhook path get
//! their 90 missing Jira twins, one per GitHub issue, and a second run creates nothing — on the
//! embedded store and on Redis; `--dry-run` creates and stores nothing; `--state open` (the
//! default) leaves closed issues alone and `--state all` takes them; a rate limit that resets two
//! seconds later is waited out; a bad token exits 2 without printing it.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use hookbridge_shared::routing::{JiraProjectKey, Routing};
use hookbridge_tests::github::{delivery_id, envelope};
use hookbridge_tests::github_fake::{GithubConfig, GithubFake, RepoIssue};
use hookbridge_tests::jira_fake::{FakeConfig, JiraFake};
use hookbridge_tests::process::run_to_end;
use hookbridge_tests::services::store_env;
use hookbridge_tests::worker::{Parts, router};
use hookbridge_worker::audit::AuditLog;
use hookbridge_worker::events::github::IssueIdentity;
use hookbridge_worker::github_sync::marker_label;
use hookbridge_worker::handler::Outcome;
use hookbridge_worker::jira::JiraClient;
use hookbridge_worker::jira::ops::JiraOps;
use hookbridge_worker::store::Store;
use hookbridge_worker::store::keys::IssueMapping;
use reqwest::Method;
use serde_json::Value;

const REPO: &str = "acme/api";
const TIMEOUT: Duration = Duration::from_secs(120);

/// Issues 1..=`count` (every 31st number a pull request, as GitHub numbers both alike), created
/// in number order; `closed` numbers are closed.
fn add_issues(fake: &GithubFake, count: u64, closed: &[u64]) {
    for n in 1..=count {
        let pull = n % 31 == 0;
        let state = if closed.contains(&n) {
            "closed"
        } else {
            "open"
        };
        let labels: &[&str] = if n % 3 == 0 { &["bug"] } else { &[] };
        fake.add_issue(
            REPO,
            RepoIssue::new(
                n,
                &format!("Issue number {n}"),
                &format!("Body of **{n}**"),
                state,
                labels,
                pull,
                Duration::from_secs(10 * 86_400 - n * 60),
            ),
        );
    }
}

fn env(
    github: &GithubFake,
    jira: &JiraFake,
    data: &Path,
    store: &[(&'static str, String)],
) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("HOOKBRIDGE_DATA_DIR", data.display().to_string()),
        ("GITHUB_API_URL", github.api_url()),
        ("GITHUB_TOKEN", github.token()),
        ("JIRA_BASE_URL", jira.base_url()),
        ("JIRA_EMAIL", jira.email()),
        ("JIRA_API_TOKEN", jira.token()),
        ("JIRA_PROJECT_KEY", "DEMO".to_owned()),
        ("JIRA_RATE_LIMIT", "500".to_owned()),
    ];
    env.extend_from_slice(store);
    env
}

async fn backfill(extra: &[&str], env: &[(&str, String)]) -> (ExitStatus, Vec<String>) {
    let mut args = vec!["github", "backfill", "--repo", REPO];
    args.extend_from_slice(extra);
    run_to_end("hookbridge", &args, env, TIMEOUT).await
}

/// The `--json` summary among the lines printed (log lines are JSON objects too).
fn summary(output: &[String]) -> Value {
    output
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v.get("listed").is_some())
        .unwrap_or_else(|| panic!("no JSON summary: {output:#?}"))
}

/// The store the binary opens with `store_env` in `data`.
async fn open_store(data: &Path, store_env: &[(&'static str, String)]) -> Store {
    let get = |k: &str| {
        store_env
            .iter()
            .find(|(key, _)| *key == k)
            .map(|(_, v)| v.clone())
    };
    match get("REDIS_URL") {
        Some(url) => Store::connect_redis(&url, &get("HOOKBRIDGE_REDIS_PREFIX").expect("prefix"))
            .await
            .expect("test Redis"),
        None => Store::open_embedded(&data.join("store.db")).expect("embedded store"),
    }
}

/// Syncs issues `numbers` the way the worker does a webhook: their `issues.opened` deliveries
/// (GitHub-style delivery ids, nothing to do with the backfill's) through the worker's router, on
/// the store the binary will use.
async fn sync_by_webhook(github: &GithubFake, jira: &JiraFake, store: Store, numbers: &[u64]) {
    let dir = tempfile::tempdir().expect("tempdir");
    let client = JiraClient::with_store(&jira.settings(500.0), Some(store.clone())).expect("jira");
    let audit = AuditLog::open(&dir.path().join("audit"), "test", None);
    let mut parts = Parts::new(
        store,
        JiraOps::live(client, audit.clone()),
        audit,
        dir.path(),
    );
    parts.routing = Routing {
        rules: Vec::new(),
        default_project: Some(JiraProjectKey::parse("DEMO").expect("key")),
        default_issue_type: "Task".to_owned(),
    };
    let (pipeline, _) = router(parts);
    for &n in numbers {
        let issue = github.issue_json(REPO, n).expect("the issue");
        let payload = serde_json::json!({
            "action": "opened",
            "issue": issue,
            "repository": {"full_name": REPO},
            "sender": issue["user"],
        });
        let body = envelope("issues", &delivery_id(), &payload);
        assert_eq!(pipeline.handle_body(&body).await, Outcome::Done, "#{n}");
    }
}

/// GitHub issue number → how many Jira issues carry its marker label.
fn twins(jira: &JiraFake, count: u64) -> BTreeMap<u64, usize> {
    let issues = jira.issues();
    (1..=count)
        .map(|n| {
            let marker = marker_label(&IssueIdentity::new(REPO, n));
            (
                n,
                issues.iter().filter(|i| i.labels.contains(&marker)).count(),
            )
        })
        .collect()
}

async fn backfill_creates_the_missing_issues_once(redis: bool) {
    let github = GithubFake::start(GithubConfig::default()).await;
    add_issues(&github, 124, &[]);
    let jira = JiraFake::start(FakeConfig::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let store_env = store_env(redis, "hbbf");
    let pre_synced: Vec<u64> = (1..=31).filter(|n| n % 31 != 0).collect();
    assert_eq!(pre_synced.len(), 30);
    sync_by_webhook(
        &github,
        &jira,
        open_store(dir.path(), &store_env).await,
        &pre_synced,
    )
    .await;
    assert_eq!(jira.count_issues(), 30);
    let env = env(&github, &jira, dir.path(), &store_env);

    let started = Instant::now();
    let (status, output) = backfill(&[], &env).await;
    println!("first run: {:?}", started.elapsed());
    assert_eq!(status.code(), Some(0), "{output:#?}");
    assert!(
        output.iter().any(|l| l
            == "backfill acme/api: 124 listed, 90 created, 30 already synced, 4 skipped (0 no \
                route, 4 pull requests), 0 failed"),
        "{output:#?}"
    );
    assert!(
        output
            .iter()
            .any(|l| l.starts_with("#32  Issue number 32  created DEMO-")),
        "{output:#?}"
    );
    // Every GitHub issue has exactly one Jira issue; the pull requests none.
    let counts = twins(&jira, 124);
    for (n, count) in &counts {
        let expected = usize::from(n % 31 != 0);
        assert_eq!(*count, expected, "#{n}: {counts:?}");
    }
    assert_eq!(jira.count_issues(), 120);
    // Each page asked in creation order, 100 at a time, and the next one through the Link header.
    let lists: Vec<_> = github
        .requests()
        .into_iter()
        .filter(|r| r.target.starts_with("/repos/acme/api/issues"))
        .collect();
    assert_eq!(lists.len(), 2, "{lists:#?}");
    for needle in [
        "state=open",
        "per_page=100",
        "sort=created",
        "direction=asc",
    ] {
        assert!(lists[0].target.contains(needle), "{lists:#?}");
    }
    assert!(lists[1].target.contains("page=2"), "{lists:#?}");
    // The run's summary is audited.
    let audited = std::fs::read_dir(dir.path().join("audit"))
        .expect("the audit trail")
        .filter_map(|e| std::fs::read_to_string(e.expect("entry").path()).ok())
        .any(|text| text.contains("\"github.backfill\""));
    assert!(audited, "no github.backfill audit entry");

    let (status, output) = backfill(&["--json"], &env).await;
    assert_eq!(status.code(), Some(0), "{output:#?}");
    let second = summary(&output);
    assert_eq!(second["created"], 0, "{second}");
    assert_eq!(second["already_synced"], 120, "{second}");
    assert_eq!(second["skipped"]["pull_requests"], 4, "{second}");
    assert_eq!(second["failed"], 0, "{second}");
    assert_eq!(jira.count_issues(), 120);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_creates_the_missing_issues_once_on_the_embedded_store() {
    backfill_creates_the_missing_issues_once(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_creates_the_missing_issues_once_on_redis() {
    backfill_creates_the_missing_issues_once(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_creates_nothing_and_stores_nothing() {
    let github = GithubFake::start(GithubConfig::default()).await;
    add_issues(&github, 12, &[]);
    let jira = JiraFake::start(FakeConfig::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let env = env(&github, &jira, dir.path(), &[]);

    let (status, output) = backfill(&["--dry-run", "--json"], &env).await;
    assert_eq!(status.code(), Some(0), "{output:#?}");
    let out = summary(&output);
    assert_eq!(out["would_create"], 12, "{out}");
    assert_eq!(out["created"], 0, "{out}");
    assert_eq!(jira.count_issues(), 0);
    assert!(
        jira.request_log().iter().all(|r| r.method == "GET"),
        "{:#?}",
        jira.request_log()
    );
    let store = open_store(dir.path(), &[]).await;
    for n in 1..=12 {
        let identity = IssueIdentity::new(REPO, n);
        assert!(
            store
                .read(&IssueMapping(&identity))
                .await
                .expect("read")
                .is_none()
        );
        let delivery = format!("backfill-acme-api-{n}");
        assert!(!store.is_done(&delivery).await.expect("read"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_open_leaves_closed_issues_and_all_takes_them() {
    let github = GithubFake::start(GithubConfig::default()).await;
    add_issues(&github, 8, &[2, 5, 7]);
    let jira = JiraFake::start(FakeConfig::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let env = env(&github, &jira, dir.path(), &[]);

    let (status, output) = backfill(&["--json"], &env).await;
    assert_eq!(status.code(), Some(0), "{output:#?}");
    let out = summary(&output);
    assert_eq!(out["listed"], 5, "{out}");
    assert_eq!(out["created"], 5, "{out}");
    let counts = twins(&jira, 8);
    assert_eq!(
        counts.values().copied().collect::<Vec<_>>(),
        [1, 0, 1, 1, 0, 1, 0, 1],
        "{counts:?}"
    );

    // --since after every issue's last update lists nothing.
    let tomorrow = (chrono::Utc::now() + chrono::Duration::days(1))
        .format("%Y-%m-%d")
        .to_string();
    let (status, output) = backfill(&["--json", "--since", &tomorrow], &env).await;
    assert_eq!(status.code(), Some(0), "{output:#?}");
    assert_eq!(summary(&output)["listed"], 0);

    let (status, output) = backfill(&["--json", "--state", "all"], &env).await;
    assert_eq!(status.code(), Some(0), "{output:#?}");
    let out = summary(&output);
    assert_eq!(out["created"], 3, "{out}");
    assert_eq!(out["already_synced"], 5, "{out}");
    assert!(twins(&jira, 8).values().all(|c| *c == 1));

    // No route: nothing is created, and nothing is marked done that would keep a later run with
    // a route from syncing the issue.
    github.add_issue(
        REPO,
        RepoIssue::new(9, "Late", "", "open", &[], false, Duration::ZERO),
    );
    let mut no_route = env.clone();
    no_route.retain(|(k, _)| *k != "JIRA_PROJECT_KEY");
    let (status, output) = backfill(&["--json"], &no_route).await;
    assert_eq!(status.code(), Some(0), "{output:#?}");
    let out = summary(&output);
    assert_eq!(out["skipped"]["no_route"], 1, "{out}");
    assert_eq!(out["already_synced"], 5, "{out}");
    assert_eq!(jira.count_issues(), 8);
    let (status, output) = backfill(&["--json"], &env).await;
    assert_eq!(status.code(), Some(0), "{output:#?}");
    assert_eq!(summary(&output)["created"], 1);
    assert_eq!(twins(&jira, 9)[&9], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limit_that_resets_soon_is_waited_out() {
    let github = GithubFake::start(GithubConfig::default()).await;
    add_issues(&github, 3, &[]);
    let jira = JiraFake::start(FakeConfig::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let env = env(&github, &jira, dir.path(), &[]);
    github.exhaust_rate_limit(Duration::from_secs(2));

    let started = Instant::now();
    let (status, output) = backfill(&["--json"], &env).await;
    assert_eq!(status.code(), Some(0), "{output:#?}");
    assert!(started.elapsed() >= Duration::from_millis(1500));
    assert!(
        output
            .iter()
            .any(|l| l.contains("GitHub's rate limit: waiting")),
        "{output:#?}"
    );
    assert_eq!(summary(&output)["created"], 3);
    assert!(github.requests().iter().any(|r| r.status == 403));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_token_or_repo_exits_2_without_printing_the_token() {
    let github = GithubFake::start(GithubConfig::default()).await;
    add_issues(&github, 3, &[]);
    let jira = JiraFake::start(FakeConfig::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut env = env(&github, &jira, dir.path(), &[]);
    let bad = "ghp_wrongWRONGwrongWRONGwrong0123456789";
    env.retain(|(k, _)| *k != "GITHUB_TOKEN");
    env.push(("GITHUB_TOKEN", bad.to_owned()));

    let (status, output) = backfill(&[], &env).await;
    assert_eq!(status.code(), Some(2), "{output:#?}");
    assert!(!output.iter().any(|l| l.contains(bad)), "{output:#?}");
    assert!(
        output.iter().any(|l| l.contains("Issues")),
        "says what the token needs: {output:#?}"
    );
    assert_eq!(jira.count_issues(), 0);

    env.retain(|(k, _)| *k != "GITHUB_TOKEN");
    let (status, output) = backfill(&[], &env).await;
    assert_eq!(status.code(), Some(2), "{output:#?}");
    assert!(
        output.iter().any(|l| l.contains("GITHUB_TOKEN")),
        "{output:#?}"
    );

    env.push(("GITHUB_TOKEN", github.token()));
    let (status, output) = run_to_end(
        "hookbridge",
        &["github", "backfill", "--repo", "acme"],
        &env,
        TIMEOUT,
    )
    .await;
    assert_eq!(status.code(), Some(2), "{output:#?}");
    assert_eq!(jira.count_issues(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_issues_exit_1_naming_them_and_the_next_run_creates_them() {
    let github = GithubFake::start(GithubConfig::default()).await;
    add_issues(&github, 6, &[]);
    let jira = JiraFake::start(FakeConfig::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let env = env(&github, &jira, dir.path(), &[]);
    // The first two creates (#1 and #2, in creation order) are refused for good.
    jira.fail_next(Method::POST, "/rest/api/3/issue", 400, None, 2);

    let (status, output) = backfill(&[], &env).await;
    assert_eq!(status.code(), Some(1), "{output:#?}");
    assert!(
        output.iter().any(|l| l
            == "backfill acme/api: 6 listed, 4 created, 0 already synced, 0 skipped (0 no \
                route, 0 pull requests), 2 failed"),
        "{output:#?}"
    );
    assert!(
        output
            .iter()
            .any(|l| l.starts_with("#1  Issue number 1  failed: ")),
        "{output:#?}"
    );
    assert!(
        output
            .iter()
            .any(|l| l.contains("2 issue(s) failed to sync (#1, #2)")),
        "{output:#?}"
    );
    assert_eq!(jira.count_issues(), 4);

    let (status, output) = backfill(&["--json"], &env).await;
    assert_eq!(status.code(), Some(0), "{output:#?}");
    let out = summary(&output);
    assert_eq!(out["created"], 2, "{out}");
    assert_eq!(out["already_synced"], 4, "{out}");
    assert!(twins(&jira, 6).values().all(|c| *c == 1));
}

/// A run killed while Jira had created an issue but not yet answered: the next run finds the
/// creation intent, waits out the search lag, finds the issue by its marker and does not create
/// it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_killed_mid_create_is_resumed_without_duplicates() {
    let github = GithubFake::start(GithubConfig::default()).await;
    add_issues(&github, 10, &[]);
    let jira = JiraFake::start(FakeConfig::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut env = env(&github, &jira, dir.path(), &[]);
    env.push(("HOOKBRIDGE_JIRA_SEARCH_LAG", "1".to_owned()));
    env.push(("HOOKBRIDGE_LOCK_TTL", "2".to_owned()));
    jira.stall_next(Method::POST, "/rest/api/3/issue", Duration::from_secs(60));

    let mut proc = hookbridge_tests::process::Proc::spawn(
        "hookbridge",
        &["github", "backfill", "--repo", REPO],
        &env,
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while jira.count_issues() == 0 {
        assert!(Instant::now() < deadline, "no create: {:#?}", proc.output());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    proc.kill9();
    assert_eq!(jira.count_issues(), 1);

    let (status, output) = backfill(&["--json"], &env).await;
    assert_eq!(status.code(), Some(0), "{output:#?}");
    let out = summary(&output);
    assert_eq!(out["failed"], 0, "{out}");
    assert_eq!(jira.count_issues(), 10, "{out}");
    assert!(twins(&jira, 10).values().all(|c| *c == 1), "{out}");
}
