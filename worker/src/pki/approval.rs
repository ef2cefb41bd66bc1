//! The signed approval of one Change Request: a statement binding CR id, status `Approved`,
//! approver, role, time and expiry, signed over its canonical form, so that it cannot be edited or
//! replayed onto another CR.
//!
//! The file (`<CR>-signature.json`, also what is pasted into `CR_SIGNATURE_FIELD`):
//!
//! ```json
//! {"format": "hookbridge-cr-approval/v1",
//!  "statement": {"cr_id": "CR-2026-0001", "status": "Approved", "approver": "Alice Admin",
//!                "role": "Change Manager", "signed_at": "2026-11-29T08:00:00Z",
//!                "expires_at": "2026-12-06T08:00:00Z"},
//!  "algorithm": "ED25519", "key_id": "sha256:…", "signature": "<base64>"}
//! ```
//!
//! The signed bytes are `hookbridge-cr-approval/v1\n` followed by the statement serialised with its
//! fields in the order above and no spaces: a verifier re-serialises the statement it parsed, so
//! any change to a field, added field or changed format breaks the signature.

use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use pkcs8::der::Decode;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::keys::SigningKey;
use super::trust::TrustedKeys;
use super::{Algorithm, PkiError};

/// The format tag, and the first line of what is signed.
pub const FORMAT: &str = "hookbridge-cr-approval/v1";

/// What the approver states.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Statement {
    pub cr_id: String,
    pub status: String,
    pub approver: String,
    pub role: String,
    pub signed_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// A statement with its signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedApproval {
    pub format: String,
    pub statement: Statement,
    pub algorithm: Algorithm,
    pub key_id: String,
    pub signature: String,
}

fn signed_bytes(statement: &Statement) -> Vec<u8> {
    let mut bytes = format!("{FORMAT}\n").into_bytes();
    // A struct of strings and times always serialises.
    bytes.extend(serde_json::to_vec(statement).unwrap_or_default());
    bytes
}

/// Signs `statement` with `key`.
///
/// # Errors
/// [`PkiError::Crypto`] when `ring` refuses the key.
pub fn sign(key: &SigningKey, statement: Statement) -> Result<SignedApproval, PkiError> {
    let message = signed_bytes(&statement);
    let crypto = |e: &dyn std::fmt::Display| PkiError::Crypto(format!("signing: {e}"));
    let signature = match key.algorithm {
        Algorithm::Rsa => {
            let pair =
                ring::signature::RsaKeyPair::from_pkcs8(key.pkcs8()).map_err(|e| crypto(&e))?;
            let mut signature = vec![0; pair.public().modulus_len()];
            pair.sign(
                &ring::signature::RSA_PKCS1_SHA256,
                &ring::rand::SystemRandom::new(),
                &message,
                &mut signature,
            )
            .map_err(|e| crypto(&e))?;
            signature
        }
        Algorithm::Ed25519 => {
            let pair = ring::signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(key.pkcs8())
                .map_err(|e| crypto(&e))?;
            pair.sign(&message).as_ref().to_vec()
        }
    };
    Ok(SignedApproval {
        format: FORMAT.into(),
        statement,
        algorithm: key.algorithm,
        key_id: key.key_id(),
        signature: base64::engine::general_purpose::STANDARD.encode(signature),
    })
}

/// A new statement approving `cr_id`, from now until `valid_for` from now.
pub fn approve(cr_id: &str, approver: &str, role: &str, valid_for: Duration) -> Statement {
    let now = Utc::now();
    Statement {
        cr_id: cr_id.to_owned(),
        status: "Approved".into(),
        approver: approver.to_owned(),
        role: role.to_owned(),
        signed_at: now,
        expires_at: now + valid_for,
    }
}

/// A signature that verified: who signed, in what role, with which trusted key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub approver: String,
    pub role: String,
    pub key: String,
    pub expires_at: DateTime<Utc>,
}

/// How far in the future a signing time may be (clocks differ).
const CLOCK_SKEW: i64 = 300;

/// Checks a signed approval (as the signature field or the file holds it) for `cr_id` against
/// `trusted`, at `now`.
///
/// # Errors
/// The reason it does not pass, in words a release manager understands.
pub fn verify(
    signed: &Map<String, Value>,
    cr_id: &str,
    trusted: &TrustedKeys,
    now: DateTime<Utc>,
) -> Result<Verified, String> {
    let signed: SignedApproval = serde_json::from_value(Value::Object(signed.clone()))
        .map_err(|e| format!("the signature is not a hookbridge approval ({e})"))?;
    if signed.format != FORMAT {
        return Err(format!("unknown signature format {:?}", signed.format));
    }
    let Some(key) = trusted.find(&signed.key_id) else {
        return Err(format!(
            "the signature was made with a key that is not trusted ({})",
            signed.key_id
        ));
    };
    let signature = base64::engine::general_purpose::STANDARD
        .decode(signed.signature.as_bytes())
        .map_err(|_| "the signature is not base64".to_owned())?;
    let spki = pkcs8::spki::SubjectPublicKeyInfoRef::from_der(&key.spki)
        .map_err(|e| format!("trusted key {}: {e}", key.name))?;
    let raw = spki.subject_public_key.raw_bytes();
    let algorithm: &dyn ring::signature::VerificationAlgorithm =
        match (signed.algorithm, spki.algorithm.oid.to_string().as_str()) {
            (Algorithm::Rsa, "1.2.840.113549.1.1.1") => {
                &ring::signature::RSA_PKCS1_2048_8192_SHA256
            }
            (Algorithm::Ed25519, "1.3.101.112") => &ring::signature::ED25519,
            _ => {
                return Err(format!(
                    "the signature's algorithm does not match trusted key {}",
                    key.name
                ));
            }
        };
    ring::signature::UnparsedPublicKey::new(algorithm, raw)
        .verify(&signed_bytes(&signed.statement), &signature)
        .map_err(|_| {
            "the signature does not match the approval (edited, or not made by this key)".to_owned()
        })?;
    let s = &signed.statement;
    if !s.cr_id.eq_ignore_ascii_case(cr_id) {
        return Err(format!("the signature approves {}, not {cr_id}", s.cr_id));
    }
    if s.status != "Approved" {
        return Err(format!("the signature states {:?}, not Approved", s.status));
    }
    if now >= s.expires_at {
        return Err(format!(
            "the signature expired at {}",
            s.expires_at.to_rfc3339()
        ));
    }
    if s.signed_at > now + Duration::seconds(CLOCK_SKEW) {
        return Err(format!(
            "the signature is dated in the future ({})",
            s.signed_at.to_rfc3339()
        ));
    }
    if let Some((from, until)) = key.valid
        && !(from <= now && now < until)
    {
        return Err(format!(
            "the certificate of trusted key {} is not valid now (valid {} to {})",
            key.name,
            from.to_rfc3339(),
            until.to_rfc3339()
        ));
    }
    Ok(Verified {
        approver: s.approver.clone(),
        role: s.role.clone(),
        key: key.name.clone(),
        expires_at: s.expires_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::keys::{keygen, open};
    use secrecy::SecretString;

    fn fixture(algorithm: Algorithm, bits: usize) -> (tempfile::TempDir, SigningKey, TrustedKeys) {
        let dir = tempfile::tempdir().unwrap();
        let password = SecretString::from("approver-password".to_owned());
        let keys = dir.path().join("keys");
        let written = keygen("Change Manager", &keys, algorithm, bits, &password, 30).unwrap();
        let key = open(
            &std::fs::read_to_string(&written.private_key).unwrap(),
            &password,
        )
        .unwrap();
        // Trust the certificate only, as a deployment would.
        let trusted_dir = dir.path().join("trusted");
        std::fs::create_dir_all(&trusted_dir).unwrap();
        std::fs::copy(&written.certificate, trusted_dir.join("change-manager.crt")).unwrap();
        let trusted = TrustedKeys::load_dir(&trusted_dir).unwrap();
        (dir, key, trusted)
    }

    fn as_map(signed: &SignedApproval) -> Map<String, Value> {
        match serde_json::to_value(signed).unwrap() {
            Value::Object(map) => map,
            _ => unreachable!(),
        }
    }

    #[test]
    fn a_signature_verifies_for_its_cr_only_until_it_expires() {
        for (algorithm, bits) in [(Algorithm::Ed25519, 0), (Algorithm::Rsa, 2048)] {
            let (_dir, key, trusted) = fixture(algorithm, bits);
            let signed = sign(
                &key,
                approve("CR-7", "Alice", "Change Manager", Duration::days(7)),
            )
            .unwrap();
            let now = Utc::now();
            let ok = verify(&as_map(&signed), "cr-7", &trusted, now).unwrap();
            assert_eq!(
                (ok.approver.as_str(), ok.role.as_str()),
                ("Alice", "Change Manager")
            );
            // Another CR, an expired one, an edited one, a future one.
            assert!(
                verify(&as_map(&signed), "CR-8", &trusted, now)
                    .unwrap_err()
                    .contains("approves CR-7")
            );
            let later = now + Duration::days(8);
            assert!(
                verify(&as_map(&signed), "CR-7", &trusted, later)
                    .unwrap_err()
                    .contains("expired")
            );
            let mut edited = signed.clone();
            edited.statement.role = "Security Lead".into();
            assert!(
                verify(&as_map(&edited), "CR-7", &trusted, now)
                    .unwrap_err()
                    .contains("does not match")
            );
            let mut extended = signed.clone();
            extended.statement.expires_at += Duration::days(365);
            assert!(verify(&as_map(&extended), "CR-7", &trusted, now).is_err());
            let mut replayed = signed.clone();
            replayed.statement.cr_id = "CR-8".into();
            assert!(verify(&as_map(&replayed), "CR-8", &trusted, now).is_err());
            let mut added = as_map(&signed);
            added.insert("extra".into(), Value::Bool(true));
            assert!(verify(&added, "CR-7", &trusted, now).is_err());
        }
    }

    #[test]
    fn only_trusted_keys_count() {
        let (_dir, key, _) = fixture(Algorithm::Ed25519, 0);
        let (_other_dir, _, other_trusted) = fixture(Algorithm::Ed25519, 0);
        let signed = sign(
            &key,
            approve("CR-7", "Mallory", "Change Manager", Duration::days(1)),
        )
        .unwrap();
        let err = verify(&as_map(&signed), "CR-7", &other_trusted, Utc::now()).unwrap_err();
        assert!(err.contains("not trusted"), "{err}");
        let mut garbage = Map::new();
        garbage.insert("signature".into(), Value::String("x".into()));
        assert!(
            verify(&garbage, "CR-7", &other_trusted, Utc::now())
                .unwrap_err()
                .contains("not a hookbridge approval")
        );
    }
}
