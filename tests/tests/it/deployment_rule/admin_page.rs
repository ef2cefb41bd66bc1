//! The operator's page shows why a deployment waits: on its CR's page, the deployment (repository,
//! environment, tier, role) and the CR's status, until the approval lets it go.

use hookbridge_tests::admin::{Admin, admin_url};
use hookbridge_tests::github::delivery_id;
use hookbridge_tests::github_app_fake::{GithubAppConfig, GithubAppFake};
use hookbridge_tests::ingest::{PATIENCE, http};
use hookbridge_tests::jira_fake::{FakeConfig, JiraFake};
use hookbridge_tests::slack_fake::{SlackConfig, SlackFake};
use hookbridge_tests::wait::eventually;
use serde_json::json;

use super::{
    JIRA_SECRET, REPO, approver, assert_review, new_cr, post_rule, review_of, rule_event,
    start_run, wait_rule_events_processed,
};

async fn a_waiting_deployment_shows_on_its_crs_page_with_why(redis: bool) {
    let jira = JiraFake::start(FakeConfig::default()).await;
    let app = GithubAppFake::start(GithubAppConfig::default()).await;
    let slack = SlackFake::start(SlackConfig::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut run = start_run(redis, &app, &slack, dir.path());
    let admin = Admin::new(&admin_url(&mut run.proc, PATIENCE));
    let cr = new_cr(&jira, &run, "Rotate the ledger keys", "Pending Approval").await;
    app.await_deployment(REPO, 31, "production");
    let event = rule_event(&app, 31, "production", &json!({"jira_cr_id": cr}));
    assert_eq!(post_rule(&run, &event, &delivery_id()).await, 202);
    wait_rule_events_processed(&run, 1).await;

    let path = format!("/change-requests/{cr}");
    let (status, page) = admin.json(&path).await;
    assert_eq!(status, 200, "{page}");
    let waiting = page["waiting"].as_array().expect("waiting");
    assert_eq!(waiting.len(), 1, "{page}");
    assert_eq!(waiting[0]["repository"], REPO);
    assert_eq!(waiting[0]["environment"], "production");
    assert_eq!(waiting[0]["tier"], 4);
    assert_eq!(waiting[0]["role"], "Change Manager");
    let why = page["why_waiting"].as_str().unwrap_or_default();
    assert!(
        why.contains("Pending Approval") && why.contains("not approved"),
        "{why}"
    );
    let (_, list) = admin.json("/change-requests").await;
    assert_eq!(list["rows"][0]["waiting"], 1, "{list}");
    let (_, html) = admin.html(&path).await;
    assert!(
        html.contains("production") && html.contains("not approved"),
        "{html}"
    );

    // Approved in Jira: the deployment goes, and the page no longer lists it.
    let approval = jira.move_change_request(&cr, "Approved", &approver());
    assert_eq!(
        approval
            .post(&http(), &run.at("/webhooks/jira"), JIRA_SECRET)
            .await,
        202
    );
    assert_review(&review_of(&app, 31, &run).await, "approved", &cr);
    eventually("the page to show nothing waiting", PATIENCE, || async {
        admin.json(&path).await.1["waiting"]
            .as_array()
            .is_some_and(Vec::is_empty)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_deployment_shows_on_its_crs_page_with_why_on_the_embedded_store() {
    a_waiting_deployment_shows_on_its_crs_page_with_why(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_deployment_shows_on_its_crs_page_with_why_on_redis() {
    a_waiting_deployment_shows_on_its_crs_page_with_why(true).await;
}
