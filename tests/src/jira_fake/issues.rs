//! Issues as Jira Cloud REST v3 writes and reads them: create (201 with `id`, `key`, `self`),
//! edit (204; `fields` and `update.labels`, a label change becoming searchable only after
//! `search_lag`), get (only the `fields=` asked for), the To Do → In Progress → Done workflow with
//! its transitions and resolutions, and assignment.
//!
//! Separate from `mod.rs`, which only routes a request here, and from `fields.rs`, which decides
//! whether Jira accepts the fields at all.

use std::collections::BTreeMap;
use std::time::Instant;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::fields::{check_fields, label_operations, strings};
use super::{
    ACCOUNTS, Data, FakeConfig, FakeIssue, RESOLUTIONS, jira_error, json_answer, not_found,
    webhooks,
};

pub(super) fn create_issue(
    data: &mut Data,
    config: &FakeConfig,
    base: &str,
    request: &Value,
) -> Response {
    let fields = &request["fields"];
    if !fields.is_object() {
        return jira_error(StatusCode::BAD_REQUEST, &["fields are required"], json!({}));
    }
    if let Err(errors) = check_fields(fields, config, true) {
        return jira_error(StatusCode::BAD_REQUEST, &[], errors);
    }
    let project = fields["project"]["key"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let number = data.next_number.entry(project.clone()).or_insert(0);
    *number += 1;
    let key = format!("{project}-{number}");
    data.next_id += 1;
    let id = 10_000 + data.next_id;
    let labels = strings(&fields["labels"]);
    let now = Instant::now();
    data.issues.insert(
        key.clone(),
        FakeIssue {
            id,
            key: key.clone(),
            project,
            issue_type: fields["issuetype"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            summary: fields["summary"].as_str().unwrap_or_default().to_owned(),
            description: fields["description"].clone(),
            labels: labels.clone(),
            components: fields["components"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| c["name"].as_str().map(str::to_owned))
                .collect(),
            priority: fields["priority"]["name"].as_str().map(str::to_owned),
            status: "To Do".into(),
            resolution: None,
            assignee: None,
            remote_links: Vec::new(),
            comments: Vec::new(),
            custom_fields: BTreeMap::new(),
            updated: data.clock.tick(),
            created_at: now,
            search_history: vec![(now + config.search_lag, labels)],
        },
    );
    json_answer(
        StatusCode::CREATED,
        json!({"id": id.to_string(), "key": key, "self": format!("{base}/rest/api/3/issue/{id}")}),
    )
}

pub(super) fn edit_issue(
    data: &mut Data,
    config: &FakeConfig,
    key: &str,
    request: &Value,
) -> Response {
    let fields = &request["fields"];
    if let Err(errors) = check_fields(fields, config, false) {
        return jira_error(StatusCode::BAD_REQUEST, &[], errors);
    }
    let label_ops = match request.pointer("/update/labels") {
        None => Vec::new(),
        Some(_) if fields.get("labels").is_some() => {
            return jira_error(
                StatusCode::BAD_REQUEST,
                &[],
                json!({"labels": "Field 'labels' cannot be set and updated in the same request."}),
            );
        }
        Some(update) => match label_operations(update) {
            Ok(ops) => ops,
            Err(e) => return jira_error(StatusCode::BAD_REQUEST, &[], json!({"labels": e})),
        },
    };
    let Some(issue) = data.issues.get_mut(key) else {
        return not_found();
    };
    if let Some(summary) = fields["summary"].as_str() {
        issue.summary = summary.to_owned();
    }
    if fields.get("description").is_some() {
        issue.description = fields["description"].clone();
    }
    let mut labels_changed = false;
    if fields.get("labels").is_some() {
        issue.labels = strings(&fields["labels"]);
        labels_changed = true;
    }
    for (verb, value) in label_ops {
        let label = value.as_str().unwrap_or_default().to_owned();
        match verb {
            "add" if !issue.labels.contains(&label) => issue.labels.push(label),
            "remove" => issue.labels.retain(|l| *l != label),
            "set" => issue.labels = strings(value),
            _ => {}
        }
        labels_changed = true;
    }
    if labels_changed {
        issue
            .search_history
            .push((Instant::now() + config.search_lag, issue.labels.clone()));
    }
    StatusCode::NO_CONTENT.into_response()
}

/// `GET /rest/api/3/issue/{key}`: only the fields asked for with `fields=` (all without it, or
/// with `*all`), as Jira answers; custom fields that are not set are `null`.
pub(super) fn issue_json(issue: &FakeIssue, base: &str, wanted: Option<&str>) -> Value {
    let mut fields = serde_json::Map::new();
    fields.insert("summary".into(), json!(issue.summary));
    fields.insert("description".into(), issue.description.clone());
    fields.insert("labels".into(), json!(issue.labels));
    fields.insert(
        "status".into(),
        json!({"name": issue.status, "id": webhooks::status_id(&issue.status)}),
    );
    fields.insert("issuetype".into(), json!({"name": issue.issue_type}));
    fields.insert(
        "assignee".into(),
        issue
            .assignee
            .as_ref()
            .map_or(Value::Null, |id| json!({"accountId": id})),
    );
    fields.insert(
        "resolution".into(),
        issue
            .resolution
            .as_ref()
            .map_or(Value::Null, |name| json!({"name": name})),
    );
    fields.insert("project".into(), json!({"key": issue.project}));
    fields.insert("updated".into(), json!(webhooks::jira_time(issue.updated)));
    for (id, value) in &issue.custom_fields {
        fields.insert(id.clone(), value.clone());
    }
    if let Some(wanted) = wanted.filter(|w| !w.split(',').any(|f| f.trim() == "*all")) {
        let wanted: Vec<&str> = wanted.split(',').map(str::trim).collect();
        fields.retain(|name, _| wanted.contains(&name.as_str()));
        for name in wanted.iter().filter(|n| n.starts_with("customfield_")) {
            fields.entry((*name).to_owned()).or_insert(Value::Null);
        }
    }
    json!({
        "id": issue.id.to_string(),
        "key": issue.key,
        "self": format!("{base}/rest/api/3/issue/{}", issue.id),
        "fields": fields,
    })
}

const WORKFLOW: &[(&str, &str)] = &[("11", "To Do"), ("21", "In Progress"), ("31", "Done")];

pub(super) fn transitions_from(status: &str) -> Vec<Value> {
    WORKFLOW
        .iter()
        .filter(|(_, to)| *to != status)
        .map(|(id, to)| json!({"id": id, "name": to, "to": {"name": to}}))
        .collect()
}

pub(super) fn transition(data: &mut Data, key: &str, request: &Value) -> Response {
    let id = request["transition"]["id"].as_str().unwrap_or_default();
    let Some(issue) = data.issues.get_mut(key) else {
        return not_found();
    };
    let Some((_, to)) = WORKFLOW
        .iter()
        .find(|(tid, to)| *tid == id && *to != issue.status)
    else {
        return jira_error(
            StatusCode::BAD_REQUEST,
            &[&format!(
                "Transition id '{id}' is not valid for this issue."
            )],
            json!({}),
        );
    };
    let resolution = match request["fields"].get("resolution") {
        None => None,
        Some(_) if *to != "Done" => {
            return jira_error(
                StatusCode::BAD_REQUEST,
                &[],
                json!({"resolution": "Field 'resolution' cannot be set. It is not on the appropriate screen, or unknown."}),
            );
        }
        Some(resolution) => match resolution["name"]
            .as_str()
            .and_then(|name| RESOLUTIONS.iter().find(|r| **r == name))
        {
            Some(name) => Some((*name).to_owned()),
            None => {
                return jira_error(
                    StatusCode::BAD_REQUEST,
                    &[],
                    json!({"resolution": "Could not find valid 'id' or 'name' in resolution object."}),
                );
            }
        },
    };
    if *to != "Done" {
        issue.resolution = None;
    } else if resolution.is_some() {
        issue.resolution = resolution;
    }
    issue.status = (*to).to_owned();
    StatusCode::NO_CONTENT.into_response()
}

/// `PUT /rest/api/3/issue/{key}/assignee`: `{"accountId": id}` assigns, `null` unassigns (204);
/// no `accountId` member, or an account the site does not have, is 400.
pub(super) fn assign(data: &mut Data, key: &str, request: &Value) -> Response {
    let Some(account) = request.get("accountId") else {
        return jira_error(
            StatusCode::BAD_REQUEST,
            &[],
            json!({"assignee": "accountId is required to assign an issue."}),
        );
    };
    let assignee = match account {
        Value::Null => None,
        Value::String(id) if ACCOUNTS.contains(&id.as_str()) => Some(id.clone()),
        other => {
            let shown = other
                .as_str()
                .map_or_else(|| other.to_string(), str::to_owned);
            return jira_error(
                StatusCode::BAD_REQUEST,
                &[],
                json!({"assignee": format!("User '{shown}' cannot be assigned issues.")}),
            );
        }
    };
    let updated = data.clock.tick();
    let Some(issue) = data.issues.get_mut(key) else {
        return not_found();
    };
    issue.assignee = assignee;
    issue.updated = updated;
    StatusCode::NO_CONTENT.into_response()
}
