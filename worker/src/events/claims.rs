//! The payload of an envelope: inline, or fetched from the claim store when the ingest had to put
//! it aside because it was larger than a queue message (see `hookbridge_shared::claim`).

use std::time::Duration;

use hookbridge_shared::claim::ClaimStore;
use hookbridge_shared::envelope::Envelope;

use super::DecodeError;

/// The payload bytes of `envelope`.
///
/// # Errors
/// [`DecodeError::Permanent`] when the envelope carries neither a payload nor a claim;
/// [`DecodeError::Transient`] when the claimed payload cannot be read now (a shared claim directory
/// that is not mounted yet heals by itself).
pub async fn payload(claims: &ClaimStore, envelope: &Envelope) -> Result<Vec<u8>, DecodeError> {
    if let Some(raw) = &envelope.payload {
        return Ok(raw.get().as_bytes().to_vec());
    }
    let Some(claim) = envelope.payload_claim.clone() else {
        return Err(DecodeError::Permanent("envelope without payload".into()));
    };
    let claims = claims.clone();
    tokio::task::spawn_blocking(move || claims.get(&claim))
        .await
        .map_err(|e| DecodeError::Transient {
            after: Duration::from_secs(5),
            reason: e.to_string(),
        })?
        .map_err(|e| DecodeError::Transient {
            after: Duration::from_secs(30),
            reason: format!("claimed payload unavailable: {e}"),
        })
}
