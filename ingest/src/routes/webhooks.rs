//! The webhook routes. Order of checks, chosen so that an unauthenticated caller learns nothing
//! about the payload: content type (415) → body within the cap (413) → signature over the raw bytes
//! (401) → required headers (400) → JSON (400) → filter (200 ignored) → durable enqueue (202 / 503).

use std::collections::BTreeMap;

use actix_web::http::header::CONTENT_TYPE;
use actix_web::{HttpRequest, HttpResponse, web};
use bytes::Bytes;
use hookbridge_shared::envelope::{DeliveryId, Envelope, Source};
use hookbridge_shared::signature::Verified;
use serde::Deserialize;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use super::MAX_BODY_BYTES;
use super::body::read_capped;
use crate::AppState;
use crate::enqueue::Stored;
use crate::error::IngestError;
use crate::settings::RouteAuth;

/// Provider headers carried in the envelope (never a signature).
const GITHUB_HEADERS: &[&str] = &[
    "x-github-event",
    "x-github-delivery",
    "x-github-hook-id",
    "x-github-hook-installation-target-id",
    "x-github-hook-installation-target-type",
    "user-agent",
];
const JIRA_HEADERS: &[&str] = &[
    "x-atlassian-webhook-identifier",
    "x-atlassian-webhook-retry",
    "user-agent",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyEncoding {
    Json,
    Form,
}

fn body_encoding(req: &HttpRequest, allow_form: bool) -> Result<BodyEncoding, IngestError> {
    let raw = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = raw
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "application/json" => Ok(BodyEncoding::Json),
        "application/x-www-form-urlencoded" if allow_form => Ok(BodyEncoding::Form),
        "" => Err(IngestError::UnsupportedMediaType("(none)".into())),
        _ => Err(IngestError::UnsupportedMediaType(
            essence.chars().take(100).collect(),
        )),
    }
}

/// Checks the request's signature header `signature` (or, where the route allows it, the
/// shared-secret header) against the route's secrets.
fn authenticate(
    auth: &RouteAuth,
    variable: &'static str,
    req: &HttpRequest,
    signature: &str,
    body: Bytes,
) -> Result<Verified, IngestError> {
    match auth {
        RouteAuth::Signed(secrets) => Ok(secrets.verify(header(req, signature), body)?),
        RouteAuth::SignedOrSharedSecret(secrets) => match header(req, signature) {
            Some(hmac) => Ok(secrets.verify(Some(hmac), body)?),
            None => Ok(secrets.verify_shared_secret(header(req, "x-webhook-signature"), body)?),
        },
        RouteAuth::Unsigned => Ok(Verified::unsigned(body)),
        RouteAuth::Refuse => Err(IngestError::NoSecretConfigured { variable }),
    }
}

fn header<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

fn required_header<'a>(req: &'a HttpRequest, name: &str) -> Result<&'a str, IngestError> {
    header(req, name).ok_or_else(|| IngestError::BadRequest(format!("missing header {name}")))
}

fn kept_headers(req: &HttpRequest, names: &[&str]) -> BTreeMap<String, String> {
    names
        .iter()
        .filter_map(|name| header(req, name).map(|v| ((*name).to_owned(), v.to_owned())))
        .collect()
}

/// The JSON document of the body: the body itself, or the `payload=` field of a form.
fn json_document(verified: Verified, encoding: BodyEncoding) -> Result<Box<RawValue>, IngestError> {
    let text = match encoding {
        BodyEncoding::Json => String::from_utf8(verified.into_bytes().to_vec())
            .map_err(|_| IngestError::BadRequest("body is not valid UTF-8".into()))?,
        BodyEncoding::Form => {
            let fields: Vec<(String, String)> = serde_urlencoded::from_bytes(verified.bytes())
                .map_err(|e| IngestError::BadRequest(format!("malformed form body: {e}")))?;
            fields
                .into_iter()
                .find_map(|(k, v)| (k == "payload").then_some(v))
                .ok_or_else(|| IngestError::BadRequest("form body has no payload= field".into()))?
        }
    };
    let raw = RawValue::from_string(text)
        .map_err(|e| IngestError::BadRequest(format!("malformed JSON: {e}")))?;
    if !raw.get().trim_start().starts_with('{') {
        return Err(IngestError::BadRequest(
            "malformed JSON: the payload must be an object".into(),
        ));
    }
    Ok(raw)
}

#[derive(Deserialize)]
struct GithubHead {
    action: Option<String>,
}

#[derive(Deserialize)]
struct JiraHead {
    #[serde(rename = "webhookEvent")]
    webhook_event: Option<String>,
    issue_event_type_name: Option<String>,
}

fn queued(stored: Stored, delivery: &DeliveryId) -> HttpResponse {
    let mut body = serde_json::json!({"status": "queued", "delivery": delivery.as_str()});
    if stored == Stored::Spool {
        body["spooled"] = true.into();
    }
    HttpResponse::Accepted().json(body)
}

/// `POST /webhooks/github` (alias `/createJIRA`).
pub async fn github(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, IngestError> {
    let encoding = body_encoding(&req, true)?;
    let body = read_capped(&req, payload, MAX_BODY_BYTES).await?;
    let verified = authenticate(
        &state.settings.github,
        "GITHUB_WEBHOOK_SECRET",
        &req,
        "x-hub-signature-256",
        body,
    )?;
    let event = required_header(&req, "x-github-event")?.to_owned();
    let delivery = DeliveryId::parse(required_header(&req, "x-github-delivery")?)
        .map_err(|e| IngestError::BadRequest(format!("X-GitHub-Delivery: {e}")))?;
    let document = json_document(verified, encoding)?;
    let head: GithubHead = serde_json::from_str(document.get())
        .map_err(|e| IngestError::BadRequest(format!("malformed JSON: {e}")))?;
    if event == "ping" {
        tracing::info!(delivery = %delivery, "GitHub ping");
        return Ok(HttpResponse::Ok().json(serde_json::json!({"status": "pong"})));
    }
    if !state.settings.filters.wants_github(&event) {
        tracing::debug!(delivery = %delivery, event = %event, "ignored by configuration");
        return Ok(HttpResponse::Ok().json(serde_json::json!({"status": "ignored"})));
    }
    let envelope = Envelope::new(
        Source::Github,
        event,
        head.action,
        delivery.clone(),
        kept_headers(&req, GITHUB_HEADERS),
        document,
    );
    let (event, action) = (envelope.event.clone(), envelope.action.clone());
    let stored = state.enqueuer.enqueue(envelope).await?;
    tracing::info!(source = "github", delivery = %delivery, event = %event,
        action = action.as_deref().unwrap_or(""), "event queued");
    Ok(queued(stored, &delivery))
}

/// `POST /webhooks/jira` (alias `/jira/webhook`).
pub async fn jira(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, IngestError> {
    let encoding = body_encoding(&req, false)?;
    let body = read_capped(&req, payload, MAX_BODY_BYTES).await?;
    let verified = authenticate(
        &state.settings.jira,
        "JIRA_WEBHOOK_SECRET",
        &req,
        "x-hub-signature",
        body,
    )?;
    // Jira's identifier is stable across its retries; without one, the body's hash is, too.
    let delivery = match header(&req, "x-atlassian-webhook-identifier") {
        Some(id) => DeliveryId::parse(id)
            .map_err(|e| IngestError::BadRequest(format!("X-Atlassian-Webhook-Identifier: {e}")))?,
        None => {
            let digest = hex::encode(Sha256::digest(verified.bytes()));
            DeliveryId::parse(&format!("jira-sha256-{}", &digest[..32]))
                .map_err(|e| IngestError::BadRequest(e.to_string()))?
        }
    };
    let document = json_document(verified, encoding)?;
    let head: JiraHead = serde_json::from_str(document.get())
        .map_err(|e| IngestError::BadRequest(format!("malformed JSON: {e}")))?;
    let event = head
        .webhook_event
        .filter(|e| !e.is_empty())
        .ok_or_else(|| IngestError::BadRequest("Jira payload has no webhookEvent".into()))?;
    if !state.settings.filters.wants_jira(&event) {
        return Ok(HttpResponse::Ok().json(serde_json::json!({"status": "ignored"})));
    }
    let envelope = Envelope::new(
        Source::Jira,
        event.clone(),
        head.issue_event_type_name,
        delivery.clone(),
        kept_headers(&req, JIRA_HEADERS),
        document,
    );
    let stored = state.enqueuer.enqueue(envelope).await?;
    tracing::info!(source = "jira", delivery = %delivery, event = %event, "event queued");
    Ok(queued(stored, &delivery))
}
