//! Turning bytes of unknown encoding into text. Danish documents still arrive as
//! Windows-1252 or ISO-8859-1, often unlabelled, and "æøå" must survive every path.

use chardetng::{EncodingDetector, Iso2022JpDetection, Utf8Detection};
use encoding_rs::{Encoding, WINDOWS_1252, X_USER_DEFINED};

/// How far into an HTML document a `<meta charset>` is looked for, as browsers do.
const META_PRESCAN_BYTES: usize = 1024;

/// Decodes text, trying in order: a byte-order mark, the declared charset, (for HTML) a
/// `<meta charset>` or `<meta http-equiv="Content-Type">` in the first 1024 bytes, UTF-8 when
/// the bytes are valid UTF-8, and finally chardetng's guess.
///
/// A declared or meta charset under which the bytes are malformed is skipped rather than
/// trusted: servers and editors often claim UTF-8 for Windows-1252 files, and decoding those
/// as UTF-8 would put U+FFFD where "æøå" belongs.
pub fn decode_text(bytes: &[u8], declared_charset: Option<&str>, html: bool) -> String {
    if let Some((encoding, bom_len)) = Encoding::for_bom(bytes) {
        let (text, _) = encoding.decode_without_bom_handling(&bytes[bom_len..]);
        return text.into_owned();
    }
    if let Some(text) = declared_charset
        .and_then(encoding_for_label)
        .and_then(|encoding| decode_strict(encoding, bytes))
    {
        return text;
    }
    if html
        && let Some(text) = meta_charset(&bytes[..bytes.len().min(META_PRESCAN_BYTES)])
            .and_then(|encoding| decode_strict(encoding, bytes))
    {
        return text;
    }
    if let Ok(text) = std::str::from_utf8(bytes) {
        return text.to_owned();
    }
    let mut detector = EncodingDetector::new(Iso2022JpDetection::Deny);
    detector.feed(bytes, true);
    // The ".dk" hint makes chardetng prefer the Western encodings our documents are written
    // in when the sample is short; UTF-8 is excluded because the bytes were just found invalid.
    let encoding = detector.guess(Some(b"dk"), Utf8Detection::Deny);
    let (text, _) = encoding.decode_without_bom_handling(bytes);
    text.into_owned()
}

fn encoding_for_label(label: &str) -> Option<&'static Encoding> {
    let label = label.trim().trim_matches(|c| c == '"' || c == '\'');
    Encoding::for_label_no_replacement(label.as_bytes())
}

fn decode_strict(encoding: &'static Encoding, bytes: &[u8]) -> Option<String> {
    encoding
        .decode_without_bom_handling_and_without_replacement(bytes)
        .map(|text| text.into_owned())
}

/// Finds the charset named by a `<meta charset=...>` or `<meta http-equiv="Content-Type"
/// content="...; charset=...">` tag in `head`.
///
/// This is a deliberately small version of the HTML prescan: neither html5ever nor scraper
/// sniffs encodings (they take decoded text), so the charset has to be found before parsing.
fn meta_charset(head: &[u8]) -> Option<&'static Encoding> {
    let lower = head.to_ascii_lowercase();
    let mut rest = lower.as_slice();
    while let Some(start) = find(rest, b"<meta") {
        let tag = &rest[start + 5..];
        let end = tag.iter().position(|&b| b == b'>').unwrap_or(tag.len());
        let tag = &tag[..end];
        if let Some(label) = charset_value(tag) {
            let label = String::from_utf8_lossy(label);
            if let Some(encoding) = Encoding::for_label_no_replacement(label.as_bytes()) {
                // As in the HTML standard: a meta tag cannot really mean UTF-16 (the bytes
                // so far were ASCII), and x-user-defined means Windows-1252.
                return Some(if encoding == X_USER_DEFINED {
                    WINDOWS_1252
                } else {
                    encoding.output_encoding()
                });
            }
        }
        rest = &rest[start + 5 + end..];
    }
    None
}

/// The value after `charset=` inside one tag's attributes, without quotes.
fn charset_value(tag: &[u8]) -> Option<&[u8]> {
    let at = find(tag, b"charset")?;
    let mut value = &tag[at + "charset".len()..];
    value = value.trim_ascii_start();
    value = value.strip_prefix(b"=")?;
    value = value.trim_ascii_start();
    let value = value
        .strip_prefix(b"\"")
        .or_else(|| value.strip_prefix(b"'"))
        .unwrap_or(value);
    let end = value
        .iter()
        .position(|&b| matches!(b, b'"' | b'\'' | b';' | b'/') || b.is_ascii_whitespace())
        .unwrap_or(value.len());
    let value = &value[..end];
    (!value.is_empty()).then_some(value)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use encoding_rs::{ISO_8859_2, UTF_8};

    #[test]
    fn meta_prescan_finds_both_forms() {
        let cases: [(&[u8], Option<&'static Encoding>); 6] = [
            (b"<meta charset=\"ISO-8859-1\">", Some(WINDOWS_1252)),
            (b"<META CHARSET=utf-8>", Some(UTF_8)),
            (
                b"<meta http-equiv=\"Content-Type\" content=\"text/html; charset=iso-8859-2\">",
                Some(ISO_8859_2),
            ),
            (b"<meta charset='utf-16'>", Some(UTF_8)),
            (b"<meta name=\"author\" content=\"x\">", None),
            (b"<meta charset=bogus>", None),
        ];
        for (head, expected) in cases {
            assert_eq!(
                meta_charset(head).map(Encoding::name),
                expected.map(Encoding::name),
                "{}",
                String::from_utf8_lossy(head)
            );
        }
    }
}
