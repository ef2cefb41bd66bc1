//! Webhook authentication: HMAC-SHA256 over the raw request body, compared in constant time.
//!
//! GitHub sends `X-Hub-Signature-256: sha256=<hex>`, Jira admin webhooks send
//! `X-Hub-Signature: sha256=<hex>`; both are the same scheme. Several secrets may be active at once so
//! that a secret can be rotated without dropping deliveries.

use std::fmt;

use bytes::Bytes;
use hmac::{Hmac, KeyInit, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// The secrets one webhook route accepts. `Debug` never shows them.
#[derive(Clone)]
pub struct WebhookSecrets(Vec<SecretString>);

impl fmt::Debug for WebhookSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WebhookSecrets([{} redacted])", self.0.len())
    }
}

/// The shortest webhook secret accepted, in bytes (the README's "Configuration"): HMAC is only as
/// strong as its key, and a short one can be guessed offline from a single signed delivery.
pub const MIN_SECRET_BYTES: usize = 16;

/// Why a configured secret list was refused. The messages never show a secret.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretsError {
    #[error("holds no secret (an empty value or only commas)")]
    Empty,
    /// One secret of the list is too short; `position` counts from 1. The list is split at commas,
    /// so a secret containing a comma becomes several short ones, which this names too.
    #[error(
        "secret {position} of {count} is {bytes} bytes; each must be at least {MIN_SECRET_BYTES} \
         bytes (the value is a comma-separated rotation list, so a comma inside a secret splits it)"
    )]
    TooShort {
        position: usize,
        count: usize,
        bytes: usize,
    },
}

impl WebhookSecrets {
    /// Parses a comma-separated list; surrounding whitespace of each secret is ignored.
    ///
    /// # Errors
    /// [`SecretsError`] when no non-empty secret remains, or one is shorter than
    /// [`MIN_SECRET_BYTES`].
    pub fn parse(list: &str) -> Result<Self, SecretsError> {
        let secrets: Vec<SecretString> = list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| SecretString::from(s.to_owned()))
            .collect();
        if secrets.is_empty() {
            return Err(SecretsError::Empty);
        }
        let count = secrets.len();
        if let Some((i, short)) = secrets
            .iter()
            .enumerate()
            .find(|(_, s)| s.expose_secret().len() < MIN_SECRET_BYTES)
        {
            return Err(SecretsError::TooShort {
                position: i + 1,
                count,
                bytes: short.expose_secret().len(),
            });
        }
        Ok(Self(secrets))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Starts a check of `header` (`sha256=<hex>`) to be fed the body as it arrives: the header's
    /// presence and form are checked now, before a byte of the body is read, so a caller without
    /// a well-formed signature costs no body reading at all; and no body is hashed twice.
    ///
    /// # Errors
    /// [`SignatureError::Missing`] / [`SignatureError::Malformed`].
    pub fn start(&self, header: Option<&str>) -> Result<StreamingCheck, SignatureError> {
        let expected = parse_header(header)?;
        let macs = self
            .0
            .iter()
            .map(|secret| mac(secret.expose_secret(), b""))
            .collect();
        Ok(StreamingCheck { macs, expected })
    }

    /// Checks `header` (`sha256=<hex>`) against the body under every active secret.
    ///
    /// # Errors
    /// [`SignatureError`] when the header is missing, malformed or matches no secret.
    pub fn verify(&self, header: Option<&str>, body: Bytes) -> Result<Verified, SignatureError> {
        let mut check = self.start(header)?;
        check.update(&body);
        check.finish(body)
    }

    /// Checks a shared-secret header, `sha256=<secret>` — what a Jira Automation rule's "Send web
    /// request" action can send, as it cannot compute an HMAC — against every active secret, in
    /// constant time. This proves the caller knows the secret; unlike [`Self::verify`], it does
    /// not prove the body is the one that was sent, which is why it is off unless a route opts in.
    ///
    /// # Errors
    /// [`SignatureError`] when the header is missing, not `sha256=…`, or matches no secret.
    pub fn verify_shared_secret(
        &self,
        header: Option<&str>,
        body: Bytes,
    ) -> Result<Verified, SignatureError> {
        let presented = header
            .ok_or(SignatureError::Missing)?
            .trim()
            .strip_prefix("sha256=")
            .filter(|s| !s.is_empty())
            .ok_or(SignatureError::Malformed)?;
        // Digests have one length whatever the secrets', so the comparison time reveals nothing.
        let presented = Sha256::digest(presented.as_bytes());
        let mut matched = subtle::Choice::from(0);
        for secret in &self.0 {
            let expected = Sha256::digest(secret.expose_secret().as_bytes());
            matched |= expected.as_slice().ct_eq(presented.as_slice());
        }
        if bool::from(matched) {
            Ok(Verified(body))
        } else {
            Err(SignatureError::Mismatch)
        }
    }

    /// Signs `body` with the first (newest) secret: `sha256=<hex>`. Used by `send-test-event`.
    pub fn sign(&self, body: &[u8]) -> String {
        sign_with(self.0[0].expose_secret(), body)
    }
}

fn mac(secret: &str, body: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(body);
    mac
}

/// The 32 bytes of a `sha256=<64 hex digits>` header.
fn parse_header(header: Option<&str>) -> Result<[u8; 32], SignatureError> {
    let hex_digest = header
        .ok_or(SignatureError::Missing)?
        .trim()
        .strip_prefix("sha256=")
        .ok_or(SignatureError::Malformed)?;
    let mut expected = [0u8; 32];
    hex::decode_to_slice(hex_digest, &mut expected).map_err(|_| SignatureError::Malformed)?;
    Ok(expected)
}

/// An HMAC check under way: fed the body chunk by chunk as it arrives (see
/// [`WebhookSecrets::start`]), then finished with the whole body.
pub struct StreamingCheck {
    macs: Vec<HmacSha256>,
    expected: [u8; 32],
}

impl StreamingCheck {
    /// Adds the next bytes of the body.
    pub fn update(&mut self, chunk: &[u8]) {
        for mac in &mut self.macs {
            mac.update(chunk);
        }
    }

    /// Whether the bytes fed so far, `body`, are signed by one of the secrets.
    ///
    /// # Errors
    /// [`SignatureError::Mismatch`] when no secret signed them.
    pub fn finish(self, body: Bytes) -> Result<Verified, SignatureError> {
        // Every secret is tried, even after a match, so timing does not reveal which one matched.
        let mut matched = false;
        for mac in self.macs {
            matched |= mac.verify_slice(&self.expected).is_ok();
        }
        if matched {
            Ok(Verified(body))
        } else {
            Err(SignatureError::Mismatch)
        }
    }
}

/// `sha256=<lowercase hex HMAC-SHA256(secret, body)>`, the header value GitHub and Jira send.
pub fn sign_with(secret: &str, body: &[u8]) -> String {
    format!(
        "sha256={}",
        hex::encode(mac(secret, body).finalize().into_bytes())
    )
}

/// A request body whose signature matched; only [`WebhookSecrets::verify`] and
/// [`Verified::unsigned`] make one, so the enqueue path cannot take an unchecked body.
#[derive(Debug, Clone)]
pub struct Verified(Bytes);

impl Verified {
    /// For routes explicitly configured with `HOOKBRIDGE_ALLOW_UNSIGNED=true`.
    pub fn unsigned(body: Bytes) -> Self {
        Self(body)
    }

    pub fn bytes(&self) -> &Bytes {
        &self.0
    }

    pub fn into_bytes(self) -> Bytes {
        self.0
    }
}

/// Why a request was not authenticated. The messages never echo the header.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    #[error("signature header is missing")]
    Missing,
    #[error("signature header is not of the form sha256=<64 hex digits>")]
    Malformed,
    #[error("signature does not match")]
    Mismatch,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_documented_test_vector() {
        assert_eq!(
            sign_with("It's a Secret to Everybody", b"Hello, World!"),
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
        let secrets = WebhookSecrets::parse("It's a Secret to Everybody").unwrap();
        let ok = secrets.verify(
            Some("sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"),
            Bytes::from_static(b"Hello, World!"),
        );
        assert!(ok.is_ok());
    }

    #[test]
    fn any_rotated_secret_matches() {
        const OLD: &str = "old-rotated-secret-1";
        const NEW: &str = "new-rotated-secret-2";
        let secrets = WebhookSecrets::parse(&format!(" {OLD} , {NEW} ,")).unwrap();
        assert_eq!(secrets.len(), 2);
        for s in [OLD, NEW] {
            let sig = sign_with(s, b"{}");
            assert!(
                secrets
                    .verify(Some(&sig), Bytes::from_static(b"{}"))
                    .is_ok()
            );
        }
        let sig = sign_with("other", b"{}");
        assert_eq!(
            secrets
                .verify(Some(&sig), Bytes::from_static(b"{}"))
                .unwrap_err(),
            SignatureError::Mismatch
        );
    }

    #[test]
    fn malformed_and_missing_headers() {
        let secrets = WebhookSecrets::parse("sixteen-byte-key").unwrap();
        let body = Bytes::from_static(b"{}");
        assert_eq!(
            secrets.verify(None, body.clone()).unwrap_err(),
            SignatureError::Missing
        );
        for bad in ["sha1=00", "sha256=zz", "sha256=abcd", "757107ea"] {
            assert_eq!(
                secrets.verify(Some(bad), body.clone()).unwrap_err(),
                SignatureError::Malformed,
                "{bad}"
            );
        }
    }

    #[test]
    fn shared_secret_headers_match_any_active_secret_and_nothing_else() {
        let secrets = WebhookSecrets::parse("old-one-0123456789,new-one-0123456789").unwrap();
        let body = Bytes::from_static(b"{}");
        for ok in ["sha256=old-one-0123456789", " sha256=new-one-0123456789 "] {
            assert!(
                secrets.verify_shared_secret(Some(ok), body.clone()).is_ok(),
                "{ok}"
            );
        }
        for (bad, error) in [
            (None, SignatureError::Missing),
            (Some("old-one-0123456789"), SignatureError::Malformed),
            (Some("sha256="), SignatureError::Malformed),
            (Some("sha256=old-one-012345678"), SignatureError::Mismatch),
            (Some("sha256=old-one-01234567890"), SignatureError::Mismatch),
            (
                Some(&*sign_with("old-one-0123456789", b"{}")),
                SignatureError::Mismatch,
            ),
        ] {
            assert_eq!(
                secrets.verify_shared_secret(bad, body.clone()).unwrap_err(),
                error,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn empty_lists_are_refused_and_debug_hides_secrets() {
        assert_eq!(
            WebhookSecrets::parse(" , ").unwrap_err(),
            SecretsError::Empty
        );
        let s = WebhookSecrets::parse("hunter2-hunter2-hunter2").unwrap();
        assert!(!format!("{s:?}").contains("hunter2"));
    }

    #[test]
    fn short_secrets_are_refused_without_showing_them() {
        let err = WebhookSecrets::parse("hunter2").unwrap_err();
        assert_eq!(
            err,
            SecretsError::TooShort {
                position: 1,
                count: 1,
                bytes: 7
            }
        );
        // A comma inside a long secret makes two short ones.
        let err = WebhookSecrets::parse("long-enough-but,has-a-comma").unwrap_err();
        assert!(
            matches!(err, SecretsError::TooShort { count: 2, .. }),
            "{err}"
        );
        let shown = err.to_string();
        assert!(
            !shown.contains("long-enough") && !shown.contains("has-a"),
            "{shown}"
        );
        assert!(WebhookSecrets::parse("exactly-16-bytes").is_ok());
    }
}
