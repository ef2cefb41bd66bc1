//! The one [`Handler`] the consumer drives: a message is decoded into an [`Event`] (see
//! [`crate::events`]), a delivery already done is acknowledged without effect, and the rest goes to
//! the part of the worker that owns it — [`crate::github_sync`] for GitHub issues and comments.

use hookbridge_shared::queue::Received;

use crate::events::{Decoded, Decoder, Event};
use crate::github_sync::GithubSync;
use crate::handler::{Failure, Handler, Outcome};
use crate::store::Store;

/// Decode → dedupe → dispatch.
pub struct Router {
    pub decoder: Decoder,
    pub store: Store,
    pub github: GithubSync,
}

impl Handler for Router {
    async fn handle(&self, message: &Received) -> Outcome {
        self.handle_body(&message.body).await
    }
}

impl Router {
    /// Handles one queue message body (an encoded envelope); what the consumer calls for each
    /// message, and what tests call directly.
    pub async fn handle_body(&self, body: &[u8]) -> Outcome {
        match self.route(body).await {
            Ok(outcome) => outcome,
            Err(failure) => failure.into(),
        }
    }

    async fn route(&self, body: &[u8]) -> Result<Outcome, Failure> {
        let Decoded { envelope, event } = self.decoder.decode(body).await?;
        let delivery = envelope.delivery.as_str();
        if let Event::Ignored(why) = &event {
            tracing::info!(delivery, source = %envelope.source, event = %envelope.event, %why, "ignored");
            return Ok(Outcome::Done);
        }
        if self.store.is_done(delivery).await? {
            tracing::info!(delivery, "delivery already processed; acknowledged again");
            return Ok(Outcome::Done);
        }
        match &event {
            Event::GithubIssue(issue) | Event::GithubComment(issue) => {
                self.github.handle(&envelope, issue).await
            }
            Event::Ignored(_) => Ok(Outcome::Done),
        }
    }
}
