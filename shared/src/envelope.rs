//! The event envelope: the one thing that travels on the queue.
//!
//! The envelope is JSON with a `type` tag (`webhook.v1`). A worker that meets a tag it does not know
//! refuses the message instead of misreading it; bumping the tag is how the format evolves.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// Who sent the webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Github,
    Jira,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Github => "github",
            Source::Jira => "jira",
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The envelope format tag. Unknown tags fail to deserialize, which is how an old worker refuses a
/// newer envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EnvelopeKind {
    #[serde(rename = "webhook.v1")]
    WebhookV1,
}

/// The provider's id for one delivery, stable across the provider's own retries and manual
/// redeliveries: the dedupe key of the whole pipeline.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DeliveryId(String);

/// Why a delivery id was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DeliveryIdError {
    #[error("delivery id is empty")]
    Empty,
    #[error("delivery id is longer than {max} characters")]
    TooLong { max: usize },
    #[error("delivery id may only hold letters, digits and - _ . :")]
    BadCharacter,
}

impl DeliveryId {
    pub const MAX_LEN: usize = 128;

    /// Accepts GitHub GUIDs, Jira webhook identifiers and our own derived ids; refuses anything that
    /// could smuggle separators or control characters into keys and logs.
    ///
    /// # Errors
    /// When the value is empty, too long, or holds other characters than `[A-Za-z0-9-_.:]`.
    pub fn parse(value: &str) -> Result<Self, DeliveryIdError> {
        let value = value.trim();
        if value.is_empty() {
            return Err(DeliveryIdError::Empty);
        }
        if value.len() > Self::MAX_LEN {
            return Err(DeliveryIdError::TooLong { max: Self::MAX_LEN });
        }
        if !value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
        {
            return Err(DeliveryIdError::BadCharacter);
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for DeliveryId {
    type Error = DeliveryIdError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<DeliveryId> for String {
    fn from(value: DeliveryId) -> Self {
        value.0
    }
}

impl fmt::Display for DeliveryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where the payload body was put when it was too large for the queue (see [`crate::claim`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimRef {
    /// Lowercase hex SHA-256 of the stored bytes; also the claim's name.
    pub sha256: String,
    pub bytes: u64,
}

/// One webhook delivery as it travels on the queue.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Envelope {
    #[serde(rename = "type")]
    pub kind: EnvelopeKind,
    pub source: Source,
    /// `X-GitHub-Event` for GitHub; the body's `webhookEvent` for Jira.
    pub event: String,
    /// The body's `action` (GitHub) or `issue_event_type_name` (Jira), when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    pub delivery: DeliveryId,
    pub received_at: DateTime<Utc>,
    /// The provider headers that matter downstream (never a signature).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The JSON payload exactly as received, when it fits in the message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<Box<RawValue>>,
    /// Where the payload is, when it did not fit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload_claim: Option<ClaimRef>,
}

/// Why bytes from the queue are not an envelope this build understands.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("not an envelope this worker understands: {0}")]
    Malformed(#[from] serde_json::Error),
    #[error("envelope has neither a payload nor a payload claim")]
    NoPayload,
}

impl Envelope {
    /// Builds a `webhook.v1` envelope around a payload that is already known to be valid JSON.
    pub fn new(
        source: Source,
        event: String,
        action: Option<String>,
        delivery: DeliveryId,
        headers: BTreeMap<String, String>,
        payload: Box<RawValue>,
    ) -> Self {
        Self {
            kind: EnvelopeKind::WebhookV1,
            source,
            event,
            action,
            delivery,
            received_at: Utc::now(),
            headers,
            payload: Some(payload),
            payload_claim: None,
        }
    }

    /// The queue message body.
    pub fn encode(&self) -> Vec<u8> {
        // Serialising plain data with string keys cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Reads a queue message body.
    ///
    /// # Errors
    /// When the bytes are not JSON, carry an unknown `type`, or hold no payload at all.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let envelope: Envelope = serde_json::from_slice(bytes)?;
        if envelope.payload.is_none() && envelope.payload_claim.is_none() {
            return Err(DecodeError::NoPayload);
        }
        Ok(envelope)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Envelope {
        Envelope::new(
            Source::Github,
            "issues".into(),
            Some("opened".into()),
            DeliveryId::parse("72d3162e-cc78-11e3-81ab-4c9367dc0958").unwrap(),
            BTreeMap::from([("x-github-event".into(), "issues".into())]),
            RawValue::from_string(r#"{"action":"opened","n":1}"#.into()).unwrap(),
        )
    }

    #[test]
    fn round_trips_and_keeps_payload_bytes() {
        let env = sample();
        let back = Envelope::decode(&env.encode()).unwrap();
        assert_eq!(back.payload.unwrap().get(), r#"{"action":"opened","n":1}"#);
        assert_eq!(back.delivery, env.delivery);
        assert_eq!(back.kind, EnvelopeKind::WebhookV1);
    }

    #[test]
    fn refuses_unknown_version() {
        let mut json: serde_json::Value = serde_json::from_slice(&sample().encode()).unwrap();
        json["type"] = "webhook.v2".into();
        let err = Envelope::decode(&serde_json::to_vec(&json).unwrap()).unwrap_err();
        assert!(err.to_string().contains("webhook.v2"), "{err}");
    }

    #[test]
    fn refuses_envelope_without_payload() {
        let mut json: serde_json::Value = serde_json::from_slice(&sample().encode()).unwrap();
        json.as_object_mut().unwrap().remove("payload");
        assert!(matches!(
            Envelope::decode(&serde_json::to_vec(&json).unwrap()),
            Err(DecodeError::NoPayload)
        ));
    }

    #[test]
    fn delivery_id_rules() {
        assert!(DeliveryId::parse("abc-123_x.y:z").is_ok());
        assert_eq!(DeliveryId::parse("  "), Err(DeliveryIdError::Empty));
        assert_eq!(DeliveryId::parse("a b"), Err(DeliveryIdError::BadCharacter));
        assert_eq!(DeliveryId::parse("a/b"), Err(DeliveryIdError::BadCharacter));
        assert!(matches!(
            DeliveryId::parse(&"a".repeat(129)),
            Err(DeliveryIdError::TooLong { .. })
        ));
    }
}
