//! Reading a webhook body with every resource bounded, whatever the caller declares or does
//! (README, "Reliability"):
//! - **size**: a body over the cap is refused as soon as it crosses it (or at once from
//!   `Content-Length`), never buffered whole;
//! - **time**: the whole body must arrive within [`BODY_DEADLINE`] (GitHub sends a delivery at
//!   once and gives up after 10 s), so a connection that stalls mid-body is cut;
//! - **memory**: buffers start small and grow only with bytes that actually arrived; beyond the
//!   first [`FREE_BYTES`], a body's bytes are taken from one budget shared by all requests
//!   ([`BodyBudget`]), so stalled large bodies cannot exhaust memory, while small deliveries (every
//!   real GitHub or Jira event but the rare huge one) never wait for it;
//! - **work**: the HMAC is computed as the body streams in, and the caller has checked the
//!   signature header's presence and form before the first byte is read.

use std::sync::Arc;
use std::time::Duration;

use actix_web::HttpRequest;
use actix_web::http::header::CONTENT_LENGTH;
use actix_web::web;
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use hookbridge_shared::signature::StreamingCheck;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::IngestError;

/// How long the whole body may take to arrive.
pub const BODY_DEADLINE: Duration = Duration::from_secs(10);

/// Bytes of each body that do not count against the shared budget.
pub const FREE_BYTES: usize = 1024 * 1024;

/// The largest first allocation for a body, whatever `Content-Length` says.
const FIRST_ALLOCATION: usize = 64 * 1024;

/// Budget units are KiB, so that the semaphore's count stays small.
const UNIT: usize = 1024;

/// The memory all requests together may hold in body bytes beyond their first [`FREE_BYTES`].
#[derive(Clone)]
pub struct BodyBudget(Arc<Semaphore>);

impl BodyBudget {
    pub fn new(bytes: usize) -> Self {
        Self(Arc::new(Semaphore::new((bytes / UNIT).max(1))))
    }
}

/// A body read whole, with the share of the budget it holds (released when dropped).
pub struct Body {
    pub bytes: Bytes,
    pub _held: Vec<OwnedSemaphorePermit>,
}

/// Reads at most `limit` bytes of the request body within [`BODY_DEADLINE`], feeding `check`.
///
/// # Errors
/// [`IngestError::PayloadTooLarge`] past the limit; [`IngestError::BodyTimeout`] when the body
/// is late; [`IngestError::Busy`] when the budget stays full until the deadline;
/// [`IngestError::BadRequest`] when the client breaks the body off.
pub async fn read_capped(
    req: &HttpRequest,
    payload: web::Payload,
    limit: usize,
    check: Option<&mut StreamingCheck>,
    budget: &BodyBudget,
) -> Result<Body, IngestError> {
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(IngestError::PayloadTooLarge { limit });
    }
    let deadline = tokio::time::Instant::now() + BODY_DEADLINE;
    tokio::time::timeout_at(
        deadline,
        read(payload, declared, limit, check, budget, deadline),
    )
    .await
    .unwrap_or(Err(IngestError::BodyTimeout {
        seconds: BODY_DEADLINE.as_secs(),
    }))
}

async fn read(
    mut payload: web::Payload,
    declared: Option<usize>,
    limit: usize,
    mut check: Option<&mut StreamingCheck>,
    budget: &BodyBudget,
    deadline: tokio::time::Instant,
) -> Result<Body, IngestError> {
    let mut body = BytesMut::with_capacity(declared.unwrap_or(8 * 1024).min(FIRST_ALLOCATION));
    let mut held: Vec<OwnedSemaphorePermit> = Vec::new();
    let mut budgeted = 0usize;
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|e| IngestError::BadRequest(format!("reading the body failed: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(IngestError::PayloadTooLarge { limit });
        }
        let beyond_free = (body.len() + chunk.len()).saturating_sub(FREE_BYTES);
        if beyond_free > budgeted {
            let units = (beyond_free - budgeted).div_ceil(UNIT);
            let permit = tokio::time::timeout_at(
                deadline,
                budget.0.clone().acquire_many_owned(units as u32),
            )
            .await
            .map_err(|_| IngestError::Busy)?
            .map_err(|_| IngestError::Busy)?;
            held.push(permit);
            budgeted += units * UNIT;
        }
        if let Some(check) = check.as_deref_mut() {
            check.update(&chunk);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Body {
        bytes: body.freeze(),
        _held: held,
    })
}
