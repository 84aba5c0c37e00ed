//! One run: the frontier, the limits, robots rules and crawl delays, and what each visit
//! found turned into changes.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::{debug, info, warn};
use url::Url;

use super::page::{PageState, absolute_link_into};
use super::robots::{Robots, RobotsTxt, fetch_robots, sitemap_roots};
use super::scope::{canonical, is_not_a_document, prefix_key};
use super::visit::{FailureKind, Links, Outcome, Visited, binary, known_url};
use super::{CURSOR_VERSION, Cursor, Inner, ROBOTS_AGENT};
use crate::connector::RunContext;
use crate::error::ConnectorError;
use crate::model::Change;

/// Fetches in flight at once; the HTTP client's per-host concurrency and delay set the pace.
const IN_FLIGHT: usize = 8;
/// Visited URLs between two checkpoints.
const CHECKPOINT_EVERY: usize = 500;
/// The cursor remembers at most this many redirected URLs.
const MAX_ALIASES: usize = 20_000;

/// One URL to visit.
#[derive(Clone, Debug)]
pub(super) struct Task {
    pub(super) url: Url,
    /// Links followed from a seed or a sitemap entry.
    depth: u32,
    /// The sitemap's `lastmod` for the URL.
    pub(super) lastmod: Option<DateTime<Utc>>,
    pub(super) seed: bool,
}

/// What a visit found, with what the crawl knew of the URL before.
struct Visit {
    task: Task,
    /// The id the URL was known under (itself, or the document it was an alias of).
    known_id: String,
    known: bool,
    outcome: Outcome,
}

/// A set of URLs or ids, hashed with foldhash: a re-crawl looks up every remembered link of
/// every page (tens per page), and SipHash, std's default, was a tenth of its work. foldhash is
/// seeded at random per process, so a site cannot choose links that collide.
type Set = HashSet<String, foldhash::fast::RandomState>;
type Map<V> = HashMap<String, V, foldhash::fast::RandomState>;

/// One run of the crawler.
pub(super) struct Crawl<'a> {
    inner: Arc<Inner>,
    ctx: &'a RunContext,
    previous_aliases: BTreeMap<String, String>,
    aliases: BTreeMap<String, String>,
    frontier: VecDeque<Task>,
    /// Canonical URLs queued (or folded into a document) this run.
    seen: Set,
    per_prefix: Map<usize>,
    queued: usize,
    /// Document ids a change was sent for this run.
    emitted: Set,
    robots: Map<Arc<Robots>>,
    next_start: Map<Instant>,
    /// The first URL each limit stopped, with the message for the run's errors.
    limit_hits: BTreeMap<&'static str, (String, String)>,
    /// Why the crawl is not complete, besides the limits.
    incomplete: Vec<String>,
    stats: Stats,
}

#[derive(Debug, Default)]
struct Stats {
    visited: usize,
    requests: usize,
    not_modified: usize,
    sitemap_unchanged: usize,
    upserted: usize,
    unchanged: usize,
    folded: usize,
    deleted: usize,
    failed: usize,
    refused: usize,
    not_indexed: usize,
    redirects: usize,
    skipped: usize,
    disallowed: usize,
}

impl<'a> Crawl<'a> {
    pub(super) fn new(
        inner: Arc<Inner>,
        ctx: &'a RunContext,
        previous_aliases: BTreeMap<String, String>,
    ) -> Self {
        Self {
            inner,
            ctx,
            previous_aliases,
            aliases: BTreeMap::new(),
            frontier: VecDeque::new(),
            seen: Set::default(),
            per_prefix: Map::default(),
            queued: 0,
            emitted: Set::default(),
            robots: Map::default(),
            next_start: Map::default(),
            limit_hits: BTreeMap::new(),
            incomplete: Vec::new(),
            stats: Stats::default(),
        }
    }

    pub(super) async fn run(&mut self) -> Result<(), ConnectorError> {
        let inner = Arc::clone(&self.inner);
        for seed in &inner.seeds {
            self.enqueue(seed, 0, None, true);
        }
        if inner.use_sitemaps {
            let mut roots = Vec::new();
            let mut origins = HashSet::new();
            for seed in &inner.seeds {
                if !origins.insert(seed.origin().ascii_serialization()) {
                    continue;
                }
                let robots = self.robots_for(seed).await;
                roots.extend(sitemap_roots(seed, Some(&robots)));
            }
            let cap = inner.max_pages.saturating_sub(self.queued);
            let harvest = inner.collect_sitemaps(roots, cap).await;
            info!(
                source = %self.ctx.source_id,
                files = harvest.files,
                listed = harvest.listed,
                in_scope = harvest.entries.len(),
                "sitemaps read"
            );
            for problem in harvest.problems {
                warn!(source = %self.ctx.source_id, %problem, "sitemap problem");
                self.incomplete.push(problem);
            }
            // Most of a site is in its sitemaps: the set of queued URLs grows once.
            self.seen.reserve(harvest.entries.len());
            for (url, lastmod) in harvest.entries {
                self.enqueue(&url, 0, lastmod, false);
            }
        }

        let mut in_flight: JoinSet<Visit> = JoinSet::new();
        loop {
            while in_flight.len() < IN_FLIGHT {
                let Some(task) = self.frontier.pop_front() else {
                    break;
                };
                self.dispatch(task, &mut in_flight).await?;
            }
            let Some(joined) = in_flight.join_next().await else {
                break;
            };
            let visit = joined
                .map_err(|e| ConnectorError::Internal(format!("website crawl task failed: {e}")))?;
            self.handle(visit).await?;
            self.stats.visited += 1;
            if self.stats.visited.is_multiple_of(CHECKPOINT_EVERY) {
                let cursor = self.cursor(false)?;
                self.ctx.sink.send(Change::Checkpoint { cursor }).await?;
            }
        }
        self.finish().await
    }

    /// Queues `url` unless it is out of scope, already queued, or over a limit.
    fn enqueue(&mut self, url: &Url, depth: u32, lastmod: Option<DateTime<Utc>>, seed: bool) {
        let Some(url) = canonical(url) else {
            return;
        };
        if !seed && (!self.inner.scope.contains(&url) || is_not_a_document(&url)) {
            return;
        }
        if self.seen.contains(url.as_str()) {
            return;
        }
        let inner = Arc::clone(&self.inner);
        if url.as_str().len() > inner.max_url_length {
            self.limit_hit(
                "max_url_length",
                &url,
                format!("URLs longer than max_url_length ({})", inner.max_url_length),
            );
            return;
        }
        if depth > inner.max_depth {
            self.limit_hit(
                "max_depth",
                &url,
                format!("pages more than max_depth ({}) links away", inner.max_depth),
            );
            return;
        }
        if self.queued >= inner.max_pages {
            self.limit_hit(
                "max_pages",
                &url,
                format!("more than max_pages ({}) pages", inner.max_pages),
            );
            return;
        }
        let prefix = prefix_key(&url);
        let count = self.per_prefix.entry(prefix.clone()).or_default();
        if *count >= inner.max_pages_per_prefix {
            self.limit_hit(
                "max_pages_per_prefix",
                &url,
                format!(
                    "more than max_pages_per_prefix ({}) pages under {prefix}",
                    inner.max_pages_per_prefix
                ),
            );
            return;
        }
        *count += 1;
        self.queued += 1;
        self.seen.insert(url.to_string());
        self.frontier.push_back(Task {
            url,
            depth,
            lastmod,
            seed,
        });
    }

    /// Queues where a page leads. Remembered links are canonical already: most of them were
    /// queued before (every page of a site links to its sections), and looking them up as text,
    /// made absolute in one reused buffer, spares formatting and parsing them again.
    fn follow(&mut self, links: Links, depth: u32) {
        match links {
            Links::Read(urls) => {
                for url in &urls {
                    self.enqueue(url, depth, None, false);
                }
            }
            Links::Remembered { origin, links } => {
                let mut absolute = String::new();
                for link in &links {
                    absolute_link_into(&mut absolute, &origin, link);
                    if self.seen.contains(absolute.as_str()) {
                        continue;
                    }
                    if let Ok(url) = Url::parse(&absolute) {
                        self.enqueue(&url, depth, None, false);
                    }
                }
            }
        }
    }

    fn limit_hit(&mut self, limit: &'static str, url: &Url, what: String) {
        self.limit_hits.entry(limit).or_insert_with(|| {
            warn!(source = %self.ctx.source_id, limit, %url, "crawl limit reached");
            (
                url.to_string(),
                format!(
                    "crawl limit reached: {what} (first: {url}); those pages were not crawled, so this run deletes nothing it did not see (raise the limit or exclude the trap)"
                ),
            )
        });
    }

    /// The robots rules of `url`'s origin, fetched once per run.
    async fn robots_for(&mut self, url: &Url) -> Arc<Robots> {
        let origin = url.origin().ascii_serialization();
        if let Some(robots) = self.robots.get(&origin) {
            return Arc::clone(robots);
        }
        let robots = Arc::new(fetch_robots(&self.inner.client, url).await);
        match &robots.txt {
            RobotsTxt::Unreachable(reason) => {
                let message = format!(
                    "{} cannot be read ({reason}); the site's pages are treated as disallowed",
                    robots.url
                );
                warn!(source = %self.ctx.source_id, %message, "robots.txt unreachable");
                self.incomplete.push(message);
            }
            RobotsTxt::Unreadable(reason) => {
                let message = format!("{} cannot be parsed ({reason})", robots.url);
                warn!(source = %self.ctx.source_id, %message, "robots.txt unreadable");
                self.incomplete.push(message);
            }
            RobotsTxt::Absent | RobotsTxt::Rules(_) => {}
        }
        self.robots.insert(origin, Arc::clone(&robots));
        robots
    }

    /// Checks robots rules, answers from the sitemap's `lastmod` when it has not moved, and
    /// otherwise waits for the crawl delay and starts the visit.
    async fn dispatch(
        &mut self,
        task: Task,
        in_flight: &mut JoinSet<Visit>,
    ) -> Result<(), ConnectorError> {
        if self.inner.respect_robots {
            let robots = self.robots_for(&task.url).await;
            if !robots.allows(&task.url) {
                if task.seed {
                    let reason = match &robots.txt {
                        RobotsTxt::Unreachable(reason) => format!(
                            "{} cannot be read ({reason}), so the seed {} must be treated as disallowed",
                            robots.url, task.url
                        ),
                        _ => format!(
                            "{} disallows the seed {} for the user agent {ROBOTS_AGENT}",
                            robots.url, task.url
                        ),
                    };
                    return Err(ConnectorError::Unavailable { reason });
                }
                debug!(url = %task.url, "disallowed by robots.txt");
                self.stats.disallowed += 1;
                return Ok(());
            }
        }
        // The URL may have been another document's address last time (a redirect or a
        // rel="canonical"): that document's validators are the ones to send.
        let url = task.url.to_string();
        let mut known_id = url.clone();
        let mut fingerprint = None;
        for id in self
            .previous_aliases
            .get(&url)
            .into_iter()
            .chain(std::iter::once(&url))
        {
            if let Some(found) = self.ctx.known.fingerprint(id) {
                known_id = id.clone();
                fingerprint = Some(found);
                break;
            }
        }
        let known_exists = fingerprint.is_some();
        let known = fingerprint.and_then(PageState::parse);

        if !self.ctx.full
            && !task.seed
            && let (Some(lastmod), Some(state)) = (task.lastmod, known.as_ref())
            && state
                .sitemap_lastmod
                .as_deref()
                .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                .is_some_and(|remembered| lastmod <= remembered)
        {
            // Unchanged by the sitemap's word: no request at all.
            let page = known_url(&known_id, &task.url);
            let outcome = Outcome::Document {
                id: page.clone(),
                change: Box::new(Change::Unchanged {
                    external_id: known_id.clone(),
                }),
                links: Links::remembered(&page, known),
                follow: true,
                how: Visited::SitemapUnchanged,
            };
            return self
                .handle(Visit {
                    task,
                    known_id,
                    known: known_exists,
                    outcome,
                })
                .await;
        }

        if self.inner.respect_robots
            && let Some(delay) = self.robots_for(&task.url).await.delay()
        {
            let origin = task.url.origin().ascii_serialization();
            let now = Instant::now();
            let next = self.next_start.entry(origin).or_insert(now);
            let start = (*next).max(now);
            *next = start + delay;
            tokio::time::sleep_until(start).await;
        }
        let inner = Arc::clone(&self.inner);
        let all_known = Arc::clone(&self.ctx.known);
        let full = self.ctx.full;
        in_flight.spawn(async move {
            let outcome = inner
                .visit(&task, &known_id, known, all_known.as_ref(), full)
                .await;
            Visit {
                task,
                known_id,
                known: known_exists,
                outcome,
            }
        });
        Ok(())
    }

    /// Sends what a visit found and queues the pages it leads to.
    async fn handle(&mut self, visit: Visit) -> Result<(), ConnectorError> {
        let Visit {
            task,
            known_id,
            known,
            outcome,
        } = visit;
        let next_depth = task.depth.saturating_add(1);
        match outcome {
            Outcome::Document {
                id,
                change,
                links,
                follow,
                how,
            } => {
                match how {
                    Visited::SitemapUnchanged => self.stats.sitemap_unchanged += 1,
                    Visited::NotModified => {
                        self.stats.requests += 1;
                        self.stats.not_modified += 1;
                    }
                    Visited::Fetched => self.stats.requests += 1,
                }
                if id != task.url {
                    self.seen.insert(id.to_string());
                    self.aliases.insert(task.url.to_string(), id.to_string());
                }
                if self.emitted.insert(id.to_string()) {
                    match change.as_ref() {
                        Change::Upsert(_) => self.stats.upserted += 1,
                        _ => self.stats.unchanged += 1,
                    }
                    self.ctx.sink.send(*change).await?;
                } else {
                    // Another URL already gave this document (rel="canonical" or a redirect).
                    self.stats.folded += 1;
                }
                if follow && self.inner.follow_links {
                    self.follow(links, next_depth);
                }
            }
            Outcome::Elsewhere {
                target,
                links,
                follow,
            } => {
                self.stats.requests += 1;
                self.stats.redirects += 1;
                self.forget(&known_id, known).await?;
                // A redirect, not a link: the target is as far from the seed as this page.
                self.enqueue(&target, task.depth, None, false);
                if follow && self.inner.follow_links {
                    self.follow(links, next_depth);
                }
            }
            Outcome::NotIndexed { links, follow } => {
                self.stats.requests += 1;
                self.stats.not_indexed += 1;
                self.forget(&known_id, known).await?;
                if follow && self.inner.follow_links {
                    self.follow(links, next_depth);
                }
            }
            Outcome::Gone => {
                self.stats.requests += 1;
                if task.seed {
                    return Err(ConnectorError::Unavailable {
                        reason: format!("seed {} answers 404 or 410 (not found)", task.url),
                    });
                }
                // Only the URL's own document is gone; an alias's document may live on at
                // its own address.
                if known_id == task.url.as_str() {
                    self.forget(&known_id, known).await?;
                }
            }
            Outcome::Refused { status } => {
                self.stats.requests += 1;
                if task.seed {
                    return Err(ConnectorError::Unavailable {
                        reason: format!("seed {} answers {status}", task.url),
                    });
                }
                self.stats.refused += 1;
                if known {
                    self.fail(
                        &known_id,
                        format!("{} answers {status}; the indexed version is kept", task.url),
                    )
                    .await?;
                } else {
                    debug!(url = %task.url, status, "page refused");
                }
            }
            Outcome::Failed { error, kind, links } => {
                self.stats.requests += 1;
                if task.seed {
                    return Err(ConnectorError::Unavailable {
                        reason: format!("seed {} cannot be fetched: {error}", task.url),
                    });
                }
                if kind == FailureKind::Transient && !known && !binary(&task.url) {
                    self.incomplete
                        .push(format!("{} could not be fetched: {error}", task.url));
                }
                self.fail(&known_id, error).await?;
                // The links it had last time still lead on, so one failing page does not
                // make the pages behind it look deleted.
                self.follow(links, next_depth);
            }
            Outcome::Skipped { reason } => {
                self.stats.requests += 1;
                if task.seed {
                    return Err(ConnectorError::Unavailable {
                        reason: format!("seed {}: {reason}", task.url),
                    });
                }
                self.stats.skipped += 1;
                debug!(url = %task.url, %reason, "not indexed");
            }
        }
        Ok(())
    }

    /// Deletes a document that is no longer one (404, `noindex`, now a redirect).
    async fn forget(&mut self, id: &str, known: bool) -> Result<(), ConnectorError> {
        if known && self.emitted.insert(id.to_owned()) {
            self.stats.deleted += 1;
            self.ctx
                .sink
                .send(Change::Delete {
                    external_id: id.to_owned(),
                })
                .await?;
        }
        Ok(())
    }

    async fn fail(&mut self, id: &str, error: String) -> Result<(), ConnectorError> {
        if self.emitted.insert(id.to_owned()) {
            self.stats.failed += 1;
            self.ctx
                .sink
                .send(Change::Failed {
                    external_id: id.to_owned(),
                    error,
                })
                .await?;
        }
        Ok(())
    }

    fn cursor(&self, complete: bool) -> Result<String, ConnectorError> {
        let mut aliases = if complete {
            BTreeMap::new()
        } else {
            self.previous_aliases.clone()
        };
        for (from, to) in &self.aliases {
            if aliases.len() >= MAX_ALIASES && !aliases.contains_key(from) {
                break;
            }
            aliases.insert(from.clone(), to.clone());
        }
        let cursor = Cursor {
            version: CURSOR_VERSION,
            complete,
            aliases,
        };
        serde_json::to_string(&cursor)
            .map_err(|e| ConnectorError::Internal(format!("cannot write website cursor: {e}")))
    }

    async fn finish(&mut self) -> Result<(), ConnectorError> {
        let hits = std::mem::take(&mut self.limit_hits);
        for (url, message) in hits.values() {
            self.stats.failed += 1;
            self.ctx
                .sink
                .send(Change::Failed {
                    external_id: url.clone(),
                    error: message.clone(),
                })
                .await?;
        }
        let complete = hits.is_empty() && self.incomplete.is_empty();
        let cursor = self.cursor(complete)?;
        self.ctx.sink.send(Change::Checkpoint { cursor }).await?;
        if complete {
            self.ctx.sink.send(Change::TraversalComplete).await?;
        } else {
            for reason in self.incomplete.iter().take(5) {
                warn!(source = %self.ctx.source_id, %reason, "crawl not complete");
            }
            warn!(
                source = %self.ctx.source_id,
                limits = hits.len(),
                problems = self.incomplete.len(),
                "crawl not complete: nothing is swept this run"
            );
        }
        if self.inner.access.is_empty()
            && self.inner.access_rules.is_empty()
            && self.stats.upserted > 0
        {
            warn!(source = %self.ctx.source_id, pages = self.stats.upserted, "website access is empty: pages visible to nobody");
        }
        let s = &self.stats;
        info!(
            source = %self.ctx.source_id,
            complete,
            visited = s.visited,
            requests = s.requests,
            not_modified = s.not_modified,
            sitemap_unchanged = s.sitemap_unchanged,
            upserted = s.upserted,
            unchanged = s.unchanged,
            folded = s.folded,
            deleted = s.deleted,
            failed = s.failed,
            refused = s.refused,
            not_indexed = s.not_indexed,
            redirects = s.redirects,
            skipped = s.skipped,
            disallowed = s.disallowed,
            "website crawl finished"
        );
        Ok(())
    }
}
