//! HTML: the title, the main content (readability first, the whole body as a fallback), the
//! declared language and author.

use dom_smoothie::{Config, Readability, TextMode};
use scraper::{ElementRef, Html, Node, Selector};

use super::{ExtractError, Extracted, Format, decode_text};

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

    let title = first_text(&document, "head title")
        .or_else(|| first_text(&document, "title"))
        .or_else(|| first_text(&document, "h1"));
    let root = document.root_element();
    let language = root
        .attr("lang")
        .or_else(|| root.attr("xml:lang"))
        .map(str::to_owned);
    let author = meta_author(&document);
    let readable = if tree_depth(&document) <= MAX_READABILITY_DEPTH {
        readable_text(&source)
    } else {
        None
    };
    let text = readable.unwrap_or_else(|| body_text(&document));

    Ok(Extracted {
        title,
        text,
        language,
        author,
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

/// The main content as readability (dom_smoothie) sees it, or `None` when it finds nothing.
fn readable_text(source: &str) -> Option<String> {
    let config = Config {
        text_mode: TextMode::Formatted,
        max_elements_to_parse: MAX_READABILITY_ELEMENTS,
        ..Config::default()
    };
    let mut readability = Readability::new(source, None, Some(config)).ok()?;
    // Readability keeps navigation and page chrome on short pages; they are never content,
    // and the fallback drops them too.
    readability.doc.select(READABILITY_REMOVED).remove();
    let article = readability.parse().ok()?;
    let text: &str = &article.text_content;
    (!text.trim().is_empty()).then(|| text.to_owned())
}

/// Every text node of the body except navigation, scripts and styles, with line breaks at
/// block elements.
///
/// The walk uses an explicit stack rather than recursion: a hostile page can nest elements
/// deeply enough to overflow a thread's stack.
fn body_text(document: &Html) -> String {
    enum Step<N> {
        Visit(N),
        Newline,
    }
    let start = first(document, "body").unwrap_or_else(|| document.root_element());
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
