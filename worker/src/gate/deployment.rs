//! The deployment gate's table (the governance seed's enforcement): development deploys freely;
//! tiers 1 and 2 deploy freely; tiers 3 and 4 in staging and prod need a CR that passes
//! [`super::check`] with the required role, and whose recorded token usage is under its budget.

use std::fmt;

use chrono::{DateTime, Utc};

use super::{Denial, Policy, ReasonCode, Verdict};
use crate::change_requests::record::CrRecord;
use crate::change_requests::usage::Usage;

/// Where a deployment goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    Dev,
    Staging,
    Prod,
}

impl fmt::Display for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Environment::Dev => "dev",
            Environment::Staging => "staging",
            Environment::Prod => "prod",
        })
    }
}

/// A service or agent tier, 1 to 4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Tier(u8);

impl Tier {
    /// # Errors
    /// A reason when `n` is not 1 to 4.
    pub fn new(n: u8) -> Result<Self, String> {
        if (1..=4).contains(&n) {
            Ok(Self(n))
        } else {
            Err(format!("tier must be 1, 2, 3 or 4, not {n}"))
        }
    }

    pub fn get(self) -> u8 {
        self.0
    }
}

/// Whether a deployment of `tier` to `environment` needs a CR.
pub fn needs_cr(tier: Tier, environment: Environment) -> bool {
    environment != Environment::Dev && tier.0 >= 3
}

/// Why a deployment passes without a CR: the table's free cells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exemption {
    /// [`ReasonCode::DevEnvironment`] or [`ReasonCode::LowTier`].
    pub code: ReasonCode,
    pub reason: String,
}

/// `Some` when a deployment of `tier` to `environment` needs no CR, with why.
pub fn exemption(tier: Tier, environment: Environment) -> Option<Exemption> {
    if needs_cr(tier, environment) {
        return None;
    }
    let subject = format!("tier {} to {environment}", tier.get());
    Some(if environment == Environment::Dev {
        Exemption {
            code: ReasonCode::DevEnvironment,
            reason: format!("{subject}: development deploys without a CR"),
        }
    } else {
        Exemption {
            code: ReasonCode::LowTier,
            reason: format!("{subject}: tier {} deploys without a CR", tier.get()),
        }
    })
}

/// The verdict on a deployment's CR — the one both `hookbridge gate` and the deployment
/// protection rule apply: [`super::check`] with the required role, then the token budget (an
/// approved CR over its budget is refused: waiting will not change it).
pub fn check_cr(
    record: &CrRecord,
    usage: Option<&Usage>,
    role: &str,
    policy: &Policy,
    now: DateTime<Utc>,
) -> Verdict {
    let verdict = super::check(record, Some(role), policy, now);
    if verdict.passed()
        && let Some(denial) = over_budget(record, usage)
    {
        return Verdict::Refused(denial);
    }
    verdict
}

/// Why recorded usage stops a deployment, when it does.
pub fn over_budget(record: &CrRecord, usage: Option<&Usage>) -> Option<Denial> {
    let budget = record.budget_tokens?;
    let used = usage.map_or(0, |u| u.used_tokens);
    (used >= budget).then(|| {
        Denial::new(
            ReasonCode::OverBudget,
            format!(
                "{} is over its token budget: {used} of {budget} tokens used",
                record.key
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table() {
        for n in 1..=4 {
            let tier = Tier::new(n).unwrap();
            assert!(!needs_cr(tier, Environment::Dev));
            for env in [Environment::Staging, Environment::Prod] {
                assert_eq!(needs_cr(tier, env), n >= 3, "tier {n} {env}");
            }
        }
        assert!(Tier::new(0).is_err() && Tier::new(5).is_err());
    }

    #[test]
    fn exemptions_are_the_free_cells_of_the_table() {
        let tier = |n| Tier::new(n).unwrap();
        assert_eq!(
            exemption(tier(4), Environment::Dev).map(|e| e.code),
            Some(ReasonCode::DevEnvironment)
        );
        assert_eq!(
            exemption(tier(2), Environment::Prod).map(|e| e.code),
            Some(ReasonCode::LowTier)
        );
        assert_eq!(exemption(tier(3), Environment::Staging), None);
    }
}
