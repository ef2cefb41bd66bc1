//! Which GitHub issue a Jira issue is the twin of: the reverse key the GitHub → Jira sync writes
//! with its mapping ([`JiraTwin`]), or — for mappings made before that key existed — the remote
//! link the bridge put on the Jira issue back to the GitHub issue, confirmed by the forward
//! mapping (a link someone added by hand does not make a twin) and then stored.

use url::Url;

use super::{GithubTwin, JiraSync};
use crate::events::github::IssueIdentity;
use crate::handler::Failure;
use crate::jira::JiraError;
use crate::jira::ops::OpsError;
use crate::store::keys::{IssueMapping, JiraTwin};

/// `https://github.com/{owner}/{repo}/issues/{n}` (any host: GitHub Enterprise too) → the twin.
pub fn parse_issue_url(url: &str) -> Option<GithubTwin> {
    let url = Url::parse(url).ok()?;
    if !matches!(url.scheme(), "https" | "http") {
        return None;
    }
    let parts: Vec<&str> = url.path_segments()?.filter(|p| !p.is_empty()).collect();
    match parts.as_slice() {
        [.., owner, repo, "issues", number] => Some(GithubTwin {
            repository: format!("{owner}/{repo}"),
            number: number.parse().ok()?,
        }),
        _ => None,
    }
}

impl JiraSync {
    /// The GitHub issue `key` is the twin of, if any. `labels`, when the webhook showed them,
    /// spare Jira the remote-link read for issues without the bridge's marker label (every twin
    /// has one).
    pub(super) async fn twin(
        &self,
        key: &str,
        labels: Option<&[String]>,
    ) -> Result<Option<GithubTwin>, Failure> {
        if let Some(twin) = self.store.read(&JiraTwin(key)).await? {
            return Ok(Some(twin));
        }
        if labels.is_some_and(|l| !l.iter().any(|l| l.starts_with("ghissue-"))) {
            return Ok(None);
        }
        let Some(client) = &self.jira else {
            return Ok(None);
        };
        let links = match client.remote_links(key).await {
            Ok(links) => links,
            Err(JiraError::Rejected { status: 404, .. }) => return Ok(None),
            Err(e) => return Err(OpsError::from(e).into()),
        };
        for link in links {
            let Some(twin) = link["object"]["url"].as_str().and_then(parse_issue_url) else {
                continue;
            };
            let identity: IssueIdentity = twin.identity();
            let mapped = self.store.read(&IssueMapping(&identity)).await?;
            if mapped.is_some_and(|m| m.jira_key.eq_ignore_ascii_case(key)) {
                tracing::info!(jira = key, github = %identity, "twin found through its remote link; stored");
                self.store.write(&JiraTwin(key), &twin, None).await?;
                return Ok(Some(twin));
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue_urls_are_parsed() {
        assert_eq!(
            parse_issue_url("https://github.com/Octo/api/issues/12"),
            Some(GithubTwin {
                repository: "Octo/api".into(),
                number: 12
            })
        );
        assert!(parse_issue_url("https://ghe.example/o/r/issues/3").is_some());
        assert_eq!(parse_issue_url("https://github.com/o/r/pull/3"), None);
        assert_eq!(parse_issue_url("https://github.com/o/r/issues/x"), None);
        assert_eq!(parse_issue_url("ftp://github.com/o/r/issues/3"), None);
    }
}
