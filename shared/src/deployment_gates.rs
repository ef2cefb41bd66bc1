//! Which GitHub deployments hookbridge gates as a deployment protection rule: the
//! `[[deployment_gates]]` tables of the TOML file map repositories and GitHub environment names to
//! a tier and to the column of the gate's table (staging or prod) that applies. A deployment to an
//! environment no table lists is not gated (README, "Gating deployments without a CI step").
//!
//! ```toml
//! [[deployment_gates]]
//! repositories = ["acme/payments-*"]   # globs on owner/name, as in [[routes]]
//! environments = ["production"]        # GitHub environment names, without regard to case
//! tier = 4                             # 1-4: tiers 3 and 4 need an approved CR
//! stage = "prod"                       # "staging" or "prod" (default "prod")
//! role = "Change Manager"              # the approver role required (default: Change Manager)
//! ```
//!
//! The first table that lists both the repository and the environment wins.

use serde::Deserialize;

use crate::routing::RepoPattern;

/// The column of the gate's table a GitHub environment stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    Staging,
    #[default]
    Prod,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Staging => "staging",
            Stage::Prod => "prod",
        }
    }
}

/// A tier, 1 to 4, as the file gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "u8")]
pub struct GateTier(u8);

impl TryFrom<u8> for GateTier {
    type Error = String;
    fn try_from(n: u8) -> Result<Self, Self::Error> {
        if (1..=4).contains(&n) {
            Ok(Self(n))
        } else {
            Err(format!("tier must be 1, 2, 3 or 4, not {n}"))
        }
    }
}

impl GateTier {
    pub fn get(self) -> u8 {
        self.0
    }
}

/// A GitHub environment name, kept as written but compared without regard to case (GitHub's
/// environment names are case-insensitive).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct EnvironmentName(String);

impl TryFrom<String> for EnvironmentName {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        let trimmed = value.trim();
        if trimmed.is_empty() {
            return Err("an environment name cannot be empty".into());
        }
        Ok(Self(trimmed.to_owned()))
    }
}

impl EnvironmentName {
    pub fn matches(&self, name: &str) -> bool {
        self.0.eq_ignore_ascii_case(name.trim())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One `[[deployment_gates]]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeploymentGate {
    /// Empty or absent: any repository.
    #[serde(default)]
    pub repositories: Vec<RepoPattern>,
    pub environments: Vec<EnvironmentName>,
    pub tier: GateTier,
    #[serde(default)]
    pub stage: Stage,
    /// The approver role required; `None`: the gate's default.
    #[serde(default)]
    pub role: Option<String>,
}

impl DeploymentGate {
    fn applies(&self, repository: &str, environment: &str) -> bool {
        (self.repositories.is_empty() || self.repositories.iter().any(|p| p.matches(repository)))
            && self.environments.iter().any(|e| e.matches(environment))
    }
}

/// The table that gates a deployment of `repository` (`owner/name`) to `environment`, if any.
pub fn gate_for<'a>(
    gates: &'a [DeploymentGate],
    repository: &str,
    environment: &str,
) -> Option<&'a DeploymentGate> {
    gates.iter().find(|g| g.applies(repository, environment))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct File {
        deployment_gates: Vec<DeploymentGate>,
    }

    fn parse(text: &str) -> Result<Vec<DeploymentGate>, String> {
        toml::from_str::<File>(text)
            .map(|f| f.deployment_gates)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn the_first_table_listing_repository_and_environment_wins() {
        let gates = parse(
            r#"
            [[deployment_gates]]
            repositories = ["acme/payments-*"]
            environments = ["Production"]
            tier = 4
            [[deployment_gates]]
            environments = ["production", "staging"]
            tier = 2
            stage = "staging"
            role = "Release Manager"
            "#,
        )
        .unwrap();
        let first = gate_for(&gates, "acme/payments-api", "production").unwrap();
        assert_eq!((first.tier.get(), first.stage), (4, Stage::Prod));
        let second = gate_for(&gates, "acme/web", "STAGING").unwrap();
        assert_eq!((second.tier.get(), second.stage), (2, Stage::Staging));
        assert_eq!(second.role.as_deref(), Some("Release Manager"));
        assert!(gate_for(&gates, "acme/web", "preview").is_none());
    }

    #[test]
    fn bad_tables_are_refused_with_the_reason() {
        let e = parse("[[deployment_gates]]\nenvironments = [\"prod\"]\ntier = 5\n").unwrap_err();
        assert!(e.contains("tier must be 1, 2, 3 or 4"), "{e}");
        let e = parse("[[deployment_gates]]\nenvironments = [\" \"]\ntier = 3\n").unwrap_err();
        assert!(e.contains("cannot be empty"), "{e}");
        let e =
            parse("[[deployment_gates]]\nenvironments = [\"prod\"]\ntier = 3\nstage = \"qa\"\n")
                .unwrap_err();
        assert!(e.contains("unknown variant"), "{e}");
        let e = parse("[[deployment_gates]]\ntier = 3\n").unwrap_err();
        assert!(e.contains("environments"), "{e}");
    }
}
