//! `make test-chaos` (also part of `make test`): faults injected while events flow, on loopback,
//! each test bounded to about a minute (README, "Reliability"). Every test ends the same way: each
//! GitHub issue is one Jira issue, each GitHub comment one Jira comment, nothing dead-lettered, and
//! it prints one summary line (events, faults injected, lost, doubled).
//!
//! - **Workers SIGKILLed** at random: two worker processes on one embedded queue are killed and
//!   restarted every 0.7–2 s for 20 s, while the Jira fake fails a share of creates with 500 and
//!   comments with 503, and rate-limits a window with 429.
//! - **The ingest SIGKILLed under load, with Slack down throughout**: eight senders post signed
//!   GitHub deliveries (issues opened, comments, redeliveries) and Jira Change Request webhooks to
//!   a real `hookbridge-ingest` (embedded queue) while two workers consume; the ingest is killed
//!   four times mid-load and restarted on the same port and data dir. A delivery that failed
//!   (connection refused or reset) is posted again with the same delivery id, as GitHub's
//!   redelivery and Jira's retries do. Every delivery that got a 2xx has its effect exactly once;
//!   the Slack fake answers every call 500, and the CRs are still recorded (`hookbridge cr status`).
//! - **SQS frozen for 30 s**: a private moto_server is SIGSTOPped while deliveries arrive at a
//!   steady 6/s; each is answered 202 within GitHub's 10 s (from the ingest's spool), and after
//!   SIGCONT every one is forwarded and processed exactly once.
//! - **Redis killed and restarted**: a private Redis (append-only file, fsync on every write) is
//!   `kill -9`ed twice (2 s down each time) while two workers sync, and restarted on the same
//!   port and data; the workers reconnect by themselves (still the same processes at the end),
//!   with the default number of attempts, and the audit trail still verifies.
//!
//! - **Redis down for 30 s**: longer than a message's retries last; the workers pause (a store
//!   that cannot be reached uses up no attempts), resume by themselves, and dead-letter nothing.
//!
//! The whole file takes about a minute on 2 vCPUs (the tests run in parallel; the 30 s outages of
//! SQS and Redis are the longest).

use std::collections::{BTreeMap, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::QueueAttributeName;
use bytes::Bytes;
use hookbridge_shared::queue::embedded::{EmbeddedOptions, EmbeddedQueue};
use hookbridge_tests::github::{Delivery, GithubIssue, delivery_id, envelope};
use hookbridge_tests::ingest::{PATIENCE, TestIngest, http};
use hookbridge_tests::jira_fake::{CrSpec, FakeConfig, JiraFake, JiraUser};
use hookbridge_tests::process::Proc;
use hookbridge_tests::services::{PrivateMoto, PrivateRedis};
use hookbridge_tests::slack_fake::{SlackConfig, SlackFake};
use hookbridge_tests::wait::within;
use reqwest::Method;
use serde_json::json;

const ISSUES: u64 = 350;
const COMMENTS_PER_ISSUE: u64 = 2;

const GITHUB_SECRET: &str = "chaos-github-s3cret-8d1f";
const JIRA_SECRET: &str = "chaos-jira-s3cret-77a2";

/// How long the pipeline may take to catch up once the fault is over.
const SETTLE: Duration = Duration::from_secs(120);

fn shared_redis() -> String {
    std::env::var("HOOKBRIDGE_TEST_REDIS_URL")
        .expect("HOOKBRIDGE_TEST_REDIS_URL: run under scripts/with-test-services.sh (make test)")
}

/// A worker on the embedded queue in `dir`, on the Redis at `redis` (a prefix of its own).
fn worker_env_on(fake: &JiraFake, dir: &Path, redis: String) -> Vec<(&'static str, String)> {
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

fn worker_env(fake: &JiraFake, dir: &Path) -> Vec<(&'static str, String)> {
    worker_env_on(fake, dir, shared_redis())
}

/// Sets (or replaces) `key` in `env`.
fn set(env: &mut Vec<(&'static str, String)>, key: &'static str, value: String) {
    env.retain(|(k, _)| *k != key);
    env.push((key, value));
}

/// The settings a `hookbridge` command needs to see what the workers of `env` recorded.
fn cli_env(env: &[(&'static str, String)]) -> Vec<(&'static str, String)> {
    let mut cli: Vec<(&'static str, String)> = env
        .iter()
        .filter(|(k, _)| {
            matches!(
                *k,
                "HOOKBRIDGE_DATA_DIR"
                    | "REDIS_URL"
                    | "HOOKBRIDGE_REDIS_PREFIX"
                    | "JIRA_BASE_URL"
                    | "JIRA_EMAIL"
                    | "JIRA_API_TOKEN"
            )
        })
        .cloned()
        .collect();
    cli.push(("RUST_LOG", "warn".into()));
    cli
}

/// The Jira fake every chaos run uses: quick answers, and a search that lags half a second behind
/// creates (as Jira's does), so that the create-once recovery is exercised.
async fn chaos_jira() -> JiraFake {
    JiraFake::start(FakeConfig {
        latency: Duration::from_millis(5),
        search_lag: Duration::from_millis(500),
        ..FakeConfig::default()
    })
    .await
}

/// A pseudo-random number in `0..n`, from the clock (no seed to manage; the faults only need to
/// land at unplanned moments).
fn roll(n: u64) -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    u64::from(nanos) % n.max(1)
}

/// The body of GitHub comment `id`: a token that survives Markdown → ADF, to find it in Jira.
fn comment_text(id: u64) -> String {
    format!("chaos-{id}-x")
}

/// What GitHub sent: issue numbers of `octo/chaos` and, per issue, its comment ids.
type Expected = BTreeMap<u64, Vec<u64>>;

/// The Jira side of the expected effects, counted: lost (expected, absent) and doubled (present
/// more than once) issues and comments.
#[derive(Debug, Default)]
struct Tally {
    issues: usize,
    comments: usize,
    lost: usize,
    doubled: usize,
    problems: Vec<String>,
}

impl Tally {
    fn settled(&self) -> bool {
        self.lost == 0
    }
}

fn tally(fake: &JiraFake, expected: &Expected) -> Tally {
    let comment_re = regex::Regex::new(r"chaos-(\d+)-x").expect("regex");
    let mut issues: BTreeMap<u64, usize> = BTreeMap::new();
    let mut comments: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    let mut t = Tally::default();
    for issue in fake.issues().into_iter().filter(|i| i.project == "DEMO") {
        t.issues += 1;
        let number = issue
            .summary
            .strip_prefix("GitHub Issue: Issue ")
            .and_then(|s| s.split(' ').next())
            .and_then(|n| n.parse::<u64>().ok());
        let Some(number) = number else {
            t.problems.push(format!(
                "{}: unexpected summary {:?}",
                issue.key, issue.summary
            ));
            t.doubled += 1;
            continue;
        };
        *issues.entry(number).or_default() += 1;
        for comment in &issue.comments {
            t.comments += 1;
            let text = comment.to_string();
            let mut ids: Vec<u64> = comment_re
                .captures_iter(&text)
                .filter_map(|c| c[1].parse().ok())
                .collect();
            ids.dedup();
            for id in ids {
                comments.entry(id).or_default().push(number);
            }
        }
    }
    for (number, comment_ids) in expected {
        match issues.get(number).copied().unwrap_or(0) {
            0 => {
                t.lost += 1;
                t.problems.push(format!("issue #{number} missing"));
            }
            1 => {}
            n => {
                t.doubled += n - 1;
                t.problems
                    .push(format!("issue #{number} created {n} times"));
            }
        }
        for id in comment_ids {
            let on = comments.get(id).cloned().unwrap_or_default();
            match on.len() {
                0 => {
                    t.lost += 1;
                    t.problems.push(format!("comment {id} missing"));
                }
                1 if on[0] == *number => {}
                1 => t
                    .problems
                    .push(format!("comment {id} on #{} instead of #{number}", on[0])),
                n => {
                    t.doubled += n - 1;
                    t.problems.push(format!("comment {id} posted {n} times"));
                }
            }
        }
    }
    let unexpected = issues.keys().filter(|n| !expected.contains_key(n)).count();
    if unexpected > 0 {
        t.doubled += unexpected;
        t.problems.push(format!("{unexpected} unexpected issues"));
    }
    t
}

/// Waits until `drained` says the queue is empty (in flight included) and every expected effect
/// is in Jira, then counts once more: what is counted then is final. Returns early, effects
/// missing, when the queue stays empty without them. On time-out, fails with the last lines the
/// `procs` printed.
async fn settle(
    fake: &JiraFake,
    expected: &Expected,
    procs: &[&Proc],
    mut drained: impl AsyncFnMut() -> bool,
) -> Tally {
    // Done when the queue is empty and every effect is there; or when the queue has been empty
    // for a while without them (nothing more will come: fail now, saying what is missing).
    let mut empty_since: Option<Instant> = None;
    let done = within(SETTLE, async || {
        if !drained().await {
            empty_since = None;
            return false;
        }
        let since = *empty_since.get_or_insert_with(Instant::now);
        tally(fake, expected).settled() || since.elapsed() > Duration::from_secs(3)
    })
    .await;
    let t = tally(fake, expected);
    if !done {
        let tails: Vec<String> = procs
            .iter()
            .map(|p| {
                let output = p.output();
                output[output.len().saturating_sub(15)..].join("\n")
            })
            .collect();
        panic!(
            "the pipeline did not catch up within {SETTLE:?}: {} lost; {:?}\nlast lines:\n{}",
            t.lost,
            t.problems.iter().take(20).collect::<Vec<_>>(),
            tails.join("\n---\n")
        );
    }
    t
}

fn assert_once(t: &Tally) {
    assert!(
        t.lost == 0 && t.doubled == 0 && t.problems.is_empty(),
        "{} lost, {} doubled: {:#?}",
        t.lost,
        t.doubled,
        t.problems
    );
}

async fn embedded_drained(queue: &EmbeddedQueue) -> bool {
    queue.depth().await.unwrap_or(1) == 0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_killed_at_random_while_jira_fails_leave_every_effect_once() {
    let fake = chaos_jira().await;
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

/// One webhook request, posted (and, when it fails, posted again) as its sender would.
#[derive(Debug, Clone)]
struct Post {
    id: String,
    path: &'static str,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Post {
    fn github(event: &str, payload: &serde_json::Value) -> Self {
        let d = Delivery::github(event, payload).signed(GITHUB_SECRET);
        Self {
            id: d.id,
            path: "/webhooks/github",
            headers: d.headers,
            body: d.body,
        }
    }

    fn jira(d: &hookbridge_tests::jira_fake::WebhookDelivery) -> Self {
        Self {
            id: d.identifier.clone(),
            path: "/webhooks/jira",
            headers: d
                .headers(JIRA_SECRET)
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
            body: d.body.clone(),
        }
    }

    fn send(&self, client: &reqwest::Client, base: &str) -> reqwest::RequestBuilder {
        self.headers
            .iter()
            .fold(
                client.post(format!("{base}{}", self.path)),
                |request, (name, value)| request.header(name, value),
            )
            .body(self.body.clone())
    }
}

/// What the senders saw.
#[derive(Debug, Default)]
struct Sent {
    /// Delivery ids answered 2xx (a redelivered id once per 2xx).
    accepted: Vec<String>,
    /// Attempts that failed: no answer (refused, reset) or a non-2xx status.
    failed: u64,
    /// Of those, the ones refused at connect (the ingest was down); the others were cut off
    /// mid-request or answered with an error.
    refused: u64,
    /// Of those, the ones with a status (the rest had no answer).
    statuses: BTreeMap<u16, u64>,
}

/// The hookbridge-ingest of the kill test: embedded queue in `dir`, on `port`.
fn start_ingest(dir: &Path, port: u16) -> TestIngest {
    TestIngest::ingest()
        .env("GITHUB_WEBHOOK_SECRET", GITHUB_SECRET)
        .env("JIRA_WEBHOOK_SECRET", JIRA_SECRET)
        .env("HOOKBRIDGE_BIND", format!("127.0.0.1:{port}"))
        .env("HOOKBRIDGE_DATA_DIR", dir.display().to_string())
        .start()
}

const KILL_ISSUES: u64 = 200;
const KILL_CRS: usize = 15;
const SENDERS: usize = 8;
const INGEST_KILLS: usize = 4;
/// How long the ingest stays down after each kill.
const INGEST_DOWN: Duration = Duration::from_millis(300);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_killed_under_load_with_slack_down_processes_every_accepted_event_once() {
    let began = Instant::now();
    let fake = chaos_jira().await;
    // Slack is down for the whole run: every call answered 500.
    let slack = SlackFake::start(SlackConfig::default()).await;
    slack.fail_next(500, "rollup_error", None, u32::MAX);

    let dir = tempfile::tempdir().expect("temp dir");
    let port = hookbridge_tests::services::free_port();
    let mut ingest = start_ingest(dir.path(), port);
    let base = ingest.url.clone();

    // What GitHub and Jira send, in the order they send it.
    let mut expected = Expected::new();
    let mut posts = VecDeque::new();
    let mut redeliveries = Vec::new();
    for n in 1..=KILL_ISSUES {
        let issue = GithubIssue::new("octo/chaos", n);
        let opened = Post::github("issues", &issue.event("opened"));
        // Someone presses "Redeliver" on GitHub now and then (same delivery id).
        if n % 10 == 0 {
            redeliveries.push(opened.clone());
        }
        posts.push_back(opened);
        let ids: Vec<u64> = (0..COMMENTS_PER_ISSUE).map(|c| n * 100 + c).collect();
        for id in &ids {
            posts.push_back(Post::github(
                "issue_comment",
                &issue.comment(*id, "dev", &comment_text(*id)),
            ));
        }
        expected.insert(n, ids);
    }
    let approver = JiraUser::new("acc-chaos", "Casey Chaos");
    let mut crs = Vec::new();
    for i in 0..KILL_CRS {
        let (key, created) = fake.create_change_request(
            CrSpec::new(&format!("Chaos change {i}"))
                .status("Pending Approval")
                .field(
                    "customfield_10102",
                    json!([approver.with_role("Change Manager")]),
                ),
            &approver,
        );
        let approved = fake.move_change_request(&key, "Approved", &approver);
        // Spread among the GitHub deliveries; Jira retries one in three approvals.
        let at = (i + 1) * posts.len() / (KILL_CRS + 1);
        posts.insert(at, Post::jira(&created));
        posts.insert(at + 1, Post::jira(&approved));
        if i % 3 == 0 {
            redeliveries.push(Post::jira(&approved));
        }
        crs.push(key);
    }
    posts.extend(redeliveries);
    let total = posts.len();

    let mut env = worker_env(&fake, dir.path());
    env.push(("SLACK_WEBHOOK_URL", slack.url()));
    let mut workers = vec![
        Proc::spawn("hookbridge-worker", &[], &env),
        Proc::spawn("hookbridge-worker", &[], &env),
    ];

    let posts = Arc::new(Mutex::new(posts));
    let sent = Arc::new(Mutex::new(Sent::default()));
    let mut senders = tokio::task::JoinSet::new();
    for _ in 0..SENDERS {
        let (posts, sent, base) = (posts.clone(), sent.clone(), base.clone());
        senders.spawn(async move {
            let client = http();
            loop {
                let Some(post) = posts.lock().expect("lock").pop_front() else {
                    return;
                };
                let deadline = Instant::now() + PATIENCE;
                let mut accepted_now = false;
                loop {
                    let answer = post.send(&client, &base).send().await;
                    let status = answer.as_ref().ok().map(|r| r.status().as_u16());
                    {
                        let mut sent = sent.lock().expect("lock");
                        match status {
                            Some(s) if (200..300).contains(&s) => {
                                sent.accepted.push(post.id.clone());
                                accepted_now = true;
                            }
                            Some(s) => {
                                sent.failed += 1;
                                *sent.statuses.entry(s).or_default() += 1;
                            }
                            None => {
                                sent.failed += 1;
                                if answer.as_ref().is_err_and(reqwest::Error::is_connect) {
                                    sent.refused += 1;
                                }
                            }
                        }
                    }
                    if accepted_now {
                        break;
                    }
                    assert!(Instant::now() < deadline, "{} was never accepted", post.id);
                    // The sender's retry (GitHub: "Redeliver"; Jira: its own back-off).
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        });
    }

    // Kill the ingest at 1/5, 2/5, … of the deliveries accepted, and restart it.
    let mut kills = 0;
    for k in 1..=INGEST_KILLS {
        let mark = k * total / (INGEST_KILLS + 1);
        let reached = within(PATIENCE, async || {
            sent.lock().expect("lock").accepted.len() >= mark
        })
        .await;
        assert!(reached, "the senders stalled before {mark} of {total}");
        ingest.proc.kill9();
        kills += 1;
        // Down for a moment, as a real restart is: senders meanwhile find the port closed.
        tokio::time::sleep(INGEST_DOWN).await;
        ingest = start_ingest(dir.path(), port);
        assert_eq!(ingest.url, base, "restarted on the same port");
    }
    while let Some(result) = senders.join_next().await {
        result.expect("a sender failed");
    }
    let sent = std::mem::take(&mut *sent.lock().expect("lock"));
    assert!(
        sent.failed > 0,
        "no delivery failed: the kills did not land mid-load"
    );
    assert!(
        sent.statuses.keys().all(|s| *s >= 500),
        "answers other than 2xx/5xx: {:?}",
        sent.statuses
    );
    assert_eq!(
        sent.accepted.len(),
        total,
        "every delivery accepted once sent"
    );

    let queue = EmbeddedQueue::open(EmbeddedOptions::in_dir(
        dir.path(),
        hookbridge_shared::config::EMBEDDED_QUEUE_FILE,
    ))
    .expect("queue");
    let procs: Vec<&Proc> = workers.iter().chain([&ingest.proc]).collect();
    let t = settle(&fake, &expected, &procs, async || {
        embedded_drained(&queue).await
    })
    .await;
    assert_once(&t);
    assert!(
        queue.dead_letters(10).await.expect("dlq").is_empty(),
        "nothing dead-lettered"
    );

    // The CRs are recorded, Approved, although none of their alerts reached Slack.
    let cli_env = cli_env(&env);
    for key in &crs {
        let (exit, output) = hookbridge_tests::process::run_to_end(
            "hookbridge",
            &["cr", "status", key, "--json"],
            &cli_env,
            PATIENCE,
        )
        .await;
        assert!(exit.success(), "cr status {key}: {output:?}");
        let status: serde_json::Value = output
            .iter()
            .find_map(|l| {
                serde_json::from_str::<serde_json::Value>(l)
                    .ok()
                    .filter(|v| v.get("key").is_some())
            })
            .unwrap_or_else(|| panic!("no JSON status for {key}: {output:?}"));
        assert_eq!(status["status"], "Approved", "{key}: {status}");
        assert_eq!(status["source"], "cache", "{key}: recorded by the workers");
    }
    let slack_calls = slack.requests();
    assert!(
        !slack_calls.is_empty(),
        "the workers never tried Slack: the alerts were not exercised"
    );
    assert!(
        slack.messages().is_empty(),
        "Slack was meant to be down throughout"
    );
    for worker in &mut workers {
        assert!(
            worker.try_exit().is_none(),
            "a worker exited:\n{}",
            worker.output().join("\n")
        );
    }
    println!(
        "chaos (ingest): {total} deliveries ({} GitHub issues, {} comments, {} CR webhooks, {} \
         redeliveries), {kills} ingest kills, {} failed attempts posted again ({} cut off \
         mid-request, {} refused), Slack down ({} calls answered 500); {} issues, {} comments, {} \
         CRs Approved; {} lost, {} doubled; {:.1} s",
        KILL_ISSUES,
        KILL_ISSUES * COMMENTS_PER_ISSUE,
        KILL_CRS * 2,
        total - (KILL_ISSUES * (1 + COMMENTS_PER_ISSUE)) as usize - KILL_CRS * 2,
        sent.failed,
        sent.failed - sent.refused,
        sent.refused,
        slack_calls.len(),
        t.issues,
        t.comments,
        crs.len(),
        t.lost,
        t.doubled,
        began.elapsed().as_secs_f64()
    );
    for worker in &mut workers {
        worker.terminate();
    }
}

/// How long SQS is frozen, and how many deliveries arrive per second meanwhile.
const SQS_OUTAGE: Duration = Duration::from_secs(30);
const OUTAGE_RATE: u64 = 6;
/// Issues opened (each with one comment) while SQS still answers.
const BEFORE_OUTAGE: u64 = 30;

/// One delivery posted during the outage: its id, status, how long the answer took, and whether
/// the ingest said it spooled it.
type Answer = (String, u16, Duration, bool);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqs_frozen_for_30_s_every_event_accepted_meanwhile_is_processed_once() {
    let began = Instant::now();
    // Why SIGSTOP and not a kill: moto keeps its queues in memory, so a killed moto would come
    // back without the messages it had (real SQS never loses them); and a stopped process is
    // what an SQS brown-out looks like to a client — connections open, requests taken, no
    // answer — the case that costs a sender its time budget, unlike a refused connection (which
    // tests/tests/it/ingest_sqs.rs covers).
    let moto = PrivateMoto::start().await;
    let client = hookbridge_tests::sqs::client_for(&moto.endpoint()).await;
    let queues = hookbridge_tests::sqs::create_queue_with_dlq(
        &client,
        "chaos-frozen",
        10,
        &[(QueueAttributeName::MaximumMessageSize, "262144")],
    )
    .await;
    let fake = chaos_jira().await;
    let aws = [
        ("AWS_ENDPOINT_URL", moto.endpoint()),
        ("AWS_REGION", "us-east-1".to_owned()),
        ("AWS_ACCESS_KEY_ID", "testing".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "testing".to_owned()),
        ("SQS_QUEUE_URL", queues.queue_url.clone()),
    ];
    let mut builder = TestIngest::ingest().env("GITHUB_WEBHOOK_SECRET", GITHUB_SECRET);
    for (k, v) in &aws {
        builder = builder.env(k, v.clone());
    }
    let ingest = builder.start();
    let worker_dir = tempfile::tempdir().expect("temp dir");
    let mut env = worker_env(&fake, worker_dir.path());
    for (k, v) in &aws {
        set(&mut env, k, v.clone());
    }
    set(&mut env, "HOOKBRIDGE_VISIBILITY_TIMEOUT", "10".into());
    let mut worker = Proc::spawn("hookbridge-worker", &[], &env);

    let http = http();
    let url = ingest.at("/webhooks/github");
    let mut expected = Expected::new();
    let next_comment = |n: u64, expected: &mut Expected| {
        let ids = expected.entry(n).or_default();
        let id = n * 100 + ids.len() as u64;
        ids.push(id);
        Post::github(
            "issue_comment",
            &GithubIssue::new("octo/chaos", n).comment(id, "dev", &comment_text(id)),
        )
    };
    // Before: the pipeline works end to end.
    for n in 1..=BEFORE_OUTAGE {
        let opened = Post::github("issues", &GithubIssue::new("octo/chaos", n).event("opened"));
        expected.insert(n, Vec::new());
        let comment = next_comment(n, &mut expected);
        for post in [opened, comment] {
            let status = post.send(&http, &ingest.url).send().await.expect("post");
            assert_eq!(status.status(), 202);
        }
    }
    let caught_up = within(PATIENCE, async || tally(&fake, &expected).settled()).await;
    assert!(caught_up, "the pipeline did not work before the outage");

    // During: SQS answers nothing for 30 s while deliveries arrive at a steady rate, half new
    // issues, half comments on earlier ones.
    let count = OUTAGE_RATE * SQS_OUTAGE.as_secs();
    let mut during = Vec::new();
    for i in 0..count {
        let post = if i % 2 == 0 {
            let n = BEFORE_OUTAGE + 1 + i / 2;
            expected.insert(n, Vec::new());
            Post::github("issues", &GithubIssue::new("octo/chaos", n).event("opened"))
        } else {
            next_comment(1 + (i / 2) % (BEFORE_OUTAGE + i / 2), &mut expected)
        };
        during.push(post);
    }
    moto.freeze();
    let frozen_at = Instant::now();
    let mut answers = tokio::task::JoinSet::new();
    let every = SQS_OUTAGE / u32::try_from(count).expect("count");
    let mut tick = tokio::time::interval(every);
    for post in during {
        tick.tick().await;
        let (http, url) = (http.clone(), url.clone());
        answers.spawn(async move {
            let started = Instant::now();
            let answer = post
                .headers
                .iter()
                .fold(http.post(&url), |r, (k, v)| r.header(k, v))
                .body(post.body.clone())
                .timeout(Duration::from_secs(10))
                .send()
                .await;
            let took = started.elapsed();
            match answer {
                Ok(r) => {
                    let status = r.status().as_u16();
                    let body: serde_json::Value = r.json().await.unwrap_or_default();
                    (post.id, status, took, body["spooled"] == true)
                }
                Err(e) => panic!("{} got no answer within 10 s ({took:?}): {e}", post.id),
            }
        });
    }
    tokio::time::sleep(SQS_OUTAGE.saturating_sub(frozen_at.elapsed())).await;
    moto.thaw();
    let outage = frozen_at.elapsed();
    let mut results: Vec<Answer> = Vec::new();
    while let Some(answer) = answers.join_next().await {
        results.push(answer.expect("a delivery"));
    }
    let slowest = results.iter().map(|a| a.2).max().unwrap_or_default();
    let refused: Vec<&Answer> = results.iter().filter(|a| a.1 != 202).collect();
    assert!(refused.is_empty(), "not accepted: {refused:?}");
    assert!(
        slowest < Duration::from_secs(10),
        "an answer took {slowest:?}: GitHub gives up at 10 s"
    );
    let spooled = results.iter().filter(|a| a.3).count();
    assert!(spooled > 0, "nothing was spooled: was SQS really frozen?");

    // After: the spool is forwarded and everything processed, exactly once.
    // Messages in a queue, visible or in flight (moto counts exactly).
    let messages_in = async |url: &str| -> Option<u64> {
        let attributes = client
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .ok()?
            .attributes?;
        let count = |name| attributes.get(&name)?.parse::<u64>().ok();
        Some(
            count(QueueAttributeName::ApproximateNumberOfMessages)?
                + count(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)?,
        )
    };
    let sqs_empty = async || messages_in(&queues.queue_url).await == Some(0);
    // The ingest's spool (where the outage's events waited) is empty too, nothing set aside.
    let spool = EmbeddedQueue::open(EmbeddedOptions::in_dir(ingest.dir.path(), "spool.db"))
        .expect("the ingest's spool");
    let drained = async || sqs_empty().await && embedded_drained(&spool).await;
    let t = settle(&fake, &expected, &[&worker, &ingest.proc], drained).await;
    assert!(
        spool.dead_letters(10).await.expect("spool").is_empty(),
        "nothing set aside in the spool"
    );
    assert_eq!(
        messages_in(&queues.dlq_url).await,
        Some(0),
        "nothing dead-lettered"
    );
    assert_once(&t);
    assert!(
        worker.try_exit().is_none(),
        "the worker exited:\n{}",
        worker.output().join("\n")
    );
    println!(
        "chaos (SQS frozen): {} events ({} during the outage at {OUTAGE_RATE}/s), SQS SIGSTOPped \
         for {:.1} s; {spooled} spooled, all 202, slowest answer {:.2} s; {} issues, {} comments; \
         {} lost, {} doubled; {:.1} s",
        BEFORE_OUTAGE * 2 + count,
        count,
        outage.as_secs_f64(),
        slowest.as_secs_f64(),
        t.issues,
        t.comments,
        t.lost,
        t.doubled,
        began.elapsed().as_secs_f64()
    );
    worker.terminate();
}

/// A Redis outage: how much work, how often Redis is killed, for how long, and how fast the
/// workers may call Jira.
struct RedisOutage {
    issues: u64,
    kills: usize,
    down: Duration,
    jira_rate: &'static str,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_and_restarted_workers_reconnect_and_nothing_doubles() {
    redis_outage(RedisOutage {
        issues: 200,
        kills: 2,
        down: Duration::from_secs(2),
        // Slower than the other tests, so that Redis goes down while work is in flight.
        jira_rate: "50",
    })
    .await;
}

/// A Redis outage far longer than the messages' retries (30 s; with the default
/// `HOOKBRIDGE_MAX_RECEIVE_COUNT` of 5, 5 s apart, the retries span 20 s) dead-letters nothing: a
/// store that cannot be reached is not the message's failure — it waits without using up an
/// attempt (like an unreachable Jira), the workers take no work until Redis answers again, and
/// then finish the backlog by themselves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_for_30_s_dead_letters_nothing() {
    redis_outage(RedisOutage {
        issues: 10,
        kills: 1,
        down: Duration::from_secs(30),
        jira_rate: "5",
    })
    .await;
}

async fn redis_outage(outage: RedisOutage) {
    let began = Instant::now();
    let mut redis = PrivateRedis::start();
    let fake = chaos_jira().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let queue =
        EmbeddedQueue::open(EmbeddedOptions::in_dir(dir.path(), "queue.db")).expect("queue");
    let mut expected = Expected::new();
    let mut events = 0;
    for n in 1..=outage.issues {
        let issue = GithubIssue::new("octo/chaos", n);
        let opened = envelope("issues", &delivery_id(), &issue.event("opened"));
        queue.send(Bytes::from(opened.clone())).await.expect("send");
        events += 1;
        if n % 10 == 0 {
            queue.send(Bytes::from(opened)).await.expect("send");
            events += 1;
        }
        let ids: Vec<u64> = (0..COMMENTS_PER_ISSUE).map(|c| n * 100 + c).collect();
        for id in &ids {
            let comment = issue.comment(*id, "dev", &comment_text(*id));
            let body = envelope("issue_comment", &delivery_id(), &comment);
            queue.send(Bytes::from(body)).await.expect("send");
            events += 1;
        }
        expected.insert(n, ids);
    }
    let mut env = worker_env_on(&fake, dir.path(), redis.url());
    set(&mut env, "JIRA_RATE_LIMIT", outage.jira_rate.into());
    // The default number of attempts: an outage longer than they last must not use them up.
    env.retain(|(k, _)| *k != "HOOKBRIDGE_MAX_RECEIVE_COUNT");
    let mut workers = vec![
        Proc::spawn("hookbridge-worker", &[], &env),
        Proc::spawn("hookbridge-worker", &[], &env),
    ];
    let pids: Vec<u32> = workers.iter().map(Proc::pid).collect();

    // Kill Redis at a third and at two thirds of the Jira effects (with two kills), each time for
    // `outage.down`.
    let effects = outage.issues * (1 + COMMENTS_PER_ISSUE);
    for k in 1..=outage.kills {
        let mark = k as u64 * effects / (outage.kills as u64 + 1);
        let reached = within(PATIENCE, async || {
            let t = tally(&fake, &expected);
            (t.issues + t.comments) as u64 >= mark
        })
        .await;
        assert!(reached, "the workers did not reach {mark} effects");
        redis.kill9();
        tokio::time::sleep(outage.down).await;
        redis.restart();
    }
    let procs: Vec<&Proc> = workers.iter().collect();
    let t = settle(&fake, &expected, &procs, async || {
        embedded_drained(&queue).await
    })
    .await;
    let dead = queue.dead_letters(10).await.expect("dlq");
    let store_errors: usize = workers
        .iter()
        .map(|w| {
            w.output()
                .iter()
                .filter(|l| l.contains("redis") || l.contains("store unavailable"))
                .count()
        })
        .sum();
    for (worker, pid) in workers.iter_mut().zip(&pids) {
        assert!(
            worker.try_exit().is_none() && worker.pid() == *pid,
            "a worker did not survive the Redis restarts:\n{}",
            worker.output().join("\n")
        );
    }
    assert!(
        dead.is_empty(),
        "{} messages dead-lettered ({} effects missing): {:?}",
        dead.len(),
        t.lost,
        dead.iter()
            .map(|d| String::from_utf8_lossy(&d.body)
                .chars()
                .take(160)
                .collect::<String>())
            .collect::<Vec<_>>()
    );
    assert_once(&t);
    assert!(
        store_errors > 0,
        "no worker noticed Redis going away: the kills missed the work"
    );
    // A worker that met the outage paused (one line), and resumed by itself (one line).
    let said = |w: &Proc, what: &str| w.output().iter().filter(|l| l.contains(what)).count();
    let paused: Vec<(usize, usize)> = workers
        .iter()
        .map(|w| {
            (
                said(w, "store unavailable: the worker takes no work"),
                said(w, "the store answers again: the worker takes work again"),
            )
        })
        .collect();
    for (down, up) in &paused {
        assert!(
            down == up,
            "pauses and resumptions do not pair up: {paused:?} (down, up) per worker"
        );
    }
    if outage.down > Duration::from_secs(10) {
        assert!(
            paused.iter().any(|(down, _)| *down > 0),
            "no worker paused for a {} s outage",
            outage.down.as_secs()
        );
    }
    // The audit chains' heads the workers could not record while Redis was down are recorded by
    // their next records: the trail still verifies.
    for worker in &mut workers {
        worker.terminate();
        let exit = worker.wait_exit(PATIENCE);
        assert!(exit.success(), "SIGTERM must exit 0, got {exit}");
    }
    let (exit, output) = hookbridge_tests::process::run_to_end(
        "hookbridge",
        &["audit", "verify"],
        &cli_env(&env),
        PATIENCE,
    )
    .await;
    assert!(exit.success(), "audit verify: {}", output.join("\n"));
    println!(
        "chaos (Redis): {events} events, {} Redis kill -9s ({} s down each, restarted on the same \
         port and append-only file), {store_errors} store errors logged, pauses (down, up) per \
         worker {paused:?}, both workers the same processes, audit trail verified; {} issues, {} \
         comments; {} lost, {} doubled; {:.1} s",
        redis.starts - 1,
        outage.down.as_secs(),
        t.issues,
        t.comments,
        t.lost,
        t.doubled,
        began.elapsed().as_secs_f64()
    );
    drop(redis);
}
