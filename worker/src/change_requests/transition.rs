//! What a CR event changes: whether it is newer than the record (Jira delivers late, twice and out
//! of order, so the newest `timestamp` wins, not the last to arrive), which status change it is,
//! and which alert that change calls for.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::record::{CrRecord, Person};

/// The statuses that mean "approved" and "rejected" (`CR_APPROVED_STATUSES`,
/// `CR_REJECTED_STATUSES`), compared without regard to case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrStatuses {
    pub approved: Vec<String>,
    pub rejected: Vec<String>,
}

impl CrStatuses {
    pub fn is_approved(&self, status: &str) -> bool {
        self.approved.iter().any(|s| s.eq_ignore_ascii_case(status))
    }

    pub fn is_rejected(&self, status: &str) -> bool {
        self.rejected.iter().any(|s| s.eq_ignore_ascii_case(status))
    }
}

/// How an incoming record relates to the stored one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Newer (or nothing stored): it replaces the stored record.
    Newer,
    /// Not newer: the stored record stays. Equal times count as not newer, so whichever event of
    /// one instant was stored first stays, however often the others are redelivered.
    Stale,
}

pub fn order(stored: Option<&CrRecord>, incoming: &CrRecord) -> Order {
    match stored {
        Some(stored) if incoming.updated_at <= stored.updated_at => Order::Stale,
        _ => Order::Newer,
    }
}

/// One entry of a CR's status history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub at: DateTime<Utc>,
    pub by: Option<String>,
    pub from: Option<String>,
    pub to: String,
}

/// A status change: from what (`None` for a CR seen for the first time at its creation) to what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusChange {
    pub from: Option<String>,
    pub to: String,
}

impl StatusChange {
    pub fn history(&self, at: DateTime<Utc>, by: Option<&Person>) -> HistoryEntry {
        HistoryEntry {
            at,
            by: by.map(|p| p.name.clone()),
            from: self.from.clone(),
            to: self.to.clone(),
        }
    }
}

/// The status change `incoming` makes from `before`: `None` before a created issue means it is new;
/// no `before` at all for an update means the event says nothing of a change.
pub fn status_change(
    before: Option<&str>,
    created: bool,
    incoming: &CrRecord,
) -> Option<StatusChange> {
    let from = match before {
        Some(before) => Some(before.to_owned()),
        None if created => None,
        None => return None,
    };
    if from.as_deref() == Some(incoming.status.as_str()) {
        return None;
    }
    Some(StatusChange {
        from,
        to: incoming.status.clone(),
    })
}

/// Which Slack alert a status change calls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CrAlertKind {
    /// The CR became approved.
    Approved,
    /// The CR became rejected (from approved or not).
    Rejected,
    /// The CR left approved for something that is neither approved nor rejected (revoked,
    /// reopened, deleted).
    Revoked,
}

/// One alert per transition into approved, into rejected, or out of approved; none otherwise.
pub fn alert_for(
    change: &StatusChange,
    deleted: bool,
    statuses: &CrStatuses,
) -> Option<CrAlertKind> {
    let was_approved = change
        .from
        .as_deref()
        .is_some_and(|s| statuses.is_approved(s));
    let was_rejected = change
        .from
        .as_deref()
        .is_some_and(|s| statuses.is_rejected(s));
    let approved = !deleted && statuses.is_approved(&change.to);
    let rejected = !deleted && statuses.is_rejected(&change.to);
    if approved && !was_approved {
        Some(CrAlertKind::Approved)
    } else if rejected && !was_rejected {
        Some(CrAlertKind::Rejected)
    } else if was_approved && !approved {
        Some(CrAlertKind::Revoked)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn statuses() -> CrStatuses {
        CrStatuses {
            approved: vec!["Approved".into(), "Ready for Deploy".into()],
            rejected: vec!["Rejected".into()],
        }
    }

    fn change(from: Option<&str>, to: &str) -> StatusChange {
        StatusChange {
            from: from.map(str::to_owned),
            to: to.to_owned(),
        }
    }

    #[test]
    fn alerts_fire_on_entering_approved_or_rejected_and_on_leaving_approved() {
        let s = statuses();
        let cases = [
            (
                change(Some("Pending"), "Approved"),
                false,
                Some(CrAlertKind::Approved),
            ),
            (change(None, "approved"), false, Some(CrAlertKind::Approved)),
            (change(Some("Approved"), "Ready for Deploy"), false, None),
            (
                change(Some("Pending"), "Rejected"),
                false,
                Some(CrAlertKind::Rejected),
            ),
            (
                change(Some("Approved"), "Rejected"),
                false,
                Some(CrAlertKind::Rejected),
            ),
            (
                change(Some("Approved"), "Pending"),
                false,
                Some(CrAlertKind::Revoked),
            ),
            (
                change(Some("Approved"), "(deleted)"),
                true,
                Some(CrAlertKind::Revoked),
            ),
            (change(Some("Pending"), "(deleted)"), true, None),
            (change(Some("To Do"), "Pending"), false, None),
            (change(Some("Rejected"), "Pending"), false, None),
        ];
        for (change, deleted, expected) in cases {
            assert_eq!(alert_for(&change, deleted, &s), expected, "{change:?}");
        }
    }
}
