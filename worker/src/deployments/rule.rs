//! The deployment protection rule: a `deployment_protection_rule` event is decided with the
//! gate's one policy and answered through GitHub's callback, or left waiting on its CR; a CR
//! event releases the deployments waiting on it. Every answer is audited (its id is named in the
//! comment GitHub shows) and alerted to Slack once.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use hookbridge_shared::deployment_gates::{DeploymentGate, Stage, gate_for};
use hookbridge_shared::envelope::Envelope;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::reference::{self, Evidence, Found, KeyFinder, LinkedPull};
use super::{Answer, WaitingDeployment, waiting};
use crate::alerts::{Alert, AlertKind, AlertWaker};
use crate::audit::{AuditLog, Entry};
use crate::change_requests::ChangeRequests;
use crate::change_requests::lookup::LookupError;
use crate::change_requests::record::{CrKey, CrRecord};
use crate::change_requests::usage::Usage;
use crate::events::deployment::{DeploymentIdentity, DeploymentRuleEvent};
use crate::events::jira::CrFilter;
use crate::gate::deployment::{self, Environment, Tier};
use crate::gate::{DEFAULT_ROLE, Policy, ReasonCode, Verdict};
use crate::github_app::{GithubApp, GithubAppError, ReviewOutcome, ReviewState};
use crate::handler::{Failure, Outcome};
use crate::jira::JiraClient;
use crate::metrics::governance::{self, Asker};
use crate::store::keys::{CrRecordKey, CrUsage, DeploymentAnswered};
use crate::store::{Store, Transaction};

/// How long an answer and a waiting deployment are kept: GitHub lets a deployment wait for a
/// custom rule for up to 30 days.
const KEPT: Duration = Duration::from_secs(31 * 24 * 3600);

/// What a deployment is told when it names no CR.
pub const HOW_TO_REFERENCE: &str = "name the Change Request: put its key (e.g. CR-123) in the \
head commit's message, in the pull request's title or branch name, or pass jira_cr_id in the \
deployment's payload";

/// What the rule needs.
#[derive(Clone)]
pub struct DeploymentRule {
    pub store: Store,
    pub audit: AuditLog,
    pub alerts: AlertWaker,
    /// `None` without `GITHUB_APP_ID`: the rule is off, its events are acknowledged and ignored.
    pub app: Option<Arc<GithubApp>>,
    pub gates: Vec<DeploymentGate>,
    pub policy: Policy,
    pub keys: KeyFinder,
    /// For reading a CR the store does not have yet.
    pub change_requests: ChangeRequests,
    pub jira: Option<JiraClient>,
    pub filter: CrFilter,
}

/// A decision to send to GitHub.
#[derive(Debug, Clone)]
struct Ruling {
    state: ReviewState,
    code: ReasonCode,
    reason: String,
    cr: Option<CrKey>,
}

/// What to do with a deployment.
enum Next {
    Answer(Ruling),
    Wait { cr: CrKey, reason: String },
}

/// The gate's column for a table's stage.
fn environment_of(stage: Stage) -> Environment {
    match stage {
        Stage::Staging => Environment::Staging,
        Stage::Prod => Environment::Prod,
    }
}

/// Where the rule looks for a deployment's CR: the event, then GitHub (asked only when needed).
struct EventEvidence<'a> {
    event: &'a DeploymentRuleEvent,
    app: &'a GithubApp,
    installation_id: u64,
}

impl Evidence for EventEvidence<'_> {
    fn payload_cr_id(&self) -> Option<String> {
        self.event.deployment.as_ref().and_then(|d| d.jira_cr_id())
    }

    async fn commit_message(&mut self) -> Result<Option<String>, String> {
        let Some(sha) = self.sha() else {
            return Ok(None);
        };
        self.app
            .commit_message(self.installation_id, &self.event.repository.full_name, &sha)
            .await
            .map_err(|e| format!("reading the head commit: {e}"))
    }

    async fn pull_requests(&mut self) -> Result<Vec<LinkedPull>, String> {
        if !self.event.pull_requests.is_empty() {
            return Ok(self
                .event
                .pull_requests
                .iter()
                .map(|p| LinkedPull {
                    title: p.title.clone(),
                    branch: p.head.as_ref().map(|h| h.git_ref.clone()),
                })
                .collect());
        }
        let Some(sha) = self.sha() else {
            return Ok(Vec::new());
        };
        let pulls = self
            .app
            .pulls_for_commit(self.installation_id, &self.event.repository.full_name, &sha)
            .await
            .map_err(|e| format!("reading the commit's pull requests: {e}"))?;
        Ok(pulls
            .into_iter()
            .map(|p| LinkedPull {
                title: Some(p.title),
                branch: Some(p.head_ref),
            })
            .collect())
    }

    fn git_ref(&self) -> Option<String> {
        self.event.git_ref.clone().or_else(|| {
            self.event
                .deployment
                .as_ref()
                .and_then(|d| d.git_ref.clone())
        })
    }
}

impl EventEvidence<'_> {
    fn sha(&self) -> Option<String> {
        self.event
            .sha
            .clone()
            .or_else(|| self.event.deployment.as_ref().and_then(|d| d.sha.clone()))
            .filter(|s| !s.is_empty())
    }
}

fn github_failure(e: &GithubAppError) -> Failure {
    match e {
        GithubAppError::Transient { retry_after, .. } => Failure::Retry {
            after: retry_after.unwrap_or(Duration::from_secs(5)),
            reason: format!("GitHub: {e}"),
        },
        // The App's permissions or key may be fixed by an operator: tried again, slowly, until
        // the attempts run out (then dead-lettered with this reason).
        GithubAppError::Refused(_) => Failure::Retry {
            after: Duration::from_secs(60),
            reason: format!("GitHub refused the App: {e}"),
        },
        GithubAppError::Other(_) => Failure::Fail(format!("GitHub: {e}")),
    }
}

impl DeploymentRule {
    /// Decides one `deployment_protection_rule` delivery: answered, or left waiting on its CR.
    ///
    /// # Errors
    /// [`Failure`], classified: GitHub or the store not answering is retried; an event that is
    /// not a deployment review (no installation, a callback URL of another repository) fails.
    pub async fn handle(
        &self,
        envelope: &Envelope,
        event: &DeploymentRuleEvent,
    ) -> Result<Outcome, Failure> {
        let identity = DeploymentIdentity::of(event).map_err(Failure::Fail)?;
        let id = identity.as_key();
        let delivery = envelope.delivery.as_str();
        let Some(app) = self.app.as_deref() else {
            // Off (README, "Gating deployments without a CI step"): said, never dead-lettered.
            tracing::info!(deployment = %id, "deployment protection rule event ignored: GITHUB_APP_ID is not set");
            let entry = Entry::new("event.ignored", delivery)
                .outcome("ignored")
                .id("delivery", delivery)
                .detail(json!({"why": "GITHUB_APP_ID is not set: the deployment protection rule is off", "deployment": id}));
            self.audit.record(entry).await?;
            self.store.mark_done(delivery, KEPT).await?;
            return Ok(Outcome::Done);
        };
        if self.store.read(&DeploymentAnswered(&id)).await?.is_some() {
            self.store.mark_done(delivery, KEPT).await?;
            return Ok(Outcome::Done);
        }
        let installation_id = event
            .installation
            .as_ref()
            .map(|i| i.id)
            .ok_or_else(|| Failure::Fail("the event names no App installation".into()))?;
        let gate = gate_for(&self.gates, &identity.repository, &event.environment);
        let mut waiting = WaitingDeployment {
            id: id.clone(),
            repository: identity.repository.clone(),
            environment: event.environment.clone(),
            installation_id,
            callback_url: event.deployment_callback_url.clone(),
            tier: gate.map_or(0, |g| g.tier.get()),
            stage: gate.map_or("", |g| g.stage.as_str()).to_owned(),
            role: gate
                .and_then(|g| g.role.clone())
                .unwrap_or_else(|| DEFAULT_ROLE.to_owned()),
            cr: None,
            since: Utc::now(),
            delivery: delivery.to_owned(),
        };
        let (next, cr) = self
            .decide(app, event, &identity, gate, installation_id, &waiting.role)
            .await?;
        waiting.cr = cr;
        match next {
            Next::Answer(ruling) => self.answer(app, &waiting, &ruling).await?,
            Next::Wait { cr, reason } => {
                self.wait(&cr, &waiting, &reason).await?;
                // The CR may have been approved between the judgement and the write of the
                // waiting entry, and its event found no one waiting: judged again now.
                if let Next::Answer(ruling) = self.judge(&cr, &waiting.role).await? {
                    self.answer(app, &waiting, &ruling).await?;
                }
            }
        }
        self.store.mark_done(delivery, KEPT).await?;
        Ok(Outcome::Done)
    }

    /// What the gate says about a deployment: the table that gates it (`None`: not gated), its
    /// exemptions, then the CR it names; with that CR, when it names one.
    async fn decide(
        &self,
        app: &GithubApp,
        event: &DeploymentRuleEvent,
        identity: &DeploymentIdentity,
        gate: Option<&DeploymentGate>,
        installation_id: u64,
        role: &str,
    ) -> Result<(Next, Option<CrKey>), Failure> {
        let approved = |code, reason| {
            Next::Answer(Ruling {
                state: ReviewState::Approved,
                code,
                reason,
                cr: None,
            })
        };
        let rejected = |reason| {
            Next::Answer(Ruling {
                state: ReviewState::Rejected,
                code: ReasonCode::NoCrId,
                reason,
                cr: None,
            })
        };
        let Some(gate) = gate else {
            let reason = format!(
                "{} of {} is not gated by hookbridge (no [[deployment_gates]] table lists it)",
                event.environment, identity.repository
            );
            return Ok((approved(ReasonCode::NotGated, reason), None));
        };
        let tier = Tier::new(gate.tier.get()).map_err(Failure::Fail)?;
        if let Some(free) = deployment::exemption(tier, environment_of(gate.stage)) {
            return Ok((approved(free.code, free.reason), None));
        }
        let mut evidence = EventEvidence {
            event,
            app,
            installation_id,
        };
        let found = reference::find(&mut evidence, &self.keys)
            .await
            .map_err(|reason| Failure::Retry {
                after: Duration::from_secs(5),
                reason,
            })?;
        Ok(match found {
            Found::Nothing => (
                rejected(format!(
                    "a tier {} deployment to {} needs an approved Change Request: {HOW_TO_REFERENCE}",
                    tier.get(),
                    event.environment
                )),
                None,
            ),
            Found::Invalid(given) => (
                rejected(format!(
                    "jira_cr_id {given:?} is not the key of a Change Request project"
                )),
                None,
            ),
            Found::Key(key, place) => {
                tracing::debug!(cr = %key, %place, deployment = %identity.as_key(), "deployment names its CR");
                (self.judge(&key, role).await?, Some(key))
            }
        })
    }

    /// The gate's verdict on CR `key` for a deployment needing `role`.
    async fn judge(&self, key: &CrKey, role: &str) -> Result<Next, Failure> {
        let (record, usage): (CrRecord, Option<Usage>) = match self
            .store
            .read(&CrRecordKey(key))
            .await?
        {
            Some(record) => {
                let usage = self.store.read(&CrUsage(key)).await?;
                (record, usage)
            }
            None => match self
                .change_requests
                .lookup(key, self.jira.as_ref(), &self.filter, false)
                .await
            {
                Ok(found) => (found.record, found.usage),
                // Only a Jira webhook can bring it: it waits for one.
                Err(LookupError::NoJira(_)) => {
                    return Ok(Next::Wait {
                        cr: key.clone(),
                        reason: format!(
                            "{key} is not in the store yet (JIRA_BASE_URL is not set): waiting for its Jira webhook"
                        ),
                    });
                }
                Err(e @ (LookupError::NotFound(_) | LookupError::NotACr { .. })) => {
                    return Ok(Next::Answer(Ruling {
                        state: ReviewState::Rejected,
                        code: ReasonCode::NotFound,
                        reason: e.to_string(),
                        cr: Some(key.clone()),
                    }));
                }
                Err(e) => {
                    return Err(Failure::Retry {
                        after: Duration::from_secs(5),
                        reason: format!("reading {key}: {e}"),
                    });
                }
            },
        };
        let verdict = deployment::check_cr(&record, usage.as_ref(), role, &self.policy, Utc::now());
        Ok(match verdict {
            Verdict::Pass { .. } => Next::Answer(Ruling {
                state: ReviewState::Approved,
                code: ReasonCode::Approved,
                reason: format!("{key} is {}", record.status),
                cr: Some(key.clone()),
            }),
            Verdict::Pending(denial) => Next::Wait {
                cr: key.clone(),
                reason: denial.reason,
            },
            Verdict::Fail(denial) | Verdict::Refused(denial) => Next::Answer(Ruling {
                state: ReviewState::Rejected,
                code: denial.code,
                reason: denial.reason,
                cr: Some(key.clone()),
            }),
        })
    }

    /// Records `deployment` as waiting on `cr`, audited the first time.
    async fn wait(
        &self,
        cr: &CrKey,
        deployment: &WaitingDeployment,
        reason: &str,
    ) -> Result<(), Failure> {
        if waiting::add(&self.store, cr, deployment, KEPT).await? {
            let entry = Entry::new("deployment.waiting", deployment.id.as_str())
                .outcome("waiting")
                .id("delivery", deployment.delivery.as_str())
                .id("jira", cr.as_str())
                .id("repository", deployment.repository.as_str())
                .detail(
                    json!({"environment": deployment.environment, "reason": reason,
                               "tier": deployment.tier, "stage": deployment.stage}),
                );
            self.audit.record(entry).await?;
            tracing::info!(deployment = %deployment.id, %cr, %reason, "deployment waits for its CR");
        }
        Ok(())
    }

    /// Answers GitHub for `deployment`: audited first (the comment names the record), then the
    /// callback, then the answer and its alert stored in one transaction.
    async fn answer(
        &self,
        app: &GithubApp,
        deployment: &WaitingDeployment,
        ruling: &Ruling,
    ) -> Result<(), Failure> {
        // The same deployment and decision always get the same id, so a retried answer names the
        // record the first attempt wrote.
        let digest = Sha256::digest(format!(
            "{}\n{}\n{}",
            deployment.id,
            ruling.state.as_str(),
            ruling.code.as_str()
        ));
        let audit_id = format!("deploy-{}", &hex::encode(digest)[..20]);
        let cr = ruling.cr.as_ref().map_or("none", CrKey::as_str);
        let mut entry = Entry::new("deployment.decision", deployment.id.as_str())
            .outcome(ruling.state.as_str())
            .id("audit", audit_id.as_str())
            .id("delivery", deployment.delivery.as_str())
            .id("repository", deployment.repository.as_str())
            .detail(json!({
                "environment": deployment.environment, "tier": deployment.tier,
                "stage": deployment.stage, "required_role": deployment.role,
                "decision": ruling.state.as_str(), "reason_code": ruling.code.as_str(),
                "reason": ruling.reason,
            }));
        if let Some(key) = &ruling.cr {
            entry = entry.id("jira", key.as_str());
        }
        self.audit.record(entry).await?;
        let comment = format!(
            "hookbridge {}: {} (CR: {cr}; audit record: {audit_id})",
            ruling.state.as_str(),
            ruling.reason
        );
        let outcome = app
            .review_deployment(
                deployment.installation_id,
                &deployment.callback_url,
                &deployment.environment,
                ruling.state,
                &comment,
            )
            .await
            .map_err(|e| github_failure(&e))?;
        let answer = Answer {
            state: ruling.state.as_str().to_owned(),
            code: ruling.code.as_str().to_owned(),
            reason: ruling.reason.clone(),
            audit_id: audit_id.clone(),
            at: Utc::now(),
        };
        let mut tx = Transaction::new();
        tx.expect_absent(&DeploymentAnswered(&deployment.id));
        tx.put(&DeploymentAnswered(&deployment.id), &answer, Some(KEPT))?;
        // Counted and alerted with the first stored answer: when GitHub had it decided already,
        // that was most likely this rule's own answer from an attempt that died before storing
        // it. A run GitHub no longer knows was answered by no one.
        if outcome != ReviewOutcome::Gone {
            governance::count_decision(
                &mut tx,
                Asker::DeploymentRule,
                ruling.state == ReviewState::Approved,
                ruling.code,
                ruling.cr.is_some(),
            )?;
            Alert {
                id: format!("deployment:{}", deployment.id),
                at: answer.at,
                kind: match ruling.state {
                    ReviewState::Approved => AlertKind::DeploymentApproved,
                    ReviewState::Rejected => AlertKind::DeploymentRejected,
                },
                subject: format!("{} → {}", deployment.repository, deployment.environment),
                summary: None,
                status: Some(ruling.state.as_str().to_owned()),
                previous_status: None,
                by: None,
                link: None,
                detail: Some(format!("{} (CR: {cr}; audit: {audit_id})", ruling.reason)),
            }
            .enqueue(&mut tx)?;
        }
        if self.store.commit(&tx).await? {
            self.alerts.wake();
        }
        tracing::info!(deployment = %deployment.id, decision = ruling.state.as_str(),
            outcome = ?outcome, cr, "deployment answered");
        if let Some(cr) = &ruling.cr {
            waiting::remove(&self.store, cr, &deployment.id, KEPT).await?;
        }
        Ok(())
    }

    /// Answers every deployment waiting on `cr` that its record now decides; called after each
    /// CR event is applied, before the event is marked done.
    ///
    /// # Errors
    /// [`Failure`], classified (the CR event is then retried; answered deployments are not asked
    /// again).
    pub async fn release(&self, cr: &CrKey) -> Result<(), Failure> {
        let Some(app) = self.app.as_deref() else {
            return Ok(());
        };
        for deployment in waiting::list(&self.store, cr).await? {
            if self
                .store
                .read(&DeploymentAnswered(&deployment.id))
                .await?
                .is_some()
            {
                waiting::remove(&self.store, cr, &deployment.id, KEPT).await?;
                continue;
            }
            if let Next::Answer(ruling) = self.judge(cr, &deployment.role).await? {
                self.answer(app, &deployment, &ruling).await?;
            }
        }
        Ok(())
    }
}
