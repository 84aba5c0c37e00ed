//! One visit: a conditional GET, then what the answer is (a document, a pointer to one, a page
//! not to index, gone, refused, failed) and the document with its state.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use url::Url;

use super::crawl::Task;
use super::page::{self, MAX_LINKS_PER_PAGE, PageState};
use super::scope::{canonical, is_not_a_document};
use super::{CONVERSION_VERSION, Inner, ROBOTS_AGENT};
use crate::connector::KnownDocs;
use crate::extract::{self, Format, decode_text, parse_date};
use crate::http::{Fetch, Fetched, HttpError};
use crate::model::{Change, Document};

/// How a fetch failed, which decides whether the crawl can still be complete.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum FailureKind {
    /// 5xx, 429 or no answer: the page may exist with links to pages not seen this run.
    Transient,
    /// An answer that will be the same next time (a redirect to a foreign host, too large,
    /// unreadable content).
    Lasting,
}

/// What visiting a URL found.
pub(super) enum Outcome {
    /// A document: new, changed or unchanged.
    Document {
        id: Url,
        change: Box<Change>,
        links: Links,
        follow: bool,
        how: Visited,
    },
    /// A `<meta http-equiv="refresh">` page, or one whose `rel="canonical"` names another
    /// URL: not a document; its target is, and its links may be followed.
    Elsewhere {
        target: Url,
        links: Links,
        follow: bool,
    },
    /// `noindex`: not a document, but its links may be followed.
    NotIndexed { links: Links, follow: bool },
    /// 404 or 410.
    Gone,
    /// Another 4xx (401, 403, ...): the server will not show the page.
    Refused { status: u16 },
    Failed {
        error: String,
        kind: FailureKind,
        links: Links,
    },
    /// Not something to index: an unsupported type, or a redirect out of scope.
    Skipped { reason: String },
}

/// How a document was found unchanged or fetched, for the run's statistics.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Visited {
    /// Not requested: the sitemap's `lastmod` is no newer than the one remembered.
    SitemapUnchanged,
    NotModified,
    Fetched,
}

/// Where a page leads.
pub(super) enum Links {
    /// Links just read from the page: canonical and in scope.
    Read(Vec<Url>),
    /// Links remembered in the page's state: `/path?query` on `origin`, or absolute.
    Remembered { origin: String, links: Vec<String> },
}

impl Links {
    pub(super) fn none() -> Self {
        Links::Read(Vec::new())
    }

    /// The links a page had last time, if it is known.
    pub(super) fn remembered(page: &Url, state: Option<PageState>) -> Self {
        match state {
            Some(state) => Links::Remembered {
                origin: page::origin_of(page),
                links: state.links,
            },
            None => Links::none(),
        }
    }
}

/// The URL of the document a URL was known as: itself, unless it was an alias.
pub(super) fn known_url(known_id: &str, url: &Url) -> Url {
    if known_id == url.as_str() {
        url.clone()
    } else {
        Url::parse(known_id).unwrap_or_else(|_| url.clone())
    }
}

impl Inner {
    /// The principals for a page: the longest matching access rule, else `access`.
    pub(super) fn access_for(&self, url: &Url) -> Vec<String> {
        let path = url.path();
        self.access_rules
            .iter()
            .find(|rule| path.starts_with(&rule.prefix))
            .map(|rule| rule.principals.clone())
            .unwrap_or_else(|| self.access.clone())
    }

    /// Canonical, in-scope, followable links, sorted and without duplicates.
    pub(super) fn scope_links<'a>(
        &self,
        links: impl IntoIterator<Item = &'a (Url, bool)>,
    ) -> Vec<Url> {
        let mut kept = BTreeSet::new();
        for (link, nofollow) in links {
            if *nofollow && self.respect_robots {
                continue;
            }
            let Some(link) = canonical(link) else {
                continue;
            };
            if self.scope.contains(&link) && !is_not_a_document(&link) {
                kept.insert(link);
            }
        }
        kept.into_iter().collect()
    }

    /// Visits one URL: a conditional GET may say it is unchanged; otherwise the page is
    /// fetched, analysed and converted.
    pub(super) async fn visit(
        &self,
        task: &Task,
        known_id: &str,
        known: Option<PageState>,
        all_known: &dyn KnownDocs,
        full: bool,
    ) -> Outcome {
        let known_url = known_url(known_id, &task.url);
        let (etag, last_modified) = match &known {
            Some(state) if !full => (state.etag.as_deref(), state.last_modified.as_deref()),
            _ => (None, None),
        };
        let fetched = match self
            .client
            .get_conditional(&task.url, etag, last_modified)
            .await
        {
            Ok(Fetch::NotModified) => {
                return match known {
                    Some(state) => Outcome::Document {
                        change: Box::new(Change::Unchanged {
                            external_id: known_id.to_owned(),
                        }),
                        links: Links::remembered(&known_url, Some(state)),
                        id: known_url,
                        follow: true,
                        how: Visited::NotModified,
                    },
                    None => Outcome::Failed {
                        error: format!(
                            "{} answered 304 (not modified) to a request without validators",
                            task.url
                        ),
                        kind: FailureKind::Lasting,
                        links: Links::none(),
                    },
                };
            }
            Ok(Fetch::Fetched(fetched)) => fetched,
            Err(e) => {
                return match e.status().map(|s| s.as_u16()) {
                    Some(404 | 410) => Outcome::Gone,
                    Some(status) if (400..500).contains(&status) && status != 429 => {
                        Outcome::Refused { status }
                    }
                    _ => Outcome::Failed {
                        error: e.to_string(),
                        kind: match e {
                            HttpError::RedirectRefused { .. }
                            | HttpError::TooLarge { .. }
                            | HttpError::Refused { .. } => FailureKind::Lasting,
                            _ => FailureKind::Transient,
                        },
                        links: Links::remembered(&known_url, known),
                    },
                };
            }
        };
        self.convert(task, known_id, known.as_ref(), all_known, full, fetched)
            .await
    }

    /// Turns a fetched response into an outcome.
    async fn convert(
        &self,
        task: &Task,
        known_id: &str,
        known: Option<&PageState>,
        all_known: &dyn KnownDocs,
        full: bool,
        fetched: Fetched,
    ) -> Outcome {
        let Some(landed) = canonical(&fetched.url) else {
            return Outcome::Skipped {
                reason: format!("redirected to {}, not an http(s) URL", fetched.url),
            };
        };
        if landed != task.url && !self.scope.contains(&landed) {
            return Outcome::Skipped {
                reason: format!("redirected to {landed}, outside the crawl's scope"),
            };
        }
        let (mut noindex, mut nofollow) = (false, false);
        if self.respect_robots {
            for value in fetched.headers.get_all("x-robots-tag") {
                if let Some(directives) = value.to_str().ok().and_then(x_robots_directives) {
                    let (i, f) = page::robots_directives(directives);
                    noindex |= i;
                    nofollow |= f;
                }
            }
        }
        let mime = fetched.content_type.as_deref().unwrap_or("");
        let essence = mime.split(';').next().unwrap_or("").trim();
        let by_extension = Format::from_path(std::path::Path::new(landed.path()));
        let format = match Format::from_mime(mime) {
            Some(format) => Some(format),
            None if essence.is_empty()
                || essence.eq_ignore_ascii_case("application/octet-stream") =>
            {
                by_extension.or(Some(Format::Html).filter(|_| essence.is_empty()))
            }
            None => None,
        };
        let Some(format) = format else {
            return Outcome::Skipped {
                reason: format!("content type {essence} is not a document format"),
            };
        };
        let charset = fetched.charset().map(str::to_owned);
        let body = Arc::new(fetched.body);
        let (links, nofollow) = if format == Format::Html {
            let source = Arc::clone(&body);
            let page_url = landed.clone();
            let declared = charset.clone();
            let analysed = tokio::task::spawn_blocking(move || {
                let text = decode_text(&source, declared.as_deref(), true);
                page::analyse(&text, &page_url, ROBOTS_AGENT)
            });
            let meta = match analysed.await {
                Ok(meta) => meta,
                Err(e) => return task_failed(&landed, &e),
            };
            if let Some(target) = meta.refresh {
                return Outcome::Elsewhere {
                    target,
                    links: Links::none(),
                    follow: false,
                };
            }
            noindex |= self.respect_robots && meta.noindex;
            nofollow |= self.respect_robots && meta.nofollow;
            let links = self.scope_links(&meta.links);
            if noindex {
                return Outcome::NotIndexed {
                    links: Links::Read(links),
                    follow: !nofollow,
                };
            }
            // The canonical address is the document; this one only leads there (and on: a
            // page 2 of a listing may name page 1 as canonical and still link to older items).
            if let Some(target) = meta
                .canonical
                .and_then(|c| canonical(&c))
                .filter(|c| *c != landed && *c != task.url)
                .filter(|c| self.scope.contains(c) && !is_not_a_document(c))
            {
                return Outcome::Elsewhere {
                    target,
                    links: Links::Read(links),
                    follow: !nofollow,
                };
            }
            (links, nofollow)
        } else {
            if noindex {
                return Outcome::NotIndexed {
                    links: Links::none(),
                    follow: false,
                };
            }
            (Vec::new(), false)
        };
        let limits = self.limits.clone();
        let source = Arc::clone(&body);
        let declared = charset.clone();
        let extracted = tokio::task::spawn_blocking(move || {
            extract::extract(&source, format, &limits, declared.as_deref())
        })
        .await;
        let extracted = match extracted {
            Ok(Ok(extracted)) => extracted,
            Ok(Err(e)) => {
                return Outcome::Failed {
                    error: format!("{landed}: {e}"),
                    kind: FailureKind::Lasting,
                    links: Links::none(),
                };
            }
            Err(e) => return task_failed(&landed, &e),
        };
        let id = landed;
        let mut links = links;
        links.truncate(MAX_LINKS_PER_PAGE);

        let title = extracted
            .title
            .clone()
            .or_else(|| file_title(&id))
            .unwrap_or_else(|| id.to_string());
        let mut doc = Document {
            external_id: id.to_string(),
            kind: self.kind.clone(),
            title,
            body: extracted.text,
            url: Some(id.to_string()),
            author: extracted.author,
            language: self.language.clone().or(extracted.language),
            created: extracted.created,
            updated: extracted.modified,
            acl: self.access_for(&id),
            tags: Vec::new(),
            fingerprint: None,
            properties: BTreeMap::new(),
        };
        let hash = content_hash(&doc, &links);
        // The server's and the sitemap's dates stand in for a date the page does not give,
        // outside the hash: they move without the content changing.
        doc.updated = doc
            .updated
            .or_else(|| fetched.last_modified.as_deref().and_then(parse_date))
            .or(task.lastmod);
        let mut state = PageState::new(hash);
        state.etag = fetched.etag;
        state.last_modified = fetched.last_modified;
        state.sitemap_lastmod = task.lastmod.map(|d| d.to_rfc3339());
        state.set_links(&id, &links);
        doc.fingerprint = Some(state.to_fingerprint());

        let previous = if id.as_str() == known_id {
            known.cloned()
        } else {
            all_known
                .fingerprint(id.as_str())
                .and_then(PageState::parse)
        };
        let change = match previous {
            Some(previous) if !full && previous.hash == state.hash => Change::Unchanged {
                external_id: id.to_string(),
            },
            _ => Change::Upsert(Box::new(doc)),
        };
        Outcome::Document {
            id,
            change: Box::new(change),
            links: Links::Read(links),
            follow: !nofollow,
            how: Visited::Fetched,
        }
    }
}

fn task_failed(url: &Url, error: &tokio::task::JoinError) -> Outcome {
    Outcome::Failed {
        error: format!("{url}: analysis task failed: {error}"),
        kind: FailureKind::Lasting,
        links: Links::none(),
    }
}

/// The directives of an `X-Robots-Tag` value that concern this crawler: all of them, or those
/// after `samle:`; `None` for another crawler's (`googlebot: noindex`).
fn x_robots_directives(value: &str) -> Option<&str> {
    match value.split_once(':') {
        Some((agent, rest))
            if !agent.contains(',') && !agent.trim().eq_ignore_ascii_case("unavailable_after") =>
        {
            agent
                .trim()
                .eq_ignore_ascii_case(ROBOTS_AGENT)
                .then_some(rest)
        }
        _ => Some(value),
    }
}

/// A title from the URL's file name, for documents without one (a PDF without metadata).
fn file_title(url: &Url) -> Option<String> {
    let name = url.path_segments()?.next_back()?;
    let name = percent_encoding::percent_decode_str(name).decode_utf8_lossy();
    let stem = name
        .rsplit_once('.')
        .map_or(name.as_ref(), |(stem, _)| stem);
    extract::one_line(&stem.replace(['_', '-'], " "))
}

/// The hash of everything a document says and where it leads.
fn content_hash(doc: &Document, links: &[Url]) -> String {
    let mut hasher = blake3::Hasher::new();
    hasher.update(&CONVERSION_VERSION.to_le_bytes());
    hasher.update(&serde_json::to_vec(doc).unwrap_or_default());
    for link in links {
        hasher.update(&[0]);
        hasher.update(link.as_str().as_bytes());
    }
    let mut hex = hasher.finalize().to_hex().to_string();
    hex.truncate(32);
    hex
}

/// True for URLs that name a file format the extractors read but that has no links.
pub(super) fn binary(url: &Url) -> bool {
    let path = url.path().to_ascii_lowercase();
    [".pdf", ".docx", ".odt"]
        .iter()
        .any(|ext| path.ends_with(ext))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn x_robots_tag_values() {
        let cases = [
            ("noindex", Some("noindex")),
            ("noindex, nofollow", Some("noindex, nofollow")),
            ("googlebot: noindex", None),
            ("Samle: nofollow", Some(" nofollow")),
            (
                "unavailable_after: 25 Jun 2031 15:00:00 PST",
                Some("unavailable_after: 25 Jun 2031 15:00:00 PST"),
            ),
        ];
        for (value, expected) in cases {
            assert_eq!(x_robots_directives(value), expected, "{value}");
        }
    }

    #[test]
    fn titles_from_file_names() {
        let url = Url::parse("http://intra/filer/Personale%C3%A5ndbog_2031.pdf").unwrap();
        assert_eq!(file_title(&url).as_deref(), Some("Personaleåndbog 2031"));
        let folder = Url::parse("http://intra/filer/").unwrap();
        assert_eq!(file_title(&folder), None);
    }
}
