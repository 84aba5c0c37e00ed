//! PDF: text through pdf-extract; title, author and dates (`CreationDate`, `ModDate`) from the
//! Info dictionary.

use std::panic::{self, AssertUnwindSafe};

use pdf_extract::{Document, Object, PlainTextOutput, decode_text_string};

use super::{ExtractError, Extracted, Format, date};

pub(super) fn extract(bytes: &[u8]) -> Result<Extracted, ExtractError> {
    // pdf-extract and lopdf panic on some malformed files (index out of range, unwraps on
    // missing keys). Containing the panic keeps one broken upload from taking down a sync. The
    // closure only reads `bytes` and builds fresh values, so nothing is left half-modified.
    match panic::catch_unwind(AssertUnwindSafe(|| extract_unguarded(bytes))) {
        Ok(result) => result,
        Err(payload) => {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_owned());
            Err(ExtractError::malformed(
                Format::Pdf,
                format!("the pdf parser gave up: {message}"),
            ))
        }
    }
}

fn extract_unguarded(bytes: &[u8]) -> Result<Extracted, ExtractError> {
    let mut document =
        Document::load_mem(bytes).map_err(|e| ExtractError::malformed(Format::Pdf, e))?;
    // Many PDFs are "encrypted" with an empty user password only to set permissions; those
    // open like any other. A real password is reported as a failure.
    if document.is_encrypted() {
        document.decrypt("").map_err(|e| {
            ExtractError::malformed(Format::Pdf, format!("encrypted with a password: {e}"))
        })?;
    }
    let title = info_text(&document, b"Title");
    let author = info_text(&document, b"Author");
    let created = info_text(&document, b"CreationDate").and_then(|d| date::parse_pdf(&d));
    let modified = info_text(&document, b"ModDate").and_then(|d| date::parse_pdf(&d));

    let mut text = String::new();
    let mut output = PlainTextOutput::new(&mut text);
    pdf_extract::output_doc(&document, &mut output)
        .map_err(|e| ExtractError::malformed(Format::Pdf, e))?;

    Ok(Extracted {
        title,
        text,
        language: None,
        author,
        created,
        modified,
    })
}

/// A text string from the document's Info dictionary, if present and decodable.
fn info_text(document: &Document, key: &[u8]) -> Option<String> {
    let info = document.trailer.get_deref(b"Info", document).ok()?;
    let info = match info {
        Object::Dictionary(dictionary) => dictionary,
        _ => return None,
    };
    let value = info.get_deref(key, document).ok()?;
    decode_text_string(value).ok()
}
