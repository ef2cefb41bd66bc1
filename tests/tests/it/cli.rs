//! The operator CLI's set-up helpers against the real binaries: `hookbridge send-test-event` and
//! `hookbridge config check` (README "CLI": exit 0 success, 1 the check failed, 2 usage or
//! configuration error).

use std::process::ExitStatus;

use hookbridge_shared::envelope::Source;
use hookbridge_tests::ingest::{PATIENCE, TestIngest, embedded_queue_contents};
use hookbridge_tests::process::Proc;

const SECRET: &str = "cli-s3cret-0b7d-4a1e";

/// Runs `hookbridge ARGS` to completion with `env`; returns its status and output lines.
fn hookbridge(args: &[&str], env: &[(&str, String)]) -> (ExitStatus, Vec<String>) {
    let mut proc = Proc::spawn("hookbridge", args, env);
    let status = proc.wait_exit(PATIENCE);
    (status, proc.output())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_test_event_is_accepted_by_a_running_ingest() {
    let ingest = TestIngest::ingest()
        .env(
            "GITHUB_WEBHOOK_SECRET",
            format!("{SECRET},older-s3cret-9c2f"),
        )
        .start();
    let url = ingest.url.clone();
    let (status, output) = tokio::task::spawn_blocking(move || {
        hookbridge(
            &[
                "send-test-event",
                "--url",
                &url,
                "--repo",
                "octo-org/cli-test",
                "--issue",
                "17",
            ],
            &[("GITHUB_WEBHOOK_SECRET", SECRET.to_owned())],
        )
    })
    .await
    .expect("join");
    let text = output.join("\n");
    assert!(status.success(), "exit {status}: {text}");
    assert!(
        output.iter().any(|l| l.starts_with("202 ")),
        "the answer is printed: {text}"
    );
    assert!(!text.contains(SECRET), "the secret was printed: {text}");

    let queued = embedded_queue_contents(ingest.dir.path()).await;
    assert_eq!(queued.len(), 1, "{text}");
    let event = &queued[0];
    assert_eq!(
        (event.source, event.event.as_str(), event.action.as_deref()),
        (Source::Github, "issues", Some("opened"))
    );
    let payload: serde_json::Value =
        serde_json::from_str(event.payload.as_ref().expect("payload").get()).expect("JSON");
    assert_eq!(payload["repository"]["full_name"], "octo-org/cli-test");
    assert_eq!(payload["issue"]["number"], 17);

    // A wrong secret: the ingest refuses it, the command says so and exits 1.
    let url = ingest.url.clone();
    let (status, output) = tokio::task::spawn_blocking(move || {
        hookbridge(
            &["send-test-event", "--url", &url],
            &[("GITHUB_WEBHOOK_SECRET", "not-the-s3cret-at-all".to_owned())],
        )
    })
    .await
    .expect("join");
    assert_eq!(status.code(), Some(1), "{}", output.join("\n"));
    assert!(
        output.iter().any(|l| l.starts_with("401")),
        "{}",
        output.join("\n")
    );
    // No secret at all: a usage error.
    let url = ingest.url.clone();
    let (status, output) =
        tokio::task::spawn_blocking(move || hookbridge(&["send-test-event", "--url", &url], &[]))
            .await
            .expect("join");
    assert_eq!(status.code(), Some(2), "{}", output.join("\n"));
}

#[test]
fn config_check_accepts_a_valid_file_and_names_the_line_of_an_invalid_one() {
    let dir = tempfile::tempdir().expect("temp dir");
    let valid = dir.path().join("valid.toml");
    std::fs::write(
        &valid,
        r#"[ingest]
github_events = ["issues", "issue_comment"]

[[routes]]
name = "api bugs"
repositories = ["octo-org/api", "octo-org/*"]
labels_any = ["bug"]
project = "API"
issue_type = "Bug"
labels = ["backend"]
sync_comments = true
sync_pull_requests = true
sync_from_jira = true

[[routes]]
name = "docs"
repositories = ["octo-org/docs"]
ignore = true

[users]
octocat = "5b10ac8d82e05b22cc7d4ef5"
"#,
    )
    .expect("write");
    let (status, output) = hookbridge(&["config", "check", &valid.display().to_string()], &[]);
    let text = output.join("\n");
    assert!(status.success(), "exit {status}: {text}");
    assert!(text.contains("ok"), "{text}");
    assert!(
        text.contains("api bugs"),
        "the summary names the routes: {text}"
    );
    assert!(
        text.contains("syncs comments, closure, pull requests and pushes, Jira → GitHub"),
        "the summary says what each route syncs: {text}"
    );
    assert!(text.contains("users: 1 GitHub login"), "{text}");

    // An unknown key on line 6.
    let invalid = dir.path().join("invalid.toml");
    std::fs::write(
        &invalid,
        "[ingest]\ngithub_events = [\"issues\"]\n\n[[routes]]\nproject = \"API\"\nprojekt = \"OPS\"\n",
    )
    .expect("write");
    let (status, output) = hookbridge(&["config", "check", &invalid.display().to_string()], &[]);
    let text = output.join("\n");
    assert_eq!(status.code(), Some(1), "{text}");
    let reasons: Vec<&String> = output.iter().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(reasons.len(), 1, "one line: {text}");
    assert!(reasons[0].contains("line 6"), "names the line: {text}");
    assert!(
        reasons[0].contains("invalid.toml"),
        "names the file: {text}"
    );

    // Valid TOML, invalid routing: a rule without a project and no default.
    let unrouted = dir.path().join("unrouted.toml");
    std::fs::write(
        &unrouted,
        "[[routes]]\nname = \"orphan\"\nlabels_any = [\"bug\"]\n",
    )
    .expect("write");
    let (status, output) = hookbridge(&["config", "check", &unrouted.display().to_string()], &[]);
    assert_eq!(status.code(), Some(1), "{}", output.join("\n"));
    assert!(
        output.join("\n").contains("routes[0]"),
        "{}",
        output.join("\n")
    );
    // ... which a default project fixes.
    let (status, output) = hookbridge(
        &["config", "check", &unrouted.display().to_string()],
        &[("JIRA_PROJECT_KEY", "OPS".to_owned())],
    );
    assert!(status.success(), "{}", output.join("\n"));

    // A file that is not there: a usage error.
    let (status, output) = hookbridge(
        &[
            "config",
            "check",
            &dir.path().join("absent.toml").display().to_string(),
        ],
        &[],
    );
    assert_eq!(status.code(), Some(2), "{}", output.join("\n"));
}

/// The key files the documentation's `[pki]` examples name, relative to the example file in
/// `dir`: real keys, so `config check` accepts them for the right reason.
fn trusted_keys_the_examples_name(dir: &std::path::Path) {
    std::fs::write(dir.join("password.txt"), "example-pass-42\n").expect("write");
    let (status, output) = hookbridge(
        &[
            "pki",
            "keygen",
            "--name",
            "Change Manager",
            "--output-dir",
            &dir.join("keys").display().to_string(),
            "--algorithm",
            "ed25519",
            "--password-file",
            &dir.join("password.txt").display().to_string(),
        ],
        &[],
    );
    assert!(status.success(), "{}", output.join("\n"));
    std::fs::create_dir(dir.join("trusted")).expect("mkdir");
    let public = dir.join("keys").join("change-manager.pub");
    std::fs::copy(&public, dir.join("keys").join("cab.pub")).expect("copy");
    std::fs::copy(&public, dir.join("trusted").join("change-manager.pub")).expect("copy");
}

/// The ```toml blocks of a Markdown file, each with the line it starts on.
fn toml_blocks(markdown: &str) -> Vec<(usize, String)> {
    let mut blocks = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (i, line) in markdown.lines().enumerate() {
        let fence = line.trim_start();
        if let Some((start, text)) = current.take() {
            if fence.starts_with("```") {
                blocks.push((start, text));
            } else {
                current = Some((start, format!("{text}{line}\n")));
            }
        } else if fence.starts_with("```toml") {
            current = Some((i + 2, String::new()));
        }
    }
    blocks
}

/// Every TOML example in the README and in docs/ is a configuration `hookbridge config check`
/// accepts, so the documentation cannot promise what the code refuses.
#[test]
fn every_toml_example_in_the_docs_passes_config_check() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut documents = vec![root.join("README.md")];
    if let Ok(entries) = std::fs::read_dir(root.join("docs")) {
        let mut docs: Vec<_> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "md"))
            .collect();
        docs.sort();
        documents.extend(docs);
    }
    let dir = tempfile::tempdir().expect("temp dir");
    trusted_keys_the_examples_name(dir.path());
    let mut checked = 0;
    for document in &documents {
        let markdown = std::fs::read_to_string(document).expect("read the document");
        for (line, block) in toml_blocks(&markdown) {
            let file = dir.path().join(format!("example-{checked}.toml"));
            std::fs::write(&file, &block).expect("write");
            let (status, output) = hookbridge(
                &["config", "check", &file.display().to_string()],
                &[("JIRA_PROJECT_KEY", "DEMO".to_owned())],
            );
            assert!(
                status.success(),
                "{}:{line}: the example is refused: {}\n{block}",
                document.display(),
                output.join("\n")
            );
            checked += 1;
        }
    }
    assert!(
        checked >= 2,
        "found only {checked} TOML examples in {documents:?}"
    );
}

/// `hookbridge jira projects` and `jira fields` against the Jira fake: what is there, JSON and
/// text, the fields that fit the CR settings marked; no Jira configured is exit 2, Jira refusing
/// the credentials exit 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jira_projects_and_fields_show_what_the_site_has() {
    let fake = hookbridge_tests::jira_fake::JiraFake::start(
        hookbridge_tests::jira_fake::FakeConfig::default(),
    )
    .await;
    let env = vec![
        ("JIRA_BASE_URL", fake.base_url()),
        ("JIRA_EMAIL", fake.email()),
        ("JIRA_API_TOKEN", fake.token()),
    ];
    let run = |args: Vec<&'static str>, env: Vec<(&'static str, String)>| {
        tokio::task::spawn_blocking(move || hookbridge(&args, &env))
    };
    let (status, output) = run(vec!["jira", "projects", "--json"], env.clone())
        .await
        .expect("join");
    assert!(status.success(), "{}", output.join("\n"));
    let projects: serde_json::Value =
        serde_json::from_str(output.iter().find(|l| l.starts_with('[')).expect("JSON"))
            .expect("JSON");
    let cr = projects
        .as_array()
        .expect("array")
        .iter()
        .find(|p| p["key"] == "CR")
        .expect("the CR project");
    assert!(
        cr["issue_types"]
            .as_array()
            .expect("types")
            .contains(&"Change Request".into()),
        "{cr}"
    );
    let (status, output) = run(vec!["jira", "projects"], env.clone())
        .await
        .expect("join");
    assert!(status.success());
    assert!(
        output
            .iter()
            .any(|l| l.starts_with("CR ") && l.contains("Change Requests"))
    );

    let (status, output) = run(vec!["jira", "fields", "--search", "APPROV"], env.clone())
        .await
        .expect("join");
    let text = output.join("\n");
    assert!(status.success(), "{text}");
    assert!(
        text.contains("customfield_10102")
            && text.contains("multi-user picker")
            && text.contains("CR_APPROVER_FIELD"),
        "{text}"
    );
    assert!(
        !text.contains("PKI Signature"),
        "the search filters: {text}"
    );
    let (status, output) = run(vec!["jira", "fields", "--json"], env.clone())
        .await
        .expect("join");
    assert!(status.success());
    let fields: serde_json::Value =
        serde_json::from_str(output.iter().find(|l| l.starts_with('[')).expect("JSON"))
            .expect("JSON");
    let signature = fields
        .as_array()
        .expect("array")
        .iter()
        .find(|f| f["id"] == "customfield_10103")
        .expect("the signature field");
    assert_eq!(signature["type"], "text area");
    assert_eq!(signature["fits"], "CR_SIGNATURE_FIELD");

    let (status, output) = run(vec!["jira", "fields"], Vec::new()).await.expect("join");
    assert_eq!(status.code(), Some(2), "{}", output.join("\n"));
    assert!(output.join("\n").contains("JIRA_BASE_URL"));
    let wrong = vec![
        ("JIRA_BASE_URL", fake.base_url()),
        ("JIRA_EMAIL", fake.email()),
        ("JIRA_API_TOKEN", "not-the-token".to_owned()),
    ];
    let (status, output) = run(vec!["jira", "projects"], wrong).await.expect("join");
    let text = output.join("\n");
    assert_eq!(status.code(), Some(1), "{text}");
    assert!(
        text.contains("401") && !text.contains("not-the-token"),
        "{text}"
    );
}

/// `make demo-cr` (scripts/demo-cr.sh) against `hookbridge run` in dry-run: the README's CR demo
/// works — the CR is shown approved, its Slack alert is in the audit trail, the trail verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cr_demo_script_shows_a_cr_end_to_end() {
    let secret = "demo-s3cret-8d3b5f";
    let run = TestIngest::run_mode()
        .env("JIRA_WEBHOOK_SECRET", secret)
        .start();
    std::fs::write(run.dir.path().join("dev-webhook-secret"), secret).expect("write the secret");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let script = root.join("scripts").join("demo-cr.sh");
    let output = tokio::process::Command::new("bash")
        .arg(&script)
        .env("DATA_DIR", run.dir.path())
        .env("URL", &run.url)
        .env(
            "HOOKBRIDGE_BIN",
            hookbridge_tests::process::binary("hookbridge"),
        )
        .env_remove("JIRA_WEBHOOK_SECRET")
        .env_remove("REDIS_URL")
        .env_remove("HOOKBRIDGE_AUDIT_DIR")
        .env("NO_PROXY", "127.0.0.1")
        .output()
        .await
        .expect("run the demo script");
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{text}\n{}", run.printed());
    assert!(text.contains("CR-2026-0001  Approved"), "{text}");
    assert!(
        text.contains("Pending Approval → Approved by Dana Demo"),
        "{text}"
    );
    assert!(
        text.contains("CR-2026-0001 approved by Dana Demo"),
        "the alert: {text}"
    );
    assert!(text.contains(": ok"), "audit verify: {text}");
}

/// `hookbridge pki keygen | sign | verify` as a release manager uses them: keys made with a
/// password, an approval signed and verified against the trusted certificate; another CR, an
/// edited or expired file and an untrusted key fail with exit 1; a wrong or missing password is
/// exit 2 without a panic; the password is never printed.
#[test]
fn pki_keygen_sign_and_verify() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = |p: &str| dir.path().join(p).display().to_string();
    let password = "approver-pass-42";
    std::fs::write(dir.path().join("password.txt"), format!("{password}\n")).expect("write");
    for (algorithm, out) in [("rsa", "keys-rsa"), ("ed25519", "keys-ed")] {
        let (status, output) = hookbridge(
            &[
                "pki",
                "keygen",
                "--name",
                "Change Manager",
                "--output-dir",
                &path(out),
                "--algorithm",
                algorithm,
                "--password-file",
                &path("password.txt"),
            ],
            &[],
        );
        let text = output.join("\n");
        assert!(status.success(), "{algorithm}: {text}");
        assert!(!text.contains(password), "the password was printed: {text}");
        let key = std::fs::read_to_string(dir.path().join(out).join("change-manager.key"))
            .expect("the key file");
        assert!(
            key.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"),
            "{key}"
        );
        for file in ["change-manager.pub", "change-manager.crt"] {
            assert!(dir.path().join(out).join(file).exists(), "{file}");
        }
    }
    let trusted = dir.path().join("trusted");
    std::fs::create_dir(&trusted).expect("mkdir");
    std::fs::copy(
        dir.path().join("keys-ed/change-manager.crt"),
        trusted.join("cm.crt"),
    )
    .expect("copy");
    std::fs::copy(
        dir.path().join("keys-rsa/change-manager.pub"),
        trusted.join("cm-rsa.pub"),
    )
    .expect("copy");
    let sign = |key: &str, cr: &str, extra: &[&str], env: &[(&str, String)]| {
        let mut args = vec![
            "pki",
            "sign",
            "--cr-id",
            cr,
            "--private-key",
            key,
            "--approver",
            "Alice Admin",
            "--output-dir",
        ];
        let out = path("");
        args.push(&out);
        args.extend(extra);
        let (status, output) = hookbridge(&args, env);
        (status, output)
    };
    let trusted_dir = trusted.display().to_string();
    let signature_file = path("CR-2026-0001-signature.json");
    let verify = |cr: &str| {
        hookbridge(
            &[
                "pki",
                "verify",
                "--signature",
                &signature_file,
                "--cr-id",
                cr,
                "--trusted",
                &trusted_dir,
            ],
            &[],
        )
    };
    let with_password = [("PKI_KEY_PASSWORD", password.to_owned())];
    for key in ["keys-ed/change-manager.key", "keys-rsa/change-manager.key"] {
        let (status, output) = sign(&path(key), "CR-2026-0001", &[], &with_password);
        assert!(status.success(), "{}", output.join("\n"));
        let (status, output) = verify("CR-2026-0001");
        let text = output.join("\n");
        assert!(status.success(), "{key}: {text}");
        assert!(
            text.contains("approved by Alice Admin as Change Manager"),
            "{text}"
        );
        // For another CR: exit 1.
        let (status, output) = verify("CR-2026-0002");
        assert_eq!(status.code(), Some(1), "{}", output.join("\n"));
        assert!(output.join("\n").contains("approves CR-2026-0001"));
    }
    // Edited: exit 1.
    let signature = dir.path().join("CR-2026-0001-signature.json");
    let text = std::fs::read_to_string(&signature).expect("read");
    std::fs::write(&signature, text.replace("Alice Admin", "Mallory")).expect("write");
    let (status, output) = verify("CR-2026-0001");
    assert_eq!(status.code(), Some(1), "{}", output.join("\n"));
    // Wrong password, no password, a short password: exit 2, no panic.
    let (status, output) = sign(
        &path("keys-ed/change-manager.key"),
        "CR-2026-0003",
        &[],
        &[("PKI_KEY_PASSWORD", "wrong-password".into())],
    );
    let text = output.join("\n");
    assert_eq!(status.code(), Some(2), "{text}");
    assert!(
        text.contains("wrong password") && !text.contains("panicked"),
        "{text}"
    );
    let (status, output) = sign(
        &path("keys-ed/change-manager.key"),
        "CR-2026-0003",
        &[],
        &[],
    );
    assert_eq!(status.code(), Some(2), "{}", output.join("\n"));
    std::fs::write(dir.path().join("short.txt"), "short\n").expect("write");
    let (status, output) = hookbridge(
        &[
            "pki",
            "keygen",
            "--name",
            "X",
            "--output-dir",
            &path("keys-x"),
            "--algorithm",
            "ed25519",
            "--password-file",
            &path("short.txt"),
        ],
        &[],
    );
    assert_eq!(status.code(), Some(2), "{}", output.join("\n"));
    assert!(output.join("\n").contains("at least 8 characters"));
}
