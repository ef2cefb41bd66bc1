//! The dead letters: the list with each one's last error (paged in the queue), one with its
//! envelope and every failed attempt, and the same redrive and purge as `hookbridge dlq`,
//! audited the same way (as `admin`).

use std::future::Future;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use hookbridge_shared::queue::{QueueError, Quiet};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Chrome, PAGE_SIZE, PageQuery, Paging, error, respond, wants_json};
use crate::admin::AdminState;
use crate::dead_letters::{self, Listed, Shown};

/// Who the audit trail names for what the page does.
const ACTOR: &str = "admin";

#[derive(Debug, Clone, Serialize)]
pub struct DeadLetters {
    pub rows: Vec<Listed>,
    pub total: u64,
    #[serde(flatten)]
    pub paging: Paging,
}

#[derive(Template)]
#[template(path = "admin/dead_letters.html")]
struct ListPage<'a> {
    chrome: Chrome,
    data: &'a DeadLetters,
}

fn queue_error(req: &HttpRequest, chrome: Chrome, e: &QueueError) -> HttpResponse {
    match e {
        QueueError::NotFound(id) => error(
            req,
            chrome,
            StatusCode::NOT_FOUND,
            "not_found",
            &format!("no dead letter with id {id} (redriven or purged meanwhile?)"),
        ),
        QueueError::Rejected(reason) => {
            error(req, chrome, StatusCode::CONFLICT, "rejected", reason)
        }
        QueueError::Unavailable(reason) => error(
            req,
            chrome,
            StatusCode::SERVICE_UNAVAILABLE,
            "queue_unavailable",
            &format!("the queue: {reason}"),
        ),
    }
}

/// `GET /dead-letters?page=`.
pub async fn list(
    req: HttpRequest,
    state: web::Data<AdminState>,
    query: web::Query<PageQuery>,
    chrome: Chrome,
) -> HttpResponse {
    let total = match state.queue.depth().await {
        Ok(depth) => depth.dead_letters.unwrap_or(0),
        Err(e) => return queue_error(&req, chrome, &e),
    };
    let paging = Paging::of(query.page(), usize::try_from(total).unwrap_or(usize::MAX));
    let page = match state
        .queue
        .dead_letters_page(paging.offset, PAGE_SIZE)
        .await
    {
        Ok(page) => page,
        Err(e) => return queue_error(&req, chrome, &e),
    };
    let mut rows = Vec::with_capacity(page.len());
    for dead_letter in &page {
        rows.push(Listed::new(dead_letter, Some(&state.store)).await);
    }
    let data = DeadLetters {
        rows,
        total,
        paging,
    };
    respond(
        &req,
        &data,
        ListPage {
            chrome,
            data: &data,
        },
    )
}

#[derive(Template)]
#[template(path = "admin/dead_letter.html")]
struct OnePage<'a> {
    chrome: Chrome,
    data: &'a Shown,
    envelope: String,
}

/// `GET /dead-letters/{id}`.
pub async fn show(
    req: HttpRequest,
    state: web::Data<AdminState>,
    path: web::Path<String>,
    chrome: Chrome,
) -> HttpResponse {
    let mut shown = match dead_letters::show(&state.queue, Some(&state.store), &path).await {
        Ok(shown) => shown,
        Err(e) => return queue_error(&req, chrome, &e),
    };
    redact(&mut shown.envelope);
    let envelope = serde_json::to_string_pretty(&shown.envelope).unwrap_or_default();
    respond(
        &req,
        &shown,
        OnePage {
            chrome,
            data: &shown,
            envelope,
        },
    )
}

/// Header names never shown, should an envelope ever carry one (envelopes keep no signature,
/// see the README's "Security"; this is the page's own guard).
const HIDDEN_HEADERS: [&str; 5] = [
    "authorization",
    "cookie",
    "x-hub-signature",
    "x-hub-signature-256",
    "x-atlassian-token",
];

fn redact(envelope: &mut Value) {
    if let Some(headers) = envelope.get_mut("headers").and_then(Value::as_object_mut) {
        for (name, value) in headers.iter_mut() {
            if HIDDEN_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
                *value = Value::String("[hidden]".into());
            }
        }
    }
}

/// The form fields of an action.
#[derive(Debug, Default, Deserialize)]
pub struct ActionForm {
    pub csrf: Option<String>,
    pub confirm: Option<String>,
}

/// Answers an action: JSON for scripts, else back to the list with what was done.
fn done(req: &HttpRequest, result: Value, notice: &str) -> HttpResponse {
    if wants_json(req) {
        return HttpResponse::Ok().json(result);
    }
    let location = format!(
        "/dead-letters?done={}",
        url::form_urlencoded::byte_serialize(notice.as_bytes()).collect::<String>()
    );
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .finish()
}

/// Does `work` when the request may act (the page's CSRF token, the same site), and answers
/// with what `answer` makes of its result: JSON for scripts, the list with a notice for browsers.
async fn act<T>(
    req: &HttpRequest,
    state: &AdminState,
    form: &ActionForm,
    chrome: Chrome,
    work: impl Future<Output = Result<T, QueueError>>,
    answer: impl FnOnce(T) -> (Value, String),
) -> HttpResponse {
    if !state.access.may_act(req, form.csrf.as_deref()) {
        return error(
            req,
            chrome,
            StatusCode::FORBIDDEN,
            "csrf",
            "the form is stale or came from another site: reload the page and try again",
        );
    }
    match work.await {
        Ok(result) => {
            let (json, notice) = answer(result);
            done(req, json, &notice)
        }
        Err(e) => queue_error(req, chrome, &e),
    }
}

/// `POST /dead-letters/{id}/redrive`.
pub async fn redrive(
    req: HttpRequest,
    state: web::Data<AdminState>,
    path: web::Path<String>,
    form: web::Form<ActionForm>,
    chrome: Chrome,
) -> HttpResponse {
    let id = path.into_inner();
    let work = dead_letters::redrive(&state.queue, &state.audit, ACTOR, &id);
    act(&req, &state, &form, chrome, work, |delivery| {
        (
            json!({"redriven": id, "delivery": delivery}),
            format!("Redrove {id}: back on the main queue."),
        )
    })
    .await
}

/// `POST /dead-letters/redrive-all`.
pub async fn redrive_all(
    req: HttpRequest,
    state: web::Data<AdminState>,
    form: web::Form<ActionForm>,
    chrome: Chrome,
) -> HttpResponse {
    let work = dead_letters::redrive_all(&state.queue, &state.audit, ACTOR, None, &Quiet);
    act(&req, &state, &form, chrome, work, |moved| {
        (
            json!({"moved": moved.moved, "failed": moved.failed}),
            format!(
                "Redrive: {} moved back to the main queue, {} failed.",
                moved.moved, moved.failed
            ),
        )
    })
    .await
}

/// `POST /dead-letters/purge` (the form's `confirm` must say `purge`).
pub async fn purge(
    req: HttpRequest,
    state: web::Data<AdminState>,
    form: web::Form<ActionForm>,
    chrome: Chrome,
) -> HttpResponse {
    if form.confirm.as_deref().map(str::trim) != Some("purge") {
        return error(
            &req,
            chrome,
            StatusCode::BAD_REQUEST,
            "not_confirmed",
            "purge deletes every dead letter for good: type purge to confirm",
        );
    }
    let work = dead_letters::purge(&state.queue, &state.audit, ACTOR);
    act(&req, &state, &form, chrome, work, |count| {
        (
            json!({"deleted": count}),
            format!("Purge: {count} dead letter(s) deleted."),
        )
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_headers_are_never_shown() {
        let mut envelope =
            json!({"headers": {"X-Hub-Signature-256": "sha256=abc", "x-github-event": "issues"}});
        redact(&mut envelope);
        assert_eq!(envelope["headers"]["X-Hub-Signature-256"], "[hidden]");
        assert_eq!(envelope["headers"]["x-github-event"], "issues");
    }
}
