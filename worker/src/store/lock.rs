//! Holding a store lock for a piece of work: waiting a bounded time to get it, and keeping it alive
//! while the work runs, so that only a worker that died (or stalled past the TTL) loses it.

use std::future::Future;
use std::time::Duration;

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
/// the work's fenced writes refuse from then on, which is what stops it doing harm.
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
