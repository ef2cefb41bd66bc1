//! Worker flags and environment (INTERFACE.md), validated once into the pieces the pipeline needs.

use std::path::PathBuf;
use std::time::Duration;

use hookbridge_shared::config::{
    CommonArgs, ConfigError, env_alias, parse_http_url, parse_seconds,
};
use hookbridge_shared::routing::{JiraProjectKey, Routing};
use secrecy::SecretString;
use url::Url;

/// Worker flags; each also reads the environment variable named in INTERFACE.md.
#[derive(Debug, Clone, clap::Args)]
pub struct WorkerArgs {
    /// Messages this process handles at once.
    #[arg(long, env = "WORKER_CONCURRENCY", default_value_t = 32,
          value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub worker_concurrency: u32,

    /// Seconds a received message stays invisible to other workers (extended while in work).
    #[arg(long, env = "HOOKBRIDGE_VISIBILITY_TIMEOUT", default_value = "60", value_parser = parse_seconds)]
    pub visibility_timeout: Duration,

    /// Seconds in-flight messages get to finish after SIGTERM before they are released.
    #[arg(long, env = "HOOKBRIDGE_DRAIN_TIMEOUT", default_value = "30", value_parser = parse_seconds)]
    pub drain_timeout: Duration,

    /// Redis for worker coordination and the CR cache; unset: the embedded store in the data dir.
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,

    /// Prefix of every Redis key this deployment writes, so one Redis can serve several.
    #[arg(long, env = "HOOKBRIDGE_REDIS_PREFIX", default_value = "hookbridge:")]
    pub redis_prefix: String,

    /// Jira site, e.g. https://acme.atlassian.net (alias JIRA_URL); unset: dry-run.
    #[arg(long, env = "JIRA_BASE_URL", value_parser = parse_http_url)]
    pub jira_base_url: Option<Url>,

    /// Jira account e-mail for Basic auth (alias JIRA_USER).
    #[arg(long, env = "JIRA_EMAIL")]
    pub jira_email: Option<String>,

    /// Jira API token (alias JIRA_TOKEN).
    #[arg(long, env = "JIRA_API_TOKEN", hide_env_values = true)]
    pub jira_api_token: Option<String>,

    /// Default Jira project for GitHub issues.
    #[arg(long, env = "JIRA_PROJECT_KEY")]
    pub jira_project_key: Option<String>,

    /// Default Jira issue type for GitHub issues.
    #[arg(long, env = "JIRA_ISSUE_TYPE", default_value = "Task")]
    pub jira_issue_type: String,

    /// Requests per second this process sends to Jira at most (it slows down further on 429s).
    #[arg(long, env = "JIRA_RATE_LIMIT", default_value_t = 20.0)]
    pub jira_rate_limit: f64,

    /// Seconds Jira search may lag behind a create (crash recovery waits this long before
    /// searching for an issue an interrupted attempt may have created).
    #[arg(long, env = "HOOKBRIDGE_JIRA_SEARCH_LAG", default_value = "30", value_parser = parse_seconds)]
    pub jira_search_lag: Duration,

    /// Seconds a per-issue lock outlives a worker that died holding it (live workers extend it
    /// every third of this).
    #[arg(long, env = "HOOKBRIDGE_LOCK_TTL", default_value = "15", value_parser = parse_seconds)]
    pub lock_ttl: Duration,

    /// GitHub logins of the bridge itself, comma-separated: their events are ignored (no loops).
    #[arg(long, env = "GITHUB_BOT_LOGIN", value_delimiter = ',')]
    pub github_bot_login: Vec<String>,

    /// Audit trail directory (default: <data dir>/audit).
    #[arg(long, env = "HOOKBRIDGE_AUDIT_DIR")]
    pub audit_dir: Option<PathBuf>,
}

/// Jira connection settings, present when not in dry-run.
#[derive(Debug, Clone)]
pub struct JiraSettings {
    pub base_url: Url,
    pub email: String,
    pub api_token: SecretString,
    pub rate_per_sec: f64,
}

/// Validated worker settings.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    pub jira: Option<JiraSettings>,
    pub redis_url: Option<String>,
    pub redis_prefix: String,
    pub routing: Routing,
    pub audit_dir: PathBuf,
    pub search_lag: Duration,
    pub lock_ttl: Duration,
    pub ignore_logins: Vec<String>,
}

fn primary_or_alias(value: &Option<String>, alias: &str) -> Option<String> {
    value
        .clone()
        .filter(|v| !v.trim().is_empty())
        .or_else(|| env_alias(alias))
}

impl WorkerSettings {
    /// # Errors
    /// [`ConfigError`] naming the key: half a Jira configuration, a malformed URL or project key,
    /// invalid routing rules.
    pub fn from_args(args: &WorkerArgs, common: &CommonArgs) -> Result<Self, ConfigError> {
        let base_url = match &args.jira_base_url {
            Some(url) => Some(url.clone()),
            None => env_alias("JIRA_URL")
                .map(|v| parse_http_url(&v).map_err(|e| ConfigError::new("JIRA_URL", e)))
                .transpose()?,
        };
        let jira = match base_url {
            None => None,
            Some(base_url) => {
                let email = primary_or_alias(&args.jira_email, "JIRA_USER").ok_or_else(|| {
                    ConfigError::new("JIRA_EMAIL", "required when JIRA_BASE_URL is set")
                })?;
                let token =
                    primary_or_alias(&args.jira_api_token, "JIRA_TOKEN").ok_or_else(|| {
                        ConfigError::new("JIRA_API_TOKEN", "required when JIRA_BASE_URL is set")
                    })?;
                if !(args.jira_rate_limit.is_finite() && args.jira_rate_limit > 0.0) {
                    return Err(ConfigError::new(
                        "JIRA_RATE_LIMIT",
                        "must be a positive number",
                    ));
                }
                Some(JiraSettings {
                    base_url,
                    email,
                    api_token: SecretString::from(token),
                    rate_per_sec: args.jira_rate_limit,
                })
            }
        };
        let default_project = args
            .jira_project_key
            .as_deref()
            .filter(|v| !v.trim().is_empty())
            .map(JiraProjectKey::parse)
            .transpose()
            .map_err(|e| ConfigError::new("JIRA_PROJECT_KEY", e))?;
        let file = common.file_config()?;
        let routing = Routing {
            rules: file.routes,
            default_project,
            default_issue_type: args.jira_issue_type.trim().to_owned(),
        };
        let config_key = common
            .config_file
            .as_ref()
            .map_or("JIRA_ISSUE_TYPE".to_owned(), |p| p.display().to_string());
        routing
            .validate()
            .map_err(|e| ConfigError::new(config_key, e))?;
        if let Some(url) = &args.redis_url
            && !(url.starts_with("redis://")
                || url.starts_with("rediss://")
                || url.starts_with("unix://"))
        {
            return Err(ConfigError::new(
                "REDIS_URL",
                "must start with redis://, rediss:// or unix://",
            ));
        }
        Ok(Self {
            jira,
            redis_url: args.redis_url.clone(),
            redis_prefix: args.redis_prefix.clone(),
            routing,
            audit_dir: args
                .audit_dir
                .clone()
                .unwrap_or_else(|| common.data_dir.join("audit")),
            search_lag: args.jira_search_lag,
            lock_ttl: args.lock_ttl.max(Duration::from_secs(1)),
            ignore_logins: args
                .github_bot_login
                .iter()
                .map(|l| l.trim().to_owned())
                .filter(|l| !l.is_empty())
                .collect(),
        })
    }
}
