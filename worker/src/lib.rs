//! The worker: consumes the queue and turns events into effects (Jira issues and comments, CR
//! records, audit entries, Slack alerts), each exactly once despite at-least-once delivery.
//!
//! # Layout
//! - [`consumer`]: the loop — `WORKER_CONCURRENCY` messages in flight, visibility extension for
//!   long work, settle-after-work (ack / release with delay / dead-letter), graceful drain.
//! - [`handler`]: the [`handler::Handler`] trait and [`handler::Outcome`], the unit of work the
//!   loop drives.
//! - [`router`]: the one handler — where a message is decoded, deduplicated and sent on.
//! - [`events`]: where an envelope becomes a typed [`events::Event`] (payload types, claims).
//! - [`github_sync`]: where a GitHub issue or comment event becomes Jira calls, exactly once.
//! - [`pull_requests`]: where a pull request or push becomes Jira remote links (and a merge
//!   comment), exactly once.
//! - [`jira_sync`]: where a Jira status change or comment becomes GitHub calls, exactly once.
//! - [`github_app`]: hookbridge as a GitHub App — JWTs, installation tokens, deployment reviews.
//! - [`change_requests`]: where CR state lives — Jira CR events become ordered CR records.
//! - [`deployments`]: where a GitHub deployment waits for its CR (the deployment protection rule).
//! - [`failures`]: why a message failed — its failed attempts, for `hookbridge dlq`.
//! - [`alerts`]: the alert outbox and its dispatcher to Slack.
//! - [`jira`]: the Jira REST v3 client, its pacing, the live-or-dry-run operations and ADF.
//! - [`store`]: Redis or embedded SQLite — dedupe marks, fenced locks, typed keys, rate slots.
//! - [`audit`]: the tamper-evident audit trail (a hash chain per process) and its verification.
//! - [`metrics`]: the worker's Prometheus figures and its `/metrics` listener.
//! - [`listener`]: binding and serving the worker's own listeners (metrics, the operator's page).
//! - [`admin`]: the operator's page — overview, deliveries, dead letters, CRs, audit check.
//! - [`deliveries`]: what became of each delivery, and its journey, for the operator's page.
//! - [`dead_letters`]: list, show, redrive and purge, shared by `hookbridge dlq` and the page.
//! - [`settings`] and [`startup`]: flags and environment, and assembling a worker from them.

pub mod admin;
pub mod alerts;
pub mod audit;
pub mod change_requests;
pub mod consumer;
pub mod dead_letters;
pub mod deliveries;
pub mod deployments;
pub mod events;
pub mod failures;
pub mod gate;
pub mod github_app;
pub mod github_sync;
pub mod handler;
pub mod health;
pub mod jira;
pub mod jira_sync;
pub mod listener;
pub mod metrics;
pub mod pki;
pub mod pull_requests;
pub mod router;
pub mod settings;
pub mod startup;
pub mod store;

#[cfg(test)]
mod proptests;
