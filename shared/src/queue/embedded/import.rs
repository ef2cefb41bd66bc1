//! Consumers' side of the inbox ([`super::inbox`]): records written by any process on the machine
//! become rows of `messages` that say where their bytes are, and inbox files nobody needs any
//! more are removed.
//!
//! Exactly once: `inbox_files.imported_to` (the offset after the last record taken) moves in the
//! same transaction as the rows it added, under SQLite's write lock, so two consumers never take
//! the same record and a crash takes none or all of a pass.
//!
//! Removal order: an inbox file is unlinked *before* its `inbox_files` row is deleted, inside one
//! write transaction. A crash between the two leaves a row without a file, which the next pass
//! forgets; never a file without a row, which would look new and be imported again.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::path::Path;
use std::time::{Duration, SystemTime};

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};

use super::inbox::{self, Found};
use super::unavailable;
use crate::queue::QueueError;

/// How often a process looks for sealed, consumed inbox files to remove (and writers gone).
pub(super) const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// A temporary inbox file this old with no writer holding it was left by a crash: removed.
const STALE_TEMPORARY: Duration = Duration::from_secs(60);

/// One inbox file on disk: its name and size.
struct OnDisk {
    name: String,
    size: u64,
}

/// What `inbox_files` says about a file.
#[derive(Clone, Copy)]
struct Known {
    id: i64,
    imported_to: u64,
    /// Sealed or unreadable: never read again.
    sealed: bool,
}

/// `inbox_files.sealed`: still written to; complete (removed once consumed); or not an inbox file
/// this version can read (a newer format, say): never read, never removed.
const LIVE: i64 = 0;
const SEALED: i64 = 1;
const UNREADABLE: i64 = 2;

fn io_error(what: &str, path: &Path, e: &io::Error) -> QueueError {
    unavailable(format!("{what} {}: {e}", path.display()))
}

/// The inbox files in `dir` (none when it does not exist yet).
fn on_disk(dir: &Path) -> Result<Vec<OnDisk>, QueueError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_error("read", dir, &e)),
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| io_error("read", dir, &e))?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if !inbox::is_inbox_file(&name) {
            continue;
        }
        // Gone since the listing: removed by another consumer.
        let Ok(metadata) = entry.metadata() else {
            continue;
        };
        files.push(OnDisk {
            name,
            size: metadata.len(),
        });
    }
    // A directory read while entries are renamed into it may name one twice.
    files.sort_unstable_by(|a, b| a.name.cmp(&b.name));
    files.dedup_by(|a, b| a.name == b.name);
    Ok(files)
}

fn known(conn: &Connection) -> Result<HashMap<String, Known>, QueueError> {
    let mut stmt = conn
        .prepare_cached("SELECT name, id, imported_to, sealed FROM inbox_files")
        .map_err(unavailable)?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                Known {
                    id: r.get(1)?,
                    imported_to: r.get::<_, i64>(2)? as u64,
                    sealed: r.get::<_, i64>(3)? != LIVE,
                },
            ))
        })
        .map_err(unavailable)?;
    rows.collect::<Result<_, _>>().map_err(unavailable)
}

/// Whether a pass would find records to take, without the write lock: some file is new or has
/// grown past what was taken from it.
pub(super) fn pending(conn: &Connection, dir: &Path) -> Result<bool, QueueError> {
    let files = on_disk(dir)?;
    if files.is_empty() {
        return Ok(false);
    }
    let known = known(conn)?;
    Ok(files.iter().any(|f| match known.get(&f.name) {
        None => true,
        Some(k) => !k.sealed && f.size > k.imported_to,
    }))
}

/// Takes every readable record not yet taken into `messages`, inside `tx` (a write transaction).
/// With `sweep`, also seals files whose writer is gone and removes sealed files no message
/// refers to any more. Returns how many messages were added.
pub(super) fn run(tx: &Transaction<'_>, dir: &Path, sweep: bool) -> Result<usize, QueueError> {
    let files = on_disk(dir)?;
    let known = known(tx)?;
    let mut added = 0;
    for file in &files {
        let entry = known.get(&file.name).copied();
        if entry.is_some_and(|k| k.sealed || (file.size <= k.imported_to && !sweep)) {
            continue;
        }
        added += take(tx, dir, &file.name, entry)?;
    }
    if sweep {
        remove_consumed(tx, dir, &files, &known)?;
        remove_stale_temporaries(dir);
    }
    Ok(added)
}

/// Takes the new records of one file. A file found sealed *before* it is read is complete after
/// this read: it is marked so, and never read again.
fn take(
    tx: &Transaction<'_>,
    dir: &Path,
    name: &str,
    entry: Option<Known>,
) -> Result<usize, QueueError> {
    let path = dir.join(name);
    let file = match File::open(&path) {
        Ok(file) => file,
        // Removed by another consumer since the listing (and so already fully taken).
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(io_error("open", &path, &e)),
    };
    let id = match entry {
        Some(k) => k.id,
        None => {
            tx.execute(
                "INSERT INTO inbox_files (name, imported_to, sealed) VALUES (?1, 0, 0)",
                params![name],
            )
            .map_err(unavailable)?;
            tx.last_insert_rowid()
        }
    };
    let from = entry.map_or(0, |k| k.imported_to);
    let sealed = inbox::is_sealed(&file).map_err(|e| io_error("lock", &path, &e))?;
    if sealed && entry.is_none_or(|k| !k.sealed) {
        // Its writer is gone, maybe before its last fsync: what is taken must be on disk first.
        file.sync_data().map_err(|e| io_error("sync", &path, &e))?;
    }
    let (records, end) = match inbox::scan(&file, from, sealed) {
        Ok(found) => found,
        Err(e) if e.kind() == io::ErrorKind::InvalidData => {
            tracing::error!(file = %path.display(), error = %e,
                "not an inbox file this version can read: left alone (written by a newer hookbridge?)");
            tx.execute(
                "UPDATE inbox_files SET sealed = ?1 WHERE id = ?2",
                params![UNREADABLE, id],
            )
            .map_err(unavailable)?;
            return Ok(0);
        }
        Err(e) => return Err(io_error("read", &path, &e)),
    };
    let torn = sealed && end < file.metadata().map_or(end, |m| m.len());
    if torn {
        tracing::warn!(file = %path.display(), offset = end,
            "an inbox file ends in an incomplete record (its writer stopped while writing it; it was never acknowledged)");
    }
    if entry.is_some() && records.is_empty() && end == from && !sealed {
        // Nothing new (a sweep's look at a live file): no write, so an idle queue writes nothing.
        return Ok(0);
    }
    insert(tx, id, &records)?;
    tx.execute(
        "UPDATE inbox_files SET imported_to = ?1, sealed = ?2 WHERE id = ?3",
        params![end as i64, if sealed { SEALED } else { LIVE }, id],
    )
    .map_err(unavailable)?;
    Ok(records.len())
}

fn insert(tx: &Transaction<'_>, file: i64, records: &[Found]) -> Result<(), QueueError> {
    let mut stmt = tx
        .prepare_cached(
            "INSERT OR IGNORE INTO messages
                 (id, body, codec, sent_at, visible_at, inbox_file, inbox_offset, inbox_len)
             VALUES (?1, x'', ?2, ?3, ?3, ?4, ?5, ?6)",
        )
        .map_err(unavailable)?;
    for r in records {
        stmt.execute(params![
            r.id.to_string(),
            r.codec,
            r.sent_at,
            file,
            r.offset as i64,
            i64::from(r.len)
        ])
        .map_err(unavailable)?;
    }
    Ok(())
}

/// Removes sealed files that no message refers to, and forgets files that are gone. The
/// directory is fsync'd after the unlinks and before their rows go: a file that came back after
/// a power failure while its row was gone would look new, and its records be delivered again.
fn remove_consumed(
    tx: &Transaction<'_>,
    dir: &Path,
    files: &[OnDisk],
    known: &HashMap<String, Known>,
) -> Result<(), QueueError> {
    let present: std::collections::HashSet<&str> = files.iter().map(|f| f.name.as_str()).collect();
    let mut in_use = tx
        .prepare_cached("SELECT 1 FROM messages WHERE inbox_file = ?1 LIMIT 1")
        .map_err(unavailable)?;
    let mut forget = Vec::new();
    let mut unlinked = false;
    for (name, k) in known {
        // Sealed in an earlier pass or in this one (`take` may just have found its writer gone).
        let state: i64 = tx
            .query_row(
                "SELECT sealed FROM inbox_files WHERE id = ?1",
                params![k.id],
                |r| r.get(0),
            )
            .optional()
            .map_err(unavailable)?
            .unwrap_or(LIVE);
        // A listing taken while other files are renamed into the directory is not a promise
        // that a missing name is gone: a row is forgotten only for a file that is surely absent
        // (forgetting a file that is still there would import its records again).
        let gone = !present.contains(name.as_str())
            && matches!(std::fs::symlink_metadata(dir.join(name)), Err(e) if e.kind() == io::ErrorKind::NotFound);
        if state != SEALED && !gone {
            continue;
        }
        let used = in_use
            .query_row(params![k.id], |_| Ok(()))
            .optional()
            .map_err(unavailable)?
            .is_some();
        if used {
            continue;
        }
        if !gone {
            let path = dir.join(name);
            match std::fs::remove_file(&path) {
                Ok(()) => unlinked = true,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(file = %path.display(), error = %e, "a consumed inbox file could not be removed");
                    continue;
                }
            }
        }
        forget.push(k.id);
    }
    if unlinked {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io_error("sync", dir, &e))?;
    }
    for id in forget {
        tx.execute("DELETE FROM inbox_files WHERE id = ?1", params![id])
            .map_err(unavailable)?;
    }
    Ok(())
}

/// Removes temporary files left by a writer that died while creating its file.
fn remove_stale_temporaries(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "tmp") {
            continue;
        }
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|m| SystemTime::now().duration_since(m).ok())
            .is_some_and(|age| age > STALE_TEMPORARY);
        let unheld = File::open(&path)
            .and_then(|f| inbox::is_sealed(&f))
            .unwrap_or(false);
        if old && unheld {
            let _ = std::fs::remove_file(&path);
        }
    }
}

/// A pass in its own write transaction, for callers that are not already in one.
pub(super) fn run_alone(conn: &mut Connection, dir: &Path, sweep: bool) -> Result<(), QueueError> {
    if !sweep && !pending(conn, dir)? {
        return Ok(());
    }
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(unavailable)?;
    run(&tx, dir, sweep)?;
    tx.commit().map_err(unavailable)
}
