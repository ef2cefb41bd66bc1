//! The Redis backend, for deployments with workers on several machines.
//!
//! Key layout (every key starts with the configured prefix, e.g. `hookbridge:`):
//! - `<prefix>done:<delivery>`: dedupe marks, with their TTL;
//! - `<prefix>lock:<key>`: a held lock; the value is the holder's token, the TTL is the lock's;
//! - `<prefix>fence:<key>`: the lock's fence counter, never expiring, so tokens only grow;
//! - `<prefix>kv:<key>`: key/value entries (a separate namespace, so no value can be mistaken for a
//!   lock or a fence counter);
//! - `<prefix>list:<key>`: lists (Redis lists, appended with `RPUSH`, removed from the front);
//! - `<prefix>slots:<key>`: rate-slot schedules;
//! - `<prefix>counters:<key>`: counter families (hashes: one field per label set, `HINCRBY`).
//!
//! Every compare-and-set is a Lua script, which Redis runs atomically: nothing can happen between
//! "is this still the holder's token" and the write it guards.
//!
//! Acquiring is a script too (absent? then `INCR` the fence and `SET ... PX`), rather than an
//! `INCR` followed by `SET NX PX` from the client. With two round trips, a caller could `INCR` to
//! token 5, stall, and `SET NX` after a caller with token 6 had held the lock and let it expire:
//! the new holder would then have a smaller token than its predecessor, breaking the "strictly
//! increasing" promise. The script also does not burn tokens on contention.
//!
//! Redis must not evict the fence counters (they have no TTL): use `noeviction` or a `volatile-*`
//! `maxmemory-policy`, which only evict keys that have a TTL.
//!
//! Cluster mode is not supported: a fenced write touches a lock key and a value key that would
//! live in different slots.

use std::fmt;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, ErrorKind, RedisError, Script};

use super::{LockGuard, StoreError, StoreHealth, ttl_ms};

mod transaction;

/// How long one attempt to open a TCP connection to Redis may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long Redis may take to answer a command before it counts as unavailable.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);
/// Reconnection attempts after the first one fails, per connection (the manager retries with
/// exponential backoff; the pipeline's own retries handle longer outages).
const CONNECT_RETRIES: usize = 2;
/// Upper bound on [`RedisStore::connect`] as a whole, whatever the attempts above add up to.
const CONNECT_DEADLINE: Duration = Duration::from_secs(10);

/// `KEYS[1]` lock, `KEYS[2]` fence counter, `ARGV[1]` TTL in ms. Returns the new token, or nil when
/// the lock is held.
const ACQUIRE: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then
    return false
end
local token = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], string.format('%d', token), 'PX', ARGV[1])
return token
";

/// `KEYS[1]` lock, `ARGV[1]` token, `ARGV[2]` TTL in ms. Returns 1 when extended, 0 when not ours.
const EXTEND: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return 1
end
return 0
";

/// `KEYS[1]` lock, `ARGV[1]` token. Returns 1 when released, 0 when not ours.
const UNLOCK: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
    redis.call('DEL', KEYS[1])
    return 1
end
return 0
";

/// `KEYS[1]` lock, `KEYS[2]` entry, `ARGV[1]` token, `ARGV[2]` value, `ARGV[3]` TTL in ms or 0 for
/// none. Returns 1 when written, 0 when fenced out.
const PUT_FENCED: &str = r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
    return 0
end
if ARGV[3] == '0' then
    redis.call('SET', KEYS[2], ARGV[2])
else
    redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
end
return 1
";

/// `KEYS[1]` lock, `KEYS[2]` entry, `ARGV[1]` token. Returns 1 when the lock was held, else 0.
const DELETE_FENCED: &str = r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
    return 0
end
redis.call('DEL', KEYS[2])
return 1
";

/// `KEYS[1]` schedule, `ARGV[1]` interval in µs, `ARGV[2]` key TTL in ms. Reserves the next slot
/// by Redis's own clock (the same for every process) and returns the wait in µs.
const RESERVE_SLOT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local next_free = tonumber(redis.call('GET', KEYS[1]) or '0')
local start = math.max(next_free, now)
redis.call('SET', KEYS[1], string.format('%d', start + tonumber(ARGV[1])), 'PX', ARGV[2])
return start - now
";

/// `KEYS[1]` schedule, `ARGV[1]` delay in µs, `ARGV[2]` key TTL in ms. Pushes the next free slot
/// to at least now + delay.
const HOLD_OFF: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local next_free = tonumber(redis.call('GET', KEYS[1]) or '0')
local wanted = now + tonumber(ARGV[1])
if wanted > next_free then
    redis.call('SET', KEYS[1], string.format('%d', wanted), 'PX', ARGV[2])
end
return 0
";

struct Scripts {
    acquire: Script,
    extend: Script,
    unlock: Script,
    put_fenced: Script,
    delete_fenced: Script,
    reserve_slot: Script,
    hold_off: Script,
    commit: Script,
}

/// The Redis-backed store; cheap to clone (clones share one multiplexed connection, which
/// reconnects by itself after Redis comes back).
#[derive(Clone)]
pub struct RedisStore {
    conn: ConnectionManager,
    prefix: String,
    scripts: std::sync::Arc<Scripts>,
    health: StoreHealth,
}

impl fmt::Debug for RedisStore {
    // The URL may hold a password: show only the prefix.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// Sorts a Redis error: Redis cannot be reached (wait for it), it answered with an error that
/// may repeat (retry), or with data that is not ours (give up).
fn store_error(e: RedisError) -> StoreError {
    let corrupt = e.kind() == ErrorKind::UnexpectedReturnType || e.code() == Some("WRONGTYPE");
    if corrupt {
        StoreError::Corrupt(format!("redis: {e}"))
    } else if unreachable(&e) {
        StoreError::Unavailable(format!("redis: {e}"))
    } else {
        StoreError::Failed(format!("redis: {e}"))
    }
}

/// Whether `e` says Redis cannot serve anyone right now, rather than that this command failed:
/// - no answer: any I/O error — connection refused, reset or dropped ("broken pipe"), a timeout
///   (the client's response timeout is an I/O `TimedOut`);
/// - an answer meaning "not now, nor for anyone": `LOADING` (restarting, reading its data back),
///   `BUSY` (a script runs past its time limit), `TRYAGAIN`, `MASTERDOWN`, `CLUSTERDOWN`,
///   `READONLY` (a replica, e.g. after a failover);
/// - refused credentials (`NOAUTH`, `WRONGPASS`, or the handshake's authentication failure): every
///   command fails alike until the configuration is fixed.
///
/// Everything else — a Lua script error (`ERR ... script`), `OOM`, `NOSCRIPT`, `EXECABORT`, a parse
/// error, anything unknown — may be this command's own failure and is retried as the message's.
fn unreachable(e: &RedisError) -> bool {
    use redis::ServerErrorKind as S;
    if e.is_io_error() || e.is_connection_refusal() || e.is_timeout() || e.is_connection_dropped() {
        return true;
    }
    match e.kind() {
        ErrorKind::AuthenticationFailed => true,
        ErrorKind::Server(
            S::BusyLoading | S::TryAgain | S::MasterDown | S::ClusterDown | S::ReadOnly,
        ) => true,
        _ => matches!(e.code(), Some("BUSY" | "NOAUTH" | "WRONGPASS")),
    }
}

/// The URL as error messages show it: without its userinfo or a password in its query string
/// (`?password=`, `?pass=`), both of which the Redis client reads.
fn redacted(url: &str) -> String {
    hookbridge_shared::config::redact_url(url)
}

/// A lock's fencing token as stored in Redis.
fn token_arg(guard: &LockGuard) -> String {
    guard.token.to_string()
}

impl RedisStore {
    /// Connects and checks that Redis answers `PING`, within a bounded time (a closed port or a
    /// black-holed address gives an error after at most a few seconds, not a hang).
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the URL is malformed or Redis does not answer.
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, StoreError> {
        let shown = redacted(url);
        let client = redis::Client::open(url)
            .map_err(|e| StoreError::Unavailable(format!("invalid Redis URL {shown}: {e}")))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(CONNECT_RETRIES)
            .set_max_delay(Duration::from_secs(1));
        let connect = async {
            let mut conn = ConnectionManager::new_with_config(client, config).await?;
            let _: String = redis::cmd("PING").query_async(&mut conn).await?;
            Ok::<_, RedisError>(conn)
        };
        let conn = tokio::time::timeout(CONNECT_DEADLINE, connect)
            .await
            .map_err(|_| {
                StoreError::Unavailable(format!(
                    "Redis at {shown} did not answer within {CONNECT_DEADLINE:?}"
                ))
            })?
            .map_err(|e| StoreError::Unavailable(format!("connect to Redis at {shown}: {e}")))?;
        Ok(Self {
            conn,
            prefix: prefix.to_owned(),
            health: StoreHealth::default(),
            scripts: std::sync::Arc::new(Scripts {
                acquire: Script::new(ACQUIRE),
                extend: Script::new(EXTEND),
                unlock: Script::new(UNLOCK),
                put_fenced: Script::new(PUT_FENCED),
                delete_fenced: Script::new(DELETE_FENCED),
                reserve_slot: Script::new(RESERVE_SLOT),
                hold_off: Script::new(HOLD_OFF),
                commit: Script::new(transaction::COMMIT),
            }),
        })
    }

    fn done_key(&self, delivery: &str) -> String {
        format!("{}done:{delivery}", self.prefix)
    }

    fn lock_key(&self, key: &str) -> String {
        format!("{}lock:{key}", self.prefix)
    }

    fn fence_key(&self, key: &str) -> String {
        format!("{}fence:{key}", self.prefix)
    }

    fn slot_key(&self, key: &str) -> String {
        format!("{}slots:{key}", self.prefix)
    }

    fn kv_key(&self, key: &str) -> String {
        format!("{}kv:{key}", self.prefix)
    }

    fn counters_key(&self, key: &str) -> String {
        format!("{}counters:{key}", self.prefix)
    }

    fn list_key(&self, key: &str) -> String {
        format!("{}list:{key}", self.prefix)
    }

    /// Whether Redis answers, as the last probe found it (shared by every clone).
    pub fn health(&self) -> &StoreHealth {
        &self.health
    }

    /// # Errors
    /// [`StoreError::Unavailable`] when Redis does not answer `PING`.
    pub async fn check_ready(&self) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let _: String = redis::cmd("PING")
            .query_async(&mut conn)
            .await
            .map_err(store_error)?;
        Ok(())
    }

    /// # Errors
    /// [`StoreError::Unavailable`] when Redis cannot be reached.
    pub async fn is_done(&self, delivery: &str) -> Result<bool, StoreError> {
        let mut conn = self.conn.clone();
        conn.exists(self.done_key(delivery))
            .await
            .map_err(store_error)
    }

    /// # Errors
    /// [`StoreError::Unavailable`] when Redis cannot be reached.
    pub async fn mark_done(&self, delivery: &str, ttl: Duration) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        conn.pset_ex(self.done_key(delivery), "1", ttl_ms(ttl))
            .await
            .map_err(store_error)
    }

    /// # Errors
    /// [`StoreError::Unavailable`] when Redis cannot be reached; [`StoreError::Corrupt`] when the
    /// fence counter is not an integer.
    pub async fn try_lock(
        &self,
        key: &str,
        ttl: Duration,
    ) -> Result<Option<LockGuard>, StoreError> {
        let mut conn = self.conn.clone();
        let token: Option<u64> = self
            .scripts
            .acquire
            .key(self.lock_key(key))
            .key(self.fence_key(key))
            .arg(ttl_ms(ttl))
            .invoke_async(&mut conn)
            .await
            .map_err(store_error)?;
        Ok(token.map(|token| LockGuard {
            key: key.to_owned(),
            token,
        }))
    }

    /// # Errors
    /// [`StoreError::Unavailable`] when Redis cannot be reached.
    pub async fn extend_lock(&self, guard: &LockGuard, ttl: Duration) -> Result<bool, StoreError> {
        let mut conn = self.conn.clone();
        let extended: i64 = self
            .scripts
            .extend
            .key(self.lock_key(&guard.key))
            .arg(token_arg(guard))
            .arg(ttl_ms(ttl))
            .invoke_async(&mut conn)
            .await
            .map_err(store_error)?;
        Ok(extended == 1)
    }

    /// # Errors
    /// [`StoreError::Unavailable`] when Redis cannot be reached.
    pub async fn unlock(&self, guard: &LockGuard) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let _released: i64 = self
            .scripts
            .unlock
            .key(self.lock_key(&guard.key))
            .arg(token_arg(guard))
            .invoke_async(&mut conn)
            .await
            .map_err(store_error)?;
        Ok(())
    }

    /// # Errors
    /// [`StoreError::Unavailable`] when Redis cannot be reached; [`StoreError::Corrupt`] when the
    /// key holds something other than a string.
    pub async fn get(&self, key: &str) -> Result<Option<String>, StoreError> {
        let mut conn = self.conn.clone();
        conn.get(self.kv_key(key)).await.map_err(store_error)
    }

    /// # Errors
    /// [`StoreError::Unavailable`] when Redis cannot be reached.
    pub async fn put_fenced(
        &self,
        guard: &LockGuard,
        key: &str,
        value: &str,
        ttl: Option<Duration>,
    ) -> Result<bool, StoreError> {
        let mut conn = self.conn.clone();
        let written: i64 = self
            .scripts
            .put_fenced
            .key(self.lock_key(&guard.key))
            .key(self.kv_key(key))
            .arg(token_arg(guard))
            .arg(value)
            .arg(ttl.map_or(0, ttl_ms))
            .invoke_async(&mut conn)
            .await
            .map_err(store_error)?;
        Ok(written == 1)
    }

    /// # Errors
    /// [`StoreError::Unavailable`] when Redis cannot be reached.
    pub async fn delete_fenced(&self, guard: &LockGuard, key: &str) -> Result<bool, StoreError> {
        let mut conn = self.conn.clone();
        let held: i64 = self
            .scripts
            .delete_fenced
            .key(self.lock_key(&guard.key))
            .key(self.kv_key(key))
            .arg(token_arg(guard))
            .invoke_async(&mut conn)
            .await
            .map_err(store_error)?;
        Ok(held == 1)
    }

    /// # Errors
    /// [`StoreError::Unavailable`] when Redis cannot be reached.
    pub async fn put(
        &self,
        key: &str,
        value: &str,
        ttl: Option<Duration>,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let key = self.kv_key(key);
        match ttl {
            // A plain SET also clears any TTL the previous value had, as "no TTL" means.
            None => conn.set(key, value).await,
            Some(ttl) => conn.pset_ex(key, value, ttl_ms(ttl)).await,
        }
        .map_err(store_error)
    }
}

impl RedisStore {
    /// See [`super::Store::reserve_slot`].
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when Redis cannot be reached.
    pub async fn reserve_slot(
        &self,
        key: &str,
        interval: Duration,
    ) -> Result<Duration, StoreError> {
        let mut conn = self.conn.clone();
        let wait_us: i64 = self
            .scripts
            .reserve_slot
            .key(self.slot_key(key))
            .arg(super::micros(interval).max(1))
            .arg(ttl_ms(super::SLOT_KEY_TTL))
            .invoke_async(&mut conn)
            .await
            .map_err(store_error)?;
        Ok(Duration::from_micros(u64::try_from(wait_us).unwrap_or(0)))
    }

    /// See [`super::Store::hold_off`].
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when Redis cannot be reached.
    pub async fn hold_off(&self, key: &str, delay: Duration) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let _: i64 = self
            .scripts
            .hold_off
            .key(self.slot_key(key))
            .arg(super::micros(delay))
            .arg(ttl_ms(super::SLOT_KEY_TTL + delay))
            .invoke_async(&mut conn)
            .await
            .map_err(store_error)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The error Redis answers with `line` (a RESP error line, e.g. `-LOADING ...`).
    fn server_error(line: &str) -> RedisError {
        let value =
            redis::parse_redis_value(format!("{line}\r\n").as_bytes()).expect("a RESP error line");
        match value.extract_error() {
            Err(e) => e,
            Ok(v) => panic!("not an error: {v:?}"),
        }
    }

    #[test]
    fn redis_unreachable_is_unavailable_and_waits() {
        use std::io;
        let unreachable = [
            RedisError::from(io::Error::from(io::ErrorKind::ConnectionRefused)),
            RedisError::from(io::Error::from(io::ErrorKind::ConnectionReset)),
            RedisError::from(io::Error::from(io::ErrorKind::BrokenPipe)),
            RedisError::from(io::Error::from(io::ErrorKind::TimedOut)),
            RedisError::from(io::Error::from(io::ErrorKind::UnexpectedEof)),
            RedisError::from((ErrorKind::Io, "connection lost")),
            RedisError::from((ErrorKind::AuthenticationFailed, "refused")),
            server_error("-LOADING Redis is loading the dataset in memory"),
            server_error("-BUSY Redis is busy running a script"),
            server_error("-MASTERDOWN Link with MASTER is down"),
            server_error("-READONLY You can't write against a read only replica."),
            server_error("-NOAUTH Authentication required."),
        ];
        for e in unreachable {
            let shown = e.to_string();
            let err = store_error(e);
            assert!(
                matches!(err, StoreError::Unavailable(_)),
                "{shown} -> {err:?}"
            );
            assert!(
                matches!(
                    crate::handler::Failure::from(err),
                    crate::handler::Failure::Wait { .. }
                ),
                "{shown} must not use up an attempt"
            );
        }
    }

    #[test]
    fn redis_answering_with_an_error_is_a_retry_and_wrong_data_a_failure() {
        let repeating = [
            server_error(
                "-ERR user_script:3: Script attempted to access nonexistent global variable 'x' script: 1234, on @user_script:3.",
            ),
            server_error("-OOM command not allowed when used memory > 'maxmemory'."),
            server_error("-NOSCRIPT No matching script."),
            server_error("-EXECABORT Transaction discarded."),
        ];
        for e in repeating {
            let shown = e.to_string();
            let err = store_error(e);
            assert!(matches!(err, StoreError::Failed(_)), "{shown} -> {err:?}");
            assert!(
                matches!(
                    crate::handler::Failure::from(err),
                    crate::handler::Failure::Retry { .. }
                ),
                "{shown} must use up an attempt (a poison message still dead-letters)"
            );
        }
        let wrong_type =
            server_error("-WRONGTYPE Operation against a key holding the wrong kind of value");
        assert!(matches!(store_error(wrong_type), StoreError::Corrupt(_)));
    }

    #[test]
    fn redacted_hides_the_password() {
        for url in [
            "redis://user:s3cret@cache.internal:6379/0",
            "redis://cache.internal:6379/?pass=s3cret",
            "redis://cache.internal:6379/0?password=s3cret",
        ] {
            let shown = redacted(url);
            assert!(!shown.contains("s3cret"), "{shown}");
            assert!(shown.contains("cache.internal:6379"), "{shown}");
        }
        assert_eq!(redacted("not a url"), "<malformed URL>");
    }

    #[tokio::test]
    async fn an_unreachable_redis_is_reported_without_a_query_string_password() {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            listener.local_addr().expect("addr").port()
        };
        for query in ["pass", "password"] {
            let url = format!("redis://127.0.0.1:{port}/?{query}=s3cretvalue");
            let Err(err) = RedisStore::connect(&url, "t:").await else {
                panic!("connected to a closed port")
            };
            assert!(!err.to_string().contains("s3cretvalue"), "{err}");
        }
    }

    #[tokio::test]
    async fn a_closed_port_is_unavailable_quickly() {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            listener.local_addr().expect("addr").port()
        };
        let started = std::time::Instant::now();
        let result = RedisStore::connect(&format!("redis://127.0.0.1:{port}/"), "t:").await;
        assert!(
            matches!(result, Err(StoreError::Unavailable(_))),
            "{result:?}"
        );
        assert!(started.elapsed() <= CONNECT_DEADLINE + Duration::from_secs(1));
    }

    #[tokio::test]
    async fn a_malformed_url_is_an_error_without_the_password() {
        let result = RedisStore::connect("http://user:s3cret@host/", "t:").await;
        let Err(err) = result else {
            panic!("connected with an http URL")
        };
        assert!(!err.to_string().contains("s3cret"), "{err}");
    }
}
