//! The feeds connector: RSS 2.0, Atom 1.0 and JSON Feed, parsed by feed-rs.
//!
//! A feed lists only its latest items, so a run is never a full traversal: items that fall off
//! the feed are not deleted by mark-and-sweep (no `TraversalComplete` is ever sent). Instead an
//! item that is no longer in the feed is deleted once its date is older than the configured
//! retention. The items already are documents in the index, so that is where their dates are
//! remembered: a dated item's fingerprint ends with its date (`<hash>@<unix seconds>`), and
//! only items without a date of their own keep one in the cursor (when they were last seen in
//! the feed). The cursor stays a few hundred bytes however many items the feed has had, and it
//! travels in every commit of the index.
//!
//! Re-syncing an unchanged feed costs one conditional request: the cursor keeps the feed's
//! `ETag` and `Last-Modified`, and a 304 emits only a checkpoint with the same cursor, without
//! reading the indexed items at all.
//!
//! XML is parsed by quick-xml through feed-rs, which never reads a DTD: external entities are
//! not fetched and entity definitions are not expanded (an unknown entity stays as literal
//! text), so neither XXE nor "billion laughs" can do harm.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tracing::{info, warn};
use url::Url;

use crate::connector::{Connector, RunContext};
use crate::error::ConnectorError;
use crate::extract::{self, Format, Limits, normalise_whitespace, one_line};
use crate::http::{Fetch, HttpClient, HttpParams, parse_duration};
use crate::model::{Change, Document};
use crate::params;

/// Bump when the conversion of items changes enough to re-emit every item once.
const CONVERSION_VERSION: u32 = 1;
const DEFAULT_KIND: &str = "news";
const DEFAULT_RETENTION: Duration = Duration::from_secs(365 * 86_400);

/// The `[sources.feed]` table.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedParams {
    /// The feed's address (http or https).
    pub url: String,
    /// Principals who may see every item; empty means nobody (and each run reports it).
    #[serde(default)]
    pub access: Vec<String>,
    /// How long an item that has fallen off the feed stays searchable, counted from its date,
    /// such as `"365d"` (the default).
    pub retention: Option<String>,
    /// Fetch each item's linked page and index its main content instead of the feed's summary.
    #[serde(default)]
    pub full_text: bool,
    /// The document kind of the items: lowercase letters, digits and `-` (default `"news"`).
    pub kind: Option<String>,
    /// The language of every item ("da", "en"); otherwise what the feed declares.
    pub language: Option<String>,
    /// Timeouts, retries, politeness, allowed hosts and credentials.
    #[serde(default)]
    pub http: HttpParams,
}

/// The feeds connector. Build it with [`crate::build`] or [`Feed::new`].
pub struct Feed {
    url: Url,
    access: Vec<String>,
    retention: Duration,
    full_text: bool,
    kind: String,
    language: Option<String>,
    client: Arc<HttpClient>,
    limits: Limits,
}

/// What the cursor remembers between runs.
#[derive(Debug, Default, Deserialize, Serialize)]
struct Cursor {
    #[serde(default)]
    etag: Option<String>,
    #[serde(default)]
    last_modified: Option<String>,
    /// The items whose fingerprint carries no date, not yet expired: when each was last seen
    /// in the feed (it has no date of its own), or, for an item indexed by a version that kept
    /// every item here, the date remembered then.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    items: BTreeMap<String, DateTime<Utc>>,
}

/// One feed item, converted.
struct Item {
    id: String,
    title: String,
    body: String,
    link: Option<Url>,
    author: Option<String>,
    language: Option<String>,
    published: Option<DateTime<Utc>>,
    updated: Option<DateTime<Utc>>,
    tags: Vec<String>,
    fingerprint: String,
}

impl Feed {
    /// Validates the parameters; the feed is not contacted until `check` or `run`. A relative
    /// `http.ca_file` is resolved against `base_dir`.
    pub fn new(params: &FeedParams, base_dir: &Path) -> Result<Self, ConnectorError> {
        let url = Url::parse(params.url.trim())
            .map_err(|e| ConnectorError::Config(format!("feed url {:?}: {e}", params.url)))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(ConnectorError::Config(format!(
                "feed url {url} must start with http:// or https://"
            )));
        }
        let retention = match params.retention.as_deref() {
            None => DEFAULT_RETENTION,
            Some(value) => parse_duration(value).ok_or_else(|| {
                ConnectorError::Config(format!(
                    "feed retention {value:?} is not a duration such as \"365d\" or \"12h\""
                ))
            })?,
        };
        let access = params::principals(&params.access, "feed access")?;
        let kind = match params.kind.as_deref() {
            None => DEFAULT_KIND.to_owned(),
            Some(kind) => params::document_kind(kind, "feed", DEFAULT_KIND)?,
        };
        let language = params
            .language
            .as_deref()
            .and_then(extract::primary_language);
        let client = Arc::new(HttpClient::in_dir(&params.http, &url, base_dir)?);
        let mut limits = Limits::default();
        if let Some(max) = params.http.max_response_bytes {
            limits.max_file_bytes = max;
        }
        Ok(Self {
            url,
            access,
            retention,
            full_text: params.full_text,
            kind,
            language,
            client,
            limits,
        })
    }

    async fn parse(&self, body: Vec<u8>) -> Result<Vec<Item>, ConnectorError> {
        let base = self.url.clone();
        let language = self.language.clone();
        let full_text = self.full_text;
        let kind = self.kind.clone();
        let parsed = tokio::task::spawn_blocking(move || {
            parse_feed(&body, &base, language.as_deref(), full_text, &kind)
        })
        .await
        .map_err(|e| ConnectorError::Internal(format!("feed parse task failed: {e}")))?;
        parsed.map_err(|reason| ConnectorError::Unavailable {
            reason: format!("feed {} cannot be read: {reason}", self.url),
        })
    }

    /// The document for `item`, with the linked page's main content when `full_text` is on.
    async fn document(&self, item: Item) -> Result<Document, String> {
        let mut doc = Document {
            external_id: item.id,
            kind: self.kind.clone(),
            title: item.title,
            body: item.body,
            url: item.link.as_ref().map(Url::to_string),
            author: item.author,
            language: item.language,
            created: item.published,
            updated: item.updated.or(item.published),
            acl: self.access.clone(),
            tags: item.tags,
            fingerprint: Some(item.fingerprint),
            properties: Default::default(),
        };
        if !self.full_text {
            return Ok(doc);
        }
        let link = item
            .link
            .ok_or_else(|| "full_text is on but the item has no link".to_owned())?;
        let fetched = self.client.get(&link).await.map_err(|e| e.to_string())?;
        let format = fetched
            .content_type
            .as_deref()
            .and_then(Format::from_mime)
            .unwrap_or(Format::Html);
        let limits = self.limits.clone();
        let extracted = tokio::task::spawn_blocking(move || {
            extract::extract(&fetched.body, format, &limits, fetched.charset())
        })
        .await
        .map_err(|e| format!("extraction task failed: {e}"))?
        .map_err(|e| format!("{link}: {e}"))?;
        if !extracted.text.is_empty() {
            doc.body = extracted.text;
        }
        if doc.author.is_none() {
            doc.author = extracted.author;
        }
        if doc.language.is_none() {
            doc.language = extracted.language;
        }
        Ok(doc)
    }
}

#[async_trait::async_trait]
impl Connector for Feed {
    fn kind(&self) -> &'static str {
        "feed"
    }

    async fn check(&self) -> Result<Vec<String>, ConnectorError> {
        let fetched = self.client.get(&self.url).await?;
        let items = self.parse(fetched.body).await?;
        let mut notes = vec![format!(
            "feed {} answers with {} items",
            self.url,
            items.len()
        )];
        if self.access.is_empty() {
            notes.push("access is empty: the items are visible to nobody".to_owned());
        }
        Ok(notes)
    }

    async fn run(&self, ctx: RunContext) -> Result<(), ConnectorError> {
        let previous: Cursor = match ctx.cursor.as_deref() {
            None => Cursor::default(),
            Some(raw) => serde_json::from_str(raw).unwrap_or_else(|e| {
                // Undated items that were remembered and are no longer in the feed will then
                // not be deleted by retention; they stay searchable.
                warn!(source = %ctx.source_id, error = %e, "unreadable feed cursor, fetching in full");
                Cursor::default()
            }),
        };
        let (etag, last_modified) = if ctx.full {
            (None, None)
        } else {
            (previous.etag.as_deref(), previous.last_modified.as_deref())
        };
        let fetched = match self
            .client
            .get_conditional(&self.url, etag, last_modified)
            .await?
        {
            Fetch::NotModified => {
                // Nothing changed: commit the same cursor and stop, one request spent.
                let cursor = ctx.cursor.clone().unwrap_or_default();
                ctx.sink.send(Change::Checkpoint { cursor }).await?;
                info!(source = %ctx.source_id, "feed not modified");
                return Ok(());
            }
            Fetch::Fetched(fetched) => fetched,
        };
        let etag = fetched.etag.clone();
        let last_modified = fetched.last_modified.clone();
        let items = self.parse(fetched.body).await?;
        // The feed changed: now the indexed items' fingerprints are needed.
        ctx.known.load().await?;

        let now = Utc::now();
        let mut cursor = Cursor {
            etag,
            last_modified,
            items: previous.items,
        };
        let mut in_feed = HashSet::new();
        let (mut upserted, mut unchanged, mut failed) = (0usize, 0usize, 0usize);
        for item in items {
            if !in_feed.insert(item.id.clone()) {
                continue;
            }
            // An item without a date of its own is remembered in the cursor as last seen now;
            // a dated one carries its date in its fingerprint once it is indexed.
            let dated = item.updated.or(item.published).is_some();
            if !dated {
                cursor.items.insert(item.id.clone(), now);
            }
            let known = ctx.known.fingerprint(&item.id);
            if !ctx.full && known == Some(item.fingerprint.as_str()) {
                unchanged += 1;
                if dated {
                    cursor.items.remove(&item.id);
                }
                ctx.sink
                    .send(Change::Unchanged {
                        external_id: item.id,
                    })
                    .await?;
                continue;
            }
            let id = item.id.clone();
            match self.document(item).await {
                Ok(doc) => {
                    upserted += 1;
                    if dated {
                        cursor.items.remove(&id);
                    }
                    ctx.sink.send(Change::Upsert(Box::new(doc))).await?;
                }
                Err(error) => {
                    failed += 1;
                    // Not remembered as seen with this fingerprint: the next run tries again.
                    ctx.sink
                        .send(Change::Failed {
                            external_id: id,
                            error,
                        })
                        .await?;
                }
            }
        }

        let retention = chrono::Duration::from_std(self.retention).unwrap_or(chrono::Duration::MAX);
        let is_expired = |date: DateTime<Utc>| now.signed_duration_since(date) > retention;
        // Items no longer in the feed: dated ones by the date in their fingerprint, the others
        // by the date the cursor keeps for them.
        let mut expired = BTreeSet::new();
        ctx.known.for_each(&mut |id, fingerprint| {
            if !in_feed.contains(id) && fingerprint_date(fingerprint).is_some_and(is_expired) {
                expired.insert(id.to_owned());
            }
        });
        for (id, date) in &cursor.items {
            if !in_feed.contains(id) && is_expired(*date) {
                expired.insert(id.clone());
            }
        }
        for id in &expired {
            cursor.items.remove(id);
            ctx.sink
                .send(Change::Delete {
                    external_id: id.clone(),
                })
                .await?;
        }

        let cursor = serde_json::to_string(&cursor)
            .map_err(|e| ConnectorError::Internal(format!("cannot write feed cursor: {e}")))?;
        ctx.sink.send(Change::Checkpoint { cursor }).await?;
        if self.access.is_empty() && upserted > 0 {
            warn!(source = %ctx.source_id, items = upserted, "feed access is empty: items visible to nobody");
        }
        info!(
            source = %ctx.source_id,
            upserted,
            unchanged,
            failed,
            expired = expired.len(),
            "feed sync complete"
        );
        Ok(())
    }
}

/// Parses the feed and converts its items. Blocking.
fn parse_feed(
    body: &[u8],
    base: &Url,
    language: Option<&str>,
    full_text: bool,
    kind: &str,
) -> Result<Vec<Item>, String> {
    let parser = feed_rs::parser::Builder::new()
        .base_uri(Some(base.as_str()))
        .timestamp_parser(extract::parse_date)
        .id_generator(|links, title, _| {
            // No id and no guid: the link is the identity; without a link, the title.
            links
                .first()
                .map(|l| l.href.clone())
                .or_else(|| {
                    title
                        .as_ref()
                        .map(|t| format!("title:{}", t.content.trim()))
                })
                .unwrap_or_default()
        })
        .build();
    let feed = parser.parse(body).map_err(|e| e.to_string())?;
    let feed_language = feed.language.as_deref().and_then(extract::primary_language);
    let mut items = Vec::with_capacity(feed.entries.len());
    for entry in feed.entries {
        let id = entry.id.trim().to_owned();
        if id.is_empty() {
            warn!(feed = %base, "feed item without id, link or title skipped");
            continue;
        }
        let link = entry
            .links
            .iter()
            .find(|l| matches!(l.rel.as_deref(), None | Some("alternate")))
            .or(entry.links.first())
            .and_then(|l| base.join(l.href.trim()).ok())
            .filter(|u| matches!(u.scheme(), "http" | "https"));
        let title_raw = entry
            .title
            .as_ref()
            .map(|t| t.content.as_str())
            .unwrap_or("");
        let title = one_line(&html_to_text(title_raw))
            .or_else(|| link.as_ref().map(Url::to_string))
            .unwrap_or_else(|| id.clone());
        let content = entry
            .content
            .as_ref()
            .and_then(|c| c.body.as_deref())
            .filter(|b| !b.trim().is_empty());
        let summary = entry.summary.as_ref().map(|s| s.content.as_str());
        let raw_body = content.or(summary).unwrap_or("");
        let body = html_to_text(raw_body);
        let author = entry
            .authors
            .iter()
            .find_map(|p| p.name.as_deref().and_then(one_line));
        let tags: Vec<String> = entry
            .categories
            .iter()
            .filter_map(|c| one_line(c.label.as_deref().unwrap_or(&c.term)))
            .collect();
        let item_language = language
            .map(str::to_owned)
            .or_else(|| {
                entry
                    .language
                    .as_deref()
                    .and_then(extract::primary_language)
            })
            .or_else(|| feed_language.clone());
        let fingerprint = {
            let mut hasher = blake3::Hasher::new();
            for part in [
                CONVERSION_VERSION.to_string().as_str(),
                if full_text { "full" } else { "summary" },
                kind,
                &id,
                &title,
                raw_body,
                link.as_ref().map(Url::as_str).unwrap_or(""),
                &entry.published.map(|d| d.to_rfc3339()).unwrap_or_default(),
                &entry.updated.map(|d| d.to_rfc3339()).unwrap_or_default(),
                author.as_deref().unwrap_or(""),
                &tags.join("\u{1f}"),
                item_language.as_deref().unwrap_or(""),
            ] {
                hasher.update(part.as_bytes());
                hasher.update(&[0]);
            }
            let hash = hasher.finalize().to_hex();
            match entry.updated.or(entry.published) {
                Some(date) => format!("{hash}@{}", date.timestamp()),
                None => hash.to_string(),
            }
        };
        items.push(Item {
            id,
            title,
            body,
            link,
            author,
            language: item_language,
            published: entry.published,
            updated: entry.updated,
            tags,
            fingerprint,
        });
    }
    Ok(items)
}

/// The date a feed item's fingerprint ends with (`<hash>@<unix seconds>`), if it has one.
fn fingerprint_date(fingerprint: &str) -> Option<DateTime<Utc>> {
    let (_, seconds) = fingerprint.rsplit_once('@')?;
    DateTime::from_timestamp(seconds.parse().ok()?, 0)
}

/// Text from an HTML fragment such as an RSS description: tags dropped, entities decoded,
/// scripts and styles left out, block elements on lines of their own.
pub(crate) fn html_to_text(fragment: &str) -> String {
    if !fragment.contains(['<', '&']) {
        return normalise_whitespace(fragment);
    }
    normalise_whitespace(&extract::fragment_text(fragment))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_fragments_become_text() {
        let cases = [
            ("Plain &amp; simple", "Plain & simple"),
            (
                "<p>Første</p><p>Anden &#8211; <b>fed</b></p>",
                // Paragraphs stay apart, as in every other extracted text.
                "Første\n\nAnden – fed",
            ),
            ("<script>alert(1)</script>Tekst", "Tekst"),
            ("no markup", "no markup"),
        ];
        for (input, expected) in cases {
            assert_eq!(html_to_text(input), expected, "{input:?}");
        }
    }
}
