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

/// What the gate says about a CR.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "decision", rename_all = "lowercase")]
pub enum Verdict {
    /// Passes; with what a reader should still know.
    Pass { warnings: Vec<String> },
    /// Not (yet) approved, but not refused either: waiting may change it.
    Pending { reason: String },
    /// Approved, but something else fails (role, signature): an edit of the CR may change it.
    Fail { reason: String },
    /// Rejected or deleted: waiting will not change it.
    Refused { reason: String },
}

impl Verdict {
    pub fn passed(&self) -> bool {
        matches!(self, Verdict::Pass { .. })
    }

    /// The reason it did not pass.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Verdict::Pass { .. } => None,
            Verdict::Pending { reason }
            | Verdict::Fail { reason }
            | Verdict::Refused { reason } => Some(reason),
        }
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
        return Verdict::Refused {
            reason: format!("{key} was deleted in Jira"),
        };
    }
    if policy.statuses.is_rejected(&record.status) {
        return Verdict::Refused {
            reason: format!("{key} was rejected (status {})", record.status),
        };
    }
    if !policy.statuses.is_approved(&record.status) {
        return Verdict::Pending {
            reason: format!(
                "{key} is {:?}, not approved (approved statuses: {})",
                record.status,
                policy.statuses.approved.join(", ")
            ),
        };
    }
    let mut warnings = Vec::new();
    match role {
        Some(role) if record.approvers.is_empty() => {
            return Verdict::Fail {
                reason: format!(
                    "{key} has no approver information, so the required role {role:?} cannot be found"
                ),
            };
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
                return Verdict::Fail {
                    reason: format!(
                        "approver role {role:?} not found on {key} (approvers: {})",
                        present.join(", ")
                    ),
                };
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
            return Verdict::Fail {
                reason: format!(
                    "{key} has no valid PKI signature ({why}); ENFORCE_PKI_VALIDATION is on"
                ),
            };
        };
        if let Err(why) = approval::verify(signature, key.as_str(), trusted, now) {
            return Verdict::Fail {
                reason: format!("{key}: PKI signature invalid: {why}"),
            };
        }
    }
    Verdict::Pass { warnings }
}
