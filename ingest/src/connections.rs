//! Open connections, counted so that reaching `HOOKBRIDGE_MAX_CONNECTIONS` is said in the log
//! (actix stops accepting quietly; new connections then wait in the kernel's backlog). One warning
//! per minute at most, so a flood cannot flood the log too.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use actix_web::dev::Extensions;

/// The process's open connections.
#[derive(Clone)]
pub struct Open {
    inner: Arc<Inner>,
}

struct Inner {
    count: AtomicUsize,
    cap: usize,
    /// When the cap was last reported (seconds since the epoch).
    reported_at: AtomicU64,
}

/// Lives in a connection's extensions: dropped with the connection, it counts it out.
struct Counted(Arc<Inner>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.count.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Open {
    pub fn new(cap: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                count: AtomicUsize::new(0),
                cap,
                reported_at: AtomicU64::new(0),
            }),
        }
    }

    /// Counts a new connection in (and out again when it closes).
    pub fn connected(&self, extensions: &mut Extensions) {
        let now_open = self.inner.count.fetch_add(1, Ordering::Relaxed) + 1;
        extensions.insert(Counted(self.inner.clone()));
        if now_open >= self.inner.cap {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let last = self.inner.reported_at.load(Ordering::Relaxed);
            if now >= last + 60
                && self
                    .inner
                    .reported_at
                    .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok()
            {
                tracing::warn!(
                    open = now_open,
                    cap = self.inner.cap,
                    "HOOKBRIDGE_MAX_CONNECTIONS reached: new connections wait until others close"
                );
            }
        }
    }
}
