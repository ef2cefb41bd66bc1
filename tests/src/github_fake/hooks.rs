//! The repository-webhook delivery routes of the GitHub fake (see the module's doc comment):
//! "List deliveries for a repository webhook" (newest first, cursor paging) and "Redeliver a
//! delivery for a repository webhook".

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::{Data, Shared, error, query_param};

/// One delivery attempt, as the list shows it.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub id: u64,
    pub guid: String,
    pub delivered_at: DateTime<Utc>,
    pub redelivery: bool,
    pub status_code: u16,
    pub event: String,
    pub action: Option<String>,
}

impl Delivery {
    /// An `issues.opened` delivery answered `status_code`, `age` ago.
    pub fn new(id: u64, guid: &str, age: Duration, status_code: u16) -> Self {
        Self {
            id,
            guid: guid.to_owned(),
            delivered_at: Utc::now() - chrono::Duration::from_std(age).expect("age"),
            redelivery: false,
            status_code,
            event: "issues".into(),
            action: Some("opened".into()),
        }
    }

    /// GitHub's `status`: `OK` for a 2xx answer, else a description.
    fn status(&self) -> String {
        match self.status_code {
            200..=299 => "OK".into(),
            0 => "timed out".into(),
            code => format!("Invalid HTTP Response: {code}"),
        }
    }

    fn json(&self) -> Value {
        json!({
            "id": self.id,
            "guid": self.guid,
            "delivered_at": self.delivered_at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            "redelivery": self.redelivery,
            "duration": 0.27,
            "status": self.status(),
            "status_code": self.status_code,
            "event": self.event,
            "action": self.action,
            "installation_id": null,
            "repository_id": 456,
        })
    }
}

pub(super) fn list(shared: &Shared, data: &Data, repo: &str, hook: u64, uri: &Uri) -> Response {
    let Some(deliveries) = data.hooks.get(&(repo.to_lowercase(), hook)) else {
        return error(
            StatusCode::NOT_FOUND,
            "Not Found",
            "rest/repos/webhooks#list-deliveries-for-a-repository-webhook",
        );
    };
    let per_page = query_param(uri, "per_page")
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(30)
        .clamp(1, 100);
    let start = match query_param(uri, "cursor") {
        None => 0,
        Some(cursor) => {
            let Some(position) = cursor
                .strip_prefix("v1_")
                .and_then(|id| id.parse::<u64>().ok())
                .and_then(|id| deliveries.iter().position(|d| d.id == id))
            else {
                return error(
                    StatusCode::BAD_REQUEST,
                    "Bad Request",
                    "rest/repos/webhooks#list-deliveries-for-a-repository-webhook",
                );
            };
            position
        }
    };
    let page: Vec<Value> = deliveries
        .iter()
        .skip(start)
        .take(per_page)
        .map(Delivery::json)
        .collect();
    let mut response = (
        StatusCode::OK,
        [("content-type", "application/json; charset=utf-8")],
        Value::Array(page).to_string(),
    )
        .into_response();
    let path = format!("{}/repos/{repo}/hooks/{hook}/deliveries", shared.base);
    let mut links = Vec::new();
    if let Some(next) = deliveries.get(start + per_page) {
        links.push(format!(
            "<{path}?per_page={per_page}&cursor=v1_{}>; rel=\"next\"",
            next.id
        ));
    }
    if start > 0 {
        links.push(format!("<{path}?per_page={per_page}>; rel=\"first\""));
    }
    if !links.is_empty()
        && let Ok(value) = HeaderValue::from_str(&links.join(", "))
    {
        response.headers_mut().insert("link", value);
    }
    response
}

pub(super) fn redeliver(
    shared: &Shared,
    data: &mut Data,
    repo: &str,
    hook: u64,
    delivery: u64,
) -> Response {
    let key = (repo.to_lowercase(), hook);
    if shared.config.read_only && data.hooks.contains_key(&key) {
        return error(
            StatusCode::FORBIDDEN,
            "Resource not accessible by personal access token",
            "rest/repos/webhooks#redeliver-a-delivery-for-a-repository-webhook",
        );
    }
    let Some(original) = data
        .hooks
        .get(&key)
        .and_then(|d| d.iter().find(|d| d.id == delivery))
        .cloned()
    else {
        return error(
            StatusCode::NOT_FOUND,
            "Not Found",
            "rest/repos/webhooks#redeliver-a-delivery-for-a-repository-webhook",
        );
    };
    data.redelivered.push(delivery);
    data.next_id += 1;
    let attempt = Delivery {
        id: data.next_id,
        delivered_at: Utc::now(),
        redelivery: true,
        status_code: if shared.config.redeliveries_succeed {
            200
        } else {
            502
        },
        ..original
    };
    if let Some(list) = data.hooks.get_mut(&key) {
        list.insert(0, attempt);
    }
    (
        StatusCode::ACCEPTED,
        [("content-type", "application/json; charset=utf-8")],
        "{}",
    )
        .into_response()
}
