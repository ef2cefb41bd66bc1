//! What does not link, the Jira fake's remote-link rules, the ingest's defaults, the dry run.

use super::*;

/// A route without `sync_pull_requests`, a repository no linking route takes, actions that
/// change nothing a link shows, and the bridge's own account: no remote link is even tried.
#[tokio::test]
async fn routes_and_actions_that_do_not_link_do_nothing() {
    let toml = r#"
[[routes]]
name = "issues only"
repositories = ["octo/issues-only"]
project = "DEMO"

[[routes]]
name = "octo"
repositories = ["octo/api"]
project = "DEMO"
sync_pull_requests = true
"#;
    let s = setup(Backend::Embedded, toml).await;
    let one = s.synced_issue(1).await;
    let posts = s.remote_link_posts();
    let mut cases = Vec::new();
    for repo in ["octo/issues-only", "other/api"] {
        let mut pull = GithubPullRequest::new(repo, 50);
        pull.title = format!("{one}: elsewhere");
        cases.push(envelope(
            "pull_request",
            &delivery_id(),
            &pull.event("opened"),
        ));
        cases.push(envelope(
            "push",
            &delivery_id(),
            &push_event(repo, "main", &[("e1e2e3e4e5e6", &format!("{one} fix"))]),
        ));
    }
    let mut pull = GithubPullRequest::new("octo/api", 51);
    pull.title = format!("{one}: ours");
    cases.push(envelope(
        "pull_request",
        &delivery_id(),
        &pull.event("synchronize"),
    ));
    cases.push(envelope(
        "pull_request",
        &delivery_id(),
        &pull.event_by("opened", "hookbridge-bot"),
    ));
    for body in &cases {
        assert_eq!(deliver(&s.pipeline, body).await, Outcome::Done);
    }
    assert_eq!(s.remote_link_posts(), posts, "no link was even tried");
    // The same pull request opened by a person is linked: the route works.
    assert_eq!(s.pull(&pull.event("opened")).await, Outcome::Done);
    s.link(&one, &pull.html_url());
}

/// The Jira fake checks remote links as Jira does: `object.url` and `object.title` required,
/// `globalId` at most 255 characters, an upsert by `globalId`, 404 for an unknown issue.
#[tokio::test]
async fn the_jira_fake_checks_remote_links_like_jira() {
    let s = setup(Backend::Embedded, LINKING).await;
    let key = s.jira_issue("DEMO").await;
    let http = reqwest::Client::new();
    let post = |key: &str, body: Value| {
        http.post(format!(
            "{}/rest/api/3/issue/{key}/remotelink",
            s.fake.base_url()
        ))
        .basic_auth(s.fake.email(), Some(s.fake.token()))
        .json(&body)
        .send()
    };
    let ok = json!({"globalId": "g1", "object": {"url": "https://x.test/1", "title": "one"}});
    assert_eq!(post(&key, ok.clone()).await.expect("answer").status(), 201);
    let mut again = ok.clone();
    again["object"]["title"] = "one, renamed".into();
    assert_eq!(post(&key, again).await.expect("answer").status(), 200);
    assert_eq!(s.fake.remote_links(&key).len(), 1);
    assert_eq!(
        s.fake.remote_links(&key)[0]["object"]["title"],
        "one, renamed"
    );
    for bad in [
        json!({"object": {"url": "https://x.test/1"}}),
        json!({"object": {"title": "no url"}}),
        json!({"globalId": "g".repeat(256), "object": {"url": "https://x.test/1", "title": "t"}}),
        json!({"object": {"url": "https://x.test/1", "title": "t", "status": {"resolved": "yes"}}}),
    ] {
        assert_eq!(
            post(&key, bad.clone()).await.expect("answer").status(),
            400,
            "{bad}"
        );
    }
    assert_eq!(post("DEMO-999", ok).await.expect("answer").status(), 404);
}

/// The ingest's default `[ingest] github_events` takes `pull_request` and `push` (they reach the
/// worker without configuration) and still answers events it does not take with 200 "ignored".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ingest_queues_pull_requests_and_pushes_by_default() {
    use hookbridge_tests::github::Delivery;
    use hookbridge_tests::ingest::{TestIngest, embedded_queue_contents, http};
    const SECRET: &str = "gh-pull-s3cret-5e1a";
    let ingest = TestIngest::ingest()
        .env("GITHUB_WEBHOOK_SECRET", SECRET)
        .env("JIRA_WEBHOOK_SECRET", "jira-pull-s3cret-77")
        .start();
    let post = async |delivery: &Delivery| {
        let response = delivery
            .post(&http(), &ingest.at("/webhooks/github"))
            .send()
            .await
            .expect("an answer");
        let status = response.status().as_u16();
        (status, response.json::<Value>().await.expect("JSON"))
    };
    let mut pull = GithubPullRequest::new("octo/api", 60);
    let pull = Delivery::github("pull_request", &pull.event("opened")).signed(SECRET);
    let push = Delivery::github(
        "push",
        &push_event("octo/api", "main", &[("f1f2f3f4f5f6", "DEMO-1 fix")]),
    )
    .signed(SECRET);
    for delivery in [&pull, &push] {
        assert_eq!(post(delivery).await.0, 202);
    }
    let star = Delivery::github("star", &json!({"action": "created"})).signed(SECRET);
    assert_eq!(post(&star).await, (200, json!({"status": "ignored"})));
    let queued: Vec<String> = embedded_queue_contents(ingest.dir.path())
        .await
        .into_iter()
        .map(|e| e.event)
        .collect();
    assert_eq!(queued.len(), 2, "{queued:?}");
    assert!(queued.contains(&"pull_request".to_owned()) && queued.contains(&"push".to_owned()));
}

/// Without Jira (dry-run) the links and the merge comment are the exact requests the audit trail
/// records, like every other write.
#[tokio::test]
async fn a_dry_run_records_the_links_and_the_merge_comment() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open_store(Backend::Embedded, dir.path(), "hbpulls").await;
    let audit = AuditLog::open(&dir.path().join("audit"), "dry", None);
    let mut parts = Parts::new(store, JiraOps::dry_run(audit.clone()), audit, dir.path());
    parts.routing = Routing {
        rules: FileConfig::parse(LINKING).expect("routes").routes,
        default_project: None,
        default_issue_type: "Task".to_owned(),
    };
    let (pipeline, _) = router(parts);
    let mut pull = GithubPullRequest::new("octo/api", 70);
    pull.title = "DEMO-5: dry".to_owned();
    for event in [pull.event("opened"), pull.merge("octocat")] {
        let body = envelope("pull_request", &delivery_id(), &event);
        assert_eq!(deliver(&pipeline, &body).await, Outcome::Done);
    }
    let records = hookbridge_tests::audit::records(&dir.path().join("audit"));
    let links: Vec<&Value> = records
        .iter()
        .filter(|r| r["action"] == "jira.remote_link.set" && r["outcome"] == "dry_run")
        .collect();
    assert_eq!(links.len(), 2, "{links:#?}");
    let last = &links[1]["detail"]["request"];
    assert_eq!(last["path"], "/rest/api/3/issue/DEMO-5/remotelink");
    assert_eq!(last["body"]["globalId"], pull.html_url());
    assert_eq!(last["body"]["object"]["status"]["resolved"], true);
    let comments: Vec<&Value> = records
        .iter()
        .filter(|r| r["action"] == "jira.comment.created" && r["outcome"] == "dry_run")
        .collect();
    assert_eq!(comments.len(), 1);
    hookbridge_worker::jira::adf::validate(&comments[0]["detail"]["request"]["body"]["body"])
        .expect("ADF");
}
