//! DOCX and ODT: one small reader for both. Both are ZIP archives holding XML; they differ
//! only in which entries hold the text and the metadata, and in the names of a few elements.
//!
//! ZIP-based formats are where "a 1 MB file takes gigabytes of memory" comes from, so the
//! archive's entry count and declared sizes are checked before anything is inflated, and every
//! read is capped again with `Read::take` in case the declared sizes lie. XML entities other
//! than the five predefined ones and character references are never expanded (quick-xml has
//! no DTD support at all), which defuses "billion laughs" documents.

use std::borrow::Cow;
use std::io::{Cursor, Read};

use quick_xml::Reader;
use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::Event;
use zip::ZipArchive;
use zip::result::ZipError;

use super::{ExtractError, Extracted, Format, Limits, date};

/// Where each format keeps its text and metadata, and how its paragraphs are spelled. Names
/// are matched without their namespace prefix.
struct Dialect {
    content_entry: &'static str,
    meta_entry: &'static str,
    /// Text is collected only inside these elements (DOCX keeps text in `w:t`; ODT in
    /// paragraphs and headings, everything else in `content.xml` being styles).
    text_containers: &'static [&'static str],
    /// Elements that end a line when they close.
    paragraphs: &'static [&'static str],
    /// Empty elements that stand for a line break.
    breaks: &'static [&'static str],
    /// Empty elements that stand for whitespace.
    spaces: &'static [&'static str],
}

const DOCX: Dialect = Dialect {
    content_entry: "word/document.xml",
    meta_entry: "docProps/core.xml",
    text_containers: &["t"],
    paragraphs: &["p"],
    breaks: &["br", "cr"],
    spaces: &["tab"],
};

const ODT: Dialect = Dialect {
    content_entry: "content.xml",
    meta_entry: "meta.xml",
    text_containers: &["p", "h"],
    paragraphs: &["p", "h"],
    breaks: &["line-break"],
    spaces: &["s", "tab"],
};

pub(super) fn extract(
    bytes: &[u8],
    format: Format,
    limits: &Limits,
) -> Result<Extracted, ExtractError> {
    let dialect = match format {
        Format::Odt => &ODT,
        _ => &DOCX,
    };
    let mut archive =
        ZipArchive::new(Cursor::new(bytes)).map_err(|e| ExtractError::malformed(format, e))?;
    check_archive(&archive, format, limits)?;

    let mut budget = limits.max_uncompressed_bytes;
    let content = read_entry(&mut archive, dialect.content_entry, format, &mut budget)?
        .ok_or_else(|| {
            ExtractError::malformed(
                format,
                format!("no {} in the archive", dialect.content_entry),
            )
        })?;
    let text = document_text(&content, dialect).map_err(|e| ExtractError::malformed(format, e))?;

    // Metadata is a bonus: a missing or broken metadata part must not cost us the text.
    let metadata = match read_entry(&mut archive, dialect.meta_entry, format, &mut budget) {
        Ok(Some(xml)) => metadata(&xml).unwrap_or_default(),
        Ok(None) | Err(ExtractError::Malformed { .. }) => Metadata::default(),
        Err(limit) => return Err(limit),
    };

    Ok(Extracted {
        title: metadata.title,
        text,
        language: metadata.language,
        author: metadata.author,
        created: metadata.created.as_deref().and_then(date::parse_iso),
        modified: metadata.modified.as_deref().and_then(date::parse_iso),
    })
}

/// Refuses archives whose central directory promises too many entries or too many bytes,
/// before a single entry is inflated.
fn check_archive(
    archive: &ZipArchive<Cursor<&[u8]>>,
    format: Format,
    limits: &Limits,
) -> Result<(), ExtractError> {
    if archive.len() > limits.max_zip_entries {
        return Err(ExtractError::TooManyEntries {
            entries: archive.len(),
            limit: limits.max_zip_entries,
        });
    }
    let mut declared: u64 = 0;
    for index in 0..archive.len() {
        let entry = archive
            .by_index_data(index)
            .map_err(|e| ExtractError::malformed(format, e))?;
        declared = declared.saturating_add(entry.size());
    }
    if declared > limits.max_uncompressed_bytes {
        return Err(ExtractError::TooLargeUncompressed {
            size: declared,
            limit: limits.max_uncompressed_bytes,
        });
    }
    Ok(())
}

/// Inflates one entry, never more than the remaining `budget` bytes whatever its header
/// claims; `Ok(None)` when the archive has no such entry.
fn read_entry(
    archive: &mut ZipArchive<Cursor<&[u8]>>,
    name: &str,
    format: Format,
    budget: &mut u64,
) -> Result<Option<Vec<u8>>, ExtractError> {
    let entry = match archive.by_name(name) {
        Ok(entry) => entry,
        Err(ZipError::FileNotFound) => return Ok(None),
        Err(e) => return Err(ExtractError::malformed(format, e)),
    };
    // The declared size is only a hint for the first allocation, and a bounded one.
    let hint = usize::try_from(entry.size().min(*budget).min(1 << 20)).unwrap_or(0);
    let mut data = Vec::with_capacity(hint);
    entry
        .take(budget.saturating_add(1))
        .read_to_end(&mut data)
        .map_err(|e| ExtractError::malformed(format, format!("cannot inflate {name}: {e}")))?;
    let read = u64::try_from(data.len()).unwrap_or(u64::MAX);
    if read > *budget {
        return Err(ExtractError::TooLargeUncompressed {
            size: read,
            limit: *budget,
        });
    }
    *budget -= read;
    Ok(Some(data))
}

/// The text of a document part: paragraphs become lines.
fn document_text(xml: &[u8], dialect: &Dialect) -> Result<String, quick_xml::Error> {
    let xml = xml_str(xml);
    let mut reader = Reader::from_str(&xml);
    let mut text = String::with_capacity(xml.len() / 2);
    let mut inside_text: usize = 0;
    loop {
        match reader.read_event()? {
            Event::Start(element)
                if dialect
                    .text_containers
                    .contains(&element.local_name().into_inner()) =>
            {
                inside_text += 1;
            }
            Event::End(element) => {
                let name = element.local_name().into_inner();
                if dialect.text_containers.contains(&name) {
                    inside_text = inside_text.saturating_sub(1);
                }
                if dialect.paragraphs.contains(&name) {
                    text.push('\n');
                }
            }
            Event::Empty(element) => {
                let name = element.local_name().into_inner();
                if dialect.breaks.contains(&name) || dialect.paragraphs.contains(&name) {
                    text.push('\n');
                } else if dialect.spaces.contains(&name) {
                    text.push(' ');
                }
            }
            Event::Text(value) if inside_text > 0 => text.push_str(&value.xml10_content()),
            Event::CData(value) if inside_text > 0 => text.push_str(&value.xml10_content()),
            Event::GeneralRef(reference) if inside_text > 0 => {
                push_reference(&mut text, &reference)
            }
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(text)
}

#[derive(Default)]
struct Metadata {
    title: Option<String>,
    author: Option<String>,
    language: Option<String>,
    created: Option<String>,
    modified: Option<String>,
}

/// Title, author, language and dates from `docProps/core.xml` (Dublin Core: `dcterms:created`,
/// `dcterms:modified`) or ODT's `meta.xml` (`meta:creation-date`, `dc:date`).
fn metadata(xml: &[u8]) -> Result<Metadata, quick_xml::Error> {
    let xml = xml_str(xml);
    let mut reader = Reader::from_str(&xml);
    let mut found = Metadata::default();
    let mut current: Option<(&'static str, String)> = None;
    loop {
        match reader.read_event()? {
            Event::Start(element) => {
                let field = match element.local_name().into_inner() {
                    "title" => Some("title"),
                    "creator" | "initial-creator" => Some("author"),
                    "language" => Some("language"),
                    "created" | "creation-date" => Some("created"),
                    "modified" | "date" => Some("modified"),
                    _ => None,
                };
                current = field.map(|field| (field, String::new()));
            }
            Event::Text(value) => {
                if let Some((_, buffer)) = current.as_mut() {
                    buffer.push_str(&value.xml10_content());
                }
            }
            Event::GeneralRef(reference) => {
                if let Some((_, buffer)) = current.as_mut() {
                    push_reference(buffer, &reference);
                }
            }
            Event::End(_) => {
                if let Some((field, value)) = current.take() {
                    let slot = match field {
                        "title" => &mut found.title,
                        "author" => &mut found.author,
                        "created" => &mut found.created,
                        "modified" => &mut found.modified,
                        _ => &mut found.language,
                    };
                    // ODT has both dc:creator (last editor) and meta:initial-creator; the
                    // first one in the file wins, which is fine for a search result.
                    if slot.is_none() && !value.trim().is_empty() {
                        *slot = Some(value);
                    }
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(found)
}

/// Appends what an `&...;` reference stands for: a character reference or one of the five
/// predefined entities. Any other entity is dropped, never expanded.
fn push_reference(out: &mut String, reference: &quick_xml::events::BytesRef<'_>) {
    if let Ok(Some(ch)) = reference.resolve_char_ref() {
        out.push(ch);
    } else if let Some(value) = resolve_predefined_entity(&reference.xml10_content()) {
        out.push_str(value);
    }
}

/// Office XML is UTF-8 in practice; anything else is decoded leniently rather than refused.
fn xml_str(bytes: &[u8]) -> Cow<'_, str> {
    let (text, _, _) = encoding_rs::UTF_8.decode(bytes);
    text
}
