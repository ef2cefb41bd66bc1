//! Every error answer of the ingest, mapped to HTTP in one place: a JSON body
//! `{"error": <short>, "detail": <what to do>}` and the status the README's "HTTP contract" gives. Nothing here ever
//! echoes a signature or a secret.

use actix_web::http::StatusCode;
use actix_web::http::header::{ALLOW, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use hookbridge_shared::signature::SignatureError;

/// Why a webhook request was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("unsupported content type")]
    UnsupportedMediaType(String),
    #[error("payload too large")]
    PayloadTooLarge { limit: usize },
    #[error("unauthorized")]
    BadSignature(#[from] SignatureError),
    #[error("unauthorized")]
    NoSecretConfigured { variable: &'static str },
    #[error("bad request")]
    BadRequest(String),
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("not found")]
    NotFound,
    #[error("service unavailable")]
    Unavailable(String),
    /// The body did not arrive within the deadline; the connection is closed.
    #[error("request timeout")]
    BodyTimeout { seconds: u64 },
    /// Large bodies already hold the memory set aside for them; a retry will find room.
    #[error("service unavailable")]
    Busy,
}

impl IngestError {
    fn detail(&self) -> String {
        match self {
            IngestError::UnsupportedMediaType(ct) => format!(
                "content type {ct:?} is not accepted; send application/json \
                 (GitHub also: application/x-www-form-urlencoded with payload=)"
            ),
            IngestError::PayloadTooLarge { limit } => {
                format!("body exceeds the {} MiB limit", limit / (1024 * 1024))
            }
            IngestError::BadSignature(e) => e.to_string(),
            IngestError::NoSecretConfigured { variable } => format!(
                "this endpoint has no secret configured ({variable}); every request is refused"
            ),
            IngestError::BadRequest(detail) | IngestError::Unavailable(detail) => detail.clone(),
            IngestError::MethodNotAllowed => "only POST is allowed on this route".into(),
            IngestError::BodyTimeout { seconds } => {
                format!("the body did not arrive within {seconds} s; send it at once")
            }
            IngestError::Busy => {
                "too many large deliveries are being received; retry the delivery later".into()
            }
            IngestError::NotFound => "no such route".into(),
        }
    }
}

impl ResponseError for IngestError {
    fn status_code(&self) -> StatusCode {
        match self {
            IngestError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            IngestError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            IngestError::BadSignature(_) | IngestError::NoSecretConfigured { .. } => {
                StatusCode::UNAUTHORIZED
            }
            IngestError::BadRequest(_) => StatusCode::BAD_REQUEST,
            IngestError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            IngestError::NotFound => StatusCode::NOT_FOUND,
            IngestError::Unavailable(_) | IngestError::Busy => StatusCode::SERVICE_UNAVAILABLE,
            IngestError::BodyTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        match self {
            IngestError::MethodNotAllowed => {
                response.insert_header((ALLOW, HeaderValue::from_static("POST")));
            }
            IngestError::Unavailable(_) | IngestError::Busy => {
                response.insert_header(("Retry-After", "30"));
            }
            IngestError::BodyTimeout { .. } => {
                // A client that stalls once gets no second chance on this connection.
                response.force_close();
            }
            _ => {}
        }
        response.json(serde_json::json!({
            "error": self.to_string(),
            "detail": self.detail(),
        }))
    }
}
