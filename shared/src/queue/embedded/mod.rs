//! The embedded durable queue, in one directory that the ingest and any number of worker
//! processes on the same machine open at once:
//!
//! - **Sends** land in append-only inbox files, one per open queue, written by one writer thread
//!   per process that appends everything waiting with one `write` and one `fdatasync` (group
//!   commit), so the cost of an fsync is shared by all concurrent requests and each body is
//!   written once ([`inbox`], [`writer`]). Bodies are LZ4-compressed on the sender's thread before
//!   they reach the writer ([`codec`]).
//! - **Queue state** is SQLite in WAL mode with `synchronous=FULL`: a proven storage engine whose
//!   transactions survive `kill -9` of any process (and power loss), and whose file locking makes
//!   several processes safe without a broker. Consumers take new inbox records into its
//!   `messages` table by reference, exactly once ([`import`]), and read the bytes back from the
//!   inbox when they receive a message ([`rows`]). A checkpointer thread keeps its log short
//!   ([`checkpoints`]).
//!
//! Message ids are UUIDv7, time-ordered, so the unique index on them grows at its end.
//!
//! Semantics mirror SQS: receiving makes a message invisible for the visibility timeout and
//! increments its receive count; a message that was already received `max_receive_count` times is
//! moved to the `dead_letters` table instead of being handed out again (with its body copied
//! into the row, so that no inbox file is kept for a dead letter).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use chrono::{DateTime, TimeZone, Utc};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use tokio::sync::{Notify, oneshot};

mod checkpoints;
mod codec;
mod dead_letters;
mod import;
mod inbox;
mod rows;
mod writer;

#[cfg(test)]
mod inbox_tests;

use writer::{WriteJob, group_commit_writer};

use super::{QueueError, ReceiptHandle, ReceiveOptions, Received};

/// The page size of a new queue file. Chosen (over SQLite's 4 KiB, and 64 KiB) when bodies were
/// stored in the database: a compressed webhook fitted in one page. Bodies are in the inbox files
/// now and rows are small; kept, since the consumer benchmark measured faster than before with it
/// (README, "Benchmarks").
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
    /// How large this process's inbox file grows before it starts a new one; consumed files are
    /// removed once a newer one has taken over ([`inbox`]).
    pub inbox_file_bytes: u64,
}

impl EmbeddedOptions {
    /// The queue file in a data dir, with default limits.
    pub fn in_dir(dir: &Path, file: &str) -> Self {
        Self {
            path: dir.join(file),
            max_receive_count: 5,
            poll_interval: Duration::from_millis(50),
            inbox_file_bytes: inbox::DEFAULT_FILE_BYTES,
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
    /// Which sends are compressed, as the writer finds the load ([`codec::Compression`]).
    compression: Arc<codec::Compression>,
    /// Where this queue's inbox files are ([`inbox`]).
    inbox_dir: PathBuf,
    /// When this process next looks for inbox files to seal or remove (ms since the epoch).
    next_sweep: AtomicU64,
}

impl Inner {
    /// Takes what the inbox holds into `messages`, for a reader that must see every message sent.
    fn import(&self, conn: &mut Connection) -> Result<(), QueueError> {
        import::run_alone(conn, &self.inbox_dir, self.sweep_due())
    }

    /// Whether this pass should also sweep the inbox (at most every [`import::SWEEP_INTERVAL`]).
    fn sweep_due(&self) -> bool {
        let now = now_ms() as u64;
        let due = self.next_sweep.load(Ordering::Relaxed);
        now >= due
            && self
                .next_sweep
                .compare_exchange(
                    due,
                    now + import::SWEEP_INTERVAL.as_millis() as u64,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
    }
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
    codec INTEGER NOT NULL DEFAULT 0,
    inbox_file INTEGER,
    inbox_offset INTEGER,
    inbox_len INTEGER
);
CREATE INDEX IF NOT EXISTS messages_by_visibility ON messages (visible_at, seq);
CREATE TABLE IF NOT EXISTS inbox_files (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    imported_to INTEGER NOT NULL,
    sealed INTEGER NOT NULL DEFAULT 0 -- 0 live, 1 sealed, 2 unreadable (import.rs)
);
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
/// compression lack the `codec` columns, and every row in them is raw (the column's default);
/// files from before the inbox lack the `inbox_*` columns, and every row in them keeps its body
/// in the row (the columns' default, NULL). One transaction, so that processes opening the file
/// at once do it once; then the index on the new column.
fn upgrade(conn: &mut Connection) -> Result<(), QueueError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(unavailable)?;
    let columns = [
        ("messages", "codec", "INTEGER NOT NULL DEFAULT 0"),
        ("dead_letters", "codec", "INTEGER NOT NULL DEFAULT 0"),
        ("messages", "inbox_file", "INTEGER"),
        ("messages", "inbox_offset", "INTEGER"),
        ("messages", "inbox_len", "INTEGER"),
    ];
    for (table, column, kind) in columns {
        let present: bool = tx
            .query_row(
                &format!("SELECT count(*) FROM pragma_table_info('{table}') WHERE name = ?1"),
                [column],
                |r| r.get::<_, i64>(0),
            )
            .map_err(unavailable)?
            > 0;
        if !present {
            tx.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {kind}"))
                .map_err(unavailable)?;
        }
    }
    // Partial: rows of older files (and redriven ones) keep their body and stay out of it.
    tx.execute_batch(
        "CREATE INDEX IF NOT EXISTS messages_by_inbox_file ON messages (inbox_file)
         WHERE inbox_file IS NOT NULL",
    )
    .map_err(unavailable)?;
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
        let inbox_dir = inbox::dir_of(&options.path);
        let inbox_writer = inbox::InboxWriter::new(inbox_dir.clone(), options.inbox_file_bytes);
        let notify = Arc::new(Notify::new());
        let (tx, rx) = std_mpsc::channel();
        let writer_notify = notify.clone();
        let commits = Arc::new(AtomicU64::new(0));
        let writer_commits = commits.clone();
        let compression = Arc::new(codec::Compression::new());
        let writer_compression = compression.clone();
        std::thread::Builder::new()
            .name("hookbridge-queue-writer".into())
            .spawn(move || {
                group_commit_writer(
                    inbox_writer,
                    rx,
                    writer_notify,
                    writer_commits,
                    &writer_compression,
                );
            })
            .map_err(unavailable)?;
        let checkpoint_conn = open_connection(&options.path)?;
        let (stop_checkpoints, checkpoints_stopped) = std_mpsc::sync_channel(0);
        let checkpoint_path = options.path.clone();
        std::thread::Builder::new()
            .name("hookbridge-queue-checkpointer".into())
            .spawn(move || {
                checkpoints::checkpointer(checkpoint_conn, &checkpoint_path, checkpoints_stopped)
            })
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
                compression,
                inbox_dir,
                next_sweep: AtomicU64::new(0),
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Bytes the queue takes on disk: its database, write-ahead log and inbox files.
    pub fn disk_bytes(&self) -> u64 {
        let size = |path: &Path| std::fs::metadata(path).map_or(0, |m| m.len());
        let inbox = std::fs::read_dir(&self.inner.inbox_dir).map_or(0, |entries| {
            entries
                .flatten()
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        });
        size(&self.inner.path) + size(&checkpoints::log_of(&self.inner.path)) + inbox
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
                body: self.inner.compression.pack(body),
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
                .with_conn(move |conn, inner| receive_now(conn, inner, opts))
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
        self.with_conn(|conn, inner| {
            inner.import(conn)?;
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

/// One receive attempt without waiting: takes what the inbox holds first, then hands out what
/// is visible. Takes the write lock only when there is something to take or hand out.
fn receive_now(
    conn: &mut Connection,
    inner: &Inner,
    opts: ReceiveOptions,
) -> Result<Vec<Received>, QueueError> {
    let sweep = inner.sweep_due();
    let importing = sweep || import::pending(conn, &inner.inbox_dir)?;
    if !importing {
        let any_visible: Option<i64> = conn
            .query_row(
                "SELECT seq FROM messages WHERE visible_at <= ?1 LIMIT 1",
                params![now_ms()],
                |r| r.get(0),
            )
            .optional()
            .map_err(unavailable)?;
        if any_visible.is_none() {
            return Ok(Vec::new());
        }
    }
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(unavailable)?;
    if importing {
        import::run(&tx, &inner.inbox_dir, sweep)?;
    }
    let mut files = rows::OpenFiles::new(&inner.inbox_dir);
    let now = now_ms();
    let visible_at = now + opts.visibility.as_millis() as i64;
    let want = opts.max_messages.max(1);
    let mut out = Vec::with_capacity(want);
    loop {
        let candidates: Vec<rows::MessageRow> = {
            let mut stmt = tx
                .prepare_cached(&format!(
                    "SELECT {} FROM {} WHERE m.visible_at <= ?1 ORDER BY m.visible_at, m.seq LIMIT ?2",
                    rows::COLUMNS,
                    rows::FROM
                ))
                .map_err(unavailable)?;
            stmt.query_map(
                params![now, (want - out.len()) as i64],
                rows::MessageRow::read,
            )
            .map_err(unavailable)?
            .collect::<Result<_, _>>()
            .map_err(unavailable)?
        };
        if candidates.is_empty() {
            break;
        }
        for mut row in candidates {
            if row.receive_count >= inner.max_receive_count {
                rows::bury(&tx, &mut files, &row.id, None, None, now)?;
                continue;
            }
            // A body that cannot be read back is dead-lettered as it is, with the reason, rather
            // than offered to consumers or left to block the queue.
            let body = row
                .stored_body(&mut files)
                .and_then(|stored| codec::unpack(row.codec, stored).map_err(|e| e.to_string()));
            let body = match body {
                Ok(body) => body,
                Err(e) => {
                    rows::bury(&tx, &mut files, &row.id, None, Some(&e), now)?;
                    continue;
                }
            };
            let receipt = uuid::Uuid::new_v4().simple().to_string();
            tx.execute(
                "UPDATE messages SET visible_at = ?1, receive_count = receive_count + 1, receipt = ?2
                 WHERE id = ?3",
                params![visible_at, receipt, row.id],
            )
            .map_err(unavailable)?;
            out.push(Received {
                handle: ReceiptHandle(format!("{}/{receipt}", row.id)),
                receive_count: row.receive_count + 1,
                sent_at: to_time(row.sent_at),
                id: row.id,
                body,
            });
        }
        if out.len() >= want {
            break;
        }
    }
    tx.commit().map_err(unavailable)?;
    Ok(out)
}
