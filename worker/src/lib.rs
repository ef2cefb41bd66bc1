//! The worker: consumes the queue and turns events into effects (Jira issues and comments, CR
//! records, audit entries, Slack alerts), each exactly once despite at-least-once delivery.
//!
//! # Layout
//! - [`consumer`]: the loop — `WORKER_CONCURRENCY` messages in flight, visibility extension for
//!   long work, settle-after-work (ack / release with delay / dead-letter), graceful drain.
//! - [`handler`]: [`handler::Handler`], the unit of work (`process_one`) the loop drives; tests
//!   drive it directly.
//! - [`settings`]: worker flags and environment.

pub mod adf;
pub mod audit;
pub mod consumer;
pub mod github;
pub mod handler;
pub mod jira;
pub mod jira_ops;
pub mod pipeline;
pub mod settings;
pub mod startup;
pub mod store;
