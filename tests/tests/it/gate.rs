//! The CR gate on the real binary: `hookbridge cr validate` over a table of CR states — status ×
//! approver role × PKI signature × `ENFORCE_PKI_VALIDATION` — with every cell's exit code checked
//! against the policy written out here on its own; `hookbridge gate`'s tier and environment table;
//! `--wait` (approved meanwhile, rejected meanwhile, timed out); the audit files and GitHub
//! Actions outputs. Keys are generated at test time.

use std::path::Path;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use chrono::Utc;
use hookbridge_tests::worker::default_cr_config;
use hookbridge_worker::alerts::AlertWaker;
use hookbridge_worker::audit::AuditLog;
use hookbridge_worker::change_requests::ChangeRequests;
use hookbridge_worker::change_requests::record::CrRecord;
use hookbridge_worker::pki::Algorithm;
use hookbridge_worker::pki::approval::{self, Statement};
use hookbridge_worker::pki::keys;
use hookbridge_worker::store::{EMBEDDED_FILE_NAME, Store};
use secrecy::SecretString;
use serde_json::{Value, json};

const PATIENCE: Duration = Duration::from_secs(30);

/// A data dir with CR records in its embedded store, trusted keys, and a signing key.
struct Bench {
    dir: tempfile::TempDir,
    cr: ChangeRequests,
    trusted: std::path::PathBuf,
    key: keys::SigningKey,
    stranger: keys::SigningKey,
}

async fn bench() -> Bench {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open_embedded(&dir.path().join(EMBEDDED_FILE_NAME)).expect("store");
    let cr = ChangeRequests {
        store: store.clone(),
        audit: AuditLog::open(&dir.path().join("audit"), "test", Some(store)),
        config: default_cr_config(),
        alerts: AlertWaker::default(),
    };
    let password = SecretString::from("test-password".to_owned());
    let mut made = Vec::new();
    for name in ["Change Manager", "Stranger"] {
        let written = keys::keygen(
            name,
            &dir.path().join("keys"),
            Algorithm::Ed25519,
            0,
            &password,
            30,
        )
        .expect("keygen");
        let pem = std::fs::read_to_string(&written.private_key).expect("read key");
        made.push((written, keys::open(&pem, &password).expect("open key")));
    }
    let trusted = dir.path().join("trusted");
    std::fs::create_dir(&trusted).expect("mkdir");
    std::fs::copy(&made[0].0.certificate, trusted.join("change-manager.crt")).expect("copy");
    let stranger = made.pop().expect("stranger").1;
    let key = made.pop().expect("key").1;
    Bench {
        dir,
        cr,
        trusted,
        key,
        stranger,
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Status {
    Approved,
    Pending,
    Rejected,
    Deleted,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Role {
    Present,
    Absent,
    NoApprovers,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Signature {
    None,
    Valid,
    Edited,
    OtherCr,
    Expired,
    Untrusted,
    Garbage,
}

/// The policy, written here independently of the product: what `cr validate` must answer.
fn expected(status: Status, role: Role, signature: Signature, enforce: bool) -> i32 {
    if status != Status::Approved || role != Role::Present {
        return 1;
    }
    if enforce && signature != Signature::Valid {
        return 1;
    }
    0
}

fn statement(cr: &str, expires_in: chrono::Duration) -> Statement {
    let now = Utc::now();
    Statement {
        cr_id: cr.into(),
        status: "Approved".into(),
        approver: "Alice Admin".into(),
        role: "Change Manager".into(),
        signed_at: now - chrono::Duration::hours(2),
        expires_at: now + expires_in,
    }
}

impl Bench {
    fn signature(&self, kind: Signature, cr: &str) -> Value {
        let sign = |key: &keys::SigningKey, s: Statement| {
            serde_json::to_string(&approval::sign(key, s).expect("sign")).expect("json")
        };
        match kind {
            Signature::None => Value::Null,
            Signature::Valid => json!(sign(&self.key, statement(cr, chrono::Duration::days(1)))),
            Signature::Edited => json!(
                sign(&self.key, statement(cr, chrono::Duration::days(1)))
                    .replace("Alice Admin", "Mallory")
            ),
            Signature::OtherCr => json!(sign(
                &self.key,
                statement("CR-999999", chrono::Duration::days(1))
            )),
            Signature::Expired => {
                json!(sign(&self.key, statement(cr, chrono::Duration::hours(-1))))
            }
            Signature::Untrusted => json!(sign(
                &self.stranger,
                statement(cr, chrono::Duration::days(1))
            )),
            Signature::Garbage => json!("approved by me, trust me"),
        }
    }

    /// Stores a CR in the given state, as a webhook would have.
    async fn store(&self, cr: &str, status: Status, role: Role, signature: Signature) {
        let approvers = match role {
            Role::Present => json!([{"displayName": "Alice Admin", "role": "Change Manager"}]),
            Role::Absent => json!([{"displayName": "Bob Builder", "role": "Developer"}]),
            Role::NoApprovers => Value::Null,
        };
        let status_name = match status {
            Status::Approved | Status::Deleted => "Approved",
            Status::Pending => "Pending Approval",
            Status::Rejected => "Rejected",
        };
        let issue = json!({
            "key": cr,
            "self": "https://example.atlassian.net/rest/api/2/issue/1",
            "fields": {
                "summary": "gate test", "status": {"name": status_name, "id": "1"},
                "project": {"key": "CR"}, "issuetype": {"name": "Change Request"},
                "description": "Budget: 1,000 tokens",
                "customfield_10102": approvers,
                "customfield_10103": self.signature(signature, cr),
            }
        });
        // As a webhook's `timestamp`: whole milliseconds (Jira's precision), a moment ago.
        let at = chrono::DateTime::from_timestamp_millis(Utc::now().timestamp_millis() - 1000)
            .expect("a time");
        let record = CrRecord::from_issue(
            &issue,
            &self.cr.config.fields,
            at,
            None,
            status == Status::Deleted,
        )
        .expect("record");
        self.cr
            .apply(None, &record, None, false)
            .await
            .expect("store the CR");
    }

    fn env(&self, enforce: bool) -> Vec<(&'static str, String)> {
        vec![
            ("HOOKBRIDGE_DATA_DIR", self.dir.path().display().to_string()),
            ("ENFORCE_PKI_VALIDATION", enforce.to_string()),
            (
                "HOOKBRIDGE_PKI_TRUSTED_DIR",
                self.trusted.display().to_string(),
            ),
        ]
    }

    fn audit_dir(&self) -> String {
        self.dir.path().join("gate-audit").display().to_string()
    }
}

async fn hookbridge(
    args: Vec<String>,
    env: Vec<(&'static str, String)>,
) -> (ExitStatus, Vec<String>) {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    hookbridge_tests::process::run_to_end("hookbridge", &args, &env, PATIENCE).await
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| (*a).to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cr_validate_answers_every_cell_of_the_decision_table() {
    let b = bench().await;
    let statuses = [
        Status::Approved,
        Status::Pending,
        Status::Rejected,
        Status::Deleted,
    ];
    let roles = [Role::Present, Role::Absent, Role::NoApprovers];
    let signatures = [
        Signature::None,
        Signature::Valid,
        Signature::Edited,
        Signature::OtherCr,
        Signature::Expired,
        Signature::Untrusted,
        Signature::Garbage,
    ];
    let mut cells = Vec::new();
    let mut n = 0;
    for status in statuses {
        for role in roles {
            for signature in signatures {
                n += 1;
                let cr = format!("CR-{n}");
                b.store(&cr, status, role, signature).await;
                for enforce in [false, true] {
                    cells.push((cr.clone(), status, role, signature, enforce));
                }
            }
        }
    }
    let mut false_passes = Vec::new();
    let mut wrong = Vec::new();
    for chunk in cells.chunks(8) {
        let mut running = tokio::task::JoinSet::new();
        for (cr, status, role, signature, enforce) in chunk.iter().cloned() {
            let args = strings(&[
                "cr",
                "validate",
                "agent-7",
                &cr,
                "--audit-dir",
                &b.audit_dir(),
            ]);
            let env = b.env(enforce);
            running.spawn(async move {
                let (exit, output) = hookbridge(args, env).await;
                (cr, status, role, signature, enforce, exit, output)
            });
        }
        while let Some(done) = running.join_next().await {
            let (cr, status, role, signature, enforce, exit, output) = done.expect("join");
            let want = expected(status, role, signature, enforce);
            let got = exit.code().unwrap_or(-1);
            if got == 0 && want != 0 {
                false_passes.push(format!(
                    "{cr} {status:?} {role:?} {signature:?} enforce={enforce}"
                ));
            }
            if got != want {
                wrong.push(format!(
                    "{cr} {status:?} {role:?} {signature:?} enforce={enforce}: exit {got}, want {want}: {}",
                    output.join(" | ")
                ));
            }
        }
    }
    assert!(false_passes.is_empty(), "FALSE PASSES: {false_passes:#?}");
    assert!(wrong.is_empty(), "{} cells wrong: {wrong:#?}", wrong.len());
    // A CR the store does not have, read from the store only: 1.
    let (exit, _) = hookbridge(
        strings(&[
            "cr",
            "validate",
            "agent-7",
            "CR-424242",
            "--source",
            "cache",
            "--audit-dir",
            &b.audit_dir(),
        ]),
        b.env(false),
    )
    .await;
    assert_eq!(exit.code(), Some(1));
    // Missing arguments: 2.
    let (exit, _) = hookbridge(strings(&["cr", "validate", "agent-7"]), b.env(false)).await;
    assert_eq!(exit.code(), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gate_follows_the_tier_and_environment_table_and_the_budget() {
    let b = bench().await;
    b.store("CR-1", Status::Approved, Role::Present, Signature::Valid)
        .await;
    b.store("CR-2", Status::Pending, Role::Present, Signature::Valid)
        .await;
    let gate = |tier: &str, env: &str, cr: Option<&str>| {
        let mut args = strings(&[
            "gate",
            "--tier",
            tier,
            "--environment",
            env,
            "--agent",
            "sec-agent",
            "--audit-dir",
            &b.audit_dir(),
        ]);
        if let Some(cr) = cr {
            args.extend(strings(&["--jira-cr-id", cr]));
        }
        hookbridge(args, b.env(true))
    };
    for tier in ["1", "2", "3", "4"] {
        for env in ["dev", "staging", "prod"] {
            let needs = env != "dev" && (tier == "3" || tier == "4");
            let (exit, output) = gate(tier, env, None).await;
            assert_eq!(
                exit.code(),
                Some(if needs { 1 } else { 0 }),
                "tier {tier} {env} without a CR: {output:?}"
            );
            let (exit, _) = gate(tier, env, Some("CR-1")).await;
            assert_eq!(
                exit.code(),
                Some(0),
                "tier {tier} {env} with an approved CR"
            );
            let (exit, _) = gate(tier, env, Some("CR-2")).await;
            assert_eq!(
                exit.code(),
                Some(if needs { 1 } else { 0 }),
                "tier {tier} {env} with a pending CR"
            );
        }
    }
    for (tier, env) in [("0", "prod"), ("5", "prod"), ("3", "qa")] {
        let (exit, _) = gate(tier, env, Some("CR-1")).await;
        assert_eq!(exit.code(), Some(2), "tier {tier} {env}");
    }
    // Over budget: recorded usage at the CR's budget stops it.
    let (exit, output) = hookbridge(
        strings(&["cr", "usage", "CR-1", "--tokens", "1000"]),
        b.env(false),
    )
    .await;
    assert!(exit.success(), "{output:?}");
    let (exit, output) = gate("4", "prod", Some("CR-1")).await;
    assert_eq!(exit.code(), Some(1));
    assert!(
        output.join("\n").contains("over its token budget"),
        "{output:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_passes_when_approved_fails_at_once_when_rejected_and_times_out() {
    let b = bench().await;
    b.store("CR-1", Status::Pending, Role::Present, Signature::None)
        .await;
    b.store("CR-2", Status::Pending, Role::Present, Signature::None)
        .await;
    b.store("CR-3", Status::Pending, Role::Present, Signature::None)
        .await;
    let wait = |cr: &str, limit: &str| {
        hookbridge(
            strings(&[
                "gate",
                "--tier",
                "3",
                "--environment",
                "prod",
                "--agent",
                "a",
                "--jira-cr-id",
                cr,
                "--wait",
                limit,
                "--audit-dir",
                &b.audit_dir(),
            ]),
            b.env(false),
        )
    };
    // A wait in progress when the store learns `status` for `cr`.
    let stored_while_waiting = |cr: &'static str, status: Status| {
        let waiting = tokio::spawn(wait(cr, "60s"));
        let b = &b;
        async move {
            tokio::time::sleep(Duration::from_millis(700)).await;
            b.store(cr, status, Role::Present, Signature::None).await;
            waiting.await.expect("join")
        }
    };
    // Approved while waiting.
    let started = Instant::now();
    let approved_at = Instant::now() + Duration::from_millis(700);
    let (exit, output) = stored_while_waiting("CR-1", Status::Approved).await;
    assert_eq!(exit.code(), Some(0), "{output:?}");
    assert!(
        approved_at.elapsed() < Duration::from_secs(5),
        "reacted late"
    );
    // Rejected while waiting: at once, not at the end of the wait.
    let (exit, output) = stored_while_waiting("CR-2", Status::Rejected).await;
    assert_eq!(exit.code(), Some(1), "{output:?}");
    assert!(output.join("\n").contains("rejected"), "{output:?}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the rejection did not end the wait"
    );
    // Still pending when the time is up.
    let (exit, output) = wait("CR-3", "1s").await;
    assert_eq!(exit.code(), Some(1));
    assert!(output.join("\n").contains("timed out"), "{output:?}");
    // Unknown to the store and no Jira to ask: a wait still ends when a webhook brings it.
    let (exit, output) = stored_while_waiting("CR-4", Status::Approved).await;
    assert_eq!(exit.code(), Some(0), "{output:?}");
    // …and when none does, the reason says why nothing could be read.
    let (exit, output) = wait("CR-5", "1s").await;
    assert_eq!(exit.code(), Some(1), "{output:?}");
    assert!(
        output.join("\n").contains("JIRA_BASE_URL is not set"),
        "{output:?}"
    );
}

/// `ENFORCE_PKI_VALIDATION` with the trusted keys named in the configuration file's `[pki]`
/// table (paths relative to the file) instead of `HOOKBRIDGE_PKI_TRUSTED_DIR`; `pki verify` and
/// `config check` read the same table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trusted_keys_can_come_from_the_config_file() {
    let b = bench().await;
    b.store("CR-1", Status::Approved, Role::Present, Signature::Valid)
        .await;
    b.store(
        "CR-2",
        Status::Approved,
        Role::Present,
        Signature::Untrusted,
    )
    .await;
    let config = b.dir.path().join("hookbridge.toml");
    std::fs::write(
        &config,
        "[pki]\ntrusted_keys = [\"trusted/change-manager.crt\"]\n",
    )
    .expect("write config");
    let missing = b.dir.path().join("missing.toml");
    std::fs::write(&missing, "[pki]\ntrusted_keys = [\"nowhere.pub\"]\n").expect("write");
    let env = |config: Option<&Path>| {
        let mut env = vec![
            ("HOOKBRIDGE_DATA_DIR", b.dir.path().display().to_string()),
            ("ENFORCE_PKI_VALIDATION", "true".to_owned()),
        ];
        if let Some(config) = config {
            env.push(("HOOKBRIDGE_CONFIG", config.display().to_string()));
        }
        env
    };
    let validate =
        |cr: &str| strings(&["cr", "validate", "agent", cr, "--audit-dir", &b.audit_dir()]);
    let (exit, output) = hookbridge(validate("CR-1"), env(Some(&config))).await;
    assert_eq!(exit.code(), Some(0), "{output:?}");
    let (exit, output) = hookbridge(validate("CR-2"), env(Some(&config))).await;
    assert_eq!(exit.code(), Some(1), "{output:?}");
    assert!(
        output.join("\n").contains("signature invalid"),
        "{output:?}"
    );
    // Enforced with no key trusted anywhere, or a named key that is not there: configuration.
    let (exit, output) = hookbridge(validate("CR-1"), env(None)).await;
    assert_eq!(exit.code(), Some(2), "{output:?}");
    assert!(output.join("\n").contains("[pki]"), "{output:?}");
    let (exit, output) = hookbridge(validate("CR-1"), env(Some(&missing))).await;
    assert_eq!(exit.code(), Some(2), "{output:?}");
    assert!(output.join("\n").contains("nowhere.pub"), "{output:?}");

    let signature = b.dir.path().join("CR-1-signature.json");
    let signed = b.signature(Signature::Valid, "CR-1");
    std::fs::write(&signature, signed.as_str().expect("a JSON text")).expect("write");
    let config_arg = config.display().to_string();
    let signature_arg = signature.display().to_string();
    let (exit, output) = hookbridge(
        strings(&[
            "pki",
            "verify",
            "--signature",
            &signature_arg,
            "--cr-id",
            "CR-1",
            "--config",
            &config_arg,
        ]),
        Vec::new(),
    )
    .await;
    assert_eq!(exit.code(), Some(0), "{output:?}");
    let (exit, output) = hookbridge(
        strings(&[
            "pki",
            "verify",
            "--signature",
            &signature_arg,
            "--cr-id",
            "CR-1",
        ]),
        Vec::new(),
    )
    .await;
    assert_eq!(exit.code(), Some(2), "no trusted keys at all: {output:?}");
    let (exit, output) = hookbridge(strings(&["config", "check", &config_arg]), Vec::new()).await;
    assert_eq!(exit.code(), Some(0), "{output:?}");
    assert!(
        output
            .iter()
            .any(|l| l.contains("pki: trusts change-manager")),
        "{output:?}"
    );
    let missing_arg = missing.display().to_string();
    let (exit, output) = hookbridge(strings(&["config", "check", &missing_arg]), Vec::new()).await;
    assert_eq!(exit.code(), Some(1), "{output:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decisions_are_audited_and_written_to_github_actions() {
    let b = bench().await;
    b.store("CR-1", Status::Approved, Role::Present, Signature::None)
        .await;
    let outputs = b.dir.path().join("github-output");
    let summary = b.dir.path().join("github-summary.md");
    let mut env = b.env(false);
    env.push(("GITHUB_OUTPUT", outputs.display().to_string()));
    env.push(("GITHUB_STEP_SUMMARY", summary.display().to_string()));
    let (exit, output) = hookbridge(
        strings(&[
            "gate",
            "--tier",
            "4",
            "--environment",
            "prod",
            "--agent",
            "sec-agent",
            "--jira-cr-id",
            "CR-1",
            "--audit-dir",
            &b.audit_dir(),
        ]),
        env,
    )
    .await;
    assert!(exit.success(), "{output:?}");
    let written = std::fs::read_to_string(&outputs).expect("GITHUB_OUTPUT");
    assert!(written.contains("decision=pass\n"), "{written}");
    let id = std::fs::read_to_string(Path::new(&b.audit_dir()).join("jira-approval-audit-id.txt"))
        .expect("the id file")
        .trim()
        .to_owned();
    assert!(written.contains(&format!("audit-id={id}\n")), "{written}");
    let file = written
        .lines()
        .find_map(|l| l.strip_prefix("audit-file="))
        .expect("audit-file output");
    let audit: Value =
        serde_json::from_str(&std::fs::read_to_string(file).expect("audit file")).expect("JSON");
    assert_eq!(audit["audit_id"], id.as_str());
    assert_eq!(audit["decision"], "pass");
    assert_eq!(audit["agent"], "sec-agent");
    assert!(
        output.iter().any(|l| l == &format!("audit: {file}")),
        "the path is printed: {output:?}"
    );
    let markdown = std::fs::read_to_string(&summary).expect("summary");
    assert!(
        markdown.contains("PASS") && markdown.contains(&id),
        "{markdown}"
    );
    let trail = hookbridge_tests::audit::records(&b.dir.path().join("audit"));
    assert!(
        trail
            .iter()
            .any(|r| r["action"] == "gate.decision" && r["ids"]["audit"] == id.as_str())
    );
}

/// The gate's table crossed with every CR state: for each tier and environment, a CR that is
/// approved, pending, rejected, deleted, approved without the role, or missing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_tier_and_environment_against_every_cr_state() {
    let b = bench().await;
    let states = [
        ("CR-1", Some((Status::Approved, Role::Present))),
        ("CR-2", Some((Status::Pending, Role::Present))),
        ("CR-3", Some((Status::Rejected, Role::Present))),
        ("CR-4", Some((Status::Deleted, Role::Present))),
        ("CR-5", Some((Status::Approved, Role::Absent))),
        ("CR-6", Some((Status::Approved, Role::NoApprovers))),
        ("CR-7", None),
    ];
    for (cr, state) in states {
        if let Some((status, role)) = state {
            b.store(cr, status, role, Signature::None).await;
        }
    }
    let mut wrong = Vec::new();
    for tier in 1..=4u8 {
        for env in ["dev", "staging", "prod"] {
            let needs = env != "dev" && tier >= 3;
            let mut running = tokio::task::JoinSet::new();
            for (cr, state) in states {
                let args = strings(&[
                    "gate",
                    "--tier",
                    &tier.to_string(),
                    "--environment",
                    env,
                    "--agent",
                    "a",
                    "--jira-cr-id",
                    cr,
                    "--audit-dir",
                    &b.audit_dir(),
                ]);
                let want = if !needs {
                    0
                } else {
                    match state {
                        Some((Status::Approved, Role::Present)) => 0,
                        // Not in the store and no Jira to ask: cannot be checked (configuration).
                        None => 2,
                        _ => 1,
                    }
                };
                let env_vars = b.env(false);
                running.spawn(async move {
                    let (exit, output) = hookbridge(args, env_vars).await;
                    (tier, env, cr, want, exit.code(), output)
                });
            }
            while let Some(done) = running.join_next().await {
                let (tier, env, cr, want, got, output) = done.expect("join");
                if got != Some(want) {
                    wrong.push(format!(
                        "tier {tier} {env} {cr}: exit {got:?}, want {want}: {}",
                        output.join(" | ")
                    ));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

/// `--source`: the store's record when fresh, Jira's when asked or when the store has none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cr_validate_reads_from_the_source_it_is_told() {
    let b = bench().await;
    let jira = hookbridge_tests::jira_fake::JiraFake::start(
        hookbridge_tests::jira_fake::FakeConfig::default(),
    )
    .await;
    let user = hookbridge_tests::jira_fake::JiraUser::new("u1", "Alice Admin");
    let spec = |status: &str| {
        hookbridge_tests::jira_fake::CrSpec::new("source test")
            .status(status)
            .field(
                "customfield_10102",
                json!([user.with_role("Change Manager")]),
            )
    };
    // CR-1: fresh (store and Jira agree: approved). CR-2: stale (the store missed the rejection).
    // CR-3: a miss (only Jira has it, approved). CR-4: unknown everywhere.
    let (fresh, _) = jira.create_change_request(spec("Approved"), &user);
    let (stale, _) = jira.create_change_request(spec("Rejected"), &user);
    let (missed, _) = jira.create_change_request(spec("Approved"), &user);
    b.store(&fresh, Status::Approved, Role::Present, Signature::None)
        .await;
    b.store(&stale, Status::Approved, Role::Present, Signature::None)
        .await;
    let mut env = b.env(false);
    env.push(("JIRA_BASE_URL", jira.base_url()));
    env.push(("JIRA_EMAIL", jira.email()));
    env.push(("JIRA_API_TOKEN", jira.token()));
    let cases = [
        (fresh.as_str(), "cache", 0),
        (fresh.as_str(), "auto", 0),
        (fresh.as_str(), "jira", 0),
        // The store is trusted as the webhooks keep it; Jira itself knows better.
        (stale.as_str(), "cache", 0),
        (stale.as_str(), "jira", 1),
        (missed.as_str(), "cache", 1),
        (missed.as_str(), "auto", 0),
        (missed.as_str(), "jira", 0),
        ("CR-4040", "cache", 1),
        ("CR-4040", "auto", 1),
        ("CR-4040", "jira", 1),
    ];
    for (cr, source, want) in cases {
        let (exit, output) = hookbridge(
            strings(&[
                "cr",
                "validate",
                "agent",
                cr,
                "--source",
                source,
                "--audit-dir",
                &b.audit_dir(),
            ]),
            env.clone(),
        )
        .await;
        assert_eq!(
            exit.code(),
            Some(want),
            "{cr} --source {source}: {output:?}"
        );
        if want == 0 {
            let says = if source == "cache" || (source == "auto" && cr != missed) {
                "cache"
            } else {
                "jira"
            };
            assert!(
                output.join("\n").contains(&format!("read from {says}")),
                "{cr} --source {source}: {output:?}"
            );
        }
    }
    // After `--source jira`, the store holds Jira's answer: the stale approval is gone.
    let (exit, _) = hookbridge(
        strings(&[
            "cr",
            "validate",
            "agent",
            &stale,
            "--source",
            "cache",
            "--audit-dir",
            &b.audit_dir(),
        ]),
        env.clone(),
    )
    .await;
    assert_eq!(exit.code(), Some(1));
}
