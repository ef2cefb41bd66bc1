//! The worker's coordination store: what lets several worker processes, each seeing every message
//! at least once, make every Jira effect happen exactly once.
//!
//! It holds:
//! - **delivery dedupe** ([`Store::is_done`] / [`Store::mark_done`]): a delivery id that was fully
//!   handled is skipped when the queue hands it out again;
//! - **per-key locks with fencing tokens** ([`Store::try_lock`]): work on one GitHub issue is
//!   serialised across processes, and a lock that outlives its TTL (a paused or dead worker) can be
//!   taken over with a strictly larger token;
//! - **shared rate slots** ([`Store::reserve_slot`] / [`Store::hold_off`]): one schedule of
//!   request slots per Jira endpoint for all worker processes, so that together they stay under
//!   Jira's rate instead of each process spending the whole budget;
//! - **a key/value map and lists, through typed keys** ([`keys`]; [`Store::read`],
//!   [`Store::write_fenced`], [`Store::list`]): GitHub issue → Jira key, creation intents, CR
//!   records and their history, the Slack outbox, audit chain heads. Fenced writes succeed only
//!   while the writer still holds its lock, so a worker that lost its lock without noticing cannot
//!   overwrite its successor's work;
//! - **counters** ([`Store::counters`], [`Transaction::increment`]): integers that only grow,
//!   shared by every process, for the governance metrics;
//! - **transactions** ([`Store::commit`], [`transaction`]): conditions ("unchanged since I read
//!   it", "I still hold the lock") and writes applied together or not at all.
//!
//! # Layout
//! - [`redis`]: [`RedisStore`], for `REDIS_URL` (several machines); compare-and-set runs as Lua
//!   scripts, which Redis executes atomically.
//! - [`embedded`]: [`EmbeddedStore`], SQLite in `<data dir>/store.db` (several processes on one
//!   machine); compare-and-set runs in one `BEGIN IMMEDIATE` transaction.
//! - [`keys`]: every key and list the worker uses, with its value type; [`lock`]: waiting for a
//!   lock and keeping it alive while working.
//! - [`health`] and [`watch`]: whether the store answers; a store that cannot be reached stops the
//!   consumer (messages wait without using up attempts) until a probe finds it back.
//!
//! Errors are sorted by what the pipeline should do ([`StoreError`]): *unavailable* (the store
//! cannot be reached: wait, no attempt used), *failed* (it answered with an error that may repeat:
//! retry, one attempt used) or *corrupt* (dead-letter now).
//!
//! Both backends have identical semantics and are run through the same conformance tests
//! (`tests/tests/it/store.rs`). Expired entries are treated as absent everywhere. A lock whose TTL
//! ran out is no longer anyone's, even if nobody has taken it yet: its former holder's fenced writes,
//! extensions and unlocks fail from that moment.

pub mod embedded;
pub mod health;
pub mod keys;
pub mod lock;
pub mod redis;
pub mod transaction;
pub mod watch;

use std::path::Path;
use std::time::Duration;

pub use embedded::EmbeddedStore;
pub use health::StoreHealth;
pub use keys::{LockName, StoreKey};
pub use redis::RedisStore;
pub use transaction::{StoreCounters, StoreList, Transaction, Versioned};

/// The embedded store's file name inside the data dir.
pub const EMBEDDED_FILE_NAME: &str = "store.db";

/// Longest TTL the store accepts; longer ones are cut to it. Keeps expiry arithmetic far from
/// overflow on both backends (Redis rejects an expiry past `i64::MAX` ms).
const MAX_TTL: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// A TTL in whole milliseconds, at least 1 (Redis rejects `PX 0`, and a zero TTL would mean "never
/// held" anyway) and at most [`MAX_TTL`]. Sub-millisecond remainders round up so that a TTL is never
/// shorter than asked.
fn ttl_ms(ttl: Duration) -> u64 {
    let ttl = ttl.min(MAX_TTL);
    let ms = ttl.as_nanos().div_ceil(1_000_000);
    u64::try_from(ms).unwrap_or(u64::MAX).max(1)
}

/// Which backend; built from configuration once, then cloned into every task (clones share the
/// connection).
#[derive(Clone, Debug)]
pub enum Store {
    Redis(RedisStore),
    Embedded(EmbeddedStore),
}

/// What can go wrong talking to the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend could not be reached or did not answer in time: connection refused, reset or
    /// dropped, an I/O error, a timeout, Redis still loading its data or refusing the credentials,
    /// the SQLite file locked by another process past the busy timeout or not openable. Not the
    /// operation's fault: it succeeds once the store is back, so a message meeting this waits
    /// without using up an attempt (see [`health`]).
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The backend answered, with an error that may well repeat for this operation (a Lua script
    /// error, Redis out of memory, a SQLite constraint or a full disk). Worth retrying a few times,
    /// each retry one of the message's attempts, so that a message that always fails this way
    /// still ends in the dead-letter queue.
    #[error("store error: {0}")]
    Failed(String),
    /// The backend answered with data the store did not write (wrong Redis type at one of our keys,
    /// a damaged SQLite file, a schema from a newer hookbridge). Retrying will not help.
    #[error("store data corrupt: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// Whether retrying the operation later may succeed ([`Unavailable`](Self::Unavailable) or
    /// [`Failed`](Self::Failed)).
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Unavailable(_) | StoreError::Failed(_))
    }

    /// Whether the store could not be reached at all: systemic, not the operation's fault.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

/// Proof of holding a lock. The token is a fencing token: strictly increasing per lock key across
/// all processes, so a later holder always has a larger token than any earlier one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockGuard {
    pub key: String,
    pub token: u64,
}

impl Store {
    /// Connects to Redis; `prefix` (e.g. `"hookbridge:"`) namespaces every key, so one Redis can
    /// serve several deployments or test runs.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the URL is malformed or Redis does not answer `PING` within a
    /// few seconds: a worker should fail at start rather than at its first message.
    pub async fn connect_redis(url: &str, prefix: &str) -> Result<Store, StoreError> {
        RedisStore::connect(url, prefix).await.map(Store::Redis)
    }

    /// Opens (creating if needed) the embedded store at `path`, normally
    /// `<data dir>/`[`EMBEDDED_FILE_NAME`].
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the file cannot be created or opened;
    /// [`StoreError::Corrupt`] when it is not a store this version understands.
    pub fn open_embedded(path: &Path) -> Result<Store, StoreError> {
        EmbeddedStore::open(path).map(Store::Embedded)
    }

    /// `"redis"` or `"embedded"`, for logs and `/ready` details.
    pub fn backend_name(&self) -> &'static str {
        match self {
            Store::Redis(_) => "redis",
            Store::Embedded(_) => "embedded",
        }
    }

    /// Answers whether the backend can serve requests right now (Redis `PING`, a read of the
    /// SQLite file), and records the answer in [`health`](Self::health): marked down when it
    /// cannot be reached, up when it answers.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when it cannot.
    pub async fn check_ready(&self) -> Result<(), StoreError> {
        let result = match self {
            Store::Redis(s) => s.check_ready().await,
            Store::Embedded(s) => s.check_ready().await,
        };
        match &result {
            Ok(()) => {
                self.health().mark_up();
            }
            Err(e) if e.is_unavailable() => {
                self.health().mark_down(&e.to_string());
            }
            Err(_) => {}
        }
        result
    }

    /// Whether the store answers, as the last probe found it; shared by every clone of this
    /// handle (see [`health`]).
    pub fn health(&self) -> &StoreHealth {
        match self {
            Store::Redis(s) => s.health(),
            Store::Embedded(s) => s.health(),
        }
    }

    /// Whether `delivery` was marked done (and the mark has not expired).
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the backend cannot be reached.
    pub async fn is_done(&self, delivery: &str) -> Result<bool, StoreError> {
        match self {
            Store::Redis(s) => s.is_done(delivery).await,
            Store::Embedded(s) => s.is_done(delivery).await,
        }
    }

    /// Records that `delivery` was fully handled, for `ttl` (at least as long as the source may
    /// redeliver: 3 days for GitHub's manual redelivery).
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the backend cannot be reached.
    pub async fn mark_done(&self, delivery: &str, ttl: Duration) -> Result<(), StoreError> {
        match self {
            Store::Redis(s) => s.mark_done(delivery, ttl).await,
            Store::Embedded(s) => s.mark_done(delivery, ttl).await,
        }
    }

    /// Takes the lock `key` for `ttl` unless someone else holds it. Returns `None` when it is held
    /// and not expired; never waits.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the backend cannot be reached.
    pub async fn try_lock(
        &self,
        name: &LockName,
        ttl: Duration,
    ) -> Result<Option<LockGuard>, StoreError> {
        match self {
            Store::Redis(s) => s.try_lock(name.as_str(), ttl).await,
            Store::Embedded(s) => s.try_lock(name.as_str(), ttl).await,
        }
    }

    /// Sets the lock's remaining time to `ttl` if `guard` still holds it; `false` when it expired
    /// or was taken over, in which case the caller must stop its work.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the backend cannot be reached.
    pub async fn extend_lock(&self, guard: &LockGuard, ttl: Duration) -> Result<bool, StoreError> {
        match self {
            Store::Redis(s) => s.extend_lock(guard, ttl).await,
            Store::Embedded(s) => s.extend_lock(guard, ttl).await,
        }
    }

    /// Releases the lock if `guard` still holds it; does nothing otherwise (a successor's lock is
    /// never removed).
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the backend cannot be reached.
    pub async fn unlock(&self, guard: &LockGuard) -> Result<(), StoreError> {
        match self {
            Store::Redis(s) => s.unlock(guard).await,
            Store::Embedded(s) => s.unlock(guard).await,
        }
    }

    /// The value at `key`, or `None` when absent or expired.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the backend cannot be reached; [`StoreError::Corrupt`] when
    /// the value is not a string.
    async fn get_raw(&self, key: &str) -> Result<Option<String>, StoreError> {
        match self {
            Store::Redis(s) => s.get(key).await,
            Store::Embedded(s) => s.get(key).await,
        }
    }

    /// Writes only while `guard` is still the current holder of its lock (atomic check-and-set);
    /// `Ok(false)` when fenced out. `ttl: None` keeps the value until overwritten or deleted.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the backend cannot be reached.
    async fn put_fenced_raw(
        &self,
        guard: &LockGuard,
        key: &str,
        value: &str,
        ttl: Option<Duration>,
    ) -> Result<bool, StoreError> {
        match self {
            Store::Redis(s) => s.put_fenced(guard, key, value, ttl).await,
            Store::Embedded(s) => s.put_fenced(guard, key, value, ttl).await,
        }
    }

    /// Deletes `key` only while `guard` is still the current holder of its lock; `Ok(true)` when
    /// the lock was held (whether or not the key existed), `Ok(false)` when fenced out.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the backend cannot be reached.
    async fn delete_fenced_raw(&self, guard: &LockGuard, key: &str) -> Result<bool, StoreError> {
        match self {
            Store::Redis(s) => s.delete_fenced(guard, key).await,
            Store::Embedded(s) => s.delete_fenced(guard, key).await,
        }
    }

    /// Unfenced write. `ttl: None` keeps the value until overwritten.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the backend cannot be reached.
    async fn put_raw(
        &self,
        key: &str,
        value: &str,
        ttl: Option<Duration>,
    ) -> Result<(), StoreError> {
        match self {
            Store::Redis(s) => s.put(key, value, ttl).await,
            Store::Embedded(s) => s.put(key, value, ttl).await,
        }
    }
}

/// The key/value map, through typed keys only ([`keys`]): a value is written and read as its key's
/// type, so no feature can misread another's entry.
impl Store {
    /// The value at `key`, or `None` when absent or expired.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the backend cannot be reached; [`StoreError::Corrupt`] when
    /// the stored value is not a `K::Value`.
    pub async fn read<K: StoreKey>(&self, key: &K) -> Result<Option<K::Value>, StoreError> {
        let name = key.name();
        match self.get_raw(&name).await? {
            Some(raw) => decode(&name, &raw).map(Some),
            None => Ok(None),
        }
    }

    /// The value at `key` as [`read`](Self::read) gives it, remembered exactly so that a
    /// [`Transaction`] can require it to be unchanged when it commits.
    ///
    /// # Errors
    /// As [`read`](Self::read).
    pub async fn read_versioned<K: StoreKey>(
        &self,
        key: &K,
    ) -> Result<Versioned<K::Value>, StoreError> {
        let name = key.name();
        let raw = self.get_raw(&name).await?;
        let value = raw.as_deref().map(|raw| decode(&name, raw)).transpose()?;
        Ok(Versioned { value, raw })
    }

    /// Applies `tx` atomically: `Ok(true)` when its conditions held and every write was made,
    /// `Ok(false)` when a condition failed and nothing was written (read again, decide again).
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the backend cannot be reached (then nothing was written,
    /// or everything: the caller cannot tell, so transactions must be safe to try again).
    pub async fn commit(&self, tx: &Transaction) -> Result<bool, StoreError> {
        if tx.is_empty() && tx.conditions.is_empty() {
            return Ok(true);
        }
        match self {
            Store::Redis(s) => s.commit(tx).await,
            Store::Embedded(s) => s.commit(tx).await,
        }
    }

    /// Up to `count` items of `list`, oldest first, from position `start`.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the backend cannot be reached; [`StoreError::Corrupt`] when
    /// an item is not an `L::Item`.
    pub async fn list<L: StoreList>(
        &self,
        list: &L,
        start: usize,
        count: usize,
    ) -> Result<Vec<L::Item>, StoreError> {
        let name = list.name();
        let raw = match self {
            Store::Redis(s) => s.list_range(&name, start, count).await?,
            Store::Embedded(s) => s.list_range(&name, start, count).await?,
        };
        raw.iter().map(|item| decode(&name, item)).collect()
    }

    /// Up to `count` items of `list`, newest first, skipping the `start` newest (how pages of
    /// recent things are read).
    ///
    /// # Errors
    /// As [`list`](Self::list).
    pub async fn list_newest<L: StoreList>(
        &self,
        list: &L,
        start: usize,
        count: usize,
    ) -> Result<Vec<L::Item>, StoreError> {
        let name = list.name();
        let raw = match self {
            Store::Redis(s) => s.list_range_newest(&name, start, count).await?,
            Store::Embedded(s) => s.list_range_newest(&name, start, count).await?,
        };
        raw.iter().map(|item| decode(&name, item)).collect()
    }

    /// How many items `list` holds.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the backend cannot be reached.
    pub async fn list_len<L: StoreList>(&self, list: &L) -> Result<usize, StoreError> {
        let name = list.name();
        match self {
            Store::Redis(s) => s.list_len(&name).await,
            Store::Embedded(s) => s.list_len(&name).await,
        }
    }

    /// Every counter of the family `counters` with its value, in no particular order.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the backend cannot be reached; [`StoreError::Corrupt`] when
    /// a field is not a `C::Labels` or a value not a count.
    pub async fn counters<C: StoreCounters>(
        &self,
        counters: &C,
    ) -> Result<Vec<(C::Labels, u64)>, StoreError> {
        let name = counters.name();
        let raw = match self {
            Store::Redis(s) => s.counters(&name).await?,
            Store::Embedded(s) => s.counters(&name).await?,
        };
        raw.iter()
            .map(|(field, value)| Ok((decode(&name, field)?, *value)))
            .collect()
    }

    /// Writes `value` at `key` only while `guard` still holds its lock; `Ok(false)` when fenced
    /// out. `ttl: None` keeps the value until overwritten or deleted.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the backend cannot be reached.
    pub async fn write_fenced<K: StoreKey>(
        &self,
        guard: &LockGuard,
        key: &K,
        value: &K::Value,
        ttl: Option<Duration>,
    ) -> Result<bool, StoreError> {
        self.put_fenced_raw(guard, &key.name(), &encode(K::PREFIX, value)?, ttl)
            .await
    }

    /// Deletes `key` only while `guard` still holds its lock; `Ok(true)` when the lock was held
    /// (whether or not the key existed), `Ok(false)` when fenced out.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the backend cannot be reached.
    pub async fn remove_fenced<K: StoreKey>(
        &self,
        guard: &LockGuard,
        key: &K,
    ) -> Result<bool, StoreError> {
        self.delete_fenced_raw(guard, &key.name()).await
    }

    /// Writes `value` at `key` without a lock. `ttl: None` keeps the value until overwritten.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the backend cannot be reached.
    pub async fn write<K: StoreKey>(
        &self,
        key: &K,
        value: &K::Value,
        ttl: Option<Duration>,
    ) -> Result<(), StoreError> {
        self.put_raw(&key.name(), &encode(K::PREFIX, value)?, ttl)
            .await
    }
}

/// A value as the store keeps it (JSON); `namespace` names it in the error.
fn encode<V: serde::Serialize>(namespace: &str, value: &V) -> Result<String, StoreError> {
    serde_json::to_string(value)
        .map_err(|e| StoreError::Corrupt(format!("cannot encode a {namespace} value: {e}")))
}

fn decode<V: serde::de::DeserializeOwned>(name: &str, raw: &str) -> Result<V, StoreError> {
    serde_json::from_str(raw).map_err(|e| StoreError::Corrupt(format!("value at {name}: {e}")))
}

impl Store {
    /// Reserves the next free slot of the schedule `key`, whose slots are `interval` apart, and
    /// returns how long the caller must wait for it (zero when the schedule is idle). Every process
    /// reserving from the same key shares one schedule: together they never go faster than one
    /// request per `interval`.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the backend cannot be reached.
    pub async fn reserve_slot(
        &self,
        key: &str,
        interval: Duration,
    ) -> Result<Duration, StoreError> {
        match self {
            Store::Redis(s) => s.reserve_slot(key, interval).await,
            Store::Embedded(s) => s.reserve_slot(key, interval).await,
        }
    }

    /// Moves the schedule `key` so that no slot starts within `delay` from now (Jira said
    /// `Retry-After`): every process waits, not only the one that was told.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the backend cannot be reached.
    pub async fn hold_off(&self, key: &str, delay: Duration) -> Result<(), StoreError> {
        match self {
            Store::Redis(s) => s.hold_off(key, delay).await,
            Store::Embedded(s) => s.hold_off(key, delay).await,
        }
    }
}

/// Microseconds of a duration for slot arithmetic, saturating.
fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// How long a slot schedule is kept after its last slot (it is meaningless once in the past).
const SLOT_KEY_TTL: Duration = Duration::from_secs(3600);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_is_whole_milliseconds_rounded_up_and_never_zero() {
        assert_eq!(ttl_ms(Duration::ZERO), 1);
        assert_eq!(ttl_ms(Duration::from_micros(1)), 1);
        assert_eq!(ttl_ms(Duration::from_micros(1500)), 2);
        assert_eq!(ttl_ms(Duration::from_secs(2)), 2000);
        assert_eq!(ttl_ms(Duration::MAX), ttl_ms(MAX_TTL));
    }

    #[test]
    fn unavailable_and_failed_are_transient_only_unavailable_is_systemic() {
        assert!(StoreError::Unavailable("down".into()).is_transient());
        assert!(StoreError::Unavailable("down".into()).is_unavailable());
        assert!(StoreError::Failed("script".into()).is_transient());
        assert!(!StoreError::Failed("script".into()).is_unavailable());
        assert!(!StoreError::Corrupt("bad".into()).is_transient());
        assert!(!StoreError::Corrupt("bad".into()).is_unavailable());
    }
}
