//! The dead-letter store of the embedded queue: the `dead_letters` table beside `messages`.
//! Moving a message in or out is one SQLite transaction, so it is always in exactly one of the
//! two tables (README, "Dead-letter queue").

use std::time::Duration;

use bytes::Bytes;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::{EmbeddedQueue, codec, now_ms, rows, split_handle, to_time, unavailable};
use crate::queue::{DeadLetter, Progress, QueueDepth, QueueError, Received, Redriven};

/// Dead letters moved back per transaction by `redrive_all`.
const REDRIVE_BATCH: usize = 100;

const SELECT_DEAD_LETTER: &str =
    "SELECT id, body, receive_count, sent_at, last_error, codec FROM dead_letters";

fn dead_letter_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<DeadLetter> {
    let stored: Vec<u8> = row.get(1)?;
    let codec: i64 = row.get(5)?;
    let (body, last_error) = match codec::unpack(codec, stored.clone()) {
        Ok(body) => (body, row.get(4)?),
        // Shown as stored, with the reason it could not be read.
        Err(e) => (Bytes::from(stored), Some(e.to_string())),
    };
    Ok(DeadLetter {
        id: row.get(0)?,
        body,
        receive_count: row.get(2)?,
        sent_at: to_time(row.get(3)?),
        last_error,
    })
}

/// Moves the dead letters `ids` back to `messages`, visible now with a fresh receive count, in
/// one transaction; returns how many moved.
fn move_back(conn: &mut Connection, ids: &[String]) -> Result<u64, QueueError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(unavailable)?;
    let now = now_ms();
    let mut moved = 0;
    for id in ids {
        // OR IGNORE: a message already back on the queue under this id stays as it is.
        tx.execute(
            "INSERT OR IGNORE INTO messages (id, body, codec, sent_at, visible_at, receive_count)
             SELECT id, body, codec, sent_at, ?1, 0 FROM dead_letters WHERE id = ?2",
            params![now, id],
        )
        .map_err(unavailable)?;
        moved += tx
            .execute("DELETE FROM dead_letters WHERE id = ?1", params![id])
            .map_err(unavailable)? as u64;
    }
    tx.commit().map_err(unavailable)?;
    Ok(moved)
}

impl EmbeddedQueue {
    pub async fn dead_letter(&self, message: &Received, reason: &str) -> Result<(), QueueError> {
        let (id, receipt) = split_handle(&message.handle)?;
        let reason = reason.to_owned();
        let moved = self
            .with_conn(move |conn, inner| {
                let tx = conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .map_err(unavailable)?;
                let mut files = rows::OpenFiles::new(&inner.inbox_dir);
                let moved = rows::bury(
                    &tx,
                    &mut files,
                    &id,
                    Some(&receipt),
                    Some(&reason),
                    now_ms(),
                )?;
                tx.commit().map_err(unavailable)?;
                Ok(moved)
            })
            .await?;
        if !moved {
            return Err(QueueError::Rejected(
                "receipt is no longer current (message deleted or received again)".into(),
            ));
        }
        Ok(())
    }

    pub async fn dead_letters(&self, max: usize) -> Result<Vec<DeadLetter>, QueueError> {
        self.with_conn(move |conn, _| {
            let mut stmt = conn
                .prepare(&format!("{SELECT_DEAD_LETTER} ORDER BY seq LIMIT ?1"))
                .map_err(unavailable)?;
            let rows = stmt
                .query_map(params![max as i64], dead_letter_row)
                .map_err(unavailable)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(unavailable)
        })
        .await
    }

    /// See [`crate::queue::Queue::dead_letters_page`].
    pub async fn dead_letters_page(
        &self,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<DeadLetter>, QueueError> {
        let offset = i64::try_from(offset).unwrap_or(i64::MAX);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.with_conn(move |conn, _| {
            let mut stmt = conn
                .prepare(&format!(
                    "{SELECT_DEAD_LETTER} ORDER BY seq LIMIT ?1 OFFSET ?2"
                ))
                .map_err(unavailable)?;
            let rows = stmt
                .query_map(params![limit, offset], dead_letter_row)
                .map_err(unavailable)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(unavailable)
        })
        .await
    }

    /// See [`crate::queue::Queue::dead_letter_by_id`].
    pub async fn dead_letter_by_id(&self, id: &str) -> Result<DeadLetter, QueueError> {
        let id = id.to_owned();
        self.with_conn(move |conn, _| {
            conn.query_row(
                &format!("{SELECT_DEAD_LETTER} WHERE id = ?1"),
                params![id],
                dead_letter_row,
            )
            .optional()
            .map_err(unavailable)?
            .ok_or(QueueError::NotFound(id))
        })
        .await
    }

    /// See [`crate::queue::Queue::redrive`].
    pub async fn redrive(&self, id: &str) -> Result<(), QueueError> {
        let ids = vec![id.to_owned()];
        let moved = self.with_conn(move |conn, _| move_back(conn, &ids)).await?;
        if moved == 0 {
            return Err(QueueError::NotFound(id.to_owned()));
        }
        self.inner.notify.notify_waiters();
        Ok(())
    }

    /// See [`crate::queue::Queue::redrive_all`]: batches of [`REDRIVE_BATCH`], oldest first,
    /// paced to `rate` per second.
    pub async fn redrive_all(
        &self,
        rate: Option<u32>,
        progress: &dyn Progress,
    ) -> Result<Redriven, QueueError> {
        let total = self.dead_letter_count().await?;
        let batch = rate.map_or(REDRIVE_BATCH, |r| (r as usize).clamp(1, REDRIVE_BATCH));
        let started = tokio::time::Instant::now();
        let mut done = Redriven::default();
        progress.advanced(0, Some(total));
        loop {
            let ids: Vec<String> = self
                .with_conn(move |conn, _| {
                    let mut stmt = conn
                        .prepare("SELECT id FROM dead_letters ORDER BY seq LIMIT ?1")
                        .map_err(unavailable)?;
                    let rows = stmt
                        .query_map(params![batch as i64], |r| r.get(0))
                        .map_err(unavailable)?;
                    rows.collect::<Result<Vec<String>, _>>()
                        .map_err(unavailable)
                })
                .await?;
            if ids.is_empty() {
                break;
            }
            let moved = self.with_conn(move |conn, _| move_back(conn, &ids)).await?;
            done.moved += moved;
            self.inner.notify.notify_waiters();
            progress.advanced(done.moved, Some(total.max(done.moved)));
            if let Some(rate) = rate.filter(|r| *r > 0) {
                // Keep the average at `rate` per second since the start.
                let due = Duration::from_secs_f64(done.moved as f64 / f64::from(rate));
                tokio::time::sleep_until(started + due).await;
            }
        }
        Ok(done)
    }

    /// See [`crate::queue::Queue::purge_dead_letters`].
    pub async fn purge_dead_letters(&self) -> Result<u64, QueueError> {
        self.with_conn(|conn, _| {
            conn.execute("DELETE FROM dead_letters", [])
                .map(|n| n as u64)
                .map_err(unavailable)
        })
        .await
    }

    async fn dead_letter_count(&self) -> Result<u64, QueueError> {
        self.with_conn(|conn, _| {
            conn.query_row("SELECT count(*) FROM dead_letters", [], |r| {
                r.get::<_, i64>(0)
            })
            .map(|n| n as u64)
            .map_err(unavailable)
        })
        .await
    }

    /// See [`crate::queue::Queue::depth`].
    pub async fn queue_depth(&self) -> Result<QueueDepth, QueueError> {
        self.with_conn(|conn, inner| {
            inner.import(conn)?;
            let now = now_ms();
            let count = |sql: &str| -> Result<u64, QueueError> {
                conn.query_row(sql, params![now], |r| r.get::<_, i64>(0))
                    .map(|n| n as u64)
                    .map_err(unavailable)
            };
            Ok(QueueDepth {
                visible: count("SELECT count(*) FROM messages WHERE visible_at <= ?1")?,
                // A message given back with a delay has no receipt-holder, but is as hidden as
                // one in work; the table does not tell them apart, so both count as in flight.
                in_flight: count("SELECT count(*) FROM messages WHERE visible_at > ?1")?,
                delayed: 0,
                dead_letters: Some(count(
                    "SELECT count(*) FROM dead_letters WHERE ?1 IS NOT NULL",
                )?),
            })
        })
        .await
    }
}
