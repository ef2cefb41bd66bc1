//! Claim checks: where a payload goes when its envelope is larger than the queue's message limit
//! (256 KiB on SQS by default), so that no event is ever dropped for its size.
//!
//! A claim is named after the SHA-256 of its content (`<sha256>.json`): a redelivered copy of the
//! same payload reuses the same name, and a reader checks what it got against the name, so an
//! altered claim is refused ([`ClaimError::Corrupt`]) rather than acted on. A claim is complete and
//! durable before the envelope that names it is sent, so nothing the ingest acknowledged is lost.
//!
//! Two backends behind one async API ([`ClaimStore`]), chosen once from the configuration:
//! - **a directory** (the default, `HOOKBRIDGE_CLAIM_DIR`): write-to-temp, fsync, rename,
//!   fsync-dir, so a claim file exists completely or not at all. On a multi-host SQS deployment
//!   every ingest and worker must see the same directory (an EFS mount, say).
//! - **an S3 bucket** (`HOOKBRIDGE_CLAIM_S3_BUCKET`, [`s3`]): for hosts that share no disk
//!   (Kubernetes, several EC2 instances), as AWS's SQS Extended Client Library does it.
//!
//! No claim is removed when its message is handled. A content-addressed claim can be named by
//! more than one message (a redelivery, or a message moved back from the dead-letter queue), and
//! deleting it after the first one would strand the others. Claims are collected by age instead,
//! once no queue can still hold a message naming them: in a directory by
//! [`ClaimStore::remove_older_than`] (the ingest runs it hourly; storing a claim again refreshes
//! its age), on S3 by the bucket's lifecycle rule (README, "Configuration").
//! [`ClaimStore::remove`] is there for tools and tests.

pub mod s3;

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use sha2::{Digest, Sha256};

use crate::envelope::ClaimRef;

pub use s3::{BucketName, S3Claims, S3Location};

/// Where claimed payloads are kept; cheap to clone.
#[derive(Debug, Clone)]
pub enum ClaimStore {
    /// A directory every ingest and worker can read (the default).
    Dir(DirClaims),
    /// An S3 bucket and key prefix.
    S3(S3Claims),
}

/// What can go wrong storing or loading a claim, sorted by [`ClaimError::is_transient`]: a
/// worker retries a transient error later and dead-letters a permanent one at once; the ingest
/// answers 503 to either, so the sender redelivers.
#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    /// The directory or a file in it cannot be read or written. Transient, a missing file
    /// included: a shared directory that is not mounted (or not caught up) yet heals by itself.
    #[error("claim store {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// S3 did not store or return the object now: no connection, a timeout, a 5xx, throttling,
    /// access refused, no such bucket. Transient: each of these heals (or is fixed) without the
    /// message changing.
    #[error("claim store {location}: {reason}")]
    Unavailable { location: String, reason: String },
    /// S3 answered that the object does not exist. Permanent: S3 reads are strongly consistent,
    /// so an object whose upload completed before its envelope was sent is gone (expired or
    /// deleted), not late.
    #[error("claim {sha256} is missing from {location}")]
    Missing { sha256: String, location: String },
    /// The content does not match the name. Permanent: reading it again gives the same bytes.
    #[error("claim {0} is corrupt: its content does not match its hash")]
    Corrupt(String),
    /// The envelope names no valid claim. Permanent.
    #[error("claim name {0:?} is not a sha256 hex digest")]
    BadName(String),
}

impl ClaimError {
    /// Whether the same read or write may succeed later.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Io { .. } | Self::Unavailable { .. })
    }
}

/// The file (and S3 object) name of a claim, after checking that `sha256` is one: the name comes
/// from a queue message, and must not become a path outside the store.
fn file_name(sha256: &str) -> Result<String, ClaimError> {
    if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ClaimError::BadName(sha256.to_owned()));
    }
    Ok(format!("{sha256}.json"))
}

/// Refuses content that is not what `claim` names.
fn verify(claim: &ClaimRef, bytes: &[u8]) -> Result<(), ClaimError> {
    if bytes.len() as u64 != claim.bytes || hex::encode(Sha256::digest(bytes)) != claim.sha256 {
        return Err(ClaimError::Corrupt(claim.sha256.clone()));
    }
    Ok(())
}

/// Runs blocking work (hashing megabytes, file I/O) off the async threads: the ingest's HTTP
/// workers and the worker's consumer tasks keep answering meanwhile.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ClaimError> + Send + 'static,
) -> Result<T, ClaimError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ClaimError::Io {
            path: "(claim store task)".into(),
            source: std::io::Error::other(e.to_string()),
        })?
}

impl ClaimStore {
    /// A directory store (the default backend).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self::Dir(DirClaims { dir: dir.into() })
    }

    /// An S3 store, reached with the standard AWS configuration (see [`S3Claims::new`]).
    pub fn s3(location: S3Location) -> Self {
        Self::S3(S3Claims::new(location))
    }

    /// Stores `bytes` durably and returns the reference to put in the envelope.
    ///
    /// # Errors
    /// [`ClaimError::Io`] / [`ClaimError::Unavailable`] when the claim could not be stored.
    pub async fn put(&self, bytes: Bytes) -> Result<ClaimRef, ClaimError> {
        match self {
            Self::Dir(dir) => {
                let dir = dir.clone();
                blocking(move || dir.put(&bytes)).await
            }
            Self::S3(s3) => {
                let hashed = bytes.clone();
                let digest: [u8; 32] = blocking(move || Ok(Sha256::digest(&hashed).into())).await?;
                let claim = ClaimRef {
                    sha256: hex::encode(digest),
                    bytes: bytes.len() as u64,
                };
                s3.put(&claim.sha256, &digest, bytes).await?;
                Ok(claim)
            }
        }
    }

    /// Loads a claimed payload and checks it against its name.
    ///
    /// # Errors
    /// [`ClaimError`], classified ([`ClaimError::is_transient`]).
    pub async fn get(&self, claim: &ClaimRef) -> Result<Vec<u8>, ClaimError> {
        let claim = claim.clone();
        match self {
            Self::Dir(dir) => {
                let dir = dir.clone();
                blocking(move || dir.get(&claim)).await
            }
            Self::S3(s3) => {
                let bytes = s3.get(&claim).await?;
                blocking(move || {
                    verify(&claim, &bytes)?;
                    Ok(Vec::from(bytes))
                })
                .await
            }
        }
    }

    /// Removes a claim; a missing one is not an error. Nothing in the pipeline calls this (see
    /// the module docs for why).
    ///
    /// # Errors
    /// [`ClaimError::Io`] / [`ClaimError::Unavailable`] when the claim exists but cannot be
    /// removed.
    pub async fn remove(&self, claim: &ClaimRef) -> Result<(), ClaimError> {
        match self {
            Self::Dir(dir) => {
                let dir = dir.clone();
                let claim = claim.clone();
                blocking(move || dir.remove(&claim)).await
            }
            Self::S3(s3) => s3.remove(&claim.sha256).await,
        }
    }
}

impl ClaimStore {
    /// Deletes directory claims last stored more than `age` ago and returns how many; on S3 it
    /// does nothing (the bucket's lifecycle rule expires claims there).
    ///
    /// # Errors
    /// [`ClaimError::Io`] when the directory cannot be read.
    pub async fn remove_older_than(&self, age: std::time::Duration) -> Result<usize, ClaimError> {
        match self {
            Self::Dir(dir) => {
                let dir = dir.clone();
                blocking(move || dir.remove_older_than(age)).await
            }
            Self::S3(_) => Ok(0),
        }
    }
}

/// Where claims are, for logs: the directory, or `s3://bucket/prefix`.
impl fmt::Display for ClaimStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Dir(dir) => write!(f, "{}", dir.dir.display()),
            Self::S3(s3) => write!(f, "{}", s3.location()),
        }
    }
}

/// A directory of claimed payloads. Its methods block: [`ClaimStore`] runs them on Tokio's
/// blocking threads.
#[derive(Debug, Clone)]
pub struct DirClaims {
    dir: PathBuf,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ClaimError + '_ {
    move |source| ClaimError::Io {
        path: path.display().to_string(),
        source,
    }
}

impl DirClaims {
    fn path_of(&self, sha256: &str) -> Result<PathBuf, ClaimError> {
        Ok(self.dir.join(file_name(sha256)?))
    }

    fn put(&self, bytes: &[u8]) -> Result<ClaimRef, ClaimError> {
        let sha256 = hex::encode(Sha256::digest(bytes));
        let path = self.path_of(&sha256)?;
        std::fs::create_dir_all(&self.dir).map_err(io(&self.dir))?;
        if path.exists() {
            // Named by one more message: it must live as long as that one may.
            std::fs::File::options()
                .append(true)
                .open(&path)
                .and_then(|f| f.set_modified(std::time::SystemTime::now()))
                .map_err(io(&path))?;
        } else {
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

    fn get(&self, claim: &ClaimRef) -> Result<Vec<u8>, ClaimError> {
        let path = self.path_of(&claim.sha256)?;
        let bytes = std::fs::read(&path).map_err(io(&path))?;
        verify(claim, &bytes)?;
        Ok(bytes)
    }

    /// Deletes claims (and leftover temporary files) last written more than `age` ago; how many.
    fn remove_older_than(&self, age: std::time::Duration) -> Result<usize, ClaimError> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(io(&self.dir)(e)),
        };
        let cutoff = std::time::SystemTime::now()
            .checked_sub(age)
            .unwrap_or(std::time::UNIX_EPOCH);
        let mut removed = 0;
        for entry in entries.filter_map(Result::ok) {
            let name = entry.file_name().to_string_lossy().into_owned();
            let ours = name
                .strip_suffix(".json")
                .is_some_and(|sha| file_name(sha).is_ok())
                || (name.starts_with('.') && name.ends_with(".tmp"));
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|modified| modified < cutoff);
            if ours && old && std::fs::remove_file(entry.path()).is_ok() {
                removed += 1;
            }
        }
        Ok(removed)
    }

    fn remove(&self, claim: &ClaimRef) -> Result<(), ClaimError> {
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

    /// Storing a claim again makes it young again: a message that names it now must find it for
    /// as long as the queue may keep that message.
    #[tokio::test]
    async fn storing_again_refreshes_a_claims_age() {
        let dir = tempfile_dir();
        let store = ClaimStore::new(&dir);
        let bytes = Bytes::from_static(b"{\"big\":true}");
        let claim = store.put(bytes.clone()).await.unwrap();
        let path = dir.join(file_name(&claim.sha256).unwrap());
        let long_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(30 * 86_400);
        let age = |p: &Path| std::fs::File::options().append(true).open(p).unwrap();
        age(&path).set_modified(long_ago).unwrap();
        store.put(bytes).await.unwrap();
        let day = std::time::Duration::from_secs(86_400);
        assert_eq!(store.remove_older_than(day).await.unwrap(), 0);
        age(&path).set_modified(long_ago).unwrap();
        assert_eq!(store.remove_older_than(day).await.unwrap(), 1);
        assert!(!path.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn tempfile_dir() -> PathBuf {
        std::env::temp_dir().join(format!("claims-{}", uuid::Uuid::new_v4()))
    }

    #[tokio::test]
    async fn put_get_remove_round_trip() {
        let dir = std::env::temp_dir().join(format!("claims-{}", uuid::Uuid::new_v4()));
        let store = ClaimStore::new(&dir);
        let big = Bytes::from(vec![b'x'; 5 * 1024 * 1024]);
        let claim = store.put(big.clone()).await.unwrap();
        assert_eq!(claim.bytes, big.len() as u64);
        assert_eq!(store.get(&claim).await.unwrap(), big);
        assert_eq!(
            store.put(big.clone()).await.unwrap(),
            claim,
            "same content, same name"
        );
        std::fs::write(dir.join(format!("{}.json", claim.sha256)), b"tampered").unwrap();
        let corrupt = store.get(&claim).await.unwrap_err();
        assert!(matches!(corrupt, ClaimError::Corrupt(_)), "{corrupt}");
        assert!(!corrupt.is_transient());
        store.remove(&claim).await.unwrap();
        store.remove(&claim).await.unwrap();
        let missing = store.get(&claim).await.unwrap_err();
        assert!(
            missing.is_transient(),
            "a directory may not be mounted yet: {missing}"
        );
        let bad = ClaimRef {
            sha256: "../etc/passwd".into(),
            bytes: 1,
        };
        let refused = store.get(&bad).await.unwrap_err();
        assert!(matches!(refused, ClaimError::BadName(_)));
        assert!(!refused.is_transient());
        std::fs::remove_dir_all(dir).ok();
    }
}
