//! Where a queue message becomes a typed [`Event`]: the envelope is decoded once, its payload
//! fetched (inline or from the claim store) and parsed, and everything the worker does not act on
//! becomes [`Event::Ignored`] with the reason. Nothing downstream looks at event names again.
//!
//! # Layout
//! - [`github`]: the parts of GitHub payloads the worker reads (issues, comments, pull requests,
//!   pushes), and [`github::IssueIdentity`].
//! - [`deployment`]: GitHub's `deployment_protection_rule` event and the deployment it names.
//! - [`jira`]: the Jira issue webhooks, and which issues are Change Requests.
//! - [`claims`]: the payload of an envelope, inline or claimed.

pub mod claims;
pub mod deployment;
pub mod github;
pub mod jira;

use std::time::Duration;

use hookbridge_shared::claim::ClaimStore;
use hookbridge_shared::envelope::{Envelope, Source};

use deployment::DeploymentRuleEvent;
use github::{IssueEvent, PullRequestEvent, PushEvent};
use jira::{CrEvent, CrFilter, JiraComment, JiraEvent, StatusChange};

/// What one delivery means to the worker.
#[derive(Debug)]
pub enum Event {
    /// `issues.*` on an issue (not a pull request).
    GithubIssue(IssueEvent),
    /// `issue_comment.*` on an issue (not a pull request).
    GithubComment(IssueEvent),
    /// `jira:issue_created|updated|deleted` on a Change Request.
    ChangeRequest(CrEvent),
    /// `deployment_protection_rule.requested`: a deployment asks the rule.
    DeploymentRule(DeploymentRuleEvent),
    /// `pull_request.opened|edited|closed|reopened`: links on the Jira issues it names.
    GithubPullRequest(PullRequestEvent),
    /// `push` with commits: links on the Jira issues its commit messages name.
    GithubPush(PushEvent),
    /// `jira:issue_updated` that changed the status of an issue that is not a CR (Jira → GitHub
    /// sync on).
    JiraStatus(StatusChange),
    /// `comment_created` on an issue that is not a CR, not the bridge's own (sync on).
    JiraComment(JiraComment),
    /// Nothing to do, and why (logged and acknowledged).
    Ignored(String),
}

impl Event {
    /// Who caused the event, as the audit trail names them (`github:<login>`).
    pub fn actor(&self) -> Option<String> {
        match self {
            Event::GithubIssue(e) | Event::GithubComment(e) => {
                Some(format!("github:{}", e.sender.login))
            }
            Event::ChangeRequest(e) => e.user.as_ref().map(|u| format!("jira:{}", u.name)),
            Event::DeploymentRule(_) => None,
            Event::JiraStatus(e) => e.user.as_ref().map(|u| format!("jira:{}", u.display_name)),
            Event::JiraComment(e) => e
                .author
                .as_ref()
                .map(|u| format!("jira:{}", u.display_name)),
            Event::GithubPullRequest(e) => Some(format!("github:{}", e.sender.login)),
            Event::GithubPush(e) => Some(format!("github:{}", e.sender.login)),
            Event::Ignored(_) => None,
        }
    }
}

/// A delivery decoded: its envelope and what it means.
#[derive(Debug)]
pub struct Decoded {
    pub envelope: Envelope,
    pub event: Event,
}

/// Why a message could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// It never will be (not an envelope, a payload that is not what its event promises).
    #[error("{0}")]
    Permanent(String),
    /// It may be later (a claimed payload that cannot be read now).
    #[error("{reason}")]
    Transient { after: Duration, reason: String },
}

/// Turns queue messages into [`Decoded`] events.
#[derive(Debug, Clone)]
pub struct Decoder {
    claims: ClaimStore,
    /// GitHub logins whose events are the bridge's own (ignored, so no loops).
    ignore_logins: Vec<String>,
    change_requests: CrFilter,
    /// Jira status changes and comments of issues that are not CRs are events (the Jira → GitHub
    /// sync is configured); otherwise ignored.
    sync_from_jira: bool,
}

impl Decoder {
    pub fn new(claims: ClaimStore, ignore_logins: Vec<String>, change_requests: CrFilter) -> Self {
        Self {
            claims,
            ignore_logins,
            change_requests,
            sync_from_jira: false,
        }
    }

    /// The same decoder with the Jira → GitHub sync's events on (see [`crate::jira_sync`]).
    #[must_use]
    pub fn with_sync_from_jira(mut self, on: bool) -> Self {
        self.sync_from_jira = on;
        self
    }

    /// Whether `login` is one of the bridge's own accounts.
    pub fn is_own(&self, login: &str) -> bool {
        self.ignore_logins
            .iter()
            .any(|l| l.eq_ignore_ascii_case(login))
    }

    /// A `deployment_protection_rule` delivery; only `requested` asks for a decision.
    async fn deployment_rule(
        claims: &ClaimStore,
        envelope: &Envelope,
    ) -> Result<Event, DecodeError> {
        let payload = claims::payload(claims, envelope).await?;
        let event: DeploymentRuleEvent = serde_json::from_slice(&payload).map_err(|e| {
            DecodeError::Permanent(format!("{} payload is not understood: {e}", envelope.event))
        })?;
        Ok(if event.action == "requested" {
            Event::DeploymentRule(event)
        } else {
            Event::Ignored(format!(
                "deployment_protection_rule.{} not handled",
                event.action
            ))
        })
    }

    /// A `pull_request` or `push` delivery (see [`crate::pull_requests`]): only the actions that
    /// change what a link shows, and pushes that carry commits, are events; the bridge's own
    /// pushes are ignored like its issue events.
    async fn code_event(&self, envelope: &Envelope) -> Result<Event, DecodeError> {
        let payload = claims::payload(&self.claims, envelope).await?;
        let not_understood = |e: serde_json::Error| {
            DecodeError::Permanent(format!("{} payload is not understood: {e}", envelope.event))
        };
        let (event, sender) = if envelope.event == "push" {
            let push: PushEvent = serde_json::from_slice(&payload).map_err(not_understood)?;
            if push.deleted || push.commits.is_empty() {
                return Ok(Event::Ignored(
                    "push without commits (a deleted branch, a tag, or nothing new)".into(),
                ));
            }
            let sender = push.sender.login.clone();
            (Event::GithubPush(push), sender)
        } else {
            let pull: PullRequestEvent =
                serde_json::from_slice(&payload).map_err(not_understood)?;
            if !matches!(
                pull.action.as_str(),
                "opened" | "edited" | "closed" | "reopened"
            ) {
                return Ok(Event::Ignored(format!(
                    "pull_request.{} not handled",
                    pull.action
                )));
            }
            let sender = pull.sender.login.clone();
            (Event::GithubPullRequest(pull), sender)
        };
        if self.is_own(&sender) {
            return Ok(Event::Ignored(format!(
                "event from the bridge's own account {sender}"
            )));
        }
        Ok(event)
    }

    /// Decodes one message body.
    ///
    /// # Errors
    /// [`DecodeError`], classified.
    pub async fn decode(&self, body: &[u8]) -> Result<Decoded, DecodeError> {
        let envelope = Envelope::decode(body).map_err(|e| DecodeError::Permanent(e.to_string()))?;
        let event = self.event(&envelope).await?;
        Ok(Decoded { envelope, event })
    }

    async fn event(&self, envelope: &Envelope) -> Result<Event, DecodeError> {
        if envelope.source == Source::Jira {
            if !jira::is_handled(&envelope.event) {
                return Ok(Event::Ignored(format!(
                    "Jira event {} not handled",
                    envelope.event
                )));
            }
            let payload = claims::payload(&self.claims, envelope).await?;
            return match jira::decode_with(&payload, &self.change_requests, self.sync_from_jira)
                .map_err(DecodeError::Permanent)?
            {
                JiraEvent::ChangeRequest(event) => Ok(Event::ChangeRequest(event)),
                JiraEvent::StatusChange(change) => Ok(Event::JiraStatus(change)),
                JiraEvent::Comment(comment) => Ok(Event::JiraComment(comment)),
                JiraEvent::Ignored(why) => Ok(Event::Ignored(why)),
            };
        }
        let comment = match envelope.event.as_str() {
            "issues" => false,
            "issue_comment" => true,
            "deployment_protection_rule" => {
                return Self::deployment_rule(&self.claims, envelope).await;
            }
            "pull_request" | "push" => return self.code_event(envelope).await,
            _ => return Ok(Event::Ignored("GitHub event not handled".into())),
        };
        let payload = claims::payload(&self.claims, envelope).await?;
        let event: IssueEvent = serde_json::from_slice(&payload).map_err(|e| {
            DecodeError::Permanent(format!("{} payload is not understood: {e}", envelope.event))
        })?;
        if event.issue.pull_request.is_some() {
            return Ok(Event::Ignored("pull request event".into()));
        }
        if self.is_own(&event.sender.login) {
            return Ok(Event::Ignored(format!(
                "event from the bridge's own account {}",
                event.sender.login
            )));
        }
        Ok(if comment {
            Event::GithubComment(event)
        } else {
            Event::GithubIssue(event)
        })
    }
}
