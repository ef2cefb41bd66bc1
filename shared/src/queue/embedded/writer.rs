//! The sending side of the embedded queue: one writer thread per open queue that appends every
//! waiting send to this queue's inbox file in one write and one `fdatasync` (group commit), then
//! answers every sender ([`super::inbox`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

use tokio::sync::{Notify, oneshot};

use super::inbox::{InboxWriter, Record};
use super::{codec, now_ms};
use crate::queue::QueueError;

/// Most messages one group commit writes.
const MAX_GROUP: usize = 1024;
/// Most bytes one group commit writes (a single larger message still goes alone).
const MAX_GROUP_BYTES: usize = 64 * 1024 * 1024;
/// Under load (the last group was not alone), the least time from taking one group to taking the
/// next: sends gather for what is left of it. Fewer, larger groups cost fewer fsyncs per send; on
/// a disk whose fsync alone takes longer, sends have gathered meanwhile and the writer does not
/// wait at all (a fixed wait would add to every send's latency). Measured with `make bench`
/// (README, "Benchmarks").
const GATHER: Duration = Duration::from_micros(1000);

/// One send waiting for the writer.
pub(super) struct WriteJob {
    pub body: codec::Stored,
    pub reply: oneshot::Sender<Result<String, QueueError>>,
}

/// The per-queue writer: takes the first waiting send, drains whatever else is waiting, appends
/// them all with one fsync, then answers every sender.
pub(super) fn group_commit_writer(
    mut inbox: InboxWriter,
    rx: std_mpsc::Receiver<WriteJob>,
    notify: Arc<Notify>,
    commits: Arc<AtomicU64>,
    compression: &codec::Compression,
) {
    let mut busy = false;
    let mut last_taken = Instant::now();
    while let Ok(first) = rx.recv() {
        let mut bytes = first.body.bytes.len();
        let mut group = vec![first];
        // Under load, let more sends gather for what is left of the cycle. Asleep rather than
        // waiting on the channel: a waiting receiver is woken (a futex call and a context switch)
        // by every send.
        if busy {
            let left = GATHER.saturating_sub(last_taken.elapsed());
            if !left.is_zero() {
                std::thread::sleep(left);
            }
        }
        last_taken = Instant::now();
        while group.len() < MAX_GROUP && bytes < MAX_GROUP_BYTES {
            match rx.try_recv() {
                Ok(job) => {
                    bytes += job.body.bytes.len();
                    group.push(job);
                }
                Err(_) => break,
            }
        }
        busy = group.len() > 1;
        let sent_at = now_ms();
        let ids: Vec<uuid::Uuid> = group.iter().map(|_| uuid::Uuid::now_v7()).collect();
        let records: Vec<Record<'_>> = group
            .iter()
            .zip(&ids)
            .map(|(job, id)| Record {
                id: *id,
                sent_at,
                body: &job.body,
            })
            .collect();
        let result = inbox.append(&records);
        drop(records);
        compression.observe(busy);
        commits.fetch_add(1, Ordering::Relaxed);
        match result {
            Ok(()) => {
                for (job, id) in group.into_iter().zip(ids) {
                    let _ = job.reply.send(Ok(id.to_string()));
                }
                notify.notify_waiters();
            }
            Err(e) => {
                tracing::warn!(error = %e, messages = group.len(), "embedded queue group commit failed");
                for job in group {
                    let _ = job.reply.send(Err(QueueError::Unavailable(format!(
                        "the queue's inbox file could not be written: {e}"
                    ))));
                }
            }
        }
    }
}
