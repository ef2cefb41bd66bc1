//! The real `hookbridge-ingest` (or `hookbridge run`) started on `127.0.0.1:0` with its own temp
//! data dir and a clean environment, plus ways to look behind it: the embedded queue it wrote to,
//! and an HTTP client that never goes through a proxy.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use hookbridge_shared::envelope::Envelope;
use hookbridge_shared::queue::ReceiveOptions;
use hookbridge_shared::queue::embedded::{EmbeddedOptions, EmbeddedQueue};

use crate::process::Proc;

/// How long a process may take to start, answer or stop before a test fails. Generous: the
/// suites run in parallel on two cores.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// A running ingest and its private data dir (removed when this is dropped, after the process).
pub struct TestIngest {
    pub proc: Proc,
    /// `http://127.0.0.1:PORT` (or `https://…` with TLS), without a trailing slash.
    pub url: String,
    pub dir: tempfile::TempDir,
}

/// What to start: which binary, flags and environment.
pub struct IngestBuilder {
    binary: &'static str,
    args: Vec<String>,
    env: BTreeMap<String, Option<String>>,
}

impl TestIngest {
    /// `hookbridge-ingest` with the embedded queue and no secret yet: add one with
    /// [`IngestBuilder::env`].
    pub fn ingest() -> IngestBuilder {
        IngestBuilder {
            binary: "hookbridge-ingest",
            args: Vec::new(),
            env: BTreeMap::new(),
        }
    }

    /// `hookbridge run` (ingest and worker in one process).
    pub fn run_mode() -> IngestBuilder {
        IngestBuilder {
            binary: "hookbridge",
            args: vec!["run".to_owned()],
            env: BTreeMap::new(),
        }
    }

    /// `path` on this ingest, e.g. `/webhooks/github`.
    pub fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// Everything the process printed so far, one string.
    pub fn printed(&self) -> String {
        self.proc.output().join("\n")
    }
}

impl IngestBuilder {
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    pub fn env(mut self, key: &str, value: impl Into<String>) -> Self {
        self.env.insert(key.to_owned(), Some(value.into()));
        self
    }

    /// The variable is not set at all in the child.
    pub fn unset(mut self, key: &str) -> Self {
        self.env.insert(key.to_owned(), None);
        self
    }

    fn command_env(&self, dir: &Path) -> Vec<(String, String)> {
        let mut env: BTreeMap<String, Option<String>> = BTreeMap::from([
            ("HOOKBRIDGE_BIND".to_owned(), Some("127.0.0.1:0".to_owned())),
            (
                "HOOKBRIDGE_DATA_DIR".to_owned(),
                Some(dir.display().to_string()),
            ),
            ("LOG_FORMAT".to_owned(), Some("json".to_owned())),
            // Two cores and many suites in parallel: two HTTP workers are plenty.
            ("HOOKBRIDGE_HTTP_WORKERS".to_owned(), Some("2".to_owned())),
        ]);
        env.extend(self.env.clone());
        env.into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .collect()
    }

    /// Starts the process without waiting for it (for processes expected to fail at start).
    pub fn spawn(self) -> (Proc, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("create a temp data dir");
        let env = self.command_env(dir.path());
        let env: Vec<(&str, String)> = env.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        (Proc::spawn(self.binary, &args, &env), dir)
    }

    /// Starts the process and waits until it announces its URL.
    ///
    /// # Panics
    /// When it exits or stays silent for [`PATIENCE`].
    pub fn start(self) -> TestIngest {
        let (mut proc, dir) = self.spawn();
        let url = proc.wait_listening(PATIENCE);
        TestIngest { proc, url, dir }
    }
}

/// A client for the test servers: no proxy, no connection reuse surprises across tests.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(PATIENCE)
        .build()
        .expect("build an HTTP client")
}

/// Receives every visible message of the embedded queue in `data_dir` and decodes each envelope.
/// The messages stay invisible for five minutes afterwards, which outlives any test.
///
/// # Panics
/// When the queue cannot be opened or a message is not an envelope.
pub async fn embedded_queue_contents(data_dir: &Path) -> Vec<Envelope> {
    let queue = EmbeddedQueue::open(EmbeddedOptions::in_dir(
        data_dir,
        hookbridge_shared::config::EMBEDDED_QUEUE_FILE,
    ))
    .expect("open the embedded queue in the data dir");
    let mut all = Vec::new();
    loop {
        let batch = queue
            .receive(ReceiveOptions {
                max_messages: 10,
                wait: Duration::ZERO,
                visibility: Duration::from_secs(300),
            })
            .await
            .expect("receive from the embedded queue");
        if batch.is_empty() {
            return all;
        }
        all.extend(
            batch
                .iter()
                .map(|m| Envelope::decode(&m.body).expect("every queued message is an envelope")),
        );
    }
}
