//! The event envelope: the one thing that travels on the queue.
//!
//! The envelope is JSON with a `type` tag (`webhook.v1`). A worker that meets a tag it does not know
//! refuses the message instead of misreading it; bumping the tag is how the format evolves.

use std::collections::BTreeMap;
use std::fmt;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
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

/// A webhook body known to be one JSON object, as received: the ingest validates it once and
/// writes its bytes into the queue message as they are (README, "Benchmarks").
#[derive(Debug, Clone)]
pub struct JsonObject(Bytes);

impl JsonObject {
    /// Checks that `body` is UTF-8 holding exactly one JSON object, and reads the fields of `H`
    /// from it in the same pass (the rest is skipped, but still validated).
    ///
    /// # Errors
    /// A reason fit for a 400 answer.
    pub fn parse<H: DeserializeOwned>(body: Bytes) -> Result<(Self, H), String> {
        let text = std::str::from_utf8(&body).map_err(|_| "body is not valid UTF-8".to_owned())?;
        if !text.trim_start().starts_with('{') {
            return Err("malformed JSON: the payload must be an object".into());
        }
        let head = serde_json::from_str(text).map_err(|e| format!("malformed JSON: {e}"))?;
        Ok((Self(body), head))
    }

    pub fn bytes(&self) -> &Bytes {
        &self.0
    }

    pub fn into_bytes(self) -> Bytes {
        self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The envelope's fields besides the payload, in the order [`Envelope`] writes them.
#[derive(Debug, Clone, Serialize)]
pub struct EnvelopeHead {
    #[serde(rename = "type")]
    pub kind: EnvelopeKind,
    pub source: Source,
    pub event: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    pub delivery: DeliveryId,
    pub received_at: DateTime<Utc>,
    pub headers: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload_claim: Option<ClaimRef>,
}

/// An envelope the ingest is about to enqueue. It encodes to exactly what [`Envelope::encode`]
/// would, with the payload's bytes copied once into the message instead of being parsed into a
/// [`RawValue`] and serialised again.
#[derive(Debug, Clone)]
pub struct OutgoingEnvelope {
    pub head: EnvelopeHead,
    /// `None` once the payload went to the claim store (`head.payload_claim` says where).
    pub payload: Option<JsonObject>,
}

impl OutgoingEnvelope {
    pub fn new(
        source: Source,
        event: String,
        action: Option<String>,
        delivery: DeliveryId,
        headers: BTreeMap<String, String>,
        payload: JsonObject,
    ) -> Self {
        Self {
            head: EnvelopeHead {
                kind: EnvelopeKind::WebhookV1,
                source,
                event,
                action,
                delivery,
                received_at: Utc::now(),
                headers,
                payload_claim: None,
            },
            payload: Some(payload),
        }
    }

    /// The queue message body: the head's JSON object with `"payload":<the bytes>` appended.
    pub fn encode(&self) -> Vec<u8> {
        let payload_len = self.payload.as_ref().map_or(0, JsonObject::len);
        let mut out = Vec::with_capacity(payload_len + 512);
        // Serialising plain data with string keys into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut out, &self.head);
        if let Some(payload) = &self.payload {
            // The head is a non-empty object, so its text ends with `}`.
            out.pop();
            out.extend_from_slice(b",\"payload\":");
            out.extend_from_slice(payload.bytes());
            out.push(b'}');
        }
        out
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

    #[derive(Deserialize)]
    struct Head {
        action: Option<String>,
    }

    #[test]
    fn an_outgoing_envelope_decodes_like_one_built_around_a_raw_value() {
        let body = r#"{"action":"opened","n":[1,2,{"x":"\u00e9"}]}"#;
        let (payload, head) =
            JsonObject::parse::<Head>(Bytes::from_static(body.as_bytes())).unwrap();
        assert_eq!(head.action.as_deref(), Some("opened"));
        let outgoing = OutgoingEnvelope::new(
            Source::Github,
            "issues".into(),
            head.action,
            DeliveryId::parse("d-1").unwrap(),
            BTreeMap::from([("x-github-event".into(), "issues".into())]),
            payload,
        );
        let back = Envelope::decode(&outgoing.encode()).unwrap();
        assert_eq!(back.payload.unwrap().get(), body);
        assert_eq!(back.action.as_deref(), Some("opened"));
        assert_eq!(back.delivery.as_str(), "d-1");
        assert_eq!(back.headers["x-github-event"], "issues");
        assert_eq!(back.received_at, outgoing.head.received_at);

        let mut claimed = outgoing.clone();
        claimed.payload = None;
        claimed.head.payload_claim = Some(ClaimRef {
            sha256: "ab".into(),
            bytes: 3,
        });
        let back = Envelope::decode(&claimed.encode()).unwrap();
        assert!(back.payload.is_none());
        assert_eq!(back.payload_claim.unwrap().bytes, 3);
    }

    #[test]
    fn only_one_json_object_in_utf8_is_a_payload() {
        for bad in [
            &b"[1]"[..],
            b"\"text\"",
            b"{\"a\":1} {}",
            b"{\"a\":",
            b"{\"a\":\"\xff\"}",
            b"",
            b"null",
        ] {
            assert!(
                JsonObject::parse::<Head>(Bytes::copy_from_slice(bad)).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        assert!(JsonObject::parse::<Head>(Bytes::from_static(b" {\"b\":[]} ")).is_ok());
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
