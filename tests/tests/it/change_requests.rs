//! Change Requests through the worker's router, on both stores (Redis and embedded): Jira's
//! webhooks (from the Jira fake) delivered late, twice and out of order leave the newest status;
//! records expire; a miss is read from Jira; approvers of both shapes; budgets in plain and rich
//! text; exactly one Slack alert (to the Slack fake) per transition, whatever Slack answers; usage
//! alerts once.

use std::sync::Arc;
use std::time::Duration;

use hookbridge_shared::config::ApproverRoleField;
use hookbridge_tests::jira_fake::{CrSpec, FakeConfig, JiraFake, JiraUser, WebhookDelivery};
use hookbridge_tests::slack_fake::{SlackConfig, SlackFake, wait_until};
use hookbridge_tests::worker::{
    Backend, Parts, default_cr_config, default_cr_filter, open_store, router,
};
use hookbridge_worker::alerts::dispatcher::{Dispatcher, DispatcherConfig, Sink};
use hookbridge_worker::alerts::slack::{SlackClient, SlackWebhook};
use hookbridge_worker::audit::AuditLog;
use hookbridge_worker::change_requests::lookup::{LookupError, Source};
use hookbridge_worker::change_requests::record::{CrKey, CrRecord};
use hookbridge_worker::change_requests::{CrConfig, usage};
use hookbridge_worker::handler::Outcome;
use hookbridge_worker::jira::JiraClient;
use hookbridge_worker::jira::ops::JiraOps;
use hookbridge_worker::metrics::governance::LatencyCell;
use hookbridge_worker::router::Router;
use hookbridge_worker::store::Store;
use hookbridge_worker::store::keys::{ApprovalLatency, CrRecordKey};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

const APPROVER_FIELD: &str = "customfield_10102";

/// A router over one store, the Jira fake, the Slack fake and a dispatcher to it.
struct Setup {
    fake: JiraFake,
    slack: SlackFake,
    router: Arc<Router>,
    dispatcher: Dispatcher,
    store: Store,
    jira: JiraClient,
    audit_dir: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

fn alice() -> JiraUser {
    JiraUser::new("5b10a2844c20165700ede21g", "Alice Approver")
}

async fn setup(backend: Backend, cr: CrConfig) -> Setup {
    let fake = JiraFake::start(FakeConfig::default()).await;
    let slack = SlackFake::start(SlackConfig::default()).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open_store(backend, dir.path(), "hbcr").await;
    let audit_dir = dir.path().join("audit");
    let audit = AuditLog::open(&audit_dir, "test", Some(store.clone()));
    let jira = JiraClient::with_store(&fake.settings(100.0), Some(store.clone())).expect("client");
    let mut parts = Parts::new(
        store.clone(),
        JiraOps::live(jira.clone(), audit.clone()),
        audit.clone(),
        dir.path(),
    );
    parts.cr = cr;
    let (router, waker) = router(parts);
    let dispatcher = Dispatcher {
        store: store.clone(),
        sink: Sink::Slack(
            SlackClient::new(SlackWebhook::parse(&slack.url()).expect("webhook")).expect("client"),
        ),
        audit,
        waker,
        config: DispatcherConfig {
            interval: Duration::from_millis(1100),
            retry_base: Duration::from_millis(50),
            poll: Duration::from_millis(100),
            ..DispatcherConfig::default()
        },
    };
    Setup {
        fake,
        slack,
        router: Arc::new(router),
        dispatcher,
        store,
        jira,
        audit_dir,
        _dir: dir,
    }
}

impl Setup {
    async fn deliver(&self, delivery: &WebhookDelivery) {
        let outcome = self.router.handle_body(&delivery.envelope()).await;
        assert_eq!(outcome, Outcome::Done, "{}", delivery.event);
    }

    async fn record(&self, key: &str) -> Option<CrRecord> {
        let key = CrKey::parse(key).expect("key");
        self.store.read(&CrRecordKey(&key)).await.expect("read")
    }

    async fn drain(&self) {
        self.dispatcher
            .drain(&CancellationToken::new())
            .await
            .expect("drain the outbox");
    }

    /// Every alert id the audit trail records as sent, with how often.
    fn sent_alerts(&self) -> Vec<String> {
        hookbridge_tests::audit::records(&self.audit_dir)
            .iter()
            .filter(|r| r["action"] == "slack.alert.sent")
            .filter_map(|r| r["ids"]["alert"].as_str().map(str::to_owned))
            .collect()
    }
}

/// The sections of every message Slack posted.
fn posted_sections(slack: &SlackFake) -> Vec<String> {
    slack
        .messages()
        .iter()
        .flat_map(|m| m["blocks"].as_array().cloned().unwrap_or_default())
        .filter(|b| b["type"] == "section")
        .filter_map(|b| b["text"]["text"].as_str().map(str::to_owned))
        .collect()
}

fn new_cr(s: &Setup, spec: CrSpec) -> (String, WebhookDelivery) {
    s.fake.create_change_request(spec, &alice())
}

async fn out_of_order_late_and_duplicated_events_leave_the_newest_status(backend: Backend) {
    let s = setup(backend, default_cr_config()).await;
    let (key, created) = new_cr(&s, CrSpec::new("Deploy the security agent v2"));
    let pending = s
        .fake
        .move_change_request(&key, "Pending Approval", &alice());
    let approved = s.fake.move_change_request(&key, "Approved", &alice());
    // Jira delivers the approval first, the creation twice, the pending step late.
    s.deliver(&approved).await;
    s.deliver(&created).await;
    s.deliver(&created).await;
    s.deliver(&pending).await;
    s.deliver(&approved).await;
    let record = s.record(&key).await.expect("the CR is in the store");
    assert_eq!(record.status, "Approved");
    assert_eq!(record.status_id.as_deref(), Some("10102"));
    assert_eq!(
        record.changed_by.as_ref().map(|p| p.name.as_str()),
        Some("Alice Approver")
    );
    let approved_at = approved.payload()["timestamp"].as_i64().expect("timestamp");
    assert_eq!(record.updated_at.timestamp_millis(), approved_at);
    // Every transition is in the history, in time order, once.
    let found = s
        .router
        .change_requests
        .lookup(&record.key, None, &default_cr_filter(), false)
        .await
        .expect("lookup");
    assert_eq!(found.source, Source::Cache);
    let steps: Vec<(Option<&str>, &str)> = found
        .history
        .iter()
        .map(|h| (h.from.as_deref(), h.to.as_str()))
        .collect();
    assert_eq!(
        steps,
        [
            (None, "Draft"),
            (Some("Draft"), "Pending Approval"),
            (Some("Pending Approval"), "Approved")
        ]
    );
    // An edit made before the deletion arrives after it: the CR stays deleted.
    let edited = s
        .fake
        .set_field(&key, "description", json!("Budget: 5 tokens"), &alice());
    let deleted = s.fake.delete_issue(&key, &alice());
    s.deliver(&deleted).await;
    s.deliver(&edited).await;
    s.deliver(&approved).await;
    let record = s.record(&key).await.expect("the deleted CR is recorded");
    assert!(record.deleted);
    assert_eq!(record.status, "(deleted)");
    // One alert for the approval, one for its end; none for the late or repeated deliveries.
    s.drain().await;
    let sent = s.sent_alerts();
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert!(
        sent[0].ends_with(":cr_approved") && sent[1].ends_with(":cr_revoked"),
        "{sent:?}"
    );
}

/// Two workers handling the same deliveries at once still make one transition and one alert.
async fn concurrent_redeliveries_alert_once(backend: Backend) {
    let s = setup(backend, default_cr_config()).await;
    let (key, created) = new_cr(
        &s,
        CrSpec::new("Rotate the signing keys").status("Pending Approval"),
    );
    s.deliver(&created).await;
    let approved = s.fake.move_change_request(&key, "Approved", &alice());
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..6 {
        let router = s.router.clone();
        let body = approved.envelope();
        tasks.spawn(async move { router.handle_body(&body).await });
    }
    while let Some(outcome) = tasks.join_next().await {
        assert_eq!(outcome.expect("task"), Outcome::Done);
    }
    s.drain().await;
    assert_eq!(s.sent_alerts().len(), 1);
    let sections = posted_sections(&s.slack);
    assert_eq!(sections.len(), 1, "{sections:?}");
    assert!(
        sections[0].contains(&key) && sections[0].contains("approved"),
        "{sections:?}"
    );
    assert!(
        sections[0].contains("Rotate the signing keys"),
        "{sections:?}"
    );
    assert!(sections[0].contains("Alice Approver"), "{sections:?}");
    assert!(
        sections[0].contains(&format!("/browse/{key}")),
        "{sections:?}"
    );
    let text = s.slack.messages()[0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        text.contains(&key) && text.contains("approved"),
        "the plain fallback: {text}"
    );
}

async fn records_expire_after_their_ttl(backend: Backend) {
    let mut cr = default_cr_config();
    cr.ttl = Duration::from_secs(1);
    let s = setup(backend, cr).await;
    let (key, created) = new_cr(&s, CrSpec::new("Short-lived"));
    s.deliver(&created).await;
    assert!(s.record(&key).await.is_some());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while s.record(&key).await.is_some() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the record never expired"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn a_miss_is_read_from_jira_and_kept(backend: Backend) {
    let s = setup(backend, default_cr_config()).await;
    let (key, _never_delivered) = new_cr(
        &s,
        CrSpec::new("Enable the payments agent in prod")
            .status("Approved")
            .description("Purpose: tier 4 rollout\nBudget: 12,000 tokens")
            .field(APPROVER_FIELD, json!([alice().with_role("Change Manager")])),
    );
    let cr_key = CrKey::parse(&key).expect("key");
    let cr = &s.router.change_requests;
    let found = cr
        .lookup(&cr_key, Some(&s.jira), &default_cr_filter(), false)
        .await
        .expect("read from Jira");
    assert_eq!(found.source, Source::Jira);
    assert_eq!(found.record.status, "Approved");
    // REST v3 gives the description as an Atlassian document: the budget is read from it.
    assert_eq!(found.record.budget_tokens, Some(12_000));
    assert_eq!(found.record.approvers.len(), 1);
    assert_eq!(
        found.record.approvers[0].role.as_deref(),
        Some("Change Manager")
    );
    let again = cr
        .lookup(&cr_key, Some(&s.jira), &default_cr_filter(), false)
        .await
        .expect("from the store");
    assert_eq!(again.source, Source::Cache);
    assert_eq!(again.record, found.record);
    // Unknown in Jira; not a CR project; no Jira to ask.
    let unknown = CrKey::parse("CR-999").expect("key");
    assert!(matches!(
        cr.lookup(&unknown, Some(&s.jira), &default_cr_filter(), false)
            .await,
        Err(LookupError::NotFound(_))
    ));
    let (other, _) = s.fake.create_change_request(
        CrSpec {
            project: "OPS".into(),
            ..CrSpec::new("An ops task")
        },
        &alice(),
    );
    let other = CrKey::parse(&other).expect("key");
    assert!(matches!(
        cr.lookup(&other, Some(&s.jira), &default_cr_filter(), false)
            .await,
        Err(LookupError::NotACr { .. })
    ));
    assert!(matches!(
        cr.lookup(&unknown, None, &default_cr_filter(), false).await,
        Err(LookupError::NoJira(_))
    ));
}

async fn approvers_of_both_shapes_get_their_roles(backend: Backend) {
    let mut cr = default_cr_config();
    cr.fields.approver_roles = vec![ApproverRoleField {
        role: "Security Lead".into(),
        field: "customfield_10201".into(),
    }];
    let s = setup(backend, cr).await;
    let carol = JiraUser::new("carol-1", "Carol Security");
    let (key, created) = new_cr(
        &s,
        CrSpec::new("Both shapes")
            .field(
                APPROVER_FIELD,
                json!([
                    alice().with_role("Change Manager"),
                    JiraUser::new("bob-2", "Bob Builder").json()
                ]),
            )
            .field("customfield_10201", json!([carol.json()])),
    );
    s.deliver(&created).await;
    let record = s.record(&key).await.expect("record");
    let roles: Vec<(&str, Option<&str>)> = record
        .approvers
        .iter()
        .map(|a| (a.name.as_str(), a.role.as_deref()))
        .collect();
    assert_eq!(
        roles,
        [
            ("Alice Approver", Some("Change Manager")),
            ("Bob Builder", None),
            ("Carol Security", Some("Security Lead"))
        ]
    );
    assert!(record.warnings.is_empty(), "{:?}", record.warnings);
    // No approver information at all: recorded with an empty list and a warning.
    let (bare, created) = new_cr(&s, CrSpec::new("No approvers yet"));
    s.deliver(&created).await;
    let record = s.record(&bare).await.expect("record");
    assert!(record.approvers.is_empty());
    assert!(
        record
            .warnings
            .iter()
            .any(|w| w.starts_with("no approver information")),
        "{:?}",
        record.warnings
    );
}

async fn budgets_and_signatures_are_read_from_webhook_text(backend: Backend) {
    let s = setup(backend, default_cr_config()).await;
    let signature =
        json!({"cr_id": "CR-1", "status": "Approved", "signature": "c2lnbmVk"}).to_string();
    let (key, created) = new_cr(
        &s,
        CrSpec::new("Budgeted")
            .description("Agent: triage-bot\nbudget: 1,500,000 Tokens")
            .field("customfield_10103", json!(signature)),
    );
    // Webhooks carry REST v2 text: the description is a plain string here.
    assert!(created.payload()["issue"]["fields"]["description"].is_string());
    s.deliver(&created).await;
    let record = s.record(&key).await.expect("record");
    assert_eq!(record.budget_tokens, Some(1_500_000));
    assert_eq!(
        record.signature.as_ref().map(|s| s["cr_id"].clone()),
        Some(json!("CR-1"))
    );
    // Garbage in the signature field is kept as a problem, not as a signature.
    let edit = s
        .fake
        .set_field(&key, "customfield_10103", json!("not { json"), &alice());
    s.deliver(&edit).await;
    let record = s.record(&key).await.expect("record");
    assert!(record.signature.is_none());
    assert!(
        record
            .signature_problem
            .is_some_and(|p| p.contains("not JSON"))
    );
}

/// Slack rate-limits, refuses and fails; every alert still goes out once (or is given up and
/// audited), and the worker keeps handling events meanwhile.
async fn slack_failures_neither_double_nor_block(backend: Backend) {
    let s = setup(backend, default_cr_config()).await;
    let (key, created) = new_cr(&s, CrSpec::new("Slack trouble").status("Pending Approval"));
    s.deliver(&created).await;
    // Slack fails (500) while two transitions come in: the pipeline does not wait for it.
    s.slack.fail_next(500, "rollup_error", None, 2);
    s.slack.fail_next(429, "rate_limited", Some(1), 1);
    let approved = s.fake.move_change_request(&key, "Approved", &alice());
    let rejected = s.fake.move_change_request(&key, "Rejected", &alice());
    s.deliver(&approved).await;
    s.deliver(&rejected).await;
    s.drain().await;
    let statuses: Vec<u16> = s.slack.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [500, 500, 429, 200], "{statuses:?}");
    let requests = s.slack.requests();
    assert!(
        requests[3].at.duration_since(requests[2].at) >= Duration::from_millis(950),
        "Retry-After was not honoured"
    );
    // One message with both alerts (a burst is coalesced), each audited once as sent.
    let sections = posted_sections(&s.slack);
    assert_eq!(sections.len(), 2, "{sections:?}");
    assert!(
        sections[0].contains("approved") && sections[1].contains("rejected"),
        "{sections:?}"
    );
    assert_eq!(s.sent_alerts().len(), 2);
    let retries = hookbridge_tests::audit::records(&s.audit_dir)
        .iter()
        .filter(|r| r["action"] == "slack.alert.retry")
        .count();
    assert_eq!(retries, 6, "three failed sends of two alerts are audited");

    // Slack refuses one alert for good (400 invalid_payload): that one is dropped and audited,
    // the next one still goes out.
    let reopened = s.fake.move_change_request(&key, "Approved", &alice());
    s.deliver(&reopened).await;
    s.slack.fail_next(400, "invalid_payload", None, 1);
    s.drain().await;
    let revoked = s
        .fake
        .move_change_request(&key, "Pending Approval", &alice());
    s.deliver(&revoked).await;
    s.drain().await;
    let failed: Vec<Value> = hookbridge_tests::audit::records(&s.audit_dir)
        .into_iter()
        .filter(|r| r["action"] == "slack.alert.failed")
        .collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(
        failed[0]["detail"]["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("invalid_payload")
    );
    let sections = posted_sections(&s.slack);
    assert_eq!(sections.len(), 3, "{sections:?}");
    assert!(sections[2].contains("no longer approved"), "{sections:?}");
}

/// A dispatcher running in the background sends what the worker queues, within its pace.
async fn the_dispatcher_sends_in_the_background(backend: Backend) {
    let s = setup(backend, default_cr_config()).await;
    let stop = CancellationToken::new();
    let running = tokio::spawn(s.dispatcher.clone().run(stop.clone()));
    let (key, created) = new_cr(&s, CrSpec::new("Background").status("Pending Approval"));
    s.deliver(&created).await;
    s.deliver(&s.fake.move_change_request(&key, "Approved", &alice()))
        .await;
    wait_until("the alert in Slack", Duration::from_secs(20), || {
        !s.slack.messages().is_empty()
    })
    .await;
    stop.cancel();
    running.await.expect("the dispatcher stops");
    assert_eq!(posted_sections(&s.slack).len(), 1);
}

async fn usage_alerts_fire_once_per_threshold(backend: Backend) {
    let s = setup(backend, default_cr_config()).await;
    let (key, created) = new_cr(
        &s,
        CrSpec::new("Agent budget").description("Budget: 1,000 tokens"),
    );
    s.deliver(&created).await;
    let record = s.record(&key).await.expect("record");
    let cr_key = record.key.clone();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..20 {
        let store = s.store.clone();
        let key = cr_key.clone();
        let record = record.clone();
        tasks.spawn(async move {
            usage::record(
                &store,
                &key,
                Some(&record),
                60,
                Some(&format!("agent-{}", i % 3)),
            )
            .await
            .expect("record usage")
        });
    }
    let mut alerts = Vec::new();
    while let Some(done) = tasks.join_next().await {
        alerts.extend(
            done.expect("task")
                .alerts
                .into_iter()
                .map(|a| a.kind.as_str()),
        );
    }
    alerts.sort_unstable();
    assert_eq!(alerts, ["budget_exhausted", "budget_warning"]);
    let more = usage::record(&s.store, &cr_key, Some(&record), 10, None)
        .await
        .expect("record");
    assert!(more.alerts.is_empty());
    assert_eq!(more.usage.used_tokens, 1210);
    assert_eq!(more.usage.by_agent.values().sum::<u64>(), 1210);
    s.drain().await;
    let sections = posted_sections(&s.slack);
    assert_eq!(sections.len(), 2, "{sections:?}");
    assert!(sections.iter().any(|t| t.contains("80 %")), "{sections:?}");
}

/// The approval latency histogram's cells as the store holds them.
async fn latency_cells(s: &Setup) -> Vec<(LatencyCell, u64)> {
    s.store.counters(&ApprovalLatency).await.expect("counters")
}

fn cell(cells: &[(LatencyCell, u64)], wanted: LatencyCell) -> u64 {
    cells
        .iter()
        .filter(|(c, _)| *c == wanted)
        .map(|(_, n)| n)
        .sum()
}

/// An approval's latency runs from the CR entering the status it was approved from, is counted
/// once however often Jira delivers the approval, not for a late event nor a rejected CR
/// approved later, and again for a second approval after a revocation.
async fn approval_latency_is_the_wait_before_each_approval(backend: Backend) {
    let s = setup(backend, default_cr_config()).await;
    let at = |d: &WebhookDelivery| d.payload()["timestamp"].as_i64().expect("timestamp");
    let (key, created) = new_cr(&s, CrSpec::new("Latency"));
    let pending = s
        .fake
        .move_change_request(&key, "Pending Approval", &alice());
    let edited = s
        .fake
        .set_field(&key, "summary", json!("Latency v2"), &alice());
    let approved = s.fake.move_change_request(&key, "Approved", &alice());
    for delivery in [&created, &pending, &edited, &approved, &approved, &pending] {
        s.deliver(delivery).await;
    }
    let cells = latency_cells(&s).await;
    assert_eq!(cell(&cells, LatencyCell::Count), 1, "{cells:?}");
    // From entering Pending Approval (an edit in between does not restart it), not from Draft.
    let waited = u64::try_from(at(&approved) - at(&pending)).expect("in order");
    assert_eq!(cell(&cells, LatencyCell::SumMillis), waited, "{cells:?}");
    assert_eq!(cell(&cells, LatencyCell::Bucket(60)), 1, "{cells:?}");

    // Revoked, then approved again: a second wait.
    let revoked = s
        .fake
        .move_change_request(&key, "Pending Approval", &alice());
    let again = s.fake.move_change_request(&key, "Approved", &alice());
    s.deliver(&revoked).await;
    s.deliver(&again).await;
    let cells = latency_cells(&s).await;
    assert_eq!(cell(&cells, LatencyCell::Count), 2, "{cells:?}");
    let second = u64::try_from(at(&again) - at(&revoked)).expect("in order");
    assert_eq!(
        cell(&cells, LatencyCell::SumMillis),
        waited + second,
        "{cells:?}"
    );

    // A rejected CR approved later did not wait for that approval: not counted.
    let (other, created) = new_cr(&s, CrSpec::new("Rejected first").status("Rejected"));
    let approved = s.fake.move_change_request(&other, "Approved", &alice());
    s.deliver(&created).await;
    s.deliver(&approved).await;
    assert_eq!(cell(&latency_cells(&s).await, LatencyCell::Count), 2);
}

macro_rules! cr_tests {
    ($($case:ident),* $(,)?) => {
        mod redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(super::Backend::Redis).await;
                }
            )*
        }
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(super::Backend::Embedded).await;
                }
            )*
        }
    };
}

cr_tests!(
    approval_latency_is_the_wait_before_each_approval,
    out_of_order_late_and_duplicated_events_leave_the_newest_status,
    concurrent_redeliveries_alert_once,
    records_expire_after_their_ttl,
    a_miss_is_read_from_jira_and_kept,
    approvers_of_both_shapes_get_their_roles,
    budgets_and_signatures_are_read_from_webhook_text,
    slack_failures_neither_double_nor_block,
    the_dispatcher_sends_in_the_background,
    usage_alerts_fire_once_per_threshold,
);
