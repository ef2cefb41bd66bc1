//! Reading a CR's custom fields. Jira has no standard "approver role", no signature field and no
//! budget field, so each has a convention, and each tolerates what people actually paste:
//!
//! - **Approvers**, two shapes (both may be used at once):
//!   (a) one user-picker field, `CR_APPROVER_FIELD`, whose entries carry a `role` — an array of
//!   users (or one user) each with a `role` key, or the same as JSON text in a text field;
//!   (b) one user-picker field per role (`[[change_requests.approver_roles]]` in the TOML file):
//!   everyone in the field approves in that role.
//! - **Signature**: the JSON object `hookbridge pki sign` writes, pasted into `CR_SIGNATURE_FIELD`
//!   as text (plain, or a paragraph of Jira's rich text). Anything else is kept as a problem, not
//!   guessed at.
//! - **Budget**: `Budget: N tokens` anywhere in the description, any case, `N` with or without
//!   thousands separators (`1,500,000`, `1 500 000`, `1_500_000`, `1.500.000`, `1'500'000`).

use std::sync::LazyLock;

use hookbridge_shared::config::ApproverRoleField;
use regex::Regex;
use serde_json::{Map, Value};

use super::record::{Approver, Person};
use crate::jira::adf;

/// Which Jira fields hold a CR's approvers and signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrFields {
    /// Shape (a): users with a `role` each.
    pub approver_field: String,
    /// Shape (b): one field per role.
    pub approver_roles: Vec<ApproverRoleField>,
    pub signature_field: String,
}

impl CrFields {
    /// Every custom field a CR record reads, for the REST API's `fields=` parameter.
    pub fn field_ids(&self) -> Vec<&str> {
        let mut ids = vec![self.approver_field.as_str(), self.signature_field.as_str()];
        ids.extend(self.approver_roles.iter().map(|r| r.field.as_str()));
        ids
    }
}

/// The approvers in `fields` (an issue's `fields` object), both shapes; a warning when there is
/// no approver information at all.
pub fn approvers(fields: &Value, config: &CrFields, warnings: &mut Vec<String>) -> Vec<Approver> {
    let mut found = Vec::new();
    if let Some(value) = fields.get(&config.approver_field) {
        for user in users(value, &config.approver_field, warnings) {
            let role = user
                .get("role")
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|r| !r.is_empty())
                .map(str::to_owned);
            if let Some(approver) = approver(&user, role, &config.approver_field) {
                found.push(approver);
            }
        }
    }
    for role_field in &config.approver_roles {
        if let Some(value) = fields.get(&role_field.field) {
            for user in users(value, &role_field.field, warnings) {
                if let Some(approver) =
                    approver(&user, Some(role_field.role.clone()), &role_field.field)
                {
                    found.push(approver);
                }
            }
        }
    }
    if found.is_empty() {
        warnings.push(format!(
            "no approver information (fields {})",
            std::iter::once(config.approver_field.as_str())
                .chain(config.approver_roles.iter().map(|r| r.field.as_str()))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    found
}

fn approver(user: &Value, role: Option<String>, field: &str) -> Option<Approver> {
    let person = Person::from_jira(user)?;
    Some(Approver {
        name: person.name,
        role,
        account_id: person.account_id,
        email: person.email,
        field: field.to_owned(),
    })
}

/// The user objects a field holds: a user, an array of users, or either as JSON text (plain or
/// rich text). `null` and empty text hold none.
fn users(value: &Value, field: &str, warnings: &mut Vec<String>) -> Vec<Value> {
    match value {
        Value::Null => Vec::new(),
        Value::Array(items) => items.iter().filter(|i| i.is_object()).cloned().collect(),
        Value::Object(map) if map.get("type").and_then(Value::as_str) == Some("doc") => {
            users_from_text(&adf::document_text(value), field, warnings)
        }
        Value::Object(_) => vec![value.clone()],
        Value::String(text) => users_from_text(text, field, warnings),
        _ => {
            warnings.push(format!(
                "{field} holds neither users nor JSON text; ignored"
            ));
            Vec::new()
        }
    }
}

fn users_from_text(text: &str, field: &str, warnings: &mut Vec<String>) -> Vec<Value> {
    if text.trim().is_empty() {
        return Vec::new();
    }
    match serde_json::from_str::<Value>(text.trim()) {
        Ok(parsed @ (Value::Array(_) | Value::Object(_))) => users(&parsed, field, warnings),
        _ => {
            warnings.push(format!(
                "{field} holds text that is not a JSON list of users; ignored"
            ));
            Vec::new()
        }
    }
}

/// The signature object in the signature field, or why there is none to read.
pub fn signature(value: Option<&Value>) -> (Option<Map<String, Value>>, Option<String>) {
    let text = match value {
        None | Some(Value::Null) => return (None, None),
        Some(Value::Object(map)) if map.get("type").and_then(Value::as_str) != Some("doc") => {
            return (Some(map.clone()), None);
        }
        Some(doc @ Value::Object(_)) => adf::document_text(doc),
        Some(Value::String(text)) => text.clone(),
        Some(_) => {
            return (
                None,
                Some("the signature field holds neither text nor an object".into()),
            );
        }
    };
    if text.trim().is_empty() {
        return (None, None);
    }
    match serde_json::from_str::<Value>(text.trim()) {
        Ok(Value::Object(map)) => (Some(map), None),
        Ok(_) => (
            None,
            Some("the signature field holds JSON that is not an object".into()),
        ),
        Err(e) => (None, Some(format!("the signature field is not JSON: {e}"))),
    }
}

static BUDGET: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\bbudget\s*:\s*([0-9][0-9,._' \u{00A0}\u{202F}]*)\s*tokens?\b")
        .expect("the budget pattern compiles")
});

/// The token budget from `Budget: N tokens` in the description (rich text or plain), with a
/// warning when the line is there but its number is not understood.
pub fn budget(description: Option<&Value>, warnings: &mut Vec<String>) -> Option<u64> {
    let text = adf::document_text(description?);
    let captures = BUDGET.captures(&text)?;
    let raw = captures.get(1)?.as_str().trim();
    match parse_grouped(raw) {
        Some(n) => Some(n),
        None => {
            warnings.push(format!(
                "budget {raw:?} is not a whole number of tokens; ignored"
            ));
            None
        }
    }
}

/// `1,500,000` and friends: digits, optionally in groups of three after the first, all separated
/// by the same separator.
fn parse_grouped(raw: &str) -> Option<u64> {
    let separators = [',', '.', '_', '\'', ' ', '\u{00A0}', '\u{202F}'];
    let used: Vec<char> = raw.chars().filter(|c| separators.contains(c)).collect();
    if let Some(first) = used.first() {
        if used.iter().any(|c| c != first) {
            return None;
        }
        let groups: Vec<&str> = raw.split(*first).collect();
        let head_ok = (1..=3).contains(&groups[0].len());
        if !head_ok || groups[1..].iter().any(|g| g.len() != 3) {
            return None;
        }
    }
    let digits: String = raw.chars().filter(char::is_ascii_digit).collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config() -> CrFields {
        CrFields {
            approver_field: "customfield_10102".into(),
            approver_roles: vec![ApproverRoleField {
                role: "Security Lead".into(),
                field: "customfield_10201".into(),
            }],
            signature_field: "customfield_10103".into(),
        }
    }

    #[test]
    fn approvers_of_both_shapes() {
        let fields = json!({
            "customfield_10102": [
                {"accountId": "a1", "displayName": "Alice Admin", "role": "Change Manager"},
                {"accountId": "b2", "displayName": "Bob Builder"}
            ],
            "customfield_10201": {"accountId": "c3", "displayName": "Carol Sec", "emailAddress": "carol@example.test"}
        });
        let mut warnings = Vec::new();
        let found = approvers(&fields, &config(), &mut warnings);
        let pairs: Vec<(&str, Option<&str>)> = found
            .iter()
            .map(|a| (a.name.as_str(), a.role.as_deref()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("Alice Admin", Some("Change Manager")),
                ("Bob Builder", None),
                ("Carol Sec", Some("Security Lead"))
            ]
        );
        assert!(warnings.is_empty(), "{warnings:?}");
        // The same as JSON text, and as rich text.
        let text = r#"[{"displayName": "Alice Admin", "role": "Change Manager"}]"#;
        for value in [
            json!(text),
            json!({"type": "doc", "version": 1, "content": [
            {"type": "paragraph", "content": [{"type": "text", "text": text}]}]}),
        ] {
            let found = approvers(
                &json!({"customfield_10102": value}),
                &config(),
                &mut warnings,
            );
            assert_eq!(found.len(), 1);
            assert_eq!(found[0].role.as_deref(), Some("Change Manager"));
        }
    }

    #[test]
    fn no_approver_information_is_a_warning_not_an_error() {
        let mut warnings = Vec::new();
        assert!(
            approvers(
                &json!({"customfield_10102": null}),
                &config(),
                &mut warnings
            )
            .is_empty()
        );
        assert_eq!(warnings.len(), 1);
        assert!(
            warnings[0].starts_with("no approver information"),
            "{warnings:?}"
        );
        let mut warnings = Vec::new();
        assert!(
            approvers(
                &json!({"customfield_10102": "Alice, Bob"}),
                &config(),
                &mut warnings
            )
            .is_empty()
        );
        assert!(
            warnings.iter().any(|w| w.contains("not a JSON list")),
            "{warnings:?}"
        );
    }

    #[test]
    fn signatures_are_objects_or_a_stated_problem() {
        let signed = r#"{"cr_id": "CR-1", "signature": "abc"}"#;
        assert_eq!(signature(Some(&json!(signed))).0.unwrap()["cr_id"], "CR-1");
        let rich = json!({"type": "doc", "version": 1, "content": [{"type": "paragraph", "content": [{"type": "text", "text": signed}]}]});
        assert_eq!(signature(Some(&rich)).0.unwrap()["signature"], "abc");
        assert_eq!(signature(None), (None, None));
        assert_eq!(signature(Some(&json!("  "))), (None, None));
        let (none, problem) = signature(Some(&json!("garbage {")));
        assert!(none.is_none() && problem.unwrap().contains("not JSON"));
        let (none, problem) = signature(Some(&json!("[1, 2]")));
        assert!(none.is_none() && problem.unwrap().contains("not an object"));
    }

    #[test]
    fn budgets_in_plain_and_rich_text_with_separators() {
        let mut warnings = Vec::new();
        for (text, expected) in [
            ("Budget: 50000 tokens", Some(50_000)),
            ("Purpose: x\nbudget:1,500,000 Tokens\n", Some(1_500_000)),
            ("BUDGET : 1 500 000 tokens", Some(1_500_000)),
            ("Budget: 1_000 token", Some(1_000)),
            ("Budget: 2.500.000 tokens", Some(2_500_000)),
            ("Budget: 1'000'000 tokens", Some(1_000_000)),
            ("Budget: 12\u{202F}000 tokens", Some(12_000)),
            ("No budget here", None),
            ("Budget: lots of tokens", None),
        ] {
            assert_eq!(
                budget(Some(&json!(text)), &mut warnings),
                expected,
                "{text:?}"
            );
        }
        assert!(warnings.is_empty(), "{warnings:?}");
        let rich = json!({"type": "doc", "version": 1, "content": [
            {"type": "paragraph", "content": [{"type": "text", "text": "Budget: "}, {"type": "text", "text": "75,000", "marks": [{"type": "strong"}]}, {"type": "text", "text": " tokens"}]}]});
        assert_eq!(budget(Some(&rich), &mut warnings), Some(75_000));
        for odd in [
            "Budget: 1,50 tokens",
            "Budget: 1,500.000 tokens",
            "Budget: 99999999999999999999999 tokens",
        ] {
            let mut warnings = Vec::new();
            assert_eq!(budget(Some(&json!(odd)), &mut warnings), None, "{odd}");
            assert_eq!(warnings.len(), 1, "{odd}: {warnings:?}");
        }
    }
}
