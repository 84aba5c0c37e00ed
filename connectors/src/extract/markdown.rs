//! Markdown: the plain text of pulldown-cmark's events, with no markup left, and a title from
//! the front matter's `title:` or else the first heading (front matter may also give `author:`
//! and `lang:`).

use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};

use super::{Extracted, decode_text};

pub(super) fn extract(bytes: &[u8], declared_charset: Option<&str>) -> Extracted {
    let source = decode_text(bytes, declared_charset, false);
    let options = Options::ENABLE_TABLES
        | Options::ENABLE_FOOTNOTES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_YAML_STYLE_METADATA_BLOCKS;

    let mut text = String::with_capacity(source.len());
    let mut front_matter = String::new();
    let mut first_heading: Option<String> = None;
    let mut heading: Option<String> = None;
    let mut in_metadata = false;

    for event in Parser::new_ext(&source, options) {
        match event {
            Event::Start(Tag::MetadataBlock(_)) => in_metadata = true,
            Event::End(TagEnd::MetadataBlock(_)) => in_metadata = false,
            Event::Text(value) if in_metadata => front_matter.push_str(&value),
            Event::Start(Tag::Heading { .. }) => heading = Some(String::new()),
            Event::End(TagEnd::Heading(_)) => {
                if first_heading.is_none() {
                    first_heading = heading.take().filter(|h| !h.trim().is_empty());
                }
                heading = None;
                text.push_str("\n\n");
            }
            Event::Text(value)
            | Event::Code(value)
            | Event::InlineMath(value)
            | Event::DisplayMath(value) => {
                text.push_str(&value);
                if let Some(heading) = heading.as_mut() {
                    heading.push_str(&value);
                }
            }
            Event::SoftBreak => {
                text.push(' ');
                if let Some(heading) = heading.as_mut() {
                    heading.push(' ');
                }
            }
            Event::HardBreak | Event::Rule => text.push('\n'),
            Event::End(
                TagEnd::Paragraph
                | TagEnd::CodeBlock
                | TagEnd::BlockQuote(_)
                | TagEnd::List(_)
                | TagEnd::FootnoteDefinition
                | TagEnd::Table
                | TagEnd::DefinitionList,
            ) => text.push_str("\n\n"),
            Event::End(
                TagEnd::Item
                | TagEnd::TableHead
                | TagEnd::TableRow
                | TagEnd::DefinitionListTitle
                | TagEnd::DefinitionListDefinition,
            ) => text.push('\n'),
            Event::End(TagEnd::TableCell) => text.push(' '),
            // Raw HTML is markup, not text; footnote markers and task boxes carry no words.
            Event::Html(_)
            | Event::InlineHtml(_)
            | Event::FootnoteReference(_)
            | Event::TaskListMarker(_)
            | Event::Start(_)
            | Event::End(_) => {}
        }
    }

    Extracted {
        title: front_matter_field(&front_matter, "title").or(first_heading),
        text,
        language: front_matter_field(&front_matter, "lang")
            .or_else(|| front_matter_field(&front_matter, "language")),
        author: front_matter_field(&front_matter, "author"),
    }
}

/// The value of a top-level `key: value` line of YAML-ish front matter, unquoted.
fn front_matter_field(front_matter: &str, key: &str) -> Option<String> {
    front_matter.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        if name.trim() != key {
            return None;
        }
        let value = value.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
            .unwrap_or(value);
        (!value.is_empty()).then(|| value.to_owned())
    })
}
