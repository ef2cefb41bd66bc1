//! The S3 backend of the claim store: `s3://<bucket>/<prefix><sha256>.json`.
//!
//! Why it is shaped this way:
//! - **Same AWS configuration as SQS.** The client comes from the standard chain
//!   (`AWS_ENDPOINT_URL`, `AWS_REGION`, credentials from the environment, profile or instance
//!   role), so one set of settings and one IAM role serve both. A custom endpoint means a local or
//!   S3-compatible server, which rarely resolves `<bucket>.<host>` names: path-style addressing is
//!   forced then.
//! - **Connected on first use.** Building the AWS configuration is async and the store is built
//!   where the configuration is read; an S3 outage at start must not stop an ingest whose events
//!   almost all travel inline.
//! - **Every call runs on the runtime that built the store.** The ingest's HTTP workers each run a
//!   runtime of their own; the SDK's pooled connections live on the runtime that opened them, so
//!   all of them are opened on one (the process's main runtime), whichever worker asks.
//! - **Every upload is a `PutObject`, even of a key that exists.** It costs what a `HeadObject`
//!   would, and it restarts the object's age, so a lifecycle rule cannot expire a claim that a
//!   newly sent envelope names. S3 checks the upload against the SHA-256 the name is made of
//!   (`x-amz-checksum-sha256`), so a claim is stored intact or not at all.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::primitives::ByteStream;
use base64::Engine;
use bytes::Bytes;
use tokio::runtime::Handle;
use tokio::sync::OnceCell;

use super::{ClaimError, file_name};
use crate::aws_errors::describe;
use crate::envelope::ClaimRef;

/// `HOOKBRIDGE_CLAIM_S3_PREFIX` when unset.
pub const DEFAULT_PREFIX: &str = "claims/";

/// How long one attempt of a call may take: a claim is at most the ingest's 25 MiB body cap, and
/// without a bound a call can hang forever on a half-dead connection.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(60);

/// The longest key S3 takes, in bytes.
const MAX_KEY_BYTES: usize = 1024;
/// What a claim's name adds to the prefix: 64 hex digits and `.json`.
const NAME_BYTES: usize = 64 + ".json".len();

/// An S3 bucket name, checked against S3's naming rules when the configuration is read, so a typo
/// stops the process at start rather than failing the first oversize event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketName(String);

impl BucketName {
    /// Checks `value` against S3's rules for bucket names: 3 to 63 characters of lowercase
    /// letters, digits, dots and hyphens, beginning and ending with a letter or digit, no two dots
    /// in a row, not shaped like an IP address.
    ///
    /// # Errors
    /// A one-line reason.
    pub fn parse(value: &str) -> Result<Self, String> {
        let name = value.trim();
        if name.is_empty() {
            return Err(
                "empty; name an S3 bucket, or unset it to keep claims in a directory".into(),
            );
        }
        if !(3..=63).contains(&name.len()) {
            return Err(format!(
                "{name:?} is not an S3 bucket name: it must be 3 to 63 characters long"
            ));
        }
        if let Some(c) = name
            .chars()
            .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '.' || *c == '-'))
        {
            return Err(format!(
                "{name:?} is not an S3 bucket name: {c:?} is not allowed (lowercase letters, digits, dots and hyphens only)"
            ));
        }
        let alphanumeric = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
        if !alphanumeric(name.chars().next()) || !alphanumeric(name.chars().last()) {
            return Err(format!(
                "{name:?} is not an S3 bucket name: it must begin and end with a letter or digit"
            ));
        }
        if name.contains("..") {
            return Err(format!(
                "{name:?} is not an S3 bucket name: two dots in a row"
            ));
        }
        if name.parse::<std::net::Ipv4Addr>().is_ok() {
            return Err(format!(
                "{name:?} is not an S3 bucket name: it is shaped like an IP address"
            ));
        }
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for BucketName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Checks a key prefix: prepended to every claim's name as it is (`claims/` gives
/// `claims/<sha256>.json`; `claims` would give `claims<sha256>.json`).
///
/// # Errors
/// A one-line reason: a prefix that starts with `/` (S3 keys are not paths, and a leading `/`
/// makes an object no console shows where one expects it), holds control characters, or leaves no
/// room for the name within S3's 1,024-byte keys.
pub fn parse_prefix(value: &str) -> Result<String, String> {
    if value.starts_with('/') {
        return Err(format!(
            "{value:?} starts with '/': S3 keys are not paths (write {:?})",
            value.trim_start_matches('/')
        ));
    }
    if value.chars().any(char::is_control) {
        return Err("holds control characters".into());
    }
    if value.len() + NAME_BYTES > MAX_KEY_BYTES {
        return Err(format!(
            "too long: at most {} bytes, so that the key stays within S3's {MAX_KEY_BYTES}",
            MAX_KEY_BYTES - NAME_BYTES
        ));
    }
    Ok(value.to_owned())
}

/// Where claims go in S3.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Location {
    pub bucket: BucketName,
    /// Prepended to each claim's name (see [`parse_prefix`]).
    pub prefix: String,
}

impl S3Location {
    fn key(&self, sha256: &str) -> Result<String, ClaimError> {
        Ok(format!("{}{}", self.prefix, file_name(sha256)?))
    }
}

impl fmt::Display for S3Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.prefix)
    }
}

struct Inner {
    location: S3Location,
    client: OnceCell<Client>,
    /// The runtime the store was built on, when there was one.
    runtime: Option<Handle>,
}

/// Claims in an S3 bucket; cheap to clone (clones share the client).
#[derive(Clone)]
pub struct S3Claims {
    inner: Arc<Inner>,
}

/// Shows the location only: the client's configuration holds credentials.
impl fmt::Debug for S3Claims {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Claims")
            .field("location", &self.inner.location.to_string())
            .finish_non_exhaustive()
    }
}

impl S3Claims {
    /// Claims at `location`, reached with the standard AWS configuration chain on first use.
    pub fn new(location: S3Location) -> Self {
        Self::build(location, OnceCell::new())
    }

    /// Claims at `location` through a client the caller built (tests point it at a local server
    /// this way without touching the process environment).
    pub fn with_client(client: Client, location: S3Location) -> Self {
        Self::build(
            location,
            OnceCell::new_with(Some(with_attempt_timeout(client))),
        )
    }

    fn build(location: S3Location, client: OnceCell<Client>) -> Self {
        Self {
            inner: Arc::new(Inner {
                location,
                client,
                runtime: Handle::try_current().ok(),
            }),
        }
    }

    pub fn location(&self) -> &S3Location {
        &self.inner.location
    }

    /// Runs `call` on the store's runtime (see the module docs), else on the caller's.
    async fn run<T, F, Fut>(&self, call: F) -> Result<T, ClaimError>
    where
        F: FnOnce(Arc<Inner>) -> Fut,
        Fut: Future<Output = Result<T, ClaimError>> + Send + 'static,
        T: Send + 'static,
    {
        let call = call(self.inner.clone());
        match &self.inner.runtime {
            Some(runtime) => runtime.spawn(call).await.map_err(|e| {
                self.inner
                    .unavailable(format!("S3 call did not finish: {e}"))
            })?,
            None => call.await,
        }
    }

    /// Uploads a claim; returns once S3 stored it.
    pub(super) async fn put(
        &self,
        sha256: &str,
        digest: &[u8; 32],
        bytes: Bytes,
    ) -> Result<(), ClaimError> {
        let checksum = base64::engine::general_purpose::STANDARD.encode(digest);
        let key = self.inner.location.key(sha256)?;
        self.run(move |inner| async move {
            let client = inner.client().await;
            client
                .put_object()
                .bucket(inner.location.bucket.as_str())
                .key(&key)
                .content_type("application/json")
                .checksum_sha256(checksum)
                .body(ByteStream::from(bytes))
                .send()
                .await
                .map_err(|e| inner.unavailable(format!("PutObject {key}: {}", describe(&e))))?;
            Ok(())
        })
        .await
    }

    /// Downloads a claim; the caller checks it against its name.
    pub(super) async fn get(&self, claim: &ClaimRef) -> Result<Bytes, ClaimError> {
        let key = self.inner.location.key(&claim.sha256)?;
        let claim = claim.clone();
        self.run(move |inner| async move {
            let client = inner.client().await;
            let output = client
                .get_object()
                .bucket(inner.location.bucket.as_str())
                .key(&key)
                .send()
                .await
                .map_err(|e| {
                    if e.as_service_error().is_some_and(|e| e.is_no_such_key()) {
                        ClaimError::Missing {
                            sha256: claim.sha256.clone(),
                            location: inner.location.to_string(),
                        }
                    } else {
                        inner.unavailable(format!("GetObject {key}: {}", describe(&e)))
                    }
                })?;
            // A length that differs is an altered object: refused before it is read into memory.
            if output
                .content_length()
                .is_some_and(|length| u64::try_from(length).ok() != Some(claim.bytes))
            {
                return Err(ClaimError::Corrupt(claim.sha256));
            }
            let body = output.body.collect().await.map_err(|e| {
                inner.unavailable(format!("GetObject {key}: reading the object: {e}"))
            })?;
            Ok(body.into_bytes())
        })
        .await
    }

    /// Deletes a claim; S3 answers a missing key like a deleted one.
    pub(super) async fn remove(&self, sha256: &str) -> Result<(), ClaimError> {
        let key = self.inner.location.key(sha256)?;
        self.run(move |inner| async move {
            let client = inner.client().await;
            client
                .delete_object()
                .bucket(inner.location.bucket.as_str())
                .key(&key)
                .send()
                .await
                .map_err(|e| inner.unavailable(format!("DeleteObject {key}: {}", describe(&e))))?;
            Ok(())
        })
        .await
    }
}

impl Inner {
    fn unavailable(&self, reason: String) -> ClaimError {
        ClaimError::Unavailable {
            location: self.location.to_string(),
            reason,
        }
    }

    async fn client(&self) -> &Client {
        self.client
            .get_or_init(|| async {
                let config = aws_config::load_defaults(BehaviorVersion::latest()).await;
                // A custom endpoint is a local or S3-compatible server (README: Configuration).
                let path_style = config.endpoint_url().is_some()
                    || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some();
                let s3 = aws_sdk_s3::config::Builder::from(&config)
                    .force_path_style(path_style)
                    .build();
                tracing::info!(claims = %self.location, path_style, "claim store: S3");
                with_attempt_timeout(Client::from_conf(s3))
            })
            .await
    }
}

/// Gives the client an attempt timeout unless it already has one.
fn with_attempt_timeout(client: Client) -> Client {
    let config = client.config();
    if config
        .timeout_config()
        .and_then(|t| t.operation_attempt_timeout())
        .is_some()
    {
        return client;
    }
    let timeouts = config
        .timeout_config()
        .map(|t| t.to_builder())
        .unwrap_or_else(TimeoutConfig::builder)
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .build();
    Client::from_conf(config.to_builder().timeout_config(timeouts).build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names_follow_s3_rules() {
        for good in [
            "abc",
            "hookbridge-claims",
            "my.bucket.2026",
            &"a".repeat(63),
        ] {
            assert_eq!(BucketName::parse(good).unwrap().as_str(), good);
        }
        for (bad, why) in [
            ("", "empty"),
            ("   ", "empty"),
            ("ab", "3 to 63"),
            (&"a".repeat(64), "3 to 63"),
            ("My-Bucket", "'M'"),
            ("my_bucket", "'_'"),
            ("s3://bucket", "':'"),
            ("-bucket", "begin and end"),
            ("bucket.", "begin and end"),
            ("my..bucket", "two dots"),
            ("192.168.1.1", "IP address"),
        ] {
            let err = BucketName::parse(bad).unwrap_err();
            assert!(err.contains(why), "{bad:?}: {err}");
        }
    }

    #[test]
    fn prefixes_leave_room_for_the_name() {
        assert_eq!(parse_prefix("claims/").unwrap(), "claims/");
        assert_eq!(parse_prefix("").unwrap(), "");
        assert!(parse_prefix("/claims/").unwrap_err().contains("not paths"));
        assert!(parse_prefix("a\nb").unwrap_err().contains("control"));
        assert!(parse_prefix(&"p".repeat(955)).is_ok());
        assert!(parse_prefix(&"p".repeat(956)).unwrap_err().contains("955"));
        let location = S3Location {
            bucket: BucketName::parse("b-1").unwrap(),
            prefix: "claims/".into(),
        };
        let sha = "0".repeat(64);
        assert_eq!(location.key(&sha).unwrap(), format!("claims/{sha}.json"));
        assert_eq!(location.to_string(), "s3://b-1/claims/");
        assert!(matches!(location.key("../x"), Err(ClaimError::BadName(_))));
    }
}
