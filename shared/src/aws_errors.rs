//! Errors of the AWS SDKs (SQS, S3) in one line an operator can read.

use aws_sdk_sqs::config::http::HttpResponse;
use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};

/// A readable one-line account of an SDK error. For an answer from the service: its error code,
/// message and HTTP status. For anything else (no connection, timeout, a request the SDK would not
/// build): the chain of causes, as the SDK's `DisplayErrorContext` gives it but without the
/// `Debug` dump it appends (raw response headers and body), which is noise in an operator's log.
/// Neither form can contain credentials: the SDKs never put them in errors. Every AWS SDK crate
/// shares these error types, so this serves SQS and S3 alike.
pub(crate) fn describe<E>(err: &SdkError<E, HttpResponse>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    if let SdkError::ServiceError(service) = err {
        let e = service.err();
        let message = e.message().map_or_else(|| e.to_string(), str::to_owned);
        return format!(
            "{}: {message} (HTTP {})",
            e.code().unwrap_or("unknown error"),
            service.raw().status().as_u16()
        );
    }
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
