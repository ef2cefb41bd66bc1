//! A real browser for the operator's page tests: Debian's `chromium`, headless, driven through
//! its `chromedriver` (WebDriver) with the `fantoccini` crate.
//!
//! Each [`Browser`] has its own chromedriver on a free port of 127.0.0.1 and its own chromium
//! profile, so tests in one binary can run browsers side by side. Its files (profile and
//! `chromedriver.log`) live in a directory under `.test-env/browser/`, removed when the browser is
//! dropped, kept (and its path printed) when the test panicked. The chromedriver runs in a process
//! group of its own, and dropping the browser kills that group: chromedriver and every chromium
//! process it started.
//!
//! `scripts/with-test-services.sh` installs `chromium` and `chromium-driver` and passes their
//! paths as `HOOKBRIDGE_CHROMIUM` and `HOOKBRIDGE_CHROMEDRIVER`; without those variables they are
//! looked up on `PATH`. A missing binary fails the test: the browser tests are never skipped.
//!
//! Screenshots ([`Browser::screenshot`]) go to `target/browser-artifacts/<name>.png`, and with
//! `HOOKBRIDGE_UPDATE_SCREENSHOTS=1` also to `docs/images/admin-<name>.png` (the README's).
//!
//! The helpers panic with what they were doing: a failed step fails the test that took it.
//! [`Browser::client`] gives the fantoccini client for anything else.

mod launch;

use std::path::PathBuf;
use std::process::Child;
use std::time::{Duration, Instant};

use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::elements::Element;
use fantoccini::key::Key;
use fantoccini::{Client, Locator};
use serde_json::{Value, json};

use launch::{
    Cdp, connect, find_binary, free_port, kill_group, log_tail, project_root, spawn_driver,
    target_dir, wait_ready,
};

/// The window of a laptop screen: every screenshot has this size.
pub const WINDOW: (u32, u32) = (1366, 768);
/// How long the `wait_*` helpers wait for a page to show something.
pub const WAIT: Duration = Duration::from_secs(15);
/// How many ports are tried when another process takes the free one first.
const PORT_ATTEMPTS: usize = 3;

/// What has keyboard focus ([`Browser::focused`], [`Browser::press_tab`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Focused {
    /// Lower-case tag name: `a`, `button`, `input`, ...
    pub tag: String,
    /// Its visible text (empty for an input: see `value`).
    pub text: String,
    pub id: Option<String>,
    pub name: Option<String>,
    pub href: Option<String>,
    /// An input's current value.
    pub value: Option<String>,
}

/// A headless chromium with its own chromedriver; both killed on drop.
pub struct Browser {
    client: Client,
    /// None once killed and reaped (its pid may then belong to someone else).
    driver: Option<Child>,
    dir: Option<tempfile::TempDir>,
    started_in: Duration,
}

impl Browser {
    /// Starts chromedriver on a free port, waits until it answers, and opens a chromium session.
    ///
    /// # Panics
    /// When `chromium` or `chromedriver` is missing (naming it), or they do not start.
    pub async fn start() -> Self {
        let started = Instant::now();
        let chromedriver =
            find_binary("HOOKBRIDGE_CHROMEDRIVER", "chromedriver", "chromium-driver");
        let chromium = find_binary("HOOKBRIDGE_CHROMIUM", "chromium", "chromium");
        let parent = project_root().join(".test-env/browser");
        std::fs::create_dir_all(&parent)
            .unwrap_or_else(|e| panic!("create {}: {e}", parent.display()));
        let dir = tempfile::Builder::new()
            .prefix("browser-")
            .tempdir_in(&parent)
            .unwrap_or_else(|e| panic!("create a browser dir in {}: {e}", parent.display()));
        let profile = dir.path().join("profile");
        let log = dir.path().join("chromedriver.log");

        let mut last_error = String::new();
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port();
            let mut driver = spawn_driver(&chromedriver, port, &log);
            let url = format!("http://127.0.0.1:{port}/");
            match wait_ready(&url, &mut driver).await {
                Ok(()) => {}
                Err(e) => {
                    kill_group(driver);
                    // Most likely the port was taken between choosing and binding: try another.
                    last_error = e;
                    continue;
                }
            }
            let client = match connect(&url, &chromium, &profile).await {
                Ok(client) => client,
                Err(e) => {
                    kill_group(driver);
                    let _kept = dir.keep();
                    panic!(
                        "open a chromium session ({}) through chromedriver: {e}\n{}",
                        chromium.display(),
                        log_tail(&log)
                    );
                }
            };
            let mut browser = Self {
                client,
                driver: Some(driver),
                dir: Some(dir),
                started_in: Duration::ZERO,
            };
            browser.fit_viewport().await;
            browser.started_in = started.elapsed();
            return browser;
        }
        let _kept = dir.keep();
        panic!(
            "chromedriver ({}) did not start: {last_error}\n{}",
            chromedriver.display(),
            log_tail(&log)
        );
    }

    /// Resizes the window so that the page itself (the viewport, what a screenshot shows) is
    /// [`WINDOW`]: `--window-size` sizes the whole window, toolbars included.
    async fn fit_viewport(&self) {
        let inner = async || -> (i64, i64) {
            let size = self
                .client
                .execute("return [window.innerWidth, window.innerHeight];", vec![])
                .await
                .expect("read the viewport size");
            (
                size[0].as_i64().unwrap_or_default(),
                size[1].as_i64().unwrap_or_default(),
            )
        };
        let (width, height) = inner().await;
        let (outer_width, outer_height) = self
            .client
            .get_window_size()
            .await
            .expect("read the window size");
        let grow = |outer: u64, inner: i64, want: u32| {
            u32::try_from(i64::try_from(outer).unwrap_or_default() + i64::from(want) - inner)
                .unwrap_or(want)
        };
        self.client
            .set_window_size(
                grow(outer_width, width, WINDOW.0),
                grow(outer_height, height, WINDOW.1),
            )
            .await
            .expect("resize the window");
        let now = inner().await;
        assert_eq!(
            now,
            (i64::from(WINDOW.0), i64::from(WINDOW.1)),
            "the viewport did not take the size {WINDOW:?}"
        );
    }

    /// The fantoccini client, for what the helpers do not cover.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// How long [`Browser::start`] took (chromedriver up and chromium session open).
    pub fn startup_time(&self) -> Duration {
        self.started_in
    }

    /// Opens `url` and waits for it to load.
    pub async fn goto(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("open {url}: {e}"));
    }

    /// The current page's URL.
    pub async fn current_url(&self) -> url::Url {
        self.client.current_url().await.expect("current URL")
    }

    /// The current page's `<title>`.
    pub async fn title(&self) -> String {
        self.client.title().await.expect("page title")
    }

    /// The element `css` selects (the first one).
    pub async fn find(&self, css: &str) -> Element {
        match self.client.find(Locator::Css(css)).await {
            Ok(element) => element,
            Err(e) => panic!("find `{css}` on {}: {e}", self.where_().await),
        }
    }

    /// Every element `css` selects (none is not an error).
    pub async fn find_all(&self, css: &str) -> Vec<Element> {
        self.client
            .find_all(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("find all `{css}`: {e}"))
    }

    /// The link whose text is exactly `text`.
    pub async fn find_link(&self, text: &str) -> Element {
        match self.client.find(Locator::LinkText(text)).await {
            Ok(element) => element,
            Err(e) => panic!("find the link `{text}` on {}: {e}", self.where_().await),
        }
    }

    /// Clicks the element `css` selects.
    pub async fn click(&self, css: &str) {
        self.find(css)
            .await
            .click()
            .await
            .unwrap_or_else(|e| panic!("click `{css}`: {e}"));
    }

    /// Clicks the link whose text is exactly `text`.
    pub async fn click_link(&self, text: &str) {
        self.find_link(text)
            .await
            .click()
            .await
            .unwrap_or_else(|e| panic!("click the link `{text}`: {e}"));
    }

    /// Replaces the value of the field `css` selects by typing `value` into it.
    pub async fn fill(&self, css: &str, value: &str) {
        let field = self.find(css).await;
        field
            .clear()
            .await
            .unwrap_or_else(|e| panic!("clear `{css}`: {e}"));
        field
            .send_keys(value)
            .await
            .unwrap_or_else(|e| panic!("type into `{css}`: {e}"));
    }

    /// Submits the form `form_css` selects by clicking its (first) submit button, as a user does.
    pub async fn submit(&self, form_css: &str) {
        let form = match self.client.form(Locator::Css(form_css)).await {
            Ok(form) => form,
            Err(e) => panic!("find the form `{form_css}` on {}: {e}", self.where_().await),
        };
        form.submit_with(Locator::Css(
            "input[type=submit], button[type=submit], button:not([type])",
        ))
        .await
        .unwrap_or_else(|e| panic!("submit the form `{form_css}`: {e}"));
    }

    /// The visible text of the element `css` selects.
    pub async fn text(&self, css: &str) -> String {
        self.find(css)
            .await
            .text()
            .await
            .unwrap_or_else(|e| panic!("read the text of `{css}`: {e}"))
    }

    /// The value of attribute `name` of the element `css` selects.
    pub async fn attr(&self, css: &str, name: &str) -> Option<String> {
        self.find(css)
            .await
            .attr(name)
            .await
            .unwrap_or_else(|e| panic!("read `{name}` of `{css}`: {e}"))
    }

    /// Waits (up to [`WAIT`]) for an element `css` selects to appear.
    pub async fn wait_for(&self, css: &str) -> Element {
        match self
            .client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(css))
            .await
        {
            Ok(element) => element,
            Err(e) => panic!("wait for `{css}` on {}: {e}", self.where_().await),
        }
    }

    /// Waits (up to [`WAIT`]) for the element `css` selects to show text containing `needle`;
    /// its whole text.
    pub async fn wait_for_text(&self, css: &str, needle: &str) -> String {
        let deadline = Instant::now() + WAIT;
        let mut last = String::new();
        loop {
            if let Ok(element) = self.client.find(Locator::Css(css)).await
                && let Ok(text) = element.text().await
            {
                if text.contains(needle) {
                    return text;
                }
                last = text;
            }
            assert!(
                Instant::now() < deadline,
                "`{css}` on {} did not show {needle:?} within {WAIT:?}; it shows {last:?}",
                self.where_().await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits (up to [`WAIT`]) for the page's URL path to be `path`.
    pub async fn wait_for_path(&self, path: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            let url = self.current_url().await;
            if url.path() == path {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the browser did not reach {path} within {WAIT:?}; it is on {url}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits for a JavaScript `confirm()` (or `alert()`) dialog, accepts it, and returns its text.
    pub async fn accept_confirm(&self) -> String {
        let text = self.dialog_text().await;
        self.client
            .accept_alert()
            .await
            .unwrap_or_else(|e| panic!("accept the dialog {text:?}: {e}"));
        text
    }

    /// Waits for a JavaScript `confirm()` dialog, dismisses it (Cancel), and returns its text.
    pub async fn dismiss_confirm(&self) -> String {
        let text = self.dialog_text().await;
        self.client
            .dismiss_alert()
            .await
            .unwrap_or_else(|e| panic!("dismiss the dialog {text:?}: {e}"));
        text
    }

    async fn dialog_text(&self) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            match self.client.get_alert_text().await {
                Ok(text) => return text,
                Err(e) => assert!(
                    Instant::now() < deadline,
                    "no dialog opened within {WAIT:?}: {e}"
                ),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Sends header `name: value` with every later request of this browser (through the
    /// DevTools protocol: WebDriver itself cannot set headers). Replaces earlier extra headers.
    pub async fn set_extra_header(&self, name: &str, value: &str) {
        self.cdp("Network.enable", json!({})).await;
        self.cdp(
            "Network.setExtraHTTPHeaders",
            json!({ "headers": { name: value } }),
        )
        .await;
    }

    /// Sets cookie `name=value` (path `/`) for `origin` (e.g. `http://127.0.0.1:PORT`), through
    /// the DevTools protocol: WebDriver's Add Cookie rejects a cookie for an IP address host.
    pub async fn set_cookie(&self, origin: &str, name: &str, value: &str) {
        let set = self
            .cdp(
                "Network.setCookie",
                json!({ "url": origin, "name": name, "value": value, "path": "/" }),
            )
            .await;
        assert!(
            set["success"] != Value::Bool(false),
            "set the cookie {name} for {origin}: {set}"
        );
    }

    /// Presses Tab `times` times (as the keyboard does: from whatever has focus) and returns
    /// what has focus then.
    pub async fn press_tab(&self, times: usize) -> Focused {
        for _ in 0..times {
            self.press(Key::Tab).await;
        }
        self.focused().await
    }

    /// Presses Enter on whatever has focus (follows a focused link, submits a focused form).
    pub async fn press_enter(&self) {
        self.press(Key::Enter).await;
    }

    async fn press(&self, key: Key) {
        let keys = KeyActions::new("keyboard".to_owned())
            .then(KeyAction::Down { value: key.into() })
            .then(KeyAction::Up { value: key.into() });
        self.client
            .perform_actions(keys)
            .await
            .unwrap_or_else(|e| panic!("press {key:?}: {e}"));
    }

    /// What has keyboard focus now.
    pub async fn focused(&self) -> Focused {
        let element = self
            .client
            .active_element()
            .await
            .unwrap_or_else(|e| panic!("the focused element: {e}"));
        let attr = async |name: &str| element.attr(name).await.ok().flatten();
        Focused {
            tag: element
                .tag_name()
                .await
                .expect("focused tag")
                .to_lowercase(),
            text: element.text().await.unwrap_or_default(),
            id: attr("id").await,
            name: attr("name").await,
            href: attr("href").await,
            value: element.prop("value").await.ok().flatten(),
        }
    }

    /// Saves a PNG of the window as `target/browser-artifacts/<name>.png` (printing the path) and,
    /// with `HOOKBRIDGE_UPDATE_SCREENSHOTS=1`, copies it to `docs/images/admin-<name>.png`.
    /// `name` is lower-case letters, digits and `-`.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
            "screenshot name {name:?}: use lower-case letters, digits and -"
        );
        let png = self
            .client
            .screenshot()
            .await
            .unwrap_or_else(|e| panic!("take the screenshot {name}: {e}"));
        let dir = target_dir().join("browser-artifacts");
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, &png).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        println!("screenshot: {}", path.display());
        if std::env::var_os("HOOKBRIDGE_UPDATE_SCREENSHOTS").is_some_and(|v| v == "1") {
            let docs = project_root().join("docs/images");
            std::fs::create_dir_all(&docs)
                .unwrap_or_else(|e| panic!("create {}: {e}", docs.display()));
            let copy = docs.join(format!("admin-{name}.png"));
            std::fs::write(&copy, &png).unwrap_or_else(|e| panic!("write {}: {e}", copy.display()));
            println!("screenshot: {}", copy.display());
        }
        path
    }

    /// Ends the session (chromium quits) and stops chromedriver.
    pub async fn close(mut self) {
        let client = self.client.clone();
        let _ = client.close().await;
        if let Some(driver) = self.driver.take() {
            kill_group(driver);
        }
    }

    /// Runs a DevTools protocol command through chromedriver; its result.
    async fn cdp(&self, cmd: &'static str, params: Value) -> Value {
        self.client
            .issue_cmd(Cdp { cmd, params })
            .await
            .unwrap_or_else(|e| panic!("DevTools command {cmd}: {e}"))
    }

    /// "the page at URL", for error messages.
    async fn where_(&self) -> String {
        match self.client.current_url().await {
            Ok(url) => format!("the page at {url}"),
            Err(_) => "the current page".to_owned(),
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(driver) = self.driver.take() {
            kill_group(driver);
        }
        if std::thread::panicking()
            && let Some(dir) = self.dir.take()
        {
            let kept = dir.keep();
            eprintln!(
                "browser files kept for the post-mortem: {}",
                kept.join("chromedriver.log").display()
            );
        }
    }
}
