//! `hookbridge_worker::github_app` against the GitHub App fake: the App's JWT is accepted and an
//! installation token issued; the token is reused within its life, fetched again after it expires
//! and after a 401; a decision is recorded once, a second one is `AlreadyDecided`, an unknown run
//! `Gone`; a callback URL on another host is refused before anything is sent; a commit's message
//! and pull requests are read; a key that is not the App's is `Refused`; a 500 and a rate limit are
//! `Transient`.

use std::time::Duration;

use hookbridge_tests::github_app_fake::{
    Credential, GithubAppConfig, GithubAppFake, OTHER_PRIVATE_KEY_PEM, Review,
};
use hookbridge_worker::github_app::{
    AppCredentials, GithubApp, GithubAppError, PullRef, ReviewOutcome, ReviewState,
};
use url::Url;

const REPO: &str = "acme/api";
const INSTALLATION: u64 = 77;
const SHA: &str = "6dcb09b5b57875f334f61aebed695e2e4193db5e";

fn client(fake: &GithubAppFake) -> GithubApp {
    client_with_key(fake, fake.private_key_pem())
}

fn client_with_key(fake: &GithubAppFake, pem: &str) -> GithubApp {
    let credentials = AppCredentials::from_pem(fake.app_id(), pem).expect("the App's key");
    GithubApp::new(credentials, Url::parse(&fake.url()).expect("url")).expect("client")
}

#[tokio::test]
async fn jwt_accepted_and_token_issued() {
    let fake = GithubAppFake::start(GithubAppConfig::default()).await;
    fake.add_commit(REPO, SHA, "Fix the gate (CR-12)");
    let github = client(&fake);

    let message = github
        .commit_message(INSTALLATION, REPO, SHA)
        .await
        .expect("commit");
    assert_eq!(message.as_deref(), Some("Fix the gate (CR-12)"));

    let requests = fake.requests();
    assert_eq!(requests.len(), 2, "{requests:?}");
    let (token, commit) = (&requests[0], &requests[1]);
    assert_eq!(
        (token.method.as_str(), token.target.as_str(), token.status),
        ("POST", "/app/installations/77/access_tokens", 201)
    );
    assert_eq!(token.credential, Credential::Jwt);
    assert_eq!(commit.status, 200);
    assert_eq!(commit.credential, Credential::InstallationToken);
    for request in &requests {
        assert_eq!(
            request.accept.as_deref(),
            Some("application/vnd.github+json")
        );
        assert_eq!(request.api_version.as_deref(), Some("2022-11-28"));
        assert!(
            request
                .user_agent
                .as_deref()
                .is_some_and(|u| u.starts_with("hookbridge/"))
        );
    }
}

#[tokio::test]
async fn token_reused_within_its_life() {
    let fake = GithubAppFake::start(GithubAppConfig::default()).await;
    fake.add_commit(REPO, SHA, "m");
    let github = client(&fake);
    for _ in 0..3 {
        github
            .commit_message(INSTALLATION, REPO, SHA)
            .await
            .expect("commit");
    }
    assert_eq!(fake.tokens_issued(), 1);
    // Another installation has a token of its own.
    github.commit_message(78, REPO, SHA).await.expect("commit");
    assert_eq!(fake.tokens_issued(), 2);
}

#[tokio::test]
async fn token_refreshed_after_expiry() {
    let fake = GithubAppFake::start(GithubAppConfig {
        token_lifetime: Duration::from_secs(3),
        ..GithubAppConfig::default()
    })
    .await;
    fake.add_commit(REPO, SHA, "m");
    let github = client(&fake).with_refresh_margin(Duration::from_secs(1));

    github
        .commit_message(INSTALLATION, REPO, SHA)
        .await
        .expect("first");
    github
        .commit_message(INSTALLATION, REPO, SHA)
        .await
        .expect("reused");
    assert_eq!(fake.tokens_issued(), 1);
    // `expires_at` has whole seconds: past 3 s the token is within the margin in any case.
    tokio::time::sleep(Duration::from_millis(3100)).await;
    github
        .commit_message(INSTALLATION, REPO, SHA)
        .await
        .expect("after expiry");
    assert_eq!(fake.tokens_issued(), 2);
    assert!(
        fake.requests().iter().all(|r| r.status != 401),
        "the expired token was never sent"
    );
}

#[tokio::test]
async fn token_refreshed_after_a_401() {
    let fake = GithubAppFake::start(GithubAppConfig::default()).await;
    fake.add_commit(REPO, SHA, "m");
    fake.await_deployment(REPO, 1001, "production");
    let github = client(&fake);
    github
        .commit_message(INSTALLATION, REPO, SHA)
        .await
        .expect("token");

    fake.fail_next(1, 401);
    let outcome = github
        .review_deployment(
            INSTALLATION,
            &fake.callback_url(REPO, 1001),
            "production",
            ReviewState::Approved,
            "CR-12 approved",
        )
        .await
        .expect("review");
    assert_eq!(outcome, ReviewOutcome::Recorded);
    assert_eq!(fake.tokens_issued(), 2);
    let statuses: Vec<u16> = fake.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [201, 200, 401, 201, 204]);
}

#[tokio::test]
async fn a_401_after_the_refresh_is_refused() {
    let fake = GithubAppFake::start(GithubAppConfig::default()).await;
    fake.add_commit(REPO, SHA, "m");
    let github = client(&fake);
    github
        .commit_message(INSTALLATION, REPO, SHA)
        .await
        .expect("token");
    // The call is refused, and so is the token request after it.
    fake.fail_next(2, 401);
    let error = github
        .commit_message(INSTALLATION, REPO, SHA)
        .await
        .expect_err("refused");
    assert!(matches!(error, GithubAppError::Refused(_)), "{error:?}");
    let statuses: Vec<u16> = fake.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [201, 200, 401, 401], "one refresh, no loop");
}

#[tokio::test]
async fn approval_recorded_once() {
    let fake = GithubAppFake::start(GithubAppConfig::default()).await;
    fake.await_deployment(REPO, 1001, "production");
    let github = client(&fake);
    let callback = fake.callback_url(REPO, 1001);

    let first = github
        .review_deployment(
            INSTALLATION,
            &callback,
            "production",
            ReviewState::Approved,
            "CR-12 approved",
        )
        .await
        .expect("first");
    assert_eq!(first, ReviewOutcome::Recorded);
    let second = github
        .review_deployment(
            INSTALLATION,
            &callback,
            "production",
            ReviewState::Rejected,
            "too late",
        )
        .await
        .expect("second");
    assert_eq!(second, ReviewOutcome::AlreadyDecided);
    assert_eq!(
        fake.reviews(),
        [Review {
            owner_repo: REPO.into(),
            run_id: 1001,
            environment: "production".into(),
            state: "approved".into(),
            comment: Some("CR-12 approved".into()),
        }]
    );
}

#[tokio::test]
async fn rejection_recorded_per_environment() {
    let fake = GithubAppFake::start(GithubAppConfig::default()).await;
    fake.await_deployment(REPO, 1001, "staging");
    fake.await_deployment(REPO, 1001, "production");
    let github = client(&fake);
    let callback = fake.callback_url(REPO, 1001);
    for (environment, state) in [
        ("staging", ReviewState::Approved),
        ("production", ReviewState::Rejected),
    ] {
        let outcome = github
            .review_deployment(INSTALLATION, &callback, environment, state, "CR-12")
            .await
            .expect("review");
        assert_eq!(outcome, ReviewOutcome::Recorded);
    }
    let states: Vec<(String, String)> = fake
        .reviews()
        .into_iter()
        .map(|r| (r.environment, r.state))
        .collect();
    assert_eq!(
        states,
        [
            ("staging".into(), "approved".into()),
            ("production".into(), "rejected".into())
        ]
    );
}

#[tokio::test]
async fn unknown_run_is_gone() {
    let fake = GithubAppFake::start(GithubAppConfig::default()).await;
    let github = client(&fake);
    let outcome = github
        .review_deployment(
            INSTALLATION,
            &fake.callback_url(REPO, 999),
            "production",
            ReviewState::Approved,
            "",
        )
        .await
        .expect("answer");
    assert_eq!(outcome, ReviewOutcome::Gone);
    assert!(fake.reviews().is_empty());
}

#[tokio::test]
async fn callback_on_another_host_sends_nothing() {
    let fake = GithubAppFake::start(GithubAppConfig::default()).await;
    fake.await_deployment(REPO, 1001, "production");
    let github = client(&fake);
    let own = Url::parse(&fake.url()).expect("url");
    let port = own.port().expect("port");
    for foreign in [
        "https://evil.example/repos/acme/api/actions/runs/1001/deployment_protection_rule"
            .to_owned(),
        // Same host, another port; `localhost` for `127.0.0.1`.
        format!(
            "http://127.0.0.1:{}/repos/acme/api/actions/runs/1001/deployment_protection_rule",
            port.wrapping_add(1)
        ),
        format!(
            "http://localhost:{port}/repos/acme/api/actions/runs/1001/deployment_protection_rule"
        ),
        // Right origin, another endpoint.
        format!("{}repos/acme/api/issues/1/comments", fake.url()),
    ] {
        let error = github
            .review_deployment(
                INSTALLATION,
                &foreign,
                "production",
                ReviewState::Approved,
                "",
            )
            .await
            .expect_err(&foreign);
        assert!(matches!(error, GithubAppError::Other(_)), "{error:?}");
    }
    assert!(fake.requests().is_empty(), "no token fetched, nothing sent");
    assert!(fake.reviews().is_empty());
}

#[tokio::test]
async fn commit_message_and_pulls_read() {
    let fake = GithubAppFake::start(GithubAppConfig::default()).await;
    fake.add_commit(REPO, SHA, "Deploy the gate\n\nCR-12");
    fake.add_pull(REPO, SHA, 42, "Gate deployments on CRs", "feature/gate");
    fake.add_pull(REPO, SHA, 43, "Backport", "release/1.x");
    let github = client(&fake);

    let message = github
        .commit_message(INSTALLATION, REPO, SHA)
        .await
        .expect("commit");
    assert_eq!(message.as_deref(), Some("Deploy the gate\n\nCR-12"));
    let pulls = github
        .pulls_for_commit(INSTALLATION, REPO, SHA)
        .await
        .expect("pulls");
    assert_eq!(
        pulls,
        [
            PullRef {
                number: 42,
                title: "Gate deployments on CRs".into(),
                head_ref: "feature/gate".into(),
            },
            PullRef {
                number: 43,
                title: "Backport".into(),
                head_ref: "release/1.x".into(),
            },
        ]
    );
    let unknown = "0000000000000000000000000000000000000000";
    assert_eq!(
        github
            .commit_message(INSTALLATION, REPO, unknown)
            .await
            .expect("answer"),
        None
    );
    assert!(
        github
            .pulls_for_commit(INSTALLATION, REPO, unknown)
            .await
            .expect("answer")
            .is_empty()
    );
}

#[tokio::test]
async fn wrong_private_key_is_refused() {
    let fake = GithubAppFake::start(GithubAppConfig::default()).await;
    fake.add_commit(REPO, SHA, "m");
    let github = client_with_key(&fake, OTHER_PRIVATE_KEY_PEM);
    let error = github
        .commit_message(INSTALLATION, REPO, SHA)
        .await
        .expect_err("refused");
    let GithubAppError::Refused(reason) = &error else {
        panic!("{error:?}");
    };
    assert!(reason.contains("could not be decoded"), "{reason}");
    assert_eq!(fake.tokens_issued(), 0);
    assert_eq!(fake.requests().len(), 1, "nothing after the refused JWT");
}

#[tokio::test]
async fn server_errors_and_rate_limits_are_transient() {
    let fake = GithubAppFake::start(GithubAppConfig::default()).await;
    fake.add_commit(REPO, SHA, "m");
    let github = client(&fake);
    github
        .commit_message(INSTALLATION, REPO, SHA)
        .await
        .expect("token");

    fake.fail_next(1, 500);
    let error = github
        .commit_message(INSTALLATION, REPO, SHA)
        .await
        .expect_err("500");
    assert!(error.is_transient(), "{error:?}");

    fake.fail_next(1, 429);
    let error = github
        .commit_message(INSTALLATION, REPO, SHA)
        .await
        .expect_err("429");
    assert!(
        matches!(error, GithubAppError::Transient { retry_after: Some(d), .. } if d == Duration::from_secs(1)),
        "{error:?}"
    );

    fake.fail_next(1, 403);
    let error = github
        .commit_message(INSTALLATION, REPO, SHA)
        .await
        .expect_err("403 rate limit");
    assert!(error.is_transient(), "{error:?}");

    github
        .commit_message(INSTALLATION, REPO, SHA)
        .await
        .expect("back");
}

#[tokio::test]
async fn errors_and_debug_hold_no_secret() {
    let fake = GithubAppFake::start(GithubAppConfig::default()).await;
    fake.add_commit(REPO, SHA, "m");
    let github = client(&fake);
    github
        .commit_message(INSTALLATION, REPO, SHA)
        .await
        .expect("token");
    let token = github.tokens().token(INSTALLATION).await.expect("cached");
    let token = secrecy::ExposeSecret::expose_secret(&token).to_owned();
    assert!(token.starts_with("ghs_"));
    let shown = format!("{github:?}");
    assert!(!shown.contains(&token), "{shown}");
    assert!(!shown.contains("PRIVATE KEY"), "{shown}");

    fake.fail_next(2, 401);
    let error = github
        .commit_message(INSTALLATION, REPO, SHA)
        .await
        .expect_err("refused");
    let shown = format!("{error} {error:?}");
    assert!(!shown.contains(&token) && !shown.contains("eyJ"), "{shown}");
}

/// The fake itself, by hand: what GitHub refuses, it refuses.
mod fake {
    use super::*;
    use secrecy::ExposeSecret;
    use serde_json::{Value, json};

    async fn call(
        fake: &GithubAppFake,
        method: reqwest::Method,
        path: &str,
        bearer: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = reqwest::Client::new()
            .request(method, format!("{}{path}", fake.url()))
            .header("user-agent", "test")
            .header("authorization", format!("Bearer {bearer}"));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("answer");
        let status = response.status().as_u16();
        let body = response.json().await.unwrap_or(Value::Null);
        (status, body)
    }

    #[tokio::test]
    async fn refuses_what_is_not_the_apps_jwt() {
        let fake = GithubAppFake::start(GithubAppConfig::default()).await;
        let path = "app/installations/77/access_tokens";
        let (status, body) = call(&fake, reqwest::Method::POST, path, "not-a-jwt", None).await;
        assert_eq!(status, 401);
        assert_eq!(body["message"], "A JSON web token could not be decoded");
        // Signed by the App's key but naming another App.
        let other_app = AppCredentials::from_pem(1, fake.private_key_pem()).expect("key");
        let jwt = other_app.jwt(std::time::SystemTime::now()).expect("jwt");
        let (status, _) = call(
            &fake,
            reqwest::Method::POST,
            path,
            jwt.expose_secret(),
            None,
        )
        .await;
        assert_eq!(status, 401);
        // Expired: made 20 minutes ago.
        let app = AppCredentials::from_pem(fake.app_id(), fake.private_key_pem()).expect("key");
        let old = std::time::SystemTime::now() - Duration::from_secs(20 * 60);
        let jwt = app.jwt(old).expect("jwt");
        let (status, body) = call(
            &fake,
            reqwest::Method::POST,
            path,
            jwt.expose_secret(),
            None,
        )
        .await;
        assert_eq!(status, 401);
        assert!(
            body["message"]
                .as_str()
                .is_some_and(|m| m.contains("'exp'")),
            "{body}"
        );
        // Made "in the future": `exp` more than 10 minutes away.
        let ahead = std::time::SystemTime::now() + Duration::from_secs(5 * 60);
        let jwt = app.jwt(ahead).expect("jwt");
        let (status, body) = call(
            &fake,
            reqwest::Method::POST,
            path,
            jwt.expose_secret(),
            None,
        )
        .await;
        assert_eq!(status, 401);
        assert!(
            body["message"]
                .as_str()
                .is_some_and(|m| m.contains("too far")),
            "{body}"
        );
        assert_eq!(fake.tokens_issued(), 0);
        // The JWT is for `/app/…` only.
        let jwt = app.jwt(std::time::SystemTime::now()).expect("jwt");
        let commit = format!("repos/{REPO}/commits/{SHA}");
        let (status, _) = call(
            &fake,
            reqwest::Method::GET,
            &commit,
            jwt.expose_secret(),
            None,
        )
        .await;
        assert_eq!(status, 401);
    }

    #[tokio::test]
    async fn refuses_expired_tokens_and_invalid_reviews() {
        let fake = GithubAppFake::start(GithubAppConfig {
            token_lifetime: Duration::from_secs(1),
            ..GithubAppConfig::default()
        })
        .await;
        fake.await_deployment(REPO, 5, "production");
        let github = client(&fake).with_refresh_margin(Duration::ZERO);
        let token = github.tokens().token(INSTALLATION).await.expect("token");
        let review = format!("repos/{REPO}/actions/runs/5/deployment_protection_rule");
        for (body, what) in [
            (json!({"state": "approved"}), "no environment_name"),
            (
                json!({"environment_name": "production", "state": "maybe"}),
                "bad state",
            ),
            (json!({"environment_name": "production"}), "no state"),
        ] {
            let (status, _) = call(
                &fake,
                reqwest::Method::POST,
                &review,
                token.expose_secret(),
                Some(body),
            )
            .await;
            assert_eq!(status, 422, "{what}");
        }
        assert!(fake.reviews().is_empty());
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let body = json!({"environment_name": "production", "state": "approved"});
        let (status, answer) = call(
            &fake,
            reqwest::Method::POST,
            &review,
            token.expose_secret(),
            Some(body),
        )
        .await;
        assert_eq!(
            (status, answer["message"].as_str()),
            (401, Some("Bad credentials"))
        );
        let (status, _) = call(
            &fake,
            reqwest::Method::GET,
            &format!("repos/{REPO}/commits/{SHA}"),
            "ghs_unknown",
            None,
        )
        .await;
        assert_eq!(status, 401);
        assert!(
            fake.requests()
                .iter()
                .all(|r| !format!("{r:?}").contains(token.expose_secret())),
            "the log holds no token"
        );
    }
}

/// Half an App configuration, or a key that is not one, stops the worker at start with exit 2 and
/// the key's name, without printing what the file holds.
#[tokio::test]
async fn the_worker_refuses_a_broken_app_configuration_at_start() {
    let dir = tempfile::tempdir().expect("temp dir");
    let not_a_key = dir.path().join("not-a-key.pem");
    std::fs::write(
        &not_a_key,
        "-----BEGIN RSA PRIVATE KEY-----\nc2VjcmV0LWJ5dGVz\n-----END RSA PRIVATE KEY-----\n",
    )
    .expect("write");
    let data = ("HOOKBRIDGE_DATA_DIR", dir.path().display().to_string());
    let cases: [(&[(&str, String)], &str); 3] = [
        (
            &[("GITHUB_APP_ID", "4242".into())],
            "GITHUB_APP_PRIVATE_KEY_FILE",
        ),
        (
            &[(
                "GITHUB_APP_PRIVATE_KEY_FILE",
                not_a_key.display().to_string(),
            )],
            "GITHUB_APP_ID",
        ),
        (
            &[
                ("GITHUB_APP_ID", "4242".into()),
                (
                    "GITHUB_APP_PRIVATE_KEY_FILE",
                    not_a_key.display().to_string(),
                ),
            ],
            "GITHUB_APP_PRIVATE_KEY_FILE",
        ),
    ];
    for (settings, key) in cases {
        let mut env: Vec<(&str, String)> = vec![data.clone()];
        env.extend(settings.iter().cloned());
        let (exit, output) = hookbridge_tests::process::run_to_end(
            "hookbridge-worker",
            &[],
            &env,
            Duration::from_secs(30),
        )
        .await;
        let printed = output.join("\n");
        assert_eq!(exit.code(), Some(2), "{settings:?}: {printed}");
        assert!(printed.contains(key), "{settings:?}: {printed}");
        assert!(!printed.contains("c2VjcmV0LWJ5dGVz"), "{printed}");
    }
}
