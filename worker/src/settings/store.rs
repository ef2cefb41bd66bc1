//! Where the worker's state lives: `REDIS_URL`, or the embedded store in the data dir.

use hookbridge_shared::config::{CommonArgs, ConfigError};
use secrecy::{ExposeSecret, SecretString};

use crate::store::{EMBEDDED_FILE_NAME, Store};

/// Store flags, shared by the worker and every CLI command that reads or writes its state.
#[derive(Debug, Clone, clap::Args)]
pub struct StoreArgs {
    /// Redis for worker coordination, the CR records and the audit heads; unset: the embedded store
    /// in the data dir.
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,

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
    /// [`ConfigError`] naming `REDIS_URL` when it is not a Redis URL.
    pub fn settings(&self) -> Result<StoreSettings, ConfigError> {
        match self
            .redis_url
            .as_deref()
            .map(str::trim)
            .filter(|u| !u.is_empty())
        {
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
                "REDIS_URL",
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
