//! Ingest configuration: the flags and environment variables of the README's "Configuration", validated once.

use std::path::PathBuf;
use std::time::Duration;

use hookbridge_shared::config::{
    CommonArgs, ConfigError, IngestFilters, SecretString, env_alias, parse_secret, secret_setting,
};
use hookbridge_shared::signature::WebhookSecrets;

/// Ingest flags; each also reads the environment variable the README names.
#[derive(Debug, Clone, clap::Args)]
pub struct IngestArgs {
    /// Listen address (host:port).
    #[arg(long, env = "HOOKBRIDGE_BIND", default_value = "127.0.0.1:8080")]
    pub bind: String,

    /// GitHub webhook secret(s), comma-separated for rotation, each at least 16 bytes. Checked in
    /// [`IngestSettings::from_args`], not by clap, which would print a refused value.
    #[arg(long, env = "GITHUB_WEBHOOK_SECRET", hide_env_values = true, value_parser = parse_secret)]
    pub github_webhook_secret: Option<SecretString>,

    /// A file holding GITHUB_WEBHOOK_SECRET (trailing newline stripped), so the secret is in
    /// neither `ps` nor the environment.
    #[arg(long, env = "GITHUB_WEBHOOK_SECRET_FILE")]
    pub github_webhook_secret_file: Option<PathBuf>,

    /// Jira webhook secret(s), comma-separated for rotation, each at least 16 bytes (alias:
    /// WEBHOOK_SECRET).
    #[arg(long, env = "JIRA_WEBHOOK_SECRET", hide_env_values = true, value_parser = parse_secret)]
    pub jira_webhook_secret: Option<SecretString>,

    /// A file holding JIRA_WEBHOOK_SECRET (trailing newline stripped).
    #[arg(long, env = "JIRA_WEBHOOK_SECRET_FILE")]
    pub jira_webhook_secret_file: Option<PathBuf>,

    /// How Jira webhooks authenticate: `hmac` (X-Hub-Signature, admin webhooks with a secret), or
    /// `hmac-or-shared-secret`, which also accepts `X-Webhook-Signature: sha256=<secret>` from Jira
    /// Automation rules, which cannot sign (weaker: proves the secret, not the body).
    #[arg(long, env = "JIRA_WEBHOOK_AUTH", default_value = "hmac", value_parser = parse_jira_auth)]
    pub jira_webhook_auth: JiraWebhookAuth,

    /// Accept webhooks on routes that have no secret configured (development only).
    #[arg(long, env = "HOOKBRIDGE_ALLOW_UNSIGNED", default_value_t = false,
          action = clap::ArgAction::Set, value_parser = clap::builder::BoolishValueParser::new())]
    pub allow_unsigned: bool,

    /// PEM certificate chain: serve HTTPS (with --tls-key).
    #[arg(long, env = "HOOKBRIDGE_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key for --tls-cert.
    #[arg(long, env = "HOOKBRIDGE_TLS_KEY")]
    pub tls_key: Option<PathBuf>,

    /// With SQS: keep events in a local spool (`<data dir>/spool.db`) when SQS cannot take them,
    /// and forward them later, instead of answering 503.
    #[arg(long, env = "HOOKBRIDGE_SQS_SPOOL", default_value_t = true,
          action = clap::ArgAction::Set, value_parser = clap::builder::BoolishValueParser::new())]
    pub sqs_spool: bool,

    /// HTTP worker threads (default: one per CPU).
    #[arg(long, env = "HOOKBRIDGE_HTTP_WORKERS")]
    pub http_workers: Option<usize>,

    /// Seconds in-flight requests get to finish after SIGTERM.
    #[arg(long, env = "HOOKBRIDGE_SHUTDOWN_TIMEOUT", default_value = "30",
          value_parser = hookbridge_shared::config::parse_seconds)]
    pub shutdown_timeout: Duration,

    /// Most connections open at once; beyond it new ones wait in the kernel's backlog.
    #[arg(long, env = "HOOKBRIDGE_MAX_CONNECTIONS", default_value_t = 4096,
          value_parser = clap::value_parser!(u32).range(16..=1_000_000))]
    pub max_connections: u32,

    /// MiB the SQS spool file may grow to; beyond it, events SQS cannot take are answered 503.
    #[arg(long, env = "HOOKBRIDGE_SPOOL_MAX_MB", default_value_t = 2048,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub spool_max_mb: u32,

    /// MiB that all requests together may hold in body bytes beyond each body's first MiB.
    #[arg(long, env = "HOOKBRIDGE_BODY_BUDGET_MB", default_value_t = 256,
          value_parser = clap::value_parser!(u32).range(26..=65_536))]
    pub body_budget_mb: u32,
}

fn parse_jira_auth(value: &str) -> Result<JiraWebhookAuth, String> {
    match value.trim() {
        "hmac" => Ok(JiraWebhookAuth::Hmac),
        "hmac-or-shared-secret" => Ok(JiraWebhookAuth::HmacOrSharedSecret),
        _ => Err("expected hmac or hmac-or-shared-secret".into()),
    }
}

/// A webhook secret list from `key` (a variable or its `_FILE`), checked: refusals name the key,
/// never the value.
fn webhook_secrets(key: &str, value: &SecretString) -> Result<WebhookSecrets, ConfigError> {
    use hookbridge_shared::config::ExposeSecret;
    WebhookSecrets::parse(value.expose_secret()).map_err(|e| ConfigError::new(key, e.to_string()))
}

/// `JIRA_WEBHOOK_AUTH`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JiraWebhookAuth {
    /// `X-Hub-Signature` HMAC only.
    Hmac,
    /// HMAC, or the shared-secret header of Jira Automation.
    HmacOrSharedSecret,
}

/// How one webhook route authenticates.
#[derive(Debug, Clone)]
pub enum RouteAuth {
    /// HMAC-SHA256 with any of these secrets.
    Signed(WebhookSecrets),
    /// HMAC as [`RouteAuth::Signed`] when the signature header is present; otherwise the secret
    /// itself in `X-Webhook-Signature: sha256=<secret>` (Jira Automation's "Send web request").
    SignedOrSharedSecret(WebhookSecrets),
    /// No secret and `HOOKBRIDGE_ALLOW_UNSIGNED=true`: accept without checking.
    Unsigned,
    /// No secret: refuse every request with 401.
    Refuse,
}

/// TLS files for the listener.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Validated ingest settings.
#[derive(Debug, Clone)]
pub struct IngestSettings {
    pub bind: String,
    pub github: RouteAuth,
    pub jira: RouteAuth,
    pub tls: Option<TlsFiles>,
    pub filters: IngestFilters,
    pub http_workers: usize,
    pub shutdown_timeout: Duration,
    pub max_connections: usize,
    pub body_budget_bytes: usize,
    pub spool_max_bytes: u64,
}

impl IngestSettings {
    /// # Errors
    /// [`ConfigError`] naming the key: no secret at all (and unsigned not allowed), half a TLS
    /// configuration, an invalid config file, contradicting claim settings.
    pub fn from_args(args: &IngestArgs, common: &CommonArgs) -> Result<Self, ConfigError> {
        common.check_claim_settings()?;
        let github_secret = secret_setting(
            "GITHUB_WEBHOOK_SECRET",
            args.github_webhook_secret.as_ref(),
            "GITHUB_WEBHOOK_SECRET_FILE",
            args.github_webhook_secret_file.as_deref(),
        )?
        .map(|s| webhook_secrets(&s.key, &s.value))
        .transpose()?;
        let jira_secret = secret_setting(
            "JIRA_WEBHOOK_SECRET",
            args.jira_webhook_secret.as_ref(),
            "JIRA_WEBHOOK_SECRET_FILE",
            args.jira_webhook_secret_file.as_deref(),
        )?;
        let jira_secret = match jira_secret {
            Some(s) => Some(webhook_secrets(&s.key, &s.value)?),
            None => env_alias("WEBHOOK_SECRET")
                .map(|v| webhook_secrets("WEBHOOK_SECRET", &SecretString::from(v)))
                .transpose()?,
        };
        let auth = |secret: Option<WebhookSecrets>| match secret {
            Some(s) => RouteAuth::Signed(s),
            None if args.allow_unsigned => RouteAuth::Unsigned,
            None => RouteAuth::Refuse,
        };
        let github = auth(github_secret);
        let jira = match (auth(jira_secret), args.jira_webhook_auth) {
            (RouteAuth::Signed(secrets), JiraWebhookAuth::HmacOrSharedSecret) => {
                RouteAuth::SignedOrSharedSecret(secrets)
            }
            (jira, _) => jira,
        };
        if matches!((&github, &jira), (RouteAuth::Refuse, RouteAuth::Refuse)) {
            return Err(ConfigError::new(
                "GITHUB_WEBHOOK_SECRET",
                "no webhook secret configured: set GITHUB_WEBHOOK_SECRET and/or JIRA_WEBHOOK_SECRET \
                 (or HOOKBRIDGE_ALLOW_UNSIGNED=true for local testing)",
            ));
        }
        let tls = match (&args.tls_cert, &args.tls_key) {
            (Some(cert), Some(key)) => Some(TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
            }),
            (None, None) => None,
            (Some(_), None) => {
                return Err(ConfigError::new(
                    "HOOKBRIDGE_TLS_KEY",
                    "--tls-cert is set but --tls-key is not",
                ));
            }
            (None, Some(_)) => {
                return Err(ConfigError::new(
                    "HOOKBRIDGE_TLS_CERT",
                    "--tls-key is set but --tls-cert is not",
                ));
            }
        };
        if let Some(0) = args.http_workers {
            return Err(ConfigError::new(
                "HOOKBRIDGE_HTTP_WORKERS",
                "must be at least 1",
            ));
        }
        let filters = common.file_config()?.ingest;
        Ok(Self {
            bind: args.bind.clone(),
            github,
            jira,
            tls,
            filters,
            http_workers: args
                .http_workers
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get())),
            shutdown_timeout: args.shutdown_timeout,
            max_connections: args.max_connections as usize,
            body_budget_bytes: args.body_budget_mb as usize * 1024 * 1024,
            spool_max_bytes: u64::from(args.spool_max_mb) * 1024 * 1024,
        })
    }

    /// Warnings worth a loud log line at start.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (name, auth, var) in [
            ("GitHub", &self.github, "GITHUB_WEBHOOK_SECRET"),
            ("Jira", &self.jira, "JIRA_WEBHOOK_SECRET"),
        ] {
            match auth {
                RouteAuth::Unsigned => out.push(format!(
                    "{name} webhooks are accepted WITHOUT signature verification \
                     (HOOKBRIDGE_ALLOW_UNSIGNED=true and no {var}); never do this in production"
                )),
                RouteAuth::Refuse => out.push(format!(
                    "{var} is not set: every {name} webhook will be refused with 401"
                )),
                RouteAuth::SignedOrSharedSecret(_) => out.push(format!(
                    "{name} webhooks without an HMAC signature are accepted with the secret itself \
                     in X-Webhook-Signature (JIRA_WEBHOOK_AUTH=hmac-or-shared-secret, for Jira \
                     Automation): this proves the caller knows {var}, not that the body is what \
                     was sent; prefer an admin webhook with a secret"
                )),
                RouteAuth::Signed(_) => {}
            }
        }
        out
    }
}
