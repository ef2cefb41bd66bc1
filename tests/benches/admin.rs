//! `make bench` — the operator's page at scale: how long each page takes to answer with 100,000
//! recorded deliveries and 10,000 dead letters (goal: ≤ 200 ms each), on the embedded store and
//! on Redis, the queue embedded (SQS lists dead letters by peeking from the front, so its deep
//! pages are not a store question).
//!
//! The store and the queue are filled directly (through the same types the worker writes with),
//! then the release `hookbridge run` serves the page on them; every page is fetched as a browser
//! does (HTML) and as a script does (JSON), `ROUNDS` times each, newest and deepest pages alike.

use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::Utc;
use hookbridge_shared::queue::embedded::{EmbeddedOptions, EmbeddedQueue};
use hookbridge_shared::queue::{Queue, ReceiveOptions};
use hookbridge_tests::admin::{Admin, admin_url};
use hookbridge_tests::github::{GithubIssue, delivery_id, envelope};
use hookbridge_tests::process::{Proc, release_binary};
use hookbridge_tests::stats::{ms, percentile};
use hookbridge_worker::deliveries::{self, DeliveryOutcome, DeliveryRow, JourneyStep, LOG_KEPT};
use hookbridge_worker::store::keys::{DeliveryLog, DeliveryOutcomeLog};
use hookbridge_worker::store::{EMBEDDED_FILE_NAME, Store, Transaction};

const DELIVERIES: usize = 100_000;
const DEAD_LETTERS: usize = 10_000;
const ROUNDS: usize = 20;
const GOAL: Duration = Duration::from_millis(200);

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        println!(
            "# The operator's page with {DELIVERIES} recorded deliveries and {DEAD_LETTERS} dead letters"
        );
        for redis in [false, true] {
            run(redis).await;
        }
    });
}

/// `DELIVERIES` rows in the delivery log, a fifth of them dead-lettered, in transactions of a
/// thousand; the delivery id of one in the middle, with a journey.
async fn fill_deliveries(store: &Store) -> String {
    let mut middle = String::new();
    for batch in 0..DELIVERIES / 1000 {
        let mut tx = Transaction::new();
        for i in 0..1000 {
            let n = batch * 1000 + i;
            let outcome = if n % 5 == 0 {
                DeliveryOutcome::DeadLettered
            } else {
                DeliveryOutcome::Done
            };
            let row = DeliveryRow {
                at: Utc::now(),
                delivery: delivery_id(),
                source: "github".into(),
                event: "issues".into(),
                action: Some("opened".into()),
                outcome,
                jira_key: (outcome == DeliveryOutcome::Done).then(|| format!("DEMO-{n}")),
                detail: None,
            };
            tx.push(&DeliveryLog, &row, Some(LOG_KEPT), None)
                .expect("push");
            tx.push(&DeliveryOutcomeLog(outcome), &row, Some(LOG_KEPT), None)
                .expect("push");
            if n == DELIVERIES / 2 {
                middle = row.delivery.clone();
                for action in [
                    "event.accepted",
                    "jira.issue.created",
                    "jira.remote_link.created",
                ] {
                    let step = JourneyStep::new(
                        Utc::now(),
                        action,
                        "ok",
                        "DEMO-1",
                        "hookbridge-run",
                        &serde_json::json!({"bench": true}),
                    );
                    deliveries::add_step(&mut tx, &row.delivery, &step).expect("step");
                }
            }
        }
        store.commit(&tx).await.expect("commit");
    }
    middle
}

/// `DEAD_LETTERS` messages in the embedded queue's dead-letter table; the id of one.
async fn fill_dead_letters(queue: &Queue) {
    let mut bodies = Vec::new();
    for n in 0..DEAD_LETTERS {
        let delivery = delivery_id();
        let issue = GithubIssue::new("octo/bench", n as u64 + 1);
        bodies.push(Bytes::from(envelope(
            "issues",
            &delivery,
            &issue.event("opened"),
        )));
    }
    for chunk in bodies.chunks(500) {
        for sent in queue.send_batch(chunk.to_vec()).await {
            sent.expect("send");
        }
    }
    let mut moved = 0;
    while moved < DEAD_LETTERS {
        let received = queue
            .receive(ReceiveOptions {
                max_messages: 10,
                wait: Duration::from_millis(100),
                visibility: Duration::from_secs(600),
            })
            .await
            .expect("receive");
        for delivery in received {
            delivery
                .dead_letter("Jira answered 400: the issue type is not valid (bench)")
                .await
                .expect("dead-letter");
            moved += 1;
        }
    }
}

async fn timed(admin: &Admin, path: &str, json: bool) -> Vec<Duration> {
    let mut took = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let started = Instant::now();
        let status = if json {
            admin.json(path).await.0
        } else {
            admin.html(path).await.0
        };
        took.push(started.elapsed());
        assert_eq!(status, 200, "{path}");
    }
    took.sort();
    took
}

async fn run(redis: bool) {
    let dir = tempfile::tempdir().expect("temp dir");
    let prefix = format!("hbbench-admin:{}:", uuid::Uuid::new_v4().simple());
    let mut env: Vec<(&str, String)> = vec![
        ("HOOKBRIDGE_BIND", "127.0.0.1:0".into()),
        ("HOOKBRIDGE_DATA_DIR", dir.path().display().to_string()),
        ("GITHUB_WEBHOOK_SECRET", "bench-admin-secret-0123".into()),
        ("RUST_LOG", "info".into()),
    ];
    let store = if redis {
        let url = std::env::var("HOOKBRIDGE_TEST_REDIS_URL")
            .expect("HOOKBRIDGE_TEST_REDIS_URL: run through `make bench`");
        env.push(("REDIS_URL", url.clone()));
        env.push(("HOOKBRIDGE_REDIS_PREFIX", prefix.clone()));
        Store::connect_redis(&url, &prefix).await.expect("redis")
    } else {
        Store::open_embedded(&dir.path().join(EMBEDDED_FILE_NAME)).expect("store")
    };
    let queue = Queue::Embedded(
        EmbeddedQueue::open(EmbeddedOptions::in_dir(dir.path(), "queue.db")).expect("queue"),
    );
    let filling = Instant::now();
    let middle = fill_deliveries(&store).await;
    fill_dead_letters(&queue).await;
    let dead = queue.dead_letters(1).await.expect("dead letters");
    let one_dead = dead[0].id.clone();
    let backend = if redis { "Redis" } else { "embedded" };
    println!(
        "{backend} store (filled in {:.0} s):",
        filling.elapsed().as_secs_f64()
    );
    let mut server = Proc::spawn_path(&release_binary("hookbridge"), &["run"], &env);
    server.wait_listening(Duration::from_secs(60));
    let admin = Admin::new(&admin_url(&mut server, Duration::from_secs(60)));
    let last_deliveries = DELIVERIES.div_ceil(50);
    let last_dead = DEAD_LETTERS.div_ceil(50);
    let pages = [
        "/".to_owned(),
        "/deliveries".to_owned(),
        "/deliveries?outcome=dead_lettered".to_owned(),
        format!("/deliveries?page={last_deliveries}"),
        format!("/deliveries/{middle}"),
        "/dead-letters".to_owned(),
        format!("/dead-letters?page={last_dead}"),
        format!("/dead-letters/{one_dead}"),
        "/change-requests".to_owned(),
    ];
    let mut worst = Duration::ZERO;
    for page in &pages {
        let html = timed(&admin, page, false).await;
        let json = timed(&admin, page, true).await;
        let p99 = percentile(&html, 0.99).max(percentile(&json, 0.99));
        worst = worst.max(p99);
        println!(
            "  {page:<40} HTML p50 {:>6.1} ms p99 {:>6.1} ms | JSON p50 {:>6.1} ms p99 {:>6.1} ms{}",
            ms(percentile(&html, 0.5)),
            ms(percentile(&html, 0.99)),
            ms(percentile(&json, 0.5)),
            ms(percentile(&json, 0.99)),
            if p99 > GOAL {
                "  ← over the 200 ms goal"
            } else {
                ""
            }
        );
    }
    println!(
        "  slowest page p99 {:.1} ms: {}",
        ms(worst),
        if worst <= GOAL {
            "within the 200 ms goal"
        } else {
            "OVER the 200 ms goal"
        }
    );
    server.terminate();
    server.wait_exit(Duration::from_secs(30));
}
