//! The webhook port faces the internet: a caller without the secret must not be able to exhaust
//! the ingest's memory, connections or time (README, "Reliability"). Raw TCP clients play the
//! attackers: a signature header that is missing or malformed is refused before the body is read;
//! a body that stalls is cut with 408; stalled large bodies hold a bounded budget of memory while a
//! signed small delivery still gets its 202; the connection cap is said in the log; the soft
//! open-file limit is raised at start.

use std::time::{Duration, Instant};

use hookbridge_tests::github::{Delivery, GithubIssue};
use hookbridge_tests::ingest::{PATIENCE, TestIngest, http};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const SECRET: &str = "limits-test-s3cret-77a1";
/// Well-formed, wrong: what an attacker without the secret can always send.
const WRONG: &str = "sha256=0000000000000000000000000000000000000000000000000000000000000000";

fn address(ingest: &TestIngest) -> String {
    ingest.url.trim_start_matches("http://").to_owned()
}

/// Opens a connection and sends a GitHub delivery's headers declaring `length` bytes of body,
/// with `signature` (none when `None`), then the first `send` bytes of the body.
async fn attacker(
    ingest: &TestIngest,
    signature: Option<&str>,
    length: usize,
    send: usize,
) -> TcpStream {
    let mut stream = TcpStream::connect(address(ingest)).await.expect("connect");
    let mut head = format!(
        "POST /webhooks/github HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         X-GitHub-Event: issues\r\nX-GitHub-Delivery: 72d3162e-cc78-11e3-81ab-4c9367dc0958\r\n\
         Content-Length: {length}\r\n"
    );
    if let Some(signature) = signature {
        head.push_str(&format!("X-Hub-Signature-256: {signature}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.expect("headers");
    let chunk = vec![b' '; 64 * 1024];
    let mut sent = 0;
    while sent < send {
        let n = chunk.len().min(send - sent);
        if stream.write_all(&chunk[..n]).await.is_err() {
            break;
        }
        sent += n;
    }
    stream
}

/// The status of the answer on `stream`, read within `within`.
async fn status(stream: &mut TcpStream, within: Duration) -> Option<u16> {
    let mut buffer = vec![0u8; 4096];
    let n = tokio::time::timeout(within, stream.read(&mut buffer))
        .await
        .ok()?
        .ok()?;
    let text = String::from_utf8_lossy(&buffer[..n]);
    text.split_whitespace().nth(1)?.parse().ok()
}

fn start(extra: &[(&str, &str)]) -> TestIngest {
    let mut builder = TestIngest::ingest().env("GITHUB_WEBHOOK_SECRET", SECRET);
    for (key, value) in extra {
        builder = builder.env(key, *value);
    }
    builder.start()
}

async fn signed_small_delivery_is_queued(ingest: &TestIngest) -> Duration {
    let delivery = Delivery::github(
        "issues",
        &GithubIssue::new("octo/limits", 1).event("opened"),
    )
    .signed(SECRET);
    let started = Instant::now();
    let answer = delivery
        .post(&http(), &ingest.at("/webhooks/github"))
        .send()
        .await
        .expect("post");
    assert_eq!(answer.status(), 202);
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_or_malformed_signature_is_refused_before_the_body_is_read() {
    let ingest = start(&[]);
    for signature in [None, Some("sha256=nothex"), Some("md5=abc")] {
        // 1 MiB declared, nothing sent: only an answer that does not wait for the body comes.
        let mut stream = attacker(&ingest, signature, 1024 * 1024, 0).await;
        assert_eq!(
            status(&mut stream, Duration::from_secs(2)).await,
            Some(401),
            "{signature:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_stalls_is_cut_with_408() {
    let ingest = start(&[]);
    let mut stream = attacker(&ingest, Some(WRONG), 10_000, 100).await;
    let started = Instant::now();
    assert_eq!(
        status(&mut stream, Duration::from_secs(20)).await,
        Some(408)
    );
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(8) && waited < Duration::from_secs(15),
        "cut after {waited:?}"
    );
    // And the connection is closed: nothing more can be sent on it.
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(2), stream.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "the connection stays open after the 408");
}

/// Ten attackers each stall after 20 MiB of a declared 25 MiB body: the ingest's memory stays
/// within its body budget (32 MiB here) plus 1 MiB a body, and a signed small delivery is queued
/// at once meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_large_bodies_hold_bounded_memory_and_small_deliveries_get_through() {
    let ingest = start(&[("HOOKBRIDGE_BODY_BUDGET_MB", "32")]);
    let mut attackers = Vec::new();
    for _ in 0..10 {
        let ingest_addr = address(&ingest);
        attackers.push(tokio::spawn(async move {
            let mut stream = TcpStream::connect(ingest_addr).await.expect("connect");
            let head = format!(
                "POST /webhooks/github HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
                 X-GitHub-Event: issues\r\nX-GitHub-Delivery: 72d3162e-cc78-11e3-81ab-4c9367dc0958\r\n\
                 Content-Length: {}\r\nX-Hub-Signature-256: {WRONG}\r\n\r\n",
                25 * 1024 * 1024
            );
            stream.write_all(head.as_bytes()).await.expect("headers");
            let chunk = vec![b' '; 256 * 1024];
            // The server stops reading once the budget is taken: writes then block, and the
            // attacker just holds on, as a stalled one does.
            let _ = tokio::time::timeout(Duration::from_secs(8), async {
                for _ in 0..80 {
                    if stream.write_all(&chunk).await.is_err() {
                        break;
                    }
                }
            })
            .await;
            stream
        }));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let took = signed_small_delivery_is_queued(&ingest).await;
    assert!(
        took < Duration::from_secs(2),
        "the signed delivery waited {took:?}"
    );
    let mut streams = Vec::new();
    for attacker in attackers {
        streams.push(attacker.await.expect("attacker"));
    }
    let peak = ingest.proc.peak_rss_mib();
    assert!(
        peak < 32.0 + 10.0 + 80.0,
        "peak RSS {peak:.0} MiB with 10 stalled 20 MiB bodies and a 32 MiB budget"
    );
    drop(streams);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reaching_the_connection_cap_is_said_and_idle_connections_are_cut() {
    let mut ingest = start(&[("HOOKBRIDGE_MAX_CONNECTIONS", "16")]);
    let mut idle = Vec::new();
    for _ in 0..20 {
        idle.push(TcpStream::connect(address(&ingest)).await.expect("connect"));
    }
    ingest
        .proc
        .wait_for_line("HOOKBRIDGE_MAX_CONNECTIONS reached", PATIENCE);
    // Connections that never send their headers are cut within seconds, and the port serves again.
    let took = tokio::time::timeout(
        Duration::from_secs(15),
        signed_small_delivery_is_queued(&ingest),
    )
    .await
    .expect("a signed delivery got through once the idle connections were cut");
    assert!(took < Duration::from_secs(15));
    drop(idle);
}

#[test]
fn the_soft_open_file_limit_is_raised_to_the_hard_one() {
    let binary = hookbridge_tests::process::binary("hookbridge-ingest");
    let dir = tempfile::tempdir().expect("temp dir");
    let script = format!("ulimit -Sn 256 && exec {}", binary.display());
    let mut proc = hookbridge_tests::process::Proc::spawn_path(
        std::path::Path::new("/bin/sh"),
        &["-c", &script],
        &[
            ("GITHUB_WEBHOOK_SECRET", SECRET.to_owned()),
            ("HOOKBRIDGE_BIND", "127.0.0.1:0".to_owned()),
            ("HOOKBRIDGE_DATA_DIR", dir.path().display().to_string()),
        ],
    );
    proc.wait_listening(PATIENCE);
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", proc.pid())).expect("limits");
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("Max open files");
    let numbers: Vec<&str> = line.split_whitespace().skip(3).take(2).collect();
    assert_eq!(numbers[0], numbers[1], "soft = hard: {line}");
    assert_ne!(numbers[0], "256", "{line}");
    proc.terminate();
}
