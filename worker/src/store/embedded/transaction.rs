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
            // An expired list is an absent one: its rows go before the new item starts it again.
            conn.execute(
                "DELETE FROM lists WHERE key = ?1 AND expires_at IS NOT NULL AND expires_at <= ?2",
                params![list, now],
            )
            .map_err(store_error)?;
            let seq: i64 = conn
                .query_row(
                    "SELECT COALESCE(MAX(seq), 0) + 1 FROM lists WHERE key = ?1",
                    params![list],
                    |r| r.get(0),
                )
                .map_err(store_error)?;
            conn.execute(
                "INSERT INTO lists (key, seq, item, expires_at) VALUES (?1, ?2, ?3, NULL)",
                params![list, seq, item],
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
            conn.execute(
                "UPDATE lists SET expires_at = ?2 WHERE key = ?1",
                params![list, ttl.map(|t| expiry(now, t))],
            )
            .map(|_| ())
            .map_err(store_error)
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
}
