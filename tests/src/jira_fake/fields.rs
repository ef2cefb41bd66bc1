//! Jira's validation of issue fields, shared by create (`POST /rest/api/3/issue`) and edit
//! (`PUT /rest/api/3/issue/{key}`): which project, issue type, summary, description, labels,
//! components and priority Jira refuses, and the `errors` entry (field → message) it answers with;
//! and the `update.labels` operations of an edit.
//!
//! Separate from `issues.rs` because these are the rules the worker's payloads are held to: one
//! place says what Jira accepts, while `issues.rs` says what a write does once accepted.

use serde_json::{Value, json};

use super::FakeConfig;

/// Jira's limit on a text field, in characters.
const TEXT_FIELD_LIMIT: usize = 32_767;

/// Field checks shared by create and edit; `creating` requires the create-only fields.
pub(super) fn check_fields(
    fields: &Value,
    config: &FakeConfig,
    creating: bool,
) -> Result<(), Value> {
    let mut errors = serde_json::Map::new();
    if creating {
        let project = fields["project"]["key"].as_str().unwrap_or_default();
        if !config.projects.iter().any(|(k, _)| k == project) {
            errors.insert("project".into(), json!("valid project is required"));
        }
        let issue_type = fields["issuetype"]["name"].as_str().unwrap_or_default();
        if !config.issue_types.iter().any(|t| t == issue_type) {
            errors.insert("issuetype".into(), json!("valid issue type is required"));
        }
    }
    if creating || fields.get("summary").is_some() {
        match fields["summary"].as_str() {
            None | Some("") => {
                errors.insert(
                    "summary".into(),
                    json!("You must specify a summary of the issue."),
                );
            }
            Some(s) if s.chars().count() > 255 => {
                errors.insert(
                    "summary".into(),
                    json!("Summary must be less than 255 characters."),
                );
            }
            Some(s) if s.contains('\n') || s.contains('\r') => {
                errors.insert(
                    "summary".into(),
                    json!("The summary is invalid because it contains newline characters."),
                );
            }
            Some(_) => {}
        }
    }
    if let Some(description) = fields.get("description").filter(|d| !d.is_null()) {
        if let Err(e) = hookbridge_worker::jira::adf::validate(description) {
            errors.insert("description".into(), json!(e));
        } else if hookbridge_worker::jira::adf::text_length(description) > TEXT_FIELD_LIMIT {
            errors.insert(
                "description".into(),
                json!("The entered text is too long. It exceeds the allowed limit of 32,767 characters."),
            );
        }
    }
    if let Some(labels) = fields.get("labels") {
        match labels.as_array() {
            None => {
                errors.insert("labels".into(), json!("labels must be an array of strings"));
            }
            Some(labels) => {
                if let Some(e) = labels.iter().find_map(label_error) {
                    errors.insert("labels".into(), json!(e));
                }
            }
        }
    }
    if let Some(components) = fields.get("components").and_then(Value::as_array) {
        for c in components {
            let name = c["name"].as_str().unwrap_or_default();
            if !config.components.iter().any(|k| k == name) {
                errors.insert(
                    "components".into(),
                    json!(format!("Component name '{name}' is not valid")),
                );
            }
        }
    }
    if let Some(priority) = fields.get("priority") {
        let name = priority["name"].as_str().unwrap_or_default();
        if !["Highest", "High", "Medium", "Low", "Lowest"].contains(&name) {
            errors.insert(
                "priority".into(),
                json!(format!("The priority selected is invalid.")),
            );
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Value::Object(errors))
    }
}

/// What Jira says about one label value, if it refuses it.
fn label_error(label: &Value) -> Option<String> {
    match label.as_str() {
        Some(l) if l.is_empty() || l.chars().count() > 255 => {
            Some(format!("The label '{l}' is invalid."))
        }
        Some(l) if l.chars().any(char::is_whitespace) => {
            Some(format!("The label '{l}' contains spaces which is invalid."))
        }
        Some(_) => None,
        None => Some("labels must be strings".into()),
    }
}

/// The `update.labels` operations of an edit (`[{"add": l}, {"remove": l}, {"set": [..]}]`),
/// checked as Jira checks them.
pub(super) fn label_operations(update: &Value) -> Result<Vec<(&str, &Value)>, String> {
    let Some(ops) = update.as_array() else {
        return Err("labels operations must be an array".into());
    };
    let mut out = Vec::new();
    for op in ops {
        let Some((verb, value)) = op
            .as_object()
            .filter(|o| o.len() == 1)
            .and_then(|o| o.iter().next())
        else {
            return Err("each labels operation is an object with one verb".into());
        };
        match verb.as_str() {
            "add" | "remove" => {
                if let Some(e) = label_error(value) {
                    return Err(e);
                }
            }
            "set" => {
                let Some(labels) = value.as_array() else {
                    return Err("set takes an array of labels".into());
                };
                if let Some(e) = labels.iter().find_map(label_error) {
                    return Err(e);
                }
            }
            other => return Err(format!("Operation '{other}' is not supported for labels.")),
        }
        out.push((verb.as_str(), value));
    }
    Ok(out)
}

pub(super) fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect()
}
