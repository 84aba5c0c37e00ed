//! Markdown: the plain text of pulldown-cmark's events, with no markup left, and a title from
//! the front matter's `title:` or else the first heading. Front matter may also give
//! `author:`, `lang:` and the dates (`date:`, then `updated:`, `modified:` or `lastmod:`), and
//! never reaches the text.
//!
//! A heading that opens the document and serves as its title (or repeats the front matter's
//! title) is left out of the text, so that results do not show the title twice.

use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};

use super::{Extracted, date, decode_text, one_line};

pub(super) fn extract(bytes: &[u8], declared_charset: Option<&str>) -> Extracted {
    let source = decode_text(bytes, declared_charset, false);
    let (front_matter, body) = split_front_matter(&source);
    let field = |key: &str| front_matter.and_then(|fm| front_matter_field(fm, key));
    let declared_title = field("title");

    let options = Options::ENABLE_TABLES
        | Options::ENABLE_FOOTNOTES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS;

    let mut text = String::with_capacity(body.len());
    let mut first_heading: Option<String> = None;
    // The heading being read: its text, where it starts in `text`, and whether it opens the
    // document (nothing but markup and empty headings before it).
    let mut heading: Option<(String, usize, bool)> = None;

    for event in Parser::new_ext(body, options) {
        match event {
            Event::Start(Tag::Heading { .. }) => {
                let opens_document = first_heading.is_none() && text.trim().is_empty();
                heading = Some((String::new(), text.len(), opens_document));
            }
            Event::End(TagEnd::Heading(_)) => {
                if let Some((words, start, opens_document)) = heading.take() {
                    let words = one_line(&words);
                    let is_first = first_heading.is_none() && words.is_some();
                    let repeats_title = match (&declared_title, &words) {
                        (Some(title), Some(words)) => one_line(title).as_ref() == Some(words),
                        (None, Some(_)) => is_first,
                        (_, None) => false,
                    };
                    if is_first {
                        first_heading = words;
                    }
                    if opens_document && repeats_title {
                        text.truncate(start);
                        continue;
                    }
                }
                text.push_str("\n\n");
            }
            Event::Text(value)
            | Event::Code(value)
            | Event::InlineMath(value)
            | Event::DisplayMath(value) => {
                text.push_str(&value);
                if let Some((words, ..)) = heading.as_mut() {
                    words.push_str(&value);
                }
            }
            Event::SoftBreak => {
                text.push(' ');
                if let Some((words, ..)) = heading.as_mut() {
                    words.push(' ');
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

    let declared_date = |keys: &[&str]| {
        keys.iter()
            .filter_map(|key| field(key))
            .find_map(|value| date::parse_iso(&value))
    };
    Extracted {
        title: declared_title.or(first_heading),
        text,
        language: field("lang").or_else(|| field("language")),
        author: field("author"),
        created: declared_date(&["date", "created"]),
        modified: declared_date(&["updated", "modified", "lastmod"]),
    }
}

/// Splits YAML (`---` … `---` or `...`) or TOML (`+++` … `+++`) front matter off the start of
/// the source. Like static site generators, only a block on the very first line counts; the
/// opening line must be followed by a non-empty line, so that a document opening with a
/// thematic break is not mistaken for one. An unclosed block is no front matter.
fn split_front_matter(source: &str) -> (Option<&str>, &str) {
    let source_start = source.strip_prefix('\u{feff}').unwrap_or(source);
    let mut lines = source_start.split_inclusive('\n');
    let Some(opening) = lines.next() else {
        return (None, source);
    };
    let closing: &[&str] = match opening.trim_end() {
        "---" => &["---", "..."],
        "+++" => &["+++"],
        _ => return (None, source),
    };
    let content_start = opening.len();
    let mut at = content_start;
    for (index, line) in lines.enumerate() {
        if index == 0 && line.trim().is_empty() {
            return (None, source);
        }
        if closing.contains(&line.trim_end()) {
            let front_matter = &source_start[content_start..at];
            return (Some(front_matter), &source_start[at + line.len()..]);
        }
        at += line.len();
    }
    (None, source)
}

/// The value of a top-level `key: value` (YAML) or `key = value` (TOML) line of front matter,
/// unquoted. Indented lines belong to nested values and are never read.
fn front_matter_field(front_matter: &str, key: &str) -> Option<String> {
    front_matter.lines().find_map(|line| {
        if line.starts_with([' ', '\t']) {
            return None;
        }
        let (name, value) = line.split_once([':', '='])?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn front_matter_is_split_off_only_at_the_start() {
        let cases = [
            ("---\ntitle: A\n---\nTekst", Some("title: A\n"), "Tekst"),
            (
                "---\r\ntitle: A\r\n---\r\nTekst",
                Some("title: A\r\n"),
                "Tekst",
            ),
            (
                "\u{feff}---\ntitle: A\n...\nTekst",
                Some("title: A\n"),
                "Tekst",
            ),
            (
                "---\ntitle: A\n\nauthor: B\n---\n",
                Some("title: A\n\nauthor: B\n"),
                "",
            ),
            (
                "+++\ntitle = \"A\"\n+++\nTekst",
                Some("title = \"A\"\n"),
                "Tekst",
            ),
            ("---\n\nTekst\n---\n", None, "---\n\nTekst\n---\n"),
            (
                "---\ntitle: A\nuden slutning",
                None,
                "---\ntitle: A\nuden slutning",
            ),
            ("\n---\ntitle: A\n---\n", None, "\n---\ntitle: A\n---\n"),
            ("Tekst\n---\n", None, "Tekst\n---\n"),
            ("", None, ""),
        ];
        for (source, front_matter, body) in cases {
            assert_eq!(
                split_front_matter(source),
                (front_matter, body),
                "{source:?}"
            );
        }
    }

    #[test]
    fn front_matter_fields() {
        let front_matter = "title: \"Rejse: regler\"\ndate: 2026-10-14 09:30\nempty:\n\
event:\n  author: Nested\nlang = 'da'\n";
        let cases = [
            ("title", Some("Rejse: regler")),
            ("date", Some("2026-10-14 09:30")),
            ("lang", Some("da")),
            ("empty", None),
            ("author", None),
            ("missing", None),
        ];
        for (key, expected) in cases {
            assert_eq!(
                front_matter_field(front_matter, key).as_deref(),
                expected,
                "{key}"
            );
        }
    }
}
