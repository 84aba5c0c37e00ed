//! Text extraction: every format, every charset path, and hostile inputs.

use std::io::{Cursor, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use samle_connectors::extract::{ExtractError, Extracted, Format, Limits, decode_text, extract};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

use crate::common::fixture;

fn extract_default(bytes: &[u8], format: Format) -> Extracted {
    extract(bytes, format, &Limits::default(), None)
        .unwrap_or_else(|e| panic!("{format} extraction failed: {e}"))
}

struct Expect {
    name: &'static str,
    bytes: Vec<u8>,
    format: Format,
    title: Option<&'static str>,
    contains: &'static [&'static str],
    absent: &'static [&'static str],
    language: Option<&'static str>,
    author: Option<&'static str>,
    /// RFC 3339, as the document declares it.
    created: Option<&'static str>,
    modified: Option<&'static str>,
}

fn utc(rfc3339: Option<&str>) -> Option<DateTime<Utc>> {
    rfc3339.map(|text| {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    })
}

#[test]
fn every_format_extracts_title_and_text() {
    let html = r#"<!DOCTYPE html>
<html lang="da-DK"><head><meta charset="utf-8"><title>Ferie &amp; fravær</title>
<meta name="Author" content="Mette Hansen"><style>.x{color:red}</style>
<meta property="article:published_time" content="2026-10-14T09:30:00+02:00">
<meta name="dcterms.modified" content="2026-10-15">
<script>var hemmelig = "script-tekst";</script></head>
<body><nav><a href="/">Forside</a> <a href="/nyt">Menu-punkt</a></nav>
<header>Sidehoved-tekst</header>
<article><h1>Ferie og fravær</h1>
<p>Alle medarbejdere har ret til seks ugers ferie om året. Ferien planlægges i samarbejde med
nærmeste leder, og ønsker om sommerferie skal være afleveret senest den 1. marts. Det gælder
både fuldtids- og deltidsansatte, og reglerne følger ferieloven og den lokale aftale.</p>
<p>Ved sygdom skal du melde dig syg til din leder inden klokken ni. Barns første sygedag er en
fridag med løn, og du kan læse mere i personalehåndbogen om omsorgsdage, seniordage og
&aelig;ndringer i reglerne for &oslash;vrige fraværsårsager &#229;rsag.</p></article>
<footer>Sidefod-tekst</footer></body></html>"#;

    let markdown = "---\ntitle: \"Rejseregler\"\nauthor: Jens Jensen\nlang: da\ndate: 2026-10-14 09:30\n\
updated: \"2026-11-01T08:00:00Z\"\n---\n\
# Overskrift\n\nDette er **fed** og *kursiv* tekst med [et link](https://example.com) og `kode`.\n\n\
- punkt et\n- punkt to\n\n<div>rå html</div>\n\n| kolonne | værdi |\n|---|---|\n| a | b |\n";

    let cases = [
        Expect {
            name: "pdf fixture",
            bytes: fixture("personalehaandbog.pdf"),
            format: Format::Pdf,
            title: Some("Personalehåndbog"),
            contains: &["Personalehåndbog", "Ferie og fravær", "æøå ÆØÅ"],
            absent: &["\u{fffd}"],
            language: None,
            author: Some("Mette Hansen"),
            created: Some("2024-01-02T02:04:05Z"),
            modified: Some("2024-03-15T12:00:00Z"),
        },
        Expect {
            name: "docx fixture",
            bytes: fixture("personalehaandbog.docx"),
            format: Format::Docx,
            title: Some("Personalehåndbog"),
            contains: &[
                "Personalehåndbog\nFerie og fravær",
                "æøå ÆØÅ",
                "Løn & pension",
            ],
            absent: &["<", "w:t", "11906"],
            language: Some("da"),
            author: Some("Mette Hansen"),
            created: Some("2024-01-02T03:04:05Z"),
            modified: Some("2024-03-15T12:00:00Z"),
        },
        Expect {
            name: "odt fixture",
            bytes: fixture("personalehaandbog.odt"),
            format: Format::Odt,
            title: Some("Personalehåndbog"),
            contains: &[
                "Personalehåndbog\nFerie og fravær",
                "æøå ÆØÅ",
                "Løn &\npension",
            ],
            absent: &["<", "text:p", "opendocument"],
            language: Some("da"),
            author: Some("Mette Hansen"),
            created: Some("2024-01-02T03:04:05.123456789Z"),
            modified: Some("2024-03-15T12:00:00.5Z"),
        },
        Expect {
            name: "html article",
            bytes: html.as_bytes().to_vec(),
            format: Format::Html,
            title: Some("Ferie & fravær"),
            contains: &["seks ugers ferie", "ændringer", "øvrige", "årsag"],
            absent: &["script-tekst", "color:red", "Menu-punkt", "<p>", "&aelig;"],
            language: Some("da"),
            author: Some("Mette Hansen"),
            created: Some("2026-10-14T07:30:00Z"),
            modified: Some("2026-10-15T00:00:00Z"),
        },
        Expect {
            name: "html without title falls back to h1, nav and footer dropped",
            bytes: b"<html><body><nav>Menu</nav><h1>Kun  en\n overskrift</h1><p>Kort.</p>\
<footer>Fod</footer></body></html>"
                .to_vec(),
            format: Format::Html,
            title: Some("Kun en overskrift"),
            contains: &["Kort."],
            absent: &["Menu", "Fod"],
            language: None,
            author: None,
            created: None,
            modified: None,
        },
        Expect {
            name: "markdown with front matter",
            bytes: markdown.as_bytes().to_vec(),
            format: Format::Markdown,
            title: Some("Rejseregler"),
            contains: &[
                "Overskrift",
                "Dette er fed og kursiv tekst med et link og kode.",
                "punkt et",
                "kolonne",
            ],
            absent: &["**", "](", "# ", "<div>", "rå html", "---", "title:"],
            language: Some("da"),
            author: Some("Jens Jensen"),
            created: Some("2026-10-14T09:30:00Z"),
            modified: Some("2026-11-01T08:00:00Z"),
        },
        Expect {
            name: "markdown title from first heading",
            bytes: "Indledning uden overskrift.\n\n## Første _overskrift_\n\nTekst.\n"
                .as_bytes()
                .to_vec(),
            format: Format::Markdown,
            title: Some("Første overskrift"),
            contains: &["Indledning uden overskrift.", "Tekst."],
            absent: &["_", "##"],
            language: None,
            author: None,
            created: None,
            modified: None,
        },
        Expect {
            name: "text with a short first line",
            bytes: "\n  Mødereferat 3. maj  \n\nDeltagere: alle.\n"
                .as_bytes()
                .to_vec(),
            format: Format::Text,
            title: Some("Mødereferat 3. maj"),
            contains: &["Mødereferat 3. maj\n\nDeltagere: alle."],
            absent: &[],
            language: None,
            author: None,
            created: None,
            modified: None,
        },
        Expect {
            name: "text with a long first line has no title",
            bytes: "ord ".repeat(40).into_bytes(),
            format: Format::Text,
            title: None,
            contains: &["ord ord"],
            absent: &[],
            language: None,
            author: None,
            created: None,
            modified: None,
        },
    ];

    for case in cases {
        let got = extract_default(&case.bytes, case.format);
        assert_eq!(got.title.as_deref(), case.title, "{}: title", case.name);
        for needle in case.contains {
            assert!(
                got.text.contains(needle),
                "{}: {needle:?} missing from {:?}",
                case.name,
                got.text
            );
        }
        for needle in case.absent {
            assert!(
                !got.text.contains(needle),
                "{}: {needle:?} present in {:?}",
                case.name,
                got.text
            );
        }
        assert_eq!(
            got.language.as_deref(),
            case.language,
            "{}: language",
            case.name
        );
        assert_eq!(got.author.as_deref(), case.author, "{}: author", case.name);
        assert_eq!(got.created, utc(case.created), "{}: created", case.name);
        assert_eq!(got.modified, utc(case.modified), "{}: modified", case.name);
    }
}

#[test]
fn formats_from_paths_and_mime_types() {
    let paths = [
        ("a/b/Side.HTML", Some(Format::Html)),
        ("side.htm", Some(Format::Html)),
        ("README.md", Some(Format::Markdown)),
        ("noter.txt", Some(Format::Text)),
        ("rapport.PDF", Some(Format::Pdf)),
        ("brev.docx", Some(Format::Docx)),
        ("brev.odt", Some(Format::Odt)),
        ("brev.doc", None),
        ("billede.png", None),
        ("uden-endelse", None),
        ("noter.Markdown", Some(Format::Markdown)),
        ("side.XHTML", Some(Format::Html)),
        ("noter.TeXt", Some(Format::Text)),
        ("arkiv.tar.md", Some(Format::Markdown)),
        (".md", None),
        ("punktum.", None),
        ("mappe.md/fil", None),
        ("brev.odtx", None),
        ("brev.dt", None),
    ];
    for (path, expected) in paths {
        assert_eq!(Format::from_path(Path::new(path)), expected, "{path}");
    }
    let mimes = [
        ("text/html; charset=ISO-8859-1", Some(Format::Html)),
        ("application/xhtml+xml", Some(Format::Html)),
        ("text/markdown", Some(Format::Markdown)),
        ("text/plain", Some(Format::Text)),
        ("Application/PDF", Some(Format::Pdf)),
        (
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            Some(Format::Docx),
        ),
        ("application/vnd.oasis.opendocument.text", Some(Format::Odt)),
        ("image/png", None),
        ("", None),
    ];
    for (mime, expected) in mimes {
        assert_eq!(Format::from_mime(mime), expected, "{mime}");
    }
}

/// "æøå ÆØÅ" in Windows-1252 / ISO-8859-1.
const LATIN1_DANISH: &[u8] = b"\xe6\xf8\xe5 \xc6\xd8\xc5";

fn html_page(head: &[u8], body_text: &[u8]) -> Vec<u8> {
    let mut page = b"<!DOCTYPE html><html><head>".to_vec();
    page.extend_from_slice(head);
    page.extend_from_slice(b"<title>Pr\xf8ve</title></head><body><p>");
    page.extend_from_slice(body_text);
    page.extend_from_slice(b"</p></body></html>");
    page
}

#[test]
fn danish_text_survives_every_charset_path() {
    let cp1252_sentence: Vec<u8> = [
        b"Medarbejdere skal v\xe6re opm\xe6rksomme p\xe5 reglerne for f\xf8rste sygedag: "
            .as_slice(),
        LATIN1_DANISH,
    ]
    .concat();
    let utf8_page = html_page(b"", "Prøve: æøå ÆØÅ".as_bytes());
    let utf8_page = String::from_utf8_lossy(&utf8_page).replace("Pr\u{fffd}ve", "Prøve");

    let mut utf16 = vec![0xff, 0xfe];
    for unit in "<html><body><p>æøå ÆØÅ</p></body></html>".encode_utf16() {
        utf16.extend_from_slice(&unit.to_le_bytes());
    }

    let cases: Vec<(&str, Vec<u8>, Option<&str>)> =
        vec![
        ("windows-1252 without any declaration", html_page(b"", &cp1252_sentence), None),
        (
            "meta charset iso-8859-1",
            html_page(b"<meta charset=\"iso-8859-1\">", LATIN1_DANISH),
            None,
        ),
        (
            "meta http-equiv",
            html_page(
                b"<meta http-equiv=\"Content-Type\" content=\"text/html; charset=windows-1252\">",
                LATIN1_DANISH,
            ),
            None,
        ),
        (
            "declared header iso-8859-1",
            html_page(b"", LATIN1_DANISH),
            Some("ISO-8859-1"),
        ),
        (
            "header wrongly says utf-8",
            html_page(b"", &cp1252_sentence),
            Some("utf-8"),
        ),
        (
            "utf-8 with bom",
            [b"\xef\xbb\xbf".as_slice(), utf8_page.as_bytes()].concat(),
            None,
        ),
        ("utf-16le with bom", utf16, None),
        ("utf-8 without declaration", utf8_page.into_bytes(), None),
    ];

    for (name, bytes, declared) in cases {
        let got = extract(&bytes, Format::Html, &Limits::default(), declared).unwrap();
        assert!(got.text.contains("æøå ÆØÅ"), "{name}: {:?}", got.text);
        assert!(
            !got.text.contains('\u{fffd}'),
            "{name}: replacement character in {:?}",
            got.text
        );
        if let Some(title) = got.title {
            assert!(!title.contains('\u{fffd}'), "{name}: title {title:?}");
        }
    }

    // Plain text in Windows-1252, no declaration at all.
    let text = decode_text(&cp1252_sentence, None, false);
    assert!(text.ends_with("æøå ÆØÅ"), "{text:?}");
    assert!(text.contains("første sygedag"), "{text:?}");
}

fn zip_with(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut writer = ZipWriter::new(Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
    for (name, data) in entries {
        writer.start_file(*name, options).unwrap();
        writer.write_all(data).unwrap();
    }
    writer.finish().unwrap().into_inner()
}

/// Rewrites the uncompressed size of every entry, in the local headers and the central
/// directory, the way a crafted zip bomb lies about itself.
fn patch_uncompressed_sizes(zip: &mut [u8], size: u32) {
    let mut at = 0;
    while at + 4 <= zip.len() {
        match &zip[at..at + 4] {
            b"PK\x03\x04" => zip[at + 22..at + 26].copy_from_slice(&size.to_le_bytes()),
            b"PK\x01\x02" => zip[at + 24..at + 28].copy_from_slice(&size.to_le_bytes()),
            _ => {}
        }
        at += 1;
    }
}

const DOCX_BODY: &str = r#"<?xml version="1.0" encoding="UTF-8"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body><w:p><w:r><w:t>hej</w:t></w:r></w:p></w:body></w:document>"#;

#[test]
fn zip_bombs_are_refused_before_inflating() {
    // An entry whose header promises 4 GiB.
    let mut huge = zip_with(&[("word/document.xml", DOCX_BODY.as_bytes())]);
    patch_uncompressed_sizes(&mut huge, 0xFFFF_FFF0);
    let started = Instant::now();
    let err = extract(&huge, Format::Docx, &Limits::default(), None).unwrap_err();
    assert!(
        matches!(err, ExtractError::TooLargeUncompressed { .. }),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));

    // One entry more than allowed.
    let names: Vec<String> = (0..=Limits::default().max_zip_entries)
        .map(|i| format!("f{i}.xml"))
        .collect();
    let entries: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), b"".as_slice())).collect();
    let many = zip_with(&entries);
    let started = Instant::now();
    let err = extract(&many, Format::Odt, &Limits::default(), None).unwrap_err();
    assert!(
        matches!(
            err,
            ExtractError::TooManyEntries {
                entries: 10_001,
                limit: 10_000
            }
        ),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));

    // Headers that understate: 8 MiB of text declared as 100 bytes, with a 1 MiB budget. The
    // read must stop at the budget (or at the declared size), not inflate everything.
    let mut body = String::from(r#"<w:document xmlns:w="x"><w:body><w:p><w:r><w:t>"#);
    body.push_str(&"a".repeat(8 << 20));
    body.push_str("</w:t></w:r></w:p></w:body></w:document>");
    let mut liar = zip_with(&[("word/document.xml", body.as_bytes())]);
    assert!(
        liar.len() < 200_000,
        "the bomb should be small: {}",
        liar.len()
    );
    patch_uncompressed_sizes(&mut liar, 100);
    let limits = Limits {
        max_uncompressed_bytes: 1 << 20,
        ..Limits::default()
    };
    match extract(&liar, Format::Docx, &limits, None) {
        Err(_) => {}
        Ok(got) => assert!(
            got.text.len() <= 1 << 20,
            "inflated {} bytes",
            got.text.len()
        ),
    }
}

#[test]
fn billion_laughs_in_a_docx_is_not_expanded() {
    let mut entities = String::from("<!ENTITY lol \"lol\">");
    for level in 1..=9 {
        let previous = if level == 1 {
            "lol".to_owned()
        } else {
            format!("lol{}", level - 1)
        };
        entities.push_str(&format!(
            "<!ENTITY lol{level} \"{}\">",
            format!("&{previous};").repeat(10)
        ));
    }
    let document = format!(
        r#"<?xml version="1.0"?><!DOCTYPE lolz [{entities}]><w:document xmlns:w="x"><w:body><w:p><w:r><w:t>Før &lol9; efter &amp; &#230;</w:t></w:r></w:p></w:body></w:document>"#
    );
    let docx = zip_with(&[("word/document.xml", document.as_bytes())]);
    let started = Instant::now();
    match extract(&docx, Format::Docx, &Limits::default(), None) {
        Ok(got) => {
            assert_eq!(got.text, "Før efter & æ");
        }
        Err(err) => assert!(matches!(err, ExtractError::Malformed { .. }), "{err}"),
    }
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[test]
fn broken_pdfs_are_errors_not_panics() {
    let good = fixture("personalehaandbog.pdf");
    let mut garbage_after_header = b"%PDF-1.4\n".to_vec();
    garbage_after_header.extend((0u32..4096).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
    let mut bad_xref = good.clone();
    let xref = bad_xref.windows(4).position(|w| w == b"xref").unwrap();
    bad_xref.truncate(xref + 10);

    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("truncated to half", good[..good.len() / 2].to_vec()),
        ("truncated inside the xref", bad_xref),
        ("header then garbage", garbage_after_header),
        ("not a pdf at all", b"hello, world".to_vec()),
    ];
    for (name, bytes) in cases {
        let result = extract(&bytes, Format::Pdf, &Limits::default(), None);
        assert!(result.is_err(), "{name}: expected an error, got {result:?}");
    }

    // pdf-extract panics on this one ("Descendant fonts required"); the panic is contained.
    let err = extract(
        &fixture("panics-pdf-extract.pdf"),
        Format::Pdf,
        &Limits::default(),
        None,
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("malformed pdf file: the pdf parser gave up"),
        "{err}"
    );
}

#[test]
fn garbage_never_panics_in_any_format() {
    let formats = [
        Format::Html,
        Format::Markdown,
        Format::Text,
        Format::Pdf,
        Format::Docx,
        Format::Odt,
    ];
    let mut seed: u64 = 0x5eed;
    for round in 0..20 {
        let len = 1 + (round * 97) % 3000;
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                (seed >> 24) as u8
            })
            .collect();
        for format in formats {
            // Either outcome is fine; a panic fails the test.
            let _ = extract(&bytes, format, &Limits::default(), None);
        }
    }
    // A zip that is not an office document, and an office document without its content part.
    let not_office = zip_with(&[("hello.txt", b"hej")]);
    for format in [Format::Docx, Format::Odt] {
        let err = extract(&not_office, format, &Limits::default(), None).unwrap_err();
        assert!(matches!(err, ExtractError::Malformed { .. }), "{err}");
    }
}

#[test]
fn deeply_nested_input_is_handled_without_recursion() {
    // Extraction runs on blocking-pool threads; give it no more stack than those have.
    let handle = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(|| {
            let nested = |depth: usize| {
                format!(
                    "<html><body>{}dybt{}</body></html>",
                    "<div>".repeat(depth),
                    "</div>".repeat(depth)
                )
            };
            // Deep, but within what a parser handles: plain body text instead of readability.
            let got = extract(
                nested(1_000).as_bytes(),
                Format::Html,
                &Limits::default(),
                None,
            )
            .unwrap();
            assert_eq!(got.text, "dybt");
            // An attack: refused before html5ever spends quadratic time on it.
            let started = Instant::now();
            let err = extract(
                nested(200_000).as_bytes(),
                Format::Html,
                &Limits::default(),
                None,
            )
            .unwrap_err();
            assert!(err.to_string().contains("nested"), "{err}");
            assert!(started.elapsed() < Duration::from_secs(2));

            let depth = 50_000;
            let markdown = format!("{}dybt\n", "> ".repeat(depth));
            let got = extract(
                markdown.as_bytes(),
                Format::Markdown,
                &Limits::default(),
                None,
            )
            .unwrap();
            assert_eq!(got.text, "dybt");
            let xml = format!(
                r#"<w:document xmlns:w="x"><w:body>{}<w:t>dybt</w:t>{}</w:body></w:document>"#,
                "<w:p>".repeat(depth),
                "</w:p>".repeat(depth)
            );
            let docx = zip_with(&[("word/document.xml", xml.as_bytes())]);
            let got = extract(&docx, Format::Docx, &Limits::default(), None).unwrap();
            assert_eq!(got.text, "dybt");
        })
        .unwrap();
    handle.join().expect("extraction overflowed or panicked");
}

#[test]
fn limits_are_enforced() {
    let small = Limits {
        max_file_bytes: 10,
        ..Limits::default()
    };
    let err = extract(b"more than ten bytes", Format::Text, &small, None).unwrap_err();
    assert!(
        matches!(
            err,
            ExtractError::TooLarge {
                size: 19,
                limit: 10
            }
        ),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "file is 19 bytes, over the limit of 10 bytes"
    );

    let short = Limits {
        max_text_chars: 5,
        ..Limits::default()
    };
    let got = extract("æøåæøåæøå".as_bytes(), Format::Text, &short, None).unwrap();
    assert_eq!(got.text, "æøåæø");
}

/// An intranet page: a page title, section and site in `<title>`, navigation, a header and a
/// footer around the article.
fn intranet_page(title: &str, head: &str, article: &str) -> Vec<u8> {
    format!(
        r#"<!DOCTYPE html><html lang="da"><head><meta charset="utf-8"><title>{title}</title>{head}</head>
<body><header class="topbar"><a href="/">Samle Kommune</a> · <span>IT-hjælp</span></header>
<nav><ul><li><a href="a.html">Nulstil adgangskode</a></li><li><a href="b.html">VPN hjemmefra</a></li></ul></nav>
<main><article>{article}</article></main><footer>Samle Kommune · Rådhuspladsen 1</footer></body></html>"#
    )
    .into_bytes()
}

const SOFTWARE_TEXT: &str = "<p>Du kan ikke selv installere programmer på din arbejdscomputer. Det \
beskytter computeren mod virus og sikrer, at kommunen overholder licensreglerne. Men der er en \
stor samling programmer, som du kan installere med et enkelt klik fra Firmaportalen.</p>\
<p>Finder du ikke programmet i Firmaportalen, bestiller du det i selvbetjeningen. Din leder \
godkender bestillingen, og IT installerer programmet inden for fem arbejdsdage.</p>";

#[test]
fn html_titles_name_the_page_and_are_not_repeated_in_the_text() {
    // (case, page, title, how the text starts). Readability itself sometimes drops an h1 that
    // resembles the title; where that is all that would decide the start, it is not checked.
    let cases: Vec<(&str, Vec<u8>, &str, Option<&str>)> = vec![
        (
            "page – section – site, the h1 names the page",
            intranet_page(
                "Bestil software – IT-hjælp – Samle Kommune",
                "",
                &format!("<h1>Bestil software</h1>{SOFTWARE_TEXT}"),
            ),
            "Bestil software",
            Some("Du kan ikke selv installere"),
        ),
        (
            "a long page name with | separators",
            intranet_page(
                "Ny politik for hjemmearbejde gælder fra 1. marts | Nyheder | Samle Kommune",
                "",
                &format!(
                    "<h1>Ny politik for hjemmearbejde gælder fra 1. marts</h1>{SOFTWARE_TEXT}"
                ),
            ),
            "Ny politik for hjemmearbejde gælder fra 1. marts",
            Some("Du kan ikke selv installere"),
        ),
        (
            "og:title names the page",
            intranet_page(
                "Software – IT-hjælp – Samle Kommune",
                r#"<meta property="og:title" content="Sådan bestiller du software">"#,
                &format!("<h1>Bestil programmer</h1>{SOFTWARE_TEXT}"),
            ),
            "Sådan bestiller du software",
            Some("Bestil programmer\n\nDu kan ikke selv installere"),
        ),
        (
            "the h1 is only a word of the title",
            intranet_page(
                "Samle Kommune",
                "",
                &format!("<h1>Samle</h1>{SOFTWARE_TEXT}"),
            ),
            "Samle Kommune",
            None,
        ),
        (
            "the h1 is only part of a hyphenated word",
            intranet_page("IT-hjælp", "", &format!("<h1>IT</h1>{SOFTWARE_TEXT}")),
            "IT-hjælp",
            None,
        ),
        (
            "two h1s: no telling which names the page",
            intranet_page(
                "Software – IT-hjælp – Samle Kommune",
                "",
                &format!("<h1>Software</h1>{SOFTWARE_TEXT}<h1>Licenser</h1><p>Om licenser.</p>"),
            ),
            "Software – IT-hjælp – Samle Kommune",
            None,
        ),
        (
            "the title starts a sentence: not a repetition",
            intranet_page(
                "Velkommen",
                "",
                "<p>Velkommen til Samle Kommunes intranet.</p>",
            ),
            "Velkommen",
            Some("Velkommen til Samle Kommunes intranet."),
        ),
        (
            "no <title>: the h1, not repeated",
            b"<html><body><h1>Kun en overskrift</h1><p>Kort.</p></body></html>".to_vec(),
            "Kun en overskrift",
            Some("Kort."),
        ),
    ];
    for (name, page, title, start) in cases {
        let got = extract_default(&page, Format::Html);
        assert_eq!(got.title.as_deref(), Some(title), "{name}: title");
        let start = start.unwrap_or_default();
        assert!(
            got.text.starts_with(start),
            "{name}: text should start with {start:?}: {:?}",
            got.text
        );
        for chrome in ["Nulstil adgangskode", "Rådhuspladsen"] {
            assert!(
                !got.text.contains(chrome),
                "{name}: {chrome:?} in {:?}",
                got.text
            );
        }
    }
}

#[test]
fn markdown_titles_are_not_repeated_and_front_matter_never_shows() {
    // (case, source, title, text)
    let cases = [
        (
            "heading as title",
            "# Titel\n\nTekst.\n",
            Some("Titel"),
            "Tekst.",
        ),
        (
            "setext heading",
            "Titel\n=====\n\nTekst.\n",
            Some("Titel"),
            "Tekst.",
        ),
        (
            "markup before the heading",
            "<!-- kladde -->\n# Titel\n\nTekst.\n",
            Some("Titel"),
            "Tekst.",
        ),
        (
            "an empty heading does not count",
            "#\n\n# Titel\n\nTekst.\n",
            Some("Titel"),
            "Tekst.",
        ),
        (
            "later headings stay",
            "# Titel\n\n## Afsnit\n\nTekst.\n",
            Some("Titel"),
            "Afsnit\n\nTekst.",
        ),
        (
            "a heading after text is the title but stays in the text",
            "Indledning.\n\n# Titel\n\nTekst.\n",
            Some("Titel"),
            "Indledning.\n\nTitel\n\nTekst.",
        ),
        (
            "front matter title repeated by the heading",
            "---\ntitle: Titel\n---\n# Titel\n\nTekst.\n",
            Some("Titel"),
            "Tekst.",
        ),
        (
            "front matter title and a different heading",
            "---\ntitle: Titel\n---\n# Andet\n\nTekst.\n",
            Some("Titel"),
            "Andet\n\nTekst.",
        ),
        (
            "front matter with an empty line",
            "---\ntitle: Titel\n\ntags: [a, b]\n---\nTekst.\n",
            Some("Titel"),
            "Tekst.",
        ),
        (
            "front matter closed with ...",
            "---\ntitle: Titel\n...\nTekst.\n",
            Some("Titel"),
            "Tekst.",
        ),
        (
            "toml front matter",
            "+++\ntitle = \"Titel\"\ndraft = false\n+++\nTekst.\n",
            Some("Titel"),
            "Tekst.",
        ),
        (
            "front matter with windows line ends",
            "---\r\ntitle: Titel\r\n---\r\n# Titel\r\n\r\nTekst.\r\n",
            Some("Titel"),
            "Tekst.",
        ),
        (
            "a thematic break is not front matter",
            "---\n\nTekst.\n",
            None,
            "Tekst.",
        ),
    ];
    for (name, source, title, text) in cases {
        let got = extract_default(source.as_bytes(), Format::Markdown);
        assert_eq!(got.title.as_deref(), title, "{name}: title");
        assert_eq!(got.text, text, "{name}: text");
    }
}

#[test]
fn declared_dates_are_read_and_bad_ones_ignored() {
    // (case, format, document, created, modified)
    let cases = [
        (
            "front matter date",
            Format::Markdown,
            "---\ndate: 2026-10-14\n---\nTekst.",
            Some("2026-10-14T00:00:00Z"),
            None,
        ),
        (
            "front matter date and time, no zone: utc",
            Format::Markdown,
            "---\ndate: 2026-10-14 09:30\n---\nTekst.",
            Some("2026-10-14T09:30:00Z"),
            None,
        ),
        (
            "front matter rfc 3339",
            Format::Markdown,
            "---\ndate: 2026-10-14T09:30:00+02:00\nmodified: '2026-10-20T12:00:00Z'\n---\nTekst.",
            Some("2026-10-14T07:30:00Z"),
            Some("2026-10-20T12:00:00Z"),
        ),
        (
            "front matter rfc 3339 quoted, no zone",
            Format::Markdown,
            "---\ndate: \"2026-10-14T09:30:00\"\nupdated: 2026-10-15\n---\nTekst.",
            Some("2026-10-14T09:30:00Z"),
            Some("2026-10-15T00:00:00Z"),
        ),
        (
            "an unreadable updated: falls through to lastmod:",
            Format::Markdown,
            "---\ndate: 2026-10-14\nupdated: snart\nlastmod: 2026-10-21\n---\nTekst.",
            Some("2026-10-14T00:00:00Z"),
            Some("2026-10-21T00:00:00Z"),
        ),
        (
            "unreadable front matter date",
            Format::Markdown,
            "---\ntitle: Titel\ndate: i går\n---\nTekst.",
            None,
            None,
        ),
        (
            "a nested date is not the document's",
            Format::Markdown,
            "---\nevent:\n  date: 2026-12-24\n---\nTekst.",
            None,
            None,
        ),
        (
            "toml front matter date",
            Format::Markdown,
            "+++\ndate = 2026-10-14T09:30:00Z\n+++\nTekst.",
            Some("2026-10-14T09:30:00Z"),
            None,
        ),
        (
            "html meta date",
            Format::Html,
            r#"<html><head><meta name="date" content="2026-10-14"></head><body><p>Tekst.</p></body></html>"#,
            Some("2026-10-14T00:00:00Z"),
            None,
        ),
        (
            "html dublin core, any case",
            Format::Html,
            r#"<html><head><meta name="DCTERMS.created" content="2026-10-14T09:30:00Z">
<meta name="dcterms.modified" content="2026-10-16 10:00"></head><body><p>Tekst.</p></body></html>"#,
            Some("2026-10-14T09:30:00Z"),
            Some("2026-10-16T10:00:00Z"),
        ),
        (
            "html open graph article times win over date",
            Format::Html,
            r#"<html><head><meta name="date" content="2020-01-01">
<meta property="article:published_time" content="2026-10-14T09:30:00+02:00">
<meta property="article:modified_time" content="2026-10-15T09:30:00+02:00"></head>
<body><p>Tekst.</p></body></html>"#,
            Some("2026-10-14T07:30:00Z"),
            Some("2026-10-15T07:30:00Z"),
        ),
        (
            "an unreadable html date falls through to the next",
            Format::Html,
            r#"<html><head><meta property="article:published_time" content="sidste uge">
<meta name="date" content="2026-10-14"></head><body><p>Tekst.</p></body></html>"#,
            Some("2026-10-14T00:00:00Z"),
            None,
        ),
        (
            "html json-ld dates, through readability",
            Format::Html,
            r#"<html><head><title>Nyhed</title><script type="application/ld+json">
{"@context":"https://schema.org","@type":"NewsArticle","headline":"Nyhed",
"datePublished":"2026-10-14T09:30:00+02:00","dateModified":"2026-10-15T08:00:00Z"}</script></head>
<body><article><p>Kantinen åbner igen efter ombygningen, og der er nye retter på menuen hver dag.
Medarbejdere kan bestille frokost til møder gennem selvbetjeningen senest dagen før.</p></article>
</body></html>"#,
            Some("2026-10-14T07:30:00Z"),
            Some("2026-10-15T08:00:00Z"),
        ),
        (
            "html <time> is not the document's date",
            Format::Html,
            r#"<html><body><p>Mødet er <time datetime="2026-12-24">juleaften</time>.</p></body></html>"#,
            None,
            None,
        ),
        (
            "plain text declares nothing",
            Format::Text,
            "date: 2026-10-14\nTekst.",
            None,
            None,
        ),
        (
            "no front matter, no date",
            Format::Markdown,
            "date: 2026-10-14\n\nTekst.",
            None,
            None,
        ),
    ];
    for (name, format, document, created, modified) in cases {
        let got = extract_default(document.as_bytes(), format);
        assert!(
            got.text.contains("Tekst")
                || got.text.contains("Kantinen")
                || got.text.contains("Mødet"),
            "{name}: {:?}",
            got.text
        );
        assert_eq!(got.created, utc(created), "{name}: created");
        assert_eq!(got.modified, utc(modified), "{name}: modified");
    }

    // PDF dates, in a copy of the fixture with other Info dates. The date strings keep their
    // length, so the cross-reference offsets stay right.
    let pdf = fixture("personalehaandbog.pdf");
    let cases = [
        (
            b"D:20240102030405+01'00'".as_slice(),
            b"D:20240315120000Z".as_slice(),
            Some("2024-01-02T02:04:05Z"),
            Some("2024-03-15T12:00:00Z"),
        ),
        (
            b"D:20261014093000-02'30'",
            b"D:20261014093000 ",
            Some("2026-10-14T12:00:00Z"),
            Some("2026-10-14T09:30:00Z"),
        ),
        (b"D:2026xx14093000+01'00'", b"D:20261314093000Z", None, None),
    ];
    for (creation, modification, created, modified) in cases {
        let patched = replace_bytes(&pdf, b"D:20240102030405+01'00'", creation);
        let patched = replace_bytes(&patched, b"D:20240315120000Z", modification);
        let got = extract_default(&patched, Format::Pdf);
        assert_eq!(
            got.title.as_deref(),
            Some("Personalehåndbog"),
            "pdf still read"
        );
        assert_eq!(got.created, utc(created), "pdf {creation:?}");
        assert_eq!(got.modified, utc(modified), "pdf {modification:?}");
    }
}

/// `haystack` with its one occurrence of `needle` replaced by `replacement` of the same length.
fn replace_bytes(haystack: &[u8], needle: &[u8], replacement: &[u8]) -> Vec<u8> {
    assert_eq!(needle.len(), replacement.len());
    let at = haystack
        .windows(needle.len())
        .position(|window| window == needle)
        .unwrap();
    [&haystack[..at], replacement, &haystack[at + needle.len()..]].concat()
}
