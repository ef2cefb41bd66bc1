//! `make test-chaos` (also part of `make test`): faults injected while a burst of events is
//! processed, on loopback, bounded to about a minute (README, "Reliability"). Two worker processes
//! on one queue are SIGKILLed and restarted at random; the Jira fake fails a share of creates with
//! 500 and comments with 503, and rate-limits a window with 429. Afterwards: one Jira issue per
//! GitHub issue, every comment exactly once, an empty dead-letter queue.

use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hookbridge_shared::queue::embedded::{EmbeddedOptions, EmbeddedQueue};
use hookbridge_tests::github::{GithubIssue, delivery_id, envelope};
use hookbridge_tests::jira_fake::{FakeConfig, JiraFake};
use hookbridge_tests::process::Proc;
use reqwest::Method;

const ISSUES: u64 = 350;
const COMMENTS_PER_ISSUE: u64 = 2;

fn worker_env(fake: &JiraFake, dir: &Path) -> Vec<(&'static str, String)> {
    let redis = std::env::var("HOOKBRIDGE_TEST_REDIS_URL")
        .expect("HOOKBRIDGE_TEST_REDIS_URL: run under scripts/with-test-services.sh (make test)");
    vec![
        ("HOOKBRIDGE_DATA_DIR", dir.display().to_string()),
        ("REDIS_URL", redis),
        (
            "HOOKBRIDGE_REDIS_PREFIX",
            format!("hbchaos:{}:", uuid::Uuid::new_v4().simple()),
        ),
        ("JIRA_BASE_URL", fake.base_url()),
        ("JIRA_EMAIL", fake.email()),
        ("JIRA_API_TOKEN", fake.token()),
        ("JIRA_PROJECT_KEY", "DEMO".into()),
        ("JIRA_RATE_LIMIT", "200".into()),
        ("HOOKBRIDGE_JIRA_SEARCH_LAG", "1".into()),
        ("HOOKBRIDGE_VISIBILITY_TIMEOUT", "3".into()),
        ("HOOKBRIDGE_LOCK_TTL", "3".into()),
        ("HOOKBRIDGE_MAX_RECEIVE_COUNT", "30".into()),
        ("WORKER_CONCURRENCY", "16".into()),
        ("RUST_LOG", "warn".into()),
    ]
}

/// A pseudo-random number in `0..n`, from the clock (no seed to manage; the faults only need to
/// land at unplanned moments).
fn roll(n: u64) -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    u64::from(nanos) % n.max(1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_killed_at_random_while_jira_fails_leave_every_effect_once() {
    let fake = JiraFake::start(FakeConfig {
        latency: Duration::from_millis(5),
        search_lag: Duration::from_millis(500),
        ..FakeConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().expect("temp dir");
    let queue =
        EmbeddedQueue::open(EmbeddedOptions::in_dir(dir.path(), "queue.db")).expect("queue");
    let issues: Vec<GithubIssue> = (1..=ISSUES)
        .map(|n| GithubIssue::new("octo/chaos", n))
        .collect();
    for issue in &issues {
        let opened = envelope("issues", &delivery_id(), &issue.event("opened"));
        queue.send(Bytes::from(opened.clone())).await.expect("send");
        // GitHub redelivers now and then.
        if issue.number % 10 == 0 {
            queue.send(Bytes::from(opened)).await.expect("send");
        }
        for c in 0..COMMENTS_PER_ISSUE {
            let comment = issue.comment(issue.number * 100 + c, "dev", "+1");
            let body = envelope("issue_comment", &delivery_id(), &comment);
            queue.send(Bytes::from(body)).await.expect("send");
        }
    }
    // Jira fails a share of calls, then throttles a window.
    fake.fail_next(Method::POST, "/rest/api/3/issue", 500, None, 15);
    fake.fail_next(Method::POST, "/rest/api/3/issue/", 503, Some(1), 15);
    let env = worker_env(&fake, dir.path());
    let mut workers = vec![
        Proc::spawn("hookbridge-worker", &[], &env),
        Proc::spawn("hookbridge-worker", &[], &env),
    ];
    let started = Instant::now();
    let mut kills = 0;
    while started.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(700 + roll(1300))).await;
        let victim = roll(workers.len() as u64) as usize;
        workers[victim].kill9();
        kills += 1;
        workers[victim] = Proc::spawn("hookbridge-worker", &[], &env);
        if kills == 5 {
            fake.set_rate_limit(Some(30.0), 5.0);
        }
        if kills == 10 {
            fake.set_rate_limit(None, 10.0);
        }
    }
    fake.set_rate_limit(None, 10.0);
    let deadline = Instant::now() + Duration::from_secs(120);
    while queue.depth().await.unwrap_or(1) > 0 {
        assert!(
            Instant::now() < deadline,
            "the queue did not drain: {} left",
            queue.depth().await.unwrap_or(0)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let jira = fake.issues();
    assert_eq!(
        jira.len(),
        ISSUES as usize,
        "one Jira issue per GitHub issue"
    );
    let mut summaries: Vec<&str> = jira.iter().map(|i| i.summary.as_str()).collect();
    summaries.sort_unstable();
    summaries.dedup();
    assert_eq!(summaries.len(), ISSUES as usize, "no GitHub issue twice");
    for issue in &jira {
        assert_eq!(
            issue.comments.len(),
            COMMENTS_PER_ISSUE as usize,
            "{}: every comment exactly once: {:#?}",
            issue.key,
            issue.comments
        );
    }
    assert!(
        queue.dead_letters(10).await.expect("dlq").is_empty(),
        "nothing dead-lettered"
    );
    println!(
        "chaos: {} events, {kills} worker kills, 15 creates failed with 500, 15 comments with 503, \
         a 429 window; {} issues, {} comments, 0 lost, 0 doubled",
        ISSUES * (1 + COMMENTS_PER_ISSUE) + ISSUES / 10,
        jira.len(),
        jira.iter().map(|i| i.comments.len()).sum::<usize>()
    );
    for worker in &mut workers {
        worker.terminate();
    }
}
