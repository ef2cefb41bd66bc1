//! The operator's page in a real browser (headless chromium through chromedriver, see
//! `hookbridge_tests::browser`), against `hookbridge run` with the Jira fake: from the page
//! alone, the on-call engineer sees why an event failed and replays it; the overview shows the
//! counts `/metrics` shows; a CR approved by webhook shows as Approved with its approvers; the
//! pages work by keyboard; with a token, nothing shows before logging in. Each page is kept as a
//! screenshot (`target/browser-artifacts/`; `docs/images/` with `HOOKBRIDGE_UPDATE_SCREENSHOTS=1`).

use hookbridge_tests::browser::Browser;
use hookbridge_tests::ingest::TestIngest;
use hookbridge_tests::jira_fake::{FakeConfig, JiraFake};
use hookbridge_tests::metrics::scrape;
use hookbridge_tests::wait::eventually;
use reqwest::Method;

use super::pages::{approve_a_cr, dead_letters, open_issue, start_stack};
use super::{PAGES, PATIENCE, TOKEN, start};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn from_the_page_alone_a_failed_event_is_understood_and_replayed() {
    let jira = JiraFake::start(FakeConfig::default()).await;
    jira.fail_next(Method::POST, "/rest/api/3/issue", 400, None, 1);
    let (run, admin) = start_stack(false, &jira);
    open_issue(&run, 41, "Checkout fails on Safari").await;
    open_issue(&run, 42, "Refunds are slow").await;
    eventually("one dead letter and one Jira issue", PATIENCE, || async {
        dead_letters(&admin).await.len() == 1 && jira.count_issues() == 1
    })
    .await;
    let browser = Browser::start().await;

    // The overview says there is a dead letter; its link leads to the list.
    browser.goto(&format!("{}/", admin.base)).await;
    assert_eq!(browser.text("#dead-letters").await, "1");
    assert_eq!(browser.text("#dead-lettered").await, "1");
    browser.screenshot("overview").await;
    browser.click("#dead-letters a").await;
    browser.wait_for_path("/dead-letters").await;
    let row = browser.text("#dead-letters tbody tr").await;
    assert!(
        row.contains("issues.opened") && row.contains("400"),
        "{row}"
    );
    browser.screenshot("dead-letters").await;

    // One dead letter: why it failed, and its envelope.
    browser.click("#dead-letters tbody tr td a").await;
    browser.wait_for("#last-error").await;
    let error = browser.text("#last-error").await;
    assert!(error.contains("Jira answered 400"), "{error}");
    assert!(
        browser
            .text("#envelope")
            .await
            .contains("Checkout fails on Safari")
    );
    browser.screenshot("dead-letter").await;

    // Its delivery's journey, one click away.
    browser.click("dd a[href^='/deliveries/']").await;
    browser.wait_for("#journey").await;
    let journey = browser.text("#journey").await;
    assert!(
        journey.contains("event.accepted") && journey.contains("delivery.dead_lettered"),
        "{journey}"
    );
    browser.screenshot("delivery").await;
    browser.client().back().await.expect("back");

    // The cause is gone (the scripted failure is spent): redrive from the page.
    browser.wait_for("#last-error").await;
    browser.submit("form[action$='/redrive']").await;
    browser.wait_for_path("/dead-letters").await;
    assert!(
        browser
            .text("#notice")
            .await
            .contains("back on the main queue")
    );
    eventually("the Jira issue of the replayed event", PATIENCE, || async {
        jira.count_issues() == 2
    })
    .await;
    eventually("the page to show no dead letter", PATIENCE, || async {
        browser.goto(&format!("{}/dead-letters", admin.base)).await;
        !browser.find_all("#no-dead-letters").await.is_empty()
    })
    .await;

    // The deliveries list: both done now, each with its Jira issue, filtered by outcome.
    browser.goto(&format!("{}/deliveries", admin.base)).await;
    let rows = browser.text("#deliveries tbody").await;
    assert!(rows.contains("DEMO-"), "{rows}");
    browser.screenshot("deliveries").await;
    browser
        .goto(&format!("{}/deliveries?outcome=dead_lettered", admin.base))
        .await;
    assert_eq!(browser.find_all("#deliveries tbody tr").await.len(), 1);
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_overview_shows_the_counts_metrics_shows_and_works_by_keyboard() {
    let jira = JiraFake::start(FakeConfig::default()).await;
    let (run, admin) = start_stack(false, &jira);
    for n in 1..=2 {
        open_issue(&run, n, "counted").await;
    }
    eventually("two processed", PATIENCE, || async {
        admin.json("/").await.1["figures"]["processed"] == 2
    })
    .await;
    let browser = Browser::start().await;
    browser.goto(&format!("{}/", admin.base)).await;
    let metrics = scrape(&run.at("/metrics")).await;
    let total = |family: &str| -> u64 {
        metrics
            .lines()
            .filter(|l| l.starts_with(family))
            .filter_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse::<f64>().ok()))
            .sum::<f64>() as u64
    };
    for (id, family) in [
        ("#received", "hookbridge_worker_messages_received_total{"),
        ("#processed", "hookbridge_worker_messages_processed_total{"),
        (
            "#dead-lettered",
            "hookbridge_worker_messages_dead_lettered_total{",
        ),
    ] {
        assert_eq!(browser.text(id).await, total(family).to_string(), "{id}");
    }
    assert!(browser.text("#health-jira").await.contains("up"));

    // By keyboard: the first Tab reaches the skip link, the next ones the navigation; Enter
    // follows a link.
    let first = browser.press_tab(1).await;
    assert_eq!(first.text, "Skip to content", "{first:?}");
    let mut focused = first;
    for _ in 0..6 {
        focused = browser.press_tab(1).await;
        if focused.text == "Change Requests" {
            break;
        }
    }
    assert_eq!(focused.text, "Change Requests", "{focused:?}");
    browser.press_enter().await;
    browser.wait_for_path("/change-requests").await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cr_approved_by_webhook_shows_as_approved_with_its_approvers() {
    let jira = JiraFake::start(FakeConfig::default()).await;
    let (run, admin) = start_stack(false, &jira);
    let key = approve_a_cr(&run, &jira).await;
    eventually("the CR approved", PATIENCE, || async {
        admin.json(&format!("/change-requests/{key}")).await.1["record"]["status"] == "Approved"
    })
    .await;
    let browser = Browser::start().await;
    browser
        .goto(&format!("{}/change-requests", admin.base))
        .await;
    let row = browser.text("#change-requests tbody tr").await;
    assert!(row.contains(&key) && row.contains("Approved"), "{row}");
    browser.screenshot("change-requests").await;
    browser.click_link(&key).await;
    browser.wait_for("#cr-status").await;
    assert!(browser.text("#cr-status").await.contains("Approved"));
    let approvers = browser.text("#approvers").await;
    assert!(
        approvers.contains("Grace Governance") && approvers.contains("Change Manager"),
        "{approvers}"
    );
    assert!(browser.text("#history").await.contains("Approved"));
    browser.screenshot("change-request").await;
    browser.goto(&format!("{}/audit", admin.base)).await;
    assert!(browser.text("#audit-result").await.contains("Intact"));
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_token_no_page_shows_before_logging_in() {
    let (_run, admin) = start(
        TestIngest::run_mode(),
        &[
            ("HOOKBRIDGE_ADMIN_BIND", "0.0.0.0:0".to_owned()),
            ("HOOKBRIDGE_ADMIN_TOKEN", TOKEN.to_owned()),
        ],
    );
    let browser = Browser::start().await;
    for page in PAGES {
        browser.goto(&format!("{}{page}", admin.base)).await;
        browser.wait_for("#token").await;
        assert!(browser.find_all("nav a").await.len() >= 5);
        assert!(
            browser.find_all("main table, #received").await.is_empty(),
            "{page} shows data"
        );
    }
    browser.goto(&format!("{}/dead-letters", admin.base)).await;
    browser.screenshot("login").await;
    browser.fill("#token", "not-the-admin-token").await;
    browser.submit("form[action='/login']").await;
    browser.wait_for("#login-failed").await;
    browser.fill("#token", TOKEN).await;
    browser.submit("form[action='/login']").await;
    browser.wait_for_path("/dead-letters").await;
    browser.wait_for("#no-dead-letters").await;
    // Logged out again: back to the form.
    browser.submit("form.logout").await;
    browser.wait_for_path("/login").await;
    browser.goto(&format!("{}/", admin.base)).await;
    browser.wait_for("#token").await;
    browser.close().await;
}
