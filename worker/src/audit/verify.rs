//! Checking an audit trail: every chain's records in order and linked, and every chain's newest
//! record the one the store remembers.
//!
//! What each kind of tampering looks like, and where it is reported:
//! - **a byte changed** in a record: the next record's `prev` (or, for a chain's newest record,
//!   the head in the store) no longer matches its hash — reported at the changed line; a line
//!   that no longer parses is reported as such;
//! - **a record removed**: its chain skips a `seq` — reported where it is missing;
//! - **a record inserted**: a `seq` repeats or runs backwards, or its link does not match, or its
//!   chain is unknown to the store — reported at the inserted line;
//! - **two records swapped**: their chain's `seq` runs backwards — reported at both lines;
//! - **the newest records removed** (truncation), or a whole day's file: the store's head is
//!   ahead of what the files hold — reported after the chain's last line left.
//!
//! Files deleted by retention are the *oldest* days: a chain may start past `seq` 1 in the oldest
//! file present, and a chain whose head is in a file older than that has simply expired. Records of
//! different chains have no order between them, so swapping two lines of different chains is not
//! a change to any chain.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use chrono::NaiveDate;
use serde::Serialize;

use super::record::{AuditRecord, GENESIS, file_day, line_hash};
use super::{CHAINS_KEPT, ChainHead};
use crate::store::keys::{AuditChains, AuditHead};
use crate::store::{Store, StoreError};

/// One finding: where, and what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub file: String,
    /// 1-based; for a truncated chain, the line after which records are missing (0: none left).
    pub line: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chain: Option<String>,
    pub problem: String,
}

/// The result of [`verify`].
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub ok: bool,
    pub files: usize,
    pub records: usize,
    pub chains: usize,
    /// Chains whose records are all in files already deleted by retention.
    pub expired_chains: usize,
    pub problems: Vec<Problem>,
}

/// Why a trail could not be checked at all.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("cannot read the audit trail in {dir}: {reason}")]
    Read { dir: String, reason: String },
    #[error("cannot read the audit chain heads from the store: {0}")]
    Store(#[from] StoreError),
}

/// A record as found: where, its hash, its place in its chain.
struct Found {
    file: String,
    line: usize,
    seq: u64,
    prev: String,
    hash: String,
}

/// Checks every chain in `dir` against the heads kept in `store`.
///
/// # Errors
/// [`VerifyError`] when the directory or the store cannot be read (tampering is a [`Problem`],
/// not an error).
pub async fn verify(dir: &Path, store: &Store) -> Result<Report, VerifyError> {
    let mut report = Report::default();
    let files = trail_files(dir)?;
    report.files = files.len();
    let oldest = files.first().map(|(day, _)| *day);
    let mut chains: HashMap<String, Vec<Found>> = HashMap::new();
    let mut chain_order: Vec<String> = Vec::new();
    for (day, name) in &files {
        let text = std::fs::read(dir.join(name)).map_err(|e| VerifyError::Read {
            dir: dir.display().to_string(),
            reason: format!("{name}: {e}"),
        })?;
        for (i, line) in text.split(|b| *b == b'\n').enumerate() {
            if line.is_empty() {
                continue;
            }
            let at = |problem: String, chain: Option<String>| Problem {
                file: name.clone(),
                line: i + 1,
                chain,
                problem,
            };
            let record: AuditRecord = match serde_json::from_slice(line) {
                Ok(r) => r,
                Err(e) => {
                    report.problems.push(at(
                        format!("not a valid audit record (changed after it was written?): {e}"),
                        None,
                    ));
                    continue;
                }
            };
            report.records += 1;
            if record.ts.date_naive() != *day {
                report.problems.push(at(
                    format!(
                        "record dated {} in the file of {day} (moved from another file?)",
                        record.ts.date_naive()
                    ),
                    Some(record.chain.clone()),
                ));
            }
            let found = Found {
                file: name.clone(),
                line: i + 1,
                seq: record.seq,
                prev: record.prev,
                hash: line_hash(line),
            };
            chains
                .entry(record.chain.clone())
                .or_insert_with(|| {
                    chain_order.push(record.chain.clone());
                    Vec::new()
                })
                .push(found);
        }
    }
    let heads = heads(store).await?;
    report.chains = chain_order.len();
    for name in &chain_order {
        let records = &chains[name];
        let head = heads.get(name);
        let starts_in_oldest =
            records.first().and_then(|r| file_day(&r.file)) == oldest && oldest.is_some();
        check_chain(name, records, head, starts_in_oldest, &mut report.problems);
    }
    for (name, head) in &heads {
        if chains.contains_key(name) {
            continue;
        }
        let expired = match (file_day(&head.file), oldest) {
            (Some(head_day), Some(oldest)) => head_day < oldest,
            // No file at all: every chain the store knows is missing.
            (_, None) => false,
            (None, Some(_)) => false,
        };
        if expired {
            report.expired_chains += 1;
        } else {
            report.problems.push(Problem {
                file: head.file.clone(),
                line: 0,
                chain: Some(name.clone()),
                problem: format!(
                    "all {} records of this chain are missing (the store's head is seq {})",
                    head.seq, head.seq
                ),
            });
        }
    }
    report.ok = report.problems.is_empty();
    Ok(report)
}

/// The trail's files, oldest day first.
fn trail_files(dir: &Path) -> Result<Vec<(NaiveDate, String)>, VerifyError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(VerifyError::Read {
                dir: dir.display().to_string(),
                reason: e.to_string(),
            });
        }
    };
    let mut files: Vec<(NaiveDate, String)> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            file_day(&name).map(|day| (day, name))
        })
        .collect();
    files.sort();
    Ok(files)
}

/// Every chain's head from the store.
async fn heads(store: &Store) -> Result<BTreeMap<String, ChainHead>, StoreError> {
    let mut heads = BTreeMap::new();
    for name in store.list(&AuditChains, 0, CHAINS_KEPT).await? {
        if let Some(head) = store.read(&AuditHead(&name)).await? {
            heads.insert(name, head);
        }
    }
    Ok(heads)
}

/// Checks one chain's records (in file order) against each other and against its head.
fn check_chain(
    name: &str,
    records: &[Found],
    head: Option<&ChainHead>,
    starts_in_oldest: bool,
    problems: &mut Vec<Problem>,
) {
    let problem = |r: &Found, text: String| Problem {
        file: r.file.clone(),
        line: r.line,
        chain: Some(name.to_owned()),
        problem: text,
    };
    let Some(head) = head else {
        if let Some(first) = records.first() {
            problems.push(problem(
                first,
                "this chain is unknown to the store (records inserted, or written with another store)"
                    .into(),
            ));
        }
        return;
    };
    // Order: each record's seq follows the previous one.
    let mut ordered = true;
    for (i, r) in records.iter().enumerate() {
        match i.checked_sub(1).map(|p| &records[p]) {
            None if r.seq == 1 && r.prev != GENESIS => {
                problems.push(problem(
                    r,
                    "the chain's first record does not start a chain".into(),
                ));
            }
            None if r.seq > 1 && !starts_in_oldest => problems.push(problem(
                r,
                format!(
                    "records 1 to {} of this chain are missing (removed, or a file deleted)",
                    r.seq - 1
                ),
            )),
            None => {}
            Some(before) if r.seq == before.seq + 1 => {}
            Some(before) if r.seq > before.seq + 1 => {
                ordered = false;
                problems.push(problem(
                    r,
                    format!(
                        "records {} to {} of this chain are missing between line {} of {} and \
                         this line (removed)",
                        before.seq + 1,
                        r.seq - 1,
                        before.line,
                        before.file
                    ),
                ));
            }
            Some(before) => {
                ordered = false;
                problems.push(problem(
                    r,
                    format!(
                        "seq {} comes after seq {} (line {} of {}): records swapped or inserted",
                        r.seq, before.seq, before.line, before.file
                    ),
                ));
            }
        }
    }
    // Links: record i's hash is record i+1's prev, and the last one's is the head's. A broken link
    // means one of its two ends changed: the later one when its own outgoing link is broken too.
    let mut links: Vec<bool> = records
        .windows(2)
        .map(|pair| pair[1].seq != pair[0].seq + 1 || pair[1].prev == pair[0].hash)
        .collect();
    let last = records.last();
    let tail_matches_head = last.is_some_and(|l| l.seq == head.seq && l.hash == head.hash);
    if let Some(last) = last {
        if last.seq == head.seq {
            links.push(tail_matches_head);
        } else if last.seq < head.seq {
            links.push(true);
            problems.push(problem(
                last,
                format!(
                    "records {} to {} of this chain are missing after this line (truncated; \
                     the store's head is seq {} in {})",
                    last.seq + 1,
                    head.seq,
                    head.seq,
                    head.file
                ),
            ));
        } else {
            links.push(true);
            problems.push(problem(
                last,
                format!(
                    "seq {} is past the chain's last confirmed record (seq {}): appended by \
                     someone else, or its writer died before confirming it",
                    last.seq, head.seq
                ),
            ));
        }
    }
    if !ordered {
        // Reordered records break links by themselves; the order problems already say where.
        return;
    }
    let mut changed: Vec<usize> = Vec::new();
    for (i, ok) in links.iter().enumerate() {
        if *ok {
            continue;
        }
        let later_also_broken = links.get(i + 1).is_some_and(|next| !next);
        let culprit = if later_also_broken { i + 1 } else { i };
        if !changed.contains(&culprit) {
            changed.push(culprit);
        }
    }
    for i in changed {
        problems.push(problem(
            &records[i],
            "changed after it was written (its hash no longer matches the chain's link to it)"
                .into(),
        ));
    }
}
