//! The pace of requests to Jira, shared by every in-flight message of a process — and, through the
//! store, by every worker process.
//!
//! Jira Cloud limits API-token traffic per endpoint (burst limits) and answers 429 with
//! `Retry-After` beyond them. Sending as fast as messages arrive and backing off on 429 turns many
//! in-flight messages into a 429 storm, so requests are *paced* instead: each endpoint has a
//! schedule of slots `1 / rate` apart, and a request waits for its slot. With a store attached the
//! schedule lives there ([`Store::reserve_slot`]), so N processes together keep one rate; without
//! one (or while the store is unreachable) the schedule is local to the process.
//!
//! The rate adapts to Jira: a 429 moves every schedule of the process past `Retry-After` (and the
//! shared one, so other processes wait too) and lowers the rate to 70 %; `X-RateLimit-NearLimit`
//! lowers it to 90 %; each successful answer wins back a little (additive increase) up to the
//! configured rate.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::store::Store;

/// The slowest the limiter ever goes, in requests per second per endpoint.
const FLOOR_RATE: f64 = 1.0;
/// Rate multiplier after a 429.
const THROTTLED_FACTOR: f64 = 0.7;
/// Rate multiplier after `X-RateLimit-NearLimit: true`.
const NEAR_LIMIT_FACTOR: f64 = 0.9;
/// Share of the configured rate won back by each successful answer.
const RECOVERY_STEP: f64 = 0.002;

/// Request pacing per endpoint (see the module docs).
pub struct Limiter {
    configured: f64,
    shared: Option<Store>,
    state: Mutex<State>,
}

struct State {
    /// Requests per second per endpoint now.
    effective: f64,
    /// Next free slot of each endpoint's local schedule.
    next_free: HashMap<&'static str, Instant>,
    /// No request before this (after a 429).
    not_before: Instant,
    /// The last time the rate was lowered for `NearLimit`, so a burst of such answers lowers it once.
    last_near_limit: Option<Instant>,
}

impl std::fmt::Debug for Limiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limiter")
            .field("configured", &self.configured)
            .field("effective", &self.effective_rate())
            .field("shared", &self.shared.is_some())
            .finish()
    }
}

impl Limiter {
    /// A limiter at `rate` requests per second per endpoint; `shared` makes the schedule common
    /// to every process using the same store.
    pub fn new(rate: f64, shared: Option<Store>) -> Self {
        let rate = if rate.is_finite() {
            rate.max(FLOOR_RATE)
        } else {
            FLOOR_RATE
        };
        Self {
            configured: rate,
            shared,
            state: Mutex::new(State {
                effective: rate,
                next_free: HashMap::new(),
                not_before: Instant::now(),
                last_near_limit: None,
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The rate (requests per second per endpoint) the limiter paces at now.
    pub fn effective_rate(&self) -> f64 {
        self.state().effective
    }

    /// Waits until a request to `endpoint` may be sent.
    pub async fn acquire(&self, endpoint: &'static str) {
        let (interval, not_before) = {
            let state = self.state();
            (
                Duration::from_secs_f64(1.0 / state.effective),
                state.not_before,
            )
        };
        let wait = match &self.shared {
            Some(store) => match store
                .reserve_slot(&format!("jira:{endpoint}"), interval)
                .await
            {
                Ok(wait) => Some(wait),
                Err(e) => {
                    tracing::debug!(error = %e, "shared rate schedule unavailable; pacing locally");
                    None
                }
            },
            None => None,
        };
        let start = match wait {
            Some(wait) => Instant::now() + wait,
            None => {
                let mut state = self.state();
                let now = Instant::now();
                let slot = state
                    .next_free
                    .get(endpoint)
                    .copied()
                    .unwrap_or(now)
                    .max(now);
                state.next_free.insert(endpoint, slot + interval);
                slot
            }
        };
        tokio::time::sleep_until(start.max(not_before)).await;
    }

    /// Jira answered 429 (or 503 with `Retry-After`): nobody sends before `retry_after` has
    /// passed, and the rate drops.
    pub async fn throttled(&self, endpoint: &'static str, retry_after: Duration) {
        {
            let mut state = self.state();
            let until = Instant::now() + retry_after;
            state.not_before = state.not_before.max(until);
            state.effective = (state.effective * THROTTLED_FACTOR).max(FLOOR_RATE);
            tracing::warn!(
                endpoint,
                retry_after_secs = retry_after.as_secs_f64(),
                rate = state.effective,
                "Jira throttled us; slowing down"
            );
        }
        if let Some(store) = &self.shared
            && let Err(e) = store
                .hold_off(&format!("jira:{endpoint}"), retry_after)
                .await
        {
            tracing::debug!(error = %e, "could not share the hold-off");
        }
    }

    /// A successful answer; `near_limit` is Jira's `X-RateLimit-NearLimit`.
    pub fn answered(&self, near_limit: bool) {
        let mut state = self.state();
        if near_limit {
            let now = Instant::now();
            let recently = state
                .last_near_limit
                .is_some_and(|at| now.duration_since(at) < Duration::from_secs(1));
            if !recently {
                state.effective = (state.effective * NEAR_LIMIT_FACTOR).max(FLOOR_RATE);
                state.last_near_limit = Some(now);
            }
        } else {
            state.effective =
                (state.effective + self.configured * RECOVERY_STEP).min(self.configured);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn requests_to_one_endpoint_are_spaced_by_the_rate() {
        let limiter = Limiter::new(10.0, None);
        let started = Instant::now();
        for _ in 0..5 {
            limiter.acquire("create").await;
        }
        // Slots at 0, 100, 200, 300, 400 ms.
        assert_eq!(started.elapsed(), Duration::from_millis(400));
        // Another endpoint has its own schedule.
        let before = Instant::now();
        limiter.acquire("comment").await;
        assert_eq!(before.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn a_429_holds_everyone_back_and_slows_down_then_recovers() {
        let limiter = Limiter::new(100.0, None);
        limiter.throttled("create", Duration::from_secs(2)).await;
        assert!((limiter.effective_rate() - 70.0).abs() < 1e-9);
        let started = Instant::now();
        limiter.acquire("comment").await;
        assert!(started.elapsed() >= Duration::from_secs(2));
        for _ in 0..1000 {
            limiter.answered(false);
        }
        assert!((limiter.effective_rate() - 100.0).abs() < 1e-9);
    }

    #[tokio::test(start_paused = true)]
    async fn near_limit_lowers_the_rate_once_per_second() {
        let limiter = Limiter::new(100.0, None);
        limiter.answered(true);
        limiter.answered(true);
        assert!((limiter.effective_rate() - 90.0).abs() < 1e-9);
        tokio::time::advance(Duration::from_millis(1100)).await;
        limiter.answered(true);
        assert!((limiter.effective_rate() - 81.0).abs() < 1e-9);
    }
}
