//! `hookbridge-worker` as a process: killed with SIGKILL between "Jira created the issue" and
//! "message acknowledged", two processes on one queue, a permanent Jira error ending in the
//! dead-letter store with its reason, and SIGTERM. The queue is the embedded one in a temp data
//! dir; the store is the test Redis; Jira is the fake.

use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hookbridge_shared::queue::embedded::{EmbeddedOptions, EmbeddedQueue};
use hookbridge_tests::github::{GithubIssue, delivery_id, envelope};
use hookbridge_tests::jira_fake::{FakeConfig, JiraFake};
use hookbridge_tests::process::Proc;
use hookbridge_tests::slack_fake::{SlackConfig, SlackFake};
use hookbridge_tests::wait::eventually;
use reqwest::Method;

const PATIENCE: Duration = Duration::from_secs(40);

fn queue(dir: &Path) -> EmbeddedQueue {
    EmbeddedQueue::open(EmbeddedOptions::in_dir(dir, "queue.db")).expect("embedded queue")
}

async fn send(queue: &EmbeddedQueue, body: Vec<u8>) {
    queue.send(Bytes::from(body)).await.expect("enqueue");
}

fn worker_env(fake: &JiraFake, dir: &Path, extra: &[(&str, &str)]) -> Vec<(&'static str, String)> {
    let redis = std::env::var("HOOKBRIDGE_TEST_REDIS_URL")
        .expect("HOOKBRIDGE_TEST_REDIS_URL: run under scripts/with-test-services.sh (make test)");
    let prefix = format!(
        "hbproc:{}:",
        dir.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    );
    let mut env: Vec<(&'static str, String)> = vec![
        ("HOOKBRIDGE_DATA_DIR", dir.display().to_string()),
        ("REDIS_URL", redis),
        ("HOOKBRIDGE_REDIS_PREFIX", prefix),
        ("JIRA_BASE_URL", fake.base_url()),
        ("JIRA_EMAIL", fake.email()),
        ("JIRA_API_TOKEN", fake.token()),
        ("JIRA_PROJECT_KEY", "DEMO".into()),
        ("JIRA_RATE_LIMIT", "100".into()),
        ("HOOKBRIDGE_JIRA_SEARCH_LAG", "1".into()),
        ("HOOKBRIDGE_VISIBILITY_TIMEOUT", "2".into()),
        ("HOOKBRIDGE_LOCK_TTL", "2".into()),
        ("HOOKBRIDGE_DRAIN_TIMEOUT", "5".into()),
        ("WORKER_CONCURRENCY", "8".into()),
    ];
    for (k, v) in extra {
        let key: &'static str = Box::leak(k.to_string().into_boxed_str());
        env.retain(|(existing, _)| *existing != key);
        env.push((key, (*v).to_owned()));
    }
    env
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_between_create_and_ack_leaves_one_issue() {
    let fake = JiraFake::start(FakeConfig {
        search_lag: Duration::from_millis(300),
        ..FakeConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().expect("temp dir");
    let q = queue(dir.path());
    let issue = GithubIssue::new("octo/api", 7).with_labels(&["bug"]);
    send(
        &q,
        envelope("issues", &delivery_id(), &issue.event("opened")),
    )
    .await;
    // Jira makes the issue, but its answer is held back: the worker is killed while waiting.
    fake.stall_next(Method::POST, "/rest/api/3/issue", Duration::from_secs(120));
    let env = worker_env(&fake, dir.path(), &[]);
    let mut first = Proc::spawn("hookbridge-worker", &[], &env);
    eventually("Jira to have the issue", PATIENCE, || async {
        fake.count_issues() == 1
    })
    .await;
    first.kill9();

    let mut second = Proc::spawn("hookbridge-worker", &[], &env);
    eventually(
        "the issue to be linked and the message acknowledged",
        PATIENCE,
        || async {
            fake.issues()
                .first()
                .is_some_and(|i| i.remote_links.len() == 1)
                && q.depth().await.unwrap_or(1) == 0
        },
    )
    .await;
    // (on timeout, the second worker's output tells why)
    assert_eq!(fake.count_issues(), 1, "{:#?}", fake.issues());
    assert!(
        second
            .output()
            .iter()
            .any(|l| l.contains("recovered the Jira issue")),
        "the second worker should have found the issue by its marker:\n{}",
        second.output().join("\n")
    );
    second.terminate();
    assert!(second.wait_exit(PATIENCE).success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_worker_processes_on_one_queue_make_no_duplicates() {
    let fake = JiraFake::start(FakeConfig {
        latency: Duration::from_millis(10),
        search_lag: Duration::from_millis(300),
        ..FakeConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().expect("temp dir");
    let q = queue(dir.path());
    let issues: Vec<GithubIssue> = (1..=15)
        .map(|n| GithubIssue::new("octo/shop", n).with_labels(&["triage"]))
        .collect();
    for issue in &issues {
        let opened = delivery_id();
        // opened (twice: a redelivery), and labeled at the same moment.
        send(&q, envelope("issues", &opened, &issue.event("opened"))).await;
        send(
            &q,
            envelope("issues", &delivery_id(), &issue.event("labeled")),
        )
        .await;
        send(&q, envelope("issues", &opened, &issue.event("opened"))).await;
        send(
            &q,
            envelope(
                "issue_comment",
                &delivery_id(),
                &issue.comment(issue.number * 100, "dev", "+1"),
            ),
        )
        .await;
    }
    let env = worker_env(&fake, dir.path(), &[("WORKER_CONCURRENCY", "6")]);
    let mut a = Proc::spawn("hookbridge-worker", &[], &env);
    let mut b = Proc::spawn("hookbridge-worker", &[], &env);
    eventually("the queue to drain", PATIENCE, || async {
        q.depth().await.unwrap_or(1) == 0
    })
    .await;
    let jira = fake.issues();
    assert_eq!(jira.len(), issues.len(), "{jira:#?}");
    for issue in &jira {
        assert!(issue.labels.contains(&"triage".to_owned()));
        assert_eq!(issue.remote_links.len(), 1);
        assert_eq!(
            issue.comments.len(),
            1,
            "{}: {:#?}",
            issue.key,
            issue.comments
        );
    }
    assert!(q.dead_letters(10).await.expect("dlq").is_empty());
    for w in [&mut a, &mut b] {
        w.terminate();
        assert!(w.wait_exit(PATIENCE).success());
    }
}

/// SIGTERM to a worker in the middle of a burst: it stops taking messages, finishes or gives back
/// what it holds, exits 0; a new worker finishes the rest; every event reaches Jira exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_to_a_busy_worker_loses_nothing() {
    let fake = JiraFake::start(FakeConfig {
        latency: Duration::from_millis(150),
        ..FakeConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().expect("temp dir");
    let q = queue(dir.path());
    let total = 40;
    for n in 1..=total {
        let issue = GithubIssue::new("octo/busy", n);
        send(
            &q,
            envelope("issues", &delivery_id(), &issue.event("opened")),
        )
        .await;
    }
    let env = worker_env(&fake, dir.path(), &[("WORKER_CONCURRENCY", "8")]);
    let mut busy = Proc::spawn("hookbridge-worker", &[], &env);
    eventually("the worker to be busy", PATIENCE, || async {
        fake.count_issues() >= 3
    })
    .await;
    busy.terminate();
    let status = busy.wait_exit(PATIENCE);
    assert!(
        status.success(),
        "SIGTERM must drain and exit 0, got {status}"
    );
    let done_by_first = fake.count_issues();
    assert!(
        done_by_first < total as usize,
        "the burst was over before the signal ({done_by_first} issues): the test proves nothing"
    );
    let mut rest = Proc::spawn("hookbridge-worker", &[], &env);
    eventually("the queue to drain", PATIENCE, || async {
        q.depth().await.unwrap_or(1) == 0
    })
    .await;
    assert_eq!(fake.count_issues(), total as usize, "lost or doubled");
    let mut keys: Vec<String> = fake.issues().iter().map(|i| i.summary.clone()).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(
        keys.len(),
        total as usize,
        "one Jira issue per GitHub issue"
    );
    assert!(q.dead_letters(10).await.expect("dlq").is_empty());
    rest.terminate();
    assert!(rest.wait_exit(PATIENCE).success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_jira_error_goes_to_the_dead_letter_store_with_the_reason() {
    let fake = JiraFake::start(FakeConfig::default()).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let q = queue(dir.path());
    send(
        &q,
        envelope(
            "issues",
            &delivery_id(),
            &GithubIssue::new("octo/api", 9).event("opened"),
        ),
    )
    .await;
    let slack = SlackFake::start(SlackConfig::default()).await;
    let slack_url = slack.url();
    let env = worker_env(
        &fake,
        dir.path(),
        &[
            ("JIRA_ISSUE_TYPE", "Epic"),
            ("SLACK_WEBHOOK_URL", &slack_url),
        ],
    );
    let mut worker = Proc::spawn("hookbridge-worker", &[], &env);
    eventually("the message to be dead-lettered", PATIENCE, || async {
        q.dead_letters(10).await.is_ok_and(|d| d.len() == 1)
    })
    .await;
    // Dead-lettered: audited with the reason, and alerted to Slack once.
    eventually("the dead-letter alert in Slack", PATIENCE, || async {
        !slack.messages().is_empty()
    })
    .await;
    let alert = slack.messages()[0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        alert.contains("dead-lettered") && alert.contains("issue type"),
        "{alert}"
    );
    let records = hookbridge_tests::audit::records(&dir.path().join("audit"));
    let audited = records
        .iter()
        .find(|r| r["action"] == "message.dead_lettered")
        .expect("the dead letter is audited");
    assert!(
        audited["detail"]["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("400")
    );
    assert_eq!(audited["ids"]["event"], "issues");
    let dead = q.dead_letters(10).await.expect("dlq");
    let reason = dead[0].last_error.clone().unwrap_or_default();
    assert!(
        reason.contains("400") && reason.contains("issue type"),
        "{reason}"
    );
    assert_eq!(dead[0].receive_count, 1, "a permanent error is not retried");
    assert_eq!(fake.count_issues(), 0);
    assert_eq!(
        fake.request_log()
            .iter()
            .filter(|r| r.path == "/rest/api/3/issue")
            .count(),
        1,
        "no retry storm"
    );
    worker.terminate();
    assert!(worker.wait_exit(PATIENCE).success());
    assert_eq!(slack.messages().len(), 1, "one alert per dead letter");
    // No secret in what the worker printed.
    let printed = worker.output().join("\n");
    assert!(
        !printed.contains(&fake.token()),
        "the API token leaked into the logs"
    );
    assert!(
        !printed.contains(&slack_url),
        "the Slack URL leaked into the logs"
    );
}

#[test]
fn bad_configuration_is_refused_with_the_key() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cases: [(&[(&str, &str)], &str); 10] = [
        (&[("JIRA_BASE_URL", "ftp://jira")], "JIRA_BASE_URL"),
        (&[("CR_CACHE_TTL", "5m")], "CR_CACHE_TTL"),
        (&[("CR_CACHE_TTL", "soon")], "CR_CACHE_TTL"),
        (&[("CR_PROJECT_KEYS", "cr,ops")], "CR_PROJECT_KEYS"),
        (
            &[("CR_APPROVER_FIELD", "custom field")],
            "CR_APPROVER_FIELD",
        ),
        (&[("CR_APPROVED_STATUSES", ",")], "CR_APPROVED_STATUSES"),
        (
            &[("CR_REJECTED_STATUSES", "Rejected,approved")],
            "CR_REJECTED_STATUSES",
        ),
        (
            &[("SLACK_WEBHOOK_URL", "hooks.slack.com/services/x")],
            "SLACK_WEBHOOK_URL",
        ),
        (
            &[
                ("JIRA_BASE_URL", "http://127.0.0.1:9"),
                ("JIRA_EMAIL", "a@b.c"),
            ],
            "JIRA_API_TOKEN",
        ),
        (&[("REDIS_URL", "http://nope")], "REDIS_URL"),
    ];
    for (env, key) in cases {
        let mut vars: Vec<(&str, String)> =
            vec![("HOOKBRIDGE_DATA_DIR", dir.path().display().to_string())];
        vars.extend(env.iter().map(|(k, v)| (*k, (*v).to_owned())));
        let mut worker = Proc::spawn("hookbridge-worker", &[], &vars);
        let status = worker.wait_exit(PATIENCE);
        assert_eq!(
            status.code(),
            Some(2),
            "{key}: {}",
            worker.output().join("\n")
        );
        let printed = worker.output().join("\n");
        assert!(printed.contains(key), "{key} not named in: {printed}");
        assert!(
            !printed.contains("hooks.slack.com/services/x"),
            "the Slack URL was printed: {printed}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_consumes_sqs_and_redeliveries_make_one_issue() {
    let endpoint = hookbridge_tests::sqs::endpoint();
    let sqs = hookbridge_tests::sqs::client_for(&endpoint).await;
    let queue_url = sqs
        .create_queue()
        .queue_name(format!("worker-{}", uuid::Uuid::new_v4().simple()))
        .send()
        .await
        .expect("create queue")
        .queue_url
        .expect("url");
    let issue = GithubIssue::new("octo/sqs", 3).with_labels(&["bug"]);
    let delivery = delivery_id();
    for _ in 0..3 {
        let body = String::from_utf8(envelope("issues", &delivery, &issue.event("opened")))
            .expect("utf-8");
        sqs.send_message()
            .queue_url(&queue_url)
            .message_body(body)
            .send()
            .await
            .expect("send");
    }
    let fake = JiraFake::start(FakeConfig::default()).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut env = worker_env(&fake, dir.path(), &[]);
    env.push(("SQS_QUEUE_URL", queue_url.clone()));
    env.push(("AWS_ENDPOINT_URL", endpoint.clone()));
    // A worker on SQS refuses to start without a dead-letter queue (README, "Configuration").
    let dlq_url = sqs
        .create_queue()
        .queue_name(format!("worker-dlq-{}", uuid::Uuid::new_v4().simple()))
        .send()
        .await
        .expect("create the DLQ")
        .queue_url
        .expect("url");
    env.push(("SQS_DLQ_URL", dlq_url));
    let mut worker = Proc::spawn("hookbridge-worker", &[], &env);
    eventually("the issue to be created and linked", PATIENCE, || async {
        fake.issues()
            .first()
            .is_some_and(|i| i.remote_links.len() == 1)
    })
    .await;
    eventually("the three messages to be deleted", PATIENCE, || async {
        sqs.get_queue_attributes()
            .queue_url(&queue_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
            .send()
            .await
            .ok()
            .and_then(|a| a.attributes)
            .is_some_and(|a| {
                let count = |k| a.get(&k).map(String::as_str) == Some("0");
                count(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
                    && count(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            })
    })
    .await;
    assert_eq!(fake.count_issues(), 1);
    worker.terminate();
    assert!(worker.wait_exit(PATIENCE).success());
}

/// A burst of comments on one issue whose lock stays busy longer than a worker waits for it:
/// waiting for the lock is not a failed attempt, so with `HOOKBRIDGE_MAX_RECEIVE_COUNT=1` (every
/// failed attempt dead-letters) every comment still reaches Jira exactly once and nothing is
/// dead-lettered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_on_one_busy_issue_waits_its_turn_without_dead_letters() {
    use hookbridge_worker::events::github::IssueIdentity;
    use hookbridge_worker::store::{LockName, Store};

    let fake = JiraFake::start(FakeConfig {
        latency: Duration::from_millis(20),
        ..FakeConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().expect("temp dir");
    let q = queue(dir.path());
    let issue = GithubIssue::new("octo/burst", 1);
    send(
        &q,
        envelope("issues", &delivery_id(), &issue.event("opened")),
    )
    .await;
    let env = worker_env(
        &fake,
        dir.path(),
        &[
            ("HOOKBRIDGE_MAX_RECEIVE_COUNT", "1"),
            ("WORKER_CONCURRENCY", "32"),
        ],
    );
    let mut worker = Proc::spawn("hookbridge-worker", &[], &env);
    eventually("the Jira issue", PATIENCE, || async {
        fake.count_issues() == 1 && q.depth().await.unwrap_or(1) == 0
    })
    .await;
    // Another worker (the test) holds the issue's lock for longer than the worker waits for it
    // (15 s): every comment of the burst finds it busy at least once.
    let prefix = env
        .iter()
        .find(|(k, _)| *k == "HOOKBRIDGE_REDIS_PREFIX")
        .map(|(_, v)| v.clone())
        .expect("prefix");
    let redis = std::env::var("HOOKBRIDGE_TEST_REDIS_URL").expect("redis");
    let store = Store::connect_redis(&redis, &prefix)
        .await
        .expect("test Redis");
    let name = LockName::github_issue(&IssueIdentity::new("octo/burst", 1));
    let ttl = Duration::from_secs(3);
    let guard = store
        .try_lock(&name, ttl)
        .await
        .expect("store")
        .expect("the lock is free");
    let keeper = {
        let store = store.clone();
        let guard = guard.clone();
        tokio::spawn(async move {
            let until = Instant::now() + Duration::from_secs(17);
            while Instant::now() < until {
                tokio::time::sleep(Duration::from_millis(500)).await;
                assert!(store.extend_lock(&guard, ttl).await.expect("store"));
            }
            store.unlock(&guard).await.expect("store");
        })
    };
    let total = 30u64;
    for id in 1..=total {
        send(
            &q,
            envelope(
                "issue_comment",
                &delivery_id(),
                &issue.comment(id, "dev", &format!("comment number {id}")),
            ),
        )
        .await;
    }
    keeper.await.expect("keeper");
    eventually("the queue to drain", PATIENCE, || async {
        q.depth().await.unwrap_or(1) == 0
    })
    .await;
    assert!(
        q.dead_letters(10).await.expect("dlq").is_empty(),
        "waiting for the lock dead-lettered messages"
    );
    let comments: Vec<String> = fake.issues()[0]
        .comments
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(comments.len(), total as usize, "{comments:#?}");
    for id in 1..=total {
        let needle = format!("comment number {id}\"");
        assert_eq!(
            comments.iter().filter(|c| c.contains(&needle)).count(),
            1,
            "comment {id}"
        );
    }
    worker.terminate();
    assert!(worker.wait_exit(PATIENCE).success());
}
