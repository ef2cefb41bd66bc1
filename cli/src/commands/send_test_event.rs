//! `hookbridge send-test-event`: signs and posts a sample GitHub `issues.opened` delivery, the way
//! GitHub would, so a newcomer can see the pipeline work end to end.

use hookbridge_shared::signature::WebhookSecrets;

use crate::Failure;

#[derive(Debug, clap::Args)]
pub struct SendTestEventArgs {
    /// Base URL of the ingest.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// The GitHub webhook secret to sign with (the first one when several are given).
    #[arg(long, env = "GITHUB_WEBHOOK_SECRET", hide_env_values = true)]
    secret: String,
    /// Repository full name to put in the sample.
    #[arg(long, default_value = "octo-org/hello-world")]
    repo: String,
    /// Issue number to put in the sample.
    #[arg(long, default_value_t = 1)]
    issue: u64,
}

pub async fn run(args: SendTestEventArgs) -> Result<(), Failure> {
    let secrets = WebhookSecrets::parse(&args.secret)
        .map_err(|e| Failure::config(format!("GITHUB_WEBHOOK_SECRET: {e}")))?;
    let delivery = uuid::Uuid::new_v4().to_string();
    let html_url = format!("https://github.com/{}/issues/{}", args.repo, args.issue);
    let body = serde_json::to_vec(&serde_json::json!({
        "action": "opened",
        "issue": {
            "number": args.issue,
            "title": "Test issue from hookbridge send-test-event",
            "body": "This is a **test** issue.\n\n- sent by `hookbridge send-test-event`",
            "html_url": html_url,
            "state": "open",
            "labels": [{"name": "bug"}],
            "user": {"login": "octocat"}
        },
        "repository": {"full_name": args.repo, "html_url": format!("https://github.com/{}", args.repo)},
        "sender": {"login": "octocat"}
    }))
    .map_err(|e| Failure::config(e.to_string()))?;
    let endpoint = format!("{}/webhooks/github", args.url.trim_end_matches('/'));
    let response = reqwest::Client::new()
        .post(&endpoint)
        .header("Content-Type", "application/json")
        .header("X-GitHub-Event", "issues")
        .header("X-GitHub-Delivery", &delivery)
        .header("X-Hub-Signature-256", secrets.sign(&body))
        .body(body)
        .send()
        .await
        .map_err(|e| Failure::check(format!("cannot reach {endpoint}: {e}")))?;
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    println!("{} {}", status.as_u16(), text);
    if status.is_success() {
        Ok(())
    } else {
        Err(Failure::check(format!("ingest answered {status}")))
    }
}
