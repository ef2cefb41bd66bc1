//! The Jira operations the worker needs, against a live Jira or in dry-run, each write audited.
//!
//! Live, every write Jira accepted is recorded in the audit trail (`jira.issue.created`,
//! `jira.issue.updated`, `jira.comment.created`, …) with the issue key. In dry-run (no
//! `JIRA_BASE_URL`) each write is recorded instead as the exact request that would have been sent
//! (method, path, JSON body; outcome `dry_run`) and answered with a made-up key, so the whole
//! pipeline, dedupe and mapping included, runs the same way as against a real Jira.

use std::time::Duration;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{BeforeSend, JiraClient, JiraError, remote_link_body};
use crate::audit::{AuditLog, Entry};

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

    /// Whether Jira as a whole is unavailable (see [`crate::jira::health`]).
    pub fn is_systemic(&self) -> bool {
        matches!(self, OpsError::Jira(e) if e.is_systemic())
    }

    /// Whether Jira answered with an error status, which proves the request had no effect (as
    /// opposed to a timeout or a broken connection, after which it may have). An audit failure
    /// only comes from a dry run, whose record is its only effect.
    pub fn proves_nothing_happened(&self) -> bool {
        match self {
            OpsError::Jira(e) => e.proves_nothing_happened(),
            OpsError::Audit(_) => true,
        }
    }
}

/// Where the operations go.
pub enum JiraTarget {
    Live(JiraClient),
    /// No Jira: writes are recorded in the audit trail only.
    DryRun,
}

/// The Jira operations, live or dry-run, with the audit trail they record to.
pub struct JiraOps {
    pub target: JiraTarget,
    pub audit: AuditLog,
}

fn dry_key(seed: &str) -> String {
    let digest = hex::encode(Sha256::digest(seed.as_bytes()));
    format!(
        "DRYRUN-{}",
        u32::from_str_radix(&digest[..6], 16).unwrap_or(0)
    )
}

/// A write request as the audit trail shows it.
struct Request<'a> {
    method: &'a str,
    path: String,
    body: Value,
}

impl JiraOps {
    /// Live Jira's state (`None` in dry-run, where nothing can be down).
    pub fn health(&self) -> Option<crate::jira::health::JiraHealth> {
        self.live_client().map(|client| client.health().clone())
    }

    /// The client, when Jira is live.
    pub fn live_client(&self) -> Option<&JiraClient> {
        match &self.target {
            JiraTarget::Live(client) => Some(client),
            JiraTarget::DryRun => None,
        }
    }

    pub fn live(client: JiraClient, audit: AuditLog) -> Self {
        Self {
            target: JiraTarget::Live(client),
            audit,
        }
    }

    pub fn dry_run(audit: AuditLog) -> Self {
        Self {
            target: JiraTarget::DryRun,
            audit,
        }
    }

    /// The live client; `None` in dry-run.
    pub fn client(&self) -> Option<&JiraClient> {
        match &self.target {
            JiraTarget::Live(client) => Some(client),
            JiraTarget::DryRun => None,
        }
    }

    /// Records a write: done (live, with the key it concerns) or the request it would have been.
    ///
    /// Live, the write has already happened, so a failure to record it must not make the caller
    /// believe it did not (a create would be sent again): it is logged as an error instead. In
    /// dry-run the record *is* the effect, so its failure is the operation's.
    async fn audit(&self, action: &str, key: &str, request: Request<'_>) -> Result<(), OpsError> {
        match self.target {
            JiraTarget::Live(_) => {
                let entry = Entry::new(action, key)
                    .id("jira", key)
                    .detail(json!({"request": {"method": request.method, "path": request.path}}));
                if let Err(e) = self.audit.record(entry).await {
                    tracing::error!(error = %e, action, jira = key, "Jira write done but not audited");
                }
                Ok(())
            }
            JiraTarget::DryRun => {
                let entry = Entry::new(action, key).id("jira", key).outcome("dry_run").detail(
                    json!({"request": {"method": request.method, "path": request.path, "body": request.body}}),
                );
                self.audit.record(entry).await?;
                Ok(())
            }
        }
    }

    /// Creates the issue; returns its key. `before_send` runs right before the request leaves
    /// (each time it does; in dry-run, before the record), see [`BeforeSend`].
    ///
    /// # Errors
    /// [`OpsError`], classified.
    pub async fn create_issue(
        &self,
        issue: &NewIssue,
        before_send: &BeforeSend<'_>,
    ) -> Result<String, OpsError> {
        let body = issue.request_body();
        let key = match &self.target {
            JiraTarget::Live(client) => {
                client
                    .create_issue_raw_then(&body, Some(before_send))
                    .await?
                    .key
            }
            JiraTarget::DryRun => {
                before_send().await.map_err(|reason| JiraError::NotSent {
                    op: "create issue",
                    reason,
                })?;
                dry_key(&body.to_string())
            }
        };
        let request = Request {
            method: "POST",
            path: "/rest/api/3/issue".into(),
            body,
        };
        self.audit("jira.issue.created", &key, request).await?;
        Ok(key)
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
        if let JiraTarget::Live(client) = &self.target {
            client.add_remote_link(key, global_id, url, title).await?;
        }
        let request = Request {
            method: "POST",
            path: format!("/rest/api/3/issue/{key}/remotelink"),
            body: remote_link_body(global_id, url, title),
        };
        self.audit("jira.remote_link.set", key, request).await
    }

    /// Upserts `link` (by its `globalId`) with all it shows: summary, icon, status.
    ///
    /// # Errors
    /// [`OpsError`], classified; Jira's 404 when there is no issue `key`.
    pub async fn upsert_remote_link(
        &self,
        key: &str,
        link: &super::remote_links::RemoteLink,
    ) -> Result<(), OpsError> {
        let body = link.body();
        if let JiraTarget::Live(client) = &self.target {
            client.post_remote_link(key, &body).await?;
        }
        let request = Request {
            method: "POST",
            path: format!("/rest/api/3/issue/{key}/remotelink"),
            body,
        };
        self.audit("jira.remote_link.set", key, request).await
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
        if let JiraTarget::Live(client) = &self.target {
            client.edit_issue(key, &body).await?;
        }
        let request = Request {
            method: "PUT",
            path: format!("/rest/api/3/issue/{key}"),
            body,
        };
        self.audit("jira.issue.updated", key, request).await
    }

    /// Sets the assignee to `account_id`, or unassigns with `None`.
    ///
    /// # Errors
    /// [`OpsError`], classified.
    pub async fn assign(&self, key: &str, account_id: Option<&str>) -> Result<(), OpsError> {
        if let JiraTarget::Live(client) = &self.target {
            client.assign(key, account_id).await?;
        }
        let request = Request {
            method: "PUT",
            path: format!("/rest/api/3/issue/{key}/assignee"),
            body: json!({"accountId": account_id}),
        };
        self.audit("jira.issue.assigned", key, request).await
    }

    /// Unassigns the issue if `account_id` is its assignee now; `false` when it is not (someone
    /// else is, or nobody). The dry run cannot read it and records the unassign.
    ///
    /// # Errors
    /// [`OpsError`], classified.
    pub async fn unassign_if(&self, key: &str, account_id: &str) -> Result<bool, OpsError> {
        if let JiraTarget::Live(client) = &self.target {
            let issue = client.get_issue(key, "assignee").await?;
            if issue["fields"]["assignee"]["accountId"].as_str() != Some(account_id) {
                return Ok(false);
            }
        }
        self.assign(key, None).await?;
        Ok(true)
    }

    /// Records that a write was left out on purpose (`why`), live or dry-run alike.
    ///
    /// # Errors
    /// [`OpsError::Audit`].
    pub async fn skipped(&self, action: &str, key: &str, why: Value) -> Result<(), OpsError> {
        let entry = Entry::new(action, key)
            .id("jira", key)
            .outcome("skipped")
            .detail(why);
        self.audit.record(entry).await?;
        Ok(())
    }

    /// Adds a comment; returns its id.
    ///
    /// # Errors
    /// [`OpsError`], classified.
    pub async fn add_comment(&self, key: &str, body: Value) -> Result<String, OpsError> {
        let id = match &self.target {
            JiraTarget::Live(client) => client.add_comment(key, &body).await?,
            JiraTarget::DryRun => "0".into(),
        };
        let request = Request {
            method: "POST",
            path: format!("/rest/api/3/issue/{key}/comment"),
            body: json!({"body": body}),
        };
        self.audit("jira.comment.created", key, request).await?;
        Ok(id)
    }

    /// Applies the transition called `name` (case-insensitive); `false` when the issue has no
    /// such transition now (already in that state, or another workflow).
    ///
    /// # Errors
    /// [`OpsError`], classified.
    pub async fn transition_named(&self, key: &str, name: &str) -> Result<bool, OpsError> {
        self.transition_named_with(key, name, None).await
    }

    /// [`JiraOps::transition_named`], setting the resolution called `resolution` on the way
    /// (`"fields": {"resolution": {"name": …}}`, Jira REST v3 "Transition issue"). Jira refuses
    /// an unknown name with 400, which dead-letters the message with Jira's text.
    ///
    /// # Errors
    /// [`OpsError`], classified.
    pub async fn transition_named_with(
        &self,
        key: &str,
        name: &str,
        resolution: Option<&str>,
    ) -> Result<bool, OpsError> {
        let fields = resolution.map(|r| json!({"resolution": {"name": r}}));
        let transition = match &self.target {
            JiraTarget::Live(client) => {
                let transitions = client.get_transitions(key).await?;
                let Some(found) = transitions.iter().find(|t| {
                    t.name.eq_ignore_ascii_case(name) || t.to_name.eq_ignore_ascii_case(name)
                }) else {
                    return Ok(false);
                };
                client
                    .transition_with(key, &found.id, fields.as_ref())
                    .await?;
                json!({"id": found.id})
            }
            // The dry run cannot look the id up: it shows the name it would look for.
            JiraTarget::DryRun => json!({"name": name}),
        };
        let mut body = json!({"transition": transition});
        if let Some(fields) = fields {
            body["fields"] = fields;
        }
        let request = Request {
            method: "POST",
            path: format!("/rest/api/3/issue/{key}/transitions"),
            body,
        };
        self.audit("jira.issue.transitioned", key, request).await?;
        Ok(true)
    }

    /// The key of an issue carrying `label`, if search finds one.
    ///
    /// # Errors
    /// [`OpsError`], classified.
    pub async fn find_by_label(&self, label: &str) -> Result<Option<String>, OpsError> {
        match &self.target {
            JiraTarget::Live(client) => {
                let jql = format!("labels = \"{label}\" ORDER BY created ASC");
                Ok(client.search_keys(&jql, 1).await?.into_iter().next())
            }
            JiraTarget::DryRun => Ok(None),
        }
    }

    /// Replaces the body of comment `id`.
    ///
    /// # Errors
    /// [`OpsError`], classified.
    pub async fn edit_comment(&self, key: &str, id: &str, body: Value) -> Result<(), OpsError> {
        if let JiraTarget::Live(client) = &self.target {
            client.edit_comment(key, id, &body).await?;
        }
        let request = Request {
            method: "PUT",
            path: format!("/rest/api/3/issue/{key}/comment/{id}"),
            body: json!({"body": body}),
        };
        self.audit("jira.comment.updated", key, request).await
    }

    /// Deletes comment `id`.
    ///
    /// # Errors
    /// [`OpsError`], classified.
    pub async fn delete_comment(&self, key: &str, id: &str) -> Result<(), OpsError> {
        if let JiraTarget::Live(client) = &self.target {
            client.delete_comment(key, id).await?;
        }
        let request = Request {
            method: "DELETE",
            path: format!("/rest/api/3/issue/{key}/comment/{id}"),
            body: Value::Null,
        };
        self.audit("jira.comment.deleted", key, request).await
    }

    /// Every comment of the issue as `(id, body)`, read consistently; none in dry-run.
    ///
    /// # Errors
    /// [`OpsError`], classified.
    pub async fn comments(&self, key: &str) -> Result<Vec<(String, Value)>, OpsError> {
        match &self.target {
            JiraTarget::Live(client) => Ok(client.list_comments(key).await?),
            JiraTarget::DryRun => Ok(Vec::new()),
        }
    }

    /// Every comment body (ADF) of the issue, read consistently (unlike search); none in dry-run.
    ///
    /// # Errors
    /// [`OpsError`], classified.
    pub async fn comment_bodies(&self, key: &str) -> Result<Vec<Value>, OpsError> {
        match &self.target {
            JiraTarget::Live(client) => Ok(client.list_comment_bodies(key).await?),
            JiraTarget::DryRun => Ok(Vec::new()),
        }
    }
}
