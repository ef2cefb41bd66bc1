//! A Jira Cloud REST v3 client: the calls the worker and the CLI make, each classified into done,
//! retry later or refused (see [`JiraError`]), paced by a shared [`Limiter`].
//!
//! Retries inside the client are few and safe: a request that Jira throttled (429/503) or that
//! never reached it is sent again after the wait; other server errors and timeouts are retried only
//! for idempotent requests (reads, edits, transitions, remote-link upserts). A create or a comment
//! that timed out may have taken effect, so it is returned to the caller, which reconciles before
//! trying again (see `pipeline`).
//!
//! # Layout
//! - `client`: [`JiraClient`] and the value types its calls return; how one request is sent,
//!   classified and retried (`client/send.rs`) apart from the calls themselves.
//! - `error`: [`JiraError`], sorted by what the caller should do (`is_transient`, `retry_after`,
//!   `proves_nothing_happened`), and the one-line rendering of Jira's error bodies.
//! - [`health`]: [`health::JiraHealth`], whether Jira takes requests at all (credentials,
//!   reachability), which pauses the consumer instead of dead-lettering everything.
//! - [`limiter`]: [`Limiter`], the request pacing shared by every in-flight message of a process
//!   (and, through the store, by every worker process), which slows down when Jira pushes back.
//! - [`watch`]: saying so (log, metric, audit, Slack) when Jira goes down, and probing it back.
//! - [`ops`]: the operations the worker needs, against the live client or in dry-run.
//! - [`remote_links`]: remote links with a summary, an icon and a status (pull requests, commits).
//! - [`adf`]: Atlassian Document Format from GitHub Markdown, and its validator.

pub mod adf;
mod client;
mod error;
pub mod health;
pub mod limiter;
pub mod ops;
pub mod remote_links;
pub mod watch;

pub use client::{BeforeSend, CreatedIssue, JiraClient, JiraField, Transition, remote_link_body};
pub use error::JiraError;
pub use limiter::Limiter;
