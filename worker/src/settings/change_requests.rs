//! Change Request and alert settings: which Jira issues are CRs, where their approvers, signature
//! and budget are, which statuses approve or reject, how long records live, and Slack.

use std::path::PathBuf;
use std::time::Duration;

use hookbridge_shared::config::{
    ApproverRoleField, ConfigError, FileConfig, parse_secret, secret_setting,
};
use hookbridge_shared::routing::JiraProjectKey;
use secrecy::{ExposeSecret, SecretString};

use crate::alerts::slack::SlackWebhook;
use crate::change_requests::CrConfig;
use crate::change_requests::fields::CrFields;
use crate::change_requests::transition::CrStatuses;
use crate::events::jira::CrFilter;

/// The shortest `CR_CACHE_TTL`: a record must outlive Jira's late deliveries (about half an hour),
/// or a late event could find no newer record and overwrite the present with the past.
pub const MIN_CACHE_TTL: Duration = Duration::from_secs(3600);

/// CR flags, shared by the worker and the `cr` commands.
#[derive(Debug, Clone, clap::Args)]
pub struct CrArgs {
    /// Jira projects whose issues are Change Requests, comma-separated.
    #[arg(
        long,
        env = "CR_PROJECT_KEYS",
        default_value = "CR",
        value_delimiter = ','
    )]
    pub cr_project_keys: Vec<String>,

    /// Only these issue types of the CR projects are CRs, comma-separated (unset: every type).
    #[arg(long, env = "CR_ISSUE_TYPES", value_delimiter = ',')]
    pub cr_issue_types: Vec<String>,

    /// The user-picker field whose entries carry a `role` (approvers, shape a).
    #[arg(long, env = "CR_APPROVER_FIELD", default_value = "customfield_10102")]
    pub cr_approver_field: String,

    /// The text field holding the PKI signature JSON.
    #[arg(long, env = "CR_SIGNATURE_FIELD", default_value = "customfield_10103")]
    pub cr_signature_field: String,

    /// Statuses that count as approved, comma-separated.
    #[arg(
        long,
        env = "CR_APPROVED_STATUSES",
        default_value = "Approved",
        value_delimiter = ','
    )]
    pub cr_approved_statuses: Vec<String>,

    /// Statuses that count as rejected, comma-separated.
    #[arg(
        long,
        env = "CR_REJECTED_STATUSES",
        default_value = "Rejected",
        value_delimiter = ','
    )]
    pub cr_rejected_statuses: Vec<String>,

    /// How long a CR record lives in the store after its last change (e.g. 24h, 90m; at least 1h).
    #[arg(long, env = "CR_CACHE_TTL", default_value = "24h", value_parser = parse_duration)]
    pub cr_cache_ttl: Duration,

    /// Slack incoming webhook for alerts; unset: alerts are written to the audit trail (dry-run).
    /// The URL is a credential, hence a secret type.
    #[arg(long, env = "SLACK_WEBHOOK_URL", hide_env_values = true, value_parser = parse_secret)]
    pub slack_webhook_url: Option<SecretString>,

    /// A file holding SLACK_WEBHOOK_URL (trailing newline stripped).
    #[arg(long, env = "SLACK_WEBHOOK_URL_FILE")]
    pub slack_webhook_url_file: Option<PathBuf>,
}

/// `24h`, `90m`, `3600s`, or a number of seconds.
///
/// # Errors
/// A one-line reason for clap to print.
pub fn parse_duration(value: &str) -> Result<Duration, String> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Ok(Duration::from_secs(seconds));
    }
    humantime::parse_duration(value)
        .map_err(|e| format!("expected a duration like 24h, 90m or 3600s ({e})"))
}

/// Validated CR settings.
#[derive(Debug, Clone)]
pub struct CrSettings {
    pub filter: CrFilter,
    pub config: CrConfig,
    pub slack: Option<SlackWebhook>,
}

fn list(values: &[String]) -> Vec<String> {
    values
        .iter()
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .collect()
}

/// A Jira field id: `customfield_10102`, `description`, …
fn field_id(key: &str, value: &str) -> Result<String, ConfigError> {
    let value = value.trim();
    if !value.is_empty() && value.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        Ok(value.to_owned())
    } else {
        Err(ConfigError::new(
            key,
            format!(
                "{value:?} is not a Jira field id (like customfield_10102; `hookbridge jira fields` lists them)"
            ),
        ))
    }
}

/// The `[[change_requests.approver_roles]]` of the TOML file, checked: a Jira field id and a role
/// each. `hookbridge config check` runs this too.
///
/// # Errors
/// [`ConfigError`] naming the entry's key.
pub fn approver_roles(file: &FileConfig) -> Result<Vec<ApproverRoleField>, ConfigError> {
    file.change_requests
        .approver_roles
        .iter()
        .map(|r| {
            let field = field_id("change_requests.approver_roles.field", &r.field)?;
            let role = r.role.trim().to_owned();
            if role.is_empty() {
                return Err(ConfigError::new(
                    "change_requests.approver_roles.role",
                    format!("the role for field {field} is empty"),
                ));
            }
            Ok(ApproverRoleField { role, field })
        })
        .collect()
}

impl CrArgs {
    /// # Errors
    /// [`ConfigError`] naming the key: a project key or field id that cannot be one, no approved
    /// status, a TTL below [`MIN_CACHE_TTL`], a Slack URL that is not one.
    pub fn settings(&self, file: &FileConfig) -> Result<CrSettings, ConfigError> {
        let projects = list(&self.cr_project_keys)
            .iter()
            .map(|p| JiraProjectKey::parse(p))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ConfigError::new("CR_PROJECT_KEYS", e))?;
        if projects.is_empty() {
            return Err(ConfigError::new("CR_PROJECT_KEYS", "names no project"));
        }
        let approved = list(&self.cr_approved_statuses);
        if approved.is_empty() {
            return Err(ConfigError::new("CR_APPROVED_STATUSES", "names no status"));
        }
        let rejected = list(&self.cr_rejected_statuses);
        if let Some(both) = approved
            .iter()
            .find(|a| rejected.iter().any(|r| r.eq_ignore_ascii_case(a)))
        {
            return Err(ConfigError::new(
                "CR_REJECTED_STATUSES",
                format!("{both:?} cannot be both approved and rejected"),
            ));
        }
        if self.cr_cache_ttl < MIN_CACHE_TTL {
            return Err(ConfigError::new(
                "CR_CACHE_TTL",
                "must be at least 1h: a record must outlive Jira's late deliveries",
            ));
        }
        let approver_roles = approver_roles(file)?;
        let slack = secret_setting(
            "SLACK_WEBHOOK_URL",
            self.slack_webhook_url.as_ref(),
            "SLACK_WEBHOOK_URL_FILE",
            self.slack_webhook_url_file.as_deref(),
        )?
        .map(|s| {
            SlackWebhook::parse(s.value.expose_secret()).map_err(|e| ConfigError::new(s.key, e))
        })
        .transpose()?;
        Ok(CrSettings {
            filter: CrFilter {
                projects,
                issue_types: list(&self.cr_issue_types),
            },
            config: CrConfig {
                fields: CrFields {
                    approver_field: field_id("CR_APPROVER_FIELD", &self.cr_approver_field)?,
                    approver_roles,
                    signature_field: field_id("CR_SIGNATURE_FIELD", &self.cr_signature_field)?,
                },
                statuses: CrStatuses { approved, rejected },
                ttl: self.cr_cache_ttl,
            },
            slack,
        })
    }
}
