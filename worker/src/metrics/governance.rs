//! The governance metrics: gate decisions by outcome and reason, CR checks that failed, and how
//! long CRs waited for approval — from entering the status they were approved from (`Pending
//! Approval`, say) to the approval (README, "Governance metrics").
//!
//! They are counters in the store, not in the process: `hookbridge gate` and `hookbridge cr
//! validate` are short-lived CLI runs whose in-memory counters would die with them, and several
//! workers each see only part of the CR transitions. Every process adds to the same counters
//! ([`Transaction::increment`]), and any worker's `/metrics` shows the totals. An approval's
//! latency is counted in the same transaction that records the approval, so a redelivered Jira
//! webhook cannot count it twice.

use std::time::Duration;

use prometheus::proto::{Bucket, Counter, Histogram, LabelPair, Metric, MetricFamily, MetricType};
use serde::{Deserialize, Serialize};

use crate::gate::ReasonCode;
use crate::store::keys::{ApprovalLatency, CrCheckFailures, GateDecisions};
use crate::store::{Store, StoreError, Transaction};

/// Which part of hookbridge asked the gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Asker {
    /// `hookbridge gate`.
    Gate,
    /// `hookbridge cr validate`.
    CrValidate,
    /// The GitHub deployment protection rule (a deployment answered through GitHub's callback).
    DeploymentRule,
}

impl Asker {
    fn as_str(self) -> &'static str {
        match self {
            Asker::Gate => "gate",
            Asker::CrValidate => "cr_validate",
            Asker::DeploymentRule => "deployment_rule",
        }
    }
}

/// The labels of one gate decision counter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionLabels {
    pub command: Asker,
    pub passed: bool,
    pub reason: ReasonCode,
}

/// The labels of one failed-check counter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckFailureLabels {
    pub command: Asker,
    pub reason: ReasonCode,
}

/// One cell of the approval latency histogram: the observations of one bucket (not cumulative:
/// each observation adds to exactly one cell), or the running sum and count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LatencyCell {
    /// Observations above the previous bound and at most this many seconds.
    Bucket(u64),
    /// Observations above the largest bound.
    Overflow,
    /// The sum of every observation, in milliseconds (an integer, as store counters are).
    SumMillis,
    Count,
}

/// The approval latency buckets, in seconds: a minute to a week, as people approve CRs.
pub const LATENCY_BUCKETS: [u64; 10] = [
    60, 300, 900, 1_800, 3_600, 14_400, 28_800, 86_400, 259_200, 604_800,
];

/// Records one gate decision; `checked_cr` says a CR was checked (not a deployment that needs
/// none, nor one that named none), so a failure also counts as a failed CR check.
///
/// # Errors
/// [`StoreError`] when the store cannot be written.
pub async fn record_decision(
    store: &Store,
    command: Asker,
    passed: bool,
    reason: ReasonCode,
    checked_cr: bool,
) -> Result<(), StoreError> {
    let mut tx = Transaction::new();
    count_decision(&mut tx, command, passed, reason, checked_cr)?;
    store.commit(&tx).await.map(|_| ())
}

/// Adds one gate decision to `tx` (the transaction that records it, when there is one, so that it
/// counts once however often it is retried).
///
/// # Errors
/// [`StoreError::Corrupt`] when the labels cannot be encoded.
pub fn count_decision(
    tx: &mut Transaction,
    command: Asker,
    passed: bool,
    reason: ReasonCode,
    checked_cr: bool,
) -> Result<(), StoreError> {
    tx.increment(
        &GateDecisions,
        &DecisionLabels {
            command,
            passed,
            reason,
        },
        1,
    )?;
    if checked_cr && !passed {
        tx.increment(&CrCheckFailures, &CheckFailureLabels { command, reason }, 1)?;
    }
    Ok(())
}

/// Adds one approval that took `latency` to `tx` (the transaction that records the approval).
///
/// # Errors
/// [`StoreError::Corrupt`] when the cells cannot be encoded.
pub fn observe_approval(tx: &mut Transaction, latency: Duration) -> Result<(), StoreError> {
    let seconds = latency.as_secs_f64();
    let cell = LATENCY_BUCKETS
        .iter()
        .find(|bound| seconds <= **bound as f64)
        .map_or(LatencyCell::Overflow, |bound| LatencyCell::Bucket(*bound));
    let millis = u64::try_from(latency.as_millis()).unwrap_or(u64::MAX);
    tx.increment(&ApprovalLatency, &cell, 1)?;
    tx.increment(&ApprovalLatency, &LatencyCell::SumMillis, millis)?;
    tx.increment(&ApprovalLatency, &LatencyCell::Count, 1)
}

/// The three families, read from the store.
///
/// # Errors
/// [`StoreError`] when the store cannot be read.
pub async fn families(store: &Store) -> Result<Vec<MetricFamily>, StoreError> {
    let decisions = store.counters(&GateDecisions).await?;
    let failures = store.counters(&CrCheckFailures).await?;
    let latency = store.counters(&ApprovalLatency).await?;
    Ok(vec![
        counter_family(
            "hookbridge_gate_decisions_total",
            "CR gate decisions (hookbridge gate, hookbridge cr validate) by command, decision and reason",
            decisions.into_iter().map(|(l, n)| {
                (
                    vec![
                        ("command", l.command.as_str()),
                        ("decision", if l.passed { "pass" } else { "fail" }),
                        ("reason", l.reason.as_str()),
                    ],
                    n,
                )
            }),
        ),
        counter_family(
            "hookbridge_cr_check_failures_total",
            "Change Requests that were checked and did not pass, by command and reason",
            failures.into_iter().map(|(l, n)| {
                (
                    vec![
                        ("command", l.command.as_str()),
                        ("reason", l.reason.as_str()),
                    ],
                    n,
                )
            }),
        ),
        latency_family(&latency),
    ])
}

fn counter_family<'a>(
    name: &str,
    help: &str,
    series: impl Iterator<Item = (Vec<(&'a str, &'a str)>, u64)>,
) -> MetricFamily {
    let mut metrics: Vec<Metric> = series
        .map(|(labels, value)| {
            let mut counter = Counter::new();
            counter.set_value(value as f64);
            let mut metric = Metric::from_label(label_pairs(&labels));
            metric.set_counter(counter);
            metric
        })
        .collect();
    // A stable order, so that two scrapes of the same figures read the same.
    metrics.sort_by_key(|m| {
        m.get_label()
            .iter()
            .map(|l| l.value().to_owned())
            .collect::<Vec<_>>()
    });
    family(name, help, MetricType::COUNTER, metrics)
}

fn latency_family(cells: &[(LatencyCell, u64)]) -> MetricFamily {
    let count_of = |wanted: LatencyCell| {
        cells
            .iter()
            .filter(|(cell, _)| *cell == wanted)
            .map(|(_, n)| *n)
            .sum::<u64>()
    };
    let mut cumulative = 0;
    let buckets = LATENCY_BUCKETS
        .iter()
        .map(|bound| {
            cumulative += count_of(LatencyCell::Bucket(*bound));
            let mut bucket = Bucket::new();
            bucket.set_upper_bound(*bound as f64);
            bucket.set_cumulative_count(cumulative);
            bucket
        })
        .collect();
    let mut histogram = Histogram::new();
    histogram.set_bucket(buckets);
    histogram.set_sample_count(count_of(LatencyCell::Count));
    histogram.set_sample_sum(count_of(LatencyCell::SumMillis) as f64 / 1000.0);
    let mut metric = Metric::default();
    metric.set_histogram(histogram);
    family(
        "hookbridge_cr_approval_latency_seconds",
        "time Change Requests spent in the status they were approved from, until approved",
        MetricType::HISTOGRAM,
        vec![metric],
    )
}

fn label_pairs(labels: &[(&str, &str)]) -> Vec<LabelPair> {
    labels
        .iter()
        .map(|(name, value)| {
            let mut pair = LabelPair::new();
            pair.set_name((*name).to_owned());
            pair.set_value((*value).to_owned());
            pair
        })
        .collect()
}

fn family(name: &str, help: &str, kind: MetricType, metrics: Vec<Metric>) -> MetricFamily {
    let mut family = MetricFamily::new();
    family.set_name(name.to_owned());
    family.set_help(help.to_owned());
    family.set_field_type(kind);
    family.set_metric(metrics);
    family
}
