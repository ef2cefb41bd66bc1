//! A push's commits: each commit whose message names Jira issues gets a link on each of them.
//!
//! Links are per commit, not per push: a commit's URL is its link's `globalId`, so the same
//! commit pushed again — a redelivery, the branch merged by fast-forward, a re-push after a
//! rebase that kept it — updates its link instead of adding one, and a key named in two commits
//! gets two links (one per commit), each once. A commit GitHub marks as not `distinct` (pushed
//! to the repository before, e.g. the same commits pushed to a second branch at once, or a pull
//! request's commits arriving on main) was linked by the push that brought it first and is not
//! sent again — which also keeps two pushes of one `git push` from upserting the same link at
//! the same moment. No lock: upserts are the only effect.

use hookbridge_shared::envelope::Envelope;
use hookbridge_shared::routing::EventFacts;

use super::links::commit_link;
use super::{Linked, MAX_LINKS_PER_PUSH, PullRequests};
use crate::events::github::PushEvent;
use crate::handler::{Failure, Outcome};

impl PullRequests<'_> {
    /// Applies one `push` delivery (decoded, with commits, not yet done).
    ///
    /// # Errors
    /// [`Failure`], classified.
    pub async fn handle_push(
        &self,
        envelope: &Envelope,
        event: &PushEvent,
    ) -> Result<Outcome, Failure> {
        let delivery = envelope.delivery.as_str();
        let facts = EventFacts {
            repository: &event.repository.full_name,
            labels: &[],
            event: &envelope.event,
            action: envelope.action.as_deref().unwrap_or(""),
        };
        let store = &self.sync.store;
        let done_ttl = self.sync.config.done_ttl;
        let Some(target) = self.route(&facts, delivery) else {
            store.mark_done(delivery, done_ttl).await?;
            return Ok(Outcome::Done);
        };
        let filter = Self::filter(&target);
        let mut links = 0;
        let mut linked = Vec::new();
        'commits: for commit in event.commits.iter().filter(|c| c.distinct != Some(false)) {
            let keys = filter.keys_in(&commit.message);
            if keys.is_empty() {
                continue;
            }
            let link = commit_link(event, commit);
            for key in keys {
                if links == MAX_LINKS_PER_PUSH {
                    tracing::info!(
                        delivery,
                        "more than {MAX_LINKS_PER_PUSH} commit links in one push; the rest are not linked"
                    );
                    break 'commits;
                }
                links += 1;
                if let Linked::Yes = self.link(&key, &link, delivery).await? {
                    linked.push(key);
                }
            }
        }
        store.mark_done(delivery, done_ttl).await?;
        tracing::info!(delivery, repository = %event.repository.full_name, branch = event.branch(),
            commits = event.commits.len(), jira = ?linked, "push linked in Jira");
        Ok(Outcome::Done)
    }
}
