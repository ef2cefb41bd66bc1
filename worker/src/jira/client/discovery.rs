//! What the Jira site has: the user the credentials belong to, its projects, the issue types a
//! project can create and its fields (for `hookbridge jira discover` and the checks at start).

use serde_json::Value;

use super::send::Call;
use super::{JiraClient, JiraField};
use crate::jira::error::JiraError;

impl JiraClient {
    /// `GET /rest/api/3/myself`: the user the credentials belong to; what proves at start, and
    /// after an outage, that Jira takes this worker's requests.
    ///
    /// # Errors
    /// [`JiraError::Unavailable`] when Jira refuses the credentials or cannot be reached.
    pub async fn myself(&self) -> Result<Value, JiraError> {
        self.call(Call::get(
            "read the bridge's own user",
            "myself",
            &["rest", "api", "3", "myself"],
            &[],
        ))
        .await
    }

    /// Project keys and names (`GET /rest/api/3/project`).
    ///
    /// # Errors
    /// [`JiraError`], classified.
    pub async fn projects(&self) -> Result<Vec<(String, String)>, JiraError> {
        let answer = self
            .call(Call::get(
                "list projects",
                "project",
                &["rest", "api", "3", "project"],
                &[],
            ))
            .await?;
        Ok(answer
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| {
                Some((
                    p["key"].as_str()?.to_owned(),
                    p["name"].as_str().unwrap_or_default().to_owned(),
                ))
            })
            .collect())
    }

    /// The issue types a project can create (`GET /rest/api/3/issue/createmeta/{key}/issuetypes`,
    /// every page).
    ///
    /// # Errors
    /// [`JiraError`], classified (404 for an unknown project).
    pub async fn issue_types(&self, project: &str) -> Result<Vec<String>, JiraError> {
        let mut names = Vec::new();
        loop {
            let start = names.len().to_string();
            let answer = self
                .call(Call::get(
                    "list issue types",
                    "createmeta",
                    &[
                        "rest",
                        "api",
                        "3",
                        "issue",
                        "createmeta",
                        project,
                        "issuetypes",
                    ],
                    &[("startAt", start), ("maxResults", "50".to_owned())],
                ))
                .await?;
            let page: Vec<String> = answer["issueTypes"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|t| t["name"].as_str().map(str::to_owned))
                .collect();
            let total = answer["total"]
                .as_u64()
                .and_then(|t| usize::try_from(t).ok());
            let done = page.is_empty() || total.is_none_or(|t| names.len() + page.len() >= t);
            names.extend(page);
            if done {
                return Ok(names);
            }
        }
    }

    /// Every field of the site, system and custom (`GET /rest/api/3/field`).
    ///
    /// # Errors
    /// [`JiraError`], classified.
    pub async fn fields(&self) -> Result<Vec<JiraField>, JiraError> {
        let answer = self
            .call(Call::get(
                "list fields",
                "field",
                &["rest", "api", "3", "field"],
                &[],
            ))
            .await?;
        Ok(answer
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|f| {
                let text = |v: &Value| v.as_str().map(str::to_owned);
                Some(JiraField {
                    id: text(&f["id"])?,
                    name: text(&f["name"]).unwrap_or_default(),
                    custom: f["custom"].as_bool().unwrap_or(false),
                    schema_type: text(&f["schema"]["type"]),
                    items: text(&f["schema"]["items"]),
                    custom_type: text(&f["schema"]["custom"]),
                })
            })
            .collect())
    }
}
