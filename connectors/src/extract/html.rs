//! HTML: the title, the main content (readability first, the whole body as a fallback), the
//! declared language, author and dates.
//!
//! Intranet pages title themselves "Page – Section – Site"; the title is the page's part of
//! that where it can be told apart (see [`choose_title`]), and a main text that opens with the
//! title does not repeat it.

use chrono::{DateTime, Utc};
use dom_smoothie::{Config, Readability, TextMode};
use scraper::{ElementRef, Html, Node, Selector};

use super::{ExtractError, Extracted, Format, date, decode_text, one_line, without_leading_title};

/// Readability scores every element; above this many the page is not an article anyway, and
/// the plain body text is both faster and more complete.
const MAX_READABILITY_ELEMENTS: usize = 200_000;

/// Readability's scoring is at least quadratic in nesting depth and recurses; real pages stay
/// far below this depth, so deeper documents get the plain body text instead.
const MAX_READABILITY_DEPTH: usize = 256;

/// html5ever has no nesting limit and its tree builder scans the stack of open elements for
/// most start tags, so parsing is quadratic in depth: a few megabytes of `<div>` would take
/// hours. Documents estimated deeper than this are refused before parsing.
const MAX_NESTING: usize = 4_096;

/// Elements removed before readability runs (it strips scripts and styles itself).
const READABILITY_REMOVED: &str = "nav, header, footer, noscript, template";

/// `<meta>` names or properties (compared case-insensitively, `:` and `.` alike) that give the
/// publication date, best first.
const CREATED_META: &[&str] = &["article:published_time", "dcterms.created", "date"];

/// `<meta>` names or properties that give the date of the last change, best first.
const MODIFIED_META: &[&str] = &["article:modified_time", "dcterms.modified"];

/// Separators between the parts of a `<title>` such as "Page – Section – Site".
const TITLE_SEPARATORS: &[char] = &['|', '-', '–', '—', '·', '•', ':', '»', '›', '>', '/', '\\'];

/// Elements whose text is never content.
const SKIPPED: &[&str] = &[
    "head", "script", "style", "noscript", "template", "nav", "header", "footer",
];

/// Elements that start a new line in the fallback text.
const BLOCKS: &[&str] = &[
    "address",
    "article",
    "aside",
    "blockquote",
    "br",
    "dd",
    "div",
    "dl",
    "dt",
    "figcaption",
    "figure",
    "form",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "li",
    "main",
    "ol",
    "p",
    "pre",
    "section",
    "table",
    "tr",
    "ul",
];

pub(super) fn extract(
    bytes: &[u8],
    declared_charset: Option<&str>,
) -> Result<Extracted, ExtractError> {
    let source = decode_text(bytes, declared_charset, true);
    let estimated = estimated_nesting(&source);
    if estimated > MAX_NESTING {
        return Err(ExtractError::malformed(
            Format::Html,
            format!("elements nested about {estimated} deep, over the limit of {MAX_NESTING}"),
        ));
    }
    let document = Html::parse_document(&source);

    let root = document.root_element();
    let language = root
        .attr("lang")
        .or_else(|| root.attr("xml:lang"))
        .map(str::to_owned);
    let author = meta_author(&document);
    let readable = if tree_depth(&document) <= MAX_READABILITY_DEPTH {
        readable(&source)
    } else {
        None
    };
    let title = choose_title(
        first_text(&document, "head title").or_else(|| first_text(&document, "title")),
        readable.as_ref().and_then(|r| r.title.clone()),
        &headings(&document),
    );
    let created = meta_date(&document, CREATED_META).or_else(|| {
        readable
            .as_ref()
            .and_then(|r| r.published.as_deref())
            .and_then(date::parse_iso)
    });
    let modified = meta_date(&document, MODIFIED_META).or_else(|| {
        readable
            .as_ref()
            .and_then(|r| r.modified.as_deref())
            .and_then(date::parse_iso)
    });
    let text = match readable {
        Some(Readable {
            text: Some(text), ..
        }) => text,
        _ => body_text(&document),
    };
    let text = without_leading_title(&text, title.as_deref());

    Ok(Extracted {
        title,
        text,
        language,
        author,
        created,
        modified,
    })
}

/// The page's title: the part of `<title>` that names the page rather than the section and the
/// site.
///
/// - readability's (dom_smoothie's) title when it differs from the `<title>`: it comes from
///   `og:title`, `dc:title` or JSON-LD `headline` where the page has them, and otherwise it is
///   the `<title>` with a trailing site name cut off where its heuristics dare to;
/// - then the page's only `<h1>`, when the title so far starts with it or contains it as one
///   of its separated parts ("Bestil software" in "Bestil software – IT-hjælp – Samle
///   Kommune"): readability keeps short titles whole, and a CMS's "Page | Section" is left
///   with the section;
/// - else that title, else the first `<h1>`.
///
/// `h1s` holds the page's non-empty `<h1>`s (at least the first two, if there are that many).
fn choose_title(raw: Option<String>, cleaned: Option<String>, h1s: &[String]) -> Option<String> {
    let raw = raw.as_deref().and_then(one_line);
    let cleaned = cleaned
        .as_deref()
        .and_then(one_line)
        .filter(|cleaned| Some(cleaned) != raw.as_ref());
    let title = cleaned.or(raw);
    let only_h1 = match h1s {
        [only] => Some(only),
        _ => None,
    };
    match (title, only_h1) {
        (Some(title), Some(h1)) if is_title_part(&title, h1) => Some(h1.clone()),
        (Some(title), _) => Some(title),
        (None, _) => h1s.first().cloned(),
    }
}

/// True when `part` is `title`, or one of its parts between separators such as " – " or " | ".
fn is_title_part(title: &str, part: &str) -> bool {
    if part.is_empty() {
        return false;
    }
    let bounded_before = |before: &str| {
        before.is_empty()
            || (before.ends_with(char::is_whitespace)
                && before.trim_end().ends_with(TITLE_SEPARATORS))
    };
    let bounded_after = |after: &str| {
        after.is_empty()
            || (after.starts_with(char::is_whitespace)
                && after.trim_start().starts_with(TITLE_SEPARATORS))
            || after
                .strip_prefix(TITLE_SEPARATORS)
                .is_some_and(|rest| rest.starts_with(char::is_whitespace))
    };
    title
        .match_indices(part)
        .any(|(at, _)| bounded_before(&title[..at]) && bounded_after(&title[at + part.len()..]))
}

/// The text of the first two non-empty `<h1>`s, normalised: enough to tell the first one and
/// whether it is the only one.
fn headings(document: &Html) -> Vec<String> {
    let Some(h1) = selector("h1") else {
        return Vec::new();
    };
    document
        .select(&h1)
        .filter_map(|heading| one_line(&heading.text().collect::<String>()))
        .take(2)
        .collect()
}

/// The first date among `<meta>` elements named (or with the property) `keys`, in the order of
/// `keys`; a value that cannot be read is skipped.
fn meta_date(document: &Html, keys: &[&str]) -> Option<DateTime<Utc>> {
    let metas: Vec<(String, &str)> = document
        .select(&selector("meta")?)
        .filter_map(|meta| {
            let key = meta.attr("property").or_else(|| meta.attr("name"))?;
            let key = key.trim().to_ascii_lowercase().replace(':', ".");
            Some((key, meta.attr("content")?))
        })
        .collect();
    keys.iter().find_map(|key| {
        let key = key.replace(':', ".");
        metas
            .iter()
            .filter(|(name, _)| *name == key)
            .find_map(|(_, content)| date::parse_iso(content))
    })
}

/// A linear, deliberately rough estimate of how deeply a document nests its elements: start
/// tags of elements that can contain others count up, end tags count down. Elements the parser
/// closes implicitly (`<p>`, `<li>`, ...) and void elements are not counted, so ordinary
/// sloppy HTML does not look deep. It only has to tell "a page" from "an attack".
fn estimated_nesting(source: &str) -> usize {
    const NOT_NESTING: &[&str] = &[
        "area", "base", "br", "col", "dd", "dt", "embed", "hr", "img", "input", "li", "link",
        "meta", "option", "p", "param", "source", "td", "th", "tr", "track", "wbr",
    ];
    let bytes = source.as_bytes();
    let (mut depth, mut deepest) = (0usize, 0usize);
    let mut at = 0;
    while let Some(offset) = bytes[at..].iter().position(|&b| b == b'<') {
        at += offset + 1;
        let closing = bytes.get(at) == Some(&b'/');
        let start = if closing { at + 1 } else { at };
        let length = bytes[start..]
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric())
            .count();
        if length == 0 || !bytes[start].is_ascii_alphabetic() {
            continue;
        }
        let name = &source[start..start + length];
        if NOT_NESTING.iter().any(|n| n.eq_ignore_ascii_case(name)) {
            continue;
        }
        if closing {
            depth = depth.saturating_sub(1);
        } else {
            depth += 1;
            deepest = deepest.max(depth);
        }
    }
    deepest
}

/// The deepest element nesting of a parsed document, found without recursion.
fn tree_depth(document: &Html) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(*document.root_element(), 1usize)];
    while let Some((node, depth)) = stack.pop() {
        deepest = deepest.max(depth);
        stack.extend(
            node.children()
                .filter(|child| child.value().is_element())
                .map(|child| (child, depth + 1)),
        );
    }
    deepest
}

/// What readability (dom_smoothie) makes of a page.
struct Readable {
    /// The main content, or `None` when readability found none.
    text: Option<String>,
    title: Option<String>,
    published: Option<String>,
    modified: Option<String>,
}

/// Runs readability; `None` when it cannot even start.
fn readable(source: &str) -> Option<Readable> {
    let config = Config {
        text_mode: TextMode::Formatted,
        max_elements_to_parse: MAX_READABILITY_ELEMENTS,
        ..Config::default()
    };
    let mut readability = Readability::new(source, None, Some(config)).ok()?;
    // Readability keeps navigation and page chrome on short pages; they are never content,
    // and the fallback drops them too.
    readability.doc.select(READABILITY_REMOVED).remove();
    let Ok(article) = readability.parse() else {
        // No main content; the metadata is still worth having.
        let metadata = readability.get_article_metadata(None);
        return Some(Readable {
            text: None,
            title: Some(metadata.title),
            published: metadata.published_time,
            modified: metadata.modified_time,
        });
    };
    let text: &str = &article.text_content;
    Some(Readable {
        text: (!text.trim().is_empty()).then(|| text.to_owned()),
        title: Some(article.title),
        published: article.published_time,
        modified: article.modified_time,
    })
}

/// Every text node of the body except navigation, scripts and styles, with line breaks at
/// block elements.
///
/// The walk uses an explicit stack rather than recursion: a hostile page can nest elements
/// deeply enough to overflow a thread's stack.
fn body_text(document: &Html) -> String {
    let start = first(document, "body").unwrap_or_else(|| document.root_element());
    block_text(start)
}

/// The text of an HTML fragment such as a feed item's description: tags dropped, entities
/// decoded, scripts, styles and navigation left out, block elements on lines of their own.
pub(crate) fn fragment_text(fragment: &str) -> String {
    let html = Html::parse_fragment(fragment);
    block_text(html.root_element())
}

fn block_text(start: ElementRef<'_>) -> String {
    enum Step<N> {
        Visit(N),
        Newline,
    }
    let mut out = String::new();
    let mut stack = vec![Step::Visit(*start)];
    while let Some(step) = stack.pop() {
        let node = match step {
            Step::Newline => {
                out.push('\n');
                continue;
            }
            Step::Visit(node) => node,
        };
        match node.value() {
            Node::Text(text) => out.push_str(text),
            Node::Element(element) => {
                let name = element.name();
                if SKIPPED.contains(&name) {
                    continue;
                }
                if BLOCKS.contains(&name) {
                    out.push('\n');
                    stack.push(Step::Newline);
                } else if matches!(name, "td" | "th") {
                    out.push(' ');
                }
                stack.extend(node.children().rev().map(Step::Visit));
            }
            _ => {}
        }
    }
    out
}

fn meta_author(document: &Html) -> Option<String> {
    document
        .select(&selector("meta")?)
        .find(|meta| {
            meta.attr("name")
                .is_some_and(|name| name.trim().eq_ignore_ascii_case("author"))
        })
        .and_then(|meta| meta.attr("content"))
        .map(str::to_owned)
}

fn selector(css: &str) -> Option<Selector> {
    Selector::parse(css).ok()
}

fn first<'a>(document: &'a Html, css: &str) -> Option<ElementRef<'a>> {
    document.select(&selector(css)?).next()
}

fn first_text(document: &Html, css: &str) -> Option<String> {
    let text = first(document, css)?.text().collect::<String>();
    (!text.trim().is_empty()).then_some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_prefer_the_part_that_names_the_page() {
        let owned = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        // (<title>, readability's title, the h1s, expected)
        type Case = (
            Option<&'static str>,
            Option<&'static str>,
            &'static [&'static str],
            Option<&'static str>,
        );
        let cases: [Case; 12] = [
            (
                Some("Bestil software – IT-hjælp – Samle Kommune"),
                Some("Bestil software – IT-hjælp – Samle Kommune"),
                &["Bestil software"],
                Some("Bestil software"),
            ),
            (
                Some("Kantinen åbner | Nyheder | Samle"),
                Some("Kantinen åbner | Nyheder"),
                &["Kantinen åbner"],
                Some("Kantinen åbner"),
            ),
            (
                Some("Nyheder: Kantinen  åbner"),
                None,
                &["Kantinen åbner"],
                Some("Kantinen åbner"),
            ),
            (
                Some("Nyheder – Kantinen åbner – Samle"),
                None,
                &["Kantinen åbner"],
                Some("Kantinen åbner"),
            ),
            (
                Some("Kantinen åbner – Samle"),
                Some("Sådan åbner kantinen"),
                &["Kantinen åbner"],
                Some("Sådan åbner kantinen"),
            ),
            (
                Some("Kantinen åbner – Samle"),
                Some("Kantinen åbner"),
                &["Kantinen"],
                Some("Kantinen åbner"),
            ),
            (
                Some("Samle Kommune"),
                None,
                &["Samle"],
                Some("Samle Kommune"),
            ),
            (Some("IT-hjælp"), None, &["IT"], Some("IT-hjælp")),
            (Some("A – B"), None, &["A", "B"], Some("A – B")),
            (None, None, &["Første", "Anden"], Some("Første")),
            (Some("  "), Some(""), &[], None),
            (
                None,
                Some("Fra og:title"),
                &["Overskrift"],
                Some("Fra og:title"),
            ),
        ];
        for (raw, cleaned, h1s, expected) in cases {
            assert_eq!(
                choose_title(
                    raw.map(str::to_owned),
                    cleaned.map(str::to_owned),
                    &owned(h1s)
                )
                .as_deref(),
                expected,
                "{raw:?} {cleaned:?} {h1s:?}"
            );
        }
    }
}
