//! The payload of an envelope: inline, or fetched from the claim store when the ingest had to put
//! it aside because it was larger than a queue message (see `hookbridge_shared::claim`).

use std::time::Duration;

use hookbridge_shared::claim::ClaimStore;
use hookbridge_shared::envelope::Envelope;

use super::DecodeError;

/// How long a claim that cannot be read now waits before the next attempt: long enough for a
/// directory to be mounted or S3 to recover, short enough to stay well within the attempts the
/// queue allows before it dead-letters the message.
const RETRY_AFTER: Duration = Duration::from_secs(30);

/// The payload bytes of `envelope`.
///
/// # Errors
/// [`DecodeError::Permanent`] when the envelope carries neither a payload nor a claim, or names a
/// claim that is corrupt or gone from S3 (reading it again cannot help: dead-letter it now);
/// [`DecodeError::Transient`] when the claimed payload cannot be read now (a shared claim directory
/// that is not mounted yet, or an S3 outage, heals by itself).
pub async fn payload(claims: &ClaimStore, envelope: &Envelope) -> Result<Vec<u8>, DecodeError> {
    if let Some(raw) = &envelope.payload {
        return Ok(raw.get().as_bytes().to_vec());
    }
    let Some(claim) = &envelope.payload_claim else {
        return Err(DecodeError::Permanent("envelope without payload".into()));
    };
    claims.get(claim).await.map_err(|e| {
        if e.is_transient() {
            DecodeError::Transient {
                after: RETRY_AFTER,
                reason: format!("claimed payload unavailable: {e}"),
            }
        } else {
            DecodeError::Permanent(format!("claimed payload refused: {e}"))
        }
    })
}
