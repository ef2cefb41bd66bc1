//! How a Jira call failed, sorted by what the caller should do about it.

use std::time::Duration;

/// A failed Jira call. The `Display` names the operation and carries Jira's own error text; it
/// never holds credentials (requests are described by operation, not by their headers).
#[derive(Debug, thiserror::Error)]
pub enum JiraError {
    /// Jira refused the request (400, 401, 403, 404, 410, …): retrying the same request cannot
    /// succeed.
    #[error("{op}: Jira answered {status}: {message}")]
    Rejected {
        op: &'static str,
        status: u16,
        message: String,
    },
    /// 429, or 503: Jira did not do it and said when to come back.
    #[error("{op}: Jira is throttling ({status}), retry after {}s", .retry_after.as_secs())]
    Throttled {
        op: &'static str,
        status: u16,
        retry_after: Duration,
    },
    /// Another 5xx: Jira (or a proxy in front of it) failed; the request may or may not have
    /// taken effect.
    #[error("{op}: Jira server error {status}: {message}")]
    Server {
        op: &'static str,
        status: u16,
        message: String,
    },
    /// No answer: a timeout, a reset connection. `connect` is true when the connection was never
    /// made (then the request surely had no effect).
    #[error("{op}: no answer from Jira: {message}")]
    Transport {
        op: &'static str,
        message: String,
        connect: bool,
    },
    /// A 2xx whose body is not what Jira sends; the request did take effect.
    #[error("{op}: unexpected answer from Jira: {message}")]
    Protocol { op: &'static str, message: String },
    /// The client could not be built from its settings.
    #[error("Jira client: {0}")]
    Config(String),
    /// Jira refuses every request (401: the credentials) or cannot be reached at all: not this
    /// request's fault, and nothing happened. The client has marked Jira down (see
    /// [`super::health`]).
    #[error("{op}: Jira is unavailable: {reason}")]
    Unavailable {
        op: &'static str,
        reason: String,
        /// Jira answered 401 (else: it could not be reached).
        credentials_refused: bool,
    },
    /// The request was not sent: the lock it was to be sent under had too little lease left for
    /// it, or what had to happen right before sending it (recording an intent) failed.
    #[error("{op}: not sent: {reason}")]
    NotSent { op: &'static str, reason: String },
}

impl JiraError {
    /// Whether a later attempt may succeed.
    pub fn is_transient(&self) -> bool {
        !matches!(self, JiraError::Rejected { .. } | JiraError::Config(_))
    }

    /// Whether the failure is Jira's as a whole (credentials refused, site unreachable), not this
    /// request's: the work waits for Jira instead of counting as a failed attempt.
    pub fn is_systemic(&self) -> bool {
        matches!(self, JiraError::Unavailable { .. })
    }

    /// How long Jira asked us to wait, when it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            JiraError::Throttled { retry_after, .. } => Some(*retry_after),
            JiraError::NotSent { .. } => Some(Duration::from_secs(1)),
            _ => None,
        }
    }

    /// The HTTP status Jira answered with, if it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            JiraError::Rejected { status, .. }
            | JiraError::Throttled { status, .. }
            | JiraError::Server { status, .. } => Some(*status),
            JiraError::Unavailable {
                credentials_refused: true,
                ..
            } => Some(401),
            _ => None,
        }
    }

    /// Whether the failure proves the request had no effect: Jira refused it or throttled it, or
    /// no connection was made. After a timeout, a 500 or a malformed 2xx, a create may have
    /// happened, and the caller must reconcile before trying again.
    pub fn proves_nothing_happened(&self) -> bool {
        match self {
            JiraError::Rejected { .. }
            | JiraError::Throttled { .. }
            | JiraError::Config(_)
            | JiraError::Unavailable { .. }
            | JiraError::NotSent { .. } => true,
            JiraError::Transport { connect, .. } => *connect,
            JiraError::Server { .. } | JiraError::Protocol { .. } => false,
        }
    }
}

/// Jira's error body (`{"errorMessages": [...], "errors": {"field": "message"}}`) as one line,
/// cut to a readable length; other bodies as their first 300 characters.
pub(crate) fn describe_error_body(body: &str) -> String {
    let text = match serde_json::from_str::<serde_json::Value>(body) {
        Ok(json) => {
            let mut parts: Vec<String> = json["errorMessages"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|m| m.as_str().map(str::to_owned))
                .collect();
            if let Some(errors) = json["errors"].as_object() {
                parts.extend(errors.iter().map(|(field, message)| {
                    format!(
                        "{field}: {}",
                        message.as_str().unwrap_or(&message.to_string())
                    )
                }));
            }
            if parts.is_empty() {
                body.to_owned()
            } else {
                parts.join("; ")
            }
        }
        Err(_) => body.to_owned(),
    };
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.is_empty() {
        return "(empty body)".to_owned();
    }
    let cut: String = line.chars().take(500).collect();
    if cut.len() < line.len() {
        format!("{cut}…")
    } else {
        cut
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jira_error_bodies_become_one_line() {
        let body = r#"{"errorMessages":[],"errors":{"description":"Operation value must be an Atlassian Document"}}"#;
        assert_eq!(
            describe_error_body(body),
            "description: Operation value must be an Atlassian Document"
        );
        assert_eq!(
            describe_error_body(r#"{"errorMessages":["Issue does not exist"],"errors":{}}"#),
            "Issue does not exist"
        );
        assert_eq!(
            describe_error_body("<html>\n oops \n</html>"),
            "<html> oops </html>"
        );
        assert_eq!(describe_error_body(""), "(empty body)");
        assert!(describe_error_body(&"x".repeat(2000)).chars().count() <= 501);
    }

    #[test]
    fn classification() {
        let rejected = JiraError::Rejected {
            op: "create issue",
            status: 400,
            message: "bad".into(),
        };
        assert!(!rejected.is_transient() && rejected.proves_nothing_happened());
        let throttled = JiraError::Throttled {
            op: "create issue",
            status: 429,
            retry_after: Duration::from_secs(3),
        };
        assert!(throttled.is_transient() && throttled.proves_nothing_happened());
        assert_eq!(throttled.retry_after(), Some(Duration::from_secs(3)));
        let timeout = JiraError::Transport {
            op: "create issue",
            message: "timed out".into(),
            connect: false,
        };
        assert!(timeout.is_transient() && !timeout.proves_nothing_happened());
        assert_eq!(timeout.status(), None);
    }
}
