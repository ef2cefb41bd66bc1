//! The dead-letter queue of the SQS backend: moving a message there with its reason, listing it
//! (SQS has no peek: a listing receives and gives back), finding one, moving messages back to the
//! main queue (`StartMessageMoveTask` where SQS has it, a portable receive → send → delete
//! elsewhere) and purging it (README, "Dead-letter queue").

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, Message, MessageSystemAttributeName,
    QueueAttributeName,
};
use bytes::Bytes;

use super::{
    ATTR_LAST_ERROR, ATTR_RECEIVE_COUNT, ATTR_SENT_TIMESTAMP, MAX_BATCH, MAX_REASON_CHARS, Shared,
    SqsQueue, describe, sdk_error, string_attribute, to_time, truncate,
};
use crate::queue::{
    DeadLetter, Progress, QueueDepth, QueueError, ReceiptHandle, Received, Redriven,
};

/// Most messages a search for one dead letter looks at.
const SCAN_LIMIT: usize = 100_000;

/// What a peek saw: messages in order with their receipts, the newest receipt per message id,
/// and the error that cut it short, if one did.
#[derive(Default)]
struct Peeked {
    found: Vec<(DeadLetter, String)>,
    receipts: HashMap<String, String>,
    failure: Option<QueueError>,
}

/// The first error of per-entry results, or `Ok`.
fn first_error(results: Vec<Result<(), QueueError>>) -> Result<(), QueueError> {
    results.into_iter().find(Result::is_err).unwrap_or(Ok(()))
}

impl SqsQueue {
    /// Moves a message to the dead-letter queue: sends its body there with the reason
    /// ([`ATTR_LAST_ERROR`], cut to 1000 characters), the receive count and the original send time
    /// as message attributes, then deletes it from the main queue. If the delete fails the message
    /// is in both queues and comes back on the main one; the worker dedupes by delivery id.
    ///
    /// # Errors
    /// [`QueueError::Rejected`] when no dead-letter queue is known; [`QueueError`] when the send or
    /// the delete failed.
    pub async fn dead_letter(&self, message: &Received, reason: &str) -> Result<(), QueueError> {
        let dlq_url = self.shared.dead_letter_queue_url().await?;
        // The body came from SQS, so it is already in the form SQS accepts.
        let body = String::from_utf8(message.body.to_vec())
            .map_err(|e| QueueError::Rejected(format!("message body is not UTF-8: {e}")))?;
        let receive_count = message.receive_count.to_string();
        let sent_at = message
            .sent_at
            .map(|t| t.timestamp_millis().to_string())
            .unwrap_or_default();
        let reason = if reason.trim().is_empty() {
            "(no reason given)"
        } else {
            reason
        };
        // Attributes count toward the message size limit: a body near the limit keeps a shorter
        // reason, and one at the limit goes without attributes rather than not at all.
        let attribute_size = |name: &str, value: &str| name.len() + "String".len() + value.len();
        let mut fixed = body.len() + attribute_size(ATTR_RECEIVE_COUNT, &receive_count);
        if !sent_at.is_empty() {
            fixed += attribute_size(ATTR_SENT_TIMESTAMP, &sent_at);
        }
        let max = self.shared.max_message_bytes;
        let mut request = self
            .shared
            .client
            .send_message()
            .queue_url(&dlq_url)
            .message_body(body.as_str());
        if fixed <= max {
            request =
                request.message_attributes(ATTR_RECEIVE_COUNT, string_attribute(receive_count)?);
            if !sent_at.is_empty() {
                request =
                    request.message_attributes(ATTR_SENT_TIMESTAMP, string_attribute(sent_at)?);
            }
            let budget = max.saturating_sub(fixed + attribute_size(ATTR_LAST_ERROR, ""));
            let reason = truncate(reason, MAX_REASON_CHARS, budget);
            if !reason.is_empty() {
                request = request.message_attributes(ATTR_LAST_ERROR, string_attribute(reason)?);
            }
        }
        self.shared.send_calls.fetch_add(1, Ordering::Relaxed);
        request
            .send()
            .await
            .map_err(|e| sdk_error("SendMessage to the dead-letter queue", e))?;
        self.delete(&message.handle).await
    }

    /// Up to `max` messages of the dead-letter queue, without removing them.
    ///
    /// SQS has no peek: the messages are received (in pages of 10, without waiting) with a short
    /// visibility timeout, then made visible again at the end. So while a listing runs, and for a
    /// few seconds (2 s, a little more for long listings) if the listing process dies half-way,
    /// those messages are hidden from other DLQ readers; each listing also counts as a receive in
    /// the DLQ's own `ApproximateReceiveCount`, which is why [`DeadLetter::receive_count`] is read
    /// from the [`ATTR_RECEIVE_COUNT`] attribute or the redrive policy instead. Short polling samples
    /// only some SQS servers, so the listing stops after two pages in a row brought nothing new.
    ///
    /// # Errors
    /// [`QueueError::Rejected`] when no dead-letter queue is known; [`QueueError::Unavailable`] when
    /// it cannot be read.
    pub async fn dead_letters(&self, max: usize) -> Result<Vec<DeadLetter>, QueueError> {
        let dlq_url = self.shared.dead_letter_queue_url().await?;
        if max == 0 {
            return Ok(Vec::new());
        }
        let peeked = self.peek(&dlq_url, max, None).await;
        self.make_visible(&dlq_url, peeked.receipts.into_values().collect())
            .await;
        let found: Vec<DeadLetter> = peeked.found.into_iter().map(|(d, _)| d).collect();
        match peeked.failure {
            Some(e) if found.is_empty() => Err(e),
            Some(e) => {
                tracing::warn!(error = %e, listed = found.len(), "dead-letter listing cut short");
                Ok(found)
            }
            None => Ok(found),
        }
    }

    /// Receives the dead-letter queue page by page until `max` messages were seen, `wanted` was
    /// found, or two pages in a row brought nothing new. Every receipt stays in
    /// [`Peeked::receipts`], for the caller to give back or delete.
    async fn peek(&self, dlq_url: &str, max: usize, wanted: Option<&str>) -> Peeked {
        let pages = max.div_ceil(MAX_BATCH);
        let peek_visibility = (2 + pages / 5).min(30) as i32;
        let mut peeked = Peeked::default();
        let mut idle_pages = 0;
        while peeked.found.len() < max && idle_pages < 2 {
            let want = (max - peeked.found.len()).min(MAX_BATCH) as i32;
            let output = match self
                .shared
                .client
                .receive_message()
                .queue_url(dlq_url)
                .max_number_of_messages(want)
                .wait_time_seconds(0)
                .visibility_timeout(peek_visibility)
                .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
                .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
                .message_attribute_names("All")
                .send()
                .await
            {
                Ok(output) => output,
                Err(e) => {
                    peeked.failure =
                        Some(sdk_error("ReceiveMessage from the dead-letter queue", e));
                    break;
                }
            };
            let mut new = 0;
            for message in output.messages() {
                let (Some(id), Some(receipt)) = (message.message_id(), message.receipt_handle())
                else {
                    continue;
                };
                if peeked
                    .receipts
                    .insert(id.to_owned(), receipt.to_owned())
                    .is_none()
                {
                    new += 1;
                    if peeked.found.len() < max {
                        peeked
                            .found
                            .push((self.to_dead_letter(message, id), receipt.to_owned()));
                    }
                }
            }
            if wanted.is_some_and(|w| peeked.receipts.contains_key(w)) {
                break;
            }
            idle_pages = if new == 0 { idle_pages + 1 } else { 0 };
        }
        peeked
    }

    /// See [`crate::queue::Queue::dead_letter_by_id`]: a peek until it is found.
    pub async fn dead_letter_by_id(&self, id: &str) -> Result<DeadLetter, QueueError> {
        let dlq_url = self.shared.dead_letter_queue_url().await?;
        let peeked = self.peek(&dlq_url, SCAN_LIMIT, Some(id)).await;
        self.make_visible(&dlq_url, peeked.receipts.into_values().collect())
            .await;
        match peeked.found.into_iter().find(|(d, _)| d.id == id) {
            Some((dead_letter, _)) => Ok(dead_letter),
            None => Err(peeked
                .failure
                .unwrap_or_else(|| QueueError::NotFound(id.to_owned()))),
        }
    }

    /// See [`crate::queue::Queue::redrive`]: found by a peek, sent to the main queue, then deleted
    /// from the dead-letter queue with the peek's receipt.
    pub async fn redrive(&self, id: &str) -> Result<(), QueueError> {
        let dlq_url = self.shared.dead_letter_queue_url().await?;
        let mut peeked = self.peek(&dlq_url, SCAN_LIMIT, Some(id)).await;
        let receipt = peeked.receipts.remove(id);
        self.make_visible(&dlq_url, peeked.receipts.into_values().collect())
            .await;
        let (Some(receipt), Some((dead_letter, _))) =
            (receipt, peeked.found.into_iter().find(|(d, _)| d.id == id))
        else {
            return Err(peeked
                .failure
                .unwrap_or_else(|| QueueError::NotFound(id.to_owned())));
        };
        let sent = self.send(dead_letter.body.clone()).await;
        let handle = ReceiptHandle(receipt);
        if let Err(e) = sent {
            self.make_visible(&dlq_url, vec![handle.0]).await;
            return Err(e);
        }
        first_error(self.delete_batch_in(&dlq_url, &[handle]).await)
    }

    /// See [`crate::queue::Queue::redrive_all`]: SQS's own `StartMessageMoveTask` when the server
    /// has it (AWS), else receive → send → delete in pages of 10 (servers without it, such as
    /// moto, or credentials not allowed to start move tasks).
    pub async fn redrive_all(
        &self,
        rate: Option<u32>,
        progress: &dyn Progress,
    ) -> Result<Redriven, QueueError> {
        let dlq_url = self.shared.dead_letter_queue_url().await?;
        match self.move_task(&dlq_url, rate, progress).await {
            Ok(done) => Ok(done),
            Err(why) => {
                tracing::info!(reason = %why, "StartMessageMoveTask unavailable: moving dead letters one page at a time");
                self.redrive_page_by_page(&dlq_url, rate, progress).await
            }
        }
    }

    /// Starts a move task from the DLQ to the main queue and follows it to its end.
    async fn move_task(
        &self,
        dlq_url: &str,
        rate: Option<u32>,
        progress: &dyn Progress,
    ) -> Result<Redriven, QueueError> {
        let dlq_arn = self.queue_arn(dlq_url).await?;
        let main_arn = self.queue_arn(&self.shared.queue_url).await?;
        let mut start = self
            .shared
            .client
            .start_message_move_task()
            .source_arn(&dlq_arn)
            // Explicit: messages this process dead-lettered itself have no "original source".
            .destination_arn(&main_arn);
        if let Some(rate) = rate.filter(|r| *r > 0) {
            start = start.max_number_of_messages_per_second(rate.min(500) as i32);
        }
        start
            .send()
            .await
            .map_err(|e| sdk_error("StartMessageMoveTask", e))?;
        loop {
            let tasks = self
                .shared
                .client
                .list_message_move_tasks()
                .source_arn(&dlq_arn)
                .max_results(1)
                .send()
                .await
                .map_err(|e| sdk_error("ListMessageMoveTasks", e))?;
            let Some(task) = tasks.results().first() else {
                return Err(QueueError::Unavailable(
                    "ListMessageMoveTasks shows no task".into(),
                ));
            };
            let moved = task.approximate_number_of_messages_moved().max(0) as u64;
            let total = task
                .approximate_number_of_messages_to_move()
                .map(|n| n.max(0) as u64);
            progress.advanced(moved, total);
            match task.status().unwrap_or_default() {
                "COMPLETED" => return Ok(Redriven { moved, failed: 0 }),
                "RUNNING" | "CANCELLING" => {}
                other => {
                    let reason = task.failure_reason().unwrap_or("no reason given");
                    return Ok(Redriven {
                        moved,
                        failed: total.unwrap_or(moved).saturating_sub(moved).max(1),
                    })
                    .inspect(|_| {
                        tracing::error!(
                            status = other,
                            reason,
                            "the SQS move task did not complete"
                        );
                    });
                }
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    /// The portable redrive: pages of up to 10 received with a visibility long enough to move
    /// them, sent to the main queue, deleted from the DLQ once sent; a message whose send failed
    /// is given back and counted as failed. Paced to `rate` per second.
    async fn redrive_page_by_page(
        &self,
        dlq_url: &str,
        rate: Option<u32>,
        progress: &dyn Progress,
    ) -> Result<Redriven, QueueError> {
        let total = self.dead_letter_count(dlq_url).await.ok();
        let started = tokio::time::Instant::now();
        let mut done = Redriven::default();
        let mut empty_pages = 0;
        progress.advanced(0, total);
        while empty_pages < 2 {
            let output = self
                .shared
                .client
                .receive_message()
                .queue_url(dlq_url)
                .max_number_of_messages(MAX_BATCH as i32)
                .wait_time_seconds(1)
                .visibility_timeout(60)
                .send()
                .await
                .map_err(|e| sdk_error("ReceiveMessage from the dead-letter queue", e))?;
            let messages: Vec<(String, Bytes)> = output
                .messages()
                .iter()
                .filter_map(|m| {
                    Some((
                        m.receipt_handle()?.to_owned(),
                        Bytes::from(m.body().unwrap_or_default().to_owned()),
                    ))
                })
                .collect();
            if messages.is_empty() {
                empty_pages += 1;
                continue;
            }
            empty_pages = 0;
            let sent = self
                .send_batch(messages.iter().map(|(_, body)| body.clone()).collect())
                .await;
            let mut delete = Vec::new();
            let mut give_back = Vec::new();
            for ((receipt, _), result) in messages.into_iter().zip(sent) {
                match result {
                    Ok(_) => delete.push(ReceiptHandle(receipt)),
                    Err(e) => {
                        tracing::warn!(error = %e, "a dead letter could not be sent back; it stays");
                        give_back.push(receipt);
                    }
                }
            }
            done.failed += give_back.len() as u64;
            self.make_visible(dlq_url, give_back).await;
            for result in self.delete_batch_in(dlq_url, &delete).await {
                match result {
                    Ok(()) => done.moved += 1,
                    // Sent but not deleted: it is on both queues; the worker's dedupe makes the
                    // copy harmless, and the next redrive moves it again.
                    Err(e) => tracing::warn!(error = %e, "a redriven dead letter was not deleted"),
                }
            }
            progress.advanced(done.moved, total.map(|t| t.max(done.moved)));
            if let Some(rate) = rate.filter(|r| *r > 0) {
                let due = Duration::from_secs_f64(done.moved as f64 / f64::from(rate));
                tokio::time::sleep_until(started + due).await;
            }
        }
        Ok(done)
    }

    /// See [`crate::queue::Queue::purge_dead_letters`]: `PurgeQueue` on the DLQ (SQS allows one
    /// purge a minute per queue), counting first.
    pub async fn purge_dead_letters(&self) -> Result<u64, QueueError> {
        let dlq_url = self.shared.dead_letter_queue_url().await?;
        let count = self.dead_letter_count(&dlq_url).await?;
        self.shared
            .client
            .purge_queue()
            .queue_url(&dlq_url)
            .send()
            .await
            .map_err(|e| sdk_error("PurgeQueue on the dead-letter queue", e))?;
        Ok(count)
    }

    /// See [`crate::queue::Queue::depth`]: the queues' approximate counts.
    pub async fn queue_depth(&self) -> Result<QueueDepth, QueueError> {
        let main = self.approximate_counts(&self.shared.queue_url).await?;
        let dead_letters = match self.shared.dead_letter_queue_url().await {
            Ok(url) => Some(self.dead_letter_count(&url).await?),
            Err(_) => None,
        };
        Ok(QueueDepth {
            visible: main[0],
            in_flight: main[1],
            delayed: main[2],
            dead_letters,
        })
    }

    async fn dead_letter_count(&self, dlq_url: &str) -> Result<u64, QueueError> {
        let counts = self.approximate_counts(dlq_url).await?;
        Ok(counts[0] + counts[1] + counts[2])
    }

    /// `ApproximateNumberOfMessages`, `…NotVisible` and `…Delayed` of `queue_url`.
    async fn approximate_counts(&self, queue_url: &str) -> Result<[u64; 3], QueueError> {
        let names = [
            QueueAttributeName::ApproximateNumberOfMessages,
            QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
            QueueAttributeName::ApproximateNumberOfMessagesDelayed,
        ];
        let output = self
            .shared
            .client
            .get_queue_attributes()
            .queue_url(queue_url)
            .set_attribute_names(Some(names.to_vec()))
            .send()
            .await
            .map_err(|e| sdk_error("GetQueueAttributes", e))?;
        let attributes = output.attributes().cloned().unwrap_or_default();
        Ok(names.map(|name| {
            attributes
                .get(&name)
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        }))
    }

    async fn queue_arn(&self, queue_url: &str) -> Result<String, QueueError> {
        let output = self
            .shared
            .client
            .get_queue_attributes()
            .queue_url(queue_url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(|e| sdk_error("GetQueueAttributes", e))?;
        output
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::QueueArn))
            .cloned()
            .ok_or_else(|| QueueError::Unavailable(format!("{queue_url} has no QueueArn")))
    }

    fn to_dead_letter(&self, message: &Message, id: &str) -> DeadLetter {
        let attribute = |name: &str| {
            message
                .message_attributes()
                .and_then(|a| a.get(name))
                .and_then(|v| v.string_value())
                .filter(|v| !v.is_empty())
        };
        let system = |name: MessageSystemAttributeName| {
            message.attributes().and_then(|a| a.get(&name)).cloned()
        };
        let redrive = self.shared.redrive_max_receive_count;
        let explicit = attribute(ATTR_LAST_ERROR).is_some();
        let receive_count = attribute(ATTR_RECEIVE_COUNT)
            .and_then(|v| v.parse().ok())
            .or(if explicit { None } else { redrive })
            .or_else(|| {
                system(MessageSystemAttributeName::ApproximateReceiveCount)
                    .and_then(|v| v.parse().ok())
            })
            .unwrap_or(1);
        let sent_at = attribute(ATTR_SENT_TIMESTAMP)
            .and_then(to_time)
            .or_else(|| {
                system(MessageSystemAttributeName::SentTimestamp).and_then(|v| to_time(&v))
            });
        let last_error = attribute(ATTR_LAST_ERROR).map(str::to_owned).or_else(|| {
            redrive.map(|n| {
                format!(
                    "received {n} times without being deleted (moved by the queue's redrive policy)"
                )
            })
        });
        DeadLetter {
            id: id.to_owned(),
            body: Bytes::from(message.body().unwrap_or_default().to_owned()),
            receive_count,
            sent_at,
            last_error,
        }
    }

    /// Ends a peek: visibility 0 for every receipt, in batches of 10. A failure only delays the
    /// messages by the peek timeout, so it is logged, not returned.
    async fn make_visible(&self, queue_url: &str, receipts: Vec<String>) {
        for chunk in receipts.chunks(MAX_BATCH) {
            let entries: Vec<_> = chunk
                .iter()
                .enumerate()
                .filter_map(|(i, receipt)| {
                    ChangeMessageVisibilityBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(receipt)
                        .visibility_timeout(0)
                        .build()
                        .ok()
                })
                .collect();
            let result = self
                .shared
                .client
                .change_message_visibility_batch()
                .queue_url(queue_url)
                .set_entries(Some(entries))
                .send()
                .await;
            match result {
                Ok(output) if !output.failed().is_empty() => {
                    tracing::warn!(
                        failed = output.failed().len(),
                        "some peeked dead letters stay hidden until their peek timeout"
                    );
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(
                    error = %describe(&e),
                    "peeked dead letters stay hidden until their peek timeout"
                ),
            }
        }
    }
}

impl Shared {
    /// The DLQ URL: configured, or resolved once from the redrive policy's target ARN
    /// (`arn:aws:sqs:REGION:ACCOUNT:NAME`) with `GetQueueUrl`, passing the account so a DLQ owned by
    /// another account is found too.
    pub(super) async fn dead_letter_queue_url(&self) -> Result<String, QueueError> {
        self.dlq_url
            .get_or_try_init(|| async {
                let Some(arn) = &self.dlq_arn else {
                    return Err(QueueError::Rejected(format!(
                        "no dead-letter queue known for {}: set SQS_DLQ_URL or give the queue a RedrivePolicy",
                        self.queue_url
                    )));
                };
                let parts: Vec<&str> = arn.split(':').collect();
                let (Some(account), Some(name)) = (parts.get(4), parts.last()) else {
                    return Err(QueueError::Rejected(format!(
                        "RedrivePolicy deadLetterTargetArn is not an SQS ARN: {arn}"
                    )));
                };
                let mut request = self.client.get_queue_url().queue_name(*name);
                if !account.is_empty() {
                    request = request.queue_owner_aws_account_id(*account);
                }
                let output = request.send().await.map_err(|e| {
                    QueueError::Unavailable(format!(
                        "cannot find the dead-letter queue {arn}: {}",
                        describe(&e)
                    ))
                })?;
                output.queue_url().map(str::to_owned).ok_or_else(|| {
                    QueueError::Unavailable(format!("GetQueueUrl returned no URL for {arn}"))
                })
            })
            .await
            .cloned()
    }
}
