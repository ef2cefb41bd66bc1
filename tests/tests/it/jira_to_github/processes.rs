//! The worker as a process with the sync on: refused without GitHub credentials, its GitHub
//! login learned at start, and acting as the GitHub App.

use super::*;

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
