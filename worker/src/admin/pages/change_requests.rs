//! The Change Requests: the ones most recently changed, and one CR in full — status, approvers
//! with their roles, the signature (present, and valid against the trusted keys when they are
//! configured), budget used, status history, and the deployments waiting on it and why.

use std::collections::HashSet;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use chrono::Utc;
use serde::Serialize;

use super::deliveries::unavailable;
use super::{Chrome, error, respond};
use crate::admin::AdminState;
use crate::change_requests::record::{CrKey, CrRecord};
use crate::change_requests::transition::HistoryEntry;
use crate::change_requests::{HISTORY_KEPT, Usage};
use crate::deployments::WaitingDeployment;
use crate::pki::approval;
use crate::store::StoreError;
use crate::store::keys::{CrHistory, CrIndex, CrRecordKey, CrUsage, DeploymentsWaiting};

/// How many CRs the list shows.
const LISTED: usize = 200;
/// How many of the index's newest entries are read to find them (repeats included).
const INDEX_SCAN: usize = 2_000;

/// `approved`, `rejected`, `deleted` or `pending`.
fn state_of(state: &AdminState, record: &CrRecord) -> &'static str {
    if record.deleted {
        "deleted"
    } else if state.statuses.is_approved(&record.status) {
        "approved"
    } else if state.statuses.is_rejected(&record.status) {
        "rejected"
    } else {
        "pending"
    }
}

fn signature_of(state: &AdminState, record: &CrRecord) -> String {
    match (&record.signature, &state.trusted) {
        (None, _) => match &record.signature_problem {
            Some(problem) => format!("none ({problem})"),
            None => "none".into(),
        },
        (Some(signature), Some(trusted)) => {
            match approval::verify(signature, record.key.as_str(), trusted, Utc::now()) {
                Ok(_) => "present, valid".into(),
                Err(why) => format!("present, INVALID: {why}"),
            }
        }
        (Some(_), None) => {
            "present (not checked: ENFORCE_PKI_VALIDATION is off, no trusted keys)".into()
        }
    }
}

fn budget_of(record: &CrRecord, usage: Option<&Usage>) -> String {
    let used = usage.map_or(0, |u| u.used_tokens);
    match record.budget_tokens {
        Some(budget) => {
            let percent = usage.and_then(|u| u.percent_of(budget)).unwrap_or(0.0);
            format!("{used} of {budget} tokens ({percent:.0}%)")
        }
        None if used > 0 => format!("{used} tokens (no budget set)"),
        None => "no budget set".into(),
    }
}

/// One row of the list.
#[derive(Debug, Clone, Serialize)]
pub struct CrRow {
    pub key: String,
    pub summary: Option<String>,
    pub status: String,
    pub state: &'static str,
    pub approvers: usize,
    pub signature: String,
    pub budget: String,
    pub waiting: usize,
    pub updated_at: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ChangeRequestList {
    pub rows: Vec<CrRow>,
    #[serde(skip)]
    pub ttl: String,
}

#[derive(Template)]
#[template(path = "admin/change_requests.html")]
struct ListPage<'a> {
    chrome: Chrome,
    data: &'a ChangeRequestList,
}

async fn rows(state: &AdminState) -> Result<Vec<CrRow>, StoreError> {
    let mut seen = HashSet::new();
    let mut rows = Vec::new();
    for key in state.store.list_newest(&CrIndex, 0, INDEX_SCAN).await? {
        if rows.len() >= LISTED {
            break;
        }
        if !seen.insert(key.clone()) {
            continue;
        }
        // Records expire; an index entry of one that has is skipped.
        let Some(record) = state.store.read(&CrRecordKey(&key)).await? else {
            continue;
        };
        let usage = state.store.read(&CrUsage(&key)).await?;
        let waiting = state
            .store
            .read(&DeploymentsWaiting(&key))
            .await?
            .map_or(0, |w| w.len());
        rows.push(CrRow {
            key: key.to_string(),
            summary: record.summary.clone(),
            status: record.status.clone(),
            state: state_of(state, &record),
            approvers: record.approvers.len(),
            signature: signature_of(state, &record),
            budget: budget_of(&record, usage.as_ref()),
            waiting,
            updated_at: record.updated_at.to_rfc3339(),
        });
    }
    Ok(rows)
}

/// `GET /change-requests`.
pub async fn list(req: HttpRequest, state: web::Data<AdminState>, chrome: Chrome) -> HttpResponse {
    let rows = match rows(&state).await {
        Ok(rows) => rows,
        Err(e) => return unavailable(&req, chrome, &e.to_string()),
    };
    let data = ChangeRequestList {
        rows,
        ttl: humantime::format_duration(state.cr_ttl).to_string(),
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

#[derive(Debug, Clone, Serialize)]
pub struct ChangeRequest {
    pub record: CrRecord,
    pub state: &'static str,
    pub signature: String,
    pub budget: String,
    pub usage: Option<Usage>,
    pub history: Vec<HistoryEntry>,
    pub waiting: Vec<WaitingDeployment>,
    /// Why the waiting deployments wait, in words.
    pub why_waiting: String,
}

#[derive(Template)]
#[template(path = "admin/change_request.html")]
struct OnePage<'a> {
    chrome: Chrome,
    data: &'a ChangeRequest,
}

/// `GET /change-requests/{key}`.
pub async fn show(
    req: HttpRequest,
    state: web::Data<AdminState>,
    path: web::Path<String>,
    chrome: Chrome,
) -> HttpResponse {
    let key = match CrKey::parse(&path) {
        Ok(key) => key,
        Err(why) => return error(&req, chrome, StatusCode::BAD_REQUEST, "bad_key", &why),
    };
    let found = async {
        let Some(record) = state.store.read(&CrRecordKey(&key)).await? else {
            return Ok(None);
        };
        let usage = state.store.read(&CrUsage(&key)).await?;
        let history = state.store.list(&CrHistory(&key), 0, HISTORY_KEPT).await?;
        let waiting = state
            .store
            .read(&DeploymentsWaiting(&key))
            .await?
            .unwrap_or_default();
        Ok::<_, StoreError>(Some((record, usage, history, waiting)))
    }
    .await;
    let (record, usage, mut history, waiting) = match found {
        Ok(Some(found)) => found,
        Ok(None) => {
            return error(
                &req,
                chrome,
                StatusCode::NOT_FOUND,
                "not_found",
                &format!(
                    "{key} is not in the store (never seen, or its record expired; `hookbridge cr status {key}` reads Jira)"
                ),
            );
        }
        Err(e) => return unavailable(&req, chrome, &e.to_string()),
    };
    history.sort_by_key(|h| h.at);
    let cr_state = state_of(&state, &record);
    let why_waiting = match cr_state {
        "pending" => format!(
            "{} is {:?}, not approved (approved statuses: {})",
            record.key,
            record.status,
            state.statuses.approved.join(", ")
        ),
        _ => format!(
            "{} is {}: the next event about it (or the periodic re-check) answers them",
            record.key, record.status
        ),
    };
    let data = ChangeRequest {
        signature: signature_of(&state, &record),
        budget: budget_of(&record, usage.as_ref()),
        state: cr_state,
        record,
        usage,
        history,
        waiting,
        why_waiting,
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
