//! Property tests of what the worker reads from outside: the event decoding of queue messages
//! (GitHub and Jira payloads), the CR record built from a Jira issue, and Markdown → ADF. A modest
//! number of cases in every `cargo test`; `make test-fuzz` runs them with many more
//! (`PROPTEST_CASES`).

use std::collections::BTreeMap;
use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use hookbridge_shared::claim::ClaimStore;
use hookbridge_shared::config::ApproverRoleField;
use hookbridge_shared::envelope::{ClaimRef, DeliveryId, Envelope, Source};
use hookbridge_shared::routing::JiraProjectKey;
use proptest::prelude::*;
use serde_json::{Value, json};

use crate::change_requests::fields::CrFields;
use crate::change_requests::record::{CrKey, CrRecord, DELETED_STATUS, Person};
use crate::events::github::IssueEvent;
use crate::events::jira::{self, CrFilter, IssueEventKind, JiraEvent};
use crate::events::{DecodeError, Decoder, Event};
use crate::jira::adf::{
    MAX_BODY_CHARS, comment_body, document_text, issue_description, markdown_to_adf, text_length,
    validate,
};

/// `PROPTEST_CASES` when set (`make test-fuzz`), else `default`.
fn config(default: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Any JSON value, nested a few levels.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f)
            .map(Value::Number)),
        "\\PC{0,20}".prop_map(Value::String),
        ".{0,8}".prop_map(Value::String),
    ];
    leaf.prop_recursive(5, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("\\PC{0,8}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// `value`, or, sometimes, any JSON value instead (a field of the wrong type).
fn or_any(value: impl Strategy<Value = Value> + 'static) -> BoxedStrategy<Value> {
    prop_oneof![3 => value, 1 => json_value()].boxed()
}

fn text(pattern: &'static str) -> BoxedStrategy<Value> {
    pattern.prop_map(Value::String).boxed()
}

/// A Jira user object, plausible or not.
fn jira_user() -> BoxedStrategy<Value> {
    or_any(
        (
            proptest::option::of(or_any(text("\\PC{0,12}"))),
            proptest::option::of(or_any(text("[a-z0-9:]{0,12}"))),
            proptest::option::of(or_any(text("[a-z@.]{0,12}"))),
            proptest::option::of(or_any(text("(Change Manager|Security Lead| |\\PC{0,8})"))),
        )
            .prop_map(|(name, id, email, role)| {
                let mut user = serde_json::Map::new();
                for (k, v) in [
                    ("displayName", name),
                    ("accountId", id),
                    ("emailAddress", email),
                    ("role", role),
                ] {
                    if let Some(v) = v {
                        user.insert(k.into(), v);
                    }
                }
                Value::Object(user)
            }),
    )
}

/// Rich text (ADF) around `text`, nested a little, or the text itself.
fn rich(text: BoxedStrategy<Value>) -> BoxedStrategy<Value> {
    or_any(
        (text, 0usize..4, any::<bool>()).prop_map(|(text, depth, as_doc)| {
            if !as_doc {
                return text;
            }
            let mut node = json!({"type": "text", "text": text});
            for _ in 0..depth {
                node = json!({"type": "paragraph", "content": [node, {"type": "hardBreak"}]});
            }
            json!({"type": "doc", "version": 1, "content": [node]})
        }),
    )
}

fn fields_config() -> CrFields {
    CrFields {
        approver_field: "customfield_10102".into(),
        approver_roles: vec![ApproverRoleField {
            role: "Security Lead".into(),
            field: "customfield_10201".into(),
        }],
        signature_field: "customfield_10103".into(),
    }
}

/// A Jira issue as a CR webhook carries it: the fields a CR record reads, each plausible or of a
/// wrong type, plus arbitrary others.
fn cr_issue() -> BoxedStrategy<Value> {
    let key = or_any(text(
        "(CR-[0-9]{1,4}|cr-2026-0001|CR|CR-|OPS-1|CR-1;DROP|[A-Z_]{1,4}-[0-9-]{0,6}|\\PC{0,10})",
    ));
    let approvers = or_any(prop_oneof![
        prop::collection::vec(jira_user(), 0..4).prop_map(Value::Array),
        jira_user(),
        prop::collection::vec(jira_user(), 0..3)
            .prop_map(|u| Value::String(Value::Array(u).to_string())),
    ]);
    let approvers = rich(approvers.boxed());
    let signature = rich(or_any(prop_oneof![
        Just(json!({"cr_id": "CR-1", "signature": "abc"})),
        Just(json!(r#"{"cr_id": "CR-1", "signature": "abc"}"#)),
        text("\\PC{0,30}"),
    ]));
    let description = rich(text(
        "(Budget|budget|BUDGET) ?: ?[0-9][0-9,._' \u{a0}\u{202f}]{0,30} ?(tokens?|Tokens)|\\PC{0,40}",
    ));
    let status = or_any(
        (
            or_any(text("(Open|Approved|Rejected|\\PC{0,8})")),
            or_any(text("[0-9]{1,3}")),
        )
            .prop_map(|(name, id)| json!({"name": name, "id": id})),
    );
    (
        key,
        proptest::option::of(status),
        proptest::option::of(approvers.clone()),
        proptest::option::of(approvers),
        proptest::option::of(signature),
        proptest::option::of(description),
        proptest::option::of(or_any(text("\\PC{0,20}"))),
        proptest::option::of(or_any(text(
            "(https://acme.atlassian.net/rest/api/3/issue/1\\?x=1|http://\\[::1|\\PC{0,20})",
        ))),
        prop::collection::btree_map("\\PC{0,8}", json_value(), 0..3),
    )
        .prop_map(
            |(key, status, approvers, role, signature, description, summary, own, extra)| {
                let mut fields: serde_json::Map<String, Value> = extra.into_iter().collect();
                for (k, v) in [
                    ("status", status),
                    ("customfield_10102", approvers),
                    ("customfield_10201", role),
                    ("customfield_10103", signature),
                    ("description", description),
                    ("summary", summary),
                ] {
                    if let Some(v) = v {
                        fields.insert(k.into(), v);
                    }
                }
                let mut issue = json!({"key": key, "fields": fields});
                if let Some(own) = own {
                    issue["self"] = own;
                }
                issue
            },
        )
        .boxed()
}

/// A Jira webhook payload: an issue event (or another) about a CR issue, with every part possibly
/// of the wrong type.
fn jira_payload() -> BoxedStrategy<Value> {
    let event = or_any(text(
        "(jira:issue_created|jira:issue_updated|jira:issue_deleted|comment_created|\\PC{0,12})",
    ));
    let timestamp = or_any(prop_oneof![
        any::<i64>().prop_map(Value::from),
        (0i64..4_000_000_000_000).prop_map(Value::from),
    ]);
    let changelog = or_any(
        prop::collection::vec(
            or_any(
                (
                    or_any(text("(status|summary|\\PC{0,6})")),
                    or_any(text("(Open|To Do|\\PC{0,6})")),
                )
                    .prop_map(|(field, from)| {
                        json!({"field": field, "fieldId": field, "fromString": from})
                    }),
            ),
            0..3,
        )
        .prop_map(|items| json!({"items": items})),
    );
    (
        event,
        proptest::option::of(timestamp),
        proptest::option::of(jira_user()),
        proptest::option::of(or_any(cr_issue())),
        proptest::option::of(changelog),
    )
        .prop_map(|(event, timestamp, user, issue, changelog)| {
            let mut payload = json!({"webhookEvent": event});
            for (k, v) in [
                ("timestamp", timestamp),
                ("user", user),
                ("issue", issue),
                ("changelog", changelog),
            ] {
                if let Some(v) = v {
                    payload[k] = v;
                }
            }
            payload
        })
        .boxed()
}

/// A GitHub `issues` / `issue_comment` payload, every part possibly of the wrong type.
fn github_payload() -> BoxedStrategy<Value> {
    let user =
        or_any(text("[a-z-]{0,10}").prop_map(|login| json!({"login": login, "type": "User"})));
    let issue = or_any(
        (
            or_any(any::<u64>().prop_map(Value::from)),
            or_any(text("\\PC{0,30}")),
            proptest::option::of(or_any(text("\\PC{0,60}"))),
            or_any(text("https://github.com/o/r/issues/[0-9]{1,3}")),
            or_any(
                prop::collection::vec(
                    or_any(text("\\PC{0,8}").prop_map(|n| json!({"name": n}))),
                    0..3,
                )
                .prop_map(Value::Array),
            ),
            user.clone(),
            proptest::option::of(json_value()),
        )
            .prop_map(|(number, title, body, url, labels, user, pr)| {
                let mut issue = json!({"number": number, "title": title, "html_url": url,
                    "labels": labels, "user": user, "state": "open"});
                if let Some(body) = body {
                    issue["body"] = body;
                }
                if let Some(pr) = pr {
                    issue["pull_request"] = pr;
                }
                issue
            }),
    );
    let comment = or_any(
        (
            or_any(any::<u64>().prop_map(Value::from)),
            or_any(text("\\PC{0,30}")),
            user.clone(),
        )
            .prop_map(|(id, body, user)| {
                json!({"id": id, "body": body, "html_url": "https://github.com/o/r/issues/1#c", "user": user})
            }),
    );
    (
        or_any(text("(opened|edited|closed|labeled|created|\\PC{0,6})")),
        issue,
        or_any(text("[a-zA-Z/-]{0,12}").prop_map(|n| json!({"full_name": n}))),
        user,
        proptest::option::of(comment),
    )
        .prop_map(|(action, issue, repository, sender, comment)| {
            let mut payload = json!({"action": action, "issue": issue,
                "repository": repository, "sender": sender});
            if let Some(comment) = comment {
                payload["comment"] = comment;
            }
            payload
        })
        .boxed()
}

fn filter() -> CrFilter {
    CrFilter {
        projects: vec![JiraProjectKey::parse("CR").expect("a project key")],
        issue_types: Vec::new(),
    }
}

static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
});

/// A decoder whose claim store is an empty directory (claims name nothing that exists).
static DECODER: LazyLock<(Decoder, tempfile::TempDir)> = LazyLock::new(|| {
    let dir = tempfile::tempdir().expect("a temp dir");
    let decoder = Decoder::new(
        ClaimStore::new(dir.path().join("claims")),
        vec!["hookbridge-bot".into()],
        filter(),
    );
    (decoder, dir)
});

fn decode(body: &[u8]) -> Result<Event, DecodeError> {
    RUNTIME
        .block_on(DECODER.0.decode(body))
        .map(|decoded| decoded.event)
}

/// An envelope of `source`/`event` around `payload` (inline, or as a claim that does not exist).
fn envelope_of(source: Source, event: &str, payload: &Value, claimed: bool) -> Vec<u8> {
    let raw = serde_json::value::to_raw_value(payload).expect("JSON");
    let mut envelope = Envelope::new(
        source,
        event.to_owned(),
        None,
        DeliveryId::parse("prop-1").expect("an id"),
        BTreeMap::new(),
        raw,
    );
    if claimed {
        envelope.payload = None;
        envelope.payload_claim = Some(ClaimRef {
            sha256: "0".repeat(64),
            bytes: 2,
        });
    }
    envelope.encode()
}

proptest! {
    #![proptest_config(config(128))]

    /// Jira payloads: never a panic; a CR event only for an issue event of a CR project, with an
    /// issue and a time.
    #[test]
    fn jira_decoding_never_panics(payload in jira_payload(), any_value in json_value()) {
        let _ = jira::decode(&serde_json::to_vec(&any_value).expect("JSON"), &filter());
        let bytes = serde_json::to_vec(&payload).expect("JSON");
        if let Ok(JiraEvent::ChangeRequest(event)) = jira::decode(&bytes, &filter()) {
            let name = payload["webhookEvent"].as_str().unwrap_or_default();
            prop_assert_eq!(Some(event.kind), IssueEventKind::of(name));
            prop_assert!(!payload["issue"].is_null());
        }
    }

    /// Arbitrary bytes as a Jira payload or a queue message: never a panic.
    #[test]
    fn decoding_never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..1024)) {
        let _ = jira::decode(&bytes, &filter());
        let _ = serde_json::from_slice::<IssueEvent>(&bytes);
        let _ = decode(&bytes);
    }

    /// The whole decoding of a queue message (envelope, inline or claimed payload, GitHub or Jira
    /// event): never a panic, and each outcome fits the event.
    #[test]
    fn message_decoding_never_panics(
        github in any::<bool>(),
        event in prop_oneof![
            Just("issues".to_owned()),
            Just("issue_comment".to_owned()),
            Just("jira:issue_updated".to_owned()),
            Just("jira:issue_created".to_owned()),
            Just("deployment_protection_rule".to_owned()),
            Just("pull_request".to_owned()),
            Just("push".to_owned()),
            "\\PC{0,12}",
        ],
        payload in prop_oneof![github_payload(), jira_payload(), json_value()],
        claimed in proptest::bool::weighted(0.1),
    ) {
        let source = if github { Source::Github } else { Source::Jira };
        let outcome = decode(&envelope_of(source, &event, &payload, claimed));
        match outcome {
            Ok(Event::GithubIssue(_)) => prop_assert!(github && event == "issues"),
            Ok(Event::GithubComment(_)) => prop_assert!(github && event == "issue_comment"),
            Ok(Event::ChangeRequest(_)) => prop_assert!(!github && !claimed),
            Ok(Event::DeploymentRule(_)) => {
                prop_assert!(github && event == "deployment_protection_rule");
            }
            Ok(Event::GithubPullRequest(_)) => prop_assert!(github && event == "pull_request"),
            Ok(Event::GithubPush(_)) => prop_assert!(github && event == "push"),
            // The decoder here has the Jira → GitHub sync off: no Jira sync events.
            Ok(Event::JiraStatus(_) | Event::JiraComment(_)) => prop_assert!(false),
            Ok(Event::Ignored(_)) | Err(_) => {}
        }
    }

    /// `CrRecord::from_issue` never panics on a CR-shaped issue or any JSON value; a record it
    /// makes has a valid key, the deleted status exactly when deleted, and survives its own JSON
    /// round trip.
    #[test]
    fn cr_records_never_panic(
        issue in prop_oneof![3 => cr_issue(), 1 => json_value()],
        deleted in any::<bool>(),
        millis in 0i64..4_000_000_000_000,
        user in proptest::option::of(jira_user()),
    ) {
        let at = DateTime::<Utc>::from_timestamp_millis(millis).expect("in range");
        let changed_by = user.as_ref().and_then(Person::from_jira);
        if let Ok(record) = CrRecord::from_issue(&issue, &fields_config(), at, changed_by, deleted) {
            prop_assert!(CrKey::parse(record.key.as_str()).is_ok());
            prop_assert_eq!(record.deleted, deleted);
            prop_assert_eq!(record.status == DELETED_STATUS, deleted || issue.pointer("/fields/status/name") == Some(&json!(DELETED_STATUS)));
            prop_assert_eq!(record.updated_at, at);
            let text = serde_json::to_string(&record).expect("a record serialises");
            let mut back: CrRecord = serde_json::from_str(&text).expect("a record deserialises");
            // serde_json (without its `float_roundtrip` feature) may read a float back one ULP
            // off, so a number inside the pasted signature object is compared by its keys only.
            let mut record = record;
            let keys = |r: &CrRecord| r.signature.as_ref().map(|m| m.keys().cloned().collect::<Vec<_>>());
            prop_assert_eq!(keys(&back), keys(&record));
            back.signature = None;
            record.signature = None;
            prop_assert_eq!(back, record);
        }
        let _ = document_text(&issue);
    }
}

/// Markdown-heavy text: block and inline markers, nesting, breaks, entities, HTML, control and
/// odd Unicode characters, URLs.
fn markdown() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            prop::sample::select(vec![
                "\n",
                "\r\n",
                "\r",
                "\n\n",
                "  \n",
                "    ",
                "\t",
                "- ",
                "* ",
                "+ ",
                "1. ",
                "9) ",
                "> ",
                ">> ",
                "# ",
                "###### ",
                "```",
                "```rust\n",
                "~~~",
                "`",
                "``",
                "**",
                "__",
                "*",
                "_",
                "~~",
                "~",
                "[",
                "]",
                "(",
                ")",
                "![",
                "](",
                "]: ",
                "<",
                ">",
                "<b>",
                "</b>",
                "<!--",
                "-->",
                "<div>\n",
                "|",
                "| a | b |\n|---|---|\n",
                "---",
                "===",
                "***",
                "[ ] ",
                "[x] ",
                "\\",
                "&amp;",
                "&#0;",
                "&#x1F600;",
                "&nbsp;",
                "\u{0}",
                "\u{1b}",
                "\u{7f}",
                "\u{85}",
                "\u{2028}",
                "\u{200b}",
                "\u{feff}",
                "\u{fffd}",
                "🚀",
                "👍🏽",
                "e\u{301}",
                "https://e.com/x",
                "http://",
                "www.e.com",
                "<https://e.com>",
                "[^1]",
                "[^1]: note\n",
                "$x$",
                "<http://[::1>",
            ])
            .prop_map(str::to_owned),
            "[a-z ]{1,8}",
            "\\PC{1,4}",
            // A prefix repeated: deep lists and quotes.
            (
                prop::sample::select(vec!["- ", "1. ", "> ", "  - ", "* > ", "> 1. "]),
                1usize..40
            )
                .prop_map(|(p, n)| p.repeat(n)),
        ],
        0..120,
    )
    .prop_map(|pieces| pieces.concat())
}

proptest! {
    #![proptest_config(config(128))]

    /// Markdown → ADF: never a panic, and the document always passes the crate's own validator
    /// (the rules Jira enforces) and stays under Jira's 32,767-character field limit — as a
    /// description, as a comment, and alone.
    #[test]
    fn markdown_always_gives_a_valid_document(
        body in prop_oneof![
            3 => markdown(),
            1 => "\\PC{0,300}",
            1 => ".{0,300}",
            // Around and over the length cap (GitHub allows 65,536 characters).
            1 => (markdown(), 1usize..200).prop_map(|(piece, n)| piece.repeat(n)),
        ],
        login in "\\PC{0,20}",
    ) {
        for doc in [
            markdown_to_adf(&body),
            issue_description("https://github.com/o/r/issues/1", &login, &body),
            comment_body(&login, "https://github.com/o/r/issues/1#issuecomment-1", &body),
        ] {
            if let Err(e) = validate(&doc) {
                prop_assert!(false, "{:?}: {}\n{}", body, e, doc);
            }
            // Under Jira's field limit: a body over the cap is cut, with a short note.
            prop_assert!(
                text_length(&doc) <= MAX_BODY_CHARS + 200 && text_length(&doc) < 32_767,
                "{} characters in, {} out",
                body.chars().count(),
                text_length(&doc)
            );
        }
    }

    /// `document_text` never panics on any JSON value.
    #[test]
    fn document_text_never_panics(value in json_value()) {
        let _ = document_text(&value);
    }
}
