//! Where sends land: append-only inbox files, one per open queue, written in groups and fsync'd
//! before any sender is answered (README, "Architecture": the embedded queue on disk).
//!
//! Why not straight into SQLite: an SQLite commit copies each body into its write-ahead log and,
//! at the next checkpoint, into the database file, each copy with its own fsyncs and page
//! rewrites. An inbox file takes each body once, with one `write` and one `fdatasync` per group of
//! sends. Consumers move the records' *places* (not their bytes) into SQLite's `messages` table
//! ([`super::import`]), and read the bytes back from here when they receive a message.
//!
//! Format: a header — [`MAGIC`], then the *durable length* `[u64][crc32 of it]` — then records
//! `[len u32][crc32 u32][codec u8][sent_at i64][id 16 B][body]`, little-endian, where `len`
//! counts the bytes after the CRC and the CRC covers them. A record that is short or fails its CRC
//! ends the readable part of a file: it was being written when its process died, and was never
//! acknowledged (the answer waits for the fsync).
//!
//! Durable length: after each group's `fdatasync` the writer stores, in the header, how far the
//! file is on disk (a plain write into the page cache, no second fsync). While the writer lives,
//! consumers take records only up to that length, so nothing is imported — and possibly handed to
//! Jira — that a power failure could still take back. Once the writer is gone (the file is
//! sealed), the consumer that seals it fsyncs the file itself and takes every complete record.
//!
//! Ownership: the process writing a file holds an exclusive `flock` on it for as long as it may
//! append. A file nobody holds is *sealed*: it will not grow again, so once every record in it is
//! imported and no message refers to it any more, it is removed. New files are created under a
//! temporary name, locked, then renamed, so that no one ever sees an unlocked file that is still
//! going to grow.

use std::fs::{File, OpenOptions};
use std::io::{self, IoSlice, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::codec::Stored;

/// The first bytes of every inbox file (and its format's version).
pub(super) const MAGIC: &[u8; 16] = b"hookbridge-ibx2\n";

/// The header: [`MAGIC`], the durable length (u64) and its CRC-32 (a read that races the
/// writer's update sees a mismatch rather than a wrong length).
pub(super) const HEADER_LEN: usize = MAGIC.len() + 8 + 4;

/// Bytes before a record's body: len, crc, codec, sent_at, id.
pub(super) const RECORD_HEAD: usize = 4 + 4 + 1 + 8 + 16;

/// A file past this size is closed after its next group and a new one started, so that consumed
/// files can be removed while the process keeps sending.
pub(super) const DEFAULT_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// File names: `<uuid v7>.ibx`; the temporary name during creation ends in `.tmp`.
const EXTENSION: &str = "ibx";

/// The inbox directory of the queue file at `path`: `<path>.inbox`.
pub(super) fn dir_of(queue_path: &Path) -> PathBuf {
    let mut name = queue_path.as_os_str().to_owned();
    name.push(".inbox");
    PathBuf::from(name)
}

/// The inbox file called `name` in `dir`, if `name` is one (not a temporary or foreign file).
pub(super) fn is_inbox_file(name: &str) -> bool {
    name.strip_suffix(EXTENSION)
        .and_then(|stem| stem.strip_suffix('.'))
        .is_some_and(|stem| uuid::Uuid::parse_str(stem).is_ok())
}

/// One send, as the writer appends it.
pub(super) struct Record<'a> {
    pub id: uuid::Uuid,
    pub sent_at: i64,
    pub body: &'a Stored,
}

/// The file this process appends to; owned by the queue's writer thread.
pub(super) struct InboxWriter {
    dir: PathBuf,
    /// `None` after a failed write: the next group starts a new file.
    file: Option<File>,
    len: u64,
    /// Past this length, the next group goes to a new file.
    rotate_at: u64,
    /// The records' heads, one after another; their bodies are written from where they are.
    heads: Vec<[u8; RECORD_HEAD]>,
}

impl InboxWriter {
    pub fn new(dir: PathBuf, rotate_at: u64) -> Self {
        Self {
            dir,
            file: None,
            len: 0,
            rotate_at,
            heads: Vec::new(),
        }
    }

    /// Appends the records and makes them durable (`fdatasync`); only then may their senders be
    /// answered.
    ///
    /// # Errors
    /// The I/O error. The file it happened in is given up (it may end in a partial record, which
    /// readers treat as its end) and the next group goes to a new file.
    pub fn append(&mut self, records: &[Record<'_>]) -> io::Result<()> {
        self.heads.clear();
        for record in records {
            self.heads.push(head(record)?);
        }
        let result = self.write_durably(records);
        if result.is_err() {
            self.file = None;
        }
        result
    }

    fn write_durably(&mut self, records: &[Record<'_>]) -> io::Result<()> {
        if self.file.is_none() || self.len >= self.rotate_at {
            // Dropping the old file releases its lock: it is sealed.
            self.file = None;
            self.file = Some(self.create()?);
            self.len = HEADER_LEN as u64;
        }
        let file = self.file.as_mut().expect("opened above");
        let mut slices: Vec<IoSlice<'_>> = self
            .heads
            .iter()
            .zip(records)
            .flat_map(|(head, record)| [IoSlice::new(head), IoSlice::new(&record.body.bytes)])
            .collect();
        let total: usize = slices.iter().map(|s| s.len()).sum();
        let mut remaining: &mut [IoSlice<'_>] = &mut slices;
        while !remaining.is_empty() {
            // At most IOV_MAX (1024) slices per call; the kernel takes what it can.
            let upto = remaining.len().min(1024);
            match file.write_vectored(&remaining[..upto]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => IoSlice::advance_slices(&mut remaining, n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        file.sync_data()?;
        self.len += total as u64;
        file.write_all_at(&durable_length(self.len), MAGIC.len() as u64)?;
        Ok(())
    }

    /// A new, locked, durable (header and directory entry fsync'd) inbox file.
    fn create(&self) -> io::Result<File> {
        std::fs::create_dir_all(&self.dir)?;
        let stem = uuid::Uuid::now_v7().simple().to_string();
        let temporary = self.dir.join(format!("{stem}.tmp"));
        let path = self.dir.join(format!("{stem}.{EXTENSION}"));
        // Not `O_APPEND`: Linux would append the header's updates (`pwrite`) too. Records go
        // through the file position, which only this writer moves.
        let mut file = OpenOptions::new()
            .create_new(true)
            .write(true)
            .read(true)
            .open(&temporary)?;
        file.lock()?;
        file.write_all(MAGIC)?;
        file.write_all(&durable_length(HEADER_LEN as u64))?;
        file.sync_data()?;
        std::fs::rename(&temporary, &path)?;
        File::open(&self.dir)?.sync_all()?;
        Ok(file)
    }
}

/// The header's durable-length field: the length and its CRC-32.
fn durable_length(len: u64) -> [u8; 12] {
    let mut field = [0u8; 12];
    field[..8].copy_from_slice(&len.to_le_bytes());
    let crc = crc32fast::hash(&field[..8]);
    field[8..].copy_from_slice(&crc.to_le_bytes());
    field
}

/// A record's head: its length, the CRC of everything after the CRC (head fields and body), the
/// codec, the send time and the id.
fn head(record: &Record<'_>) -> io::Result<[u8; RECORD_HEAD]> {
    let len = u32::try_from(RECORD_HEAD - 8 + record.body.bytes.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "message over 4 GiB"))?;
    let mut head = [0u8; RECORD_HEAD];
    head[..4].copy_from_slice(&len.to_le_bytes());
    head[8] = record.body.codec as u8;
    head[9..17].copy_from_slice(&record.sent_at.to_le_bytes());
    head[17..].copy_from_slice(record.id.as_bytes());
    let mut crc = crc32fast::Hasher::new();
    crc.update(&head[8..]);
    crc.update(&record.body.bytes);
    head[4..8].copy_from_slice(&crc.finalize().to_le_bytes());
    Ok(head)
}

/// A record found by [`scan`]: where its body is, and what the sender put in its head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Found {
    pub id: uuid::Uuid,
    pub sent_at: i64,
    pub codec: i64,
    /// Offset of the record (its length field) in the file.
    pub offset: u64,
    /// The record's length after the CRC (what [`read_body`] checks).
    pub len: u32,
}

/// How much of a file is readable records: the records from `from` on, and the offset after the
/// last one. Stops at the end of the file or at the first short or damaged record; in a file
/// still being written (`sealed` false), also at the durable length its writer last stored.
///
/// # Errors
/// The I/O error, or a file that is not an inbox file (wrong header).
pub(super) fn scan(file: &File, from: u64, sealed: bool) -> io::Result<(Vec<Found>, u64)> {
    let size = file.metadata()?.len();
    let mut offset = from.max(HEADER_LEN as u64);
    if size < HEADER_LEN as u64 {
        // Renamed into place only after its header was written: a file this short is not ours.
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "not an inbox file (too short for its header)",
        ));
    }
    let mut header = [0u8; HEADER_LEN];
    file.read_exact_at(&mut header, 0)?;
    if &header[..MAGIC.len()] != MAGIC {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "not an inbox file (unknown header)",
        ));
    }
    let size = if sealed {
        size
    } else {
        let field = &header[MAGIC.len()..];
        let durable = u64::from_le_bytes(field[..8].try_into().expect("8 bytes"));
        let crc = u32::from_le_bytes(field[8..].try_into().expect("4 bytes"));
        if crc32fast::hash(&field[..8]) == crc {
            size.min(durable)
        } else {
            // Read while the writer was updating it: nothing new this time.
            offset
        }
    };
    let mut found = Vec::new();
    let mut buf = Vec::new();
    while offset + 8 <= size {
        let mut prefix = [0u8; 8];
        file.read_exact_at(&mut prefix, offset)?;
        let len = u32::from_le_bytes(prefix[..4].try_into().expect("4 bytes"));
        let crc = u32::from_le_bytes(prefix[4..].try_into().expect("4 bytes"));
        if (len as usize) < RECORD_HEAD - 8 || offset + 8 + u64::from(len) > size {
            break;
        }
        buf.resize(len as usize, 0);
        file.read_exact_at(&mut buf, offset + 8)?;
        if crc32fast::hash(&buf) != crc {
            break;
        }
        found.push(Found {
            codec: i64::from(buf[0]),
            sent_at: i64::from_le_bytes(buf[1..9].try_into().expect("8 bytes")),
            id: uuid::Uuid::from_slice(&buf[9..25]).expect("16 bytes"),
            offset,
            len,
        });
        offset += 8 + u64::from(len);
    }
    Ok((found, offset))
}

/// The stored body of the record at `offset` (as its codec left it), checked against its CRC.
///
/// # Errors
/// The I/O error, or [`io::ErrorKind::InvalidData`] when the bytes there are not that record any
/// more (changed or lost on disk: records are taken only once durable, see the module docs).
pub(super) fn read_body(file: &File, offset: u64, len: u32) -> io::Result<Vec<u8>> {
    let mut prefix = [0u8; 8];
    file.read_exact_at(&mut prefix, offset)?;
    let mut record = vec![0u8; len as usize];
    file.read_exact_at(&mut record, offset + 8)?;
    let stored_len = u32::from_le_bytes(prefix[..4].try_into().expect("4 bytes"));
    let crc = u32::from_le_bytes(prefix[4..].try_into().expect("4 bytes"));
    if stored_len != len || crc32fast::hash(&record) != crc {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "the inbox record is damaged or gone",
        ));
    }
    record.drain(..RECORD_HEAD - 8);
    Ok(record)
}

/// Whether a file's writer is gone (nobody holds its lock), so it will not grow again.
pub(super) fn is_sealed(file: &File) -> io::Result<bool> {
    match file.try_lock_shared() {
        Ok(()) => {
            file.unlock()?;
            Ok(true)
        }
        Err(std::fs::TryLockError::WouldBlock) => Ok(false),
        Err(std::fs::TryLockError::Error(e)) => Err(e),
    }
}
