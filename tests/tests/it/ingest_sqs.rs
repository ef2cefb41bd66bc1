//! The ingest on the SQS backend (moto, started by `scripts/with-test-services.sh`): events land in
//! SQS; a 5 MiB event goes through the claim check and comes back byte-identical; with SQS gone,
//! events wait in the local spool and are forwarded when it is back (or, spool off, get 503 with
//! `Retry-After`). Each test has its own uniquely named queues and its own ingest process.
//!
//! Run: `scripts/with-test-services.sh cargo test -p hookbridge-tests --test it ingest_sqs`.

use std::time::{Duration, Instant};

use aws_sdk_sqs::types::QueueAttributeName;
use hookbridge_shared::claim::ClaimStore;
use hookbridge_shared::envelope::{Envelope, Source};
use hookbridge_shared::queue::embedded::{EmbeddedOptions, EmbeddedQueue};
use hookbridge_tests::github::{
    Delivery, GithubIssue, incompressible_opened_payload, opened_payload_of_size,
};
use hookbridge_tests::ingest::{IngestBuilder, PATIENCE, TestIngest, http};
use hookbridge_tests::sqs::{self, endpoint};
use serde_json::Value;

const SECRET: &str = "sqs-test-s3cret-c3d9";

async fn sqs() -> aws_sdk_sqs::Client {
    sqs::client_for(&endpoint()).await
}

/// A queue named `name` with a dead-letter queue, and SQS's default 256 KiB message limit set
/// explicitly (moto's default is 1 MiB). Returns the queue URL.
async fn create_queue(client: &aws_sdk_sqs::Client, name: &str) -> String {
    sqs::create_queue_with_dlq(
        client,
        name,
        5,
        &[(QueueAttributeName::MaximumMessageSize, "262144")],
    )
    .await
    .queue_url
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// An ingest on the SQS queue `queue_url` of the server at `endpoint`, with test credentials.
fn on_sqs(queue_url: &str, endpoint: &str) -> IngestBuilder {
    TestIngest::ingest()
        .env("GITHUB_WEBHOOK_SECRET", SECRET)
        .env("SQS_QUEUE_URL", queue_url)
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
}

fn start(queue_url: &str, spool: bool) -> TestIngest {
    on_sqs(queue_url, &endpoint())
        .env("HOOKBRIDGE_SQS_SPOOL", spool.to_string())
        .start()
}

/// Posts `delivery` to the GitHub route: status, `Retry-After` and JSON body.
async fn post(ingest: &TestIngest, delivery: &Delivery) -> (u16, Option<String>, Value) {
    let response = delivery
        .post(&http(), &ingest.at("/webhooks/github"))
        .send()
        .await
        .expect("send the delivery");
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let text = response.text().await.expect("answer");
    let body =
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("{status}: not JSON: {text:?}"));
    (status, retry_after, body)
}

fn opened(number: u64) -> Delivery {
    Delivery::github(
        "issues",
        &GithubIssue::new("octo-org/api", number).event("opened"),
    )
    .signed(SECRET)
}

/// Receives from SQS until `want` envelopes arrived or the deadline passed, deleting each.
async fn receive(client: &aws_sdk_sqs::Client, queue_url: &str, want: usize) -> Vec<Envelope> {
    let mut found = Vec::new();
    let deadline = Instant::now() + PATIENCE;
    while found.len() < want && Instant::now() < deadline {
        let answer = client
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .expect("receive");
        for message in answer.messages.unwrap_or_default() {
            found.push(
                Envelope::decode(message.body.unwrap_or_default().as_bytes()).expect("envelope"),
            );
            if let Some(handle) = message.receipt_handle {
                let _ = client
                    .delete_message()
                    .queue_url(queue_url)
                    .receipt_handle(handle)
                    .send()
                    .await;
            }
        }
    }
    found
}

async fn metrics(ingest: &TestIngest) -> String {
    http()
        .get(ingest.at("/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_land_in_sqs_and_a_5_mib_event_comes_back_intact() {
    let client = sqs().await;
    let queue_url = create_queue(&client, &unique("ingest-big")).await;
    let ingest = start(&queue_url, true);

    let small = opened(1);
    let (status, _, body) = post(&ingest, &small).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["delivery"], small.id.as_str());
    assert!(body.get("spooled").is_none(), "SQS took it: {body}");

    let payload = opened_payload_of_size(&GithubIssue::new("octo-org/api", 2), 5 * 1024 * 1024);
    let big = Delivery::github_raw("issues", payload).signed(SECRET);
    let (status, _, body) = post(&ingest, &big).await;
    assert_eq!(status, 202, "{body}");

    let envelopes = receive(&client, &queue_url, 2).await;
    assert_eq!(envelopes.len(), 2, "both events are in SQS");
    let inline = envelopes
        .iter()
        .find(|e| e.delivery.as_str() == small.id)
        .expect("the small event");
    assert_eq!(
        (
            inline.source,
            inline.event.as_str(),
            inline.action.as_deref()
        ),
        (Source::Github, "issues", Some("opened"))
    );
    assert_eq!(
        inline.payload.as_ref().map(|p| p.get().as_bytes()),
        Some(small.body.as_slice()),
        "a small payload travels inline"
    );
    assert!(inline.payload_claim.is_none());

    let claimed = envelopes
        .iter()
        .find(|e| e.delivery.as_str() == big.id)
        .expect("the big event");
    assert_eq!(
        (claimed.event.as_str(), claimed.action.as_deref()),
        ("issues", Some("opened")),
        "the envelope of a claimed payload still says what it is"
    );
    assert!(claimed.payload.is_none());
    let claim = claimed
        .payload_claim
        .as_ref()
        .expect("a claim check for 5 MiB");
    assert_eq!(claim.bytes, big.body.len() as u64);
    let stored = ClaimStore::new(ingest.dir.path().join("claims"))
        .get(claim)
        .await
        .expect("the claimed payload is in the claim store");
    assert!(
        stored == big.body,
        "the 5 MiB payload must come back byte for byte"
    );

    let metrics = metrics(&ingest).await;
    assert!(
        metrics.contains("hookbridge_claim_checks_total 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("hookbridge_queue_errors_total{backend=\"sqs\"} 0"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_sqs_events_are_spooled_and_forwarded_or_refused_with_503() {
    let client = sqs().await;
    let name = unique("ingest-gone");
    let queue_url = create_queue(&client, &name).await;
    let spooling = start(&queue_url, true);
    let strict = start(&queue_url, false);
    for ingest in [&spooling, &strict] {
        let ready = http().get(ingest.at("/ready")).send().await.expect("ready");
        assert_eq!(ready.status(), 200);
    }
    client
        .delete_queue()
        .queue_url(&queue_url)
        .send()
        .await
        .expect("delete the queue");

    // Spool off: nothing can store the event, so GitHub must be told to redeliver.
    let refused = opened(1);
    let (status, retry_after, body) = post(&strict, &refused).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body["error"].is_string() && body["detail"].is_string(),
        "{body}"
    );
    let retry_after: u64 = retry_after
        .expect("Retry-After on 503")
        .parse()
        .expect("Retry-After in seconds");
    assert!(retry_after > 0);
    let ready = http().get(strict.at("/ready")).send().await.expect("ready");
    assert_eq!(ready.status(), 503, "nothing can take events");
    assert!(
        metrics(&strict).await.lines().any(|l| l
            .starts_with("hookbridge_queue_errors_total{backend=\"sqs\"}")
            && !l.ends_with(" 0")),
        "the failed store is counted"
    );

    // Spool on (the default): 202, and the event waits in `<data dir>/spool.db`.
    let spooled = opened(2);
    let (status, _, body) = post(&spooling, &spooled).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["delivery"], spooled.id.as_str());
    assert_eq!(body["spooled"], true, "{body}");
    let spool = EmbeddedQueue::open(EmbeddedOptions::in_dir(spooling.dir.path(), "spool.db"))
        .expect("open the spool");
    assert_eq!(
        spool.depth().await.expect("spool depth"),
        1,
        "the event is in the spool"
    );
    let ready = http()
        .get(spooling.at("/ready"))
        .send()
        .await
        .expect("ready");
    assert_eq!(ready.status(), 200, "the spool can take events");

    // SQS is back (same name, so the same URL): the spool forwards the event.
    let again = create_queue(&client, &name).await;
    assert_eq!(again, queue_url);
    let envelopes = receive(&client, &queue_url, 1).await;
    assert!(
        envelopes.iter().any(|e| e.delivery.as_str() == spooled.id),
        "the spooled event was not forwarded:\n{}",
        spooling.printed()
    );
    assert!(
        envelopes.iter().all(|e| e.delivery.as_str() != refused.id),
        "the refused event must not appear"
    );
    let deadline = Instant::now() + PATIENCE;
    while spool.depth().await.expect("spool depth") > 0 {
        assert!(
            Instant::now() < deadline,
            "the forwarded event stays in the spool"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        metrics(&spooling)
            .await
            .contains("hookbridge_spooled_events_total 1")
    );
}

/// A well-formed `SQS_QUEUE_URL` naming a queue that does not exist is a configuration error
/// found at start, not at the first webhook.
#[test]
fn a_missing_sqs_queue_stops_the_ingest_at_start() {
    let missing = format!(
        "{}/123456789012/{}",
        endpoint().trim_end_matches('/'),
        unique("absent")
    );
    let (mut proc, _dir) = on_sqs(&missing, &endpoint()).spawn();
    let status = proc.wait_exit(PATIENCE);
    let printed = proc.output().join("\n");
    assert_eq!(status.code(), Some(2), "{printed}");
    assert!(printed.contains(&missing), "names the queue: {printed}");
    assert!(!printed.contains(SECRET));
}

fn start_via(queue_url: &str, endpoint: &str) -> TestIngest {
    on_sqs(queue_url, endpoint).start()
}

/// A new queue, and an ingest that reaches SQS through a proxy the test can freeze.
async fn behind_a_freezing_proxy(
    label: &str,
) -> (
    aws_sdk_sqs::Client,
    String,
    hookbridge_tests::proxy::FreezingProxy,
    TestIngest,
) {
    let client = sqs().await;
    let queue_url = create_queue(&client, &unique(label)).await;
    let upstream = endpoint()
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let proxy = hookbridge_tests::proxy::FreezingProxy::start(&upstream).await;
    let ingest = start_via(&queue_url, proxy.url());
    (client, queue_url, proxy, ingest)
}

/// SQS hangs (connections open, nothing answered — a brown-out, not a refusal) while deliveries
/// arrive: each is answered 202 from the spool well inside GitHub's 10 s, `/ready` says degraded
/// at once instead of hanging, and when SQS answers again every spooled event reaches it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sqs_brown_out_is_ridden_out_on_the_spool() {
    let (client, queue_url, proxy, ingest) = behind_a_freezing_proxy("brownout").await;
    let before = opened(1);
    let (status, _, body) = post(&ingest, &before).await;
    assert_eq!(status, 202, "{body}");
    assert!(body.get("spooled").is_none(), "{body}");

    proxy.freeze();
    let mut during = Vec::new();
    for n in 2..=6 {
        let delivery = opened(n);
        let started = Instant::now();
        let (status, _, body) = post(&ingest, &delivery).await;
        let took = started.elapsed();
        assert_eq!(status, 202, "{body}");
        assert_eq!(body["spooled"], true, "{body}");
        assert!(
            took < Duration::from_secs(5),
            "answered after {took:?}: GitHub gives up at 10 s"
        );
        during.push(delivery.id.clone());
    }
    let started = Instant::now();
    let ready = http().get(ingest.at("/ready")).send().await.expect("ready");
    assert!(started.elapsed() < Duration::from_secs(4), "/ready hung");
    assert_eq!(ready.status(), 200);
    let ready: Value = ready.json().await.expect("JSON");
    assert_eq!(ready["status"], "degraded", "{ready}");
    assert_eq!(ready["store"], "spool", "{ready}");

    proxy.thaw();
    let envelopes = receive(&client, &queue_url, 6).await;
    for id in std::iter::once(&before.id).chain(&during) {
        assert!(
            envelopes.iter().any(|e| e.delivery.as_str() == id),
            "{id} never reached SQS:\n{}",
            ingest.printed()
        );
    }
}

/// A brown-out longer than the detour's first 10 s: after it, one delivery at a time tries SQS
/// again (the probe) while the others keep to the spool and are answered at once. Without the
/// probe, every delivery arriving in the 3 s after the detour waits its full send deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_brown_out_costs_one_slow_answer_per_probe() {
    let (_client, _queue_url, proxy, ingest) = behind_a_freezing_proxy("probe").await;
    let ingest = std::sync::Arc::new(ingest);
    let (status, _, body) = post(&ingest, &opened(1)).await;
    assert_eq!(status, 202, "{body}");

    proxy.freeze();
    let frozen = Instant::now();
    let mut deliveries = tokio::task::JoinSet::new();
    let mut n = 2;
    // Every send made before the first deadline passed (~3 s in) waits for its own deadline, and
    // each one that passes starts the detour's 10 s again: its first part ends ~16 s in.
    while frozen.elapsed() < Duration::from_secs(20) {
        let ingest = ingest.clone();
        let sent_at = frozen.elapsed();
        deliveries.spawn(async move {
            let started = Instant::now();
            let (status, _, body) = post(&ingest, &opened(n)).await;
            (sent_at, started.elapsed(), status, body)
        });
        n += 1;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let mut slow_after_detour = Vec::new();
    while let Some(done) = deliveries.join_next().await {
        let (sent_at, took, status, body) = done.expect("delivery task");
        assert_eq!(status, 202, "{body}");
        assert_eq!(body["spooled"], true, "{body}");
        if sent_at > Duration::from_secs(7) && took > Duration::from_secs(2) {
            slow_after_detour.push((sent_at, took));
        }
    }
    proxy.thaw();
    assert!(
        slow_after_detour.len() <= 1,
        "only the probe may wait for the hanging queue: {slow_after_detour:?}"
    );
}

/// An event whose envelope fits SQS's limit as bytes but not once SQS's escaping is applied
/// (characters U+FFFF become `\uffff`): decided on the escaped size, so it is claim-checked and
/// sent, not spooled to be refused forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_claim_check_is_decided_on_the_size_sqs_counts() {
    let client = sqs().await;
    let queue_url = sqs::create_queue_with_dlq(
        &client,
        &unique("escaped"),
        5,
        &[(QueueAttributeName::MaximumMessageSize, "1024")],
    )
    .await
    .queue_url;
    let ingest = start(&queue_url, true);
    let title: String = std::iter::repeat_n('\u{ffff}', 150).collect();
    let payload = serde_json::json!({
        "action": "opened",
        "issue": {"number": 1, "title": title},
        "repository": {"full_name": "octo-org/api"},
    });
    let raw = serde_json::to_vec(&payload).expect("JSON");
    assert!(raw.len() < 700, "the raw payload fits: {}", raw.len());
    let delivery = Delivery::github_raw("issues", raw).signed(SECRET);
    let (status, _, body) = post(&ingest, &delivery).await;
    assert_eq!(status, 202, "{body}");
    assert!(
        body.get("spooled").is_none(),
        "sent to SQS, not parked: {body}"
    );
    let envelopes = receive(&client, &queue_url, 1).await;
    let envelope = envelopes
        .iter()
        .find(|e| e.delivery.as_str() == delivery.id)
        .expect("the event in SQS");
    assert!(
        envelope.payload_claim.is_some(),
        "claim-checked: {envelope:?}"
    );
}

/// A spooled event SQS refuses for good when it is back (its message limit was lowered in the
/// meantime) is set aside in the spool's dead-letter table and counted, not offered forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spooled_event_sqs_refuses_for_good_is_set_aside() {
    let client = sqs().await;
    let name = unique("refused");
    let queue_url = create_queue(&client, &name).await;
    let ingest = start(&queue_url, true);
    client
        .delete_queue()
        .queue_url(&queue_url)
        .send()
        .await
        .expect("delete the queue");
    let payload = opened_payload_of_size(&GithubIssue::new("octo-org/api", 1), 4096);
    let delivery = Delivery::github_raw("issues", payload).signed(SECRET);
    let (status, _, body) = post(&ingest, &delivery).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["spooled"], true, "{body}");
    // Back, but now taking only 1 KiB messages: the spooled event can never be sent.
    let again = sqs::create_queue_with_dlq(
        &client,
        &name,
        5,
        &[(QueueAttributeName::MaximumMessageSize, "1024")],
    )
    .await
    .queue_url;
    assert_eq!(again, queue_url);
    let spool = EmbeddedQueue::open(EmbeddedOptions::in_dir(ingest.dir.path(), "spool.db"))
        .expect("open the spool");
    let deadline = Instant::now() + PATIENCE;
    loop {
        let set_aside = spool.dead_letters(10).await.expect("spool dead letters");
        if set_aside.len() == 1 && spool.depth().await.expect("depth") == 0 {
            assert!(
                set_aside[0]
                    .last_error
                    .as_deref()
                    .is_some_and(|e| !e.is_empty()),
                "{set_aside:?}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the refused event was never set aside:\n{}",
            ingest.printed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        metrics(&ingest)
            .await
            .contains("hookbridge_spool_dead_letters_total 1")
    );
}

/// Claims are collected by age: one older than any queue keeps a message goes (at the ingest's
/// start, then hourly); a recent one stays; a file that is not a claim is left alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_claims_are_collected() {
    let client = sqs().await;
    let queue_url = create_queue(&client, &unique("claims-age")).await;
    let claims = tempfile::tempdir().expect("claims dir");
    let old = claims.path().join(format!("{}.json", "a".repeat(64)));
    let recent = claims.path().join(format!("{}.json", "b".repeat(64)));
    let stranger = claims.path().join("notes.txt");
    for path in [&old, &recent, &stranger] {
        std::fs::write(path, b"{}").expect("write");
    }
    let twenty_days_ago = std::time::SystemTime::now() - Duration::from_secs(20 * 24 * 3600);
    for path in [&old, &stranger] {
        std::fs::File::options()
            .append(true)
            .open(path)
            .and_then(|f| f.set_modified(twenty_days_ago))
            .expect("age the file");
    }
    let ingest = on_sqs(&queue_url, &endpoint())
        .env("HOOKBRIDGE_CLAIM_DIR", claims.path().display().to_string())
        .start();
    let deadline = Instant::now() + PATIENCE;
    while old.exists() {
        assert!(
            Instant::now() < deadline,
            "the old claim was not collected:\n{}",
            ingest.printed()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(recent.exists(), "a recent claim is kept");
    assert!(stranger.exists(), "only claims are collected");
}

/// The spool is bounded (`HOOKBRIDGE_SPOOL_MAX_MB`): while SQS is gone, events are spooled until
/// its files reach the cap, and only then answered 503 (GitHub must be told to redeliver).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_spool_answers_503() {
    let client = sqs().await;
    let queue_url = create_queue(&client, &unique("spool-cap")).await;
    let ingest = on_sqs(&queue_url, &endpoint())
        .env("HOOKBRIDGE_SPOOL_MAX_MB", "1")
        .start();
    client
        .delete_queue()
        .queue_url(&queue_url)
        .send()
        .await
        .expect("delete the queue");
    let mut spooled = 0;
    let mut refused = None;
    for n in 1..=12 {
        // Incompressible, so that the spool's files grow by what they are sent.
        let payload =
            incompressible_opened_payload(&GithubIssue::new("octo-org/api", n), 200 * 1024);
        let delivery = Delivery::github_raw("issues", payload).signed(SECRET);
        let (status, retry_after, body) = post(&ingest, &delivery).await;
        match status {
            202 => {
                assert_eq!(body["spooled"], true, "{body}");
                spooled += 1;
            }
            503 => {
                assert!(retry_after.is_some(), "Retry-After on 503");
                assert!(
                    body["detail"]
                        .as_str()
                        .unwrap_or_default()
                        .contains("spool is full"),
                    "{body}"
                );
                refused = Some(n);
                break;
            }
            other => panic!("{other}: {body}"),
        }
    }
    // The spool's inbox holds each event once (its database only a small row), so a 1 MiB cap
    // takes about five 200 KiB events.
    assert!(
        spooled >= 1,
        "events were spooled before the cap: {spooled}"
    );
    assert!(refused.is_some(), "the cap was never reached");
}
