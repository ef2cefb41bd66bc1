//! `make bench` — how fast a Jira Change Request webhook becomes visible.
//!
//! The release `hookbridge run` (ingest and worker in one process, embedded queue) takes signed
//! `jira:issue_updated` webhooks approving CRs, one at a time; for each, the time from the ingest's
//! `202` to the record being in the store with the new status (polled every 2 ms) is measured, on
//! the embedded store and on Redis. Then the release `hookbridge cr status CR-ID --json`, a whole
//! process from start to exit, is timed on the same data. The goal: a CR update visible in `cr
//! status` within a second.

use std::time::{Duration, Instant};

use hookbridge_tests::ingest::http;
use hookbridge_tests::jira_fake::{CrSpec, FakeConfig, JiraFake, JiraUser};
use hookbridge_tests::process::{Proc, release_binary};
use hookbridge_tests::stats::{ms, percentile};
use hookbridge_worker::change_requests::record::CrKey;
use hookbridge_worker::store::keys::CrRecordKey;
use hookbridge_worker::store::{EMBEDDED_FILE_NAME, Store};

const SECRET: &str = "bench-jira-secret";
const UPDATES: usize = 30;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        println!("# Change Request webhook → visible in the store / `cr status`");
        for redis in [false, true] {
            run(redis).await;
        }
    });
}

/// Runs the release `hookbridge ARGS` as a CI job runs it — spawned, waited for, its output read
/// — and returns how long that took and what it printed; it must succeed.
fn timed_cli(args: &[&str], env: &[(&str, String)]) -> (Duration, String) {
    let started = Instant::now();
    let output = std::process::Command::new(release_binary("hookbridge"))
        .args(args)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .expect("run hookbridge");
    let took = started.elapsed();
    assert!(
        output.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    (took, String::from_utf8_lossy(&output.stdout).into_owned())
}

async fn run(redis: bool) {
    let jira = JiraFake::start(FakeConfig::default()).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut env: Vec<(&str, String)> = vec![
        ("HOOKBRIDGE_BIND", "127.0.0.1:0".into()),
        ("HOOKBRIDGE_DATA_DIR", dir.path().display().to_string()),
        ("JIRA_WEBHOOK_SECRET", SECRET.into()),
        ("RUST_LOG", "warn".into()),
    ];
    let prefix = format!("hbbench:{}:", uuid::Uuid::new_v4().simple());
    if redis {
        let url = std::env::var("HOOKBRIDGE_TEST_REDIS_URL")
            .expect("HOOKBRIDGE_TEST_REDIS_URL: run through `make bench`");
        env.push(("REDIS_URL", url));
        env.push(("HOOKBRIDGE_REDIS_PREFIX", prefix.clone()));
    }
    let mut server = Proc::spawn_path(&release_binary("hookbridge"), &["run"], &env);
    let url = server.wait_listening(Duration::from_secs(30));
    let store = if redis {
        let url = std::env::var("HOOKBRIDGE_TEST_REDIS_URL").expect("redis url");
        Store::connect_redis(&url, &prefix).await.expect("redis")
    } else {
        Store::open_embedded(&dir.path().join(EMBEDDED_FILE_NAME)).expect("store")
    };
    let user = JiraUser::new("bench-1", "Bench Approver");
    let client = http();
    let mut latencies = Vec::new();
    let mut keys = Vec::new();
    for _ in 0..UPDATES {
        let (key, _) = jira.create_change_request(
            CrSpec::new("Bench CR").status("Pending Approval").field(
                "customfield_10102",
                serde_json::json!([user.with_role("Change Manager")]),
            ),
            &user,
        );
        let approved = jira.move_change_request(&key, "Approved", &user);
        let cr = CrKey::parse(&key).expect("key");
        let sent = Instant::now();
        let status = approved
            .post(&client, &format!("{url}/webhooks/jira"), SECRET)
            .await;
        assert_eq!(status, 202);
        let accepted = Instant::now();
        loop {
            let record = store.read(&CrRecordKey(&cr)).await.expect("read");
            if record.is_some_and(|r| r.status == "Approved") {
                break;
            }
            assert!(
                sent.elapsed() < Duration::from_secs(30),
                "{key} never arrived"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        latencies.push(accepted.elapsed());
        keys.push(key);
    }
    latencies.sort();
    let backend = if redis { "Redis" } else { "embedded" };
    println!(
        "{backend} store: {UPDATES} CR approvals, 202 → record in the store: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        ms(percentile(&latencies, 0.5)),
        ms(percentile(&latencies, 0.99)),
        ms(*latencies.last().expect("one"))
    );
    let audit_dir = dir.path().join("gate-audit").display().to_string();
    let mut cli = Vec::new();
    let mut gate = Vec::new();
    for key in keys.iter().take(20) {
        let (took, stdout) = timed_cli(&["cr", "status", key, "--json"], &env);
        assert!(stdout.contains("\"Approved\""), "{stdout}");
        cli.push(took);
        let args = [
            "gate",
            "--tier",
            "4",
            "--environment",
            "prod",
            "--agent",
            "bench",
        ];
        let (took, _) = timed_cli(
            &[&args[..], &["--jira-cr-id", key, "--audit-dir", &audit_dir]].concat(),
            &env,
        );
        gate.push(took);
    }
    cli.sort();
    gate.sort();
    println!(
        "{backend} store: `hookbridge cr status --json`, whole process: p50 {:.1} ms, max {:.1} ms",
        ms(percentile(&cli, 0.5)),
        ms(*cli.last().expect("one"))
    );
    println!(
        "{backend} store: `hookbridge gate --tier 4 --environment prod` (approved CR), whole process: p50 {:.1} ms, max {:.1} ms",
        ms(percentile(&gate, 0.5)),
        ms(*gate.last().expect("one"))
    );
    let mut reactions = Vec::new();
    for _ in 0..5 {
        let (key, created) = jira.create_change_request(
            CrSpec::new("Bench wait").status("Pending Approval").field(
                "customfield_10102",
                serde_json::json!([user.with_role("Change Manager")]),
            ),
            &user,
        );
        assert_eq!(
            created
                .post(&client, &format!("{url}/webhooks/jira"), SECRET)
                .await,
            202
        );
        let cr = CrKey::parse(&key).expect("key");
        while store.read(&CrRecordKey(&cr)).await.expect("read").is_none() {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let mut waiting = tokio::process::Command::new(release_binary("hookbridge"))
            .args([
                "gate",
                "--tier",
                "4",
                "--environment",
                "prod",
                "--agent",
                "bench",
                "--wait",
                "60s",
            ])
            .args(["--jira-cr-id", &key, "--audit-dir"])
            .arg(dir.path().join("gate-audit"))
            .env_clear()
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("start hookbridge gate --wait");
        tokio::time::sleep(Duration::from_millis(500)).await;
        let approved = jira.move_change_request(&key, "Approved", &user);
        assert_eq!(
            approved
                .post(&client, &format!("{url}/webhooks/jira"), SECRET)
                .await,
            202
        );
        let acknowledged = Instant::now();
        let exit = waiting.wait().await.expect("gate exits");
        reactions.push(acknowledged.elapsed());
        assert!(exit.success());
    }
    reactions.sort();
    println!(
        "{backend} store: `gate --wait` on a pending CR, approving webhook 202 → gate exit 0: p50 {:.0} ms, max {:.0} ms",
        ms(percentile(&reactions, 0.5)),
        ms(*reactions.last().expect("one"))
    );
    server.terminate();
    server.wait_exit(Duration::from_secs(30));
}
