//! The inbox under the failures it is built for: a writer killed mid-record, files changing hands
//! between processes, consumed files removed (and live ones never), damaged bytes.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::{EmbeddedOptions, EmbeddedQueue, inbox};
use crate::queue::ReceiveOptions;

fn options(dir: &Path) -> EmbeddedOptions {
    EmbeddedOptions::in_dir(dir, "queue.db")
}

fn inbox_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(inbox::dir_of(&dir.join("queue.db")))
        .map(|entries| entries.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "ibx"));
    files.sort();
    files
}

fn body(n: usize) -> Bytes {
    Bytes::from(format!(
        "{{\"n\":{n},\"url\":\"https://api.github.com/repos/acme/payments/issues/{n}\",\"text\":\"{}\"}}",
        "words and more words ".repeat(60)
    ))
}

/// Receives and deletes everything visible; returns the bodies in the order received.
async fn drain(queue: &EmbeddedQueue) -> Vec<Bytes> {
    let mut bodies = Vec::new();
    loop {
        let got = queue
            .receive(ReceiveOptions {
                max_messages: 10,
                wait: Duration::ZERO,
                visibility: Duration::from_secs(30),
            })
            .await
            .expect("receive");
        if got.is_empty() {
            return bodies;
        }
        for message in got {
            queue.delete(&message.handle).await.expect("delete");
            bodies.push(message.body);
        }
    }
}

/// Polls `check` (each poll also lets the queue sweep its inbox) until it holds.
async fn eventually(queue: &EmbeddedQueue, what: &str, check: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(Instant::now() < deadline, "{what}: not within 10 s");
        drain(queue).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn what_one_process_sends_another_receives_once_and_consumed_files_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    let sender = EmbeddedQueue::open(options(dir.path())).unwrap();
    let sent: Vec<Bytes> = (0..50).map(body).collect();
    for b in &sent {
        sender.send(b.clone()).await.unwrap();
    }
    assert_eq!(inbox_files(dir.path()).len(), 1);
    let consumer = EmbeddedQueue::open(options(dir.path())).unwrap();
    assert_eq!(consumer.depth().await.unwrap(), 50);
    let mut received = drain(&consumer).await;
    received.sort();
    let mut expected = sent.clone();
    expected.sort();
    assert_eq!(received, expected);
    // The sender is still open: its file may still grow, and stays.
    drain(&consumer).await;
    assert_eq!(inbox_files(dir.path()).len(), 1);
    drop(sender);
    eventually(
        &consumer,
        "the consumed, sealed inbox file is removed",
        || inbox_files(dir.path()).is_empty(),
    )
    .await;
    assert!(drain(&consumer).await.is_empty(), "nothing delivered twice");
}

#[tokio::test]
async fn a_full_inbox_file_is_followed_by_a_new_one_and_removed_once_consumed() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(dir.path());
    opts.inbox_file_bytes = 512;
    let queue = EmbeddedQueue::open(opts).unwrap();
    for n in 0..40 {
        queue.send(body(n)).await.unwrap();
    }
    assert!(
        inbox_files(dir.path()).len() > 2,
        "{:?}",
        inbox_files(dir.path())
    );
    assert_eq!(drain(&queue).await.len(), 40);
    // Every file but the one still being written goes; the queue keeps working.
    eventually(&queue, "consumed full files are removed", || {
        inbox_files(dir.path()).len() == 1
    })
    .await;
    queue.send(body(99)).await.unwrap();
    assert_eq!(drain(&queue).await, vec![body(99)]);
}

/// A writer killed in the middle of a record (never acknowledged: the answer waits for the
/// fsync) leaves a partial record at the end of its file. Everything before it is delivered, the
/// partial record never is, and the file is removed once consumed.
#[tokio::test]
async fn a_record_cut_short_by_a_crash_ends_its_file_and_is_never_delivered() {
    let dir = tempfile::tempdir().unwrap();
    {
        let sender = EmbeddedQueue::open(options(dir.path())).unwrap();
        for n in 0..5 {
            sender.send(body(n)).await.unwrap();
        }
    }
    let file = inbox_files(dir.path()).pop().expect("an inbox file");
    let whole = std::fs::read(&file).unwrap();
    // The start of a copy of the last record: its head and half its body.
    let last_record = 8 + record_len(&whole, inbox::HEADER_LEN);
    append(
        &file,
        &whole[whole.len() - last_record..whole.len() - last_record / 2],
    );
    let consumer = EmbeddedQueue::open(options(dir.path())).unwrap();
    let mut received = drain(&consumer).await;
    received.sort();
    let mut expected: Vec<Bytes> = (0..5).map(body).collect();
    expected.sort();
    assert_eq!(received, expected);
    eventually(&consumer, "the torn file is removed once consumed", || {
        inbox_files(dir.path()).is_empty()
    })
    .await;
}

/// A record past the durable length its writer stored (written, not yet fsync'd: a power
/// failure could still take it back) is not taken while its writer lives; once the writer is
/// gone, the file is made durable and the record delivered.
#[tokio::test]
async fn records_past_the_durable_length_wait_for_the_fsync_or_the_writers_end() {
    let dir = tempfile::tempdir().unwrap();
    let sender = EmbeddedQueue::open(options(dir.path())).unwrap();
    for n in 0..2 {
        sender.send(body(n)).await.unwrap();
    }
    let file = inbox_files(dir.path()).pop().expect("an inbox file");
    let whole = std::fs::read(&file).unwrap();
    // A copy of the last record under a new id, appended as a write not yet made durable.
    let first_len = 8 + record_len(&whole, inbox::HEADER_LEN);
    let second_len = 8 + record_len(&whole, inbox::HEADER_LEN + first_len);
    let mut record = whole[whole.len() - second_len..].to_vec();
    record[17..33].copy_from_slice(uuid::Uuid::now_v7().as_bytes());
    let crc = crc32fast::hash(&record[8..]);
    record[4..8].copy_from_slice(&crc.to_le_bytes());
    append(&file, &record);
    let consumer = EmbeddedQueue::open(options(dir.path())).unwrap();
    let mut received = drain(&consumer).await;
    received.sort();
    assert_eq!(
        received,
        vec![body(0), body(1)],
        "only what the writer made durable"
    );
    drop(sender);
    assert_eq!(
        drain(&consumer).await,
        vec![body(1)],
        "the copy, once its writer is gone"
    );
}

/// The length after the CRC of the record at `offset` of an inbox file's bytes (all records of
/// these tests' files are alike in length: `body(n)` for a one-digit `n`).
fn record_len(bytes: &[u8], offset: usize) -> usize {
    u32::from_le_bytes(bytes[offset..offset + 4].try_into().unwrap()) as usize
}

/// Appends `bytes` to the file at `path`, as a writer's `write` would before its fsync.
fn append(path: &Path, bytes: &[u8]) {
    std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .unwrap()
        .write_all(bytes)
        .unwrap();
}

/// Bytes changed on disk under an imported record: the message is dead-lettered with the reason
/// rather than handed out wrong or left to block the queue.
#[tokio::test]
async fn a_damaged_record_is_dead_lettered_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let queue = EmbeddedQueue::open(options(dir.path())).unwrap();
    let id = queue.send(body(1)).await.unwrap();
    queue.send(body(2)).await.unwrap();
    assert_eq!(queue.depth().await.unwrap(), 2, "both imported");
    let file = inbox_files(dir.path()).pop().expect("an inbox file");
    let mut bytes = std::fs::read(&file).unwrap();
    // A byte in the middle of the first record's body.
    bytes[inbox::HEADER_LEN + inbox::RECORD_HEAD + 100] ^= 0xff;
    std::fs::write(&file, bytes).unwrap();
    assert_eq!(drain(&queue).await, vec![body(2)]);
    let dead = queue.dead_letter_by_id(&id).await.unwrap();
    let reason = dead.last_error.unwrap_or_default();
    assert!(reason.contains("damaged"), "{reason}");
    assert!(dead.body.is_empty());
}

/// A dead letter keeps its body in its row: the inbox file it came from can go, and a redrive
/// still delivers the body.
#[tokio::test]
async fn dead_letters_outlive_their_inbox_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(dir.path());
    opts.max_receive_count = 1;
    let queue = EmbeddedQueue::open(opts.clone()).unwrap();
    let id = queue.send(body(7)).await.unwrap();
    drop(queue);
    let queue = EmbeddedQueue::open(opts).unwrap();
    let receive = ReceiveOptions {
        max_messages: 1,
        wait: Duration::ZERO,
        visibility: Duration::ZERO,
    };
    assert_eq!(queue.receive(receive).await.unwrap().len(), 1);
    // Received once, not deleted: the next receive moves it to the dead letters.
    assert!(queue.receive(receive).await.unwrap().is_empty());
    eventually(&queue, "the sealed file is removed", || {
        inbox_files(dir.path()).is_empty()
    })
    .await;
    assert_eq!(queue.dead_letter_by_id(&id).await.unwrap().body, body(7));
    queue.redrive(&id).await.unwrap();
    assert_eq!(queue.receive(receive).await.unwrap()[0].body, body(7));
}

/// A file named like an inbox file that this version cannot read (a newer format, say) is left
/// alone: never removed, and the queue's other messages still flow.
#[tokio::test]
async fn an_inbox_file_this_version_cannot_read_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let queue = EmbeddedQueue::open(options(dir.path())).unwrap();
    queue.send(body(1)).await.unwrap();
    let foreign = inbox::dir_of(&dir.path().join("queue.db"))
        .join(format!("{}.ibx", uuid::Uuid::now_v7().simple()));
    std::fs::write(&foreign, b"hookbridge-ibx9\nsomething newer").unwrap();
    assert_eq!(drain(&queue).await, vec![body(1)]);
    // An absence: wait past the next sweep, then look.
    tokio::time::sleep(super::import::SWEEP_INTERVAL + Duration::from_millis(100)).await;
    drain(&queue).await;
    assert!(foreign.exists());
    queue.send(body(2)).await.unwrap();
    assert_eq!(drain(&queue).await, vec![body(2)]);
}
