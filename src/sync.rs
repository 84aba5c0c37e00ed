//! Sync: runs a source's connector and feeds its changes to the index.
//!
//! One dedicated thread owns the index writer ([`Indexer`]); every run streams its changes to
//! it as they arrive, so analysis runs while the connector reads on. Commits make them
//! searchable and save the source's progress: every `commit_interval`, and at the end of the
//! run. A connector's checkpoint cursor goes into the first commit after it, never earlier, so
//! after a crash the cursor never runs ahead of what was indexed. Deletion of documents a
//! source no longer lists is mark-and-sweep, and only after a complete, successful traversal;
//! the index's guard refuses to delete more than a share of a source in one run. A failing
//! source never deletes anything.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use samle_connectors::{
    Change, ChangeSink, ConnectorError, Document, KnownDoc, KnownDocs, RunContext,
};
use samle_index::{IdSet, IndexDoc, IndexWriter, Lang, SearchIndex, SweepOutcome};
use tokio::sync::{mpsc, oneshot};

use crate::config::{Config, SourceConfig};
use crate::store::{RunCounts, RunOutcome, RunStatus, Store};

/// Why a run could not start or did not finish.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("unknown source `{0}`")]
    UnknownSource(String),
    #[error("source `{0}` is already running")]
    AlreadyRunning(String),
    #[error("source `{0}` is disabled in the configuration")]
    Disabled(String),
    #[error("the index writer has stopped")]
    WriterGone,
    /// A commit failed (for this run or another) and the writer rolled back, discarding
    /// documents this run had sent; the run must not save its progress.
    #[error(
        "the index writer discarded this run's pending documents after a failed commit; the next run reads them again"
    )]
    Discarded,
    #[error(transparent)]
    Index(#[from] samle_index::IndexError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

enum WriteOp {
    /// A document the run knows is not in the index yet: no delete of an older version.
    Add(Box<IndexDoc>),
    Upsert(Box<IndexDoc>),
    Delete {
        source: String,
        external_id: String,
    },
}

enum WriterCmd {
    /// Apply one operation; it becomes visible with the next commit.
    Apply(WriteOp),
    /// Commit everything applied; with a cursor, store it in the same commit.
    Commit {
        cursor: Option<(String, String)>,
        generation: u64,
        reply: oneshot::Sender<Result<(), SyncError>>,
    },
    /// Commit, sweep the source's unseen documents (guarded), and commit.
    Finish {
        source: String,
        seen: IdSet,
        max_share: f64,
        cursor: Option<String>,
        generation: u64,
        reply: oneshot::Sender<Result<SweepOutcome, SyncError>>,
    },
}

/// Operations queued for the writer thread before a sender waits. A full sync is limited by
/// analysis, not by this; the bound only keeps a fast connector from filling memory.
const WRITER_QUEUE: usize = 1024;

/// The handle to the single index writer thread.
#[derive(Clone)]
pub struct Indexer {
    tx: mpsc::Sender<WriterCmd>,
    index: SearchIndex,
    /// Counts the writer's rollbacks. Every run streams into the same writer, so a rollback
    /// (after a failed commit) also discards what other runs applied since their last commit:
    /// a run whose generation changed must not commit its cursor as if its documents were in.
    generation: Arc<AtomicU64>,
}

impl Indexer {
    /// Takes the index's writer (failing if another process holds it) and starts its thread.
    pub fn start(index: SearchIndex, heap_bytes: usize) -> Result<Indexer, SyncError> {
        let writer = index.writer(heap_bytes)?;
        let (tx, rx) = mpsc::channel::<WriterCmd>(WRITER_QUEUE);
        let generation = Arc::new(AtomicU64::new(0));
        let thread_generation = Arc::clone(&generation);
        std::thread::Builder::new()
            .name("samle-index-writer".into())
            .spawn(move || writer_loop(writer, rx, &thread_generation))
            .map_err(|_| SyncError::WriterGone)?;
        Ok(Indexer {
            tx,
            index,
            generation,
        })
    }

    pub fn index(&self) -> &SearchIndex {
        &self.index
    }

    /// The writer's current generation: take it before the first [`Indexer::apply`] whose
    /// commit it will guard.
    fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    async fn apply(&self, op: WriteOp) -> Result<(), SyncError> {
        self.tx
            .send(WriterCmd::Apply(op))
            .await
            .map_err(|_| SyncError::WriterGone)
    }

    /// Commits what was applied. Fails if the writer rolled back since `generation`, which
    /// means some of what this caller applied was discarded.
    async fn commit(
        &self,
        cursor: Option<(String, String)>,
        generation: u64,
    ) -> Result<(), SyncError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(WriterCmd::Commit {
                cursor,
                generation,
                reply,
            })
            .await
            .map_err(|_| SyncError::WriterGone)?;
        rx.await.map_err(|_| SyncError::WriterGone)?
    }

    async fn finish(
        &self,
        source: &str,
        seen: IdSet,
        max_share: f64,
        cursor: Option<String>,
        generation: u64,
    ) -> Result<SweepOutcome, SyncError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(WriterCmd::Finish {
                source: source.to_string(),
                seen,
                max_share,
                cursor,
                generation,
                reply,
            })
            .await
            .map_err(|_| SyncError::WriterGone)?;
        rx.await.map_err(|_| SyncError::WriterGone)?
    }

    /// Indexes documents directly (demo seeding, tests, benchmarks) and commits.
    pub async fn upsert_all(&self, docs: Vec<IndexDoc>) -> Result<(), SyncError> {
        let generation = self.generation();
        for doc in docs {
            doc.validate()?;
            self.apply(WriteOp::Upsert(Box::new(doc))).await?;
        }
        self.commit(None, generation).await
    }
}

fn apply(writer: &mut IndexWriter, op: WriteOp) -> Result<(), samle_index::IndexError> {
    match op {
        WriteOp::Add(doc) => writer.add_new(*doc),
        WriteOp::Upsert(doc) => writer.upsert(*doc),
        WriteOp::Delete {
            source,
            external_id,
        } => writer.delete(&source, &external_id),
    }
}

fn writer_loop(mut writer: IndexWriter, mut rx: mpsc::Receiver<WriterCmd>, generation: &AtomicU64) {
    // The first error of an operation since the last commit: the commit reports it, and
    // rolls back, rather than committing a batch with a hole in it.
    let mut failed: Option<samle_index::IndexError> = None;
    // Whether anything was applied since the last commit. A commit with nothing to write and
    // no new cursor is skipped: an unchanged re-sync then writes nothing to the index.
    let mut dirty = false;
    let rollback = |writer: &mut IndexWriter| {
        let _ = writer.rollback();
        generation.fetch_add(1, Ordering::AcqRel);
    };
    // The loop ends when every `Indexer` handle is dropped; what was applied but not committed
    // is discarded with the writer, and tantivy's lock is released.
    while let Some(cmd) = rx.blocking_recv() {
        match cmd {
            WriterCmd::Apply(op) => {
                dirty = true;
                if failed.is_none()
                    && let Err(e) = apply(&mut writer, op)
                {
                    failed = Some(e);
                }
            }
            WriterCmd::Commit {
                cursor,
                generation: expected,
                reply,
            } => {
                let result = match failed.take() {
                    Some(e) => Err(e.into()),
                    None if generation.load(Ordering::Acquire) != expected => {
                        Err(SyncError::Discarded)
                    }
                    None if !dirty && cursor.is_none() => Ok(()),
                    None => writer
                        .commit(cursor.as_ref().map(|(s, c)| (s.as_str(), c.as_str())))
                        .map(|_| ())
                        .map_err(SyncError::from),
                };
                dirty = false;
                if result.is_err() {
                    rollback(&mut writer);
                }
                let _ = reply.send(result);
            }
            WriterCmd::Finish {
                source,
                seen,
                max_share,
                cursor,
                generation: expected,
                reply,
            } => {
                let result = match failed.take() {
                    Some(e) => Err(e.into()),
                    None if generation.load(Ordering::Acquire) != expected => {
                        Err(SyncError::Discarded)
                    }
                    // Commit what the run brought first, so the sweep counts against the
                    // source as it now is.
                    None => (if dirty {
                        writer.commit(None).map(|_| ())
                    } else {
                        Ok(())
                    })
                    .and_then(|()| writer.sweep(&source, &seen, max_share))
                    .and_then(|outcome| {
                        let deleted = matches!(outcome, SweepOutcome::Deleted(n) if n > 0);
                        if deleted || cursor.is_some() {
                            let cursor = cursor.as_deref().map(|c| (source.as_str(), c));
                            writer.commit(cursor).map(|_| outcome)
                        } else {
                            Ok(outcome)
                        }
                    })
                    .map_err(SyncError::from),
                };
                dirty = false;
                if result.is_err() {
                    rollback(&mut writer);
                }
                let _ = reply.send(result);
            }
        }
    }
}

/// A source's ids and fingerprints as of the last commit, read once, when first needed: by the
/// connector (as its [`KnownDocs`]) or by the run, whichever asks first. The run asks before it
/// applies its first change, so what is read never includes the run's own changes.
struct SourceState {
    index: SearchIndex,
    source: String,
    /// Shared with the blocking thread that reads it, so that a lookup made while it reads
    /// waits for that reading instead of starting another.
    read: Arc<OnceLock<Result<Known, String>>>,
}

/// External id → fingerprint, if the document has one; each entry's place is its slot.
#[derive(Clone)]
struct Known(Arc<samle_index::DocsById>);

impl Known {
    /// The slot of a known document.
    fn slot(&self, id: &str) -> Option<usize> {
        self.0.get_index_of(id)
    }
}

/// What a run has seen, for the sweep. The documents the source had when the run started
/// are marked by slot, a flag each: a re-sync that sees thousands of unchanged documents
/// hashes, stores and frees no id for them. The ids of documents the source did not have
/// are kept as ids.
#[derive(Default)]
struct Seen {
    /// One flag per known document; empty until the first mark.
    known: Vec<bool>,
    /// How many flags are set.
    known_seen: usize,
    new: IdSet,
}

impl Seen {
    fn mark_slot(&mut self, known: &Known, slot: usize) {
        if self.known.is_empty() {
            self.known = vec![false; known.0.len()];
        }
        if let Some(flag) = self.known.get_mut(slot)
            && !*flag
        {
            *flag = true;
            self.known_seen += 1;
        }
    }

    /// Marks a document by id. True when it is new to the source and seen for the first
    /// time in this run.
    fn mark_id(&mut self, known: &Known, id: &str) -> bool {
        match known.slot(id) {
            Some(slot) => {
                self.mark_slot(known, slot);
                false
            }
            None => !self.new.contains(id) && self.new.insert(id.to_owned()),
        }
    }

    /// A document the run deleted: a known one needs no sweeping (the delete removes it), a
    /// new one is no longer there.
    fn deleted(&mut self, known: &Known, id: &str) {
        match known.slot(id) {
            Some(slot) => self.mark_slot(known, slot),
            None => {
                self.new.remove(id);
            }
        }
    }

    /// Whether every document the source had when the run started was seen (or deleted).
    fn all_known(&self, known: &Known) -> bool {
        self.known_seen == known.0.len()
    }

    /// The ids seen, as the sweep takes them.
    fn into_ids(self, known: &Known) -> IdSet {
        let Seen {
            known: flags, new, ..
        } = self;
        let mut ids = new;
        ids.reserve(flags.iter().filter(|seen| **seen).count());
        for (slot, seen) in flags.into_iter().enumerate() {
            if seen && let Some((id, _)) = known.0.get_index(slot) {
                ids.insert(id.clone());
            }
        }
        ids
    }
}

impl SourceState {
    fn new(index: SearchIndex, source: &str) -> SourceState {
        SourceState {
            index,
            source: source.to_owned(),
            read: Arc::new(OnceLock::new()),
        }
    }

    fn read_now(index: &SearchIndex, source: &str) -> Result<Known, String> {
        index
            .source_docs_by_id(source)
            .map(Known)
            .map_err(|e| format!("cannot read the index: {e}"))
    }

    /// Reads the state on a blocking thread unless it has been read.
    async fn known(&self) -> Result<&Known, String> {
        if self.read.get().is_none() {
            let index = self.index.clone();
            let source = self.source.clone();
            let read = Arc::clone(&self.read);
            let done = tokio::task::spawn_blocking(move || {
                read.get_or_init(|| Self::read_now(&index, &source));
            })
            .await;
            if let Err(e) = done {
                // The reading panicked: nothing was stored, and nothing will be.
                let _ = self.read.set(Err(format!("internal error: {e}")));
            }
        }
        self.read_once()
    }

    fn read_once(&self) -> Result<&Known, String> {
        match self.read.get() {
            Some(Ok(known)) => Ok(known),
            Some(Err(e)) => Err(e.clone()),
            None => Err("the index was not read".to_owned()),
        }
    }
}

#[async_trait::async_trait]
impl KnownDocs for SourceState {
    async fn load(&self) -> Result<(), ConnectorError> {
        self.known()
            .await
            .map(|_| ())
            .map_err(ConnectorError::Internal)
    }

    fn find(&self, external_id: &str) -> Option<KnownDoc<'_>> {
        // Without a `load` first (a connector on a blocking thread), read in place.
        let known = self
            .read
            .get_or_init(|| Self::read_now(&self.index, &self.source));
        let (slot, _, fingerprint) = known.as_ref().ok()?.0.get_full(external_id)?;
        Some(KnownDoc {
            fingerprint: fingerprint.as_deref(),
            slot: u32::try_from(slot).ok(),
        })
    }

    fn for_each(&self, each: &mut dyn FnMut(&str, &str)) {
        let known = self
            .read
            .get_or_init(|| Self::read_now(&self.index, &self.source));
        if let Ok(known) = known {
            for (id, fingerprint) in known.0.iter() {
                if let Some(fingerprint) = fingerprint {
                    each(id, fingerprint);
                }
            }
        }
    }
}

/// The run's cursor bookkeeping: the cursor last committed and the newest checkpoint not yet
/// committed. A checkpoint that repeats the committed cursor leaves nothing to commit, even
/// after other checkpoints (a crawler's mid-run cursors) came between.
#[derive(Debug)]
struct Cursors {
    committed: Option<String>,
    pending: Option<String>,
}

impl Cursors {
    fn new(committed: Option<String>) -> Cursors {
        Cursors {
            committed,
            pending: None,
        }
    }

    /// Everything before this checkpoint has been applied.
    fn checkpoint(&mut self, cursor: String) {
        self.pending = (self.committed.as_ref() != Some(&cursor)).then_some(cursor);
    }

    /// The cursor the next commit should carry, if any.
    fn pending(&self) -> Option<&str> {
        self.pending.as_deref()
    }

    /// The pending cursor went into a commit.
    fn committed(&mut self) {
        if let Some(cursor) = self.pending.take() {
            self.committed = Some(cursor);
        }
    }
}

/// What a run did, reported while it goes and at the end.
#[derive(Clone, Debug, Default)]
pub struct Progress {
    pub source: String,
    pub counts: RunCounts,
    pub elapsed: Duration,
}

impl Progress {
    pub fn rate(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.counts.seen as f64 / secs
        } else {
            0.0
        }
    }
}

/// The end of a run.
#[derive(Clone, Debug)]
pub struct RunReport {
    pub run_id: i64,
    pub source: String,
    pub status: RunStatus,
    pub counts: RunCounts,
    pub elapsed: Duration,
    pub message: Option<String>,
}

/// Runs sources: one run per source at a time.
#[derive(Clone)]
pub struct SyncEngine {
    config: Arc<Config>,
    indexer: Indexer,
    store: Store,
    running: Arc<Mutex<HashSet<String>>>,
}

struct RunningGuard {
    running: Arc<Mutex<HashSet<String>>>,
    source: String,
}

impl Drop for RunningGuard {
    fn drop(&mut self) {
        if let Ok(mut set) = self.running.lock() {
            set.remove(&self.source);
        }
    }
}

/// Documents whose access list is empty are indexed (so they can be found by an admin's
/// explain tool later) but visible to nobody; each run reports them.
const EMPTY_ACL_MESSAGE: &str = "no access list: the document is visible to nobody; map its permission to principals in the source's configuration";

impl SyncEngine {
    pub fn new(config: Arc<Config>, indexer: Indexer, store: Store) -> SyncEngine {
        SyncEngine {
            config,
            indexer,
            store,
            running: Arc::default(),
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn is_running(&self, source: &str) -> bool {
        self.running
            .lock()
            .map(|s| s.contains(source))
            .unwrap_or(false)
    }

    fn claim(&self, source: &str) -> Result<RunningGuard, SyncError> {
        let mut set = self
            .running
            .lock()
            .map_err(|_| SyncError::AlreadyRunning(source.to_string()))?;
        if !set.insert(source.to_string()) {
            return Err(SyncError::AlreadyRunning(source.to_string()));
        }
        Ok(RunningGuard {
            running: self.running.clone(),
            source: source.to_string(),
        })
    }

    /// Runs one source to the end. `progress` is called after every change.
    pub async fn run(
        &self,
        source_id: &str,
        trigger: &str,
        full: bool,
        progress: &(dyn Fn(&Progress) + Send + Sync),
    ) -> Result<RunReport, SyncError> {
        let source = self
            .config
            .source(source_id)
            .ok_or_else(|| SyncError::UnknownSource(source_id.to_string()))?
            .clone();
        if !source.enabled && trigger != "cli" {
            return Err(SyncError::Disabled(source.id));
        }
        let _guard = self.claim(&source.id)?;
        let run_id = self.store.run_started(&source.id, trigger, full).await?;
        let started = Instant::now();
        tracing::info!(source = %source.id, run_id, trigger, full, "sync started");

        let result = self
            .run_inner(&source, run_id, full, started, progress)
            .await;
        let elapsed = started.elapsed();
        let (status, counts, message) = match result {
            Ok((counts, message)) => (
                if message.is_some() {
                    RunStatus::Failed
                } else {
                    RunStatus::Ok
                },
                counts,
                message,
            ),
            Err((counts, message)) => (RunStatus::Failed, counts, Some(message)),
        };
        let outcome = RunOutcome {
            status,
            counts: counts.clone(),
            message: message.clone(),
        };
        self.store.run_finished(run_id, &outcome).await?;
        metrics::histogram!("samle_sync_run_seconds", "source" => source.id.clone())
            .record(elapsed.as_secs_f64());
        metrics::counter!("samle_sync_runs_total", "source" => source.id.clone(), "status" => status.as_str())
            .increment(1);
        match &message {
            Some(m) => {
                tracing::warn!(source = %source.id, run_id, error = %m, ?counts, "sync failed")
            }
            None => {
                tracing::info!(source = %source.id, run_id, ?counts, elapsed_ms = elapsed.as_millis() as u64, "sync finished")
            }
        }
        Ok(RunReport {
            run_id,
            source: source.id,
            status,
            counts,
            elapsed,
            message,
        })
    }

    /// Returns the counts and, for a run that finished but must be reported as failed (the
    /// deletion guard), a message; `Err` for a run that failed.
    async fn run_inner(
        &self,
        source: &SourceConfig,
        run_id: i64,
        full: bool,
        started: Instant,
        progress: &(dyn Fn(&Progress) + Send + Sync),
    ) -> Result<(RunCounts, Option<String>), (RunCounts, String)> {
        let mut counts = RunCounts::default();
        let connector = crate::sources::build(&self.config, source).map_err(|e| {
            (
                RunCounts::default(),
                format!("cannot start the connector: {e}"),
            )
        })?;

        let index = self.indexer.index().clone();
        let source_id = source.id.clone();
        let cursor = tokio::task::spawn_blocking(move || index.cursor(&source_id))
            .await
            .map_err(|e| (RunCounts::default(), format!("internal error: {e}")))?
            .map_err(|e| (RunCounts::default(), format!("cannot read the index: {e}")))?;
        // The source's ids and fingerprints are read when the connector or this loop first
        // needs them, and before this run applies anything: as of the last commit, like the
        // cursor. An unchanged feed (a 304) needs neither.
        let state = Arc::new(SourceState::new(self.indexer.index().clone(), &source.id));

        // A checkpoint that repeats the committed cursor needs no commit of its own.
        let mut cursors = Cursors::new(cursor.clone());
        let (tx, mut rx) = mpsc::channel::<Change>(256);
        let ctx = RunContext {
            source_id: source.id.clone(),
            cursor: if full { None } else { cursor },
            full,
            known: state.clone(),
            sink: ChangeSink::new(tx),
        };
        let task = tokio::spawn(async move { connector.run(ctx).await });

        let mut seen = Seen::default();
        let mut traversal_complete = false;
        let mut reported = Progress {
            source: source.id.clone(),
            ..Progress::default()
        };
        let commit_interval = self.config.index.commit_interval;
        let generation = self.indexer.generation();
        let mut last_commit = Instant::now();
        let mut failure: Option<String> = None;

        while let Some(change) = rx.recv().await {
            let op = match change {
                Change::Checkpoint { cursor } => {
                    // Everything before it has been applied: the next commit may carry it.
                    cursors.checkpoint(cursor);
                    None
                }
                Change::TraversalComplete => {
                    traversal_complete = true;
                    None
                }
                change => {
                    // Documents are counted and marked against what the index held when the
                    // run started: read it before the first change is applied.
                    let existing = match state.known().await {
                        Ok(existing) => existing,
                        Err(e) => {
                            failure = Some(e);
                            break;
                        }
                    };
                    let op = self
                        .document_change(
                            change,
                            existing,
                            &mut seen,
                            &mut counts,
                            (&source.id, run_id),
                        )
                        .await;
                    match op {
                        Ok(op) => op,
                        Err(e) => {
                            failure = Some(e);
                            break;
                        }
                    }
                }
            };
            if let Some(op) = op
                && let Err(e) = self.indexer.apply(op).await
            {
                failure = Some(format!("cannot write to the index: {e}"));
                break;
            }
            if last_commit.elapsed() >= commit_interval {
                let cursor = cursors.pending().map(|c| (source.id.clone(), c.to_owned()));
                if let Err(e) = self.indexer.commit(cursor, generation).await {
                    failure = Some(format!("cannot write to the index: {e}"));
                    break;
                }
                cursors.committed();
                last_commit = Instant::now();
            }
            reported.counts = counts.clone();
            reported.elapsed = started.elapsed();
            progress(&reported);
        }
        // Dropping the receiver stops a connector that is still sending (after a failure).
        drop(rx);
        let connector_result = task.await;
        let connector_error = match connector_result {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(format!("the source failed: {e}")),
            Err(e) => Some(format!("the connector crashed: {e}")),
        };
        let failure = failure.or(connector_error);

        if let Some(message) = failure {
            drop_in_background(seen);
            // What the source delivered before it failed is good content: keep it, with the
            // last checkpoint it reached, but delete nothing.
            let cursor = cursors.pending().map(|c| (source.id.clone(), c.to_owned()));
            if let Err(e) = self.indexer.commit(cursor, generation).await {
                tracing::error!(source = %source.id, error = %e, "cannot commit after a failed run");
            }
            return Err((counts, message));
        }

        // A complete traversal that saw every document the source had when it started leaves
        // nothing for the sweep to find, whatever it added: those documents are all still
        // there (one run per source at a time), so reading them again is skipped.
        let sweep = if traversal_complete {
            let existing = match state.known().await {
                Ok(existing) => existing.clone(),
                Err(e) => return Err((counts, e)),
            };
            match sweep_input(existing, seen).await {
                Ok(sweep) => sweep,
                Err(e) => return Err((counts, e)),
            }
        } else {
            drop_in_background(seen);
            None
        };
        if traversal_complete && sweep.is_none() {
            tracing::debug!(source = %source.id, "every document was seen; nothing to sweep");
        }

        let mut message = None;
        if let Some(seen) = sweep {
            match self
                .indexer
                .finish(
                    &source.id,
                    seen,
                    source.max_delete_share,
                    cursors.pending().map(str::to_owned),
                    generation,
                )
                .await
            {
                Ok(SweepOutcome::Deleted(n)) => counts.deleted += n,
                Ok(SweepOutcome::Refused {
                    would_delete,
                    total,
                }) => {
                    let m = format!(
                        "deletion guard: the source no longer lists {would_delete} of its {total} documents, more than the allowed {:.0}%; nothing was deleted (check the source, then run a full sync or raise max_delete_share)",
                        source.max_delete_share * 100.0
                    );
                    self.record_error(run_id, None, &m).await;
                    message = Some(m);
                }
                Err(e) => return Err((counts, format!("cannot write to the index: {e}"))),
            }
        } else {
            let cursor = cursors.pending().map(|c| (source.id.clone(), c.to_owned()));
            if let Err(e) = self.indexer.commit(cursor, generation).await {
                return Err((counts, format!("cannot write to the index: {e}")));
            }
        }
        reported.counts = counts.clone();
        reported.elapsed = started.elapsed();
        progress(&reported);
        Ok((counts, message))
    }

    /// Counts and marks one change about documents, and gives the write it needs, if any.
    /// `Err` fails the run: the connector named a document slot that does not exist.
    async fn document_change(
        &self,
        change: Change,
        existing: &Known,
        seen: &mut Seen,
        counts: &mut RunCounts,
        (source, run_id): (&str, i64),
    ) -> Result<Option<WriteOp>, String> {
        Ok(match change {
            Change::Upsert(doc) => {
                counts.seen += 1;
                let doc = to_index_doc(source, *doc);
                if let Err(e) = doc.validate() {
                    // The connector's mistake, about this document only; an indexed older
                    // version stays, as for a file that cannot be read.
                    counts.failed += 1;
                    self.record_error(run_id, Some(&doc.external_id), &e.to_string())
                        .await;
                    seen.mark_id(existing, &doc.external_id);
                    return Ok(None);
                }
                if existing.slot(&doc.external_id).is_some() {
                    counts.updated += 1;
                } else {
                    counts.added += 1;
                }
                if doc.acl.is_empty() {
                    self.record_error(run_id, Some(&doc.external_id), EMPTY_ACL_MESSAGE)
                        .await;
                }
                // A document that was not in the index when the run started, and is sent
                // for the first time in it, has no older version to replace.
                if seen.mark_id(existing, &doc.external_id) {
                    Some(WriteOp::Add(Box::new(doc)))
                } else {
                    Some(WriteOp::Upsert(Box::new(doc)))
                }
            }
            Change::Unchanged { external_id } => {
                counts.seen += 1;
                counts.unchanged += 1;
                seen.mark_id(existing, &external_id);
                None
            }
            Change::UnchangedMany { external_ids } => {
                let n = external_ids.len() as u64;
                counts.seen += n;
                counts.unchanged += n;
                for id in &external_ids {
                    seen.mark_id(existing, id);
                }
                None
            }
            Change::UnchangedKnown { slots } => {
                let n = slots.len() as u64;
                let total = existing.0.len();
                for slot in slots {
                    let slot = slot as usize;
                    if slot >= total {
                        return Err(format!(
                            "internal error: the connector named known document {slot}, but the source has {total}"
                        ));
                    }
                    seen.mark_slot(existing, slot);
                }
                counts.seen += n;
                counts.unchanged += n;
                None
            }
            Change::Delete { external_id } => {
                if existing.slot(&external_id).is_some() {
                    counts.deleted += 1;
                }
                seen.deleted(existing, &external_id);
                Some(WriteOp::Delete {
                    source: source.to_owned(),
                    external_id,
                })
            }
            Change::Failed { external_id, error } => {
                counts.seen += 1;
                counts.failed += 1;
                // The old indexed version, if any, stays: a file that cannot be read today
                // is not a file that was deleted.
                seen.mark_id(existing, &external_id);
                self.record_error(run_id, Some(&external_id), &error).await;
                None
            }
            Change::Checkpoint { .. } | Change::TraversalComplete => None,
        })
    }

    async fn record_error(&self, run_id: i64, document: Option<&str>, message: &str) {
        if let Err(e) = self.store.run_error(run_id, document, message).await {
            tracing::error!(run_id, error = %e, "cannot record a sync error");
        }
    }
}

/// The index keeps dates to the second (that is what it sorts by); storing the same
/// precision keeps what is shown and how it is sorted in agreement.
fn to_seconds(d: chrono::DateTime<chrono::Utc>) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(d.timestamp(), 0).unwrap_or(d)
}

/// The ids the sweep must keep, or `None` when every document the source had was seen and
/// there is nothing to sweep. Worked out on a blocking thread: a large source means a
/// million flags to read, and perhaps as many ids to copy or free, which would hold up the
/// async threads the web server shares. The answer comes as soon as it is known; a set no
/// longer needed is freed after it.
async fn sweep_input(existing: Known, seen: Seen) -> Result<Option<IdSet>, String> {
    let (tx, rx) = oneshot::channel();
    tokio::task::spawn_blocking(move || {
        if seen.all_known(&existing) {
            let _ = tx.send(None);
            drop(seen);
        } else {
            let _ = tx.send(Some(seen.into_ids(&existing)));
        }
    });
    rx.await
        .map_err(|_| "internal error: the check for unseen documents stopped".to_owned())
}

/// Frees what a run saw on a blocking thread: a first sync's ids can be a million strings.
fn drop_in_background(seen: Seen) {
    tokio::task::spawn_blocking(move || drop(seen));
}

/// Converts a connector's document into the index's, with the source's id.
pub fn to_index_doc(source: &str, doc: Document) -> IndexDoc {
    IndexDoc {
        source: source.to_string(),
        external_id: doc.external_id,
        kind: doc.kind,
        title: doc.title,
        body: doc.body,
        url: doc.url,
        author: doc.author,
        language: doc.language.as_deref().and_then(Lang::parse),
        created: doc.created.map(to_seconds),
        updated: doc.updated.map(to_seconds),
        acl: doc.acl,
        tags: doc.tags,
        fingerprint: doc.fingerprint,
        properties: doc.properties,
    }
}

/// Where the scheduler keeps the time of the next run per source (for the status pages).
pub type NextRuns = Arc<Mutex<HashMap<String, chrono::DateTime<chrono::Utc>>>>;

/// Starts one task per enabled source that runs it on its schedule (and at start-up when
/// configured). The tasks end when `shutdown` fires.
pub fn spawn_scheduler(
    engine: SyncEngine,
    next_runs: NextRuns,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut handles = Vec::new();
    for source in engine.config().sources.clone() {
        if !source.enabled {
            continue;
        }
        let engine = engine.clone();
        let next_runs = next_runs.clone();
        let mut shutdown = shutdown.clone();
        handles.push(tokio::spawn(async move {
            let mut first = source.run_on_start;
            loop {
                if first {
                    first = false;
                    run_logged(&engine, &source.id, "startup").await;
                    continue;
                }
                let now = chrono::Utc::now();
                let Some(next) = source.schedule.next_after(now) else {
                    if let Ok(mut m) = next_runs.lock() {
                        m.remove(&source.id);
                    }
                    // A manual source waits for shutdown only.
                    let _ = shutdown.changed().await;
                    return;
                };
                if let Ok(mut m) = next_runs.lock() {
                    m.insert(source.id.clone(), next);
                }
                let wait = (next - now).to_std().unwrap_or(Duration::from_secs(1));
                tokio::select! {
                    _ = tokio::time::sleep(wait) => run_logged(&engine, &source.id, "schedule").await,
                    _ = shutdown.changed() => return,
                }
            }
        }));
    }
    // Keep the receiver alive for the clones above.
    let _ = shutdown.borrow_and_update();
    handles
}

async fn run_logged(engine: &SyncEngine, source: &str, trigger: &str) {
    match engine.run(source, trigger, false, &|_| {}).await {
        Ok(_) => {}
        Err(SyncError::AlreadyRunning(_)) => {
            tracing::info!(
                source,
                trigger,
                "run skipped: the previous run is still going"
            )
        }
        Err(e) => tracing::error!(source, trigger, error = %e, "sync could not run"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(id: &str, text: &str) -> IndexDoc {
        IndexDoc {
            source: "share".into(),
            external_id: id.into(),
            kind: "file".into(),
            title: text.into(),
            body: text.into(),
            url: None,
            author: None,
            language: Some(Lang::Da),
            created: None,
            updated: None,
            acl: vec!["group:alle".into()],
            tags: Vec::new(),
            fingerprint: None,
            properties: Default::default(),
        }
    }

    /// A fresh index in a temporary folder with its writer thread running.
    fn started() -> (tempfile::TempDir, SearchIndex, Indexer) {
        let dir = tempfile::tempdir().unwrap();
        let index = SearchIndex::open(dir.path()).unwrap();
        let indexer = Indexer::start(index.clone(), 0).unwrap();
        (dir, index, indexer)
    }

    /// Applies one operation, as a run does for each change.
    async fn add(indexer: &Indexer, id: &str) {
        indexer
            .apply(WriteOp::Add(Box::new(doc(id, "tekst"))))
            .await
            .unwrap();
    }

    fn ids(index: &SearchIndex) -> Vec<String> {
        let mut ids: Vec<String> = index.source_ids("share").unwrap().into_iter().collect();
        ids.sort();
        ids
    }

    #[test]
    fn a_checkpoint_repeating_the_committed_cursor_leaves_nothing_to_commit() {
        let mut cursors = Cursors::new(Some("c1".to_owned()));
        cursors.checkpoint("c1".to_owned());
        assert_eq!(cursors.pending(), None);
        // A crawler's mid-run checkpoint, then its last one, the same as the committed one:
        // the mid-run cursor must not be committed in its place.
        cursors.checkpoint("mid-run".to_owned());
        assert_eq!(cursors.pending(), Some("mid-run"));
        cursors.checkpoint("c1".to_owned());
        assert_eq!(cursors.pending(), None);
        // Once a mid-run cursor is committed, returning to the old one is a change again.
        cursors.checkpoint("mid-run".to_owned());
        cursors.committed();
        assert_eq!(cursors.pending(), None);
        cursors.checkpoint("c1".to_owned());
        assert_eq!(cursors.pending(), Some("c1"));
        cursors.checkpoint("c2".to_owned());
        assert_eq!(cursors.pending(), Some("c2"));
        let mut first_run = Cursors::new(None);
        first_run.checkpoint(String::new());
        assert_eq!(first_run.pending(), Some(""));
    }

    #[tokio::test]
    async fn the_source_state_is_read_once_when_first_needed_and_as_of_the_last_commit() {
        let (_dir, index, indexer) = started();
        let generation = indexer.generation();
        let mut fingerprinted = doc("a", "tekst");
        fingerprinted.fingerprint = Some("fp-a".to_owned());
        indexer
            .apply(WriteOp::Add(Box::new(fingerprinted)))
            .await
            .unwrap();
        add(&indexer, "b").await;
        indexer.commit(None, generation).await.unwrap();

        let state = SourceState::new(index.clone(), "share");
        assert!(state.read.get().is_none(), "nothing is read up front");
        // A document committed after the state was created but before it was first needed
        // is part of it: it is read as of the last commit when first needed.
        add(&indexer, "c").await;
        indexer.commit(None, generation).await.unwrap();
        state.load().await.unwrap();
        let mut ids: Vec<&String> = state.known().await.unwrap().0.keys().collect();
        ids.sort();
        assert_eq!(ids, ["a", "b", "c"]);
        assert_eq!(state.fingerprint("a"), Some("fp-a"));
        assert_eq!(state.fingerprint("b"), None);
        // Read once: later commits do not change what the run started from.
        add(&indexer, "d").await;
        indexer.commit(None, generation).await.unwrap();
        assert_eq!(state.known().await.unwrap().0.len(), 3);
        let mut all = Vec::new();
        state.for_each(&mut |id, fp| all.push((id.to_owned(), fp.to_owned())));
        assert_eq!(all, [("a".to_owned(), "fp-a".to_owned())]);

        // Without `load`, a lookup from a blocking thread reads in place.
        let unloaded = SourceState::new(index.clone(), "share");
        assert_eq!(unloaded.fingerprint("a"), Some("fp-a"));
        assert_eq!(unloaded.known().await.unwrap().0.len(), 4);
    }

    /// An engine with one file-share source, `share`, over `root`, its data in `dir`.
    fn share_engine(dir: &std::path::Path, root: &std::path::Path) -> (SyncEngine, SearchIndex) {
        let text = format!(
            "[[sources]]\nid = \"share\"\nkind = \"file-share\"\nschedule = \"manual\"\n\
             run_on_start = false\n\n[sources.file-share]\nroot = {:?}\n\
             default_access = [\"authenticated\"]\n",
            root.to_str().unwrap()
        );
        let overrides = crate::config::Overrides {
            data_dir: Some(dir.join("data")),
            ..Default::default()
        };
        let config = Config::from_str(
            &text,
            &dir.join("samle.toml"),
            &Default::default(),
            &overrides,
        )
        .unwrap();
        let store = crate::app::open_store(&config).unwrap();
        let index = crate::app::open_index(&config).unwrap();
        let indexer = Indexer::start(index.clone(), 0).unwrap();
        (SyncEngine::new(Arc::new(config), indexer, store), index)
    }

    /// A file share of `n` Markdown files synced by the engine in one process, as `serve`
    /// does on a schedule: a re-sync of the unchanged share is handed the map of its documents
    /// the first one read, and must still see every edit and deletion once the share changes.
    #[tokio::test]
    async fn repeated_runs_in_one_process_see_every_change_of_a_share() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("share");
        for i in 0..300 {
            let path = root.join(format!("mappe-{}/notat-{i}.md", i % 7));
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, format!("# Notat {i}\n\nTekst nummer {i}.\n")).unwrap();
        }
        let (engine, index) = share_engine(dir.path(), &root);
        let sync = || async { engine.run("share", "cli", false, &|_| {}).await.unwrap() };
        let counts = |r: &RunReport| {
            let c = &r.counts;
            (c.seen, c.added, c.updated, c.unchanged, c.deleted)
        };

        assert_eq!(counts(&sync().await), (300, 300, 0, 0, 0));
        for _ in 0..3 {
            assert_eq!(counts(&sync().await), (300, 0, 0, 300, 0));
        }
        // Edits and deletions after quiet runs: the sweep and the updates see them all.
        std::fs::write(root.join("mappe-1/notat-1.md"), "# Notat 1\n\nNy tekst.\n").unwrap();
        std::fs::remove_file(root.join("mappe-2/notat-2.md")).unwrap();
        assert_eq!(counts(&sync().await), (299, 0, 1, 298, 1));
        std::fs::remove_file(root.join("mappe-3/notat-3.md")).unwrap();
        assert_eq!(counts(&sync().await), (298, 0, 0, 298, 1));
        assert_eq!(counts(&sync().await), (298, 0, 0, 298, 0));
        assert_eq!(index.stats().unwrap().documents, 298);
        let known = index.source_docs_by_id("share").unwrap();
        assert_eq!(known.len(), 298);
        assert!(!known.contains_key("mappe-2/notat-2.md"));
    }

    /// How a run marks what it saw, by place and by id, and what the sweep is then given.
    #[tokio::test]
    async fn what_a_run_saw_decides_what_the_sweep_keeps() {
        let dir = tempfile::tempdir().unwrap();
        let (engine, index) = share_engine(dir.path(), &dir.path().join("share"));
        let generation = engine.indexer.generation();
        for id in ["a", "b", "c", "d", "e"] {
            add(&engine.indexer, id).await;
        }
        engine.indexer.commit(None, generation).await.unwrap();
        let run_id = engine
            .store
            .run_started("share", "cli", false)
            .await
            .unwrap();
        let state = SourceState::new(index.clone(), "share");
        let known = state.known().await.unwrap().clone();
        let slot = |id: &str| u32::try_from(known.slot(id).unwrap()).unwrap();
        assert_eq!(state.find("c").unwrap().slot, Some(slot("c")));

        let mut seen = Seen::default();
        let mut counts = RunCounts::default();
        let apply = async |change: Change, seen: &mut Seen, counts: &mut RunCounts| {
            engine
                .document_change(change, &known, seen, counts, ("share", run_id))
                .await
        };
        let new = |id: &str| {
            Change::Upsert(Box::new(Document {
                external_id: id.to_owned(),
                kind: "file".to_owned(),
                title: id.to_owned(),
                acl: vec!["authenticated".to_owned()],
                ..Document::default()
            }))
        };
        let op = |op: Option<WriteOp>| match op {
            Some(WriteOp::Add(doc)) => format!("add {}", doc.external_id),
            Some(WriteOp::Upsert(doc)) => format!("upsert {}", doc.external_id),
            Some(WriteOp::Delete {
                source,
                external_id,
            }) => format!("delete {source}/{external_id}"),
            None => "none".to_owned(),
        };
        let slots = Change::UnchangedKnown {
            slots: vec![slot("a"), slot("b"), slot("a")],
        };
        assert_eq!(
            op(apply(slots, &mut seen, &mut counts).await.unwrap()),
            "none"
        );
        let by_id = Change::Unchanged {
            external_id: "c".to_owned(),
        };
        assert_eq!(
            op(apply(by_id, &mut seen, &mut counts).await.unwrap()),
            "none"
        );
        // A new document is added the first time and replaced after; a known one replaced.
        for (change, expected) in [
            (new("ny"), "add ny"),
            (new("ny"), "upsert ny"),
            (new("d"), "upsert d"),
        ] {
            assert_eq!(
                op(apply(change, &mut seen, &mut counts).await.unwrap()),
                expected
            );
        }
        // `e` was not seen: the sweep is given everything else, the new document too.
        let sweep = sweep_input(known.clone(), seen).await.unwrap().unwrap();
        let mut kept: Vec<&str> = sweep.iter().map(String::as_str).collect();
        kept.sort();
        assert_eq!(kept, ["a", "b", "c", "d", "ny"]);
        assert_eq!(
            (counts.seen, counts.unchanged, counts.added, counts.updated),
            (7, 4, 2, 1)
        );

        // Seen, failed or deleted, every known document is accounted for: nothing to sweep,
        // whatever was added.
        let mut seen = Seen::default();
        let mut counts = RunCounts::default();
        let changes = [
            Change::UnchangedKnown {
                slots: vec![slot("a"), slot("b")],
            },
            Change::UnchangedMany {
                external_ids: vec!["c".to_owned()],
            },
            Change::Failed {
                external_id: "d".to_owned(),
                error: "kan ikke læses".to_owned(),
            },
            Change::Delete {
                external_id: "e".to_owned(),
            },
            new("ny"),
            Change::Delete {
                external_id: "ny".to_owned(),
            },
        ];
        let mut ops = Vec::new();
        for change in changes {
            ops.push(op(apply(change, &mut seen, &mut counts).await.unwrap()));
        }
        assert_eq!(
            ops,
            [
                "none",
                "none",
                "none",
                "delete share/e",
                "add ny",
                "delete share/ny"
            ]
        );
        assert_eq!((counts.deleted, counts.failed), (1, 1));
        assert!(seen.all_known(&known));
        assert!(!seen.new.contains("ny"));
        assert_eq!(sweep_input(known.clone(), seen).await.unwrap(), None);

        // A place the source does not have fails the run.
        let mut seen = Seen::default();
        let wrong = Change::UnchangedKnown { slots: vec![5] };
        let Err(error) = apply(wrong, &mut seen, &mut counts).await else {
            panic!("slot 5 of 5 was taken");
        };
        assert!(
            error.contains("known document 5, but the source has 5"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn streamed_documents_become_visible_with_the_commit_and_new_ones_are_not_doubled() {
        let (_dir, index, indexer) = started();
        let generation = indexer.generation();
        for id in ["a", "b"] {
            indexer
                .apply(WriteOp::Add(Box::new(doc(id, "første udgave"))))
                .await
                .unwrap();
        }
        assert!(
            ids(&index).is_empty(),
            "nothing is visible before the commit"
        );
        indexer.commit(None, generation).await.unwrap();
        assert_eq!(ids(&index), ["a", "b"]);
        // A later version replaces; a delete removes.
        indexer
            .apply(WriteOp::Upsert(Box::new(doc("a", "anden udgave"))))
            .await
            .unwrap();
        indexer
            .apply(WriteOp::Delete {
                source: "share".into(),
                external_id: "b".into(),
            })
            .await
            .unwrap();
        indexer.commit(None, generation).await.unwrap();
        assert_eq!(ids(&index), ["a"]);
        assert_eq!(index.stats().unwrap().documents, 1);
    }

    #[tokio::test]
    async fn a_commit_with_nothing_to_write_leaves_the_index_as_it_is() {
        let (_dir, index, indexer) = started();
        let generation = indexer.generation();
        add(&indexer, "a").await;
        indexer
            .commit(Some(("share".into(), "c1".into())), generation)
            .await
            .unwrap();
        let opstamp = index.stats().unwrap().last_commit_opstamp;
        // An unchanged re-sync: nothing applied, no new cursor, a sweep that finds nothing.
        indexer.commit(None, generation).await.unwrap();
        let outcome = indexer
            .finish(
                "share",
                IdSet::from_iter(["a".to_string()]),
                0.5,
                None,
                generation,
            )
            .await
            .unwrap();
        assert_eq!(outcome, SweepOutcome::Deleted(0));
        assert_eq!(index.stats().unwrap().last_commit_opstamp, opstamp);
        // A new cursor alone is written; so is a sweep that deletes.
        indexer
            .commit(Some(("share".into(), "c2".into())), generation)
            .await
            .unwrap();
        assert_eq!(index.cursors().unwrap()["share"], "c2");
        indexer
            .finish("share", IdSet::default(), 1.0, None, generation)
            .await
            .unwrap();
        assert!(ids(&index).is_empty());
        assert_eq!(index.cursors().unwrap()["share"], "c2");
    }

    #[tokio::test]
    async fn a_failed_commit_discards_what_every_run_applied_and_their_commits_say_so() {
        let (_dir, index, indexer) = started();
        // Two runs stream into the one writer.
        let first = indexer.generation();
        let second = indexer.generation();
        add(&indexer, "fra-anden-kørsel").await;
        // The first run sends something the writer refuses (callers validate first; this
        // stands for any failure of the writer).
        indexer
            .apply(WriteOp::Upsert(Box::new(doc("", "uden id"))))
            .await
            .unwrap();
        let err = indexer.commit(None, first).await.unwrap_err();
        assert!(
            matches!(
                err,
                SyncError::Index(samle_index::IndexError::InvalidDocument(_))
            ),
            "{err}"
        );
        // The rollback took the second run's document with it: its commit must fail rather
        // than save progress past a document that is not in the index.
        let err = indexer.commit(None, second).await.unwrap_err();
        assert!(matches!(err, SyncError::Discarded), "{err}");
        assert!(ids(&index).is_empty());
        // A run that starts now works normally.
        let third = indexer.generation();
        add(&indexer, "ny").await;
        indexer.commit(None, third).await.unwrap();
        assert_eq!(ids(&index), ["ny"]);
    }
}
