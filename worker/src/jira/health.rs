//! Whether Jira takes the worker's requests at all. A refused credential (401) or a site that
//! cannot be reached is not one event's failure but everyone's: dead-lettering each event in turn
//! would empty the queue into the dead-letter queue overnight. So the client marks Jira down, the
//! consumer stops taking work, the messages stay queued, and a probe (`GET /rest/api/3/myself`)
//! brings the worker back by itself once Jira answers again (README, "Reliability").

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

/// How often a down Jira is probed.
pub const PROBE_EVERY: Duration = Duration::from_secs(10);

/// Jira's state, shared by the client (which marks it) and the consumer (which waits on it).
#[derive(Clone, Debug)]
pub struct JiraHealth {
    state: Arc<watch::Sender<State>>,
}

/// Up, or down with the reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum State {
    Up,
    Down(String),
}

impl Default for JiraHealth {
    fn default() -> Self {
        Self {
            state: Arc::new(watch::channel(State::Up).0),
        }
    }
}

impl JiraHealth {
    /// Marks Jira down; `true` when it was up (the outage starts now).
    pub fn mark_down(&self, reason: &str) -> bool {
        self.state.send_if_modified(|state| match state {
            State::Up => {
                *state = State::Down(reason.to_owned());
                true
            }
            State::Down(_) => false,
        })
    }

    /// Marks Jira up; `true` when it was down (the outage ends now).
    pub fn mark_up(&self) -> bool {
        self.state.send_if_modified(|state| match state {
            State::Down(_) => {
                *state = State::Up;
                true
            }
            State::Up => false,
        })
    }

    pub fn state(&self) -> State {
        self.state.borrow().clone()
    }

    pub fn is_up(&self) -> bool {
        self.state() == State::Up
    }

    /// Returns once Jira is up (at once when it is).
    pub async fn wait_up(&self) {
        let mut watching = self.state.subscribe();
        let _ = watching.wait_for(|s| *s == State::Up).await;
    }

    /// Returns once Jira is down.
    pub async fn wait_down(&self) {
        let mut watching = self.state.subscribe();
        let _ = watching.wait_for(|s| *s != State::Up).await;
    }
}
