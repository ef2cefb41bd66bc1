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
//! Nothing in the pipeline removes a claim once its message is handled. A content-addressed claim
//! can be named by more than one message (a redelivery, or a message moved back from the
//! dead-letter queue), and deleting it after the first one would strand the others; expiring
//! claims is left to the operator (on S3, a lifecycle rule longer than the queues' retention).
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

    fn get(&self, claim: &ClaimRef) -> Result<Vec<u8>, ClaimError> {
        let path = self.path_of(&claim.sha256)?;
        let bytes = std::fs::read(&path).map_err(io(&path))?;
        verify(claim, &bytes)?;
        Ok(bytes)
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
