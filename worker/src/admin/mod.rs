//! The operator's page (README, "The operator's page"): what hookbridge is doing, in the browser —
//! the overview, the deliveries and each one's journey, the dead letters with redrive and purge,
//! the Change Requests and the deployments waiting on them, the audit trail's check. Served by
//! the worker (and `hookbridge run`) on its own listener, `HOOKBRIDGE_ADMIN_BIND`, never the
//! webhook listener; every page also answers `Accept: application/json` with the same data.
//!
//! Server-rendered (askama templates compiled into the binary, one embedded stylesheet, no
//! script), so it works on a machine without internet. Lists page in the store and the queue,
//! never in the browser.
//!
//! # Layout
//! - [`access`]: who may see and act — loopback without a token, the token otherwise; CSRF.
//! - [`figures`]: the overview's figures from the metric families, sampled for the last hour.
//! - [`charts`]: the overview's inline SVG charts.
//! - [`pages`]: one module per page: its data, its template, its handlers.
//! - [`server`]: the listener, the routes, log-in and log-out.

pub mod access;
pub mod charts;
pub mod figures;
pub mod pages;
pub mod server;

use std::path::PathBuf;

use hookbridge_shared::queue::Queue;

use crate::audit::AuditLog;
use crate::change_requests::transition::CrStatuses;
use crate::jira::health::JiraHealth;
use crate::metrics::WorkerMetrics;
use crate::pki::trust::TrustedKeys;
use crate::store::Store;
use access::Access;
use figures::History;

/// Everything the pages read and act on; shared by every request.
pub struct AdminState {
    pub store: Store,
    pub queue: Queue,
    /// The ingest's spool, in `hookbridge run` on SQS (its depth is on the overview).
    pub spool: Option<Queue>,
    /// The process's audit chain: redrives and purges are recorded here, as `admin`.
    pub audit: AuditLog,
    pub metrics: WorkerMetrics,
    pub history: History,
    pub access: Access,
    /// Live Jira's health; `None` in dry-run.
    pub jira: Option<JiraHealth>,
    /// `JIRA_BASE_URL` + `/browse/`, to link Jira keys.
    pub jira_browse: Option<String>,
    /// Whether alerts go to Slack (else to the audit trail).
    pub slack: bool,
    pub statuses: CrStatuses,
    /// Trusted keys for CR signatures, when configured (else a signature is shown unchecked).
    pub trusted: Option<TrustedKeys>,
    /// How long CR records live after their last change.
    pub cr_ttl: std::time::Duration,
    pub audit_dir: PathBuf,
}
