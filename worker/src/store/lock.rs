//! Holding a store lock for a piece of work: waiting a bounded time to get it, and keeping it alive
//! while the work runs, so that only a worker that died (or stalled past the TTL) loses it.
//!
//! [`leased`] also makes the lock's *lease* — until when the lock is surely still ours — known to
//! the work ([`remaining`]), so that nothing the work sends can outlive it, and stops the work as
//! soon as the lock is lost or about to be: a successor may hold it from then on, and must be the
//! only one acting.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use super::{LockGuard, LockName, Store, StoreError};

/// Takes `name` for `ttl`, retrying with growing naps for up to `wait`; `Ok(None)` when someone
/// else still holds it then.
///
/// # Errors
/// [`StoreError::Unavailable`] when the backend cannot be reached.
pub async fn acquire(
    store: &Store,
    name: &LockName,
    ttl: Duration,
    wait: Duration,
) -> Result<Option<LockGuard>, StoreError> {
    let deadline = tokio::time::Instant::now() + wait;
    let mut nap = Duration::from_millis(20);
    loop {
        if let Some(guard) = store.try_lock(name, ttl).await? {
            return Ok(Some(guard));
        }
        if tokio::time::Instant::now() + nap > deadline {
            return Ok(None);
        }
        tokio::time::sleep(nap).await;
        nap = (nap * 2).min(Duration::from_millis(500));
    }
}

/// Runs `work` while extending `guard`'s lock to `ttl` every third of it. A lost lock is logged;
/// the work's fenced writes refuse from then on, which is what stops it doing harm — enough only
/// for work whose every effect is a fenced store write; work with effects elsewhere (Jira) uses
/// [`leased`].
pub async fn kept_alive<F: Future>(
    store: &Store,
    guard: &LockGuard,
    ttl: Duration,
    work: F,
) -> F::Output {
    let period = ttl / 3;
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    tokio::pin!(work);
    loop {
        tokio::select! {
            result = &mut work => return result,
            _ = tick.tick() => {
                match store.extend_lock(guard, ttl).await {
                    Ok(true) => {}
                    Ok(false) => tracing::warn!(lock = %guard.key, "lock lost while working; fenced writes will refuse"),
                    Err(e) => tracing::warn!(error = %e, lock = %guard.key, "lock extension failed"),
                }
            }
        }
    }
}

/// Until when the lock a piece of work runs under is surely still held: the start of the last
/// successful extension (or of the first) plus the TTL.
#[derive(Debug)]
struct Lease {
    until: Mutex<Instant>,
}

impl Lease {
    fn until(&self) -> Instant {
        *self.until.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn set(&self, until: Instant) {
        *self.until.lock().unwrap_or_else(|p| p.into_inner()) = until;
    }

    fn remaining(&self) -> Duration {
        self.until().saturating_duration_since(Instant::now())
    }
}

tokio::task_local! {
    static LEASE: Arc<Lease>;
}

/// How long the lock the current work runs under ([`leased`]) is surely still held; `None` outside
/// such work. The Jira client reads it so that no request outlives the lock.
pub fn remaining() -> Option<Duration> {
    LEASE.try_with(|lease| lease.remaining()).ok()
}

/// The work was stopped: its lock was lost (taken over or expired), or could not be extended and
/// was about to expire. Nothing it would still have done is done; the caller retries later.
#[derive(Debug, thiserror::Error)]
#[error("lost the lock {lock}: {why}")]
pub struct LeaseLost {
    pub lock: String,
    pub why: String,
}

/// Runs `work` while it holds `guard`'s lock, stopping it (dropping it where it is) the moment it
/// no longer surely does: the lock is extended to `ttl` at once and then every third of `ttl`; an
/// extension that finds the lock gone, or failed extensions that leave less than a third of `ttl`,
/// end the work with [`LeaseLost`]. Logging and carrying on (what [`kept_alive`] does) would let a
/// successor and this work both act — post the same comment twice. Inside `work`, [`remaining`]
/// tells how long the lease still runs.
///
/// # Errors
/// [`LeaseLost`] when the work was stopped.
pub async fn leased<F: Future>(
    store: &Store,
    guard: &LockGuard,
    ttl: Duration,
    work: F,
) -> Result<F::Output, LeaseLost> {
    let lost = |why: String| LeaseLost {
        lock: guard.key.clone(),
        why,
    };
    // Extended first, so the lease is measured from a known instant (the acquire may have
    // returned some time ago) and a lock lost before the work starts stops it before anything.
    let started = Instant::now();
    match store.extend_lock(guard, ttl).await {
        Ok(true) => {}
        Ok(false) => return Err(lost("taken over or expired before the work started".into())),
        Err(e) => return Err(lost(format!("could not extend it: {e}"))),
    }
    let lease = Arc::new(Lease {
        until: Mutex::new(started + ttl),
    });
    let period = ttl / 3;
    let mut tick = tokio::time::interval_at(Instant::now() + period, period);
    let work = LEASE.scope(lease.clone(), work);
    tokio::pin!(work);
    loop {
        tokio::select! {
            result = &mut work => return Ok(result),
            _ = tick.tick() => {
                let sent = Instant::now();
                match store.extend_lock(guard, ttl).await {
                    Ok(true) => lease.set(sent + ttl),
                    Ok(false) => {
                        tracing::warn!(lock = %guard.key, "lock lost while working; work stopped");
                        return Err(lost("taken over or expired while working".into()));
                    }
                    Err(e) => {
                        let left = lease.remaining();
                        tracing::warn!(error = %e, lock = %guard.key, left_ms = left.as_millis() as u64, "lock extension failed");
                        if left <= period {
                            return Err(lost(format!(
                                "could not extend it ({e}) and it expires in {} ms",
                                left.as_millis()
                            )));
                        }
                    }
                }
            }
        }
    }
}
