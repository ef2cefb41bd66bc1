//! The webhook routes. Order of checks, chosen so that an unauthenticated caller learns nothing
//! about the payload and costs as little as possible: content type (415) → declared length within
//! the cap (413) → a signature header present and well-formed (401, before any body byte is read)
//! → the body within the cap, in time, HMAC computed as it streams (413 / 408 / 503 busy) →
//! signature over the raw bytes (401) → required headers (400) → JSON (400) → filter (200
//! ignored) → durable enqueue (202 / 503).

use std::collections::BTreeMap;

use actix_web::http::header::CONTENT_TYPE;
use actix_web::{HttpRequest, HttpResponse, web};
use bytes::Bytes;
use hookbridge_shared::envelope::{DeliveryId, JsonObject, OutgoingEnvelope, Source};
use hookbridge_shared::signature::{StreamingCheck, Verified};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use super::MAX_BODY_BYTES;
use super::body::{Body, read_capped};
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

/// How a request is being authenticated, decided from its headers before its body is read.
enum Gate {
    /// An HMAC over the body, computed as the body streams in.
    Hmac(StreamingCheck),
    /// A shared-secret header, already checked (it does not cover the body).
    SharedSecret,
    /// `HOOKBRIDGE_ALLOW_UNSIGNED=true` on a route without a secret.
    Unsigned,
}

impl Gate {
    /// Checks what the headers can tell: a route without a secret refuses at once; a missing or
    /// malformed signature header is refused before a byte of the body is read.
    fn open(
        auth: &RouteAuth,
        variable: &'static str,
        req: &HttpRequest,
        signature: &str,
    ) -> Result<Self, IngestError> {
        match auth {
            RouteAuth::Signed(secrets) => Ok(Gate::Hmac(secrets.start(header(req, signature))?)),
            RouteAuth::SignedOrSharedSecret(secrets) => match header(req, signature) {
                Some(hmac) => Ok(Gate::Hmac(secrets.start(Some(hmac))?)),
                None => {
                    secrets
                        .verify_shared_secret(header(req, "x-webhook-signature"), Bytes::new())?;
                    Ok(Gate::SharedSecret)
                }
            },
            RouteAuth::Unsigned => Ok(Gate::Unsigned),
            RouteAuth::Refuse => Err(IngestError::NoSecretConfigured { variable }),
        }
    }

    fn check(&mut self) -> Option<&mut StreamingCheck> {
        match self {
            Gate::Hmac(check) => Some(check),
            Gate::SharedSecret | Gate::Unsigned => None,
        }
    }

    /// The body, once its signature matched.
    fn close(self, body: Bytes) -> Result<Verified, IngestError> {
        match self {
            Gate::Hmac(check) => Ok(check.finish(body)?),
            Gate::SharedSecret | Gate::Unsigned => Ok(Verified::unsigned(body)),
        }
    }
}

/// The route's authentication, then the body: headers checked first, the body streamed through
/// the HMAC. The second value holds the body's share of the memory budget until dropped.
async fn read_signed(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
    auth: &RouteAuth,
    variable: &'static str,
    signature: &str,
) -> Result<(Verified, Body), IngestError> {
    let mut gate = Gate::open(auth, variable, req, signature)?;
    let body = read_capped(
        req,
        payload,
        MAX_BODY_BYTES,
        gate.check(),
        &state.body_budget,
    )
    .await?;
    let verified = gate.close(body.bytes.clone())?;
    Ok((verified, body))
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

/// The JSON document of the body (the body itself, or the `payload=` field of a form), checked to
/// be one JSON object, with the fields of `H` read in the same pass.
fn json_document<H: DeserializeOwned>(
    verified: Verified,
    encoding: BodyEncoding,
) -> Result<(JsonObject, H), IngestError> {
    let document = match encoding {
        BodyEncoding::Json => verified.into_bytes(),
        BodyEncoding::Form => {
            let fields: Vec<(String, String)> = serde_urlencoded::from_bytes(verified.bytes())
                .map_err(|e| IngestError::BadRequest(format!("malformed form body: {e}")))?;
            fields
                .into_iter()
                .find_map(|(k, v)| (k == "payload").then_some(Bytes::from(v)))
                .ok_or_else(|| IngestError::BadRequest("form body has no payload= field".into()))?
        }
    };
    JsonObject::parse(document).map_err(IngestError::BadRequest)
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
    let (verified, _held) = read_signed(
        &req,
        payload,
        &state,
        &state.settings.github,
        "GITHUB_WEBHOOK_SECRET",
        "x-hub-signature-256",
    )
    .await?;
    let event = required_header(&req, "x-github-event")?.to_owned();
    let delivery = DeliveryId::parse(required_header(&req, "x-github-delivery")?)
        .map_err(|e| IngestError::BadRequest(format!("X-GitHub-Delivery: {e}")))?;
    let (document, head) = json_document::<GithubHead>(verified, encoding)?;
    if event == "ping" {
        tracing::info!(delivery = %delivery, "GitHub ping");
        return Ok(HttpResponse::Ok().json(serde_json::json!({"status": "pong"})));
    }
    if !state.settings.filters.wants_github(&event) {
        tracing::debug!(delivery = %delivery, event = %event, "ignored by configuration");
        return Ok(HttpResponse::Ok().json(serde_json::json!({"status": "ignored"})));
    }
    let envelope = OutgoingEnvelope::new(
        Source::Github,
        event,
        head.action,
        delivery.clone(),
        kept_headers(&req, GITHUB_HEADERS),
        document,
    );
    let (event, action) = (envelope.head.event.clone(), envelope.head.action.clone());
    let stored = state.enqueuer.enqueue(envelope).await?;
    tracing::debug!(source = "github", delivery = %delivery, event = %event,
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
    let (verified, _held) = read_signed(
        &req,
        payload,
        &state,
        &state.settings.jira,
        "JIRA_WEBHOOK_SECRET",
        "x-hub-signature",
    )
    .await?;
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
    let (document, head) = json_document::<JiraHead>(verified, encoding)?;
    let event = head
        .webhook_event
        .filter(|e| !e.is_empty())
        .ok_or_else(|| IngestError::BadRequest("Jira payload has no webhookEvent".into()))?;
    if !state.settings.filters.wants_jira(&event) {
        return Ok(HttpResponse::Ok().json(serde_json::json!({"status": "ignored"})));
    }
    let envelope = OutgoingEnvelope::new(
        Source::Jira,
        event.clone(),
        head.issue_event_type_name,
        delivery.clone(),
        kept_headers(&req, JIRA_HEADERS),
        document,
    );
    let stored = state.enqueuer.enqueue(envelope).await?;
    tracing::debug!(source = "jira", delivery = %delivery, event = %event, "event queued");
    Ok(queued(stored, &delivery))
}
