//! The Jira → GitHub sync's settings: a GitHub token (`GITHUB_TOKEN` or `GITHUB_TOKEN_FILE`), or
//! the GitHub App of the deployment rule (`GITHUB_APP_ID`, `GITHUB_APP_PRIVATE_KEY_FILE`). A route
//! with `sync_from_jira` and neither is refused at start (README, "Jira → GitHub").

use std::path::PathBuf;

use hookbridge_shared::config::{ConfigError, parse_secret};
use hookbridge_shared::routing::Routing;
use secrecy::{ExposeSecret, SecretString};

/// Flags and environment of the Jira → GitHub sync.
#[derive(Debug, Clone, clap::Args)]
pub struct JiraSyncArgs {
    /// A GitHub token allowed to write the synced repositories' issues (Issues: read and
    /// write), for routes with `sync_from_jira`. A secret: by environment or file only.
    #[arg(long = "jira-sync-github-token", env = "GITHUB_TOKEN", hide = true,
          hide_env_values = true, value_parser = parse_secret)]
    pub jira_sync_github_token: Option<SecretString>,
    /// A file holding GITHUB_TOKEN (trailing newline stripped).
    #[arg(
        long = "jira-sync-github-token-file",
        env = "GITHUB_TOKEN_FILE",
        hide = true
    )]
    pub jira_sync_github_token_file: Option<PathBuf>,
}

/// Validated settings of the Jira → GitHub sync.
#[derive(Debug, Clone, Default)]
pub struct JiraSyncSettings {
    /// `GITHUB_TOKEN`, when set (it wins over the App).
    pub token: Option<SecretString>,
    /// Some route has `sync_from_jira`.
    pub enabled: bool,
}

impl JiraSyncArgs {
    /// # Errors
    /// [`ConfigError`] naming the key: an unreadable or empty token file, or a route with
    /// `sync_from_jira` while neither a token nor the GitHub App is configured.
    pub fn settings(
        &self,
        routing: &Routing,
        app_configured: bool,
    ) -> Result<JiraSyncSettings, ConfigError> {
        let token = match (
            &self.jira_sync_github_token,
            &self.jira_sync_github_token_file,
        ) {
            (Some(token), _) if !token.expose_secret().trim().is_empty() => Some(token.clone()),
            (_, Some(path)) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    ConfigError::new("GITHUB_TOKEN_FILE", format!("{}: {e}", path.display()))
                })?;
                let text = text.trim_end_matches(['\n', '\r']);
                if text.trim().is_empty() {
                    return Err(ConfigError::new(
                        "GITHUB_TOKEN_FILE",
                        format!("{} is empty", path.display()),
                    ));
                }
                Some(SecretString::from(text.to_owned()))
            }
            _ => None,
        };
        let first = routing
            .rules
            .iter()
            .enumerate()
            .find(|(_, r)| r.sync_from_jira && !r.ignore);
        if let Some((i, rule)) = first
            && token.is_none()
            && !app_configured
        {
            return Err(ConfigError::new(
                "GITHUB_TOKEN",
                format!(
                    "is not set, nor GITHUB_APP_ID: routes[{i}] ({}) has sync_from_jira, which \
                     closes, reopens and comments on GitHub issues",
                    rule.name.as_deref().unwrap_or("unnamed")
                ),
            ));
        }
        Ok(JiraSyncSettings {
            token,
            enabled: first.is_some(),
        })
    }
}

#[cfg(test)]
mod tests {
    use hookbridge_shared::config::FileConfig;

    use super::*;

    fn routing(toml: &str) -> Routing {
        Routing {
            rules: FileConfig::parse(toml).expect("routes").routes,
            default_project: None,
            default_issue_type: "Task".into(),
        }
    }

    fn args(token: Option<&str>) -> JiraSyncArgs {
        JiraSyncArgs {
            jira_sync_github_token: token.map(|t| SecretString::from(t.to_owned())),
            jira_sync_github_token_file: None,
        }
    }

    #[test]
    fn sync_from_jira_without_github_credentials_is_refused() {
        let synced =
            routing("[[routes]]\nname = \"api\"\nproject = \"API\"\nsync_from_jira = true\n");
        let err = args(None).settings(&synced, false).unwrap_err().to_string();
        assert!(err.contains("GITHUB_TOKEN"), "{err}");
        assert!(err.contains("routes[0] (api)"), "{err}");
        assert!(
            args(Some("ghp_x"))
                .settings(&synced, false)
                .unwrap()
                .enabled
        );
        assert!(args(None).settings(&synced, true).unwrap().enabled);
        let plain = routing("[[routes]]\nproject = \"API\"\n");
        let off = args(None).settings(&plain, false).unwrap();
        assert!(!off.enabled && off.token.is_none());
    }
}
