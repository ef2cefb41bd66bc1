//! `make bench` — ingest throughput.
//!
//! Runs the release `hookbridge-ingest` (embedded queue, group commit) and, as the ceiling, a bare
//! actix-web server doing the same HMAC check and JSON parse without storing anything (this same
//! executable re-run as `HOOKBRIDGE_BENCH_ROLE=baseline`). Both get the same load from `wrk` (2
//! threads, 64 keep-alive connections, interleaved rounds): 2,000 distinct, realistic, signed
//! `issues.opened` deliveries of ~10.5 KB. Reports requests/s, the ratio between the two, p50/p99
//! latency and peak RSS; then how fast workers drain the embedded queue (receive + delete). With `HOOKBRIDGE_TEST_SQS_ENDPOINT` set (make bench runs under
//! scripts/with-test-services.sh), it also measures SendMessage calls per event on SQS (moto).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hookbridge_shared::signature::sign_with;
use hookbridge_tests::{realistic, sqs, wrk};

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
    /// CPU time the server has used so far (user + system), from `/proc/<pid>/stat`.
    fn cpu_seconds(&self) -> f64 {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        // Fields after the command name (which may hold spaces) start at its closing parenthesis.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map_or("", |(_, rest)| rest)
            .split_whitespace()
            .collect();
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        // utime and stime are fields 14 and 15 of the line, 11 and 12 after the name.
        (ticks(11) + ticks(12)) / clock_ticks_per_second()
    }

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

fn clock_ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// Starts the ingest and reads its URL from the JSON start-up log line.
fn start_ingest(data_dir: &std::path::Path, extra_env: &[(&str, String)]) -> Server {
    // BENCH_INGEST_BIN: another build of the ingest (e.g. an older commit's), for a before/after.
    let binary = std::env::var_os("BENCH_INGEST_BIN").map_or_else(
        || release_binary("hookbridge-ingest"),
        std::path::PathBuf::from,
    );
    let mut cmd = Command::new(binary);
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

/// A realistic ~10 KB `issues.opened` payload.
fn payload() -> Vec<u8> {
    realistic::issues_opened(1)
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

/// Deliveries the benchmark cycles through (distinct bodies, ids and signatures).
const DELIVERIES: u64 = 2000;

/// Rounds per server, interleaved (baseline, ingest, baseline, ingest) so that a change in the
/// machine's load during the run affects both alike.
const ROUNDS: usize = 2;

/// Both servers under the same wrk load; the ratio between them is the figure to watch (README,
/// "Benchmarks").
async fn throughput(connections: usize, duration: Duration) {
    let requests: Vec<Vec<u8>> = (0..DELIVERIES)
        .map(|n| {
            let body = realistic::issues_opened(n);
            wrk::github_request(
                "127.0.0.1",
                SECRET,
                &uuid::Uuid::new_v4().to_string(),
                &body,
            )
        })
        .collect();
    let mean = (0..DELIVERIES)
        .map(|n| realistic::issues_opened(n).len())
        .sum::<usize>()
        / DELIVERIES as usize;
    let scratch = tempfile::tempdir().expect("temp dir");
    wrk::prepare(scratch.path(), &requests);
    println!(
        "## ingest benchmark: wrk, 2 threads, {connections} connections, {} s x {ROUNDS} interleaved \
         rounds, {DELIVERIES} distinct signed issues.opened deliveries (mean {:.1} kB)",
        duration.as_secs(),
        mean as f64 / 1000.0
    );
    println!();
    println!(
        "| server | round | requests/s | server CPU µs/request | p50 ms | p99 ms | max ms | non-2xx | socket errors |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    let baseline = start_baseline();
    let dir = tempfile::tempdir().expect("temp dir");
    let ingest = start_ingest(dir.path(), &[]);
    // For attaching a profiler: `perf record -g -p <pid>` once the rounds run.
    eprintln!(
        "bare server pid {}, ingest pid {}",
        baseline.child.id(),
        ingest.child.id()
    );
    let warm = Duration::from_secs(1);
    let _ = wrk::run(scratch.path(), &baseline.url, 2, connections, warm);
    let _ = wrk::run(scratch.path(), &ingest.url, 2, connections, warm);
    let (mut base_total, mut ingest_total) = (Vec::new(), Vec::new());
    for round in 1..=ROUNDS {
        for (server, name, total) in [
            (
                &baseline,
                "actix-web alone (HMAC verify + JSON parse, 202, no storage)",
                &mut base_total,
            ),
            (
                &ingest,
                "hookbridge-ingest, embedded queue (fsync'd group commit)",
                &mut ingest_total,
            ),
        ] {
            let cpu = server.cpu_seconds();
            let r = wrk::run(scratch.path(), &server.url, 2, connections, duration);
            wrk_row(name, round, &r, server.cpu_seconds() - cpu);
            total.push(r);
        }
    }
    let rate = |rs: &[wrk::WrkResult]| {
        rs.iter().map(|r| r.requests).sum::<u64>() as f64
            / rs.iter().map(|r| r.seconds).sum::<f64>()
    };
    let worst_p99 = |rs: &[wrk::WrkResult]| rs.iter().map(|r| r.p99_ms).fold(0.0, f64::max);
    println!();
    println!(
        "ingest / bare server = {:.0} / {:.0} requests/s = **{:.2}x**; ingest p99 (worst round) {:.2} ms; \
         non-2xx {}; peak RSS: ingest {:.0} MiB, bare server {:.0} MiB",
        rate(&ingest_total),
        rate(&base_total),
        rate(&ingest_total) / rate(&base_total),
        worst_p99(&ingest_total),
        ingest_total
            .iter()
            .map(|r| r.non_2xx + r.socket_errors)
            .sum::<u64>(),
        ingest.peak_rss_mib(),
        baseline.peak_rss_mib()
    );
    let commits = metric(&ingest.url, "hookbridge_queue_write_calls_total").await;
    let accepted = metric_sum(
        &ingest.url,
        "hookbridge_http_requests_total{route=\"/webhooks/github\",status=\"202\"}",
    )
    .await;
    if let (Some(c), Some(a)) = (commits, accepted) {
        println!(
            "embedded queue: {a:.0} events in {c:.0} commits = {:.1} events per fsync'd commit",
            a / c.max(1.0)
        );
    }
}

fn wrk_row(name: &str, round: usize, r: &wrk::WrkResult, cpu_seconds: f64) {
    println!(
        "| {name} | {round} | {:.0} | {:.1} | {:.2} | {:.2} | {:.1} | {} | {} |",
        r.per_second(),
        cpu_seconds * 1e6 / r.requests.max(1) as f64,
        r.p50_ms,
        r.p99_ms,
        r.max_ms,
        r.non_2xx,
        r.socket_errors
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
    // BENCH_ONLY=throughput or =consume runs one section (for profiling and comparing builds).
    let only = std::env::var("BENCH_ONLY").ok();
    if only.as_deref() != Some("consume") {
        throughput(connections, duration).await;
    }
    if only.as_deref() != Some("throughput") {
        consume().await;
    }
    if only.is_some() {
        return;
    }
    sqs_calls_per_event(connections).await;
    attacks(connections, duration).await;
}

/// The worker's side of the embedded queue: 16 consumers receiving up to 10 messages at a time and
/// deleting each batch, on a queue pre-filled with realistic envelopes. (The ingest must not buy
/// its speed with a slower consumer.)
async fn consume() {
    use hookbridge_shared::queue::ReceiveOptions;
    use hookbridge_shared::queue::embedded::{EmbeddedOptions, EmbeddedQueue};
    const MESSAGES: u64 = 20_000;
    let dir = tempfile::tempdir().expect("temp dir");
    let queue =
        EmbeddedQueue::open(EmbeddedOptions::in_dir(dir.path(), "queue.db")).expect("queue");
    for chunk in (0..MESSAGES).collect::<Vec<_>>().chunks(500) {
        let bodies = chunk
            .iter()
            .map(|n| {
                let payload: serde_json::Value =
                    serde_json::from_slice(&realistic::issues_opened(*n)).expect("json");
                bytes::Bytes::from(hookbridge_tests::github::envelope(
                    "issues",
                    &format!("bench-{n}"),
                    &payload,
                ))
            })
            .collect();
        for sent in queue.send_batch(bodies).await {
            sent.expect("send");
        }
    }
    let started = Instant::now();
    let consumers: Vec<_> = (0..16)
        .map(|_| {
            let queue = queue.clone();
            tokio::spawn(async move {
                let mut done = 0u64;
                loop {
                    let got = queue
                        .receive(ReceiveOptions {
                            max_messages: 10,
                            wait: Duration::from_millis(200),
                            visibility: Duration::from_secs(60),
                        })
                        .await
                        .expect("receive");
                    if got.is_empty() {
                        return done;
                    }
                    let handles: Vec<_> = got.iter().map(|m| m.handle.clone()).collect();
                    for deleted in queue.delete_batch(&handles).await {
                        deleted.expect("delete");
                    }
                    done += got.len() as u64;
                }
            })
        })
        .collect();
    let mut total = 0;
    for consumer in consumers {
        total += consumer.await.expect("consumer");
    }
    // The last empty long poll of each consumer is not work.
    let seconds = started.elapsed().as_secs_f64() - 0.2;
    println!();
    println!(
        "embedded queue, worker side: {total} of {MESSAGES} realistic envelopes received and deleted \
         by 16 consumers (batches of 10) at {:.0} messages/s",
        total as f64 / seconds
    );
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
