//! The real `JiraClient` against the Jira fake: answers are classified as Jira means them, the
//! limiter reacts to throttling, search goes to `/search/jql` and lags, and the token stays secret.

use std::time::Duration;

use hookbridge_tests::jira_fake::{FakeConfig, JiraFake};
use hookbridge_worker::jira::adf;
use hookbridge_worker::jira::{JiraClient, JiraError};
use hookbridge_worker::settings::JiraSettings;
use reqwest::Method;
use secrecy::SecretString;
use serde_json::{Value, json};

fn client_for(fake: &JiraFake, token: &str, rate: f64) -> JiraClient {
    JiraClient::new(&JiraSettings {
        api_token: SecretString::from(token.to_owned()),
        ..fake.settings(rate)
    })
    .expect("client")
}

fn issue_body(summary: &str, description: Value, labels: &[&str]) -> Value {
    json!({"fields": {
        "project": {"key": "DEMO"},
        "issuetype": {"name": "Task"},
        "summary": summary,
        "description": description,
        "labels": labels,
    }})
}

#[tokio::test]
async fn create_edit_get_and_comment() {
    let fake = JiraFake::start(FakeConfig::default()).await;
    let client = client_for(&fake, &fake.token(), 50.0);
    let created = client
        .create_issue_raw(&issue_body(
            "First",
            adf::markdown_to_adf("hello *world*"),
            &["github"],
        ))
        .await
        .expect("create");
    assert_eq!(created.key, "DEMO-1");
    client
        .edit_issue(
            &created.key,
            &json!({"fields": {"labels": ["github", "bug"]}}),
        )
        .await
        .expect("edit");
    let issue = client.get_issue(&created.key, "labels").await.expect("get");
    assert_eq!(issue["fields"]["labels"], json!(["github", "bug"]));
    let id = client
        .add_comment(&created.key, &adf::markdown_to_adf("a comment"))
        .await
        .expect("comment");
    assert!(!id.is_empty());
    assert_eq!(fake.issue("DEMO-1").expect("issue").comments.len(), 1);
}

#[tokio::test]
async fn label_updates_add_and_remove_one_label_and_are_checked() {
    let fake = JiraFake::start(FakeConfig::default()).await;
    let client = client_for(&fake, &fake.token(), 50.0);
    let key = client
        .create_issue_raw(&issue_body(
            "L",
            adf::markdown_to_adf("x"),
            &["github", "a"],
        ))
        .await
        .expect("create")
        .key;
    client
        .edit_issue(
            &key,
            &json!({"update": {"labels": [{"add": "b"}, {"remove": "a"}]}}),
        )
        .await
        .expect("add and remove");
    assert_eq!(fake.issue(&key).expect("issue").labels, ["github", "b"]);
    for (bad, why) in [
        (
            json!({"update": {"labels": [{"add": "has space"}]}}),
            "spaces",
        ),
        (
            json!({"update": {"labels": [{"rename": "x"}]}}),
            "not supported",
        ),
        (
            json!({"fields": {"labels": ["x"]}, "update": {"labels": [{"add": "y"}]}}),
            "same request",
        ),
    ] {
        let err = client.edit_issue(&key, &bad).await.expect_err("refused");
        assert_eq!(err.status(), Some(400), "{bad}");
        assert!(err.to_string().contains(why), "{bad}: {err}");
    }
    assert_eq!(fake.issue(&key).expect("issue").labels, ["github", "b"]);
}

#[tokio::test]
async fn a_plain_string_description_is_refused_permanently_with_jiras_text() {
    let fake = JiraFake::start(FakeConfig::default()).await;
    let client = client_for(&fake, &fake.token(), 50.0);
    let err = client
        .create_issue_raw(&issue_body("Plain", json!("just a string"), &[]))
        .await
        .expect_err("Jira refuses plain strings in v3");
    assert!(!err.is_transient());
    assert_eq!(err.status(), Some(400));
    let text = err.to_string();
    assert!(
        text.contains("Operation value must be an Atlassian Document"),
        "{text}"
    );
    assert!(text.contains("create issue"), "{text}");
    assert_eq!(fake.count_issues(), 0);
    // Labels with spaces are refused too.
    let err = client
        .create_issue_raw(&issue_body(
            "Spaces",
            adf::markdown_to_adf("x"),
            &["good first issue"],
        ))
        .await
        .expect_err("labels cannot contain spaces");
    assert!(err.to_string().contains("contains spaces"), "{err}");
}

#[tokio::test]
async fn a_wrong_token_is_a_401_for_every_request_and_never_shown() {
    let fake = JiraFake::start(FakeConfig::default()).await;
    let client = client_for(&fake, "wrong-s3cret", 50.0);
    let err = client.projects().await.expect_err("401");
    assert_eq!(err.status(), Some(401));
    // Not this request's failure but every request's: Jira is marked down, work waits for it.
    assert!(err.is_systemic(), "{err}");
    assert!(!client.health().is_up());
    assert!(!err.to_string().contains("wrong-s3cret"));
    assert!(!format!("{err:?}").contains("wrong-s3cret"));
    assert!(!format!("{client:?}").contains("wrong-s3cret"));
    let good = client_for(&fake, &fake.token(), 50.0);
    let projects = good.projects().await.expect("projects");
    assert!(projects.iter().any(|(k, _)| k == "DEMO"));
}

#[tokio::test]
async fn a_429_is_waited_out_inside_the_client_and_slows_the_limiter() {
    let fake = JiraFake::start(FakeConfig::default()).await;
    let client = client_for(&fake, &fake.token(), 50.0);
    fake.fail_next(Method::POST, "/rest/api/3/issue", 429, Some(1), 1);
    let started = std::time::Instant::now();
    let created = client
        .create_issue_raw(&issue_body("After 429", adf::markdown_to_adf("x"), &[]))
        .await
        .expect("created after the wait");
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "Retry-After was not honoured"
    );
    assert_eq!(created.key, "DEMO-1");
    assert!(client.limiter().effective_rate() < 50.0);
    assert_eq!(fake.count_status(429), 1);
}

#[tokio::test]
async fn a_long_retry_after_goes_back_to_the_caller_as_transient() {
    let fake = JiraFake::start(FakeConfig::default()).await;
    let client = client_for(&fake, &fake.token(), 50.0);
    fake.fail_next(Method::POST, "/rest/api/3/issue", 429, Some(120), 1);
    let err = client
        .create_issue_raw(&issue_body("x", adf::markdown_to_adf("x"), &[]))
        .await
        .expect_err("too long to wait inline");
    assert!(err.is_transient() && err.proves_nothing_happened());
    assert_eq!(err.retry_after(), Some(Duration::from_secs(120)));
}

#[tokio::test]
async fn server_errors_and_503_are_retried_for_idempotent_calls_only() {
    let fake = JiraFake::start(FakeConfig::default()).await;
    let client = client_for(&fake, &fake.token(), 50.0);
    client
        .create_issue_raw(&issue_body("x", adf::markdown_to_adf("x"), &[]))
        .await
        .expect("create");
    fake.fail_next(Method::PUT, "/rest/api/3/issue/DEMO-1", 502, None, 2);
    client
        .edit_issue("DEMO-1", &json!({"fields": {"summary": "edited"}}))
        .await
        .expect("edit retried past two 502s");
    assert_eq!(fake.issue("DEMO-1").expect("issue").summary, "edited");
    fake.fail_next(Method::PUT, "/rest/api/3/issue/DEMO-1", 503, None, 1);
    client
        .edit_issue("DEMO-1", &json!({"fields": {"labels": ["after-503"]}}))
        .await
        .expect("edit retried past the 503");
    let statuses: Vec<u16> = fake
        .request_log()
        .iter()
        .filter(|r| r.method == "PUT")
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, [502, 502, 204, 503, 204]);
    assert_eq!(fake.issue("DEMO-1").expect("issue").labels, ["after-503"]);

    fake.fail_next(Method::POST, "/rest/api/3/issue", 500, None, 1);
    let err = client
        .create_issue_raw(&issue_body("y", adf::markdown_to_adf("y"), &[]))
        .await
        .expect_err("a create is not blindly retried after a 500");
    assert!(
        matches!(err, JiraError::Server { status: 500, .. }),
        "{err:?}"
    );
    assert!(err.is_transient() && !err.proves_nothing_happened());
    assert_eq!(fake.count_issues(), 1);
}

#[tokio::test]
async fn search_uses_the_jql_endpoint_and_lags_behind_creates() {
    let fake = JiraFake::start(FakeConfig {
        search_lag: Duration::from_millis(700),
        ..FakeConfig::default()
    })
    .await;
    let client = client_for(&fake, &fake.token(), 50.0);
    // The old endpoint is gone.
    let gone = reqwest::Client::new()
        .get(format!(
            "{}/rest/api/3/search?jql=project%3DDEMO",
            fake.base_url()
        ))
        .basic_auth(fake.email(), Some(fake.token()))
        .send()
        .await
        .expect("request");
    assert_eq!(gone.status(), 410);
    let gone: Value = reqwest::Client::new()
        .post(format!("{}/rest/api/3/search", fake.base_url()))
        .basic_auth(fake.email(), Some(fake.token()))
        .json(&json!({"jql": "project = DEMO"}))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("JSON error body");
    assert!(
        gone["errorMessages"][0]
            .as_str()
            .is_some_and(|m| m.contains("/rest/api/3/search/jql")),
        "{gone}"
    );

    for i in 0..3 {
        client
            .create_issue_raw(&issue_body(
                &format!("s{i}"),
                adf::markdown_to_adf("x"),
                &["marker-1"],
            ))
            .await
            .expect("create");
    }
    let created = std::time::Instant::now();
    let right_away = client
        .search_keys("labels = \"marker-1\"", 10)
        .await
        .expect("search");
    if created.elapsed() < Duration::from_millis(600) {
        assert!(
            right_away.is_empty(),
            "search saw writes before the lag: {right_away:?}"
        );
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let found = loop {
        let found = client
            .search_keys("labels = \"marker-1\" ORDER BY created ASC", 10)
            .await
            .expect("search");
        if found.len() == 3 || std::time::Instant::now() > deadline {
            break found;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(found, ["DEMO-1", "DEMO-2", "DEMO-3"]);
    // Paging: one result per page still finds all three.
    let paged = client
        .search_keys("labels = marker-1", 3)
        .await
        .expect("search");
    assert_eq!(paged.len(), 3);
    let first_only = client
        .search_keys("labels = marker-1", 1)
        .await
        .expect("search");
    assert_eq!(first_only, ["DEMO-1"]);
}

#[tokio::test]
async fn transitions_remote_links_and_comment_paging() {
    let fake = JiraFake::start(FakeConfig::default()).await;
    let client = client_for(&fake, &fake.token(), 100.0);
    let key = client
        .create_issue_raw(&issue_body("t", adf::markdown_to_adf("x"), &[]))
        .await
        .expect("create")
        .key;
    let transitions = client.get_transitions(&key).await.expect("transitions");
    let done = transitions
        .iter()
        .find(|t| t.to_name == "Done")
        .expect("Done");
    client.transition(&key, &done.id).await.expect("transition");
    assert_eq!(fake.issue(&key).expect("issue").status, "Done");
    let again = client
        .transition(&key, &done.id)
        .await
        .expect_err("already Done");
    assert_eq!(again.status(), Some(400));

    for _ in 0..2 {
        client
            .add_remote_link(
                &key,
                "https://github.com/o/r/issues/1",
                "https://github.com/o/r/issues/1",
                "GitHub #1",
            )
            .await
            .expect("link");
    }
    assert_eq!(fake.issue(&key).expect("issue").remote_links.len(), 1);

    for i in 0..105 {
        client
            .add_comment(&key, &adf::markdown_to_adf(&format!("comment {i}")))
            .await
            .expect("comment");
    }
    let bodies = client.list_comment_bodies(&key).await.expect("comments");
    assert_eq!(bodies.len(), 105);
    assert!(bodies[104].to_string().contains("comment 104"));

    let missing = client.get_issue("DEMO-999", "key").await.expect_err("404");
    assert_eq!(missing.status(), Some(404));
    assert!(
        missing.to_string().contains("Issue does not exist"),
        "{missing}"
    );
}

/// `count` creates at once from one client paced at `client_rate` against a fake that allows
/// `jira_limit` per endpoint with a burst of 5; every create succeeds, eventually.
async fn concurrent_creates(
    jira_limit: f64,
    client_rate: f64,
    count: usize,
) -> (JiraFake, JiraClient) {
    let fake = JiraFake::start(FakeConfig {
        rate_limit: Some(jira_limit),
        burst: 5.0,
        latency: Duration::from_millis(20),
        ..FakeConfig::default()
    })
    .await;
    let client = client_for(&fake, &fake.token(), client_rate);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..count {
        let client = client.clone();
        tasks.spawn(async move {
            client
                .create_issue_raw(&issue_body(
                    &format!("c{i}"),
                    adf::markdown_to_adf("x"),
                    &[],
                ))
                .await
        });
    }
    while let Some(result) = tasks.join_next().await {
        result.expect("task").expect("create");
    }
    assert_eq!(fake.count_issues(), count);
    (fake, client)
}

#[tokio::test]
async fn many_concurrent_requests_stay_under_the_fakes_limit() {
    // 60 creates at once from one client paced at 40/s against a fake that allows 50/s per
    // endpoint with a burst of 5: pacing, not 429s, keeps them in line.
    let (fake, _client) = concurrent_creates(50.0, 40.0, 60).await;
    assert_eq!(fake.count_status(429), 0, "pacing should avoid every 429");
}

#[tokio::test]
async fn a_create_that_timed_out_is_not_sent_again_but_a_read_is() {
    let fake = JiraFake::start(FakeConfig::default()).await;
    let client = JiraClient::with_timeout(&fake.settings(50.0), None, Duration::from_millis(300))
        .expect("client");
    // Jira creates the issue, but the answer comes too late.
    fake.stall_next(Method::POST, "/rest/api/3/issue", Duration::from_secs(2));
    let err = client
        .create_issue_raw(&issue_body("slow", adf::markdown_to_adf("x"), &[]))
        .await
        .expect_err("timed out");
    assert!(matches!(err, JiraError::Transport { .. }), "{err:?}");
    assert!(err.is_transient());
    assert_eq!(err.status(), None);
    assert!(
        !err.proves_nothing_happened(),
        "the caller must reconcile before creating again"
    );
    assert_eq!(fake.count_issues(), 1, "the create took effect once");
    let creates = fake
        .request_log()
        .iter()
        .filter(|r| r.method == "POST" && r.path == "/rest/api/3/issue")
        .count();
    assert_eq!(creates, 1, "a create is never sent twice by the client");

    // A read that times out is simply asked again.
    fake.stall_next(Method::GET, "/rest/api/3/project", Duration::from_secs(2));
    let projects = client.projects().await.expect("second attempt answers");
    assert!(!projects.is_empty());
}

#[tokio::test]
async fn a_rate_set_above_jiras_limit_settles_below_it_instead_of_collapsing() {
    // The client is configured at three times what the fake allows. It must learn from the 429s
    // and NearLimit headers, slow down once per event (not once per 429), and keep going at about
    // the fake's pace rather than crawling at its floor rate.
    let (fake, client) = concurrent_creates(40.0, 120.0, 160).await;
    let answered = fake.request_log().len();
    let throttled = fake.count_status(429);
    assert!(
        throttled * 10 < answered,
        "{throttled} of {answered} answers were 429"
    );
    // Slowed down, but not collapsed to the floor (1/s): one decrease per burst of 429s leaves
    // it near the fake's 40/s, where counting every 429 would have crushed it.
    let rate = client.limiter().effective_rate();
    assert!((10.0..120.0).contains(&rate), "settled at {rate}/s");
    // A limit of 40/s with a bucket of 5 accepts at most 45 in any second.
    assert!(fake.max_accepted_in_window(Duration::from_secs(1)) <= 40 + 5);
}
