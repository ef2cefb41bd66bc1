//! One queue interface, two backends with the same semantics.
//!
//! - [`sqs::SqsQueue`]: Amazon SQS (or any server speaking its JSON protocol, such as moto). Sends are
//!   grouped into `SendMessageBatch` calls of up to 10 when several events wait at once.
//! - [`embedded::EmbeddedQueue`]: a durable queue in an SQLite database (WAL mode) in the data dir, for
//!   one machine; safe with the ingest and several worker processes open on it at once. Sends are group
//!   committed: everything that waits is written in one transaction.
//!
//! Both give at-least-once delivery with no ordering promise: a received message is invisible to
//! other consumers for the visibility timeout, then comes back with its receive count increased unless
//! it was deleted; a message received more than the maximum receive count moves to the dead-letter
//! store. A consumer holds a [`Delivery`], which is consumed by [`Delivery::ack`],
//! [`Delivery::release`] or [`Delivery::dead_letter`].

pub mod embedded;
pub mod sqs;

use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};

pub use embedded::EmbeddedQueue;
pub use sqs::SqsQueue;

/// What can go wrong talking to a queue backend.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The backend could not be reached or answered with an error; worth retrying.
    #[error("queue backend unavailable: {0}")]
    Unavailable(String),
    /// The request itself is wrong (too large, bad handle); retrying will not help.
    #[error("queue refused the request: {0}")]
    Rejected(String),
    #[error("no dead-lettered message with id {0}")]
    NotFound(String),
}

impl QueueError {
    /// Whether trying the same call again later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, QueueError::Unavailable(_))
    }
}

/// An opaque token naming one receipt of one message; only the newest receipt of a message can
/// delete it or change its visibility.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ReceiptHandle(pub(crate) String);

impl ReceiptHandle {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A message as handed to a consumer.
#[derive(Debug, Clone)]
pub struct Received {
    /// Backend message id (stable across receipts).
    pub id: String,
    pub body: Bytes,
    /// How many times this message has been received, this receipt included (1 the first time).
    pub receive_count: u32,
    /// When the message was first sent to the queue, when the backend knows.
    pub sent_at: Option<DateTime<Utc>>,
    pub handle: ReceiptHandle,
}

/// How to receive.
#[derive(Debug, Clone, Copy)]
pub struct ReceiveOptions {
    /// At most this many messages (1–10 on SQS).
    pub max_messages: usize,
    /// Long polling: wait up to this long for the first message (at most 20 s on SQS).
    pub wait: Duration,
    /// How long the received messages stay invisible to other consumers.
    pub visibility: Duration,
}

/// A message in the dead-letter store.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub id: String,
    pub body: Bytes,
    pub receive_count: u32,
    pub sent_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
}

/// How many messages a queue holds, by state; what the worker's queue-depth metrics show.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueDepth {
    /// Waiting to be received.
    pub visible: u64,
    /// Received and not yet deleted or given back.
    pub in_flight: u64,
    /// Given back with a delay that has not passed yet.
    pub delayed: u64,
    /// In the dead-letter store (`None` when no dead-letter queue is known).
    pub dead_letters: Option<u64>,
}

/// What moving dead letters back to the main queue did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Redriven {
    pub moved: u64,
    pub failed: u64,
}

/// Told how a long dead-letter operation goes: messages done so far, and the total when known.
pub trait Progress: Send + Sync {
    fn advanced(&self, done: u64, total: Option<u64>);
}

/// No progress to show.
pub struct Quiet;

impl Progress for Quiet {
    fn advanced(&self, _done: u64, _total: Option<u64>) {}
}

/// The configured queue: match on the backend once, here, and nowhere else.
#[derive(Clone)]
pub enum Queue {
    Embedded(EmbeddedQueue),
    Sqs(SqsQueue),
}

macro_rules! dispatch {
    ($self:expr, $q:ident => $e:expr) => {
        match $self {
            Queue::Embedded($q) => $e,
            Queue::Sqs($q) => $e,
        }
    };
}

impl Queue {
    /// Which backend this is, for logs and `/health`.
    pub fn backend_name(&self) -> &'static str {
        match self {
            Queue::Embedded(_) => "embedded",
            Queue::Sqs(_) => "sqs",
        }
    }

    /// The largest message body the backend takes, if it has a limit; bigger envelopes are stored
    /// aside with a claim check.
    pub fn max_message_bytes(&self) -> Option<usize> {
        dispatch!(self, q => q.max_message_bytes())
    }

    /// How many bytes `body` takes as a message of this backend — what
    /// [`Queue::max_message_bytes`] limits (SQS escapes some characters, so it can be more than
    /// `body.len()`).
    ///
    /// # Errors
    /// [`QueueError::Rejected`] for a body the backend could never take.
    pub fn encoded_len(&self, body: &[u8]) -> Result<usize, QueueError> {
        dispatch!(self, q => q.encoded_len(body))
    }

    /// How many write calls the backend has made so far (embedded: group commits; SQS:
    /// `SendMessage`/`SendMessageBatch` requests). Divided by the events sent, it shows how well
    /// concurrent sends are grouped.
    pub fn write_calls(&self) -> u64 {
        dispatch!(self, q => q.write_calls())
    }

    /// Sends one message and returns its id once it is durably stored. Concurrent calls are grouped
    /// into batches by the backend.
    ///
    /// # Errors
    /// [`QueueError`] when the message is not stored; then nothing is promised about it.
    pub async fn send(&self, body: Bytes) -> Result<String, QueueError> {
        dispatch!(self, q => q.send(body).await)
    }

    /// Sends several messages; each gets its own result, because batches can partly fail.
    pub async fn send_batch(&self, bodies: Vec<Bytes>) -> Vec<Result<String, QueueError>> {
        dispatch!(self, q => q.send_batch(bodies).await)
    }

    /// Receives up to `opts.max_messages` messages, waiting up to `opts.wait` for the first.
    ///
    /// # Errors
    /// [`QueueError::Unavailable`] when the backend cannot be read.
    pub async fn receive(&self, opts: ReceiveOptions) -> Result<Vec<Delivery>, QueueError> {
        let messages = dispatch!(self, q => q.receive(opts).await)?;
        Ok(messages
            .into_iter()
            .map(|message| Delivery {
                message,
                queue: self.clone(),
            })
            .collect())
    }

    /// Deletes the messages behind these receipts; each gets its own result.
    pub async fn delete_batch(&self, handles: &[ReceiptHandle]) -> Vec<Result<(), QueueError>> {
        dispatch!(self, q => q.delete_batch(handles).await)
    }

    /// Checks that the backend answers, for `/ready`.
    ///
    /// # Errors
    /// [`QueueError::Unavailable`] with the reason.
    pub async fn check_ready(&self) -> Result<(), QueueError> {
        dispatch!(self, q => q.check_ready().await)
    }

    /// Up to `max` messages of the dead-letter store, without removing them.
    ///
    /// # Errors
    /// [`QueueError`] when the store cannot be read.
    pub async fn dead_letters(&self, max: usize) -> Result<Vec<DeadLetter>, QueueError> {
        dispatch!(self, q => q.dead_letters(max).await)
    }

    /// Up to `limit` dead letters after the `offset` oldest, oldest first: a page of the
    /// operator's list. The embedded store pages in SQL; SQS can only peek from the start, so it
    /// peeks `offset + limit` and drops the first `offset`.
    ///
    /// # Errors
    /// [`QueueError`] when the dead-letter store cannot be read.
    pub async fn dead_letters_page(
        &self,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<DeadLetter>, QueueError> {
        match self {
            Queue::Embedded(q) => q.dead_letters_page(offset, limit).await,
            Queue::Sqs(q) => Ok(q
                .dead_letters(offset.saturating_add(limit))
                .await?
                .into_iter()
                .skip(offset)
                .collect()),
        }
    }

    /// The dead letter with message id `id`, without removing it.
    ///
    /// # Errors
    /// [`QueueError::NotFound`] when there is none; [`QueueError`] when the store cannot be read.
    pub async fn dead_letter_by_id(&self, id: &str) -> Result<DeadLetter, QueueError> {
        dispatch!(self, q => q.dead_letter_by_id(id).await)
    }

    /// Moves the dead letter `id` back to the main queue, to be processed once more.
    ///
    /// # Errors
    /// [`QueueError::NotFound`] when there is none; [`QueueError`] when the move failed (then the
    /// message is still a dead letter, or — on SQS, when only the delete failed — in both queues,
    /// which the worker's dedupe by delivery id makes harmless).
    pub async fn redrive(&self, id: &str) -> Result<(), QueueError> {
        dispatch!(self, q => q.redrive(id).await)
    }

    /// Moves every dead letter back to the main queue, at most `rate` per second when given.
    ///
    /// # Errors
    /// [`QueueError`] when the dead-letter store cannot be read at all; failures of single
    /// messages are counted in [`Redriven::failed`].
    pub async fn redrive_all(
        &self,
        rate: Option<u32>,
        progress: &dyn Progress,
    ) -> Result<Redriven, QueueError> {
        dispatch!(self, q => q.redrive_all(rate, progress).await)
    }

    /// Deletes every dead letter; returns how many there were (approximately, on SQS).
    ///
    /// # Errors
    /// [`QueueError`] when the dead-letter store cannot be emptied.
    pub async fn purge_dead_letters(&self) -> Result<u64, QueueError> {
        dispatch!(self, q => q.purge_dead_letters().await)
    }

    /// How many messages the queue and its dead-letter store hold.
    ///
    /// # Errors
    /// [`QueueError`] when the backend cannot be asked.
    pub async fn depth(&self) -> Result<QueueDepth, QueueError> {
        dispatch!(self, q => q.queue_depth().await)
    }
}

/// A received message plus the queue it came from. Consuming methods make sure a delivery is
/// settled once.
pub struct Delivery {
    pub message: Received,
    queue: Queue,
}

impl Delivery {
    /// The work is done: delete the message.
    ///
    /// # Errors
    /// [`QueueError`] when the delete failed; the message then comes back after its visibility
    /// timeout, so the work must be idempotent (it is: the worker dedupes by delivery id).
    pub async fn ack(self) -> Result<(), QueueError> {
        dispatch!(&self.queue, q => q.delete(&self.message.handle).await)
    }

    /// Gives the message back: it becomes visible again after `delay` (zero: at once).
    ///
    /// # Errors
    /// [`QueueError`] when the backend refused; the message then comes back after its current
    /// visibility timeout anyway.
    pub async fn release(self, delay: Duration) -> Result<(), QueueError> {
        dispatch!(&self.queue, q => q.change_visibility(&self.message.handle, delay).await)
    }

    /// Keeps the message invisible for `timeout` from now, for work that takes long.
    ///
    /// # Errors
    /// [`QueueError`] when the receipt is no longer the newest or the backend is down.
    pub async fn extend(&self, timeout: Duration) -> Result<(), QueueError> {
        dispatch!(&self.queue, q => q.change_visibility(&self.message.handle, timeout).await)
    }

    /// Moves the message to the dead-letter store with `reason`, and removes it from the queue.
    ///
    /// # Errors
    /// [`QueueError`] when the move failed; the message stays on the queue and comes back.
    pub async fn dead_letter(self, reason: &str) -> Result<(), QueueError> {
        dispatch!(&self.queue, q => q.dead_letter(&self.message, reason).await)
    }
}
