//! Configuration: environment variables, overridden by flags (clap), plus an optional TOML file
//! (`--config`) for routing rules and event filters. Everything is validated once at start; a bad
//! value stops the process with the key and the reason.
//!
//! Each binary flattens the argument groups it needs ([`CommonArgs`] for everyone); after parsing,
//! strings become types ([`QueueBackend`], [`crate::signature::WebhookSecrets`]) and the rest of the
//! code never looks at raw strings again.

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

use crate::claim::{self, BucketName, ClaimStore, S3Location};
use crate::queue::embedded::{EmbeddedOptions, EmbeddedQueue};
use crate::queue::sqs::{SqsOptions, SqsQueue};
use crate::queue::{Queue, QueueError};

/// A configuration problem, reported as `<key>: <reason>`.
#[derive(Debug, thiserror::Error)]
#[error("{key}: {reason}")]
pub struct ConfigError {
    pub key: String,
    pub reason: String,
}

impl ConfigError {
    pub fn new(key: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            reason: reason.into(),
        }
    }
}

/// Settings every process needs: where the queue is and where local state lives.
#[derive(Debug, Clone, clap::Args)]
pub struct CommonArgs {
    /// Embedded queue, embedded store, spool, claims and audit trail live here.
    #[arg(long, env = "HOOKBRIDGE_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// Use this SQS queue; unset means the embedded durable queue in the data dir.
    #[arg(long, env = "SQS_QUEUE_URL", value_parser = parse_http_url)]
    pub sqs_queue_url: Option<Url>,

    /// The dead-letter queue; default: read from the main queue's RedrivePolicy.
    #[arg(long, env = "SQS_DLQ_URL", value_parser = parse_http_url)]
    pub sqs_dlq_url: Option<Url>,

    /// Embedded queue: a message received this many times without being deleted is dead-lettered.
    #[arg(long, env = "HOOKBRIDGE_MAX_RECEIVE_COUNT", default_value_t = 5,
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub max_receive_count: u32,

    /// Where payloads too large for a queue message are kept (claim checks) when no S3 bucket is
    /// set; must be shared by ingest and workers. Default: `<data dir>/claims`.
    #[arg(long, env = "HOOKBRIDGE_CLAIM_DIR")]
    pub claim_dir: Option<PathBuf>,

    /// Keep claim checks in this S3 bucket instead of a directory, for hosts that share no disk;
    /// reached with the same AWS configuration and credentials as SQS.
    #[arg(long, env = "HOOKBRIDGE_CLAIM_S3_BUCKET", value_parser = parse_claim_bucket)]
    pub claim_s3_bucket: Option<BucketName>,

    /// Key prefix of claim checks in the bucket, prepended as it is. Default: `claims/`.
    #[arg(long, env = "HOOKBRIDGE_CLAIM_S3_PREFIX", value_parser = parse_claim_prefix)]
    pub claim_s3_prefix: Option<String>,

    /// TOML file with routing rules and event filters.
    #[arg(long = "config", env = "HOOKBRIDGE_CONFIG")]
    pub config_file: Option<PathBuf>,
}

/// Where events are queued, decided once from the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueBackend {
    Sqs {
        queue_url: Url,
        dlq_url: Option<Url>,
    },
    Embedded {
        path: PathBuf,
    },
}

/// The embedded queue's file name inside the data dir.
pub const EMBEDDED_QUEUE_FILE: &str = "queue.db";

/// Where claim checks are kept, decided once from the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimBackend {
    Dir { path: PathBuf },
    S3(S3Location),
}

fn parse_claim_bucket(value: &str) -> Result<BucketName, String> {
    BucketName::parse(value).map_err(|e| format!("HOOKBRIDGE_CLAIM_S3_BUCKET: {e}"))
}

fn parse_claim_prefix(value: &str) -> Result<String, String> {
    claim::s3::parse_prefix(value).map_err(|e| format!("HOOKBRIDGE_CLAIM_S3_PREFIX: {e}"))
}

impl CommonArgs {
    pub fn queue_backend(&self) -> QueueBackend {
        match &self.sqs_queue_url {
            Some(url) => QueueBackend::Sqs {
                queue_url: url.clone(),
                dlq_url: self.sqs_dlq_url.clone(),
            },
            None => QueueBackend::Embedded {
                path: self.data_dir.join(EMBEDDED_QUEUE_FILE),
            },
        }
    }

    /// Opens the configured queue.
    ///
    /// # Errors
    /// [`QueueError`] when the embedded database cannot be opened or SQS cannot be reached.
    pub async fn open_queue(&self) -> Result<Queue, QueueError> {
        match self.queue_backend() {
            QueueBackend::Sqs { queue_url, dlq_url } => Ok(Queue::Sqs(
                SqsQueue::connect(SqsOptions {
                    queue_url: queue_url.to_string(),
                    dlq_url: dlq_url.map(|u| u.to_string()),
                })
                .await?,
            )),
            QueueBackend::Embedded { path } => {
                let mut options = EmbeddedOptions::in_dir(&self.data_dir, EMBEDDED_QUEUE_FILE);
                options.path = path;
                options.max_receive_count = self.max_receive_count;
                Ok(Queue::Embedded(EmbeddedQueue::open(options)?))
            }
        }
    }

    pub fn claim_backend(&self) -> ClaimBackend {
        match &self.claim_s3_bucket {
            Some(bucket) => ClaimBackend::S3(S3Location {
                bucket: bucket.clone(),
                prefix: self
                    .claim_s3_prefix
                    .clone()
                    .unwrap_or_else(|| claim::s3::DEFAULT_PREFIX.to_owned()),
            }),
            None => ClaimBackend::Dir {
                path: self
                    .claim_dir
                    .clone()
                    .unwrap_or_else(|| self.data_dir.join("claims")),
            },
        }
    }

    /// The configured claim store. An S3 store connects on first use, so this needs no network.
    pub fn claim_store(&self) -> ClaimStore {
        match self.claim_backend() {
            ClaimBackend::Dir { path } => ClaimStore::new(path),
            ClaimBackend::S3(location) => ClaimStore::s3(location),
        }
    }

    /// Refuses claim settings that contradict each other, each of which would put claims where
    /// the operator did not mean them to be: a prefix without a bucket (an empty one means no
    /// prefix, and passes), a directory and a bucket.
    ///
    /// # Errors
    /// [`ConfigError`] naming the key.
    pub fn check_claim_settings(&self) -> Result<(), ConfigError> {
        if self.claim_s3_bucket.is_some() {
            if self.claim_dir.is_some() {
                return Err(ConfigError::new(
                    "HOOKBRIDGE_CLAIM_DIR",
                    "set together with HOOKBRIDGE_CLAIM_S3_BUCKET; claims are kept in one place: unset one",
                ));
            }
        } else if self
            .claim_s3_prefix
            .as_deref()
            .is_some_and(|p| !p.is_empty())
        {
            return Err(ConfigError::new(
                "HOOKBRIDGE_CLAIM_S3_PREFIX",
                "set without HOOKBRIDGE_CLAIM_S3_BUCKET: set the bucket too, or unset the prefix",
            ));
        }
        Ok(())
    }

    /// Reads the optional TOML file.
    ///
    /// # Errors
    /// [`ConfigError`] naming the file, line and reason when it cannot be read or parsed.
    pub fn file_config(&self) -> Result<FileConfig, ConfigError> {
        match &self.config_file {
            Some(path) => FileConfig::load(path),
            None => Ok(FileConfig::default()),
        }
    }
}

/// Accepts only absolute `http`/`https` URLs.
///
/// # Errors
/// A one-line reason for clap to print.
pub fn parse_http_url(value: &str) -> Result<Url, String> {
    let url = Url::parse(value).map_err(|e| format!("not a URL ({e})"))?;
    match url.scheme() {
        "http" | "https" if url.host().is_some() => Ok(url),
        "http" | "https" => Err("URL has no host".into()),
        other => Err(format!("URL scheme must be http or https, not {other}")),
    }
}

/// Parses a duration in whole seconds, for flags like `--visibility-timeout`.
///
/// # Errors
/// A one-line reason for clap to print.
pub fn parse_seconds(value: &str) -> Result<Duration, String> {
    value
        .trim()
        .parse::<u64>()
        .map(Duration::from_secs)
        .map_err(|_| format!("expected a whole number of seconds, got {value:?}"))
}

/// Reads an environment variable under an older name when the primary one was not set (the
/// aliases the README lists, such as `JIRA_URL` for `JIRA_BASE_URL`).
pub fn env_alias(alias: &str) -> Option<String> {
    std::env::var(alias).ok().filter(|v| !v.trim().is_empty())
}

/// Takes a secret value as clap gives it, never failing: a parser that failed would have clap
/// print the value in its error, so secrets are checked later, in the settings, by key alone.
///
/// # Errors
/// Never.
pub fn parse_secret(value: &str) -> Result<SecretString, std::convert::Infallible> {
    Ok(SecretString::from(value.to_owned()))
}

/// A secret setting and the key it was read from (the variable or its `_FILE`), so that an error
/// about the value can name where it came from without showing it.
#[derive(Debug, Clone)]
pub struct SecretSetting {
    pub value: SecretString,
    pub key: String,
}

/// A secret given either as the variable `key` or as the file `file_key` names (the README's
/// "Configuration": the Docker and Kubernetes secrets convention, where a file keeps the secret out
/// of `ps` and the environment). The file's trailing newlines are stripped. An empty variable
/// counts as unset.
///
/// # Errors
/// [`ConfigError`] naming both keys when both are set; naming `file_key` and the path (never the
/// content) when the file cannot be read or is empty.
pub fn secret_setting(
    key: &str,
    value: Option<&SecretString>,
    file_key: &str,
    file: Option<&Path>,
) -> Result<Option<SecretSetting>, ConfigError> {
    let value = value.filter(|v| !v.expose_secret().trim().is_empty());
    let file = file.filter(|f| !f.as_os_str().is_empty());
    match (value, file) {
        (Some(_), Some(_)) => Err(ConfigError::new(
            key,
            format!("{key} and {file_key} are both set: set one of them"),
        )),
        (Some(value), None) => Ok(Some(SecretSetting {
            value: value.clone(),
            key: key.to_owned(),
        })),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                ConfigError::new(file_key, format!("cannot read {}: {e}", path.display()))
            })?;
            let secret = text.trim_end_matches(['\n', '\r']);
            if secret.trim().is_empty() {
                return Err(ConfigError::new(
                    file_key,
                    format!("{} is empty", path.display()),
                ));
            }
            Ok(Some(SecretSetting {
                value: SecretString::from(secret.to_owned()),
                key: file_key.to_owned(),
            }))
        }
        (None, None) => Ok(None),
    }
}

/// Query parameters whose values are credentials when a URL carries them (`?password=`, `?pass=`,
/// `?token=`, …).
fn is_credential_parameter(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    [
        "pass", "pwd", "secret", "token", "auth", "key", "cred", "sig",
    ]
    .iter()
    .any(|part| name.contains(part))
}

/// `url` as it may be shown in a log line or an error: the userinfo (user and password) and the
/// value of every query parameter that may hold a credential replaced by `***`. A string that is
/// not a URL is not shown at all.
pub fn redact_url(url: &str) -> String {
    let Ok(mut parsed) = Url::parse(url.trim()) else {
        return "<malformed URL>".to_owned();
    };
    if !parsed.username().is_empty() {
        let _ = parsed.set_username("***");
    }
    if parsed.password().is_some() {
        let _ = parsed.set_password(Some("***"));
    }
    if parsed.query().is_some() {
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(k, v)| {
                let v = if is_credential_parameter(&k) {
                    "***".to_owned()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    if parsed.fragment().is_some() {
        parsed.set_fragment(Some("***"));
    }
    parsed.to_string()
}

/// The optional TOML file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    #[serde(default)]
    pub ingest: IngestFilters,
    /// Routing rules for GitHub → Jira (see [`crate::routing`]).
    #[serde(default)]
    pub routes: Vec<crate::routing::RouteRule>,
    /// How Change Requests are read from Jira.
    #[serde(default)]
    pub change_requests: ChangeRequestsFile,
    /// The keys trusted for CR approval signatures.
    #[serde(default)]
    pub pki: PkiFile,
    /// Which GitHub deployments the deployment protection rule gates (see
    /// [`crate::deployment_gates`]).
    #[serde(default)]
    pub deployment_gates: Vec<crate::deployment_gates::DeploymentGate>,
    /// `[users]`: GitHub login → Jira accountId, for the routes with `sync_assignee = true`.
    #[serde(default)]
    pub users: std::collections::BTreeMap<String, String>,
}

/// The `[pki]` table: public keys and certificates trusted for CR approval signatures, beside
/// (or instead of) `HOOKBRIDGE_PKI_TRUSTED_DIR`. Relative paths are relative to the file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PkiFile {
    /// A directory of `*.pub` / `*.crt` / `*.pem` files.
    #[serde(default)]
    pub trusted_dir: Option<PathBuf>,
    /// Single key or certificate files.
    #[serde(default)]
    pub trusted_keys: Vec<PathBuf>,
}

impl PkiFile {
    /// Whether the table names any trusted key.
    pub fn is_empty(&self) -> bool {
        self.trusted_dir.is_none() && self.trusted_keys.is_empty()
    }
}

/// The `[change_requests]` table: what the environment cannot say in one variable.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeRequestsFile {
    /// One user-picker field per approver role: everyone in `field` approves as `role`.
    #[serde(default)]
    pub approver_roles: Vec<ApproverRoleField>,
}

/// One `[[change_requests.approver_roles]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApproverRoleField {
    /// The role its users approve as, e.g. `Change Manager`.
    pub role: String,
    /// The Jira field id, e.g. `customfield_10201` (`hookbridge jira fields` lists them).
    pub field: String,
}

/// Which events the ingest enqueues; the others are answered `200 {"status":"ignored"}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestFilters {
    /// GitHub `X-GitHub-Event` values to enqueue; `"*"` takes all.
    #[serde(default = "default_github_events")]
    pub github_events: Vec<String>,
    /// Jira `webhookEvent` values to enqueue; `"*"` takes all.
    #[serde(default = "default_jira_events")]
    pub jira_events: Vec<String>,
}

fn default_github_events() -> Vec<String> {
    vec![
        "issues".into(),
        "issue_comment".into(),
        "deployment_protection_rule".into(),
        "pull_request".into(),
        "push".into(),
    ]
}

fn default_jira_events() -> Vec<String> {
    vec!["*".into()]
}

impl Default for IngestFilters {
    fn default() -> Self {
        Self {
            github_events: default_github_events(),
            jira_events: default_jira_events(),
        }
    }
}

impl IngestFilters {
    pub fn wants_github(&self, event: &str) -> bool {
        self.github_events.iter().any(|e| e == "*" || e == event)
    }

    pub fn wants_jira(&self, event: &str) -> bool {
        self.jira_events.iter().any(|e| e == "*" || e == event)
    }
}

impl FileConfig {
    /// # Errors
    /// [`ConfigError`] with the file name as key and `line N: reason` when invalid.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let key = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::new(&key, format!("cannot read: {e}")))?;
        let mut config = Self::parse(&text).map_err(|reason| ConfigError::new(key, reason))?;
        config.resolve_paths(path);
        Ok(config)
    }

    /// Makes the paths in the configuration read from `file` relative to that file's directory:
    /// they mean what they say next to the file, wherever the process runs.
    pub fn resolve_paths(&mut self, file: &Path) {
        let Some(base) = file.parent() else {
            return;
        };
        let pki = &mut self.pki;
        pki.trusted_dir = pki.trusted_dir.take().map(|dir| base.join(dir));
        for key in &mut pki.trusted_keys {
            *key = base.join(&*key);
        }
    }

    /// # Errors
    /// `line N, column M: reason` when the text is not a valid configuration.
    pub fn parse(text: &str) -> Result<Self, String> {
        let config: Self = toml::from_str(text).map_err(|e| describe_toml_error(text, &e))?;
        // An empty login or accountId would only fail later, in Jira, one event at a time.
        for (login, account) in &config.users {
            if login.trim().is_empty() || account.trim().is_empty() {
                return Err(format!(
                    "[users]: {login:?} = {account:?}: a GitHub login maps to a Jira accountId, neither may be empty"
                ));
            }
        }
        Ok(config)
    }
}

/// Turns a TOML error into one line: `line N, column M: message`.
pub fn describe_toml_error(text: &str, error: &toml::de::Error) -> String {
    let message = error.message().trim().replace('\n', " ");
    match error.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            format!("line {line}, column {column}: {message}")
        }
        None => message,
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn an_empty_user_mapping_is_refused() {
        let e = FileConfig::parse("[users]\noctocat = \"\"\n").unwrap_err();
        assert!(e.contains("[users]") && e.contains("octocat"), "{e}");
        let ok = FileConfig::parse("[users]\noctocat = \"5b10ac8d82e05b22cc7d4ef5\"\n").unwrap();
        assert_eq!(ok.users.len(), 1);
    }

    use super::*;

    #[test]
    fn url_validation() {
        assert!(parse_http_url("http://127.0.0.1:9324/000/q").is_ok());
        assert!(parse_http_url("ftp://x").unwrap_err().contains("scheme"));
        assert!(
            parse_http_url("not a url")
                .unwrap_err()
                .contains("not a URL")
        );
    }

    #[test]
    fn file_errors_name_the_line() {
        let err =
            FileConfig::parse("[ingest]\ngithub_events = [\"issues\"]\nbogus = 1\n").unwrap_err();
        assert!(err.starts_with("line 3"), "{err}");
        let ok = FileConfig::parse("[ingest]\ngithub_events = [\"*\"]\n").unwrap();
        assert!(ok.ingest.wants_github("push"));
        assert!(FileConfig::default().ingest.wants_github("issues"));
        assert!(FileConfig::default().ingest.wants_github("push"));
        assert!(!FileConfig::default().ingest.wants_github("star"));
    }

    #[test]
    fn displayed_urls_hide_userinfo_and_query_passwords() {
        for url in [
            "redis://user:s3cretvalue@cache:6379/0",
            "redis://:s3cretvalue@cache:6379/0",
            "redis://s3cretvalue@cache:6379/0",
            "redis://cache:6379/?pass=s3cretvalue",
            "redis://cache:6379/?protocol=resp3&password=s3cretvalue",
            "rediss://cache:6379/0?db=1&PASSWORD=s3cretvalue",
        ] {
            let shown = redact_url(url);
            assert!(!shown.contains("s3cretvalue"), "{url} shown as {shown}");
            assert!(shown.contains("cache:6379"), "{shown}");
        }
        assert!(redact_url("redis://cache/?protocol=resp3").contains("protocol=resp3"));
        assert_eq!(redact_url("not a url"), "<malformed URL>");
    }

    #[test]
    fn a_secret_comes_from_the_variable_or_its_file_not_both() {
        let dir = std::env::temp_dir().join(format!("hookbridge-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("secret");
        std::fs::write(&file, "from-the-file-0123456789\n").expect("write");
        let value = SecretString::from("from-the-variable".to_owned());
        let read = secret_setting("K", None, "K_FILE", Some(&file))
            .expect("read")
            .expect("set");
        assert_eq!(read.value.expose_secret(), "from-the-file-0123456789");
        assert_eq!(read.key, "K_FILE");
        let both = secret_setting("K", Some(&value), "K_FILE", Some(&file)).unwrap_err();
        assert!(both.to_string().contains("K_FILE"), "{both}");
        let missing = dir.join("missing");
        let err = secret_setting("K", None, "K_FILE", Some(&missing)).unwrap_err();
        assert_eq!(err.key, "K_FILE");
        assert!(err.reason.contains("missing"), "{err}");
        assert!(
            secret_setting("K", None, "K_FILE", None)
                .expect("unset")
                .is_none()
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
