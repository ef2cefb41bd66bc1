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

/// Installs the global subscriber. Calling it twice is harmless (the second call does nothing).
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
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
