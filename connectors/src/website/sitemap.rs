//! Sitemaps (sitemaps.org): `<urlset>` with `<loc>` and `<lastmod>`, `<sitemapindex>` listing
//! further sitemaps, plain-text sitemaps (one URL a line), each possibly gzip-compressed.
//!
//! The XML is read with quick-xml, which never reads a DTD: entities other than the five
//! predefined ones and character references are dropped, never expanded.

use std::collections::{HashSet, VecDeque};
use std::io::Read;

use chrono::{DateTime, Utc};
use quick_xml::Reader;
use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::Event;
use tracing::{debug, warn};
use url::Url;

use super::Inner;
use super::scope::canonical;
use crate::extract::parse_date;

/// Sitemap files read per run, indexes included.
const MAX_SITEMAPS: usize = 1_000;

/// The protocol's own limits: 50,000 URLs and 50 MB (uncompressed) per sitemap file.
pub const MAX_ENTRIES: usize = 50_000;
pub const MAX_BYTES: u64 = 50 * 1024 * 1024;

/// One URL of a sitemap.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub loc: String,
    pub lastmod: Option<DateTime<Utc>>,
}

/// A parsed sitemap file.
#[derive(Debug, PartialEq)]
pub enum Sitemap {
    /// A sitemap index: the addresses of further sitemaps.
    Index(Vec<String>),
    /// The pages, with their last modification where given.
    Urls(Vec<Entry>),
}

/// Parses a sitemap, inflating it first when it is gzip-compressed (recognised by its magic
/// bytes: servers send `.xml.gz` files as `application/gzip`, `application/x-gzip` or
/// `application/octet-stream`, and reqwest has already undone a `Content-Encoding: gzip`).
/// More than [`MAX_ENTRIES`] entries are cut off; the caller learns it from
/// the returned flag.
pub fn parse(bytes: &[u8]) -> Result<(Sitemap, bool), String> {
    let inflated;
    let bytes = if bytes.starts_with(&[0x1f, 0x8b]) {
        inflated = gunzip(bytes)?;
        inflated.as_slice()
    } else {
        bytes
    };
    let text = String::from_utf8_lossy(bytes);
    let trimmed = text.trim_start_matches('\u{feff}').trim_start();
    if trimmed.starts_with('<') {
        parse_xml(trimmed)
    } else {
        Ok(parse_text(trimmed))
    }
}

/// Inflates gzip within [`MAX_BYTES`]: a small compressed file must not become gigabytes.
fn gunzip(bytes: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .take(MAX_BYTES + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("cannot inflate the gzip-compressed sitemap: {e}"))?;
    if u64::try_from(out.len()).unwrap_or(u64::MAX) > MAX_BYTES {
        return Err(format!(
            "the sitemap inflates to more than {MAX_BYTES} bytes, the protocol's limit"
        ));
    }
    Ok(out)
}

fn parse_text(text: &str) -> (Sitemap, bool) {
    let mut entries: Vec<Entry> = text
        .lines()
        .map(str::trim)
        .filter(|line| line.starts_with("http://") || line.starts_with("https://"))
        .map(|line| Entry {
            loc: line.to_owned(),
            lastmod: None,
        })
        .collect();
    let cut = entries.len() > MAX_ENTRIES;
    entries.truncate(MAX_ENTRIES);
    (Sitemap::Urls(entries), cut)
}

/// Which element's text is being collected.
#[derive(Clone, Copy, PartialEq)]
enum Field {
    Loc,
    Lastmod,
}

fn parse_xml(xml: &str) -> Result<(Sitemap, bool), String> {
    let mut reader = Reader::from_str(xml);
    let mut index = false;
    let mut root_seen = false;
    let mut sitemaps = Vec::new();
    let mut entries = Vec::new();
    let mut cut = false;
    let mut loc: Option<String> = None;
    let mut lastmod: Option<String> = None;
    let mut field: Option<Field> = None;
    let mut buffer = String::new();
    loop {
        let event = reader
            .read_event()
            .map_err(|e| format!("not a readable sitemap: {e}"))?;
        match event {
            Event::Start(element) => {
                let name = element.local_name();
                match name.into_inner() {
                    "sitemapindex" if !root_seen => {
                        root_seen = true;
                        index = true;
                    }
                    "urlset" if !root_seen => root_seen = true,
                    "url" | "sitemap" => {
                        loc = None;
                        lastmod = None;
                    }
                    "loc" => {
                        field = Some(Field::Loc);
                        buffer.clear();
                    }
                    "lastmod" => {
                        field = Some(Field::Lastmod);
                        buffer.clear();
                    }
                    _ if !root_seen => {
                        return Err("not a sitemap: the root element is neither <urlset> nor <sitemapindex>".to_owned());
                    }
                    _ => {}
                }
            }
            Event::Text(text) if field.is_some() => buffer.push_str(&text.xml10_content()),
            Event::CData(text) if field.is_some() => buffer.push_str(&text.xml10_content()),
            Event::GeneralRef(reference) if field.is_some() => {
                if let Ok(Some(ch)) = reference.resolve_char_ref() {
                    buffer.push(ch);
                } else if let Some(value) = resolve_predefined_entity(&reference.xml10_content()) {
                    buffer.push_str(value);
                }
            }
            Event::End(element) => match element.local_name().into_inner() {
                "loc" if field == Some(Field::Loc) => {
                    loc = Some(buffer.trim().to_owned());
                    field = None;
                }
                "lastmod" if field == Some(Field::Lastmod) => {
                    lastmod = Some(buffer.trim().to_owned());
                    field = None;
                }
                "url" | "sitemap" => {
                    let Some(loc) = loc.take().filter(|l| !l.is_empty()) else {
                        continue;
                    };
                    if index {
                        if sitemaps.len() < MAX_ENTRIES {
                            sitemaps.push(loc);
                        } else {
                            cut = true;
                        }
                    } else if entries.len() < MAX_ENTRIES {
                        entries.push(Entry {
                            loc,
                            lastmod: lastmod.take().as_deref().and_then(parse_date),
                        });
                    } else {
                        cut = true;
                    }
                }
                _ => {}
            },
            Event::Eof => break,
            _ => {}
        }
    }
    if !root_seen {
        return Err("not a sitemap: no <urlset> or <sitemapindex> element".to_owned());
    }
    let sitemap = if index {
        Sitemap::Index(sitemaps)
    } else {
        Sitemap::Urls(entries)
    };
    Ok((sitemap, cut))
}

/// What the sitemaps gave.
#[derive(Default)]
pub(super) struct SitemapHarvest {
    /// Entries within scope, in order, without duplicates.
    pub(super) entries: Vec<(Url, Option<DateTime<Utc>>)>,
    /// Sitemap files read.
    pub(super) files: usize,
    /// URLs listed, in scope or not.
    pub(super) listed: usize,
    /// Why some sitemap could not be read completely; the crawl is then not complete.
    pub(super) problems: Vec<String>,
}

impl Inner {
    /// Reads sitemaps and sitemap indexes breadth first, keeping at most `cap` entries in scope.
    pub(super) async fn collect_sitemaps(
        &self,
        roots: Vec<(Url, bool)>,
        cap: usize,
    ) -> SitemapHarvest {
        let mut harvest = SitemapHarvest::default();
        let mut queue: VecDeque<(Url, bool)> = roots.into();
        let mut read: HashSet<String> = HashSet::new();
        let mut kept: HashSet<String> = HashSet::new();
        while let Some((url, declared)) = queue.pop_front() {
            if !read.insert(url.to_string()) {
                continue;
            }
            if read.len() > MAX_SITEMAPS {
                harvest.problems.push(format!(
                    "more than {MAX_SITEMAPS} sitemap files; {url} and the rest were not read"
                ));
                break;
            }
            if let Err(e) = self.client.check(&url) {
                warn!(sitemap = %url, error = %e, "sitemap on a host the crawler may not visit");
                continue;
            }
            let fetched = match self.client.get(&url).await {
                Ok(fetched) => fetched,
                Err(e) => {
                    let absent = e.status().is_some_and(|s| s.is_client_error() && s != 429);
                    if declared || !absent {
                        harvest
                            .problems
                            .push(format!("sitemap {url} cannot be read: {e}"));
                    } else {
                        debug!(sitemap = %url, "no sitemap");
                    }
                    continue;
                }
            };
            let body = fetched.body;
            let parsed = tokio::task::spawn_blocking(move || parse(&body)).await;
            let (parsed, cut) = match parsed {
                Ok(Ok(parsed)) => parsed,
                Ok(Err(reason)) => {
                    if declared {
                        harvest.problems.push(format!("sitemap {url}: {reason}"));
                    } else {
                        debug!(sitemap = %url, %reason, "/sitemap.xml is not a sitemap");
                    }
                    continue;
                }
                Err(e) => {
                    harvest
                        .problems
                        .push(format!("sitemap {url}: parse task failed: {e}"));
                    continue;
                }
            };
            harvest.files += 1;
            if cut {
                harvest.problems.push(format!(
                    "sitemap {url} lists more than {} entries, the protocol's limit; the rest were not read",
                    MAX_ENTRIES
                ));
            }
            match parsed {
                Sitemap::Index(children) => {
                    for child in children {
                        match url.join(child.trim()) {
                            Ok(child) => queue.push_back((child, true)),
                            Err(e) => {
                                debug!(sitemap = %url, %child, error = %e, "bad sitemap address")
                            }
                        }
                    }
                }
                Sitemap::Urls(entries) => {
                    harvest.listed += entries.len();
                    for entry in entries {
                        let Some(page) = url.join(&entry.loc).ok().and_then(|u| canonical(&u))
                        else {
                            continue;
                        };
                        if !self.scope.contains(&page) || !kept.insert(page.to_string()) {
                            continue;
                        }
                        if harvest.entries.len() >= cap {
                            harvest.problems.push(format!(
                                "the sitemaps list more than {cap} pages in scope (max_pages); the rest were not read"
                            ));
                            return harvest;
                        }
                        harvest.entries.push((page, entry.lastmod));
                    }
                }
            }
        }
        harvest
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn url_sets_with_lastmod_and_entities() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
  <url><loc>https://intra/nyheder/?side=2&amp;sort=dato</loc><lastmod>2031-05-01</lastmod></url>
  <url><loc> https://intra/hr/ </loc><changefreq>daily</changefreq></url>
  <url><lastmod>2031-05-01</lastmod></url>
</urlset>"#;
        let (sitemap, cut) = parse(xml.as_bytes()).unwrap();
        assert!(!cut);
        let Sitemap::Urls(entries) = sitemap else {
            panic!("not a url set")
        };
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].loc, "https://intra/nyheder/?side=2&sort=dato");
        assert_eq!(
            entries[0].lastmod.unwrap().to_rfc3339(),
            "2031-05-01T00:00:00+00:00"
        );
        assert_eq!(entries[1].loc, "https://intra/hr/");
        assert_eq!(entries[1].lastmod, None);
    }

    #[test]
    fn gzip_indexes_and_text() {
        let xml = br#"<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
            <sitemap><loc>https://intra/sitemap-1.xml.gz</loc></sitemap></sitemapindex>"#;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(xml).unwrap();
        let gz = encoder.finish().unwrap();
        let (sitemap, _) = parse(&gz).unwrap();
        assert_eq!(
            sitemap,
            Sitemap::Index(vec!["https://intra/sitemap-1.xml.gz".to_owned()])
        );

        let (text, _) = parse(b"https://intra/a\n\nhttps://intra/b\n# kommentar\n").unwrap();
        let Sitemap::Urls(entries) = text else {
            panic!("not a url set")
        };
        assert_eq!(entries.len(), 2);

        assert!(parse(b"<html><body>Ikke fundet</body></html>").is_err());
        assert!(parse(&[0x1f, 0x8b, 0, 1, 2]).is_err());
    }
}
