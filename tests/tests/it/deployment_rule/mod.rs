//! hookbridge as a GitHub deployment protection rule, end to end with the real binaries:
//! `hookbridge run` takes signed GitHub `deployment_protection_rule` and Jira CR webhooks, and
//! answers deployments through the GitHub App fake's review endpoint — at once when the CR decides,
//! or when the Jira webhook that approves or rejects it arrives. On the embedded store and Redis.
//! Also: the CR named only by GitHub (head commit, linked pull request, ref), installation tokens
//! that expire, a worker killed after GitHub took its answer, PKI enforcement, and GitHub failing.

use std::path::Path;
use std::time::{Duration, Instant};

use hookbridge_tests::github::{Delivery, delivery_id};
use hookbridge_tests::github_app_fake::{Credential, GithubAppConfig, GithubAppFake, Review};
use hookbridge_tests::ingest::{PATIENCE, TestIngest, http};
use hookbridge_tests::jira_fake::{CrSpec, FakeConfig, JiraFake, JiraUser};
use hookbridge_tests::metrics::{sample, scrape};
use hookbridge_tests::services::store_env;
use hookbridge_tests::slack_fake::{SlackConfig, SlackFake, wait_until};
use hookbridge_tests::wait::eventually;
use hookbridge_worker::pki::Algorithm;
use hookbridge_worker::pki::approval::{self, Statement};
use hookbridge_worker::pki::keys;
use secrecy::SecretString;
use serde_json::{Value, json};

mod admin_page;
mod decisions;
mod faults;
mod pki;

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

/// `hookbridge run` as the GitHub App of `app`, with the gates above.
fn start_run(redis: bool, app: &GithubAppFake, slack: &SlackFake, dir: &Path) -> TestIngest {
    start_run_with(&store_env(redis, "hbdep"), &[], app, slack, dir)
}

/// [`start_run`] on the store `store` names (from [`store_env`]), with `extra` variables.
fn start_run_with(
    store: &[(&'static str, String)],
    extra: &[(&str, String)],
    app: &GithubAppFake,
    slack: &SlackFake,
    dir: &Path,
) -> TestIngest {
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
    for (k, v) in store.iter().chain(extra) {
        run = run.env(k, v.clone());
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

/// A CR in `status` with a Change Manager among its approvers, its `issue_created` webhook
/// delivered; its key.
async fn new_cr(jira: &JiraFake, run: &TestIngest, summary: &str, status: &str) -> String {
    let (key, created) = jira.create_change_request(
        CrSpec::new(summary).status(status).field(
            "customfield_10102",
            json!([approver().with_role("Change Manager")]),
        ),
        &approver(),
    );
    assert_eq!(
        created
            .post(&http(), &run.at("/webhooks/jira"), JIRA_SECRET)
            .await,
        202
    );
    key
}

/// Messages of `source` and `event` the worker handled to the end, from `/metrics`.
async fn processed(run: &TestIngest, source: &str, event: &str) -> f64 {
    let page = scrape(&run.at("/metrics")).await;
    sample(
        &page,
        &format!(
            "hookbridge_worker_messages_processed_total{{event=\"{event}\",source=\"{source}\"}}"
        ),
    )
    .unwrap_or(0.0)
}

/// Waits until the worker has handled `n` messages of `source` and `event` to the end: what it
/// did with them is done (no guessed settling time).
async fn wait_processed(run: &TestIngest, source: &str, event: &str, n: usize) {
    eventually(
        &format!("{n} {source} {event} messages processed"),
        PATIENCE,
        || async { processed(run, source, event).await >= n as f64 },
    )
    .await;
}

/// Waits until the worker has handled `n` `deployment_protection_rule` messages to the end.
async fn wait_rule_events_processed(run: &TestIngest, n: usize) {
    wait_processed(run, "github", "deployment_protection_rule", n).await;
}

/// The one review of `run_id`, once it is there; panics when there are more.
async fn only_review_of(app: &GithubAppFake, run_id: u64, run: &TestIngest) -> Review {
    let review = review_of(app, run_id, run).await;
    let all = reviews_of(app, run_id);
    assert_eq!(
        all.len(),
        1,
        "run {run_id} answered more than once: {all:#?}"
    );
    review
}

/// Asserts that `review` is `state` and that its comment names `cr` (`none`: no CR).
fn assert_review(review: &Review, state: &str, cr: &str) {
    let comment = review.comment.clone().unwrap_or_default();
    assert_eq!(review.state, state, "run {} ({comment})", review.run_id);
    assert!(
        comment.contains(&format!("(CR: {cr};")),
        "run {}: the comment should name {cr}: {comment}",
        review.run_id
    );
}
