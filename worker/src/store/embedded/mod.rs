//! The embedded backend: SQLite in WAL mode with `synchronous=FULL`, in `<data dir>/store.db`,
//! which any number of worker processes on the same machine open at once.
//!
//! Why SQLite: the same reasons as the embedded queue. Its transactions survive `kill -9` of any
//! process (and, with `synchronous=FULL`, power loss), and its file locking serialises writers of
//! several processes without a server. Every compare-and-set is one `BEGIN IMMEDIATE` transaction:
//! it takes the database's write lock before reading, so no other process can change the lock row
//! between the check and the write. "Now" is read after the write lock is held, so time spent
//! waiting for it cannot make a lock look alive that expired meanwhile.
//!
//! Times are wall-clock milliseconds since the Unix epoch, shared by all processes on the machine.
//! Expired rows are treated as absent by every read, and deleted opportunistically by writes (a
//! bounded batch each time, so no write ever pays for a large backlog). Fence counters are never
//! deleted: they are what keeps tokens increasing after a lock row is gone (one small row per key
//! ever locked).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, ErrorCode, OptionalExtension, TransactionBehavior, params};

use super::{LockGuard, StoreError, StoreHealth, ttl_ms};

mod slots;
mod transaction;

use slots::{open_slots, slots_path};

/// The schema version this code writes; a file with a newer one is refused rather than misread.
const SCHEMA_VERSION: i64 = 3;

/// Most expired rows one write deletes on the side.
const CLEANUP_BATCH: i64 = 32;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS done (
    delivery TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS done_by_expiry ON done (expires_at);
CREATE TABLE IF NOT EXISTS locks (
    key TEXT PRIMARY KEY,
    token INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS locks_by_expiry ON locks (expires_at);
CREATE TABLE IF NOT EXISTS fences (
    key TEXT PRIMARY KEY,
    last_token INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS kv (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    expires_at INTEGER
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS kv_by_expiry ON kv (expires_at) WHERE expires_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS lists (
    key TEXT NOT NULL,
    seq INTEGER NOT NULL,
    item TEXT NOT NULL,
    expires_at INTEGER,
    PRIMARY KEY (key, seq)
);
CREATE INDEX IF NOT EXISTS lists_by_expiry ON lists (expires_at) WHERE expires_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS counters (
    key TEXT NOT NULL,
    field TEXT NOT NULL,
    value INTEGER NOT NULL,
    PRIMARY KEY (key, field)
) WITHOUT ROWID;
";

struct Inner {
    path: PathBuf,
    conn: Mutex<Connection>,
    /// The slot schedules live in their own file (`<store>-slots.db`), written with
    /// `synchronous=OFF`: they are taken for every Jira request and are worthless after a power
    /// loss, so they must not pay an fsync each or queue behind the store's durable writes.
    slots: Mutex<Connection>,
    health: StoreHealth,
}

/// The SQLite-backed store; cheap to clone (clones share one connection, used on the blocking
/// pool).
#[derive(Clone)]
pub struct EmbeddedStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for EmbeddedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedStore")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

/// Sorts a SQLite error: the file cannot be used right now (wait for it), this statement failed
/// (retry), or the file is not what we wrote (give up).
///
/// Unavailable: `SQLITE_BUSY` / `SQLITE_LOCKED` (another process held the write lock past the
/// busy timeout), `SQLITE_IOERR`, `SQLITE_CANTOPEN`, `SQLITE_PROTOCOL` (WAL lock contention) —
/// nothing about the statement, everything about the file or the processes sharing it.
fn store_error(e: rusqlite::Error) -> StoreError {
    use rusqlite::Error as E;
    let (corrupt, unreachable) = match &e {
        E::SqliteFailure(f, _) => (
            matches!(f.code, ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase),
            matches!(
                f.code,
                ErrorCode::DatabaseBusy
                    | ErrorCode::DatabaseLocked
                    | ErrorCode::SystemIoFailure
                    | ErrorCode::CannotOpen
                    | ErrorCode::FileLockingProtocolFailed
            ),
        ),
        E::InvalidColumnType(..)
        | E::FromSqlConversionFailure(..)
        | E::IntegralValueOutOfRange(..) => (true, false),
        _ => (false, false),
    };
    if corrupt {
        StoreError::Corrupt(format!("embedded store: {e}"))
    } else if unreachable {
        StoreError::Unavailable(format!("embedded store: {e}"))
    } else {
        StoreError::Failed(format!("embedded store: {e}"))
    }
}

/// The file or its directory cannot be opened.
fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("embedded store: {e}"))
}

/// This process cannot run the statement (its connection's lock was poisoned by a panic, or the
/// blocking task died).
fn failed(e: impl std::fmt::Display) -> StoreError {
    StoreError::Failed(format!("embedded store: {e}"))
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}

/// When something written at `now` with `ttl` expires.
fn expiry(now: i64, ttl: Duration) -> i64 {
    now.saturating_add(i64::try_from(ttl_ms(ttl)).unwrap_or(i64::MAX))
}

/// A token as SQLite stores it; `None` for one no row can hold (so no lock can match it).
fn db_token(guard: &LockGuard) -> Option<i64> {
    i64::try_from(guard.token).ok()
}

/// A WAL connection to `path`, waiting up to 10 s for other processes' writes, with
/// `synchronous` = `FULL` (the store) or `OFF` (the rate-slot schedules).
fn open_connection(path: &Path, synchronous: &str) -> Result<Connection, StoreError> {
    let conn =
        Connection::open(path).map_err(|e| unavailable(format!("open {}: {e}", path.display())))?;
    conn.busy_timeout(Duration::from_secs(10))
        .map_err(store_error)?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(store_error)?;
    conn.pragma_update(None, "synchronous", synchronous)
        .map_err(store_error)?;
    Ok(conn)
}

/// Creates the tables, or checks that an existing file has a schema this code understands.
fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(store_error)?;
    let version: i64 = tx
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(store_error)?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::Corrupt(format!(
            "embedded store has schema version {version}, this hookbridge knows up to {SCHEMA_VERSION}"
        )));
    }
    tx.execute_batch(SCHEMA).map_err(store_error)?;
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)
        .map_err(store_error)?;
    tx.commit().map_err(store_error)
}

/// Whether `token` currently holds `key` (present and not expired), inside a transaction.
fn holds(conn: &Connection, key: &str, token: i64, now: i64) -> Result<bool, StoreError> {
    conn.prepare_cached("SELECT 1 FROM locks WHERE key = ?1 AND token = ?2 AND expires_at > ?3")
        .and_then(|mut stmt| stmt.exists(params![key, token, now]))
        .map_err(store_error)
}

fn cleanup_kv(conn: &Connection, now: i64) -> Result<(), StoreError> {
    conn.prepare_cached(
        "DELETE FROM kv WHERE key IN
             (SELECT key FROM kv WHERE expires_at IS NOT NULL AND expires_at <= ?1 LIMIT ?2)",
    )
    .and_then(|mut stmt| stmt.execute(params![now, CLEANUP_BATCH]))
    .map(|_| ())
    .map_err(store_error)
}

impl EmbeddedStore {
    /// Opens (creating the file and its directory if needed) the store at `path`.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the directory or database cannot be created or opened;
    /// [`StoreError::Corrupt`] when the file is not a store this version understands.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| unavailable(format!("create {}: {e}", dir.display())))?;
        }
        let mut conn = open_connection(path, "FULL")?;
        migrate(&mut conn)?;
        let slots = open_slots(&slots_path(path))?;
        Ok(Self {
            inner: Arc::new(Inner {
                path: path.to_owned(),
                conn: Mutex::new(conn),
                slots: Mutex::new(slots),
                health: StoreHealth::default(),
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Whether the file answers, as the last probe found it (shared by every clone).
    pub fn health(&self) -> &StoreHealth {
        &self.inner.health
    }

    /// Runs `f` with this process's store connection on the blocking pool.
    async fn with_conn<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.blocking(|inner| &inner.conn, f).await
    }

    /// Runs `f` with the connection `pick` chooses on the blocking pool (SQLite calls block, and
    /// may wait up to the busy timeout for another process's write).
    async fn blocking<T: Send + 'static>(
        &self,
        pick: fn(&Inner) -> &Mutex<Connection>,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = pick(&inner).lock().map_err(failed)?;
            f(&mut conn)
        })
        .await
        .map_err(failed)?
    }

    /// # Errors
    /// [`StoreError::Unavailable`] when the file cannot be read.
    pub async fn check_ready(&self) -> Result<(), StoreError> {
        self.with_conn(|conn| {
            conn.query_row("SELECT count(*) FROM fences LIMIT 1", [], |_| Ok(()))
                .map_err(store_error)
        })
        .await
    }

    /// # Errors
    /// [`StoreError::Unavailable`] when the file cannot be read.
    pub async fn is_done(&self, delivery: &str) -> Result<bool, StoreError> {
        let delivery = delivery.to_owned();
        self.with_conn(move |conn| {
            conn.prepare_cached("SELECT 1 FROM done WHERE delivery = ?1 AND expires_at > ?2")
                .and_then(|mut stmt| stmt.exists(params![delivery, now_ms()]))
                .map_err(store_error)
        })
        .await
    }

    /// # Errors
    /// [`StoreError::Unavailable`] when the file cannot be written.
    pub async fn mark_done(&self, delivery: &str, ttl: Duration) -> Result<(), StoreError> {
        let delivery = delivery.to_owned();
        self.with_conn(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(store_error)?;
            let now = now_ms();
            tx.execute(
                "DELETE FROM done WHERE delivery IN
                     (SELECT delivery FROM done WHERE expires_at <= ?1 LIMIT ?2)",
                params![now, CLEANUP_BATCH],
            )
            .map_err(store_error)?;
            tx.execute(
                "INSERT INTO done (delivery, expires_at) VALUES (?1, ?2)
                 ON CONFLICT (delivery) DO UPDATE SET expires_at = excluded.expires_at",
                params![delivery, expiry(now, ttl)],
            )
            .map_err(store_error)?;
            tx.commit().map_err(store_error)
        })
        .await
    }

    /// # Errors
    /// [`StoreError::Unavailable`] when the file cannot be written; [`StoreError::Corrupt`] when
    /// a fence counter is out of range.
    pub async fn try_lock(
        &self,
        key: &str,
        ttl: Duration,
    ) -> Result<Option<LockGuard>, StoreError> {
        let key = key.to_owned();
        self.with_conn(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(store_error)?;
            let now = now_ms();
            let held_until: Option<i64> = tx
                .query_row(
                    "SELECT expires_at FROM locks WHERE key = ?1",
                    params![key],
                    |r| r.get(0),
                )
                .optional()
                .map_err(store_error)?;
            if held_until.is_some_and(|until| until > now) {
                // Held by someone else: nothing written, so nothing to commit.
                return Ok(None);
            }
            // Expired locks of other keys (their holders died) go on the side.
            tx.execute(
                "DELETE FROM locks WHERE key IN
                     (SELECT key FROM locks WHERE expires_at <= ?1 LIMIT ?2)",
                params![now, CLEANUP_BATCH],
            )
            .map_err(store_error)?;
            let token: i64 = tx
                .query_row(
                    "INSERT INTO fences (key, last_token) VALUES (?1, 1)
                     ON CONFLICT (key) DO UPDATE SET last_token = last_token + 1
                     RETURNING last_token",
                    params![key],
                    |r| r.get(0),
                )
                .map_err(store_error)?;
            tx.execute(
                "INSERT INTO locks (key, token, expires_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (key) DO UPDATE SET token = excluded.token, expires_at = excluded.expires_at",
                params![key, token, expiry(now, ttl)],
            )
            .map_err(store_error)?;
            tx.commit().map_err(store_error)?;
            let token = u64::try_from(token)
                .map_err(|_| StoreError::Corrupt(format!("negative fence token {token} for {key}")))?;
            Ok(Some(LockGuard { key, token }))
        })
        .await
    }

    /// # Errors
    /// [`StoreError::Unavailable`] when the file cannot be written.
    pub async fn extend_lock(&self, guard: &LockGuard, ttl: Duration) -> Result<bool, StoreError> {
        let Some(token) = db_token(guard) else {
            return Ok(false);
        };
        let key = guard.key.clone();
        self.with_conn(move |conn| {
            // One statement is one atomic transaction: the check and the update cannot be split.
            let now = now_ms();
            let changed = conn
                .execute(
                    "UPDATE locks SET expires_at = ?4
                     WHERE key = ?1 AND token = ?2 AND expires_at > ?3",
                    params![key, token, now, expiry(now, ttl)],
                )
                .map_err(store_error)?;
            Ok(changed == 1)
        })
        .await
    }

    /// # Errors
    /// [`StoreError::Unavailable`] when the file cannot be written.
    pub async fn unlock(&self, guard: &LockGuard) -> Result<(), StoreError> {
        let Some(token) = db_token(guard) else {
            return Ok(());
        };
        let key = guard.key.clone();
        self.with_conn(move |conn| {
            // An expired row of ours may go too: it is absent to everyone anyway, and the fence
            // counter (a separate table) keeps the next token larger.
            conn.execute(
                "DELETE FROM locks WHERE key = ?1 AND token = ?2",
                params![key, token],
            )
            .map(|_| ())
            .map_err(store_error)
        })
        .await
    }

    /// # Errors
    /// [`StoreError::Unavailable`] when the file cannot be read; [`StoreError::Corrupt`] when the
    /// value is not text.
    pub async fn get(&self, key: &str) -> Result<Option<String>, StoreError> {
        let key = key.to_owned();
        self.with_conn(move |conn| {
            conn.prepare_cached(
                "SELECT value FROM kv WHERE key = ?1 AND (expires_at IS NULL OR expires_at > ?2)",
            )
            .and_then(|mut stmt| {
                stmt.query_row(params![key, now_ms()], |r| r.get(0))
                    .optional()
            })
            .map_err(store_error)
        })
        .await
    }

    /// # Errors
    /// [`StoreError::Unavailable`] when the file cannot be written.
    pub async fn put_fenced(
        &self,
        guard: &LockGuard,
        key: &str,
        value: &str,
        ttl: Option<Duration>,
    ) -> Result<bool, StoreError> {
        let Some(token) = db_token(guard) else {
            return Ok(false);
        };
        let lock_key = guard.key.clone();
        let key = key.to_owned();
        let value = value.to_owned();
        self.with_conn(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(store_error)?;
            let now = now_ms();
            if !holds(&tx, &lock_key, token, now)? {
                return Ok(false);
            }
            cleanup_kv(&tx, now)?;
            upsert(&tx, &key, &value, ttl.map(|ttl| expiry(now, ttl)))?;
            tx.commit().map_err(store_error)?;
            Ok(true)
        })
        .await
    }

    /// # Errors
    /// [`StoreError::Unavailable`] when the file cannot be written.
    pub async fn delete_fenced(&self, guard: &LockGuard, key: &str) -> Result<bool, StoreError> {
        let Some(token) = db_token(guard) else {
            return Ok(false);
        };
        let lock_key = guard.key.clone();
        let key = key.to_owned();
        self.with_conn(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(store_error)?;
            let now = now_ms();
            if !holds(&tx, &lock_key, token, now)? {
                return Ok(false);
            }
            tx.execute("DELETE FROM kv WHERE key = ?1", params![key])
                .map_err(store_error)?;
            tx.commit().map_err(store_error)?;
            Ok(true)
        })
        .await
    }

    /// # Errors
    /// [`StoreError::Unavailable`] when the file cannot be written.
    pub async fn put(
        &self,
        key: &str,
        value: &str,
        ttl: Option<Duration>,
    ) -> Result<(), StoreError> {
        let key = key.to_owned();
        let value = value.to_owned();
        self.with_conn(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(store_error)?;
            let now = now_ms();
            cleanup_kv(&tx, now)?;
            upsert(&tx, &key, &value, ttl.map(|ttl| expiry(now, ttl)))?;
            tx.commit().map_err(store_error)
        })
        .await
    }
}

/// Writes `key`; `expires_at: None` clears any previous expiry, as "no TTL" means.
fn upsert(
    conn: &Connection,
    key: &str,
    value: &str,
    expires_at: Option<i64>,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO kv (key, value, expires_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at",
    )
    .and_then(|mut stmt| stmt.execute(params![key, value, expires_at]))
    .map(|_| ())
    .map_err(store_error)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn sqlite(code: std::ffi::c_int) -> rusqlite::Error {
        rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None)
    }

    #[test]
    fn a_locked_or_unreadable_file_is_unavailable_a_failing_statement_is_not() {
        use rusqlite::ffi;
        for code in [
            ffi::SQLITE_BUSY,
            ffi::SQLITE_LOCKED,
            ffi::SQLITE_IOERR,
            ffi::SQLITE_CANTOPEN,
        ] {
            let err = store_error(sqlite(code));
            assert!(matches!(err, StoreError::Unavailable(_)), "{err}");
        }
        for code in [ffi::SQLITE_CONSTRAINT, ffi::SQLITE_FULL, ffi::SQLITE_ERROR] {
            let err = store_error(sqlite(code));
            assert!(matches!(err, StoreError::Failed(_)), "{err}");
        }
        let err = store_error(sqlite(ffi::SQLITE_CORRUPT));
        assert!(matches!(err, StoreError::Corrupt(_)), "{err}");
    }

    fn open(dir: &tempfile::TempDir) -> EmbeddedStore {
        EmbeddedStore::open(&dir.path().join("nested").join("store.db")).unwrap()
    }

    fn count(store: &EmbeddedStore, table: &str) -> i64 {
        let conn = store.inner.conn.lock().unwrap();
        conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .unwrap()
    }

    /// Backdates every expiry in `table`, as if time had passed.
    fn expire_all(store: &EmbeddedStore, table: &str) {
        let conn = store.inner.conn.lock().unwrap();
        conn.execute(&format!("UPDATE {table} SET expires_at = 0"), [])
            .unwrap();
    }

    #[tokio::test]
    async fn creates_its_directory_and_reopens_with_data_intact() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir);
        let guard = store
            .try_lock("gh:1", Duration::from_secs(60))
            .await
            .unwrap()
            .unwrap();
        assert!(
            store
                .put_fenced(&guard, "map", "JIRA-1", None)
                .await
                .unwrap()
        );
        drop(store);
        let again = open(&dir);
        assert_eq!(again.get("map").await.unwrap().as_deref(), Some("JIRA-1"));
        // The lock is still held across the reopen: it is durable state, not process memory.
        assert!(
            again
                .try_lock("gh:1", Duration::from_secs(60))
                .await
                .unwrap()
                .is_none()
        );
    }

    #[tokio::test]
    async fn refuses_a_newer_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        drop(EmbeddedStore::open(&path).unwrap());
        Connection::open(&path)
            .unwrap()
            .pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        let err = EmbeddedStore::open(&path).unwrap_err();
        assert!(matches!(err, StoreError::Corrupt(_)), "{err}");
        assert!(!err.is_transient());
    }

    #[tokio::test]
    async fn a_file_that_is_not_a_database_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        std::fs::write(&path, vec![0x42; 8192]).unwrap();
        let err = EmbeddedStore::open(&path).unwrap_err();
        assert!(matches!(err, StoreError::Corrupt(_)), "{err}");
    }

    #[tokio::test]
    async fn writes_clean_up_expired_rows_but_never_fence_counters() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir);
        for i in 0..10 {
            store
                .mark_done(&format!("d{i}"), Duration::from_secs(60))
                .await
                .unwrap();
            store
                .put(&format!("k{i}"), "v", Some(Duration::from_secs(60)))
                .await
                .unwrap();
            store.put(&format!("forever{i}"), "v", None).await.unwrap();
            store
                .try_lock(&format!("l{i}"), Duration::from_secs(60))
                .await
                .unwrap()
                .unwrap();
        }
        expire_all(&store, "done");
        expire_all(&store, "locks");
        // Only rows that carry a TTL can expire.
        {
            let conn = store.inner.conn.lock().unwrap();
            conn.execute(
                "UPDATE kv SET expires_at = 0 WHERE expires_at IS NOT NULL",
                [],
            )
            .unwrap();
        }
        assert!(!store.is_done("d0").await.unwrap());
        assert_eq!(store.get("k0").await.unwrap(), None);

        store
            .mark_done("fresh", Duration::from_secs(60))
            .await
            .unwrap();
        store.put("fresh", "v", None).await.unwrap();
        let again = store
            .try_lock("l0", Duration::from_secs(60))
            .await
            .unwrap()
            .unwrap();

        assert_eq!(count(&store, "done"), 1);
        assert_eq!(
            count(&store, "kv"),
            11,
            "ten permanent entries and the fresh one"
        );
        assert_eq!(count(&store, "locks"), 1);
        assert_eq!(count(&store, "fences"), 10);
        assert_eq!(again.token, 2, "the fence counter survived its lock row");
    }

    #[tokio::test]
    async fn an_expired_lock_of_ours_is_no_longer_ours() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir);
        let guard = store
            .try_lock("gh:2", Duration::from_secs(60))
            .await
            .unwrap()
            .unwrap();
        expire_all(&store, "locks");
        // Nobody else has taken it, yet the holder's rights ended with its TTL.
        assert!(
            !store
                .extend_lock(&guard, Duration::from_secs(60))
                .await
                .unwrap()
        );
        assert!(!store.put_fenced(&guard, "k", "v", None).await.unwrap());
        assert!(!store.delete_fenced(&guard, "k").await.unwrap());
        let next = store
            .try_lock("gh:2", Duration::from_secs(60))
            .await
            .unwrap()
            .unwrap();
        assert!(next.token > guard.token);
    }

    #[tokio::test]
    async fn a_token_beyond_sqlite_integers_holds_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir);
        store
            .try_lock("gh:3", Duration::from_secs(60))
            .await
            .unwrap()
            .unwrap();
        let forged = LockGuard {
            key: "gh:3".into(),
            token: u64::MAX,
        };
        assert!(!store.put_fenced(&forged, "k", "v", None).await.unwrap());
        assert!(
            !store
                .extend_lock(&forged, Duration::from_secs(1))
                .await
                .unwrap()
        );
        store.unlock(&forged).await.unwrap();
        assert!(
            store
                .try_lock("gh:3", Duration::from_secs(60))
                .await
                .unwrap()
                .is_none()
        );
    }
}
