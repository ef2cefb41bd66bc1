//! The real binaries as child processes: started with a clean environment (nothing of the
//! developer's hookbridge, Jira or AWS settings leaks in), their stderr kept for assertions, and
//! killed when the test ends.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Environment variables the binaries read; removed from what a child inherits.
const APP_VARIABLES: &[&str] = &[
    "GITHUB_WEBHOOK_SECRET",
    "JIRA_WEBHOOK_SECRET",
    "WEBHOOK_SECRET",
    "SQS_QUEUE_URL",
    "SQS_DLQ_URL",
    "AWS_ENDPOINT_URL",
    "REDIS_URL",
    "JIRA_BASE_URL",
    "JIRA_URL",
    "JIRA_EMAIL",
    "JIRA_USER",
    "JIRA_API_TOKEN",
    "JIRA_TOKEN",
    "JIRA_PROJECT_KEY",
    "JIRA_ISSUE_TYPE",
    "WORKER_CONCURRENCY",
    "RUST_LOG",
    "LOG_FORMAT",
];

/// `target/debug/<name>` (or `CARGO_TARGET_DIR`), built by `make test` before the tests run.
///
/// # Panics
/// When the binary has not been built.
pub fn binary(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"),
        PathBuf::from,
    );
    let path = target.join("debug").join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace --bins` first (make test does)",
        path.display()
    );
    path
}

/// A running binary; killed on drop.
pub struct Proc {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Proc {
    /// Starts `name` with `env` (and `LOG_FORMAT=json` unless given).
    ///
    /// # Panics
    /// When the process cannot be started.
    pub fn spawn(name: &str, args: &[&str], env: &[(&str, String)]) -> Self {
        let mut command = Command::new(binary(name));
        command.args(args);
        for key in std::env::vars().map(|(k, _)| k) {
            if APP_VARIABLES.contains(&key.as_str()) || key.starts_with("HOOKBRIDGE_") {
                command.env_remove(key);
            }
        }
        command.env("LOG_FORMAT", "json").env("RUST_LOG", "info");
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
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    lines.lock().unwrap_or_else(|p| p.into_inner()).push(line);
                }
            });
        }
        Self { child, lines }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
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
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(line) = self.output().into_iter().find(|l| l.contains(needle)) {
                return line;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "process exited ({status}) before printing {needle:?}:\n{}",
                    self.output().join("\n")
                );
            }
            assert!(
                Instant::now() < deadline,
                "no line with {needle:?} within {timeout:?}:\n{}",
                self.output().join("\n")
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `kill -9`: no chance to clean up.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM (through `kill(1)`, to stay free of unsafe code).
    pub fn terminate(&self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
    }

    /// Waits for the process to exit.
    ///
    /// # Panics
    /// After `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
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

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
