//! Where the worker's state lives: `REDIS_URL`, or the embedded store in the data dir.

use std::path::PathBuf;

use hookbridge_shared::config::{CommonArgs, ConfigError, parse_secret, secret_setting};
use secrecy::{ExposeSecret, SecretString};

use crate::store::{EMBEDDED_FILE_NAME, Store};

/// Store flags, shared by the worker and every CLI command that reads or writes its state.
#[derive(Debug, Clone, clap::Args)]
pub struct StoreArgs {
    /// Redis for worker coordination, the CR records and the audit heads; unset: the embedded store
    /// in the data dir.
    /// A secret type: the URL may carry a password (in its userinfo or as `?password=`).
    #[arg(long, env = "REDIS_URL", hide_env_values = true, value_parser = parse_secret)]
    pub redis_url: Option<SecretString>,

    /// A file holding REDIS_URL (trailing newline stripped), so its password is in neither `ps`
    /// nor the environment.
    #[arg(long, env = "REDIS_URL_FILE")]
    pub redis_url_file: Option<PathBuf>,

    /// Prefix of every Redis key this deployment writes, so one Redis can serve several.
    #[arg(long, env = "HOOKBRIDGE_REDIS_PREFIX", default_value = "hookbridge:")]
    pub redis_prefix: String,
}

/// Which store, validated.
#[derive(Debug, Clone)]
pub enum StoreSettings {
    /// The URL may carry a password: kept secret, never printed.
    Redis {
        url: SecretString,
        prefix: String,
    },
    Embedded,
}

impl StoreArgs {
    /// # Errors
    /// [`ConfigError`] naming `REDIS_URL` (or `REDIS_URL_FILE`) when it is not a Redis URL, when
    /// both are set, or when the file cannot be read; never showing the URL.
    pub fn settings(&self) -> Result<StoreSettings, ConfigError> {
        let setting = secret_setting(
            "REDIS_URL",
            self.redis_url.as_ref(),
            "REDIS_URL_FILE",
            self.redis_url_file.as_deref(),
        )?;
        let key = setting.as_ref().map_or("REDIS_URL", |s| s.key.as_str());
        match setting.as_ref().map(|s| s.value.expose_secret().trim()) {
            None => Ok(StoreSettings::Embedded),
            Some(url)
                if url.starts_with("redis://")
                    || url.starts_with("rediss://")
                    || url.starts_with("unix://") =>
            {
                Ok(StoreSettings::Redis {
                    url: SecretString::from(url.to_owned()),
                    prefix: self.redis_prefix.clone(),
                })
            }
            Some(_) => Err(ConfigError::new(
                key,
                "must start with redis://, rediss:// or unix://",
            )),
        }
    }
}

impl StoreSettings {
    /// Connects to Redis, or opens `<data dir>/store.db`.
    ///
    /// # Errors
    /// A one-line reason naming the store that could not be opened (the password never shown).
    pub async fn open(&self, common: &CommonArgs) -> Result<Store, String> {
        match self {
            StoreSettings::Redis { url, prefix } => {
                Store::connect_redis(url.expose_secret(), prefix)
                    .await
                    .map_err(|e| format!("REDIS_URL: {e}"))
            }
            StoreSettings::Embedded => {
                let path = common.data_dir.join(EMBEDDED_FILE_NAME);
                Store::open_embedded(&path).map_err(|e| format!("embedded store: {e}"))
            }
        }
    }
}
