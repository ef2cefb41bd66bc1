//! Queue conformance: every case runs against both backends, the embedded SQLite queue and SQS
//! (moto, started by `scripts/with-test-services.sh`), because the worker and ingest are written
//! against the [`Queue`] interface and must not care which one they get.
//!
//! Each test gets a fresh queue (a temp dir, or a uniquely named SQS queue with its own DLQ and a
//! redrive policy with the same maximum receive count as the embedded queue). Nothing assumes
//! ordering, and nothing sleeps for a fixed time hoping something happened: conditions are awaited
//! by polling with a deadline, and absence is checked by receiving until a point in time has passed.
//! moto serves about 130 calls/s, so the SQS cases stay small.
//!
//! Run: `scripts/with-test-services.sh cargo test -p hookbridge-tests --test it conformance`.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_sqs::types::QueueAttributeName;
use bytes::Bytes;
use hookbridge_shared::queue::embedded::EmbeddedOptions;
use hookbridge_shared::queue::sqs::SqsOptions;
use hookbridge_shared::queue::{
    DeadLetter, Delivery, EmbeddedQueue, Queue, QueueError, ReceiveOptions, SqsQueue,
};
use hookbridge_tests::sqs as moto;
use tokio::time::Instant;

/// A message received this many times goes to the dead-letter store on its next receive (the SQS
/// queues get `RedrivePolicy.maxReceiveCount` = this).
const MAX_RECEIVE: u32 = 2;

/// How long any awaited condition may take before the test fails.
const PATIENCE: Duration = Duration::from_secs(20);

struct SqsFixture {
    client: aws_sdk_sqs::Client,
    queue_url: String,
    dlq_url: String,
}

/// One fresh queue of either backend, and what the test needs to look behind it.
struct Harness {
    queue: Queue,
    _dir: Option<tempfile::TempDir>,
    sqs: Option<SqsFixture>,
}

impl Harness {
    async fn embedded() -> Self {
        let dir = tempfile::tempdir().expect("create a temp dir");
        let mut options = EmbeddedOptions::in_dir(dir.path(), "queue.db");
        options.max_receive_count = MAX_RECEIVE;
        options.poll_interval = Duration::from_millis(20);
        let queue = EmbeddedQueue::open(options).expect("open the embedded queue");
        Self {
            queue: Queue::Embedded(queue),
            _dir: Some(dir),
            sqs: None,
        }
    }

    async fn sqs() -> Self {
        let client = moto::client_for(&moto::endpoint()).await;
        let name = format!("conformance-{}", uuid::Uuid::new_v4().simple());
        let moto::QueueWithDlq { queue_url, dlq_url } =
            moto::create_queue_with_dlq(&client, &name, MAX_RECEIVE, &[]).await;
        // No DLQ URL given: the backend must find it through the redrive policy.
        let queue = SqsQueue::connect_with(
            client.clone(),
            SqsOptions {
                queue_url: queue_url.clone(),
                dlq_url: None,
            },
        )
        .await
        .expect("connect to the SQS queue");
        assert_eq!(queue.dead_letter_queue_url(), Some(dlq_url.as_str()));
        assert_eq!(queue.redrive_max_receive_count(), Some(MAX_RECEIVE));
        Self {
            queue: Queue::Sqs(queue),
            _dir: None,
            sqs: Some(SqsFixture {
                client,
                queue_url,
                dlq_url,
            }),
        }
    }

    fn sqs_queue(&self) -> Option<&SqsQueue> {
        match &self.queue {
            Queue::Sqs(q) => Some(q),
            Queue::Embedded(_) => None,
        }
    }

    fn send_calls(&self) -> u64 {
        self.sqs_queue().map_or(0, SqsQueue::send_calls)
    }

    async fn cleanup(self) {
        if let Some(sqs) = &self.sqs {
            for url in [&sqs.queue_url, &sqs.dlq_url] {
                let _ = sqs.client.delete_queue().queue_url(url).send().await;
            }
        }
    }
}

fn opts(max_messages: usize, wait: Duration, visibility: Duration) -> ReceiveOptions {
    ReceiveOptions {
        max_messages,
        wait,
        visibility,
    }
}

/// Receives until one message arrives (failing after [`PATIENCE`]).
async fn receive_one(queue: &Queue, visibility: Duration) -> Delivery {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let mut got = queue
            .receive(opts(1, Duration::from_secs(1), visibility))
            .await
            .expect("receive");
        assert!(got.len() <= 1, "asked for one message, got {}", got.len());
        if let Some(delivery) = got.pop() {
            return delivery;
        }
        assert!(
            Instant::now() < deadline,
            "no message arrived within {PATIENCE:?}"
        );
    }
}

/// Receives until `until` has passed, failing if any message shows up.
async fn expect_nothing_until(queue: &Queue, until: Instant, why: &str) {
    loop {
        let now = Instant::now();
        if now >= until {
            return;
        }
        let wait = (until - now).min(Duration::from_secs(1));
        let got = queue
            .receive(opts(10, wait, Duration::from_secs(30)))
            .await
            .expect("receive");
        if let Some(d) = got.first() {
            panic!(
                "{why}, but message {} was received (receive count {})",
                d.message.id, d.message.receive_count
            );
        }
    }
}

/// Polls the dead-letter store until `found` picks an entry (failing after [`PATIENCE`]).
async fn await_dead_letter(queue: &Queue, found: impl Fn(&DeadLetter) -> bool) -> DeadLetter {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let letters = queue
            .dead_letters(100)
            .await
            .expect("read the dead letters");
        if let Some(letter) = letters.into_iter().find(|l| found(l)) {
            return letter;
        }
        assert!(
            Instant::now() < deadline,
            "the message did not reach the dead-letter store within {PATIENCE:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Receives and deletes until `count` messages were seen; returns id → body.
async fn drain(queue: &Queue, count: usize) -> HashMap<String, Bytes> {
    let deadline = Instant::now() + PATIENCE;
    let mut seen = HashMap::new();
    while seen.len() < count {
        assert!(
            Instant::now() < deadline,
            "only {} of {count} messages arrived within {PATIENCE:?}",
            seen.len()
        );
        let got = queue
            .receive(opts(10, Duration::from_secs(1), Duration::from_secs(60)))
            .await
            .expect("receive");
        let handles: Vec<_> = got.iter().map(|d| d.message.handle.clone()).collect();
        for d in got {
            let id = d.message.id.clone();
            assert!(
                seen.insert(id.clone(), d.message.body).is_none(),
                "message {id} received twice while invisible"
            );
        }
        for result in queue.delete_batch(&handles).await {
            result.expect("delete");
        }
    }
    seen
}

fn json_body(value: serde_json::Value) -> Bytes {
    Bytes::from(value.to_string())
}

// --- the cases ------------------------------------------------------------------------------------

async fn send_receive_delete(h: &Harness) {
    let q = &h.queue;
    q.check_ready().await.expect("a fresh queue is ready");
    match h.sqs_queue() {
        Some(_) => assert!(
            q.max_message_bytes().is_some_and(|n| n >= 262_144),
            "SQS reports its MaximumMessageSize: {:?}",
            q.max_message_bytes()
        ),
        None => assert_eq!(
            q.max_message_bytes(),
            None,
            "the embedded queue has no limit"
        ),
    }
    assert!(q.dead_letters(10).await.expect("dead letters").is_empty());

    let body = json_body(serde_json::json!({"hello": "world", "n": 1}));
    let id = q.send(body.clone()).await.expect("send");
    let delivery = receive_one(q, Duration::from_secs(30)).await;
    assert_eq!(
        delivery.message.id, id,
        "the id send returned is the id received"
    );
    assert_eq!(delivery.message.body, body);
    assert_eq!(delivery.message.receive_count, 1);
    let sent_at = delivery
        .message
        .sent_at
        .expect("both backends know the send time");
    let age = chrono::Utc::now().signed_duration_since(sent_at);
    assert!(
        age.num_seconds().abs() < 60,
        "sent_at {sent_at} is not about now"
    );
    delivery.ack().await.expect("ack");
    expect_nothing_until(
        q,
        Instant::now() + Duration::from_secs(1),
        "an acked message is gone",
    )
    .await;
    assert!(q.dead_letters(10).await.expect("dead letters").is_empty());
}

async fn send_batch_of_25_gets_distinct_ids(h: &Harness) {
    let q = &h.queue;
    let calls_before = h.send_calls();
    let bodies: Vec<Bytes> = (0..25)
        .map(|i| json_body(serde_json::json!({"event": i})))
        .collect();
    let results = q.send_batch(bodies.clone()).await;
    assert_eq!(results.len(), 25);
    let ids: Vec<String> = results
        .into_iter()
        .map(|r| r.expect("every entry is stored"))
        .collect();
    let distinct: HashSet<&String> = ids.iter().collect();
    assert_eq!(distinct.len(), 25, "ids are distinct");
    if h.sqs_queue().is_some() {
        assert_eq!(
            h.send_calls() - calls_before,
            3,
            "25 messages go out as batches of 10 + 10 + 5"
        );
    }
    let received = drain(q, 25).await;
    for (id, body) in ids.iter().zip(&bodies) {
        assert_eq!(
            received.get(id),
            Some(body),
            "message {id} came back with its own body"
        );
    }
}

async fn batch_results_are_per_entry(h: &Harness) {
    let q = &h.queue;
    match &h.sqs {
        Some(sqs) => {
            let max = q.max_message_bytes().expect("SQS has a limit");
            let oversize = json_body(serde_json::json!({"pad": "x".repeat(max)}));
            let not_utf8 = Bytes::from_static(&[b'{', 0xff, b'}']);
            let good_a = json_body(serde_json::json!({"good": "a"}));
            let good_b = json_body(serde_json::json!({"good": "b"}));
            let results = q
                .send_batch(vec![good_a.clone(), oversize, good_b.clone(), not_utf8])
                .await;
            assert_eq!(results.len(), 4);
            assert!(results[0].is_ok(), "{:?}", results[0]);
            assert!(
                matches!(results[1], Err(QueueError::Rejected(_))),
                "oversize: {:?}",
                results[1]
            );
            assert!(results[2].is_ok(), "{:?}", results[2]);
            assert!(
                matches!(results[3], Err(QueueError::Rejected(_))),
                "not UTF-8: {:?}",
                results[3]
            );

            // The queue's limit is lowered behind the backend's back: the body passes the local
            // check, SQS refuses the whole batch because of it, and the backend must still get the
            // good entries through (by sending them one by one).
            sqs.client
                .set_queue_attributes()
                .queue_url(&sqs.queue_url)
                .attributes(QueueAttributeName::MaximumMessageSize, "1024")
                .send()
                .await
                .expect("lower MaximumMessageSize");
            let good_c = json_body(serde_json::json!({"good": "c"}));
            let good_d = json_body(serde_json::json!({"good": "d"}));
            let too_big_now = json_body(serde_json::json!({"pad": "y".repeat(2000)}));
            let results = q
                .send_batch(vec![good_c.clone(), too_big_now, good_d.clone()])
                .await;
            assert!(results[0].is_ok(), "{:?}", results[0]);
            assert!(
                matches!(results[1], Err(QueueError::Rejected(_))),
                "refused by SQS: {:?}",
                results[1]
            );
            assert!(results[2].is_ok(), "{:?}", results[2]);

            let received: HashSet<Bytes> = drain(q, 4).await.into_values().collect();
            let expected: HashSet<Bytes> = [good_a, good_b, good_c, good_d].into_iter().collect();
            assert_eq!(received, expected);
        }
        None => {
            // The embedded queue stores a whole group in one SQLite transaction and has no size or
            // content rules, so no entry can fail alone: a batch mixing an empty body, a non-UTF-8
            // body and a large one is stored whole, and each result belongs to its own body.
            let bodies = vec![
                Bytes::new(),
                Bytes::from_static(&[b'{', 0xff, b'}']),
                Bytes::from(vec![b'z'; 2 * 1024 * 1024]),
                json_body(serde_json::json!({"good": "a"})),
            ];
            let results = q.send_batch(bodies.clone()).await;
            let ids: Vec<String> = results.into_iter().map(|r| r.expect("stored")).collect();
            let received = drain(q, bodies.len()).await;
            for (id, body) in ids.iter().zip(&bodies) {
                assert_eq!(received.get(id), Some(body));
            }
        }
    }
}

async fn visibility_expiry_redelivers_with_a_higher_count(h: &Harness) {
    let q = &h.queue;
    let id = q
        .send(json_body(serde_json::json!({"case": "expiry"})))
        .await
        .expect("send");
    let before = Instant::now();
    let first = receive_one(q, Duration::from_secs(2)).await;
    assert_eq!(first.message.receive_count, 1);
    let none = q
        .receive(opts(10, Duration::ZERO, Duration::from_secs(30)))
        .await
        .expect("receive");
    // Conclusive only if that receive ended inside the 2 s window (a stalled machine may not
    // manage that, and then the message is rightly visible again).
    if before.elapsed() < Duration::from_secs(2) {
        assert!(none.is_empty(), "a received message is invisible");
    } else if let Some(d) = none.into_iter().next() {
        d.release(Duration::ZERO).await.expect("give it back");
    }
    let first_handle = first.message.handle.clone();
    drop(first); // neither acked nor released: the consumer "died"

    let second = receive_one(q, Duration::from_secs(30)).await;
    let elapsed = before.elapsed();
    assert_eq!(second.message.id, id);
    assert_eq!(second.message.receive_count, 2);
    assert_ne!(second.message.handle, first_handle, "a new receipt");
    assert!(
        elapsed >= Duration::from_millis(1900),
        "came back after {elapsed:?}, before its 2 s visibility timeout ended"
    );
    second.ack().await.expect("ack the redelivered message");
}

async fn release_zero_makes_it_visible_at_once(h: &Harness) {
    let q = &h.queue;
    let id = q
        .send(json_body(serde_json::json!({"case": "release"})))
        .await
        .expect("send");
    let first = receive_one(q, Duration::from_secs(300)).await;
    let released = Instant::now();
    first.release(Duration::ZERO).await.expect("release");
    let second = receive_one(q, Duration::from_secs(30)).await;
    assert_eq!(second.message.id, id);
    assert_eq!(second.message.receive_count, 2);
    assert!(
        released.elapsed() < Duration::from_secs(60),
        "released message came back quickly, not after its 300 s timeout"
    );
    second.ack().await.expect("ack");
}

async fn extend_keeps_it_invisible(h: &Harness) {
    let q = &h.queue;
    q.send(json_body(serde_json::json!({"case": "extend"})))
        .await
        .expect("send");
    let before = Instant::now();
    let delivery = receive_one(q, Duration::from_secs(2)).await;
    delivery
        .extend(Duration::from_secs(60))
        .await
        .expect("extend");
    expect_nothing_until(
        q,
        before + Duration::from_secs(4),
        "an extended message stays invisible past its first timeout",
    )
    .await;
    delivery.ack().await.expect("ack after extending");
    expect_nothing_until(
        q,
        Instant::now() + Duration::from_secs(1),
        "an acked message is gone",
    )
    .await;
}

async fn dead_lettered_after_max_receive_count(h: &Harness) {
    let q = &h.queue;
    let body = json_body(serde_json::json!({"case": "poison"}));
    let id = q.send(body.clone()).await.expect("send");
    for attempt in 1..=MAX_RECEIVE {
        let delivery = receive_one(q, Duration::from_secs(30)).await;
        assert_eq!(delivery.message.id, id);
        assert_eq!(delivery.message.receive_count, attempt);
        delivery.release(Duration::ZERO).await.expect("release");
    }
    // The next receive finds it over the limit and moves it instead of handing it out.
    expect_nothing_until(
        q,
        Instant::now() + Duration::from_secs(2),
        "a message received MAX_RECEIVE times is dead-lettered on the next receive",
    )
    .await;
    let letter = await_dead_letter(q, |l| l.body == body).await;
    if h.sqs.is_none() {
        assert_eq!(letter.id, id);
    }
    assert_eq!(letter.receive_count, MAX_RECEIVE);
    assert!(letter.sent_at.is_some());
    let reason = letter
        .last_error
        .expect("a reason is given for redriven messages");
    assert!(reason.contains("received"), "{reason}");
    // Listing does not remove.
    let again = q.dead_letters(100).await.expect("dead letters");
    assert_eq!(again.iter().filter(|l| l.body == body).count(), 1);
}

async fn dead_letter_keeps_the_reason(h: &Harness) {
    let q = &h.queue;
    let body = json_body(serde_json::json!({"case": "explicit"}));
    q.send(body.clone()).await.expect("send");
    let delivery = receive_one(q, Duration::from_secs(30)).await;
    let reason = "jira answered 400: summary: ≤ 255 characters";
    delivery.dead_letter(reason).await.expect("dead-letter");
    expect_nothing_until(
        q,
        Instant::now() + Duration::from_secs(1),
        "a dead-lettered message left the queue",
    )
    .await;
    let letter = await_dead_letter(q, |l| l.body == body).await;
    assert_eq!(letter.last_error.as_deref(), Some(reason));
    assert_eq!(letter.receive_count, 1);
    assert!(letter.sent_at.is_some());

    // A very long reason is kept (SQS keeps the first 1000 characters).
    let long_body = json_body(serde_json::json!({"case": "long reason"}));
    q.send(long_body.clone()).await.expect("send");
    let delivery = receive_one(q, Duration::from_secs(30)).await;
    let long_reason = "é".repeat(1500);
    delivery
        .dead_letter(&long_reason)
        .await
        .expect("dead-letter");
    let letter = await_dead_letter(q, |l| l.body == long_body).await;
    let kept = letter.last_error.expect("reason");
    match h.sqs {
        Some(_) => assert_eq!(kept, "é".repeat(1000)),
        None => assert_eq!(kept, long_reason),
    }
}

async fn concurrent_consumers_never_share_an_invisible_message(h: &Harness) {
    let q = &h.queue;
    let bodies: Vec<Bytes> = (0..40)
        .map(|i| json_body(serde_json::json!({"n": i})))
        .collect();
    let ids: HashSet<String> = q
        .send_batch(bodies)
        .await
        .into_iter()
        .map(|r| r.expect("sent"))
        .collect();
    assert_eq!(ids.len(), 40);
    let seen: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    let deadline = Instant::now() + PATIENCE;
    let consumers: Vec<_> = (0..4)
        .map(|_| {
            let q = q.clone();
            let seen = seen.clone();
            tokio::spawn(async move {
                loop {
                    if seen.lock().expect("lock").len() >= 40 || Instant::now() > deadline {
                        return;
                    }
                    let got = q
                        .receive(opts(5, Duration::from_secs(1), Duration::from_secs(60)))
                        .await
                        .expect("receive");
                    let handles: Vec<_> = got.iter().map(|d| d.message.handle.clone()).collect();
                    {
                        let mut seen = seen.lock().expect("lock");
                        for d in &got {
                            *seen.entry(d.message.id.clone()).or_default() += 1;
                        }
                    }
                    for result in q.delete_batch(&handles).await {
                        result.expect("delete");
                    }
                }
            })
        })
        .collect();
    for consumer in consumers {
        consumer.await.expect("consumer task");
    }
    let seen = seen.lock().expect("lock");
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "received by two consumers: {twice:?}");
    let got: HashSet<String> = seen.keys().cloned().collect();
    assert_eq!(got, ids, "every message was received exactly once");
}

async fn five_mib_body(h: &Harness) {
    let q = &h.queue;
    let body = json_body(serde_json::json!({"pad": "p".repeat(5 * 1024 * 1024)}));
    match h.sqs_queue() {
        // SQS's limit is handled upstream by the claim check; here the backend must refuse the
        // body clearly and without calling SQS.
        Some(sqs) => {
            let calls = sqs.send_calls();
            let err = q.send(body).await.expect_err("over SQS's limit");
            assert!(matches!(err, QueueError::Rejected(_)), "{err:?}");
            assert_eq!(sqs.send_calls(), calls, "refused before any call");
        }
        None => {
            let id = q.send(body.clone()).await.expect("send 5 MiB");
            let delivery = receive_one(q, Duration::from_secs(30)).await;
            assert_eq!(delivery.message.id, id);
            assert_eq!(delivery.message.body.len(), body.len());
            assert!(delivery.message.body == body);
            delivery.ack().await.expect("ack");
        }
    }
}

async fn json_bodies_round_trip_with_any_character(h: &Harness) {
    let q = &h.queue;
    // U+FFFE and U+FFFF are refused by SQS; the backend escapes them, which keeps the JSON equal.
    let value = serde_json::json!({
        "title": "non\u{FFFE}characters\u{FFFF} \"quoted\" \\ tab\t",
        "emoji": "😀 é ü ß 中文",
        "nested": {"n": 1.5, "list": [null, true]},
    });
    let body = Bytes::from(serde_json::to_vec(&value).expect("serialize"));
    q.send(body.clone()).await.expect("send");
    let delivery = receive_one(q, Duration::from_secs(30)).await;
    let received: serde_json::Value =
        serde_json::from_slice(&delivery.message.body).expect("still JSON");
    assert_eq!(received, value);
    if h.sqs.is_none() {
        assert_eq!(delivery.message.body, body, "embedded keeps the bytes");
    }
    delivery.ack().await.expect("ack");
}

macro_rules! conformance_tests {
    ($($case:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let harness = super::Harness::embedded().await;
                    super::$case(&harness).await;
                    harness.cleanup().await;
                }
            )*
        }
        mod sqs {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let harness = super::Harness::sqs().await;
                    super::$case(&harness).await;
                    harness.cleanup().await;
                }
            )*
        }
    };
}

conformance_tests!(
    send_receive_delete,
    send_batch_of_25_gets_distinct_ids,
    batch_results_are_per_entry,
    visibility_expiry_redelivers_with_a_higher_count,
    release_zero_makes_it_visible_at_once,
    extend_keeps_it_invisible,
    dead_lettered_after_max_receive_count,
    dead_letter_keeps_the_reason,
    concurrent_consumers_never_share_an_invisible_message,
    five_mib_body,
    json_bodies_round_trip_with_any_character,
);

/// Connecting to a queue that does not exist fails at start, naming the URL, instead of failing
/// every send later.
#[tokio::test]
async fn sqs_connect_to_a_missing_queue_names_the_url() {
    let harness = Harness::sqs().await;
    let sqs = harness.sqs.as_ref().expect("sqs fixture");
    let missing = format!("{}-missing", sqs.queue_url);
    let result = SqsQueue::connect_with(
        sqs.client.clone(),
        SqsOptions {
            queue_url: missing.clone(),
            dlq_url: None,
        },
    )
    .await;
    match result {
        Err(QueueError::Unavailable(message)) => {
            assert!(message.contains(&missing), "{message}")
        }
        Err(other) => panic!("expected Unavailable, got {other:?}"),
        Ok(_) => panic!("connected to a queue that does not exist"),
    }
    harness.cleanup().await;
}

/// Embedded only: checkpoints run beside the writer, and under sends that never pause the
/// write-ahead log is still started over, so it does not grow with everything ever sent; and no
/// message is lost on the way.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn embedded_log_stays_bounded_under_constant_sends() {
    let dir = tempfile::tempdir().expect("create a temp dir");
    let queue = EmbeddedQueue::open(EmbeddedOptions::in_dir(dir.path(), "queue.db"))
        .expect("open the embedded queue");
    let wal = dir.path().join("queue.db-wal");
    let body = Bytes::from(vec![b'x'; 10 * 1024]);
    const SENDERS: usize = 16;
    const PER_SENDER: usize = 300;
    let largest_log = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut senders = tokio::task::JoinSet::new();
    for _ in 0..SENDERS {
        let (queue, body, wal, largest_log) = (
            queue.clone(),
            body.clone(),
            wal.clone(),
            largest_log.clone(),
        );
        senders.spawn(async move {
            for _ in 0..PER_SENDER {
                queue.send(body.clone()).await.expect("send");
                let size = std::fs::metadata(&wal).map_or(0, |m| m.len());
                largest_log.fetch_max(size, std::sync::atomic::Ordering::Relaxed);
            }
        });
    }
    while let Some(done) = senders.join_next().await {
        done.expect("sender task");
    }
    let sent_bytes = (SENDERS * PER_SENDER * body.len()) as u64;
    let largest = largest_log.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(
        queue.depth().await.expect("depth"),
        (SENDERS * PER_SENDER) as u64
    );
    assert!(
        largest < sent_bytes * 2 / 3,
        "the log reached {largest} bytes for {sent_bytes} bytes sent: it was never started over"
    );
}
