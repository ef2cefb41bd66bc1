//! Private Redis and moto_server processes for fault injection (`tests/tests/chaos.rs`): each on a
//! port of its own, so that a test can kill, restart (same port, same data) or freeze one without
//! touching the shared servers `scripts/with-test-services.sh` started for every other test.
//!
//! Ports are picked below the kernel's ephemeral range: a service restarted on "its" port must not
//! find it taken by an outgoing connection that the kernel gave that port meanwhile.
//!
//! Also [`store_env`]: the shared test Redis as a process's store, under a prefix of its own.

use std::path::PathBuf;
use std::time::Duration;

use crate::process::{Proc, Signal};

/// How long a server may take to start (moto imports a lot of Python; two busy cores).
const START_PATIENCE: Duration = Duration::from_secs(60);

/// A port of 127.0.0.1 that nothing listens on now, below the ephemeral range (falls back to one
/// the kernel picks when that range starts too low to leave room).
///
/// # Panics
/// When no port can be bound at all.
pub fn free_port() -> u16 {
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .next()
                .and_then(|p| p.parse::<u16>().ok())
        })
        .unwrap_or(32768);
    if low > 12_000 {
        let span = u128::from(low - 11_000);
        for _ in 0..200 {
            let offset =
                u16::try_from(uuid::Uuid::new_v4().as_u128() % span).expect("span fits a port");
            let port = 10_000 + offset;
            if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
                return port;
            }
        }
    }
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .expect("bind a free port")
        .port()
}

/// A `redis-server` of the test's own, persisting every write before answering it
/// (`appendonly yes`, `appendfsync always`), so that a `kill -9` loses nothing it acknowledged.
pub struct PrivateRedis {
    proc: Option<Proc>,
    port: u16,
    dir: tempfile::TempDir,
    /// How many times it was started.
    pub starts: u32,
}

impl PrivateRedis {
    /// Starts it on a free port with an empty data dir and waits until it accepts connections.
    ///
    /// # Panics
    /// When `redis-server` is not on `PATH` or does not start.
    pub fn start() -> Self {
        let mut redis = Self {
            proc: None,
            port: free_port(),
            dir: tempfile::tempdir().expect("a temp dir for Redis"),
            starts: 0,
        };
        redis.restart();
        redis
    }

    /// `redis://127.0.0.1:PORT/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// `kill -9`: the process is gone at once, its clients' connections reset.
    pub fn kill9(&mut self) {
        if let Some(mut proc) = self.proc.take() {
            proc.kill9();
        }
    }

    /// Starts it again on the same port and data dir (replaying its append-only file); waits until
    /// it accepts connections.
    ///
    /// # Panics
    /// When it does not start.
    pub fn restart(&mut self) {
        self.kill9();
        let port = self.port.to_string();
        let dir = self.dir.path().display().to_string();
        let args = [
            "--port",
            port.as_str(),
            "--bind",
            "127.0.0.1",
            "--dir",
            dir.as_str(),
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
            "--save",
            "",
            "--daemonize",
            "no",
        ];
        let mut proc = Proc::spawn_path(std::path::Path::new("redis-server"), &args, &[]);
        proc.wait_for_line("Ready to accept connections", START_PATIENCE);
        self.proc = Some(proc);
        self.starts += 1;
    }

    /// Everything the current process printed.
    pub fn printed(&self) -> String {
        self.proc
            .as_ref()
            .map(|p| p.output().join("\n"))
            .unwrap_or_default()
    }
}

/// The project root (where `.test-env/` and `scripts/` are).
fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A moto_server of the test's own (started the way `scripts/with-test-services.sh` starts the
/// shared one: through `moto_server_atomic_receive.py`, from `.test-env/venv`). moto keeps its
/// queues in memory: stopping it outright loses them, so an outage is [`PrivateMoto::freeze`].
pub struct PrivateMoto {
    proc: Proc,
    port: u16,
}

impl PrivateMoto {
    /// Starts it on a free port and waits until it answers HTTP.
    ///
    /// # Panics
    /// When `.test-env/venv` is missing (run under `scripts/with-test-services.sh`, which
    /// installs it) or moto does not start.
    pub async fn start() -> Self {
        let python = root().join(".test-env/venv/bin/python");
        assert!(
            python.exists(),
            "{} is missing: run the tests under scripts/with-test-services.sh (it installs moto)",
            python.display()
        );
        let script = root().join("scripts/moto_server_atomic_receive.py");
        let port = free_port();
        let port_arg = port.to_string();
        let script_arg = script.display().to_string();
        let proc = Proc::spawn_path(
            &python,
            &[
                script_arg.as_str(),
                "-H",
                "127.0.0.1",
                "-p",
                port_arg.as_str(),
            ],
            &[],
        );
        let moto = Self { proc, port };
        let client = crate::ingest::http();
        let url = moto.endpoint();
        let up = crate::wait::within(START_PATIENCE, async || {
            client
                .get(&url)
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .is_ok()
        })
        .await;
        assert!(up, "moto_server did not answer:\n{}", moto.printed());
        moto
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// SIGSTOP: connections open and requests are taken by the kernel, but nothing is answered
    /// (what an SQS brown-out looks like to a client) until [`PrivateMoto::thaw`].
    pub fn freeze(&self) {
        self.proc.send_signal(Signal::SIGSTOP);
    }

    /// SIGCONT: it answers again, the requests that waited included.
    pub fn thaw(&self) {
        self.proc.send_signal(Signal::SIGCONT);
    }

    /// Everything it printed.
    pub fn printed(&self) -> String {
        self.proc.output().join("\n")
    }
}

impl Drop for PrivateMoto {
    fn drop(&mut self) {
        // A stopped process takes SIGKILL too; thaw it anyway so nothing waits on it.
        self.thaw();
    }
}

/// The store settings of a backend for a process under test: the shared test Redis (from
/// `scripts/with-test-services.sh`) under a fresh key prefix starting with `prefix`, or nothing
/// (the embedded store).
///
/// # Panics
/// With Redis asked for outside `scripts/with-test-services.sh`.
pub fn store_env(redis: bool, prefix: &str) -> Vec<(&'static str, String)> {
    if !redis {
        return Vec::new();
    }
    let url = std::env::var("HOOKBRIDGE_TEST_REDIS_URL")
        .expect("HOOKBRIDGE_TEST_REDIS_URL: run under scripts/with-test-services.sh (make test)");
    vec![
        ("REDIS_URL", url),
        (
            "HOOKBRIDGE_REDIS_PREFIX",
            format!("{prefix}:{}:", uuid::Uuid::new_v4().simple()),
        ),
    ]
}
