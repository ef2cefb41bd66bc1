//! Whether the store answers at all. A store that cannot be reached (Redis down or restarting, the
//! embedded file locked by another process past its busy timeout) is not one message's failure but
//! every message's: spending each message's attempts on it would dead-letter the backlog of a
//! 30-second Redis restart. So a failed attempt made while the store does not answer its probe
//! ([`Store::check_ready`](super::Store::check_ready): Redis `PING`, a read of the SQLite file)
//! marks the store down, the message waits without using up an attempt
//! ([`crate::handler::Outcome::Busy`]), and the consumer takes no work; it probes the store every
//! [`PROBE_EVERY`] until it answers again, which brings the worker back by itself, and
//! [`super::watch`] says so (README, "Reliability").
//!
//! The state is shared by every clone of one [`Store`](super::Store) handle.

use std::time::Duration;

/// How often a down store is probed, and how long a message that met it waits before it is handed
/// out again.
pub const PROBE_EVERY: Duration = Duration::from_secs(2);

/// The store's state, as the last probe found it.
pub use crate::health::{Health as StoreHealth, State};
