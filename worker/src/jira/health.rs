//! Whether Jira takes the worker's requests at all. A refused credential (401) or a site that
//! cannot be reached is not one event's failure but everyone's: dead-lettering each event in turn
//! would empty the queue into the dead-letter queue overnight. So the client marks Jira down, the
//! consumer stops taking work, the messages stay queued, and a probe (`GET /rest/api/3/myself`)
//! brings the worker back by itself once Jira answers again (README, "Reliability").

use std::time::Duration;

/// How often a down Jira is probed.
pub const PROBE_EVERY: Duration = Duration::from_secs(10);

/// Jira's state, shared by the client (which marks it) and the consumer (which waits on it).
pub use crate::health::{Health as JiraHealth, State};
