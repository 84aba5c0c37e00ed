//! The website crawler: intranet sites and CMSs without an API, read the way a browser sees
//! them.
//!
//! **Scope.** A crawl starts at its seeds and visits URLs on the configured hosts (default: the
//! seeds' hosts), under the path prefixes, matching the include patterns and no exclude pattern.
//! It reads `robots.txt` (rules for the user agent `Samle`, `Crawl-delay`, `Sitemap:` lines),
//! sitemaps and sitemap indexes (also `.xml.gz`), and follows `<a href>` links, `<base href>`
//! respected. Limits on depth, URL length, pages per run and pages per first path segment stop
//! crawler traps (endless calendars, ever-growing paths).
//!
//! **Identity.** A page is one document whose id is its canonical URL (see `scope::canonical`:
//! no fragment, no default port, lowercase host, no trailing `index.html`, sorted query
//! parameters). Redirects (HTTP, followed by the client only to allowed hosts, and
//! `<meta http-equiv="refresh">`) and a `<link rel="canonical">` naming another URL in scope
//! lead to their target, which is the document; the page that points there is not (its links
//! are still followed). Pages marked `noindex` (meta tag or
//! `X-Robots-Tag`) are not indexed, and `nofollow` is honoured. Linked PDF, DOCX and ODT files
//! in scope are documents too; other binary files are skipped.
//!
//! **Incremental.** Each document's fingerprint is a compact JSON `page::PageState`: a hash of
//! the document, the `ETag` / `Last-Modified` it was served with, the sitemap's `lastmod` when
//! it was fetched, and its links in scope. A re-crawl sends conditional requests; a 304, or a
//! sitemap `lastmod` no newer than the one remembered, means `Unchanged` without a body, and the
//! remembered links still lead on to the rest of the site. A page fetched again whose hash did
//! not change is `Unchanged` too. A full run (`ctx.full`) ignores all of it.
//!
//! **Deletion.** A page answering 404 or 410, or that became `noindex` or a redirect, is
//! deleted. After a complete crawl — no limit hit, no transient failure that may hide pages,
//! every `robots.txt` and declared sitemap readable or absent — the run ends with
//! `TraversalComplete`, so pages no longer reachable are swept. A seed that cannot be fetched
//! (down, 5xx after retries, 401, a redirect to a foreign host, disallowed by `robots.txt`)
//! fails the run, and nothing is deleted.
//!
//! **Cursor.** JSON `{"v":1,"complete":…,"aliases":{…}}`: whether the run completed, and which
//! fetched URLs an HTTP redirect turned into another document, so that the next run asks for
//! them conditionally with that document's validators. It holds nothing that changes when the
//! site does not (no time of the run), so an unchanged crawl repeats it and commits nothing.
//! Checkpoints carry it every few hundred pages; a run that was interrupted simply starts again
//! from the seeds, and what it had already done costs only conditional requests.

mod crawl;
mod page;
mod robots;
mod scope;
mod sitemap;
mod visit;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tracing::warn;
use url::Url;

use crate::connector::{Connector, RunContext};
use crate::error::ConnectorError;
use crate::extract::{self, Limits};
use crate::http::{HttpClient, HttpError, HttpParams};
use crate::params;

use self::crawl::Crawl;
use self::robots::{RobotsTxt, fetch_robots, sitemap_roots};
use self::scope::{HostRule, Scope, canonical};

/// Bump when the conversion of pages changes enough to re-emit every page once.
const CONVERSION_VERSION: u32 = 1;
const CURSOR_VERSION: u32 = 1;
const DEFAULT_KIND: &str = "page";
const DEFAULT_MAX_DEPTH: u32 = 16;
const DEFAULT_MAX_URL_LENGTH: usize = 1024;
const DEFAULT_MAX_PAGES: usize = 50_000;
const DEFAULT_MAX_PAGES_PER_PREFIX: usize = 10_000;
/// The name `robots.txt` groups and robots meta tags are matched against.
const ROBOTS_AGENT: &str = "Samle";

fn yes() -> bool {
    true
}

/// The `[sources.website]` table.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebsiteParams {
    /// Where the crawl starts: http(s) URLs within the scope. Each must answer, or the run fails.
    pub seeds: Vec<String>,
    /// Hosts the crawl may visit, as `"intra.example.dk"` (any port) or
    /// `"intra.example.dk:8080"` (that port only). Default: the seeds' hosts.
    #[serde(default)]
    pub hosts: Vec<String>,
    /// Only URLs whose path starts with one of these, such as `"/nyheder/"`. Default: all.
    #[serde(default)]
    pub path_prefixes: Vec<String>,
    /// Globs over a URL's path and query (`/nyheder/2031/side.html?print=1`), where `*` also
    /// matches `/`. When given, only matching URLs are crawled.
    #[serde(default)]
    pub include: Vec<String>,
    /// Globs as for `include`; matching URLs are never crawled, such as `"*?print=*"`.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Principals who may see every page; empty means nobody (and each run reports it).
    #[serde(default)]
    pub access: Vec<String>,
    /// Principals by path prefix, such as `{ prefix = "/ledelse/", principals =
    /// ["group:ledere"] }`; the longest matching prefix wins over `access`.
    #[serde(default)]
    pub access_rules: Vec<PrefixAccess>,
    /// The document kind of every page: lowercase letters, digits and `-` (default `"page"`).
    pub kind: Option<String>,
    /// The language of every page ("da", "en"); otherwise what the page declares.
    pub language: Option<String>,
    /// Links followed away from a seed or sitemap entry (default 16).
    pub max_depth: Option<u32>,
    /// Longer URLs are not crawled (default 1024 characters).
    pub max_url_length: Option<usize>,
    /// URLs visited per run at most (default 50,000).
    pub max_pages: Option<usize>,
    /// URLs visited per run under one first path segment (`/kalender`) at most (default 10,000).
    pub max_pages_per_prefix: Option<usize>,
    /// Follow links between pages (default true); false crawls only the seeds and sitemaps.
    #[serde(default = "yes")]
    pub follow_links: bool,
    /// Read the sitemaps that `robots.txt` names, or `/sitemap.xml` (default true).
    #[serde(default = "yes")]
    pub use_sitemaps: bool,
    /// Obey `robots.txt`, `Crawl-delay`, robots meta tags, `X-Robots-Tag` and
    /// `rel="nofollow"` (default true).
    #[serde(default = "yes")]
    pub respect_robots: bool,
    /// Timeouts, retries, politeness, allowed hosts and credentials.
    #[serde(default)]
    pub http: HttpParams,
}

/// Principals for the pages under one path prefix.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrefixAccess {
    /// A path prefix such as `"/ledelse/"`.
    pub prefix: String,
    /// Principals such as `"group:ledere"`; empty makes the pages visible to nobody.
    pub principals: Vec<String>,
}

/// The website crawler. Build it with [`crate::build`] or [`Website::new`].
pub struct Website {
    inner: Arc<Inner>,
}

struct Inner {
    seeds: Vec<Url>,
    scope: Scope,
    access: Vec<String>,
    /// Longest prefix first.
    access_rules: Vec<PrefixAccess>,
    kind: String,
    language: Option<String>,
    max_depth: u32,
    max_url_length: usize,
    max_pages: usize,
    max_pages_per_prefix: usize,
    follow_links: bool,
    use_sitemaps: bool,
    respect_robots: bool,
    client: HttpClient,
    limits: Limits,
}

impl Website {
    /// Validates the parameters; the site is not contacted until `check` or `run`. A relative
    /// `http.ca_file` is resolved against `base_dir`.
    pub fn new(params: &WebsiteParams, base_dir: &std::path::Path) -> Result<Self, ConnectorError> {
        if params.seeds.is_empty() {
            return Err(ConnectorError::Config(
                "website seeds must list at least one URL, such as \"https://intra.example.dk/\""
                    .to_owned(),
            ));
        }
        let seeds = params
            .seeds
            .iter()
            .map(|seed| {
                let parsed = Url::parse(seed.trim())
                    .map_err(|e| ConnectorError::Config(format!("website seed {seed:?}: {e}")))?;
                canonical(&parsed).ok_or_else(|| {
                    ConnectorError::Config(format!(
                        "website seed {seed:?} must be an http:// or https:// URL with a host"
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;

        let hosts = if params.hosts.is_empty() {
            let mut hosts: Vec<HostRule> = Vec::new();
            for rule in seeds.iter().filter_map(HostRule::of) {
                if !hosts.contains(&rule) {
                    hosts.push(rule);
                }
            }
            hosts
        } else {
            params
                .hosts
                .iter()
                .map(|h| HostRule::parse(h))
                .collect::<Result<_, _>>()?
        };
        let scope = Scope::new(
            hosts,
            &params.path_prefixes,
            &params.include,
            &params.exclude,
        )?;

        let max_url_length = positive(
            params.max_url_length,
            DEFAULT_MAX_URL_LENGTH,
            "max_url_length",
        )?;
        for seed in &seeds {
            if !scope.contains(seed) {
                return Err(ConnectorError::Config(format!(
                    "website seed {seed} is outside the crawl's scope: check hosts, path_prefixes, include and exclude"
                )));
            }
            if seed.as_str().len() > max_url_length {
                return Err(ConnectorError::Config(format!(
                    "website seed {seed} is longer than max_url_length ({max_url_length})"
                )));
            }
        }

        let access = principals(&params.access, "access")?;
        let mut access_rules = params
            .access_rules
            .iter()
            .map(|rule| {
                if !rule.prefix.starts_with('/') {
                    return Err(ConnectorError::Config(format!(
                        "website access_rules prefix {:?} must start with /, such as \"/ledelse/\"",
                        rule.prefix
                    )));
                }
                Ok(PrefixAccess {
                    prefix: rule.prefix.clone(),
                    principals: principals(&rule.principals, "access_rules")?,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        access_rules.sort_by_key(|rule| std::cmp::Reverse(rule.prefix.len()));

        let kind = match params.kind.as_deref() {
            None => DEFAULT_KIND.to_owned(),
            Some(kind) => params::document_kind(kind, "website", DEFAULT_KIND)?,
        };
        let language = params
            .language
            .as_deref()
            .and_then(extract::primary_language);

        // The client may go to every host of the scope, besides what http.allowed_hosts adds
        // (a single sign-on host a redirect passes through, say).
        let mut http = params.http.clone();
        for rule in scope.hosts() {
            if !http
                .allowed_hosts
                .iter()
                .any(|h| h.eq_ignore_ascii_case(rule.bare_host()))
            {
                http.allowed_hosts.push(rule.bare_host().to_owned());
            }
        }
        let client = HttpClient::in_dir(&http, &seeds[0], base_dir)?;
        let mut limits = Limits::default();
        if let Some(max) = params.http.max_response_bytes {
            limits.max_file_bytes = max;
        }

        Ok(Self {
            inner: Arc::new(Inner {
                seeds,
                scope,
                access,
                access_rules,
                kind,
                language,
                max_depth: params.max_depth.unwrap_or(DEFAULT_MAX_DEPTH),
                max_url_length,
                max_pages: positive(params.max_pages, DEFAULT_MAX_PAGES, "max_pages")?,
                max_pages_per_prefix: positive(
                    params.max_pages_per_prefix,
                    DEFAULT_MAX_PAGES_PER_PREFIX,
                    "max_pages_per_prefix",
                )?,
                follow_links: params.follow_links,
                use_sitemaps: params.use_sitemaps,
                respect_robots: params.respect_robots,
                client,
                limits,
            }),
        })
    }
}

fn positive(value: Option<usize>, default: usize, field: &str) -> Result<usize, ConnectorError> {
    match value {
        None => Ok(default),
        Some(0) => Err(ConnectorError::Config(format!(
            "website {field} must be at least 1"
        ))),
        Some(v) => Ok(v),
    }
}

fn principals(values: &[String], field: &str) -> Result<Vec<String>, ConnectorError> {
    params::principals(values, &format!("website {field}"))
}

#[async_trait::async_trait]
impl Connector for Website {
    fn kind(&self) -> &'static str {
        "website"
    }

    async fn check(&self) -> Result<Vec<String>, ConnectorError> {
        let inner = &self.inner;
        let mut notes = Vec::new();
        for seed in &inner.seeds {
            let robots = if inner.respect_robots || inner.use_sitemaps {
                Some(fetch_robots(&inner.client, seed).await)
            } else {
                None
            };
            let robots_note = match &robots {
                None => "robots.txt is not consulted".to_owned(),
                Some(robots) if !inner.respect_robots => {
                    format!("robots.txt is {} but not obeyed", robots.describe())
                }
                Some(robots) => {
                    if let RobotsTxt::Unreachable(reason) = &robots.txt {
                        return Err(ConnectorError::Unavailable {
                            reason: format!(
                                "{} cannot be read ({reason}); a crawler must then assume that everything is disallowed",
                                robots.url
                            ),
                        });
                    }
                    if !robots.allows(seed) {
                        return Err(ConnectorError::Unavailable {
                            reason: format!(
                                "{} disallows the seed {seed} for the user agent {ROBOTS_AGENT}",
                                robots.url
                            ),
                        });
                    }
                    match (&robots.txt, robots.delay()) {
                        (RobotsTxt::Absent, _) => "there is no robots.txt".to_owned(),
                        (_, Some(delay)) => format!(
                            "robots.txt allows it and asks for {:.1} s between requests",
                            delay.as_secs_f32()
                        ),
                        _ => "robots.txt allows it".to_owned(),
                    }
                }
            };
            let fetched = inner
                .client
                .get(seed)
                .await
                .map_err(|e| seed_error(seed, &e))?;
            let landed = canonical(&fetched.url).unwrap_or_else(|| fetched.url.clone());
            if landed != *seed && !inner.scope.contains(&landed) {
                return Err(ConnectorError::Unavailable {
                    reason: format!(
                        "seed {seed} redirects to {landed}, which is outside the crawl's scope"
                    ),
                });
            }
            let mut note = format!(
                "seed {seed} answers 200 ({})",
                fetched.content_type.as_deref().unwrap_or("no content type")
            );
            if landed != *seed {
                note.push_str(&format!(" after a redirect to {landed}"));
            }
            note.push_str(&format!(", {robots_note}"));
            if inner.use_sitemaps {
                let roots = sitemap_roots(seed, robots.as_ref());
                let harvest = inner.collect_sitemaps(roots, inner.max_pages).await;
                if harvest.files == 0 {
                    note.push_str(", no sitemap found");
                } else {
                    note.push_str(&format!(
                        ", {} sitemap file(s) list {} URLs ({} in scope)",
                        harvest.files,
                        harvest.listed,
                        harvest.entries.len()
                    ));
                }
                for problem in harvest.problems {
                    notes.push(format!("sitemap problem: {problem}"));
                }
            }
            notes.push(note);
        }
        if inner.access.is_empty() && inner.access_rules.is_empty() {
            notes.push("access is empty: the pages are visible to nobody".to_owned());
        }
        Ok(notes)
    }

    async fn run(&self, ctx: RunContext) -> Result<(), ConnectorError> {
        // Every page visited is compared with its state.
        ctx.known.load().await?;
        let previous: Cursor = match ctx.cursor.as_deref() {
            None => Cursor::default(),
            Some(raw) => serde_json::from_str(raw).unwrap_or_else(|e| {
                warn!(source = %ctx.source_id, error = %e, "unreadable website cursor, crawling without it");
                Cursor::default()
            }),
        };
        let mut crawl = Crawl::new(Arc::clone(&self.inner), &ctx, previous.aliases);
        crawl.run().await
    }
}

/// What a failing seed means, with a hint where one helps.
fn seed_error(seed: &Url, error: &HttpError) -> ConnectorError {
    let hint = match error {
        HttpError::Status { status, .. } if status.as_u16() == 401 => {
            ": the site wants credentials (http.username with http.password_env, or http.token_env)"
        }
        HttpError::Status { status, .. } if status.as_u16() == 403 => {
            ": the site refuses the crawler's user or address"
        }
        HttpError::RedirectRefused { .. } => {
            ": if that host belongs to the site, add it to hosts or http.allowed_hosts"
        }
        _ => "",
    };
    ConnectorError::Unavailable {
        reason: format!("seed {seed} cannot be fetched: {error}{hint}"),
    }
}

/// What the cursor keeps between runs (see the module documentation).
#[derive(Debug, Default, Deserialize, Serialize)]
struct Cursor {
    #[serde(rename = "v", default)]
    version: u32,
    #[serde(default)]
    complete: bool,
    /// Fetched URL → the id of the document it turned out to be.
    #[serde(default)]
    aliases: BTreeMap<String, String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configuration_is_validated() {
        let params = |extra: &str| -> WebsiteParams {
            toml::from_str(&format!("seeds = [\"http://intra.example.dk/\"]\n{extra}")).unwrap()
        };
        let dir = std::path::Path::new("/");
        assert!(Website::new(&params(""), dir).is_ok());
        let cases = [
            (
                "path_prefixes = [\"/nyheder/\"]",
                "outside the crawl's scope",
            ),
            ("max_pages = 0", "max_pages must be at least 1"),
            ("kind = \"Side\"", "website kind \"Side\""),
            ("include = [\"[abc\"]", "invalid website include pattern"),
            ("hosts = [\"http://x/\"]", "website hosts entry"),
            (
                "access_rules = [{ prefix = \"ledelse\", principals = [] }]",
                "must start with /",
            ),
        ];
        for (extra, expected) in cases {
            let err = Website::new(&params(extra), dir).err().unwrap().to_string();
            assert!(err.contains(expected), "{extra}: {err}");
        }
        let err = Website::new(&toml::from_str::<WebsiteParams>("seeds = []").unwrap(), dir)
            .err()
            .unwrap();
        assert!(err.to_string().contains("at least one URL"), "{err}");
    }
}
