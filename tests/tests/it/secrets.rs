//! Secrets and the refusals at start that protect them (README, "Configuration"), with the real
//! binaries: secrets read from `_FILE`s, webhook secrets shorter than 16 bytes refused, a Redis
//! password in a query string never printed, a worker on SQS without a dead-letter queue
//! refused, the queue message id logged as `message_id`, and a whole pipeline whose logs, HTTP
//! answers, audit trail and metrics hold none of its secrets.

use std::path::Path;
use std::time::{Duration, Instant};

use hookbridge_shared::queue::embedded::{EmbeddedOptions, EmbeddedQueue};
use hookbridge_tests::github::{Delivery, GithubIssue};
use hookbridge_tests::ingest::{PATIENCE, TestIngest, http};
use hookbridge_tests::jira_fake::{CrSpec, FakeConfig, JiraFake, JiraUser};
use hookbridge_tests::process::Proc;
use hookbridge_tests::slack_fake::{SlackConfig, SlackFake, wait_until};
use serde_json::{Value, json};

const GITHUB_SECRET: &str = "gh-secret-7f3a9c1e5b2d";
const JIRA_SECRET: &str = "jira-secret-4e8b2a6c0d91";
const JIRA_TOKEN: &str = "jira-api-token-c0ffee5eed42";
const REDIS_PASSWORD: &str = "redis-pass-9a7b5c3d1e";

/// A port nothing listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// Runs `name` with `env` (and a fresh data dir) until it exits: its status and what it printed.
fn run_until_exit(name: &str, env: &[(&str, String)]) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut vars = vec![
        ("HOOKBRIDGE_DATA_DIR", dir.path().display().to_string()),
        ("HOOKBRIDGE_BIND", "127.0.0.1:0".to_owned()),
        ("LOG_FORMAT", "json".to_owned()),
    ];
    vars.extend(env.iter().cloned());
    let mut proc = Proc::spawn(name, &[], &vars);
    let status = proc.wait_exit(PATIENCE);
    (status.code(), proc.output().join("\n"))
}

fn write_file(dir: &Path, name: &str, content: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, content).expect("write a secret file");
    path.display().to_string()
}

#[test]
fn a_redis_password_is_never_printed_when_redis_is_unreachable() {
    let port = closed_port();
    for url in [
        format!("redis://127.0.0.1:{port}/?pass={REDIS_PASSWORD}"),
        format!("redis://127.0.0.1:{port}/0?password={REDIS_PASSWORD}"),
        format!("redis://user:{REDIS_PASSWORD}@127.0.0.1:{port}/0"),
    ] {
        let (code, printed) = run_until_exit("hookbridge-worker", &[("REDIS_URL", url.clone())]);
        assert_eq!(code, Some(2), "{url}: {printed}");
        assert!(printed.contains("REDIS_URL"), "{printed}");
        assert!(
            !printed.contains(REDIS_PASSWORD),
            "the Redis password was printed: {printed}"
        );
    }
}

#[test]
fn short_webhook_secrets_are_refused_with_the_key_and_never_printed() {
    let cases = [
        ("GITHUB_WEBHOOK_SECRET", "short-s3cret"),
        // 27 bytes, but the comma makes it a rotation list of two short secrets.
        ("GITHUB_WEBHOOK_SECRET", "long-enough-s3cret,has-it01"),
        ("JIRA_WEBHOOK_SECRET", "fifteen-bytes!!"),
        ("WEBHOOK_SECRET", "alias-s3cret"),
    ];
    for binary in ["hookbridge-ingest", "hookbridge"] {
        for (key, secret) in cases {
            let mut proc_env = vec![(key, secret.to_owned())];
            let (code, printed) = if binary == "hookbridge" {
                let dir = tempfile::tempdir().expect("temp dir");
                proc_env.push(("HOOKBRIDGE_DATA_DIR", dir.path().display().to_string()));
                proc_env.push(("HOOKBRIDGE_BIND", "127.0.0.1:0".to_owned()));
                let mut proc = Proc::spawn(binary, &["run"], &proc_env);
                let status = proc.wait_exit(PATIENCE);
                (status.code(), proc.output().join("\n"))
            } else {
                run_until_exit(binary, &proc_env)
            };
            assert_eq!(code, Some(2), "{binary} {key}: {printed}");
            assert!(printed.contains(key), "{key} not named: {printed}");
            assert!(printed.contains("16 bytes"), "{printed}");
            for part in secret.split(',') {
                assert!(!printed.contains(part), "the secret was printed: {printed}");
            }
            assert_eq!(printed.trim().lines().count(), 1, "one line: {printed}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_secrets_are_read_from_files() {
    let files = tempfile::tempdir().expect("temp dir");
    let github = write_file(files.path(), "github", &format!("{GITHUB_SECRET}\n"));
    let jira = write_file(files.path(), "jira", &format!("{JIRA_SECRET}\r\n"));
    let ingest = TestIngest::ingest()
        .env("GITHUB_WEBHOOK_SECRET_FILE", github)
        .env("JIRA_WEBHOOK_SECRET_FILE", jira)
        .start();
    let client = http();
    let issue = GithubIssue::new("octo/files", 1).event("opened");
    for (secret, want) in [(GITHUB_SECRET, 202), ("not-the-github-secret", 401)] {
        let answer = Delivery::github("issues", &issue)
            .signed(secret)
            .post(&client, &ingest.at("/webhooks/github"))
            .send()
            .await
            .expect("post");
        assert_eq!(answer.status(), want);
    }
    let answer = Delivery::jira(&json!({"webhookEvent": "jira:issue_updated", "timestamp": 1}))
        .jira_signed(JIRA_SECRET)
        .post(&client, &ingest.at("/webhooks/jira"))
        .send()
        .await
        .expect("post");
    assert!(answer.status().is_success(), "{}", answer.status());
}

#[test]
fn a_secret_and_its_file_together_or_an_unreadable_file_are_refused() {
    let files = tempfile::tempdir().expect("temp dir");
    let readable = write_file(files.path(), "readable", "a-readable-secret-value-1234\n");
    let missing = files.path().join("no-such-file").display().to_string();
    let jira = |extra: &[(&'static str, String)]| {
        let mut env = vec![
            ("JIRA_BASE_URL", "http://127.0.0.1:9".to_owned()),
            ("JIRA_EMAIL", "a@b.c".to_owned()),
        ];
        env.extend(extra.iter().cloned());
        env
    };
    let ingest_cases: Vec<(Vec<(&'static str, String)>, &str)> = vec![
        (
            vec![
                ("GITHUB_WEBHOOK_SECRET", GITHUB_SECRET.to_owned()),
                ("GITHUB_WEBHOOK_SECRET_FILE", readable.clone()),
            ],
            "GITHUB_WEBHOOK_SECRET_FILE",
        ),
        (
            vec![("GITHUB_WEBHOOK_SECRET_FILE", missing.clone())],
            "GITHUB_WEBHOOK_SECRET_FILE",
        ),
        (
            vec![
                ("JIRA_WEBHOOK_SECRET", JIRA_SECRET.to_owned()),
                ("JIRA_WEBHOOK_SECRET_FILE", readable.clone()),
            ],
            "JIRA_WEBHOOK_SECRET_FILE",
        ),
        (
            vec![("JIRA_WEBHOOK_SECRET_FILE", missing.clone())],
            "JIRA_WEBHOOK_SECRET_FILE",
        ),
    ];
    let worker_cases: Vec<(Vec<(&'static str, String)>, &str)> = vec![
        (
            jira(&[
                ("JIRA_API_TOKEN", JIRA_TOKEN.to_owned()),
                ("JIRA_API_TOKEN_FILE", readable.clone()),
            ]),
            "JIRA_API_TOKEN_FILE",
        ),
        (
            jira(&[("JIRA_API_TOKEN_FILE", missing.clone())]),
            "JIRA_API_TOKEN_FILE",
        ),
        (
            vec![
                ("SLACK_WEBHOOK_URL", "https://hooks.slack.test/x".to_owned()),
                ("SLACK_WEBHOOK_URL_FILE", readable.clone()),
            ],
            "SLACK_WEBHOOK_URL_FILE",
        ),
        (
            vec![("SLACK_WEBHOOK_URL_FILE", missing.clone())],
            "SLACK_WEBHOOK_URL_FILE",
        ),
        (
            vec![
                (
                    "REDIS_URL",
                    format!("redis://:{REDIS_PASSWORD}@127.0.0.1:9/"),
                ),
                ("REDIS_URL_FILE", readable.clone()),
            ],
            "REDIS_URL_FILE",
        ),
        (vec![("REDIS_URL_FILE", missing.clone())], "REDIS_URL_FILE"),
    ];
    for (binary, cases) in [
        ("hookbridge-ingest", &ingest_cases),
        ("hookbridge-worker", &worker_cases),
    ] {
        for (env, file_key) in cases {
            let (code, printed) = run_until_exit(binary, env);
            assert_eq!(code, Some(2), "{binary} {file_key}: {printed}");
            assert!(
                printed.contains(file_key),
                "{file_key} not named: {printed}"
            );
            let variable = file_key.trim_end_matches("_FILE");
            let both = env.iter().any(|(k, _)| *k == variable);
            if both {
                assert!(
                    printed.contains(&format!("{variable} ")),
                    "{variable} not named: {printed}"
                );
            } else {
                assert!(
                    printed.contains(&missing),
                    "the path is not named: {printed}"
                );
            }
            for secret in [
                "a-readable-secret-value-1234",
                GITHUB_SECRET,
                JIRA_SECRET,
                JIRA_TOKEN,
                REDIS_PASSWORD,
                "hooks.slack.test",
            ] {
                assert!(!printed.contains(secret), "a secret was printed: {printed}");
            }
        }
    }
}

/// An SQS queue, and its URL; with a dead-letter queue and a `RedrivePolicy` when `with_dlq`.
async fn sqs_queue(client: &aws_sdk_sqs::Client, with_dlq: bool) -> String {
    let name = format!("secrets-{}", uuid::Uuid::new_v4().simple());
    let mut create = client.create_queue().queue_name(&name);
    if with_dlq {
        let dlq_url = client
            .create_queue()
            .queue_name(format!("{name}-dlq"))
            .send()
            .await
            .expect("create the DLQ")
            .queue_url
            .expect("url");
        let arn = client
            .get_queue_attributes()
            .queue_url(&dlq_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .expect("attributes")
            .attributes
            .and_then(|a| {
                a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn)
                    .cloned()
            })
            .expect("arn");
        create = create.attributes(
            aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy,
            json!({"deadLetterTargetArn": arn, "maxReceiveCount": "5"}).to_string(),
        );
    }
    create
        .send()
        .await
        .expect("create the queue")
        .queue_url
        .expect("url")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_on_sqs_without_a_dead_letter_queue_is_refused() {
    let endpoint = hookbridge_tests::sqs::endpoint();
    let client = hookbridge_tests::sqs::client_for(&endpoint).await;
    let bare = sqs_queue(&client, false).await;
    let env = |queue: &str| {
        vec![
            ("SQS_QUEUE_URL", queue.to_owned()),
            ("AWS_ENDPOINT_URL", endpoint.clone()),
        ]
    };
    let bare_env = env(&bare);
    let (code, printed) =
        tokio::task::spawn_blocking(move || run_until_exit("hookbridge-worker", &bare_env))
            .await
            .expect("join");
    assert_eq!(code, Some(2), "{printed}");
    assert!(
        printed.contains("SQS_DLQ_URL") && printed.contains("RedrivePolicy"),
        "{printed}"
    );
    // The ingest needs no dead-letter queue: it starts on the same queue.
    let mut ingest = TestIngest::ingest().env("GITHUB_WEBHOOK_SECRET", GITHUB_SECRET);
    for (k, v) in env(&bare) {
        ingest = ingest.env(k, v);
    }
    let ingest = ingest.start();
    drop(ingest);
    // With a redrive policy the worker starts.
    let with_dlq = sqs_queue(&client, true).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut vars = env(&with_dlq);
    vars.push(("HOOKBRIDGE_DATA_DIR", dir.path().display().to_string()));
    let mut worker = Proc::spawn("hookbridge-worker", &[], &vars);
    worker.wait_for_line("connected to SQS", PATIENCE);
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        worker.try_exit().is_none(),
        "{}",
        worker.output().join("\n")
    );
    worker.terminate();
    assert!(worker.wait_exit(PATIENCE).success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_log_lines_name_the_queue_message_id_message_id() {
    let dir = tempfile::tempdir().expect("temp dir");
    let queue =
        EmbeddedQueue::open(EmbeddedOptions::in_dir(dir.path(), "queue.db")).expect("queue");
    queue
        .send(bytes::Bytes::from_static(b"{\"type\":\"not-an-envelope\"}"))
        .await
        .expect("send");
    let vars = vec![
        ("HOOKBRIDGE_DATA_DIR", dir.path().display().to_string()),
        ("LOG_FORMAT", "json".to_owned()),
    ];
    let mut worker = Proc::spawn("hookbridge-worker", &[], &vars);
    let line = worker.wait_for_line("dead-letter", PATIENCE);
    worker.terminate();
    let _ = worker.wait_exit(PATIENCE);
    let start = line.find('{').expect("a JSON line");
    let text = &line[start..];
    assert_eq!(
        text.matches("\"message\":").count(),
        1,
        "the key message appears more than once: {text}"
    );
    let event: Value = serde_json::from_str(text).expect("JSON");
    assert!(event["message_id"].is_string(), "{text}");
    assert!(
        event["message"]
            .as_str()
            .is_some_and(|m| m.contains("dead-letter")),
        "{text}"
    );
}

/// The whole pipeline with known secrets — `hookbridge run` with both webhook secrets, the Jira
/// token by file and the Slack URL; signed GitHub and Jira deliveries, a wrongly signed one, a CR
/// approval alert, a gate run — and none of the secrets (nor a delivery's signature) in any log
/// line, HTTP answer, audit record or the metrics page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_a_log_an_answer_the_audit_trail_or_the_metrics() {
    let jira = JiraFake::start(FakeConfig {
        token: JIRA_TOKEN.to_owned(),
        ..FakeConfig::default()
    })
    .await;
    let slack = SlackFake::start(SlackConfig::default()).await;
    let files = tempfile::tempdir().expect("temp dir");
    let token_file = write_file(files.path(), "jira-token", &format!("{JIRA_TOKEN}\n"));
    let jira_env = vec![
        ("JIRA_BASE_URL", jira.base_url()),
        ("JIRA_EMAIL", jira.email()),
        ("JIRA_API_TOKEN_FILE", token_file.clone()),
    ];
    let mut run = TestIngest::run_mode()
        .env("GITHUB_WEBHOOK_SECRET", GITHUB_SECRET)
        .env("JIRA_WEBHOOK_SECRET", JIRA_SECRET)
        .env("SLACK_WEBHOOK_URL", slack.url())
        .env("JIRA_PROJECT_KEY", "DEMO")
        .env(
            "RUST_LOG",
            "debug,h2=info,hyper=info,reqwest=info,rustls=info",
        );
    for (k, v) in &jira_env {
        run = run.env(k, v.clone());
    }
    let run = run.start();
    let client = http();
    let mut bodies = Vec::new();

    let github = Delivery::github(
        "issues",
        &GithubIssue::new("octo/secrets", 1).event("opened"),
    )
    .signed(GITHUB_SECRET);
    let signature = github.signature().expect("signed").to_owned();
    let signature_hex = signature.trim_start_matches("sha256=").to_owned();
    for delivery in [
        github.clone(),
        github.clone().signed("wrong-secret-0123456789"),
    ] {
        let answer = delivery
            .post(&client, &run.at("/webhooks/github"))
            .send()
            .await
            .expect("post");
        let status = answer.status().as_u16();
        bodies.push(answer.text().await.expect("body"));
        assert!(status == 202 || status == 401, "{status}");
    }
    wait_until("the GitHub issue in Jira", PATIENCE, || {
        jira.count_issues() >= 1
    })
    .await;

    let approver = JiraUser::new("acc-1", "Grace Governance");
    let (key, created) = jira.create_change_request(
        CrSpec::new("Ship it").status("Pending Approval").field(
            "customfield_10102",
            json!([approver.with_role("Change Manager")]),
        ),
        &approver,
    );
    let approved = jira.move_change_request(&key, "Approved", &approver);
    let url = run.at("/webhooks/jira");
    for delivery in [&created, &approved] {
        assert_eq!(delivery.post(&client, &url, JIRA_SECRET).await, 202);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(
        approved.post(&client, &url, "wrong-jira-secret-0123").await,
        401
    );
    wait_until("the Slack alert", PATIENCE, || !slack.messages().is_empty()).await;

    let mut gate_env = vec![("HOOKBRIDGE_DATA_DIR", run.dir.path().display().to_string())];
    gate_env.extend(jira_env.iter().cloned());
    let deadline = Instant::now() + PATIENCE;
    let gate_output = loop {
        let (exit, output) = hookbridge_tests::process::run_to_end(
            "hookbridge",
            &[
                "gate",
                "--tier",
                "3",
                "--environment",
                "prod",
                "--jira-cr-id",
                &key,
                "--agent",
                "a",
            ],
            &gate_env,
            PATIENCE,
        )
        .await;
        if exit.success() {
            break output;
        }
        assert!(
            Instant::now() < deadline,
            "the gate never passed: {output:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    let metrics = hookbridge_tests::metrics::scrape(&run.at("/metrics")).await;
    run.proc.terminate();
    let mut run = run;
    assert!(run.proc.wait_exit(PATIENCE).success());

    let mut places: Vec<(String, String)> = vec![
        ("the run's output".into(), run.printed()),
        ("the gate's output".into(), gate_output.join("\n")),
        ("the metrics page".into(), metrics),
        ("HTTP answers".into(), bodies.join("\n")),
    ];
    // The gate writes its chain to the same trail as the run (the data dir's).
    {
        let dir = run.dir.path().join("audit");
        let records = hookbridge_tests::audit::records(&dir);
        assert!(!records.is_empty(), "no audit records in {}", dir.display());
        places.push((
            format!("the audit trail in {}", dir.display()),
            hookbridge_tests::audit::trail_text(&dir),
        ));
    }
    let slack_url = slack.url();
    let slack_path = slack_url
        .split("/services/")
        .nth(1)
        .expect("a path")
        .to_owned();
    for (what, text) in &places {
        for (name, secret) in [
            ("the GitHub secret", GITHUB_SECRET),
            ("the Jira secret", JIRA_SECRET),
            ("the Jira API token", JIRA_TOKEN),
            ("the Slack URL", slack_url.as_str()),
            ("the Slack URL's secret path", slack_path.as_str()),
            ("a delivery's signature", signature_hex.as_str()),
        ] {
            assert!(!text.contains(secret), "{name} appears in {what}:\n{text}");
        }
    }
    // The log is not empty: the test searched something.
    assert!(places[0].1.lines().count() > 10, "{}", places[0].1);
}
