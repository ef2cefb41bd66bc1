//! Where a GitHub deployment waits for its Change Request: hookbridge as a GitHub App that an
//! environment names as a custom deployment protection rule (README, "Gating deployments without
//! a CI step"). A `deployment_protection_rule` event names a CR ([`reference`]); the gate's one
//! policy ([`crate::gate::deployment::check_cr`]) decides; GitHub is answered through the event's
//! callback ([`crate::github_app`]). A deployment whose CR is still pending is recorded as waiting
//! on that CR, and the Jira webhook that later approves or rejects the CR answers it
//! ([`rule::DeploymentRule::release`]).
//!
//! Exactly once: GitHub takes one answer per run and environment. The answer is marked in the
//! store after GitHub took it ([`Answer`]); a redelivery, a second CR event or a worker killed
//! between the callback and the mark asks again, and GitHub's "already decided" ends the work.
//!
//! # Layout
//! - [`reference`]: which CR a deployment names, and where it was found.
//! - [`rule`]: deciding, answering GitHub, waiting, and releasing the waiting deployments.
//! - [`waiting`]: the deployments waiting on each CR, in the store.
//! - [`recheck`]: the periodic re-check of waiting deployments (a lost Jira webhook, a release
//!   that kept failing).

pub mod recheck;
pub mod reference;
pub mod rule;
pub mod waiting;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::change_requests::record::CrKey;

/// A deployment left waiting for its CR, as the store keeps it under the CR's key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitingDeployment {
    /// `owner/name/runs/<run>/<environment>` ([`crate::events::deployment::DeploymentIdentity`]).
    pub id: String,
    pub repository: String,
    /// The environment as GitHub named it (the callback wants it back).
    pub environment: String,
    pub installation_id: u64,
    pub callback_url: String,
    pub tier: u8,
    /// `staging` or `prod`: the column of the gate's table.
    pub stage: String,
    /// The approver role required.
    pub role: String,
    /// The CR it waits on (`None` until one is found, and for deployments that need none).
    pub cr: Option<CrKey>,
    pub since: DateTime<Utc>,
    /// The delivery that asked.
    pub delivery: String,
}

/// GitHub's answer to a deployment, once given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    /// `approved` or `rejected`.
    pub state: String,
    /// The gate's reason code.
    pub code: String,
    pub reason: String,
    /// The id the comment on GitHub names, found in the audit trail as `ids.audit`.
    pub audit_id: String,
    pub at: DateTime<Utc>,
}
