//! Where Change Request state lives: Jira CR events become CR records in the store, newest event
//! first, with their status history, an audit record per decision, and one Slack alert per
//! transition that matters.
//!
//! Jira delivers webhooks late (up to about half an hour), more than once, and out of order. So a
//! record is written only when its event is newer than the stored one ([`transition::order`]),
//! and everything one delivery changes — the record, a history entry, the alert its transition
//! calls for, and a marker saying this delivery was applied — is one store
//! [`Transaction`](crate::store::Transaction) conditioned on the record being what was read. A
//! redelivery finds its marker and changes nothing; a late event finds a newer record and only
//! adds its transition to the history; two workers racing on one CR cannot both win.
//!
//! # Layout
//! - [`record`]: the CR record, its key, approvers, people.
//! - [`fields`]: reading approvers (two shapes), the signature and the budget from Jira fields.
//! - [`transition`]: ordering, status changes and which alert a change calls for.
//! - [`usage`]: token usage recorded against a CR's budget, and its 80 % / 100 % alerts.
//! - [`lookup`]: a CR from the store, or from Jira when the store has none (`cr status`).

pub mod fields;
pub mod lookup;
pub mod record;
pub mod transition;
pub mod usage;

use std::time::Duration;

use hookbridge_shared::envelope::Envelope;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::alerts::{Alert, AlertWaker};
use crate::audit::{AuditLog, Entry};
use crate::deployments::rule::DeploymentRule;
use crate::events::jira::{CrEvent, IssueEventKind};
use crate::handler::{Failure, Outcome};
use crate::metrics::governance;
use crate::store::keys::{CrApplied, CrHistory, CrIndex, CrRecordKey};
use crate::store::{Store, Transaction};
use fields::CrFields;
use record::CrRecord;
use transition::{CrAlertKind, CrStatuses, Order, StatusChange};

pub use usage::Usage;

/// How many status changes a CR's history keeps (the newest).
pub const HISTORY_KEPT: usize = 50;
/// How many CR writes the index of recent CRs keeps (the operator's page lists the CRs in it).
pub const CR_INDEX_KEPT: usize = 10_000;

/// How long "this delivery was applied" is remembered: longer than Jira retries or delivers late.
const APPLIED_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// How often a write is tried again when another worker changed the record in between.
const MAX_CONFLICTS: usize = 20;

/// What configures the CR records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrConfig {
    pub fields: CrFields,
    pub statuses: CrStatuses,
    /// How long a record (and its history) lives in the store after its last write.
    pub ttl: Duration,
}

/// What one event (or one read from Jira) did to a CR's record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {
    /// The record was replaced (the event was newer).
    pub newer: bool,
    /// The status change the event made, when it made one.
    pub change: Option<StatusChange>,
    /// The alert it queued.
    pub alert: Option<CrAlertKind>,
}

/// The CR handler.
#[derive(Clone)]
pub struct ChangeRequests {
    pub store: Store,
    pub audit: AuditLog,
    pub config: CrConfig,
    pub alerts: AlertWaker,
}

impl ChangeRequests {
    /// Applies one CR event (decoded, not yet done).
    ///
    /// # Errors
    /// [`Failure`], classified: an issue that cannot be read as a CR is permanent; a store that
    /// cannot be reached, or an audit trail that cannot be written, is retried.
    /// The deployments waiting on the CR are then released (answered when its record now decides
    /// them), before the delivery is marked done, so that a failed release is retried with it.
    pub async fn handle(
        &self,
        envelope: &Envelope,
        event: &CrEvent,
        deployments: &DeploymentRule,
    ) -> Result<Outcome, Failure> {
        let delivery = envelope.delivery.as_str();
        let deleted = event.kind == IssueEventKind::Deleted;
        let record = CrRecord::from_issue(
            &event.issue,
            &self.config.fields,
            event.at,
            event.user.clone(),
            deleted,
        )
        .map_err(Failure::Fail)?;
        for warning in &record.warnings {
            tracing::warn!(cr = %record.key, delivery, "{warning}");
        }
        let applied = match self.store.read(&CrApplied(delivery)).await? {
            // Applied before a crash or by another worker: only the audit and the mark are left.
            Some(applied) => applied,
            None => {
                let created = event.kind == IssueEventKind::Created;
                self.apply(
                    Some(delivery),
                    &record,
                    event.status_from.as_deref(),
                    created,
                )
                .await?
            }
        };
        self.audit_event(envelope, &record, &applied).await?;
        deployments.release(&record.key).await?;
        self.store.mark_done(delivery, APPLIED_TTL).await?;
        if applied.alert.is_some() {
            self.alerts.wake();
        }
        Ok(Outcome::Done)
    }

    /// Stores `record` unless the store holds a newer one, with its history entry and alert, all
    /// in one transaction; `delivery` (when the record comes from a webhook) is marked applied in
    /// it too. `status_from` is what the event says the status was; `created` that the event
    /// created the issue.
    ///
    /// # Errors
    /// [`Failure`], classified.
    pub async fn apply(
        &self,
        delivery: Option<&str>,
        record: &CrRecord,
        status_from: Option<&str>,
        created: bool,
    ) -> Result<Applied, Failure> {
        let key = CrRecordKey(&record.key);
        for _ in 0..MAX_CONFLICTS {
            let stored = self.store.read_versioned(&key).await?;
            let mut tx = Transaction::new();
            tx.expect_unchanged(&key, &stored);
            if let Some(delivery) = delivery {
                tx.expect_absent(&CrApplied(delivery));
            }
            let applied = match transition::order(stored.value.as_ref(), record) {
                Order::Newer => {
                    let stored_record = stored.value.as_ref();
                    let stored_status = stored_record.map(|r| r.status.as_str());
                    let record = &Self::with_status_since(record, stored_record);
                    // History says what the event says it changed; alerts compare with what was
                    // last known, so a transition already alerted is never alerted again.
                    let change =
                        transition::status_change(status_from.or(stored_status), created, record);
                    let known =
                        transition::status_change(stored_status.or(status_from), created, record);
                    let alert = known.as_ref().and_then(|c| {
                        transition::alert_for(c, record.deleted, &self.config.statuses)
                            .map(|kind| (kind, c))
                    });
                    tx.put(&key, record, Some(self.config.ttl))?;
                    tx.push(&CrIndex, &record.key, Some(CR_INDEX_KEPT), None)?;
                    if let Some(change) = &change {
                        self.push_history(&mut tx, record, change)?;
                    }
                    if let Some((kind, known)) = alert {
                        Alert::for_change(kind, record, known).enqueue(&mut tx)?;
                        // The approval ends the wait in the status it was approved from.
                        if kind == CrAlertKind::Approved
                            && let Some(waited) = stored_record.filter(|r| {
                                !r.deleted && !self.config.statuses.is_rejected(&r.status)
                            })
                            && let Some(since) = waited.status_since
                            && let Ok(latency) = (record.updated_at - since).to_std()
                        {
                            governance::observe_approval(&mut tx, latency)?;
                        }
                    }
                    Applied {
                        newer: true,
                        change,
                        alert: alert.map(|(kind, _)| kind),
                    }
                }
                Order::Stale => {
                    // Late news: the record stays, but a status change it reports happened all
                    // the same, so it joins the history (which readers order by time).
                    let change = transition::status_change(status_from, created, record);
                    if let Some(change) = &change {
                        self.push_history(&mut tx, record, change)?;
                    }
                    Applied {
                        newer: false,
                        change,
                        alert: None,
                    }
                }
            };
            if let Some(delivery) = delivery {
                tx.put(&CrApplied(delivery), &applied, Some(APPLIED_TTL))?;
            }
            if self.store.commit(&tx).await? {
                return Ok(applied);
            }
            // The record changed since it was read, or another worker applied this delivery.
            if let Some(delivery) = delivery
                && let Some(applied) = self.store.read(&CrApplied(delivery)).await?
            {
                return Ok(applied);
            }
        }
        Err(Failure::Retry {
            after: Duration::from_secs(1),
            reason: format!(
                "{}: the record kept changing while it was written",
                record.key
            ),
        })
    }

    /// `record` with [`CrRecord::status_since`] carried over from `stored` while the status stays,
    /// or the record's own time when this event changed it.
    fn with_status_since(record: &CrRecord, stored: Option<&CrRecord>) -> CrRecord {
        let mut record = record.clone();
        record.status_since = match stored {
            Some(stored) if stored.status == record.status && stored.deleted == record.deleted => {
                stored.status_since
            }
            _ => Some(record.updated_at),
        };
        record
    }

    fn push_history(
        &self,
        tx: &mut Transaction,
        record: &CrRecord,
        change: &StatusChange,
    ) -> Result<(), crate::store::StoreError> {
        let entry = change.history(record.updated_at, record.changed_by.as_ref());
        tx.push(
            &CrHistory(&record.key),
            &entry,
            Some(HISTORY_KEPT),
            Some(self.config.ttl),
        )
    }

    async fn audit_event(
        &self,
        envelope: &Envelope,
        record: &CrRecord,
        applied: &Applied,
    ) -> Result<(), Failure> {
        let (action, outcome) = match (applied.newer, &applied.change, record.deleted) {
            (false, _, _) => ("cr.event.stale", "stale"),
            (true, _, true) => ("cr.deleted", "ok"),
            (true, Some(_), false) => ("cr.status.changed", "ok"),
            (true, None, false) => ("cr.updated", "ok"),
        };
        let mut entry = Entry::new(action, record.key.as_str())
            .outcome(outcome)
            .id("delivery", envelope.delivery.as_str())
            .id("jira", record.key.as_str())
            .detail(json!({
                "status": record.status,
                "event_at": record.updated_at,
                "change": applied.change,
                "alert": applied.alert,
                "approvers": record.approvers.len(),
                "warnings": record.warnings,
            }));
        if let Some(by) = &record.changed_by {
            entry = entry.actor(format!("jira:{}", by.name));
        }
        self.audit.record(entry).await?;
        Ok(())
    }
}
