//! The file-share connector: a mounted share or a local folder, walked in full on every run.
//!
//! A share cannot list its changes, so every run is a traversal: files whose size and
//! modification time match the last run are reported `Unchanged` without being opened, files
//! whose content hash matches are `Unchanged` after one read, and only the rest are extracted.
//! Deleted files are simply not reported; the caller's mark-and-sweep removes them after a
//! `TraversalComplete`, which is sent only when every folder could be listed.
//!
//! The walk never leaves the root: it does not follow folder links, and a file link is followed
//! only when its canonical target lies inside the canonical root.
//!
//! A document's dates are the ones it declares (front matter, `<meta>`, Office and PDF
//! metadata), falling back to the file's modification time, so that a news item sorts by the
//! date written in it rather than by when the file was last copied. Its tags are topics: the
//! top-level folder, not the format.

use std::borrow::Cow;
use std::collections::HashMap;
use std::collections::VecDeque;
use std::fs::{self, File, Metadata};
use std::io::Read;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Instant, UNIX_EPOCH};

use chrono::{DateTime, Utc};
use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;
use tracing::{debug, info, warn};

use crate::connector::{Connector, KnownDocs, RunContext};
use crate::error::ConnectorError;
use crate::extract::{self, ExtractError, Extracted, Format, Limits};
use crate::model::{Change, Document};
use crate::params;

/// Bump when extraction changes in a way worth re-extracting every file for: it is part of each
/// fingerprint, so the next run re-reads everything once.
///
/// 2: documents carry the dates they declare, Markdown and HTML no longer repeat their title at
/// the top of the text, HTML titles lose their section and site parts, and the format is no
/// longer a tag.
const EXTRACTION_VERSION: u32 = 2;

/// Characters left as they are in a URL path segment (RFC 3986 unreserved).
const PATH_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The `[sources.file-share]` table.
///
/// Globs are relative to the root and use `/` separators: `*` stays within one folder, `**`
/// crosses folders, a glob without `/` matches a file name at any depth (`*.tmp`), and a glob
/// ending in `/` means everything under that folder (`Arkiv/` is `Arkiv/**`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileShareParams {
    /// The folder to walk; relative paths are resolved against the configuration's base
    /// directory.
    pub root: PathBuf,
    /// Files to include; empty means every file of a supported format.
    #[serde(default)]
    pub include: Vec<String>,
    /// Files to leave out. Hidden files and folders (`.*`) and Office lock files (`~$*`) are
    /// always left out. A glob that matches a folder leaves out everything inside it.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Who may see what; the first rule whose glob matches a file wins.
    #[serde(default)]
    pub access: Vec<AccessRule>,
    /// Principals for files no rule matches; empty means such files are visible to nobody.
    #[serde(default)]
    pub default_access: Vec<String>,
    /// Files larger than this are reported as failed without being read (default 50 MiB).
    #[serde(default)]
    pub max_file_bytes: Option<u64>,
    /// If set, a document's URL is this prefix followed by its percent-encoded relative path.
    /// Must be an `http(s)://`, `file:` or `smb://` URL, or a path starting with `/`.
    #[serde(default)]
    pub url_prefix: Option<String>,
    /// The language of every document ("da", "en"); otherwise whatever the file declares.
    #[serde(default)]
    pub language: Option<String>,
    /// The document kind of every file of the share, such as `"news"` for a folder of news
    /// items: lowercase ASCII letters, digits and `-`. Default `"file"`.
    #[serde(default)]
    pub kind: Option<String>,
}

/// One access rule: files matching `path` get `principals`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessRule {
    /// A glob such as `"Ledelse/**"`.
    pub path: String,
    /// Principals such as `"group:ledere"`; empty makes the matching files visible to nobody.
    pub principals: Vec<String>,
}

/// The file-share connector. Build it with [`crate::build`] or [`FileShare::new`].
pub struct FileShare {
    inner: Arc<Inner>,
}

struct Inner {
    root: PathBuf,
    include: Option<GlobSet>,
    include_patterns: Vec<String>,
    exclude: GlobSet,
    access: GlobSet,
    rules: Vec<AccessRule>,
    default_access: Vec<String>,
    limits: Limits,
    url_prefix: Option<String>,
    language: Option<String>,
    kind: String,
}

/// Unchanged files sent to the sink together (see `FileShare::run`).
const UNCHANGED_BATCH: usize = 64;

/// Files the walk lists while the index's fingerprints are still being read.
const LIST_AHEAD: usize = 4096;
const LOADING: u8 = 0;
const LOADED: u8 = 1;
const FAILED: u8 = 2;

/// The document kind when the configuration names none.
const DEFAULT_KIND: &str = "file";

impl FileShare {
    /// Validates the parameters. The root itself is not touched until `check` or `run`.
    pub fn new(params: &FileShareParams, base_dir: &Path) -> Result<Self, ConnectorError> {
        if params.root.as_os_str().is_empty() {
            return Err(ConnectorError::Config(
                "file-share root must not be empty".to_owned(),
            ));
        }
        let root = if params.root.is_absolute() {
            params.root.clone()
        } else {
            base_dir.join(&params.root)
        };

        let include = if params.include.is_empty() {
            None
        } else {
            Some(glob_set(&params.include, "include")?)
        };
        let exclude = glob_set(&params.exclude, "exclude")?;
        let access_patterns: Vec<String> =
            params.access.iter().map(|rule| rule.path.clone()).collect();
        let access = glob_set(&access_patterns, "access")?;

        let rules = params
            .access
            .iter()
            .map(|rule| {
                Ok(AccessRule {
                    path: rule.path.clone(),
                    principals: params::principals(&rule.principals, "access")?,
                })
            })
            .collect::<Result<Vec<_>, ConnectorError>>()?;
        let default_access = params::principals(&params.default_access, "default_access")?;

        let mut limits = Limits::default();
        if let Some(max) = params.max_file_bytes {
            if max == 0 {
                return Err(ConnectorError::Config(
                    "file-share max_file_bytes must be greater than 0".to_owned(),
                ));
            }
            limits.max_file_bytes = max;
        }

        let url_prefix = params.url_prefix.as_deref().map(url_prefix).transpose()?;
        let language = params
            .language
            .as_deref()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_ascii_lowercase);
        let kind = match params.kind.as_deref() {
            None => DEFAULT_KIND.to_owned(),
            Some(kind) => params::document_kind(kind, "file-share", "news")?,
        };

        Ok(Self {
            inner: Arc::new(Inner {
                root,
                include,
                include_patterns: params.include.clone(),
                exclude,
                access,
                rules,
                default_access,
                limits,
                url_prefix,
                language,
                kind,
            }),
        })
    }
}

#[async_trait::async_trait]
impl Connector for FileShare {
    fn kind(&self) -> &'static str {
        "file-share"
    }

    async fn check(&self) -> Result<Vec<String>, ConnectorError> {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || inner.check())
            .await
            .map_err(|e| ConnectorError::Internal(format!("check task failed: {e}")))?
    }

    async fn run(&self, ctx: RunContext) -> Result<(), ConnectorError> {
        let started = Instant::now();
        let inner = Arc::clone(&self.inner);
        let known = Arc::clone(&ctx.known);
        let sink = ctx.sink.clone();
        let source_id = ctx.source_id.clone();
        // Whether the fingerprints have been read (`LOADING`, `LOADED`, `FAILED`).
        let loading = Arc::new(AtomicU8::new(LOADING));
        let loaded = Arc::clone(&loading);
        // Walking, reading and extracting are blocking file-system and CPU work: one thread
        // does them in order, file by file, and hands each change to the async side through
        // the sink's bounded channel. A thread hop per file would cost more than reading a
        // small file; it stops as soon as the receiver hangs up. Unchanged files, which cost
        // a `stat` each, go in small batches: one at a time, the receiver would be woken (a
        // futex call and a context switch) for every file it then handles in a microsecond.
        // Every file is compared with its fingerprint, but the walk starts while they are
        // read from the index: it lists up to `LIST_AHEAD` files meanwhile.
        let walk = tokio::task::spawn_blocking(move || {
            let mut counts = Counts::default();
            let mut cancelled = false;
            let mut settings = SettingsCache::default();
            let mut batch = Vec::with_capacity(UNCHANGED_BATCH);
            let mut ahead = VecDeque::new();
            let flush = |batch: &mut Vec<Change>| {
                for change in batch.drain(..) {
                    sink.blocking_send(change)?;
                }
                Ok::<(), ConnectorError>(())
            };
            let mut handle = |found: Found, batch: &mut Vec<Change>| {
                let change = inner.process(found, known.as_ref(), &mut settings);
                counts.record(&change, &source_id);
                let unchanged = matches!(change, Change::Unchanged { .. });
                batch.push(change);
                if (unchanged && batch.len() < UNCHANGED_BATCH) || flush(batch).is_ok() {
                    ControlFlow::Continue(())
                } else {
                    ControlFlow::Break(())
                }
            };
            // Waits (on this blocking thread) until the fingerprints are read; false if they
            // cannot be.
            let ready = || loop {
                match loaded.load(Ordering::Acquire) {
                    LOADING => std::thread::sleep(std::time::Duration::from_micros(200)),
                    state => return state == LOADED,
                }
            };
            let walked = inner.open_root().and_then(|root| {
                inner.walk(&root, |found| {
                    if loaded.load(Ordering::Acquire) == LOADING && ahead.len() < LIST_AHEAD {
                        ahead.push_back(found);
                        return ControlFlow::Continue(());
                    }
                    if !ready() {
                        return ControlFlow::Break(());
                    }
                    while let Some(earlier) = ahead.pop_front() {
                        if handle(earlier, &mut batch).is_break() {
                            cancelled = true;
                            return ControlFlow::Break(());
                        }
                    }
                    let flow = handle(found, &mut batch);
                    cancelled = flow.is_break();
                    flow
                })
            });
            if !cancelled && ready() {
                // What was listed ahead and not handled yet (a share smaller than the
                // look-ahead, listed before the fingerprints were read).
                while let Some(earlier) = ahead.pop_front() {
                    if handle(earlier, &mut batch).is_break() {
                        cancelled = true;
                        break;
                    }
                }
                if !cancelled && flush(&mut batch).is_err() {
                    cancelled = true;
                }
            }
            (walked, counts, cancelled)
        });
        if let Err(e) = ctx.known.load().await {
            loading.store(FAILED, Ordering::Release);
            let _ = walk.await;
            return Err(e);
        }
        loading.store(LOADED, Ordering::Release);
        let (walked, counts, cancelled) = walk
            .await
            .map_err(|e| ConnectorError::Internal(format!("walk task failed: {e}")))?;
        if cancelled {
            return Err(ConnectorError::Cancelled);
        }
        let report = walked?;

        if let Some(reason) = report.incomplete() {
            warn!(source = %ctx.source_id, %reason, "file share listing incomplete, no traversal complete sent");
            return Err(ConnectorError::Incomplete { reason });
        }
        ctx.sink.send(Change::TraversalComplete).await?;
        if report.visible_to_nobody > 0 {
            warn!(
                source = %ctx.source_id,
                files = report.visible_to_nobody,
                "files match no access rule and default_access is empty: visible to nobody"
            );
        }
        info!(
            source = %ctx.source_id,
            upserted = counts.upserted,
            unchanged = counts.unchanged,
            failed = counts.failed,
            elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            "file share walk complete"
        );
        Ok(())
    }
}

impl Inner {
    /// Turns one walked file into a change: `Unchanged` from metadata alone when possible,
    /// otherwise read, hash and (if the content changed) extract. Blocking.
    fn process(&self, found: Found, known: &dyn KnownDocs, cache: &mut SettingsCache) -> Change {
        let (id, path, format, stat) = match found {
            Found::Failed { id, error } => {
                return Change::Failed {
                    external_id: id,
                    error,
                };
            }
            Found::File {
                id,
                path,
                format,
                stat,
            } => (id, path, format, stat),
        };
        // An unchanged file needs only its settings digest, which most files share with
        // their folder: the access list, URL and tags are built only for files to be read.
        let settings = self.settings(&id, cache);
        let known = known.fingerprint(&id);
        let known = known.as_deref().and_then(Fingerprint::parse);
        let known = known.filter(|k| k.settings == settings.as_ref());
        if known.as_ref().is_some_and(|k| k.stat_matches(&stat)) {
            return Change::Unchanged { external_id: id };
        }
        let derived = self.derive(&id);
        if stat.len() > self.limits.max_file_bytes {
            let error = ExtractError::TooLarge {
                size: stat.len(),
                limit: self.limits.max_file_bytes,
            };
            return Change::Failed {
                external_id: id,
                error: error.to_string(),
            };
        }

        let known_hash = known.map(|k| k.content.to_owned());
        // An extractor that panics on a hostile file fails that file, not the run.
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.read_and_extract(&id, &path, format, &stat, known_hash, derived)
        }));
        match outcome {
            Ok(Ok(Some(document))) => Change::Upsert(Box::new(document)),
            Ok(Ok(None)) => Change::Unchanged { external_id: id },
            Ok(Err(error)) => Change::Failed {
                external_id: id,
                error,
            },
            Err(panic) => Change::Failed {
                external_id: id,
                error: format!("extraction crashed: {}", panic_message(&panic)),
            },
        }
    }
}

/// The message of a caught panic, when it has one.
fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("panic")
}

/// What the walk found.
enum Found {
    /// A selected file to process; `path` is where to read it (the canonical target of a link).
    File {
        id: String,
        path: PathBuf,
        format: Format,
        stat: Metadata,
    },
    /// A selected entry that cannot be processed (a link out of the root, a broken link, a name
    /// that is not UTF-8).
    Failed { id: String, error: String },
}

/// Counts from one walk, for `check` notes and the end-of-run log.
#[derive(Debug, Default)]
struct WalkReport {
    files: usize,
    include_hits: Vec<usize>,
    rule_hits: Vec<usize>,
    visible_to_nobody: usize,
    links_outside: usize,
    failed: usize,
    unlisted: Vec<String>,
}

impl WalkReport {
    /// Why the listing cannot be trusted for deletions, if it cannot.
    fn incomplete(&self) -> Option<String> {
        let first = self.unlisted.first()?;
        Some(format!(
            "{} folder(s) or file(s) could not be listed, first {first}",
            self.unlisted.len()
        ))
    }
}

/// What a document gets from its path and the configuration rather than from its content.
struct Derived {
    acl: Vec<String>,
    url: Option<String>,
    tags: Vec<String>,
    /// A digest of the above and the extraction settings: when a rule changes, the file's
    /// fingerprint no longer matches and the document is re-sent with its new access list.
    settings: String,
}

impl Inner {
    /// Resolves and opens the root; an error here means nothing at all could be listed.
    fn open_root(&self) -> Result<PathBuf, ConnectorError> {
        let io = |source| ConnectorError::Io {
            path: self.root.clone(),
            source,
        };
        let root = fs::canonicalize(&self.root).map_err(io)?;
        if !fs::metadata(&root).map_err(io)?.is_dir() {
            return Err(ConnectorError::Unavailable {
                reason: format!("file-share root {} is not a folder", self.root.display()),
            });
        }
        fs::read_dir(&root).map_err(io)?;
        Ok(root)
    }

    /// Walks the canonical `root`, handing every selected file to `found` in file-name order,
    /// each folder's files where the folder's name sorts.
    fn walk(
        &self,
        root: &Path,
        mut found: impl FnMut(Found) -> ControlFlow<()>,
    ) -> Result<WalkReport, ConnectorError> {
        let mut report = WalkReport {
            include_hits: vec![0; self.include_patterns.len()],
            rule_hits: vec![0; self.rules.len()],
            ..WalkReport::default()
        };
        let listing = fs::read_dir(root).map_err(|source| ConnectorError::Io {
            path: self.root.clone(),
            source,
        })?;
        let _ = self.walk_folder(root, root, listing, &mut report, &mut found);
        Ok(report)
    }

    /// Lists one folder and goes through its entries in name order (names compared as bytes),
    /// descending into each subfolder where it comes. The standard library's directory
    /// entries read their metadata relative to the open folder (`statx` on its descriptor),
    /// where a walk that `lstat`s every file by its full path makes the kernel resolve the
    /// whole path again for each one.
    fn walk_folder(
        &self,
        root: &Path,
        folder: &Path,
        listing: fs::ReadDir,
        report: &mut WalkReport,
        found: &mut dyn FnMut(Found) -> ControlFlow<()>,
    ) -> ControlFlow<()> {
        let mut entries = Vec::new();
        for entry in listing {
            match entry {
                Ok(entry) => entries.push((entry.file_name(), entry)),
                Err(error) => self.unlisted(root, folder, &error, report),
            }
        }
        entries.sort_unstable_by(|(a, _), (b, _)| a.as_encoded_bytes().cmp(b.as_encoded_bytes()));
        for (name, entry) in entries {
            let path = entry.path();
            let Some(relative) = relative_to(root, &path) else {
                continue;
            };
            let name = name.to_string_lossy();
            let hidden = name.starts_with('.') || name.starts_with("~$");
            let file_type = match entry.file_type() {
                Ok(file_type) => file_type,
                Err(error) => {
                    self.unlisted(root, &path, &error, report);
                    continue;
                }
            };

            if file_type.is_dir() {
                if hidden || self.exclude.is_match(relative) {
                    continue;
                }
                match fs::read_dir(&path) {
                    Ok(listing) => self.walk_folder(root, &path, listing, report, found)?,
                    Err(error) => self.unlisted(root, &path, &error, report),
                }
                continue;
            }
            if hidden {
                continue;
            }
            // The name alone: taking the whole relative path apart again would find the same.
            let Some(format) = Format::from_path(Path::new(&*name)) else {
                continue;
            };
            if !self.selects(relative, report) {
                continue;
            }
            let Some(id) = external_id(relative) else {
                report.failed += 1;
                found(Found::Failed {
                    id: relative.to_string_lossy().replace('\\', "/"),
                    error: "file name is not valid UTF-8".to_owned(),
                })?;
                continue;
            };

            let item = if file_type.is_symlink() {
                match resolve_link(root, &path) {
                    Link::File { target, stat } => Found::File {
                        id,
                        path: target,
                        format,
                        stat,
                    },
                    Link::NotAFile => {
                        debug!(file = %id, "link to a folder or special file not followed");
                        continue;
                    }
                    Link::Outside => {
                        report.links_outside += 1;
                        warn!(file = %id, "symbolic link leads outside the file-share root, not followed");
                        Found::Failed {
                            id,
                            error: "symbolic link leads outside the file-share root; not followed"
                                .to_owned(),
                        }
                    }
                    Link::Broken(error) => Found::Failed {
                        id,
                        error: format!("broken symbolic link: {error}"),
                    },
                }
            } else if file_type.is_file() {
                // Not a link, so this is the file's own metadata, read without following.
                match entry.metadata() {
                    Ok(stat) => Found::File {
                        id,
                        path,
                        format,
                        stat,
                    },
                    Err(error) => Found::Failed {
                        id,
                        error: format!("cannot read file metadata: {error}"),
                    },
                }
            } else {
                // Pipes, sockets and devices: opening a pipe would block the walk forever.
                continue;
            };

            match &item {
                Found::File { id, .. } => {
                    report.files += 1;
                    match self.rule_for(id) {
                        Some(index) => report.rule_hits[index] += 1,
                        None if self.default_access.is_empty() => report.visible_to_nobody += 1,
                        None => {}
                    }
                }
                Found::Failed { .. } => report.failed += 1,
            }
            found(item)?;
        }
        ControlFlow::Continue(())
    }

    /// Notes a folder (or an entry of one) that could not be listed: the walk is then not
    /// complete, and nothing may be deleted on its word.
    fn unlisted(&self, root: &Path, path: &Path, error: &std::io::Error, report: &mut WalkReport) {
        let at = relative_to(root, path)
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        warn!(path = %at, %error, "cannot list folder in file share");
        report.unlisted.push(format!("{at:?}: {error}"));
    }

    /// True when the include and exclude globs select the file; counts include hits.
    fn selects(&self, relative: &Path, report: &mut WalkReport) -> bool {
        // An empty set matches nothing, but would still take the path apart to find out.
        if !self.exclude.is_empty() && self.exclude.is_match(relative) {
            return false;
        }
        let Some(include) = &self.include else {
            return true;
        };
        let hits = include.matches(relative);
        for &index in &hits {
            report.include_hits[index] += 1;
        }
        !hits.is_empty()
    }

    /// The index of the first access rule matching the file.
    fn rule_for(&self, id: &str) -> Option<usize> {
        if self.rules.is_empty() {
            return None;
        }
        self.access.matches(id).first().copied()
    }

    /// The principals of the first matching access rule, else `default_access`.
    fn acl_for(&self, rule: Option<usize>) -> &[String] {
        match rule {
            Some(index) => &self.rules[index].principals,
            None => &self.default_access,
        }
    }

    /// The settings digest of `id`'s fingerprint, as [`Inner::derive`] computes it. Without a
    /// `url_prefix` it depends only on the matching access rule and the top-level folder, so
    /// it is computed once per pair and run rather than once per file; with one, every file's
    /// URL differs and it is computed per file.
    fn settings<'c>(&self, id: &str, cache: &'c mut SettingsCache) -> Cow<'c, str> {
        if self.url_prefix.is_some() {
            return Cow::Owned(self.derive(id).settings);
        }
        let rule = self.rule_for(id);
        // Folder names are never empty, so "" stands for the root.
        let folder = top_folder(id).unwrap_or("");
        // The walk goes folder by folder: most files have the previous file's key.
        let last_matches = cache
            .last
            .as_ref()
            .is_some_and(|(r, f, _)| *r == rule && f == folder);
        if !last_matches {
            let by_folder = cache.digests.entry(rule).or_default();
            let settings = match by_folder.get(folder) {
                Some(settings) => settings.clone(),
                None => {
                    let tags: Vec<String> = top_folder(id).map(str::to_owned).into_iter().collect();
                    let settings = self.settings_digest(self.acl_for(rule), &tags, None);
                    by_folder.insert(folder.to_owned(), settings.clone());
                    settings
                }
            };
            cache.last = Some((rule, folder.to_owned(), settings));
        }
        match &cache.last {
            Some((_, _, settings)) => Cow::Borrowed(settings.as_str()),
            None => Cow::Owned(self.derive(id).settings),
        }
    }

    /// A digest of what a document gets from the configuration rather than its content.
    fn settings_digest(&self, acl: &[String], tags: &[String], url: Option<&str>) -> String {
        let mut hasher = blake3::Hasher::new();
        hasher.update(&EXTRACTION_VERSION.to_le_bytes());
        hasher.update(&self.limits.max_text_chars.to_le_bytes());
        for value in acl.iter().chain(tags) {
            hasher.update(value.as_bytes());
            hasher.update(b"\0");
        }
        for value in [url, self.language.as_deref(), Some(&self.kind)] {
            hasher.update(value.unwrap_or("\u{1}").as_bytes());
            hasher.update(b"\0");
        }
        hasher.finalize().to_hex()[..16].to_owned()
    }

    fn derive(&self, id: &str) -> Derived {
        let acl = self.acl_for(self.rule_for(id)).to_vec();
        let url = self.url_prefix.as_ref().map(|prefix| {
            let path = id
                .split('/')
                .map(|segment| utf8_percent_encode(segment, PATH_SEGMENT).to_string())
                .collect::<Vec<_>>()
                .join("/");
            format!("{prefix}{path}")
        });
        // Users read tags as topics, so the top-level folder is one and the format is not (the
        // file name shows it).
        let tags: Vec<String> = top_folder(id).map(str::to_owned).into_iter().collect();

        let settings = self.settings_digest(&acl, &tags, url.as_deref());
        Derived {
            acl,
            url,
            tags,
            settings,
        }
    }

    /// Reads the file, and extracts it unless its content hash equals `known_hash`.
    /// `Ok(None)` means unchanged; `Err` is the reason to report.
    fn read_and_extract(
        &self,
        id: &str,
        path: &Path,
        format: Format,
        walked: &Metadata,
        known_hash: Option<String>,
        derived: Derived,
    ) -> Result<Option<Document>, String> {
        let (bytes, stat) = read_file(path, walked, self.limits.max_file_bytes)?;
        let hash = blake3::hash(&bytes).to_hex().to_string();
        if known_hash.as_deref() == Some(hash.as_str()) {
            return Ok(None);
        }
        let extracted: Extracted =
            extract::extract(&bytes, format, &self.limits, None).map_err(|e| e.to_string())?;
        debug!(file = %id, format = %format, chars = extracted.text.len(), "file extracted");

        let fingerprint = format!(
            "{}:{}:{hash}:{}",
            stat.len(),
            mtime_ns(&stat),
            derived.settings
        );
        // What the document says about itself beats the file system: copying a file resets
        // its dates, and a news item dated in its front matter must sort by that date.
        let mtime = stat.modified().ok().map(DateTime::<Utc>::from);
        Ok(Some(Document {
            external_id: id.to_owned(),
            kind: self.kind.clone(),
            title: extracted.title.unwrap_or_else(|| title_from_name(id)),
            body: extracted.text,
            url: derived.url,
            author: extracted.author,
            language: self.language.clone().or(extracted.language),
            created: extracted.created.or(mtime),
            updated: extracted.modified.or(extracted.created).or(mtime),
            acl: derived.acl,
            tags: derived.tags,
            fingerprint: Some(fingerprint),
            properties: Default::default(),
        }))
    }

    fn check(&self) -> Result<Vec<String>, ConnectorError> {
        let root = self.open_root()?;
        let report = self.walk(&root, |_| ControlFlow::Continue(()))?;
        if let Some(reason) = report.incomplete() {
            return Err(ConnectorError::Incomplete { reason });
        }
        let mut notes = vec![format!(
            "root {} is readable, {} files match",
            root.display(),
            report.files
        )];
        for (pattern, hits) in self.include_patterns.iter().zip(&report.include_hits) {
            if *hits == 0 {
                notes.push(format!("include glob {pattern:?} matches no file"));
            }
        }
        for (number, (rule, hits)) in self.rules.iter().zip(&report.rule_hits).enumerate() {
            if *hits == 0 {
                notes.push(format!(
                    "access rule {} ({:?}) matches no file",
                    number + 1,
                    rule.path
                ));
            }
        }
        if report.visible_to_nobody > 0 {
            notes.push(format!(
                "{} files match no access rule and are visible to nobody (default_access is empty)",
                report.visible_to_nobody
            ));
        }
        if report.links_outside > 0 {
            notes.push(format!(
                "{} symbolic links lead outside the root and are skipped",
                report.links_outside
            ));
        }
        if report.failed > report.links_outside {
            notes.push(format!(
                "{} files cannot be read (broken links or names that are not UTF-8)",
                report.failed - report.links_outside
            ));
        }
        Ok(notes)
    }
}

enum Link {
    File { target: PathBuf, stat: Metadata },
    NotAFile,
    Outside,
    Broken(std::io::Error),
}

/// Follows a link to its canonical target and keeps it only inside the canonical root.
fn resolve_link(root: &Path, link: &Path) -> Link {
    let target = match fs::canonicalize(link) {
        Ok(target) => target,
        Err(error) => return Link::Broken(error),
    };
    if !target.starts_with(root) {
        return Link::Outside;
    }
    match fs::metadata(&target) {
        Ok(stat) if stat.is_file() => Link::File { target, stat },
        Ok(_) => Link::NotAFile,
        Err(error) => Link::Broken(error),
    }
}

/// Reads at most `max` bytes of the file the walk saw.
///
/// On Unix the opened file must be the very inode the walk saw: if a file (or a folder above
/// it) is swapped for a link between the walk and the read, the read is refused rather than
/// followed out of the root.
fn read_file(path: &Path, walked: &Metadata, max: u64) -> Result<(Vec<u8>, Metadata), String> {
    let file = File::open(path).map_err(|e| format!("cannot open file: {e}"))?;
    let stat = file
        .metadata()
        .map_err(|e| format!("cannot read file metadata: {e}"))?;
    if !stat.is_file() {
        return Err("not a regular file".to_owned());
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if (stat.dev(), stat.ino()) != (walked.dev(), walked.ino()) {
            return Err("file was replaced while the share was walked; not read".to_owned());
        }
    }
    #[cfg(not(unix))]
    let _ = walked;
    let too_large = |size| ExtractError::TooLarge { size, limit: max }.to_string();
    if stat.len() > max {
        return Err(too_large(stat.len()));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(stat.len()).unwrap_or(0));
    file.take(max.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read file: {e}"))?;
    let read = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
    if read > max {
        return Err(too_large(read));
    }
    Ok((bytes, stat))
}

/// `path` below `root`, without the separator. The walk's paths are `root` joined with the
/// names it listed, so on Unix this cuts bytes instead of comparing components.
#[cfg(unix)]
fn relative_to<'p>(root: &Path, path: &'p Path) -> Option<&'p Path> {
    use std::os::unix::ffi::OsStrExt;
    let root = root.as_os_str().as_bytes();
    let rest = path.as_os_str().as_bytes().strip_prefix(root)?;
    // A root of `/` ends with its separator; any other is followed by one.
    let rest = if root.ends_with(b"/") {
        rest
    } else {
        rest.strip_prefix(b"/")?
    };
    (!rest.is_empty()).then(|| Path::new(std::ffi::OsStr::from_bytes(rest)))
}

#[cfg(not(unix))]
fn relative_to<'p>(root: &Path, path: &'p Path) -> Option<&'p Path> {
    path.strip_prefix(root)
        .ok()
        .filter(|p| !p.as_os_str().is_empty())
}

/// The relative path with `/` separators, or `None` if a component is not UTF-8. Only normal
/// components can occur (the walk yields paths below the root), but anything else is refused
/// rather than trusted.
#[cfg(unix)]
fn external_id(relative: &Path) -> Option<String> {
    // On Unix the separator is already `/`: one UTF-8 check and a scan for empty, `.` and
    // `..` parts replace taking the path apart and joining it again.
    let id = relative.to_str()?;
    id.split('/')
        .all(|part| !matches!(part, "" | "." | ".."))
        .then(|| id.to_owned())
}

/// The relative path with `/` separators, or `None` if a component is not UTF-8. Only normal
/// components can occur (the walk yields paths below the root), but anything else is refused
/// rather than trusted.
#[cfg(not(unix))]
fn external_id(relative: &Path) -> Option<String> {
    use std::path::Component;
    let mut parts = Vec::new();
    for component in relative.components() {
        match component {
            Component::Normal(part) => parts.push(part.to_str()?),
            _ => return None,
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

/// The settings digests of one run, by first matching access rule and top-level folder
/// (`""` for files at the root), and the last one used.
#[derive(Default)]
struct SettingsCache {
    digests: HashMap<Option<usize>, HashMap<String, String>>,
    last: Option<(Option<usize>, String, String)>,
}

/// The top-level folder of a file's id, its tag (`None` for a file at the root).
fn top_folder(id: &str) -> Option<&str> {
    id.split_once('/').map(|(folder, _)| folder)
}

/// "Ferie_og-fravær 2024.pdf" → "Ferie og fravær 2024".
fn title_from_name(id: &str) -> String {
    let name = id.rsplit('/').next().unwrap_or(id);
    let stem = Path::new(name)
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or(name);
    let title = stem
        .split(['_', '-', ' '])
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    if title.is_empty() {
        name.to_owned()
    } else {
        title
    }
}

fn mtime_ns(stat: &Metadata) -> i128 {
    let Ok(modified) = stat.modified() else {
        return 0;
    };
    let nanos = |d: std::time::Duration| i128::try_from(d.as_nanos()).unwrap_or(i128::MAX);
    match modified.duration_since(UNIX_EPOCH) {
        Ok(after) => nanos(after),
        Err(before) => -nanos(before.duration()),
    }
}

/// A fingerprint as this connector writes it:
/// `<size>:<mtime-ns>:<blake3 of the content>:<settings digest>`.
struct Fingerprint<'a> {
    stat: &'a str,
    content: &'a str,
    settings: &'a str,
}

impl<'a> Fingerprint<'a> {
    /// Whether the file's size and modification time are the ones this fingerprint was made
    /// with: compared as numbers, so an unchanged file costs no formatting.
    fn stat_matches(&self, stat: &Metadata) -> bool {
        let Some((size, mtime)) = self.stat.split_once(':') else {
            return false;
        };
        size.parse::<u64>().ok() == Some(stat.len())
            && mtime.parse::<i128>().ok() == Some(mtime_ns(stat))
    }

    fn parse(value: &'a str) -> Option<Self> {
        // Split at both ends: the content hash in the middle is long and never needs a scan.
        let (size, rest) = value.split_once(':')?;
        let (mtime, rest) = rest.split_once(':')?;
        let (content, settings) = rest.rsplit_once(':')?;
        Some(Self {
            stat: &value[..size.len() + 1 + mtime.len()],
            content,
            settings,
        })
    }
}

#[derive(Default)]
struct Counts {
    upserted: usize,
    unchanged: usize,
    failed: usize,
}

impl Counts {
    fn record(&mut self, change: &Change, source: &str) {
        match change {
            Change::Upsert(_) => self.upserted += 1,
            Change::Unchanged { .. } => self.unchanged += 1,
            Change::Failed { external_id, error } => {
                self.failed += 1;
                warn!(source, file = %external_id, %error, "file could not be indexed");
            }
            _ => {}
        }
    }
}

/// Compiles globs into one set, keeping their order (access rules depend on it).
fn glob_set(patterns: &[String], field: &str) -> Result<GlobSet, ConnectorError> {
    let mut builder = GlobSetBuilder::new();
    for pattern in patterns {
        builder.add(glob(pattern, field)?);
    }
    builder
        .build()
        .map_err(|e| ConnectorError::Config(format!("invalid globs in {field}: {e}")))
}

fn glob(pattern: &str, field: &str) -> Result<globset::Glob, ConnectorError> {
    let trimmed = pattern.trim();
    let trimmed = trimmed.strip_prefix("./").unwrap_or(trimmed);
    if trimmed.is_empty() {
        return Err(ConnectorError::Config(format!("empty glob in {field}")));
    }
    if trimmed.starts_with('/') || trimmed.split('/').any(|part| part == "..") {
        return Err(ConnectorError::Config(format!(
            "glob {pattern:?} in {field} must be relative to the root, without \"..\""
        )));
    }
    let effective = if let Some(folder) = trimmed.strip_suffix('/') {
        format!("{folder}/**")
    } else if trimmed.contains('/') {
        trimmed.to_owned()
    } else {
        format!("**/{trimmed}")
    };
    GlobBuilder::new(&effective)
        .literal_separator(true)
        .backslash_escape(true)
        .build()
        .map_err(|e| ConnectorError::Config(format!("invalid glob {pattern:?} in {field}: {e}")))
}

/// Validates `url_prefix` and makes it end with `/` so that the path joins cleanly. Only
/// schemes a browser can open as a document link are allowed: a `javascript:` prefix would turn
/// every result into a script.
fn url_prefix(prefix: &str) -> Result<String, ConnectorError> {
    let prefix = prefix.trim();
    let lower = prefix.to_ascii_lowercase();
    let allowed = ["http://", "https://", "file:", "smb://"]
        .iter()
        .any(|scheme| lower.starts_with(scheme))
        || (prefix.starts_with('/') && !prefix.starts_with("//"));
    if !allowed {
        return Err(ConnectorError::Config(format!(
            "file-share url_prefix {prefix:?} must start with http://, https://, file:, smb:// or /"
        )));
    }
    Ok(if prefix.ends_with('/') {
        prefix.to_owned()
    } else {
        format!("{prefix}/")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_from_file_names() {
        let cases = [
            ("Ferie_og-fravær 2024.pdf", "Ferie og fravær 2024"),
            ("HR/Løn/lønpolitik.docx", "lønpolitik"),
            ("__.txt", "__.txt"),
            ("noext", "noext"),
        ];
        for (id, expected) in cases {
            assert_eq!(title_from_name(id), expected, "id {id:?}");
        }
    }

    #[test]
    fn cached_settings_equal_each_files_own() {
        let with_rules = "default_access = [\"authenticated\"]\n\
            [[access]]\npath = \"Ledelse/\"\nprincipals = [\"group:ledere\"]\n\
            [[access]]\npath = \"*.pdf\"\nprincipals = [\"group:alle\"]\n";
        let ids = [
            "a.txt",
            "b.pdf",
            "Ledelse/plan.txt",
            "Ledelse/x.pdf",
            "HR/a.txt",
            "HR/b.pdf",
            "HR/sub/c.txt",
            "a.txt",
            "HR/a.txt",
            "Ledelse/sub/plan.txt",
        ];
        for lines in [
            "",
            with_rules,
            "url_prefix = \"https://intra/filer\"\n",
            "kind = \"news\"\nlanguage = \"da\"\n",
        ] {
            let params: FileShareParams =
                toml::from_str(&format!("root = \"/srv/share\"\n{lines}")).unwrap();
            let share = FileShare::new(&params, Path::new("/")).unwrap();
            let mut cache = SettingsCache::default();
            let mut distinct = std::collections::HashSet::new();
            for id in ids {
                let own = share.inner.derive(id).settings;
                assert_eq!(
                    share.inner.settings(id, &mut cache),
                    own,
                    "{id} with {lines:?}"
                );
                distinct.insert(own);
            }
            // Folders are tags, so files in different top-level folders never share one.
            assert!(distinct.len() >= 3, "{lines:?}: {distinct:?}");
        }
    }

    #[test]
    fn stat_comparison_reads_size_and_modification_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.txt");
        std::fs::write(&path, "abc").unwrap();
        let stat = std::fs::metadata(&path).unwrap();
        let same = format!("3:{}:hash:settings", mtime_ns(&stat));
        assert!(Fingerprint::parse(&same).unwrap().stat_matches(&stat));
        for other in [
            format!("4:{}:hash:settings", mtime_ns(&stat)),
            format!("3:{}:hash:settings", mtime_ns(&stat) + 1),
            format!("03:{}x:hash:settings", mtime_ns(&stat)),
            "x:y:hash:settings".to_owned(),
        ] {
            assert!(
                !Fingerprint::parse(&other).unwrap().stat_matches(&stat),
                "{other}"
            );
        }
    }

    #[test]
    fn relative_paths_and_ids() {
        let root = Path::new("/srv/share");
        let rel = |p: &str| relative_to(root, Path::new(p)).map(|p| p.to_str().unwrap().to_owned());
        assert_eq!(rel("/srv/share/HR/a.txt").as_deref(), Some("HR/a.txt"));
        assert_eq!(rel("/srv/share"), None);
        assert_eq!(rel("/srv/shares/a.txt"), None);
        assert_eq!(rel("/srv/other/a.txt"), None);
        assert_eq!(
            relative_to(Path::new("/"), Path::new("/a/b.txt")),
            Some(Path::new("a/b.txt"))
        );
        assert_eq!(
            external_id(Path::new("HR/Løn/a.txt")).as_deref(),
            Some("HR/Løn/a.txt")
        );
        for refused in ["", "a/../b", "./a", "a//b", "a/"] {
            assert_eq!(external_id(Path::new(refused)), None, "{refused:?}");
        }
        #[cfg(unix)]
        {
            use std::os::unix::ffi::OsStrExt;
            let latin1 = std::ffi::OsStr::from_bytes(b"HR/f\xf8r.txt");
            assert_eq!(external_id(Path::new(latin1)), None);
        }
    }

    #[test]
    fn fingerprints_parse_back() {
        let parsed = Fingerprint::parse("12:-5:abc:def").unwrap();
        assert_eq!(
            (parsed.stat, parsed.content, parsed.settings),
            ("12:-5", "abc", "def")
        );
        assert!(Fingerprint::parse("12:5:abc").is_none());
        assert!(Fingerprint::parse("").is_none());
    }

    #[test]
    fn globs_follow_the_documented_rules() {
        let cases = [
            ("*.pdf", "a.pdf", true),
            ("*.pdf", "x/y/a.pdf", true),
            ("Ledelse/**", "Ledelse/a/b.pdf", true),
            ("Ledelse/**", "Andet/Ledelse/b.pdf", false),
            ("Ledelse/", "Ledelse/b.pdf", true),
            ("Ledelse/*.pdf", "Ledelse/a/b.pdf", false),
            ("./HR/*", "HR/a.txt", true),
        ];
        for (pattern, path, expected) in cases {
            let matcher = glob(pattern, "test").unwrap().compile_matcher();
            assert_eq!(matcher.is_match(path), expected, "{pattern} vs {path}");
        }
        for bad in ["", "/abs/*", "../x/*", "a/../b", "[unclosed"] {
            assert!(glob(bad, "test").is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn url_prefixes() {
        assert_eq!(
            url_prefix("https://intra/share").unwrap(),
            "https://intra/share/"
        );
        assert_eq!(url_prefix("/filer/").unwrap(), "/filer/");
        for bad in [
            "javascript:alert(1)//",
            "data:text/html,",
            "//evil.example/",
            "intra/",
        ] {
            assert!(url_prefix(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
