//! Looking a CR up for `hookbridge cr status` (and, next, the deployment gate): from the store when
//! it holds the record, else — or when asked to refresh — from Jira, whose answer is then stored
//! the same ordered way a webhook's would be.

use serde::Serialize;
use serde_json::json;

use super::record::{CrKey, CrRecord};
use super::transition::HistoryEntry;
use super::usage::Usage;
use super::{Applied, ChangeRequests};
use crate::audit::Entry;
use crate::events::jira::{CrFilter, parse_jira_time};
use crate::handler::Failure;
use crate::jira::{JiraClient, JiraError};
use crate::store::StoreError;
use crate::store::keys::{CrHistory, CrRecordKey, CrUsage};

/// Where a record shown came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Cache,
    Jira,
}

/// A CR as looked up: its record, where from, its usage and history.
#[derive(Debug, Clone)]
pub struct Found {
    pub record: CrRecord,
    pub source: Source,
    pub usage: Option<Usage>,
    /// Oldest first (by the time of each change).
    pub history: Vec<HistoryEntry>,
}

/// Why a CR could not be looked up, sorted by exit code.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    /// Jira has no such issue (exit 1).
    #[error("{0} not found in Jira")]
    NotFound(CrKey),
    /// The issue exists but is not a Change Request (exit 1).
    #[error("{key} is not a Change Request: {why}")]
    NotACr { key: CrKey, why: String },
    /// Not in the store, and no Jira to ask (exit 2).
    #[error("{0} is not in the store and JIRA_BASE_URL is not set, so Jira cannot be asked")]
    NoJira(CrKey),
    /// Jira could not answer (exit 1 when it refused us, e.g. 401/403; try again otherwise).
    #[error("reading {key} from Jira: {error}")]
    Jira { key: CrKey, error: JiraError },
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Write(String),
}

impl From<Failure> for LookupError {
    fn from(failure: Failure) -> Self {
        match failure {
            Failure::Retry { reason, .. }
            | Failure::Fail(reason)
            | Failure::Wait { reason, .. } => LookupError::Write(reason),
        }
    }
}

impl ChangeRequests {
    /// The CR `key`: from the store unless `refresh` or it is not there, else from `jira` (whose
    /// answer is then stored the ordered way, and shown as Jira gave it).
    ///
    /// # Errors
    /// [`LookupError`].
    pub async fn lookup(
        &self,
        key: &CrKey,
        jira: Option<&JiraClient>,
        filter: &CrFilter,
        refresh: bool,
    ) -> Result<Found, LookupError> {
        if !refresh && let Some(record) = self.store.read(&CrRecordKey(key)).await? {
            return self.found(record, Source::Cache).await;
        }
        let Some(jira) = jira else {
            return Err(LookupError::NoJira(key.clone()));
        };
        let record = self.read_from_jira(key, jira, filter).await?;
        let applied: Applied = self.apply(None, &record, None, false).await?;
        let entry = Entry::new("cr.read_from_jira", key.as_str())
            .id("jira", key.as_str())
            .outcome(if applied.newer { "ok" } else { "stale" })
            .detail(json!({"status": record.status, "updated_at": record.updated_at}));
        if let Err(e) = self.audit.record(entry).await {
            tracing::error!(error = %e, cr = %key, "CR read from Jira not audited");
        }
        // Asked, Jira is the authority: its answer is shown, whatever the store kept — with the
        // time its status began, which only the store knows.
        let mut record = record;
        if applied.newer
            && let Ok(Some(stored)) = self.store.read(&CrRecordKey(key)).await
            && stored.updated_at == record.updated_at
        {
            record.status_since = stored.status_since;
        }
        self.found(record, Source::Jira).await
    }

    async fn found(&self, record: CrRecord, source: Source) -> Result<Found, LookupError> {
        let usage = self.store.read(&CrUsage(&record.key)).await?;
        let mut history = self
            .store
            .list(&CrHistory(&record.key), 0, super::HISTORY_KEPT)
            .await?;
        history.sort_by_key(|h| h.at);
        Ok(Found {
            record,
            source,
            usage,
            history,
        })
    }

    async fn read_from_jira(
        &self,
        key: &CrKey,
        jira: &JiraClient,
        filter: &CrFilter,
    ) -> Result<CrRecord, LookupError> {
        let mut fields = vec![
            "summary",
            "status",
            "description",
            "updated",
            "project",
            "issuetype",
        ];
        fields.extend(self.config.fields.field_ids());
        let issue = jira
            .get_issue(key.as_str(), &fields.join(","))
            .await
            .map_err(|error| match error.status() {
                Some(404) => LookupError::NotFound(key.clone()),
                _ => LookupError::Jira {
                    key: key.clone(),
                    error,
                },
            })?;
        let not_a_cr = |why: String| LookupError::NotACr {
            key: key.clone(),
            why,
        };
        let project = issue
            .pointer("/fields/project/key")
            .and_then(serde_json::Value::as_str)
            .unwrap_or(key.project());
        if !filter
            .projects
            .iter()
            .any(|p| p.as_str().eq_ignore_ascii_case(project))
        {
            return Err(not_a_cr(format!(
                "project {project} is not in CR_PROJECT_KEYS"
            )));
        }
        if !filter.issue_types.is_empty() {
            let issue_type = issue
                .pointer("/fields/issuetype/name")
                .and_then(serde_json::Value::as_str)
                .unwrap_or_default();
            if !filter
                .issue_types
                .iter()
                .any(|t| t.eq_ignore_ascii_case(issue_type))
            {
                return Err(not_a_cr(format!(
                    "its type {issue_type:?} is not in CR_ISSUE_TYPES"
                )));
            }
        }
        let updated = issue
            .pointer("/fields/updated")
            .and_then(serde_json::Value::as_str)
            .and_then(parse_jira_time)
            .ok_or_else(|| LookupError::Write(format!("{key}: Jira gave no `updated` time")))?;
        CrRecord::from_issue(&issue, &self.config.fields, updated, None, false)
            .map_err(LookupError::Write)
    }
}
