//! The index handle: opening (with damage detection and rebuild), and the read side.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tantivy::collector::{FacetCollector, TopDocs};
use tantivy::directory::error::OpenReadError;
use tantivy::index::SegmentComponent;
use tantivy::query::{AllQuery, BooleanQuery, ConstScoreQuery, Occur, Query, TermQuery};
use tantivy::schema::{Facet, IndexRecordOption};
use tantivy::{Index, IndexReader, ReloadPolicy, TantivyDocument, TantivyError, Term};
use tracing::{info, warn};

use crate::directory::IndexDirectory;
use crate::docs_cache::{DOCS_CACHE_LIMIT, DocsCache};
use crate::schema::{self, FACET_SOURCE, FACETS_FIELD, Fields};
use crate::search::{self, QueryBuilder, acl_filter};
use crate::{IndexError, Principals, SearchRequest, SearchResults, StoredDoc, analysis, collect};

/// The file tantivy commits to. Its presence is what makes a directory an index.
const META_FILE: &str = "meta.json";

/// A handle on the index: cheap to clone, safe to use from many threads at once while the
/// [`crate::IndexWriter`] commits on another.
#[derive(Clone)]
pub struct SearchIndex {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub dir: PathBuf,
    pub index: Index,
    /// Reloaded explicitly after each commit (manual policy), so a search that starts after
    /// `commit` returns sees the change, with no file watcher thread.
    pub reader: IndexReader,
    pub fields: Fields,
    pub queries: QueryBuilder,
    /// Whether an [`crate::IndexWriter`] of this handle is alive. tantivy's lock file also
    /// refuses a second writer, this makes the refusal immediate and explicit in-process.
    pub writer_alive: AtomicBool,
    /// Sources' document maps, handed out again while the segments they were read from are
    /// the ones the reader shows.
    pub docs_cache: Mutex<DocsCache>,
}

/// Figures for the admin console. Not permission-trimmed: admins only.
#[derive(Clone, Debug, Serialize)]
pub struct IndexStats {
    /// Live documents.
    pub documents: u64,
    /// Live documents per source.
    pub per_source: BTreeMap<String, u64>,
    /// Bytes on disk, including files not yet garbage collected.
    pub size_bytes: u64,
    /// Segments currently searched.
    pub segments: usize,
    /// Opstamp of the last commit.
    pub last_commit_opstamp: u64,
    /// When the last commit was made (from its payload; `None` before the first commit).
    pub last_commit_at: Option<DateTime<Utc>>,
}

/// What each commit stores in tantivy's commit payload (inside `meta.json`, written
/// atomically with the commit itself): every source's cursor, so that after a crash no
/// cursor is ahead of what was indexed.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct CommitPayload {
    #[serde(default)]
    pub cursors: BTreeMap<String, String>,
    #[serde(default)]
    pub committed_at: Option<DateTime<Utc>>,
}

impl CommitPayload {
    pub(crate) fn parse(dir: &Path, raw: Option<&str>) -> CommitPayload {
        let Some(raw) = raw else {
            return CommitPayload::default();
        };
        serde_json::from_str(raw).unwrap_or_else(|error| {
            // Only this crate writes the payload, so this means a foreign or very old index.
            // Losing the cursors costs a full sync of each source, not data.
            warn!(path = %dir.display(), %error, "commit payload is unreadable, cursors reset");
            CommitPayload::default()
        })
    }
}

/// External id → fingerprint (if it has one) of a source's documents. Keyed with a fast
/// non-cryptographic hash: the ids come from the index, not from users, and an unchanged
/// re-sync looks each one up. Each entry also has a place (`get_full`, `get_index`), by
/// which a sync marks the documents it saw without hashing or keeping their ids again.
pub type DocsById = indexmap::IndexMap<String, Option<String>, rustc_hash::FxBuildHasher>;

/// A set of external ids, with the same fast hash: the ids a sync has seen, one insert per
/// document.
pub type IdSet = rustc_hash::FxHashSet<String>;

impl SearchIndex {
    /// Opens the index in `dir`, creating the directory and an empty index if missing.
    ///
    /// A damaged index (unreadable `meta.json`, missing or truncated segment files, segment
    /// files without a `meta.json`, another schema) gives [`IndexError::Corrupt`].
    ///
    /// Open once per process and clone the handle: a commit reloads the searcher of its own
    /// handle (and its clones), not of a second handle opened on the same directory.
    pub fn open(dir: &Path) -> Result<SearchIndex, IndexError> {
        fs::create_dir_all(dir).map_err(|e| IndexError::io(dir, e))?;
        let (schema, fields) = schema::build();
        let meta = dir.join(META_FILE);
        let index = if meta.exists() {
            let index = Index::open(directory(dir)?).map_err(|e| damaged(dir, e))?;
            if index.schema() != schema {
                return Err(corrupt(
                    dir,
                    "the index was written with another schema (another version of samle)",
                ));
            }
            index
        } else {
            if let Some(stray) = stray_file(dir)? {
                return Err(corrupt(
                    dir,
                    format!("{META_FILE} is missing but {stray} is present"),
                ));
            }
            info!(path = %dir.display(), "creating empty search index");
            Index::create(directory(dir)?, schema, tantivy::IndexSettings::default())?
        };
        // Analysers live in memory only: without this the first query or document would
        // fail with an unknown tokenizer.
        analysis::register(&index);
        check_segment_files(dir, &index)?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(|e| damaged(dir, e))?;
        let queries = QueryBuilder::new(&index, &fields)?;
        Ok(SearchIndex {
            inner: Arc::new(Inner {
                dir: dir.to_path_buf(),
                index,
                reader,
                fields,
                queries,
                writer_alive: AtomicBool::new(false),
                docs_cache: Mutex::new(DocsCache::new(DOCS_CACHE_LIMIT)),
            }),
        })
    }

    /// Opens the index, or, if it is damaged, moves it aside to `<dir>.damaged-<unix ts>`
    /// and starts an empty one (`true` in the result). The connectors refill it: the empty
    /// index has no cursors, so each source is read in full.
    pub fn open_or_rebuild(dir: &Path) -> Result<(SearchIndex, bool), IndexError> {
        match SearchIndex::open(dir) {
            Ok(index) => Ok((index, false)),
            Err(IndexError::Corrupt { reason, .. }) => {
                let aside = aside_path(dir)?;
                warn!(
                    path = %dir.display(),
                    moved_to = %aside.display(),
                    %reason,
                    "search index is damaged: moving it aside and starting an empty index, \
                     every source will be synced in full"
                );
                fs::rename(dir, &aside).map_err(|e| IndexError::io(dir, e))?;
                Ok((SearchIndex::open(dir)?, true))
            }
            Err(other) => Err(other),
        }
    }

    /// Searches as `viewer`: only documents whose access list names one of the viewer's
    /// principals are counted, faceted, returned or quoted.
    pub fn search(
        &self,
        viewer: &Principals,
        req: &SearchRequest,
    ) -> Result<SearchResults, IndexError> {
        let inner = &self.inner;
        search::search(
            &inner.reader.searcher(),
            &inner.fields,
            &inner.queries,
            viewer,
            req,
        )
    }

    /// One document by id, if it exists and `viewer` may see it (`None` otherwise, so that
    /// a refusal does not tell that the document exists).
    pub fn get(
        &self,
        viewer: &Principals,
        source: &str,
        external_id: &str,
    ) -> Result<Option<StoredDoc>, IndexError> {
        let f = &self.inner.fields;
        let id = TermQuery::new(
            Term::from_field_text(f.id, &schema::doc_id(source, external_id)),
            IndexRecordOption::Basic,
        );
        let query = BooleanQuery::new(vec![
            (
                Occur::Must,
                Box::new(ConstScoreQuery::new(Box::new(id), 0.0)) as Box<dyn Query>,
            ),
            (Occur::Must, acl_filter(f, viewer)),
        ]);
        let searcher = self.inner.reader.searcher();
        let top = searcher.search(&query, &TopDocs::with_limit(1).order_by_score())?;
        match top.first() {
            Some((_, address)) => {
                let doc: TantivyDocument = searcher.doc(*address)?;
                Ok(Some(schema::to_stored(f, &doc)))
            }
            None => Ok(None),
        }
    }

    /// Every source's cursor, as of the last commit.
    pub fn cursors(&self) -> Result<BTreeMap<String, String>, IndexError> {
        Ok(self.payload()?.cursors)
    }

    /// One source's cursor, as of the last commit.
    pub fn cursor(&self, source: &str) -> Result<Option<String>, IndexError> {
        Ok(self.payload()?.cursors.remove(source))
    }

    /// The external ids of a source's documents, as of the last commit.
    pub fn source_ids(&self, source: &str) -> Result<HashSet<String>, IndexError> {
        Ok(self
            .source_docs(source, false)?
            .into_iter()
            .map(|(id, _)| id)
            .collect())
    }

    /// External id → fingerprint of a source's documents that have one, as of the last
    /// commit. Read from columns, so a source of tens of thousands of documents is quick.
    pub fn fingerprints(&self, source: &str) -> Result<HashMap<String, String>, IndexError> {
        Ok(self
            .source_docs(source, true)?
            .into_iter()
            .filter_map(|(id, fp)| fp.map(|fp| (id, fp)))
            .collect())
    }

    /// External id → fingerprint (if it has one) of every document of a source, as of the
    /// last commit: what a sync starts from, in one pass over the source's documents. The
    /// same map is handed out again until a commit changes the index (see `docs_cache`).
    pub fn source_docs_by_id(&self, source: &str) -> Result<Arc<DocsById>, IndexError> {
        let searcher = self.inner.reader.searcher();
        let segments = searcher.generation().segments();
        if let Some(docs) = self.inner.docs_cache().get(source, segments) {
            return Ok(docs);
        }
        let docs: Arc<DocsById> = Arc::new(
            collect::ids_and_fingerprints(&searcher, &self.inner.source_query(source), true)?
                .into_iter()
                .collect(),
        );
        self.inner
            .docs_cache()
            .put(source, segments.clone(), Arc::clone(&docs));
        Ok(docs)
    }

    /// Figures for the admin console.
    pub fn stats(&self) -> Result<IndexStats, IndexError> {
        let searcher = self.inner.reader.searcher();
        let mut by_source = FacetCollector::for_field(FACETS_FIELD);
        by_source.add_facet(Facet::from_path([FACET_SOURCE]));
        let counts = searcher.search(&AllQuery, &by_source)?;
        let per_source = counts
            .get(Facet::from_path([FACET_SOURCE]))
            .filter_map(|(facet, count)| {
                facet
                    .to_path()
                    .last()
                    .map(|source| ((*source).to_string(), count))
            })
            .collect();
        let metas = self.inner.index.load_metas()?;
        let payload = CommitPayload::parse(&self.inner.dir, metas.payload.as_deref());
        Ok(IndexStats {
            documents: searcher.num_docs(),
            per_source,
            size_bytes: dir_size(&self.inner.dir)?,
            segments: searcher.segment_readers().len(),
            last_commit_opstamp: metas.opstamp,
            last_commit_at: payload.committed_at,
        })
    }

    pub(crate) fn payload(&self) -> Result<CommitPayload, IndexError> {
        let metas = self.inner.index.load_metas()?;
        Ok(CommitPayload::parse(
            &self.inner.dir,
            metas.payload.as_deref(),
        ))
    }

    fn source_docs(
        &self,
        source: &str,
        with_fingerprints: bool,
    ) -> Result<Vec<(String, Option<String>)>, IndexError> {
        self.inner.source_docs(source, with_fingerprints)
    }
}

impl Inner {
    /// `(external_id, fingerprint)` of a source's committed documents.
    pub(crate) fn source_docs(
        &self,
        source: &str,
        with_fingerprints: bool,
    ) -> Result<Vec<(String, Option<String>)>, IndexError> {
        collect::ids_and_fingerprints(
            &self.reader.searcher(),
            &self.source_query(source),
            with_fingerprints,
        )
    }

    /// Every document of a source.
    fn source_query(&self, source: &str) -> TermQuery {
        TermQuery::new(
            Term::from_field_text(self.fields.source, source),
            IndexRecordOption::Basic,
        )
    }

    /// The document maps' cache. It is consistent after every call, so a panic elsewhere
    /// while it was held leaves nothing to repair.
    pub(crate) fn docs_cache(&self) -> MutexGuard<'_, DocsCache> {
        self.docs_cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl std::fmt::Debug for SearchIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SearchIndex")
            .field("dir", &self.inner.dir)
            .finish_non_exhaustive()
    }
}

fn corrupt(dir: &Path, reason: impl Into<String>) -> IndexError {
    IndexError::Corrupt {
        path: dir.to_path_buf(),
        reason: reason.into(),
    }
}

/// Sorts an error met while opening into damage (rebuilding helps) or an environment
/// problem such as permissions or a held lock (rebuilding would not help, or would hide it).
fn damaged(dir: &Path, error: TantivyError) -> IndexError {
    let environment = match &error {
        TantivyError::LockFailure(..) | TantivyError::OpenDirectoryError(_) => true,
        TantivyError::IoError(e) => is_environment(e),
        TantivyError::OpenReadError(OpenReadError::IoError { io_error, .. }) => {
            is_environment(io_error)
        }
        _ => false,
    };
    if environment {
        IndexError::Engine(error)
    } else {
        corrupt(dir, error.to_string())
    }
}

fn is_environment(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::PermissionDenied | io::ErrorKind::OutOfMemory | io::ErrorKind::StorageFull
    )
}

/// A file that only an existing index would have. tantivy's own bookkeeping files start with
/// a dot and may be left by a crash during creation, before `meta.json` was written.
fn stray_file(dir: &Path) -> Result<Option<String>, IndexError> {
    for entry in fs::read_dir(dir).map_err(|e| IndexError::io(dir, e))? {
        let entry = entry.map_err(|e| IndexError::io(dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with('.') {
            return Ok(Some(name));
        }
    }
    Ok(None)
}

/// Checks that every file the last commit refers to is there. tantivy opens segment files
/// lazily in places, so a missing file would otherwise surface as a failing search later.
fn check_segment_files(dir: &Path, index: &Index) -> Result<(), IndexError> {
    let metas = index.load_metas().map_err(|e| damaged(dir, e))?;
    for segment in &metas.segments {
        let mut components = vec![
            SegmentComponent::Postings,
            SegmentComponent::Positions,
            SegmentComponent::Terms,
            SegmentComponent::Store,
            SegmentComponent::FastFields,
            SegmentComponent::FieldNorms,
        ];
        if segment.has_deletes() {
            components.push(SegmentComponent::Delete);
        }
        for component in components {
            let file = segment.relative_path(component);
            if !dir.join(&file).is_file() {
                return Err(corrupt(
                    dir,
                    format!("segment file {} is missing", file.display()),
                ));
            }
        }
    }
    Ok(())
}

/// `<dir>.damaged-<unix ts>`, with a counter if that exists already.
fn aside_path(dir: &Path) -> Result<PathBuf, IndexError> {
    let name = dir.file_name().ok_or_else(|| {
        IndexError::io(
            dir,
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "index path has no final component",
            ),
        )
    })?;
    let ts = Utc::now().timestamp();
    let mut n = 0;
    loop {
        let mut aside = name.to_os_string();
        aside.push(format!(".damaged-{ts}"));
        if n > 0 {
            aside.push(format!("-{n}"));
        }
        let path = dir.with_file_name(aside);
        if !path.exists() {
            return Ok(path);
        }
        n += 1;
    }
}

fn dir_size(dir: &Path) -> Result<u64, IndexError> {
    let mut total = 0;
    for entry in fs::read_dir(dir).map_err(|e| IndexError::io(dir, e))? {
        let entry = entry.map_err(|e| IndexError::io(dir, e))?;
        // A file may be garbage collected between listing and stat: skip it.
        if let Ok(meta) = entry.metadata()
            && meta.is_file()
        {
            total += meta.len();
        }
    }
    Ok(total)
}

fn directory(dir: &Path) -> Result<IndexDirectory, IndexError> {
    IndexDirectory::open(dir).map_err(|e| IndexError::io(dir, e))
}
