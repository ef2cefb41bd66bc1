//! The send batcher of the SQS backend: every `send` hands its message to one dispatcher task
//! per queue, which groups whatever waits into `SendMessageBatch` calls of up to 10 entries, with
//! at most [`BATCHES_IN_FLIGHT`] calls outstanding, and answers each entry on its own (batches can
//! partly fail).

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use aws_sdk_sqs::types::{BatchResultErrorEntry, SendMessageBatchRequestEntry};
use tokio::sync::{Semaphore, mpsc, oneshot};

use super::{
    BATCHES_IN_FLIGHT, ENTRY_RETRIES, MAX_BATCH, Shared, batch_entry_error, clone_error, sdk_error,
    unavailable,
};
use crate::queue::QueueError;

/// One message waiting for the dispatcher, with the caller's reply channel.
pub(super) struct SendJob {
    pub(super) body: String,
    pub(super) reply: oneshot::Sender<Result<String, QueueError>>,
}

impl SendJob {
    pub(super) fn answer(self, result: Result<String, QueueError>) {
        // The caller may have given up (its future was dropped); nothing to tell then.
        let _ = self.reply.send(result);
    }
}

/// The send dispatcher: takes a permit (at most [`BATCHES_IN_FLIGHT`] calls outstanding), waits
/// for the first waiting message, drains whatever else waits into a batch of at most 10 entries and
/// `max_message_bytes` in total (SQS's cap for a whole batch), and sends it on its own task. Ends
/// when every [`SqsQueue`] clone is gone and nothing waits.
pub(super) async fn dispatch_sends(
    shared: Arc<Shared>,
    mut jobs: mpsc::UnboundedReceiver<Vec<SendJob>>,
) {
    let permits = Arc::new(Semaphore::new(BATCHES_IN_FLIGHT));
    let mut waiting: VecDeque<SendJob> = VecDeque::new();
    loop {
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        // Callers that gave up need no send.
        waiting.retain(|job| !job.reply.is_closed());
        if waiting.is_empty() {
            match jobs.recv().await {
                Some(more) => waiting.extend(more),
                None => return,
            }
        }
        while let Ok(more) = jobs.try_recv() {
            waiting.extend(more);
        }
        let batch = take_batch(&mut waiting, shared.max_message_bytes);
        if batch.is_empty() {
            continue;
        }
        let shared = shared.clone();
        tokio::spawn(async move {
            send_entries(&shared, batch).await;
            drop(permit);
        });
    }
}

/// The next batch: up to 10 jobs in arrival order whose bodies total at most `max_bytes` (the first
/// job always fits: bodies are checked against the limit before they are queued).
pub(super) fn take_batch(waiting: &mut VecDeque<SendJob>, max_bytes: usize) -> Vec<SendJob> {
    let mut batch = Vec::with_capacity(MAX_BATCH.min(waiting.len()));
    let mut bytes = 0;
    while batch.len() < MAX_BATCH {
        let Some(next) = waiting.front() else { break };
        if next.reply.is_closed() {
            waiting.pop_front();
            continue;
        }
        if !batch.is_empty() && bytes + next.body.len() > max_bytes {
            break;
        }
        bytes += next.body.len();
        if let Some(job) = waiting.pop_front() {
            batch.push(job);
        }
    }
    batch
}

/// Sends one batch and answers every entry. Entries SQS failed through no fault of ours are retried
/// up to [`ENTRY_RETRIES`] times with a short backoff; entries it refused are answered with
/// [`QueueError::Rejected`]. If SQS refuses the whole call as invalid (which one bad entry can
/// cause, e.g. when the queue's size limit was lowered after connect), the entries are sent one by
/// one so the good ones still go through.
async fn send_entries(shared: &Shared, mut jobs: Vec<SendJob>) {
    let mut last_error = String::new();
    for attempt in 0..=ENTRY_RETRIES {
        if jobs.is_empty() {
            return;
        }
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
        }
        let mut entries = Vec::with_capacity(jobs.len());
        for (index, job) in jobs.iter().enumerate() {
            match SendMessageBatchRequestEntry::builder()
                .id(index.to_string())
                .message_body(job.body.as_str())
                .build()
            {
                Ok(entry) => entries.push(entry),
                // Cannot happen (both required fields are set); fail the whole batch if it does.
                Err(e) => {
                    let text = format!("SendMessageBatch entry: {e}");
                    for job in jobs {
                        job.answer(Err(QueueError::Rejected(text.clone())));
                    }
                    return;
                }
            }
        }
        shared.send_calls.fetch_add(1, Ordering::Relaxed);
        let output = match shared
            .client
            .send_message_batch()
            .queue_url(&shared.queue_url)
            .set_entries(Some(entries))
            .send()
            .await
        {
            Ok(output) => output,
            Err(e) => {
                let err = sdk_error("SendMessageBatch", e);
                if matches!(err, QueueError::Rejected(_)) && jobs.len() > 1 {
                    tracing::warn!(error = %err, entries = jobs.len(), "batch refused; sending its entries one by one");
                    send_one_by_one(shared, jobs).await;
                } else {
                    for job in jobs {
                        job.answer(Err(clone_error(&err)));
                    }
                }
                return;
            }
        };
        let mut outcome: Vec<Option<Result<String, BatchResultErrorEntry>>> =
            jobs.iter().map(|_| None).collect();
        for ok in output.successful() {
            if let Some(slot) = ok
                .id()
                .parse::<usize>()
                .ok()
                .and_then(|i| outcome.get_mut(i))
            {
                *slot = Some(Ok(ok.message_id().to_owned()));
            }
        }
        for failed in output.failed() {
            if let Some(slot) = failed
                .id()
                .parse::<usize>()
                .ok()
                .and_then(|i| outcome.get_mut(i))
            {
                *slot = Some(Err(failed.clone()));
            }
        }
        let mut retry = Vec::new();
        for (job, outcome) in jobs.into_iter().zip(outcome) {
            match outcome {
                Some(Ok(id)) => job.answer(Ok(id)),
                Some(Err(failed)) if failed.sender_fault() => {
                    job.answer(Err(batch_entry_error("SendMessageBatch", &failed)));
                }
                Some(Err(failed)) => {
                    last_error = batch_entry_error("SendMessageBatch", &failed).to_string();
                    retry.push(job);
                }
                None => {
                    last_error = "SendMessageBatch returned no result for an entry".into();
                    retry.push(job);
                }
            }
        }
        jobs = retry;
    }
    for job in jobs {
        job.answer(Err(QueueError::Unavailable(format!(
            "{last_error} (after {ENTRY_RETRIES} retries)"
        ))));
    }
}

async fn send_one_by_one(shared: &Shared, jobs: Vec<SendJob>) {
    let sends = jobs.into_iter().map(|job| async move {
        shared.send_calls.fetch_add(1, Ordering::Relaxed);
        let result = shared
            .client
            .send_message()
            .queue_url(&shared.queue_url)
            .message_body(job.body.as_str())
            .send()
            .await;
        let answer = match result {
            Ok(output) => output
                .message_id()
                .map(str::to_owned)
                .ok_or_else(|| unavailable("SendMessage returned no message id")),
            Err(e) => Err(sdk_error("SendMessage", e)),
        };
        job.answer(answer);
    });
    futures_util::future::join_all(sends).await;
}
