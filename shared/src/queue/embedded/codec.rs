//! How a message body is kept in its inbox record: LZ4-compressed when that makes it smaller, as
//! it is for every real webhook (GitHub's payloads repeat their API URLs: about 3× smaller), except
//! every other body under load ([`Compression`]). The disk then takes a third of the bytes, and
//! the compression itself runs on the sender's thread, not on the one writer thread.
//!
//! Each record's codec (and the `codec` column of `messages`) says which it is, so a file written
//! before compression existed (every row `raw`) reads as it always did, and anything a sender
//! puts in comes back byte for byte.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use bytes::Bytes;

use super::unavailable;
use crate::queue::QueueError;

/// Bodies smaller than this are stored as they are: the gain would be a few bytes.
const MIN_COMPRESSED: usize = 512;

/// Bodies larger than this are stored as they are, so that compressing never holds a sender's
/// thread for long (webhooks are ~10 KB; only a rare giant payload passes this).
const MAX_COMPRESSED: usize = 1024 * 1024;

/// Which sends are compressed. Compression costs the sender's CPU (about a fifth of the ingest's
/// under load, measured) and saves the disk two thirds of the bytes. Under load (the writer's
/// groups are not alone) every other body is compressed: on 2 vCPUs the CPU and the disk then
/// run out at about the same rate, where compressing all of them left the CPU the limit and none
/// of them the disk (README, "Benchmarks": 0.45–0.50× → 0.48–0.53× of the bare server). Outside
/// load every body that shrinks is compressed, so a backlog takes the least disk.
pub(super) struct Compression {
    under_load: AtomicBool,
    /// Sends so far: under load, the even ones are compressed.
    sends: AtomicU64,
}

impl Compression {
    pub fn new() -> Self {
        Self {
            under_load: AtomicBool::new(false),
            sends: AtomicU64::new(0),
        }
    }

    /// The stored form of `body`: compressed (when that pays, see [`pack`]) unless it is a
    /// send under load whose turn it is to go as it is.
    pub fn pack(&self, body: Bytes) -> Stored {
        let n = self.sends.fetch_add(1, Ordering::Relaxed);
        if self.under_load.load(Ordering::Relaxed) && n % 2 == 1 {
            raw(body)
        } else {
            pack(body)
        }
    }

    /// The writer's report after each group: whether it was one of many (load) or alone.
    pub fn observe(&self, under_load: bool) {
        self.under_load.store(under_load, Ordering::Relaxed);
    }
}

/// The value of the `codec` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Codec {
    Raw = 0,
    /// LZ4 block format with the uncompressed length in front (`lz4_flex`'s size-prepended form).
    Lz4 = 1,
}

/// A body as the queue file keeps it.
pub(super) struct Stored {
    pub codec: Codec,
    pub bytes: Bytes,
}

/// The stored form of `body`: compressed when that saves at least an eighth.
pub(super) fn pack(body: Bytes) -> Stored {
    if (MIN_COMPRESSED..=MAX_COMPRESSED).contains(&body.len()) {
        let compressed = lz4_flex::compress_prepend_size(&body);
        if compressed.len() < body.len() - body.len() / 8 {
            return Stored {
                codec: Codec::Lz4,
                bytes: Bytes::from(compressed),
            };
        }
    }
    raw(body)
}

fn raw(body: Bytes) -> Stored {
    Stored {
        codec: Codec::Raw,
        bytes: body,
    }
}

/// The body a sender put in, from a row's `codec` and `body` columns.
///
/// # Errors
/// [`QueueError::Unavailable`] for an unknown codec or a damaged compressed body (the file was
/// written by a newer version, or changed on disk).
pub(super) fn unpack(codec: i64, stored: Vec<u8>) -> Result<Bytes, QueueError> {
    match codec {
        c if c == Codec::Raw as i64 => Ok(Bytes::from(stored)),
        c if c == Codec::Lz4 as i64 => lz4_flex::decompress_size_prepended(&stored)
            .map(Bytes::from)
            .map_err(|e| unavailable(format!("a stored message cannot be decompressed: {e}"))),
        other => Err(unavailable(format!(
            "a stored message has codec {other}, which this version does not know (written by a newer hookbridge?)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_bodies_are_compressed_and_come_back_whole() {
        let body = Bytes::from(
            serde_json::json!({
                "repository": {"url": "https://api.github.com/repos/acme/payments",
                               "hooks_url": "https://api.github.com/repos/acme/payments/hooks",
                               "issues_url": "https://api.github.com/repos/acme/payments/issues{/number}"},
                "issue": {"title": "a title", "body": "text ".repeat(200)}
            })
            .to_string(),
        );
        let stored = pack(body.clone());
        assert_eq!(stored.codec, Codec::Lz4);
        assert!(stored.bytes.len() < body.len() / 2);
        assert_eq!(
            unpack(stored.codec as i64, stored.bytes.to_vec()).unwrap(),
            body
        );
    }

    #[test]
    fn small_and_incompressible_bodies_stay_raw() {
        let small = Bytes::from_static(b"{\"a\":1}");
        assert_eq!(pack(small.clone()).codec, Codec::Raw);
        use sha2::{Digest, Sha256};
        let noise: Vec<u8> = (0..128u32)
            .flat_map(|i| Sha256::digest(i.to_le_bytes()).to_vec())
            .collect();
        let stored = pack(Bytes::from(noise.clone()));
        assert_eq!(stored.codec, Codec::Raw);
        assert_eq!(unpack(0, stored.bytes.to_vec()).unwrap(), noise);
    }

    /// A queue file written before compression existed (no `codec` columns) opens, and its
    /// messages and dead letters come back as they were, beside new compressed ones.
    #[tokio::test]
    async fn a_queue_file_from_before_compression_is_upgraded_in_place() {
        use crate::queue::ReceiveOptions;
        use crate::queue::embedded::{EmbeddedOptions, EmbeddedQueue};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("queue.db");
        let old_body = format!("{{\"old\":\"{}\"}}", "x".repeat(2000));
        {
            let conn = rusqlite::Connection::open(&path).unwrap();
            conn.execute_batch(
                "CREATE TABLE messages (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE,
                     body BLOB NOT NULL, sent_at INTEGER NOT NULL, visible_at INTEGER NOT NULL,
                     receive_count INTEGER NOT NULL DEFAULT 0, receipt TEXT, last_error TEXT);
                 CREATE TABLE dead_letters (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE,
                     body BLOB NOT NULL, sent_at INTEGER NOT NULL, receive_count INTEGER NOT NULL,
                     dead_at INTEGER NOT NULL, last_error TEXT);",
            )
            .unwrap();
            conn.execute(
                "INSERT INTO messages (id, body, sent_at, visible_at) VALUES ('m-old', ?1, 1, 1)",
                [old_body.as_bytes()],
            )
            .unwrap();
            conn.execute(
                "INSERT INTO dead_letters (id, body, sent_at, receive_count, dead_at, last_error)
                 VALUES ('d-old', ?1, 1, 5, 2, 'boom')",
                [old_body.as_bytes()],
            )
            .unwrap();
        }
        let queue = EmbeddedQueue::open(EmbeddedOptions::in_dir(dir.path(), "queue.db")).unwrap();
        let new_body = Bytes::from(format!("{{\"new\":\"{}\"}}", "y".repeat(2000)));
        queue.send(new_body.clone()).await.unwrap();
        let got = queue
            .receive(ReceiveOptions {
                max_messages: 10,
                wait: std::time::Duration::ZERO,
                visibility: std::time::Duration::from_secs(30),
            })
            .await
            .unwrap();
        let bodies: Vec<Bytes> = got.into_iter().map(|m| m.body).collect();
        assert_eq!(bodies, vec![Bytes::from(old_body.clone()), new_body]);
        let dead = queue.dead_letter_by_id("d-old").await.unwrap();
        assert_eq!(dead.body, Bytes::from(old_body));
        assert_eq!(dead.last_error.as_deref(), Some("boom"));
        // The new message really is compressed on disk (in its inbox record).
        let conn = rusqlite::Connection::open(&path).unwrap();
        let (codec, stored): (i64, i64) = conn
            .query_row(
                "SELECT codec, inbox_len FROM messages WHERE id != 'm-old'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(codec, Codec::Lz4 as i64);
        assert!(stored < 500, "stored {stored} bytes");
    }

    #[test]
    fn under_load_every_other_body_is_compressed_otherwise_all() {
        let body = Bytes::from(format!("{{\"text\":\"{}\"}}", "words ".repeat(500)));
        let compressed = |c: &Compression| {
            (0..100)
                .filter(|_| c.pack(body.clone()).codec == Codec::Lz4)
                .count()
        };
        let c = Compression::new();
        assert_eq!(compressed(&c), 100, "no load yet: every body");
        c.observe(true);
        assert_eq!(compressed(&c), 50, "under load: every other one");
        c.observe(false);
        assert_eq!(compressed(&c), 100, "sends one at a time again: every body");
        let tiny = Bytes::from_static(b"{}");
        assert_eq!(c.pack(tiny).codec, Codec::Raw, "only what shrinks");
    }

    #[test]
    fn damaged_or_unknown_bodies_are_errors_not_panics() {
        assert!(unpack(1, vec![0xff, 0xff, 0xff, 0x7f, 1, 2, 3]).is_err());
        assert!(unpack(1, Vec::new()).is_err());
        assert!(unpack(9, b"x".to_vec()).is_err());
    }
}
