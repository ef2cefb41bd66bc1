//! Everything the hookbridge processes agree on: what travels on the queue, how webhooks are
//! authenticated, how the processes are configured, and the queue itself.
//!
//! # Layout
//! - [`envelope`]: the versioned [`envelope::Envelope`] that ingest writes and workers read. Only this
//!   module defines what travels on the queue.
//! - [`signature`]: HMAC-SHA256 webhook verification; [`signature::Verified`] can only be built by a
//!   successful check, so nothing unverified can be enqueued.
//! - [`queue`]: one queue interface with two backends, SQS and an embedded SQLite queue, with the same
//!   semantics (visibility timeout, receive count, dead-lettering).
//! - [`claim`]: the claim-check store (a directory or an S3 bucket) that keeps bodies too large for
//!   the queue's message limit.
//! - [`routing`]: routing rules (GitHub event → Jira project, type, labels).
//! - [`deployment_gates`]: which GitHub deployments are gated, and at what tier.
//! - [`config`]: typed settings from environment, flags and the optional TOML file.
//! - [`telemetry`] and [`shutdown`]: logging set-up and signal handling shared by every binary.

pub mod args;
mod aws_errors;
pub mod claim;
pub mod config;
pub mod deployment_gates;
pub mod envelope;
pub mod queue;
pub mod routing;
pub mod shutdown;
pub mod signature;
pub mod telemetry;

#[cfg(test)]
mod proptests;

/// The version every binary reports (in `/health`, `--version` and logs).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
