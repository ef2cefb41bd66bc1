//! The ingest's outside contract (the README: "HTTP contract (ingest)", the secrets rows of
//! "Configuration"), row by row, against the real `hookbridge-ingest` binary: each test starts its
//! own process on `127.0.0.1:0` with the embedded queue in its own temp dir, talks HTTP to it, and
//! looks behind it by opening that queue. Nothing waits a fixed time: conditions are awaited with a
//! deadline.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use hookbridge_shared::envelope::{Envelope, Source};
use hookbridge_tests::github::{
    Delivery, GithubIssue, jira_issue_updated, opened_payload_of_size, signature,
};
use hookbridge_tests::ingest::{PATIENCE, TestIngest, embedded_queue_contents, http};
use hookbridge_tests::process::Signal;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const SECRET: &str = "gh-new-s3cret-9f2c";
const OLD_SECRET: &str = "gh-old-s3cret-77ab";
const JIRA_SECRET: &str = "jira-s3cret-41d0";

/// An ingest with two GitHub secrets (rotation: new first, old second) and a Jira secret.
fn ingest() -> TestIngest {
    TestIngest::ingest()
        .env("GITHUB_WEBHOOK_SECRET", format!("{SECRET},{OLD_SECRET}"))
        .env("JIRA_WEBHOOK_SECRET", JIRA_SECRET)
        .start()
}

fn opened(number: u64) -> Value {
    GithubIssue::new("octo-org/api", number)
        .with_labels(&["bug", "needs triage"])
        .event("opened")
}

/// Status and JSON body; fails the test when the body is not JSON.
async fn answer(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.expect("read the answer");
    let body = serde_json::from_str(&text)
        .unwrap_or_else(|_| panic!("answer {status} is not JSON: {text:?}"));
    (status, body)
}

/// Sends `delivery` to `path` and returns status and JSON body.
async fn post(ingest: &TestIngest, path: &str, delivery: &Delivery) -> (u16, Value) {
    answer(
        delivery
            .post(&http(), &ingest.at(path))
            .send()
            .await
            .expect("send the delivery"),
    )
    .await
}

/// Every error answer is `{"error": <string>, "detail": <string>}`.
fn assert_error_shape(status: u16, body: &Value, context: &str) {
    assert!(
        body["error"].as_str().is_some_and(|e| !e.is_empty())
            && body["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "{context}: answer {status} is not {{\"error\",\"detail\"}}: {body}"
    );
}

/// Nothing secret in what the process printed: no secret value, no signature, no `sha256=`.
fn assert_no_secrets_printed(ingest: &TestIngest, signatures: &[String]) {
    let printed = ingest.printed();
    for secret in [SECRET, OLD_SECRET, JIRA_SECRET, "sha256="] {
        assert!(
            !printed.contains(secret),
            "{secret:?} appeared in the logs:\n{printed}"
        );
    }
    for signature in signatures {
        let hex = signature.trim_start_matches("sha256=");
        assert!(
            !printed.contains(hex),
            "a signature appeared in the logs:\n{printed}"
        );
    }
}

fn payload_of(envelope: &Envelope) -> Value {
    serde_json::from_str(envelope.payload.as_ref().expect("payload inline").get())
        .expect("payload is JSON")
}

/// Row "POST /webhooks/github, alias POST /createJIRA" and answer 202: signed with either rotated
/// secret, JSON or form-encoded, the event is answered `{"status":"queued","delivery":id}` and is
/// really in the queue with the envelope fields the worker reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_github_deliveries_are_queued_on_both_routes() {
    let ingest = ingest();

    let first = Delivery::github("issues", &opened(1)).signed(SECRET);
    assert_eq!(
        post(&ingest, "/webhooks/github", &first).await,
        (202, json!({"status": "queued", "delivery": first.id}))
    );
    // The alias, signed with the second (older) of the two rotated secrets.
    let second = Delivery::github("issues", &opened(2)).signed(OLD_SECRET);
    assert_eq!(
        post(&ingest, "/createJIRA", &second).await,
        (202, json!({"status": "queued", "delivery": second.id}))
    );
    // A hook configured with application/x-www-form-urlencoded: `payload=<json>`.
    let form = Delivery::github_form("issues", &opened(3)).signed(SECRET);
    assert_eq!(
        post(&ingest, "/webhooks/github", &form).await,
        (202, json!({"status": "queued", "delivery": form.id}))
    );
    // issue_comment is enqueued too (the default filter takes issues and issue_comment).
    let comment = Delivery::github(
        "issue_comment",
        &GithubIssue::new("octo-org/api", 1).comment(7, "hubot", "Same here"),
    )
    .signed(SECRET);
    assert_eq!(post(&ingest, "/webhooks/github", &comment).await.0, 202);

    let envelopes: HashMap<String, Envelope> = embedded_queue_contents(ingest.dir.path())
        .await
        .into_iter()
        .map(|e| (e.delivery.as_str().to_owned(), e))
        .collect();
    assert_eq!(envelopes.len(), 4, "exactly the 202s are queued");

    let e = &envelopes[&first.id];
    assert_eq!(
        (e.source, e.event.as_str(), e.action.as_deref()),
        (Source::Github, "issues", Some("opened"))
    );
    assert_eq!(
        e.payload.as_ref().expect("payload").get().as_bytes(),
        first.body.as_slice(),
        "the payload travels exactly as received"
    );
    assert_eq!(
        e.headers.get("x-github-event").map(String::as_str),
        Some("issues")
    );
    assert_eq!(
        e.headers.get("x-github-delivery").map(String::as_str),
        Some(first.id.as_str())
    );
    assert!(
        e.headers.keys().all(|k| !k.contains("signature")),
        "no signature travels on the queue: {:?}",
        e.headers
    );
    assert!(e.payload_claim.is_none());

    assert_eq!(payload_of(&envelopes[&second.id])["issue"]["number"], 2);
    let form_payload = payload_of(&envelopes[&form.id]);
    assert_eq!(
        form_payload,
        opened(3),
        "the form's payload= is decoded to the JSON document"
    );
    let c = &envelopes[&comment.id];
    assert_eq!(
        (c.event.as_str(), c.action.as_deref()),
        ("issue_comment", Some("created"))
    );

    let signatures: Vec<String> = [&first, &second, &form, &comment]
        .iter()
        .filter_map(|d| d.signature().map(str::to_owned))
        .collect();
    assert_no_secrets_printed(&ingest, &signatures);
}

/// Answers 401, 400, 405, 415 and 404: each is JSON `{"error","detail"}`, and none of the refused
/// requests reaches the queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_requests_get_json_errors_and_are_not_queued() {
    let ingest = ingest();
    let mut signatures = Vec::new();
    let mut check = async |path: &str, delivery: Delivery, want: u16, context: &str| {
        if let Some(s) = delivery.signature() {
            signatures.push(s.to_owned());
        }
        let (status, body) = post(&ingest, path, &delivery).await;
        assert_eq!(status, want, "{context}: {body}");
        assert_error_shape(status, &body, context);
        body
    };

    // 401: wrong secret, missing signature, malformed header, the legacy SHA-1 header only, and the
    // Jira secret on the GitHub route.
    let body = check(
        "/webhooks/github",
        Delivery::github("issues", &opened(1)).signed("not-the-secret"),
        401,
        "wrong signature",
    )
    .await;
    assert!(
        !body.to_string().contains("sha256="),
        "a 401 must not echo signatures: {body}"
    );
    check(
        "/webhooks/github",
        Delivery::github("issues", &opened(1)),
        401,
        "missing signature",
    )
    .await;
    check(
        "/createJIRA",
        Delivery::github("issues", &opened(1)).header("X-Hub-Signature-256", "sha256=abc"),
        401,
        "malformed signature",
    )
    .await;
    check(
        "/webhooks/github",
        Delivery::github("issues", &opened(1)).header(
            "X-Hub-Signature",
            "sha1=0000000000000000000000000000000000000000",
        ),
        401,
        "legacy SHA-1 signature only",
    )
    .await;
    check(
        "/webhooks/github",
        Delivery::github("issues", &opened(1)).signed(JIRA_SECRET),
        401,
        "the Jira secret on the GitHub route",
    )
    .await;
    // A signature over different bytes than were sent.
    let mut tampered = Delivery::github("issues", &opened(1)).signed(SECRET);
    tampered.body.extend_from_slice(b" ");
    check(
        "/webhooks/github",
        tampered,
        401,
        "body changed after signing",
    )
    .await;

    // 400: missing X-GitHub-Event / X-GitHub-Delivery, malformed JSON, a form without payload=.
    check(
        "/webhooks/github",
        Delivery::github("issues", &opened(1))
            .without("X-GitHub-Event")
            .signed(SECRET),
        400,
        "missing X-GitHub-Event",
    )
    .await;
    check(
        "/webhooks/github",
        Delivery::github("issues", &opened(1))
            .without("X-GitHub-Delivery")
            .signed(SECRET),
        400,
        "missing X-GitHub-Delivery",
    )
    .await;
    check(
        "/webhooks/github",
        Delivery::github_raw("issues", b"{\"action\": \"opened\", ".to_vec()).signed(SECRET),
        400,
        "malformed JSON",
    )
    .await;
    check(
        "/webhooks/github",
        Delivery::github_raw("issues", b"payload_missing=1".to_vec())
            .header("Content-Type", "application/x-www-form-urlencoded")
            .signed(SECRET),
        400,
        "form without payload=",
    )
    .await;
    check(
        "/webhooks/jira",
        Delivery::github_raw("x", b"[1, 2]".to_vec())
            .without("X-GitHub-Event")
            .jira_signed(JIRA_SECRET),
        400,
        "Jira body that is not an object",
    )
    .await;

    // 415: text/plain, and no content type at all; Jira does not send forms.
    check(
        "/webhooks/github",
        Delivery::github("issues", &opened(1))
            .header("Content-Type", "text/plain")
            .signed(SECRET),
        415,
        "text/plain",
    )
    .await;
    check(
        "/webhooks/github",
        Delivery::github("issues", &opened(1))
            .without("Content-Type")
            .signed(SECRET),
        415,
        "no content type",
    )
    .await;
    check(
        "/webhooks/jira",
        Delivery::github_form("issues", &opened(1)).jira_signed(JIRA_SECRET),
        415,
        "a form on the Jira route",
    )
    .await;

    // 405 with Allow: POST on every webhook route, for any other method.
    for path in [
        "/webhooks/github",
        "/createJIRA",
        "/webhooks/jira",
        "/jira/webhook",
    ] {
        for method in [
            reqwest::Method::GET,
            reqwest::Method::PUT,
            reqwest::Method::DELETE,
        ] {
            let response = http()
                .request(method.clone(), ingest.at(path))
                .send()
                .await
                .expect("request");
            assert_eq!(
                response.headers().get("allow").map(|v| v.as_bytes()),
                Some(&b"POST"[..]),
                "{method} {path}: Allow header"
            );
            let (status, body) = answer(response).await;
            assert_eq!(status, 405, "{method} {path}");
            assert_error_shape(status, &body, &format!("{method} {path}"));
        }
    }

    // 404 on an unknown path, JSON as well.
    for path in ["/nope", "/webhooks/gitlab", "/webhooks/github/extra"] {
        let (status, body) =
            answer(http().get(ingest.at(path)).send().await.expect("request")).await;
        assert_eq!(status, 404, "{path}");
        assert_error_shape(status, &body, path);
    }

    assert!(
        embedded_queue_contents(ingest.dir.path()).await.is_empty(),
        "a refused request must not be queued"
    );
    assert_no_secrets_printed(&ingest, &signatures);
}

/// Writes `head` and then `body` on a fresh connection and reads one HTTP/1.1 answer.
async fn raw_exchange(stream: &mut TcpStream) -> (u16, String, Value) {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 8192];
    let read = async {
        loop {
            let n = stream.read(&mut chunk).await.expect("read the answer");
            assert!(n > 0, "connection closed before a full answer: {buffer:?}");
            buffer.extend_from_slice(&chunk[..n]);
            let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") else {
                continue;
            };
            let head = String::from_utf8_lossy(&buffer[..end]).to_string();
            let length = head
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().ok())?
                })
                .expect("content-length in the answer");
            if buffer.len() >= end + 4 + length {
                let status = head
                    .split_whitespace()
                    .nth(1)
                    .and_then(|s| s.parse().ok())
                    .expect("status code");
                let body = serde_json::from_slice(&buffer[end + 4..end + 4 + length])
                    .expect("a JSON answer");
                return (status, head, body);
            }
        }
    };
    tokio::time::timeout(PATIENCE, read)
        .await
        .expect("no answer in time")
}

fn host_port(url: &str) -> String {
    url.trim_start_matches("http://").to_owned()
}

/// Answer 413: a body over 25 MiB is refused as soon as that is known, without reading (let alone
/// buffering) it all, and the process stays healthy. A body just under the cap is accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_over_25_mib_get_413_without_being_read() {
    let ingest = ingest();
    let address = host_port(&ingest.url);
    let over = 26 * 1024 * 1024;

    // Declared by Content-Length: only 1 MiB of the 26 MiB is ever sent, and the answer comes.
    let mut stream = TcpStream::connect(&address).await.expect("connect");
    let head = format!(
        "POST /webhooks/github HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n\
         X-GitHub-Event: issues\r\nX-GitHub-Delivery: big-1\r\n\
         X-Hub-Signature-256: {}\r\nContent-Length: {over}\r\n\r\n",
        signature(SECRET, b"irrelevant")
    );
    stream.write_all(head.as_bytes()).await.expect("send head");
    stream
        .write_all(&vec![b' '; 1024 * 1024])
        .await
        .expect("send the first MiB");
    let (status, _, body) = raw_exchange(&mut stream).await;
    assert_eq!(status, 413, "{body}");
    assert_error_shape(status, &body, "413 by Content-Length");
    drop(stream);

    // Chunked, with no length announced: refused once the stream crosses the cap.
    let mut stream = TcpStream::connect(&address).await.expect("connect");
    let head = format!(
        "POST /createJIRA HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n\
         X-GitHub-Event: issues\r\nX-GitHub-Delivery: big-2\r\n\
         X-Hub-Signature-256: {}\r\nTransfer-Encoding: chunked\r\n\r\n",
        signature(SECRET, b"irrelevant")
    );
    stream.write_all(head.as_bytes()).await.expect("send head");
    let (mut reader, mut writer) = stream.into_split();
    let sender = tokio::spawn(async move {
        let chunk = vec![b' '; 1024 * 1024];
        for _ in 0..26 {
            let framed = [format!("{:x}\r\n", chunk.len()).as_bytes(), &chunk, b"\r\n"].concat();
            if writer.write_all(&framed).await.is_err() {
                return None; // The server may stop reading once it has refused.
            }
        }
        let _ = writer.write_all(b"0\r\n\r\n").await;
        Some(writer) // Kept open until the answer is read.
    });
    let mut answer_bytes = Vec::new();
    let mut buf = [0u8; 4096];
    let read = async {
        while !answer_bytes.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = reader.read(&mut buf).await.expect("read");
            assert!(n > 0, "closed without an answer");
            answer_bytes.extend_from_slice(&buf[..n]);
        }
    };
    tokio::time::timeout(PATIENCE, read)
        .await
        .expect("no answer to the chunked body");
    let text = String::from_utf8_lossy(&answer_bytes);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    let _ = sender.await;

    // With an ordinary client sending it all: 413 (or the connection is cut while sending).
    let huge = Delivery::github_raw("issues", vec![b' '; over]).signed(SECRET);
    if let Ok(response) = huge
        .post(&http(), &ingest.at("/webhooks/github"))
        .send()
        .await
    {
        assert_eq!(response.status(), 413);
    }

    // The process is still healthy and still accepts: a body just under the cap goes through.
    assert_eq!(
        http()
            .get(ingest.at("/health"))
            .send()
            .await
            .expect("health")
            .status(),
        200
    );
    let payload = opened_payload_of_size(
        &GithubIssue::new("octo-org/api", 9),
        24 * 1024 * 1024 + 512 * 1024,
    );
    assert!(payload.len() < 25 * 1024 * 1024);
    let large = Delivery::github_raw("issues", payload).signed(SECRET);
    assert_eq!(post(&ingest, "/webhooks/github", &large).await.0, 202);
    let queued = embedded_queue_contents(ingest.dir.path()).await;
    assert_eq!(queued.len(), 1, "only the accepted body is queued");
    assert_eq!(
        queued[0]
            .payload
            .as_ref()
            .expect("payload")
            .get()
            .as_bytes(),
        large.body.as_slice()
    );
    assert!(
        ingest.proc.output().iter().all(|l| !l.contains("panicked")),
        "{}",
        ingest.printed()
    );
}

/// Answer 200: `ping`, and event types the configuration ignores (`{"status":"ignored"}`); neither
/// is queued. With a `--config` file the filters change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_and_ignored_events_get_200_and_are_not_queued() {
    let ingest = ingest();
    let ping = Delivery::github(
        "ping",
        &json!({"zen": "Keep it logically awesome.", "hook_id": 424242, "hook": {"type": "Repository"}}),
    )
    .signed(SECRET);
    let (status, body) = post(&ingest, "/webhooks/github", &ping).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["status"].is_string(), "{body}");
    // By default only the events the worker acts on are enqueued (issues, issue_comment,
    // deployment_protection_rule, pull_request, push): others are answered "ignored".
    for event in ["star", "fork", "watch"] {
        let delivery = Delivery::github(
            event,
            &json!({"ref": "refs/heads/main", "action": "created"}),
        )
        .signed(SECRET);
        assert_eq!(
            post(&ingest, "/webhooks/github", &delivery).await,
            (200, json!({"status": "ignored"})),
            "{event}"
        );
    }
    // Even ignored events are authenticated first.
    let unsigned = Delivery::github("push", &json!({"ref": "refs/heads/main"}));
    assert_eq!(post(&ingest, "/webhooks/github", &unsigned).await.0, 401);
    assert!(embedded_queue_contents(ingest.dir.path()).await.is_empty());

    // A configuration file that takes every GitHub event and only one Jira event.
    let config_dir = tempfile::tempdir().expect("temp dir");
    let config = config_dir.path().join("hookbridge.toml");
    std::fs::write(
        &config,
        "[ingest]\ngithub_events = [\"*\"]\njira_events = [\"jira:issue_updated\"]\n",
    )
    .expect("write config");
    let filtered = TestIngest::ingest()
        .arg("--config")
        .arg(config.display().to_string())
        .env("GITHUB_WEBHOOK_SECRET", SECRET)
        .env("JIRA_WEBHOOK_SECRET", JIRA_SECRET)
        .start();
    let push = Delivery::github("push", &json!({"ref": "refs/heads/main"})).signed(SECRET);
    assert_eq!(post(&filtered, "/webhooks/github", &push).await.0, 202);
    let mut created = jira_issue_updated("OPS-1", "To Do");
    created["webhookEvent"] = "jira:issue_created".into();
    assert_eq!(
        post(
            &filtered,
            "/webhooks/jira",
            &Delivery::jira(&created).jira_signed(JIRA_SECRET)
        )
        .await,
        (200, json!({"status": "ignored"}))
    );
    let queued = embedded_queue_contents(filtered.dir.path()).await;
    assert_eq!(
        queued
            .iter()
            .map(|e| e.delivery.as_str())
            .collect::<Vec<_>>(),
        vec![push.id.as_str()]
    );
}

/// Row "POST /webhooks/jira, alias POST /jira/webhook": `X-Hub-Signature` over the raw body, and the
/// delivery id is `X-Atlassian-Webhook-Identifier` (stable across Jira's retries); without one, a
/// retry of the same body still gets the same id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jira_deliveries_are_verified_and_keyed_by_the_atlassian_identifier() {
    let ingest = ingest();
    let mut ids = Vec::new();
    for path in ["/webhooks/jira", "/jira/webhook"] {
        let delivery = Delivery::jira(&jira_issue_updated("CR-7", "Approved"))
            .header("X-Atlassian-Webhook-Retry", "1")
            .jira_signed(JIRA_SECRET);
        assert_eq!(
            post(&ingest, path, &delivery).await,
            (202, json!({"status": "queued", "delivery": delivery.id})),
            "{path}"
        );
        ids.push(delivery.id);
    }
    for (delivery, context) in [
        (
            Delivery::jira(&jira_issue_updated("CR-7", "Approved")).jira_signed(SECRET),
            "the GitHub secret on the Jira route",
        ),
        (
            Delivery::jira(&jira_issue_updated("CR-7", "Approved")),
            "no signature",
        ),
        (
            Delivery::jira(&jira_issue_updated("CR-7", "Approved")).signed(JIRA_SECRET),
            "the GitHub header name on the Jira route",
        ),
    ] {
        let (status, body) = post(&ingest, "/jira/webhook", &delivery).await;
        assert_eq!(status, 401, "{context}: {body}");
        assert_error_shape(status, &body, context);
    }

    // No identifier: the same body twice is the same delivery.
    let anonymous = Delivery::jira(&jira_issue_updated("CR-8", "Rejected"))
        .without("X-Atlassian-Webhook-Identifier")
        .jira_signed(JIRA_SECRET);
    let (status, first) = post(&ingest, "/webhooks/jira", &anonymous).await;
    assert_eq!(status, 202, "{first}");
    let (_, again) = post(&ingest, "/webhooks/jira", &anonymous).await;
    assert_eq!(first["delivery"], again["delivery"], "a retry keeps its id");

    let envelopes = embedded_queue_contents(ingest.dir.path()).await;
    for id in &ids {
        let e = envelopes
            .iter()
            .find(|e| e.delivery.as_str() == id)
            .unwrap_or_else(|| panic!("{id} not queued"));
        assert_eq!(
            (e.source, e.event.as_str(), e.action.as_deref()),
            (Source::Jira, "jira:issue_updated", Some("issue_generic"))
        );
        assert_eq!(payload_of(e)["issue"]["key"], "CR-7");
        assert_eq!(
            e.headers.get("x-atlassian-webhook-identifier"),
            Some(id),
            "{:?}",
            e.headers
        );
    }
    assert_no_secrets_printed(&ingest, &[]);

    // WEBHOOK_SECRET is the documented alias of JIRA_WEBHOOK_SECRET.
    let aliased = TestIngest::ingest()
        .env("WEBHOOK_SECRET", JIRA_SECRET)
        .start();
    let delivery = Delivery::jira(&jira_issue_updated("CR-9", "Approved")).jira_signed(JIRA_SECRET);
    assert_eq!(post(&aliased, "/webhooks/jira", &delivery).await.0, 202);
}

/// Jira Automation's "Send web request" can only add a fixed header, so
/// `JIRA_WEBHOOK_AUTH=hmac-or-shared-secret` also accepts `X-Webhook-Signature: sha256=<secret>`:
/// off by default, compared in constant time, announced with a warning at start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_jira_automation_shared_secret_header_is_opt_in() {
    let automation = |secret: &str| {
        Delivery::jira(&jira_issue_updated("CR-10", "Approved"))
            .header("X-Webhook-Signature", &format!("sha256={secret}"))
    };
    // Off by default: the header alone gets nowhere.
    let strict = ingest();
    let (status, body) = post(&strict, "/webhooks/jira", &automation(JIRA_SECRET)).await;
    assert_eq!(status, 401, "{body}");
    assert!(!strict.printed().contains("X-Webhook-Signature"));

    let open = TestIngest::ingest()
        .env("JIRA_WEBHOOK_SECRET", JIRA_SECRET)
        .env("JIRA_WEBHOOK_AUTH", "hmac-or-shared-secret")
        .start();
    assert!(
        open.printed().contains("X-Webhook-Signature"),
        "no warning at start:\n{}",
        open.printed()
    );
    let delivery = automation(JIRA_SECRET);
    assert_eq!(
        post(&open, "/webhooks/jira", &delivery).await,
        (202, json!({"status": "queued", "delivery": delivery.id}))
    );
    // Admin webhooks still sign, and a signature is still checked when one is sent.
    let signed = Delivery::jira(&jira_issue_updated("CR-11", "Approved")).jira_signed(JIRA_SECRET);
    assert_eq!(post(&open, "/webhooks/jira", &signed).await.0, 202);
    let wrong_hmac = automation(JIRA_SECRET).jira_signed("not-the-secret");
    for (delivery, context) in [
        (automation("not-the-secret"), "a wrong secret"),
        (automation(&format!("{JIRA_SECRET}x")), "a longer secret"),
        (
            Delivery::jira(&jira_issue_updated("CR-10", "Approved"))
                .header("X-Webhook-Signature", JIRA_SECRET),
            "no sha256= prefix",
        ),
        (wrong_hmac, "a wrong HMAC beside a right shared secret"),
    ] {
        let (status, body) = post(&open, "/webhooks/jira", &delivery).await;
        assert_eq!(status, 401, "{context}: {body}");
        assert_error_shape(status, &body, context);
    }
    // The GitHub route never takes it.
    let github = Delivery::github("issues", &opened(3))
        .without("X-Hub-Signature-256")
        .header("X-Webhook-Signature", &format!("sha256={JIRA_SECRET}"));
    assert_eq!(post(&open, "/webhooks/github", &github).await.0, 401);
    let queued = embedded_queue_contents(open.dir.path()).await;
    assert_eq!(queued.len(), 2);
    assert!(
        queued
            .iter()
            .all(|e| !e.headers.contains_key("x-webhook-signature"))
    );
    assert_no_secrets_printed(&open, &[]);
}

/// The value of the sample of `family` whose labels include all of `labels`.
fn sample(metrics: &str, family: &str, labels: &[(&str, &str)]) -> Option<f64> {
    metrics.lines().find_map(|line| {
        let rest = line.strip_prefix(family)?;
        let (labels_part, value) = match rest.strip_prefix('{') {
            Some(r) => r.split_once("} ")?,
            None => ("", rest.strip_prefix(' ')?),
        };
        labels
            .iter()
            .all(|(k, v)| labels_part.split(',').any(|l| l == format!("{k}=\"{v}\"")))
            .then(|| value.trim().parse().ok())?
    })
}

/// Rows `GET /health`, `GET /ready`, `GET /metrics`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_ready_and_metrics() {
    let ingest = ingest();
    let response = http()
        .get(ingest.at("/health"))
        .send()
        .await
        .expect("health");
    let (status, health) = answer(response).await;
    assert_eq!(status, 200);
    assert_eq!(health["status"], "healthy");
    assert_eq!(health["service"], "hookbridge-ingest");
    assert_eq!(health["version"], env!("CARGO_PKG_VERSION"));
    let timestamp = health["timestamp"].as_str().expect("timestamp");
    let at = chrono::DateTime::parse_from_rfc3339(timestamp).expect("RFC 3339 timestamp");
    let skew = (chrono::Utc::now() - at.with_timezone(&chrono::Utc))
        .num_seconds()
        .abs();
    assert!(skew < 60, "timestamp {timestamp} is not now");

    let (status, ready) =
        answer(http().get(ingest.at("/ready")).send().await.expect("ready")).await;
    assert_eq!(status, 200, "{ready}");

    // Some traffic for the counters.
    let ok = Delivery::github("issues", &opened(1)).signed(SECRET);
    assert_eq!(post(&ingest, "/webhooks/github", &ok).await.0, 202);
    let alias = Delivery::github("issues", &opened(2)).signed(SECRET);
    assert_eq!(post(&ingest, "/createJIRA", &alias).await.0, 202);
    let bad = Delivery::github("issues", &opened(3)).signed("wrong");
    assert_eq!(post(&ingest, "/webhooks/github", &bad).await.0, 401);
    let _ = http().get(ingest.at("/nope")).send().await.expect("404");

    let response = http()
        .get(ingest.at("/metrics"))
        .send()
        .await
        .expect("metrics");
    assert_eq!(response.status(), 200);
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    let metrics = response.text().await.expect("metrics text");
    let requests = "hookbridge_http_requests_total";
    for (route, status, at_least) in [
        ("/webhooks/github", "202", 1.0),
        ("/webhooks/github", "401", 1.0),
        ("/createJIRA", "202", 1.0),
        ("/health", "200", 1.0),
    ] {
        let value = sample(&metrics, requests, &[("route", route), ("status", status)])
            .unwrap_or_else(|| panic!("no {requests} for {route} {status}:\n{metrics}"));
        assert!(value >= at_least, "{route} {status}: {value}");
    }
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with(requests) && l.contains("status=\"404\"")),
        "404s are counted:\n{metrics}"
    );
    assert!(
        !metrics.contains("route=\"/nope\""),
        "raw paths must not become labels:\n{metrics}"
    );
    let enqueued = sample(
        &metrics,
        "hookbridge_enqueue_duration_seconds_count",
        &[("backend", "embedded")],
    )
    .unwrap_or_else(|| panic!("no enqueue latency histogram:\n{metrics}"));
    assert!(enqueued >= 2.0, "{enqueued}");
    assert!(metrics.contains("hookbridge_enqueue_duration_seconds_bucket{"));
    assert_eq!(
        sample(
            &metrics,
            "hookbridge_queue_errors_total",
            &[("backend", "embedded")]
        ),
        Some(0.0),
        "the queue error family is exported from the start:\n{metrics}"
    );
}

/// The asterisk of the secrets rows: a route with no secret refuses everything with 401, unless
/// `HOOKBRIDGE_ALLOW_UNSIGNED=true`, which logs a loud warning at start; a route that has a secret
/// keeps checking it either way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_without_a_secret_refuse_unless_unsigned_is_allowed() {
    let jira_body = jira_issue_updated("CR-1", "Approved");
    let strict = TestIngest::ingest()
        .env("GITHUB_WEBHOOK_SECRET", SECRET)
        .start();
    for delivery in [
        Delivery::jira(&jira_body),
        Delivery::jira(&jira_body).jira_signed(JIRA_SECRET),
    ] {
        let (status, body) = post(&strict, "/webhooks/jira", &delivery).await;
        assert_eq!(status, 401, "a route without a secret refuses all: {body}");
        assert_error_shape(status, &body, "no secret configured");
        assert!(
            body["detail"]
                .as_str()
                .is_some_and(|d| d.contains("JIRA_WEBHOOK_SECRET")),
            "the detail names the variable to set: {body}"
        );
    }

    let open = TestIngest::ingest()
        .env("GITHUB_WEBHOOK_SECRET", SECRET)
        .env("HOOKBRIDGE_ALLOW_UNSIGNED", "true")
        .start();
    let unsigned = Delivery::jira(&jira_body);
    assert_eq!(
        post(&open, "/webhooks/jira", &unsigned).await,
        (202, json!({"status": "queued", "delivery": unsigned.id}))
    );
    // The GitHub route has a secret: allowing unsigned routes does not switch it off.
    let github = Delivery::github("issues", &opened(1));
    assert_eq!(post(&open, "/webhooks/github", &github).await.0, 401);
    let warning = open
        .proc
        .output()
        .into_iter()
        .filter_map(|l| serde_json::from_str::<Value>(&l).ok())
        .find(|l| {
            l["level"] == "WARN"
                && l["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("HOOKBRIDGE_ALLOW_UNSIGNED"))
        });
    assert!(
        warning.is_some(),
        "no start-up warning about unsigned webhooks:\n{}",
        open.printed()
    );
}

/// Row "Processes": bad configuration stops the ingest promptly, non-zero (2, a configuration error),
/// with a one-line reason naming the key, and without printing the secret.
#[test]
fn bad_configuration_exits_2_with_a_one_line_reason_naming_the_key() {
    let pems = tempfile::tempdir().expect("temp dir");
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()])
        .expect("self-signed certificate");
    let cert = pems.path().join("cert.pem");
    std::fs::write(&cert, certified.cert.pem()).expect("write cert");
    let garbage = pems.path().join("garbage.pem");
    std::fs::write(&garbage, "not a key\n").expect("write garbage");
    let bad_toml = pems.path().join("bad.toml");
    std::fs::write(
        &bad_toml,
        "[ingest]\ngithub_events = [\"issues\"]\nbogus = 1\n",
    )
    .expect("write toml");
    let busy = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let busy_addr = busy.local_addr().expect("addr").to_string();
    let cert = cert.display().to_string();
    let missing = pems.path().join("missing.key").display().to_string();
    let garbage = garbage.display().to_string();
    let bad_toml = bad_toml.display().to_string();

    let with_secret = || TestIngest::ingest().env("GITHUB_WEBHOOK_SECRET", SECRET);
    let cases = [
        (
            TestIngest::ingest().unset("GITHUB_WEBHOOK_SECRET"),
            "GITHUB_WEBHOOK_SECRET",
        ),
        (
            with_secret().env("SQS_QUEUE_URL", "not a url"),
            "SQS_QUEUE_URL",
        ),
        (
            with_secret().env("SQS_QUEUE_URL", "ftp://sqs.example/123/q"),
            "SQS_QUEUE_URL",
        ),
        (
            with_secret()
                .arg("--tls-cert")
                .arg(cert.clone())
                .arg("--tls-key")
                .arg(missing),
            "HOOKBRIDGE_TLS_KEY",
        ),
        (
            with_secret()
                .arg("--tls-cert")
                .arg(cert.clone())
                .arg("--tls-key")
                .arg(garbage),
            "HOOKBRIDGE_TLS_KEY",
        ),
        (
            // A directory: it opens, but cannot be read as a file.
            with_secret()
                .arg("--tls-cert")
                .arg(cert.clone())
                .arg("--tls-key")
                .arg(pems.path().display().to_string()),
            "HOOKBRIDGE_TLS_KEY",
        ),
        (
            with_secret().arg("--tls-cert").arg(cert.clone()),
            "HOOKBRIDGE_TLS_KEY",
        ),
        (
            with_secret().arg("--config").arg(bad_toml.clone()),
            "line 3",
        ),
        (
            with_secret().env("HOOKBRIDGE_BIND", busy_addr),
            "HOOKBRIDGE_BIND",
        ),
        (
            with_secret().env("JIRA_WEBHOOK_AUTH", "maybe"),
            "JIRA_WEBHOOK_AUTH",
        ),
        // clap's own refusals name the variable, not the flag nobody used.
        (
            with_secret().env("HOOKBRIDGE_MAX_CONNECTIONS", ""),
            "HOOKBRIDGE_MAX_CONNECTIONS",
        ),
        (
            with_secret().env("HOOKBRIDGE_SHUTDOWN_TIMEOUT", "soon"),
            "HOOKBRIDGE_SHUTDOWN_TIMEOUT",
        ),
    ];
    // All at once: each must stop by itself.
    let started = Instant::now();
    let mut running: Vec<_> = cases
        .into_iter()
        .map(|(builder, key)| (builder.spawn(), key))
        .collect();
    for ((proc, _dir), key) in &mut running {
        let status = proc.wait_exit(PATIENCE);
        let printed = proc.output();
        let text = printed.join("\n");
        assert_eq!(status.code(), Some(2), "{key}: {text}");
        // Log lines are JSON; the reason is the one plain line.
        let reasons: Vec<&String> = printed
            .iter()
            .filter(|l| !l.trim().is_empty() && serde_json::from_str::<Value>(l).is_err())
            .filter(|l| !l.starts_with("For more information"))
            .collect();
        assert_eq!(reasons.len(), 1, "{key}: one reason line, got:\n{text}");
        assert!(reasons[0].contains(*key), "{key} not named in: {text}");
        assert!(
            !text.contains(SECRET),
            "{key}: the secret was printed: {text}"
        );
    }
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "configuration errors must stop the process promptly"
    );
    drop(busy);
}

fn self_signed() -> (rcgen::CertifiedKey<rcgen::KeyPair>, tempfile::TempDir) {
    let certified =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .expect("self-signed certificate");
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("cert.pem"), certified.cert.pem()).expect("write cert");
    std::fs::write(
        dir.path().join("key.pem"),
        certified.signing_key.serialize_pem(),
    )
    .expect("write key");
    (certified, dir)
}

/// HTTPS on the ingest itself, with `--tls-cert/--tls-key` or `HOOKBRIDGE_TLS_CERT/_KEY`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_serves_https_with_the_given_certificate() {
    let (certified, pems) = self_signed();
    let cert = pems.path().join("cert.pem").display().to_string();
    let key = pems.path().join("key.pem").display().to_string();
    let client = reqwest::Client::builder()
        .no_proxy()
        .tls_certs_only([
            reqwest::Certificate::from_pem(certified.cert.pem().as_bytes()).expect("cert"),
        ])
        .build()
        .expect("client");

    let by_flags = TestIngest::ingest()
        .env("GITHUB_WEBHOOK_SECRET", SECRET)
        .arg("--tls-cert")
        .arg(cert.clone())
        .arg("--tls-key")
        .arg(key.clone())
        .start();
    let by_env = TestIngest::ingest()
        .env("GITHUB_WEBHOOK_SECRET", SECRET)
        .env("HOOKBRIDGE_TLS_CERT", cert)
        .env("HOOKBRIDGE_TLS_KEY", key)
        .start();
    for mut ingest in [by_flags, by_env] {
        assert!(ingest.url.starts_with("https://"), "{}", ingest.url);
        let health = client
            .get(ingest.at("/health"))
            .send()
            .await
            .expect("https request");
        assert_eq!(health.status(), 200);
        let delivery = Delivery::github("issues", &opened(1)).signed(SECRET);
        let response = delivery
            .post(&client, &ingest.at("/webhooks/github"))
            .send()
            .await
            .expect("https request");
        assert_eq!(response.status(), 202);
        // Plain HTTP on the TLS port gets no answer that looks like ours.
        let plain = http()
            .get(ingest.at("/health").replacen("https://", "http://", 1))
            .send()
            .await;
        assert!(
            plain.map(|r| r.status() != 200).unwrap_or(true),
            "plain HTTP must not be served on the TLS port"
        );
        ingest.proc.terminate();
        assert!(ingest.proc.wait_exit(PATIENCE).success());
    }
}

/// Row "Processes": on SIGTERM the in-flight request finishes (here: a request whose body is still
/// arriving when the signal comes, so it is provably in flight), is answered 202 and is queued, and
/// the process exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_the_in_flight_request_finish_and_exits_0() {
    let mut ingest = ingest();
    let address = host_port(&ingest.url);
    let delivery = Delivery::github("issues", &opened(1)).signed(SECRET);
    let mut stream = TcpStream::connect(&address).await.expect("connect");
    let mut head = format!("POST /webhooks/github HTTP/1.1\r\nHost: {address}\r\n");
    for (name, value) in &delivery.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", delivery.body.len()));
    let (first_half, second_half) = delivery.body.split_at(delivery.body.len() / 2);
    stream
        .write_all(&[head.as_bytes(), first_half].concat())
        .await
        .expect("send the first half");

    // The server accepts connections in order: once a later connection's request is answered, the
    // half-sent request above is held by a worker, so the signal below finds it in flight.
    assert_eq!(
        http()
            .get(ingest.at("/health"))
            .send()
            .await
            .expect("health")
            .status(),
        200
    );
    ingest.proc.send_signal(Signal::SIGTERM);
    ingest
        .proc
        .wait_for_line("shutdown signal received", PATIENCE);
    assert!(
        ingest.proc.try_exit().is_none(),
        "the process must wait for the in-flight request"
    );
    stream
        .write_all(second_half)
        .await
        .expect("send the second half");
    let (status, _, body) = raw_exchange(&mut stream).await;
    assert_eq!(
        (status, body),
        (202, json!({"status": "queued", "delivery": delivery.id}))
    );
    drop(stream);
    let exit = ingest.proc.wait_exit(PATIENCE);
    assert!(exit.success(), "SIGTERM must exit 0, got {exit}");
    let queued = embedded_queue_contents(ingest.dir.path()).await;
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].delivery.as_str(), delivery.id);
}

/// A signal that arrives the moment the ingest announces it is listening still drains and exits 0
/// (the handlers are installed before the announcement), for SIGTERM and SIGINT alike.
#[test]
fn a_signal_right_after_start_is_a_graceful_stop() {
    for signal in [
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGINT,
    ] {
        let (mut proc, _dir) = TestIngest::ingest()
            .env("GITHUB_WEBHOOK_SECRET", SECRET)
            .spawn();
        // Poll tightly for the announcement, then signal at once.
        let deadline = Instant::now() + PATIENCE;
        loop {
            if proc.output().iter().any(|l| l.contains("\"url\"")) {
                break;
            }
            assert!(Instant::now() < deadline, "{}", proc.output().join("\n"));
            std::thread::sleep(Duration::from_millis(1));
        }
        proc.send_signal(signal);
        let exit = proc.wait_exit(PATIENCE);
        assert_eq!(
            exit.code(),
            Some(0),
            "{signal} right after start: {exit}\n{}",
            proc.output().join("\n")
        );
    }
}
