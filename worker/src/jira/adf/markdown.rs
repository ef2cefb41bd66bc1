//! The Markdown → ADF builder: pulldown-cmark events folded into a tree of ADF nodes that keeps
//! the rules listed in the module above.

use pulldown_cmark::{CodeBlockKind, Event, HeadingLevel, Options, Parser, Tag, TagEnd};
use serde_json::{Value, json};

use super::{MAX_LIST_DEPTH, bounded, clean, link_mark, plain_text, text};

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

pub(super) fn blocks(markdown: &str) -> Vec<Value> {
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
