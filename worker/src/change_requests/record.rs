//! The Change Request record: what the store keeps about one CR, built from the Jira issue a
//! webhook carries or the REST API returns.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::fields::{self, CrFields};

/// A Jira issue key naming a CR: a project key, then one or more `-<digits>` groups — `CR-42`, or
/// the `CR-YYYY-NNNN` convention of the governance seed. Upper-cased.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CrKey(String);

impl CrKey {
    /// # Errors
    /// A reason when `value` is not a Jira issue key.
    pub fn parse(value: &str) -> Result<Self, String> {
        let key = value.trim().to_ascii_uppercase();
        let refused = || format!("{value:?} is not a Jira issue key (like CR-42 or CR-2026-0001)");
        let mut parts = key.split('-');
        let project = parts.next().unwrap_or_default();
        let valid_project = project
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_uppercase())
            && project
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
        let numbers: Vec<&str> = parts.collect();
        let valid_numbers = !numbers.is_empty()
            && numbers
                .iter()
                .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        if valid_project && valid_numbers && key.len() <= 255 {
            Ok(Self(key))
        } else {
            Err(refused())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The project part (`CR` of `CR-2026-0001`).
    pub fn project(&self) -> &str {
        self.0.split('-').next().unwrap_or_default()
    }
}

impl TryFrom<String> for CrKey {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<CrKey> for String {
    fn from(key: CrKey) -> Self {
        key.0
    }
}

impl fmt::Display for CrKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A Jira user as the record names them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Person {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

impl Person {
    /// From a Jira user object (`displayName`, `accountId`, `emailAddress`, or Server's `name`).
    pub fn from_jira(user: &Value) -> Option<Self> {
        let text = |k: &str| {
            user.get(k)
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        let account_id = text("accountId");
        let email = text("emailAddress");
        let name = text("displayName")
            .or_else(|| text("name"))
            .or_else(|| email.clone())
            .or_else(|| account_id.clone())?;
        Some(Self {
            name,
            account_id,
            email,
        })
    }
}

/// Someone who approves the CR, in a role (`None` when the field gave no role).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approver {
    pub name: String,
    pub role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// The Jira field it was read from.
    pub field: String,
}

/// What the store keeps about one CR; `cr status --json` prints it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CrRecord {
    pub key: CrKey,
    /// The status name; `(deleted)` once the issue is deleted.
    pub status: String,
    pub status_id: Option<String>,
    pub summary: Option<String>,
    pub issue_type: Option<String>,
    pub approvers: Vec<Approver>,
    /// The PKI signature pasted into the signature field, when it is a JSON object.
    pub signature: Option<Map<String, Value>>,
    /// Why the signature field could not be read as a signature, when it holds something else.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature_problem: Option<String>,
    /// From `Budget: N tokens` in the description.
    pub budget_tokens: Option<u64>,
    /// The Jira event time (or the issue's `updated` when read from the REST API): what orders
    /// writes of this record.
    pub updated_at: DateTime<Utc>,
    /// Who made the change.
    pub changed_by: Option<Person>,
    /// Since when the CR has had its current status (the time of the event that set it); what
    /// the approval latency metric measures from. Set when the record is stored
    /// ([`super::ChangeRequests::apply`]); `None` when unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_since: Option<DateTime<Utc>>,
    pub deleted: bool,
    /// The issue in Jira's UI.
    pub url: Option<String>,
    /// Things a reader should know (no approver information, a budget that did not parse).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// The status name a deleted CR shows.
pub const DELETED_STATUS: &str = "(deleted)";

impl CrRecord {
    /// The record of the Jira issue `issue` (webhook `issue` or REST API answer) as of `at`.
    ///
    /// # Errors
    /// A reason when the issue has no key that names a CR, or no status (and is not deleted).
    pub fn from_issue(
        issue: &Value,
        config: &CrFields,
        at: DateTime<Utc>,
        changed_by: Option<Person>,
        deleted: bool,
    ) -> Result<Self, String> {
        let key = issue
            .get("key")
            .and_then(Value::as_str)
            .ok_or("the issue has no key")
            .and_then(|k| CrKey::parse(k).map_err(|_| "the issue key is not a Jira issue key"))?;
        let empty = Value::Object(Map::new());
        let all = issue.get("fields").unwrap_or(&empty);
        let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
        let (status, status_id) = if deleted {
            (DELETED_STATUS.to_owned(), None)
        } else {
            let status = all.get("status");
            let name = text(status.and_then(|s| s.get("name")))
                .ok_or_else(|| format!("{key}: the issue has no status"))?;
            (name, text(status.and_then(|s| s.get("id"))))
        };
        let mut warnings = Vec::new();
        let approvers = fields::approvers(all, config, &mut warnings);
        let (signature, signature_problem) = fields::signature(all.get(&config.signature_field));
        let budget_tokens = fields::budget(all.get("description"), &mut warnings);
        Ok(Self {
            url: browse_url(issue, &key),
            key,
            status,
            status_id,
            summary: text(all.get("summary")),
            issue_type: text(all.get("issuetype").and_then(|t| t.get("name"))),
            approvers,
            signature,
            signature_problem,
            budget_tokens,
            updated_at: at,
            changed_by,
            status_since: None,
            deleted,
            warnings,
        })
    }
}

/// `https://site/browse/KEY`, from the issue's `self` (`https://site/rest/api/…/issue/10001`).
fn browse_url(issue: &Value, key: &CrKey) -> Option<String> {
    let own = issue.get("self").and_then(Value::as_str)?;
    let mut url = url::Url::parse(own).ok()?;
    url.set_query(None);
    url.set_path(&format!("/browse/{key}"));
    Some(url.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cr_keys() {
        assert_eq!(
            CrKey::parse(" cr-2026-0001 ").unwrap().as_str(),
            "CR-2026-0001"
        );
        assert_eq!(CrKey::parse("OPS_2-17").unwrap().project(), "OPS_2");
        for bad in [
            "",
            "CR",
            "CR-",
            "CR-x1",
            "1CR-1",
            "CR--1",
            "CR-1-",
            "C R-1",
            "CR-1;DROP",
        ] {
            assert!(CrKey::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn browse_links_come_from_the_issue_itself() {
        let issue = serde_json::json!({"self": "https://acme.atlassian.net/rest/api/2/issue/10001?x=1", "key": "CR-1"});
        let key = CrKey::parse("CR-1").unwrap();
        assert_eq!(
            browse_url(&issue, &key).as_deref(),
            Some("https://acme.atlassian.net/browse/CR-1")
        );
    }
}
