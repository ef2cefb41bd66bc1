//! Failures a test scripts: the next matching requests get a chosen status, with `Retry-After`
//! when asked, and have no effect ([`JiraFake::fail_next`], ended early by
//! [`JiraFake::clear_failures`]); or the next matching request takes effect and its answer is held
//! back, a window in which the test can kill the client ([`JiraFake::stall_next`]).
//!
//! Separate because this is not Jira's behaviour but the test's control over it: outages and
//! crashes on demand, checked after auth and rate limits, before the route.

use std::time::Duration;

use axum::http::Method;

use super::{Data, JiraFake};

#[derive(Debug, Clone)]
pub(super) enum Scripted {
    Fail {
        status: u16,
        retry_after: Option<u64>,
    },
    /// Process the request, then wait this long before answering.
    Stall(Duration),
}

#[derive(Debug)]
pub(super) struct Script {
    method: Method,
    path_prefix: String,
    what: Scripted,
    remaining: u32,
}

impl JiraFake {
    /// The next `times` requests whose method is `method` and whose path starts with
    /// `path_prefix` get `status` (with `Retry-After` when given) and have no effect.
    pub fn fail_next(
        &self,
        method: Method,
        path_prefix: &str,
        status: u16,
        retry_after: Option<u64>,
        times: u32,
    ) {
        self.data().scripts.push(Script {
            method,
            path_prefix: path_prefix.to_owned(),
            what: Scripted::Fail {
                status,
                retry_after,
            },
            remaining: times,
        });
    }

    /// Ends every scripted failure still pending (the outage is over).
    pub fn clear_failures(&self) {
        self.data()
            .scripts
            .retain(|s| !matches!(s.what, Scripted::Fail { .. }));
    }

    /// The next matching request takes effect, then its answer is held back for `hold` (a window
    /// in which a test can kill the client between "Jira did it" and "the client knows").
    pub fn stall_next(&self, method: Method, path_prefix: &str, hold: Duration) {
        self.data().scripts.push(Script {
            method,
            path_prefix: path_prefix.to_owned(),
            what: Scripted::Stall(hold),
            remaining: 1,
        });
    }
}

pub(super) fn take_script(data: &mut Data, method: &Method, path: &str) -> Option<Scripted> {
    let index = data
        .scripts
        .iter()
        .position(|s| s.method == method && path.starts_with(&s.path_prefix))?;
    let script = &mut data.scripts[index];
    let what = script.what.clone();
    script.remaining = script.remaining.saturating_sub(1);
    if script.remaining == 0 {
        data.scripts.remove(index);
    }
    Some(what)
}
