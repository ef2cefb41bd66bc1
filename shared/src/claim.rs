//! Claim checks: where a payload goes when its envelope is larger than the queue's message limit
//! (256 KiB on SQS by default), so that no event is ever dropped for its size.
//!
//! The payload is written to `<dir>/<sha256>.json` (content-addressed, so a redelivered copy of the
//! same payload reuses the same file) with write-to-temp, fsync, rename, fsync-dir: a claim exists
//! completely or not at all, and it is durable before the envelope that names it is sent. On a
//! multi-host SQS deployment the directory must be shared by ingest and workers (for example an EFS
//! mount, `HOOKBRIDGE_CLAIM_DIR`).

use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::envelope::ClaimRef;

/// A directory of claimed payloads.
#[derive(Debug, Clone)]
pub struct ClaimStore {
    dir: PathBuf,
}

/// What can go wrong storing or loading a claim.
#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    #[error("claim store {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("claim {0} is corrupt: its content does not match its hash")]
    Corrupt(String),
    #[error("claim name {0:?} is not a sha256 hex digest")]
    BadName(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ClaimError + '_ {
    move |source| ClaimError::Io {
        path: path.display().to_string(),
        source,
    }
}

impl ClaimStore {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    fn path_of(&self, sha256: &str) -> Result<PathBuf, ClaimError> {
        if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ClaimError::BadName(sha256.to_owned()));
        }
        Ok(self.dir.join(format!("{sha256}.json")))
    }

    /// Stores `bytes` durably and returns the reference to put in the envelope.
    ///
    /// # Errors
    /// [`ClaimError::Io`] when the directory or file cannot be written and synced.
    pub fn put(&self, bytes: &[u8]) -> Result<ClaimRef, ClaimError> {
        let sha256 = hex::encode(Sha256::digest(bytes));
        let path = self.path_of(&sha256)?;
        std::fs::create_dir_all(&self.dir).map_err(io(&self.dir))?;
        if !path.exists() {
            let tmp = self
                .dir
                .join(format!(".{sha256}.{}.tmp", uuid::Uuid::new_v4().simple()));
            let mut file = std::fs::File::create(&tmp).map_err(io(&tmp))?;
            file.write_all(bytes).map_err(io(&tmp))?;
            file.sync_all().map_err(io(&tmp))?;
            std::fs::rename(&tmp, &path).map_err(io(&path))?;
            std::fs::File::open(&self.dir)
                .and_then(|d| d.sync_all())
                .map_err(io(&self.dir))?;
        }
        Ok(ClaimRef {
            sha256,
            bytes: bytes.len() as u64,
        })
    }

    /// Loads and checks a claimed payload.
    ///
    /// # Errors
    /// [`ClaimError::Io`] when missing or unreadable, [`ClaimError::Corrupt`] when the content does
    /// not hash to its name.
    pub fn get(&self, claim: &ClaimRef) -> Result<Vec<u8>, ClaimError> {
        let path = self.path_of(&claim.sha256)?;
        let bytes = std::fs::read(&path).map_err(io(&path))?;
        if hex::encode(Sha256::digest(&bytes)) != claim.sha256 {
            return Err(ClaimError::Corrupt(claim.sha256.clone()));
        }
        Ok(bytes)
    }

    /// Removes a claim once its message is settled; a missing file is not an error.
    ///
    /// # Errors
    /// [`ClaimError::Io`] when the file exists but cannot be removed.
    pub fn remove(&self, claim: &ClaimRef) -> Result<(), ClaimError> {
        let path = self.path_of(&claim.sha256)?;
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(&path)(e)),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_get_remove_round_trip() {
        let dir = std::env::temp_dir().join(format!("claims-{}", uuid::Uuid::new_v4()));
        let store = ClaimStore::new(&dir);
        let big = vec![b'x'; 5 * 1024 * 1024];
        let claim = store.put(&big).unwrap();
        assert_eq!(claim.bytes, big.len() as u64);
        assert_eq!(store.get(&claim).unwrap(), big);
        std::fs::write(dir.join(format!("{}.json", claim.sha256)), b"tampered").unwrap();
        assert!(matches!(store.get(&claim), Err(ClaimError::Corrupt(_))));
        store.remove(&claim).unwrap();
        store.remove(&claim).unwrap();
        assert!(store.get(&claim).is_err());
        let bad = ClaimRef {
            sha256: "../etc/passwd".into(),
            bytes: 1,
        };
        assert!(matches!(store.get(&bad), Err(ClaimError::BadName(_))));
        std::fs::remove_dir_all(dir).ok();
    }
}
