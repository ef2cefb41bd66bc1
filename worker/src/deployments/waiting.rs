//! The deployments waiting on each CR, as one list per CR in the store, and the index of the CRs
//! that have such a list (for the periodic re-check, [`super::recheck`]). Both change only in
//! conditional transactions, together: two workers adding or removing at once cannot lose an
//! entry, and a CR is in the index exactly while deployments wait on it.

use std::time::Duration;

use super::WaitingDeployment;
use crate::change_requests::record::CrKey;
use crate::handler::Failure;
use crate::store::keys::{DeploymentWaitIndex, DeploymentsWaiting};
use crate::store::{Store, Transaction};

/// How often a write is tried again when another worker changed the list in between.
const MAX_CONFLICTS: usize = 20;

fn kept_changing(cr: &CrKey) -> Failure {
    Failure::Retry {
        after: Duration::from_secs(1),
        reason: format!("{cr}: the list of deployments waiting on it kept changing"),
    }
}

/// Adds `deployment` to the list of `cr` (kept `ttl` after its last change); `false` when it was
/// there already.
///
/// # Errors
/// [`Failure`]: the store, or a list that kept changing.
pub async fn add(
    store: &Store,
    cr: &CrKey,
    deployment: &WaitingDeployment,
    ttl: Duration,
) -> Result<bool, Failure> {
    let key = DeploymentsWaiting(cr);
    for _ in 0..MAX_CONFLICTS {
        let stored = store.read_versioned(&key).await?;
        let mut list = stored.value.clone().unwrap_or_default();
        if list.iter().any(|w| w.id == deployment.id) {
            return Ok(false);
        }
        list.push(deployment.clone());
        let index = store.read_versioned(&DeploymentWaitIndex).await?;
        let mut crs = index.value.clone().unwrap_or_default();
        let mut tx = Transaction::new();
        tx.expect_unchanged(&key, &stored);
        tx.put(&key, &list, Some(ttl))?;
        if !crs.contains(cr) {
            crs.push(cr.clone());
            tx.expect_unchanged(&DeploymentWaitIndex, &index);
            tx.put(&DeploymentWaitIndex, &crs, None)?;
        }
        if store.commit(&tx).await? {
            return Ok(true);
        }
    }
    Err(kept_changing(cr))
}

/// Removes the deployment `id` from the list of `cr` (the list goes when it empties).
///
/// # Errors
/// As [`add`].
pub async fn remove(store: &Store, cr: &CrKey, id: &str, ttl: Duration) -> Result<(), Failure> {
    let key = DeploymentsWaiting(cr);
    for _ in 0..MAX_CONFLICTS {
        let stored = store.read_versioned(&key).await?;
        let mut list = stored.value.clone().unwrap_or_default();
        let before = list.len();
        list.retain(|w| w.id != id);
        let index = store.read_versioned(&DeploymentWaitIndex).await?;
        let mut crs = index.value.clone().unwrap_or_default();
        // An empty list leaves the index too (also one whose entries expired by their TTL).
        let unindex = list.is_empty() && crs.contains(cr);
        if list.len() == before && !unindex {
            return Ok(());
        }
        let mut tx = Transaction::new();
        tx.expect_unchanged(&key, &stored);
        if list.is_empty() {
            tx.delete(&key);
        } else {
            tx.put(&key, &list, Some(ttl))?;
        }
        if unindex {
            crs.retain(|c| c != cr);
            tx.expect_unchanged(&DeploymentWaitIndex, &index);
            tx.put(&DeploymentWaitIndex, &crs, None)?;
        }
        if store.commit(&tx).await? {
            return Ok(());
        }
    }
    Err(kept_changing(cr))
}

/// The CRs deployments wait on.
///
/// # Errors
/// The store's.
pub async fn crs(store: &Store) -> Result<Vec<CrKey>, Failure> {
    Ok(store.read(&DeploymentWaitIndex).await?.unwrap_or_default())
}

/// The deployments waiting on `cr`.
///
/// # Errors
/// The store's.
pub async fn list(store: &Store, cr: &CrKey) -> Result<Vec<WaitingDeployment>, Failure> {
    Ok(store
        .read(&DeploymentsWaiting(cr))
        .await?
        .unwrap_or_default())
}
