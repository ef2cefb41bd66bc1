//! `make bench` — GitHub deliveries through an SQS brown-out, at GitHub's rate and timeout.
//!
//! The release `hookbridge-ingest` runs on SQS (moto from `HOOKBRIDGE_TEST_SQS_ENDPOINT`, its own
//! queue and dead-letter queue) reached through a [`FreezingProxy`], with the spool on (the
//! default). After a few warm-up deliveries the proxy freezes for 25 s — connections are accepted
//! and then hang, as SQS does in a brown-out — while signed, realistic ~10 KB `issues.opened`
//! deliveries arrive at 20 a second on a fixed schedule (open loop: each is spawned at its time,
//! whatever the earlier ones are doing), each with GitHub's 10 s timeout; `/ready` is polled every
//! second with the same timeout. Posting goes on for 10 s after the thaw. Then every delivery
//! answered `2xx` must be found in SQS (the queue is drained from the start, directly, not through
//! the proxy): lost = accepted and never seen there. No SQS: skipped (no services, no measurement).
//!
//! The report: deliveries sent, `2xx`, timeouts, other answers; latency during the freeze and
//! after; `/ready`'s worst latency and the answers it gave; when events reached SQS after the
//! thaw and when the last spooled one did (the spool drained). The process fails only when the
//! harness itself cannot run (no SQS, the ingest does not start, the warm-up fails); deliveries
//! beyond 10 s or lost events are printed as `!!` lines.
//!
//! Run: `scripts/with-test-services.sh cargo bench -p hookbridge-tests --bench outage` (after
//! `cargo build --release --bins`). `OUTAGE_FREEZE_SECS`, `OUTAGE_AFTER_SECS` and `OUTAGE_RATE`
//! change the 25 s, 10 s and 20/s.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hookbridge_shared::envelope::Envelope;
use hookbridge_tests::github::Delivery;
use hookbridge_tests::metrics::sample;
use hookbridge_tests::process::{Proc, release_binary};
use hookbridge_tests::proxy::FreezingProxy;
use hookbridge_tests::realistic;
use hookbridge_tests::sqs;
use hookbridge_tests::stats::{ms, percentile};

const SECRET: &str = "outage-bench-s3cret-7a41";
/// GitHub gives up on a delivery after 10 s.
const GITHUB_TIMEOUT: Duration = Duration::from_secs(10);
const WARM_UP: usize = 5;
/// How long after the last delivery the accepted ones may take to reach SQS before they count
/// as lost.
const DRAIN_PATIENCE: Duration = Duration::from_secs(120);

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(run());
}

fn env_u64(key: &str, default: u64) -> u64 {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Signed `issues.opened` delivery number `n`, realistic and different each time (~10.5 KB).
fn delivery(n: u64) -> Delivery {
    Delivery::github_raw("issues", realistic::issues_opened(n)).signed(SECRET)
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Phase {
    Freeze,
    After,
}

/// What became of one delivery.
#[derive(Debug)]
enum Answer {
    /// `2xx`; whether the body said `"spooled": true`.
    Accepted { spooled: bool },
    /// Another status.
    Refused(u16),
    /// No answer within [`GITHUB_TIMEOUT`].
    TimedOut,
    /// The connection failed otherwise.
    Failed(String),
}

struct Outcome {
    id: String,
    phase: Phase,
    /// Scheduled send time, from the freeze.
    at: Duration,
    took: Duration,
    answer: Answer,
}

struct ReadyPoll {
    phase: Phase,
    at: Duration,
    took: Duration,
    /// `200 degraded/spool`, `503 …`, `timeout`, …
    seen: String,
}

/// Every delivery id found in SQS: when first seen, and how often.
type Seen = Arc<Mutex<HashMap<String, (Instant, u32)>>>;

async fn post(client: reqwest::Client, url: String, delivery: Delivery) -> (Duration, Answer) {
    let started = Instant::now();
    let result = delivery.post(&client, &url).send().await;
    let answer = match result {
        Ok(response) => {
            let status = response.status().as_u16();
            match response.text().await {
                Ok(text) if (200..300).contains(&status) => {
                    let body: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
                    Answer::Accepted {
                        spooled: body["spooled"] == true,
                    }
                }
                Ok(_) => Answer::Refused(status),
                Err(e) if e.is_timeout() => Answer::TimedOut,
                Err(e) => Answer::Failed(e.to_string()),
            }
        }
        Err(e) if e.is_timeout() => Answer::TimedOut,
        Err(e) => Answer::Failed(e.to_string()),
    };
    (started.elapsed(), answer)
}

async fn poll_ready(client: reqwest::Client, url: String) -> (Duration, String) {
    let started = Instant::now();
    let seen = match client.get(&url).send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            match response.text().await {
                Ok(text) => {
                    let body: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
                    match (body["status"].as_str(), body["store"].as_str()) {
                        (Some(s), Some(store)) => format!("{status} {s}/{store}"),
                        _ => format!("{status} {text}"),
                    }
                }
                Err(e) if e.is_timeout() => "timeout".to_owned(),
                Err(e) => format!("error: {e}"),
            }
        }
        Err(e) if e.is_timeout() => "timeout".to_owned(),
        Err(e) => format!("error: {e}"),
    };
    (started.elapsed(), seen)
}

/// Receives from the queue (directly, not through the proxy) until `stop`, deleting what it got.
async fn drain(client: aws_sdk_sqs::Client, queue_url: String, seen: Seen, stop: Arc<AtomicBool>) {
    let mut failures = 0;
    while !stop.load(Ordering::Relaxed) {
        let answer = client
            .receive_message()
            .queue_url(&queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .visibility_timeout(300)
            .send()
            .await;
        let messages = match answer {
            Ok(a) => {
                failures = 0;
                a.messages.unwrap_or_default()
            }
            Err(e) => {
                failures += 1;
                assert!(failures < 20, "SQS receive keeps failing: {e:?}");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let now = Instant::now();
        let mut deletes = Vec::new();
        for (i, message) in messages.into_iter().enumerate() {
            let body = message.body.unwrap_or_default();
            let envelope = Envelope::decode(body.as_bytes())
                .unwrap_or_else(|e| panic!("a message in the queue is not an envelope: {e}"));
            {
                let mut seen = seen.lock().unwrap_or_else(|p| p.into_inner());
                seen.entry(envelope.delivery.as_str().to_owned())
                    .or_insert((now, 0))
                    .1 += 1;
            }
            if let Some(handle) = message.receipt_handle {
                deletes.push(
                    aws_sdk_sqs::types::DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(handle)
                        .build()
                        .expect("delete entry"),
                );
            }
        }
        if !deletes.is_empty() {
            let _ = client
                .delete_message_batch()
                .queue_url(&queue_url)
                .set_entries(Some(deletes))
                .send()
                .await;
        }
    }
}

#[allow(clippy::too_many_lines)]
async fn run() {
    let Ok(endpoint) = std::env::var(sqs::ENDPOINT_VARIABLE) else {
        println!(
            "## SQS brown-out: skipped ({} not set; run via make bench or scripts/with-test-services.sh)",
            sqs::ENDPOINT_VARIABLE
        );
        return;
    };
    let freeze_for = Duration::from_secs(env_u64("OUTAGE_FREEZE_SECS", 25));
    let after_for = Duration::from_secs(env_u64("OUTAGE_AFTER_SECS", 10));
    let rate = env_u64("OUTAGE_RATE", 20).max(1);

    let client = sqs::client_for(&endpoint).await;
    let name = format!("outage-{}", uuid::Uuid::new_v4().simple());
    let queues = sqs::create_queue_with_dlq(&client, &name, 5, &[]).await;
    let upstream = endpoint
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let proxy = FreezingProxy::start(&upstream).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut ingest = Proc::spawn_path(
        &release_binary("hookbridge-ingest"),
        &[],
        &[
            ("HOOKBRIDGE_BIND", "127.0.0.1:0".into()),
            ("HOOKBRIDGE_DATA_DIR", dir.path().display().to_string()),
            ("GITHUB_WEBHOOK_SECRET", SECRET.into()),
            ("SQS_QUEUE_URL", queues.queue_url.clone()),
            ("AWS_ENDPOINT_URL", proxy.url().to_owned()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ],
    );
    let url = ingest.wait_listening(Duration::from_secs(30));
    let webhook = format!("{url}/webhooks/github");
    let ready_url = format!("{url}/ready");
    // A new connection per delivery, as GitHub's sender opens them; GitHub's 10 s timeout.
    let http = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .timeout(GITHUB_TIMEOUT)
        .build()
        .expect("HTTP client");

    let seen: Seen = Arc::new(Mutex::new(HashMap::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let drainer = tokio::spawn(drain(
        client.clone(),
        queues.queue_url.clone(),
        seen.clone(),
        stop.clone(),
    ));

    let mut accepted_ids = Vec::new();
    for n in 0..WARM_UP {
        let d = delivery(n as u64);
        let (took, answer) = post(http.clone(), webhook.clone(), d.clone()).await;
        assert!(
            matches!(answer, Answer::Accepted { spooled: false }),
            "warm-up delivery {n}: {answer:?} after {took:?}:\n{}",
            ingest.output().join("\n")
        );
        accepted_ids.push(d.id);
    }

    let interval = Duration::from_secs(1) / u32::try_from(rate).expect("rate");
    let total = (freeze_for + after_for).as_nanos() / interval.as_nanos();
    let deliveries: Vec<Delivery> = (0..total)
        .map(|n| delivery(1000 + u64::try_from(n).expect("count")))
        .collect();

    println!(
        "## SQS brown-out: {}s frozen, then {}s thawed; {rate} signed issues.opened (avg {:.1} KB) deliveries/s, \
         open loop, {}s client timeout",
        freeze_for.as_secs(),
        after_for.as_secs(),
        deliveries.iter().map(|d| d.body.len()).sum::<usize>() as f64
            / deliveries.len().max(1) as f64
            / 1024.0,
        GITHUB_TIMEOUT.as_secs()
    );
    println!();

    let started = tokio::time::Instant::now();
    let frozen_at = Instant::now();
    proxy.freeze();
    let thaw_at = started + freeze_for;
    let phase_of = |at: Duration| {
        if at < freeze_for {
            Phase::Freeze
        } else {
            Phase::After
        }
    };

    // /ready every second, each poll on its own task so that a hung one does not delay the next.
    let mut polls = Vec::new();
    for i in 0..(freeze_for + after_for).as_secs() {
        let at = Duration::from_secs(i);
        let (client, url) = (http.clone(), ready_url.clone());
        polls.push(tokio::spawn(async move {
            tokio::time::sleep_until(started + at).await;
            let (took, seen) = poll_ready(client, url).await;
            (at, took, seen)
        }));
    }

    let mut posts = Vec::with_capacity(deliveries.len());
    let mut thawed_at = None;
    let mut thawed_wall = None;
    let mut worst_slip = Duration::ZERO;
    for (n, d) in deliveries.into_iter().enumerate() {
        let at = interval * u32::try_from(n).expect("count");
        let due = started + at;
        if thawed_at.is_none() && due >= thaw_at {
            tokio::time::sleep_until(thaw_at).await;
            proxy.thaw();
            thawed_at = Some(Instant::now());
            thawed_wall = Some(chrono::Utc::now());
        }
        tokio::time::sleep_until(due).await;
        worst_slip = worst_slip.max(tokio::time::Instant::now() - due);
        let (client, url) = (http.clone(), webhook.clone());
        let id = d.id.clone();
        posts.push(tokio::spawn(async move {
            let (took, answer) = post(client, url, d).await;
            (id, at, took, answer)
        }));
    }
    let (thawed_at, thawed_wall) = match (thawed_at, thawed_wall) {
        (Some(at), Some(wall)) => (at, wall),
        _ => {
            proxy.thaw();
            (Instant::now(), chrono::Utc::now())
        }
    };
    let mut outcomes = Vec::new();
    for p in posts {
        let (id, at, took, answer) = p.await.expect("delivery task");
        outcomes.push(Outcome {
            id,
            phase: phase_of(at),
            at,
            took,
            answer,
        });
    }
    let mut ready = Vec::new();
    for p in polls {
        let (at, took, seen) = p.await.expect("ready task");
        ready.push(ReadyPoll {
            phase: phase_of(at),
            at,
            took,
            seen,
        });
    }
    let posted_until = Instant::now();

    // Wait for every accepted delivery to show up in SQS (or the patience to run out).
    accepted_ids.extend(
        outcomes
            .iter()
            .filter(|o| matches!(o.answer, Answer::Accepted { .. }))
            .map(|o| o.id.clone()),
    );
    let give_up = posted_until + DRAIN_PATIENCE;
    loop {
        let missing = {
            let seen = seen.lock().unwrap_or_else(|p| p.into_inner());
            accepted_ids
                .iter()
                .filter(|id| !seen.contains_key(*id))
                .count()
        };
        if missing == 0 || Instant::now() > give_up {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // A little longer, for duplicates of late sends.
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    drainer.await.expect("drain task");
    let page = reqwest::get(format!("{url}/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");

    report(&Report {
        outcomes: &outcomes,
        ready: &ready,
        seen: &seen.lock().unwrap_or_else(|p| p.into_inner()),
        accepted_ids: &accepted_ids,
        frozen_at,
        thawed_at,
        thawed_wall,
        worst_slip,
        metrics: &page,
        ingest_log: &ingest.output(),
    });
    let _ = client
        .delete_queue()
        .queue_url(&queues.queue_url)
        .send()
        .await;
    let _ = client
        .delete_queue()
        .queue_url(&queues.dlq_url)
        .send()
        .await;
    ingest.kill9();
}

struct Report<'a> {
    outcomes: &'a [Outcome],
    ready: &'a [ReadyPoll],
    seen: &'a HashMap<String, (Instant, u32)>,
    accepted_ids: &'a [String],
    frozen_at: Instant,
    thawed_at: Instant,
    thawed_wall: chrono::DateTime<chrono::Utc>,
    worst_slip: Duration,
    metrics: &'a str,
    ingest_log: &'a [String],
}

#[allow(clippy::too_many_lines)]
fn report(r: &Report<'_>) {
    println!(
        "| phase | sent | 2xx (spooled) | timeouts >10 s | non-2xx | other errors | p50 ms | p99 ms | max ms |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for phase in [Phase::Freeze, Phase::After] {
        let of: Vec<&Outcome> = r.outcomes.iter().filter(|o| o.phase == phase).collect();
        let accepted = of
            .iter()
            .filter(|o| matches!(o.answer, Answer::Accepted { .. }))
            .count();
        let spooled = of
            .iter()
            .filter(|o| matches!(o.answer, Answer::Accepted { spooled: true }))
            .count();
        let timeouts = of
            .iter()
            .filter(|o| matches!(o.answer, Answer::TimedOut))
            .count();
        let refused = of
            .iter()
            .filter(|o| matches!(o.answer, Answer::Refused(_)))
            .count();
        let failed = of
            .iter()
            .filter(|o| matches!(o.answer, Answer::Failed(_)))
            .count();
        let mut took: Vec<Duration> = of.iter().map(|o| o.took).collect();
        took.sort();
        println!(
            "| {} | {} | {accepted} ({spooled}) | {timeouts} | {refused} | {failed} | {:.1} | {:.1} | {:.1} |",
            match phase {
                Phase::Freeze => "SQS frozen",
                Phase::After => "after the thaw",
            },
            of.len(),
            ms(percentile(&took, 0.50)),
            ms(percentile(&took, 0.99)),
            ms(took.last().copied().unwrap_or_default()),
        );
    }
    println!();

    // The worst answer in each second, to show where the slow ones are.
    let mut per_second: BTreeMap<u64, Duration> = BTreeMap::new();
    for o in r.outcomes {
        let slot = per_second.entry(o.at.as_secs()).or_default();
        *slot = (*slot).max(o.took);
    }
    println!(
        "slowest answer per second of the run (ms; the thaw at {:.0} s): {}",
        (r.thawed_at - r.frozen_at).as_secs_f64(),
        per_second
            .values()
            .map(|d| format!("{:.0}", ms(*d)))
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!(
        "load generator: worst lag behind the schedule {:.1} ms",
        ms(r.worst_slip)
    );

    for phase in [Phase::Freeze, Phase::After] {
        let of: Vec<&ReadyPoll> = r.ready.iter().filter(|p| p.phase == phase).collect();
        let mut statuses: BTreeMap<&str, usize> = BTreeMap::new();
        for p in &of {
            *statuses.entry(p.seen.as_str()).or_default() += 1;
        }
        let worst = of.iter().map(|p| p.took).max().unwrap_or_default();
        println!(
            "/ready {} ({} polls, 1/s, {} s timeout): max {:.1} ms; answers: {}",
            match phase {
                Phase::Freeze => "while frozen",
                Phase::After => "after the thaw",
            },
            of.len(),
            GITHUB_TIMEOUT.as_secs(),
            ms(worst),
            statuses
                .iter()
                .map(|(s, n)| format!("{n} × {s}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if let Some(back) = r
        .ready
        .iter()
        .filter(|p| p.phase == Phase::After && p.seen.contains("ready/"))
        .map(|p| p.at.saturating_sub(r.thawed_at - r.frozen_at))
        .min()
    {
        println!(
            "/ready said ready again {:.0} s after the thaw",
            back.as_secs_f64()
        );
    }

    // SQS: what arrived, when, and what never did.
    let arrived_after_thaw = r.seen.values().filter(|(t, _)| *t >= r.thawed_at).count();
    let arrived_frozen = r
        .seen
        .values()
        .filter(|(t, _)| *t >= r.frozen_at && *t < r.thawed_at)
        .count();
    let duplicates: u32 = r.seen.values().map(|(_, n)| n - 1).sum();
    let lost: Vec<&String> = r
        .accepted_ids
        .iter()
        .filter(|id| !r.seen.contains_key(*id))
        .collect();
    let spooled_ids: Vec<&str> = r
        .outcomes
        .iter()
        .filter(|o| matches!(o.answer, Answer::Accepted { spooled: true }))
        .map(|o| o.id.as_str())
        .collect();
    let last_spooled = spooled_ids
        .iter()
        .filter_map(|id| r.seen.get(*id).map(|(t, _)| *t))
        .max();
    let first_after = r
        .seen
        .values()
        .map(|(t, _)| *t)
        .filter(|t| *t >= r.thawed_at)
        .min();
    println!();
    println!(
        "SQS: {} distinct deliveries received ({} of them warm-up), {arrived_frozen} while frozen, \
         {arrived_after_thaw} after the thaw (the first {}), {duplicates} duplicates (late sends that \
         were also spooled; the worker dedupes them)",
        r.seen.len(),
        WARM_UP,
        first_after.map_or_else(
            || "none".to_owned(),
            |t| format!("{:.1} s after it", (t - r.thawed_at).as_secs_f64())
        ),
    );
    println!(
        "spool: {} deliveries answered from it; the last of them reached SQS {} \
         (hookbridge_spooled_events_total {}, SendMessage(Batch) calls {})",
        spooled_ids.len(),
        last_spooled.map_or_else(
            || "never".to_owned(),
            |t| format!(
                "{:.1} s after the thaw",
                t.saturating_duration_since(r.thawed_at).as_secs_f64()
            )
        ),
        sample(r.metrics, "hookbridge_spooled_events_total").map_or("?".into(), |v| v.to_string()),
        sample(r.metrics, "hookbridge_queue_write_calls_total")
            .map_or("?".into(), |v| v.to_string()),
    );
    let forwarder = forwarder_log(r.ingest_log, r.thawed_wall);
    println!(
        "forwarder (ingest log): {} batches forwarded, the last {}; {} \"queue still unavailable\" \
         back-offs (the last {})",
        forwarder.forwarded,
        forwarder.last_forwarded.map_or_else(
            || "never".to_owned(),
            |s| format!("{s:.1} s after the thaw")
        ),
        forwarder.backoffs,
        forwarder
            .last_backoff
            .map_or_else(|| "none".to_owned(), |s| format!("{s:.1} s after the thaw")),
    );
    println!(
        "lost (answered 2xx, never in SQS within {} s): {}",
        DRAIN_PATIENCE.as_secs(),
        lost.len()
    );

    let late: Vec<&Outcome> = r
        .outcomes
        .iter()
        .filter(|o| o.took >= GITHUB_TIMEOUT || matches!(o.answer, Answer::TimedOut))
        .collect();
    if !late.is_empty() {
        println!(
            "!! {} deliveries were not answered within {} s (GitHub would count them failed); first at {:.2} s",
            late.len(),
            GITHUB_TIMEOUT.as_secs(),
            late[0].at.as_secs_f64()
        );
    }
    let other: Vec<&Outcome> = r
        .outcomes
        .iter()
        .filter(|o| matches!(o.answer, Answer::Refused(_) | Answer::Failed(_)))
        .collect();
    if !other.is_empty() {
        let what = match &other[0].answer {
            Answer::Refused(status) => format!("status {status}"),
            Answer::Failed(error) => error.clone(),
            _ => String::new(),
        };
        println!(
            "!! {} deliveries got no 2xx: the first ({what}) sent at {:.2} s",
            other.len(),
            other[0].at.as_secs_f64()
        );
    }
    if !lost.is_empty() {
        println!(
            "!! {} accepted deliveries never reached SQS, e.g. {}",
            lost.len(),
            lost[0]
        );
    }
    if r.ready.iter().any(|p| p.took >= GITHUB_TIMEOUT) {
        println!(
            "!! /ready did not answer within {} s",
            GITHUB_TIMEOUT.as_secs()
        );
    }
    if !late.is_empty() || !other.is_empty() || !lost.is_empty() {
        let errors: Vec<&String> = r
            .ingest_log
            .iter()
            .filter(|l| l.contains("\"ERROR\"") || l.contains("\"level\":\"error\""))
            .take(5)
            .collect();
        for line in errors {
            println!("   ingest: {line}");
        }
    }
}

/// What the ingest's spool forwarder said, from its JSON log: batches forwarded and back-offs,
/// with the last of each in seconds after the thaw (negative: before it).
struct ForwarderLog {
    forwarded: usize,
    last_forwarded: Option<f64>,
    backoffs: usize,
    last_backoff: Option<f64>,
}

fn forwarder_log(lines: &[String], thawed: chrono::DateTime<chrono::Utc>) -> ForwarderLog {
    let mut log = ForwarderLog {
        forwarded: 0,
        last_forwarded: None,
        backoffs: 0,
        last_backoff: None,
    };
    for line in lines {
        let Ok(event) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let Some(at) = event["timestamp"]
            .as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        else {
            continue;
        };
        #[allow(clippy::cast_precision_loss)]
        let since = (at.with_timezone(&chrono::Utc) - thawed).num_milliseconds() as f64 / 1000.0;
        match event["message"].as_str() {
            Some("spooled events forwarded to the queue") => {
                log.forwarded += 1;
                log.last_forwarded = Some(since);
            }
            Some("queue still unavailable; spooled events wait") => {
                log.backoffs += 1;
                log.last_backoff = Some(since);
            }
            _ => {}
        }
    }
    log
}
