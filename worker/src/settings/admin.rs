//! `HOOKBRIDGE_ADMIN_BIND`, `HOOKBRIDGE_ADMIN_TOKEN` (or `_FILE`): the operator's page (README,
//! "The operator's page"). Off unless set (`hookbridge run`: on at `127.0.0.1:9091`). A listener
//! that is not on a loopback address must have a token, and a token must be long enough not to be
//! guessed: both are refused at start otherwise, naming the key.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

use hookbridge_shared::config::{ConfigError, parse_secret, secret_setting};
use secrecy::{ExposeSecret, SecretString};

/// Where `hookbridge run` serves the page when `HOOKBRIDGE_ADMIN_BIND` is not set.
pub const RUN_DEFAULT_BIND: &str = "127.0.0.1:9091";

/// Fewest characters of an admin token.
pub const MIN_TOKEN_LEN: usize = 16;

/// The operator's page flags.
#[derive(Debug, Clone, clap::Args)]
pub struct AdminArgs {
    /// `host:port` of the operator's page (off unless set; `hookbridge run`: 127.0.0.1:9091,
    /// `off` turns it off). Never the webhook listener.
    #[arg(long, env = "HOOKBRIDGE_ADMIN_BIND")]
    pub admin_bind: Option<String>,

    /// Token the page asks for (required when the page listens beyond localhost; when set, asked
    /// of every caller).
    #[arg(long, env = "HOOKBRIDGE_ADMIN_TOKEN", hide_env_values = true, value_parser = parse_secret)]
    pub admin_token: Option<SecretString>,

    /// A file holding HOOKBRIDGE_ADMIN_TOKEN (trailing newline stripped).
    #[arg(long, env = "HOOKBRIDGE_ADMIN_TOKEN_FILE")]
    pub admin_token_file: Option<PathBuf>,
}

/// Validated: where the page listens and the token it asks for.
#[derive(Debug, Clone)]
pub struct AdminSettings {
    pub bind: String,
    pub token: Option<SecretString>,
}

impl AdminArgs {
    /// The page's settings; `None` when it is off. `default_bind` is where it listens when
    /// `HOOKBRIDGE_ADMIN_BIND` is unset (`None`: off).
    ///
    /// # Errors
    /// [`ConfigError`] naming the key: an address that is not `host:port`, a listener beyond
    /// localhost without a token, a token shorter than [`MIN_TOKEN_LEN`], both token keys set.
    pub fn settings(
        &self,
        default_bind: Option<&str>,
    ) -> Result<Option<AdminSettings>, ConfigError> {
        let bind = match self.admin_bind.as_deref().map(str::trim) {
            Some("off") => return Ok(None),
            Some(bind) if !bind.is_empty() => bind.to_owned(),
            _ => match default_bind {
                Some(bind) => bind.to_owned(),
                None => return Ok(None),
            },
        };
        let addresses =
            listen_addresses(&bind).map_err(|e| ConfigError::new("HOOKBRIDGE_ADMIN_BIND", e))?;
        let token = secret_setting(
            "HOOKBRIDGE_ADMIN_TOKEN",
            self.admin_token.as_ref(),
            "HOOKBRIDGE_ADMIN_TOKEN_FILE",
            self.admin_token_file.as_deref(),
        )?;
        if let Some(token) = &token
            && token.value.expose_secret().chars().count() < MIN_TOKEN_LEN
        {
            return Err(ConfigError::new(
                &token.key,
                format!("must be at least {MIN_TOKEN_LEN} characters"),
            ));
        }
        if token.is_none() && !addresses.iter().all(|a| a.ip().is_loopback()) {
            return Err(ConfigError::new(
                "HOOKBRIDGE_ADMIN_TOKEN",
                format!(
                    "the operator's page would listen on {bind}, beyond localhost, without a token: \
                     set HOOKBRIDGE_ADMIN_TOKEN (or _FILE), or bind 127.0.0.1"
                ),
            ));
        }
        Ok(Some(AdminSettings {
            bind,
            token: token.map(|t| t.value),
        }))
    }
}

/// The addresses `bind` (`host:port`) resolves to.
fn listen_addresses(bind: &str) -> Result<Vec<SocketAddr>, String> {
    let well_formed = matches!(bind.rsplit_once(':'),
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok());
    if !well_formed {
        return Err(format!("{bind:?} is not host:port (e.g. 127.0.0.1:9091)"));
    }
    let addresses: Vec<SocketAddr> = bind
        .to_socket_addrs()
        .map_err(|e| format!("{bind:?} cannot be resolved: {e}"))?
        .collect();
    if addresses.is_empty() {
        return Err(format!("{bind:?} resolves to no address"));
    }
    Ok(addresses)
}

/// Whether `ip` is this machine's loopback (IPv4-mapped IPv6 included).
pub fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(bind: Option<&str>, token: Option<&str>) -> AdminArgs {
        AdminArgs {
            admin_bind: bind.map(str::to_owned),
            admin_token: token.map(|t| SecretString::from(t.to_owned())),
            admin_token_file: None,
        }
    }

    #[test]
    fn off_unless_set_and_on_by_default_where_asked() {
        assert!(args(None, None).settings(None).unwrap().is_none());
        let run = args(None, None)
            .settings(Some(RUN_DEFAULT_BIND))
            .unwrap()
            .unwrap();
        assert_eq!(run.bind, RUN_DEFAULT_BIND);
        assert!(
            args(Some("off"), None)
                .settings(Some(RUN_DEFAULT_BIND))
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn beyond_localhost_needs_a_long_enough_token() {
        let refused = args(Some("0.0.0.0:9091"), None).settings(None).unwrap_err();
        assert_eq!(refused.key, "HOOKBRIDGE_ADMIN_TOKEN");
        let short = args(Some("0.0.0.0:9091"), Some("short"))
            .settings(None)
            .unwrap_err();
        assert!(short.reason.contains("at least 16"), "{short:?}");
        assert!(!short.reason.contains("short"), "the token is never shown");
        assert!(
            args(Some("0.0.0.0:9091"), Some("0123456789abcdef"))
                .settings(None)
                .unwrap()
                .is_some()
        );
        assert!(
            args(Some("localhost:0"), None)
                .settings(None)
                .unwrap()
                .is_some()
        );
    }

    #[test]
    fn a_malformed_address_is_named() {
        let e = args(Some("9091"), None).settings(None).unwrap_err();
        assert_eq!(e.key, "HOOKBRIDGE_ADMIN_BIND");
    }
}
