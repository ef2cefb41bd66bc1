//! The pace of requests to Jira, shared by every in-flight message of a process — and, through the
//! store, by every worker process.
//!
//! Jira Cloud limits API-token traffic per endpoint (burst limits) and answers 429 with
//! `Retry-After` beyond them. Sending as fast as messages arrive and backing off on 429 turns many
//! in-flight messages into a 429 storm, so requests are *paced* instead: the requests to one
//! endpoint leave one at a time, `1 / rate` apart, in the order they asked (a fair async mutex per
//! endpoint is the queue). Only the request at the head of a queue holds a slot, so a change of rate
//! or a pause applies at once to everything still waiting — nothing is booked far ahead at a stale
//! rate. With a store attached, the head takes its slot from the store's schedule
//! ([`Store::reserve_slot`]), so N processes together keep one rate; without one (or while the store
//! is unreachable) the spacing is local to the process.
//!
//! The rate adapts to Jira (AIMD, as TCP does):
//! - a 429 pauses every request of the process until `Retry-After` has passed (and, through
//!   [`Store::hold_off`], every other process too), and lowers the rate to 70 %, at most once per
//!   [`DECREASE_COOLDOWN`]: the 429s of requests that were already on the wire are one event, not
//!   many (counting each would drive the rate to the floor in one burst);
//! - `X-RateLimit-NearLimit: true` lowers it to 90 %, at most once per [`DECREASE_COOLDOWN`];
//! - successful answers win the rate back linearly, [`RECOVERY_PER_SEC`] of the configured rate per
//!   second, up to the configured rate.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::store::Store;

/// The slowest the limiter ever goes, in requests per second per endpoint.
const FLOOR_RATE: f64 = 1.0;
/// Rate multiplier after a 429.
const THROTTLED_FACTOR: f64 = 0.7;
/// Rate multiplier after `X-RateLimit-NearLimit: true`.
const NEAR_LIMIT_FACTOR: f64 = 0.9;
/// Share of the configured rate won back per second of successful answers.
pub const RECOVERY_PER_SEC: f64 = 0.03;
/// Signals of the same kind closer together than this lower the rate once.
pub const DECREASE_COOLDOWN: Duration = Duration::from_secs(1);

/// Request pacing per endpoint (see the module docs).
pub struct Limiter {
    configured: f64,
    shared: Option<Store>,
    state: Mutex<State>,
    /// One queue per endpoint; the value is the slot its last request took.
    queues: Mutex<HashMap<&'static str, Arc<tokio::sync::Mutex<Option<Instant>>>>>,
}

struct State {
    /// Requests per second per endpoint now.
    effective: f64,
    /// No request before this (after a 429).
    not_before: Instant,
    /// The last rate decrease for a 429, and for `NearLimit`.
    last_throttled: Option<Instant>,
    last_near_limit: Option<Instant>,
    /// Recovery is credited for the time since this instant.
    credited_until: Instant,
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
        let now = Instant::now();
        Self {
            configured: rate,
            shared,
            state: Mutex::new(State {
                effective: rate,
                not_before: now,
                last_throttled: None,
                last_near_limit: None,
                credited_until: now,
            }),
            queues: Mutex::new(HashMap::new()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn queue(&self, endpoint: &'static str) -> Arc<tokio::sync::Mutex<Option<Instant>>> {
        let mut queues = self.queues.lock().unwrap_or_else(|p| p.into_inner());
        queues.entry(endpoint).or_default().clone()
    }

    /// The rate (requests per second per endpoint) the limiter paces at now.
    pub fn effective_rate(&self) -> f64 {
        self.state().effective
    }

    /// The rate it was configured with, which it recovers to.
    pub fn configured_rate(&self) -> f64 {
        self.configured
    }

    /// Waits until a request to `endpoint` may be sent. Callers are served in the order they
    /// called; dropping the future gives the place up.
    pub async fn acquire(&self, endpoint: &'static str) {
        let asked = Instant::now();
        let queue = self.queue(endpoint);
        let mut last_slot = queue.lock().await;
        loop {
            let slot = self.next_slot(endpoint, *last_slot).await;
            tokio::time::sleep_until(slot).await;
            // A 429 that arrived while we waited moved `not_before` (and the shared schedule):
            // wait for it, with a fresh slot.
            if self.state().not_before <= Instant::now() {
                // The planned instant, not the wake-up time: timer lateness must not add up
                // into a slower rate.
                *last_slot = Some(slot);
                crate::metrics::pipeline::limiter_waited(endpoint, asked.elapsed());
                return;
            }
        }
    }

    /// When the head of `endpoint`'s queue may go: its slot in the shared schedule, or one
    /// interval after the last local slot (now, if that has passed); never before `not_before`.
    async fn next_slot(&self, endpoint: &'static str, last_slot: Option<Instant>) -> Instant {
        let (interval, not_before) = {
            let state = self.state();
            (
                Duration::from_secs_f64(1.0 / state.effective),
                state.not_before,
            )
        };
        let now = Instant::now();
        let shared = match &self.shared {
            Some(store) => match store
                .reserve_slot(&format!("jira:{endpoint}"), interval)
                .await
            {
                Ok(wait) => Some(Instant::now() + wait),
                Err(e) => {
                    tracing::debug!(error = %e, "shared rate schedule unavailable; pacing locally");
                    None
                }
            },
            None => None,
        };
        let slot =
            shared.unwrap_or_else(|| last_slot.map_or(now, |last| (last + interval).max(now)));
        slot.max(not_before)
    }

    /// Jira answered 429 (or 503 with `Retry-After`): nobody sends before `retry_after` has
    /// passed, and the rate drops (once per [`DECREASE_COOLDOWN`]).
    pub async fn throttled(&self, endpoint: &'static str, retry_after: Duration) {
        {
            let mut state = self.state();
            let now = Instant::now();
            state.not_before = state.not_before.max(now + retry_after);
            let same_event = state
                .last_throttled
                .is_some_and(|at| now.duration_since(at) < DECREASE_COOLDOWN);
            if !same_event {
                state.effective = (state.effective * THROTTLED_FACTOR).max(FLOOR_RATE);
                state.last_throttled = Some(now);
                state.credited_until = now;
                tracing::warn!(
                    endpoint,
                    retry_after_secs = retry_after.as_secs_f64(),
                    rate = state.effective,
                    "Jira throttled us; slowing down"
                );
            }
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
        let now = Instant::now();
        if near_limit {
            let recently = state
                .last_near_limit
                .is_some_and(|at| now.duration_since(at) < DECREASE_COOLDOWN);
            if !recently {
                state.effective = (state.effective * NEAR_LIMIT_FACTOR).max(FLOOR_RATE);
                state.last_near_limit = Some(now);
                state.credited_until = now;
            }
            return;
        }
        let elapsed = now.saturating_duration_since(state.credited_until);
        state.effective = (state.effective
            + self.configured * RECOVERY_PER_SEC * elapsed.as_secs_f64())
        .min(self.configured);
        state.credited_until = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-6
    }

    #[tokio::test(start_paused = true)]
    async fn requests_to_one_endpoint_are_spaced_by_the_rate() {
        let limiter = Limiter::new(10.0, None);
        let started = Instant::now();
        for _ in 0..5 {
            limiter.acquire("create").await;
        }
        // Slots at 0, 100, 200, 300, 400 ms.
        assert_eq!(started.elapsed(), Duration::from_millis(400));
        // Another endpoint has its own queue.
        let before = Instant::now();
        limiter.acquire("comment").await;
        assert_eq!(before.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_callers_leave_one_interval_apart_in_order() {
        let limiter = Arc::new(Limiter::new(100.0, None));
        let started = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..50u32 {
            let limiter = limiter.clone();
            tasks.spawn(async move {
                limiter.acquire("create").await;
                (i, started.elapsed())
            });
            // Let task `i` queue before task `i + 1`.
            tokio::task::yield_now().await;
        }
        let mut times = Vec::new();
        while let Some(result) = tasks.join_next().await {
            times.push(result.unwrap());
        }
        times.sort();
        for (i, at) in &times {
            assert_eq!(*at, Duration::from_millis(10) * *i, "caller {i}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_429_pauses_waiters_already_queued() {
        let limiter = Arc::new(Limiter::new(10.0, None));
        limiter.acquire("create").await;
        // A waiter queued for the next slot (100 ms from now)…
        let waiter = {
            let limiter = limiter.clone();
            tokio::spawn(async move {
                let started = Instant::now();
                limiter.acquire("create").await;
                started.elapsed()
            })
        };
        tokio::task::yield_now().await;
        // …then Jira says "wait 2 s" before that slot comes.
        tokio::time::advance(Duration::from_millis(50)).await;
        limiter.throttled("create", Duration::from_secs(2)).await;
        let waited = waiter.await.unwrap();
        assert!(waited >= Duration::from_millis(2050), "{waited:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_of_429s_lowers_the_rate_once_and_it_recovers_over_time() {
        let limiter = Limiter::new(100.0, None);
        for _ in 0..20 {
            limiter.throttled("create", Duration::from_secs(1)).await;
        }
        assert!(close(limiter.effective_rate(), 70.0));
        let started = Instant::now();
        limiter.acquire("comment").await;
        assert!(started.elapsed() >= Duration::from_secs(1));
        // A later, separate 429 lowers it again.
        tokio::time::advance(DECREASE_COOLDOWN).await;
        limiter.throttled("create", Duration::from_secs(1)).await;
        assert!(close(limiter.effective_rate(), 49.0));
        // 3 % of 100 per second of successful answers: 10 s win back 30.
        for _ in 0..10 {
            tokio::time::advance(Duration::from_secs(1)).await;
            limiter.answered(false);
        }
        assert!(close(limiter.effective_rate(), 79.0));
        tokio::time::advance(Duration::from_secs(60)).await;
        limiter.answered(false);
        assert!(close(limiter.effective_rate(), 100.0));
    }

    #[tokio::test(start_paused = true)]
    async fn the_rate_never_goes_below_the_floor() {
        let limiter = Limiter::new(2.0, None);
        for _ in 0..10 {
            limiter.throttled("create", Duration::ZERO).await;
            tokio::time::advance(DECREASE_COOLDOWN).await;
        }
        assert!(close(limiter.effective_rate(), FLOOR_RATE));
        assert!(close(
            Limiter::new(f64::NAN, None).effective_rate(),
            FLOOR_RATE
        ));
        assert!(close(Limiter::new(0.0, None).configured_rate(), FLOOR_RATE));
    }

    #[tokio::test(start_paused = true)]
    async fn near_limit_lowers_the_rate_once_per_second() {
        let limiter = Limiter::new(100.0, None);
        limiter.answered(true);
        limiter.answered(true);
        assert!(close(limiter.effective_rate(), 90.0));
        tokio::time::advance(Duration::from_millis(1100)).await;
        limiter.answered(true);
        assert!(close(limiter.effective_rate(), 81.0));
    }

    #[tokio::test(start_paused = true)]
    async fn a_dropped_waiter_gives_its_place_up() {
        let limiter = Arc::new(Limiter::new(1.0, None));
        limiter.acquire("create").await;
        let abandoned = {
            let limiter = limiter.clone();
            tokio::spawn(async move { limiter.acquire("create").await })
        };
        tokio::task::yield_now().await;
        abandoned.abort();
        let _ = abandoned.await;
        // The next caller waits only for its own slot, one interval after the last request.
        let started = Instant::now();
        limiter.acquire("create").await;
        assert_eq!(started.elapsed(), Duration::from_secs(1));
    }
}
