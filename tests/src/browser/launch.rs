//! Starting and stopping chromedriver and its chromium session (`Browser::start` and its drop):
//! finding the binaries, a free port, polling `/status`, the headless flags, and killing the
//! process group.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::wd::{Capabilities, WebDriverCompatibleCommand};
use fantoccini::{Client, ClientBuilder};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde_json::{Value, json};

use super::WINDOW;

/// How long chromedriver may take to answer and chromium to open a session (a cold start on a
/// loaded CI machine takes a few seconds).
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The chromium flags: headless; as root without the sandbox (CI runs as root, and chromium
/// refuses to sandbox as root); /tmp instead of a possibly small /dev/shm; a fixed window.
fn chromium_args(profile: &Path) -> Vec<String> {
    vec![
        "--headless=new".into(),
        "--no-sandbox".into(),
        "--disable-dev-shm-usage".into(),
        "--disable-gpu".into(),
        format!("--window-size={},{}", WINDOW.0, WINDOW.1),
        format!("--user-data-dir={}", profile.display()),
        "--no-first-run".into(),
        "--no-default-browser-check".into(),
        "--disable-extensions".into(),
        "--disable-background-networking".into(),
        "--lang=en-US".into(),
    ]
}

/// chromedriver's DevTools passthrough, `POST /session/{id}/goog/cdp/execute`.
#[derive(Debug)]
pub(super) struct Cdp {
    pub(super) cmd: &'static str,
    pub(super) params: Value,
}

impl WebDriverCompatibleCommand for Cdp {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/goog/cdp/execute",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _request_url: &url::Url) -> (reqwest::Method, Option<String>) {
        let body = json!({ "cmd": self.cmd, "params": self.params });
        (reqwest::Method::POST, Some(body.to_string()))
    }
}

/// `$env_var`, else `name` on `PATH`.
///
/// # Panics
/// When neither exists, naming the binary and the Debian package that has it.
pub(super) fn find_binary(env_var: &str, name: &str, package: &str) -> PathBuf {
    if let Some(path) = std::env::var_os(env_var).filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "{name} not found at {} ({env_var}); install Debian's {package} \
             (scripts/with-test-services.sh does)",
            path.display()
        );
        return path;
    }
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
        .unwrap_or_else(|| {
            panic!(
                "{name} not found (neither {env_var} nor PATH has it): the browser tests need it; \
                 install Debian's {package} (scripts/with-test-services.sh does)"
            )
        })
}

/// A port of 127.0.0.1 that was free a moment ago (chromedriver takes a port number, not a socket).
pub(super) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("pick a free port")
        .port()
}

/// chromedriver on `port`, logging to `log`, in a process group of its own so that
/// [`kill_group`] also kills the chromium it starts.
pub(super) fn spawn_driver(chromedriver: &Path, port: u16, log: &Path) -> Child {
    Command::new(chromedriver)
        .arg(format!("--port={port}"))
        .arg(format!("--log-path={}", log.display()))
        .arg("--append-log")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("start {}: {e}", chromedriver.display()))
}

/// Polls chromedriver's `/status` until it says it is ready.
pub(super) async fn wait_ready(url: &str, driver: &mut Child) -> Result<(), String> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .expect("an HTTP client");
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Some(status) = driver.try_wait().ok().flatten() {
            return Err(format!("chromedriver exited ({status})"));
        }
        if let Ok(response) = http.get(format!("{url}status")).send().await
            && let Ok(body) = response.json::<Value>().await
            && body["value"]["ready"] == Value::Bool(true)
        {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!("no ready /status within {START_TIMEOUT:?}"));
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A WebDriver session with headless chromium.
pub(super) async fn connect(url: &str, chromium: &Path, profile: &Path) -> Result<Client, String> {
    let mut caps = Capabilities::new();
    caps.insert("browserName".into(), json!("chrome"));
    caps.insert(
        "goog:chromeOptions".into(),
        json!({ "binary": chromium, "args": chromium_args(profile) }),
    );
    // A confirm() stays open until the test accepts or dismisses it (Browser::accept_confirm);
    // the default would dismiss it at the next command.
    caps.insert("unhandledPromptBehavior".into(), json!("ignore"));
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    tokio::time::timeout(
        START_TIMEOUT,
        ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(url),
    )
    .await
    .map_err(|_| format!("no session within {START_TIMEOUT:?}"))?
    .map_err(|e| e.to_string())
}

/// Kills chromedriver and everything in its process group (the chromium processes), and reaps it.
/// Even when chromedriver itself has exited its chromium may not have; until chromedriver is
/// reaped here its pid (the group's id) cannot be reused, so the signal reaches only our processes.
/// (chromium's `chrome_crashpad_handler` runs in a session of its own and exits with chromium.)
pub(super) fn kill_group(mut driver: Child) {
    if let Ok(pid) = i32::try_from(driver.id()) {
        let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
    }
    let _ = driver.wait();
}

/// The last lines of chromedriver's log, for a failure message.
pub(super) fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(20)..].join("\n");
    format!("last lines of {}:\n{tail}", log.display())
}

/// The project root (where `.test-env/`, `docs/` and `target/` are), without `..`: chromedriver
/// never finds chromium's DevToolsActivePort in a `--user-data-dir` with `..` in it (the session
/// then hangs).
pub(super) fn project_root() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    root.canonicalize()
        .unwrap_or_else(|e| panic!("resolve {}: {e}", root.display()))
}

/// Cargo's target directory (`CARGO_TARGET_DIR`, else `target/`).
pub(super) fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| project_root().join("target"), PathBuf::from)
}
