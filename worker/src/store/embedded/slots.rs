//! The rate-slot schedules of the embedded store, in their own file (`<store>-slots.db`) written
//! with `synchronous=OFF`: they are taken for every Jira request and are worthless after a power
//! loss, so they must not pay an fsync each or queue behind the store's durable writes.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::{EmbeddedStore, open_connection, store_error};
use crate::store::StoreError;

/// `store.db` → `store-slots.db`, next to it.
pub(super) fn slots_path(path: &Path) -> PathBuf {
    let stem = path
        .file_stem()
        .map_or_else(|| "store".to_owned(), |s| s.to_string_lossy().into_owned());
    path.with_file_name(format!("{stem}-slots.db"))
}

pub(super) fn open_slots(path: &Path) -> Result<Connection, StoreError> {
    let conn = open_connection(path, "OFF")?;
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS slots (key TEXT PRIMARY KEY, next_free_us INTEGER NOT NULL) WITHOUT ROWID;",
    )
    .map_err(store_error)?;
    Ok(conn)
}

fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}

/// Moves the schedule `key` to `max(next free, now)` + `advance` when `reserve`, or to at least
/// now + `advance` when not; returns the wait until the reserved slot.
fn move_schedule(
    conn: &mut Connection,
    key: &str,
    advance: i64,
    reserve: bool,
) -> Result<i64, StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(store_error)?;
    let now = now_us();
    let next_free: i64 = tx
        .query_row(
            "SELECT next_free_us FROM slots WHERE key = ?1",
            params![key],
            |r| r.get(0),
        )
        .optional()
        .map_err(store_error)?
        .unwrap_or(0);
    let (wait, new_next) = if reserve {
        let start = next_free.max(now);
        (start - now, start.saturating_add(advance))
    } else {
        (0, next_free.max(now.saturating_add(advance)))
    };
    tx.execute(
        "INSERT INTO slots (key, next_free_us) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET next_free_us = excluded.next_free_us",
        params![key, new_next],
    )
    .map_err(store_error)?;
    tx.commit().map_err(store_error)?;
    Ok(wait)
}

impl EmbeddedStore {
    /// Runs `f` with the slot schedules' connection on the blocking pool.
    async fn with_slots<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.blocking(|inner| &inner.slots, f).await
    }

    /// See [`super::Store::reserve_slot`].
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the file cannot be written.
    pub async fn reserve_slot(
        &self,
        key: &str,
        interval: Duration,
    ) -> Result<Duration, StoreError> {
        let key = key.to_owned();
        let advance = crate::store::micros(interval).max(1);
        let wait = self
            .with_slots(move |conn| move_schedule(conn, &key, advance, true))
            .await?;
        Ok(Duration::from_micros(u64::try_from(wait).unwrap_or(0)))
    }

    /// See [`super::Store::hold_off`].
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the file cannot be written.
    pub async fn hold_off(&self, key: &str, delay: Duration) -> Result<(), StoreError> {
        let key = key.to_owned();
        let advance = crate::store::micros(delay);
        self.with_slots(move |conn| move_schedule(conn, &key, advance, false).map(|_| ()))
            .await
    }
}
