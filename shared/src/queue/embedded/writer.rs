//! The sending side of the embedded queue: one writer thread per process that group-commits
//! every waiting send in one transaction, and a checkpointer thread that keeps the write-ahead log
//! folded into the database file.

use std::cell::Cell;
use std::ffi::c_int;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex, TryLockError};
use std::time::Duration;

use rusqlite::{Connection, TransactionBehavior, params};
use tokio::sync::{Notify, oneshot};

use super::{codec, now_ms, unavailable};
use crate::queue::QueueError;

/// Most messages one group commit writes.
const MAX_GROUP: usize = 1024;
/// Most bytes one group commit writes (a single larger message still goes alone).
const MAX_GROUP_BYTES: usize = 64 * 1024 * 1024;

/// How often the checkpointer folds the write-ahead log into the database file.
const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(200);
/// How long the write-ahead log may grow before the writer starts it over (see [`checkpointer`]).
/// Each restart pauses the writer while the rest of the log is copied; 16 MiB made those pauses
/// show as a 12–30 ms p99 under the benchmark, 4 MiB keeps it under 10 ms (README, "Benchmarks").
const LOG_RESTART_BYTES: i64 = 4 * 1024 * 1024;

thread_local! {
    /// Pages in the write-ahead log after this thread's last commit, as SQLite reports them.
    static LOG_PAGES: Cell<i64> = const { Cell::new(0) };
}

/// SQLite's commit hook: records how long the log is (the log's length, not the bytes sent, is
/// what must stay bounded: small compressed bodies still dirty whole table and index pages).
fn note_log_length(_: &rusqlite::hooks::Wal, pages: c_int) -> rusqlite::Result<()> {
    LOG_PAGES.with(|p| p.set(i64::from(pages)));
    Ok(())
}

/// One send waiting for the writer.
pub(super) struct WriteJob {
    pub body: codec::Stored,
    pub reply: oneshot::Sender<Result<String, QueueError>>,
}

/// The per-process writer: takes the first waiting send, drains whatever else is waiting, writes
/// them all in one transaction, then answers every sender.
pub(super) fn group_commit_writer(
    mut conn: Connection,
    rx: std_mpsc::Receiver<WriteJob>,
    notify: Arc<Notify>,
    commits: Arc<AtomicU64>,
    checkpointing: &Mutex<()>,
) {
    conn.wal_hook(Some(note_log_length));
    // The file's own page size: a file made by an older version keeps the one it was made with.
    let page_size: i64 = conn
        .query_row("PRAGMA page_size", [], |r| r.get(0))
        .unwrap_or(4096);
    while let Ok(first) = rx.recv() {
        let mut bytes = first.body.bytes.len();
        let mut group = vec![first];
        while group.len() < MAX_GROUP && bytes < MAX_GROUP_BYTES {
            match rx.try_recv() {
                Ok(job) => {
                    bytes += job.body.bytes.len();
                    group.push(job);
                }
                Err(_) => break,
            }
        }
        let ids: Vec<String> = group
            .iter()
            .map(|_| uuid::Uuid::now_v7().to_string())
            .collect();
        let result = write_group(&mut conn, &group, &ids);
        commits.fetch_add(1, Ordering::Relaxed);
        match result {
            Ok(()) => {
                for (job, id) in group.into_iter().zip(ids) {
                    let _ = job.reply.send(Ok(id));
                }
                notify.notify_waiters();
            }
            Err(e) => {
                tracing::warn!(error = %e, messages = group.len(), "embedded queue group commit failed");
                for job in group {
                    let _ = job.reply.send(Err(QueueError::Unavailable(e.to_string())));
                }
            }
        }
        let log_bytes = LOG_PAGES.with(Cell::get) * page_size;
        // Not while this process's checkpointer runs: SQLite would make the restart wait for it
        // by sleeping and polling, which shows in the p99. The next commit tries again.
        if log_bytes > LOG_RESTART_BYTES
            && let Some(_checkpointing) = match checkpointing.try_lock() {
                Ok(guard) => Some(guard),
                Err(TryLockError::Poisoned(p)) => Some(p.into_inner()),
                Err(TryLockError::WouldBlock) => None,
            }
            && let Err(e) = conn.query_row("PRAGMA wal_checkpoint(RESTART)", [], |_| Ok(()))
        {
            tracing::debug!(error = %e, "embedded queue log restart skipped");
        }
    }
}

/// Folds the write-ahead log into the database file every [`CHECKPOINT_INTERVAL`] until its queue
/// is dropped. Passive: it copies what no reader still needs and never blocks a writer; with
/// several processes, whichever checkpointer runs first does the work.
///
/// Under constant load a passive checkpoint never quite catches up with the writer, and SQLite
/// starts the log over only after a checkpoint copied all of it: the log would grow without end.
/// So the writer itself finishes the job between two commits once the log passes
/// [`LOG_RESTART_BYTES`] (a
/// checkpointer waiting for the write lock would starve: the writer takes it again every few
/// milliseconds).
pub(super) fn checkpointer(
    conn: Connection,
    stop: std_mpsc::Receiver<()>,
    checkpointing: &Mutex<()>,
) {
    while let Err(std_mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(CHECKPOINT_INTERVAL) {
        let _checkpointing = checkpointing.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::debug!(error = %e, "embedded queue checkpoint skipped");
        }
    }
}

fn write_group(
    conn: &mut Connection,
    group: &[WriteJob],
    ids: &[String],
) -> Result<(), QueueError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(unavailable)?;
    {
        let now = now_ms();
        let mut stmt = tx
            .prepare_cached(
                "INSERT INTO messages (id, body, codec, sent_at, visible_at)
                 VALUES (?1, ?2, ?3, ?4, ?4)",
            )
            .map_err(unavailable)?;
        for (job, id) in group.iter().zip(ids) {
            stmt.execute(params![id, &job.body.bytes[..], job.body.codec as i64, now])
                .map_err(unavailable)?;
        }
    }
    tx.commit().map_err(unavailable)
}
