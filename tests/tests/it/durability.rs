//! "A 2xx is never sent before the event is durably enqueued" (README "HTTP contract", answer 202): the
//! ingest is killed with SIGKILL while senders are still going, and every delivery that got a 202 is
//! in the embedded queue afterwards. Plus the one-machine mode (`hookbridge run`, what `make run`
//! starts): it serves `/health`, verifies signatures, and its worker consumes what was queued.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hookbridge_tests::github::{Delivery, GithubIssue};
use hookbridge_tests::ingest::{PATIENCE, TestIngest, embedded_queue_contents, http};
use serde_json::json;

const SECRET: &str = "durable-s3cret-5e1a";

/// Senders running at once, and the most each sends before the process is gone anyway.
const SENDERS: u64 = 8;
const PER_SENDER: u64 = 400;
/// The process is killed once this many events were acknowledged (while the rest are in flight).
const KILL_AFTER: usize = 100;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_while_sending_loses_no_acknowledged_event() {
    let mut ingest = TestIngest::ingest()
        .env("GITHUB_WEBHOOK_SECRET", SECRET)
        .start();
    let url = ingest.at("/webhooks/github");
    let accepted = Arc::new(Mutex::new(Vec::new()));
    let failed = Arc::new(Mutex::new(0u64));
    let mut senders = tokio::task::JoinSet::new();
    for sender in 0..SENDERS {
        let (url, accepted, failed) = (url.clone(), accepted.clone(), failed.clone());
        senders.spawn(async move {
            let client = http();
            for i in 0..PER_SENDER {
                let payload =
                    GithubIssue::new("octo-org/api", sender * PER_SENDER + i).event("opened");
                let delivery = Delivery::github("issues", &payload).signed(SECRET);
                match delivery.post(&client, &url).send().await {
                    Ok(r) if r.status() == 202 => {
                        accepted.lock().expect("lock").push(delivery.id);
                    }
                    Ok(r) => panic!("unexpected answer {} before the kill", r.status()),
                    // The process is gone: this sender is done.
                    Err(_) => {
                        *failed.lock().expect("lock") += 1;
                        return;
                    }
                }
            }
        });
    }

    let deadline = Instant::now() + PATIENCE;
    while accepted.lock().expect("lock").len() < KILL_AFTER {
        assert!(
            Instant::now() < deadline,
            "the ingest did not acknowledge {KILL_AFTER} events in time"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    ingest.proc.kill9();
    while let Some(result) = senders.join_next().await {
        result.expect("a sender panicked");
    }
    let acknowledged = accepted.lock().expect("lock").clone();
    assert!(
        *failed.lock().expect("lock") > 0,
        "the kill should have cut senders off mid-way (all {} events were sent first)",
        acknowledged.len()
    );

    let queued: HashSet<String> = embedded_queue_contents(ingest.dir.path())
        .await
        .into_iter()
        .map(|e| e.delivery.as_str().to_owned())
        .collect();
    let lost: Vec<&String> = acknowledged
        .iter()
        .filter(|id| !queued.contains(*id))
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged events were lost: {lost:?}",
        lost.len(),
        acknowledged.len()
    );

    // The data dir survives the kill: a new ingest on it starts, is ready and accepts.
    let again = TestIngest::ingest()
        .env("GITHUB_WEBHOOK_SECRET", SECRET)
        .env(
            "HOOKBRIDGE_DATA_DIR",
            ingest.dir.path().display().to_string(),
        )
        .start();
    assert_eq!(
        http()
            .get(again.at("/ready"))
            .send()
            .await
            .expect("ready")
            .status(),
        200
    );
    let after = Delivery::github(
        "issues",
        &GithubIssue::new("octo-org/api", 1).event("opened"),
    )
    .signed(SECRET);
    assert_eq!(
        after
            .post(&http(), &again.at("/webhooks/github"))
            .send()
            .await
            .expect("send")
            .status(),
        202
    );
}

/// `hookbridge run` (the `make run` acceptance): `/health`, 202 for a signed event, 401 for a wrong
/// signature, the in-process worker consumes the event (dry-run: the Jira request it would send is
/// in the audit trail), and SIGTERM stops it with 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hookbridge_run_serves_verifies_and_consumes() {
    let mut run = TestIngest::run_mode()
        .env("GITHUB_WEBHOOK_SECRET", SECRET)
        .env("JIRA_PROJECT_KEY", "DEMO")
        .start();
    let health = http().get(run.at("/health")).send().await.expect("health");
    assert_eq!(health.status(), 200);
    let health: serde_json::Value = health.json().await.expect("JSON health");
    assert_eq!(health["status"], "healthy");

    let issue = GithubIssue::new("octo-org/api", 42);
    let delivery = Delivery::github("issues", &issue.event("opened")).signed(SECRET);
    let response = delivery
        .post(&http(), &run.at("/webhooks/github"))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 202);
    assert_eq!(
        response.json::<serde_json::Value>().await.expect("JSON"),
        json!({"status": "queued", "delivery": delivery.id})
    );
    let forged = Delivery::github("issues", &issue.event("opened")).signed("wrong-secret");
    assert_eq!(
        forged
            .post(&http(), &run.at("/webhooks/github"))
            .send()
            .await
            .expect("send")
            .status(),
        401
    );

    // Dry-run (no JIRA_BASE_URL): the worker in the same process records the Jira request.
    let audit = run.dir.path().join("audit");
    let deadline = Instant::now() + PATIENCE;
    loop {
        let trail = hookbridge_tests::audit::trail_text(&audit);
        if trail.contains("/rest/api/3/issue") && trail.contains(&issue.html_url()) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no dry-run record in {}:\n{trail}\n{}",
            audit.display(),
            run.printed()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        !run.printed().contains(SECRET),
        "the secret appeared in the output"
    );
    run.proc.terminate();
    let exit = run.proc.wait_exit(PATIENCE);
    assert!(exit.success(), "SIGTERM must exit 0, got {exit}");
}
