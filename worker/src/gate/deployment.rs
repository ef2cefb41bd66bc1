//! The deployment gate's table (the governance seed's enforcement): development deploys freely;
//! tiers 1 and 2 deploy freely; tiers 3 and 4 in staging and prod need a CR that passes
//! [`super::check`] with the required role, and whose recorded token usage is under its budget.

use std::fmt;

use super::{Denial, ReasonCode};
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
}
