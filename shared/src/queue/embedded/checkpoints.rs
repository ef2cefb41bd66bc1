//! Keeping SQLite's write-ahead log short: a checkpointer thread per open queue folds the log
//! into the database file every [`INTERVAL`], so that no receive or delete waits for a
//! checkpoint (every connection has automatic checkpoints off).
//!
//! Bodies no longer pass through SQLite (they are in the inbox files), so the log holds only the
//! small rows of receives, deletes and imports. Under consumers that never pause, a passive
//! checkpoint may still never catch up with the log's end, and SQLite starts the log over only
//! after a checkpoint copied all of it; so once the log passes [`RESTART_BYTES`] the checkpointer
//! waits for the writers and starts it over (SQLite's `RESTART`; the `journal_size_limit` of each
//! connection then truncates the file).

use std::path::{Path, PathBuf};
use std::sync::mpsc as std_mpsc;
use std::time::Duration;

use rusqlite::Connection;

/// How often the checkpointer folds the write-ahead log into the database file.
const INTERVAL: Duration = Duration::from_millis(200);

/// How long the write-ahead log may grow before the checkpointer starts it over.
const RESTART_BYTES: u64 = 4 * 1024 * 1024;

/// The write-ahead log of the database at `path`.
pub(super) fn log_of(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push("-wal");
    PathBuf::from(name)
}

/// Runs until `stop`'s sender is dropped (with its queue).
pub(super) fn checkpointer(conn: Connection, path: &Path, stop: std_mpsc::Receiver<()>) {
    let log = log_of(path);
    while let Err(std_mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(INTERVAL) {
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::debug!(error = %e, "embedded queue checkpoint skipped");
            continue;
        }
        let long = std::fs::metadata(&log).is_ok_and(|m| m.len() > RESTART_BYTES);
        if long && let Err(e) = conn.query_row("PRAGMA wal_checkpoint(RESTART)", [], |_| Ok(())) {
            tracing::debug!(error = %e, "embedded queue log restart skipped");
        }
    }
}
