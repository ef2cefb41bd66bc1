//! hookbridge's integration tests: one test binary, one module per area.

mod audit;
mod change_requests;
mod claims_s3;
mod cli;
mod conformance;
mod deployment_rule;
mod dlq;
mod durability;
mod gate;
mod github_app;
mod github_backfill;
mod github_redeliver;
mod github_sync;
mod github_sync_deeper;
mod governance;
mod hostile;
mod ingest_http;
mod ingest_limits;
mod ingest_sqs;
mod jira_client;
mod jira_outage;
mod secrets;
mod store;
mod worker_process;
