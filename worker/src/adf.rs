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

use pulldown_cmark::{CodeBlockKind, Event, HeadingLevel, Options, Parser, Tag, TagEnd};
use serde_json::{Value, json};

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

/// Deepest node nesting [`validate`] accepts (far more than [`MAX_LIST_DEPTH`] lists produce).
const MAX_DEPTH: usize = 64;

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

/// One open node while the Markdown events are folded into a tree.
struct Frame {
    kind: FrameKind,
    content: Vec<Value>,
    /// Opened by the builder (text arrived where only blocks may go), not by the Markdown.
    implicit: bool,
}

#[derive(Debug, Clone, PartialEq)]
enum FrameKind {
    Doc,
    Paragraph,
    Heading(u8),
    /// A heading where ADF allows none: a paragraph whose text is bold.
    BoldParagraph,
    BlockQuote,
    CodeBlock(Option<String>),
    BulletList,
    OrderedList(u64),
    ListItem,
    /// A table row, rendered as one paragraph with ` | ` between cells.
    Row {
        cells: usize,
    },
    /// A raw HTML block, rendered as its text.
    Html,
}

impl FrameKind {
    fn takes_inline(&self) -> bool {
        matches!(
            self,
            FrameKind::Paragraph
                | FrameKind::Heading(_)
                | FrameKind::BoldParagraph
                | FrameKind::Row { .. }
                | FrameKind::Html
        )
    }
}

struct Builder {
    stack: Vec<Frame>,
    /// Active inline marks, outermost first.
    marks: Vec<Value>,
    /// Image destinations whose alt text has not shown up yet.
    images: Vec<(String, bool)>,
    /// For each open Markdown quote: whether it was flattened into its parent.
    quotes: Vec<bool>,
    /// For each open Markdown list: kept as an ADF list, or flattened (too deep).
    lists: Vec<ListShape>,
}

/// How an open Markdown list is rendered.
#[derive(Debug, Clone, Copy, PartialEq)]
enum ListShape {
    Kept,
    /// Each item becomes paragraphs; the number of the next item, for ordered lists.
    Flat(Option<u64>),
}

fn blocks(markdown: &str) -> Vec<Value> {
    if markdown.trim().is_empty() {
        return Vec::new();
    }
    let markdown = bounded(markdown);
    let options =
        Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TABLES | Options::ENABLE_TASKLISTS;
    let mut builder = Builder {
        stack: vec![Frame {
            kind: FrameKind::Doc,
            content: Vec::new(),
            implicit: false,
        }],
        marks: Vec::new(),
        images: Vec::new(),
        quotes: Vec::new(),
        lists: Vec::new(),
    };
    for event in Parser::new_ext(&markdown, options) {
        builder.event(event);
    }
    builder.finish()
}

impl Builder {
    fn top(&self) -> &FrameKind {
        self.stack.last().map_or(&FrameKind::Doc, |f| &f.kind)
    }

    fn inside(&self, kinds: &[FrameKind]) -> bool {
        self.stack.iter().any(|f| {
            kinds
                .iter()
                .any(|k| std::mem::discriminant(k) == std::mem::discriminant(&f.kind))
        })
    }

    fn in_code(&self) -> bool {
        matches!(self.top(), FrameKind::CodeBlock(_))
    }

    fn push(&mut self, kind: FrameKind) {
        self.close_implicit();
        self.stack.push(Frame {
            kind,
            content: Vec::new(),
            implicit: false,
        });
    }

    fn close_implicit(&mut self) {
        while self.stack.last().is_some_and(|f| f.implicit) {
            self.pop();
        }
    }

    /// Makes sure the top frame takes inline nodes (a tight list item gets text without a
    /// paragraph around it).
    fn inline_target(&mut self) {
        if !self.top().takes_inline() && !self.in_code() {
            self.stack.push(Frame {
                kind: FrameKind::Paragraph,
                content: Vec::new(),
                implicit: true,
            });
        }
    }

    fn event(&mut self, event: Event<'_>) {
        match event {
            Event::Start(tag) => self.start(tag),
            Event::End(tag) => self.end(tag),
            Event::Text(s) => self.add_text(&s),
            Event::Code(s) => self.add_code(&s),
            Event::Html(s) | Event::InlineHtml(s) => {
                if matches!(self.top(), FrameKind::Html) {
                    self.add_text(&s);
                } else {
                    self.add_text(s.trim_end_matches('\n'));
                }
            }
            Event::InlineMath(s) | Event::DisplayMath(s) => self.add_code(&s),
            Event::FootnoteReference(s) => self.add_text(&format!("[^{s}]")),
            Event::SoftBreak | Event::HardBreak => self.add_break(),
            Event::Rule => self.add_rule(),
            Event::TaskListMarker(done) => self.add_text(if done { "[x] " } else { "[ ] " }),
        }
    }

    fn start(&mut self, tag: Tag<'_>) {
        match tag {
            Tag::Paragraph if !self.top().takes_inline() => self.push(FrameKind::Paragraph),
            Tag::Heading { level, .. } => {
                if self.inside(&[FrameKind::ListItem, FrameKind::BlockQuote]) {
                    self.push(FrameKind::BoldParagraph);
                } else {
                    self.push(FrameKind::Heading(heading_level(level)));
                }
            }
            Tag::BlockQuote(_) => {
                // ADF forbids a quote in a quote (and in a list item): the inner one is flattened.
                let flatten = self.inside(&[FrameKind::BlockQuote, FrameKind::ListItem]);
                self.quotes.push(flatten);
                if flatten {
                    self.close_implicit();
                } else {
                    self.push(FrameKind::BlockQuote);
                }
            }
            Tag::CodeBlock(kind) => {
                let language = match kind {
                    CodeBlockKind::Fenced(info) => info
                        .split_whitespace()
                        .next()
                        .map(|l| clean(l, false))
                        .filter(|l| !l.is_empty()),
                    CodeBlockKind::Indented => None,
                };
                self.push(FrameKind::CodeBlock(language));
            }
            Tag::List(start) => {
                let depth = self
                    .stack
                    .iter()
                    .filter(|f| matches!(f.kind, FrameKind::BulletList | FrameKind::OrderedList(_)))
                    .count();
                if depth >= MAX_LIST_DEPTH {
                    self.lists.push(ListShape::Flat(start));
                    self.close_implicit();
                } else {
                    self.lists.push(ListShape::Kept);
                    self.push(match start {
                        Some(start) => FrameKind::OrderedList(start),
                        None => FrameKind::BulletList,
                    });
                }
            }
            Tag::Item => match self.lists.last_mut() {
                Some(ListShape::Flat(number)) => {
                    let prefix = match number {
                        Some(n) => {
                            let prefix = format!("{n}. ");
                            *n = n.saturating_add(1);
                            prefix
                        }
                        None => "• ".to_owned(),
                    };
                    self.close_implicit();
                    self.add_text(&prefix);
                }
                _ => self.push(FrameKind::ListItem),
            },
            Tag::TableHead | Tag::TableRow => self.push(FrameKind::Row { cells: 0 }),
            Tag::TableCell => {
                if let Some(Frame {
                    kind: FrameKind::Row { cells },
                    ..
                }) = self.stack.last_mut()
                {
                    *cells += 1;
                    if *cells > 1 {
                        self.add_text(" | ");
                    }
                }
            }
            Tag::HtmlBlock => self.push(FrameKind::Html),
            Tag::Emphasis => self.marks.push(json!({"type": "em"})),
            Tag::Strong => self.marks.push(json!({"type": "strong"})),
            Tag::Strikethrough => self.marks.push(json!({"type": "strike"})),
            Tag::Link { dest_url, .. } => self.marks.push(link_or_nothing(&dest_url)),
            Tag::Image { dest_url, .. } => {
                self.marks.push(link_or_nothing(&dest_url));
                self.images.push((dest_url.to_string(), false));
            }
            _ => {}
        }
    }

    fn end(&mut self, tag: TagEnd) {
        match tag {
            TagEnd::Paragraph => {
                if matches!(self.top(), FrameKind::Paragraph) {
                    self.pop();
                }
            }
            TagEnd::List(_) | TagEnd::Item => {
                self.close_implicit();
                let flat = matches!(self.lists.last(), Some(ListShape::Flat(_)));
                if matches!(tag, TagEnd::List(_)) {
                    self.lists.pop();
                }
                if !flat {
                    self.pop();
                }
            }
            TagEnd::Heading(_)
            | TagEnd::CodeBlock
            | TagEnd::TableHead
            | TagEnd::TableRow
            | TagEnd::HtmlBlock => {
                self.close_implicit();
                self.pop();
            }
            TagEnd::BlockQuote(_) => {
                self.close_implicit();
                let flattened = self.quotes.pop().unwrap_or(true);
                if !flattened && matches!(self.top(), FrameKind::BlockQuote) {
                    self.pop();
                }
            }
            TagEnd::Emphasis | TagEnd::Strong | TagEnd::Strikethrough | TagEnd::Link => {
                self.marks.pop();
            }
            TagEnd::Image => {
                if let Some((url, had_text)) = self.images.pop()
                    && !had_text
                {
                    self.add_text(&url);
                }
                self.marks.pop();
            }
            _ => {}
        }
    }

    /// Closes the top frame and adds its node to its parent.
    fn pop(&mut self) {
        if self.stack.len() <= 1 {
            return;
        }
        let Some(frame) = self.stack.pop() else {
            return;
        };
        let node = match frame.kind {
            FrameKind::Doc => return,
            FrameKind::Paragraph | FrameKind::Html | FrameKind::Row { .. } => {
                let content = trim_breaks(frame.content);
                if content.is_empty() {
                    return;
                }
                json!({"type": "paragraph", "content": content})
            }
            FrameKind::BoldParagraph => {
                let content: Vec<Value> = trim_breaks(frame.content)
                    .into_iter()
                    .map(|mut n| {
                        add_mark(&mut n, json!({"type": "strong"}));
                        n
                    })
                    .collect();
                if content.is_empty() {
                    return;
                }
                json!({"type": "paragraph", "content": content})
            }
            FrameKind::Heading(level) => {
                let content = trim_breaks(frame.content);
                if content.is_empty() {
                    return;
                }
                json!({"type": "heading", "attrs": {"level": level}, "content": content})
            }
            FrameKind::CodeBlock(language) => {
                let mut code: String = frame
                    .content
                    .iter()
                    .filter_map(|n| n["text"].as_str())
                    .collect();
                while code.ends_with('\n') {
                    code.pop();
                }
                let mut node = json!({"type": "codeBlock"});
                if let Some(language) = language {
                    node["attrs"] = json!({"language": language});
                }
                if !code.is_empty() {
                    node["content"] = json!([{"type": "text", "text": code}]);
                }
                node
            }
            FrameKind::BlockQuote => {
                if frame.content.is_empty() {
                    return;
                }
                json!({"type": "blockquote", "content": frame.content})
            }
            FrameKind::BulletList | FrameKind::OrderedList(_) => {
                if frame.content.is_empty() {
                    return;
                }
                match frame.kind {
                    FrameKind::OrderedList(start) if start != 1 => json!({
                        "type": "orderedList", "attrs": {"order": start}, "content": frame.content
                    }),
                    FrameKind::OrderedList(_) => {
                        json!({"type": "orderedList", "content": frame.content})
                    }
                    _ => json!({"type": "bulletList", "content": frame.content}),
                }
            }
            FrameKind::ListItem => {
                let mut content = frame.content;
                // ADF wants a list item to start with a paragraph.
                if content.first().is_none_or(|n| n["type"] != "paragraph") {
                    content.insert(0, json!({"type": "paragraph", "content": []}));
                }
                json!({"type": "listItem", "content": content})
            }
        };
        self.append_block(node);
    }

    /// Adds a finished block to the nearest frame that may hold it.
    fn append_block(&mut self, node: Value) {
        if let Some(frame) = self.stack.last_mut() {
            if frame.kind.takes_inline() {
                // A block ended inside inline content (cannot happen with well-formed events);
                // keep its text rather than break the document.
                frame.content.push(text(&plain_text(&node), &[]));
            } else {
                frame.content.push(node);
            }
        }
    }

    fn add_text(&mut self, s: &str) {
        if let Some(image) = self.images.last_mut() {
            image.1 = true;
        }
        if self.in_code() {
            let s = clean(s, true);
            if let Some(frame) = self.stack.last_mut()
                && !s.is_empty()
            {
                frame.content.push(json!({"text": s}));
            }
            return;
        }
        let s = clean(s, true);
        if s.is_empty() {
            return;
        }
        self.inline_target();
        let linked = self.marks.iter().any(|m| m["type"] == "link");
        for (i, line) in s.split('\n').enumerate() {
            if i > 0 {
                self.push_inline(json!({"type": "hardBreak"}));
            }
            if linked {
                self.push_text(line, self.active_marks(false));
            } else {
                for (piece, url) in linkify(line) {
                    let mut marks = self.active_marks(false);
                    if let Some(url) = url {
                        marks.push(link_mark(url));
                    }
                    self.push_text(piece, marks);
                }
            }
        }
    }

    fn add_code(&mut self, s: &str) {
        let s = clean(s, false);
        if s.is_empty() {
            return;
        }
        if self.in_code() {
            self.add_text(&s);
            return;
        }
        self.inline_target();
        let marks = self.active_marks(true);
        self.push_text(&s, marks);
    }

    fn add_break(&mut self) {
        if self.in_code() {
            self.add_text("\n");
        } else if self.top().takes_inline() {
            self.push_inline(json!({"type": "hardBreak"}));
        }
    }

    fn add_rule(&mut self) {
        if self.stack.len() == 1 || (self.stack.len() == 2 && self.stack[1].implicit) {
            self.close_implicit();
            self.append_block(json!({"type": "rule"}));
        } else {
            self.add_text("———");
            self.close_implicit();
        }
    }

    /// The marks for new text. Inline code keeps only a link (ADF allows no other mark with it).
    fn active_marks(&self, code: bool) -> Vec<Value> {
        let mut marks: Vec<Value> = Vec::new();
        for mark in &self.marks {
            if mark.is_null() || marks.iter().any(|m| m["type"] == mark["type"]) {
                continue;
            }
            if code && mark["type"] != "link" {
                continue;
            }
            marks.push(mark.clone());
        }
        if code {
            marks.insert(0, json!({"type": "code"}));
        }
        marks
    }

    fn push_text(&mut self, s: &str, marks: Vec<Value>) {
        if s.is_empty() {
            return;
        }
        self.push_inline(text(s, &marks));
    }

    fn push_inline(&mut self, node: Value) {
        if let Some(frame) = self.stack.last_mut() {
            frame.content.push(node);
        }
    }

    fn finish(mut self) -> Vec<Value> {
        while self.stack.len() > 1 {
            self.pop();
        }
        self.stack.pop().map(|f| f.content).unwrap_or_default()
    }
}

fn heading_level(level: HeadingLevel) -> u8 {
    match level {
        HeadingLevel::H1 => 1,
        HeadingLevel::H2 => 2,
        HeadingLevel::H3 => 3,
        HeadingLevel::H4 => 4,
        HeadingLevel::H5 => 5,
        HeadingLevel::H6 => 6,
    }
}

/// A link mark, or null (ignored) for an empty destination.
fn link_or_nothing(dest: &str) -> Value {
    let dest = clean(dest, false);
    if dest.trim().is_empty() {
        Value::Null
    } else {
        link_mark(dest.trim())
    }
}

fn add_mark(node: &mut Value, mark: Value) {
    if node["type"] != "text" {
        return;
    }
    let marks = node
        .as_object_mut()
        .map(|o| o.entry("marks").or_insert_with(|| json!([])));
    if let Some(Value::Array(marks)) = marks {
        let code = marks.iter().any(|m| m["type"] == "code");
        if !code && !marks.iter().any(|m| m["type"] == mark["type"]) {
            marks.push(mark);
        }
    }
}

/// Drops hard breaks at the start and end of a paragraph (they render as nothing useful).
fn trim_breaks(mut content: Vec<Value>) -> Vec<Value> {
    content.retain(|n| !n.is_null());
    while content.first().is_some_and(|n| n["type"] == "hardBreak") {
        content.remove(0);
    }
    while content.last().is_some_and(|n| n["type"] == "hardBreak") {
        content.pop();
    }
    content
}

/// The text of a node and its descendants.
fn plain_text(node: &Value) -> String {
    let mut out = node["text"].as_str().unwrap_or_default().to_owned();
    if let Some(children) = node["content"].as_array() {
        for child in children {
            out.push_str(&plain_text(child));
        }
    }
    out.replace('\n', " ")
}

/// Splits a line into pieces, each with the URL it is when it is a bare `http(s)://` URL.
fn linkify(line: &str) -> Vec<(&str, Option<&str>)> {
    let mut pieces = Vec::new();
    let mut rest = line;
    while let Some(start) = find_url_start(rest) {
        let tail = &rest[start..];
        let end = tail.find(char::is_whitespace).unwrap_or(tail.len());
        let url = tail[..end].trim_end_matches(['.', ',', ';', ':', '!', '?', ')', '"', '\'']);
        if url.len() <= "https://".len() {
            pieces.push((&rest[..start + end], None));
            rest = &rest[start + end..];
            continue;
        }
        if start > 0 {
            pieces.push((&rest[..start], None));
        }
        pieces.push((url, Some(url)));
        rest = &rest[start + url.len()..];
    }
    if !rest.is_empty() {
        pieces.push((rest, None));
    }
    pieces
}

fn find_url_start(s: &str) -> Option<usize> {
    let http = s.find("http://");
    let https = s.find("https://");
    match (http, https) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

// --- validation -----------------------------------------------------------------------------------

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

#[cfg(test)]
mod tests {
    use super::*;

    fn valid(doc: &Value) {
        if let Err(e) = validate(doc) {
            panic!(
                "invalid ADF: {e}\n{}",
                serde_json::to_string_pretty(doc).unwrap()
            );
        }
    }

    fn content(markdown: &str) -> Vec<Value> {
        let doc = markdown_to_adf(markdown);
        valid(&doc);
        doc["content"].as_array().unwrap().clone()
    }

    fn all_text(doc: &Value) -> String {
        match doc {
            Value::Array(blocks) => plain_text(&json!({"content": blocks})),
            doc => plain_text(doc),
        }
    }

    #[test]
    fn empty_and_whitespace_bodies_give_a_placeholder_description() {
        for body in ["", "   ", "\n\n\t  \r\n"] {
            let doc = issue_description("https://github.com/o/r/issues/1", "octo", body);
            valid(&doc);
            let blocks = doc["content"].as_array().unwrap();
            assert_eq!(blocks.len(), 2, "{doc}");
            assert_eq!(blocks[1]["content"][0]["text"], NO_DESCRIPTION);
            assert!(content(body).is_empty());
        }
    }

    #[test]
    fn a_plain_string_is_not_a_document() {
        let err = validate(&json!("just text")).unwrap_err();
        assert!(err.contains("Operation value must be an Atlassian Document"));
    }

    #[test]
    fn paragraphs_and_line_breaks_never_put_newlines_in_text() {
        let blocks =
            content("first line\nsecond line\r\nthird\n\nnext paragraph  \nwith hard break");
        assert_eq!(blocks.len(), 2);
        let first = blocks[0]["content"].as_array().unwrap();
        let kinds: Vec<&str> = first.iter().map(|n| n["type"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["text", "hardBreak", "text", "hardBreak", "text"]);
        assert_eq!(first[2]["text"], "second line");
    }

    #[test]
    fn code_fences_keep_language_and_newlines() {
        let blocks = content(
            "```rust\nfn main() {\n    println!(\"hi\");\n}\n```\n\n```\n```\n\n    indented\n",
        );
        assert_eq!(blocks[0]["type"], "codeBlock");
        assert_eq!(blocks[0]["attrs"]["language"], "rust");
        assert_eq!(
            blocks[0]["content"][0]["text"],
            "fn main() {\n    println!(\"hi\");\n}"
        );
        assert_eq!(blocks[1]["type"], "codeBlock");
        assert!(
            blocks[1].get("content").is_none(),
            "empty code block has no text node"
        );
        assert_eq!(blocks[2]["content"][0]["text"], "indented");
        assert!(blocks[2].get("attrs").is_none());
    }

    #[test]
    fn nested_mixed_lists() {
        let blocks = content(
            "- one\n  1. one.a\n     - deep *em*\n  2. one.b\n- two\n\n3. three\n4. four\n",
        );
        assert_eq!(blocks[0]["type"], "bulletList");
        let item = &blocks[0]["content"][0];
        assert_eq!(item["content"][0]["type"], "paragraph");
        assert_eq!(item["content"][1]["type"], "orderedList");
        let deep = &item["content"][1]["content"][0]["content"][1];
        assert_eq!(deep["type"], "bulletList");
        assert_eq!(blocks[1]["type"], "orderedList");
        assert_eq!(blocks[1]["attrs"]["order"], 3);
    }

    #[test]
    fn links_marks_and_bare_urls() {
        let blocks = content(
            "see [the docs](https://example.com/d) and https://example.org/x. **bold _both_** `code` ~~gone~~",
        );
        let inline = blocks[0]["content"].as_array().unwrap();
        let linked: Vec<&str> = inline
            .iter()
            .filter(|n| {
                n["marks"]
                    .as_array()
                    .is_some_and(|m| m.iter().any(|m| m["type"] == "link"))
            })
            .map(|n| n["text"].as_str().unwrap())
            .collect();
        assert_eq!(linked, ["the docs", "https://example.org/x"]);
        let both = inline.iter().find(|n| n["text"] == "both").unwrap();
        assert_eq!(both["marks"].as_array().unwrap().len(), 2);
        let code = inline.iter().find(|n| n["text"] == "code").unwrap();
        assert_eq!(code["marks"], json!([{"type": "code"}]));
    }

    #[test]
    fn inline_code_inside_bold_keeps_only_the_code_mark() {
        let blocks = content("**bold `code` [`linked code`](https://e.com)**");
        let inline = blocks[0]["content"].as_array().unwrap();
        let linked = inline.iter().find(|n| n["text"] == "linked code").unwrap();
        let marks: Vec<&str> = linked["marks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["type"].as_str().unwrap())
            .collect();
        assert_eq!(marks, ["code", "link"]);
    }

    #[test]
    fn emoji_and_control_characters() {
        let blocks = content("ship it 🚀👍🏽\u{0}\u{7}\u{1b}[31m red\u{8}");
        let text = all_text(&Value::Array(blocks));
        assert!(text.contains("🚀👍🏽"));
        assert!(
            !text.chars().any(|c| c.is_control() && c != '\t'),
            "{text:?}"
        );
    }

    #[test]
    fn headings_quotes_rules_tables_html_and_tasks() {
        let md = "# Title\n\n> quoted\n>\n> > nested quote\n>\n> ## heading in quote\n\n---\n\n\
                  | a | b |\n|---|---|\n| 1 | 2 |\n\n<details>\n<summary>x</summary>\n</details>\n\n\
                  - [ ] todo\n- [x] done\n\n![alt text](https://img/x.png) ![](https://img/y.png)\n";
        let blocks = content(md);
        let kinds: Vec<&str> = blocks.iter().map(|b| b["type"].as_str().unwrap()).collect();
        assert_eq!(kinds[0], "heading");
        assert_eq!(kinds[1], "blockquote");
        assert_eq!(kinds[2], "rule");
        let text = all_text(&Value::Array(blocks.clone()));
        assert!(text.contains("nested quote"));
        assert!(text.contains("a | b"));
        assert!(text.contains("1 | 2"));
        assert!(text.contains("<summary>x</summary>"));
        assert!(text.contains("[ ] todo") && text.contains("[x] done"));
        assert!(text.contains("alt text") && text.contains("https://img/y.png"));
    }

    #[test]
    fn structures_adf_forbids_are_rewritten() {
        // A heading and a rule inside a list item, a quote in a list item.
        let blocks = content("- # heading in item\n- ---\n- > quote in item\n");
        let text = all_text(&Value::Array(blocks));
        assert!(text.contains("heading in item") && text.contains("quote in item"));
    }

    #[test]
    fn a_65536_character_body_is_cut_below_jiras_limit() {
        let body = "word ".repeat(65_536 / 5) + "x";
        assert_eq!(body.chars().count(), 65_536);
        let doc = issue_description("https://github.com/o/r/issues/1", "octo", &body);
        valid(&doc);
        let length = text_length(&doc);
        assert!(length < 32_767, "{length}");
        assert!(all_text(&doc).contains("the full text, 65536 characters, is on GitHub"));
        let long_line = "é".repeat(65_536);
        valid(&markdown_to_adf(&long_line));
    }

    #[test]
    fn comment_body_carries_the_comment_url_verbatim() {
        let url = "https://github.com/o/r/issues/1#issuecomment-42";
        let doc = comment_body("octo", url, "thanks!");
        valid(&doc);
        assert!(doc.to_string().contains(url));
        assert!(all_text(&doc).contains("@octo commented on GitHub"));
    }

    #[test]
    fn the_validator_catches_what_jira_refuses() {
        let bad = [
            json!({"type": "doc", "version": 1, "content": [{"type": "paragraph", "content": [{"type": "text", "text": ""}]}]}),
            json!({"type": "doc", "version": 1, "content": [{"type": "paragraph", "content": [{"type": "text", "text": "a\nb"}]}]}),
            json!({"type": "doc", "version": 1, "content": [{"type": "text", "text": "loose"}]}),
            json!({"type": "doc", "version": 1, "content": [{"type": "bulletList", "content": []}]}),
            json!({"type": "doc", "version": 1, "content": [{"type": "paragraph", "content": [{"type": "text", "text": "x", "marks": [{"type": "code"}, {"type": "strong"}]}]}]}),
            json!({"type": "doc", "version": 1, "content": [{"type": "heading", "attrs": {"level": 7}, "content": []}]}),
            json!({"type": "doc", "content": []}),
        ];
        for doc in bad {
            assert!(validate(&doc).is_err(), "accepted {doc}");
        }
    }

    #[test]
    fn arbitrary_input_always_gives_a_valid_document() {
        // A deterministic sweep over awkward fragments and their combinations (no panics, always
        // valid), standing in for a property test without another dependency.
        let fragments = [
            "",
            " ",
            "\n",
            "\r\n",
            "*",
            "**",
            "_",
            "`",
            "```",
            "~~~",
            "> ",
            "- ",
            "1. ",
            "# ",
            "|",
            "---",
            "[",
            "](",
            ")",
            "<b>",
            "\u{0}",
            "\u{200b}",
            "🚀",
            "http://",
            "https://x.y",
            "\t",
            "    code",
            "[ ] ",
            "![",
            "\\",
            "&amp;",
            "<!--",
            "-->",
        ];
        for a in fragments {
            for b in fragments {
                for c in fragments {
                    let md = format!("{a}{b}text{c}\n{b}{a}");
                    let doc = markdown_to_adf(&md);
                    if let Err(e) = validate(&doc) {
                        panic!("{md:?}: {e}\n{doc}");
                    }
                }
            }
        }
    }

    #[test]
    fn lists_deeper_than_adf_keeps_become_prefixed_paragraphs() {
        let md = "1. one\n   - two\n     - three\n       - four\n         - five\n           - six\n             - seven\n               1. eight\n               2. nine\n";
        let blocks = content(md);
        let mut depth = 0;
        let mut node = &blocks[0];
        while let Some(list) =
            Some(node).filter(|n| n["type"] == "orderedList" || n["type"] == "bulletList")
        {
            depth += 1;
            let item = &list["content"][0];
            match item["content"]
                .as_array()
                .unwrap()
                .iter()
                .find(|n| n["type"] != "paragraph")
            {
                Some(inner) => node = inner,
                None => break,
            }
        }
        assert_eq!(depth, MAX_LIST_DEPTH);
        let text = all_text(&Value::Array(blocks));
        assert!(text.contains("• seven"), "{text}");
        assert!(
            text.contains("1. eight") && text.contains("2. nine"),
            "{text}"
        );
    }

    #[test]
    fn pathological_nesting_neither_overflows_the_stack_nor_breaks_the_document() {
        // Each would nest thousands of levels deep if rendered as written.
        for unit in [
            "1. ",
            "> - ",
            "- > ",
            "+ ",
            "> 1. ",
            "* a\n  * b\n    ",
            "- [ ] ",
        ] {
            let md = unit.repeat(30_000 / unit.len());
            let doc = issue_description("https://github.com/o/r/issues/1", "octo", &md);
            valid(&doc);
            assert!(text_length(&doc) < 32_767, "{unit:?}");
            assert!(!doc.to_string().is_empty());
        }
    }

    #[test]
    fn the_validator_refuses_absurd_depth_without_recursing_forever() {
        let mut node = json!({"type": "paragraph", "content": [{"type": "text", "text": "x"}]});
        for _ in 0..100 {
            node = json!({"type": "bulletList", "content": [{"type": "listItem", "content": [{"type": "paragraph", "content": []}, node]}]});
        }
        let doc = json!({"type": "doc", "version": 1, "content": [node]});
        assert!(validate(&doc).unwrap_err().contains("nested deeper"));
    }

    use proptest::strategy::Strategy as _;

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

        /// Any Unicode text, however odd, becomes a valid document without panicking.
        #[test]
        fn any_text_gives_a_valid_document(body in "\\PC{0,400}") {
            let doc = issue_description("https://github.com/o/r/issues/1", "octo", &body);
            proptest::prop_assert!(validate(&doc).is_ok(), "{:?}: {}", body, validate(&doc).unwrap_err());
        }

        /// Markdown-heavy text (markers, nesting, breaks, control characters) too.
        #[test]
        fn markdown_soup_gives_a_valid_document(
            pieces in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::sample::select(vec![
                        "\n", "\r\n", "\n\n", "  ", "    ", "\t", "- ", "* ", "+ ", "1. ", "2) ", "> ",
                        "# ", "###### ", "```", "~~~", "`", "**", "__", "*", "_", "~~", "[", "]", "(",
                        ")", "![", "](", "<", ">", "<b>", "</b>", "<!--", "-->", "|", "---", "===",
                        "[ ] ", "[x] ", "\\", "&amp;", "&#0;", "\u{0}", "\u{1b}", "\u{7f}", "\u{85}",
                        "\u{2028}", "\u{200b}", "🚀", "👍🏽", "https://e.com/x", "http://", "www.e.com",
                    ]).prop_map(str::to_owned),
                    "[a-z ]{1,8}",
                ],
                0..80,
            )
        ) {
            let body: String = pieces.concat();
            let doc = markdown_to_adf(&body);
            proptest::prop_assert!(validate(&doc).is_ok(), "{:?}: {}", body, validate(&doc).unwrap_err());
            let comment = comment_body("octo", "https://github.com/o/r/issues/1#issuecomment-1", &body);
            proptest::prop_assert!(validate(&comment).is_ok());
        }
    }
}
