//! The rule under faults: installation tokens that expire or are refused mid-run, a worker killed
//! after GitHub took its answer, GitHub failing and recovering — each deployment answered once.

use super::*;

/// Installation tokens that live 10 seconds — less than the 5 minutes before expiry at which the
/// worker stops using one — are never reused: every call to GitHub fetches a new one, none is
/// refused as expired, and every deployment is answered once.
#[tokio::test]
async fn installation_tokens_shorter_than_the_refresh_margin_are_fetched_for_every_call() {
    let jira = JiraFake::start(FakeConfig::default()).await;
    let app = GithubAppFake::start(GithubAppConfig {
        token_lifetime: Duration::from_secs(10),
        ..GithubAppConfig::default()
    })
    .await;
    let slack = SlackFake::start(SlackConfig::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let run = start_run(false, &app, &slack, dir.path());
    let approved = new_cr(&jira, &run, "Rotate the card keys", "Approved").await;
    let mut issued = Vec::new();
    for run_id in 31..=34 {
        app.await_deployment(REPO, run_id, "production");
        // Run 34 names its CR in the head commit: a second call, another token.
        let payload = if run_id == 34 {
            app.add_commit(
                REPO,
                &format!("{run_id:040x}"),
                &format!("{approved}: keys"),
            );
            json!({})
        } else {
            json!({"jira_cr_id": approved})
        };
        let event = rule_event(&app, run_id, "production", &payload);
        assert_eq!(post_rule(&run, &event, &delivery_id()).await, 202);
        assert_review(&review_of(&app, run_id, &run).await, "approved", &approved);
        issued.push(app.tokens_issued());
    }
    let with_token: Vec<_> = app
        .requests()
        .into_iter()
        .filter(|r| r.credential == Credential::InstallationToken)
        .collect();
    assert!(
        with_token.iter().all(|r| r.status != 401),
        "an expired token was sent: {with_token:#?}"
    );
    assert_eq!(
        app.tokens_issued(),
        with_token.len(),
        "one token per call: {with_token:#?}"
    );
    assert!(issued.windows(2).all(|w| w[0] < w[1]), "{issued:?}");
    wait_rule_events_processed(&run, 4).await;
    for run_id in 31..=34 {
        assert_eq!(reviews_of(&app, run_id).len(), 1, "run {run_id}");
    }
}

/// A cached installation token that GitHub no longer takes (expired on GitHub's clock before the
/// worker's, or revoked): the answer gets `401 Bad credentials`, the worker fetches a new token
/// and the answer lands, once — whether the token expired or GitHub just said 401 once.
#[tokio::test]
async fn a_token_github_refuses_mid_run_is_replaced_and_the_answer_lands() {
    let jira = JiraFake::start(FakeConfig::default()).await;
    let app = GithubAppFake::start(GithubAppConfig::default()).await;
    let slack = SlackFake::start(SlackConfig::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let run = start_run(false, &app, &slack, dir.path());
    let approved = new_cr(&jira, &run, "Rotate the card keys", "Approved").await;
    let deploy = async |run_id: u64| {
        app.await_deployment(REPO, run_id, "production");
        let event = rule_event(&app, run_id, "production", &json!({"jira_cr_id": approved}));
        assert_eq!(post_rule(&run, &event, &delivery_id()).await, 202);
        assert_review(&review_of(&app, run_id, &run).await, "approved", &approved);
    };
    deploy(35).await;
    assert_eq!(app.tokens_issued(), 1);
    // Run 36 uses the cached token, which GitHub no longer takes.
    app.expire_tokens();
    deploy(36).await;
    assert_eq!(app.tokens_issued(), 2);
    // Run 37's answer is refused once.
    app.fail_next(1, 401);
    deploy(37).await;
    assert_eq!(app.tokens_issued(), 3);
    let reviews: Vec<(String, u16)> = app
        .requests()
        .into_iter()
        .filter(|r| r.target.contains("/deployment_protection_rule"))
        .map(|r| (r.target, r.status))
        .collect();
    let statuses: Vec<u16> = reviews.iter().map(|(_, s)| *s).collect();
    assert_eq!(statuses, [204, 401, 204, 401, 204], "{reviews:#?}");
    wait_rule_events_processed(&run, 3).await;
    for run_id in 35..=37 {
        assert_eq!(reviews_of(&app, run_id).len(), 1, "run {run_id}");
    }
}

/// `hookbridge run` killed (`kill -9`) after GitHub took its answer and before it heard so: started
/// again on the same data dir and store, it tries the deployment again, GitHub says nothing is
/// pending, and that ends it — GitHub holds exactly one answer for the run and environment.
async fn a_worker_killed_after_github_took_the_answer_does_not_answer_twice(redis: bool) {
    let jira = JiraFake::start(FakeConfig::default()).await;
    let app = GithubAppFake::start(GithubAppConfig::default()).await;
    let slack = SlackFake::start(SlackConfig::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    std::fs::create_dir(&data).expect("mkdir data");
    let store = store_env(redis, "hbdep");
    let same = [
        ("HOOKBRIDGE_DATA_DIR", data.display().to_string()),
        // A message in work when the process dies is handed out again this soon.
        ("HOOKBRIDGE_VISIBILITY_TIMEOUT", "2".to_owned()),
    ];
    let mut first = start_run_with(&store, &same, &app, &slack, dir.path());
    let approved = new_cr(&jira, &first, "Rotate the card keys", "Approved").await;
    app.hold_reviews(true);
    app.await_deployment(REPO, 41, "production");
    let event = rule_event(&app, 41, "production", &json!({"jira_cr_id": approved}));
    let delivery = delivery_id();
    assert_eq!(post_rule(&first, &event, &delivery).await, 202);
    wait_until("GitHub takes run 41's answer", PATIENCE, || {
        app.reviews_held() == 1
    })
    .await;
    first.proc.kill9();
    app.hold_reviews(false);
    let review = only_review_of(&app, 41, &first).await;
    assert_review(&review, "approved", &approved);

    let second = start_run_with(&store, &same, &app, &slack, dir.path());
    wait_rule_events_processed(&second, 1).await;
    let answers: Vec<u16> = app
        .requests()
        .into_iter()
        .filter(|r| r.target.contains("/runs/41/"))
        .map(|r| r.status)
        .collect();
    assert_eq!(
        answers,
        [204, 422],
        "asked again after the restart, and told it was decided:\n{}",
        second.printed()
    );
    // Now marked answered: GitHub's redelivery and a new delivery of the same request ask nothing.
    assert_eq!(post_rule(&second, &event, &delivery).await, 202);
    assert_eq!(post_rule(&second, &event, &delivery_id()).await, 202);
    wait_rule_events_processed(&second, 3).await;
    assert_eq!(
        app.requests()
            .iter()
            .filter(|r| r.target.contains("/runs/41/"))
            .count(),
        2,
        "{:#?}",
        app.requests()
    );
    assert_eq!(reviews_of(&app, 41), [review]);
    // Alerted once all the same: with the answer the restarted worker stored.
    wait_until("the Slack alert", PATIENCE, || {
        deployment_alerts(&slack) >= 1
    })
    .await;
    assert_eq!(deployment_alerts(&slack), 1, "{:#?}", slack.messages());
}

#[tokio::test]
async fn a_worker_killed_after_github_took_the_answer_does_not_answer_twice_on_the_embedded_store()
{
    a_worker_killed_after_github_took_the_answer_does_not_answer_twice(false).await;
}

#[tokio::test]
async fn a_worker_killed_after_github_took_the_answer_does_not_answer_twice_on_redis() {
    a_worker_killed_after_github_took_the_answer_does_not_answer_twice(true).await;
}

/// GitHub answering `500` to the answer: the worker tries again later (5 s apart: GitHub sends no
/// `retry-after` with a 500) and the deployment is answered once, alerted once.
#[tokio::test]
async fn a_deployment_is_answered_once_after_github_fails_and_recovers() {
    let jira = JiraFake::start(FakeConfig::default()).await;
    let app = GithubAppFake::start(GithubAppConfig::default()).await;
    let slack = SlackFake::start(SlackConfig::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let run = start_run(false, &app, &slack, dir.path());
    let approved = new_cr(&jira, &run, "Rotate the card keys", "Approved").await;
    // Run 61 is answered first, so that the worker holds a token and its next call is run 62's
    // answer.
    for run_id in [61, 62] {
        app.await_deployment(REPO, run_id, "production");
    }
    let event = rule_event(&app, 61, "production", &json!({"jira_cr_id": approved}));
    assert_eq!(post_rule(&run, &event, &delivery_id()).await, 202);
    assert_review(&review_of(&app, 61, &run).await, "approved", &approved);
    app.fail_next(2, 500);
    let event = rule_event(&app, 62, "production", &json!({"jira_cr_id": approved}));
    assert_eq!(post_rule(&run, &event, &delivery_id()).await, 202);
    assert_review(&review_of(&app, 62, &run).await, "approved", &approved);
    let answers: Vec<u16> = app
        .requests()
        .into_iter()
        .filter(|r| r.target.contains("/runs/62/"))
        .map(|r| r.status)
        .collect();
    assert_eq!(answers, [500, 500, 204]);
    wait_rule_events_processed(&run, 2).await;
    wait_until("the Slack alerts", PATIENCE, || {
        deployment_alerts(&slack) >= 2
    })
    .await;
    assert_eq!(reviews_of(&app, 62).len(), 1);
    assert_eq!(deployment_alerts(&slack), 2, "{:#?}", slack.messages());
}

/// The approval's Jira webhook never arrives: the periodic re-check
/// (`HOOKBRIDGE_DEPLOYMENT_RECHECK`) reads the CR from Jira and lets the deployment go, once.
/// (Several threads: `hookbridge run` asks the Jira fake who it is while the test waits for it to
/// listen.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_approval_webhook_is_made_up_by_the_recheck() {
    let jira = JiraFake::start(FakeConfig::default()).await;
    let app = GithubAppFake::start(GithubAppConfig::default()).await;
    let slack = SlackFake::start(SlackConfig::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let extra = [
        ("HOOKBRIDGE_DEPLOYMENT_RECHECK", "1".to_owned()),
        ("JIRA_BASE_URL", jira.base_url()),
        ("JIRA_EMAIL", jira.email()),
        ("JIRA_API_TOKEN", jira.token()),
    ];
    let run = start_run_with(&[], &extra, &app, &slack, dir.path());
    let pending = new_cr(&jira, &run, "Raise the limits", "Pending Approval").await;
    app.await_deployment(REPO, 81, "production");
    let event = rule_event(&app, 81, "production", &json!({"jira_cr_id": pending}));
    assert_eq!(post_rule(&run, &event, &delivery_id()).await, 202);
    wait_until("run 81 recorded as waiting", PATIENCE, || {
        run.printed().contains("deployment waits for its CR")
    })
    .await;
    assert!(reviews_of(&app, 81).is_empty());
    // Approved in Jira; its webhook is never posted.
    let _lost = jira.move_change_request(&pending, "Approved", &approver());
    assert_review(&review_of(&app, 81, &run).await, "approved", &pending);
    // Later re-checks find nothing left to do: still one answer.
    let settle = Instant::now() + Duration::from_secs(3);
    while Instant::now() < settle {
        assert_eq!(reviews_of(&app, 81).len(), 1);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
