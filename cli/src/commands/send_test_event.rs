//! `hookbridge send-test-event`: signs and posts a sample delivery the way GitHub or Jira would, so
//! a newcomer can see the pipeline work end to end — a GitHub `issues.opened`, or, with `--cr`, a
//! Jira `jira:issue_updated` moving a Change Request to `--status`.

use hookbridge_shared::signature::WebhookSecrets;
use serde_json::{Value, json};

use crate::Failure;

#[derive(Debug, clap::Args)]
pub struct SendTestEventArgs {
    /// Base URL of the ingest.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// The GitHub webhook secret to sign with (the first one when several are given).
    #[arg(long, env = "GITHUB_WEBHOOK_SECRET", hide_env_values = true)]
    secret: Option<String>,
    /// Repository full name to put in the sample.
    #[arg(long, default_value = "octo-org/hello-world")]
    repo: String,
    /// Issue number to put in the sample.
    #[arg(long, default_value_t = 1)]
    issue: u64,
    /// Send a Jira Change Request update for this key instead (signed with JIRA_WEBHOOK_SECRET).
    #[arg(long)]
    cr: Option<String>,
    /// The status the CR moves to.
    #[arg(long, default_value = "Approved", requires = "cr")]
    status: String,
    /// The status it moves from.
    #[arg(long, default_value = "Pending Approval", requires = "cr")]
    from_status: String,
    /// The Jira webhook secret to sign a CR update with.
    #[arg(long, env = "JIRA_WEBHOOK_SECRET", hide_env_values = true)]
    jira_secret: Option<String>,
}

/// A signed delivery: route, headers, body.
struct Delivery {
    route: &'static str,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

fn secrets(value: Option<&String>, variable: &str) -> Result<WebhookSecrets, Failure> {
    let value = value.ok_or_else(|| Failure::config(format!("{variable} is not set")))?;
    WebhookSecrets::parse(value).map_err(|e| Failure::config(format!("{variable}: {e}")))
}

fn github_issue(args: &SendTestEventArgs) -> Result<Delivery, Failure> {
    let secrets = secrets(args.secret.as_ref(), "GITHUB_WEBHOOK_SECRET")?;
    let html_url = format!("https://github.com/{}/issues/{}", args.repo, args.issue);
    let body = to_vec(&json!({
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
    }))?;
    Ok(Delivery {
        route: "/webhooks/github",
        headers: vec![
            ("X-GitHub-Event", "issues".into()),
            ("X-GitHub-Delivery", uuid::Uuid::new_v4().to_string()),
            ("X-Hub-Signature-256", secrets.sign(&body)),
        ],
        body,
    })
}

/// A `jira:issue_updated` as Jira Cloud sends it for a workflow transition of a CR.
fn cr_update(args: &SendTestEventArgs, key: &str) -> Result<Delivery, Failure> {
    let secrets = secrets(args.jira_secret.as_ref(), "JIRA_WEBHOOK_SECRET")?;
    let now = chrono::Utc::now();
    let user =
        json!({"accountId": "557058:demo-approver", "displayName": "Dana Demo", "active": true});
    let body = to_vec(&json!({
        "timestamp": now.timestamp_millis(),
        "webhookEvent": "jira:issue_updated",
        "issue_event_type_name": "issue_generic",
        "user": user,
        "issue": {
            "id": "10042",
            "self": "https://example.atlassian.net/rest/api/2/issue/10042",
            "key": key,
            "fields": {
                "summary": "Deploy the security agent to prod (hookbridge demo)",
                "status": {"name": args.status, "id": "10102"},
                "issuetype": {"name": "Change Request"},
                "project": {"key": key.split('-').next().unwrap_or("CR")},
                "description": "Tier 4 rollout of the security agent.\nBudget: 50,000 tokens",
                "updated": now.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string(),
                "customfield_10102": [
                    {"accountId": "557058:demo-approver", "displayName": "Dana Demo", "role": "Change Manager"}
                ]
            }
        },
        "changelog": {"id": "1", "items": [{
            "field": "status", "fieldtype": "jira", "fieldId": "status",
            "fromString": args.from_status, "toString": args.status
        }]}
    }))?;
    Ok(Delivery {
        route: "/webhooks/jira",
        headers: vec![
            (
                "X-Atlassian-Webhook-Identifier",
                uuid::Uuid::new_v4().to_string(),
            ),
            ("X-Hub-Signature", secrets.sign(&body)),
        ],
        body,
    })
}

fn to_vec(value: &Value) -> Result<Vec<u8>, Failure> {
    serde_json::to_vec(value).map_err(|e| Failure::config(e.to_string()))
}

pub async fn run(args: SendTestEventArgs) -> Result<(), Failure> {
    let delivery = match &args.cr {
        Some(key) => cr_update(&args, key)?,
        None => github_issue(&args)?,
    };
    let endpoint = format!("{}{}", args.url.trim_end_matches('/'), delivery.route);
    let mut request = reqwest::Client::new()
        .post(&endpoint)
        .header("Content-Type", "application/json")
        .body(delivery.body);
    for (name, value) in delivery.headers {
        request = request.header(name, value);
    }
    let response = request
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
