//! The governance half end to end, with the real binaries: a signed Jira CR webhook posted to
//! `hookbridge run` shows in `hookbridge cr status`, Slack gets exactly one alert, and the audit
//! trail verifies (and catches tampering) — on the embedded store and on Redis. Then the `cr`
//! commands on their own (Jira fallback, usage and its alerts, exit codes), and two worker
//! processes and CLI commands writing the audit trail at once.

use std::path::Path;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hookbridge_shared::queue::embedded::{EmbeddedOptions, EmbeddedQueue};
use hookbridge_tests::github::{Delivery, GithubIssue, delivery_id, envelope};
use hookbridge_tests::ingest::{PATIENCE, TestIngest, http};
use hookbridge_tests::jira_fake::{CrSpec, FakeConfig, JiraFake, JiraUser, WebhookDelivery};
use hookbridge_tests::process::Proc;
use hookbridge_tests::services::store_env;
use hookbridge_tests::slack_fake::{SlackConfig, SlackFake, wait_until};
use serde_json::{Value, json};

const SECRET: &str = "jira-gov-s3cret-2e7a";
const GITHUB_SECRET: &str = "github-gov-s3cret";

fn approver() -> JiraUser {
    JiraUser::new("acc-1", "Grace Governance")
}

/// Runs `hookbridge ARGS` to completion.
async fn hookbridge(args: &[&str], env: &[(&'static str, String)]) -> (ExitStatus, Vec<String>) {
    hookbridge_tests::process::run_to_end("hookbridge", args, env, PATIENCE).await
}

/// The JSON line of a command's output.
fn json_line(output: &[String]) -> Value {
    let line = output
        .iter()
        .find(|l| l.starts_with('{') && !l.contains("\"level\""))
        .unwrap_or_else(|| panic!("no JSON output: {output:?}"));
    serde_json::from_str(line).expect("JSON")
}

/// `hookbridge run` taking signed Jira webhooks, on the store [`store_env`] gave, with `extra`.
fn start_run(store: &[(&'static str, String)], extra: &[(&str, String)]) -> TestIngest {
    let mut run = TestIngest::run_mode().env("JIRA_WEBHOOK_SECRET", SECRET);
    for (k, v) in store.iter().chain(extra) {
        run = run.env(k, v.clone());
    }
    run.start()
}

/// A CR created pending with a Change Manager among its approvers, and its approval: the key
/// and the two webhooks.
fn pending_then_approved(
    jira: &JiraFake,
    summary: &str,
) -> (String, WebhookDelivery, WebhookDelivery) {
    let (key, created) = jira.create_change_request(
        CrSpec::new(summary).status("Pending Approval").field(
            "customfield_10102",
            json!([approver().with_role("Change Manager")]),
        ),
        &approver(),
    );
    let approved = jira.move_change_request(&key, "Approved", &approver());
    (key, created, approved)
}

async fn a_signed_cr_update_shows_alerts_once_and_is_audited(redis: bool) {
    let jira = JiraFake::start(FakeConfig::default()).await;
    let slack = SlackFake::start(SlackConfig::default()).await;
    let store = store_env(redis, "hbgov");
    let mut run = start_run(&store, &[("SLACK_WEBHOOK_URL", slack.url())]);
    let (key, created, approved) = pending_then_approved(&jira, "Deploy the triage agent to prod");
    let client = http();
    let url = run.at("/webhooks/jira");
    assert_eq!(created.post(&client, &url, SECRET).await, 202);
    assert_eq!(approved.post(&client, &url, SECRET).await, 202);
    // Jira retries the approval: same identifier, same body.
    assert_eq!(approved.post(&client, &url, SECRET).await, 202);
    // A delivery without the secret is refused.
    assert_eq!(approved.post(&client, &url, "wrong").await, 401);

    let mut env = vec![("HOOKBRIDGE_DATA_DIR", run.dir.path().display().to_string())];
    env.extend(store.clone());
    let deadline = Instant::now() + PATIENCE;
    let status = loop {
        let (exit, output) = hookbridge(&["cr", "status", &key, "--json"], &env).await;
        if exit.success() {
            let status = json_line(&output);
            if status["status"] == "Approved" {
                break status;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{key} never showed as approved:\n{}",
            run.printed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(status["source"], "cache");
    assert_eq!(status["key"], key.as_str());
    assert_eq!(status["approvers"][0]["name"], "Grace Governance");
    assert_eq!(status["approvers"][0]["role"], "Change Manager");
    assert!(status["signature"].is_null());
    assert!(status["budget_tokens"].is_null());
    assert!(status["updated_at"].is_string() && status["status_id"].is_string());

    wait_until("the Slack alert", PATIENCE, || !slack.messages().is_empty()).await;
    // Nothing more arrives: one transition, one alert, despite the redelivery.
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        assert_eq!(slack.messages().len(), 1, "{:#?}", slack.messages());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let message = &slack.messages()[0];
    let text = message["text"].as_str().unwrap_or_default();
    assert!(
        text.contains(&key) && text.contains("approved"),
        "{message}"
    );
    assert!(text.contains("Grace Governance"), "{message}");

    run.proc.terminate();
    assert!(run.proc.wait_exit(PATIENCE).success());
    let (exit, output) = hookbridge(&["audit", "verify"], &env).await;
    assert!(exit.success(), "{}", output.join("\n"));
    let records = hookbridge_tests::audit::records(&run.dir.path().join("audit"));
    for action in ["event.accepted", "cr.status.changed", "slack.alert.sent"] {
        assert!(
            records.iter().any(|r| r["action"] == action),
            "no {action} in the trail"
        );
    }
    // One byte changed in the trail: caught, with file and line.
    let audit_dir = run.dir.path().join("audit");
    let file = std::fs::read_dir(&audit_dir)
        .expect("audit dir")
        .next()
        .expect("a file")
        .expect("entry")
        .path();
    let text = std::fs::read_to_string(&file).expect("read");
    std::fs::write(
        &file,
        text.replacen("cr.status.changed", "cr.status.chanGed", 1),
    )
    .expect("write");
    let (exit, output) = hookbridge(&["audit", "verify"], &env).await;
    assert_eq!(exit.code(), Some(1), "{}", output.join("\n"));
    let name = file
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    assert!(
        output.join("\n").contains(&format!("{name}:")),
        "{}",
        output.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_cr_update_shows_alerts_once_and_is_audited_on_the_embedded_store() {
    a_signed_cr_update_shows_alerts_once_and_is_audited(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_cr_update_shows_alerts_once_and_is_audited_on_redis() {
    a_signed_cr_update_shows_alerts_once_and_is_audited(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cr_status_and_usage_from_the_command_line() {
    let jira = JiraFake::start(FakeConfig::default()).await;
    let slack = SlackFake::start(SlackConfig::default()).await;
    let (key, _) = jira.create_change_request(
        CrSpec::new("Agent budget")
            .status("Approved")
            .description("Budget: 1,000 tokens"),
        &approver(),
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let data = ("HOOKBRIDGE_DATA_DIR", dir.path().display().to_string());
    let with_jira = vec![
        data.clone(),
        ("JIRA_BASE_URL", jira.base_url()),
        ("JIRA_EMAIL", jira.email()),
        ("JIRA_API_TOKEN", jira.token()),
        ("SLACK_WEBHOOK_URL", slack.url()),
    ];
    let (exit, output) = hookbridge(&["cr", "status", &key], &with_jira).await;
    let text = output.join("\n");
    assert!(exit.success(), "{text}");
    assert!(
        text.contains("Approved") && text.contains("read from Jira"),
        "{text}"
    );
    assert!(text.contains("0 of 1000 tokens used"), "{text}");
    let (_, output) = hookbridge(&["cr", "status", &key, "--json"], &with_jira).await;
    assert_eq!(json_line(&output)["source"], "cache");
    let (_, output) = hookbridge(&["cr", "status", &key, "--json", "--refresh"], &with_jira).await;
    assert_eq!(json_line(&output)["source"], "jira");

    // Exit codes: unknown CR 1, a key that is not one 2, a miss with no Jira to ask 2.
    let (exit, output) = hookbridge(&["cr", "status", "CR-4040"], &with_jira).await;
    assert_eq!(exit.code(), Some(1), "{}", output.join("\n"));
    assert!(output.join("\n").contains("not found in Jira"));
    let (exit, _) = hookbridge(&["cr", "status", "not a key"], &with_jira).await;
    assert_eq!(exit.code(), Some(2));
    let (exit, output) = hookbridge(&["cr", "status", "CR-77"], std::slice::from_ref(&data)).await;
    assert_eq!(exit.code(), Some(2));
    assert!(
        output.join("\n").contains("JIRA_BASE_URL"),
        "{}",
        output.join("\n")
    );
    let (exit, _) = hookbridge(&["cr", "usage", &key, "--tokens", "0"], &with_jira).await;
    assert_eq!(exit.code(), Some(2));

    // Usage: 80 % alerts once, 100 % alerts once.
    let usage = |tokens: &'static str| {
        let env = with_jira.clone();
        let key = key.clone();
        async move {
            let (exit, output) = hookbridge(
                &[
                    "cr",
                    "usage",
                    &key,
                    "--tokens",
                    tokens,
                    "--agent",
                    "triage-bot",
                    "--json",
                ],
                &env,
            )
            .await;
            assert!(exit.success(), "{}", output.join("\n"));
            json_line(&output)
        }
    };
    let first = usage("800").await;
    assert_eq!(
        (first["used_tokens"].clone(), first["budget_tokens"].clone()),
        (json!(800), json!(1000))
    );
    assert_eq!(first["percent"], 80.0);
    assert_eq!(first["alerts"], json!(["budget_warning"]));
    assert_eq!(usage("100").await["alerts"], json!([]));
    assert_eq!(usage("100").await["alerts"], json!(["budget_exhausted"]));
    assert_eq!(usage("5").await["alerts"], json!([]));
    wait_until("both usage alerts in Slack", PATIENCE, || {
        slack.messages().len() == 2
    })
    .await;
    let (_, output) = hookbridge(&["cr", "status", &key, "--json"], &with_jira).await;
    assert_eq!(json_line(&output)["budget_used_tokens"], 1005);
    let (exit, output) = hookbridge(&["audit", "verify"], &[data]).await;
    assert!(exit.success(), "{}", output.join("\n"));
}

fn queue(dir: &Path) -> EmbeddedQueue {
    EmbeddedQueue::open(EmbeddedOptions::in_dir(dir, "queue.db")).expect("embedded queue")
}

/// Two worker processes and several CLI commands write the audit trail at the same time: every
/// chain stays valid.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_and_the_cli_keep_every_audit_chain_valid() {
    let jira = JiraFake::start(FakeConfig::default()).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let q = queue(dir.path());
    let data = ("HOOKBRIDGE_DATA_DIR", dir.path().display().to_string());
    let env = vec![
        data.clone(),
        ("JIRA_PROJECT_KEY", "DEMO".to_owned()),
        ("WORKER_CONCURRENCY", "4".to_owned()),
    ];
    let mut workers: Vec<Proc> = (0..2)
        .map(|_| Proc::spawn("hookbridge-worker", &[], &env))
        .collect();
    // Both consuming before any work arrives, or the first to start may take it all.
    for worker in &mut workers {
        worker.wait_for_line("worker consuming", PATIENCE);
    }
    // Enough work that both workers get some of it.
    for number in 1..=150 {
        let issue = GithubIssue::new("octo/audit", number);
        q.send(Bytes::from(envelope(
            "issues",
            &delivery_id(),
            &issue.event("opened"),
        )))
        .await
        .expect("enqueue");
    }
    let (key, created) = jira.create_change_request(CrSpec::new("Chained"), &approver());
    q.send(Bytes::from(created.envelope()))
        .await
        .expect("enqueue");
    for status in ["Pending Approval", "Approved", "Rejected"] {
        let moved = jira.move_change_request(&key, status, &approver());
        q.send(Bytes::from(moved.envelope()))
            .await
            .expect("enqueue");
    }
    let mut cli = tokio::task::JoinSet::new();
    for i in 0..4 {
        let env = vec![data.clone()];
        let key = key.clone();
        cli.spawn(async move {
            hookbridge(
                &[
                    "cr",
                    "usage",
                    &key,
                    "--tokens",
                    "10",
                    "--agent",
                    &format!("a{i}"),
                ],
                &env,
            )
            .await
        });
    }
    while let Some(done) = cli.join_next().await {
        let (exit, output) = done.expect("join");
        assert!(exit.success(), "{}", output.join("\n"));
    }
    // What the workers said beyond routine work: the first thing to read when a check fails.
    let remarks = |workers: &[Proc]| {
        workers
            .iter()
            .flat_map(Proc::output)
            .filter(|l| !l.contains(r#""level":"INFO""#) || l.contains("given back"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let deadline = Instant::now() + PATIENCE;
    while q.depth().await.unwrap_or(1) > 0 {
        assert!(
            Instant::now() < deadline,
            "the workers did not empty the queue; workers:\n{}",
            remarks(&workers)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for worker in &mut workers {
        worker.terminate();
        let status = worker.wait_exit(PATIENCE);
        assert!(
            status.success(),
            "a worker did not stop cleanly ({status}): {}",
            worker.output().join("\n")
        );
    }
    let (exit, output) = hookbridge(&["audit", "verify", "--json"], &[data]).await;
    assert!(
        exit.success(),
        "{}\nworkers:\n{}",
        output.join("\n"),
        remarks(&workers)
    );
    let report = json_line(&output);
    let records = hookbridge_tests::audit::records(&dir.path().join("audit"));
    let chains_of = |role: &str| {
        let mut chains: Vec<&str> = records
            .iter()
            .filter_map(|r| r["chain"].as_str())
            .filter(|c| c.starts_with(role))
            .collect();
        chains.sort_unstable();
        chains.dedup();
        chains.len()
    };
    assert_eq!(chains_of("worker."), 2, "both workers wrote: {report}");
    assert_eq!(chains_of("cli."), 4, "every CLI command wrote: {report}");
    // Every event was taken up. An attempt given back (a lock another task held past its wait,
    // a store that did not answer in time) is accepted again when it comes back: the audit
    // trail records attempts, and those are not this test's subject.
    let mut accepted: Vec<&str> = records
        .iter()
        .filter(|r| r["action"] == "event.accepted")
        .filter_map(|r| r["ids"]["delivery"].as_str())
        .collect();
    let attempts = accepted.len();
    accepted.sort_unstable();
    accepted.dedup();
    assert_eq!(
        accepted.len(),
        154,
        "every event accepted ({attempts} attempts); workers:\n{}",
        remarks(&workers)
    );
}

/// Waits until `hookbridge cr status KEY` shows `status`.
async fn wait_for_status(key: &str, status: &str, env: &[(&'static str, String)]) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let (exit, output) = hookbridge(&["cr", "status", key, "--json"], env).await;
        if exit.success() && json_line(&output)["status"] == status {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{key} never showed as {status}: {output:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The governance metrics (README, "Governance metrics"): gate decisions made by short-lived CLI
/// runs, failed CR checks and one approval's latency — the latency exactly the time between the
/// two Jira events, counted once despite Jira's redelivery — on the worker's own listener
/// (`WORKER_METRICS_BIND`) and on `hookbridge run`'s `/metrics` beside the ingest's figures.
async fn governance_metrics_add_up_across_processes(redis: bool) {
    let jira = JiraFake::start(FakeConfig::default()).await;
    let store = store_env(redis, "hbgov");
    let mut run = start_run(
        &store,
        &[
            ("WORKER_METRICS_BIND", "127.0.0.1:0".to_owned()),
            ("GITHUB_WEBHOOK_SECRET", GITHUB_SECRET.to_owned()),
            ("JIRA_BASE_URL", jira.base_url()),
            ("JIRA_EMAIL", jira.email()),
            ("JIRA_API_TOKEN", jira.token()),
            ("JIRA_PROJECT_KEY", "DEMO".to_owned()),
        ],
    );
    let worker_metrics = run
        .proc
        .wait_for("the worker metrics URL", PATIENCE, |line| {
            line.trim()
                .strip_prefix("worker metrics ")
                .map(|url| url.trim().to_owned())
        });
    let (key, created, approved) = pending_then_approved(&jira, "Ship the agent");
    let client = http();
    let url = run.at("/webhooks/jira");
    let mut env = vec![("HOOKBRIDGE_DATA_DIR", run.dir.path().display().to_string())];
    env.extend(store.clone());
    // The worker handles deliveries concurrently: the approval must find the pending CR stored
    // (an approval seen first has no wait to measure).
    assert_eq!(created.post(&client, &url, SECRET).await, 202);
    wait_for_status(&key, "Pending Approval", &env).await;
    for delivery in [&approved, &approved] {
        assert_eq!(delivery.post(&client, &url, SECRET).await, 202);
    }
    wait_for_status(&key, "Approved", &env).await;

    let audit_dir = run.dir.path().join("gate-audit").display().to_string();
    let runs: [(&[&str], i32); 5] = [
        (
            &[
                "gate",
                "--tier",
                "3",
                "--environment",
                "prod",
                "--jira-cr-id",
                &key,
            ],
            0,
        ),
        (&["gate", "--tier", "1", "--environment", "prod"], 0),
        (&["gate", "--tier", "3", "--environment", "dev"], 0),
        (&["gate", "--tier", "4", "--environment", "prod"], 1),
        (&["cr", "validate", "agent", &key, "Security Officer"], 1),
    ];
    for (args, want) in runs {
        let mut args = args.to_vec();
        if args[0] == "gate" {
            args.extend(["--agent", "a"]);
        }
        args.extend(["--audit-dir", &audit_dir]);
        let (exit, output) = hookbridge(&args, &env).await;
        assert_eq!(exit.code(), Some(want), "{args:?}: {output:?}");
    }

    // A GitHub issue too, so that the pipeline's Jira figures have something to show.
    let issue = Delivery::github(
        "issues",
        &GithubIssue::new("octo/metrics", 1).event("opened"),
    )
    .signed(GITHUB_SECRET);
    let answer = issue
        .post(&client, &run.at("/webhooks/github"))
        .send()
        .await
        .expect("post");
    assert_eq!(answer.status(), 202);
    let deadline = Instant::now() + PATIENCE;
    while jira.count_issues() < 1 {
        assert!(
            Instant::now() < deadline,
            "the GitHub issue never reached Jira"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let at = |d: &WebhookDelivery| d.payload()["timestamp"].as_i64().expect("a timestamp");
    let latency = (at(&approved) - at(&created)) as f64 / 1000.0;
    let worker_page = hookbridge_tests::metrics::scrape(&worker_metrics).await;
    let run_page = hookbridge_tests::metrics::scrape(&run.at("/metrics")).await;
    assert!(
        run_page.contains("hookbridge_http_requests_total"),
        "the ingest's own figures are there too:\n{run_page}"
    );
    for page in [&worker_page, &run_page] {
        let value = |series: &str| hookbridge_tests::metrics::sample(page, series);
        let decisions = "hookbridge_gate_decisions_total";
        for (labels, count) in [
            (r#"command="gate",decision="pass",reason="approved""#, 1.0),
            (r#"command="gate",decision="pass",reason="low_tier""#, 1.0),
            (
                r#"command="gate",decision="pass",reason="dev_environment""#,
                1.0,
            ),
            (r#"command="gate",decision="fail",reason="no_cr_id""#, 1.0),
            (
                r#"command="cr_validate",decision="fail",reason="role_missing""#,
                1.0,
            ),
        ] {
            assert_eq!(
                value(&format!("{decisions}{{{labels}}}")),
                Some(count),
                "{labels}:\n{page}"
            );
        }
        // A failed CR check is one where a CR was checked: not the run that named none.
        let failures = "hookbridge_cr_check_failures_total";
        assert_eq!(
            value(&format!(
                r#"{failures}{{command="cr_validate",reason="role_missing"}}"#
            )),
            Some(1.0),
            "{page}"
        );
        assert_eq!(
            page.lines()
                .filter(|l| l.starts_with(failures) && !l.starts_with('#'))
                .count(),
            1,
            "{page}"
        );
        let histogram = "hookbridge_cr_approval_latency_seconds";
        assert_eq!(value(&format!("{histogram}_count")), Some(1.0), "{page}");
        let sum = value(&format!("{histogram}_sum")).expect("a sum");
        assert!((sum - latency).abs() < 1e-6, "sum {sum}, want {latency}");
        assert_eq!(
            value(&format!(r#"{histogram}_bucket{{le="60"}}"#)),
            Some(1.0),
            "{page}"
        );
        assert_eq!(value("hookbridge_worker_store_up"), Some(1.0), "{page}");
    }
    the_dashboard_queries_only_what_exists(&run_page);
    run.proc.terminate();
    assert!(run.proc.wait_exit(PATIENCE).success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn governance_metrics_add_up_across_processes_on_the_embedded_store() {
    governance_metrics_add_up_across_processes(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn governance_metrics_add_up_across_processes_on_redis() {
    governance_metrics_add_up_across_processes(true).await;
}

/// A metrics address that is not one, or is taken: refused at start, naming the key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_worker_metrics_address_is_refused_at_start() {
    let dir = tempfile::tempdir().expect("temp dir");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let taken = taken.local_addr().expect("address").to_string();
    for address in ["nonsense", taken.as_str()] {
        let env = [
            ("HOOKBRIDGE_DATA_DIR", dir.path().display().to_string()),
            ("WORKER_METRICS_BIND", address.to_owned()),
        ];
        let (exit, output) =
            hookbridge_tests::process::run_to_end("hookbridge-worker", &[], &env, PATIENCE).await;
        assert_eq!(exit.code(), Some(2), "{address}: {output:?}");
        assert!(
            output.join("\n").contains("WORKER_METRICS_BIND"),
            "{address}: {output:?}"
        );
    }
}

/// Every metric the Grafana dashboard (`infra/grafana/hookbridge.json`) queries is on a live
/// `/metrics` page (`page`: `hookbridge run`'s, which shows the ingest's and the worker's): a
/// renamed metric cannot leave a panel silently empty.
fn the_dashboard_queries_only_what_exists(page: &str) {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../infra/grafana/hookbridge.json"
    );
    let dashboard: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("the dashboard")).expect("JSON");
    let panels = dashboard["panels"].as_array().expect("panels");
    let exposed: std::collections::BTreeSet<&str> = page
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .collect();
    let name = regex::Regex::new(r"hookbridge_[a-z0-9_]+").expect("regex");
    let mut queried = 0;
    for panel in panels {
        for target in panel["targets"].as_array().expect("targets") {
            let expr = target["expr"].as_str().expect("expr");
            for metric in name.find_iter(expr) {
                queried += 1;
                assert!(
                    exposed.contains(metric.as_str()),
                    "panel {:?} queries {}, which /metrics does not show:\n{page}",
                    panel["title"],
                    metric.as_str()
                );
            }
        }
    }
    assert!(queried > 20, "the dashboard queries {queried} metrics");
}
