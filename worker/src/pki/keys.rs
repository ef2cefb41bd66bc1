//! Generating an approver's key pair and reading the private key back with its password.
//!
//! Files (`<slug>` from the approver's name): `<slug>.key`, the PKCS#8 private key encrypted with
//! the password (`-----BEGIN ENCRYPTED PRIVATE KEY-----`, mode 0600); `<slug>.pub`, the public key
//! (`-----BEGIN PUBLIC KEY-----`); `<slug>.crt`, a self-signed certificate naming the approver.

use std::path::{Path, PathBuf};

use pkcs8::der::EncodePem;
use pkcs8::der::zeroize::Zeroizing;
use pkcs8::{EncodePrivateKey, EncryptedPrivateKeyInfo, LineEnding, PrivateKeyInfo};
use rand_core::OsRng;
use secrecy::{ExposeSecret, SecretString};

use super::{Algorithm, PkiError, key_id};

/// The shortest password a private key is encrypted with.
pub const MIN_PASSWORD_CHARS: usize = 8;

/// RSA sizes `keygen` makes.
pub const RSA_BITS: [usize; 3] = [2048, 3072, 4096];

/// A private key, opened.
pub struct SigningKey {
    pub algorithm: Algorithm,
    /// PKCS#8 DER, wiped when dropped.
    pkcs8: Zeroizing<Vec<u8>>,
    /// SubjectPublicKeyInfo DER.
    pub public_key: Vec<u8>,
}

impl SigningKey {
    pub fn pkcs8(&self) -> &[u8] {
        &self.pkcs8
    }

    pub fn key_id(&self) -> String {
        key_id(&self.public_key)
    }
}

/// What `keygen` wrote.
#[derive(Debug, Clone)]
pub struct Written {
    pub private_key: PathBuf,
    pub public_key: PathBuf,
    pub certificate: PathBuf,
    pub key_id: String,
}

/// `Change Manager` → `change-manager`.
pub fn slug(name: &str) -> String {
    let mut slug = String::new();
    for c in name.trim().chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
    }
    slug.trim_end_matches('-').to_owned()
}

/// Refuses a password shorter than [`MIN_PASSWORD_CHARS`].
///
/// # Errors
/// [`PkiError::Key`] with the reason.
pub fn check_password(password: &SecretString) -> Result<(), PkiError> {
    if password.expose_secret().chars().count() < MIN_PASSWORD_CHARS {
        return Err(PkiError::Key(format!(
            "the password must have at least {MIN_PASSWORD_CHARS} characters"
        )));
    }
    Ok(())
}

fn crypto(e: impl std::fmt::Display) -> PkiError {
    PkiError::Crypto(e.to_string())
}

/// A new key pair of `algorithm` (`bits` for RSA), as PKCS#8 DER.
fn generate_pkcs8(algorithm: Algorithm, bits: usize) -> Result<Zeroizing<Vec<u8>>, PkiError> {
    match algorithm {
        Algorithm::Rsa => {
            if !RSA_BITS.contains(&bits) {
                return Err(PkiError::Crypto(format!(
                    "RSA keys are 2048, 3072 or 4096 bits, not {bits}"
                )));
            }
            let key = rsa::RsaPrivateKey::new(&mut OsRng, bits).map_err(crypto)?;
            let der = key.to_pkcs8_der().map_err(crypto)?;
            Ok(Zeroizing::new(der.as_bytes().to_vec()))
        }
        Algorithm::Ed25519 => {
            let rng = ring::rand::SystemRandom::new();
            let der = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng).map_err(crypto)?;
            Ok(Zeroizing::new(der.as_ref().to_vec()))
        }
    }
}

/// The algorithm of a PKCS#8 key, from its algorithm identifier.
fn algorithm_of(info: &PrivateKeyInfo<'_>) -> Result<Algorithm, PkiError> {
    match info.algorithm.oid.to_string().as_str() {
        "1.2.840.113549.1.1.1" => Ok(Algorithm::Rsa),
        "1.3.101.112" => Ok(Algorithm::Ed25519),
        other => Err(PkiError::Key(format!(
            "the key's algorithm {other} is neither RSA nor Ed25519"
        ))),
    }
}

/// The SubjectPublicKeyInfo DER of `key_pair`.
fn public_der(key_pair: &rcgen::KeyPair) -> Result<Vec<u8>, PkiError> {
    let (_, document) = pkcs8::Document::from_pem(&key_pair.public_key_pem()).map_err(crypto)?;
    Ok(document.as_bytes().to_vec())
}

/// The key pair of PKCS#8 `der`, for certificates and public keys.
fn cert_key_pair(der: &[u8]) -> Result<rcgen::KeyPair, PkiError> {
    let info = PrivateKeyInfo::try_from(der).map_err(crypto)?;
    let pem = info.to_pem(LineEnding::LF).map_err(crypto)?;
    rcgen::KeyPair::from_pem(&pem).map_err(crypto)
}

/// Generates a key pair for `name` and writes `<slug>.key` (encrypted with `password`),
/// `<slug>.pub` and `<slug>.crt` (self-signed, valid `days`) into `dir`.
///
/// # Errors
/// [`PkiError`]: a password too short, an RSA size not offered, a file that cannot be written or
/// that exists already (keys are never overwritten).
pub fn keygen(
    name: &str,
    dir: &Path,
    algorithm: Algorithm,
    bits: usize,
    password: &SecretString,
    days: u32,
) -> Result<Written, PkiError> {
    check_password(password)?;
    let slug = slug(name);
    if slug.is_empty() {
        return Err(PkiError::Key(format!("{name:?} gives no file name")));
    }
    let der = generate_pkcs8(algorithm, bits)?;
    let info = PrivateKeyInfo::try_from(der.as_slice()).map_err(crypto)?;
    let encrypted = info
        .encrypt(OsRng, password.expose_secret().as_bytes())
        .map_err(crypto)?;
    let private_pem = encrypted
        .to_pem("ENCRYPTED PRIVATE KEY", LineEnding::LF)
        .map_err(crypto)?;
    let key_pair = cert_key_pair(&der)?;
    let public_pem = key_pair.public_key_pem();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(crypto)?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name.trim());
    params.distinguished_name.push(
        rcgen::DnType::OrganizationalUnitName,
        "hookbridge CR approvers",
    );
    let now = time_now();
    params.not_before = now;
    params.not_after = now + time::Duration::days(i64::from(days));
    let certificate = params.self_signed(&key_pair).map_err(crypto)?;
    std::fs::create_dir_all(dir).map_err(|e| PkiError::Io(format!("{}: {e}", dir.display())))?;
    let written = Written {
        private_key: dir.join(format!("{slug}.key")),
        public_key: dir.join(format!("{slug}.pub")),
        certificate: dir.join(format!("{slug}.crt")),
        key_id: key_id(&public_der(&key_pair)?),
    };
    write_new(&written.private_key, private_pem.as_bytes(), 0o600)?;
    write_new(&written.public_key, public_pem.as_bytes(), 0o644)?;
    write_new(&written.certificate, certificate.pem().as_bytes(), 0o644)?;
    Ok(written)
}

fn time_now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

/// Creates `path` with `mode`; refuses to replace a file that exists.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), PkiError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let shown = path.display();
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| PkiError::Io(format!("{shown}: {e}")))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| PkiError::Io(format!("{shown}: {e}")))
}

/// Opens the encrypted private key in `pem` with `password`.
///
/// # Errors
/// [`PkiError::Key`] when the text is not an encrypted PKCS#8 key or the password is wrong.
pub fn open(pem: &str, password: &SecretString) -> Result<SigningKey, PkiError> {
    let (label, document) = pkcs8::SecretDocument::from_pem(pem)
        .map_err(|_| PkiError::Key("not a PEM private key".into()))?;
    if label != "ENCRYPTED PRIVATE KEY" {
        return Err(PkiError::Key(format!(
            "expected an ENCRYPTED PRIVATE KEY, found {label}: keys are kept encrypted"
        )));
    }
    let encrypted = EncryptedPrivateKeyInfo::try_from(document.as_bytes())
        .map_err(|_| PkiError::Key("not an encrypted PKCS#8 private key".into()))?;
    let plain = encrypted
        .decrypt(password.expose_secret().as_bytes())
        .map_err(|_| PkiError::Key("wrong password (the key could not be decrypted)".into()))?;
    let der = Zeroizing::new(plain.as_bytes().to_vec());
    let info = PrivateKeyInfo::try_from(der.as_slice())
        .map_err(|_| PkiError::Key("wrong password (the key could not be decrypted)".into()))?;
    let algorithm = algorithm_of(&info)?;
    let public_key = public_der(&cert_key_pair(&der)?)?;
    Ok(SigningKey {
        algorithm,
        pkcs8: der,
        public_key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        assert_eq!(slug("Change Manager"), "change-manager");
        assert_eq!(slug("  Ops / Security Lead! "), "ops-security-lead");
        assert_eq!(slug("!!"), "");
    }

    #[test]
    fn keys_round_trip_and_a_wrong_password_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let password = SecretString::from("correct horse".to_owned());
        for (algorithm, bits) in [(Algorithm::Ed25519, 0), (Algorithm::Rsa, 2048)] {
            let sub = dir.path().join(format!("{algorithm:?}"));
            let written = keygen("Change Manager", &sub, algorithm, bits, &password, 365).unwrap();
            let pem = std::fs::read_to_string(&written.private_key).unwrap();
            assert!(pem.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"));
            let key = open(&pem, &password).unwrap();
            assert_eq!(key.algorithm, algorithm);
            assert_eq!(key.key_id(), written.key_id);
            let wrong = open(&pem, &SecretString::from("not the password".to_owned()));
            assert!(matches!(wrong, Err(PkiError::Key(ref m)) if m.contains("wrong password")));
            // Never overwritten.
            assert!(keygen("Change Manager", &sub, algorithm, bits, &password, 365).is_err());
        }
        let short = keygen(
            "x",
            dir.path(),
            Algorithm::Ed25519,
            0,
            &SecretString::from("short".to_owned()),
            1,
        );
        assert!(matches!(short, Err(PkiError::Key(_))));
    }
}
