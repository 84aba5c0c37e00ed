//! Text extraction shared by all connectors: bytes of a known format in, title, plain text,
//! language, author and the dates the document declares out.
//!
//! Every input is hostile until proven otherwise: sizes are checked before parsing, ZIP-based
//! formats are checked before inflating, XML entities are never expanded, a panicking PDF
//! parser is contained, and the output is capped. Extraction is blocking work; connectors run
//! it on `spawn_blocking`.

mod charset;
mod date;
mod html;
mod markdown;
mod office;
mod pdf;

use std::fmt;
use std::path::Path;

use chrono::{DateTime, Utc};

pub use charset::decode_text;
pub use date::parse_date;
pub(crate) use html::fragment_text;

/// Caps that keep one hostile or huge file from exhausting memory or time.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Inputs larger than this are refused before parsing.
    pub max_file_bytes: u64,
    /// ZIP-based formats: the most bytes all entries together may inflate to.
    pub max_uncompressed_bytes: u64,
    /// ZIP-based formats: the most entries an archive may have.
    pub max_zip_entries: usize,
    /// The extracted text is truncated to this many characters.
    pub max_text_chars: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_file_bytes: 50 * 1024 * 1024,
            max_uncompressed_bytes: 200 * 1024 * 1024,
            max_zip_entries: 10_000,
            max_text_chars: 2_000_000,
        }
    }
}

/// The formats text can be extracted from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Html,
    Markdown,
    Text,
    Pdf,
    Docx,
    Odt,
}

impl Format {
    /// The format a file name's extension names (case-insensitive), if supported.
    pub fn from_path(path: &Path) -> Option<Format> {
        Format::from_extension(path.extension()?.to_str()?)
    }

    /// The format a file name's extension names, if supported: `from_path` for a name
    /// without a folder, which needs no taking apart of a path.
    pub fn from_name(name: &str) -> Option<Format> {
        // As `Path::extension`: none for ".name" or a name without a dot.
        match name.as_bytes().iter().rposition(|&b| b == b'.') {
            Some(dot) if dot > 0 => Format::from_extension(&name[dot + 1..]),
            _ => None,
        }
    }

    fn from_extension(ext: &str) -> Option<Format> {
        const EXTENSIONS: [(&str, Format); 10] = [
            ("html", Format::Html),
            ("htm", Format::Html),
            ("xhtml", Format::Html),
            ("md", Format::Markdown),
            ("markdown", Format::Markdown),
            ("txt", Format::Text),
            ("text", Format::Text),
            ("pdf", Format::Pdf),
            ("docx", Format::Docx),
            ("odt", Format::Odt),
        ];
        // Compared without lowering a copy: a file share asks this for every file it walks.
        EXTENSIONS
            .iter()
            .find(|(known, _)| known.eq_ignore_ascii_case(ext))
            .map(|(_, format)| *format)
    }

    /// The format a MIME type names (parameters such as `; charset=` are ignored), if supported.
    pub fn from_mime(mime: &str) -> Option<Format> {
        let essence = mime.split(';').next()?.trim().to_ascii_lowercase();
        Some(match essence.as_str() {
            "text/html" | "application/xhtml+xml" => Format::Html,
            "text/markdown" | "text/x-markdown" => Format::Markdown,
            "text/plain" => Format::Text,
            "application/pdf" => Format::Pdf,
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document" => {
                Format::Docx
            }
            "application/vnd.oasis.opendocument.text" => Format::Odt,
            _ => return None,
        })
    }

    /// A short lowercase name, used in messages: "html", "markdown", "text", "pdf", "docx",
    /// "odt".
    pub fn name(self) -> &'static str {
        match self {
            Format::Html => "html",
            Format::Markdown => "markdown",
            Format::Text => "text",
            Format::Pdf => "pdf",
            Format::Docx => "docx",
            Format::Odt => "odt",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What extraction found. Empty strings are reported as `None`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Extracted {
    pub title: Option<String>,
    /// Plain text, whitespace normalised: words separated by single spaces, lines by `\n`,
    /// paragraphs by one empty line.
    pub text: String,
    /// The primary language subtag ("da", "en") when the document declares one.
    pub language: Option<String>,
    pub author: Option<String>,
    /// When the document says it was created or published: Markdown front matter `date:` (or
    /// `created:`), HTML
    /// `article:published_time` / `date` / `dcterms.created`, DOCX `dcterms:created`, ODT
    /// `meta:creation-date`, PDF `CreationDate`. A date the document gives without a zone is
    /// taken as UTC; one that cannot be read is left out.
    pub created: Option<DateTime<Utc>>,
    /// When the document says it was last changed: Markdown front matter `updated:` /
    /// `modified:` / `lastmod:`, HTML `article:modified_time` / `dcterms.modified`, DOCX
    /// `dcterms:modified`, ODT `dc:date`, PDF `ModDate`.
    pub modified: Option<DateTime<Utc>>,
}

/// Why a document's text could not be extracted.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    #[error("file is {size} bytes, over the limit of {limit} bytes")]
    TooLarge { size: u64, limit: u64 },

    #[error("archive has {entries} entries, over the limit of {limit}")]
    TooManyEntries { entries: usize, limit: usize },

    #[error("archive inflates to more than {limit} bytes (at least {size})")]
    TooLargeUncompressed { size: u64, limit: u64 },

    #[error("malformed {format} file: {reason}")]
    Malformed { format: Format, reason: String },
}

impl ExtractError {
    pub(crate) fn malformed(format: Format, reason: impl fmt::Display) -> Self {
        ExtractError::Malformed {
            format,
            reason: reason.to_string(),
        }
    }
}

/// Extracts title, text, language, author and dates from `bytes` in `format`.
///
/// `declared_charset` is the charset a transport declared (for example an HTTP
/// `Content-Type` header); it only matters for the text formats. Never panics on garbage: a
/// file that cannot be read gives an [`ExtractError`].
pub fn extract(
    bytes: &[u8],
    format: Format,
    limits: &Limits,
    declared_charset: Option<&str>,
) -> Result<Extracted, ExtractError> {
    let size = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
    if size > limits.max_file_bytes {
        return Err(ExtractError::TooLarge {
            size,
            limit: limits.max_file_bytes,
        });
    }
    let raw = match format {
        Format::Html => html::extract(bytes, declared_charset)?,
        Format::Markdown => markdown::extract(bytes, declared_charset),
        Format::Text => plain_text(bytes, declared_charset),
        Format::Pdf => pdf::extract(bytes)?,
        Format::Docx | Format::Odt => office::extract(bytes, format, limits)?,
    };
    Ok(finish(raw, limits))
}

/// Plain text: the first line is the title only when it is short enough to be one; a long
/// first line is just the start of the text.
fn plain_text(bytes: &[u8], declared_charset: Option<&str>) -> Extracted {
    const MAX_TITLE_LINE_CHARS: usize = 120;
    let text = decode_text(bytes, declared_charset, false);
    let title = text
        .lines()
        .map(str::trim)
        .find(|line| !line.is_empty())
        .filter(|line| line.chars().count() <= MAX_TITLE_LINE_CHARS)
        .map(str::to_owned);
    Extracted {
        title,
        text,
        ..Extracted::default()
    }
}

/// Normalises every field the same way, whatever the format, and applies the text cap.
fn finish(raw: Extracted, limits: &Limits) -> Extracted {
    let mut text = normalise_whitespace(&raw.text);
    truncate_chars(&mut text, limits.max_text_chars);
    Extracted {
        title: raw.title.as_deref().and_then(one_line),
        text,
        language: raw.language.as_deref().and_then(primary_language),
        author: raw.author.as_deref().and_then(one_line),
        created: raw.created,
        modified: raw.modified,
    }
}

/// Normalises `text` and drops its first line when that line is exactly `title` (compared
/// after normalising both), together with the empty line after it: a page that opens with its
/// own title would otherwise show the title twice in every result.
pub(crate) fn without_leading_title(text: &str, title: Option<&str>) -> String {
    let text = normalise_whitespace(text);
    let Some(title) = title.and_then(one_line) else {
        return text;
    };
    match text.strip_prefix(title.as_str()) {
        Some(rest) if rest.is_empty() || rest.starts_with('\n') => {
            rest.trim_start_matches('\n').to_owned()
        }
        _ => text,
    }
}

/// Collapses runs of whitespace (and control characters) inside lines to single spaces, drops
/// empty lines at the ends and keeps at most one empty line between paragraphs.
pub(crate) fn normalise_whitespace(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(1 << 20));
    let mut blank_pending = false;
    for line in text.lines() {
        let mut words = line
            .split(|c: char| c.is_whitespace() || c.is_control())
            .filter(|w| !w.is_empty())
            .peekable();
        if words.peek().is_none() {
            blank_pending = !out.is_empty();
            continue;
        }
        if !out.is_empty() {
            out.push('\n');
            if blank_pending {
                out.push('\n');
            }
        }
        blank_pending = false;
        for (i, word) in words.enumerate() {
            if i > 0 {
                out.push(' ');
            }
            out.push_str(word);
        }
    }
    out
}

/// A title or author: one line of normalised whitespace, capped so that a garbage "title" of
/// megabytes cannot end up in every result list; `None` when empty.
pub(crate) fn one_line(value: &str) -> Option<String> {
    const MAX_CHARS: usize = 500;
    let mut line = value
        .split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    truncate_chars(&mut line, MAX_CHARS);
    (!line.is_empty()).then_some(line)
}

/// The primary subtag of a language tag, lowercased: "da-DK" → "da", "EN_us" → "en".
pub(crate) fn primary_language(tag: &str) -> Option<String> {
    let primary = tag.trim().split(['-', '_']).next()?.to_ascii_lowercase();
    let plausible =
        (2..=3).contains(&primary.len()) && primary.bytes().all(|b| b.is_ascii_lowercase());
    plausible.then_some(primary)
}

/// Truncates to at most `max_chars` characters, always at a character boundary.
pub(crate) fn truncate_chars(text: &mut String, max_chars: usize) {
    if let Some((cut, _)) = text.char_indices().nth(max_chars) {
        text.truncate(cut);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalise_whitespace_keeps_paragraphs_and_collapses_runs() {
        let cases = [
            ("", ""),
            ("  a \t b  ", "a b"),
            ("a\n\n\n\nb", "a\n\nb"),
            ("\n\n a\r\nb \n\n", "a\nb"),
            ("a\u{a0}\u{a0}b\u{0}c", "a b c"),
        ];
        for (input, expected) in cases {
            assert_eq!(normalise_whitespace(input), expected, "input {input:?}");
        }
    }

    #[test]
    fn a_leading_title_line_is_dropped() {
        let cases = [
            ("Titel\n\nTekst.", Some("Titel"), "Tekst."),
            ("  Titel \n Tekst.", Some(" Titel"), "Tekst."),
            ("Titel", Some("Titel"), ""),
            (
                "Titel og mere\nTekst.",
                Some("Titel"),
                "Titel og mere\nTekst.",
            ),
            ("Titler\nTekst.", Some("Titel"), "Titler\nTekst."),
            ("Tekst.\nTitel", Some("Titel"), "Tekst.\nTitel"),
            ("Titel\nTekst.", Some(""), "Titel\nTekst."),
            ("Titel\nTekst.", None, "Titel\nTekst."),
        ];
        for (text, title, expected) in cases {
            assert_eq!(
                without_leading_title(text, title),
                expected,
                "{text:?} {title:?}"
            );
        }
    }

    #[test]
    fn truncation_respects_char_boundaries() {
        let mut s = "æøå".to_owned();
        truncate_chars(&mut s, 2);
        assert_eq!(s, "æø");
        let mut short = "ab".to_owned();
        truncate_chars(&mut short, 5);
        assert_eq!(short, "ab");
    }

    #[test]
    fn primary_language_subtags() {
        let cases = [
            ("da", Some("da")),
            ("da-DK", Some("da")),
            ("EN_us", Some("en")),
            ("", None),
            ("x", None),
            ("dansk", None),
        ];
        for (tag, expected) in cases {
            assert_eq!(primary_language(tag).as_deref(), expected, "tag {tag:?}");
        }
    }
}
