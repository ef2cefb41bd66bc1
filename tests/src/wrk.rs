//! Load from `wrk` (Debian's package; `make bench` installs it): a C load generator whose cost per
//! request is far below the server's, so that on a two-core machine the figures measure the
//! server, not the client. Each wrk thread cycles through a file of pre-built raw HTTP requests
//! (distinct bodies, delivery ids and signatures), read by a Lua script at start.

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// One wrk run's figures, as its Lua `done` hook prints them.
#[derive(Debug, Clone, Copy)]
pub struct WrkResult {
    pub requests: u64,
    pub seconds: f64,
    /// Answers with status ≥ 400.
    pub non_2xx: u64,
    /// Connect, read, write and timeout errors.
    pub socket_errors: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl WrkResult {
    pub fn per_second(&self) -> f64 {
        self.requests as f64 / self.seconds.max(f64::EPSILON)
    }
}

const SCRIPT: &str = r#"
local requests = {}
local next_index = 1
function init(args)
  local f = assert(io.open(args[1], "rb"))
  local data = f:read("*a")
  f:close()
  local pos = 1
  while pos <= #data do
    local len = tonumber(data:sub(pos, pos + 9))
    pos = pos + 11
    requests[#requests + 1] = data:sub(pos, pos + len - 1)
    pos = pos + len
  end
  next_index = (tonumber(args[2]) or 0) % #requests + 1
end
function request()
  local r = requests[next_index]
  next_index = next_index % #requests + 1
  return r
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRK_RESULT %d %d %d %d %d %d %d\n",
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
"#;

/// Writes the requests and the script into `dir` for [`run`].
///
/// # Panics
/// When the files cannot be written.
pub fn prepare(dir: &Path, requests: &[Vec<u8>]) {
    let mut file = std::fs::File::create(dir.join("requests.bin")).expect("requests file");
    for request in requests {
        writeln!(file, "{:010}", request.len()).expect("write");
        file.write_all(request).expect("write");
    }
    std::fs::write(dir.join("wrk.lua"), SCRIPT).expect("script");
}

/// Runs wrk against `url` with the requests [`prepare`]d in `dir`.
///
/// # Panics
/// When wrk is missing or prints no result.
pub fn run(
    dir: &Path,
    url: &str,
    threads: usize,
    connections: usize,
    duration: Duration,
) -> WrkResult {
    let output = Command::new("wrk")
        .arg(format!("-t{threads}"))
        .arg(format!("-c{connections}"))
        .arg(format!("-d{}s", duration.as_secs().max(1)))
        .arg("--timeout")
        .arg("10s")
        .arg("-s")
        .arg(dir.join("wrk.lua"))
        .arg(url)
        .arg("--")
        .arg(dir.join("requests.bin"))
        .output()
        .expect("wrk not found: `make bench` installs it (apt-get install wrk)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("WRK_RESULT "))
        .unwrap_or_else(|| {
            panic!(
                "wrk printed no result: {stdout}{}",
                String::from_utf8_lossy(&output.stderr)
            )
        });
    let n: Vec<u64> = line
        .split_whitespace()
        .map(|v| v.parse().unwrap_or(0))
        .collect();
    let ms = |us: u64| us as f64 / 1000.0;
    WrkResult {
        requests: n[0],
        seconds: n[1] as f64 / 1e6,
        non_2xx: n[2],
        socket_errors: n[3],
        p50_ms: ms(n[4]),
        p99_ms: ms(n[5]),
        max_ms: ms(n[6]),
    }
}

/// A GitHub delivery as raw HTTP/1.1 bytes, signed with `secret`.
pub fn github_request(host: &str, secret: &str, delivery: &str, body: &[u8]) -> Vec<u8> {
    let signature = hookbridge_shared::signature::sign_with(secret, body);
    let mut request = format!(
        "POST /webhooks/github HTTP/1.1\r\nHost: {host}\r\nUser-Agent: GitHub-Hookshot/5b2a8d4\r\n\
         Accept: */*\r\nContent-Type: application/json\r\nX-GitHub-Event: issues\r\n\
         X-GitHub-Delivery: {delivery}\r\nX-GitHub-Hook-ID: 512345678\r\n\
         X-GitHub-Hook-Installation-Target-ID: 79929171\r\n\
         X-GitHub-Hook-Installation-Target-Type: repository\r\n\
         X-Hub-Signature-256: {signature}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    request
}
