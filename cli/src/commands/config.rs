//! `hookbridge config check FILE`: validates a configuration file (event filters and routing
//! rules, approver role fields, trusted PKI keys) the way the ingest and worker will at start, and summarises what it
//! routes where.

use std::path::PathBuf;

use hookbridge_shared::config::FileConfig;
use hookbridge_shared::routing::{JiraProjectKey, Routing};
use hookbridge_worker::pki::trust::TrustedKeys;

use crate::Failure;

#[derive(Debug, clap::Subcommand)]
pub enum ConfigCommand {
    /// Validate a TOML configuration file; exit 1 with `line N, column M: reason` when invalid.
    Check {
        /// The file to check.
        file: PathBuf,
        /// Default project as the worker would see it (JIRA_PROJECT_KEY).
        #[arg(long, env = "JIRA_PROJECT_KEY")]
        jira_project_key: Option<String>,
        /// Default issue type (JIRA_ISSUE_TYPE).
        #[arg(long, env = "JIRA_ISSUE_TYPE", default_value = "Task")]
        jira_issue_type: String,
    },
}

pub fn run(command: ConfigCommand) -> Result<(), Failure> {
    match command {
        ConfigCommand::Check {
            file,
            jira_project_key,
            jira_issue_type,
        } => {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| Failure::config(format!("{}: cannot read: {e}", file.display())))?;
            let mut config = FileConfig::parse(&text)
                .map_err(|e| Failure::check(format!("{}: {e}", file.display())))?;
            config.resolve_paths(&file);
            let default_project = jira_project_key
                .as_deref()
                .filter(|v| !v.trim().is_empty())
                .map(JiraProjectKey::parse)
                .transpose()
                .map_err(|e| Failure::config(format!("JIRA_PROJECT_KEY: {e}")))?;
            let routing = Routing {
                rules: config.routes.clone(),
                default_project,
                default_issue_type: jira_issue_type,
            };
            routing
                .validate()
                .map_err(|e| Failure::check(format!("{}: {e}", file.display())))?;
            let approver_roles =
                hookbridge_worker::settings::change_requests::approver_roles(&config)
                    .map_err(|e| Failure::check(format!("{}: {e}", file.display())))?;
            let trusted = TrustedKeys::load(None, &config.pki)
                .map_err(|e| Failure::check(format!("{}: [pki]: {e}", file.display())))?;
            println!("{}: ok", file.display());
            println!(
                "  ingest: github events {:?}, jira events {:?}",
                config.ingest.github_events, config.ingest.jira_events
            );
            for (i, rule) in routing.rules.iter().enumerate() {
                let name = rule.name.clone().unwrap_or_else(|| format!("routes[{i}]"));
                let project = rule
                    .project
                    .as_ref()
                    .or(routing.default_project.as_ref())
                    .map_or("-".to_owned(), |p| p.to_string());
                if rule.ignore {
                    println!("  route {name}: ignore");
                } else {
                    println!(
                        "  route {name}: project {project}, type {}{}",
                        rule.issue_type
                            .as_deref()
                            .unwrap_or(&routing.default_issue_type),
                        switches(rule)
                    );
                }
            }
            for (i, gate) in config.deployment_gates.iter().enumerate() {
                let repositories: Vec<&str> =
                    gate.repositories.iter().map(|r| r.as_str()).collect();
                let environments: Vec<&str> =
                    gate.environments.iter().map(|e| e.as_str()).collect();
                println!(
                    "  deployment_gates[{i}]: {} to {} — tier {}, stage {}, role {:?}",
                    if repositories.is_empty() {
                        "any repository".to_owned()
                    } else {
                        repositories.join(", ")
                    },
                    environments.join(", "),
                    gate.tier.get(),
                    gate.stage.as_str(),
                    gate.role
                        .as_deref()
                        .unwrap_or(hookbridge_worker::gate::DEFAULT_ROLE)
                );
            }
            if !config.users.is_empty() {
                println!(
                    "  users: {} GitHub login(s) mapped to Jira accounts",
                    config.users.len()
                );
            }
            for role in &approver_roles {
                println!("  approvers: {} approve as {:?}", role.field, role.role);
            }
            if let Some(trusted) = trusted {
                let names: Vec<&str> = trusted.keys.iter().map(|k| k.name.as_str()).collect();
                println!("  pki: trusts {}", names.join(", "));
            }
            match &routing.default_project {
                Some(p) => println!(
                    "  unmatched events: project {p}, type {}",
                    routing.default_issue_type
                ),
                None => println!("  unmatched events: ignored (no JIRA_PROJECT_KEY)"),
            }
            Ok(())
        }
    }
}

/// What a route turns on beyond creating issues, as `; syncs …` (empty when nothing).
fn switches(rule: &hookbridge_shared::routing::RouteRule) -> String {
    let mut on: Vec<String> = Vec::new();
    let flags = [
        (rule.sync_comments, "comments"),
        (rule.sync_closure, "closure"),
        (rule.resolutions.is_some(), "resolutions"),
        (rule.sync_assignee, "assignees"),
        (rule.sync_comment_edits, "comment edits"),
        (rule.sync_pull_requests, "pull requests and pushes"),
        (rule.sync_from_jira, "Jira → GitHub"),
    ];
    on.extend(
        flags
            .iter()
            .filter(|(set, _)| *set)
            .map(|(_, what)| (*what).to_owned()),
    );
    if let Some(deleted) = &rule.on_comment_deleted {
        on.push(format!("comment deletions ({deleted:?})").to_lowercase());
    }
    if !rule.link_projects.is_empty() {
        let projects: Vec<&str> = rule.link_projects.iter().map(|p| p.as_str()).collect();
        on.push(format!("links for {}", projects.join(", ")));
    }
    if on.is_empty() {
        String::new()
    } else {
        format!("; syncs {}", on.join(", "))
    }
}
