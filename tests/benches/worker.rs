//! `make bench` — worker throughput against the Jira fake at Jira-like pace.
//!
//! The fake answers after 100 ms and allows 100 requests/s per endpoint (burst 10), answering 429
//! beyond. The release `hookbridge-worker` (Redis store from `scripts/with-test-services.sh`,
//! `WORKER_CONCURRENCY=128`, `JIRA_RATE_LIMIT=95`) consumes an embedded queue holding N
//! `issues.opened` events for distinct GitHub issues. Reported:
//! 1. one process, pre-filled queue: Jira issues created per second, share of 429 answers;
//! 2. one process, events fed at 80/s: p50/p99 from enqueue ("webhook received") to the issue
//!    existing in Jira;
//! 3. two processes on one queue and one Redis: issues/s, 429 share, and the most requests Jira
//!    accepted on one endpoint in any 1 s window (must stay ≤ limit + burst);
//!
//! and the worker's peak RSS.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hookbridge_shared::queue::embedded::{EmbeddedOptions, EmbeddedQueue};
use hookbridge_tests::github::{GithubIssue, delivery_id, envelope};
use hookbridge_tests::jira_fake::{FakeConfig, JiraFake};
use hookbridge_tests::process::{Proc, release_binary};

const LIMIT: f64 = 100.0;
const BURST: f64 = 10.0;
const LATENCY: Duration = Duration::from_millis(100);

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(run());
}

async fn fake() -> JiraFake {
    JiraFake::start(FakeConfig {
        latency: LATENCY,
        rate_limit: Some(LIMIT),
        burst: BURST,
        search_lag: Duration::from_secs(1),
        ..FakeConfig::default()
    })
    .await
}

fn start_worker(fake: &JiraFake, dir: &Path, prefix: &str) -> Proc {
    let redis = std::env::var("HOOKBRIDGE_TEST_REDIS_URL")
        .expect("HOOKBRIDGE_TEST_REDIS_URL: run through `make bench`");
    let env: Vec<(&str, String)> = vec![
        ("HOOKBRIDGE_DATA_DIR", dir.display().to_string()),
        ("REDIS_URL", redis),
        ("HOOKBRIDGE_REDIS_PREFIX", prefix.to_owned()),
        ("JIRA_BASE_URL", fake.base_url()),
        ("JIRA_EMAIL", fake.email()),
        ("JIRA_API_TOKEN", fake.token()),
        ("JIRA_PROJECT_KEY", "DEMO".into()),
        ("JIRA_RATE_LIMIT", "95".into()),
        ("WORKER_CONCURRENCY", "128".into()),
        ("RUST_LOG", "warn".into()),
    ];
    Proc::spawn_path(&release_binary("hookbridge-worker"), &[], &env)
}

fn issue_number(summary: &str) -> Option<u64> {
    summary
        .strip_prefix("GitHub Issue: Issue ")?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

async fn wait_for_issues(fake: &JiraFake, n: usize, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while fake.count_issues() < n {
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    true
}

struct Figures {
    issues_per_sec: f64,
    share_429: f64,
    max_in_window: usize,
}

fn figures(fake: &JiraFake) -> Figures {
    let issues = fake.issues();
    let first = issues.iter().map(|i| i.created_at).min();
    let last = issues.iter().map(|i| i.created_at).max();
    let span = match (first, last) {
        (Some(a), Some(b)) => b.duration_since(a).as_secs_f64(),
        _ => f64::NAN,
    };
    let log = fake.request_log();
    Figures {
        issues_per_sec: (issues.len().saturating_sub(1)) as f64 / span,
        share_429: fake.count_status(429) as f64 / log.len().max(1) as f64,
        max_in_window: fake.max_accepted_in_window(Duration::from_secs(1)),
    }
}

async fn throughput(processes: usize, events: u64) -> (Figures, f64) {
    let fake = fake().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let queue =
        EmbeddedQueue::open(EmbeddedOptions::in_dir(dir.path(), "queue.db")).expect("queue");
    let repo = format!("bench/p{processes}");
    let bodies: Vec<Bytes> = (1..=events)
        .map(|n| {
            Bytes::from(envelope(
                "issues",
                &delivery_id(),
                &GithubIssue::new(&repo, n).event("opened"),
            ))
        })
        .collect();
    for chunk in bodies.chunks(100) {
        for result in queue.send_batch(chunk.to_vec()).await {
            result.expect("enqueue");
        }
    }
    let prefix = format!("hbbench:{}:", uuid::Uuid::new_v4().simple());
    let workers: Vec<Proc> = (0..processes)
        .map(|_| start_worker(&fake, dir.path(), &prefix))
        .collect();
    let done = wait_for_issues(&fake, events as usize, Duration::from_secs(120)).await;
    assert!(
        done,
        "only {} of {events} issues after 120 s",
        fake.count_issues()
    );
    // Let the remote links finish too, then read the peak RSS.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss = workers.iter().map(Proc::peak_rss_mib).fold(0.0, f64::max);
    let figures = figures(&fake);
    assert_eq!(
        fake.count_issues(),
        events as usize,
        "duplicates were created"
    );
    (figures, rss)
}

async fn latency(rate: f64, seconds: u64) -> (f64, f64) {
    let fake = fake().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let queue =
        EmbeddedQueue::open(EmbeddedOptions::in_dir(dir.path(), "queue.db")).expect("queue");
    let prefix = format!("hbbench:{}:", uuid::Uuid::new_v4().simple());
    let _worker = start_worker(&fake, dir.path(), &prefix);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let total = (rate * seconds as f64) as u64;
    let mut sent_at: HashMap<u64, Instant> = HashMap::new();
    let started = Instant::now();
    for n in 1..=total {
        let due = started + Duration::from_secs_f64(n as f64 / rate);
        tokio::time::sleep_until(due.into()).await;
        let body = envelope(
            "issues",
            &delivery_id(),
            &GithubIssue::new("bench/latency", n).event("opened"),
        );
        sent_at.insert(n, Instant::now());
        queue.send(Bytes::from(body)).await.expect("enqueue");
    }
    assert!(wait_for_issues(&fake, total as usize, Duration::from_secs(60)).await);
    let mut histogram = hdrhistogram::Histogram::<u64>::new(3).expect("histogram");
    for issue in fake.issues() {
        if let Some(sent) = issue_number(&issue.summary).and_then(|n| sent_at.get(&n)) {
            let micros = issue
                .created_at
                .saturating_duration_since(*sent)
                .as_micros() as u64;
            histogram.record(micros.max(1)).expect("record");
        }
    }
    (
        histogram.value_at_quantile(0.5) as f64 / 1000.0,
        histogram.value_at_quantile(0.99) as f64 / 1000.0,
    )
}

async fn run() {
    println!(
        "worker benchmark: Jira fake {LATENCY:?} latency, {LIMIT} req/s per endpoint (burst {BURST}); worker JIRA_RATE_LIMIT=95, WORKER_CONCURRENCY=128, Redis store"
    );
    let (one, rss_one) = throughput(1, 1500).await;
    println!(
        "  1 process,  1500 issues: {:.1} issues/s, 429 share {:.2}%, max accepted per endpoint in 1 s: {}, peak RSS {:.1} MiB",
        one.issues_per_sec,
        one.share_429 * 100.0,
        one.max_in_window,
        rss_one
    );
    let (p50, p99) = latency(80.0, 15).await;
    println!(
        "  1 process,  fed at 80/s for 15 s: received → created p50 {p50:.0} ms, p99 {p99:.0} ms"
    );
    let (two, rss_two) = throughput(2, 1500).await;
    println!(
        "  2 processes, 1500 issues: {:.1} issues/s, 429 share {:.2}%, max accepted per endpoint in 1 s: {} (limit {} + burst {}), peak RSS {:.1} MiB each",
        two.issues_per_sec,
        two.share_429 * 100.0,
        two.max_in_window,
        LIMIT,
        BURST,
        rss_two
    );
}
