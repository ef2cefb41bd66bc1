//! The ADF rules Jira enforces, checked structurally (the Jira fake in the test suite uses this to
//! refuse what Jira would refuse).

use serde_json::Value;

/// Deepest node nesting [`validate`] accepts (far more than [`super::MAX_LIST_DEPTH`] lists produce).
const MAX_DEPTH: usize = 64;

const BLOCKS_IN_DOC: &[&str] = &[
    "paragraph",
    "heading",
    "bulletList",
    "orderedList",
    "codeBlock",
    "blockquote",
    "rule",
    "panel",
    "table",
    "mediaSingle",
    "mediaGroup",
    "expand",
];
const BLOCKS_IN_LIST_ITEM: &[&str] = &["paragraph", "bulletList", "orderedList", "codeBlock"];
const BLOCKS_IN_QUOTE: &[&str] = &["paragraph", "bulletList", "orderedList", "codeBlock"];
const INLINE: &[&str] = &[
    "text",
    "hardBreak",
    "mention",
    "emoji",
    "inlineCard",
    "date",
    "status",
];
const MARKS: &[&str] = &[
    "em",
    "strong",
    "strike",
    "code",
    "link",
    "underline",
    "subsup",
    "textColor",
];

/// Checks `doc` against the ADF rules Jira enforces (structure, node placement, text and marks).
///
/// # Errors
/// What is wrong, with the path of the offending node. A value that is not an ADF document at
/// all gets Jira's own message.
pub fn validate(doc: &Value) -> Result<(), String> {
    let is_doc = doc.get("type").and_then(Value::as_str) == Some("doc");
    if !is_doc {
        return Err(
            "Operation value must be an Atlassian Document (see the Atlassian Document Format)"
                .into(),
        );
    }
    if doc.get("version").and_then(Value::as_u64) != Some(1) {
        return Err("doc: version must be 1".into());
    }
    children(doc, "doc", BLOCKS_IN_DOC, false, 1)
}

fn children(
    node: &Value,
    path: &str,
    allowed: &[&str],
    non_empty: bool,
    depth: usize,
) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Err(format!("{path}: nested deeper than {MAX_DEPTH} levels"));
    }
    let content = match node.get("content") {
        None => &Vec::new(),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(format!("{path}: content must be an array")),
    };
    if non_empty && content.is_empty() {
        return Err(format!("{path}: content must not be empty"));
    }
    for (i, child) in content.iter().enumerate() {
        let Some(kind) = child.get("type").and_then(Value::as_str) else {
            return Err(format!("{path}.content[{i}]: node without a type"));
        };
        let here = format!("{path}.content[{i}]({kind})");
        if !allowed.contains(&kind) {
            return Err(format!("{here}: {kind} is not allowed here"));
        }
        node_rules(child, kind, &here, depth + 1)?;
    }
    Ok(())
}

fn node_rules(node: &Value, kind: &str, path: &str, depth: usize) -> Result<(), String> {
    match kind {
        "paragraph" => children(node, path, INLINE, false, depth),
        "heading" => {
            let level = node.pointer("/attrs/level").and_then(Value::as_u64);
            if !matches!(level, Some(1..=6)) {
                return Err(format!("{path}: attrs.level must be 1 to 6"));
            }
            children(node, path, INLINE, false, depth)
        }
        "bulletList" | "orderedList" => children(node, path, &["listItem"], true, depth),
        "listItem" => children(node, path, BLOCKS_IN_LIST_ITEM, true, depth),
        "blockquote" => children(node, path, BLOCKS_IN_QUOTE, true, depth),
        "codeBlock" => {
            if let Some(language) = node.pointer("/attrs/language")
                && !language.is_string()
                && !language.is_null()
            {
                return Err(format!("{path}: attrs.language must be a string"));
            }
            children(node, path, &["text"], false, depth)?;
            for child in node["content"].as_array().into_iter().flatten() {
                if child
                    .get("marks")
                    .is_some_and(|m| m.as_array().is_none_or(|m| !m.is_empty()))
                {
                    return Err(format!("{path}: text in a codeBlock cannot have marks"));
                }
            }
            Ok(())
        }
        "text" => text_rules(node, path),
        "hardBreak" | "rule" => {
            if node
                .get("content")
                .is_some_and(|c| c.as_array().is_none_or(|c| !c.is_empty()))
            {
                return Err(format!("{path}: {kind} has no content"));
            }
            Ok(())
        }
        // Nodes this builder never makes; accepted as Jira accepts them.
        _ => Ok(()),
    }
}

fn text_rules(node: &Value, path: &str) -> Result<(), String> {
    let Some(text) = node.get("text").and_then(Value::as_str) else {
        return Err(format!("{path}: text node without text"));
    };
    if text.is_empty() {
        return Err(format!("{path}: text must not be empty"));
    }
    let in_code = path.contains("(codeBlock)");
    if !in_code && text.contains('\n') {
        return Err(format!(
            "{path}: text cannot contain a newline (use hardBreak)"
        ));
    }
    let marks = match node.get("marks") {
        None => return Ok(()),
        Some(Value::Array(marks)) => marks,
        Some(_) => return Err(format!("{path}: marks must be an array")),
    };
    let mut seen: Vec<&str> = Vec::new();
    for mark in marks {
        let Some(kind) = mark.get("type").and_then(Value::as_str) else {
            return Err(format!("{path}: mark without a type"));
        };
        if !MARKS.contains(&kind) {
            return Err(format!("{path}: unknown mark {kind}"));
        }
        if seen.contains(&kind) {
            return Err(format!("{path}: mark {kind} twice"));
        }
        if kind == "link"
            && mark
                .pointer("/attrs/href")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
        {
            return Err(format!("{path}: link mark without attrs.href"));
        }
        seen.push(kind);
    }
    if seen.contains(&"code") && seen.iter().any(|m| !matches!(*m, "code" | "link")) {
        return Err(format!(
            "{path}: the code mark can only be combined with link"
        ));
    }
    Ok(())
}

/// The number of characters of text in a document (what Jira's field limit counts, roughly).
pub fn text_length(doc: &Value) -> usize {
    let own = doc
        .get("text")
        .and_then(Value::as_str)
        .map_or(0, |t| t.chars().count());
    own + doc
        .get("content")
        .and_then(Value::as_array)
        .map_or(0, |c| c.iter().map(text_length).sum())
}
