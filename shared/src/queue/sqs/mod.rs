//! The Amazon SQS backend (also any server speaking SQS's JSON protocol, such as moto).
//!
//! Why it is shaped this way:
//! - **Sends are batched.** Each `send` hands its message to one dispatcher task per queue, which
//!   groups whatever is waiting into `SendMessageBatch` calls of up to 10 entries, with at most
//!   [`BATCHES_IN_FLIGHT`] calls outstanding. At low load a message goes out alone at once (no added
//!   latency); under load the calls in flight let messages pile up, so batches fill to ~10 and the
//!   API calls per event (what SQS bills) drop tenfold. Batch results can partly fail, so every entry
//!   gets its own answer.
//! - **Bodies are checked before they leave.** SQS takes UTF-8 text with a restricted character set
//!   and a size limit per message and per batch; a body it would refuse is answered with
//!   [`QueueError::Rejected`] here, clearly, rather than as a failed batch that also fails its
//!   neighbours.
//! - **The dead-letter queue is a second SQS queue.** SQS moves a message there by itself after the
//!   main queue's `RedrivePolicy.maxReceiveCount` receives; [`SqsQueue::dead_letter`] moves one there
//!   explicitly with the reason in a message attribute, so `hookbridge dlq list` can show it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::config::http::HttpResponse;
use aws_sdk_sqs::config::timeout::TimeoutConfig;
use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::types::{
    BatchResultErrorEntry, DeleteMessageBatchRequestEntry, Message, MessageAttributeValue,
    MessageSystemAttributeName, QueueAttributeName,
};
use bytes::Bytes;
use chrono::{DateTime, TimeZone, Utc};
use tokio::sync::{OnceCell, mpsc, oneshot};

mod dead_letters;
mod sends;

use sends::{SendJob, dispatch_sends};

use super::{QueueError, ReceiptHandle, ReceiveOptions, Received};
use crate::aws_errors::describe;

/// Most entries SQS takes in one batch call.
const MAX_BATCH: usize = 10;
/// Batch send calls outstanding at once per queue. Enough to keep latency low under load, few
/// enough that waiting messages accumulate into full batches.
pub const BATCHES_IN_FLIGHT: usize = 4;
/// How often a batch entry that failed through no fault of ours (`SenderFault=false`) is retried.
const ENTRY_RETRIES: u32 = 2;
/// SQS's longest visibility timeout (12 h).
const MAX_VISIBILITY_SECS: u64 = 43_200;
/// SQS's longest long poll.
const MAX_WAIT_SECS: u64 = 20;
/// `MaximumMessageSize` assumed when the queue does not say (SQS's historical default).
const DEFAULT_MAX_MESSAGE_BYTES: usize = 262_144;
/// How long one attempt of any call may take. The longest legitimate one is a 20 s long poll; without
/// a bound a receive can hang forever on a half-dead connection (awslabs/aws-sdk-rust#1094).
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest dead-letter reason kept.
const MAX_REASON_CHARS: usize = 1000;

/// Message attribute holding the reason a message was dead-lettered.
pub const ATTR_LAST_ERROR: &str = "hookbridge_last_error";
/// Message attribute holding how often the message had been received on the main queue.
pub const ATTR_RECEIVE_COUNT: &str = "hookbridge_receive_count";
/// Message attribute holding when the message was first sent to the main queue (ms since the
/// epoch): a message sent to the DLQ gets a new `SentTimestamp`, and `first_seen` should not move.
pub const ATTR_SENT_TIMESTAMP: &str = "hookbridge_sent_timestamp";

/// How to reach the queue.
#[derive(Debug, Clone)]
pub struct SqsOptions {
    pub queue_url: String,
    /// The dead-letter queue; when `None`, read from the main queue's `RedrivePolicy`.
    pub dlq_url: Option<String>,
}

struct Shared {
    client: Client,
    queue_url: String,
    max_message_bytes: usize,
    /// The main queue's `RedrivePolicy.maxReceiveCount`, when it has one.
    redrive_max_receive_count: Option<u32>,
    /// The DLQ's ARN from the redrive policy, to resolve the URL later if it failed at connect.
    dlq_arn: Option<String>,
    dlq_url: OnceCell<String>,
    /// `SendMessage` and `SendMessageBatch` calls made (the benchmark's calls per event).
    send_calls: AtomicU64,
}

/// An SQS queue; cheap to clone. The send dispatcher stops when the last clone is dropped.
#[derive(Clone)]
pub struct SqsQueue {
    shared: Arc<Shared>,
    batcher: mpsc::UnboundedSender<Vec<SendJob>>,
}

fn unavailable(e: impl std::fmt::Display) -> QueueError {
    QueueError::Unavailable(e.to_string())
}

/// Error codes that say the request itself is wrong, so retrying it cannot help. SQS's JSON
/// protocol reports some of them with the legacy `AWS.SimpleQueueService.` prefix.
const REQUEST_ERROR_CODES: &[&str] = &[
    "BatchEntryIdsNotDistinct",
    "BatchRequestTooLong",
    "EmptyBatchRequest",
    "InvalidAddress",
    "InvalidAttributeName",
    "InvalidAttributeValue",
    "InvalidBatchEntryId",
    "InvalidIdFormat",
    "InvalidMessageContents",
    "InvalidParameterValue",
    "MessageNotInflight",
    "MessageTooLong",
    "MissingParameter",
    "ReceiptHandleIsInvalid",
    "TooManyEntriesInBatchRequest",
    "UnsupportedOperation",
];

fn is_request_error(code: &str) -> bool {
    let code = code.strip_prefix("AWS.SimpleQueueService.").unwrap_or(code);
    REQUEST_ERROR_CODES
        .iter()
        .any(|c| c.eq_ignore_ascii_case(code))
}

/// Maps an SDK error to a [`QueueError`]: a request SQS (or the SDK, before sending) found invalid
/// is [`QueueError::Rejected`]; everything else (network, throttling, server errors, a missing
/// queue) is [`QueueError::Unavailable`]. The SDK has already retried what was retryable.
fn sdk_error<E>(operation: &str, err: SdkError<E, HttpResponse>) -> QueueError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let rejected = match &err {
        SdkError::ConstructionFailure(_) => true,
        SdkError::ServiceError(service) => service.err().code().is_some_and(is_request_error),
        _ => false,
    };
    let text = format!("{operation}: {}", describe(&err));
    if rejected {
        QueueError::Rejected(text)
    } else {
        QueueError::Unavailable(text)
    }
}

fn batch_entry_error(operation: &str, entry: &BatchResultErrorEntry) -> QueueError {
    let text = format!(
        "{operation} entry failed: {}: {}",
        entry.code(),
        entry.message().unwrap_or("no message")
    );
    if entry.sender_fault() {
        QueueError::Rejected(text)
    } else {
        QueueError::Unavailable(text)
    }
}

/// Whole seconds, rounded up so a message is never visible earlier than asked; at most `max`.
fn ceil_secs(d: Duration, max: u64) -> i32 {
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    // Both maxima fit an i32 comfortably.
    secs.min(max) as i32
}

fn to_time(ms: &str) -> Option<DateTime<Utc>> {
    ms.parse::<i64>()
        .ok()
        .and_then(|ms| Utc.timestamp_millis_opt(ms).single())
}

/// Turns a body into text SQS accepts, keeping its JSON meaning.
///
/// SQS accepts only `#x9 #xA #xD #x20-#xD7FF #xE000-#xFFFD #x10000-#x10FFFF`. Rust strings cannot
/// hold surrogates, so the refused characters left are controls below U+0020 and the noncharacters
/// U+FFFE and U+FFFF. In valid JSON the noncharacters can only sit inside strings, where the escape
/// text `\ufffe` means the same, so they are escaped; raw controls are not valid JSON at all (a
/// string must escape them), so a body holding one is refused.
///
/// # Errors
/// [`QueueError::Rejected`] for non-UTF-8 bodies and bodies with raw control characters.
fn encode_body(body: &[u8]) -> Result<String, QueueError> {
    let text = std::str::from_utf8(body)
        .map_err(|e| QueueError::Rejected(format!("SQS message bodies must be UTF-8 text: {e}")))?;
    if let Some(c) = text
        .chars()
        .find(|&c| c < '\u{20}' && !matches!(c, '\t' | '\n' | '\r'))
    {
        return Err(QueueError::Rejected(format!(
            "SQS refuses the control character U+{:04X} in a message body",
            c as u32
        )));
    }
    if !text.contains(['\u{FFFE}', '\u{FFFF}']) {
        return Ok(text.to_owned());
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '\u{FFFE}' => out.push_str("\\ufffe"),
            '\u{FFFF}' => out.push_str("\\uffff"),
            c => out.push(c),
        }
    }
    Ok(out)
}

/// Cuts `s` to at most `max_chars` characters and `max_bytes` bytes, on a character boundary.
fn truncate(s: &str, max_chars: usize, max_bytes: usize) -> &str {
    let mut end = 0;
    for (count, (i, c)) in s.char_indices().enumerate() {
        if count >= max_chars || i + c.len_utf8() > max_bytes {
            break;
        }
        end = i + c.len_utf8();
    }
    &s[..end]
}

fn string_attribute(value: impl Into<String>) -> Result<MessageAttributeValue, QueueError> {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .map_err(|e| QueueError::Rejected(format!("message attribute: {e}")))
}

/// The parts of a `RedrivePolicy` we use.
fn parse_redrive_policy(policy: &str) -> Option<(String, Option<u32>)> {
    let value: serde_json::Value = serde_json::from_str(policy).ok()?;
    let arn = value.get("deadLetterTargetArn")?.as_str()?.to_owned();
    let count = match value.get("maxReceiveCount") {
        Some(serde_json::Value::Number(n)) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        Some(serde_json::Value::String(s)) => s.parse().ok(),
        _ => None,
    };
    Some((arn, count))
}

impl SqsQueue {
    /// Connects with the standard AWS configuration chain (`AWS_ENDPOINT_URL`, `AWS_REGION`,
    /// credentials from the environment, profile or instance role), then checks the queue as
    /// [`SqsQueue::connect_with`] does.
    ///
    /// # Errors
    /// [`QueueError::Unavailable`] naming the URL when the queue cannot be read.
    pub async fn connect(options: SqsOptions) -> Result<Self, QueueError> {
        let config = aws_config::load_defaults(BehaviorVersion::latest()).await;
        Self::connect_with(Client::new(&config), options).await
    }

    /// Connects with a client the caller built (tests point it at a local server this way without
    /// touching the process environment). Reads `MaximumMessageSize` and `RedrivePolicy`, which also
    /// proves the queue exists and is readable, and finds the dead-letter queue: the given URL, else
    /// the redrive policy's target. Must be called inside a Tokio runtime: it starts the send
    /// dispatcher task.
    ///
    /// # Errors
    /// [`QueueError::Unavailable`] naming the URL when the queue cannot be read.
    pub async fn connect_with(client: Client, options: SqsOptions) -> Result<Self, QueueError> {
        let client = with_attempt_timeout(client);
        let queue_url = options.queue_url;
        let attributes = client
            .get_queue_attributes()
            .queue_url(&queue_url)
            .attribute_names(QueueAttributeName::MaximumMessageSize)
            .attribute_names(QueueAttributeName::RedrivePolicy)
            .send()
            .await
            .map_err(|e| {
                QueueError::Unavailable(format!(
                    "cannot read SQS queue {queue_url} (does it exist, and may these credentials use it?): {}",
                    describe(&e)
                ))
            })?;
        let attributes = attributes.attributes().cloned().unwrap_or_default();
        let max_message_bytes = attributes
            .get(&QueueAttributeName::MaximumMessageSize)
            .and_then(|v| v.parse().ok())
            .unwrap_or(DEFAULT_MAX_MESSAGE_BYTES);
        let redrive = attributes
            .get(&QueueAttributeName::RedrivePolicy)
            .and_then(|p| parse_redrive_policy(p));
        let (dlq_arn, redrive_max_receive_count) = match redrive {
            Some((arn, count)) => (Some(arn), count),
            None => (None, None),
        };
        let dlq_url = match options.dlq_url {
            Some(url) => OnceCell::new_with(Some(url)),
            None => OnceCell::new(),
        };
        let shared = Arc::new(Shared {
            client,
            queue_url,
            max_message_bytes,
            redrive_max_receive_count,
            dlq_arn,
            dlq_url,
            send_calls: AtomicU64::new(0),
        });
        // Resolve the DLQ now so a misconfiguration shows at start; a failure here is retried when
        // the DLQ is first needed, so a blip at start does not disable dead-lettering for good.
        let dlq = match shared.dead_letter_queue_url().await {
            Ok(url) => Some(url),
            Err(e) => {
                if shared.dlq_arn.is_some() {
                    tracing::warn!(error = %e, "could not resolve the SQS dead-letter queue yet");
                }
                None
            }
        };
        tracing::info!(
            queue_url = %shared.queue_url,
            dlq_url = dlq.as_deref().unwrap_or("none"),
            max_message_bytes,
            redrive_max_receive_count,
            "connected to SQS"
        );
        let (batcher, jobs) = mpsc::unbounded_channel();
        tokio::spawn(dispatch_sends(shared.clone(), jobs));
        Ok(Self { shared, batcher })
    }

    /// The queue's `MaximumMessageSize`: the largest body (in UTF-8 bytes) a send takes.
    pub fn max_message_bytes(&self) -> Option<usize> {
        Some(self.shared.max_message_bytes)
    }

    /// The main queue's URL.
    pub fn queue_url(&self) -> &str {
        &self.shared.queue_url
    }

    /// The dead-letter queue's URL, when it is known (configured, or resolved from the redrive
    /// policy).
    pub fn dead_letter_queue_url(&self) -> Option<&str> {
        self.shared.dlq_url.get().map(String::as_str)
    }

    /// The main queue's `RedrivePolicy.maxReceiveCount`, when it has one.
    pub fn redrive_max_receive_count(&self) -> Option<u32> {
        self.shared.redrive_max_receive_count
    }

    /// The SDK client, for operations outside the queue interface (e.g. redriving the DLQ).
    pub fn client(&self) -> &Client {
        &self.shared.client
    }

    /// `SendMessage` and `SendMessageBatch` calls this process has made, retries included; divided
    /// by the events sent it shows how well sends are batched (SQS bills per call).
    pub fn send_calls(&self) -> u64 {
        self.shared.send_calls.load(Ordering::Relaxed)
    }

    /// Same as [`SqsQueue::send_calls`], under the name the embedded queue uses for its group
    /// commits, so both backends report one `write_calls` figure.
    pub fn write_calls(&self) -> u64 {
        self.send_calls()
    }

    /// Sends one message through the batching dispatcher and returns its SQS message id.
    ///
    /// # Errors
    /// [`QueueError::Rejected`] for a body SQS would refuse (not UTF-8, a raw control character,
    /// larger than [`SqsQueue::max_message_bytes`]); [`QueueError::Unavailable`] when SQS did not
    /// store it.
    pub async fn send(&self, body: Bytes) -> Result<String, QueueError> {
        let body = self.prepare(&body)?;
        let (reply, answer) = oneshot::channel();
        self.batcher
            .send(vec![SendJob { body, reply }])
            .map_err(|_| unavailable("SQS send dispatcher stopped"))?;
        answer
            .await
            .map_err(|_| unavailable("SQS send dispatcher stopped"))?
    }

    /// Sends several messages; each gets its own result. They reach the dispatcher together, so
    /// they fill batches of 10 (25 bodies make 3 calls).
    pub async fn send_batch(&self, bodies: Vec<Bytes>) -> Vec<Result<String, QueueError>> {
        let mut results: Vec<Option<Result<String, QueueError>>> = Vec::with_capacity(bodies.len());
        let mut answers = Vec::new();
        let mut jobs = Vec::new();
        for (index, body) in bodies.iter().enumerate() {
            match self.prepare(body) {
                Ok(body) => {
                    let (reply, answer) = oneshot::channel();
                    jobs.push(SendJob { body, reply });
                    answers.push((index, answer));
                    results.push(None);
                }
                Err(e) => results.push(Some(Err(e))),
            }
        }
        if !jobs.is_empty() && self.batcher.send(jobs).is_err() {
            for (index, _) in answers.drain(..) {
                results[index] = Some(Err(unavailable("SQS send dispatcher stopped")));
            }
        }
        for (index, answer) in answers {
            results[index] = Some(
                answer
                    .await
                    .unwrap_or_else(|_| Err(unavailable("SQS send dispatcher stopped"))),
            );
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(unavailable("SQS send lost its result"))))
            .collect()
    }

    /// How many bytes `body` takes as an SQS message (after the escaping [`encode_body`] does),
    /// which is what SQS's `MaximumMessageSize` limits.
    ///
    /// # Errors
    /// [`QueueError::Rejected`] for a body SQS could never take (not UTF-8, raw control
    /// characters).
    pub fn encoded_len(&self, body: &[u8]) -> Result<usize, QueueError> {
        encode_body(body).map(|b| b.len())
    }

    fn prepare(&self, body: &[u8]) -> Result<String, QueueError> {
        let body = encode_body(body)?;
        if body.len() > self.shared.max_message_bytes {
            return Err(QueueError::Rejected(format!(
                "message of {} bytes exceeds the SQS queue's MaximumMessageSize of {} bytes",
                body.len(),
                self.shared.max_message_bytes
            )));
        }
        Ok(body)
    }

    /// Receives up to 10 messages (`opts.max_messages` is clamped to 1–10, the wait to 0–20 s, both
    /// durations rounded up to whole seconds as SQS counts them).
    ///
    /// # Errors
    /// [`QueueError`] when SQS cannot be read.
    pub async fn receive(&self, opts: ReceiveOptions) -> Result<Vec<Received>, QueueError> {
        let output = self
            .shared
            .client
            .receive_message()
            .queue_url(&self.shared.queue_url)
            .max_number_of_messages(opts.max_messages.clamp(1, MAX_BATCH) as i32)
            .wait_time_seconds(ceil_secs(opts.wait, MAX_WAIT_SECS))
            .visibility_timeout(ceil_secs(opts.visibility, MAX_VISIBILITY_SECS))
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
            .send()
            .await
            .map_err(|e| sdk_error("ReceiveMessage", e))?;
        Ok(output.messages().iter().filter_map(to_received).collect())
    }

    /// Deletes one message.
    ///
    /// # Errors
    /// [`QueueError`] when SQS refused or could not be reached.
    pub async fn delete(&self, handle: &ReceiptHandle) -> Result<(), QueueError> {
        self.delete_batch(std::slice::from_ref(handle))
            .await
            .pop()
            .unwrap_or(Ok(()))
    }

    /// Deletes messages in `DeleteMessageBatch` calls of 10; each handle gets its own result.
    /// Entries that failed through no fault of ours are retried once.
    pub async fn delete_batch(&self, handles: &[ReceiptHandle]) -> Vec<Result<(), QueueError>> {
        self.delete_batch_in(&self.shared.queue_url, handles).await
    }

    /// [`SqsQueue::delete_batch`] on `queue_url` (the main queue or the dead-letter queue).
    async fn delete_batch_in(
        &self,
        queue_url: &str,
        handles: &[ReceiptHandle],
    ) -> Vec<Result<(), QueueError>> {
        let mut results = Vec::with_capacity(handles.len());
        for chunk in handles.chunks(MAX_BATCH) {
            results.extend(self.delete_chunk(queue_url, chunk).await);
        }
        results
    }

    async fn delete_chunk(
        &self,
        queue_url: &str,
        handles: &[ReceiptHandle],
    ) -> Vec<Result<(), QueueError>> {
        let mut results: Vec<Result<(), QueueError>> = handles
            .iter()
            .map(|_| {
                Err(unavailable(
                    "DeleteMessageBatch returned no result for the entry",
                ))
            })
            .collect();
        let mut todo: Vec<usize> = (0..handles.len()).collect();
        for attempt in 0..2 {
            if todo.is_empty() {
                break;
            }
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let mut entries = Vec::with_capacity(todo.len());
            for &index in &todo {
                match DeleteMessageBatchRequestEntry::builder()
                    .id(index.to_string())
                    .receipt_handle(handles[index].as_str())
                    .build()
                {
                    Ok(entry) => entries.push(entry),
                    Err(e) => results[index] = Err(QueueError::Rejected(e.to_string())),
                }
            }
            if entries.is_empty() {
                break;
            }
            let output = match self
                .shared
                .client
                .delete_message_batch()
                .queue_url(queue_url)
                .set_entries(Some(entries))
                .send()
                .await
            {
                Ok(output) => output,
                Err(e) => {
                    let err = sdk_error("DeleteMessageBatch", e);
                    for &index in &todo {
                        results[index] = Err(clone_error(&err));
                    }
                    break;
                }
            };
            let mut retry = Vec::new();
            for ok in output.successful() {
                if let Some(index) = ok.id().parse::<usize>().ok().filter(|i| *i < handles.len()) {
                    results[index] = Ok(());
                }
            }
            for failed in output.failed() {
                if let Some(index) = failed
                    .id()
                    .parse::<usize>()
                    .ok()
                    .filter(|i| *i < handles.len())
                {
                    results[index] = Err(batch_entry_error("DeleteMessageBatch", failed));
                    if !failed.sender_fault() {
                        retry.push(index);
                    }
                }
            }
            todo = retry;
        }
        results
    }

    /// Makes the message visible again after `timeout` (zero: at once). SQS counts whole seconds
    /// (rounded up here) and caps a message's total invisibility at 12 h.
    ///
    /// # Errors
    /// [`QueueError::Rejected`] when the receipt is invalid or the 12 h limit is reached.
    pub async fn change_visibility(
        &self,
        handle: &ReceiptHandle,
        timeout: Duration,
    ) -> Result<(), QueueError> {
        self.shared
            .client
            .change_message_visibility()
            .queue_url(&self.shared.queue_url)
            .receipt_handle(handle.as_str())
            .visibility_timeout(ceil_secs(timeout, MAX_VISIBILITY_SECS))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| sdk_error("ChangeMessageVisibility", e))
    }

    /// A cheap call proving the queue answers, for `/ready`.
    ///
    /// # Errors
    /// [`QueueError::Unavailable`] with the reason.
    pub async fn check_ready(&self) -> Result<(), QueueError> {
        self.shared
            .client
            .get_queue_attributes()
            .queue_url(&self.shared.queue_url)
            .attribute_names(QueueAttributeName::MaximumMessageSize)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| match sdk_error("GetQueueAttributes", e) {
                QueueError::Rejected(m) => QueueError::Unavailable(m),
                other => other,
            })
    }
}

/// Gives the client an attempt timeout unless it already has one.
fn with_attempt_timeout(client: Client) -> Client {
    let config = client.config();
    if config
        .timeout_config()
        .and_then(|t| t.operation_attempt_timeout())
        .is_some()
    {
        return client;
    }
    let timeouts = config
        .timeout_config()
        .map(|t| t.to_builder())
        .unwrap_or_else(TimeoutConfig::builder)
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .build();
    Client::from_conf(config.to_builder().timeout_config(timeouts).build())
}

fn clone_error(e: &QueueError) -> QueueError {
    match e {
        QueueError::Unavailable(m) => QueueError::Unavailable(m.clone()),
        QueueError::Rejected(m) => QueueError::Rejected(m.clone()),
        QueueError::NotFound(m) => QueueError::NotFound(m.clone()),
    }
}

fn to_received(message: &Message) -> Option<Received> {
    let (Some(id), Some(handle)) = (message.message_id(), message.receipt_handle()) else {
        tracing::warn!("SQS returned a message without id or receipt handle; skipped");
        return None;
    };
    let system = |name: MessageSystemAttributeName| message.attributes().and_then(|a| a.get(&name));
    Some(Received {
        id: id.to_owned(),
        body: Bytes::from(message.body().unwrap_or_default().to_owned()),
        receive_count: system(MessageSystemAttributeName::ApproximateReceiveCount)
            .and_then(|v| v.parse().ok())
            .unwrap_or(1),
        sent_at: system(MessageSystemAttributeName::SentTimestamp).and_then(|v| to_time(v)),
        handle: ReceiptHandle(handle.to_owned()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noncharacters_are_escaped_and_json_stays_equal() {
        let original = serde_json::json!({"title": "a\u{FFFE}b\u{FFFF}c", "n": [1, "é😀"]});
        let raw = serde_json::to_string(&original).expect("serialize");
        assert!(
            raw.contains('\u{FFFE}'),
            "serde_json keeps the raw character"
        );
        let encoded = encode_body(raw.as_bytes()).expect("encodes");
        assert!(!encoded.contains(['\u{FFFE}', '\u{FFFF}']));
        assert!(encoded.contains("\\ufffe") && encoded.contains("\\uffff"));
        let decoded: serde_json::Value = serde_json::from_str(&encoded).expect("still JSON");
        assert_eq!(decoded, original);
    }

    #[test]
    fn refused_bodies_are_rejected() {
        assert!(matches!(
            encode_body(&[0x7b, 0xff, 0x7d]),
            Err(QueueError::Rejected(_))
        ));
        assert!(matches!(
            encode_body(b"{\"a\":\"\x01\"}"),
            Err(QueueError::Rejected(_))
        ));
        assert_eq!(
            encode_body(b"{\"a\":\"tab\there\"}\r\n").expect("allowed"),
            "{\"a\":\"tab\there\"}\r\n"
        );
    }

    #[test]
    fn durations_round_up_to_whole_seconds_within_limits() {
        assert_eq!(ceil_secs(Duration::ZERO, 20), 0);
        assert_eq!(ceil_secs(Duration::from_millis(1), 20), 1);
        assert_eq!(ceil_secs(Duration::from_millis(1500), 20), 2);
        assert_eq!(ceil_secs(Duration::from_secs(60), 20), 20);
        assert_eq!(
            ceil_secs(Duration::from_secs(100_000), MAX_VISIBILITY_SECS),
            43_200
        );
    }

    #[test]
    fn truncation_respects_chars_bytes_and_boundaries() {
        assert_eq!(truncate("héllo", 3, 100), "hél");
        assert_eq!(truncate("héllo", 100, 2), "h");
        assert_eq!(truncate("héllo", 100, 3), "hé");
        assert_eq!(truncate("", 10, 10), "");
    }

    #[test]
    fn redrive_policy_count_may_be_a_string_or_a_number() {
        let arn = "arn:aws:sqs:us-east-1:123456789012:dlq";
        assert_eq!(
            parse_redrive_policy(&format!(
                r#"{{"deadLetterTargetArn":"{arn}","maxReceiveCount":"5"}}"#
            )),
            Some((arn.to_owned(), Some(5)))
        );
        assert_eq!(
            parse_redrive_policy(&format!(
                r#"{{"deadLetterTargetArn":"{arn}","maxReceiveCount":3}}"#
            )),
            Some((arn.to_owned(), Some(3)))
        );
        assert_eq!(parse_redrive_policy("not json"), None);
    }

    #[test]
    fn request_error_codes_are_recognised_with_or_without_prefix() {
        assert!(is_request_error("ReceiptHandleIsInvalid"));
        assert!(is_request_error(
            "AWS.SimpleQueueService.BatchRequestTooLong"
        ));
        assert!(!is_request_error("AWS.SimpleQueueService.NonExistentQueue"));
        assert!(!is_request_error("ServiceUnavailable"));
    }

    /// A tiny SQS stand-in speaking the JSON protocol: answers `GetQueueAttributes`, and
    /// `SendMessageBatch` with scripted per-entry failures, recording the batch sizes it saw.
    mod fake {
        use std::sync::{Arc, Mutex};

        use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
        use tokio::net::TcpListener;

        pub type Script = Arc<dyn Fn(&str, &serde_json::Value) -> serde_json::Value + Send + Sync>;

        pub async fn start(script: Script, seen: Arc<Mutex<Vec<serde_json::Value>>>) -> String {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let addr = listener.local_addr().expect("addr");
            tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    let script = script.clone();
                    let seen = seen.clone();
                    tokio::spawn(async move {
                        let (read, mut write) = stream.into_split();
                        let mut read = BufReader::new(read);
                        loop {
                            let mut target = String::new();
                            let mut length = 0usize;
                            let mut line = String::new();
                            loop {
                                line.clear();
                                if read.read_line(&mut line).await.unwrap_or(0) == 0 {
                                    return;
                                }
                                let trimmed = line.trim_end();
                                if trimmed.is_empty() {
                                    break;
                                }
                                if let Some((name, value)) = trimmed.split_once(':') {
                                    let value = value.trim();
                                    if name.eq_ignore_ascii_case("content-length") {
                                        length = value.parse().unwrap_or(0);
                                    } else if name.eq_ignore_ascii_case("x-amz-target") {
                                        target = value.to_owned();
                                    }
                                }
                            }
                            let mut body = vec![0; length];
                            if read.read_exact(&mut body).await.is_err() {
                                return;
                            }
                            let request: serde_json::Value =
                                serde_json::from_slice(&body).unwrap_or_default();
                            let operation =
                                target.rsplit('.').next().unwrap_or_default().to_owned();
                            seen.lock()
                                .expect("lock")
                                .push(serde_json::json!({"op": operation, "request": request}));
                            let answer = script(&operation, &request).to_string();
                            let response = format!(
                                "HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.0\r\ncontent-length: {}\r\n\r\n{answer}",
                                answer.len()
                            );
                            if write.write_all(response.as_bytes()).await.is_err() {
                                return;
                            }
                        }
                    });
                }
            });
            format!("http://{addr}")
        }
    }

    async fn fake_queue(
        script: fake::Script,
    ) -> (SqsQueue, Arc<std::sync::Mutex<Vec<serde_json::Value>>>) {
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let endpoint = fake::start(script, seen.clone()).await;
        let config = aws_sdk_sqs::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(aws_sdk_sqs::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_sqs::config::Credentials::new(
                "testing", "testing", None, None, "test",
            ))
            .endpoint_url(endpoint)
            .build();
        let queue = SqsQueue::connect_with(
            Client::from_conf(config),
            SqsOptions {
                queue_url: "http://fake/123456789012/q".into(),
                dlq_url: None,
            },
        )
        .await
        .expect("connect to the fake");
        (queue, seen)
    }

    #[tokio::test]
    async fn an_unreachable_endpoint_is_unavailable_with_a_readable_reason() {
        // Port 9 (discard) on loopback: nothing listens there in a test sandbox.
        let config = aws_sdk_sqs::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(aws_sdk_sqs::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_sqs::config::Credentials::new(
                "AKIDSECRETLOOKING",
                "very-secret-key",
                None,
                None,
                "test",
            ))
            .endpoint_url("http://127.0.0.1:9")
            .build();
        let result = SqsQueue::connect_with(
            Client::from_conf(config),
            SqsOptions {
                queue_url: "http://127.0.0.1:9/123456789012/q".into(),
                dlq_url: None,
            },
        )
        .await;
        let Err(QueueError::Unavailable(message)) = result else {
            panic!("expected Unavailable");
        };
        assert!(
            message.contains("http://127.0.0.1:9/123456789012/q"),
            "{message}"
        );
        assert!(!message.contains("very-secret-key"), "{message}");
        assert!(message.len() < 600, "one readable line: {message}");
    }

    #[tokio::test]
    async fn partial_batch_failures_are_retried_or_reported_per_entry() {
        // First call: entry 1 fails transiently, entry 2 is refused, the rest succeed. Retries:
        // everything succeeds.
        let calls = Arc::new(AtomicU64::new(0));
        let script_calls = calls.clone();
        let script: fake::Script = Arc::new(move |operation, request| match operation {
            "GetQueueAttributes" => {
                serde_json::json!({"Attributes": {"MaximumMessageSize": "1024"}})
            }
            "SendMessageBatch" => {
                let call = script_calls.fetch_add(1, Ordering::SeqCst);
                let mut successful = Vec::new();
                let mut failed = Vec::new();
                for entry in request["Entries"].as_array().cloned().unwrap_or_default() {
                    let id = entry["Id"].as_str().unwrap_or_default().to_owned();
                    let body = entry["MessageBody"].as_str().unwrap_or_default();
                    if call == 0 && body == "flaky" {
                        failed.push(serde_json::json!({"Id": id, "SenderFault": false, "Code": "InternalError", "Message": "try again"}));
                    } else if body == "bad" {
                        failed.push(serde_json::json!({"Id": id, "SenderFault": true, "Code": "InvalidParameterValue", "Message": "no"}));
                    } else {
                        successful.push(serde_json::json!({"Id": id, "MessageId": format!("m-{body}"), "MD5OfMessageBody": "x"}));
                    }
                }
                serde_json::json!({"Successful": successful, "Failed": failed})
            }
            _ => serde_json::json!({}),
        });
        let (queue, seen) = fake_queue(script).await;
        assert_eq!(queue.max_message_bytes(), Some(1024));
        let results = queue
            .send_batch(vec![
                Bytes::from_static(b"a"),
                Bytes::from_static(b"flaky"),
                Bytes::from_static(b"bad"),
                Bytes::from_static(b"b"),
                Bytes::from(vec![b'x'; 1025]),
            ])
            .await;
        assert_eq!(results[0].as_ref().expect("a"), "m-a");
        assert_eq!(results[1].as_ref().expect("flaky after retry"), "m-flaky");
        assert!(
            matches!(results[2], Err(QueueError::Rejected(_))),
            "{:?}",
            results[2]
        );
        assert_eq!(results[3].as_ref().expect("b"), "m-b");
        assert!(
            matches!(results[4], Err(QueueError::Rejected(_))),
            "oversize refused locally"
        );
        assert_eq!(
            queue.send_calls(),
            2,
            "one batch plus one retry of the failed entry"
        );
        let batches: Vec<usize> = seen
            .lock()
            .expect("lock")
            .iter()
            .filter(|r| r["op"] == "SendMessageBatch")
            .map(|r| r["request"]["Entries"].as_array().map_or(0, Vec::len))
            .collect();
        assert_eq!(batches, vec![4, 1]);
    }

    #[tokio::test]
    async fn batches_respect_the_total_size_limit() {
        let script: fake::Script = Arc::new(|operation, request| match operation {
            "GetQueueAttributes" => {
                serde_json::json!({"Attributes": {"MaximumMessageSize": "1024"}})
            }
            "SendMessageBatch" => {
                let successful: Vec<_> = request["Entries"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .iter()
                    .map(|e| serde_json::json!({"Id": e["Id"], "MessageId": uuid::Uuid::new_v4().to_string(), "MD5OfMessageBody": "x"}))
                    .collect();
                serde_json::json!({"Successful": successful, "Failed": []})
            }
            _ => serde_json::json!({}),
        });
        let (queue, seen) = fake_queue(script).await;
        // 6 bodies of 400 bytes: at most two fit in 1024 bytes.
        let results = queue
            .send_batch((0..6).map(|_| Bytes::from(vec![b'y'; 400])).collect())
            .await;
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        let batches: Vec<usize> = seen
            .lock()
            .expect("lock")
            .iter()
            .filter(|r| r["op"] == "SendMessageBatch")
            .map(|r| r["request"]["Entries"].as_array().map_or(0, Vec::len))
            .collect();
        assert_eq!(batches, vec![2, 2, 2]);
    }
}
