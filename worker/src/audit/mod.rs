//! The audit trail: one JSON line per decision the system takes, in `<audit dir>/audit-YYYY-MM-DD.jsonl`
//! (a file per UTC day), tamper-evident.
//!
//! **Chains.** Every process that writes (a worker, `hookbridge run`, one CLI invocation) writes its
//! own hash chain, named in each record (`chain`): record *n* carries the SHA-256 of the chain's
//! record *n − 1* (`prev`) and its position (`seq`). Chains of several processes interleave in the
//! day's file — each line is one `write` on an `O_APPEND` file, so lines never mix — but no two
//! processes ever extend the same chain, so no coordination between them is needed, on one machine
//! or many. Editing, removing, inserting or reordering records of a chain breaks its links.
//!
//! **Heads.** Removing a chain's newest records leaves a valid shorter chain, so each chain's head
//! (last `seq` and hash) is also kept outside the files, in the store (`REDIS_URL` or the embedded
//! store), updated after every record; [`verify`] compares the files with the heads. A process
//! killed between writing a record and updating its head leaves that one record unconfirmed, which
//! `verify` reports like any other mismatch (it cannot tell the two apart).
//!
//! Each record is synced to disk before [`AuditLog::record`] returns.
//!
//! **Journeys.** A record about a delivery (an id `delivery`, given or taken from the work it
//! runs in, see [`within_delivery`]) is also copied, with the head, to that delivery's journey in
//! the store: the operator's page reads one delivery's story there (see [`crate::deliveries`]).
//!
//! # Layout
//! - [`record`]: the line ([`AuditRecord`]), what callers pass ([`Entry`]), file names.
//! - [`verify`]: checking every chain of a trail against the store.

pub mod record;
pub mod verify;

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{NaiveDate, Utc};
use rand::RngExt;
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

pub use record::{AuditRecord, Entry};
use record::{GENESIS, file_name, line_hash};

use crate::deliveries::{self, JourneyStep};
use crate::store::keys::{AuditChains, AuditHead};
use crate::store::{Store, Transaction};

/// How many chain names the store remembers (each process that ever wrote adds one); the oldest
/// are forgotten first, long after their files have passed any retention.
pub const CHAINS_KEPT: usize = 100_000;

/// A chain's newest record, as kept in the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainHead {
    pub seq: u64,
    pub hash: String,
    /// The file the record is in.
    pub file: String,
}

/// Why an audit record could not be written.
#[derive(Debug, thiserror::Error)]
#[error("audit trail {path}: {reason}")]
pub struct AuditError {
    path: String,
    reason: String,
}

tokio::task_local! {
    /// The delivery whose work is running, when it is (see [`within_delivery`]).
    static CURRENT_DELIVERY: String;
}

/// Runs `work` as the work of `delivery`: every record written meanwhile without a delivery id
/// gets this one (a Jira call, an alert, a decision), so the delivery's journey holds every step
/// its work took (see [`crate::deliveries`]).
pub async fn within_delivery<F: std::future::Future>(delivery: &str, work: F) -> F::Output {
    CURRENT_DELIVERY.scope(delivery.to_owned(), work).await
}

/// Appends records to this process's chain; cheap to clone (clones share the chain).
#[derive(Clone)]
pub struct AuditLog {
    inner: Arc<Inner>,
}

struct Inner {
    dir: PathBuf,
    chain: String,
    /// The process itself, as the actor of records nobody else caused.
    actor: String,
    heads: Option<Store>,
    state: Mutex<ChainState>,
}

#[derive(Default)]
struct ChainState {
    seq: u64,
    last_hash: Option<String>,
    open: Option<(NaiveDate, Arc<File>)>,
    /// The chain's name is in the store's list of chains.
    registered: bool,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("dir", &self.inner.dir)
            .field("chain", &self.inner.chain)
            .finish_non_exhaustive()
    }
}

/// This machine's name, for chain names (`/proc/sys/kernel/hostname`, else `HOSTNAME`).
fn host_name() -> String {
    let raw = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_default();
    let clean: String = raw
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.'))
        .take(63)
        .collect();
    if clean.is_empty() {
        "host".into()
    } else {
        clean
    }
}

impl AuditLog {
    /// A new chain for this process in `dir` (created on first write). `role` names the writer
    /// (`worker`, `run`, `cli`); the chain is `<role>.<host>.<pid>.<random>`, so no two processes,
    /// here or on another machine, share one. Heads go to `heads` (the worker's store).
    pub fn open(dir: &Path, role: &str, heads: Option<Store>) -> Self {
        let chain = format!(
            "{role}.{}.{}.{}",
            host_name(),
            std::process::id(),
            hex::encode(rand::rng().random::<[u8; 4]>())
        );
        Self {
            inner: Arc::new(Inner {
                dir: dir.to_owned(),
                actor: format!("hookbridge-{role}"),
                chain,
                heads,
                state: Mutex::new(ChainState::default()),
            }),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    pub fn chain(&self) -> &str {
        &self.inner.chain
    }

    /// Appends `entry` to this process's chain, synced to disk, and records the chain's new head
    /// in the store. Records of one process are chained in the order their calls complete.
    ///
    /// # Errors
    /// [`AuditError`] when the record cannot be written or synced. A head that cannot be stored is
    /// logged, not returned: the record itself is safe, and the next record that reaches the store
    /// stores the chain's head (and name) anew — each head replaces the last — so `audit verify`
    /// flags the chain only until then (a worker writes such a record when its store answers
    /// again, see [`crate::store::watch`]).
    pub async fn record(&self, mut entry: Entry) -> Result<AuditRecord, AuditError> {
        if !entry.ids.contains_key("delivery")
            && let Ok(delivery) = CURRENT_DELIVERY.try_with(Clone::clone)
        {
            entry.ids.insert("delivery".to_owned(), delivery);
        }
        let inner = &self.inner;
        let mut state = inner.state.lock().await;
        let now = Utc::now();
        let record = AuditRecord {
            ts: now,
            chain: inner.chain.clone(),
            seq: state.seq + 1,
            prev: state
                .last_hash
                .clone()
                .unwrap_or_else(|| GENESIS.to_owned()),
            actor: entry.actor.unwrap_or_else(|| inner.actor.clone()),
            action: entry.action,
            subject: entry.subject,
            outcome: entry.outcome,
            ids: entry.ids,
            detail: entry.detail,
        };
        let mut line = serde_json::to_vec(&record).map_err(|e| self.error(&e))?;
        let hash = line_hash(&line);
        line.push(b'\n');
        let day = now.date_naive();
        let file = match &state.open {
            Some((open_day, file)) if *open_day == day => file.clone(),
            _ => {
                let file = Arc::new(self.open_day(day)?);
                state.open = Some((day, file.clone()));
                file
            }
        };
        let path = inner.dir.join(file_name(day));
        tokio::task::spawn_blocking(move || {
            let mut handle: &File = &file;
            handle.write_all(&line)?;
            handle.sync_data()
        })
        .await
        .map_err(|e| self.error(&e))?
        .map_err(|e| AuditError {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        state.seq = record.seq;
        state.last_hash = Some(hash.clone());
        let head = ChainHead {
            seq: record.seq,
            hash,
            file: file_name(day),
        };
        let step = record.ids.get("delivery").map(|delivery| {
            let step = JourneyStep::new(
                record.ts,
                &record.action,
                &record.outcome,
                &record.subject,
                &record.actor,
                &record.detail,
            );
            (delivery.as_str(), step)
        });
        if self.store_head(&head, !state.registered, step).await {
            state.registered = true;
        }
        Ok(record)
    }

    fn open_day(&self, day: NaiveDate) -> Result<File, AuditError> {
        let path = self.inner.dir.join(file_name(day));
        std::fs::create_dir_all(&self.inner.dir)
            .and_then(|()| {
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)
            })
            .map_err(|e| AuditError {
                path: path.display().to_string(),
                reason: e.to_string(),
            })
    }

    /// Records `head` (and, when `register`, the chain's name, and the record's step of a
    /// delivery's journey) in the store; whether it did.
    async fn store_head(
        &self,
        head: &ChainHead,
        register: bool,
        step: Option<(&str, JourneyStep)>,
    ) -> bool {
        let Some(store) = &self.inner.heads else {
            return false;
        };
        let chain = self.inner.chain.as_str();
        let mut tx = Transaction::new();
        let result = async {
            tx.put(&AuditHead(chain), head, None)?;
            if register {
                tx.push(&AuditChains, &chain.to_owned(), Some(CHAINS_KEPT), None)?;
            }
            if let Some((delivery, step)) = &step {
                deliveries::add_step(&mut tx, delivery, step)?;
            }
            store.commit(&tx).await
        }
        .await;
        match result {
            Ok(_) => true,
            Err(e) => {
                tracing::warn!(error = %e, chain, seq = head.seq,
                    "could not record the audit chain's head in the store; the chain's next record \
                     stores it once the store answers again (until then `audit verify` flags this chain)");
                false
            }
        }
    }

    fn error(&self, e: &dyn std::fmt::Display) -> AuditError {
        AuditError {
            path: self.inner.dir.display().to_string(),
            reason: e.to_string(),
        }
    }
}
