//! Reading a webhook body with the size cap enforced while reading: a 26 MiB body is refused
//! as soon as the cap is crossed (or at once from `Content-Length`), never buffered whole.

use actix_web::HttpRequest;
use actix_web::http::header::CONTENT_LENGTH;
use actix_web::web;
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;

use crate::error::IngestError;

/// Reads at most `limit` bytes of the request body.
///
/// # Errors
/// [`IngestError::PayloadTooLarge`] past the limit; [`IngestError::BadRequest`] when the client
/// breaks the body off.
pub async fn read_capped(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<Bytes, IngestError> {
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(IngestError::PayloadTooLarge { limit });
    }
    let mut body = BytesMut::with_capacity(declared.unwrap_or(8 * 1024).min(limit));
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|e| IngestError::BadRequest(format!("reading the body failed: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(IngestError::PayloadTooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}
