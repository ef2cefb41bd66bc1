//! Test support shared by the black-box tests and the benchmarks: fakes of the services hookbridge
//! talks to, behaving like the real ones; webhook deliveries signed as GitHub and Jira sign them;
//! the real binaries as child processes (`process`, `ingest`); a TCP proxy that can freeze like a server in a brown-out (`proxy`); the local SQS and S3 server (`sqs`,
//! `s3`); and reading the audit trail a process wrote (`audit`) and a `/metrics` page (`metrics`); serving a fake on a free port (`serve`); a private Redis and moto_server to kill, restart or freeze (`services`); realistic payloads, `wrk` load and report figures for the benchmarks (`realistic`, `wrk`, `stats`); waiting for a condition with a deadline (`wait`); a headless chromium driven through WebDriver for the operator's pages (`browser`) and an HTTP client of them (`admin`).

// serde_json::json! of a full GitHub payload (src/realistic.rs) nests deeper than the default 128.
#![recursion_limit = "256"]

pub mod admin;
pub mod audit;
pub mod browser;
pub mod github;
pub mod github_app_fake;
pub mod github_fake;
pub mod ingest;
pub mod jira_fake;
pub mod metrics;
pub mod process;
pub mod proxy;
pub mod realistic;
pub mod s3;
pub mod serve;
pub mod services;
pub mod slack_fake;
pub mod sqs;
pub mod stats;
pub mod wait;
pub mod worker;
pub mod wrk;
