//! The operator's page on the real binaries: who may see it and act on it (`access`), what each
//! page shows and does against a running stack with the Jira fake, on Redis and on the embedded
//! store (`pages`), and the same driven in a real browser (`browser`).

mod access;
mod browser;
mod pages;

use std::time::Duration;

use hookbridge_tests::admin::{Admin, admin_url};
use hookbridge_tests::ingest::{IngestBuilder, TestIngest};

const PATIENCE: Duration = Duration::from_secs(60);
const GITHUB_SECRET: &str = "github-admin-s3cret-77";
const JIRA_SECRET: &str = "jira-admin-s3cret-4411";
const TOKEN: &str = "admin-token-0123456789abcdef";

/// `hookbridge run` with both webhook secrets and `extra`, and a client of its operator's page.
pub fn start(builder: IngestBuilder, extra: &[(&str, String)]) -> (TestIngest, Admin) {
    let mut builder = builder
        .env("GITHUB_WEBHOOK_SECRET", GITHUB_SECRET)
        .env("JIRA_WEBHOOK_SECRET", JIRA_SECRET);
    for (k, v) in extra {
        builder = builder.env(k, v.clone());
    }
    let mut run = builder.start();
    let url = admin_url(&mut run.proc, PATIENCE);
    (run, Admin::new(&url))
}

/// Every page, as paths.
pub const PAGES: [&str; 5] = [
    "/",
    "/deliveries",
    "/dead-letters",
    "/change-requests",
    "/audit",
];
