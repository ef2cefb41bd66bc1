//! Up or down: the state of a dependency without which no message can be worked on (Jira, the
//! store). A failed call marks it down, the consumer stops taking work while it is, and a probe
//! marks it up again; each outage starts and ends once, so it is said once (README, "Reliability").
//! `jira::health` and `store::health` each hold one, with their own probe.

use std::sync::Arc;

use tokio::sync::watch;

/// A dependency's state, shared by whoever marks it (a failed call, a probe) and the consumer
/// (which waits on it).
#[derive(Clone, Debug)]
pub struct Health {
    state: Arc<watch::Sender<State>>,
}

/// Up, or down with the reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum State {
    Up,
    Down(String),
}

impl Default for Health {
    fn default() -> Self {
        Self {
            state: Arc::new(watch::channel(State::Up).0),
        }
    }
}

impl Health {
    /// Marks the dependency down; `true` when it was up (the outage starts now).
    pub fn mark_down(&self, reason: &str) -> bool {
        self.state.send_if_modified(|state| match state {
            State::Up => {
                *state = State::Down(reason.to_owned());
                true
            }
            State::Down(_) => false,
        })
    }

    /// Marks the dependency up; `true` when it was down (the outage ends now).
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

    /// Returns once the dependency is up (at once when it is).
    pub async fn wait_up(&self) {
        let mut watching = self.state.subscribe();
        let _ = watching.wait_for(|s| *s == State::Up).await;
    }

    /// Returns once the dependency is down.
    pub async fn wait_down(&self) {
        let mut watching = self.state.subscribe();
        let _ = watching.wait_for(|s| *s != State::Up).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn down_and_up_are_told_once_each() {
        let health = Health::default();
        assert!(health.is_up());
        assert!(health.mark_down("redis: Connection refused"));
        assert!(!health.mark_down("again"), "an outage starts once");
        assert_eq!(
            health.state(),
            State::Down("redis: Connection refused".into())
        );
        let waiting = tokio::spawn({
            let health = health.clone();
            async move { health.wait_up().await }
        });
        assert!(health.mark_up());
        assert!(!health.mark_up(), "an outage ends once");
        tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("wait_up returns once it is up")
            .expect("task");
    }
}
