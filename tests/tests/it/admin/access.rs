//! Who may see the operator's page and act on it: this machine only without a token (and only
//! under a name of this machine), the token from everyone once set (bearer or the log-in
//! cookie); actions need the page's CSRF token; a listener beyond localhost without a token is
//! refused at start; the token is never shown.

use hookbridge_tests::admin::Admin;
use hookbridge_tests::ingest::TestIngest;
use serde_json::Value;

use super::{PAGES, PATIENCE, TOKEN, start};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_token_this_machine_sees_every_page_in_html_and_json() {
    let (_run, admin) = start(TestIngest::run_mode(), &[]);
    for page in PAGES {
        let (status, html) = admin.html(page).await;
        assert_eq!(status, 200, "{page}: {html}");
        assert!(
            html.contains("<nav aria-label=\"Pages\">"),
            "{page}: {html}"
        );
        let (status, json) = admin.json(page).await;
        assert_eq!(status, 200, "{page}");
        assert!(json.is_object(), "{page}: {json}");
    }
    let (status, json) = admin.json("/no-such-page").await;
    assert_eq!(status, 404);
    assert_eq!(json["error"], "not_found");
    // No page can be framed by another site (a hidden frame could trick a click on Purge), and
    // none runs a script.
    let response = admin
        .http
        .get(format!("{}/dead-letters", admin.base))
        .send()
        .await
        .expect("GET");
    let headers = response.headers();
    assert_eq!(headers["x-frame-options"], "DENY");
    let policy = headers["content-security-policy"]
        .to_str()
        .unwrap_or_default();
    assert!(
        policy.contains("frame-ancestors 'none'") && policy.contains("script-src 'none'"),
        "{policy}"
    );
    assert_eq!(headers["x-content-type-options"], "nosniff");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_token_a_foreign_host_name_is_refused() {
    // A web page elsewhere reaching 127.0.0.1 through DNS rebinding sends its own host name.
    let (_run, admin) = start(TestIngest::run_mode(), &[]);
    for page in PAGES {
        let response = admin
            .http
            .get(format!("{}{page}", admin.base))
            .header("host", "attacker.example")
            .send()
            .await
            .expect("GET");
        assert_eq!(response.status(), 403, "{page}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_beyond_localhost_without_a_token_is_refused_at_start() {
    let (mut proc, _dir) = TestIngest::run_mode()
        .env("GITHUB_WEBHOOK_SECRET", super::GITHUB_SECRET)
        .env("HOOKBRIDGE_ADMIN_BIND", "0.0.0.0:0")
        .spawn();
    let exit = proc.wait_exit(PATIENCE);
    assert_eq!(exit.code(), Some(2), "{:?}", proc.output());
    let said = proc.output().join("\n");
    assert!(said.contains("HOOKBRIDGE_ADMIN_TOKEN"), "{said}");

    let (mut proc, _dir) = TestIngest::run_mode()
        .env("GITHUB_WEBHOOK_SECRET", super::GITHUB_SECRET)
        .env("HOOKBRIDGE_ADMIN_BIND", "0.0.0.0:0")
        .env("HOOKBRIDGE_ADMIN_TOKEN", "too-short")
        .spawn();
    assert_eq!(proc.wait_exit(PATIENCE).code(), Some(2));
    let said = proc.output().join("\n");
    assert!(said.contains("at least 16"), "{said}");
    assert!(
        !said.contains("too-short"),
        "the token is never shown: {said}"
    );
}

/// A page beyond localhost, with its token.
fn start_with_token() -> (TestIngest, Admin) {
    start(
        TestIngest::run_mode(),
        &[
            ("HOOKBRIDGE_ADMIN_BIND", "0.0.0.0:0".to_owned()),
            ("HOOKBRIDGE_ADMIN_TOKEN", TOKEN.to_owned()),
        ],
    )
}

/// The page's base URL on an address of this machine that is not loopback, when it has one
/// (the listener is on 0.0.0.0): what a caller from elsewhere reaches.
fn beyond_localhost(admin: &Admin) -> Option<String> {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect("192.0.2.1:9").ok()?;
    let ip = socket.local_addr().ok()?.ip();
    if ip.is_loopback() || ip.is_unspecified() {
        return None;
    }
    let port = admin.base.rsplit(':').next()?;
    Some(format!("http://{ip}:{port}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_token_every_page_and_action_is_refused_without_it() {
    let (_run, local) = start_with_token();
    let mut callers = vec![Admin::new(&local.base)];
    if let Some(base) = beyond_localhost(&local) {
        callers.push(Admin::new(&base));
    }
    for admin in &callers {
        for page in PAGES
            .iter()
            .chain(&["/deliveries/some-id", "/dead-letters/some-id"])
        {
            let (status, json) = admin.json(page).await;
            assert_eq!(status, 401, "{} {page}", admin.base);
            assert_eq!(json["error"], "unauthorized");
            // A browser gets the log-in form, with 401.
            let (status, html) = admin.html(page).await;
            assert_eq!(status, 401);
            assert!(html.contains("name=\"token\""), "{html}");
        }
        for action in [
            "/dead-letters/redrive-all",
            "/dead-letters/purge",
            "/dead-letters/x/redrive",
        ] {
            let (status, _) = admin.post(action, &[("confirm", "purge")]).await;
            assert_eq!(status, 401, "{} {action}", admin.base);
        }
        // A wrong token is no token.
        let wrong = Admin::new(&admin.base).with_token("admin-token-0123456789abcdeX");
        assert_eq!(wrong.json("/").await.0, 401);
    }
    // The stylesheet and the log-in form are open.
    assert_eq!(local.html("/login").await.0, 200);
    assert_eq!(local.html("/assets/admin.css").await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_lets_in_by_bearer_or_by_logging_in_and_never_shows() {
    let (_run, local) = start_with_token();
    let bearer = Admin::new(&local.base).with_token(TOKEN);
    for page in PAGES {
        let (status, json) = bearer.json(page).await;
        assert_eq!(status, 200, "{page}: {json}");
        assert!(!json.to_string().contains(TOKEN), "{page} shows the token");
    }

    // A browser logs in with the form: a wrong token shows the form again, the right one sets
    // the session cookie (not the token) and goes where it was going.
    let browser = Admin::new(&local.base);
    let wrong = browser
        .http
        .post(format!("{}/login", browser.base))
        .form(&[("token", "not-the-token-at-all"), ("next", "/dead-letters")])
        .send()
        .await
        .expect("POST /login");
    assert_eq!(wrong.status(), 401);
    let right = browser
        .http
        .post(format!("{}/login", browser.base))
        .form(&[("token", TOKEN), ("next", "/dead-letters")])
        .send()
        .await
        .expect("POST /login");
    assert_eq!(right.status(), 303);
    assert_eq!(right.headers()["location"], "/dead-letters");
    let cookie = right.headers()["set-cookie"]
        .to_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(
        !cookie.contains(TOKEN),
        "the cookie holds the token: {cookie}"
    );
    for page in PAGES {
        let (status, html) = browser.html(page).await;
        assert_eq!(status, 200, "{page}");
        assert!(!html.contains(TOKEN), "{page} shows the token");
    }
    // After logging in elsewhere, a redirect never leaves the site.
    let away = Admin::new(&local.base)
        .http
        .post(format!("{}/login", local.base))
        .form(&[("token", TOKEN), ("next", "//evil.example/")])
        .send()
        .await
        .expect("POST /login");
    assert_eq!(away.headers()["location"], "/");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actions_need_the_pages_csrf_token_and_the_same_origin() {
    let (_run, local) = start_with_token();
    let browser = Admin::new(&local.base);
    let login = browser
        .http
        .post(format!("{}/login", browser.base))
        .form(&[("token", TOKEN)])
        .send()
        .await
        .expect("POST /login");
    assert_eq!(login.status(), 303);
    let csrf = browser.csrf().await;
    assert!(!csrf.is_empty());

    // Logged in (the cookie rides along), but no CSRF token: refused.
    let (status, json) = browser
        .post("/dead-letters/purge", &[("confirm", "purge")])
        .await;
    assert_eq!(status, 403, "{json}");
    assert_eq!(json["error"], "csrf");
    // Another site's form: its Origin gives it away even with a token it could not know.
    let cross = browser
        .http
        .post(format!("{}/dead-letters/purge", browser.base))
        .header("origin", "https://attacker.example")
        .header("accept", "application/json")
        .form(&[("confirm", "purge"), ("csrf", csrf.as_str())])
        .send()
        .await
        .expect("POST");
    assert_eq!(cross.status(), 403);
    // The page's own form: done (nothing to purge).
    let (status, json) = browser
        .post(
            "/dead-letters/purge",
            &[("confirm", "purge"), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(status, 200, "{json}");
    assert_eq!(json["deleted"], 0);
    // Purge needs its confirmation.
    let (status, json) = browser
        .post("/dead-letters/purge", &[("csrf", &csrf)])
        .await;
    assert_eq!(status, 400);
    assert_eq!(json["error"], "not_confirmed");
    // Scripts with the bearer token carry no cookie a page could ride on: no CSRF token needed.
    let script = Admin::new(&local.base).with_token(TOKEN);
    let (status, json): (_, Value) = script
        .post("/dead-letters/purge", &[("confirm", "purge")])
        .await;
    assert_eq!(status, 200, "{json}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_process_serves_the_page_when_asked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let env = [
        ("HOOKBRIDGE_DATA_DIR", dir.path().display().to_string()),
        ("HOOKBRIDGE_ADMIN_BIND", "127.0.0.1:0".to_owned()),
    ];
    let mut worker = hookbridge_tests::process::Proc::spawn("hookbridge-worker", &[], &env);
    let admin = Admin::new(&hookbridge_tests::admin::admin_url(&mut worker, PATIENCE));
    let (status, overview) = admin.json("/").await;
    assert_eq!(status, 200, "{overview}");
    assert_eq!(overview["figures"]["processed"], 0);
    // Off unless set (empty counts as unset): no page, and no line announcing one.
    let mut quiet = hookbridge_tests::process::Proc::spawn(
        "hookbridge-worker",
        &[],
        &[
            ("HOOKBRIDGE_DATA_DIR", dir.path().display().to_string()),
            ("HOOKBRIDGE_ADMIN_BIND", String::new()),
        ],
    );
    quiet.wait_for_line("worker consuming", PATIENCE);
    assert!(
        !quiet
            .output()
            .iter()
            .any(|l| l.contains("the operator's page")),
        "{:?}",
        quiet.output()
    );
}
