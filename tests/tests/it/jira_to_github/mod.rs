//! Jira → GitHub, driven message by message against the Jira fake and the GitHub fake on both
//! stores: a twin moved to Done closes the GitHub issue with the close reason its resolution
//! means, leaving Done reopens it, a Jira comment becomes one GitHub comment; and nothing the
//! bridge wrote on one side comes back as a new effect on the other (the round trips).
//!
//! - `status`: Done closes with the resolution's reason, leaving Done reopens, what does nothing.
//! - `comments`: a Jira comment becomes one GitHub comment; the bridge's own go nowhere.
//! - `round_trips`: GitHub → Jira → GitHub and back never echoes, message by message and through
//!   `hookbridge run`.
//! - `processes`: the worker as a process — its credentials at start, acting as the GitHub App.

use std::sync::Arc;
use std::time::Duration;

use hookbridge_shared::config::FileConfig;
use hookbridge_shared::routing::{JiraProjectKey, Routing};
use hookbridge_tests::github::{Delivery, GithubIssue, delivery_id, envelope};
use hookbridge_tests::github_app_fake::APP_PRIVATE_KEY_PEM;
use hookbridge_tests::github_fake::{APP_SLUG, GithubConfig, GithubFake, RepoIssue};
use hookbridge_tests::jira_fake::{FakeConfig, FakeIssue, JiraFake, JiraUser, WebhookDelivery};
use hookbridge_tests::wait::eventually;
use hookbridge_tests::worker::{Backend, Parts, deliver, open_store, router};
use hookbridge_worker::audit::AuditLog;
use hookbridge_worker::events::github::IssueIdentity;
use hookbridge_worker::github_app::AppCredentials;
use hookbridge_worker::github_sync::SyncConfig;
use hookbridge_worker::handler::Outcome;
use hookbridge_worker::jira::JiraClient;
use hookbridge_worker::jira::ops::JiraOps;
use hookbridge_worker::jira_sync::{GithubIssues, JiraSync, JiraSyncConfig};
use hookbridge_worker::router::Router;
use hookbridge_worker::store::keys::{IssueMapping, JiraTwin};
use hookbridge_worker::store::{Store, Transaction};
use url::Url;

const REPO: &str = "octo/api";

const SYNCED: &str = r#"
[[routes]]
name = "api"
repositories = ["octo/api"]
project = "DEMO"
sync_from_jira = true
github_state_reasons = { "Cannot Reproduce" = "completed" }
"#;

const NOT_SYNCED: &str = r#"
[[routes]]
name = "api"
repositories = ["octo/api"]
project = "DEMO"
"#;

struct Setup {
    jira: JiraFake,
    github: GithubFake,
    store: Store,
    pipeline: Arc<Router>,
    dir: tempfile::TempDir,
}

fn human() -> JiraUser {
    JiraUser::new("5b10a2844c20165700ede21g", "Ann Lee")
}

async fn setup(backend: Backend, toml: &str) -> Setup {
    setup_as(backend, toml, false).await
}

/// The App this setup acts as, when it acts as one.
const APP_ID: u64 = 31_337;

/// [`setup`], acting on GitHub as the GitHub App (`app`) or as a token's user.
async fn setup_as(backend: Backend, toml: &str, app: bool) -> Setup {
    let jira = JiraFake::start(FakeConfig::default()).await;
    let github = GithubFake::start(GithubConfig {
        app_id: app.then_some(APP_ID),
        ..GithubConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open_store(backend, dir.path(), "hbj2g").await;
    let client = JiraClient::with_timeout(
        &jira.settings(100.0),
        Some(store.clone()),
        Duration::from_secs(30),
    )
    .expect("client");
    let audit = AuditLog::open(&dir.path().join("audit"), "test", None);
    let mut parts = Parts::new(
        store.clone(),
        JiraOps::live(client.clone(), audit.clone()),
        audit,
        dir.path(),
    );
    parts.routing = Routing {
        rules: FileConfig::parse(toml).expect("routes").routes,
        default_project: Some(JiraProjectKey::parse("DEMO").expect("key")),
        default_issue_type: "Task".to_owned(),
    };
    parts.routing.validate().expect("valid routing");
    let api = Url::parse(&github.api_url()).expect("url");
    let issues = if app {
        let credentials = AppCredentials::from_pem(APP_ID, APP_PRIVATE_KEY_PEM).expect("key");
        GithubIssues::with_app(api, credentials)
    } else {
        GithubIssues::with_token(api, github.token().into())
    }
    .expect("GitHub client");
    // The bridge's GitHub login is what the worker adds to the ignored logins at start.
    let login = issues.login().await.expect("GET /user or GET /app");
    let expected = if app {
        format!("{APP_SLUG}[bot]")
    } else {
        "hookbridge-bot".to_owned()
    };
    assert_eq!(login, expected);
    parts.sync = SyncConfig {
        ignore_logins: vec![login],
        search_lag: Duration::from_millis(300),
        ..SyncConfig::default()
    };
    parts.jira_sync = Some(JiraSync::new(
        store.clone(),
        Some(client),
        Arc::new(issues),
        parts.routing.clone(),
        JiraSyncConfig::default(),
        parts.audit.clone(),
    ));
    let (pipeline, _) = router(parts);
    Setup {
        jira,
        github,
        store,
        pipeline: Arc::new(pipeline),
        dir,
    }
}

/// A GitHub issue that exists on GitHub and was opened through the bridge: its Jira twin's key.
async fn opened(s: &Setup, number: u64) -> (GithubIssue, String) {
    let issue = GithubIssue::new(REPO, number);
    s.github.add_issue(
        REPO,
        RepoIssue::new(
            number,
            &issue.title,
            &issue.body,
            "open",
            &[],
            false,
            Duration::ZERO,
        ),
    );
    let body = envelope("issues", &delivery_id(), &issue.event("opened"));
    assert_eq!(deliver(&s.pipeline, &body).await, Outcome::Done);
    let key = twin(&s.jira, &issue).key;
    (issue, key)
}

fn twin(jira: &JiraFake, issue: &GithubIssue) -> FakeIssue {
    jira.issues()
        .into_iter()
        .find(|i| {
            i.remote_links
                .iter()
                .any(|(_, url, _)| *url == issue.html_url())
        })
        .expect("the Jira twin")
}

async fn jira_event(s: &Setup, delivery: &WebhookDelivery) -> Outcome {
    deliver(&s.pipeline, &delivery.envelope()).await
}

/// Delivers every webhook GitHub sent for the bridge's writes since the last call.
async fn github_echoes(s: &Setup) -> usize {
    let hooks = s.github.take_webhooks();
    for (event, payload) in &hooks {
        let body = envelope(event, &delivery_id(), payload);
        assert_eq!(deliver(&s.pipeline, &body).await, Outcome::Done);
    }
    hooks.len()
}

fn patches(github: &GithubFake) -> usize {
    github
        .requests()
        .iter()
        .filter(|r| r.method == "PATCH")
        .count()
}

fn state(s: &Setup, number: u64) -> (String, Option<String>) {
    let issue = s.github.issue(REPO, number).expect("GitHub issue");
    (issue.state, issue.state_reason)
}

macro_rules! on_both_backends {
    ($name:ident) => {
        mod $name {
            use super::Backend;

            #[tokio::test]
            async fn embedded() {
                super::$name(Backend::Embedded).await;
            }

            #[tokio::test]
            async fn redis() {
                super::$name(Backend::Redis).await;
            }
        }
    };
}

mod comments;
mod processes;
mod round_trips;
mod status;
