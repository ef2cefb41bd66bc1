//! The deployment protection rule's settings: the GitHub App (`GITHUB_APP_ID`,
//! `GITHUB_APP_PRIVATE_KEY_FILE`, `GITHUB_API_URL`), the `[[deployment_gates]]` tables, and the
//! gate's PKI enforcement (`ENFORCE_PKI_VALIDATION`, `HOOKBRIDGE_PKI_TRUSTED_DIR`), which is the
//! same as `hookbridge gate`'s so that both decide alike (README, "Gating deployments without a
//! CI step").

use std::path::PathBuf;
use std::time::Duration;

use hookbridge_shared::config::{ConfigError, FileConfig, parse_http_url, parse_seconds};
use hookbridge_shared::deployment_gates::DeploymentGate;
use secrecy::{ExposeSecret, SecretString};
use url::Url;

use crate::github_app::AppCredentials;
use crate::pki::trust::TrustedKeys;

/// Flags and environment of the deployment protection rule.
#[derive(Debug, Clone, clap::Args)]
pub struct DeploymentRuleArgs {
    /// The GitHub App's id (its settings page, "App ID").
    #[arg(long, env = "GITHUB_APP_ID")]
    pub github_app_id: Option<u64>,
    /// The App's private key, as GitHub lets you download it (PEM).
    #[arg(long, env = "GITHUB_APP_PRIVATE_KEY_FILE")]
    pub github_app_private_key_file: Option<PathBuf>,
    /// GitHub's REST API (GitHub Enterprise Server: https://HOST/api/v3/).
    #[arg(long, env = "GITHUB_API_URL", default_value = "https://api.github.com/",
          value_parser = parse_http_url)]
    pub github_api_url: Url,
    /// Require a valid PKI signature by a trusted key on the CR, as `hookbridge gate` does.
    #[arg(long, env = "ENFORCE_PKI_VALIDATION", default_value_t = false,
          action = clap::ArgAction::Set, value_parser = clap::builder::BoolishValueParser::new())]
    pub enforce_pki_validation: bool,
    /// Trusted public keys / certificates for CR signatures, beside the config file's [pki].
    #[arg(long, env = "HOOKBRIDGE_PKI_TRUSTED_DIR")]
    pub pki_trusted_dir: Option<PathBuf>,
    /// Seconds between re-checks of the deployments waiting on CRs (their CRs read from Jira when
    /// JIRA_BASE_URL is set): the safety net for a lost Jira webhook; 0 turns it off.
    #[arg(long, env = "HOOKBRIDGE_DEPLOYMENT_RECHECK", default_value = "300",
          value_parser = parse_seconds)]
    pub deployment_recheck: Duration,
}

/// The App's id and private key, checked to be a key the App can sign with.
#[derive(Debug, Clone)]
pub struct AppKey {
    pub id: u64,
    pub pem: SecretString,
}

impl AppKey {
    /// The credentials to sign the App's JWTs with.
    ///
    /// # Errors
    /// A reason when the key is not one (checked at start already).
    pub fn credentials(&self) -> Result<AppCredentials, String> {
        AppCredentials::from_pem(self.id, self.pem.expose_secret())
    }
}

/// Validated settings of the deployment protection rule.
#[derive(Debug, Clone)]
pub struct DeploymentRuleSettings {
    /// `None` without `GITHUB_APP_ID`: deployment events cannot be answered.
    pub app: Option<AppKey>,
    pub api: Url,
    pub gates: Vec<DeploymentGate>,
    /// `Some` with `ENFORCE_PKI_VALIDATION=true`.
    pub pki: Option<TrustedKeys>,
    /// `None`: no re-check.
    pub recheck: Option<Duration>,
}

impl DeploymentRuleArgs {
    /// # Errors
    /// [`ConfigError`] naming the key: an App id without its key (or the reverse), a key file
    /// that cannot be read or is not an RSA private key, PKI enforced with no trusted key.
    pub fn settings(&self, file: &FileConfig) -> Result<DeploymentRuleSettings, ConfigError> {
        let app = match (&self.github_app_id, &self.github_app_private_key_file) {
            (None, None) => None,
            (Some(_), None) => {
                return Err(ConfigError::new(
                    "GITHUB_APP_PRIVATE_KEY_FILE",
                    "is not set, but GITHUB_APP_ID is: the App's private key is needed to sign its JWTs",
                ));
            }
            (None, Some(_)) => {
                return Err(ConfigError::new(
                    "GITHUB_APP_ID",
                    "is not set, but GITHUB_APP_PRIVATE_KEY_FILE is",
                ));
            }
            (Some(id), Some(path)) => {
                let pem = std::fs::read_to_string(path).map_err(|e| {
                    ConfigError::new(
                        "GITHUB_APP_PRIVATE_KEY_FILE",
                        format!("{}: {e}", path.display()),
                    )
                })?;
                let key = AppKey {
                    id: *id,
                    pem: SecretString::from(pem),
                };
                key.credentials().map_err(|e| {
                    ConfigError::new(
                        "GITHUB_APP_PRIVATE_KEY_FILE",
                        format!("{}: {e}", path.display()),
                    )
                })?;
                Some(key)
            }
        };
        let pki = if self.enforce_pki_validation {
            let trusted = TrustedKeys::load(self.pki_trusted_dir.as_deref(), &file.pki)
                .map_err(|e| ConfigError::new("HOOKBRIDGE_PKI_TRUSTED_DIR", e.to_string()))?;
            Some(trusted.ok_or_else(|| {
                ConfigError::new(
                    "ENFORCE_PKI_VALIDATION",
                    "is on but no key is trusted: set HOOKBRIDGE_PKI_TRUSTED_DIR or the config file's [pki] table",
                )
            })?)
        } else {
            None
        };
        Ok(DeploymentRuleSettings {
            app,
            api: self.github_api_url.clone(),
            gates: file.deployment_gates.clone(),
            pki,
            recheck: Some(self.deployment_recheck).filter(|d| !d.is_zero()),
        })
    }
}
