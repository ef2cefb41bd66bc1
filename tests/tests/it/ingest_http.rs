//! The HTTP contract of INTERFACE.md, row by row, against the real `hookbridge-ingest` binary
//! (embedded queue in a temp data dir), plus `hookbridge run` and `kill -9` right after 202s.

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hookbridge_shared::envelope::{Envelope, Source};
use hookbridge_shared::queue::ReceiveOptions;
use hookbridge_shared::queue::embedded::{EmbeddedOptions, EmbeddedQueue};
use hookbridge_shared::signature::sign_with;
use hookbridge_tests::github::{GithubIssue, delivery_id};
use hookbridge_tests::process::Proc;
use serde_json::{Value, json};

const SECRET: &str = "gh-s3cret-value";
const OLD_SECRET: &str = "gh-old-s3cret";
const JIRA_SECRET: &str = "jira-s3cret-value";
const PATIENCE: Duration = Duration::from_secs(30);

struct Ingest {
    proc: Proc,
    url: String,
    dir: tempfile::TempDir,
}

/// Starts the binary `name` (`hookbridge-ingest`, or `hookbridge` with `run`) and reads its URL from
/// the start-up log line.
fn start(name: &str, args: &[&str], extra: &[(&str, &str)]) -> Ingest {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut env: Vec<(&str, String)> = vec![
        ("HOOKBRIDGE_BIND", "127.0.0.1:0".into()),
        ("HOOKBRIDGE_DATA_DIR", dir.path().display().to_string()),
        ("GITHUB_WEBHOOK_SECRET", format!("{SECRET},{OLD_SECRET}")),
        ("JIRA_WEBHOOK_SECRET", JIRA_SECRET.into()),
    ];
    for (k, v) in extra {
        env.retain(|(key, _)| key != k);
        if !v.is_empty() {
            env.push((k, (*v).to_owned()));
        }
    }
    let mut proc = Proc::spawn(name, args, &env);
    let line = proc.wait_for_line("listening", PATIENCE);
    let url = serde_json::from_str::<Value>(&line)
        .ok()
        .and_then(|v| v["url"].as_str().map(str::to_owned))
        .or_else(|| {
            line.split_whitespace()
                .find(|w| w.starts_with("http"))
                .map(str::to_owned)
        })
        .unwrap_or_else(|| panic!("no URL in {line:?}"));
    Ingest { proc, url, dir }
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
}

fn opened_payload(number: u64) -> Vec<u8> {
    serde_json::to_vec(&GithubIssue::new("octo/api", number).event("opened")).expect("json")
}

async fn post_github(
    url: &str,
    path: &str,
    body: Vec<u8>,
    secret: Option<&str>,
    delivery: &str,
) -> reqwest::Response {
    let mut request = http()
        .post(format!("{url}{path}"))
        .header("Content-Type", "application/json")
        .header("X-GitHub-Event", "issues")
        .header("X-GitHub-Delivery", delivery);
    if let Some(secret) = secret {
        request = request.header("X-Hub-Signature-256", sign_with(secret, &body));
    }
    request.body(body).send().await.expect("request")
}

async fn json_of(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let body = response.text().await.expect("body");
    let value =
        serde_json::from_str(&body).unwrap_or_else(|_| panic!("{status}: not JSON: {body:?}"));
    (status, value)
}

/// Every message in the embedded queue of `dir`, decoded.
async fn queued(dir: &Path) -> Vec<Envelope> {
    let queue = EmbeddedQueue::open(EmbeddedOptions::in_dir(dir, "queue.db")).expect("queue");
    let mut all = Vec::new();
    loop {
        let batch = queue
            .receive(ReceiveOptions {
                max_messages: 10,
                wait: Duration::ZERO,
                visibility: Duration::from_secs(300),
            })
            .await
            .expect("receive");
        if batch.is_empty() {
            return all;
        }
        all.extend(
            batch
                .iter()
                .map(|m| Envelope::decode(&m.body).expect("envelope")),
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_contract_row_by_row() {
    let mut ingest = start("hookbridge-ingest", &[], &[]);
    let url = ingest.url.clone();

    // 202 on the GitHub route and its alias, signed with either rotated secret.
    let first = delivery_id();
    let (status, body) = json_of(
        post_github(
            &url,
            "/webhooks/github",
            opened_payload(1),
            Some(SECRET),
            &first,
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, body.clone()),
        (202, json!({"status": "queued", "delivery": first}))
    );
    let second = delivery_id();
    let (status, _) = json_of(
        post_github(
            &url,
            "/createJIRA",
            opened_payload(2),
            Some(OLD_SECRET),
            &second,
        )
        .await,
    )
    .await;
    assert_eq!(status, 202);

    // Form-encoded `payload=`.
    let form_delivery = delivery_id();
    let form = format!(
        "payload={}",
        url::form_urlencoded::byte_serialize(&opened_payload(3)).collect::<String>()
    )
    .into_bytes();
    let response = http()
        .post(format!("{url}/webhooks/github"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header("X-GitHub-Event", "issues")
        .header("X-GitHub-Delivery", &form_delivery)
        .header("X-Hub-Signature-256", sign_with(SECRET, &form))
        .body(form)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 202);

    // 401: wrong and missing signatures.
    let (status, body) = json_of(
        post_github(
            &url,
            "/webhooks/github",
            opened_payload(4),
            Some("wrong"),
            &delivery_id(),
        )
        .await,
    )
    .await;
    assert_eq!(status, 401);
    assert!(
        body["error"].is_string() && body["detail"].is_string(),
        "{body}"
    );
    let (status, _) = json_of(
        post_github(
            &url,
            "/webhooks/github",
            opened_payload(4),
            None,
            &delivery_id(),
        )
        .await,
    )
    .await;
    assert_eq!(status, 401);

    // 400: missing headers, malformed JSON (signed).
    let body = opened_payload(5);
    let response = http()
        .post(format!("{url}/webhooks/github"))
        .header("Content-Type", "application/json")
        .header("X-GitHub-Delivery", delivery_id())
        .header("X-Hub-Signature-256", sign_with(SECRET, &body))
        .body(body)
        .send()
        .await
        .expect("request");
    let (status, body) = json_of(response).await;
    assert_eq!(status, 400, "{body}");
    let body = opened_payload(5);
    let response = http()
        .post(format!("{url}/webhooks/github"))
        .header("Content-Type", "application/json")
        .header("X-GitHub-Event", "issues")
        .header("X-Hub-Signature-256", sign_with(SECRET, &body))
        .body(body)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 400);
    let (status, _) = json_of(
        post_github(
            &url,
            "/webhooks/github",
            b"{not json".to_vec(),
            Some(SECRET),
            &delivery_id(),
        )
        .await,
    )
    .await;
    assert_eq!(status, 400);

    // 405 with Allow: POST.
    let response = http()
        .get(format!("{url}/webhooks/github"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers()["allow"], "POST");
    let (_, body) = json_of(response).await;
    assert!(body["error"].is_string());

    // 415.
    let response = http()
        .post(format!("{url}/webhooks/github"))
        .header("Content-Type", "text/plain")
        .header("X-GitHub-Event", "issues")
        .header("X-GitHub-Delivery", delivery_id())
        .body("hello")
        .send()
        .await
        .expect("request");
    assert_eq!(json_of(response).await.0, 415);

    // 413: a body over 25 MiB (declared by Content-Length).
    let huge = vec![b' '; 26 * 1024 * 1024];
    let response = http()
        .post(format!("{url}/webhooks/github"))
        .header("Content-Type", "application/json")
        .header("X-GitHub-Event", "issues")
        .header("X-GitHub-Delivery", delivery_id())
        .header("X-Hub-Signature-256", sign_with(SECRET, &huge))
        .body(huge)
        .send()
        .await;
    if let Ok(response) = response {
        assert_eq!(response.status(), 413);
    } // (the server may close the connection while the client still sends: also a refusal)

    // 200: ping, and an event the configuration ignores.
    let ping = serde_json::to_vec(&json!({"zen": "Keep it logically awesome.", "hook_id": 1}))
        .expect("json");
    let response = http()
        .post(format!("{url}/webhooks/github"))
        .header("Content-Type", "application/json")
        .header("X-GitHub-Event", "ping")
        .header("X-GitHub-Delivery", delivery_id())
        .header("X-Hub-Signature-256", sign_with(SECRET, &ping))
        .body(ping)
        .send()
        .await
        .expect("request");
    assert_eq!(json_of(response).await, (200, json!({"status": "pong"})));
    let push = serde_json::to_vec(&json!({"ref": "refs/heads/main"})).expect("json");
    let response = http()
        .post(format!("{url}/webhooks/github"))
        .header("Content-Type", "application/json")
        .header("X-GitHub-Event", "push")
        .header("X-GitHub-Delivery", delivery_id())
        .header("X-Hub-Signature-256", sign_with(SECRET, &push))
        .body(push)
        .send()
        .await
        .expect("request");
    assert_eq!(json_of(response).await, (200, json!({"status": "ignored"})));

    // Jira route and alias: X-Hub-Signature, delivery id from X-Atlassian-Webhook-Identifier.
    let jira_body = serde_json::to_vec(&json!({
        "timestamp": 1_700_000_000_000_u64,
        "webhookEvent": "jira:issue_updated",
        "issue": {"key": "CR-1", "fields": {"status": {"name": "Approved"}}},
    }))
    .expect("json");
    for path in ["/webhooks/jira", "/jira/webhook"] {
        let id = format!("jira-{}", delivery_id());
        let response = http()
            .post(format!("{url}{path}"))
            .header("Content-Type", "application/json")
            .header("X-Atlassian-Webhook-Identifier", &id)
            .header("X-Hub-Signature", sign_with(JIRA_SECRET, &jira_body))
            .body(jira_body.clone())
            .send()
            .await
            .expect("request");
        assert_eq!(
            json_of(response).await,
            (202, json!({"status": "queued", "delivery": id}))
        );
    }
    let response = http()
        .post(format!("{url}/webhooks/jira"))
        .header("Content-Type", "application/json")
        .header("X-Hub-Signature", sign_with(SECRET, &jira_body))
        .body(jira_body.clone())
        .send()
        .await
        .expect("request");
    assert_eq!(
        response.status(),
        401,
        "the GitHub secret must not open the Jira route"
    );

    // /health, /ready, /metrics, unknown path.
    let (status, health) = json_of(
        http()
            .get(format!("{url}/health"))
            .send()
            .await
            .expect("health"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(health["status"], "healthy");
    assert_eq!(health["service"], "hookbridge-ingest");
    assert!(health["version"].is_string());
    chrono::DateTime::parse_from_rfc3339(health["timestamp"].as_str().expect("timestamp"))
        .expect("RFC 3339");
    assert_eq!(
        http()
            .get(format!("{url}/ready"))
            .send()
            .await
            .expect("ready")
            .status(),
        200
    );
    let metrics = http()
        .get(format!("{url}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    for family in [
        "hookbridge_http_requests_total{route=\"/webhooks/github\",status=\"202\"}",
        "hookbridge_http_requests_total{route=\"/webhooks/github\",status=\"401\"}",
        "hookbridge_enqueue_duration_seconds_bucket",
        "hookbridge_queue_errors_total",
        "hookbridge_queue_write_calls_total",
    ] {
        assert!(
            metrics.contains(family),
            "{family} missing from /metrics:\n{metrics}"
        );
    }
    let (status, body) =
        json_of(http().get(format!("{url}/nope")).send().await.expect("404")).await;
    assert_eq!(status, 404);
    assert!(body["error"].is_string());

    // What got 202 is in the queue, with the envelope fields the worker needs.
    ingest.proc.terminate();
    assert!(
        ingest.proc.wait_exit(PATIENCE).success(),
        "SIGTERM should exit 0"
    );
    let envelopes = queued(ingest.dir.path()).await;
    let deliveries: HashSet<&str> = envelopes.iter().map(|e| e.delivery.as_str()).collect();
    for id in [&first, &second, &form_delivery] {
        assert!(deliveries.contains(id.as_str()), "{id} not queued");
    }
    assert_eq!(envelopes.len(), 5, "only the 202s are queued");
    let e = envelopes
        .iter()
        .find(|e| e.delivery.as_str() == first)
        .expect("first");
    assert_eq!(
        (e.source, e.event.as_str(), e.action.as_deref()),
        (Source::Github, "issues", Some("opened"))
    );
    let payload: Value =
        serde_json::from_str(e.payload.as_ref().expect("payload").get()).expect("payload");
    assert_eq!(payload["issue"]["number"], 1);
    let form = envelopes
        .iter()
        .find(|e| e.delivery.as_str() == form_delivery)
        .expect("form");
    let payload: Value =
        serde_json::from_str(form.payload.as_ref().expect("payload").get()).expect("payload");
    assert_eq!(
        payload["issue"]["number"], 3,
        "form payload decoded to JSON"
    );

    // No secret or signature in anything the process printed.
    let printed = ingest.proc.output().join("\n");
    for secret in [SECRET, OLD_SECRET, JIRA_SECRET, "sha256="] {
        assert!(!printed.contains(secret), "{secret} appeared in the logs");
    }
}

#[test]
fn unsigned_routes_are_refused_unless_allowed() {
    let strict = start("hookbridge-ingest", &[], &[("JIRA_WEBHOOK_SECRET", "")]);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let response = http()
            .post(format!("{}/webhooks/jira", strict.url))
            .header("Content-Type", "application/json")
            .body(r#"{"webhookEvent":"jira:issue_updated"}"#)
            .send()
            .await
            .expect("request");
        assert_eq!(
            response.status(),
            401,
            "a route without a secret refuses all"
        );
    });
    strict.proc.terminate();
    let open = start(
        "hookbridge-ingest",
        &[],
        &[
            ("JIRA_WEBHOOK_SECRET", ""),
            ("HOOKBRIDGE_ALLOW_UNSIGNED", "true"),
        ],
    );
    runtime.block_on(async {
        let response = http()
            .post(format!("{}/webhooks/jira", open.url))
            .header("Content-Type", "application/json")
            .body(r#"{"webhookEvent":"jira:issue_updated","timestamp":1}"#)
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 202);
    });
    assert!(
        open.proc
            .output()
            .iter()
            .any(|l| l.contains("WARN") || l.contains("unsigned"))
    );
    open.proc.terminate();
}

#[test]
fn bad_configuration_stops_the_ingest_with_the_key() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().display().to_string();
    let cases: [(&[(&str, &str)], &str); 3] = [
        (&[], "secret"),
        (
            &[
                ("GITHUB_WEBHOOK_SECRET", "x"),
                ("SQS_QUEUE_URL", "not a url"),
            ],
            "SQS_QUEUE_URL",
        ),
        (
            &[
                ("GITHUB_WEBHOOK_SECRET", "x"),
                ("HOOKBRIDGE_TLS_CERT", "/nonexistent.pem"),
                ("HOOKBRIDGE_TLS_KEY", "/nonexistent.key"),
            ],
            "TLS",
        ),
    ];
    for (env, key) in cases {
        let mut vars: Vec<(&str, String)> = vec![
            ("HOOKBRIDGE_DATA_DIR", data.clone()),
            ("HOOKBRIDGE_BIND", "127.0.0.1:0".into()),
        ];
        vars.extend(env.iter().map(|(k, v)| (*k, (*v).to_owned())));
        let mut ingest = Proc::spawn("hookbridge-ingest", &[], &vars);
        let status = ingest.wait_exit(PATIENCE);
        let printed = ingest.output().join("\n");
        assert_eq!(status.code(), Some(2), "{key}: {printed}");
        assert!(
            printed.to_lowercase().contains(&key.to_lowercase()),
            "{key} not named in: {printed}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_right_after_202s_loses_nothing() {
    let mut ingest = start("hookbridge-ingest", &[], &[]);
    let url = ingest.url.clone();
    let accepted = Arc::new(Mutex::new(Vec::new()));
    let mut senders = tokio::task::JoinSet::new();
    for sender in 0..8u64 {
        let url = url.clone();
        let accepted = accepted.clone();
        senders.spawn(async move {
            for i in 0..1000u64 {
                let id = delivery_id();
                let body = opened_payload(sender * 1000 + i);
                let request = http()
                    .post(format!("{url}/webhooks/github"))
                    .header("Content-Type", "application/json")
                    .header("X-GitHub-Event", "issues")
                    .header("X-GitHub-Delivery", &id)
                    .header("X-Hub-Signature-256", sign_with(SECRET, &body))
                    .body(body)
                    .send()
                    .await;
                match request {
                    Ok(r) if r.status() == 202 => accepted.lock().expect("lock").push(id),
                    _ => return,
                }
            }
        });
    }
    // Kill while the senders are still going.
    let deadline = std::time::Instant::now() + PATIENCE;
    while accepted.lock().expect("lock").len() < 100 {
        assert!(
            std::time::Instant::now() < deadline,
            "the ingest did not accept 100 events"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    ingest.proc.kill9();
    while senders.join_next().await.is_some() {}
    let acknowledged = accepted.lock().expect("lock").clone();
    let queued: HashSet<String> = queued(ingest.dir.path())
        .await
        .into_iter()
        .map(|e| e.delivery.as_str().to_owned())
        .collect();
    let lost: Vec<&String> = acknowledged
        .iter()
        .filter(|id| !queued.contains(*id))
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged events lost: {lost:?}",
        lost.len(),
        acknowledged.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hookbridge_run_serves_health_accepts_signed_events_and_consumes_them() {
    let mut run = start("hookbridge", &["run"], &[("JIRA_PROJECT_KEY", "DEMO")]);
    let url = run.url.clone();
    let health = http()
        .get(format!("{url}/health"))
        .send()
        .await
        .expect("health");
    assert_eq!(health.status(), 200);
    let id = delivery_id();
    let (status, _) = json_of(
        post_github(
            &url,
            "/webhooks/github",
            opened_payload(1),
            Some(SECRET),
            &id,
        )
        .await,
    )
    .await;
    assert_eq!(status, 202);
    let (status, _) = json_of(
        post_github(
            &url,
            "/webhooks/github",
            opened_payload(1),
            Some("wrong"),
            &delivery_id(),
        )
        .await,
    )
    .await;
    assert_eq!(status, 401);
    // Dry-run: the worker in the same process writes the Jira request it would send.
    let audit = run.dir.path().join("audit").join("audit.jsonl");
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        let trail = std::fs::read_to_string(&audit).unwrap_or_default();
        if trail.contains("/rest/api/3/issue") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no dry-run record in {}",
            audit.display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    run.proc.terminate();
    assert!(run.proc.wait_exit(PATIENCE).success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_serves_https_with_the_given_certificate() {
    let certified =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .expect("self-signed certificate");
    let pem_dir = tempfile::tempdir().expect("temp dir");
    let cert = pem_dir.path().join("cert.pem");
    let key = pem_dir.path().join("key.pem");
    std::fs::write(&cert, certified.cert.pem()).expect("write cert");
    std::fs::write(&key, certified.signing_key.serialize_pem()).expect("write key");
    let cert_arg = cert.display().to_string();
    let key_arg = key.display().to_string();
    let mut ingest = start(
        "hookbridge-ingest",
        &["--tls-cert", &cert_arg, "--tls-key", &key_arg],
        &[],
    );
    assert!(ingest.url.starts_with("https://"), "{}", ingest.url);
    let client = reqwest::Client::builder()
        .no_proxy()
        .tls_certs_only([
            reqwest::Certificate::from_pem(certified.cert.pem().as_bytes()).expect("cert"),
        ])
        .build()
        .expect("client");
    let health = client
        .get(format!("{}/health", ingest.url))
        .send()
        .await
        .expect("https request");
    assert_eq!(health.status(), 200);
    let id = delivery_id();
    let body = opened_payload(1);
    let response = client
        .post(format!("{}/webhooks/github", ingest.url))
        .header("Content-Type", "application/json")
        .header("X-GitHub-Event", "issues")
        .header("X-GitHub-Delivery", &id)
        .header("X-Hub-Signature-256", sign_with(SECRET, &body))
        .body(body)
        .send()
        .await
        .expect("https request");
    assert_eq!(response.status(), 202);
    ingest.proc.terminate();
    assert!(ingest.proc.wait_exit(PATIENCE).success());
}
