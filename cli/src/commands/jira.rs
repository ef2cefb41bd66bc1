//! `hookbridge jira projects` and `hookbridge jira fields`: what a Jira site has, so that project
//! keys, issue types and the CR field ids (`CR_APPROVER_FIELD`, `CR_SIGNATURE_FIELD`, approver
//! role fields) are looked up, not guessed.

use hookbridge_worker::jira::{JiraClient, JiraField};
use hookbridge_worker::settings::JiraArgs;
use serde_json::json;

use crate::Failure;

#[derive(Debug, clap::Subcommand)]
pub enum JiraCommand {
    /// Project keys and names, with the issue types each can create.
    Projects {
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        jira: JiraArgs,
    },
    /// Field ids, names and types; user pickers and text areas marked.
    Fields {
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// Only fields whose name or id contains this (any case).
        #[arg(long)]
        search: Option<String>,
        #[command(flatten)]
        jira: JiraArgs,
    },
}

fn client(args: &JiraArgs) -> Result<JiraClient, Failure> {
    let settings = args
        .settings()
        .map_err(Failure::config)?
        .ok_or_else(|| Failure::config("JIRA_BASE_URL is not set: which Jira site to ask?"))?;
    JiraClient::new(&settings).map_err(|e| Failure::config(format!("JIRA_BASE_URL: {e}")))
}

pub async fn run(command: JiraCommand) -> Result<(), Failure> {
    match command {
        JiraCommand::Projects { json, jira } => projects(&client(&jira)?, json).await,
        JiraCommand::Fields { json, search, jira } => {
            fields(&client(&jira)?, json, search.as_deref()).await
        }
    }
}

async fn projects(jira: &JiraClient, as_json: bool) -> Result<(), Failure> {
    let projects = jira.projects().await.map_err(Failure::check)?;
    let mut listed = Vec::new();
    for (key, name) in projects {
        let types = jira.issue_types(&key).await.map_err(Failure::check)?;
        listed.push((key, name, types));
    }
    if as_json {
        let out: Vec<_> = listed
            .iter()
            .map(|(key, name, types)| json!({"key": key, "name": name, "issue_types": types}))
            .collect();
        println!("{}", serde_json::Value::Array(out));
    } else {
        for (key, name, types) in &listed {
            println!("{key:<12} {name}");
            println!("{:<12} issue types: {}", "", types.join(", "));
        }
    }
    Ok(())
}

/// What a field could be used for in hookbridge's settings.
fn fits(field: &JiraField) -> Option<&'static str> {
    match field.kind().as_str() {
        "multi-user picker" | "user picker" if field.custom => {
            Some("CR_APPROVER_FIELD or an approver role field")
        }
        "text area" | "text field" if field.custom => Some("CR_SIGNATURE_FIELD"),
        _ => None,
    }
}

async fn fields(jira: &JiraClient, as_json: bool, search: Option<&str>) -> Result<(), Failure> {
    let needle = search.map(str::to_lowercase);
    let mut fields: Vec<JiraField> = jira
        .fields()
        .await
        .map_err(Failure::check)?
        .into_iter()
        .filter(|f| {
            needle.as_deref().is_none_or(|n| {
                f.name.to_lowercase().contains(n) || f.id.to_lowercase().contains(n)
            })
        })
        .collect();
    fields.sort_by(|a, b| (!a.custom, &a.name).cmp(&(!b.custom, &b.name)));
    if as_json {
        let out: Vec<_> = fields
            .iter()
            .map(|f| {
                json!({"id": f.id, "name": f.name, "custom": f.custom, "type": f.kind(),
                       "custom_type": f.custom_type, "fits": fits(f)})
            })
            .collect();
        println!("{}", serde_json::Value::Array(out));
    } else {
        for f in &fields {
            let hint = fits(f).map(|h| format!("   ← {h}")).unwrap_or_default();
            println!("{:<22} {:<18} {}{hint}", f.id, f.kind(), f.name);
        }
    }
    Ok(())
}
