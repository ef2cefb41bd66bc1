//! `hookbridge dlq` on the real binaries, on the embedded queue and on SQS (moto, which lacks
//! `StartMessageMoveTask`, so the portable redrive runs): poison messages (a Jira issue type
//! Jira refuses with 400) end in the dead-letter queue with their error; `list` (and its
//! filters), `show`, `redrive ID`, `redrive --all` and `purge` work; once the cause is fixed, a
//! redrive processes every event exactly once and leaves the DLQ empty; the worker's metrics
//! move; every redrive and purge is audited.

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use hookbridge_shared::queue::Queue;
use hookbridge_shared::queue::embedded::{EmbeddedOptions, EmbeddedQueue};
use hookbridge_shared::queue::sqs::{SqsOptions, SqsQueue};
use hookbridge_tests::github::{GithubIssue, delivery_id, envelope};
use hookbridge_tests::jira_fake::{FakeConfig, JiraFake};
use hookbridge_tests::metrics::{sample, scrape};
use hookbridge_tests::process::Proc;
use hookbridge_tests::wait::eventually;
use serde_json::Value;

const PATIENCE: Duration = Duration::from_secs(60);

/// A backend under test: the queue the test sends to, and the settings the processes get.
struct Backend {
    queue: Queue,
    env: Vec<(&'static str, String)>,
}

/// `max_receive`: the receives before a message is dead-lettered (SQS: the redrive policy's
/// `maxReceiveCount`; the worker is told the same unless a test overrides it).
async fn backend(sqs: bool, dir: &Path, max_receive: u32) -> Backend {
    let redis = std::env::var("HOOKBRIDGE_TEST_REDIS_URL")
        .expect("HOOKBRIDGE_TEST_REDIS_URL: run under scripts/with-test-services.sh (make test)");
    let mut env = vec![
        ("HOOKBRIDGE_DATA_DIR", dir.display().to_string()),
        ("REDIS_URL", redis),
        (
            "HOOKBRIDGE_REDIS_PREFIX",
            format!("hbdlq:{}:", uuid::Uuid::new_v4().simple()),
        ),
        ("HOOKBRIDGE_MAX_RECEIVE_COUNT", max_receive.to_string()),
    ];
    if !sqs {
        let queue = EmbeddedQueue::open(EmbeddedOptions::in_dir(dir, "queue.db")).expect("queue");
        return Backend {
            queue: Queue::Embedded(queue),
            env,
        };
    }
    let endpoint = hookbridge_tests::sqs::endpoint();
    let client = hookbridge_tests::sqs::client_for(&endpoint).await;
    let name = format!("dlq-{}", uuid::Uuid::new_v4().simple());
    let queues =
        hookbridge_tests::sqs::create_queue_with_dlq(&client, &name, max_receive, &[]).await;
    let queue = SqsQueue::connect_with(
        client,
        SqsOptions {
            queue_url: queues.queue_url.clone(),
            dlq_url: None,
        },
    )
    .await
    .expect("connect");
    env.extend([
        ("SQS_QUEUE_URL", queues.queue_url),
        ("AWS_ENDPOINT_URL", endpoint),
        ("AWS_REGION", "us-east-1".to_owned()),
        ("AWS_ACCESS_KEY_ID", "testing".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "testing".to_owned()),
    ]);
    Backend {
        queue: Queue::Sqs(queue),
        env,
    }
}

impl Backend {
    /// A worker whose Jira issue type is `issue_type` (`Epic`: Jira refuses it with 400), its
    /// metrics on a free port; returns it and its metrics URL.
    fn worker(&self, jira: &JiraFake, issue_type: &str) -> (Proc, String) {
        self.worker_with(jira, issue_type, &[])
    }

    fn worker_with(
        &self,
        jira: &JiraFake,
        issue_type: &str,
        extra: &[(&'static str, &str)],
    ) -> (Proc, String) {
        let mut env = self.env.clone();
        env.extend([
            ("JIRA_BASE_URL", jira.base_url()),
            ("JIRA_EMAIL", jira.email()),
            ("JIRA_API_TOKEN", jira.token()),
            ("JIRA_PROJECT_KEY", "DEMO".to_owned()),
            ("JIRA_ISSUE_TYPE", issue_type.to_owned()),
            ("HOOKBRIDGE_VISIBILITY_TIMEOUT", "2".to_owned()),
            ("WORKER_METRICS_BIND", "127.0.0.1:0".to_owned()),
            ("LOG_FORMAT", "json".to_owned()),
        ]);
        for (key, value) in extra {
            env.retain(|(k, _)| k != key);
            env.push((key, (*value).to_owned()));
        }
        let mut worker = Proc::spawn("hookbridge-worker", &[], &env);
        let url = worker.wait_for("the metrics URL", PATIENCE, |line| {
            let log: Value = serde_json::from_str(line).ok()?;
            let url = log["fields"]["url"].as_str().or(log["url"].as_str())?;
            Some(format!("{url}/metrics"))
        });
        (worker, url)
    }

    async fn send(&self, number: u64) -> String {
        let delivery = delivery_id();
        let body = envelope(
            "issues",
            &delivery,
            &GithubIssue::new("octo/dlq", number).event("opened"),
        );
        self.queue.send(Bytes::from(body)).await.expect("send");
        delivery
    }

    async fn hookbridge(&self, args: &[&str]) -> (Option<i32>, Vec<String>) {
        let (exit, output) =
            hookbridge_tests::process::run_to_end("hookbridge", args, &self.env, PATIENCE).await;
        (exit.code(), output)
    }

    async fn list(&self, extra: &[&str]) -> Vec<Value> {
        let mut args = vec!["dlq", "list", "--json"];
        args.extend(extra);
        let (code, output) = self.hookbridge(&args).await;
        assert_eq!(code, Some(0), "{output:?}");
        let line = output
            .iter()
            .find(|l| l.starts_with('['))
            .unwrap_or_else(|| panic!("no JSON list: {output:?}"));
        serde_json::from_str::<Vec<Value>>(line).expect("JSON")
    }

    async fn dead_letter_count(&self) -> usize {
        self.queue.dead_letters(100).await.map_or(0, |d| d.len())
    }
}

async fn dead_letter_tools(sqs: bool) {
    let dir = tempfile::tempdir().expect("temp dir");
    let b = backend(sqs, dir.path(), 3).await;
    let jira = JiraFake::start(FakeConfig::default()).await;
    let mut deliveries = Vec::new();
    for number in 1..=3 {
        deliveries.push(b.send(number).await);
    }
    // Jira has no issue type Epic: a 400, permanent, dead-lettered at the first attempt.
    let (mut worker, metrics) = b.worker(&jira, "Epic");
    eventually("three dead letters", PATIENCE, || async {
        b.dead_letter_count().await == 3
    })
    .await;
    let page = scrape(&metrics).await;
    let series = r#"{event="issues",source="github"}"#;
    for name in [
        "hookbridge_worker_messages_received_total",
        "hookbridge_worker_messages_dead_lettered_total",
    ] {
        assert_eq!(
            sample(&page, &format!("{name}{series}")),
            Some(3.0),
            "{name}:\n{page}"
        );
    }
    assert!(
        sample(
            &page,
            r#"hookbridge_jira_requests_total{endpoint="issue.create",status="400"}"#
        )
        .is_some_and(|n| n >= 3.0),
        "{page}"
    );
    worker.terminate();
    worker.wait_exit(PATIENCE);
    assert_eq!(jira.count_issues(), 0);

    let rows = b.list(&[]).await;
    assert_eq!(rows.len(), 3, "{rows:?}");
    for row in &rows {
        assert_eq!(row["source"], "github");
        assert_eq!(row["event"], "issues");
        assert_eq!(row["action"], "opened");
        assert!(
            deliveries.iter().any(|d| row["delivery"] == d.as_str()),
            "{row}"
        );
        assert!(row["first_seen"].is_string(), "{row}");
        assert!(
            row["receive_count"].as_u64().is_some_and(|n| n >= 1),
            "{row}"
        );
        let error = row["last_error"].as_str().unwrap_or_default();
        assert!(
            error.contains("400") && error.contains("issue type"),
            "{row}"
        );
    }
    assert_eq!(b.list(&["--limit", "1"]).await.len(), 1);
    assert_eq!(b.list(&["--source", "github"]).await.len(), 3);
    assert_eq!(b.list(&["--event", "issue_comment"]).await.len(), 0);
    assert_eq!(b.list(&["--older-than", "1h"]).await.len(), 0);
    let first = rows[0]["id"].as_str().expect("an id").to_owned();
    let (code, output) = b.hookbridge(&["dlq", "show", &first, "--json"]).await;
    assert_eq!(code, Some(0), "{output:?}");
    let shown: Value = serde_json::from_str(
        output
            .iter()
            .find(|l| l.starts_with("{\"action\"") || l.contains("\"envelope\""))
            .expect("JSON"),
    )
    .expect("JSON");
    assert_eq!(shown["envelope"]["delivery"], rows[0]["delivery"]);
    assert!(
        shown["errors"][0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("400")),
        "{shown}"
    );
    let (code, _) = b.hookbridge(&["dlq", "show", "no-such-id"]).await;
    assert_eq!(code, Some(1));
    let (code, _) = b.hookbridge(&["dlq", "redrive", "no-such-id"]).await;
    assert_eq!(code, Some(1));
    let (code, output) = b.hookbridge(&["dlq", "purge"]).await;
    assert_eq!(code, Some(2), "purge needs --yes: {output:?}");

    // The cause fixed: one redriven by id, then the rest; every event reaches Jira once.
    let (mut worker, metrics) = b.worker(&jira, "Task");
    let (code, output) = b.hookbridge(&["dlq", "redrive", &first]).await;
    assert_eq!(code, Some(0), "{output:?}");
    eventually("the redriven event in Jira", PATIENCE, || async {
        jira.count_issues() == 1
    })
    .await;
    let (code, output) = b
        .hookbridge(&["dlq", "redrive", "--all", "--rate", "50"])
        .await;
    assert_eq!(code, Some(0), "{output:?}");
    assert!(
        output.iter().any(|l| l.contains("2 moved back")),
        "a one-line summary: {output:?}"
    );
    eventually("every event in Jira", PATIENCE, || async {
        jira.count_issues() == 3
    })
    .await;
    assert!(b.list(&[]).await.is_empty());
    let page = scrape(&metrics).await;
    assert_eq!(
        sample(
            &page,
            &format!("hookbridge_worker_messages_processed_total{series}")
        ),
        Some(3.0),
        "{page}"
    );
    worker.terminate();
    worker.wait_exit(PATIENCE);
    assert_eq!(jira.count_issues(), 3, "nothing doubled");

    // A new poison message, purged.
    b.send(4).await;
    let (mut worker, _) = b.worker(&jira, "Epic");
    eventually("the fourth dead letter", PATIENCE, || async {
        b.dead_letter_count().await == 1
    })
    .await;
    worker.terminate();
    worker.wait_exit(PATIENCE);
    let (code, output) = b.hookbridge(&["dlq", "purge", "--yes"]).await;
    assert_eq!(code, Some(0), "{output:?}");
    assert!(
        output
            .iter()
            .any(|l| l.contains("1 dead letter(s) deleted")),
        "{output:?}"
    );
    eventually("an empty DLQ", PATIENCE, || async {
        b.dead_letter_count().await == 0
    })
    .await;

    let records = hookbridge_tests::audit::records(&dir.path().join("audit"));
    for action in ["dlq.redrive", "dlq.redrive_all", "dlq.purge"] {
        assert!(
            records.iter().any(|r| r["action"] == action),
            "no {action} in the audit trail"
        );
    }
    let (code, output) = b.hookbridge(&["audit", "verify"]).await;
    assert_eq!(code, Some(0), "{output:?}");
}

/// Jira answers 500 until the message's attempts run out: it ends in the DLQ with that error —
/// on SQS moved by the queue's own redrive policy (the worker is told a higher limit), so the
/// error `list` shows comes from what the worker recorded, not from the message. After the
/// outage, a redrive processes it once.
async fn failing_messages_end_in_the_dlq_with_their_last_error(sqs: bool) {
    let dir = tempfile::tempdir().expect("temp dir");
    let b = backend(sqs, dir.path(), 2).await;
    let jira = JiraFake::start(FakeConfig::default()).await;
    jira.fail_next(reqwest::Method::POST, "/rest/api/3/issue", 500, None, 1000);
    b.send(1).await;
    let worker_limit = if sqs { "10" } else { "2" };
    let (mut worker, _) = b.worker_with(
        &jira,
        "Task",
        &[("HOOKBRIDGE_MAX_RECEIVE_COUNT", worker_limit)],
    );
    eventually("the failing message in the DLQ", PATIENCE, || async {
        b.dead_letter_count().await == 1
    })
    .await;
    let rows = b.list(&[]).await;
    let error = rows[0]["last_error"].as_str().unwrap_or_default();
    // The worker's own words, not the queue's "moved after N receives".
    assert!(
        !error.is_empty() && !error.contains("redrive policy"),
        "{rows:?}"
    );
    let id = rows[0]["id"].as_str().expect("an id");
    let (code, output) = b.hookbridge(&["dlq", "show", id, "--json"]).await;
    assert_eq!(code, Some(0), "{output:?}");
    let shown = output.join("\n");
    assert!(
        shown.contains("500"),
        "the 500 is in the error history: {shown}"
    );
    jira.clear_failures();
    let (code, output) = b.hookbridge(&["dlq", "redrive", "--all"]).await;
    assert_eq!(code, Some(0), "{output:?}");
    eventually("the event in Jira", PATIENCE, || async {
        jira.count_issues() == 1
    })
    .await;
    worker.terminate();
    assert!(worker.wait_exit(PATIENCE).success());
    assert_eq!(jira.count_issues(), 1);
    assert_eq!(b.dead_letter_count().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_messages_end_in_the_dlq_with_their_last_error_on_the_embedded_queue() {
    failing_messages_end_in_the_dlq_with_their_last_error(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_messages_end_in_the_dlq_with_their_last_error_on_sqs() {
    failing_messages_end_in_the_dlq_with_their_last_error(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letter_tools_on_the_embedded_queue() {
    dead_letter_tools(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letter_tools_on_sqs() {
    dead_letter_tools(true).await;
}
