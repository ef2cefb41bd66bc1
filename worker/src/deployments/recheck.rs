//! The periodic re-check of waiting deployments (`HOOKBRIDGE_DEPLOYMENT_RECHECK`, README, "Gating
//! deployments without a CI step"). A waiting deployment is normally released by its CR's next
//! Jira webhook; this is the safety net for when that never comes in time — a webhook Jira did not
//! send or that was lost, or a release that kept failing (GitHub down) until its CR event was
//! dead-lettered. Every interval, one worker process at a time (a store lock) reads each CR that
//! deployments wait on from Jira when `JIRA_BASE_URL` is set (stored as `cr status --refresh`
//! stores it) and releases its deployments with what the store then holds.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::rule::DeploymentRule;
use super::waiting;
use crate::handler::Failure;
use crate::store::LockName;

/// Re-checks every `every` until `shutdown`.
pub async fn run(rule: DeploymentRule, every: Duration, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        match once(&rule, every.max(Duration::from_secs(60))).await {
            Ok(0) => {}
            Ok(crs) => tracing::debug!(crs, "waiting deployments re-checked"),
            Err(e) => tracing::warn!(error = ?e, "waiting deployments not re-checked; next time"),
        }
    }
}

/// One re-check, unless another process holds the re-check's lock (then `Ok(0)`); the CRs
/// looked at.
///
/// # Errors
/// [`Failure`] from the store or from answering GitHub.
pub async fn once(rule: &DeploymentRule, lock_ttl: Duration) -> Result<usize, Failure> {
    let Some(guard) = rule
        .store
        .try_lock(&LockName::deployment_recheck(), lock_ttl)
        .await?
    else {
        return Ok(0);
    };
    let result = async {
        let crs = waiting::crs(&rule.store).await?;
        for cr in &crs {
            if let Some(jira) = &rule.jira
                && let Err(e) = rule
                    .change_requests
                    .lookup(cr, Some(jira), &rule.filter, true)
                    .await
            {
                // The store's record is still judged: Jira may be down, the CR gone.
                tracing::debug!(%cr, error = %e, "CR not read from Jira during the re-check");
            }
            rule.release(cr).await?;
            if waiting::list(&rule.store, cr).await?.is_empty() {
                waiting::remove(&rule.store, cr, "", Duration::ZERO).await?;
            }
        }
        Ok(crs.len())
    }
    .await;
    if let Err(e) = rule.store.unlock(&guard).await {
        tracing::debug!(error = %e, "the re-check's lock was not released; it expires");
    }
    result
}
