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

/// Why a configured secret list was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("holds no secret (an empty value or only commas)")]
pub struct EmptySecrets;

impl WebhookSecrets {
    /// Parses a comma-separated list; surrounding whitespace of each secret is ignored.
    ///
    /// # Errors
    /// When no non-empty secret remains.
    pub fn parse(list: &str) -> Result<Self, EmptySecrets> {
        let secrets: Vec<SecretString> = list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| SecretString::from(s.to_owned()))
            .collect();
        if secrets.is_empty() {
            return Err(EmptySecrets);
        }
        Ok(Self(secrets))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Checks `header` (`sha256=<hex>`) against the body under every active secret.
    ///
    /// # Errors
    /// [`SignatureError`] when the header is missing, malformed or matches no secret.
    pub fn verify(&self, header: Option<&str>, body: Bytes) -> Result<Verified, SignatureError> {
        let header = header.ok_or(SignatureError::Missing)?.trim();
        let hex_digest = header
            .strip_prefix("sha256=")
            .ok_or(SignatureError::Malformed)?;
        let expected = hex::decode(hex_digest).map_err(|_| SignatureError::Malformed)?;
        if expected.len() != 32 {
            return Err(SignatureError::Malformed);
        }
        // Every secret is tried, even after a match, so timing does not reveal which one matched.
        let mut matched = false;
        for secret in &self.0 {
            matched |= mac(secret.expose_secret(), &body)
                .verify_slice(&expected)
                .is_ok();
        }
        if matched {
            Ok(Verified(body))
        } else {
            Err(SignatureError::Mismatch)
        }
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
        let secrets = WebhookSecrets::parse(" old , new ,").unwrap();
        assert_eq!(secrets.len(), 2);
        for s in ["old", "new"] {
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
        let secrets = WebhookSecrets::parse("s").unwrap();
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
        let secrets = WebhookSecrets::parse("old-one,new-one").unwrap();
        let body = Bytes::from_static(b"{}");
        for ok in ["sha256=old-one", " sha256=new-one "] {
            assert!(
                secrets.verify_shared_secret(Some(ok), body.clone()).is_ok(),
                "{ok}"
            );
        }
        for (bad, error) in [
            (None, SignatureError::Missing),
            (Some("old-one"), SignatureError::Malformed),
            (Some("sha256="), SignatureError::Malformed),
            (Some("sha256=old-on"), SignatureError::Mismatch),
            (Some("sha256=old-one2"), SignatureError::Mismatch),
            (
                Some(&*sign_with("old-one", b"{}")),
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
        assert_eq!(WebhookSecrets::parse(" , ").unwrap_err(), EmptySecrets);
        let s = WebhookSecrets::parse("hunter2").unwrap();
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
