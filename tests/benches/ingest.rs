//! `make bench` — ingest throughput.
//!
//! Runs the release `hookbridge-ingest` (embedded queue, group commit) and, as the ceiling, a bare
//! actix-web server doing the same HMAC check and JSON parse without storing anything (this same
//! executable re-run as `HOOKBRIDGE_BENCH_ROLE=baseline`). Both get the same load: signed ~10 KB
//! GitHub events from many keep-alive connections for a fixed time. Reports requests/s, p50/p99
//! latency and the server's peak RSS. With `HOOKBRIDGE_TEST_SQS_ENDPOINT` set (make bench runs under
//! scripts/with-test-services.sh), it also measures SendMessage calls per event on SQS (moto).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hookbridge_shared::signature::sign_with;
use hookbridge_tests::sqs;

const SECRET: &str = "bench-s3cret-5f1c9a";

fn main() {
    if std::env::var("HOOKBRIDGE_BENCH_ROLE").as_deref() == Ok("baseline") {
        baseline::serve();
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(run());
}

fn release_binary(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target/<profile>/deps");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} missing: run `cargo build --release --bins` first (make bench does)",
        path.display()
    );
    path
}

/// A server process under test, killed on drop.
struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn peak_rss_mib(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / 1024.0)
    }
}

/// Starts the ingest and reads its URL from the JSON start-up log line.
fn start_ingest(data_dir: &std::path::Path, extra_env: &[(&str, String)]) -> Server {
    let mut cmd = Command::new(release_binary("hookbridge-ingest"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOOKBRIDGE_BIND", "127.0.0.1:0")
        .env("HOOKBRIDGE_DATA_DIR", data_dir)
        .env("GITHUB_WEBHOOK_SECRET", SECRET)
        .env("LOG_FORMAT", "json")
        .env("RUST_LOG", "warn,hookbridge_ingest=info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn hookbridge-ingest");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if !sent && line.contains("hookbridge-ingest listening") {
                let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
                if let Some(url) = v["url"].as_str() {
                    let _ = tx.send(url.to_owned());
                    sent = true;
                }
            }
        }
    });
    let url = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("ingest did not report its URL");
    Server { child, url }
}

fn start_baseline() -> Server {
    let mut child = Command::new(std::env::current_exe().expect("exe"))
        .env("HOOKBRIDGE_BENCH_ROLE", "baseline")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn baseline");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("baseline port");
    Server {
        child,
        url: line.trim().to_owned(),
    }
}

/// A ~10 KB `issues.opened` payload.
fn payload() -> Vec<u8> {
    let body_text = "Steps to reproduce: run the job, watch it fail. ".repeat(190);
    serde_json::to_vec(&serde_json::json!({
        "action": "opened",
        "issue": {"number": 42, "title": "Bench issue", "body": body_text,
                  "html_url": "https://github.com/octo/bench/issues/42", "state": "open",
                  "labels": [{"name": "bug"}], "user": {"login": "octocat"}},
        "repository": {"full_name": "octo/bench"},
        "sender": {"login": "octocat"}
    }))
    .expect("json")
}

struct LoadResult {
    requests: u64,
    errors: u64,
    seconds: f64,
    p50_ms: f64,
    p99_ms: f64,
}

/// `connections` keep-alive clients posting for `duration` (after a short warm-up).
async fn load(
    url: &str,
    connections: usize,
    duration: Duration,
    max_requests: Option<u64>,
) -> LoadResult {
    load_as(url, connections, duration, max_requests, Caller::Signed).await
}

/// Who sends the load: GitHub (signed, answered 202) or an attacker without the secret (a
/// well-formed but wrong signature, answered 401).
#[derive(Clone, Copy, PartialEq)]
enum Caller {
    Signed,
    WrongSignature,
}

async fn load_as(
    url: &str,
    connections: usize,
    duration: Duration,
    max_requests: Option<u64>,
    caller: Caller,
) -> LoadResult {
    let body = bytes::Bytes::from(payload());
    let (signature, expected) = match caller {
        Caller::Signed => (sign_with(SECRET, &body), 202),
        Caller::WrongSignature => (format!("sha256={}", "0".repeat(64)), 401),
    };
    let endpoint = format!("{url}/webhooks/github");
    let counter = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(1)
            .build()
            .expect("client");
        let (body, signature, endpoint) = (body.clone(), signature.clone(), endpoint.clone());
        let (counter, errors) = (counter.clone(), errors.clone());
        tasks.push(tokio::spawn(async move {
            let mut hist = hdrhistogram::Histogram::<u64>::new(3).expect("histogram");
            while Instant::now() < deadline {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                if max_requests.is_some_and(|m| n >= m) {
                    break;
                }
                let sent = Instant::now();
                let response = client
                    .post(&endpoint)
                    .header("content-type", "application/json")
                    .header("x-github-event", "issues")
                    .header("x-github-delivery", format!("bench-{n}"))
                    .header("x-hub-signature-256", &signature)
                    .body(body.clone())
                    .send()
                    .await;
                match response {
                    Ok(r) if r.status().as_u16() == expected => {
                        let _ = hist.record(sent.elapsed().as_micros() as u64);
                    }
                    _ => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            hist
        }));
    }
    let mut total = hdrhistogram::Histogram::<u64>::new(3).expect("histogram");
    for t in tasks {
        total.add(t.await.expect("load task")).expect("merge");
    }
    let seconds = started.elapsed().as_secs_f64();
    LoadResult {
        requests: total.len(),
        errors: errors.load(Ordering::Relaxed),
        seconds,
        p50_ms: total.value_at_quantile(0.50) as f64 / 1000.0,
        p99_ms: total.value_at_quantile(0.99) as f64 / 1000.0,
    }
}

fn row(name: &str, r: &LoadResult, rss: f64) {
    println!(
        "| {name} | {:.0} | {:.2} | {:.2} | {} | {:.0} |",
        r.requests as f64 / r.seconds,
        r.p50_ms,
        r.p99_ms,
        r.errors,
        rss
    );
}

async fn run() {
    let connections: usize = std::env::var("BENCH_CONNECTIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    let seconds: u64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let duration = Duration::from_secs(seconds);
    println!(
        "## ingest benchmark: {connections} connections, {seconds} s per run, ~10 KB signed events"
    );
    println!();
    println!("| server | requests/s | p50 ms | p99 ms | errors | peak RSS MiB |");
    println!("| --- | --- | --- | --- | --- | --- |");

    let baseline = start_baseline();
    let _ = load(&baseline.url, connections, Duration::from_secs(1), None).await;
    let r = load(&baseline.url, connections, duration, None).await;
    row(
        "actix-web alone (verify + parse, no storage)",
        &r,
        baseline.peak_rss_mib(),
    );
    drop(baseline);

    let dir = tempfile::tempdir().expect("temp dir");
    let ingest = start_ingest(dir.path(), &[]);
    let _ = load(&ingest.url, connections, Duration::from_secs(1), None).await;
    let r = load(&ingest.url, connections, duration, None).await;
    row(
        "hookbridge-ingest, embedded queue (fsync'd group commit)",
        &r,
        ingest.peak_rss_mib(),
    );
    let commits = metric(&ingest.url, "hookbridge_queue_write_calls_total").await;
    let accepted = metric_sum(
        &ingest.url,
        "hookbridge_http_requests_total{route=\"/webhooks/github\",status=\"202\"}",
    )
    .await;
    drop(ingest);

    println!();
    if let (Some(c), Some(a)) = (commits, accepted) {
        println!(
            "embedded queue: {a:.0} events in {c:.0} commits = {:.1} events per fsync'd commit",
            a / c.max(1.0)
        );
    }
    sqs_calls_per_event(connections).await;
    attacks(connections, duration).await;
}

/// What callers without the secret can do to the ingest (README, "Reliability"): a flood of
/// wrongly signed deliveries (401s per second, RSS, and how long a signed delivery takes
/// meanwhile), then many connections that each send 20 MiB of a declared 25 MiB body and stall
/// (RSS, whether they are cut, and a signed delivery's latency meanwhile).
async fn attacks(connections: usize, duration: Duration) {
    println!();
    println!("### without the secret");
    println!();
    let dir = tempfile::tempdir().expect("temp dir");
    let ingest = start_ingest(dir.path(), &[]);
    let url = ingest.url.clone();
    let probe_url = url.clone();
    let probe = tokio::spawn(async move { load(&probe_url, 1, duration, None).await });
    let flood = load_as(&url, connections, duration, None, Caller::WrongSignature).await;
    let signed = probe.await.expect("probe");
    println!(
        "- flood of wrong signatures, {connections} connections, {} s: {:.0} answers 401/s, {} other answers; \
         meanwhile one signed sender: {:.0} deliveries 202/s, p99 {:.2} ms; peak RSS {:.0} MiB",
        duration.as_secs(),
        flood.requests as f64 / flood.seconds,
        flood.errors,
        signed.requests as f64 / signed.seconds,
        signed.p99_ms,
        ingest.peak_rss_mib()
    );
    drop(ingest);

    let stalled: usize = std::env::var("BENCH_STALLED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    let dir = tempfile::tempdir().expect("temp dir");
    let ingest = start_ingest(dir.path(), &[]);
    let address = ingest.url.trim_start_matches("http://").to_owned();
    let started = Instant::now();
    let mut attackers = Vec::new();
    for _ in 0..stalled {
        let address = address.clone();
        attackers.push(tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let Ok(mut stream) = tokio::net::TcpStream::connect(&address).await else {
                return None;
            };
            let head = format!(
                "POST /webhooks/github HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
                 X-GitHub-Event: issues\r\nX-GitHub-Delivery: stalled\r\nContent-Length: {}\r\n\
                 X-Hub-Signature-256: sha256={}\r\n\r\n",
                25 * 1024 * 1024,
                "0".repeat(64)
            );
            stream.write_all(head.as_bytes()).await.ok()?;
            let chunk = vec![b' '; 256 * 1024];
            let _ = tokio::time::timeout(Duration::from_secs(30), async {
                for _ in 0..80 {
                    if stream.write_all(&chunk).await.is_err() {
                        break;
                    }
                }
            })
            .await;
            // Stalled: wait for the server to answer (408 or 503) and close.
            let mut answer = vec![0u8; 512];
            let n = tokio::time::timeout(Duration::from_secs(60), stream.read(&mut answer))
                .await
                .ok()?
                .ok()?;
            let status = String::from_utf8_lossy(&answer[..n])
                .split_whitespace()
                .nth(1)
                .map(str::to_owned);
            Some((status, started.elapsed()))
        }));
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let signed = load(&ingest.url, 1, Duration::from_secs(3), None).await;
    let mut cut = 0;
    let mut latest = Duration::ZERO;
    for attacker in attackers {
        if let Ok(Some((Some(_), at))) = attacker.await {
            cut += 1;
            latest = latest.max(at);
        }
    }
    println!(
        "- {stalled} connections each stalling after 20 MiB of a 25 MiB body: peak RSS {:.0} MiB \
         (body budget 256 MiB); {cut} of {stalled} cut by the server within {:.1} s; meanwhile one \
         signed sender: {:.0} deliveries 202/s, p99 {:.2} ms, {} failed",
        ingest.peak_rss_mib(),
        latest.as_secs_f64(),
        signed.requests as f64 / signed.seconds,
        signed.p99_ms,
        signed.errors
    );
}

async fn metrics_text(url: &str) -> String {
    match reqwest::get(format!("{url}/metrics")).await {
        Ok(r) => r.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

async fn metric(url: &str, name: &str) -> Option<f64> {
    let text = metrics_text(url).await;
    text.lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .reduce(|a, b| a + b)
}

async fn metric_sum(url: &str, series: &str) -> Option<f64> {
    metric(url, series).await
}

async fn sqs_calls_per_event(connections: usize) {
    let Ok(endpoint) = std::env::var(sqs::ENDPOINT_VARIABLE) else {
        println!(
            "SQS: skipped ({} not set; run via make bench)",
            sqs::ENDPOINT_VARIABLE
        );
        return;
    };
    let sqs = sqs::client_for(&endpoint).await;
    let name = format!("bench-{}", uuid::Uuid::new_v4().simple());
    let queue_url = sqs
        .create_queue()
        .queue_name(&name)
        .send()
        .await
        .expect("create queue")
        .queue_url
        .expect("queue url");
    let dir = tempfile::tempdir().expect("temp dir");
    let ingest = start_ingest(
        dir.path(),
        &[
            ("SQS_QUEUE_URL", queue_url.clone()),
            ("AWS_ENDPOINT_URL", endpoint.clone()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("HOOKBRIDGE_SQS_SPOOL", "false".into()),
        ],
    );
    let events = 1000;
    let r = load(
        &ingest.url,
        connections,
        Duration::from_secs(120),
        Some(events),
    )
    .await;
    let calls = metric(&ingest.url, "hookbridge_queue_write_calls_total")
        .await
        .unwrap_or(f64::NAN);
    println!();
    println!(
        "SQS (moto): {} events accepted from {connections} connections at {:.0} requests/s (moto-bound), \
         p50 {:.1} ms, p99 {:.1} ms; {calls:.0} SendMessage(Batch) calls = {:.3} calls per event",
        r.requests,
        r.requests as f64 / r.seconds,
        r.p50_ms,
        r.p99_ms,
        calls / r.requests.max(1) as f64
    );
    let _ = sqs.delete_queue().queue_url(&queue_url).send().await;
}

/// The ceiling: the same request handling without durable storage.
mod baseline {
    use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
    use hookbridge_shared::signature::WebhookSecrets;

    async fn github(req: HttpRequest, body: web::Bytes) -> HttpResponse {
        let secrets = WebhookSecrets::parse(super::SECRET).expect("secret");
        let sig = req
            .headers()
            .get("x-hub-signature-256")
            .and_then(|v| v.to_str().ok());
        match secrets.verify(sig, body) {
            Ok(verified) => {
                match serde_json::from_slice::<&serde_json::value::RawValue>(verified.bytes()) {
                    Ok(_) => HttpResponse::Accepted().json(serde_json::json!({"status": "queued"})),
                    Err(_) => HttpResponse::BadRequest().finish(),
                }
            }
            Err(_) => HttpResponse::Unauthorized().finish(),
        }
    }

    pub fn serve() {
        actix_web::rt::System::new().block_on(async {
            let server = HttpServer::new(|| {
                App::new()
                    .app_data(web::PayloadConfig::new(26 * 1024 * 1024))
                    .route("/webhooks/github", web::post().to(github))
            })
            .bind("127.0.0.1:0")
            .expect("bind");
            let addr = server.addrs()[0];
            println!("http://{addr}");
            server.run().await.expect("serve");
        });
    }
}
