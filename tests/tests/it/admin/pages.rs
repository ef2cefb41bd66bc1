//! What each page shows and does against a running `hookbridge run` with the Jira fake, on the
//! embedded store and on Redis: the overview's counts are the ones `/metrics` shows; a poison
//! event shows under dead letters with its error, and a redrive (once the cause is fixed)
//! empties the list and creates the Jira issue, audited as the page's; the deliveries list and
//! one delivery's journey; a CR approved by webhook shows as Approved with its approvers.

use hookbridge_tests::admin::Admin;
use hookbridge_tests::audit::records;
use hookbridge_tests::github::{Delivery, GithubIssue};
use hookbridge_tests::ingest::{TestIngest, http};
use hookbridge_tests::jira_fake::{CrSpec, FakeConfig, JiraFake, JiraUser};
use hookbridge_tests::metrics::{sample, scrape};
use hookbridge_tests::services::store_env;
use hookbridge_tests::wait::eventually;
use reqwest::Method;
use serde_json::{Value, json};

use super::{GITHUB_SECRET, JIRA_SECRET, PATIENCE, start};

/// `hookbridge run` on `redis` or the embedded store, with the Jira fake, CRs in project CR.
pub fn start_stack(redis: bool, jira: &JiraFake) -> (TestIngest, Admin) {
    let mut env: Vec<(&str, String)> = store_env(redis, "hbadmin");
    env.extend([
        ("JIRA_BASE_URL", jira.base_url()),
        ("JIRA_EMAIL", jira.email()),
        ("JIRA_API_TOKEN", jira.token()),
        ("JIRA_PROJECT_KEY", "DEMO".to_owned()),
        ("CR_PROJECT_KEYS", "CR".to_owned()),
        ("CR_APPROVER_FIELD", "customfield_10102".to_owned()),
    ]);
    start(TestIngest::run_mode(), &env)
}

/// Posts a signed GitHub `issues.opened` for `number`; its delivery id.
pub async fn open_issue(run: &TestIngest, number: u64, title: &str) -> String {
    let mut issue = GithubIssue::new("octo/admin", number);
    issue.title = title.to_owned();
    let delivery = Delivery::github("issues", &issue.event("opened")).signed(GITHUB_SECRET);
    let response = delivery
        .post(&http(), &run.at("/webhooks/github"))
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), 202);
    delivery.id
}

/// The dead letters the page lists (JSON).
pub async fn dead_letters(admin: &Admin) -> Vec<Value> {
    let (status, page) = admin.json("/dead-letters").await;
    assert_eq!(status, 200, "{page}");
    page["rows"].as_array().cloned().unwrap_or_default()
}

async fn the_overview_shows_what_metrics_shows(redis: bool) {
    let jira = JiraFake::start(FakeConfig::default()).await;
    let (run, admin) = start_stack(redis, &jira);
    for n in 1..=3 {
        open_issue(&run, n, &format!("overview {n}")).await;
    }
    eventually("three Jira issues", PATIENCE, || async {
        jira.count_issues() == 3
    })
    .await;
    // Processed is counted when the message is settled: wait for the page to say 3.
    eventually("the overview to count 3 processed", PATIENCE, || async {
        admin.json("/").await.1["figures"]["processed"] == 3
    })
    .await;
    let (_, overview) = admin.json("/").await;
    let metrics = scrape(&run.at("/metrics")).await;
    let total = |family: &str| -> f64 {
        metrics
            .lines()
            .filter(|l| l.starts_with(family) && !l.starts_with('#'))
            .filter_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse::<f64>().ok()))
            .sum()
    };
    let figures = &overview["figures"];
    assert_eq!(
        figures["received"].as_f64(),
        Some(total("hookbridge_worker_messages_received_total{"))
    );
    assert_eq!(
        figures["processed"].as_f64(),
        Some(total("hookbridge_worker_messages_processed_total{"))
    );
    assert_eq!(
        figures["dead_lettered"].as_f64(),
        Some(total("hookbridge_worker_messages_dead_lettered_total{"))
    );
    assert_eq!(
        figures["dead_letters"].as_f64(),
        sample(
            &metrics,
            "hookbridge_queue_messages{state=\"dead_letters\"}"
        )
    );
    let health: Vec<(String, String)> = overview["health"]
        .as_array()
        .expect("health")
        .iter()
        .map(|d| {
            (
                d["name"].as_str().unwrap_or("").to_owned(),
                d["state"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert!(
        health.contains(&("queue".into(), "up".into())),
        "{health:?}"
    );
    assert!(
        health.contains(&("store".into(), "up".into())),
        "{health:?}"
    );
    assert!(health.contains(&("jira".into(), "up".into())), "{health:?}");
    assert!(
        health.contains(&("slack".into(), "off".into())),
        "{health:?}"
    );
    // The HTML shows the same figures.
    let (_, html) = admin.html("/").await;
    assert!(html.contains("<dd id=\"processed\">3</dd>"), "{html}");
    assert!(html.contains("<svg class=\"chart\""), "charts: {html}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_overview_shows_what_metrics_shows_embedded() {
    the_overview_shows_what_metrics_shows(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_overview_shows_what_metrics_shows_redis() {
    the_overview_shows_what_metrics_shows(true).await;
}

async fn a_poison_event_is_shown_with_its_error_and_redriven_once_fixed(redis: bool) {
    let jira = JiraFake::start(FakeConfig::default()).await;
    // Jira refuses the create with 400: a permanent error, dead-lettered at once.
    jira.fail_next(Method::POST, "/rest/api/3/issue", 400, None, 1);
    let (run, admin) = start_stack(redis, &jira);
    let delivery = open_issue(&run, 7, "poison").await;
    eventually("the dead letter on the page", PATIENCE, || async {
        dead_letters(&admin).await.len() == 1
    })
    .await;
    let listed = dead_letters(&admin).await.remove(0);
    assert_eq!(listed["delivery"], delivery.as_str());
    assert_eq!(listed["event"], "issues");
    let error = listed["last_error"].as_str().unwrap_or_default();
    assert!(error.contains("400"), "the error says why: {listed}");
    let id = listed["id"].as_str().expect("id").to_owned();

    // The one dead letter: its envelope (never a signature) and its failed attempts.
    let (status, shown) = admin.json(&format!("/dead-letters/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(shown["envelope"]["delivery"], delivery.as_str());
    assert!(!shown.to_string().contains("sha256="), "{shown}");
    assert!(!shown["errors"].as_array().expect("errors").is_empty());
    // The delivery's journey shows where it ended.
    let (_, journey) = admin.json(&format!("/deliveries/{delivery}")).await;
    let actions: Vec<&str> = journey["journey"]
        .as_array()
        .expect("journey")
        .iter()
        .filter_map(|s| s["action"].as_str())
        .collect();
    assert!(actions.contains(&"event.accepted"), "{actions:?}");
    assert!(actions.contains(&"delivery.dead_lettered"), "{actions:?}");

    // Fixed (the scripted failure is spent): redrive with the page's own form.
    assert_eq!(jira.count_issues(), 0);
    let csrf = admin.csrf().await;
    let (status, done) = admin
        .post(&format!("/dead-letters/{id}/redrive"), &[("csrf", &csrf)])
        .await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["delivery"], delivery.as_str());
    eventually("the Jira issue", PATIENCE, || async {
        jira.count_issues() == 1
    })
    .await;
    eventually("an empty dead-letter list", PATIENCE, || async {
        dead_letters(&admin).await.is_empty()
    })
    .await;
    let (status, gone) = admin
        .post(&format!("/dead-letters/{id}/redrive"), &[("csrf", &csrf)])
        .await;
    assert_eq!(status, 404, "{gone}");

    // Audited as the page's, like `hookbridge dlq redrive` is as the CLI's.
    let trail = records(&run.dir.path().join("audit"));
    let redrive = trail
        .iter()
        .find(|r| r["action"] == "dlq.redrive")
        .unwrap_or_else(|| panic!("no dlq.redrive record: {trail:#?}"));
    assert_eq!(redrive["actor"], "admin");
    assert_eq!(redrive["ids"]["delivery"], delivery.as_str());

    // The deliveries list, filtered in the store: one dead-lettered, then one done.
    eventually("the done delivery in the log", PATIENCE, || async {
        admin.json("/deliveries?outcome=done").await.1["total"] == 1
    })
    .await;
    let (_, dead) = admin.json("/deliveries?outcome=dead_lettered").await;
    assert_eq!(dead["total"], 1);
    assert_eq!(dead["rows"][0]["delivery"], delivery.as_str());
    let (_, done) = admin.json("/deliveries?outcome=done").await;
    let key = done["rows"][0]["jira_key"]
        .as_str()
        .expect("a Jira key")
        .to_owned();
    assert!(jira.issue(&key).is_some(), "{done}");
    let (_, html) = admin.html("/deliveries").await;
    assert!(
        html.contains(&format!("/browse/{key}")),
        "the Jira key links to Jira: {html}"
    );
    let (status, bad) = admin.json("/deliveries?outcome=nonsense").await;
    assert_eq!(status, 400, "{bad}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_event_is_shown_with_its_error_and_redriven_once_fixed_embedded() {
    a_poison_event_is_shown_with_its_error_and_redriven_once_fixed(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_event_is_shown_with_its_error_and_redriven_once_fixed_redis() {
    a_poison_event_is_shown_with_its_error_and_redriven_once_fixed(true).await;
}

/// Posts a CR created pending and then approved by a Change Manager; its key.
pub async fn approve_a_cr(run: &TestIngest, jira: &JiraFake) -> String {
    let approver = JiraUser::new("acc-1", "Grace Governance");
    let (key, created) = jira.create_change_request(
        CrSpec::new("Ship the agent")
            .status("Pending Approval")
            .field(
                "customfield_10102",
                json!([approver.with_role("Change Manager")]),
            ),
        &approver,
    );
    let approved = jira.move_change_request(&key, "Approved", &approver);
    let client = http();
    let url = run.at("/webhooks/jira");
    assert_eq!(created.post(&client, &url, JIRA_SECRET).await, 202);
    assert_eq!(approved.post(&client, &url, JIRA_SECRET).await, 202);
    key
}

async fn a_cr_approved_by_webhook_shows_as_approved_with_its_approvers(redis: bool) {
    let jira = JiraFake::start(FakeConfig::default()).await;
    let (run, admin) = start_stack(redis, &jira);
    let key = approve_a_cr(&run, &jira).await;
    let path = format!("/change-requests/{key}");
    eventually("the CR approved on the page", PATIENCE, || async {
        admin.json(&path).await.1["record"]["status"] == "Approved"
    })
    .await;
    let (_, cr) = admin.json(&path).await;
    assert_eq!(cr["state"], "approved");
    assert_eq!(cr["record"]["approvers"][0]["name"], "Grace Governance");
    assert_eq!(cr["record"]["approvers"][0]["role"], "Change Manager");
    assert_eq!(cr["signature"], "none");
    let history: Vec<&str> = cr["history"]
        .as_array()
        .expect("history")
        .iter()
        .filter_map(|h| h["to"].as_str())
        .collect();
    assert!(history.contains(&"Approved"), "{history:?}");
    let (_, list) = admin.json("/change-requests").await;
    assert_eq!(list["rows"][0]["key"], key.as_str());
    assert_eq!(list["rows"][0]["state"], "approved");
    let (_, html) = admin.html(&path).await;
    assert!(
        html.contains("Grace Governance") && html.contains("Change Manager"),
        "{html}"
    );
    let (status, missing) = admin.json("/change-requests/CR-999999").await;
    assert_eq!(status, 404, "{missing}");
    let (status, _) = admin.json("/change-requests/not%20a%20key").await;
    assert_eq!(status, 400);
    // The audit trail checks out, and the page says so.
    let (_, audit) = admin.json("/audit").await;
    assert_eq!(audit["ok"], true, "{audit}");
    assert!(audit["records"].as_u64().unwrap_or(0) > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cr_approved_by_webhook_shows_as_approved_with_its_approvers_embedded() {
    a_cr_approved_by_webhook_shows_as_approved_with_its_approvers(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cr_approved_by_webhook_shows_as_approved_with_its_approvers_redis() {
    a_cr_approved_by_webhook_shows_as_approved_with_its_approvers(true).await;
}
