//! The Jira operations the pipeline needs, against a live Jira or in dry-run.
//!
//! In dry-run (no `JIRA_BASE_URL`) every write is recorded in the audit trail as the exact request
//! that would have been sent (method, path, JSON body) and answered with a made-up key, so the
//! whole pipeline, dedupe and mapping included, runs the same way as against a real Jira.

use std::time::Duration;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{JiraClient, JiraError, remote_link_body};
use crate::audit::AuditLog;

/// A Jira issue to create.
#[derive(Debug, Clone)]
pub struct NewIssue {
    pub project: String,
    pub issue_type: String,
    pub summary: String,
    pub description: Value,
    pub labels: Vec<String>,
    pub components: Vec<String>,
    pub priority: Option<String>,
}

impl NewIssue {
    /// The `POST /rest/api/3/issue` body.
    pub fn request_body(&self) -> Value {
        let mut fields = json!({
            "project": {"key": self.project},
            "issuetype": {"name": self.issue_type},
            "summary": self.summary,
            "description": self.description,
            "labels": self.labels,
        });
        if !self.components.is_empty() {
            fields["components"] = self
                .components
                .iter()
                .map(|c| json!({"name": c}))
                .collect::<Vec<_>>()
                .into();
        }
        if let Some(priority) = &self.priority {
            fields["priority"] = json!({"name": priority});
        }
        json!({"fields": fields})
    }
}

/// A failed Jira operation.
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    #[error(transparent)]
    Jira(#[from] JiraError),
    #[error("audit trail: {0}")]
    Audit(#[from] crate::audit::AuditError),
}

impl OpsError {
    /// `Some(delay)` when retrying later may succeed, `None` when the failure is permanent.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            OpsError::Jira(e) if e.is_transient() => {
                Some(e.retry_after().unwrap_or(Duration::from_secs(10)))
            }
            OpsError::Jira(_) => None,
            OpsError::Audit(_) => Some(Duration::from_secs(10)),
        }
    }

    /// Whether Jira answered with an error status, which proves the request had no effect (as
    /// opposed to a timeout or a broken connection, after which it may have).
    pub fn proves_nothing_happened(&self) -> bool {
        match self {
            OpsError::Jira(e) => e.proves_nothing_happened(),
            OpsError::Audit(_) => true,
        }
    }
}

/// Live Jira or dry-run.
pub enum JiraOps {
    Live(JiraClient),
    DryRun(AuditLog),
}

fn dry_key(seed: &str) -> String {
    let digest = hex::encode(Sha256::digest(seed.as_bytes()));
    format!(
        "DRYRUN-{}",
        u32::from_str_radix(&digest[..6], 16).unwrap_or(0)
    )
}

impl JiraOps {
    async fn dry(
        &self,
        audit: &AuditLog,
        method: &str,
        path: &str,
        body: Value,
    ) -> Result<(), OpsError> {
        audit
            .record(
                "jira.dry_run",
                json!({"request": {"method": method, "path": path, "body": body}}),
            )
            .await?;
        Ok(())
    }

    /// Creates the issue; returns its key.
    ///
    /// # Errors
    /// [`OpsError`], classified.
    pub async fn create_issue(&self, issue: &NewIssue) -> Result<String, OpsError> {
        match self {
            JiraOps::Live(client) => Ok(client.create_issue_raw(&issue.request_body()).await?.key),
            JiraOps::DryRun(audit) => {
                let body = issue.request_body();
                self.dry(audit, "POST", "/rest/api/3/issue", body.clone())
                    .await?;
                Ok(dry_key(&body.to_string()))
            }
        }
    }

    /// Upserts the remote link with `globalId` = `global_id`.
    ///
    /// # Errors
    /// [`OpsError`], classified.
    pub async fn add_remote_link(
        &self,
        key: &str,
        global_id: &str,
        url: &str,
        title: &str,
    ) -> Result<(), OpsError> {
        match self {
            JiraOps::Live(client) => Ok(client.add_remote_link(key, global_id, url, title).await?),
            JiraOps::DryRun(audit) => {
                let body = remote_link_body(global_id, url, title);
                self.dry(
                    audit,
                    "POST",
                    &format!("/rest/api/3/issue/{key}/remotelink"),
                    body,
                )
                .await
            }
        }
    }

    /// Adds (`add`) or removes one label, leaving the others — including those set by hand in
    /// Jira — as they are.
    ///
    /// # Errors
    /// [`OpsError`], classified.
    pub async fn change_label(&self, key: &str, label: &str, add: bool) -> Result<(), OpsError> {
        let verb = if add { "add" } else { "remove" };
        self.edit(key, json!({"update": {"labels": [{verb: label}]}}))
            .await
    }

    /// Sets summary and description.
    ///
    /// # Errors
    /// [`OpsError`], classified.
    pub async fn edit_fields(
        &self,
        key: &str,
        summary: &str,
        description: Value,
    ) -> Result<(), OpsError> {
        self.edit(
            key,
            json!({"fields": {"summary": summary, "description": description}}),
        )
        .await
    }

    async fn edit(&self, key: &str, body: Value) -> Result<(), OpsError> {
        match self {
            JiraOps::Live(client) => Ok(client.edit_issue(key, &body).await?),
            JiraOps::DryRun(audit) => {
                self.dry(audit, "PUT", &format!("/rest/api/3/issue/{key}"), body)
                    .await
            }
        }
    }

    /// Adds a comment; returns its id.
    ///
    /// # Errors
    /// [`OpsError`], classified.
    pub async fn add_comment(&self, key: &str, body: Value) -> Result<String, OpsError> {
        match self {
            JiraOps::Live(client) => Ok(client.add_comment(key, &body).await?),
            JiraOps::DryRun(audit) => {
                self.dry(
                    audit,
                    "POST",
                    &format!("/rest/api/3/issue/{key}/comment"),
                    json!({"body": body}),
                )
                .await?;
                Ok("0".into())
            }
        }
    }

    /// Applies the transition called `name` (case-insensitive); `false` when the issue has no
    /// such transition now (already in that state, or another workflow).
    ///
    /// # Errors
    /// [`OpsError`], classified.
    pub async fn transition_named(&self, key: &str, name: &str) -> Result<bool, OpsError> {
        match self {
            JiraOps::Live(client) => {
                let transitions = client.get_transitions(key).await?;
                let Some(found) = transitions.iter().find(|t| {
                    t.name.eq_ignore_ascii_case(name) || t.to_name.eq_ignore_ascii_case(name)
                }) else {
                    return Ok(false);
                };
                client.transition(key, &found.id).await?;
                Ok(true)
            }
            JiraOps::DryRun(audit) => {
                self.dry(
                    audit,
                    "POST",
                    &format!("/rest/api/3/issue/{key}/transitions"),
                    json!({"transition": {"name": name}}),
                )
                .await?;
                Ok(true)
            }
        }
    }

    /// The key of an issue carrying `label`, if search finds one.
    ///
    /// # Errors
    /// [`OpsError`], classified.
    pub async fn find_by_label(&self, label: &str) -> Result<Option<String>, OpsError> {
        match self {
            JiraOps::Live(client) => {
                let jql = format!("labels = \"{label}\" ORDER BY created ASC");
                Ok(client.search_keys(&jql, 1).await?.into_iter().next())
            }
            JiraOps::DryRun(_) => Ok(None),
        }
    }

    /// Whether a comment on the issue contains `needle` (the GitHub comment URL marker).
    ///
    /// # Errors
    /// [`OpsError`], classified.
    pub async fn has_comment_containing(&self, key: &str, needle: &str) -> Result<bool, OpsError> {
        match self {
            JiraOps::Live(client) => Ok(client
                .list_comment_bodies(key)
                .await?
                .iter()
                .any(|body| body.to_string().contains(needle))),
            JiraOps::DryRun(_) => Ok(false),
        }
    }
}
