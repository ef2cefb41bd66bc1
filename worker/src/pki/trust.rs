//! The public keys an approval may be signed with: every `*.pub` (`PUBLIC KEY` PEM) and `*.crt` /
//! `*.pem` (`CERTIFICATE` PEM) file of a directory (`HOOKBRIDGE_PKI_TRUSTED_DIR` or `--trusted`),
//! and the directory and files the configuration file's `[pki]` table names. A certificate is
//! trusted only within its validity.

use std::path::Path;

use hookbridge_shared::config::PkiFile;

use chrono::{DateTime, Utc};
use pkcs8::der::{Decode, DecodePem, Encode};

use super::{PkiError, key_id};

/// One trusted key.
#[derive(Debug, Clone)]
pub struct TrustedKey {
    /// The file it came from (without extension): how the output names the signer.
    pub name: String,
    pub key_id: String,
    /// SubjectPublicKeyInfo DER.
    pub spki: Vec<u8>,
    /// A certificate's validity; none for a bare public key.
    pub valid: Option<(DateTime<Utc>, DateTime<Utc>)>,
}

/// The trusted keys.
#[derive(Debug, Clone, Default)]
pub struct TrustedKeys {
    pub keys: Vec<TrustedKey>,
}

fn to_chrono(t: x509_cert::time::Time) -> DateTime<Utc> {
    DateTime::<Utc>::from(t.to_system_time())
}

impl TrustedKeys {
    /// Every key of `dir`.
    ///
    /// # Errors
    /// [`PkiError::Io`] when the directory cannot be read, or a key file cannot be parsed (a
    /// trusted directory with a broken file is a configuration mistake, not something to skip).
    pub fn load_dir(dir: &Path) -> Result<Self, PkiError> {
        let entries = std::fs::read_dir(dir)
            .map_err(|e| PkiError::Io(format!("trusted keys {}: {e}", dir.display())))?;
        let mut keys = Vec::new();
        let mut paths: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
        paths.sort();
        for path in paths {
            let extension = path
                .extension()
                .and_then(|e| e.to_str())
                .unwrap_or_default();
            if !matches!(extension, "pub" | "crt" | "pem") {
                continue;
            }
            keys.push(load_file(&path)?);
        }
        if keys.is_empty() {
            return Err(PkiError::Io(format!(
                "trusted keys {}: no *.pub, *.crt or *.pem file",
                dir.display()
            )));
        }
        Ok(Self { keys })
    }

    /// The keys of `dir` (`HOOKBRIDGE_PKI_TRUSTED_DIR`, `--trusted`) and of the configuration
    /// file's `[pki]` table together; `None` when neither names any.
    ///
    /// # Errors
    /// [`PkiError::Io`] when a named directory or file cannot be read or parsed.
    pub fn load(dir: Option<&Path>, file: &PkiFile) -> Result<Option<Self>, PkiError> {
        if dir.is_none() && file.is_empty() {
            return Ok(None);
        }
        let mut keys = Vec::new();
        for dir in dir.into_iter().chain(file.trusted_dir.as_deref()) {
            keys.extend(Self::load_dir(dir)?.keys);
        }
        for path in &file.trusted_keys {
            keys.push(load_file(path)?);
        }
        Ok(Some(Self { keys }))
    }

    pub fn find(&self, key_id: &str) -> Option<&TrustedKey> {
        self.keys.iter().find(|k| k.key_id == key_id)
    }
}

/// One key or certificate file, named after its file name without extension.
fn load_file(path: &Path) -> Result<TrustedKey, PkiError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| PkiError::Io(format!("{shown}: {e}")))?;
    let name = path
        .file_stem()
        .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
    parse(&text, name).map_err(|e| PkiError::Io(format!("{shown}: {e}")))
}

/// A `PUBLIC KEY` or `CERTIFICATE` PEM.
fn parse(text: &str, name: String) -> Result<TrustedKey, String> {
    if text.contains("-----BEGIN CERTIFICATE-----") {
        let cert = x509_cert::Certificate::from_pem(text)
            .map_err(|e| format!("not a certificate: {e}"))?;
        let spki = cert
            .tbs_certificate
            .subject_public_key_info
            .to_der()
            .map_err(|e| e.to_string())?;
        let validity = &cert.tbs_certificate.validity;
        Ok(TrustedKey {
            name,
            key_id: key_id(&spki),
            spki,
            valid: Some((
                to_chrono(validity.not_before),
                to_chrono(validity.not_after),
            )),
        })
    } else {
        let (label, document) =
            pkcs8::Document::from_pem(text).map_err(|e| format!("not a PEM public key: {e}"))?;
        if label != "PUBLIC KEY" {
            return Err(format!(
                "expected a PUBLIC KEY or CERTIFICATE, found {label}"
            ));
        }
        pkcs8::spki::SubjectPublicKeyInfoRef::from_der(document.as_bytes())
            .map_err(|e| format!("not a public key: {e}"))?;
        let spki = document.as_bytes().to_vec();
        Ok(TrustedKey {
            name,
            key_id: key_id(&spki),
            spki,
            valid: None,
        })
    }
}
