//! The CR gate: whether a Change Request allows a deployment. One policy for `hookbridge cr
//! validate`, `hookbridge gate` (and, later, GitHub's deployment protection rule), so that the
//! same CR gets the same answer wherever it is asked. It must never pass what should fail: every
//! check that cannot be made is a failure, with a reason a release manager understands.
//!
//! A CR passes when it is not deleted, its status is one of `CR_APPROVED_STATUSES`, the required
//! approver role (if any) is among its approvers, and — with `ENFORCE_PKI_VALIDATION=true` — its
//! signature is valid, by a trusted key, for this CR, and not expired. The deployment gate adds
//! the environment and tier table and the token budget ([`deployment`]).
//!
//! # Layout
//! - [`deployment`]: tiers, environments, the budget.

pub mod deployment;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::change_requests::record::CrRecord;
use crate::change_requests::transition::CrStatuses;
use crate::pki::approval;
use crate::pki::trust::TrustedKeys;

/// The role required when none is given (the governance seed's).
pub const DEFAULT_ROLE: &str = "Change Manager";

/// How strict the gate is.
#[derive(Debug, Clone)]
pub struct Policy {
    pub statuses: CrStatuses,
    /// `ENFORCE_PKI_VALIDATION=true`: a valid signature by one of these keys is required.
    pub pki: Option<TrustedKeys>,
}

/// Why a gate decision went the way it did, as a short fixed code: the words of a reason vary
/// with the CR, the code does not, so metrics and dashboards can count by it (README,
/// "Governance metrics").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReasonCode {
    /// Passed: the CR is approved and every required check held.
    Approved,
    /// Passed: development deploys need no CR.
    DevEnvironment,
    /// Passed: tiers 1–2 need no CR.
    LowTier,
    /// A CR is needed and none was named.
    NoCrId,
    /// The CR is neither in the store nor in Jira.
    NotFound,
    Deleted,
    Rejected,
    /// Not (yet) in an approved status.
    NotApproved,
    /// A role is required and the CR names no approvers.
    NoApproverInfo,
    /// The required role is not among the approvers.
    RoleMissing,
    /// PKI enforced and the CR carries no signature.
    SignatureMissing,
    /// PKI enforced and the signature does not verify (edited, another CR, expired, untrusted).
    SignatureInvalid,
    /// The CR's token budget is used up.
    OverBudget,
    /// `--wait` ran out before the CR was approved.
    TimedOut,
    /// Passed: no `[[deployment_gates]]` table lists the deployment's repository and environment
    /// (the deployment protection rule).
    NotGated,
}

impl ReasonCode {
    /// The code as metrics and audit records show it.
    pub fn as_str(self) -> &'static str {
        match self {
            ReasonCode::Approved => "approved",
            ReasonCode::DevEnvironment => "dev_environment",
            ReasonCode::LowTier => "low_tier",
            ReasonCode::NoCrId => "no_cr_id",
            ReasonCode::NotFound => "not_found",
            ReasonCode::Deleted => "deleted",
            ReasonCode::Rejected => "rejected",
            ReasonCode::NotApproved => "not_approved",
            ReasonCode::NoApproverInfo => "no_approver_info",
            ReasonCode::RoleMissing => "role_missing",
            ReasonCode::SignatureMissing => "signature_missing",
            ReasonCode::SignatureInvalid => "signature_invalid",
            ReasonCode::OverBudget => "over_budget",
            ReasonCode::TimedOut => "timed_out",
            ReasonCode::NotGated => "not_gated",
        }
    }
}

/// Why a CR does not pass: a fixed code and the words for a release manager.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Denial {
    pub code: ReasonCode,
    pub reason: String,
}

impl Denial {
    pub fn new(code: ReasonCode, reason: impl Into<String>) -> Self {
        Self {
            code,
            reason: reason.into(),
        }
    }
}

/// What the gate says about a CR.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "decision", rename_all = "lowercase")]
pub enum Verdict {
    /// Passes; with what a reader should still know.
    Pass { warnings: Vec<String> },
    /// Not (yet) approved, but not refused either: waiting may change it.
    Pending(Denial),
    /// Approved, but something else fails (role, signature): an edit of the CR may change it.
    Fail(Denial),
    /// Rejected, deleted or over budget: waiting will not change it.
    Refused(Denial),
}

impl Verdict {
    pub fn passed(&self) -> bool {
        matches!(self, Verdict::Pass { .. })
    }

    /// Why it did not pass.
    pub fn denial(&self) -> Option<&Denial> {
        match self {
            Verdict::Pass { .. } => None,
            Verdict::Pending(denial) | Verdict::Fail(denial) | Verdict::Refused(denial) => {
                Some(denial)
            }
        }
    }

    /// The reason it did not pass.
    pub fn reason(&self) -> Option<&str> {
        self.denial().map(|d| d.reason.as_str())
    }
}

/// Checks `record` against `policy`, requiring `role` among its approvers when given.
pub fn check(
    record: &CrRecord,
    role: Option<&str>,
    policy: &Policy,
    now: DateTime<Utc>,
) -> Verdict {
    let key = &record.key;
    if record.deleted {
        return Verdict::Refused(Denial::new(
            ReasonCode::Deleted,
            format!("{key} was deleted in Jira"),
        ));
    }
    if policy.statuses.is_rejected(&record.status) {
        return Verdict::Refused(Denial::new(
            ReasonCode::Rejected,
            format!("{key} was rejected (status {})", record.status),
        ));
    }
    if !policy.statuses.is_approved(&record.status) {
        return Verdict::Pending(Denial::new(
            ReasonCode::NotApproved,
            format!(
                "{key} is {:?}, not approved (approved statuses: {})",
                record.status,
                policy.statuses.approved.join(", ")
            ),
        ));
    }
    let mut warnings = Vec::new();
    match role {
        Some(role) if record.approvers.is_empty() => {
            return Verdict::Fail(Denial::new(
                ReasonCode::NoApproverInfo,
                format!(
                    "{key} has no approver information, so the required role {role:?} cannot be found"
                ),
            ));
        }
        Some(role) => {
            let has_role = record.approvers.iter().any(|a| {
                a.role
                    .as_deref()
                    .is_some_and(|r| r.trim().eq_ignore_ascii_case(role.trim()))
            });
            if !has_role {
                let present: Vec<String> = record
                    .approvers
                    .iter()
                    .map(|a| format!("{} ({})", a.name, a.role.as_deref().unwrap_or("no role")))
                    .collect();
                return Verdict::Fail(Denial::new(
                    ReasonCode::RoleMissing,
                    format!(
                        "approver role {role:?} not found on {key} (approvers: {})",
                        present.join(", ")
                    ),
                ));
            }
        }
        None if record.approvers.is_empty() => {
            warnings.push(format!("{key} has no approver information"));
        }
        None => {}
    }
    if let Some(trusted) = &policy.pki {
        let Some(signature) = &record.signature else {
            let why = record
                .signature_problem
                .clone()
                .unwrap_or_else(|| "the signature field is empty".into());
            return Verdict::Fail(Denial::new(
                ReasonCode::SignatureMissing,
                format!("{key} has no valid PKI signature ({why}); ENFORCE_PKI_VALIDATION is on"),
            ));
        };
        if let Err(why) = approval::verify(signature, key.as_str(), trusted, now) {
            return Verdict::Fail(Denial::new(
                ReasonCode::SignatureInvalid,
                format!("{key}: PKI signature invalid: {why}"),
            ));
        }
    }
    Verdict::Pass { warnings }
}
