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
use hookbridge_tests::github::{Delivery, GithubIssue, opened_payload_of_size};
use hookbridge_tests::ingest::{PATIENCE, TestIngest, http};
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

fn start(queue_url: &str, spool: bool) -> TestIngest {
    TestIngest::ingest()
        .env("GITHUB_WEBHOOK_SECRET", SECRET)
        .env("SQS_QUEUE_URL", queue_url)
        .env("AWS_ENDPOINT_URL", endpoint())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
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
    let (mut proc, _dir) = TestIngest::ingest()
        .env("GITHUB_WEBHOOK_SECRET", SECRET)
        .env("SQS_QUEUE_URL", missing.clone())
        .env("AWS_ENDPOINT_URL", endpoint())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .spawn();
    let status = proc.wait_exit(PATIENCE);
    let printed = proc.output().join("\n");
    assert_eq!(status.code(), Some(2), "{printed}");
    assert!(printed.contains(&missing), "names the queue: {printed}");
    assert!(!printed.contains(SECRET));
}
