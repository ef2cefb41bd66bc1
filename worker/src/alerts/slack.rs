//! Slack incoming webhooks: the client, and the Block Kit messages alerts become.
//!
//! Slack answers `200 ok`; `429` with `Retry-After` when a webhook posts faster than about one
//! message a second; `400 invalid_payload`, `403 action_prohibited`, `404 channel_not_found`,
//! `410 channel_is_archived` for requests that will never succeed; `500 rollup_error` for its own
//! trouble (api.slack.com, "Changes to errors for incoming webhooks", 2016-05-17).
//!
//! The webhook URL is a credential (whoever has it can post): it is kept secret and never appears
//! in a log line or an error.

use std::fmt;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use super::{Alert, AlertKind};

/// Longest summary quoted in a message (Slack's section text limit is 3,000 characters).
const SUMMARY_CHARS: usize = 300;

/// How long one post may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// A Slack incoming-webhook URL; `Debug` and `Display` never show it.
#[derive(Clone)]
pub struct SlackWebhook(SecretString);

impl fmt::Debug for SlackWebhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SlackWebhook(redacted)")
    }
}

impl SlackWebhook {
    /// # Errors
    /// A reason (without the URL) when `value` is not an `http(s)` URL with a host.
    pub fn parse(value: &str) -> Result<Self, String> {
        let url = url::Url::parse(value.trim()).map_err(|e| format!("not a URL ({e})"))?;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err("must be an http(s) URL with a host".into());
        }
        Ok(Self(SecretString::from(value.trim().to_owned())))
    }
}

/// Why a post failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// 429: wait this long (Slack's `Retry-After`, else a second).
    #[error("Slack rate limit (retry after {0:?})")]
    RateLimited(Duration),
    /// A 4xx other than 429: this message will never be accepted.
    #[error("Slack refused the message: {status} {body}")]
    Refused { status: u16, body: String },
    /// A 5xx, a timeout or a broken connection: may succeed later.
    #[error("Slack did not take the message: {0}")]
    Failed(String),
}

/// Posts messages to one incoming webhook.
#[derive(Debug, Clone)]
pub struct SlackClient {
    http: reqwest::Client,
    webhook: SlackWebhook,
}

impl SlackClient {
    /// # Errors
    /// A reason when the HTTP client cannot be built.
    pub fn new(webhook: SlackWebhook) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        Ok(Self { http, webhook })
    }

    /// Posts `message`.
    ///
    /// # Errors
    /// [`SendError`], sorted by what to do next.
    pub async fn send(&self, message: &Value) -> Result<(), SendError> {
        let response = self
            .http
            .post(self.webhook.0.expose_secret())
            .json(message)
            .send()
            .await
            .map_err(|e| SendError::Failed(e.without_url().to_string()))?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let body: String = response
            .text()
            .await
            .unwrap_or_default()
            .chars()
            .take(200)
            .collect();
        match status {
            200..=299 => Ok(()),
            429 => Err(SendError::RateLimited(Duration::from_secs(
                retry_after.unwrap_or(1).clamp(1, 3600),
            ))),
            400..=499 => Err(SendError::Refused { status, body }),
            _ => Err(SendError::Failed(format!("{status} {body}"))),
        }
    }
}

/// Text safe inside Slack `mrkdwn` (`&`, `<`, `>` are its control characters).
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let mut cut: String = text.chars().take(max - 1).collect();
        cut.push('…');
        cut
    }
}

/// What happened, in a few words.
fn headline(alert: &Alert) -> String {
    match alert.kind {
        AlertKind::CrApproved => "approved".into(),
        AlertKind::CrRejected => "rejected".into(),
        AlertKind::CrRevoked => format!(
            "no longer approved (now {})",
            alert.status.as_deref().unwrap_or("unknown")
        ),
        AlertKind::BudgetWarning => "token budget 80 % used".into(),
        AlertKind::BudgetExhausted => "token budget used up".into(),
        AlertKind::DeadLettered => "message dead-lettered".into(),
        AlertKind::JiraUnavailable => {
            "unavailable: the worker paused, events stay queued until Jira answers again".into()
        }
        AlertKind::DeploymentApproved => "deployment approved".into(),
        AlertKind::DeploymentRejected => "deployment rejected".into(),
    }
}

fn icon(kind: AlertKind) -> &'static str {
    match kind {
        AlertKind::CrApproved | AlertKind::DeploymentApproved => ":white_check_mark:",
        AlertKind::CrRejected | AlertKind::DeploymentRejected => ":no_entry:",
        AlertKind::CrRevoked | AlertKind::BudgetExhausted => ":warning:",
        AlertKind::BudgetWarning => ":hourglass_flowing_sand:",
        AlertKind::DeadLettered | AlertKind::JiraUnavailable => ":rotating_light:",
    }
}

/// One line of plain text for `alert` (the notification and fallback text).
fn plain(alert: &Alert) -> String {
    let mut line = format!("{} {}", alert.subject, headline(alert));
    if let Some(by) = &alert.by {
        line.push_str(&format!(" by {by}"));
    }
    if let Some(summary) = &alert.summary {
        line.push_str(&format!(": {}", cut(summary, SUMMARY_CHARS)));
    }
    if let Some(detail) = &alert.detail {
        line.push_str(&format!(" — {}", cut(detail, SUMMARY_CHARS)));
    }
    if let Some(link) = &alert.link {
        line.push_str(&format!(" ({link})"));
    }
    line
}

/// The `mrkdwn` section for `alert`: the subject (a link when there is one), what happened, the
/// summary, who and what before.
fn section(alert: &Alert) -> Value {
    let subject = match &alert.link {
        Some(link) => format!("<{}|{}>", escape(link), escape(&alert.subject)),
        None => escape(&alert.subject),
    };
    let mut text = format!(
        "{} *{subject}* {}",
        icon(alert.kind),
        escape(&headline(alert))
    );
    if let Some(summary) = &alert.summary {
        text.push_str(&format!("\n>{}", escape(&cut(summary, SUMMARY_CHARS))));
    }
    let mut facts = Vec::new();
    if let Some(by) = &alert.by {
        facts.push(format!("by {}", escape(by)));
    }
    if let Some(before) = &alert.previous_status {
        facts.push(format!("was {}", escape(before)));
    }
    if let Some(detail) = &alert.detail {
        facts.push(escape(&cut(detail, 1000)));
    }
    if !facts.is_empty() {
        text.push_str(&format!("\n{}", facts.join(" · ")));
    }
    json!({"type": "section", "text": {"type": "mrkdwn", "text": text}})
}

/// The message for a batch of alerts (one, or a coalesced burst): Block Kit, with a plain `text`
/// that notifications and clients without blocks show.
pub fn message(alerts: &[Alert]) -> Value {
    let text = match alerts {
        [one] => plain(one),
        many => format!(
            "{} hookbridge alerts: {}",
            many.len(),
            many.iter().map(plain).collect::<Vec<_>>().join("; ")
        ),
    };
    let mut blocks = Vec::new();
    for (i, alert) in alerts.iter().enumerate() {
        if i > 0 {
            blocks.push(json!({"type": "divider"}));
        }
        blocks.push(section(alert));
    }
    json!({"text": cut(&text, 3000), "blocks": blocks})
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn alert(kind: AlertKind) -> Alert {
        Alert {
            id: "CR-1:1:x".into(),
            at: Utc::now(),
            kind,
            subject: "CR-1".into(),
            summary: Some("Deploy <agent> & friends".into()),
            status: Some("Approved".into()),
            previous_status: Some("Pending".into()),
            by: Some("Alice".into()),
            link: Some("https://acme.atlassian.net/browse/CR-1".into()),
            detail: None,
        }
    }

    #[test]
    fn one_alert_names_the_cr_summary_status_person_and_link() {
        let m = message(&[alert(AlertKind::CrApproved)]);
        let text = m["text"].as_str().unwrap();
        assert!(text.contains("CR-1 approved by Alice"), "{text}");
        assert!(
            text.contains("https://acme.atlassian.net/browse/CR-1"),
            "{text}"
        );
        let section = m["blocks"][0]["text"]["text"].as_str().unwrap();
        assert!(
            section.contains("<https://acme.atlassian.net/browse/CR-1|CR-1>"),
            "{section}"
        );
        assert!(section.contains("&lt;agent&gt; &amp; friends"), "{section}");
        assert!(section.contains("was Pending"), "{section}");
    }

    #[test]
    fn a_burst_is_one_message_with_a_section_each() {
        let m = message(&[alert(AlertKind::CrApproved), alert(AlertKind::CrRejected)]);
        assert!(
            m["text"]
                .as_str()
                .unwrap()
                .starts_with("2 hookbridge alerts")
        );
        assert_eq!(m["blocks"].as_array().unwrap().len(), 3);
    }

    #[test]
    fn the_webhook_url_is_never_shown() {
        let hook = SlackWebhook::parse("https://hooks.slack.com/services/T0/B0/s3cret").unwrap();
        assert!(!format!("{hook:?}").contains("s3cret"));
        assert!(SlackWebhook::parse("ftp://x").is_err());
        assert!(
            !SlackWebhook::parse("not a url s3cret")
                .unwrap_err()
                .contains("s3cret")
        );
    }
}
