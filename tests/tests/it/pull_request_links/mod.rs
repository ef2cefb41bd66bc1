//! Pull requests and pushes → Jira remote links (README, "Pull requests and commits in Jira"),
//! driven message by message against the Jira fake on both stores: a pull request linked by its
//! branch, its title, or the synced issue it closes (`Fixes #n`); one link per pull request and
//! Jira issue that follows its state; one comment when it is merged, however often and however
//! concurrently the merge is delivered; a push's commits linked once each; unknown keys skipped
//! quietly; routes without `sync_pull_requests`, and repositories no route takes, left alone.
//!
//! # Layout
//! - `pulls`: linking by branch, title and `Fixes #n`; the link following the pull request; the
//!   merge comment (two workers at once, redeliveries, a lost answer).
//! - `pushes`: commits linked once each; unknown keys.
//! - `contract`: what does not link; the Jira fake's remote-link rules; the ingest's default
//!   events; the dry run.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hookbridge_shared::config::FileConfig;
use hookbridge_shared::routing::{JiraProjectKey, Routing};
use hookbridge_tests::github::{GithubIssue, GithubPullRequest, delivery_id, envelope, push_event};
use hookbridge_tests::jira_fake::{FakeConfig, JiraFake};
use hookbridge_tests::worker::{Backend, Parts, deliver, open_store, router};
use hookbridge_worker::audit::AuditLog;
use hookbridge_worker::github_sync::SyncConfig;
use hookbridge_worker::handler::Outcome;
use hookbridge_worker::jira::JiraClient;
use hookbridge_worker::jira::ops::JiraOps;
use hookbridge_worker::router::Router;
use hookbridge_worker::store::Store;
use serde_json::{Value, json};

mod contract;
mod pulls;
mod pushes;

/// Repositories `octo/*` link pull requests; keys of DEMO (the route's project) and OPS count.
const LINKING: &str = r#"
[[routes]]
name = "octo"
repositories = ["octo/*"]
project = "DEMO"
sync_pull_requests = true
link_projects = ["OPS"]
"#;

struct Setup {
    fake: Arc<JiraFake>,
    store: Store,
    pipeline: Arc<Router>,
    toml: String,
    dir: tempfile::TempDir,
}

fn parts(fake: &JiraFake, store: Store, dir: &std::path::Path, chain: &str, toml: &str) -> Parts {
    let client = JiraClient::with_timeout(
        &fake.settings(100.0),
        Some(store.clone()),
        Duration::from_secs(30),
    )
    .expect("client");
    let audit = AuditLog::open(&dir.join("audit"), chain, None);
    let mut parts = Parts::new(store, JiraOps::live(client, audit.clone()), audit, dir);
    let file = FileConfig::parse(toml).expect("routes");
    parts.routing = Routing {
        rules: file.routes,
        default_project: Some(JiraProjectKey::parse("DEMO").expect("key")),
        default_issue_type: "Task".to_owned(),
    };
    parts.routing.validate().expect("valid routing");
    parts.sync = SyncConfig {
        ignore_logins: vec!["hookbridge-bot".to_owned()],
        search_lag: Duration::from_millis(300),
        ..SyncConfig::default()
    };
    parts
}

async fn setup(backend: Backend, toml: &str) -> Setup {
    let fake = Arc::new(JiraFake::start(FakeConfig::default()).await);
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open_store(backend, dir.path(), "hbpulls").await;
    let (pipeline, _) = router(parts(&fake, store.clone(), dir.path(), "test", toml));
    Setup {
        fake,
        store,
        pipeline: Arc::new(pipeline),
        toml: toml.to_owned(),
        dir,
    }
}

impl Setup {
    /// A second worker on the same store and Jira (its own client and audit chain).
    fn second_worker(&self) -> Router {
        router(parts(
            &self.fake,
            self.store.clone(),
            self.dir.path(),
            "second",
            &self.toml,
        ))
        .0
    }

    fn audit_dir(&self) -> PathBuf {
        self.dir.path().join("audit")
    }

    /// GitHub issue `number` of octo/api opened and synced: its Jira twin's key.
    async fn synced_issue(&self, number: u64) -> String {
        let issue = GithubIssue::new("octo/api", number);
        let body = envelope("issues", &delivery_id(), &issue.event("opened"));
        assert_eq!(deliver(&self.pipeline, &body).await, Outcome::Done);
        self.fake
            .issues()
            .into_iter()
            .find(|i| i.summary == format!("GitHub Issue: {}", issue.title))
            .expect("the Jira twin")
            .key
    }

    /// An issue made in Jira by hand, in `project`.
    async fn jira_issue(&self, project: &str) -> String {
        let client = JiraClient::new(&self.fake.settings(100.0)).expect("client");
        let body = json!({"fields": {
            "project": {"key": project},
            "issuetype": {"name": "Task"},
            "summary": format!("Made in {project}"),
        }});
        client.create_issue_raw(&body).await.expect("created").key
    }

    async fn pull(&self, event: &Value) -> Outcome {
        deliver(
            &self.pipeline,
            &envelope("pull_request", &delivery_id(), event),
        )
        .await
    }

    /// The links of `key` to `url` (the pull request's or the commit's).
    fn links_to(&self, key: &str, url: &str) -> Vec<Value> {
        self.fake
            .remote_links(key)
            .into_iter()
            .filter(|l| l["object"]["url"] == url)
            .collect()
    }

    /// The one link of `key` to `url`.
    fn link(&self, key: &str, url: &str) -> Value {
        let links = self.links_to(key, url);
        assert_eq!(links.len(), 1, "{key}: one link to {url}: {links:#?}");
        links.into_iter().next().expect("one")
    }

    fn remote_link_posts(&self) -> usize {
        self.fake
            .request_log()
            .iter()
            .filter(|r| r.method == "POST" && r.path.ends_with("/remotelink"))
            .count()
    }

    /// The comments of `key` that say a pull request was merged.
    fn merge_comments(&self, key: &str) -> usize {
        self.fake
            .issue(key)
            .expect("the issue")
            .comments
            .iter()
            .filter(|c| hookbridge_worker::jira::adf::document_text(c).contains("was merged"))
            .count()
    }
}
