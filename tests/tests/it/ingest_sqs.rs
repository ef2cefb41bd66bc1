//! The ingest on the SQS backend (moto): a 5 MiB event goes through the claim check and comes back
//! byte-identical; with SQS gone, events wait in the local spool (or, spool off, get 503).

use std::time::{Duration, Instant};

use aws_sdk_sqs::types::QueueAttributeName;
use hookbridge_shared::claim::ClaimStore;
use hookbridge_shared::envelope::Envelope;
use hookbridge_shared::signature::sign_with;
use hookbridge_tests::github::delivery_id;
use hookbridge_tests::process::Proc;
use serde_json::{Value, json};

const SECRET: &str = "sqs-test-s3cret";
const PATIENCE: Duration = Duration::from_secs(30);

fn endpoint() -> String {
    std::env::var("HOOKBRIDGE_TEST_SQS_ENDPOINT").expect(
        "HOOKBRIDGE_TEST_SQS_ENDPOINT: run under scripts/with-test-services.sh (make test), which starts moto",
    )
}

async fn sqs() -> aws_sdk_sqs::Client {
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint())
        .region(aws_sdk_sqs::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sqs::config::Credentials::new(
            "testing", "testing", None, None, "tests",
        ))
        .load()
        .await;
    aws_sdk_sqs::Client::new(&config)
}

/// A queue with SQS's default 256 KiB message limit set explicitly (moto's default is 1 MiB).
async fn create_queue(client: &aws_sdk_sqs::Client, name: &str) -> String {
    client
        .create_queue()
        .queue_name(name)
        .attributes(QueueAttributeName::MaximumMessageSize, "262144")
        .send()
        .await
        .expect("create queue")
        .queue_url
        .expect("queue URL")
}

fn start(queue_url: &str, dir: &std::path::Path, spool: bool) -> (Proc, String) {
    let env: Vec<(&str, String)> = vec![
        ("HOOKBRIDGE_BIND", "127.0.0.1:0".into()),
        ("HOOKBRIDGE_DATA_DIR", dir.display().to_string()),
        ("GITHUB_WEBHOOK_SECRET", SECRET.into()),
        ("SQS_QUEUE_URL", queue_url.into()),
        ("AWS_ENDPOINT_URL", endpoint()),
        ("HOOKBRIDGE_SQS_SPOOL", spool.to_string()),
    ];
    let mut proc = Proc::spawn("hookbridge-ingest", &[], &env);
    let line = proc.wait_for_line("listening", PATIENCE);
    let url = serde_json::from_str::<Value>(&line).expect("JSON log")["url"]
        .as_str()
        .expect("url")
        .to_owned();
    (proc, url)
}

async fn post(url: &str, body: &[u8], delivery: &str) -> (u16, Value) {
    let response = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
        .post(format!("{url}/webhooks/github"))
        .header("Content-Type", "application/json")
        .header("X-GitHub-Event", "issues")
        .header("X-GitHub-Delivery", delivery)
        .header("X-Hub-Signature-256", sign_with(SECRET, body))
        .body(body.to_vec())
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn receive_all(client: &aws_sdk_sqs::Client, queue_url: &str, want: usize) -> Vec<Envelope> {
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
        }
    }
    found
}

fn issue_payload(padding: usize) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "action": "opened",
        "issue": {"number": 1, "title": "big", "body": "b".repeat(padding), "html_url": "https://github.com/o/r/issues/1", "user": {"login": "o"}, "labels": []},
        "repository": {"full_name": "o/r"},
        "sender": {"login": "o"},
    }))
    .expect("json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_5_mib_event_is_stored_aside_and_comes_back_intact() {
    let client = sqs().await;
    let queue_url = create_queue(
        &client,
        &format!("ingest-big-{}", uuid::Uuid::new_v4().simple()),
    )
    .await;
    let dir = tempfile::tempdir().expect("temp dir");
    let (_ingest, url) = start(&queue_url, dir.path(), true);
    let small = delivery_id();
    assert_eq!(post(&url, &issue_payload(100), &small).await.0, 202);
    let big = delivery_id();
    let payload = issue_payload(5 * 1024 * 1024);
    let (status, body) = post(&url, &payload, &big).await;
    assert_eq!(status, 202, "{body}");
    let envelopes = receive_all(&client, &queue_url, 2).await;
    assert_eq!(envelopes.len(), 2);
    let inline = envelopes
        .iter()
        .find(|e| e.delivery.as_str() == small)
        .expect("small event");
    assert!(inline.payload.is_some() && inline.payload_claim.is_none());
    let claimed = envelopes
        .iter()
        .find(|e| e.delivery.as_str() == big)
        .expect("big event");
    let claim = claimed
        .payload_claim
        .as_ref()
        .expect("a claim check for 5 MiB");
    let stored = ClaimStore::new(dir.path().join("claims"))
        .get(claim)
        .expect("claimed payload");
    assert_eq!(stored, payload, "the payload must come back byte for byte");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_sqs_events_are_spooled_or_refused_with_503() {
    let client = sqs().await;
    let name = format!("ingest-gone-{}", uuid::Uuid::new_v4().simple());
    let queue_url = create_queue(&client, &name).await;
    let spool_dir = tempfile::tempdir().expect("temp dir");
    let (_spooling, spool_url) = start(&queue_url, spool_dir.path(), true);
    let strict_dir = tempfile::tempdir().expect("temp dir");
    let (_strict, strict_url) = start(&queue_url, strict_dir.path(), false);
    client
        .delete_queue()
        .queue_url(&queue_url)
        .send()
        .await
        .expect("delete queue");

    let refused = post(&strict_url, &issue_payload(10), &delivery_id()).await;
    assert_eq!(refused.0, 503, "{}", refused.1);
    assert!(refused.1["error"].is_string());

    let spooled_id = delivery_id();
    let (status, body) = post(&spool_url, &issue_payload(10), &spooled_id).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["spooled"], true, "{body}");

    // SQS is back (same name, same URL): the spool forwards the event.
    let again = create_queue(&client, &name).await;
    assert_eq!(again, queue_url);
    let envelopes = receive_all(&client, &queue_url, 1).await;
    assert!(
        envelopes.iter().any(|e| e.delivery.as_str() == spooled_id),
        "the spooled event was not forwarded"
    );
}
