//! hookbridge as a GitHub deployment protection rule, end to end with the real binaries:
//! `hookbridge run` takes signed GitHub `deployment_protection_rule` and Jira CR webhooks, and
//! answers deployments through the GitHub App fake's review endpoint — at once when the CR decides,
//! or when the Jira webhook that approves or rejects it arrives. On the embedded store and Redis.

use std::path::Path;
use std::time::{Duration, Instant};

use hookbridge_tests::github::{Delivery, delivery_id};
use hookbridge_tests::github_app_fake::{GithubAppConfig, GithubAppFake, Review};
use hookbridge_tests::ingest::{PATIENCE, TestIngest, http};
use hookbridge_tests::jira_fake::{CrSpec, FakeConfig, JiraFake, JiraUser};
use hookbridge_tests::slack_fake::{SlackConfig, SlackFake, wait_until};
use serde_json::{Value, json};

const JIRA_SECRET: &str = "jira-deploy-s3cret-77";
const GITHUB_SECRET: &str = "github-deploy-s3cret-91";
const REPO: &str = "acme/payments-api";

const GATES: &str = r#"
[[deployment_gates]]
repositories = ["acme/payments-*"]
environments = ["production"]
tier = 4

[[deployment_gates]]
repositories = ["acme/payments-*"]
environments = ["sandbox"]
tier = 2
stage = "staging"
"#;

fn approver() -> JiraUser {
    JiraUser::new("acc-9", "Rita Release")
}

fn store_env(redis: bool) -> Vec<(&'static str, String)> {
    if !redis {
        return Vec::new();
    }
    let url = std::env::var("HOOKBRIDGE_TEST_REDIS_URL")
        .expect("HOOKBRIDGE_TEST_REDIS_URL: run under scripts/with-test-services.sh (make test)");
    vec![
        ("REDIS_URL", url),
        (
            "HOOKBRIDGE_REDIS_PREFIX",
            format!("hbdep:{}:", uuid::Uuid::new_v4().simple()),
        ),
    ]
}

/// `hookbridge run` as the GitHub App of `app`, with the gates above.
fn start_run(redis: bool, app: &GithubAppFake, slack: &SlackFake, dir: &Path) -> TestIngest {
    let key_file = dir.join("app.pem");
    std::fs::write(&key_file, app.private_key_pem()).expect("write the App key");
    let config = dir.join("hookbridge.toml");
    std::fs::write(&config, GATES).expect("write the config");
    let mut run = TestIngest::run_mode()
        .env("JIRA_WEBHOOK_SECRET", JIRA_SECRET)
        .env("GITHUB_WEBHOOK_SECRET", GITHUB_SECRET)
        .env("GITHUB_APP_ID", app.app_id().to_string())
        .env(
            "GITHUB_APP_PRIVATE_KEY_FILE",
            key_file.display().to_string(),
        )
        .env("GITHUB_API_URL", app.url())
        .env("HOOKBRIDGE_CONFIG", config.display().to_string())
        .env("SLACK_WEBHOOK_URL", slack.url());
    for (k, v) in store_env(redis) {
        run = run.env(k, v);
    }
    run.start()
}

/// The `deployment_protection_rule` GitHub sends when run `run_id` deploys to `environment`.
fn rule_event(app: &GithubAppFake, run_id: u64, environment: &str, payload: &Value) -> Value {
    json!({
        "action": "requested",
        "environment": environment,
        "event": "push",
        "sha": format!("{run_id:040x}"),
        "ref": "refs/heads/main",
        "deployment_callback_url": app.callback_url(REPO, run_id),
        "deployment": {"id": run_id * 10, "payload": payload, "environment": environment},
        "pull_requests": [],
        "repository": {"full_name": REPO},
        "installation": {"id": 77},
        "sender": {"login": "octocat"}
    })
}

/// Posts `event` as a signed GitHub delivery with id `delivery`; the HTTP status.
async fn post_rule(run: &TestIngest, event: &Value, delivery: &str) -> u16 {
    Delivery::github("deployment_protection_rule", event)
        .header("X-GitHub-Delivery", delivery)
        .signed(GITHUB_SECRET)
        .post(&http(), &run.at("/webhooks/github"))
        .send()
        .await
        .expect("post")
        .status()
        .as_u16()
}

fn reviews_of(app: &GithubAppFake, run_id: u64) -> Vec<Review> {
    app.reviews()
        .into_iter()
        .filter(|r| r.run_id == run_id)
        .collect()
}

async fn review_of(app: &GithubAppFake, run_id: u64, run: &TestIngest) -> Review {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(review) = reviews_of(app, run_id).pop() {
            return review;
        }
        assert!(
            Instant::now() < deadline,
            "run {run_id} was never answered:\n{}",
            run.printed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Deployment decisions alerted to Slack so far (a burst may share one message: its blocks).
fn deployment_alerts(slack: &SlackFake) -> usize {
    slack
        .messages()
        .iter()
        .flat_map(|m| m["blocks"].as_array().cloned().unwrap_or_default())
        .filter(|b| {
            let text = b["text"]["text"].as_str().unwrap_or_default();
            text.contains("deployment approved") || text.contains("deployment rejected")
        })
        .count()
}

async fn deployments_wait_for_their_cr_and_go_when_jira_approves_it(redis: bool) {
    let jira = JiraFake::start(FakeConfig::default()).await;
    let app = GithubAppFake::start(GithubAppConfig::default()).await;
    let slack = SlackFake::start(SlackConfig::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut run = start_run(redis, &app, &slack, dir.path());
    let client = http();
    let jira_url = run.at("/webhooks/jira");
    let approvers = json!([approver().with_role("Change Manager")]);

    // A CR pending approval, and one approved already.
    let (pending, created) = jira.create_change_request(
        CrSpec::new("Raise the payment limits")
            .status("Pending Approval")
            .field("customfield_10102", approvers.clone()),
        &approver(),
    );
    assert_eq!(created.post(&client, &jira_url, JIRA_SECRET).await, 202);
    let (approved, created) = jira.create_change_request(
        CrSpec::new("Rotate the card keys")
            .status("Approved")
            .field("customfield_10102", approvers.clone()),
        &approver(),
    );
    assert_eq!(created.post(&client, &jira_url, JIRA_SECRET).await, 202);
    let (rejected, created) = jira.create_change_request(
        CrSpec::new("Drop the fraud checks")
            .status("Rejected")
            .field("customfield_10102", approvers),
        &approver(),
    );
    assert_eq!(created.post(&client, &jira_url, JIRA_SECRET).await, 202);

    // Run 1 names the pending CR; 2 the approved one; 3 the rejected one; 4 none; 5 deploys to
    // an environment no table lists; 6 to a tier-2 environment.
    let cases = [
        (1, "production", json!({"jira_cr_id": pending})),
        (2, "production", json!({"jira_cr_id": approved})),
        (
            3,
            "Production",
            json!(format!("{{\"jira_cr_id\":\"{rejected}\"}}")),
        ),
        (4, "production", json!({})),
        (5, "preview", json!({})),
        (6, "sandbox", json!({})),
    ];
    let mut deliveries = Vec::new();
    for (run_id, environment, payload) in &cases {
        app.await_deployment(REPO, *run_id, environment);
        let event = rule_event(&app, *run_id, environment, payload);
        let delivery = delivery_id();
        assert_eq!(post_rule(&run, &event, &delivery).await, 202);
        deliveries.push((event, delivery));
    }
    // Unsigned or wrongly signed: refused before anything is decided.
    let unsigned = Delivery::github("deployment_protection_rule", &deliveries[0].0)
        .post(&client, &run.at("/webhooks/github"))
        .send()
        .await
        .expect("post");
    assert_eq!(unsigned.status().as_u16(), 401);
    let wrong = Delivery::github("deployment_protection_rule", &deliveries[0].0)
        .signed("not-the-secret")
        .post(&client, &run.at("/webhooks/github"))
        .send()
        .await
        .expect("post");
    assert_eq!(wrong.status().as_u16(), 401);

    let approved_review = review_of(&app, 2, &run).await;
    assert_eq!(approved_review.state, "approved");
    let comment = approved_review.comment.clone().unwrap_or_default();
    assert!(
        comment.contains(&approved) && comment.contains("audit record: deploy-"),
        "{comment}"
    );
    let rejected_review = review_of(&app, 3, &run).await;
    assert_eq!(rejected_review.state, "rejected");
    let comment = rejected_review.comment.unwrap_or_default();
    assert!(
        comment.contains(&rejected) && comment.contains("rejected"),
        "{comment}"
    );
    let none = review_of(&app, 4, &run).await;
    assert_eq!(none.state, "rejected");
    assert!(
        none.comment.unwrap_or_default().contains("jira_cr_id"),
        "the comment says how to name a CR"
    );
    assert_eq!(review_of(&app, 5, &run).await.state, "approved");
    assert_eq!(review_of(&app, 6, &run).await.state, "approved");

    // Run 1 waits: nothing is answered while the CR is pending.
    wait_until("run 1 recorded as waiting", PATIENCE, || {
        run.printed().contains("deployment waits for its CR")
    })
    .await;
    assert!(reviews_of(&app, 1).is_empty());

    // Jira approves the CR: the deployment goes within a second of the webhook's 202.
    let approval = jira.move_change_request(&pending, "Approved", &approver());
    assert_eq!(approval.post(&client, &jira_url, JIRA_SECRET).await, 202);
    let acked = Instant::now();
    let review = review_of(&app, 1, &run).await;
    let took = acked.elapsed();
    assert_eq!(review.state, "approved");
    assert!(
        took <= Duration::from_secs(1),
        "answered {took:?} after the approval"
    );

    // Redelivered, both kinds: GitHub is not asked again.
    for (event, delivery) in &deliveries {
        assert_eq!(post_rule(&run, event, delivery).await, 202);
    }
    assert_eq!(approval.post(&client, &jira_url, JIRA_SECRET).await, 202);
    // A new delivery of run 1's event (GitHub's redelivery keeps the id, a re-run does not).
    assert_eq!(post_rule(&run, &deliveries[0].0, &delivery_id()).await, 202);
    wait_until("the Slack alerts", PATIENCE, || {
        deployment_alerts(&slack) >= 6
    })
    .await;
    let settle = Instant::now() + Duration::from_secs(2);
    while Instant::now() < settle {
        for run_id in 1..=6 {
            assert_eq!(
                reviews_of(&app, run_id).len(),
                1,
                "run {run_id}: {:#?}",
                app.reviews()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(deployment_alerts(&slack), 6, "{:#?}", slack.messages());
    run.proc.terminate();
    assert!(run.proc.wait_exit(PATIENCE).success());
}

#[tokio::test]
async fn deployments_wait_for_their_cr_and_go_when_jira_approves_it_on_the_embedded_store() {
    deployments_wait_for_their_cr_and_go_when_jira_approves_it(false).await;
}

#[tokio::test]
async fn deployments_wait_for_their_cr_and_go_when_jira_approves_it_on_redis() {
    deployments_wait_for_their_cr_and_go_when_jira_approves_it(true).await;
}
