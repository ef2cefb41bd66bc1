//! Property tests of what faces the outside first: signature header parsing and verification
//! (one-shot and streamed) and envelope decoding. A modest number of cases in every `cargo test`;
//! `make test-fuzz` runs them with many more (`PROPTEST_CASES`).

use std::collections::BTreeMap;

use bytes::Bytes;
use hmac::{KeyInit, Mac};
use proptest::prelude::*;
use serde_json::Value;
use serde_json::value::RawValue;

use crate::envelope::{ClaimRef, DeliveryId, Envelope, EnvelopeKind, Source};
use crate::signature::{SignatureError, WebhookSecrets};

/// `PROPTEST_CASES` when set (`make test-fuzz`), else `default`.
fn config(default: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

const SECRETS: [&str; 3] = [
    "first-secret-0123456789",
    "second-secret-abcdefghij",
    "third-secret-ÄÖÜ-€-long",
];

fn secrets() -> WebhookSecrets {
    WebhookSecrets::parse(&SECRETS.join(",")).expect("valid secrets")
}

/// HMAC-SHA256 of `body` under `secret`, computed here (not by the code under test).
fn oracle_mac(secret: &str, body: &[u8]) -> [u8; 32] {
    let mut mac =
        hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(body);
    mac.finalize().into_bytes().into()
}

/// What `verify` must answer, by the README's rule: `sha256=<64 hex digits>` (surrounding
/// whitespace ignored) naming the HMAC of the body under one of the secrets.
fn oracle(header: Option<&str>, body: &[u8]) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let hex = header
        .trim()
        .strip_prefix("sha256=")
        .ok_or(SignatureError::Malformed)?;
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(SignatureError::Malformed);
    }
    let digest: Vec<u8> = (0..32)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("hex"))
        .collect();
    if SECRETS
        .iter()
        .any(|s| oracle_mac(s, body).as_slice() == digest.as_slice())
    {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// Signature headers: the right one (under any secret, any hex case, with whitespace), near misses
/// (wrong prefix, lengths around 64, a flipped digit, non-hex), and arbitrary text.
fn header_for(body: Vec<u8>) -> impl Strategy<Value = (Vec<u8>, Option<String>)> {
    let right = {
        let body = body.clone();
        (0..SECRETS.len(), any::<bool>(), "[ \t]{0,2}", "[ \t]{0,2}").prop_map(
            move |(i, upper, before, after)| {
                let hex = hex::encode(oracle_mac(SECRETS[i], &body));
                let hex = if upper { hex.to_uppercase() } else { hex };
                format!("{before}sha256={hex}{after}")
            },
        )
    };
    let near = {
        let body = body.clone();
        (
            0..SECRETS.len(),
            prop::sample::select(vec![
                "sha256=", "SHA256=", "sha1=", "sha256 =", "", "sha256==",
            ]),
            0usize..70,
            any::<u8>(),
            any::<prop::sample::Index>(),
        )
            .prop_map(move |(i, prefix, length, junk, at)| {
                let hex = hex::encode(oracle_mac(SECRETS[i], &body)).repeat(2);
                let mut digits: Vec<u8> = hex.as_bytes()[..length].to_vec();
                if !digits.is_empty() && junk % 3 == 0 {
                    let at = at.index(digits.len());
                    digits[at] = if junk % 2 == 0 {
                        b'g'
                    } else {
                        b'0' + (junk % 10)
                    };
                }
                format!("{prefix}{}", String::from_utf8_lossy(&digits))
            })
    };
    let header = prop_oneof![
        3 => right.prop_map(Some),
        3 => near.prop_map(Some),
        1 => "\\PC{0,80}".prop_map(Some),
        1 => "sha256=[0-9a-fA-F]{64}".prop_map(Some),
        1 => Just(None),
    ];
    (Just(body), header)
}

fn body_and_header() -> impl Strategy<Value = (Vec<u8>, Option<String>)> {
    prop::collection::vec(any::<u8>(), 0..512).prop_flat_map(header_for)
}

proptest! {
    #![proptest_config(config(256))]

    /// `verify` never panics and answers exactly what the rule says, whatever the header.
    #[test]
    fn verify_agrees_with_the_rule((body, header) in body_and_header()) {
        let got = secrets().verify(header.as_deref(), Bytes::from(body.clone()));
        if let Ok(verified) = &got {
            prop_assert_eq!(verified.bytes().as_ref(), body.as_slice());
        }
        let got = got.map(|_| ());
        prop_assert_eq!(got, oracle(header.as_deref(), &body), "header {:?}", header);
    }

    /// The streamed check, fed the body in any chunking, answers what the one-shot check does.
    #[test]
    fn streaming_check_equals_one_shot(
        (body, header) in body_and_header(),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..12),
    ) {
        let secrets = secrets();
        let one_shot = secrets
            .verify(header.as_deref(), Bytes::from(body.clone()))
            .map(|_| ());
        let mut points: Vec<usize> = cuts.iter().map(|c| c.index(body.len() + 1)).collect();
        points.sort_unstable();
        let streamed = match secrets.start(header.as_deref()) {
            Err(e) => Err(e),
            Ok(mut check) => {
                let mut from = 0;
                for to in points.into_iter().chain(std::iter::once(body.len())) {
                    check.update(&body[from..to]); // empty chunks included
                    from = to;
                }
                check.finish(Bytes::from(body.clone())).map(|_| ())
            }
        };
        prop_assert_eq!(streamed, one_shot);
    }

    /// A correct signature stops matching when any one byte of the body changes.
    #[test]
    fn any_changed_byte_breaks_the_signature(
        body in prop::collection::vec(any::<u8>(), 1..512),
        at in any::<prop::sample::Index>(),
        flip in 1u8..=255,
        secret in 0..SECRETS.len(),
    ) {
        let header = format!("sha256={}", hex::encode(oracle_mac(SECRETS[secret], &body)));
        let secrets = secrets();
        prop_assert!(secrets.verify(Some(&header), Bytes::from(body.clone())).is_ok());
        let mut changed = body;
        let at = at.index(changed.len());
        changed[at] ^= flip;
        prop_assert_eq!(
            secrets.verify(Some(&header), Bytes::from(changed)).map(|_| ()),
            Err(SignatureError::Mismatch)
        );
    }

    /// The shared-secret check never panics and accepts exactly `sha256=<a secret>`.
    #[test]
    fn shared_secret_check_accepts_exactly_the_secrets(
        header in prop_oneof![
            "\\PC{0,60}".prop_map(Some),
            (0..SECRETS.len(), "[ \t]{0,2}", "\\PC{0,2}")
                .prop_map(|(i, pad, tail)| Some(format!("{pad}sha256={}{tail}", SECRETS[i]))),
            Just(None),
        ],
    ) {
        let got = secrets().verify_shared_secret(header.as_deref(), Bytes::new()).is_ok();
        let want = header
            .as_deref()
            .and_then(|h| h.trim().strip_prefix("sha256="))
            .is_some_and(|s| SECRETS.contains(&s));
        prop_assert_eq!(got, want, "{:?}", header);
    }

    /// Secret lists: parsing never panics, and what parses has only secrets of 16 bytes or more.
    #[test]
    fn secret_lists_parse_or_are_refused(list in "\\PC{0,80}") {
        if let Ok(parsed) = WebhookSecrets::parse(&list) {
            let count = list.split(',').filter(|s| !s.trim().is_empty()).count();
            prop_assert_eq!(parsed.len(), count);
            prop_assert!(list
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .all(|s| s.len() >= crate::signature::MIN_SECRET_BYTES));
        }
    }
}

/// Any JSON value, nested a few levels.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f)
            .map(Value::Number)),
        "\\PC{0,20}".prop_map(Value::String),
        ".{0,8}".prop_map(Value::String),
    ];
    leaf.prop_recursive(5, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("\\PC{0,8}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn delivery_id() -> impl Strategy<Value = DeliveryId> {
    "[A-Za-z0-9._:-]{1,128}".prop_map(|s| DeliveryId::parse(&s).expect("a valid id"))
}

fn envelope() -> impl Strategy<Value = Envelope> {
    (
        any::<bool>(),
        "\\PC{0,30}",
        proptest::option::of("\\PC{0,30}"),
        delivery_id(),
        prop::collection::btree_map("[a-z-]{1,20}", "\\PC{0,40}", 0..5),
        json_value(),
        proptest::option::of(("[0-9a-f]{64}", any::<u64>())),
        any::<i64>(),
    )
        .prop_map(
            |(github, event, action, delivery, headers, payload, claim, millis)| {
                // A payload of JSON `null` is encoded as `"payload":null`, which decodes as no
                // payload (`NoPayload`): `Envelope::new` accepts what `decode` refuses. The ingest
                // only ever builds envelopes around a JSON object, so it cannot happen there; the
                // round trip is checked for every other payload.
                let payload = if payload.is_null() {
                    Value::Object(serde_json::Map::new())
                } else {
                    payload
                };
                let raw = serde_json::value::to_raw_value(&payload).expect("JSON");
                let mut envelope = Envelope::new(
                    if github { Source::Github } else { Source::Jira },
                    event,
                    action,
                    delivery,
                    headers,
                    raw,
                );
                if let Some((sha256, bytes)) = claim {
                    envelope.payload = None;
                    envelope.payload_claim = Some(ClaimRef { sha256, bytes });
                }
                if let Some(at) =
                    chrono::DateTime::from_timestamp_millis(millis % 8_000_000_000_000)
                {
                    envelope.received_at = at;
                }
                envelope
            },
        )
}

proptest! {
    #![proptest_config(config(256))]

    /// Arbitrary bytes never make `Envelope::decode` panic.
    #[test]
    fn decode_never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let _ = Envelope::decode(&bytes);
    }

    /// Nor does any JSON value, nor an envelope whose fields have arbitrary values.
    #[test]
    fn decode_never_panics_on_json(
        value in json_value(),
        fields in prop::collection::vec((
            prop::sample::select(vec![
                "type", "source", "event", "action", "delivery", "received_at", "headers",
                "payload", "payload_claim",
            ]),
            json_value(),
        ), 0..6),
        base in envelope(),
    ) {
        let _ = Envelope::decode(&serde_json::to_vec(&value).expect("JSON"));
        let mut doc: Value = serde_json::from_slice(&base.encode()).expect("JSON");
        for (key, value) in fields {
            doc[key] = value;
        }
        if let Ok(decoded) = Envelope::decode(&serde_json::to_vec(&doc).expect("JSON")) {
            // What decodes keeps the envelope's invariants.
            prop_assert!(decoded.payload.is_some() || decoded.payload_claim.is_some());
            prop_assert!(DeliveryId::parse(decoded.delivery.as_str()).is_ok());
        }
    }

    /// Byte-level damage to a real envelope (flips, cuts, insertions) never panics either.
    #[test]
    fn decode_never_panics_on_damaged_envelopes(
        base in envelope(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..8),
    ) {
        let mut bytes = base.encode();
        for (at, byte, kind) in edits {
            let at = at.index(bytes.len() + 1);
            match kind {
                0 if at < bytes.len() => bytes[at] = byte,
                1 if at < bytes.len() => { bytes.remove(at); }
                _ => bytes.insert(at, byte),
            }
        }
        let _ = Envelope::decode(&bytes);
    }

    /// encode → decode gives the same envelope, the payload byte for byte.
    #[test]
    fn encode_decode_round_trips(envelope in envelope()) {
        let back = Envelope::decode(&envelope.encode()).expect("decodes");
        prop_assert_eq!(back.kind, EnvelopeKind::WebhookV1);
        prop_assert_eq!(back.source, envelope.source);
        prop_assert_eq!(&back.event, &envelope.event);
        prop_assert_eq!(&back.action, &envelope.action);
        prop_assert_eq!(&back.delivery, &envelope.delivery);
        prop_assert_eq!(back.received_at, envelope.received_at);
        prop_assert_eq!(&back.headers, &envelope.headers);
        prop_assert_eq!(
            back.payload.as_ref().map(|p| p.get()),
            envelope.payload.as_ref().map(|p| p.get())
        );
        prop_assert_eq!(&back.payload_claim, &envelope.payload_claim);
        // And encoding again gives the same bytes.
        prop_assert_eq!(back.encode(), envelope.encode());
    }

    /// Delivery ids: parsing never panics; what parses is 1–128 of `[A-Za-z0-9-_.:]`.
    #[test]
    fn delivery_ids_parse_or_are_refused(value in "\\PC{0,140}") {
        if let Ok(id) = DeliveryId::parse(&value) {
            let id = id.as_str();
            prop_assert!(!id.is_empty() && id.len() <= DeliveryId::MAX_LEN);
            prop_assert!(id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':')));
        }
    }
}

/// A raw payload that is any JSON text (kept as sent) also survives the round trip.
#[test]
fn raw_payload_text_is_kept_exactly() {
    let text = "{ \"a\" :\t[1, 2.50, \"\\u00e9\"] ,\"b\":null }";
    let mut envelope = Envelope::new(
        Source::Github,
        "issues".into(),
        None,
        DeliveryId::parse("x").expect("id"),
        BTreeMap::new(),
        RawValue::from_string(text.into()).expect("JSON"),
    );
    envelope.action = Some("\u{0}".into());
    let back = Envelope::decode(&envelope.encode()).expect("decodes");
    assert_eq!(back.payload.expect("payload").get(), text);
    assert_eq!(back.action.as_deref(), Some("\u{0}"));
}
