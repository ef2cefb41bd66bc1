//! `hookbridge github redeliver` on the real binary against the GitHub fake: failed deliveries on
//! two pages are redelivered once each (the newest failed attempt), one that a later attempt
//! delivered and one the store marks processed are skipped, deliveries older than `--since` are
//! neither listed further nor redelivered; `--dry-run` asks nothing; a bad token exits 2 without
//! printing it, and a token that may not redeliver exits 2 at its first refusal; an unknown hook
//! exits 1; a rate limit that resets a second later is waited out, one
//! that resets in an hour ends the run with exit 1.

use std::path::Path;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use hookbridge_tests::github_fake::{Delivery, GithubConfig, GithubFake};
use hookbridge_tests::process::run_to_end;
use hookbridge_worker::store::Store;
use serde_json::Value;

const REPO: &str = "acme/api";
const HOOK: u64 = 4242;
const TIMEOUT: Duration = Duration::from_secs(60);

/// What the hook's history holds, and which delivery ids should be redelivered.
struct History {
    deliveries: Vec<Delivery>,
    expected: Vec<u64>,
}

/// 150 deliveries of the last day (two pages of 100 with the first 50 of the older ones), then 60
/// of four days ago, which `--since 3d` leaves alone (and whose page 3 is never asked for).
/// Failed: `fail-a` and `fail-b` (page 1; `fail-b` twice, its redelivery failed too), `fail-c` and
/// `fail-d` (page 2), `recovered` (page 2, delivered later on page 1), `processed` (page 1, in the
/// store), `old-*` (before the window).
fn history() -> History {
    let mut deliveries = Vec::new();
    let mut expected = Vec::new();
    for n in 0..210u64 {
        let id = 1000 + n;
        let age = if n < 150 {
            Duration::from_secs(60 + n * 500)
        } else {
            Duration::from_secs(4 * 86_400 + n * 60)
        };
        let (guid, code) = match n {
            5 => ("fail-a".to_owned(), 500),
            40 => ("fail-b".to_owned(), 502),
            70 => ("fail-b".to_owned(), 0),
            20 => ("processed".to_owned(), 504),
            10 => ("recovered".to_owned(), 202),
            130 => ("recovered".to_owned(), 503),
            120 => ("fail-c".to_owned(), 400),
            140 => ("fail-d".to_owned(), 500),
            n if n >= 150 && n % 7 == 0 => (format!("old-{n}"), 500),
            n => (format!("ok-{n}"), 200),
        };
        if matches!(n, 5 | 40 | 120 | 140) {
            expected.push(id);
        }
        let mut delivery = Delivery::new(id, &guid, age, code);
        delivery.redelivery = matches!(n, 10 | 40);
        deliveries.push(delivery);
    }
    History {
        deliveries,
        expected,
    }
}

async fn github(config: GithubConfig) -> (GithubFake, Vec<u64>) {
    let fake = GithubFake::start(config).await;
    let history = history();
    fake.add_hook(REPO, HOOK, history.deliveries);
    (fake, history.expected)
}

fn env(fake: &GithubFake, data: &Path, token: &str) -> Vec<(&'static str, String)> {
    vec![
        ("HOOKBRIDGE_DATA_DIR", data.display().to_string()),
        ("GITHUB_API_URL", fake.api_url()),
        ("GITHUB_TOKEN", token.to_owned()),
    ]
}

async fn hookbridge(extra: &[&str], env: &[(&str, String)]) -> (ExitStatus, Vec<String>) {
    let hook = HOOK.to_string();
    let mut args = vec!["github", "redeliver", "--repo", REPO, "--hook-id", &hook];
    args.extend_from_slice(extra);
    run_to_end("hookbridge", &args, env, TIMEOUT).await
}

async fn mark_processed(data: &Path, guid: &str) {
    let store = Store::open_embedded(&data.join("store.db")).expect("open the embedded store");
    store
        .mark_done(guid, Duration::from_secs(3 * 86_400))
        .await
        .expect("mark done");
}

fn sorted(mut ids: Vec<u64>) -> Vec<u64> {
    ids.sort_unstable();
    ids
}

#[tokio::test]
async fn failed_deliveries_on_two_pages_are_redelivered_once_each() {
    let (fake, expected) = github(GithubConfig::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    mark_processed(dir.path(), "processed").await;
    // The token from a file, its trailing newline stripped.
    let token_file = dir.path().join("github-token");
    std::fs::write(&token_file, format!("{}\n", fake.token())).expect("write the token");
    let mut env = env(&fake, dir.path(), "");
    env.retain(|(k, _)| *k != "GITHUB_TOKEN");
    env.push(("GITHUB_TOKEN_FILE", token_file.display().to_string()));

    let (status, output) = hookbridge(&[], &env).await;
    assert_eq!(status.code(), Some(0), "{output:#?}");
    assert!(
        output
            .iter()
            .any(|l| l
                == "redeliver: 5 failed deliveries, 1 already processed, 4 redelivered, 0 failed"),
        "{output:#?}"
    );
    // fail-b's newest failed attempt (id 1040) is the one asked again, not its first (1070).
    assert_eq!(sorted(fake.redelivered()), expected);
    assert!(!output.iter().any(|l| l.contains(&fake.token())));

    let requests = fake.requests();
    let lists: Vec<_> = requests.iter().filter(|r| r.method == "GET").collect();
    assert_eq!(lists.len(), 2, "page 3 is older than --since: {lists:#?}");
    assert!(lists[0].target.contains("per_page=100"), "{lists:#?}");
    assert!(lists[1].target.contains("cursor=v1_1100"), "{lists:#?}");
    for r in &requests {
        assert_eq!(r.status / 100, 2, "{r:#?}");
        assert_eq!(
            r.authorization.as_deref(),
            Some(format!("Bearer {}", fake.token()).as_str())
        );
        assert_eq!(r.accept.as_deref(), Some("application/vnd.github+json"));
        assert_eq!(r.api_version.as_deref(), Some("2022-11-28"));
        assert!(
            r.user_agent
                .as_deref()
                .is_some_and(|u| u.starts_with("hookbridge/"))
        );
    }

    let records = hookbridge_tests::audit::records(&dir.path().join("audit"));
    let asked: Vec<&Value> = records
        .iter()
        .filter(|r| r["action"] == "github.redeliver")
        .collect();
    assert_eq!(asked.len(), 4, "{records:#?}");
    let text = serde_json::to_string(&asked).expect("json");
    for guid in ["fail-a", "fail-b", "fail-c", "fail-d"] {
        assert!(text.contains(guid), "{guid} not audited: {text}");
    }
    assert!(!text.contains(&fake.token()));

    // GitHub now lists the redeliveries as delivered: a second run asks nothing more.
    let (status, output) = hookbridge(&[], &env).await;
    assert_eq!(status.code(), Some(0), "{output:#?}");
    assert!(
        output
            .iter()
            .any(|l| l
                == "redeliver: 1 failed deliveries, 1 already processed, 0 redelivered, 0 failed"),
        "{output:#?}"
    );
    assert_eq!(fake.redelivered().len(), 4);
}

#[tokio::test]
async fn dry_run_asks_nothing() {
    let (fake, expected) = github(GithubConfig::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (status, output) = hookbridge(
        &["--dry-run", "--json"],
        &env(&fake, dir.path(), &fake.token()),
    )
    .await;
    assert_eq!(status.code(), Some(0), "{output:#?}");
    assert!(fake.redelivered().is_empty());
    assert!(fake.requests().iter().all(|r| r.method == "GET"));
    let report: Value = output
        .iter()
        .find_map(|l| {
            serde_json::from_str(l)
                .ok()
                .filter(|v: &Value| v.get("dry_run").is_some())
        })
        .unwrap_or_else(|| panic!("no JSON report: {output:#?}"));
    assert_eq!(report["dry_run"], true);
    assert_eq!(report["failed"], 5, "{report:#}");
    assert_eq!(report["processed"], 0, "{report:#}");
    // `processed` is not in the store here: GitHub's statuses alone say it failed.
    assert_eq!(report["redelivered"], 5, "{report:#}");
    let mut would: Vec<u64> = report["deliveries"]
        .as_array()
        .expect("deliveries")
        .iter()
        .filter(|d| d["outcome"] == "would_redeliver" && d["guid"] != "processed")
        .filter_map(|d| d["delivery_id"].as_u64())
        .collect();
    would.sort_unstable();
    assert_eq!(would, expected);
    let records = hookbridge_tests::audit::records(&dir.path().join("audit"));
    assert!(!records.iter().any(|r| r["action"] == "github.redeliver"));
}

#[tokio::test]
async fn a_bad_token_exits_2_without_printing_it() {
    let (fake, _) = github(GithubConfig::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let wrong = "ghp_wrongWRONGwrongWRONGwrong0123456789";
    let (status, output) = hookbridge(&[], &env(&fake, dir.path(), wrong)).await;
    assert_eq!(status.code(), Some(2), "{output:#?}");
    assert!(
        output
            .iter()
            .any(|l| l.contains("401") && l.contains("Bad credentials")),
        "{output:#?}"
    );
    assert!(
        output.iter().any(|l| l.contains("admin:repo_hook")),
        "{output:#?}"
    );
    assert!(!output.iter().any(|l| l.contains(wrong)), "{output:#?}");
    assert!(fake.redelivered().is_empty());
}

#[tokio::test]
async fn a_read_only_token_exits_2_after_the_first_refusal() {
    let (fake, _) = github(GithubConfig {
        read_only: true,
        ..GithubConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (status, output) = hookbridge(&[], &env(&fake, dir.path(), &fake.token())).await;
    assert_eq!(status.code(), Some(2), "{output:#?}");
    assert!(
        output
            .iter()
            .any(|l| l.starts_with("hookbridge: ") && l.contains("403") && l.contains("Webhooks")),
        "{output:#?}"
    );
    let posts = fake
        .requests()
        .iter()
        .filter(|r| r.method == "POST")
        .count();
    assert_eq!(posts, 1, "no more asked after a 403");
    let records = hookbridge_tests::audit::records(&dir.path().join("audit"));
    let asked: Vec<&Value> = records
        .iter()
        .filter(|r| r["action"] == "github.redeliver")
        .collect();
    assert_eq!(asked.len(), 1, "{records:#?}");
    assert_eq!(asked[0]["outcome"], "failed", "{records:#?}");
}

#[tokio::test]
async fn an_unknown_hook_exits_1() {
    let (fake, _) = github(GithubConfig::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let env = env(&fake, dir.path(), &fake.token());
    let args = ["github", "redeliver", "--repo", REPO, "--hook-id", "999"];
    let (status, output) = run_to_end("hookbridge", &args, &env, TIMEOUT).await;
    assert_eq!(status.code(), Some(1), "{output:#?}");
    assert!(
        output
            .iter()
            .any(|l| l.contains("404") && l.contains(REPO) && l.contains("999")),
        "{output:#?}"
    );
    let args = [
        "github",
        "redeliver",
        "--repo",
        "acme/web",
        "--hook-id",
        "4242",
    ];
    let (status, output) = run_to_end("hookbridge", &args, &env, TIMEOUT).await;
    assert_eq!(status.code(), Some(1), "{output:#?}");
}

#[tokio::test]
async fn a_rate_limit_resetting_in_seconds_is_waited_out() {
    let (fake, expected) = github(GithubConfig::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    // Two seconds, not one: the command must reach the fake while the limit is still exhausted,
    // even when a loaded machine takes a second to start it.
    fake.exhaust_rate_limit(Duration::from_secs(2));
    let started = Instant::now();
    let (status, output) = hookbridge(&[], &env(&fake, dir.path(), &fake.token())).await;
    assert_eq!(status.code(), Some(0), "{output:#?}");
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert!(
        output
            .iter()
            .any(|l| l.contains("rate limit") && l.contains("waiting")),
        "{output:#?}"
    );
    let limited = fake.requests().iter().filter(|r| r.status == 403).count();
    assert!(limited >= 1);
    let mut redelivered = fake.redelivered();
    redelivered.retain(|id| expected.contains(id));
    assert_eq!(sorted(redelivered), expected);
}

#[tokio::test]
async fn a_rate_limit_resetting_in_an_hour_exits_1_saying_when() {
    let (fake, _) = github(GithubConfig::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    fake.exhaust_rate_limit(Duration::from_secs(3600));
    let started = Instant::now();
    let (status, output) = hookbridge(&[], &env(&fake, dir.path(), &fake.token())).await;
    assert_eq!(status.code(), Some(1), "{output:#?}");
    assert!(started.elapsed() < Duration::from_secs(30));
    assert!(
        output
            .iter()
            .any(|l| l.contains("rate limit") && l.contains("until")),
        "{output:#?}"
    );
    assert!(fake.redelivered().is_empty());
}
