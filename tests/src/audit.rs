//! Reading the audit trail a process under test wrote: every `audit-YYYY-MM-DD.jsonl` file of a
//! directory, oldest day first.

use std::path::Path;

use serde_json::Value;

/// The trail's text: every day's file, oldest first (empty when there is none yet).
pub fn trail_text(dir: &Path) -> String {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("audit-") && n.ends_with(".jsonl"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
        .iter()
        .map(|n| std::fs::read_to_string(dir.join(n)).unwrap_or_default())
        .collect()
}

/// Every record of the trail.
///
/// # Panics
/// When a line is not JSON.
pub fn records(dir: &Path) -> Vec<Value> {
    trail_text(dir)
        .lines()
        .map(|l| serde_json::from_str(l).expect("an audit line is JSON"))
        .collect()
}
