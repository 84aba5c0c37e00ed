//! Sync: runs a source's connector and feeds its changes to the index.
//!
//! One dedicated thread owns the index writer ([`Indexer`]); every run sends it batches. A
//! batch is committed together with the connector's cursor when the connector says it has
//! reached a checkpoint, so after a crash the cursor never runs ahead of what was indexed.
//! Deletion of documents a source no longer lists is mark-and-sweep, and only after a
//! complete, successful traversal; the index's guard refuses to delete more than a share of
//! a source in one run. A failing source never deletes anything.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use samle_connectors::{Change, ChangeSink, Document, RunContext};
use samle_index::{IndexDoc, IndexWriter, Lang, SearchIndex, SweepOutcome};
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
    #[error(transparent)]
    Index(#[from] samle_index::IndexError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

enum WriteOp {
    Upsert(Box<IndexDoc>),
    Delete { source: String, external_id: String },
}

enum WriterCmd {
    /// Apply the operations and commit; with a cursor, store it in the same commit.
    Commit {
        ops: Vec<WriteOp>,
        cursor: Option<(String, String)>,
        reply: oneshot::Sender<Result<(), samle_index::IndexError>>,
    },
    /// Apply, sweep the source's unseen documents (guarded), and commit.
    Finish {
        ops: Vec<WriteOp>,
        source: String,
        seen: HashSet<String>,
        max_share: f64,
        cursor: Option<String>,
        reply: oneshot::Sender<Result<SweepOutcome, samle_index::IndexError>>,
    },
}

/// The handle to the single index writer thread.
#[derive(Clone)]
pub struct Indexer {
    tx: std::sync::mpsc::Sender<WriterCmd>,
    index: SearchIndex,
}

impl Indexer {
    /// Takes the index's writer (failing if another process holds it) and starts its thread.
    pub fn start(index: SearchIndex, heap_bytes: usize) -> Result<Indexer, SyncError> {
        let writer = index.writer(heap_bytes)?;
        let (tx, rx) = std::sync::mpsc::channel::<WriterCmd>();
        std::thread::Builder::new()
            .name("samle-index-writer".into())
            .spawn(move || writer_loop(writer, rx))
            .map_err(|_| SyncError::WriterGone)?;
        Ok(Indexer { tx, index })
    }

    pub fn index(&self) -> &SearchIndex {
        &self.index
    }

    async fn commit(
        &self,
        ops: Vec<WriteOp>,
        cursor: Option<(String, String)>,
    ) -> Result<(), SyncError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(WriterCmd::Commit { ops, cursor, reply })
            .map_err(|_| SyncError::WriterGone)?;
        Ok(rx.await.map_err(|_| SyncError::WriterGone)??)
    }

    async fn finish(
        &self,
        ops: Vec<WriteOp>,
        source: &str,
        seen: HashSet<String>,
        max_share: f64,
        cursor: Option<String>,
    ) -> Result<SweepOutcome, SyncError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(WriterCmd::Finish {
                ops,
                source: source.to_string(),
                seen,
                max_share,
                cursor,
                reply,
            })
            .map_err(|_| SyncError::WriterGone)?;
        Ok(rx.await.map_err(|_| SyncError::WriterGone)??)
    }

    /// Indexes documents directly (demo seeding, tests, benchmarks) and commits.
    pub async fn upsert_all(&self, docs: Vec<IndexDoc>) -> Result<(), SyncError> {
        let ops = docs
            .into_iter()
            .map(|d| WriteOp::Upsert(Box::new(d)))
            .collect();
        self.commit(ops, None).await
    }
}

fn apply(writer: &mut IndexWriter, ops: Vec<WriteOp>) -> Result<(), samle_index::IndexError> {
    for op in ops {
        match op {
            WriteOp::Upsert(doc) => writer.upsert(*doc)?,
            WriteOp::Delete {
                source,
                external_id,
            } => writer.delete(&source, &external_id)?,
        }
    }
    Ok(())
}

fn writer_loop(mut writer: IndexWriter, rx: std::sync::mpsc::Receiver<WriterCmd>) {
    // The loop ends when every `Indexer` handle is dropped; pending work was committed or
    // rolled back by then, and tantivy's lock is released with the writer.
    while let Ok(cmd) = rx.recv() {
        match cmd {
            WriterCmd::Commit { ops, cursor, reply } => {
                let result = apply(&mut writer, ops).and_then(|()| {
                    writer
                        .commit(cursor.as_ref().map(|(s, c)| (s.as_str(), c.as_str())))
                        .map(|_| ())
                });
                if result.is_err() {
                    let _ = writer.rollback();
                }
                let _ = reply.send(result);
            }
            WriterCmd::Finish {
                ops,
                source,
                seen,
                max_share,
                cursor,
                reply,
            } => {
                let result = apply(&mut writer, ops)
                    // Commit what the run brought first, so the sweep counts against the
                    // source as it now is.
                    .and_then(|()| writer.commit(None).map(|_| ()))
                    .and_then(|()| writer.sweep(&source, &seen, max_share))
                    .and_then(|outcome| {
                        let cursor = cursor.as_deref().map(|c| (source.as_str(), c));
                        writer.commit(cursor).map(|_| outcome)
                    });
                if result.is_err() {
                    let _ = writer.rollback();
                }
                let _ = reply.send(result);
            }
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
        let (known, existing, cursor) = tokio::task::spawn_blocking(move || {
            let known = index.fingerprints(&source_id)?;
            let existing = index.source_ids(&source_id)?;
            let cursor = index.cursors()?.remove(&source_id);
            Ok::<_, samle_index::IndexError>((known, existing, cursor))
        })
        .await
        .map_err(|e| (RunCounts::default(), format!("internal error: {e}")))?
        .map_err(|e| (RunCounts::default(), format!("cannot read the index: {e}")))?;

        let (tx, mut rx) = mpsc::channel::<Change>(256);
        let ctx = RunContext {
            source_id: source.id.clone(),
            cursor: if full { None } else { cursor },
            full,
            known: Arc::new(known),
            sink: ChangeSink::new(tx),
        };
        let task = tokio::spawn(async move { connector.run(ctx).await });

        let mut seen = HashSet::new();
        let mut batch: Vec<WriteOp> = Vec::new();
        let mut traversal_complete = false;
        let mut last_cursor: Option<String> = None;
        let mut reported = Progress {
            source: source.id.clone(),
            ..Progress::default()
        };
        let commit_every = self.config.index.commit_every;
        let mut failure: Option<String> = None;

        while let Some(change) = rx.recv().await {
            match change {
                Change::Upsert(doc) => {
                    counts.seen += 1;
                    if existing.contains(&doc.external_id) {
                        counts.updated += 1;
                    } else {
                        counts.added += 1;
                    }
                    if doc.acl.is_empty() {
                        self.record_error(run_id, Some(&doc.external_id), EMPTY_ACL_MESSAGE)
                            .await;
                    }
                    seen.insert(doc.external_id.clone());
                    batch.push(WriteOp::Upsert(Box::new(to_index_doc(&source.id, doc))));
                }
                Change::Unchanged { external_id } => {
                    counts.seen += 1;
                    counts.unchanged += 1;
                    seen.insert(external_id);
                }
                Change::Delete { external_id } => {
                    if existing.contains(&external_id) {
                        counts.deleted += 1;
                    }
                    seen.remove(&external_id);
                    batch.push(WriteOp::Delete {
                        source: source.id.clone(),
                        external_id,
                    });
                }
                Change::Failed { external_id, error } => {
                    counts.seen += 1;
                    counts.failed += 1;
                    // The old indexed version, if any, stays: a file that cannot be read
                    // today is not a file that was deleted.
                    seen.insert(external_id.clone());
                    self.record_error(run_id, Some(&external_id), &error).await;
                }
                Change::Checkpoint { cursor } => {
                    let ops = std::mem::take(&mut batch);
                    if let Err(e) = self
                        .indexer
                        .commit(ops, Some((source.id.clone(), cursor.clone())))
                        .await
                    {
                        failure = Some(format!("cannot write to the index: {e}"));
                        break;
                    }
                    last_cursor = Some(cursor);
                }
                Change::TraversalComplete => traversal_complete = true,
            }
            if batch.len() >= commit_every {
                let ops = std::mem::take(&mut batch);
                if let Err(e) = self.indexer.commit(ops, None).await {
                    failure = Some(format!("cannot write to the index: {e}"));
                    break;
                }
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
            // What the source delivered before it failed is good content: keep it, but do
            // not move the cursor and delete nothing.
            if !batch.is_empty()
                && let Err(e) = self.indexer.commit(std::mem::take(&mut batch), None).await
            {
                tracing::error!(source = %source.id, error = %e, "cannot commit after a failed run");
            }
            return Err((counts, message));
        }

        let mut message = None;
        if traversal_complete {
            match self
                .indexer
                .finish(
                    batch,
                    &source.id,
                    seen,
                    source.max_delete_share,
                    last_cursor,
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
        } else if let Err(e) = self.indexer.commit(batch, None).await {
            return Err((counts, format!("cannot write to the index: {e}")));
        }
        reported.counts = counts.clone();
        reported.elapsed = started.elapsed();
        progress(&reported);
        Ok((counts, message))
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
