//! A systemic Jira failure is not a poison message (README, "Reliability"): credentials Jira
//! refuses stop the worker at start; a token revoked mid-run (or a Jira that cannot be reached)
//! pauses the worker — no event dead-lettered, one Slack alert, `hookbridge_jira_up` 0 — and it
//! resumes by itself when the credentials work again, every event processed once.

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use hookbridge_shared::queue::embedded::{EmbeddedOptions, EmbeddedQueue};
use hookbridge_tests::github::{GithubIssue, delivery_id, envelope};
use hookbridge_tests::jira_fake::{FakeConfig, JiraFake};
use hookbridge_tests::metrics::{sample, scrape};
use hookbridge_tests::process::Proc;
use hookbridge_tests::slack_fake::{SlackConfig, SlackFake};
use hookbridge_tests::wait::eventually;
use serde_json::Value;

const PATIENCE: Duration = Duration::from_secs(60);

fn env(jira: &JiraFake, token: &str, dir: &Path, slack: &str) -> Vec<(&'static str, String)> {
    vec![
        ("HOOKBRIDGE_DATA_DIR", dir.display().to_string()),
        ("JIRA_BASE_URL", jira.base_url()),
        ("JIRA_EMAIL", jira.email()),
        ("JIRA_API_TOKEN", token.to_owned()),
        ("JIRA_PROJECT_KEY", "DEMO".into()),
        ("HOOKBRIDGE_MAX_RECEIVE_COUNT", "2".into()),
        ("HOOKBRIDGE_VISIBILITY_TIMEOUT", "2".into()),
        ("SLACK_WEBHOOK_URL", slack.to_owned()),
        ("WORKER_METRICS_BIND", "127.0.0.1:0".into()),
    ]
}

async fn send(queue: &EmbeddedQueue, number: u64) {
    let issue = GithubIssue::new("octo/outage", number);
    let body = envelope("issues", &delivery_id(), &issue.event("opened"));
    queue.send(Bytes::from(body)).await.expect("send");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_credentials_stop_the_worker_at_start() {
    let jira = JiraFake::start(FakeConfig::default()).await;
    let slack = SlackFake::start(SlackConfig::default()).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let vars = env(&jira, "not-the-token", dir.path(), &slack.url());
    let mut worker = Proc::spawn("hookbridge-worker", &[], &vars);
    let status = worker.wait_exit(PATIENCE);
    let printed = worker.output().join("\n");
    assert_eq!(status.code(), Some(2), "{printed}");
    assert!(
        printed.contains("JIRA_API_TOKEN") && printed.contains("401"),
        "{printed}"
    );
    assert!(!printed.contains("not-the-token"), "the token was printed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_revoked_mid_run_pauses_the_worker_and_it_resumes_by_itself() {
    let jira = JiraFake::start(FakeConfig::default()).await;
    let slack = SlackFake::start(SlackConfig::default()).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let queue =
        EmbeddedQueue::open(EmbeddedOptions::in_dir(dir.path(), "queue.db")).expect("queue");
    let token = jira.token();
    let vars = env(&jira, &token, dir.path(), &slack.url());
    let mut worker = Proc::spawn("hookbridge-worker", &[], &vars);
    let metrics = worker.wait_for("the metrics URL", PATIENCE, |line| {
        let log: Value = serde_json::from_str(line).ok()?;
        let url = log["fields"]["url"].as_str().or(log["url"].as_str())?;
        Some(format!("{url}/metrics"))
    });
    for n in 1..=2 {
        send(&queue, n).await;
    }
    eventually("the first two issues", PATIENCE, || async {
        jira.count_issues() == 2
    })
    .await;

    // The token is revoked: every request now gets 401.
    jira.set_token("rotated-token-nobody-told-the-worker");
    for n in 3..=7 {
        send(&queue, n).await;
    }
    eventually("the worker to notice", PATIENCE, || async {
        sample(&scrape(&metrics).await, "hookbridge_jira_up") == Some(0.0)
    })
    .await;
    eventually("one Slack alert", PATIENCE, || async {
        slack.messages().len() == 1
    })
    .await;
    // Long enough for every message to have been received HOOKBRIDGE_MAX_RECEIVE_COUNT times,
    // were the worker still taking them.
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert!(
        queue.dead_letters(10).await.expect("dlq").is_empty(),
        "a systemic failure dead-lettered events"
    );
    assert_eq!(jira.count_issues(), 2);
    let alert = slack.messages()[0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(alert.contains("Jira") && alert.contains("401"), "{alert}");

    // The administrator puts the old token back: the worker resumes without a restart.
    jira.set_token(&token);
    eventually("every issue", PATIENCE, || async {
        jira.count_issues() == 7
    })
    .await;
    eventually("the queue to drain", PATIENCE, || async {
        queue.depth().await.unwrap_or(1) == 0
    })
    .await;
    assert_eq!(
        sample(&scrape(&metrics).await, "hookbridge_jira_up"),
        Some(1.0)
    );
    assert!(queue.dead_letters(10).await.expect("dlq").is_empty());
    assert_eq!(slack.messages().len(), 1, "one alert per outage");
    let records = hookbridge_tests::audit::records(&dir.path().join("audit"));
    for action in ["jira.unavailable", "jira.available"] {
        assert!(records.iter().any(|r| r["action"] == action), "no {action}");
    }
    worker.terminate();
    assert!(worker.wait_exit(PATIENCE).success());
}
