//! hookbridge's integration tests: one test binary, one module per area.

mod audit;
mod change_requests;
mod claims_s3;
mod cli;
mod conformance;
mod dlq;
mod durability;
mod gate;
mod github_sync;
mod governance;
mod ingest_http;
mod ingest_sqs;
mod jira_client;
mod store;
mod worker_process;
