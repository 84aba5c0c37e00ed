//! The WordPress connector: posts, pages and custom post types through the REST API
//! (`/wp-json/wp/v2/`, or `?rest_route=` on sites without pretty permalinks).
//!
//! A run asks each listing (a post type, and its private posts and drafts when configured) only
//! for what changed: `modified_after` the newest `modified_gmt` of the last run, minus an
//! overlap, ordered by `modified` ascending, so that the cursor can advance page by page and a
//! run that fails resumes where it stopped. Only the fields the document needs are asked for
//! (`_fields=`); category, tag and author names are looked up by id for the posts that changed,
//! and cached for the run. An unchanged site costs two small requests per post type (this one
//! and the `after` listing below) and one per private listing.
//!
//! WordPress compares `modified_after` (and `after`) with the *local* `post_modified`
//! (`post_date`): it converts the UTC date it is sent to the site's time zone first. In the hour
//! repeated when clocks go back, a post saved later has an earlier local time than the newest
//! one seen, by up to an hour, so the overlap is an hour and a minute (`OVERLAP_SECONDS`).
//! Posts in the overlap come back and are emitted as `Unchanged`: what it costs is the bytes of
//! the posts edited in the hour before the newest edit, nothing on a site without recent edits.
//!
//! WordPress's cron publishes a scheduled (`future`) post by changing only its status: its
//! `modified` stays at when it was scheduled, often before the cursor, so `modified_after` never
//! returns it. So each published-posts listing of an incremental run also asks for the posts
//! *published* (`after=`, on `post_date`) since its start minus the overlap, with only the id
//! listing's fields (`_fields=id,modified_gmt,status`; usually an empty page). Posts that the
//! `modified_after` listing already returned are skipped, known ones with the same fingerprint
//! are `Unchanged`, and only new or changed ones are fetched, by `include=`. The start is the
//! newest `modified_gmt` seen by the last run that completed: WordPress wrote it before that run
//! read its listings, so a post that went live after them has a later `post_date`, unless the
//! cron published it late. While a run that advanced `modified` has not completed (it failed
//! later), or when its `after` listing's `X-WP-Total` moved while it was read (which may have
//! hidden a post), the cursor keeps the old start apart (`published`), and the next run asks for
//! the same posts again. Not caught this way: a post the cron (which runs on page visits)
//! published more than the overlap after its scheduled time, and after a run that saw an edit
//! made later than that time plus the overlap. Nothing short of listing every id tells it from
//! an old post, so the id listing below finds it, within `full_listing_every`. The `after`
//! listing is not sent for private listings (the cron publishes as `publish`, and WordPress
//! never schedules a private post), nor in a run that lists every id anyway.
//!
//! WordPress does not report deletions: a trashed post simply vanishes. So every
//! `full_listing_every` a run also lists the ids of every post (`_fields=id,modified_gmt,status`,
//! a few dozen bytes each), emits `Unchanged` for those whose fingerprint matches, fetches the
//! few that differ, and ends with `TraversalComplete`, letting the caller's guarded
//! mark-and-sweep remove what is no longer listed. That is sent only after every listing of the
//! run was read to its end with a consistent `X-WP-Total`: a listing that failed, or whose total
//! moved while it was paged (a post trashed mid-listing shifts the pages and would hide a
//! live post), deletes nothing, and the next run lists again. (A post trashed and another
//! published between two page requests keep the total and could hide one post until the next
//! listing; the deletion guard bounds what such a run may delete.) A first run, a `full` run and
//! a run with an unreadable cursor read every listing in full instead, followed by the id
//! listing only when that reading cannot be verified.
//!
//! Private posts and drafts get `private_access`, never `access`, whatever listing they came
//! from: the ACL follows each post's own `status`. Password-protected posts are indexed by title
//! only, even when the credentials could read their content.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};
use url::Url;

use crate::connector::{Connector, RunContext};
use crate::error::ConnectorError;
use crate::extract::{self, Limits, one_line, truncate_chars};
use crate::feed::html_to_text;
use crate::http::{Fetched, HttpClient, HttpError, HttpParams, HttpStats, parse_duration};
use crate::model::{Change, Document};

/// Bump when the conversion of posts changes enough to re-emit every post once.
const CONVERSION_VERSION: u32 = 1;
/// Bump when the cursor's meaning changes; an older cursor then starts a full traversal.
const CURSOR_VERSION: u32 = 1;
const DEFAULT_TYPES: [&str; 2] = ["posts", "pages"];
const DEFAULT_PER_PAGE: u32 = 100;
/// WordPress refuses `per_page` above 100.
const MAX_PER_PAGE: u32 = 100;
const DEFAULT_FULL_LISTING_EVERY: Duration = Duration::from_secs(3_600);
/// How far before the cursor `modified_after` and `after` start: more than the largest
/// daylight-saving shift, plus a minute. WordPress compares both with the site's local time
/// (`post_modified`, `post_date`), which repeats an hour when clocks go back (Europe/Copenhagen:
/// 03:00 summer time becomes 02:00 winter time on the last Sunday of October): a post saved at
/// 02:10 winter time, 40 minutes after the newest one seen at 02:30 summer time, looks 20
/// minutes older than it. The minute is for what the cursor itself misses: both parameters are
/// exclusive and to the second, and a post saved in the same second as the newest one seen, or
/// committed a moment after its timestamp, must still come back. Posts in the overlap come back
/// as `Unchanged`.
const OVERLAP_SECONDS: i64 = 61 * 60;
/// A listing that claims more pages than this is not a WordPress site behaving normally.
const MAX_PAGES: u32 = 100_000;
const CONTENT_FIELDS: &str =
    "id,date_gmt,modified_gmt,slug,status,type,link,title,content,excerpt,author,categories,tags";
const ID_FIELDS: &str = "id,modified_gmt,status";
/// `get_the_title()` puts this before a private post's title ("Private: %s"), translated; the
/// REST API keeps it in `title.rendered`.
const PRIVATE_TITLE_PREFIXES: [&str; 2] = ["Private: ", "Privat: "];

/// The `[sources.wordpress]` table.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WordPressParams {
    /// The site's address, such as `"https://intra.example.dk/"` (or a sub-folder install,
    /// `"https://example.dk/intra/"`); the API is read at `<url>/wp-json/wp/v2/`. An address
    /// with `?rest_route=` (`"https://example.dk/?rest_route=/"`, for sites without pretty
    /// permalinks) makes every request use `?rest_route=/wp/v2/...` instead.
    pub url: String,
    /// The post types to index, by REST base: `"posts"`, `"pages"`, or a custom post type
    /// registered with `show_in_rest` (default `["posts", "pages"]`).
    pub types: Option<Vec<String>>,
    /// Principals who may see published posts; empty means nobody (and each run reports it).
    #[serde(default)]
    pub access: Vec<String>,
    /// Principals who may see private posts (and drafts with `include_drafts`). Private content
    /// is read only when this is set, which needs credentials in `http` (an application
    /// password of a user who may read private posts). Empty: private content is not read.
    #[serde(default)]
    pub private_access: Vec<String>,
    /// Also index drafts, with `private_access` (default false).
    #[serde(default)]
    pub include_drafts: bool,
    /// The document kind per post type, such as `{ posts = "news" }`. Defaults: `"article"`
    /// for posts and custom types, `"page"` for pages.
    #[serde(default)]
    pub kind: BTreeMap<String, String>,
    /// The language of every post ("da", "en"); otherwise unknown.
    pub language: Option<String>,
    /// Posts per request, 1 to 100 (default 100, WordPress's maximum).
    pub per_page: Option<u32>,
    /// How often a run also lists the ids of every post to find trashed and deleted ones, such
    /// as `"1h"` (the default) or `"24h"`; `"0s"` lists on every run. Until then a trashed post
    /// stays searchable, a post made private without `private_access` keeps its old access, and
    /// a scheduled post that WordPress's cron published more than an hour late may be missing.
    pub full_listing_every: Option<String>,
    /// Timeouts, retries, politeness, allowed hosts and credentials (`username` and
    /// `password_env` for an application password).
    #[serde(default)]
    pub http: HttpParams,
}

/// How request URLs are formed.
#[derive(Clone, Debug)]
enum Api {
    /// `<site>/wp-json/<route>`.
    Pretty { root: Url },
    /// `<site>?rest_route=/<route>`.
    Query { site: Url },
}

impl Api {
    /// The URL of `route` ("wp/v2/posts", "" for the index) with `query`.
    fn url(&self, route: &str, query: &[(&str, &str)]) -> Result<Url, ConnectorError> {
        let mut url = match self {
            Api::Pretty { root } => root.join(route).map_err(|e| {
                ConnectorError::Internal(format!("cannot form the url of {route:?}: {e}"))
            })?,
            Api::Query { site } => {
                let mut url = site.clone();
                url.query_pairs_mut()
                    .append_pair("rest_route", &format!("/{route}"));
                url
            }
        };
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        Ok(url)
    }
}

/// One post type as configured.
#[derive(Clone, Debug)]
struct PostType {
    /// The REST base, such as "posts".
    base: String,
    kind: String,
}

/// One listing of a run: a post type's published posts, or its private posts (and drafts).
#[derive(Clone, Debug)]
struct Listing {
    ty: PostType,
    private: bool,
}

impl Listing {
    /// The key of its progress in the cursor.
    fn key(&self) -> String {
        if self.private {
            format!("{}+private", self.ty.base)
        } else {
            self.ty.base.clone()
        }
    }
}

/// The WordPress connector. Build it with [`crate::build`] or [`WordPress::new`].
pub struct WordPress {
    site: Url,
    api: Api,
    types: Vec<PostType>,
    access: Vec<String>,
    private_access: Vec<String>,
    /// The `status` of the private listings ("private" or "private,draft"); `None` when private
    /// content is not read.
    private_statuses: Option<&'static str>,
    language: Option<String>,
    per_page: u32,
    full_listing_every: Duration,
    /// The Basic user name, for messages; `None` for a bearer token or no credentials.
    username: Option<String>,
    password_env: Option<String>,
    has_credentials: bool,
    /// Everything in the configuration that changes how a post is converted.
    settings: String,
    client: Arc<HttpClient>,
    max_text_chars: usize,
}

/// What the cursor remembers between runs.
#[derive(Debug, Default, Deserialize, Serialize)]
struct Cursor {
    #[serde(default)]
    version: u32,
    /// The newest `modified_gmt` seen per listing ("posts", "posts+private").
    #[serde(default)]
    modified: BTreeMap<String, DateTime<Utc>>,
    /// When the last complete listing (the one that finds deletions) started.
    #[serde(default)]
    listed: Option<DateTime<Utc>>,
    /// Where the next `after=` listing of a published-posts listing starts, when that is not
    /// its `modified`: while a run that advanced `modified` has not completed, or its `after`
    /// listing may have missed a post. Empty after a run that completed, so an unchanged run
    /// checkpoints the same cursor it was given.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    published: BTreeMap<String, DateTime<Utc>>,
}

#[derive(Debug, Default, Deserialize)]
struct Rendered {
    #[serde(default)]
    rendered: String,
    #[serde(default)]
    protected: bool,
}

/// A post as the REST API returns it with `_fields=`.
#[derive(Debug, Deserialize)]
struct Post {
    id: u64,
    #[serde(default)]
    date_gmt: Option<String>,
    #[serde(default)]
    modified_gmt: Option<String>,
    #[serde(default)]
    slug: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    link: Option<String>,
    #[serde(default)]
    title: Option<Rendered>,
    #[serde(default)]
    content: Option<Rendered>,
    #[serde(default)]
    excerpt: Option<Rendered>,
    #[serde(default)]
    author: Option<u64>,
    #[serde(default)]
    categories: Vec<u64>,
    #[serde(default)]
    tags: Vec<u64>,
}

/// A term or user with `_fields=id,name`.
#[derive(Debug, Deserialize)]
struct Named {
    id: u64,
    #[serde(default)]
    name: String,
}

/// The site index at `/wp-json/`.
#[derive(Debug, Deserialize)]
struct SiteIndex {
    #[serde(default)]
    name: String,
    #[serde(default)]
    namespaces: Vec<String>,
}

/// The signed-in user from `users/me?context=edit`.
#[derive(Debug, Deserialize)]
struct Me {
    #[serde(default)]
    name: String,
    #[serde(default)]
    roles: Vec<String>,
}

/// Category, tag and author names looked up during a run.
#[derive(Default)]
struct Names {
    maps: HashMap<&'static str, HashMap<u64, String>>,
    /// Lookups the site refused (a security plugin may hide `/users`): not asked again.
    refused: HashSet<&'static str>,
}

/// The state of one run.
struct RunState {
    names: Names,
    /// Every document id emitted in this run, so that none is emitted twice.
    emitted: HashSet<String>,
    upserted: usize,
    unchanged: usize,
    requests_before: HttpStats,
}

/// What a listing's pages said about its size, to tell a complete listing from a shifted one.
#[derive(Debug, Default)]
struct Totals {
    first: Option<u64>,
    consistent: bool,
    pages: u32,
}

impl Totals {
    /// Whether `X-WP-Total` changed while the listing was read, which may have shifted a post
    /// onto a page already read.
    fn moved(&self) -> bool {
        self.pages > 0 && !self.consistent
    }

    /// Why the listing cannot be trusted to find deletions, if it cannot. Every page must
    /// report the same `X-WP-Total` (a post trashed or unpublished mid-listing changes it and
    /// shifts the pages). `X-WP-Total` also counts posts the user may not read (WordPress drops
    /// them from the page after counting; an editor cannot read the administrator's privacy
    /// policy draft), so an id listing, whose order a later edit cannot change, may have seen
    /// fewer; a listing ordered by `modified` (`exact`) must have seen exactly as many, since
    /// an edit mid-listing moves a post to its end and shifts the pages without changing the
    /// total. Without the header (a proxy that drops it) nothing can be verified.
    fn incomplete(&self, seen: usize, exact: bool) -> Option<&'static str> {
        let seen = u64::try_from(seen).unwrap_or(u64::MAX);
        match self.first {
            None => Some("WordPress sent no X-WP-Total header, so the listing cannot be verified"),
            Some(_) if !self.consistent => Some("X-WP-Total changed while the listing was read"),
            Some(total) if seen > total || (exact && seen != total) => {
                Some("the listing held a different number of posts than X-WP-Total")
            }
            Some(_) => None,
        }
    }
}

/// Pages through one collection by `page=N`.
struct Pager<'a> {
    wp: &'a WordPress,
    what: String,
    url: Url,
    private: bool,
    page: u32,
    more: bool,
    total_pages: Option<u32>,
    totals: Totals,
}

impl Pager<'_> {
    /// The next page's items; `None` after the last page.
    async fn next<T: DeserializeOwned>(&mut self) -> Result<Option<Vec<T>>, ConnectorError> {
        if !self.more {
            return Ok(None);
        }
        self.page += 1;
        let mut url = self.url.clone();
        url.query_pairs_mut()
            .append_pair("page", &self.page.to_string());
        let page_label = match self.total_pages {
            Some(total) => format!("{} page {} of {total}", self.what, self.page),
            None => format!("{} page {}", self.what, self.page),
        };
        let fetched = self
            .wp
            .client
            .get(&url)
            .await
            .map_err(|e| self.wp.http_error(e, &page_label, self.private))?;
        let items: Vec<T> = self.wp.parse_json(&fetched, &page_label)?;

        let total = header_number(&fetched, "x-wp-total");
        let total_pages =
            header_number(&fetched, "x-wp-totalpages").and_then(|n| u32::try_from(n).ok());
        if self.totals.pages == 0 {
            self.totals.first = total;
            self.totals.consistent = true;
        } else if total != self.totals.first {
            self.totals.consistent = false;
        }
        self.totals.pages += 1;
        self.total_pages = total_pages;
        self.more = match total_pages {
            Some(pages) => self.page < pages,
            None => has_next_link(&fetched),
        } && !items.is_empty();
        if self.more && self.page >= MAX_PAGES {
            return Err(ConnectorError::Unavailable {
                reason: format!(
                    "{page_label}: the site claims more than {MAX_PAGES} pages, which no WordPress site has"
                ),
            });
        }
        Ok(Some(items))
    }
}

impl WordPress {
    /// Validates the parameters; the site is not contacted until `check` or `run`. A relative
    /// `http.ca_file` is resolved against `base_dir`.
    pub fn new(params: &WordPressParams, base_dir: &Path) -> Result<Self, ConnectorError> {
        Self::with_env(params, base_dir, |name| std::env::var(name).ok())
    }

    /// As [`WordPress::new`], reading the credentials' environment variables through `env`.
    pub fn with_env(
        params: &WordPressParams,
        base_dir: &Path,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConnectorError> {
        let config = |m: String| ConnectorError::Config(m);
        let raw = params.url.trim();
        let mut site =
            Url::parse(raw).map_err(|e| config(format!("wordpress url {:?}: {e}", params.url)))?;
        if !matches!(site.scheme(), "http" | "https") {
            return Err(config(format!(
                "wordpress url {site} must start with http:// or https://"
            )));
        }
        let query_style = site.query_pairs().any(|(k, _)| k == "rest_route");
        site.set_query(None);
        site.set_fragment(None);
        if !site.path().ends_with('/') {
            let path = format!("{}/", site.path());
            site.set_path(&path);
        }
        let api = if query_style {
            Api::Query { site: site.clone() }
        } else {
            let root = site
                .join("wp-json/")
                .map_err(|e| config(format!("wordpress url {site}: {e}")))?;
            Api::Pretty { root }
        };

        let type_names: Vec<String> = match &params.types {
            None => DEFAULT_TYPES.iter().map(|t| (*t).to_owned()).collect(),
            Some(types) => types.iter().map(|t| t.trim().to_owned()).collect(),
        };
        if type_names.is_empty() {
            return Err(config(
                "wordpress types is empty; list post types by REST base, such as [\"posts\", \"pages\"]"
                    .to_owned(),
            ));
        }
        let mut types = Vec::new();
        for base in type_names {
            let valid = !base.is_empty()
                && base
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !valid {
                return Err(config(format!(
                    "wordpress type {base:?} must be a post type's REST base, such as \"posts\" or \"nyheder\""
                )));
            }
            if types.iter().any(|t: &PostType| t.base == base) {
                return Err(config(format!("wordpress type {base:?} is listed twice")));
            }
            let kind = match params.kind.get(&base) {
                Some(kind) => crate::params::document_kind(kind, "wordpress", "news")?,
                None if base == "pages" => "page".to_owned(),
                None => "article".to_owned(),
            };
            types.push(PostType { base, kind });
        }
        if let Some(unknown) = params
            .kind
            .keys()
            .find(|k| !types.iter().any(|t| &t.base == *k))
        {
            return Err(config(format!(
                "wordpress kind names type {unknown:?}, which is not in types"
            )));
        }

        let access = principals(&params.access, "access")?;
        let private_access = principals(&params.private_access, "private_access")?;
        let has_credentials = params.http.username.is_some() || params.http.token_env.is_some();
        if !private_access.is_empty() && !has_credentials {
            return Err(config(
                "wordpress private_access needs credentials: set http.username and http.password_env (an application password of a user who may read private posts)"
                    .to_owned(),
            ));
        }
        if params.include_drafts && private_access.is_empty() {
            return Err(config(
                "wordpress include_drafts needs private_access: drafts are never given the public access"
                    .to_owned(),
            ));
        }
        let private_statuses = match (private_access.is_empty(), params.include_drafts) {
            (true, _) => None,
            (false, false) => Some("private"),
            (false, true) => Some("private,draft"),
        };
        let per_page = params.per_page.unwrap_or(DEFAULT_PER_PAGE);
        if !(1..=MAX_PER_PAGE).contains(&per_page) {
            return Err(config(format!(
                "wordpress per_page {per_page} must be from 1 to {MAX_PER_PAGE}"
            )));
        }
        let full_listing_every = match params.full_listing_every.as_deref() {
            None => DEFAULT_FULL_LISTING_EVERY,
            Some(value) => parse_duration(value).ok_or_else(|| {
                config(format!(
                    "wordpress full_listing_every {value:?} is not a duration such as \"1h\" or \"24h\""
                ))
            })?,
        };
        let language = params
            .language
            .as_deref()
            .and_then(extract::primary_language);

        let settings = {
            let mut hasher = blake3::Hasher::new();
            for part in [
                access.join("\u{1f}").as_str(),
                &private_access.join("\u{1f}"),
                language.as_deref().unwrap_or(""),
            ] {
                hasher.update(part.as_bytes());
                hasher.update(&[0]);
            }
            hasher.finalize().to_hex().to_string()
        };
        let client = Arc::new(HttpClient::with_env(&params.http, &site, base_dir, env)?);
        let mut limits = Limits::default();
        if let Some(max) = params.http.max_response_bytes {
            limits.max_file_bytes = max;
        }
        Ok(Self {
            site,
            api,
            types,
            access,
            private_access,
            private_statuses,
            language,
            per_page,
            full_listing_every,
            username: params.http.username.clone(),
            password_env: params.http.password_env.clone(),
            has_credentials,
            settings,
            client,
            max_text_chars: limits.max_text_chars,
        })
    }

    /// Requests sent and bytes received by this connector so far (for benchmarks).
    pub fn stats(&self) -> HttpStats {
        self.client.stats()
    }

    fn listings(&self) -> Vec<Listing> {
        let mut listings = Vec::new();
        for ty in &self.types {
            listings.push(Listing {
                ty: ty.clone(),
                private: false,
            });
            if self.private_statuses.is_some() {
                listings.push(Listing {
                    ty: ty.clone(),
                    private: true,
                });
            }
        }
        listings
    }

    fn statuses(&self, listing: &Listing) -> &'static str {
        match (listing.private, self.private_statuses) {
            (true, Some(statuses)) => statuses,
            _ => "publish",
        }
    }

    fn describe(&self, listing: &Listing) -> String {
        if listing.private {
            format!(
                "listing {} ({})",
                listing.ty.base,
                self.statuses(listing).replace(',', " and ")
            )
        } else {
            format!("listing {}", listing.ty.base)
        }
    }

    fn pager(
        &self,
        what: String,
        route: &str,
        query: &[(&str, &str)],
        private: bool,
    ) -> Result<Pager<'_>, ConnectorError> {
        Ok(Pager {
            wp: self,
            what,
            url: self.api.url(route, query)?,
            private,
            page: 0,
            more: true,
            total_pages: None,
            totals: Totals::default(),
        })
    }

    /// The error for a failed request, saying what was being read and what to do about it.
    fn http_error(&self, error: HttpError, what: &str, private: bool) -> ConnectorError {
        let status = error.status().map(|s| s.as_u16());
        let credentials = match (&self.username, &self.password_env) {
            (Some(user), Some(env)) => format!(
                "check http.username ({user}) and the application password in the environment variable {env}"
            ),
            _ => "check the token in the environment variable named by http.token_env".to_owned(),
        };
        let reason = match status {
            Some(401) if self.has_credentials => format!(
                "{what}: WordPress rejected the credentials (HTTP 401): {credentials} ({error})"
            ),
            Some(401) => format!(
                "{what}: WordPress requires sign-in (HTTP 401): configure credentials in http ({error})"
            ),
            Some(400) if private => format!(
                "{what}: WordPress refused to list private content (HTTP 400, rest_forbidden_status): it saw the request as anonymous or from a user who may not read private posts. WordPress treats a wrong application password as anonymous: {credentials}; the user needs an editor's rights, and the web server must pass the Authorization header on to WordPress ({error})"
            ),
            Some(403) if private => format!(
                "{what}: WordPress refused to list private content (HTTP 403): the user may not read private posts ({error})"
            ),
            Some(403) => format!(
                "{what}: access forbidden (HTTP 403): the credentials lack the rights, or a security plugin blocks the REST API ({error})"
            ),
            Some(404) => format!(
                "{what}: not found (HTTP 404): is {} a WordPress site with the REST API on, and is every entry of types a post type's REST base? ({error})",
                self.site
            ),
            _ => format!("{what}: {error}"),
        };
        ConnectorError::Unavailable { reason }
    }

    fn parse_json<T: DeserializeOwned>(
        &self,
        fetched: &Fetched,
        what: &str,
    ) -> Result<T, ConnectorError> {
        serde_json::from_slice(&fetched.body).map_err(|e| {
            let start = String::from_utf8_lossy(&fetched.body[..fetched.body.len().min(60)])
                .replace(['\n', '\r'], " ");
            ConnectorError::Unavailable {
                reason: format!(
                    "{what}: {} did not answer with WordPress REST JSON ({e}); the answer starts with {start:?} (a PHP warning printed before the JSON, a login page or a proxy's error page?)",
                    fetched.url
                ),
            }
        })
    }

    /// The fingerprint of a post: what the id listing can see (its modification time and
    /// status) and the settings its conversion depends on.
    fn fingerprint(&self, ty: &PostType, id: u64, modified: &str, status: &str) -> String {
        let mut hasher = blake3::Hasher::new();
        for part in [
            CONVERSION_VERSION.to_string().as_str(),
            &self.settings,
            &ty.base,
            &ty.kind,
            &id.to_string(),
            modified,
            status,
        ] {
            hasher.update(part.as_bytes());
            hasher.update(&[0]);
        }
        hasher.finalize().to_hex().to_string()
    }

    /// The principals for a post of `status`: the public ones only for published posts.
    fn acl(&self, status: &str) -> Vec<String> {
        if status == "publish" {
            self.access.clone()
        } else {
            self.private_access.clone()
        }
    }

    /// Emits `posts` of `listing`: `Unchanged` for known fingerprints, `Upsert` for the rest.
    /// Records their ids in `listed`, and returns the newest `modified_gmt` among them.
    async fn emit_posts(
        &self,
        ctx: &RunContext,
        listing: &Listing,
        posts: Vec<Post>,
        listed: &mut HashSet<u64>,
        state: &mut RunState,
    ) -> Result<Option<DateTime<Utc>>, ConnectorError> {
        let mut newest: Option<DateTime<Utc>> = None;
        let mut changed = Vec::new();
        ctx.known.load().await?;
        for post in posts {
            listed.insert(post.id);
            let modified = post.modified_gmt.clone().unwrap_or_default();
            if let Some(date) = extract::parse_date(&modified) {
                newest = newest.max(Some(date));
            }
            let id = external_id(&listing.ty, post.id);
            if !state.emitted.insert(id.clone()) {
                continue;
            }
            let status = post_status(&post, listing);
            let fingerprint = self.fingerprint(&listing.ty, post.id, &modified, &status);
            if !ctx.full && ctx.known.fingerprint(&id) == Some(fingerprint.as_str()) {
                state.unchanged += 1;
                ctx.sink.send(Change::Unchanged { external_id: id }).await?;
                continue;
            }
            changed.push((id, fingerprint, status, post));
        }
        if changed.is_empty() {
            return Ok(newest);
        }

        self.look_up_names(&changed, &mut state.names).await?;
        // HTML to text is blocking work: one task per page.
        let texts: Vec<(String, String, String)> = changed
            .iter()
            .map(|(_, _, _, post)| {
                let title = post.title.as_ref().map(|t| t.rendered.clone());
                let content = post
                    .content
                    .as_ref()
                    .filter(|c| !c.protected)
                    .map(|c| c.rendered.clone());
                let excerpt = post
                    .excerpt
                    .as_ref()
                    .filter(|e| !e.protected)
                    .map(|e| e.rendered.clone());
                (
                    title.unwrap_or_default(),
                    content.unwrap_or_default(),
                    excerpt.unwrap_or_default(),
                )
            })
            .collect();
        let max_chars = self.max_text_chars;
        let converted = tokio::task::spawn_blocking(move || {
            texts
                .into_iter()
                .map(|(title, content, excerpt)| {
                    let title = html_to_text(&title);
                    let mut body = html_to_text(&content);
                    if body.is_empty() {
                        body = html_to_text(&excerpt);
                    }
                    truncate_chars(&mut body, max_chars);
                    (title, body)
                })
                .collect::<Vec<_>>()
        })
        .await
        .map_err(|e| ConnectorError::Internal(format!("html conversion task failed: {e}")))?;

        for ((id, fingerprint, status, post), (title, body)) in changed.into_iter().zip(converted) {
            let doc = self.document(listing, id, fingerprint, &status, post, title, body, state);
            state.upserted += 1;
            ctx.sink.send(Change::Upsert(Box::new(doc))).await?;
        }
        Ok(newest)
    }

    #[allow(clippy::too_many_arguments)]
    fn document(
        &self,
        listing: &Listing,
        id: String,
        fingerprint: String,
        status: &str,
        post: Post,
        title: String,
        body: String,
        state: &RunState,
    ) -> Document {
        let title = if status == "publish" {
            title
        } else {
            strip_private_prefix(&title).to_owned()
        };
        let title = one_line(&title)
            .or_else(|| post.slug.as_deref().and_then(one_line))
            .unwrap_or_else(|| format!("{} {}", listing.ty.base, post.id));
        let names = |what: &'static str, ids: &[u64]| -> Vec<String> {
            ids.iter()
                .filter_map(|id| state.names.maps.get(what)?.get(id).cloned())
                .collect()
        };
        let mut tags = names("categories", &post.categories);
        for tag in names("tags", &post.tags) {
            if !tags.contains(&tag) {
                tags.push(tag);
            }
        }
        let author = post
            .author
            .filter(|a| *a != 0)
            .and_then(|a| names("users", &[a]).into_iter().next());
        let url = post
            .link
            .as_deref()
            .and_then(|l| Url::parse(l).ok())
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .map(String::from);
        let created = post.date_gmt.as_deref().and_then(extract::parse_date);
        let updated = post.modified_gmt.as_deref().and_then(extract::parse_date);
        Document {
            external_id: id,
            kind: listing.ty.kind.clone(),
            title,
            body,
            url,
            author,
            language: self.language.clone(),
            created,
            updated: updated.or(created),
            acl: self.acl(status),
            tags,
            fingerprint: Some(fingerprint),
            properties: Default::default(),
        }
    }

    /// Fetches the names of the categories, tags and authors of `posts` not yet known.
    async fn look_up_names(
        &self,
        posts: &[(String, String, String, Post)],
        names: &mut Names,
    ) -> Result<(), ConnectorError> {
        let wanted: [(&'static str, BTreeSet<u64>); 3] = [
            (
                "categories",
                posts
                    .iter()
                    .flat_map(|(_, _, _, p)| p.categories.iter().copied())
                    .collect(),
            ),
            (
                "tags",
                posts
                    .iter()
                    .flat_map(|(_, _, _, p)| p.tags.iter().copied())
                    .collect(),
            ),
            (
                "users",
                posts
                    .iter()
                    .filter_map(|(_, _, _, p)| p.author.filter(|a| *a != 0))
                    .collect(),
            ),
        ];
        for (what, ids) in wanted {
            if names.refused.contains(what) {
                continue;
            }
            let map = names.maps.entry(what).or_default();
            let missing: Vec<u64> = ids.into_iter().filter(|id| !map.contains_key(id)).collect();
            for chunk in missing.chunks(usize::try_from(MAX_PER_PAGE).unwrap_or(100)) {
                let include = chunk
                    .iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(",");
                let per_page = chunk.len().to_string();
                let url = self.api.url(
                    &format!("wp/v2/{what}"),
                    &[
                        ("include", &include),
                        ("per_page", &per_page),
                        ("_fields", "id,name"),
                    ],
                )?;
                let label = format!("looking up {what} names");
                let fetched = match self.client.get(&url).await {
                    Ok(fetched) => fetched,
                    Err(e) if matches!(e.status().map(|s| s.as_u16()), Some(401 | 403 | 404)) => {
                        // Sites often hide /users from the public; the documents are still
                        // worth having without author names.
                        warn!(site = %self.site, lookup = what, error = %e, "wordpress refused a name lookup; documents go without these names");
                        names.refused.insert(what);
                        break;
                    }
                    Err(e) => return Err(self.http_error(e, &label, false)),
                };
                let found: Vec<Named> = self.parse_json(&fetched, &label)?;
                for named in found {
                    if let Some(name) = one_line(&html_to_text(&named.name)) {
                        map.insert(named.id, name);
                    }
                }
            }
        }
        Ok(())
    }

    /// Reads every listing in full from the first page; returns whether every listing was
    /// complete and consistent.
    async fn full_listing(
        &self,
        ctx: &RunContext,
        cursor: &mut Cursor,
        since: impl Fn(&Listing) -> Option<DateTime<Utc>>,
        state: &mut RunState,
    ) -> Result<bool, ConnectorError> {
        let mut complete = true;
        for listing in self.listings() {
            let since = since(&listing);
            let since_text = since.map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string());
            let per_page = self.per_page.to_string();
            let mut query = vec![
                ("status", self.statuses(&listing)),
                ("orderby", "modified"),
                ("order", "asc"),
                ("per_page", per_page.as_str()),
                ("_fields", CONTENT_FIELDS),
            ];
            if let Some(since) = &since_text {
                query.push(("modified_after", since));
            }
            let mut pager = self.pager(
                self.describe(&listing),
                &format!("wp/v2/{}", listing.ty.base),
                &query,
                listing.private,
            )?;
            let mut listed = HashSet::new();
            while let Some(posts) = pager.next::<Post>().await? {
                let newest = self
                    .emit_posts(ctx, &listing, posts, &mut listed, state)
                    .await?;
                let key = listing.key();
                let previous = cursor.modified.get(&key).copied();
                if let Some(newest) = newest
                    && previous.is_none_or(|p| newest > p)
                {
                    cursor.modified.insert(key, newest);
                    // Progress is committed page by page, so a failure later resumes here.
                    checkpoint(ctx, cursor).await?;
                }
            }
            if since.is_none()
                && let Some(reason) = pager.totals.incomplete(listed.len(), true)
            {
                warn!(source = %ctx.source_id, listing = %listing.key(), reason, "wordpress listing not verified complete; nothing is deleted, the next run lists again");
                complete = false;
            }
        }
        Ok(complete)
    }

    /// Lists the ids of every post, emits `Unchanged` for those known with the same
    /// fingerprint and fetches the others; returns whether every listing was complete.
    async fn id_listing(
        &self,
        ctx: &RunContext,
        state: &mut RunState,
    ) -> Result<bool, ConnectorError> {
        let mut complete = true;
        for listing in self.listings() {
            let what = format!("{} ids", self.describe(&listing));
            let (totals, listed) = self.list_ids(ctx, &listing, what, None, state).await?;
            if let Some(reason) = totals.incomplete(listed, false) {
                warn!(source = %ctx.source_id, listing = %listing.key(), reason, "wordpress id listing not verified complete; nothing is deleted, the next run lists again");
                complete = false;
            }
        }
        Ok(complete)
    }

    /// Lists the ids of the posts of `listing` published (`post_date`) after `after`, which
    /// catches those WordPress's cron published without touching their `modified`, and
    /// fetches the new or changed ones the `modified_after` listing did not already return.
    /// Returns whether the listing held still: `false` when `X-WP-Total` moved while it was
    /// read, which may have hidden a post.
    async fn published_listing(
        &self,
        ctx: &RunContext,
        listing: &Listing,
        after: DateTime<Utc>,
        state: &mut RunState,
    ) -> Result<bool, ConnectorError> {
        // With a `Z`, like `modified_after`: WordPress converts it to the site's local time.
        let after = after.format("%Y-%m-%dT%H:%M:%SZ").to_string();
        let what = format!("{} published since {after}", self.describe(listing));
        let (totals, _) = self
            .list_ids(ctx, listing, what, Some(("after", &after)), state)
            .await?;
        if totals.moved() {
            warn!(source = %ctx.source_id, listing = %listing.key(), "X-WP-Total changed while the wordpress listing of recently published posts was read; the next run asks for them again");
        }
        Ok(!totals.moved())
    }

    /// Pages through the ids of `listing` (`_fields=id,modified_gmt,status`, by id, narrowed
    /// by `filter` such as `after=`), skips posts already emitted this run, emits `Unchanged`
    /// for those known with the same fingerprint and fetches the others by id. Returns what the
    /// pages said about the listing's size and how many posts it held.
    async fn list_ids(
        &self,
        ctx: &RunContext,
        listing: &Listing,
        what: String,
        filter: Option<(&str, &str)>,
        state: &mut RunState,
    ) -> Result<(Totals, usize), ConnectorError> {
        #[derive(Deserialize)]
        struct Listed {
            id: u64,
            #[serde(default)]
            modified_gmt: Option<String>,
            #[serde(default)]
            status: Option<String>,
        }
        let per_page = self.per_page.to_string();
        let mut query = vec![
            ("status", self.statuses(listing)),
            ("orderby", "id"),
            ("order", "asc"),
            ("per_page", per_page.as_str()),
            ("_fields", ID_FIELDS),
        ];
        query.extend(filter);
        let mut pager = self.pager(
            what,
            &format!("wp/v2/{}", listing.ty.base),
            &query,
            listing.private,
        )?;
        let mut listed = HashSet::new();
        let mut refetch = Vec::new();
        while let Some(items) = pager.next::<Listed>().await? {
            ctx.known.load().await?;
            for item in items {
                listed.insert(item.id);
                let id = external_id(&listing.ty, item.id);
                if state.emitted.contains(&id) {
                    continue;
                }
                let status = item.status.unwrap_or_else(|| {
                    if listing.private {
                        "private"
                    } else {
                        "publish"
                    }
                    .to_owned()
                });
                let modified = item.modified_gmt.unwrap_or_default();
                let fingerprint = self.fingerprint(&listing.ty, item.id, &modified, &status);
                if !ctx.full && ctx.known.fingerprint(&id) == Some(fingerprint.as_str()) {
                    state.emitted.insert(id.clone());
                    state.unchanged += 1;
                    ctx.sink.send(Change::Unchanged { external_id: id }).await?;
                } else {
                    refetch.push(item.id);
                }
            }
        }
        self.fetch_ids(ctx, listing, &refetch, state).await?;
        Ok((pager.totals, listed.len()))
    }

    /// Fetches posts by id (those the id listing found new or changed).
    async fn fetch_ids(
        &self,
        ctx: &RunContext,
        listing: &Listing,
        ids: &[u64],
        state: &mut RunState,
    ) -> Result<(), ConnectorError> {
        for chunk in ids.chunks(usize::try_from(self.per_page).unwrap_or(100)) {
            let include = chunk
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(",");
            let per_page = chunk.len().to_string();
            let url = self.api.url(
                &format!("wp/v2/{}", listing.ty.base),
                &[
                    ("include", &include),
                    ("status", self.statuses(listing)),
                    ("per_page", &per_page),
                    ("_fields", CONTENT_FIELDS),
                ],
            )?;
            let what = format!("{} (changed posts)", self.describe(listing));
            let fetched = self
                .client
                .get(&url)
                .await
                .map_err(|e| self.http_error(e, &what, listing.private))?;
            let posts: Vec<Post> = self.parse_json(&fetched, &what)?;
            let mut got = HashSet::new();
            self.emit_posts(ctx, listing, posts, &mut got, state)
                .await?;
            // A post that changed status or was trashed between the listing and this request:
            // its indexed version stays until the next listing sees it as it is then.
            for id in chunk.iter().filter(|id| !got.contains(id)) {
                let external_id = external_id(&listing.ty, *id);
                if ctx.known.fingerprint(&external_id).is_some()
                    && state.emitted.insert(external_id.clone())
                {
                    ctx.sink.send(Change::Unchanged { external_id }).await?;
                }
            }
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl Connector for WordPress {
    fn kind(&self) -> &'static str {
        "wordpress"
    }

    async fn check(&self) -> Result<Vec<String>, ConnectorError> {
        let mut notes = Vec::new();
        let index_url = self.api.url("", &[])?;
        let what = format!("reading the REST API index {index_url}");
        let fetched = self
            .client
            .get(&index_url)
            .await
            .map_err(|e| self.http_error(e, &what, false))?;
        let index: SiteIndex = self.parse_json(&fetched, &what)?;
        if !index.namespaces.iter().any(|n| n == "wp/v2") {
            return Err(ConnectorError::Unavailable {
                reason: format!(
                    "{index_url} is a REST API without the wp/v2 namespace (it has {}): is this WordPress 4.7 or later with the REST API enabled?",
                    index.namespaces.join(", ")
                ),
            });
        }
        notes.push(format!(
            "WordPress site {:?} answers at {index_url}",
            one_line(&html_to_text(&index.name)).unwrap_or_default()
        ));

        if self.has_credentials {
            let url = self.api.url(
                "wp/v2/users/me",
                &[("context", "edit"), ("_fields", "id,name,roles")],
            )?;
            let what = "checking the credentials (users/me)";
            let fetched = self
                .client
                .get(&url)
                .await
                .map_err(|e| self.http_error(e, what, false))?;
            let me: Me = self.parse_json(&fetched, what)?;
            notes.push(format!(
                "signed in as {} (roles: {})",
                me.name,
                me.roles.join(", ")
            ));
            if self.private_statuses.is_none() {
                notes.push(
                    "credentials are set but private_access is empty: private posts and drafts are not indexed"
                        .to_owned(),
                );
            }
        }

        for listing in self.listings() {
            let what = self.describe(&listing);
            let url = self.api.url(
                &format!("wp/v2/{}", listing.ty.base),
                &[
                    ("status", self.statuses(&listing)),
                    ("per_page", "1"),
                    ("_fields", "id"),
                ],
            )?;
            let fetched = self
                .client
                .get(&url)
                .await
                .map_err(|e| self.http_error(e, &what, listing.private))?;
            let _: Vec<serde_json::Value> = self.parse_json(&fetched, &what)?;
            let total = header_number(&fetched, "x-wp-total")
                .map_or_else(|| "an unknown number of".to_owned(), |n| n.to_string());
            notes.push(format!(
                "{}: {total} {} (kind {:?})",
                listing.ty.base,
                if listing.private {
                    self.statuses(&listing).replace(',', " or ")
                } else {
                    "published".to_owned()
                },
                listing.ty.kind
            ));
        }
        if self.access.is_empty() {
            notes.push("access is empty: published posts are visible to nobody".to_owned());
        }
        Ok(notes)
    }

    async fn run(&self, ctx: RunContext) -> Result<(), ConnectorError> {
        let previous = match ctx.cursor.as_deref() {
            None => None,
            Some(raw) => match serde_json::from_str::<Cursor>(raw) {
                Ok(cursor) if cursor.version == CURSOR_VERSION => Some(cursor),
                Ok(_) => {
                    warn!(source = %ctx.source_id, "wordpress cursor of another version, listing in full");
                    None
                }
                Err(e) => {
                    warn!(source = %ctx.source_id, error = %e, "unreadable wordpress cursor, listing in full");
                    None
                }
            },
        };
        let started = Utc::now();
        let full = ctx.full || previous.is_none();
        let mut cursor = match previous {
            Some(cursor) if !ctx.full => cursor,
            _ => Cursor {
                version: CURSOR_VERSION,
                ..Cursor::default()
            },
        };
        let every =
            chrono::Duration::from_std(self.full_listing_every).unwrap_or(chrono::Duration::MAX);
        let listing_due = full
            || cursor
                .listed
                .is_none_or(|listed| started.signed_duration_since(listed) >= every);
        let mut state = RunState {
            names: Names::default(),
            emitted: HashSet::new(),
            upserted: 0,
            unchanged: 0,
            requests_before: self.client.stats(),
        };

        let overlap = chrono::Duration::seconds(OVERLAP_SECONDS);
        // Sent with a `Z`: WordPress converts a zoned date to the site's time zone before it
        // compares it with `post_modified` (a date without a zone would be taken as local).
        let since = |listing: &Listing| {
            if full {
                None
            } else {
                cursor.modified.get(&listing.key()).map(|t| *t - overlap)
            }
        };
        let since: HashMap<String, Option<DateTime<Utc>>> = self
            .listings()
            .iter()
            .map(|l| (l.key(), since(l)))
            .collect();
        // Where each published-posts listing's `after=` starts: the newest `modified_gmt` seen
        // by the last run that completed (see the module doc). This run's checkpoints keep that
        // start until it completes, so a failure after `modified` advanced loses no post.
        let published_since: Vec<(Listing, DateTime<Utc>)> = if full {
            Vec::new()
        } else {
            self.listings()
                .into_iter()
                .filter(|l| !l.private)
                .filter_map(|l| {
                    let key = l.key();
                    let start = cursor.published.get(&key).or(cursor.modified.get(&key));
                    start.copied().map(|start| (l, start))
                })
                .collect()
        };
        for (listing, start) in &published_since {
            cursor.published.insert(listing.key(), *start);
        }
        let mut complete = self
            .full_listing(
                &ctx,
                &mut cursor,
                |l| since.get(&l.key()).copied().flatten(),
                &mut state,
            )
            .await?;
        // When every listing was just read in full and verified, that was the complete
        // listing. Otherwise the id listing is: it covers every listing, and its order by id
        // survives edits made while it runs.
        let all_full = since.values().all(Option::is_none);
        // Posts published since the last run, which `modified_after` may not return; a run that
        // lists every id (or read every listing in full) has seen them already.
        let mut lagging = HashSet::new();
        if !listing_due {
            for (listing, start) in &published_since {
                let held_still = self
                    .published_listing(&ctx, listing, *start - overlap, &mut state)
                    .await?;
                if !held_still {
                    lagging.insert(listing.key());
                }
            }
        }
        if listing_due && !(all_full && complete) {
            complete = self.id_listing(&ctx, &mut state).await?;
        }
        if listing_due && complete {
            cursor.listed = Some(started);
        }
        // Every post published before this run read its listings has been seen now, except
        // perhaps where an `after` listing moved: the next run starts that one where this did.
        cursor.published.retain(|key, _| lagging.contains(key));
        checkpoint(&ctx, &cursor).await?;
        if listing_due && complete {
            ctx.sink.send(Change::TraversalComplete).await?;
        }

        if self.access.is_empty() && state.upserted > 0 {
            warn!(source = %ctx.source_id, "wordpress access is empty: published posts are visible to nobody");
        }
        let stats = self.client.stats();
        info!(
            source = %ctx.source_id,
            upserted = state.upserted,
            unchanged = state.unchanged,
            listed = listing_due,
            complete = listing_due && complete,
            requests = stats.requests - state.requests_before.requests,
            bytes = stats.bytes - state.requests_before.bytes,
            "wordpress sync complete"
        );
        Ok(())
    }
}

async fn checkpoint(ctx: &RunContext, cursor: &Cursor) -> Result<(), ConnectorError> {
    let cursor = serde_json::to_string(cursor)
        .map_err(|e| ConnectorError::Internal(format!("cannot write wordpress cursor: {e}")))?;
    ctx.sink.send(Change::Checkpoint { cursor }).await
}

fn external_id(ty: &PostType, id: u64) -> String {
    format!("{}/{id}", ty.base)
}

/// The post's own status, or the one its listing asked for when the field is missing.
fn post_status(post: &Post, listing: &Listing) -> String {
    post.status.clone().unwrap_or_else(|| {
        if listing.private {
            "private"
        } else {
            "publish"
        }
        .to_owned()
    })
}

fn strip_private_prefix(title: &str) -> &str {
    PRIVATE_TITLE_PREFIXES
        .iter()
        .find_map(|prefix| title.strip_prefix(prefix))
        .unwrap_or(title)
}

fn header_number(fetched: &Fetched, name: &str) -> Option<u64> {
    fetched
        .headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

/// Whether a `Link` header has a `rel="next"` entry.
fn has_next_link(fetched: &Fetched) -> bool {
    fetched
        .headers
        .get_all("link")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|entry| {
            entry.split(';').skip(1).any(|param| {
                let param = param.trim();
                param.eq_ignore_ascii_case("rel=\"next\"") || param.eq_ignore_ascii_case("rel=next")
            })
        })
}

fn principals(values: &[String], field: &str) -> Result<Vec<String>, ConnectorError> {
    crate::params::principals(values, &format!("wordpress {field}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_title_prefixes_are_removed() {
        assert_eq!(strip_private_prefix("Privat: Lønplan"), "Lønplan");
        assert_eq!(strip_private_prefix("Private: Budget"), "Budget");
        assert_eq!(
            strip_private_prefix("Privatliv og data"),
            "Privatliv og data"
        );
    }

    #[test]
    fn only_a_verified_listing_is_complete() {
        let mut totals = Totals {
            first: Some(3),
            consistent: true,
            pages: 1,
        };
        assert_eq!(totals.incomplete(3, true), None);
        assert!(totals.incomplete(2, true).is_some());
        // Posts the user may not read are counted but not listed.
        assert_eq!(totals.incomplete(2, false), None);
        assert!(totals.incomplete(4, false).is_some());
        totals.consistent = false;
        assert!(totals.incomplete(3, true).is_some());
        assert!(totals.incomplete(3, false).is_some());
        let unknown = Totals {
            first: None,
            consistent: true,
            pages: 1,
        };
        assert!(unknown.incomplete(7, false).is_some());
    }
}
