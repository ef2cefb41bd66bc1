//! GitHub's `deployment_protection_rule` webhook, sent to a GitHub App that an environment names
//! as a custom deployment protection rule when a job wants to deploy there (GitHub Docs, "Webhook
//! events and payloads": `deployment_protection_rule`, action `requested`; fields `environment`,
//! `event`, `sha`, `ref`, `deployment_callback_url`, `deployment`, `pull_requests`, `repository`,
//! `installation`). The App answers through `deployment_callback_url` ("Review custom deployment
//! protection rules for a workflow run": `POST /repos/{owner}/{repo}/actions/runs/{run_id}/
//! deployment_protection_rule`).

use serde::Deserialize;
use serde_json::Value;

use super::github::Repository;

/// A `deployment_protection_rule` delivery.
#[derive(Debug, Clone, Deserialize)]
pub struct DeploymentRuleEvent {
    pub action: String,
    /// The GitHub environment the job deploys to.
    pub environment: String,
    /// What triggered the deployment (`push`, `workflow_dispatch`, …).
    #[serde(default)]
    pub event: Option<String>,
    #[serde(default)]
    pub sha: Option<String>,
    #[serde(default, rename = "ref")]
    pub git_ref: Option<String>,
    pub deployment_callback_url: String,
    #[serde(default)]
    pub deployment: Option<Deployment>,
    #[serde(default)]
    pub pull_requests: Vec<PullRequest>,
    pub repository: Repository,
    #[serde(default)]
    pub installation: Option<Installation>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Deployment {
    #[serde(default)]
    pub id: Option<u64>,
    #[serde(default)]
    pub sha: Option<String>,
    #[serde(default, rename = "ref")]
    pub git_ref: Option<String>,
    /// What the workflow passed as the deployment's payload: an object, or JSON text of one.
    #[serde(default)]
    pub payload: Value,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PullRequest {
    pub number: u64,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub head: Option<Head>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Head {
    #[serde(rename = "ref")]
    pub git_ref: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Installation {
    pub id: u64,
}

impl Deployment {
    /// `jira_cr_id` from the deployment's payload, whether GitHub sent the payload as an object or
    /// as the JSON text the workflow gave.
    pub fn jira_cr_id(&self) -> Option<String> {
        let parsed;
        let object = match &self.payload {
            Value::String(text) => {
                parsed = serde_json::from_str::<Value>(text).ok()?;
                &parsed
            }
            other => other,
        };
        object
            .get("jira_cr_id")
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    }
}

/// One deployment waiting on the rule: a workflow run's job deploying to one environment. GitHub
/// takes one answer per run and environment, so this is what "answered once" counts.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DeploymentIdentity {
    /// `owner/name`, lowercase.
    pub repository: String,
    pub run_id: u64,
    /// The environment name, lowercase (GitHub's are case-insensitive).
    pub environment: String,
}

impl DeploymentIdentity {
    /// Reads the run id from the callback URL's `…/actions/runs/{run_id}/deployment_protection_rule`.
    ///
    /// # Errors
    /// A reason when the URL is not a review endpoint of the event's repository.
    pub fn of(event: &DeploymentRuleEvent) -> Result<Self, String> {
        let refused = || {
            format!(
                "deployment_callback_url {:?} is not …/repos/{}/actions/runs/<id>/deployment_protection_rule",
                event.deployment_callback_url, event.repository.full_name
            )
        };
        let url = url::Url::parse(&event.deployment_callback_url).map_err(|_| refused())?;
        let segments: Vec<&str> = url.path_segments().ok_or_else(refused)?.collect();
        let repository = event.repository.full_name.to_ascii_lowercase();
        let run_id = match segments.as_slice() {
            [
                "repos",
                owner,
                name,
                "actions",
                "runs",
                run,
                "deployment_protection_rule",
            ] if format!("{owner}/{name}").eq_ignore_ascii_case(&repository) => {
                run.parse::<u64>().map_err(|_| refused())?
            }
            _ => return Err(refused()),
        };
        Ok(Self {
            repository,
            run_id,
            environment: event.environment.trim().to_ascii_lowercase(),
        })
    }

    /// `owner/name/runs/<run_id>/<environment>`: the store's and the audit trail's name for it.
    pub fn as_key(&self) -> String {
        format!(
            "{}/runs/{}/{}",
            self.repository, self.run_id, self.environment
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(callback: &str, payload: Value) -> DeploymentRuleEvent {
        serde_json::from_value(json!({
            "action": "requested",
            "environment": "Production",
            "event": "push",
            "sha": "abc123",
            "ref": "refs/heads/main",
            "deployment_callback_url": callback,
            "deployment": {"id": 1, "payload": payload},
            "pull_requests": [{"number": 7, "title": "CR-1 fix", "head": {"ref": "cr-1"}}],
            "repository": {"full_name": "Acme/Payments"},
            "installation": {"id": 42}
        }))
        .unwrap()
    }

    #[test]
    fn the_run_comes_from_the_callback_url_of_the_same_repository() {
        let e = event(
            "https://api.github.com/repos/acme/payments/actions/runs/99/deployment_protection_rule",
            json!({}),
        );
        let id = DeploymentIdentity::of(&e).unwrap();
        assert_eq!(id.as_key(), "acme/payments/runs/99/production");
        for bad in [
            "https://api.github.com/repos/other/repo/actions/runs/99/deployment_protection_rule",
            "https://api.github.com/repos/acme/payments/actions/runs/x/deployment_protection_rule",
            "https://api.github.com/repos/acme/payments/actions/runs/99",
            "not a url",
        ] {
            assert!(
                DeploymentIdentity::of(&event(bad, json!({}))).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn jira_cr_id_is_read_from_an_object_or_json_text() {
        let url =
            "https://api.github.com/repos/acme/payments/actions/runs/1/deployment_protection_rule";
        let object = event(url, json!({"jira_cr_id": " CR-7 "}));
        assert_eq!(
            object.deployment.unwrap().jira_cr_id().as_deref(),
            Some("CR-7")
        );
        let text = event(url, json!("{\"jira_cr_id\":\"CR-8\"}"));
        assert_eq!(
            text.deployment.unwrap().jira_cr_id().as_deref(),
            Some("CR-8")
        );
        for none in [
            json!(""),
            json!({}),
            json!({"jira_cr_id": 5}),
            json!("not json"),
        ] {
            assert_eq!(event(url, none).deployment.unwrap().jira_cr_id(), None);
        }
    }
}
