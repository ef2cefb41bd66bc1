//! The audit trail's hash chains: concurrent writers keep every chain valid, and each kind of
//! tampering — a flipped byte, a removed, inserted or swapped line, a truncated tail, a deleted
//! file — is caught at the right file and line, by the library and by `hookbridge audit verify`.

use std::path::{Path, PathBuf};
use std::process::ExitStatus;

use hookbridge_tests::ingest::PATIENCE;
use hookbridge_tests::process::Proc;
use hookbridge_worker::audit::verify::{Problem, Report, verify};
use hookbridge_worker::audit::{AuditLog, Entry};
use hookbridge_worker::store::{EMBEDDED_FILE_NAME, Store};
use serde_json::json;

/// A trail in `<dir>/audit` with its heads in the embedded store of `<dir>`.
struct Trail {
    dir: tempfile::TempDir,
    store: Store,
}

impl Trail {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open_embedded(&dir.path().join(EMBEDDED_FILE_NAME)).expect("store");
        Self { dir, store }
    }

    fn audit_dir(&self) -> PathBuf {
        self.dir.path().join("audit")
    }

    fn log(&self, role: &str) -> AuditLog {
        AuditLog::open(&self.audit_dir(), role, Some(self.store.clone()))
    }

    /// The one file of today's trail.
    fn file(&self) -> PathBuf {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.audit_dir())
            .expect("audit dir")
            .map(|e| e.expect("entry").path())
            .collect();
        assert_eq!(files.len(), 1, "{files:?}");
        files.remove(0)
    }

    fn lines(&self) -> Vec<String> {
        std::fs::read_to_string(self.file())
            .expect("read")
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn write_lines(&self, lines: &[String]) {
        let mut text = lines.join("\n");
        text.push('\n');
        std::fs::write(self.file(), text).expect("write");
    }

    async fn verify(&self) -> Report {
        verify(&self.audit_dir(), &self.store)
            .await
            .expect("verify")
    }
}

async fn record(log: &AuditLog, n: usize) {
    log.record(
        Entry::new("test.decision", format!("subject-{n}"))
            .id("n", n.to_string())
            .detail(json!({"n": n})),
    )
    .await
    .expect("record");
}

/// Ten lines: chain A at lines 1, 3, 5, 7, 9, 10 and chain B at lines 2, 4, 6, 8.
async fn two_chains() -> Trail {
    let trail = Trail::new();
    let a = trail.log("worker");
    let b = trail.log("worker");
    for n in 0..4 {
        record(&a, 2 * n).await;
        record(&b, 2 * n + 1).await;
    }
    record(&a, 8).await;
    record(&a, 9).await;
    trail
}

fn only_problem(report: &Report) -> &Problem {
    assert!(!report.ok, "tampering not detected");
    assert_eq!(report.problems.len(), 1, "{:#?}", report.problems);
    &report.problems[0]
}

fn lines_named(report: &Report) -> Vec<usize> {
    report.problems.iter().map(|p| p.line).collect()
}

#[tokio::test]
async fn an_untouched_trail_verifies() {
    let trail = two_chains().await;
    let report = trail.verify().await;
    assert!(report.ok, "{:#?}", report.problems);
    assert_eq!((report.files, report.records, report.chains), (1, 10, 2));
}

#[tokio::test]
async fn a_flipped_byte_is_caught_at_its_line() {
    let trail = two_chains().await;
    let original = trail.lines();
    // In a record's content, in its link, in a chain's newest record: each is named.
    for (line, from, to) in [(5, "subject-4", "subject-5"), (8, "subject-7", "subject-9")] {
        let mut lines = original.clone();
        lines[line - 1] = lines[line - 1].replacen(from, to, 1);
        trail.write_lines(&lines);
        let report = trail.verify().await;
        let problem = only_problem(&report);
        assert_eq!(problem.line, line, "{problem:?}");
        assert!(problem.problem.contains("changed"), "{problem:?}");
    }
    let mut lines = original.clone();
    let prev_at = lines[4].find("\"prev\":\"").expect("prev") + 8;
    let flipped = if &lines[4][prev_at..=prev_at] == "a" {
        "b"
    } else {
        "a"
    };
    lines[4].replace_range(prev_at..=prev_at, flipped);
    trail.write_lines(&lines);
    let report = trail.verify().await;
    assert_eq!(only_problem(&report).line, 5, "{:#?}", report.problems);
    // A flip that breaks the JSON.
    let mut lines = original.clone();
    lines[3] = lines[3].replacen('{', "[", 1);
    trail.write_lines(&lines);
    let report = trail.verify().await;
    assert_eq!(report.problems[0].line, 4, "{:#?}", report.problems);
    assert!(
        report.problems[0]
            .problem
            .contains("not a valid audit record")
    );
}

#[tokio::test]
async fn a_removed_line_is_caught_between_its_neighbours() {
    let trail = two_chains().await;
    let mut lines = trail.lines();
    lines.remove(4); // chain A's third record, between its lines 3 and (now) 6
    trail.write_lines(&lines);
    let report = trail.verify().await;
    let problem = only_problem(&report);
    assert_eq!(problem.line, 6, "{problem:?}");
    assert!(
        problem.problem.contains("records 3 to 3") && problem.problem.contains("between line 3"),
        "{problem:?}"
    );
}

#[tokio::test]
async fn an_inserted_line_is_caught_at_its_line() {
    let trail = two_chains().await;
    let original = trail.lines();
    // A copy of an earlier record of chain A, slipped in after line 6.
    let mut lines = original.clone();
    lines.insert(6, original[2].clone());
    trail.write_lines(&lines);
    let report = trail.verify().await;
    assert!(lines_named(&report).contains(&7), "{:#?}", report.problems);
    // A record of a chain the store never heard of, appended at the end.
    let mut forged: serde_json::Value = serde_json::from_str(&original[0]).expect("json");
    forged["chain"] = json!("worker.forged.1.deadbeef");
    let mut lines = original.clone();
    lines.push(forged.to_string());
    trail.write_lines(&lines);
    let report = trail.verify().await;
    let problem = only_problem(&report);
    assert_eq!(problem.line, 11);
    assert!(
        problem.problem.contains("unknown to the store"),
        "{problem:?}"
    );
    // A well-linked record appended to an existing chain is past what the store confirmed.
    let last: serde_json::Value = serde_json::from_str(&original[9]).expect("json");
    let mut next = last.clone();
    next["seq"] = json!(last["seq"].as_u64().expect("seq") + 1);
    next["prev"] = json!(hookbridge_worker::audit::record::line_hash(
        original[9].as_bytes()
    ));
    let mut lines = original;
    lines.push(next.to_string());
    trail.write_lines(&lines);
    let report = trail.verify().await;
    let problem = only_problem(&report);
    assert_eq!(problem.line, 11);
    assert!(
        problem
            .problem
            .contains("past the chain's last confirmed record"),
        "{problem:?}"
    );
}

#[tokio::test]
async fn swapped_lines_are_caught_at_both() {
    let trail = two_chains().await;
    let mut lines = trail.lines();
    lines.swap(2, 4); // chain A's second and third records
    trail.write_lines(&lines);
    let report = trail.verify().await;
    let named = lines_named(&report);
    assert!(
        named.contains(&3) && named.contains(&5),
        "{:#?}",
        report.problems
    );
}

#[tokio::test]
async fn a_truncated_tail_is_caught_against_the_store() {
    let trail = two_chains().await;
    let mut lines = trail.lines();
    lines.truncate(8); // chain A's last two records go; what is left is a valid shorter chain
    trail.write_lines(&lines);
    let report = trail.verify().await;
    let problem = only_problem(&report);
    assert_eq!(problem.line, 7, "{problem:?}");
    assert!(problem.problem.contains("truncated"), "{problem:?}");
    // The whole file gone: every chain is missing.
    std::fs::remove_file(trail.file()).expect("remove");
    let report = trail.verify().await;
    assert_eq!(report.problems.len(), 2, "{:#?}", report.problems);
    assert!(
        report
            .problems
            .iter()
            .all(|p| p.problem.contains("missing"))
    );
}

/// Many writers of one process, and several processes' chains in one file, at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_keep_every_chain_valid() {
    let trail = Trail::new();
    let mut tasks = tokio::task::JoinSet::new();
    for chain in 0..4 {
        let log = trail.log("worker");
        for n in 0..25 {
            let log = log.clone();
            tasks.spawn(async move { record(&log, chain * 100 + n).await });
        }
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("task");
    }
    let report = trail.verify().await;
    assert!(report.ok, "{:#?}", report.problems);
    assert_eq!((report.records, report.chains), (100, 4));
}

fn hookbridge(args: &[&str], env: &[(&str, String)]) -> (ExitStatus, Vec<String>) {
    let mut proc = Proc::spawn("hookbridge", args, env);
    let status = proc.wait_exit(PATIENCE);
    (status, proc.output())
}

fn verify_cli(data_dir: &Path, json: bool) -> (ExitStatus, Vec<String>) {
    let mut args = vec!["audit", "verify"];
    if json {
        args.push("--json");
    }
    hookbridge(
        &args,
        &[("HOOKBRIDGE_DATA_DIR", data_dir.display().to_string())],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_verify_exits_1_naming_file_and_line() {
    let trail = two_chains().await;
    let data_dir = trail.dir.path().to_owned();
    let (status, output) = tokio::task::spawn_blocking({
        let data_dir = data_dir.clone();
        move || verify_cli(&data_dir, false)
    })
    .await
    .expect("join");
    assert!(status.success(), "{}", output.join("\n"));
    assert!(
        output.join("\n").contains("10 records, 2 chains"),
        "{}",
        output.join("\n")
    );

    let mut lines = trail.lines();
    lines[5] = lines[5].replacen("subject-5", "subject-6", 1);
    trail.write_lines(&lines);
    let file_name = trail
        .file()
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    let (status, output) = tokio::task::spawn_blocking({
        let data_dir = data_dir.clone();
        move || verify_cli(&data_dir, false)
    })
    .await
    .expect("join");
    let text = output.join("\n");
    assert_eq!(status.code(), Some(1), "{text}");
    assert!(text.contains(&format!("{file_name}:6:")), "{text}");
    let (status, output) = tokio::task::spawn_blocking(move || verify_cli(&data_dir, true))
        .await
        .expect("join");
    assert_eq!(status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_str(
        output
            .iter()
            .find(|l| l.starts_with('{'))
            .expect("a JSON line"),
    )
    .expect("JSON");
    assert_eq!(report["ok"], false);
    assert_eq!(report["problems"][0]["file"], file_name.as_str());
    assert_eq!(report["problems"][0]["line"], 6);
    // A store that cannot be opened is a configuration error.
    let (status, _) = hookbridge(
        &["audit", "verify"],
        &[("REDIS_URL", "http://not-redis".into())],
    );
    assert_eq!(status.code(), Some(2));
}
