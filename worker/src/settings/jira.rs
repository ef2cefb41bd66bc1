//! The Jira connection: `JIRA_BASE_URL` and its credentials, or none (dry-run).

use std::path::PathBuf;

use hookbridge_shared::config::{
    ConfigError, env_alias, parse_http_url, parse_secret, secret_setting,
};
use secrecy::SecretString;
use url::Url;

/// Jira connection flags, shared by the worker and the CLI commands that read Jira.
#[derive(Debug, Clone, clap::Args)]
pub struct JiraArgs {
    /// Jira site, e.g. https://acme.atlassian.net (alias JIRA_URL); unset: dry-run.
    #[arg(long, env = "JIRA_BASE_URL", value_parser = parse_http_url)]
    pub jira_base_url: Option<Url>,

    /// Jira account e-mail for Basic auth (alias JIRA_USER).
    #[arg(long, env = "JIRA_EMAIL")]
    pub jira_email: Option<String>,

    /// Jira API token (alias JIRA_TOKEN). A secret type, so that `Debug` of these flags never
    /// shows it.
    #[arg(long, env = "JIRA_API_TOKEN", hide_env_values = true, value_parser = parse_secret)]
    pub jira_api_token: Option<SecretString>,

    /// A file holding JIRA_API_TOKEN (trailing newline stripped), so the token is in neither `ps`
    /// nor the environment.
    #[arg(long, env = "JIRA_API_TOKEN_FILE")]
    pub jira_api_token_file: Option<PathBuf>,

    /// Requests per second per Jira endpoint, shared by every worker on one store (it slows down
    /// further on 429s).
    #[arg(long, env = "JIRA_RATE_LIMIT", default_value_t = 20.0)]
    pub jira_rate_limit: f64,
}

/// Jira connection settings, present when not in dry-run.
#[derive(Debug, Clone)]
pub struct JiraSettings {
    pub base_url: Url,
    pub email: String,
    pub api_token: SecretString,
    pub rate_per_sec: f64,
}

fn primary_or_alias(value: Option<&String>, alias: &str) -> Option<String> {
    value
        .filter(|v| !v.trim().is_empty())
        .cloned()
        .or_else(|| env_alias(alias))
}

impl JiraArgs {
    /// The connection, or `None` when no Jira is configured.
    ///
    /// # Errors
    /// [`ConfigError`] naming the key: half a Jira configuration, a malformed URL, a rate that is
    /// not a positive number.
    pub fn settings(&self) -> Result<Option<JiraSettings>, ConfigError> {
        let base_url = match &self.jira_base_url {
            Some(url) => Some(url.clone()),
            None => env_alias("JIRA_URL")
                .map(|v| parse_http_url(&v).map_err(|e| ConfigError::new("JIRA_URL", e)))
                .transpose()?,
        };
        let Some(base_url) = base_url else {
            return Ok(None);
        };
        // Credentials go in JIRA_EMAIL and JIRA_API_TOKEN (README, "Configuration"): a URL that
        // carried them would show them wherever the site's address is printed.
        if !base_url.username().is_empty()
            || base_url.password().is_some()
            || base_url.query().is_some()
        {
            return Err(ConfigError::new(
                "JIRA_BASE_URL",
                "must be the site's address alone, without user, password or query: \
                 credentials go in JIRA_EMAIL and JIRA_API_TOKEN",
            ));
        }
        let email = primary_or_alias(self.jira_email.as_ref(), "JIRA_USER")
            .ok_or_else(|| ConfigError::new("JIRA_EMAIL", "required when JIRA_BASE_URL is set"))?;
        let token = secret_setting(
            "JIRA_API_TOKEN",
            self.jira_api_token.as_ref(),
            "JIRA_API_TOKEN_FILE",
            self.jira_api_token_file.as_deref(),
        )?
        .map(|s| s.value)
        .or_else(|| env_alias("JIRA_TOKEN").map(SecretString::from))
        .ok_or_else(|| ConfigError::new("JIRA_API_TOKEN", "required when JIRA_BASE_URL is set"))?;
        if !(self.jira_rate_limit.is_finite() && self.jira_rate_limit > 0.0) {
            return Err(ConfigError::new(
                "JIRA_RATE_LIMIT",
                "must be a positive number",
            ));
        }
        Ok(Some(JiraSettings {
            base_url,
            email,
            api_token: token,
            rate_per_sec: self.jira_rate_limit,
        }))
    }
}
