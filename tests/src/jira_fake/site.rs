//! The Jira site the fake pretends to be: [`FakeConfig`] (its credentials, projects, issue types,
//! components and custom fields, and how the fake answers: latency, rate limit, search lag), the
//! field catalogue `GET /rest/api/3/field` answers from it, and the [`ACCOUNTS`] and
//! [`RESOLUTIONS`] every fake site has.
//!
//! Separate because it describes what the site holds rather than how a request is answered; the
//! routes only read it.

use std::time::Duration;

use serde_json::{Value, json};

/// How the fake behaves.
#[derive(Debug, Clone)]
pub struct FakeConfig {
    /// Added to every answer.
    pub latency: Duration,
    /// Requests per second per endpoint; `None`: unlimited.
    pub rate_limit: Option<f64>,
    /// Bucket capacity per endpoint (requests that may arrive at once).
    pub burst: f64,
    /// How long after a write search sees it.
    pub search_lag: Duration,
    pub email: String,
    pub token: String,
    /// `(key, name)` of the projects that exist.
    pub projects: Vec<(String, String)>,
    pub issue_types: Vec<String>,
    pub components: Vec<String>,
    /// Custom fields of the site: `(id, name, custom type)` with types as Jira names them
    /// (`…customfieldtypes:multiuserpicker`, `…:userpicker`, `…:textarea`).
    pub custom_fields: Vec<(String, String, String)>,
}

impl Default for FakeConfig {
    fn default() -> Self {
        Self {
            latency: Duration::ZERO,
            rate_limit: None,
            burst: 10.0,
            search_lag: Duration::ZERO,
            email: "bot@example.test".into(),
            token: "fake-api-token".into(),
            projects: vec![
                ("DEMO".into(), "Demo".into()),
                ("OPS".into(), "Operations".into()),
                ("CR".into(), "Change Requests".into()),
            ],
            issue_types: vec![
                "Task".into(),
                "Bug".into(),
                "Story".into(),
                "Change Request".into(),
            ],
            components: vec!["Backend".into(), "Frontend".into()],
            custom_fields: [
                ("customfield_10102", "Approvers", "multiuserpicker"),
                ("customfield_10103", "PKI Signature", "textarea"),
                ("customfield_10201", "Change Manager", "userpicker"),
                ("customfield_10202", "Deployment Notes", "textfield"),
            ]
            .iter()
            .map(|(id, name, kind)| {
                (
                    (*id).to_owned(),
                    (*name).to_owned(),
                    format!("com.atlassian.jira.plugin.system.customfieldtypes:{kind}"),
                )
            })
            .collect(),
        }
    }
}

/// `GET /rest/api/3/field`: the system fields the fake knows and the site's custom fields, each
/// with its `schema` as Jira describes it.
pub(super) fn site_fields(config: &FakeConfig) -> Vec<Value> {
    let system = [
        (
            "summary",
            "Summary",
            json!({"type": "string", "system": "summary"}),
        ),
        (
            "description",
            "Description",
            json!({"type": "string", "system": "description"}),
        ),
        (
            "status",
            "Status",
            json!({"type": "status", "system": "status"}),
        ),
        (
            "assignee",
            "Assignee",
            json!({"type": "user", "system": "assignee"}),
        ),
        (
            "labels",
            "Labels",
            json!({"type": "array", "items": "string", "system": "labels"}),
        ),
    ];
    let mut fields: Vec<Value> = system
        .into_iter()
        .map(|(id, name, schema)| {
            json!({"id": id, "key": id, "name": name, "custom": false, "orderable": true,
                   "navigable": true, "searchable": true, "clauseNames": [id], "schema": schema})
        })
        .collect();
    for (id, name, custom) in &config.custom_fields {
        let number = id.trim_start_matches("customfield_");
        let schema = match custom.rsplit(':').next() {
            Some("multiuserpicker") => json!({"type": "array", "items": "user", "custom": custom}),
            Some("userpicker") => json!({"type": "user", "custom": custom}),
            _ => json!({"type": "string", "custom": custom}),
        };
        let mut schema = schema;
        schema["customId"] = json!(number.parse::<u64>().unwrap_or_default());
        fields.push(
            json!({"id": id, "key": id, "name": name, "custom": true, "orderable": true,
                           "navigable": true, "searchable": true,
                           "clauseNames": [format!("cf[{number}]"), name], "schema": schema}),
        );
    }
    fields
}

/// The accounts of the fake site that can be assigned issues (the bot's own, from `/myself`,
/// among them).
pub const ACCOUNTS: &[&str] = &[
    "5b10ac8d82e05b22cc7d4ef5",
    "5b10a2844c20165700ede21g",
    "5b109f2e9729b51b54dc274d",
    "557058:f58131cb-b67d-43c7-b30d-6b58d40bd077",
];

/// The resolutions of the fake site: Jira Cloud's defaults.
pub const RESOLUTIONS: &[&str] = &["Done", "Won't Do", "Duplicate", "Cannot Reproduce"];
