//! The embedded durable queue: SQLite in WAL mode with `synchronous=FULL`, in one file that the
//! ingest and any number of worker processes on the same machine open at once.
//!
//! Why SQLite: it is a proven storage engine whose transactions survive `kill -9` of any process
//! (and, with `synchronous=FULL`, power loss), and its file locking makes several processes safe
//! without a broker. Sends go through one writer thread per process that commits everything waiting
//! in one transaction (group commit), so the cost of an fsync is shared by all concurrent requests.
//! Copying the write-ahead log back into the database file (a checkpoint, with fsyncs of its own) is
//! kept off that path: every connection has automatic checkpoints off, and a checkpointer thread
//! per process does it every 200 ms (passive: it never blocks a writer), on the
//! second core while the writer waits for its fsync.
//! Message ids are UUIDv7, time-ordered, so the unique index on them grows at its end. Bodies are
//! LZ4-compressed on the sender's thread before they reach the writer ([`codec`]).
//!
//! Semantics mirror SQS: receiving makes a message invisible for the visibility timeout and
//! increments its receive count; a message that was already received `max_receive_count` times is
//! moved to the `dead_letters` table instead of being handed out again.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use chrono::{DateTime, TimeZone, Utc};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use tokio::sync::{Notify, oneshot};

mod codec;
mod dead_letters;
mod writer;

use writer::{WriteJob, checkpointer, group_commit_writer};

use super::{QueueError, ReceiptHandle, ReceiveOptions, Received};

/// The page size of a new queue file. Larger than SQLite's 4 KiB so that a group commit writes
/// fewer, larger log frames (two system calls each) and a compressed webhook fits in one page;
/// not larger still, because every receive and delete rewrites whole pages into the log (64 KiB
/// pages measured no faster for the ingest and slower for consumers; README, "Performance").
const PAGE_SIZE: i64 = 16 * 1024;

/// How an embedded queue is opened.
#[derive(Debug, Clone)]
pub struct EmbeddedOptions {
    /// The SQLite file; its directory is created if missing.
    pub path: PathBuf,
    /// A message received this many times goes to the dead-letter store on its next receive.
    pub max_receive_count: u32,
    /// How often a long poll looks for messages sent by other processes (sends from this process
    /// wake it at once).
    pub poll_interval: Duration,
}

impl EmbeddedOptions {
    /// The queue file in a data dir, with default limits.
    pub fn in_dir(dir: &Path, file: &str) -> Self {
        Self {
            path: dir.join(file),
            max_receive_count: 5,
            poll_interval: Duration::from_millis(50),
        }
    }
}

struct Inner {
    path: PathBuf,
    writer: std_mpsc::Sender<WriteJob>,
    /// Dropping it stops the checkpointer thread.
    _checkpointer: std_mpsc::SyncSender<()>,
    conn: Mutex<Connection>,
    notify: Arc<Notify>,
    max_receive_count: u32,
    poll_interval: Duration,
    /// Group commits made by this process (for metrics and the benchmark).
    commits: Arc<AtomicU64>,
}

/// A durable SQLite-backed queue; cheap to clone.
#[derive(Clone)]
pub struct EmbeddedQueue {
    inner: Arc<Inner>,
}

fn unavailable(e: impl std::fmt::Display) -> QueueError {
    QueueError::Unavailable(e.to_string())
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

fn to_time(ms: i64) -> Option<DateTime<Utc>> {
    Utc.timestamp_millis_opt(ms).single()
}

fn open_connection(path: &Path) -> Result<Connection, QueueError> {
    let conn =
        Connection::open(path).map_err(|e| unavailable(format!("open {}: {e}", path.display())))?;
    conn.busy_timeout(Duration::from_secs(10))
        .map_err(unavailable)?;
    // Only takes effect on a new file (before its first write); an existing file keeps its size.
    conn.pragma_update(None, "page_size", PAGE_SIZE)
        .map_err(unavailable)?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(unavailable)?;
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(unavailable)?;
    // The checkpointer thread does it, so that no commit waits for a checkpoint.
    conn.pragma_update(None, "wal_autocheckpoint", 0)
        .map_err(unavailable)?;
    // After a burst, a log restart truncates the file to this size.
    conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)
        .map_err(unavailable)?;
    Ok(conn)
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    body BLOB NOT NULL,
    sent_at INTEGER NOT NULL,
    visible_at INTEGER NOT NULL,
    receive_count INTEGER NOT NULL DEFAULT 0,
    receipt TEXT,
    last_error TEXT,
    codec INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS messages_by_visibility ON messages (visible_at, seq);
CREATE TABLE IF NOT EXISTS dead_letters (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    body BLOB NOT NULL,
    sent_at INTEGER NOT NULL,
    receive_count INTEGER NOT NULL,
    dead_at INTEGER NOT NULL,
    last_error TEXT,
    codec INTEGER NOT NULL DEFAULT 0
);
";

/// Brings a queue file written by an earlier version up to [`SCHEMA`]: files from before
/// compression lack the `codec` columns, and every row in them is raw (the column's default).
/// One transaction, so that processes opening the file at once do it once.
fn upgrade(conn: &mut Connection) -> Result<(), QueueError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(unavailable)?;
    for table in ["messages", "dead_letters"] {
        let has_codec: bool = tx
            .query_row(
                &format!("SELECT count(*) FROM pragma_table_info('{table}') WHERE name = 'codec'"),
                [],
                |r| r.get::<_, i64>(0),
            )
            .map_err(unavailable)?
            > 0;
        if !has_codec {
            tx.execute_batch(&format!(
                "ALTER TABLE {table} ADD COLUMN codec INTEGER NOT NULL DEFAULT 0"
            ))
            .map_err(unavailable)?;
        }
    }
    tx.commit().map_err(unavailable)
}

impl EmbeddedQueue {
    /// Opens (creating if needed) the queue file and starts this process's group-commit writer.
    ///
    /// # Errors
    /// [`QueueError::Unavailable`] when the directory or database cannot be created or opened.
    pub fn open(options: EmbeddedOptions) -> Result<Self, QueueError> {
        if let Some(dir) = options.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| unavailable(format!("create {}: {e}", dir.display())))?;
        }
        let mut conn = open_connection(&options.path)?;
        conn.execute_batch(SCHEMA).map_err(unavailable)?;
        upgrade(&mut conn)?;
        let writer_conn = open_connection(&options.path)?;
        let notify = Arc::new(Notify::new());
        let (tx, rx) = std_mpsc::channel();
        let writer_notify = notify.clone();
        let commits = Arc::new(AtomicU64::new(0));
        let writer_commits = commits.clone();
        // Held while this process checkpoints (see `checkpointer`).
        let checkpointing = Arc::new(Mutex::new(()));
        let writer_checkpointing = checkpointing.clone();
        std::thread::Builder::new()
            .name("hookbridge-queue-writer".into())
            .spawn(move || {
                group_commit_writer(
                    writer_conn,
                    rx,
                    writer_notify,
                    writer_commits,
                    &writer_checkpointing,
                );
            })
            .map_err(unavailable)?;
        let checkpoint_conn = open_connection(&options.path)?;
        let (stop_checkpoints, checkpoints_stopped) = std_mpsc::sync_channel(0);
        std::thread::Builder::new()
            .name("hookbridge-queue-checkpointer".into())
            .spawn(move || checkpointer(checkpoint_conn, checkpoints_stopped, &checkpointing))
            .map_err(unavailable)?;
        Ok(Self {
            inner: Arc::new(Inner {
                path: options.path,
                writer: tx,
                _checkpointer: stop_checkpoints,
                conn: Mutex::new(conn),
                notify,
                max_receive_count: options.max_receive_count.max(1),
                poll_interval: options.poll_interval,
                commits,
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The bytes `body` takes in the queue: all of them, as they are.
    pub fn encoded_len(&self, body: &[u8]) -> Result<usize, QueueError> {
        Ok(body.len())
    }

    pub fn max_message_bytes(&self) -> Option<usize> {
        None
    }

    /// Send transactions (group commits) this process has made.
    pub fn write_calls(&self) -> u64 {
        self.inner.commits.load(Ordering::Relaxed)
    }

    pub async fn send(&self, body: Bytes) -> Result<String, QueueError> {
        let (reply, rx) = oneshot::channel();
        self.inner
            .writer
            .send(WriteJob {
                // Compressed here, on the sender's thread: the writer thread is shared by all.
                body: codec::pack(body),
                reply,
            })
            .map_err(|_| unavailable("queue writer stopped"))?;
        rx.await.map_err(|_| unavailable("queue writer stopped"))?
    }

    pub async fn send_batch(&self, bodies: Vec<Bytes>) -> Vec<Result<String, QueueError>> {
        // Queued together, these almost always land in one group commit.
        let pending: Vec<_> = bodies.into_iter().map(|b| self.send(b)).collect();
        futures_util::future::join_all(pending).await
    }

    /// Runs `f` with this process's connection on the blocking pool.
    async fn with_conn<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection, &Inner) -> Result<T, QueueError> + Send + 'static,
    ) -> Result<T, QueueError> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = inner.conn.lock().map_err(unavailable)?;
            f(&mut conn, &inner)
        })
        .await
        .map_err(unavailable)?
    }

    pub async fn receive(&self, opts: ReceiveOptions) -> Result<Vec<Received>, QueueError> {
        let deadline = tokio::time::Instant::now() + opts.wait;
        loop {
            let notified = self.inner.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let got = self
                .with_conn(move |conn, inner| receive_now(conn, inner.max_receive_count, opts))
                .await?;
            let now = tokio::time::Instant::now();
            if !got.is_empty() || now >= deadline {
                return Ok(got);
            }
            let nap = self.inner.poll_interval.min(deadline - now);
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep(nap) => {}
            }
        }
    }

    pub async fn delete(&self, handle: &ReceiptHandle) -> Result<(), QueueError> {
        self.delete_batch(std::slice::from_ref(handle))
            .await
            .pop()
            .unwrap_or(Ok(()))
    }

    /// Deletes are idempotent like SQS's: a receipt that is no longer current deletes nothing and
    /// is not an error (the message was redelivered and its new holder settles it).
    pub async fn delete_batch(&self, handles: &[ReceiptHandle]) -> Vec<Result<(), QueueError>> {
        let parsed: Vec<Result<(String, String), QueueError>> =
            handles.iter().map(split_handle).collect();
        let count = parsed.len();
        let outcome = self
            .with_conn(move |conn, _| {
                let tx = conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .map_err(unavailable)?;
                let mut results = Vec::with_capacity(parsed.len());
                for handle in parsed {
                    results.push(match handle {
                        Ok((id, receipt)) => tx
                            .execute(
                                "DELETE FROM messages WHERE id = ?1 AND receipt = ?2",
                                params![id, receipt],
                            )
                            .map(|_| ())
                            .map_err(unavailable),
                        Err(e) => Err(e),
                    });
                }
                tx.commit().map_err(unavailable)?;
                Ok(results)
            })
            .await;
        match outcome {
            Ok(results) => results,
            Err(e) => (0..count)
                .map(|_| Err(QueueError::Unavailable(e.to_string())))
                .collect(),
        }
    }

    pub async fn change_visibility(
        &self,
        handle: &ReceiptHandle,
        timeout: Duration,
    ) -> Result<(), QueueError> {
        let (id, receipt) = split_handle(handle)?;
        let changed = self
            .with_conn(move |conn, _| {
                let visible_at = now_ms() + timeout.as_millis() as i64;
                conn.execute(
                    "UPDATE messages SET visible_at = ?1 WHERE id = ?2 AND receipt = ?3",
                    params![visible_at, id, receipt],
                )
                .map_err(unavailable)
            })
            .await?;
        if changed == 0 {
            return Err(QueueError::Rejected(
                "receipt is no longer current (message deleted or received again)".into(),
            ));
        }
        if timeout.is_zero() {
            self.inner.notify.notify_waiters();
        }
        Ok(())
    }

    pub async fn check_ready(&self) -> Result<(), QueueError> {
        self.with_conn(|conn, _| {
            conn.query_row("SELECT count(*) FROM dead_letters", [], |_| Ok(()))
                .map_err(unavailable)
        })
        .await
    }

    /// Messages waiting or in flight (not dead-lettered); for tests and metrics.
    ///
    /// # Errors
    /// [`QueueError::Unavailable`] when the database cannot be read.
    pub async fn depth(&self) -> Result<u64, QueueError> {
        self.with_conn(|conn, _| {
            conn.query_row("SELECT count(*) FROM messages", [], |r| r.get::<_, i64>(0))
                .map(|n| n as u64)
                .map_err(unavailable)
        })
        .await
    }
}

fn split_handle(handle: &ReceiptHandle) -> Result<(String, String), QueueError> {
    handle
        .0
        .split_once('/')
        .map(|(id, receipt)| (id.to_owned(), receipt.to_owned()))
        .ok_or_else(|| QueueError::Rejected("malformed receipt handle".into()))
}

/// One receive attempt without waiting. Takes the write lock only when something is visible.
fn receive_now(
    conn: &mut Connection,
    max_receive_count: u32,
    opts: ReceiveOptions,
) -> Result<Vec<Received>, QueueError> {
    let now = now_ms();
    let any_visible: Option<i64> = conn
        .query_row(
            "SELECT seq FROM messages WHERE visible_at <= ?1 LIMIT 1",
            params![now],
            |r| r.get(0),
        )
        .optional()
        .map_err(unavailable)?;
    if any_visible.is_none() {
        return Ok(Vec::new());
    }
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(unavailable)?;
    let now = now_ms();
    let visible_at = now + opts.visibility.as_millis() as i64;
    let want = opts.max_messages.max(1);
    let mut out = Vec::with_capacity(want);
    loop {
        let candidates: Vec<(String, Vec<u8>, i64, i64, u32)> = {
            let mut stmt = tx
                .prepare_cached(
                    "SELECT id, body, codec, sent_at, receive_count FROM messages
                     WHERE visible_at <= ?1 ORDER BY visible_at, seq LIMIT ?2",
                )
                .map_err(unavailable)?;
            stmt.query_map(params![now, (want - out.len()) as i64], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
            .map_err(unavailable)?
            .collect::<Result<_, _>>()
            .map_err(unavailable)?
        };
        if candidates.is_empty() {
            break;
        }
        for (id, body, codec, sent_at, receive_count) in candidates {
            if receive_count >= max_receive_count {
                tx.execute(
                    "INSERT OR REPLACE INTO dead_letters
                         (id, body, codec, sent_at, receive_count, dead_at, last_error)
                     SELECT id, body, codec, sent_at, receive_count, ?1,
                            coalesce(last_error, 'received ' || receive_count || ' times without being deleted')
                     FROM messages WHERE id = ?2",
                    params![now, id],
                )
                .map_err(unavailable)?;
                tx.execute("DELETE FROM messages WHERE id = ?1", params![id])
                    .map_err(unavailable)?;
                continue;
            }
            // A body that cannot be read back is dead-lettered as it is, with the reason, rather
            // than offered to consumers or left to block the queue.
            let body = match codec::unpack(codec, body) {
                Ok(body) => body,
                Err(e) => {
                    tx.execute(
                        "INSERT OR REPLACE INTO dead_letters
                             (id, body, codec, sent_at, receive_count, dead_at, last_error)
                         SELECT id, body, codec, sent_at, receive_count, ?1, ?2
                         FROM messages WHERE id = ?3",
                        params![now, e.to_string(), id],
                    )
                    .map_err(unavailable)?;
                    tx.execute("DELETE FROM messages WHERE id = ?1", params![id])
                        .map_err(unavailable)?;
                    continue;
                }
            };
            let receipt = uuid::Uuid::new_v4().simple().to_string();
            tx.execute(
                "UPDATE messages SET visible_at = ?1, receive_count = receive_count + 1, receipt = ?2
                 WHERE id = ?3",
                params![visible_at, receipt, id],
            )
            .map_err(unavailable)?;
            out.push(Received {
                handle: ReceiptHandle(format!("{id}/{receipt}")),
                id,
                body,
                receive_count: receive_count + 1,
                sent_at: to_time(sent_at),
            });
        }
        if out.len() >= want {
            break;
        }
    }
    tx.commit().map_err(unavailable)?;
    Ok(out)
}
