//! Atlassian Document Format (ADF) built from GitHub-flavoured Markdown.
//!
//! Jira REST v3 refuses plain strings for descriptions and comment bodies ("Operation value must be
//! an Atlassian Document"), and refuses documents that break ADF's rules. The rules this builder
//! keeps, whatever the input:
//! - a text node is never empty and never holds a newline (line breaks are `hardBreak` nodes),
//!   except inside a `codeBlock`, whose text keeps its newlines;
//! - control characters other than tab (and newline in code) are dropped;
//! - the `code` mark is combined with nothing but `link`;
//! - every node sits where ADF allows it: a heading inside a list item or quote becomes a bold
//!   paragraph, a quote inside a quote is flattened, a rule inside them becomes text, tables become
//!   one paragraph per row;
//! - a document is never empty: an empty or whitespace-only body gives a placeholder paragraph;
//! - the text stays under Jira's 32,767-character field limit: longer bodies are cut at
//!   [`MAX_BODY_CHARS`] with a note pointing at GitHub (GitHub allows 65,536).
//!
//! GitHub renders a single newline in issues and comments as a line break, so soft breaks become
//! `hardBreak` too. Bare `http(s)://` URLs get a link mark, as GitHub links them.
//!
//! [`validate`] checks the same rules structurally; the Jira fake in the test suite uses it to refuse
//! what Jira would refuse.

mod markdown;
#[cfg(test)]
mod tests;
mod validate;

use serde_json::{Value, json};

use markdown::blocks;
pub use validate::{text_length, validate};

/// Longest body (in characters) put into one Jira field; Jira's limit is 32,767 and the header
/// paragraph and the truncation note need room.
pub const MAX_BODY_CHARS: usize = 30_000;

/// What [`issue_description`] says when the GitHub issue has no body.
const NO_DESCRIPTION: &str = "(no description)";

/// Deepest list nesting kept as ADF lists; items of deeper lists become paragraphs (prefixed
/// `• ` or `N. `) inside the deepest kept item. Markdown nests without limit (`1. 1. 1. …`), and a
/// document as deep as a 30,000-character body allows would overflow the stack of whatever walks
/// it recursively — serializing, dropping, validating — and Jira's editor shows six levels anyway.
pub const MAX_LIST_DEPTH: usize = 6;

/// A whole document from Markdown.
pub fn markdown_to_adf(markdown: &str) -> Value {
    doc(blocks(markdown))
}

/// The Jira description of a GitHub issue: who opened it where, then its body.
pub fn issue_description(github_url: &str, author_login: &str, body_markdown: &str) -> Value {
    let mut content = vec![paragraph(vec![
        text("GitHub issue: ", &[]),
        text(github_url, &[link_mark(github_url)]),
        text(&format!(" opened by @{author_login}"), &[]),
    ])];
    let body = blocks(body_markdown);
    if body.is_empty() {
        content.push(paragraph(vec![text(
            NO_DESCRIPTION,
            &[json!({"type": "em"})],
        )]));
    } else {
        content.extend(body);
    }
    doc(content)
}

/// A Jira comment mirroring a GitHub comment. The comment's URL appears verbatim (it is the marker
/// by which the worker recognises a comment it already posted).
pub fn comment_body(author_login: &str, comment_url: &str, body_markdown: &str) -> Value {
    let mut content = vec![paragraph(vec![
        text(&format!("@{author_login} commented on GitHub: "), &[]),
        text(comment_url, &[link_mark(comment_url)]),
    ])];
    content.extend(blocks(body_markdown));
    doc(content)
}

fn doc(content: Vec<Value>) -> Value {
    json!({"type": "doc", "version": 1, "content": content})
}

fn paragraph(content: Vec<Value>) -> Value {
    let content: Vec<Value> = content.into_iter().filter(|n| !n.is_null()).collect();
    json!({"type": "paragraph", "content": content})
}

/// A text node, or `Value::Null` when nothing printable is left (callers drop nulls).
fn text(s: &str, marks: &[Value]) -> Value {
    if s.is_empty() {
        return Value::Null;
    }
    let mut node = json!({"type": "text", "text": s});
    if !marks.is_empty() {
        node["marks"] = Value::Array(marks.to_vec());
    }
    node
}

fn link_mark(href: &str) -> Value {
    json!({"type": "link", "attrs": {"href": href}})
}

/// Drops control characters (keeping tab, and newline when `keep_newline`), and turns CR LF / CR
/// into LF.
fn clean(s: &str, keep_newline: bool) -> String {
    let s = s.replace("\r\n", "\n").replace('\r', "\n");
    s.chars()
        .filter(|&c| c == '\t' || (c == '\n' && keep_newline) || !c.is_control())
        .collect()
}

/// Cuts a body longer than [`MAX_BODY_CHARS`] and says so.
fn bounded(markdown: &str) -> std::borrow::Cow<'_, str> {
    match markdown.char_indices().nth(MAX_BODY_CHARS) {
        None => markdown.into(),
        Some((cut, _)) => format!(
            "{}\n\n… (cut here: the full text, {} characters, is on GitHub)",
            &markdown[..cut],
            markdown.chars().count()
        )
        .into(),
    }
}

/// The text of a document as a reader sees it: blocks (paragraphs, headings, list items, code,
/// quotes) on lines of their own, hard breaks as newlines. A plain string is returned as it is,
/// so a field Jira gives as either (REST v2 or a plain text field, or ADF in v3) reads the same.
pub fn document_text(doc: &Value) -> String {
    fn walk(node: &Value, out: &mut String, depth: usize) {
        if depth > MAX_WALK_DEPTH {
            return;
        }
        match node.get("type").and_then(Value::as_str) {
            Some("text") => out.push_str(node.get("text").and_then(Value::as_str).unwrap_or("")),
            Some("hardBreak") => out.push('\n'),
            _ => {}
        }
        if let Some(children) = node.get("content").and_then(Value::as_array) {
            for child in children {
                walk(child, out, depth + 1);
            }
        }
        let block = matches!(
            node.get("type").and_then(Value::as_str),
            Some("paragraph" | "heading" | "codeBlock" | "listItem" | "blockquote" | "tableRow")
        );
        if block && !out.ends_with('\n') {
            out.push('\n');
        }
    }
    match doc {
        Value::String(text) => text.clone(),
        Value::Object(_) => {
            let mut out = String::new();
            walk(doc, &mut out, 0);
            out
        }
        _ => String::new(),
    }
}

/// How deep [`document_text`] follows nesting (a document from outside may be arbitrarily deep).
const MAX_WALK_DEPTH: usize = 64;

/// The text of a node and its descendants.
pub(crate) fn plain_text(node: &Value) -> String {
    let mut out = node["text"].as_str().unwrap_or_default().to_owned();
    if let Some(children) = node["content"].as_array() {
        for child in children {
            out.push_str(&plain_text(child));
        }
    }
    out.replace('\n', " ")
}
