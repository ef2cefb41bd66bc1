//! The real binaries as child processes: started with a clean environment (nothing of the
//! developer's hookbridge, Jira or AWS settings leaks in), their stderr kept for assertions, and
//! killed when the test ends.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use nix::sys::signal::Signal;
use nix::unistd::Pid;

/// Environment variables the binaries read; removed from what a child inherits (AWS credentials,
/// `PATH` and `HOME` stay, so that test credentials set by `scripts/with-test-services.sh` reach it).
const APP_VARIABLES: &[&str] = &[
    "GITHUB_WEBHOOK_SECRET",
    "GITHUB_WEBHOOK_SECRET_FILE",
    "GITHUB_TOKEN",
    "GITHUB_TOKEN_FILE",
    "GITHUB_API_URL",
    "WEBHOOK_SECRET",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_SQS",
    "AWS_ENDPOINT_URL_S3",
    "REDIS_URL",
    "REDIS_URL_FILE",
    "WORKER_CONCURRENCY",
    "ENFORCE_PKI_VALIDATION",
    "PKI_KEY_PASSWORD",
    "RUST_LOG",
    "LOG_FORMAT",
];

/// Prefixes of whole families of application variables, removed as well.
const APP_PREFIXES: &[&str] = &["HOOKBRIDGE_", "JIRA_", "SQS_", "CR_", "SLACK_"];

fn is_app_variable(key: &str) -> bool {
    APP_VARIABLES.contains(&key) || APP_PREFIXES.iter().any(|p| key.starts_with(p))
}

/// `target/debug/<name>` (or `CARGO_TARGET_DIR`), built by `make test` before the tests run.
///
/// # Panics
/// When the binary has not been built.
pub fn binary(name: &str) -> PathBuf {
    built(name, "debug")
}

/// `target/release/<name>`, for benchmarks (`make bench` builds it).
///
/// # Panics
/// When the binary has not been built.
pub fn release_binary(name: &str) -> PathBuf {
    built(name, "release")
}

fn built(name: &str, profile: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"),
        PathBuf::from,
    );
    let path = target.join(profile).join(name);
    assert!(
        path.exists(),
        "{} is missing: build it first (`make test` and `make bench` do)",
        path.display()
    );
    path
}

/// Runs binary `name` with `args` and `env` to completion, off the async runtime (a blocking
/// wait); its exit status and every line it printed.
///
/// # Panics
/// When the process cannot be started or does not exit within `timeout`.
pub async fn run_to_end(
    name: &'static str,
    args: &[&str],
    env: &[(&str, String)],
    timeout: Duration,
) -> (ExitStatus, Vec<String>) {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let env: Vec<(&str, String)> = env.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        let mut proc = Proc::spawn(name, &args, &env);
        let status = proc.wait_exit(timeout);
        (status, proc.output())
    })
    .await
    .expect("join the process runner")
}

/// A running binary; killed on drop.
pub struct Proc {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl Proc {
    /// Starts `name` with `env` (and `LOG_FORMAT=json` unless given).
    ///
    /// # Panics
    /// When the process cannot be started.
    pub fn spawn(name: &str, args: &[&str], env: &[(&str, String)]) -> Self {
        Self::spawn_path(&binary(name), args, env)
    }

    /// Like [`Proc::spawn`], for a binary given by path.
    ///
    /// # Panics
    /// When the process cannot be started.
    pub fn spawn_path(path: &std::path::Path, args: &[&str], env: &[(&str, String)]) -> Self {
        let name = path.display().to_string();
        let mut command = Command::new(path);
        command.args(args);
        for key in std::env::vars().map(|(k, _)| k) {
            if is_app_variable(&key) {
                command.env_remove(key);
            }
        }
        // Test servers are on loopback: never through a proxy of the developer's shell.
        command
            .env("LOG_FORMAT", "json")
            .env("RUST_LOG", "info")
            .env("NO_PROXY", "127.0.0.1,localhost")
            .env("no_proxy", "127.0.0.1,localhost")
            // `hookbridge run` serves the operator's page on 127.0.0.1:9091 unless told where:
            // tests run many at once, each on a free port (read from its log line).
            .env("HOOKBRIDGE_ADMIN_BIND", "127.0.0.1:0");
        for (key, value) in env {
            command.env(key, value);
        }
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {e}"));
        let lines = Arc::new(Mutex::new(Vec::new()));
        let mut readers = Vec::new();
        for stream in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let lines = lines.clone();
            readers.push(std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    lines.lock().unwrap_or_else(|p| p.into_inner()).push(line);
                }
            }));
        }
        Self {
            child,
            lines,
            readers,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Peak resident memory so far (`VmHWM`), in MiB; NaN once the process is gone.
    pub fn peak_rss_mib(&self) -> f64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / 1024.0)
    }

    /// Everything the process printed so far (stdout and stderr).
    pub fn output(&self) -> Vec<String> {
        self.lines.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Waits until a printed line contains `needle`; returns that line.
    ///
    /// # Panics
    /// After `timeout`, with what the process printed.
    pub fn wait_for_line(&mut self, needle: &str, timeout: Duration) -> String {
        self.wait_for(&format!("a line with {needle:?}"), timeout, |line| {
            line.contains(needle).then(|| line.to_owned())
        })
    }

    /// Waits until `found` returns `Some` for a printed line; returns that value.
    ///
    /// # Panics
    /// After `timeout`, or when the process exits first, with what the process printed.
    pub fn wait_for<T>(
        &mut self,
        what: &str,
        timeout: Duration,
        mut found: impl FnMut(&str) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(value) = self.output().iter().find_map(|l| found(l)) {
                return value;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                // The reader threads may still hold the last lines: give them a moment.
                std::thread::sleep(Duration::from_millis(100));
                if let Some(value) = self.output().iter().find_map(|l| found(l)) {
                    return value;
                }
                panic!(
                    "process exited ({status}) before printing {what}:\n{}",
                    self.output().join("\n")
                );
            }
            assert!(
                Instant::now() < deadline,
                "no {what} within {timeout:?}:\n{}",
                self.output().join("\n")
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits for the service to announce its address and returns its base URL (`http://…` or
    /// `https://…`): the `url` field of `hookbridge-ingest`'s JSON "listening" log line, or the
    /// `listening on <url>` banner line `hookbridge run` prints on stdout.
    ///
    /// # Panics
    /// After `timeout`, or when the process exits first.
    pub fn wait_listening(&mut self, timeout: Duration) -> String {
        self.wait_for("the listening announcement", timeout, listening_url)
    }

    /// `kill -9`: no chance to clean up.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        self.send_signal(Signal::SIGTERM);
    }

    /// Sends `signal` to the process (a no-op once it has exited and been reaped).
    pub fn send_signal(&self, signal: Signal) {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            let _ = nix::sys::signal::kill(Pid::from_raw(pid), signal);
        }
    }

    /// The exit status, if the process has exited.
    pub fn try_exit(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Waits for the process to exit; afterwards [`Proc::output`] holds everything it printed.
    ///
    /// # Panics
    /// After `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                // The readers finish at end of file; a moment at most after the exit.
                let drained = Instant::now() + Duration::from_secs(5);
                while !self.readers.iter().all(|r| r.is_finished()) && Instant::now() < drained {
                    std::thread::sleep(Duration::from_millis(5));
                }
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "process did not exit within {timeout:?}:\n{}",
                self.output().join("\n")
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The base URL in a "listening" line of either binary, if this is one.
fn listening_url(line: &str) -> Option<String> {
    if let Ok(event) = serde_json::from_str::<serde_json::Value>(line) {
        let message = event["message"].as_str().unwrap_or_default();
        return message
            .ends_with("listening")
            .then(|| event["url"].as_str().map(str::to_owned))
            .flatten();
    }
    let rest = line.trim_start().strip_prefix("listening on")?;
    rest.split_whitespace()
        .next()
        .filter(|w| w.starts_with("http://") || w.starts_with("https://"))
        .map(str::to_owned)
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
