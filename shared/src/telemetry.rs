//! Logging set-up shared by every binary: `RUST_LOG` filter (default `info`), JSON lines when
//! stderr is not a terminal or `LOG_FORMAT=json`, human text otherwise. Logs go to stderr so that
//! CLI output on stdout stays machine-readable.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// The chosen log format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Text,
}

impl LogFormat {
    /// `LOG_FORMAT` when set to `json` or `text`, else text on a terminal and JSON elsewhere.
    ///
    /// # Errors
    /// A one-line reason when `LOG_FORMAT` holds anything else.
    pub fn from_env() -> Result<Self, String> {
        match std::env::var("LOG_FORMAT").ok().as_deref() {
            Some("json") => Ok(LogFormat::Json),
            Some("text") => Ok(LogFormat::Text),
            None | Some("") => Ok(if std::io::stderr().is_terminal() {
                LogFormat::Text
            } else {
                LogFormat::Json
            }),
            Some(other) => Err(format!("LOG_FORMAT: expected json or text, got {other:?}")),
        }
    }
}

/// actix-web's HTTP/1 dispatcher logs every request it cannot parse at ERROR: on the public
/// webhook port that would let anyone without the secret write a log line per request (disk,
/// log bills, alert noise). Such requests are answered 400 and counted nowhere else worth a line,
/// so the target is silenced unless `RUST_LOG` names it (README, "Configuration").
const QUIET_TARGET: &str = "actix_http::h1::dispatcher";

/// The filter: `RUST_LOG` (default `info`), with [`QUIET_TARGET`] off unless `RUST_LOG` names it.
fn filter() -> EnvFilter {
    let asked = std::env::var("RUST_LOG").unwrap_or_default();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    if asked.contains("actix_http") {
        return filter;
    }
    match format!("{QUIET_TARGET}=off").parse() {
        Ok(directive) => filter.add_directive(directive),
        Err(_) => filter,
    }
}

/// Installs the global subscriber. Calling it twice is harmless (the second call does nothing).
pub fn init(format: LogFormat) {
    let filter = filter();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
