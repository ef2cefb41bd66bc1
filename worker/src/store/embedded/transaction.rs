//! Transactions and lists of the embedded store: every [`Transaction`] is one `BEGIN IMMEDIATE`
//! SQLite transaction, so its conditions are checked and its writes applied under the database's
//! write lock, as one step for every process on the machine.
//!
//! A list is the rows of `lists` with one key, in `seq` order. Items are only appended at the back
//! (`seq` = last + 1) and removed from the front, so a list's rows are always a run of consecutive
//! `seq`s, and "keep the newest N" is "delete every `seq` up to last − N". A counter is a row
//! of `counters`, added to with an upsert.

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::{
    CLEANUP_BATCH, EmbeddedStore, cleanup_kv, db_token, expiry, holds, now_ms, store_error, upsert,
};
use crate::store::StoreError;
use crate::store::transaction::{Condition, Transaction, Write};

/// Whether every condition of `tx` holds, read inside the open transaction `conn`.
fn conditions_hold(conn: &Connection, tx: &Transaction, now: i64) -> Result<bool, StoreError> {
    for condition in &tx.conditions {
        let holds_now = match condition {
            Condition::Unchanged { key, raw } => {
                let current: Option<String> = conn
                    .prepare_cached(
                        "SELECT value FROM kv WHERE key = ?1 AND (expires_at IS NULL OR expires_at > ?2)",
                    )
                    .and_then(|mut stmt| stmt.query_row(params![key, now], |r| r.get(0)).optional())
                    .map_err(store_error)?;
                current == *raw
            }
            Condition::Holds(guard) => match db_token(guard) {
                Some(token) => holds(conn, &guard.key, token, now)?,
                None => false,
            },
        };
        if !holds_now {
            return Ok(false);
        }
    }
    Ok(true)
}

fn apply(conn: &Connection, write: &Write, now: i64) -> Result<(), StoreError> {
    match write {
        Write::Put { key, value, ttl } => upsert(conn, key, value, ttl.map(|t| expiry(now, t))),
        Write::Delete { key } => conn
            .execute("DELETE FROM kv WHERE key = ?1", params![key])
            .map(|_| ())
            .map_err(store_error),
        Write::Push {
            list,
            item,
            keep,
            ttl,
        } => {
            // A list's expiry is the same on all its rows (each push sets it for the whole list),
            // so one row tells it: reading the newest keeps a push O(1) on long lists without a
            // TTL (the delivery log), where touching every row would not be.
            let current: Option<Option<i64>> = conn
                .query_row(
                    "SELECT expires_at FROM lists WHERE key = ?1 ORDER BY seq DESC LIMIT 1",
                    params![list],
                    |r| r.get(0),
                )
                .optional()
                .map_err(store_error)?;
            let mut expiring = matches!(current, Some(Some(_)));
            if matches!(current, Some(Some(at)) if at <= now) {
                // An expired list is an absent one: its rows go before the new item starts it again.
                conn.execute("DELETE FROM lists WHERE key = ?1", params![list])
                    .map_err(store_error)?;
                expiring = false;
            }
            let seq: i64 = conn
                .query_row(
                    "SELECT COALESCE(MAX(seq), 0) + 1 FROM lists WHERE key = ?1",
                    params![list],
                    |r| r.get(0),
                )
                .map_err(store_error)?;
            let expires_at = ttl.map(|t| expiry(now, t));
            conn.execute(
                "INSERT INTO lists (key, seq, item, expires_at) VALUES (?1, ?2, ?3, ?4)",
                params![list, seq, item, expires_at],
            )
            .map_err(store_error)?;
            if let Some(keep) = keep {
                let keep = i64::try_from(*keep).unwrap_or(i64::MAX);
                conn.execute(
                    "DELETE FROM lists WHERE key = ?1 AND seq <= ?2",
                    params![list, seq.saturating_sub(keep)],
                )
                .map_err(store_error)?;
            }
            // As in Redis: the whole list expires `ttl` after this write, or never.
            if expiring || expires_at.is_some() {
                conn.execute(
                    "UPDATE lists SET expires_at = ?2 WHERE key = ?1",
                    params![list, expires_at],
                )
                .map_err(store_error)?;
            }
            Ok(())
        }
        Write::PopFront { list, count } => conn
            .execute(
                "DELETE FROM lists WHERE key = ?1 AND seq IN
                     (SELECT seq FROM lists WHERE key = ?1 ORDER BY seq LIMIT ?2)",
                params![list, i64::try_from(*count).unwrap_or(i64::MAX)],
            )
            .map(|_| ())
            .map_err(store_error),
        Write::Increment {
            counters,
            field,
            by,
        } => conn
            .prepare_cached(
                "INSERT INTO counters (key, field, value) VALUES (?1, ?2, ?3)
                 ON CONFLICT (key, field) DO UPDATE SET value = value + excluded.value",
            )
            .and_then(|mut stmt| {
                stmt.execute(params![
                    counters,
                    field,
                    i64::try_from(*by).unwrap_or(i64::MAX)
                ])
            })
            .map(|_| ())
            .map_err(store_error),
        Write::MarkDone { delivery, ttl } => conn
            .execute(
                "INSERT INTO done (delivery, expires_at) VALUES (?1, ?2)
                 ON CONFLICT (delivery) DO UPDATE SET expires_at = excluded.expires_at",
                params![delivery, expiry(now, *ttl)],
            )
            .map(|_| ())
            .map_err(store_error),
    }
}

/// Deletes a bounded batch of expired list rows, on the side of a write.
fn cleanup_lists(conn: &Connection, now: i64) -> Result<(), StoreError> {
    conn.prepare_cached(
        "DELETE FROM lists WHERE rowid IN
             (SELECT rowid FROM lists WHERE expires_at IS NOT NULL AND expires_at <= ?1 LIMIT ?2)",
    )
    .and_then(|mut stmt| stmt.execute(params![now, CLEANUP_BATCH]))
    .map(|_| ())
    .map_err(store_error)
}

fn commit_in(conn: &mut Connection, tx: &Transaction) -> Result<bool, StoreError> {
    let sql = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(store_error)?;
    let now = now_ms();
    if !conditions_hold(&sql, tx, now)? {
        return Ok(false);
    }
    cleanup_kv(&sql, now)?;
    cleanup_lists(&sql, now)?;
    for write in &tx.writes {
        apply(&sql, write, now)?;
    }
    sql.commit().map_err(store_error)?;
    Ok(true)
}

impl EmbeddedStore {
    /// See [`crate::store::Store::commit`].
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the file cannot be written.
    pub async fn commit(&self, tx: &Transaction) -> Result<bool, StoreError> {
        let tx = tx.clone();
        self.with_conn(move |conn| commit_in(conn, &tx)).await
    }

    /// Every counter of the family `counters`: field and value.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the file cannot be read.
    pub async fn counters(&self, counters: &str) -> Result<Vec<(String, u64)>, StoreError> {
        let counters = counters.to_owned();
        self.with_conn(move |conn| {
            let mut stmt = conn
                .prepare_cached("SELECT field, value FROM counters WHERE key = ?1")
                .map_err(store_error)?;
            let rows = stmt
                .query_map(params![counters], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
                })
                .map_err(store_error)?;
            rows.map(|row| {
                let (field, value) = row.map_err(store_error)?;
                Ok((field, u64::try_from(value).unwrap_or(0)))
            })
            .collect()
        })
        .await
    }

    /// Up to `count` items of `list` from position `start` (0 = oldest).
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the file cannot be read.
    pub async fn list_range(
        &self,
        list: &str,
        start: usize,
        count: usize,
    ) -> Result<Vec<String>, StoreError> {
        let list = list.to_owned();
        let start = i64::try_from(start).unwrap_or(i64::MAX);
        let count = i64::try_from(count).unwrap_or(i64::MAX);
        self.with_conn(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT item FROM lists WHERE key = ?1 AND (expires_at IS NULL OR expires_at > ?2)
                     ORDER BY seq LIMIT ?3 OFFSET ?4",
                )
                .map_err(store_error)?;
            let rows = stmt
                .query_map(params![list, now_ms(), count, start], |r| r.get(0))
                .map_err(store_error)?;
            rows.collect::<Result<Vec<String>, _>>()
                .map_err(store_error)
        })
        .await
    }

    /// Up to `count` items of `list` from position `start` counted from the newest (0 = newest),
    /// newest first.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the file cannot be read.
    pub async fn list_range_newest(
        &self,
        list: &str,
        start: usize,
        count: usize,
    ) -> Result<Vec<String>, StoreError> {
        let list = list.to_owned();
        let start = i64::try_from(start).unwrap_or(i64::MAX);
        let count = i64::try_from(count).unwrap_or(i64::MAX);
        self.with_conn(move |conn| {
            if list_expired(conn, &list)? {
                return Ok(Vec::new());
            }
            // No per-row expiry test: the skipped rows are then stepped over in the primary
            // key's index alone, which keeps a deep page of a long list cheap.
            let mut stmt = conn
                .prepare_cached(
                    "SELECT item FROM lists WHERE key = ?1 ORDER BY seq DESC LIMIT ?2 OFFSET ?3",
                )
                .map_err(store_error)?;
            let rows = stmt
                .query_map(params![list, count, start], |r| r.get(0))
                .map_err(store_error)?;
            rows.collect::<Result<Vec<String>, _>>()
                .map_err(store_error)
        })
        .await
    }

    /// How many items `list` holds.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the file cannot be read.
    pub async fn list_len(&self, list: &str) -> Result<usize, StoreError> {
        let list = list.to_owned();
        self.with_conn(move |conn| {
            if list_expired(conn, &list)? {
                return Ok(0);
            }
            conn.query_row(
                "SELECT COUNT(*) FROM lists WHERE key = ?1",
                params![list],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| usize::try_from(n).unwrap_or(0))
            .map_err(store_error)
        })
        .await
    }
}

/// Whether `list` has expired: its expiry is the same on every row (a push sets it for the whole
/// list), so its newest row tells.
fn list_expired(conn: &Connection, list: &str) -> Result<bool, StoreError> {
    let expires_at: Option<Option<i64>> = conn
        .query_row(
            "SELECT expires_at FROM lists WHERE key = ?1 ORDER BY seq DESC LIMIT 1",
            params![list],
            |r| r.get(0),
        )
        .optional()
        .map_err(store_error)?;
    Ok(matches!(expires_at, Some(Some(at)) if at <= now_ms()))
}
