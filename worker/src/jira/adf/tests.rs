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
    let blocks = content("first line\nsecond line\r\nthird\n\nnext paragraph  \nwith hard break");
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
    let blocks =
        content("- one\n  1. one.a\n     - deep *em*\n  2. one.b\n- two\n\n3. three\n4. four\n");
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

#[test]
fn document_text_puts_blocks_on_their_own_lines() {
    let doc = json!({"type": "doc", "version": 1, "content": [
        {"type": "paragraph", "content": [
            {"type": "text", "text": "Deploy the agent."},
            {"type": "hardBreak"},
            {"type": "text", "text": "Budget: "},
            {"type": "text", "text": "1,500", "marks": [{"type": "strong"}]},
            {"type": "text", "text": " tokens"}
        ]},
        {"type": "bulletList", "content": [
            {"type": "listItem", "content": [{"type": "paragraph", "content": [{"type": "text", "text": "one"}]}]}
        ]}
    ]});
    assert_eq!(
        document_text(&doc),
        "Deploy the agent.\nBudget: 1,500 tokens\none\n"
    );
    assert_eq!(document_text(&json!("plain\ntext")), "plain\ntext");
    assert_eq!(document_text(&Value::Null), "");
    let mut deep = json!({"type": "text", "text": "bottom"});
    for _ in 0..200 {
        deep = json!({"type": "paragraph", "content": [deep]});
    }
    assert!(!document_text(&deep).contains("bottom"));
}
