//! Every key the worker keeps in the store, each tied to the type of its value: the one place that
//! knows a key's prefix. A key can only be read as what was written under it, and because no
//! prefix is the beginning of another, two features cannot write to the same key.
//!
//! Values are JSON; a value that does not parse as its key's type is reported as
//! [`super::StoreError::Corrupt`], never guessed at.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::transaction::{StoreCounters, StoreList};
use crate::alerts::Alert;
use crate::alerts::dispatcher::DispatchState;
use crate::audit::ChainHead;
use crate::change_requests::record::{CrKey, CrRecord};
use crate::change_requests::transition::HistoryEntry;
use crate::change_requests::{Applied, Usage};
use crate::deliveries::{DeliveryOutcome, DeliveryRow, JourneyStep};
use crate::deployments::{Answer, WaitingDeployment};
use crate::events::github::IssueIdentity;
use crate::failures::FailedAttempt;
use crate::github_sync::{CommentRecord, Intent, Mapping};
use crate::jira_sync::{GithubTwin, JiraCommentRecord};
use crate::metrics::governance::{CheckFailureLabels, DecisionLabels, LatencyCell};
use crate::pull_requests::{MergeComment, PullRecord};

/// A key of the store's key/value map and the type of the value kept there.
pub trait StoreKey {
    /// What is kept at this key.
    type Value: Serialize + DeserializeOwned;
    /// The namespace of this kind of key (no prefix begins another one).
    const PREFIX: &'static str;
    /// What follows the prefix.
    fn suffix(&self) -> String;

    /// The whole key.
    fn name(&self) -> String {
        format!("{}{}", Self::PREFIX, self.suffix())
    }
}

/// The Jira issue that mirrors a GitHub issue.
pub struct IssueMapping<'a>(pub &'a IssueIdentity);

impl StoreKey for IssueMapping<'_> {
    type Value = Mapping;
    const PREFIX: &'static str = "map:";
    fn suffix(&self) -> String {
        self.0.to_string()
    }
}

/// A Jira create that may have happened for a GitHub issue (crash recovery).
pub struct IssueCreateIntent<'a>(pub &'a IssueIdentity);

impl StoreKey for IssueCreateIntent<'_> {
    type Value = Intent;
    const PREFIX: &'static str = "intent:create:";
    fn suffix(&self) -> String {
        self.0.to_string()
    }
}

/// A GitHub comment that has its Jira twin.
pub struct CommentSynced<'a>(pub &'a IssueIdentity, pub u64);

impl StoreKey for CommentSynced<'_> {
    type Value = CommentRecord;
    const PREFIX: &'static str = "comment:";
    fn suffix(&self) -> String {
        format!("{}:{}", self.0, self.1)
    }
}

/// A Jira comment that may have been posted for a GitHub comment (crash recovery).
pub struct CommentIntent<'a>(pub &'a IssueIdentity, pub u64);

impl StoreKey for CommentIntent<'_> {
    type Value = Intent;
    const PREFIX: &'static str = "intent:comment:";
    fn suffix(&self) -> String {
        format!("{}:{}", self.0, self.1)
    }
}

/// The GitHub issue a Jira issue (by key) is the twin of: the reverse of [`IssueMapping`],
/// written in the same transaction.
pub struct JiraTwin<'a>(pub &'a str);

impl StoreKey for JiraTwin<'_> {
    type Value = GithubTwin;
    const PREFIX: &'static str = "jira-twin:";
    fn suffix(&self) -> String {
        self.0.to_ascii_uppercase()
    }
}

/// When the newest status change of a Jira twin that the sync saw happened (Jira's `timestamp`):
/// a late delivery of an older change is not applied over a newer one.
pub struct JiraStatusSeen<'a>(pub &'a str);

impl StoreKey for JiraStatusSeen<'_> {
    type Value = chrono::DateTime<chrono::Utc>;
    const PREFIX: &'static str = "jira-status-seen:";
    fn suffix(&self) -> String {
        self.0.to_ascii_uppercase()
    }
}

/// A Jira comment (issue key, comment id) that has its GitHub twin.
pub struct JiraCommentSynced<'a>(pub &'a str, pub &'a str);

impl StoreKey for JiraCommentSynced<'_> {
    type Value = JiraCommentRecord;
    const PREFIX: &'static str = "jira-comment:";
    fn suffix(&self) -> String {
        format!("{}/{}", self.0.to_ascii_uppercase(), self.1)
    }
}

/// A GitHub comment that may have been posted for a Jira comment (crash recovery).
pub struct JiraCommentIntent<'a>(pub &'a str, pub &'a str);

impl StoreKey for JiraCommentIntent<'_> {
    type Value = Intent;
    const PREFIX: &'static str = "intent:jira-comment:";
    fn suffix(&self) -> String {
        format!("{}/{}", self.0.to_ascii_uppercase(), self.1)
    }
}

/// What the bridge linked for a pull request: its Jira keys and the newest state it showed.
pub struct PullLinks<'a>(pub &'a IssueIdentity);

impl StoreKey for PullLinks<'_> {
    type Value = PullRecord;
    const PREFIX: &'static str = "pull-links:";
    fn suffix(&self) -> String {
        self.0.to_string()
    }
}

/// The "merged" comment a pull request made on one Jira issue (its key is the second part).
pub struct MergeCommented<'a>(pub &'a IssueIdentity, pub &'a str);

impl StoreKey for MergeCommented<'_> {
    type Value = MergeComment;
    const PREFIX: &'static str = "pull-merge-comment:";
    fn suffix(&self) -> String {
        format!("{}:{}", self.0, self.1)
    }
}

/// A "merged" comment that may have been posted (crash recovery).
pub struct MergeCommentIntent<'a>(pub &'a IssueIdentity, pub &'a str);

impl StoreKey for MergeCommentIntent<'_> {
    type Value = Intent;
    const PREFIX: &'static str = "intent:pull-merge:";
    fn suffix(&self) -> String {
        format!("{}:{}", self.0, self.1)
    }
}

/// The newest record of a Change Request.
pub struct CrRecordKey<'a>(pub &'a CrKey);

impl StoreKey for CrRecordKey<'_> {
    type Value = CrRecord;
    const PREFIX: &'static str = "cr:";
    fn suffix(&self) -> String {
        self.0.to_string()
    }
}

/// A CR status history, oldest first, bounded.
pub struct CrHistory<'a>(pub &'a CrKey);

impl StoreList for CrHistory<'_> {
    type Item = HistoryEntry;
    const PREFIX: &'static str = "cr-history:";
    fn suffix(&self) -> String {
        self.0.to_string()
    }
}

/// What one Jira delivery did to a CR: written with its effect, so a redelivery after a crash
/// finds it done.
pub struct CrApplied<'a>(pub &'a str);

impl StoreKey for CrApplied<'_> {
    type Value = Applied;
    const PREFIX: &'static str = "cr-applied:";
    fn suffix(&self) -> String {
        self.0.to_owned()
    }
}

/// Tokens recorded against a CR's budget.
pub struct CrUsage<'a>(pub &'a CrKey);

impl StoreKey for CrUsage<'_> {
    type Value = Usage;
    const PREFIX: &'static str = "cr-usage:";
    fn suffix(&self) -> String {
        self.0.to_string()
    }
}

/// Alerts waiting to be sent, oldest first (see [`crate::alerts`]).
pub struct AlertOutbox;

impl StoreList for AlertOutbox {
    type Item = Alert;
    const PREFIX: &'static str = "alerts-outbox";
    fn suffix(&self) -> String {
        String::new()
    }
}

/// The dispatcher's attempts at the outbox's oldest alert.
pub struct AlertDispatch;

impl StoreKey for AlertDispatch {
    type Value = DispatchState;
    const PREFIX: &'static str = "alerts-dispatch";
    fn suffix(&self) -> String {
        String::new()
    }
}

/// An alert that was queued, for alerts raised outside a transaction of their own change (a
/// dead-lettered message): queueing it twice is then refused.
pub struct AlertQueued<'a>(pub &'a str);

impl StoreKey for AlertQueued<'_> {
    type Value = bool;
    const PREFIX: &'static str = "alert-queued:";
    fn suffix(&self) -> String {
        self.0.to_owned()
    }
}

/// The newest record of one audit chain (see [`crate::audit`]).
pub struct AuditHead<'a>(pub &'a str);

impl StoreKey for AuditHead<'_> {
    type Value = ChainHead;
    const PREFIX: &'static str = "audit-head:";
    fn suffix(&self) -> String {
        self.0.to_owned()
    }
}

/// The names of the audit chains, oldest first.
pub struct AuditChains;

impl StoreList for AuditChains {
    type Item = String;
    const PREFIX: &'static str = "audit-chains";
    fn suffix(&self) -> String {
        String::new()
    }
}

/// The failed attempts of one message (see [`crate::failures`]).
pub struct FailureHistory<'a>(pub &'a str);

impl StoreList for FailureHistory<'_> {
    type Item = FailedAttempt;
    const PREFIX: &'static str = "failures:";
    fn suffix(&self) -> String {
        self.0.to_owned()
    }
}

/// Gate decisions, by command, outcome and reason (see [`crate::metrics::governance`]).
pub struct GateDecisions;

impl StoreCounters for GateDecisions {
    type Labels = DecisionLabels;
    const PREFIX: &'static str = "metric-gate-decisions";
}

/// CR checks that did not pass, by command and reason.
pub struct CrCheckFailures;

impl StoreCounters for CrCheckFailures {
    type Labels = CheckFailureLabels;
    const PREFIX: &'static str = "metric-cr-check-failures";
}

/// The approval latency histogram's cells.
pub struct ApprovalLatency;

impl StoreCounters for ApprovalLatency {
    type Labels = LatencyCell;
    const PREFIX: &'static str = "metric-cr-approval-latency";
}

/// The name of a lock; one constructor per kind of lock, so lock names cannot collide either.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockName(String);

impl LockName {
    /// Serialises all work on one GitHub issue.
    pub fn github_issue(identity: &IssueIdentity) -> Self {
        Self(format!("issue:{identity}"))
    }

    /// Serialises all work on one GitHub pull request.
    pub fn github_pull_request(identity: &IssueIdentity) -> Self {
        Self(format!("pull:{identity}"))
    }

    /// Lets one process at a time re-check the deployments waiting on CRs.
    pub fn deployment_recheck() -> Self {
        Self("deployments:recheck".into())
    }

    /// Lets one process at a time drain the alert outbox.
    pub fn alert_dispatcher() -> Self {
        Self("alerts:dispatcher".into())
    }

    /// A lock for tests of the store itself.
    pub fn test(name: &str) -> Self {
        Self(format!("test:{name}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for LockName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The deployments waiting for a CR's approval (the deployment protection rule).
pub struct DeploymentsWaiting<'a>(pub &'a CrKey);

impl StoreKey for DeploymentsWaiting<'_> {
    type Value = Vec<WaitingDeployment>;
    const PREFIX: &'static str = "deployments-waiting:";
    fn suffix(&self) -> String {
        self.0.to_string()
    }
}

/// The CRs that have deployments waiting on them (what the periodic re-check walks).
pub struct DeploymentWaitIndex;

impl StoreKey for DeploymentWaitIndex {
    type Value = Vec<CrKey>;
    const PREFIX: &'static str = "deployments-waiting-index";
    fn suffix(&self) -> String {
        String::new()
    }
}

/// GitHub's answer to a deployment, once given: `owner/name/runs/<run>/<environment>`.
pub struct DeploymentAnswered<'a>(pub &'a str);

impl StoreKey for DeploymentAnswered<'_> {
    type Value = Answer;
    const PREFIX: &'static str = "deployment-answered:";
    fn suffix(&self) -> String {
        self.0.to_owned()
    }
}

/// What became of the newest deliveries, oldest first (see [`crate::deliveries`]).
pub struct DeliveryLog;

impl StoreList for DeliveryLog {
    type Item = DeliveryRow;
    const PREFIX: &'static str = "delivery-log";
    fn suffix(&self) -> String {
        String::new()
    }
}

/// The newest deliveries of one outcome (the log, filtered in the store).
pub struct DeliveryOutcomeLog(pub DeliveryOutcome);

impl StoreList for DeliveryOutcomeLog {
    type Item = DeliveryRow;
    const PREFIX: &'static str = "delivery-outcome-log:";
    fn suffix(&self) -> String {
        self.0.as_str().to_owned()
    }
}

/// One delivery's journey: the audit records about it.
pub struct DeliveryJourney<'a>(pub &'a str);

impl StoreList for DeliveryJourney<'_> {
    type Item = JourneyStep;
    const PREFIX: &'static str = "delivery-journey:";
    fn suffix(&self) -> String {
        self.0.to_owned()
    }
}

/// The CRs most recently written, newest last, repeats included (the operator's page lists them).
pub struct CrIndex;

impl StoreList for CrIndex {
    type Item = CrKey;
    const PREFIX: &'static str = "cr-index";
    fn suffix(&self) -> String {
        String::new()
    }
}

/// Every key prefix, for the test below; a new key type adds its prefix here.
#[cfg(test)]
pub(crate) const ALL_PREFIXES: &[&str] = &[
    <IssueMapping<'static> as StoreKey>::PREFIX,
    <IssueCreateIntent<'static> as StoreKey>::PREFIX,
    <CommentSynced<'static> as StoreKey>::PREFIX,
    <CommentIntent<'static> as StoreKey>::PREFIX,
    <JiraTwin<'static> as StoreKey>::PREFIX,
    <JiraStatusSeen<'static> as StoreKey>::PREFIX,
    <JiraCommentSynced<'static> as StoreKey>::PREFIX,
    <JiraCommentIntent<'static> as StoreKey>::PREFIX,
    <PullLinks<'static> as StoreKey>::PREFIX,
    <MergeCommented<'static> as StoreKey>::PREFIX,
    <MergeCommentIntent<'static> as StoreKey>::PREFIX,
    <CrRecordKey<'static> as StoreKey>::PREFIX,
    <CrHistory<'static> as StoreList>::PREFIX,
    <CrApplied<'static> as StoreKey>::PREFIX,
    <CrUsage<'static> as StoreKey>::PREFIX,
    <AlertOutbox as StoreList>::PREFIX,
    <AlertDispatch as StoreKey>::PREFIX,
    <AlertQueued<'static> as StoreKey>::PREFIX,
    <AuditHead<'static> as StoreKey>::PREFIX,
    <AuditChains as StoreList>::PREFIX,
    <FailureHistory<'static> as StoreList>::PREFIX,
    <GateDecisions as StoreCounters>::PREFIX,
    <CrCheckFailures as StoreCounters>::PREFIX,
    <ApprovalLatency as StoreCounters>::PREFIX,
    <DeploymentsWaiting<'static> as StoreKey>::PREFIX,
    <DeploymentAnswered<'static> as StoreKey>::PREFIX,
    <DeploymentWaitIndex as StoreKey>::PREFIX,
    <DeliveryLog as StoreList>::PREFIX,
    <DeliveryOutcomeLog as StoreList>::PREFIX,
    <DeliveryJourney<'static> as StoreList>::PREFIX,
    <CrIndex as StoreList>::PREFIX,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_prefix_begins_another() {
        for (i, a) in ALL_PREFIXES.iter().enumerate() {
            for (j, b) in ALL_PREFIXES.iter().enumerate() {
                assert!(
                    i == j || !b.starts_with(a),
                    "prefix {a:?} begins {b:?}: their keys could collide"
                );
            }
        }
    }
}
