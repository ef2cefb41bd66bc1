//! Claim checks in S3 (`HOOKBRIDGE_CLAIM_S3_BUCKET`), against moto, which serves S3 on the same
//! port as SQS: an oversize GitHub event lands in the bucket under the prefix, the envelope in SQS
//! is small and names it, and a worker turns it into exactly one Jira issue (a redelivery reuses
//! the object); a tampered object is dead-lettered at once, not retried; with S3 down, an
//! oversize event is answered 503 and a small one still 202; bad settings stop the processes at
//! start; and the store itself classifies S3's answers. Each test has its own queues and bucket.
//!
//! Run: `cargo build --workspace --bins && scripts/with-test-services.sh cargo test -p
//! hookbridge-tests --test it claims_s3`.

use std::path::Path;
use std::time::Instant;

use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use bytes::Bytes;
use hookbridge_shared::claim::{BucketName, ClaimError, ClaimStore, S3Claims, S3Location};
use hookbridge_shared::envelope::{ClaimRef, Envelope};
use hookbridge_shared::queue::embedded::{EmbeddedOptions, EmbeddedQueue};
use hookbridge_shared::queue::sqs::{ATTR_LAST_ERROR, ATTR_RECEIVE_COUNT};
use hookbridge_tests::github::{Delivery, GithubIssue, opened_payload_of_size};
use hookbridge_tests::ingest::{PATIENCE, TestIngest, http};
use hookbridge_tests::jira_fake::{FakeConfig, JiraFake};
use hookbridge_tests::process::Proc;
use hookbridge_tests::sqs::{QueueWithDlq, endpoint};
use hookbridge_tests::wait::eventually;
use serde_json::Value;
use sha2::{Digest, Sha256};

const SECRET: &str = "claims-s3-test-s3cret-5e1b";
/// The AWS secret the processes get: moto takes any, and it must never be printed.
const AWS_SECRET: &str = "claims-s3-aws-secret-77d0c4";
const FIVE_MIB: usize = 5 * 1024 * 1024;

/// A queue with a dead-letter queue (5 receives) and SQS's real 256 KiB message limit.
async fn queues(sqs: &aws_sdk_sqs::Client, prefix: &str) -> QueueWithDlq {
    hookbridge_tests::sqs::create_queue_with_dlq(
        sqs,
        &format!("{prefix}-{}", uuid::Uuid::new_v4().simple()),
        5,
        &[(QueueAttributeName::MaximumMessageSize, "262144")],
    )
    .await
}

/// The AWS settings every process gets: moto for SQS (and S3), test credentials.
fn aws_env() -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL", endpoint()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", AWS_SECRET.into()),
    ]
}

fn ingest(queue_url: &str, claims: &[(&str, &str)]) -> TestIngest {
    let mut builder = TestIngest::ingest()
        .env("GITHUB_WEBHOOK_SECRET", SECRET)
        .env("SQS_QUEUE_URL", queue_url);
    for (key, value) in aws_env() {
        builder = builder.env(key, value);
    }
    for (key, value) in claims {
        builder = builder.env(key, *value);
    }
    builder.start()
}

fn worker(fake: &JiraFake, dir: &Path, queue_url: &str, claims: &[(&str, &str)]) -> Proc {
    let redis = std::env::var("HOOKBRIDGE_TEST_REDIS_URL")
        .expect("HOOKBRIDGE_TEST_REDIS_URL: run under scripts/with-test-services.sh (make test)");
    let mut env: Vec<(&str, String)> = vec![
        ("HOOKBRIDGE_DATA_DIR", dir.display().to_string()),
        ("SQS_QUEUE_URL", queue_url.to_owned()),
        ("REDIS_URL", redis),
        (
            "HOOKBRIDGE_REDIS_PREFIX",
            format!("hbclaims:{}:", uuid::Uuid::new_v4().simple()),
        ),
        ("JIRA_BASE_URL", fake.base_url()),
        ("JIRA_EMAIL", fake.email()),
        ("JIRA_API_TOKEN", fake.token()),
        ("JIRA_PROJECT_KEY", "DEMO".into()),
        ("HOOKBRIDGE_JIRA_SEARCH_LAG", "1".into()),
        ("HOOKBRIDGE_VISIBILITY_TIMEOUT", "5".into()),
        ("HOOKBRIDGE_DRAIN_TIMEOUT", "5".into()),
    ];
    env.extend(aws_env());
    env.extend(claims.iter().map(|(k, v)| (*k, (*v).to_owned())));
    Proc::spawn("hookbridge-worker", &[], &env)
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

fn big_delivery(number: u64) -> Delivery {
    let payload = opened_payload_of_size(&GithubIssue::new("octo-org/api", number), FIVE_MIB);
    Delivery::github_raw("issues", payload).signed(SECRET)
}

/// Whether the queue holds no message, visible or in flight.
async fn drained(sqs: &aws_sdk_sqs::Client, queue_url: &str) -> bool {
    sqs.get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(QueueAttributeName::All)
        .send()
        .await
        .ok()
        .and_then(|a| a.attributes)
        .is_some_and(|a| {
            let zero = |k| a.get(&k).map(String::as_str) == Some("0");
            zero(QueueAttributeName::ApproximateNumberOfMessages)
                && zero(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        })
}

/// Receives one message from `queue_url` and makes it visible again at once, for the worker:
/// its raw body and envelope.
async fn peek(sqs: &aws_sdk_sqs::Client, queue_url: &str) -> (String, Envelope) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let answer = sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(1)
            .wait_time_seconds(1)
            .send()
            .await
            .expect("receive");
        if let Some(message) = answer.messages.unwrap_or_default().into_iter().next() {
            let body = message.body.unwrap_or_default();
            sqs.change_message_visibility()
                .queue_url(queue_url)
                .receipt_handle(message.receipt_handle.expect("a receipt handle"))
                .visibility_timeout(0)
                .send()
                .await
                .expect("make the message visible again");
            let envelope = Envelope::decode(body.as_bytes()).expect("an envelope");
            return (body, envelope);
        }
        assert!(Instant::now() < deadline, "no message in {queue_url}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversize_event_travels_through_s3_into_one_jira_issue() {
    let sqs = hookbridge_tests::sqs::client_for(&endpoint()).await;
    let s3 = hookbridge_tests::s3::client_for(&endpoint()).await;
    let queues = queues(&sqs, "claims-s3").await;
    let bucket = hookbridge_tests::s3::create_bucket(&s3, "claims").await;
    let claims = [("HOOKBRIDGE_CLAIM_S3_BUCKET", bucket.as_str())];
    let ingest = ingest(&queues.queue_url, &claims);

    let big = big_delivery(41);
    let (status, _, body) = post(&ingest, &big).await;
    assert_eq!(status, 202, "{body}\n{}", ingest.printed());

    // The object: under the default prefix, named after its content, byte for byte the event.
    let sha256 = hex::encode(Sha256::digest(&big.body));
    let key = format!("claims/{sha256}.json");
    assert_eq!(
        hookbridge_tests::s3::list(&s3, &bucket, "").await,
        vec![(key.clone(), big.body.len() as i64)],
        "one object, under the prefix"
    );
    assert!(
        hookbridge_tests::s3::read(&s3, &bucket, &key).await == big.body,
        "the object is the event, byte for byte"
    );
    assert!(
        !ingest.dir.path().join("claims").exists(),
        "nothing goes to the claim directory"
    );

    // The envelope: small, naming the object.
    let (raw, envelope) = peek(&sqs, &queues.queue_url).await;
    assert!(
        raw.len() < 4096,
        "the envelope is small: {} bytes",
        raw.len()
    );
    assert_eq!(envelope.delivery.as_str(), big.id);
    assert!(envelope.payload.is_none());
    assert_eq!(
        envelope.payload_claim,
        Some(ClaimRef {
            sha256: sha256.clone(),
            bytes: big.body.len() as u64
        })
    );

    // The worker reads it back and makes one issue.
    let fake = JiraFake::start(FakeConfig::default()).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut worker = worker(&fake, dir.path(), &queues.queue_url, &claims);
    eventually("the issue to be created and linked", PATIENCE, || async {
        fake.issues()
            .first()
            .is_some_and(|i| i.remote_links.len() == 1)
    })
    .await;
    eventually("the message to be deleted", PATIENCE, || {
        drained(&sqs, &queues.queue_url)
    })
    .await;
    let issues = fake.issues();
    assert_eq!(issues.len(), 1, "{issues:#?}");
    assert_eq!(issues[0].summary, "GitHub Issue: Issue 41 of octo-org/api");

    // GitHub redelivers the same event: the same object is written again, and the worker
    // recognises the delivery.
    let (status, _, body) = post(&ingest, &big).await;
    assert_eq!(status, 202, "{body}");
    eventually("the redelivery to be consumed", PATIENCE, || {
        drained(&sqs, &queues.queue_url)
    })
    .await;
    assert_eq!(fake.count_issues(), 1, "a redelivery makes no second issue");
    assert_eq!(
        hookbridge_tests::s3::list(&s3, &bucket, "").await,
        vec![(key, big.body.len() as i64)],
        "the redelivery reuses the object, and nothing deletes it after the work (a lifecycle \
         rule expires claims)"
    );

    worker.terminate();
    assert!(worker.wait_exit(PATIENCE).success());
    let printed = format!("{}\n{}", ingest.printed(), worker.output().join("\n"));
    assert!(
        !printed.contains(AWS_SECRET),
        "the AWS secret was printed: {printed}"
    );
    assert!(
        printed.contains(&format!("s3://{bucket}/claims/")),
        "the logs say where claims go"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_claim_is_dead_lettered_at_once() {
    let sqs = hookbridge_tests::sqs::client_for(&endpoint()).await;
    let s3 = hookbridge_tests::s3::client_for(&endpoint()).await;
    let queues = queues(&sqs, "claims-tampered").await;
    let bucket = hookbridge_tests::s3::create_bucket(&s3, "claims-tampered").await;
    let claims = [
        ("HOOKBRIDGE_CLAIM_S3_BUCKET", bucket.as_str()),
        ("HOOKBRIDGE_CLAIM_S3_PREFIX", "hookbridge/claims/"),
    ];
    let ingest = ingest(&queues.queue_url, &claims);
    let big = big_delivery(42);
    let (status, _, body) = post(&ingest, &big).await;
    assert_eq!(status, 202, "{body}\n{}", ingest.printed());

    // Someone changes one byte of the object (its length stays, so only the hash can tell).
    let objects = hookbridge_tests::s3::list(&s3, &bucket, "hookbridge/claims/").await;
    assert_eq!(objects.len(), 1, "{objects:?}");
    let key = objects[0].0.clone();
    let mut content = hookbridge_tests::s3::read(&s3, &bucket, &key).await;
    let middle = content.len() / 2;
    content[middle] ^= 0x01;
    hookbridge_tests::s3::write(&s3, &bucket, &key, content).await;

    let fake = JiraFake::start(FakeConfig::default()).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut worker = worker(&fake, dir.path(), &queues.queue_url, &claims);
    let dead = {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let answer = sqs
                .receive_message()
                .queue_url(&queues.dlq_url)
                .message_attribute_names("All")
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .wait_time_seconds(1)
                .send()
                .await
                .expect("receive from the DLQ");
            if let Some(message) = answer.messages.unwrap_or_default().into_iter().next() {
                break message;
            }
            assert!(
                Instant::now() < deadline,
                "nothing was dead-lettered:\n{}",
                worker.output().join("\n")
            );
        }
    };
    let attribute = |name: &str| {
        dead.message_attributes
            .as_ref()
            .and_then(|a| a.get(name))
            .and_then(|v| v.string_value.clone())
            .unwrap_or_default()
    };
    let reason = attribute(ATTR_LAST_ERROR);
    assert!(reason.contains("corrupt"), "reason: {reason:?}");
    assert_eq!(
        attribute(ATTR_RECEIVE_COUNT),
        "1",
        "a corrupt claim is not retried"
    );
    // The worker audits a dead letter after moving it.
    let audit_dir = dir.path().join("audit");
    let dead_lettered = || {
        hookbridge_tests::audit::records(&audit_dir)
            .into_iter()
            .find(|r| r["action"] == "message.dead_lettered")
    };
    eventually("the dead letter to be audited", PATIENCE, || {
        let found = dead_lettered().is_some();
        async move { found }
    })
    .await;
    let audited = dead_lettered().expect("the dead letter is audited");
    assert!(
        audited["detail"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("corrupt")),
        "{audited}"
    );
    assert!(drained(&sqs, &queues.queue_url).await);
    assert_eq!(fake.count_issues(), 0, "nothing acted on altered content");
    worker.terminate();
    assert!(worker.wait_exit(PATIENCE).success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_s3_down_an_oversize_event_is_refused_with_503() {
    let sqs = hookbridge_tests::sqs::client_for(&endpoint()).await;
    let queues = queues(&sqs, "claims-down").await;
    // A port nobody listens on: S3 refuses connections while SQS (moto) answers.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("address").port()
    };
    let s3_endpoint = format!("http://127.0.0.1:{closed}");
    let ingest = ingest(
        &queues.queue_url,
        &[
            ("HOOKBRIDGE_CLAIM_S3_BUCKET", "claims-down"),
            ("AWS_ENDPOINT_URL_S3", s3_endpoint.as_str()),
        ],
    );

    let big = big_delivery(43);
    let (status, retry_after, body) = post(&ingest, &big).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body["error"].is_string() && body["detail"].is_string(),
        "{body}"
    );
    assert!(
        retry_after
            .and_then(|v| v.parse::<u64>().ok())
            .is_some_and(|s| s > 0),
        "503 carries Retry-After"
    );

    // A small event needs no claim: still 202, straight into SQS.
    let small = Delivery::github(
        "issues",
        &GithubIssue::new("octo-org/api", 44).event("opened"),
    )
    .signed(SECRET);
    let (status, _, body) = post(&ingest, &small).await;
    assert_eq!(status, 202, "{body}");
    assert!(body.get("spooled").is_none(), "{body}");
    let (_, envelope) = peek(&sqs, &queues.queue_url).await;
    assert_eq!(
        envelope.delivery.as_str(),
        small.id,
        "only the small event was queued"
    );
    let spool = EmbeddedQueue::open(EmbeddedOptions::in_dir(ingest.dir.path(), "spool.db"))
        .expect("open the spool");
    assert_eq!(
        spool.depth().await.expect("spool depth"),
        0,
        "an event whose payload could not be stored aside is not spooled either"
    );
    let printed = ingest.printed();
    assert!(printed.contains("claim store write failed"), "{printed}");
    assert!(!printed.contains(AWS_SECRET), "{printed}");
}

#[test]
fn bad_claim_settings_stop_ingest_and_worker_at_start() {
    let cases: [(&[(&str, &str)], &str); 5] = [
        (
            &[("HOOKBRIDGE_CLAIM_S3_BUCKET", "")],
            "HOOKBRIDGE_CLAIM_S3_BUCKET",
        ),
        (
            &[("HOOKBRIDGE_CLAIM_S3_BUCKET", "Claims_Bucket")],
            "HOOKBRIDGE_CLAIM_S3_BUCKET",
        ),
        (
            &[
                ("HOOKBRIDGE_CLAIM_S3_BUCKET", "claims-ok"),
                ("HOOKBRIDGE_CLAIM_S3_PREFIX", "/claims/"),
            ],
            "HOOKBRIDGE_CLAIM_S3_PREFIX",
        ),
        (
            &[("HOOKBRIDGE_CLAIM_S3_PREFIX", "claims/")],
            "HOOKBRIDGE_CLAIM_S3_PREFIX",
        ),
        (
            &[
                ("HOOKBRIDGE_CLAIM_S3_BUCKET", "claims-ok"),
                ("HOOKBRIDGE_CLAIM_DIR", "/tmp/claims"),
            ],
            "HOOKBRIDGE_CLAIM_DIR",
        ),
    ];
    let dir = tempfile::tempdir().expect("temp dir");
    for binary in ["hookbridge-ingest", "hookbridge-worker"] {
        let mut running: Vec<_> = cases
            .iter()
            .map(|(settings, key)| {
                let mut env: Vec<(&str, String)> = vec![
                    ("HOOKBRIDGE_DATA_DIR", dir.path().display().to_string()),
                    ("HOOKBRIDGE_BIND", "127.0.0.1:0".into()),
                    ("GITHUB_WEBHOOK_SECRET", SECRET.into()),
                ];
                env.extend(settings.iter().map(|(k, v)| (*k, (*v).to_owned())));
                (Proc::spawn(binary, &[], &env), *key)
            })
            .collect();
        for (proc, key) in &mut running {
            let status = proc.wait_exit(PATIENCE);
            let printed = proc.output();
            let text = printed.join("\n");
            assert_eq!(status.code(), Some(2), "{binary} {key}: {text}");
            let reasons: Vec<&String> = printed
                .iter()
                .filter(|l| !l.trim().is_empty() && serde_json::from_str::<Value>(l).is_err())
                .filter(|l| !l.starts_with("For more information"))
                .collect();
            assert_eq!(reasons.len(), 1, "{binary} {key}: one reason line:\n{text}");
            assert!(
                reasons[0].contains(*key),
                "{binary}: {key} not named in: {text}"
            );
        }
    }
}

/// The store itself against moto: what it stores, and how it sorts S3's answers into transient
/// (retry) and permanent (dead-letter).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_s3_claim_store_classifies_what_s3_answers() {
    let s3 = hookbridge_tests::s3::client_for(&endpoint()).await;
    let bucket = hookbridge_tests::s3::create_bucket(&s3, "claims-store").await;
    let location = |bucket: &str| S3Location {
        bucket: BucketName::parse(bucket).expect("a bucket name"),
        prefix: "p/".into(),
    };
    let store = ClaimStore::S3(S3Claims::with_client(s3.clone(), location(&bucket)));
    assert_eq!(store.to_string(), format!("s3://{bucket}/p/"));

    let payload = Bytes::from(vec![b'{'; 300 * 1024]);
    let claim = store.put(payload.clone()).await.expect("put");
    assert_eq!(claim.sha256, hex::encode(Sha256::digest(&payload)));
    assert_eq!(claim.bytes, payload.len() as u64);
    assert_eq!(store.get(&claim).await.expect("get"), payload);
    assert_eq!(store.put(payload.clone()).await.expect("put again"), claim);
    assert_eq!(
        hookbridge_tests::s3::list(&s3, &bucket, "").await,
        vec![(format!("p/{}.json", claim.sha256), payload.len() as i64)]
    );

    // Altered: another length, or the same length with other bytes.
    let key = format!("p/{}.json", claim.sha256);
    hookbridge_tests::s3::write(&s3, &bucket, &key, b"{}".to_vec()).await;
    let shorter = store.get(&claim).await.expect_err("a shorter object");
    assert!(
        matches!(shorter, ClaimError::Corrupt(_)) && !shorter.is_transient(),
        "{shorter}"
    );
    hookbridge_tests::s3::write(&s3, &bucket, &key, vec![b'}'; payload.len()]).await;
    let altered = store.get(&claim).await.expect_err("an altered object");
    assert!(
        matches!(altered, ClaimError::Corrupt(_)) && !altered.is_transient(),
        "{altered}"
    );

    // Gone: permanent; removing twice is fine.
    store.remove(&claim).await.expect("remove");
    store.remove(&claim).await.expect("remove again");
    let missing = store.get(&claim).await.expect_err("a removed object");
    assert!(
        matches!(missing, ClaimError::Missing { .. }) && !missing.is_transient(),
        "{missing}"
    );

    // No such bucket, or no S3 at all: transient.
    let elsewhere = ClaimStore::S3(S3Claims::with_client(
        s3.clone(),
        location(&format!("absent-{}", uuid::Uuid::new_v4().simple())),
    ));
    let no_bucket = elsewhere.put(payload.clone()).await.expect_err("no bucket");
    assert!(no_bucket.is_transient(), "{no_bucket}");
    let no_bucket = elsewhere.get(&claim).await.expect_err("no bucket");
    assert!(no_bucket.is_transient(), "{no_bucket}");
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("address").port()
    };
    let down = ClaimStore::S3(S3Claims::with_client(
        hookbridge_tests::s3::client_for(&format!("http://127.0.0.1:{closed}")).await,
        location(&bucket),
    ));
    let refused = down.get(&claim).await.expect_err("S3 down");
    assert!(
        matches!(refused, ClaimError::Unavailable { .. }) && refused.is_transient(),
        "{refused}"
    );
    assert!(!refused.to_string().contains("testing"), "{refused}");
}
