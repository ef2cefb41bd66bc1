//! The operator's pages: each one's data (serialisable: the JSON answer) and its template (the
//! HTML answer), chosen by the request's `Accept`.
//!
//! # Layout
//! - [`overview`]: figures, the last hour's charts, dependency health.
//! - [`deliveries`]: the delivery log and one delivery's journey.
//! - [`dead_letters`]: the dead-letter queue, one dead letter, redrive and purge.
//! - [`change_requests`]: recent CRs, one CR with approvers, signature, budget, history and the
//!   deployments waiting on it.
//! - [`audit`]: `audit verify`'s result.

pub mod audit;
pub mod change_requests;
pub mod dead_letters;
pub mod deliveries;
pub mod overview;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;
use serde::Serialize;
use serde_json::json;

/// Rows per page of a list.
pub const PAGE_SIZE: usize = 50;

/// What every page's frame shows: the navigation, the CSRF token its forms carry, a notice.
#[derive(Debug, Clone)]
pub struct Chrome {
    /// Which navigation entry is this page's.
    pub active: &'static str,
    pub csrf: String,
    /// Whether a token (and so a log-out button) is in use.
    pub logged_in: bool,
    /// What the last action did (from the `done` query parameter of its redirect).
    pub notice: Option<String>,
    pub version: &'static str,
    pub now: String,
}

/// Whether the caller asked for JSON (`Accept: application/json` before or without HTML).
pub fn wants_json(req: &HttpRequest) -> bool {
    let accept = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    match (accept.find("application/json"), accept.find("text/html")) {
        (Some(json), Some(html)) => json < html,
        (Some(_), None) => true,
        _ => false,
    }
}

/// The page: `data` as JSON when asked, else `page` rendered.
pub fn respond<D: Serialize, P: Template>(req: &HttpRequest, data: &D, page: P) -> HttpResponse {
    if wants_json(req) {
        return HttpResponse::Ok().json(data);
    }
    html(StatusCode::OK, &page)
}

/// `page` rendered with `status`.
pub fn html<P: Template>(status: StatusCode, page: &P) -> HttpResponse {
    match page.render() {
        Ok(body) => HttpResponse::build(status)
            .insert_header((header::CONTENT_TYPE, "text/html; charset=utf-8"))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .body(body),
        Err(e) => {
            tracing::error!(error = %e, "an admin page could not be rendered");
            HttpResponse::InternalServerError()
                .json(json!({"error": "render_failed", "detail": "the page could not be rendered"}))
        }
    }
}

#[derive(Template)]
#[template(path = "admin/error.html")]
struct ErrorPage<'a> {
    chrome: Chrome,
    title: &'a str,
    detail: &'a str,
}

/// An error answer: `{"error","detail"}` for JSON callers, a page for browsers.
pub fn error(
    req: &HttpRequest,
    chrome: Chrome,
    status: StatusCode,
    code: &str,
    detail: &str,
) -> HttpResponse {
    if wants_json(req) {
        return HttpResponse::build(status).json(json!({"error": code, "detail": detail}));
    }
    let title = status.canonical_reason().unwrap_or("Error");
    html(
        status,
        &ErrorPage {
            chrome,
            title,
            detail,
        },
    )
}

/// Which page of `total` rows `page` (1-based) is, and its neighbours.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Paging {
    pub page: usize,
    pub pages: usize,
    pub previous: Option<usize>,
    pub next: Option<usize>,
    /// Rows before this page.
    #[serde(skip)]
    pub offset: usize,
}

impl Paging {
    pub fn of(page: Option<usize>, total: usize) -> Self {
        let pages = total.div_ceil(PAGE_SIZE).max(1);
        let page = page.unwrap_or(1).clamp(1, pages);
        Self {
            page,
            pages,
            previous: (page > 1).then(|| page - 1),
            next: (page < pages).then(|| page + 1),
            offset: (page - 1) * PAGE_SIZE,
        }
    }
}

/// A page number from a query (`?page=N`), ignoring what is not one.
#[derive(Debug, Default, serde::Deserialize)]
pub struct PageQuery {
    pub page: Option<String>,
    pub outcome: Option<String>,
    pub done: Option<String>,
}

impl PageQuery {
    pub fn page(&self) -> Option<usize> {
        self.page.as_deref().and_then(|p| p.parse().ok())
    }
}
