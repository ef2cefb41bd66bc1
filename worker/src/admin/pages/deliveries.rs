//! The deliveries: the recent ones, newest first, filtered by outcome in the store; and one
//! delivery's journey — every audit record about it (received, accepted, each Jira call, the
//! result) and its failed attempts.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Serialize;

use super::{Chrome, PAGE_SIZE, PageQuery, Paging, error, respond};
use crate::admin::AdminState;
use crate::deliveries::{self, DeliveryOutcome, DeliveryRow, JourneyStep};
use crate::failures::{self, FailedAttempt};

#[derive(Debug, Clone, Serialize)]
pub struct Deliveries {
    pub rows: Vec<DeliveryRow>,
    pub total: usize,
    pub outcome: Option<String>,
    pub outcomes: Vec<String>,
    #[serde(flatten)]
    pub paging: Paging,
    #[serde(skip)]
    pub jira_browse: Option<String>,
}

#[derive(Template)]
#[template(path = "admin/deliveries.html")]
struct ListPage<'a> {
    chrome: Chrome,
    data: &'a Deliveries,
}

/// `GET /deliveries?outcome=&page=`.
pub async fn list(
    req: HttpRequest,
    state: web::Data<AdminState>,
    query: web::Query<PageQuery>,
    chrome: Chrome,
) -> HttpResponse {
    let outcome = match query.outcome.as_deref().filter(|o| !o.is_empty()) {
        None => None,
        Some(text) => match DeliveryOutcome::parse(text) {
            Some(outcome) => Some(outcome),
            None => {
                return error(
                    &req,
                    chrome,
                    StatusCode::BAD_REQUEST,
                    "bad_outcome",
                    "outcome must be done, ignored or dead_lettered",
                );
            }
        },
    };
    // The total first, then the page it says exists.
    let total = match deliveries::page(&state.store, outcome, 0, 0).await {
        Ok((_, total)) => total,
        Err(e) => return unavailable(&req, chrome, &e.to_string()),
    };
    let paging = Paging::of(query.page(), total);
    let rows = match deliveries::page(&state.store, outcome, paging.offset, PAGE_SIZE).await {
        Ok((rows, _)) => rows,
        Err(e) => return unavailable(&req, chrome, &e.to_string()),
    };
    let data = Deliveries {
        rows,
        total,
        outcome: outcome.map(|o| o.as_str().to_owned()),
        outcomes: DeliveryOutcome::ALL
            .iter()
            .map(|o| o.as_str().to_owned())
            .collect(),
        paging,
        jira_browse: state.jira_browse.clone(),
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

/// The store could not be read.
pub fn unavailable(req: &HttpRequest, chrome: Chrome, why: &str) -> HttpResponse {
    error(
        req,
        chrome,
        StatusCode::SERVICE_UNAVAILABLE,
        "store_unavailable",
        &format!("the store cannot be read: {why}"),
    )
}

#[derive(Debug, Clone, Serialize)]
pub struct Delivery {
    pub delivery: String,
    pub journey: Vec<JourneyStep>,
    pub failures: Vec<FailedAttempt>,
}

#[derive(Template)]
#[template(path = "admin/delivery.html")]
struct OnePage<'a> {
    chrome: Chrome,
    data: &'a Delivery,
}

/// `GET /deliveries/{id}`.
pub async fn show(
    req: HttpRequest,
    state: web::Data<AdminState>,
    path: web::Path<String>,
    chrome: Chrome,
) -> HttpResponse {
    let delivery = path.into_inner();
    let journey = match deliveries::journey(&state.store, &delivery).await {
        Ok(journey) => journey,
        Err(e) => return unavailable(&req, chrome, &e.to_string()),
    };
    let failures = failures::history_of_delivery(&state.store, &delivery)
        .await
        .unwrap_or_default();
    if journey.is_empty() && failures.is_empty() && super::wants_json(&req) {
        return error(
            &req,
            chrome,
            StatusCode::NOT_FOUND,
            "not_found",
            &format!("nothing is recorded about delivery {delivery}"),
        );
    }
    let data = Delivery {
        delivery,
        journey,
        failures,
    };
    respond(
        &req,
        &data,
        OnePage {
            chrome,
            data: &data,
        },
    )
}
