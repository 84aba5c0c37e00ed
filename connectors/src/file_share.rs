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
use std::time::Instant;
#[cfg(not(unix))]
use std::time::UNIX_EPOCH;

use chrono::{DateTime, Utc};
use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use rayon::iter::{ParallelDrainRange, ParallelIterator};
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
    /// How many threads read files' metadata and extract them, 1 to 64. Default: one per
    /// processor and one more, at most 8: the listing has a thread of its own, and while it
    /// runs (or a thread waits for the others at the end of a chunk) the extra one keeps
    /// every processor reading. On a network mount, where reading a file's metadata is a
    /// round trip to the server, more threads walk faster.
    #[serde(default)]
    pub walk_threads: Option<usize>,
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
    walk_threads: usize,
}

/// The most `walk_threads` may be.
const MAX_WALK_THREADS: usize = 64;

/// Files handed out by the listing together: their metadata reads, comparisons and
/// extractions are shared among the walk's threads, and their changes sent together. The
/// threads wait for each other at the end of every chunk, so fewer, longer chunks waste less.
const CHUNK: usize = 256;

/// Chunks listed ahead of the walk's threads.
const LISTED_CHUNKS: usize = 2;

/// Files read together per walk thread: small batches, so that the index writer gets the
/// first documents while the next are extracted.
const READS_PER_THREAD: usize = 8;

/// The most folders a chunk's files may come from: each one's listing stays open (a file
/// descriptor) until the chunk's metadata has been read.
const CHUNK_FOLDERS: usize = 32;

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

        let walk_threads = match params.walk_threads {
            None => std::thread::available_parallelism().map_or(3, |n| (n.get() + 1).min(8)),
            Some(n) if (1..=MAX_WALK_THREADS).contains(&n) => n,
            Some(n) => {
                return Err(ConnectorError::Config(format!(
                    "file-share walk_threads must be between 1 and {MAX_WALK_THREADS}, not {n}"
                )));
            }
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
                walk_threads,
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
        let pool = self.inner.pool()?;
        // Whether the fingerprints have been read (`LOADING`, `LOADED`, `FAILED`).
        let loading = Arc::new(AtomicU8::new(LOADING));
        let loaded = Arc::clone(&loading);
        // Walking, reading and extracting are blocking file-system and CPU work, done on the
        // run's own threads. One lists the folders in name order and hands the files out in
        // chunks, a few chunks ahead; the walk threads (`walk_threads`) share each chunk's
        // metadata reads, comparisons, reads and extractions, and its changes come back in
        // order. They go to the async side through the sink's bounded channel, unchanged
        // files many to a message, so that the engine is woken once for many; the walk stops
        // as soon as the receiver hangs up. Every file is compared with its fingerprint, but
        // the walk starts while they are read from the index: it lists up to `LIST_AHEAD`
        // files meanwhile.
        let walk = tokio::task::spawn_blocking(move || {
            let (chunks, listed) = std::sync::mpsc::sync_channel::<Chunk>(LISTED_CHUNKS);
            let inner = &*inner;
            let consume = |listed: std::sync::mpsc::Receiver<Chunk>| {
                let mut counts = Counts::default();
                let mut cancelled = false;
                let mut ahead: VecDeque<Vec<Found>> = VecDeque::new();
                let mut listed_ahead = 0;
                let mut send = |changes: Vec<Change>| {
                    for change in &changes {
                        counts.record(change, &source_id);
                    }
                    match sink.blocking_send_all(changes) {
                        Ok(()) => ControlFlow::Continue(()),
                        Err(_) => ControlFlow::Break(()),
                    }
                };
                // Waits (on this thread) until the fingerprints are read; false if they
                // cannot be.
                let ready = || loop {
                    match loaded.load(Ordering::Acquire) {
                        LOADING => std::thread::sleep(std::time::Duration::from_micros(200)),
                        state => return state == LOADED,
                    }
                };
                let process =
                    |chunk: Chunk, send: &mut dyn FnMut(Vec<Change>) -> ControlFlow<()>| {
                        inner.process_chunk(chunk, known.as_ref(), send)
                    };
                'chunks: for chunk in listed {
                    if loaded.load(Ordering::Acquire) == LOADING && listed_ahead < LIST_AHEAD {
                        // Read the metadata now: the listing's open folders are not kept.
                        listed_ahead += chunk.files.len();
                        ahead.push_back(chunk.stat_all());
                        continue;
                    }
                    if !ready() {
                        break;
                    }
                    while let Some(earlier) = ahead.pop_front() {
                        let found = Chunk::settled(earlier);
                        if process(found, &mut send).is_break() {
                            cancelled = true;
                            break 'chunks;
                        }
                    }
                    if process(chunk, &mut send).is_break() {
                        cancelled = true;
                        break;
                    }
                }
                if !cancelled && ready() {
                    // What was listed ahead and not handled yet (a share smaller than the
                    // look-ahead, listed before the fingerprints were read).
                    while let Some(earlier) = ahead.pop_front() {
                        let found = Chunk::settled(earlier);
                        if process(found, &mut send).is_break() {
                            cancelled = true;
                            break;
                        }
                    }
                }
                (counts, cancelled)
            };
            std::thread::scope(|scope| {
                let lister = std::thread::Builder::new()
                    .name("file-share-list".to_owned())
                    .spawn_scoped(scope, move || {
                        let root = inner.open_root()?;
                        // Stops when the walk's threads hang up (`chunks` is closed).
                        inner.walk(&root, |chunk| match chunks.send(chunk) {
                            Ok(()) => ControlFlow::Continue(()),
                            Err(_) => ControlFlow::Break(()),
                        })
                    })
                    .map_err(|e| {
                        ConnectorError::Internal(format!("cannot start the listing thread: {e}"))
                    })?;
                // Returning drops `listed`, which stops the listing if it is not done.
                let (counts, cancelled) = pool.install(|| consume(listed));
                let walked = lister.join().map_err(|panic| {
                    ConnectorError::Internal(format!(
                        "the listing crashed: {}",
                        panic_message(&panic)
                    ))
                })?;
                Ok::<_, ConnectorError>((walked, counts, cancelled))
            })
        });
        if let Err(e) = ctx.known.load().await {
            loading.store(FAILED, Ordering::Release);
            let _ = walk.await;
            return Err(e);
        }
        loading.store(LOADED, Ordering::Release);
        let (walked, counts, cancelled) = walk
            .await
            .map_err(|e| ConnectorError::Internal(format!("walk task failed: {e}")))??;
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
    /// The threads that read, compare and extract a run's files: each run starts its own and
    /// ends them after.
    fn pool(&self) -> Result<rayon::ThreadPool, ConnectorError> {
        rayon::ThreadPoolBuilder::new()
            .num_threads(self.walk_threads)
            .thread_name(|i| format!("file-share-{i}"))
            .build()
            .map_err(|e| ConnectorError::Internal(format!("cannot start the walk's threads: {e}")))
    }

    /// Turns a chunk of listed files into their changes and hands them to `send` in the
    /// chunk's order. Every file's metadata is read and compared on the walk's threads at
    /// once, each thread building ids in a buffer of its own; the files that must be read
    /// then go `read_batch` at a time, each batch's changes sent as soon as it is done, so
    /// that extraction and indexing overlap rather than take turns.
    fn process_chunk(
        &self,
        chunk: Chunk,
        known: &dyn KnownDocs,
        send: &mut dyn FnMut(Vec<Change>) -> ControlFlow<()>,
    ) -> ControlFlow<()> {
        let Chunk {
            folders,
            settings,
            mut files,
        } = chunk;
        let compared: Vec<Compared> = files
            .par_drain(..)
            .map_init(String::new, |buffer, pending| match pending {
                Pending::Entry(listed) => match listed.stat(&folders, &settings) {
                    Ok(file) => {
                        let at = At::Entry {
                            folder: file.folder,
                            name: file.name,
                        };
                        let settings = file.settings.map(|digest| &**digest);
                        self.compare(at, file.format, file.stat, settings, buffer, known)
                    }
                    Err((external_id, error)) => {
                        Compared::Settled(Change::Failed { external_id, error })
                    }
                },
                Pending::Settled(Found::Failed { id, error }) => {
                    Compared::Settled(Change::Failed {
                        external_id: id,
                        error,
                    })
                }
                Pending::Settled(Found::File {
                    at,
                    format,
                    stat,
                    settings,
                }) => {
                    let settings = settings.as_deref();
                    match at {
                        Location::Entry { folder, name } => {
                            let at = At::Entry {
                                folder: &folder,
                                name,
                            };
                            self.compare(at, format, stat, settings, buffer, known)
                        }
                        Location::Link { id, target } => {
                            let at = At::Link { id, target };
                            self.compare(at, format, stat, settings, buffer, known)
                        }
                    }
                }
            })
            .collect();
        let read_batch = self.walk_threads * READS_PER_THREAD;
        let mut changes = Vec::with_capacity(compared.len());
        let mut reads = Vec::with_capacity(read_batch);
        for compared in compared {
            match compared {
                Compared::Known(slot) => {
                    if !reads.is_empty() {
                        self.read_all(&mut reads, &mut changes);
                        send(std::mem::take(&mut changes))?;
                    }
                    // Unchanged files in a row go as one message.
                    match changes.last_mut() {
                        Some(Change::UnchangedKnown { slots }) => slots.push(slot),
                        _ => changes.push(Change::UnchangedKnown { slots: vec![slot] }),
                    }
                }
                Compared::Settled(change) => {
                    if !reads.is_empty() {
                        self.read_all(&mut reads, &mut changes);
                        send(std::mem::take(&mut changes))?;
                    }
                    changes.push(change);
                }
                Compared::Read(read) => {
                    reads.push(*read);
                    if reads.len() == read_batch {
                        self.read_all(&mut reads, &mut changes);
                        send(std::mem::take(&mut changes))?;
                    }
                }
            }
        }
        self.read_all(&mut reads, &mut changes);
        if changes.is_empty() {
            return ControlFlow::Continue(());
        }
        send(changes)
    }

    /// Decides what one walked file needs: `Unchanged` from metadata alone when possible,
    /// otherwise a read. An unchanged file known by its place costs no allocation: its id is
    /// built in `buffer` to look it up, and it is reported by place.
    fn compare(
        &self,
        at: At<'_>,
        format: Format,
        stat: Stat,
        settings: Option<&str>,
        buffer: &mut String,
        known: &dyn KnownDocs,
    ) -> Compared {
        let id = at.id(buffer);
        // An unchanged file needs only its settings digest, which most files share with
        // their folder: the access list, URL and tags are built only for files to be read,
        // or when the digest is the file's own (with a `url_prefix`), and then only once.
        let mut derived = None;
        let settings = match settings {
            Some(settings) => settings,
            None => derived.insert(self.derive(id)).settings.as_str(),
        };
        let found = known.find(id);
        let fingerprint = found.and_then(|doc| doc.fingerprint);
        if fingerprint.is_some_and(|f| Fingerprint::matches(f, &stat, settings)) {
            return match found.and_then(|doc| doc.slot) {
                Some(slot) => Compared::Known(slot),
                None => Compared::Settled(Change::Unchanged {
                    external_id: id.to_owned(),
                }),
            };
        }
        let known_hash = fingerprint
            .and_then(Fingerprint::parse)
            .filter(|k| k.settings == settings)
            .map(|k| k.content.to_owned());
        let id = id.to_owned();
        if stat.len > self.limits.max_file_bytes {
            let error = ExtractError::TooLarge {
                size: stat.len,
                limit: self.limits.max_file_bytes,
            };
            return Compared::Settled(Change::Failed {
                external_id: id,
                error: error.to_string(),
            });
        }
        Compared::Read(Box::new(ToRead {
            derived: derived.unwrap_or_else(|| self.derive(&id)),
            known_hash,
            id,
            at: at.into_owned(),
            format,
            stat,
        }))
    }

    /// Reads the files of `reads` on the walk's threads and appends their changes in order.
    fn read_all(&self, reads: &mut Vec<ToRead>, changes: &mut Vec<Change>) {
        if reads.is_empty() {
            return;
        }
        let read: Vec<Change> = reads.par_drain(..).map(|read| self.read(read)).collect();
        changes.extend(read);
    }

    /// Reads, hashes and (if the content changed) extracts one file. Blocking.
    fn read(&self, read: ToRead) -> Change {
        let ToRead {
            id,
            at,
            format,
            stat,
            known_hash,
            derived,
        } = read;
        // An extractor that panics on a hostile file fails that file, not the run.
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.read_and_extract(&id, &at.path(), format, &stat, known_hash, derived)
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

/// What comparing a file with its fingerprint decided. A file to read is boxed: most files
/// of a re-sync are settled, and are moved at a settled change's size.
enum Compared {
    /// Unchanged, and named by its place among the known documents.
    Known(u32),
    Settled(Change),
    Read(Box<ToRead>),
}

/// A file to read: its size or modification time differs from its fingerprint's, or it has
/// none.
struct ToRead {
    id: String,
    at: Location,
    format: Format,
    stat: Stat,
    /// The content hash of the indexed version, if the file has one with the same settings.
    known_hash: Option<String>,
    derived: Derived,
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
    /// A selected file to process, with its settings digest when its folder's files share
    /// one (`None`: derived per file).
    File {
        at: Location,
        format: Format,
        stat: Stat,
        settings: Option<Arc<str>>,
    },
    /// A selected entry that cannot be processed (a link out of the root, a broken link, a name
    /// that is not UTF-8, metadata that cannot be read).
    Failed { id: String, error: String },
}

/// Where a file is, and so its id.
enum Location {
    /// An entry of a listed folder: its id is the folder's prefix and its name.
    Entry { folder: Arc<Folder>, name: String },
    /// A link, by its id and the canonical target it is read from.
    Link { id: String, target: PathBuf },
}

impl Location {
    fn path(&self) -> PathBuf {
        match self {
            Location::Entry { folder, name } => folder.path.join(name),
            Location::Link { target, .. } => target.clone(),
        }
    }
}

/// Where a file being compared is: a [`Location`] that borrows its folder from its chunk.
enum At<'c> {
    Entry {
        folder: &'c Arc<Folder>,
        name: String,
    },
    Link {
        id: String,
        target: PathBuf,
    },
}

impl At<'_> {
    /// The file's id: built in `buffer` for an entry, without allocating once the buffer
    /// has grown.
    fn id<'a>(&'a self, buffer: &'a mut String) -> &'a str {
        match self {
            At::Entry { folder, name } => {
                buffer.clear();
                buffer.push_str(&folder.prefix);
                buffer.push_str(name);
                buffer
            }
            At::Link { id, .. } => id,
        }
    }

    fn into_owned(self) -> Location {
        match self {
            At::Entry { folder, name } => Location::Entry {
                folder: Arc::clone(folder),
                name,
            },
            At::Link { id, target } => Location::Link { id, target },
        }
    }
}

/// Files listed together, with the folders they come from (each held open until the chunk's
/// metadata has been read) and the settings digests they share. A file names both by index,
/// so that handing it to another thread copies no shared pointer: every thread would write
/// its count, one cache line among them all.
#[derive(Default)]
struct Chunk {
    folders: Vec<(Arc<Folder>, Arc<OpenFolder>)>,
    settings: Vec<Arc<str>>,
    files: Vec<Pending>,
}

impl Chunk {
    fn settled(found: Vec<Found>) -> Chunk {
        Chunk {
            files: found.into_iter().map(Pending::Settled).collect(),
            ..Chunk::default()
        }
    }

    /// Reads every file's metadata now, on the walk's threads, so that no folder is kept
    /// open for it.
    fn stat_all(self) -> Vec<Found> {
        let Chunk {
            folders,
            settings,
            mut files,
        } = self;
        files
            .par_drain(..)
            .map(|pending| match pending {
                Pending::Settled(found) => found,
                Pending::Entry(listed) => match listed.stat(&folders, &settings) {
                    Ok(file) => Found::File {
                        at: Location::Entry {
                            folder: Arc::clone(file.folder),
                            name: file.name,
                        },
                        format: file.format,
                        stat: file.stat,
                        settings: file.settings.cloned(),
                    },
                    Err((id, error)) => Found::Failed { id, error },
                },
            })
            .collect()
    }
}

/// A selected entry as the listing hands it out: a file whose metadata is still to be read
/// (relative to its open folder), or one already settled (a link, a failure).
enum Pending {
    Entry(Listed),
    Settled(Found),
}

/// A listed file whose metadata is still to be read. Its folder and settings digest are
/// indexes into its chunk's.
struct Listed {
    folder: usize,
    name: String,
    format: Format,
    settings: Option<usize>,
}

/// A listed file with its metadata, borrowing its folder and settings digest from its chunk.
struct WithMetadata<'c> {
    folder: &'c Arc<Folder>,
    name: String,
    format: Format,
    stat: Stat,
    settings: Option<&'c Arc<str>>,
}

impl Listed {
    /// Reads the file's metadata relative to its open folder; on failure, its id and why.
    fn stat<'c>(
        self,
        folders: &'c [(Arc<Folder>, Arc<OpenFolder>)],
        settings: &'c [Arc<str>],
    ) -> Result<WithMetadata<'c>, (String, String)> {
        let (folder, open) = &folders[self.folder];
        match open.stat(&self.name) {
            Ok(stat) => Ok(WithMetadata {
                folder,
                name: self.name,
                format: self.format,
                stat,
                settings: self.settings.map(|digest| &settings[digest]),
            }),
            Err(error) => Err((
                format!("{}{}", folder.prefix, self.name),
                format!("cannot read file metadata: {error}"),
            )),
        }
    }
}

/// What the connector compares and checks of a file's metadata.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stat {
    len: u64,
    /// The modification time in nanoseconds from the epoch (negative before it).
    mtime_ns: i128,
    /// The device and inode (Unix; zero elsewhere), so that the file read is the file walked.
    inode: (u64, u64),
}

impl Stat {
    #[cfg(unix)]
    fn of(metadata: &Metadata) -> Stat {
        use std::os::unix::fs::MetadataExt;
        Stat {
            len: metadata.len(),
            // What `Metadata::modified` is made of, without building a `SystemTime`.
            mtime_ns: i128::from(metadata.mtime()) * 1_000_000_000
                + i128::from(metadata.mtime_nsec()),
            inode: (metadata.dev(), metadata.ino()),
        }
    }

    /// As [`Stat::of`] computes it from the same file's `Metadata`.
    #[cfg(unix)]
    fn of_raw(stat: &rustix::fs::Stat) -> Stat {
        // The fields' types differ between platforms (signed or not, 32 or 64 bits); the
        // values always fit these.
        fn unsigned(value: impl TryInto<u64>) -> u64 {
            value.try_into().unwrap_or(0)
        }
        Stat {
            len: unsigned(stat.st_size),
            mtime_ns: i128::from(stat.st_mtime) * 1_000_000_000 + i128::from(stat.st_mtime_nsec),
            inode: (unsigned(stat.st_dev), unsigned(stat.st_ino)),
        }
    }

    #[cfg(not(unix))]
    fn of(metadata: &Metadata) -> Stat {
        let nanos = |d: std::time::Duration| i128::try_from(d.as_nanos()).unwrap_or(i128::MAX);
        let mtime_ns = match metadata.modified().map(|m| m.duration_since(UNIX_EPOCH)) {
            Ok(Ok(after)) => nanos(after),
            Ok(Err(before)) => -nanos(before.duration()),
            Err(_) => 0,
        };
        Stat {
            len: metadata.len(),
            mtime_ns,
            inode: (0, 0),
        }
    }
}

/// What a walk carries from folder to folder.
struct Walk<'w> {
    /// The canonical root.
    root: &'w Path,
    report: &'w mut WalkReport,
    /// Files listed and not yet handed out, in walk order.
    chunk: Chunk,
    found: &'w mut dyn FnMut(Chunk) -> ControlFlow<()>,
    settings: SettingsCache,
}

impl Walk<'_> {
    /// Adds a listed file whose metadata is still to be read.
    fn push_entry(
        &mut self,
        (folder, open): (&Arc<Folder>, &Arc<OpenFolder>),
        name: String,
        format: Format,
        settings: Option<&Arc<str>>,
    ) -> ControlFlow<()> {
        let chunk = &mut self.chunk;
        if !chunk
            .folders
            .last()
            .is_some_and(|(last, _)| Arc::ptr_eq(last, folder))
        {
            chunk.folders.push((Arc::clone(folder), Arc::clone(open)));
        }
        let settings = settings.map(|digest| {
            if !chunk
                .settings
                .last()
                .is_some_and(|last| Arc::ptr_eq(last, digest))
            {
                chunk.settings.push(Arc::clone(digest));
            }
            chunk.settings.len() - 1
        });
        let folder = chunk.folders.len() - 1;
        self.push(Pending::Entry(Listed {
            folder,
            name,
            format,
            settings,
        }))
    }

    fn push(&mut self, pending: Pending) -> ControlFlow<()> {
        self.chunk.files.push(pending);
        if self.chunk.files.len() >= CHUNK || self.chunk.folders.len() >= CHUNK_FOLDERS {
            self.flush()?;
        }
        ControlFlow::Continue(())
    }

    /// Hands out the files listed so far.
    fn flush(&mut self) -> ControlFlow<()> {
        if self.chunk.files.is_empty() {
            return ControlFlow::Continue(());
        }
        let chunk = std::mem::replace(
            &mut self.chunk,
            Chunk {
                files: Vec::with_capacity(CHUNK),
                ..Chunk::default()
            },
        );
        (self.found)(chunk)
    }
}

/// A folder being walked, shared by its files until they are read.
struct Folder {
    path: PathBuf,
    /// The folder's path below the root with a trailing `/` (empty for the root): its files'
    /// ids start with it.
    prefix: String,
    /// False when a folder name on the way is not UTF-8 (the prefix is then shown lossily and
    /// its files cannot have ids).
    utf8: bool,
}

/// A listed folder held open, so that its files' metadata is read relative to it: the kernel
/// then looks up one name, where a file's whole path would have to be resolved again for
/// each file.
struct OpenFolder {
    #[cfg(unix)]
    fd: std::os::fd::OwnedFd,
    #[cfg(not(unix))]
    path: PathBuf,
}

impl OpenFolder {
    fn open(path: &Path) -> std::io::Result<OpenFolder> {
        #[cfg(unix)]
        {
            use rustix::fs::{Mode, OFlags};
            // Never through a link: the walk does not follow folder links, and a folder
            // swapped for one after it was listed is refused.
            let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
            let fd = rustix::fs::open(path, flags, Mode::empty())?;
            Ok(OpenFolder { fd })
        }
        #[cfg(not(unix))]
        Ok(OpenFolder {
            path: path.to_owned(),
        })
    }

    /// The metadata of an entry itself (a link's own, not its target's).
    fn stat(&self, name: &str) -> std::io::Result<Stat> {
        #[cfg(unix)]
        {
            let stat = rustix::fs::statat(&self.fd, name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW)?;
            Ok(Stat::of_raw(&stat))
        }
        #[cfg(not(unix))]
        fs::symlink_metadata(self.path.join(name)).map(|metadata| Stat::of(&metadata))
    }
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
    /// each folder's files where the folder's name sorts, in chunks of at most `CHUNK` files
    /// from at most `CHUNK_FOLDERS` folders. It only lists: the files' metadata is read by
    /// whoever takes the chunk.
    fn walk(
        &self,
        root: &Path,
        mut found: impl FnMut(Chunk) -> ControlFlow<()>,
    ) -> Result<WalkReport, ConnectorError> {
        let mut report = WalkReport {
            include_hits: vec![0; self.include_patterns.len()],
            rule_hits: vec![0; self.rules.len()],
            ..WalkReport::default()
        };
        let io = |source| ConnectorError::Io {
            path: self.root.clone(),
            source,
        };
        let listing = fs::read_dir(root).map_err(io)?;
        let open = Arc::new(OpenFolder::open(root).map_err(io)?);
        let top = Arc::new(Folder {
            path: root.to_owned(),
            prefix: String::new(),
            utf8: true,
        });
        let mut walk = Walk {
            root,
            report: &mut report,
            chunk: Chunk {
                files: Vec::with_capacity(CHUNK),
                ..Chunk::default()
            },
            found: &mut found,
            settings: SettingsCache::default(),
        };
        if self
            .walk_folder((&top, &open), listing, &mut walk)
            .is_continue()
        {
            let _ = walk.flush();
        }
        Ok(report)
    }

    /// Lists one folder and goes through its entries in name order (names compared as bytes),
    /// descending into each subfolder where it comes. Each file's metadata is read later,
    /// relative to its open folder ([`OpenFolder::stat`]), by whichever of the walk's threads
    /// gets it: a walk that `lstat`s every file by its full path makes the kernel resolve the
    /// whole path again for each one.
    fn walk_folder(
        &self,
        (folder, open): (&Arc<Folder>, &Arc<OpenFolder>),
        listing: fs::ReadDir,
        walk: &mut Walk<'_>,
    ) -> ControlFlow<()> {
        // Names and types only: the listing's own descriptor is closed once it is read.
        let mut entries = Vec::new();
        for entry in listing {
            match entry {
                Ok(entry) => {
                    let name = entry.file_name();
                    entries.push((sort_key(&name), name, entry.file_type()));
                }
                Err(error) => self.unlisted(&folder.prefix, &error, walk.report),
            }
        }
        entries.sort_unstable_by(|(a_key, a, _), (b_key, b, _)| {
            a_key
                .cmp(b_key)
                .then_with(|| a.as_encoded_bytes().cmp(b.as_encoded_bytes()))
        });
        // The entry's path below the root (its id if it is a selected file), built here for
        // every entry without allocating.
        let mut id = String::with_capacity(folder.prefix.len() + 64);
        // The settings digest of the folder's last file and its access rule: the digest
        // depends on the rule and the top-level folder only, and the folder is the same.
        let mut last_settings: Option<(Option<usize>, Option<Arc<str>>)> = None;
        for (_, name, file_type) in entries {
            // A name is checked for UTF-8 once: as text it is shown, is part of the id, and
            // is what the file's readers get.
            let name = name.into_string();
            let shown = match &name {
                Ok(text) => Cow::Borrowed(text.as_str()),
                Err(raw) => Cow::Owned(raw.to_string_lossy().into_owned()),
            };
            let utf8 = folder.utf8 && name.is_ok();
            let hidden = shown.starts_with('.') || shown.starts_with("~$");
            id.clear();
            id.push_str(&folder.prefix);
            id.push_str(&shown);
            let file_type = match file_type {
                Ok(file_type) => file_type,
                Err(error) => {
                    self.unlisted(&id, &error, walk.report);
                    continue;
                }
            };

            if file_type.is_dir() {
                if hidden || (!self.exclude.is_empty() && self.exclude.is_match(&id)) {
                    continue;
                }
                let path = match &name {
                    Ok(text) => folder.path.join(text),
                    Err(raw) => folder.path.join(raw),
                };
                match fs::read_dir(&path).and_then(|listing| {
                    OpenFolder::open(&path).map(|open| (listing, Arc::new(open)))
                }) {
                    Ok((listing, sub_open)) => {
                        // The folder's files come where its name sorts: a chunk goes on
                        // across folders in walk order.
                        let sub = Arc::new(Folder {
                            path,
                            prefix: format!("{id}/"),
                            utf8,
                        });
                        self.walk_folder((&sub, &sub_open), listing, walk)?;
                    }
                    Err(error) => self.unlisted(&id, &error, walk.report),
                }
                continue;
            }
            if hidden {
                continue;
            }
            let Some(format) = Format::from_name(&shown) else {
                continue;
            };
            if !self.selects(&id, walk.report) {
                continue;
            }
            drop(shown);
            if !utf8 {
                walk.push(Pending::Settled(Found::Failed {
                    id: id.clone(),
                    error: "file name is not valid UTF-8".to_owned(),
                }))?;
                continue;
            }

            let rule = self.rule_for(&id);
            if !matches!(&last_settings, Some((last_rule, _)) if *last_rule == rule) {
                last_settings = Some((rule, self.settings(&id, rule, &mut walk.settings)));
            }
            let settings = last_settings
                .as_ref()
                .and_then(|(_, digest)| digest.as_ref());
            // UTF-8, checked above.
            let Ok(name) = name else {
                continue;
            };
            let file = if file_type.is_symlink() {
                match resolve_link(walk.root, &folder.path.join(&name)) {
                    Link::File { target, stat } => Some(Found::File {
                        at: Location::Link {
                            id: id.clone(),
                            target,
                        },
                        format,
                        stat: Stat::of(&stat),
                        settings: settings.cloned(),
                    }),
                    Link::NotAFile => {
                        debug!(file = %id, "link to a folder or special file not followed");
                        continue;
                    }
                    Link::Outside => {
                        walk.report.links_outside += 1;
                        warn!(file = %id, "symbolic link leads outside the file-share root, not followed");
                        walk.push(Pending::Settled(Found::Failed {
                            id: id.clone(),
                            error: "symbolic link leads outside the file-share root; not followed"
                                .to_owned(),
                        }))?;
                        continue;
                    }
                    Link::Broken(error) => {
                        walk.push(Pending::Settled(Found::Failed {
                            id: id.clone(),
                            error: format!("broken symbolic link: {error}"),
                        }))?;
                        continue;
                    }
                }
            } else if file_type.is_file() {
                None
            } else {
                // Pipes, sockets and devices: opening a pipe would block the walk forever.
                continue;
            };
            walk.report.files += 1;
            match rule {
                Some(index) => walk.report.rule_hits[index] += 1,
                None if self.default_access.is_empty() => walk.report.visible_to_nobody += 1,
                None => {}
            }
            match file {
                Some(link) => walk.push(Pending::Settled(link))?,
                None => walk.push_entry((folder, open), name, format, settings)?,
            }
        }
        ControlFlow::Continue(())
    }

    /// Notes a folder (or an entry of one) that could not be listed: the walk is then not
    /// complete, and nothing may be deleted on its word.
    /// `at` is its path below the root (a folder's may end with `/`).
    fn unlisted(&self, at: &str, error: &std::io::Error, report: &mut WalkReport) {
        let at = at.trim_end_matches('/');
        warn!(path = %at, %error, "cannot list folder in file share");
        report.unlisted.push(format!("{at:?}: {error}"));
    }

    /// True when the include and exclude globs select the file; counts include hits.
    fn selects(&self, relative: &str, report: &mut WalkReport) -> bool {
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

    /// The settings digest of `id`'s fingerprint, as [`Inner::derive`] computes it; `rule`
    /// is its first matching access rule. Without a `url_prefix` it depends only on the rule
    /// and the top-level folder, so it is computed once per pair and run rather than once per
    /// file; with one, every file's URL differs and it is computed per file.
    /// `None` means per file: the caller derives it.
    fn settings(
        &self,
        id: &str,
        rule: Option<usize>,
        cache: &mut SettingsCache,
    ) -> Option<Arc<str>> {
        if self.url_prefix.is_some() {
            return None;
        }
        // Folder names are never empty, so "" stands for the root.
        let folder = top_folder(id).unwrap_or("");
        let by_folder = cache.digests.entry(rule).or_default();
        if let Some(settings) = by_folder.get(folder) {
            return Some(Arc::clone(settings));
        }
        let tags: Vec<String> = top_folder(id).map(str::to_owned).into_iter().collect();
        let settings: Arc<str> = self.settings_digest(self.acl_for(rule), &tags, None).into();
        by_folder.insert(folder.to_owned(), Arc::clone(&settings));
        Some(settings)
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
        walked: &Stat,
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

        let read = Stat::of(&stat);
        let fingerprint = format!("{}:{}:{hash}:{}", read.len, read.mtime_ns, derived.settings);
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
        let report = self.walk(&root, |_: Chunk| ControlFlow::Continue(()))?;
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
fn read_file(path: &Path, walked: &Stat, max: u64) -> Result<(Vec<u8>, Metadata), String> {
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
        if (stat.dev(), stat.ino()) != walked.inode {
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

/// The settings digests of one run, by first matching access rule and top-level folder
/// (`""` for files at the root).
#[derive(Default)]
struct SettingsCache {
    digests: HashMap<Option<usize>, HashMap<String, Arc<str>>>,
}

/// A name's first 16 bytes as one number, ordered as the names are (bytes compared in order;
/// a name cannot contain a zero byte, so a shorter one sorts first). Most names of a folder
/// differ within them, so sorting compares numbers and reads whole names only on a tie.
fn sort_key(name: &std::ffi::OsStr) -> u128 {
    let name = name.as_encoded_bytes();
    let mut key = [0; 16];
    let len = name.len().min(key.len());
    key[..len].copy_from_slice(&name[..len]);
    u128::from_be_bytes(key)
}

/// The top-level folder of a file's id, its tag (`None` for a file at the root).
fn top_folder(id: &str) -> Option<&str> {
    // Asked for every file: a byte scan of the first few characters, not a `memchr` set-up.
    let end = id.as_bytes().iter().position(|&b| b == b'/')?;
    Some(&id[..end])
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

/// A fingerprint as this connector writes it:
/// `<size>:<mtime-ns>:<blake3 of the content>:<settings digest>`, parsed into the parts a
/// file being read is compared by (the size and time are compared by [`Fingerprint::matches`]).
struct Fingerprint<'a> {
    content: &'a str,
    settings: &'a str,
}

impl<'a> Fingerprint<'a> {
    /// Whether `fingerprint` was made from a file of this size and modification time, with
    /// these settings. Checked as bytes against the numbers as the fingerprint writes them,
    /// formatted on the stack: a re-sync asks this of every file, and parsing the numbers
    /// out costs more.
    fn matches(fingerprint: &str, stat: &Stat, settings: &str) -> bool {
        let mut len = itoa::Buffer::new();
        let mut mtime = itoa::Buffer::new();
        // Nanoseconds from the epoch fit in an `i64` from 1677 to 2262, and format faster so.
        let mtime = match i64::try_from(stat.mtime_ns) {
            Ok(mtime_ns) => mtime.format(mtime_ns),
            Err(_) => mtime.format(stat.mtime_ns),
        };
        let rest = fingerprint
            .strip_prefix(len.format(stat.len))
            .and_then(|rest| rest.strip_prefix(':'))
            .and_then(|rest| rest.strip_prefix(mtime))
            .and_then(|rest| rest.strip_prefix(':'))
            .and_then(|rest| rest.strip_suffix(settings))
            .and_then(|rest| rest.strip_suffix(':'));
        // What is left is the content hash.
        rest.is_some_and(|content| !content.is_empty())
    }

    fn parse(value: &'a str) -> Option<Self> {
        // Split at both ends: the content hash in the middle is long and never needs a scan.
        // The parts scanned are a few characters each, too short for `memchr` to pay off.
        let bytes = value.as_bytes();
        let colon = |from: usize| {
            bytes[from..]
                .iter()
                .position(|&b| b == b':')
                .map(|at| from + at)
        };
        let size_end = colon(0)?;
        let stat_end = colon(size_end + 1)?;
        let content_end = bytes.iter().rposition(|&b| b == b':')?;
        if content_end <= stat_end {
            return None;
        }
        Some(Self {
            content: &value[stat_end + 1..content_end],
            settings: &value[content_end + 1..],
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
            Change::UnchangedKnown { slots } => self.unchanged += slots.len(),
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
                let rule = share.inner.rule_for(id);
                match share.inner.settings(id, rule, &mut cache) {
                    Some(cached) => assert_eq!(&*cached, own, "{id} with {lines:?}"),
                    // Every file's URL differs: derived per file.
                    None => assert!(lines.contains("url_prefix"), "{id} with {lines:?}"),
                }
                distinct.insert(own);
            }
            // Folders are tags, so files in different top-level folders never share one.
            assert!(distinct.len() >= 3, "{lines:?}: {distinct:?}");
        }
    }

    #[test]
    fn sort_keys_order_names_as_their_bytes() {
        let names = [
            "vejledning-1.md",
            "vejledning-10.md",
            "vejledning-1000.md",
            "vejledning-1001.md",
            "vejledning-100.md",
            "vejledning-1000.mdx",
            "a",
            "",
            "ab",
            "a b",
            "Ærø.txt",
            "Zebra.txt",
            "ø",
            "øl",
            "exactly-16-bytes",
            "exactly-16-bytes!",
            "exactly-16-byteS",
        ];
        let mut by_key: Vec<&str> = names.to_vec();
        by_key.sort_by(|a, b| {
            let (a_os, b_os) = (std::ffi::OsStr::new(a), std::ffi::OsStr::new(b));
            sort_key(a_os)
                .cmp(&sort_key(b_os))
                .then_with(|| a.as_bytes().cmp(b.as_bytes()))
        });
        let mut by_bytes = names.to_vec();
        by_bytes.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        assert_eq!(by_key, by_bytes);
    }

    #[cfg(unix)]
    #[test]
    fn folders_are_never_opened_through_a_link() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("real")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("real"), dir.path().join("link")).unwrap();
        assert!(OpenFolder::open(&dir.path().join("real")).is_ok());
        assert!(OpenFolder::open(&dir.path().join("link")).is_err());
        let open = OpenFolder::open(dir.path()).unwrap();
        assert!(open.stat("missing.txt").is_err());

        // A listed file gone before its metadata is read fails alone, under its id.
        let folder = Arc::new(Folder {
            path: dir.path().join("real"),
            prefix: "real/".to_owned(),
            utf8: true,
        });
        let open = Arc::new(OpenFolder::open(&folder.path).unwrap());
        std::fs::write(folder.path.join("a.txt"), "a").unwrap();
        let folders = [(folder, open)];
        let listed = || Listed {
            folder: 0,
            name: "a.txt".to_owned(),
            format: Format::from_name("a.txt").unwrap(),
            settings: None,
        };
        assert!(listed().stat(&folders, &[]).is_ok());
        std::fs::remove_file(dir.path().join("real/a.txt")).unwrap();
        let Err((id, error)) = listed().stat(&folders, &[]) else {
            panic!("a removed file was read");
        };
        assert_eq!(id, "real/a.txt");
        assert!(error.starts_with("cannot read file metadata: "), "{error}");
    }

    #[test]
    fn stat_comparison_reads_size_and_modification_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.txt");
        std::fs::write(&path, "abc").unwrap();
        // Before the epoch too: nanoseconds are counted back from it.
        let before = std::time::UNIX_EPOCH - std::time::Duration::new(1, 250_000_000);
        for time in [std::time::SystemTime::now(), before] {
            File::options()
                .write(true)
                .open(&path)
                .unwrap()
                .set_modified(time)
                .unwrap();
            let metadata = std::fs::metadata(&path).unwrap();
            let stat = Stat::of(&metadata);
            // Read relative to the open folder, as the walk does, it is the same.
            let open = OpenFolder::open(dir.path()).unwrap();
            assert_eq!(open.stat("a.txt").unwrap(), stat);
            let expected = match metadata
                .modified()
                .unwrap()
                .duration_since(std::time::UNIX_EPOCH)
            {
                Ok(after) => i128::try_from(after.as_nanos()).unwrap(),
                Err(before) => -i128::try_from(before.duration().as_nanos()).unwrap(),
            };
            assert_eq!(stat.mtime_ns, expected);
            assert_eq!(stat.len, 3);

            // Past 2262 the nanoseconds leave an `i64`: compared as `i128` then.
            let far = Stat {
                mtime_ns: i128::from(i64::MAX) + 1,
                ..stat
            };
            let fingerprint = format!("3:{}:hash:settings", far.mtime_ns);
            assert!(Fingerprint::matches(&fingerprint, &far, "settings"));
            assert!(!Fingerprint::matches(&fingerprint, &stat, "settings"));

            let same = format!("3:{}:hash:settings", stat.mtime_ns);
            assert!(Fingerprint::matches(&same, &stat, "settings"));
            // What the connector writes for the file matches it.
            let written = format!("{}:{}:hash:settings", stat.len, stat.mtime_ns);
            assert!(Fingerprint::matches(&written, &stat, "settings"));
            for other in [
                format!("4:{}:hash:settings", stat.mtime_ns),
                format!("3:{}:hash:settings", stat.mtime_ns + 1),
                format!("03:{}x:hash:settings", stat.mtime_ns),
                format!("3:{}:hash:other", stat.mtime_ns),
                format!("3:{}::settings", stat.mtime_ns),
                format!("3:{}:settings", stat.mtime_ns),
                format!("3:{}:hashsettings", stat.mtime_ns),
                format!("3:{}", stat.mtime_ns),
                "x:y:hash:settings".to_owned(),
                String::new(),
            ] {
                assert!(!Fingerprint::matches(&other, &stat, "settings"), "{other}");
            }
        }
    }

    #[test]
    fn a_names_format_is_the_one_its_path_gives() {
        for name in [
            "a.txt",
            "A.PDF",
            "plan.Docx",
            "x.odt",
            "noext",
            ".md",
            "..md",
            "a.",
            "a.b.html",
            "arkiv.tar.gz",
            "ø.markdown",
            "a.htm",
            "b.xhtml",
            "c.text",
            "~$lås.docx",
        ] {
            assert_eq!(
                Format::from_name(name),
                Format::from_path(Path::new(name)),
                "{name:?}"
            );
        }
    }

    #[test]
    fn fingerprints_parse_back() {
        let parsed = Fingerprint::parse("12:-5:abc:def").unwrap();
        assert_eq!((parsed.content, parsed.settings), ("abc", "def"));
        assert!(Fingerprint::parse("12:5:abc").is_none());
        assert!(Fingerprint::parse("12:5").is_none());
        assert!(
            Fingerprint::parse(":::")
                .is_some_and(|p| p.content.is_empty() && p.settings.is_empty())
        );
        assert!(Fingerprint::parse("").is_none());
        assert_eq!(top_folder("HR/Løn/a.txt"), Some("HR"));
        assert_eq!(top_folder("Løn/a.txt"), Some("Løn"));
        assert_eq!(top_folder("a.txt"), None);
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
