//! The browser harness itself (`hookbridge_tests::browser`), against a small site served by the
//! test: a link followed by keyboard, a form posted by a click, a confirm() dialog, an extra request
//! header and a cookie, and a screenshot. It proves a real headless chromium works on this machine
//! before the operator's page tests rely on it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Form, State};
use axum::http::HeaderMap;
use axum::response::Html;
use axum::routing::{get, post};
use hookbridge_tests::browser::{Browser, WINDOW};
use hookbridge_tests::serve::{Server, bind};

/// The bodies of the POSTs the site received.
type Posts = Arc<Mutex<Vec<HashMap<String, String>>>>;

const HOME: &str = r#"<!doctype html>
<html lang="en"><head><title>Home</title></head>
<body><h1>Home</h1><p><a href="/form">Write a note</a></p>
<button id="danger" onclick="document.getElementById('answer').textContent = confirm('Really delete?') ? 'deleted' : 'kept'">Delete</button>
<p id="answer"></p></body></html>"#;

const FORM: &str = r#"<!doctype html>
<html lang="en"><head><title>Note</title></head>
<body><h1>Note</h1>
<form id="note" method="post" action="/submit">
<label for="text">Text</label> <input id="text" name="text" value="placeholder">
<button type="submit">Save</button>
</form></body></html>"#;

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

async fn submit(
    State(posts): State<Posts>,
    Form(body): Form<HashMap<String, String>>,
) -> Html<String> {
    let text = body.get("text").cloned().unwrap_or_default();
    posts.lock().expect("posts").push(body);
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><title>Saved</title></head>\
         <body><p id=\"result\">Saved: {}</p></body></html>",
        escape(&text)
    ))
}

/// Shows the `x-operator` header and the cookie the browser sent.
async fn echo(headers: HeaderMap) -> Html<String> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("none")
            .to_owned()
    };
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><title>Echo</title></head><body>\
         <p id=\"header\">{}</p><p id=\"cookie\">{}</p></body></html>",
        escape(&header("x-operator")),
        escape(&header("cookie"))
    ))
}

async fn site() -> (Server, String, Posts) {
    let posts = Posts::default();
    let app = Router::new()
        .route("/", get(|| async { Html(HOME) }))
        .route("/form", get(|| async { Html(FORM) }))
        .route("/submit", post(submit))
        .route("/echo", get(echo))
        .with_state(posts.clone());
    let (listener, addr) = bind("browser test site").await;
    (
        Server::start(listener, app),
        format!("http://{addr}"),
        posts,
    )
}

/// PNG's signature and, from its IHDR chunk, the image's width and height.
fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert!(
        bytes.len() > 24 && bytes.starts_with(b"\x89PNG\r\n\x1a\n") && &bytes[12..16] == b"IHDR",
        "not a PNG"
    );
    let be = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
    (be(16), be(20))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyboard_link_form_post_and_screenshot() {
    let (_server, base, posts) = site().await;
    let browser = Browser::start().await;
    println!("browser started in {:?}", browser.startup_time());

    browser.goto(&format!("{base}/")).await;
    assert_eq!(browser.title().await, "Home");
    // The first Tab from the top of the page reaches the link; Enter follows it.
    let focused = browser.press_tab(1).await;
    assert_eq!(focused.tag, "a", "{focused:?}");
    assert_eq!(focused.text, "Write a note");
    browser.press_enter().await;
    browser.wait_for_path("/form").await;
    assert_eq!(browser.text("h1").await, "Note");

    browser.fill("#text", "first <note> & more").await;
    browser.submit("#note").await;
    let shown = browser.wait_for_text("#result", "Saved:").await;
    assert_eq!(shown, "Saved: first <note> & more");
    let received = posts.lock().expect("posts").clone();
    assert_eq!(received.len(), 1, "{received:?}");
    assert_eq!(
        received[0].get("text").map(String::as_str),
        Some("first <note> & more")
    );

    let path = browser.screenshot("harness-smoke").await;
    let png = std::fs::read(&path).expect("read the screenshot");
    assert_eq!(png_size(&png), WINDOW, "{}", path.display());
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirm_dialog_header_and_cookie() {
    let (_server, base, _posts) = site().await;
    let browser = Browser::start().await;

    browser.goto(&format!("{base}/")).await;
    browser.click("#danger").await;
    assert_eq!(browser.dismiss_confirm().await, "Really delete?");
    browser.wait_for_text("#answer", "kept").await;
    browser.click("#danger").await;
    assert_eq!(browser.accept_confirm().await, "Really delete?");
    browser.wait_for_text("#answer", "deleted").await;

    browser.goto(&format!("{base}/echo")).await;
    assert_eq!(browser.text("#header").await, "none");
    browser.set_extra_header("X-Operator", "alice").await;
    browser.set_cookie(&base, "session", "s3cr3t").await;
    browser.goto(&format!("{base}/echo")).await;
    assert_eq!(browser.text("#header").await, "alice");
    assert_eq!(browser.text("#cookie").await, "session=s3cr3t");
}

/// Two browsers at once in one test binary: each its own chromedriver port and profile.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_browsers_side_by_side() {
    let (_server, base, posts) = site().await;
    let (a, b) = tokio::join!(Browser::start(), Browser::start());
    let drive = async |browser: &Browser, text: &str| {
        browser.goto(&format!("{base}/form")).await;
        browser.fill("#text", text).await;
        browser.submit("#note").await;
        browser.wait_for_text("#result", text).await;
    };
    tokio::join!(drive(&a, "from a"), drive(&b, "from b"));
    let mut texts: Vec<String> = posts
        .lock()
        .expect("posts")
        .iter()
        .filter_map(|p| p.get("text").cloned())
        .collect();
    texts.sort();
    assert_eq!(texts, ["from a", "from b"]);
    // A cookie set in one is not seen by the other: separate profiles.
    a.set_cookie(&base, "who", "a").await;
    b.goto(&format!("{base}/echo")).await;
    assert_eq!(b.text("#cookie").await, "none");
}
