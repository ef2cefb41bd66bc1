//! What the rule answers: at once when the CR decides, on the Jira webhook when it waits; the CR
//! found in the payload, the commit, the pull request or the ref.

use super::*;

async fn deployments_wait_for_their_cr_and_go_when_jira_approves_it(redis: bool) {
    let jira = JiraFake::start(FakeConfig::default()).await;
    let app = GithubAppFake::start(GithubAppConfig::default()).await;
    let slack = SlackFake::start(SlackConfig::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut run = start_run(redis, &app, &slack, dir.path());
    let client = http();
    let jira_url = run.at("/webhooks/jira");
    let approvers = json!([approver().with_role("Change Manager")]);

    // A CR pending approval, and one approved already.
    let (pending, created) = jira.create_change_request(
        CrSpec::new("Raise the payment limits")
            .status("Pending Approval")
            .field("customfield_10102", approvers.clone()),
        &approver(),
    );
    assert_eq!(created.post(&client, &jira_url, JIRA_SECRET).await, 202);
    let (approved, created) = jira.create_change_request(
        CrSpec::new("Rotate the card keys")
            .status("Approved")
            .field("customfield_10102", approvers.clone()),
        &approver(),
    );
    assert_eq!(created.post(&client, &jira_url, JIRA_SECRET).await, 202);
    let (rejected, created) = jira.create_change_request(
        CrSpec::new("Drop the fraud checks")
            .status("Rejected")
            .field("customfield_10102", approvers),
        &approver(),
    );
    assert_eq!(created.post(&client, &jira_url, JIRA_SECRET).await, 202);

    // Run 1 names the pending CR; 2 the approved one; 3 the rejected one; 4 none; 5 deploys to
    // an environment no table lists; 6 to a tier-2 environment.
    let cases = [
        (1, "production", json!({"jira_cr_id": pending})),
        (2, "production", json!({"jira_cr_id": approved})),
        (
            3,
            "Production",
            json!(format!("{{\"jira_cr_id\":\"{rejected}\"}}")),
        ),
        (4, "production", json!({})),
        (5, "preview", json!({})),
        (6, "sandbox", json!({})),
    ];
    let mut deliveries = Vec::new();
    for (run_id, environment, payload) in &cases {
        app.await_deployment(REPO, *run_id, environment);
        let event = rule_event(&app, *run_id, environment, payload);
        let delivery = delivery_id();
        assert_eq!(post_rule(&run, &event, &delivery).await, 202);
        deliveries.push((event, delivery));
    }
    // Unsigned or wrongly signed: refused before anything is decided.
    let unsigned = Delivery::github("deployment_protection_rule", &deliveries[0].0)
        .post(&client, &run.at("/webhooks/github"))
        .send()
        .await
        .expect("post");
    assert_eq!(unsigned.status().as_u16(), 401);
    let wrong = Delivery::github("deployment_protection_rule", &deliveries[0].0)
        .signed("not-the-secret")
        .post(&client, &run.at("/webhooks/github"))
        .send()
        .await
        .expect("post");
    assert_eq!(wrong.status().as_u16(), 401);

    let approved_review = review_of(&app, 2, &run).await;
    assert_eq!(approved_review.state, "approved");
    let comment = approved_review.comment.clone().unwrap_or_default();
    assert!(
        comment.contains(&approved) && comment.contains("audit record: deploy-"),
        "{comment}"
    );
    let rejected_review = review_of(&app, 3, &run).await;
    assert_eq!(rejected_review.state, "rejected");
    let comment = rejected_review.comment.unwrap_or_default();
    assert!(
        comment.contains(&rejected) && comment.contains("rejected"),
        "{comment}"
    );
    let none = review_of(&app, 4, &run).await;
    assert_eq!(none.state, "rejected");
    assert!(
        none.comment.unwrap_or_default().contains("jira_cr_id"),
        "the comment says how to name a CR"
    );
    assert_eq!(review_of(&app, 5, &run).await.state, "approved");
    assert_eq!(review_of(&app, 6, &run).await.state, "approved");

    // Run 1 waits: nothing is answered while the CR is pending.
    wait_until("run 1 recorded as waiting", PATIENCE, || {
        run.printed().contains("deployment waits for its CR")
    })
    .await;
    assert!(reviews_of(&app, 1).is_empty());

    // Jira approves the CR: the deployment goes within a second of the webhook's 202.
    let approval = jira.move_change_request(&pending, "Approved", &approver());
    assert_eq!(approval.post(&client, &jira_url, JIRA_SECRET).await, 202);
    let acked = Instant::now();
    let review = review_of(&app, 1, &run).await;
    let took = acked.elapsed();
    assert_eq!(review.state, "approved");
    assert!(
        took <= Duration::from_secs(1),
        "answered {took:?} after the approval"
    );

    // Redelivered, both kinds: GitHub is not asked again.
    for (event, delivery) in &deliveries {
        assert_eq!(post_rule(&run, event, delivery).await, 202);
    }
    assert_eq!(approval.post(&client, &jira_url, JIRA_SECRET).await, 202);
    // A new delivery of run 1's event (GitHub's redelivery keeps the id, a re-run does not).
    assert_eq!(post_rule(&run, &deliveries[0].0, &delivery_id()).await, 202);
    wait_until("the Slack alerts", PATIENCE, || {
        deployment_alerts(&slack) >= 6
    })
    .await;
    let settle = Instant::now() + Duration::from_secs(2);
    while Instant::now() < settle {
        for run_id in 1..=6 {
            assert_eq!(
                reviews_of(&app, run_id).len(),
                1,
                "run {run_id}: {:#?}",
                app.reviews()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(deployment_alerts(&slack), 6, "{:#?}", slack.messages());
    run.proc.terminate();
    assert!(run.proc.wait_exit(PATIENCE).success());
}

#[tokio::test]
async fn deployments_wait_for_their_cr_and_go_when_jira_approves_it_on_the_embedded_store() {
    deployments_wait_for_their_cr_and_go_when_jira_approves_it(false).await;
}

#[tokio::test]
async fn deployments_wait_for_their_cr_and_go_when_jira_approves_it_on_redis() {
    deployments_wait_for_their_cr_and_go_when_jira_approves_it(true).await;
}

/// A deployment's CR named only by GitHub: the head commit's message, a linked pull request's title
/// or branch (from the event, or from the API when the event lists none), the ref. Each is
/// answered as its CR decides, and the comment names the CR found; the documented order holds
/// (the commit before the pull request); `JIRA-5` is not a CR key, and is passed over.
async fn the_cr_is_found_in_the_commit_the_pull_request_or_the_ref(redis: bool) {
    let jira = JiraFake::start(FakeConfig::default()).await;
    let app = GithubAppFake::start(GithubAppConfig::default()).await;
    let slack = SlackFake::start(SlackConfig::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let run = start_run(redis, &app, &slack, dir.path());
    let approved = new_cr(&jira, &run, "New payment limits", "Approved").await;
    let rejected = new_cr(&jira, &run, "Drop the fraud checks", "Rejected").await;
    let sha = |run_id: u64| format!("{run_id:040x}");
    let pull = |number: u64, title: &str, branch: &str| json!({"number": number, "title": title, "head": {"ref": branch, "sha": "0"}});

    // (run, what the event says beyond its defaults, the answer, the CR the comment names)
    let mut cases: Vec<(u64, Value, &str, String)> = Vec::new();
    // Only the head commit's message.
    app.add_commit(
        REPO,
        &sha(11),
        &format!("Raise the limits\n\nChange: {approved}"),
    );
    cases.push((11, json!({}), "approved", approved.clone()));
    // Only a linked pull request's title, in the event.
    cases.push((
        12,
        json!({"pull_requests": [pull(5, &format!("{rejected}: drop checks"), "feature/checks")]}),
        "rejected",
        rejected.clone(),
    ));
    // Only its branch, in the event.
    cases.push((
        13,
        json!({"pull_requests": [pull(6, "Tidy up", &format!("{}-new-limits", approved.to_lowercase()))]}),
        "approved",
        approved.clone(),
    ));
    // The event lists no pull request: GitHub's list for the commit, by title then by branch.
    app.add_pull(REPO, &sha(14), 7, &format!("[{rejected}] checks"), "misc");
    cases.push((14, json!({}), "rejected", rejected.clone()));
    app.add_pull(
        REPO,
        &sha(15),
        8,
        "Tidy up",
        &format!("feature/{approved}-limits"),
    );
    cases.push((15, json!({}), "approved", approved.clone()));
    // Only the ref.
    cases.push((
        16,
        json!({"ref": format!("refs/heads/{}-x", rejected.to_lowercase())}),
        "rejected",
        rejected.clone(),
    ));
    // A key of another project is no CR: nothing named, rejected with how to name one…
    app.add_commit(REPO, &sha(17), "JIRA-5: fix the rounding");
    cases.push((17, json!({}), "rejected", "none".to_owned()));
    // …and passed over for the CR the pull request names.
    app.add_commit(REPO, &sha(18), "JIRA-5: fix the rounding");
    app.add_pull(REPO, &sha(18), 9, &format!("{approved} JIRA-5"), "jira-5");
    cases.push((18, json!({}), "approved", approved.clone()));
    // The commit's message comes before the pull request's title.
    app.add_commit(REPO, &sha(19), &format!("{approved}: limits"));
    cases.push((
        19,
        json!({"pull_requests": [pull(10, &rejected, "x")]}),
        "approved",
        approved.clone(),
    ));

    for (run_id, overrides, _, _) in &cases {
        app.await_deployment(REPO, *run_id, "production");
        let mut event = rule_event(&app, *run_id, "production", &json!({}));
        for (field, value) in overrides.as_object().expect("an object") {
            event[field] = value.clone();
        }
        assert_eq!(post_rule(&run, &event, &delivery_id()).await, 202);
    }
    for (run_id, _, state, cr) in &cases {
        let review = review_of(&app, *run_id, &run).await;
        assert_review(&review, state, cr);
        if cr == "none" {
            let comment = review.comment.unwrap_or_default();
            assert!(
                comment.contains("needs an approved Change Request") && !comment.contains("JIRA-5"),
                "{comment}"
            );
        }
    }
    // GitHub was asked for a commit's pull requests only when the event listed none.
    let asked: Vec<String> = app
        .requests()
        .into_iter()
        .map(|r| r.target)
        .filter(|t| t.contains("/pulls"))
        .collect();
    for listed in [12, 13, 19] {
        assert!(
            !asked.iter().any(|t| t.contains(&sha(listed))),
            "run {listed}: {asked:?}"
        );
    }
    assert!(asked.iter().any(|t| t.contains(&sha(14))), "{asked:?}");
    wait_rule_events_processed(&run, cases.len()).await;
    for (run_id, _, _, _) in &cases {
        assert_eq!(reviews_of(&app, *run_id).len(), 1, "run {run_id}");
    }
}

#[tokio::test]
async fn the_cr_is_found_in_the_commit_the_pull_request_or_the_ref_on_the_embedded_store() {
    the_cr_is_found_in_the_commit_the_pull_request_or_the_ref(false).await;
}

#[tokio::test]
async fn the_cr_is_found_in_the_commit_the_pull_request_or_the_ref_on_redis() {
    the_cr_is_found_in_the_commit_the_pull_request_or_the_ref(true).await;
}

/// Deployments waiting on a pending CR are rejected when Jira rejects the CR, once: the comment
/// names the CR and says rejected, one Slack alert each; a later approval of the CR, and a new
/// delivery of the request, ask GitHub nothing more.
async fn a_waiting_deployment_is_rejected_when_jira_rejects_its_cr(redis: bool) {
    let jira = JiraFake::start(FakeConfig::default()).await;
    let app = GithubAppFake::start(GithubAppConfig::default()).await;
    let slack = SlackFake::start(SlackConfig::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let run = start_run(redis, &app, &slack, dir.path());
    let client = http();
    let jira_url = run.at("/webhooks/jira");
    let pending = new_cr(&jira, &run, "Move the ledger", "Pending Approval").await;
    // Run 21 names the CR in its payload, run 22 in its head commit: both wait on it.
    app.await_deployment(REPO, 21, "production");
    app.await_deployment(REPO, 22, "production");
    app.add_commit(REPO, &format!("{:040x}", 22), &format!("{pending}: ledger"));
    let event = rule_event(&app, 21, "production", &json!({"jira_cr_id": pending}));
    assert_eq!(post_rule(&run, &event, &delivery_id()).await, 202);
    let other = rule_event(&app, 22, "production", &json!({}));
    assert_eq!(post_rule(&run, &other, &delivery_id()).await, 202);
    // Handled to the end: recorded as waiting, not answered.
    wait_rule_events_processed(&run, 2).await;
    assert!(
        run.printed().contains("deployment waits for its CR"),
        "{}",
        run.printed()
    );
    assert!(app.reviews().is_empty(), "{:#?}", app.reviews());

    let rejection = jira.move_change_request(&pending, "Rejected", &approver());
    assert_eq!(rejection.post(&client, &jira_url, JIRA_SECRET).await, 202);
    for run_id in [21, 22] {
        let review = review_of(&app, run_id, &run).await;
        assert_review(&review, "rejected", &pending);
        let comment = review.comment.unwrap_or_default();
        assert!(
            comment.contains(&format!("{pending} was rejected")),
            "{comment}"
        );
    }
    wait_until("the rejections' Slack alerts", PATIENCE, || {
        deployment_alerts(&slack) >= 2
    })
    .await;

    // Jira approves it after all, and GitHub redelivers the request: the deployment was answered.
    let approval = jira.move_change_request(&pending, "Approved", &approver());
    assert_eq!(approval.post(&client, &jira_url, JIRA_SECRET).await, 202);
    assert_eq!(post_rule(&run, &event, &delivery_id()).await, 202);
    wait_rule_events_processed(&run, 3).await;
    wait_processed(&run, "jira", "jira:issue_updated", 2).await;
    for run_id in [21, 22] {
        assert_eq!(reviews_of(&app, run_id).len(), 1, "{:#?}", app.reviews());
    }
    assert_eq!(deployment_alerts(&slack), 2, "{:#?}", slack.messages());
}

#[tokio::test]
async fn a_waiting_deployment_is_rejected_when_jira_rejects_its_cr_on_the_embedded_store() {
    a_waiting_deployment_is_rejected_when_jira_rejects_its_cr(false).await;
}

#[tokio::test]
async fn a_waiting_deployment_is_rejected_when_jira_rejects_its_cr_on_redis() {
    a_waiting_deployment_is_rejected_when_jira_rejects_its_cr(true).await;
}
