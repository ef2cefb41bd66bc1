//! What the bridge writes on one side never comes back as a new effect on the other: comment and
//! close round trips message by message, and the whole loop through `hookbridge run`.

use super::*;

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
    // The twin with its remote link (created by a second Jira call, after the issue).
    eventually("the Jira twin", Duration::from_secs(30), || async {
        jira.issues().iter().any(|i| {
            i.remote_links
                .iter()
                .any(|(_, link, _)| *link == issue.html_url())
        })
    })
    .await;
    assert_eq!(jira.issues().len(), 1);
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
