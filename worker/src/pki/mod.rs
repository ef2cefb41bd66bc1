//! PKI for CR approvals: an approver's key pair (`hookbridge pki keygen`), a signed approval of one
//! CR (`hookbridge pki sign`), and its verification against trusted keys (`hookbridge pki verify`,
//! and the CR gate with `ENFORCE_PKI_VALIDATION=true`).
//!
//! Signing and verification use `ring`; RSA key generation (which `ring` does not do) uses `rsa`,
//! password encryption of private keys `pkcs8` (PBES2: scrypt + AES-256-CBC), certificates
//! `rcgen`, and reading certificates `x509-cert`. Nothing of the cryptography or its encodings is
//! written here.
//!
//! # Layout
//! - [`keys`]: generating key pairs, encrypted private keys in and out.
//! - [`approval`]: the signed approval — its canonical statement, signing, verifying.
//! - [`trust`]: the trusted public keys and certificates.

pub mod approval;
pub mod keys;
pub mod trust;

use sha2::{Digest, Sha256};

/// A signing algorithm hookbridge keys use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Algorithm {
    /// RSA, PKCS#1 v1.5 signatures over SHA-256.
    #[serde(rename = "RSA_PKCS1_SHA256")]
    Rsa,
    #[serde(rename = "ED25519")]
    Ed25519,
}

/// Why a PKI operation failed; never shows a password or key material.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// The password does not open the key (or the file is not an encrypted key).
    #[error("{0}")]
    Key(String),
    /// A file could not be read or written.
    #[error("{0}")]
    Io(String),
    /// Generation or encoding failed.
    #[error("{0}")]
    Crypto(String),
}

/// The id of a public key: `sha256:` and the hex SHA-256 of its SubjectPublicKeyInfo (DER).
pub fn key_id(spki_der: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(spki_der)))
}
