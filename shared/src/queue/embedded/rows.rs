//! A row of `messages` and where its body is: in the row (files from before the inbox, redriven
//! dead letters) or in an inbox file ([`super::inbox`]), read back when the message is received
//! or dead-lettered. Dead letters always keep their body in their row, so an inbox file is never
//! kept for them.

use std::collections::HashMap;
use std::fs::File;
use std::path::Path;

use rusqlite::{OptionalExtension, Transaction, params};

use super::{inbox, unavailable};
use crate::queue::QueueError;

/// The columns [`MessageRow::read`] expects, in its order (`m` is `messages`, `f` `inbox_files`).
pub(super) const COLUMNS: &str = "m.id, m.body, m.codec, m.sent_at, m.receive_count, m.last_error, \
     f.name, m.inbox_offset, m.inbox_len";

/// The join that finds a message's inbox file.
pub(super) const FROM: &str = "messages m LEFT JOIN inbox_files f ON f.id = m.inbox_file";

/// A message as stored.
pub(super) struct MessageRow {
    pub id: String,
    pub sent_at: i64,
    pub receive_count: u32,
    pub last_error: Option<String>,
    pub codec: i64,
    body: Body,
}

enum Body {
    InRow(Vec<u8>),
    InInbox {
        /// `None` when the row names a file `inbox_files` no longer knows (damaged file).
        file: Option<String>,
        offset: u64,
        len: u32,
    },
}

impl MessageRow {
    pub fn read(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        let offset: Option<i64> = row.get(7)?;
        let len: Option<i64> = row.get(8)?;
        let body = match (offset, len) {
            (Some(offset), Some(len)) => Body::InInbox {
                file: row.get(6)?,
                offset: offset as u64,
                len: len as u32,
            },
            _ => Body::InRow(row.get(1)?),
        };
        Ok(Self {
            id: row.get(0)?,
            codec: row.get(2)?,
            sent_at: row.get(3)?,
            receive_count: row.get(4)?,
            last_error: row.get(5)?,
            body,
        })
    }

    /// The stored body (as its codec left it).
    ///
    /// # Errors
    /// Why the bytes cannot be read back from the inbox: its file or record is gone or damaged.
    pub fn stored_body(&mut self, files: &mut OpenFiles<'_>) -> Result<Vec<u8>, String> {
        match &mut self.body {
            Body::InRow(bytes) => Ok(std::mem::take(bytes)),
            Body::InInbox { file, offset, len } => {
                let name = file
                    .as_deref()
                    .ok_or("its inbox file is not known to the queue")?;
                let file = files.open(name)?;
                inbox::read_body(file, *offset, *len)
                    .map_err(|e| format!("its bytes in inbox file {name} cannot be read: {e}"))
            }
        }
    }
}

/// Inbox files opened once per transaction, however many messages it reads from them.
pub(super) struct OpenFiles<'a> {
    dir: &'a Path,
    open: HashMap<String, File>,
}

impl<'a> OpenFiles<'a> {
    pub fn new(dir: &'a Path) -> Self {
        Self {
            dir,
            open: HashMap::new(),
        }
    }

    fn open(&mut self, name: &str) -> Result<&File, String> {
        if !self.open.contains_key(name) {
            let file = File::open(self.dir.join(name))
                .map_err(|e| format!("its inbox file {name} cannot be opened: {e}"))?;
            self.open.insert(name.to_owned(), file);
        }
        Ok(&self.open[name])
    }
}

/// Moves message `id` (only while held under `receipt`, when given) to `dead_letters`, its body
/// copied into the row, with `reason` (else its last error, else a count of its receives).
/// Returns whether it moved.
///
/// # Errors
/// [`QueueError::Unavailable`] when SQLite fails. A body that cannot be read is not an error:
/// the dead letter keeps an empty body and says why.
pub(super) fn bury(
    tx: &Transaction<'_>,
    files: &mut OpenFiles<'_>,
    id: &str,
    receipt: Option<&str>,
    reason: Option<&str>,
    now: i64,
) -> Result<bool, QueueError> {
    let found = tx
        .query_row(
            &format!(
                "SELECT {COLUMNS} FROM {FROM} WHERE m.id = ?1 AND (?2 IS NULL OR m.receipt = ?2)"
            ),
            params![id, receipt],
            MessageRow::read,
        )
        .optional()
        .map_err(unavailable)?;
    let Some(mut row) = found else {
        return Ok(false);
    };
    let mut reason = reason.map(str::to_owned).unwrap_or_else(|| {
        row.last_error.clone().unwrap_or_else(|| {
            format!("received {} times without being deleted", row.receive_count)
        })
    });
    let (body, codec) = match row.stored_body(files) {
        Ok(body) => (body, row.codec),
        Err(e) => {
            reason = format!("{reason}; the body is lost: {e}");
            (Vec::new(), super::codec::Codec::Raw as i64)
        }
    };
    tx.execute(
        "INSERT OR REPLACE INTO dead_letters
             (id, body, codec, sent_at, receive_count, dead_at, last_error)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            row.id,
            body,
            codec,
            row.sent_at,
            row.receive_count,
            now,
            reason
        ],
    )
    .map_err(unavailable)?;
    tx.execute("DELETE FROM messages WHERE id = ?1", params![row.id])
        .map_err(unavailable)?;
    Ok(true)
}
