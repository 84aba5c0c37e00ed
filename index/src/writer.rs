//! The single writer: upserts, deletes, mark-and-sweep, and commits carrying the cursors.

use std::collections::HashSet;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use chrono::Utc;
use tantivy::directory::error::LockError;
use tantivy::{TantivyDocument, TantivyError, Term};
use tracing::{debug, info, warn};

use crate::search_index::{CommitPayload, Inner};
use crate::{IndexDoc, IndexError, SearchIndex, schema};

/// tantivy needs at least this much indexing heap (per indexing thread).
pub const MIN_WRITER_HEAP_BYTES: usize = 15_000_000;

/// What [`IndexWriter::sweep`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum SweepOutcome {
    /// This many unseen documents are deleted (when the next commit lands).
    Deleted(u64),
    /// Nothing was deleted: the sweep would have removed `would_delete` of the source's
    /// `total` committed documents, more than the allowed share.
    Refused {
        /// Documents not seen in the traversal.
        would_delete: u64,
        /// The source's committed documents.
        total: u64,
    },
}

/// Marks this handle's writer slot as taken for as long as it lives.
struct WriterSlot(Arc<Inner>);

impl Drop for WriterSlot {
    fn drop(&mut self) {
        self.0.writer_alive.store(false, Ordering::Release);
    }
}

/// The index's one writer. Changes are invisible until [`IndexWriter::commit`]; dropping
/// the writer without committing discards them. Use it from one thread.
pub struct IndexWriter {
    // Declared before `slot` so that tantivy's lock is released before the slot frees up.
    writer: tantivy::IndexWriter<TantivyDocument>,
    slot: WriterSlot,
}

impl SearchIndex {
    /// The single writer, with `heap_bytes` of indexing memory (at least
    /// [`MIN_WRITER_HEAP_BYTES`]). While it lives, another call gives
    /// [`IndexError::WriterBusy`], as does a writer held by another process.
    pub fn writer(&self, heap_bytes: usize) -> Result<IndexWriter, IndexError> {
        if self.inner.writer_alive.swap(true, Ordering::AcqRel) {
            return Err(IndexError::WriterBusy);
        }
        // From here on the slot frees itself on every error path.
        let slot = WriterSlot(Arc::clone(&self.inner));
        let heap = heap_bytes.max(MIN_WRITER_HEAP_BYTES);
        let writer = match self.inner.index.writer(heap) {
            Ok(writer) => writer,
            Err(TantivyError::LockFailure(LockError::LockBusy, _)) => {
                return Err(IndexError::WriterBusy);
            }
            Err(other) => return Err(other.into()),
        };
        debug!(heap_bytes = heap, "index writer opened");
        Ok(IndexWriter { writer, slot })
    }
}

impl std::fmt::Debug for IndexWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IndexWriter")
            .field("dir", &self.inner().dir)
            .finish_non_exhaustive()
    }
}

impl IndexWriter {
    fn inner(&self) -> &Inner {
        &self.slot.0
    }

    fn id_term(&self, source: &str, external_id: &str) -> Term {
        Term::from_field_text(self.inner().fields.id, &schema::doc_id(source, external_id))
    }

    /// Adds a document, replacing any with the same `(source, external_id)`.
    pub fn upsert(&mut self, doc: IndexDoc) -> Result<(), IndexError> {
        let document = schema::to_document(&self.inner().fields, &doc)?;
        // tantivy applies a delete only to documents added before it, so the new version
        // survives its own delete.
        let id = self.id_term(&doc.source, &doc.external_id);
        self.writer.delete_term(id);
        self.writer.add_document(document)?;
        Ok(())
    }

    /// Adds a document that is not in the index, committed or pending: a first sync, or a
    /// document its source has just created. It skips the delete of the id that
    /// [`IndexWriter::upsert`] makes, which tantivy resolves against every segment at the next
    /// commit and which costs a full sync about as much as the documents themselves. Adding a
    /// document that is already there leaves two copies: when unsure, use `upsert`.
    pub fn add_new(&mut self, doc: IndexDoc) -> Result<(), IndexError> {
        let document = schema::to_document(&self.inner().fields, &doc)?;
        self.writer.add_document(document)?;
        Ok(())
    }

    /// Deletes one document (no error if it does not exist).
    pub fn delete(&mut self, source: &str, external_id: &str) -> Result<(), IndexError> {
        let id = self.id_term(source, external_id);
        self.writer.delete_term(id);
        Ok(())
    }

    /// Deletes every document of a source.
    pub fn delete_source(&mut self, source: &str) -> Result<(), IndexError> {
        let term = Term::from_field_text(self.inner().fields.source, source);
        self.writer.delete_term(term);
        info!(source, "all documents of source deleted (pending commit)");
        Ok(())
    }

    /// Mark-and-sweep after a complete, successful traversal: delete this source's docs whose
    /// ids are not in `seen`, unless that would delete more than `max_share` (0.0..=1.0) of
    /// the source's committed docs: then delete nothing.
    ///
    /// A source that suddenly lists nothing is broken, not empty; the guard keeps its
    /// documents searchable until someone looks.
    pub fn sweep<S: BuildHasher>(
        &mut self,
        source: &str,
        seen: &HashSet<String, S>,
        max_share: f64,
    ) -> Result<SweepOutcome, IndexError> {
        // The reader shows exactly the last commit: pending changes are not counted.
        let committed = self.inner().source_docs(source, false)?;
        let total = committed.len() as u64;
        let unseen: Vec<&String> = committed
            .iter()
            .map(|(id, _)| id)
            .filter(|id| !seen.contains(*id))
            .collect();
        let would_delete = unseen.len() as u64;
        // NaN or out-of-range shares are read as the nearest sane value: NaN as "nothing".
        let max_share = if max_share.is_nan() {
            0.0
        } else {
            max_share.clamp(0.0, 1.0)
        };
        if would_delete > 0 && would_delete as f64 > max_share * total as f64 {
            warn!(
                source,
                would_delete,
                total,
                max_share,
                "sweep refused: it would delete more than the allowed share of the source"
            );
            return Ok(SweepOutcome::Refused {
                would_delete,
                total,
            });
        }
        if unseen.is_empty() {
            debug!(source, total, "sweep: every document was seen");
            return Ok(SweepOutcome::Deleted(0));
        }
        for id in unseen {
            let term = self.id_term(source, id);
            self.writer.delete_term(term);
        }
        info!(
            source,
            deleted = would_delete,
            total,
            "sweep deleted documents not seen in the traversal (pending commit)"
        );
        Ok(SweepOutcome::Deleted(would_delete))
    }

    /// Commits everything pending. With `cursor = Some((source, cursor))` that source's
    /// cursor is stored in the same commit; every other source's cursor is kept. After the
    /// commit the reader is reloaded, so searches started after this returns see the change.
    pub fn commit(&mut self, cursor: Option<(&str, &str)>) -> Result<u64, IndexError> {
        let inner = Arc::clone(&self.slot.0);
        // The payload replaces the previous one whole, so start from what is committed.
        let mut payload =
            CommitPayload::parse(&inner.dir, inner.index.load_metas()?.payload.as_deref());
        if let Some((source, value)) = cursor {
            payload.cursors.insert(source.to_owned(), value.to_owned());
        }
        payload.committed_at = Some(Utc::now());
        let payload = serde_json::to_string(&payload)?;

        let mut prepared = self.writer.prepare_commit()?;
        prepared.set_payload(&payload);
        let opstamp = prepared.commit()?;
        inner.reader.reload()?;
        // Maps read from the segments before this commit can never be handed out again.
        inner
            .docs_cache()
            .retain_current(inner.reader.searcher().generation().segments());
        debug!(
            opstamp,
            cursor_source = cursor.map(|(source, _)| source),
            "index committed"
        );
        Ok(opstamp)
    }

    /// Discards everything pending since the last commit.
    pub fn rollback(&mut self) -> Result<(), IndexError> {
        let opstamp = self.writer.rollback()?;
        debug!(opstamp, "index writer rolled back");
        Ok(())
    }
}
