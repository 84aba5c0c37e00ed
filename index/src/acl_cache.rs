//! The access filter of searches, kept as a bitset per segment and set of principals.
//!
//! Evaluating the filter means reading the postings of every principal the viewer holds (a
//! hundred groups is ordinary) and uniting them: for a viewer who may see most of the index
//! that is a pass over nearly every document, on every search, which made the users who see
//! the most the slowest. A segment never changes its documents' access lists (a changed
//! document is a new document in a new segment, and deletions are applied by the collectors
//! from the segment's alive bitset), so the union is computed once per segment and viewer and
//! looked up by the viewer's next searches. The filter stays a required clause of the
//! query: counts, facets, pages and snippets see only what the viewer may see.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tantivy::index::SegmentId;
use tantivy::query::{
    BitSetDocSet, ConstScorer, EnableScoring, Explanation, Query, Scorer, Weight,
};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::{BitSet, DocId, DocSet as _, Score, Searcher, SegmentReader, TantivyError, Term};

use crate::{IndexError, Principals};

/// How many viewers' filters are kept. Each costs one bit per document (125 KB at a million
/// documents); the least recently used goes first.
const MAX_VIEWERS: usize = 64;

type Segments = HashMap<SegmentId, Arc<BitSet>>;

#[derive(Default)]
pub(crate) struct AclCache {
    inner: Mutex<Lru>,
}

#[derive(Default)]
struct Lru {
    /// The viewer's principals, sorted → the filter of each segment of the last searcher
    /// it was used with.
    entries: HashMap<Vec<String>, (Arc<Segments>, u64)>,
    tick: u64,
}

impl AclCache {
    /// The access filter for `viewer` over the segments of `searcher`: documents whose
    /// `acl` field holds one of the viewer's principals. Scores zero.
    pub(crate) fn filter(
        &self,
        searcher: &Searcher,
        acl: Field,
        viewer: &Principals,
    ) -> Result<Box<dyn Query>, IndexError> {
        let key: Vec<String> = viewer.iter().map(str::to_owned).collect();
        let cached = {
            let mut lru = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
            lru.tick += 1;
            let tick = lru.tick;
            lru.entries.get_mut(&key).map(|(segments, used)| {
                *used = tick;
                Arc::clone(segments)
            })
        };
        let readers = searcher.segment_readers();
        let mut segments = Segments::with_capacity(readers.len());
        let mut changed = cached.as_ref().is_none_or(|c| c.len() != readers.len());
        for reader in readers {
            let id = reader.segment_id();
            let bits = match cached.as_ref().and_then(|c| c.get(&id)) {
                Some(bits) => Arc::clone(bits),
                None => {
                    changed = true;
                    Arc::new(union(reader, acl, &key)?)
                }
            };
            segments.insert(id, bits);
        }
        let segments = Arc::new(segments);
        if changed {
            // Only the current segments are kept: those of merged-away segments go.
            let mut lru = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
            if !lru.entries.contains_key(&key)
                && lru.entries.len() >= MAX_VIEWERS
                && let Some(oldest) = lru
                    .entries
                    .iter()
                    .min_by_key(|(_, (_, used))| *used)
                    .map(|(k, _)| k.clone())
            {
                lru.entries.remove(&oldest);
            }
            let tick = lru.tick;
            lru.entries
                .insert(key.clone(), (Arc::clone(&segments), tick));
        }
        Ok(Box::new(AclQuery {
            acl,
            principals: Arc::new(key),
            segments,
        }))
    }
}

/// The documents of a segment whose `acl` holds one of `principals`, deleted ones included.
fn union(reader: &SegmentReader, acl: Field, principals: &[String]) -> tantivy::Result<BitSet> {
    let inverted = reader.inverted_index(acl)?;
    let mut bits = BitSet::with_max_value(reader.max_doc());
    for principal in principals {
        let term = Term::from_field_text(acl, principal);
        if let Some(mut block) = inverted.read_block_postings(&term, IndexRecordOption::Basic)? {
            while !block.docs().is_empty() {
                for &doc in block.docs() {
                    bits.insert(doc);
                }
                block.advance();
            }
        }
    }
    Ok(bits)
}

#[derive(Clone)]
struct AclQuery {
    acl: Field,
    principals: Arc<Vec<String>>,
    segments: Arc<Segments>,
}

impl std::fmt::Debug for AclQuery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AclQuery")
            .field("principals", &self.principals)
            .finish_non_exhaustive()
    }
}

impl Query for AclQuery {
    fn weight(&self, _: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        Ok(Box::new(self.clone()))
    }
}

impl Weight for AclQuery {
    fn scorer(&self, reader: &SegmentReader, _boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        // The segments are those of the searcher the filter was made for; another searcher's
        // segment is computed on the spot.
        let bits = match self.segments.get(&reader.segment_id()) {
            Some(bits) => BitSet::clone(bits),
            None => union(reader, self.acl, &self.principals)?,
        };
        Ok(Box::new(ConstScorer::new(BitSetDocSet::from(bits), 0.0)))
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        let mut scorer = self.scorer(reader, 1.0)?;
        // `seek` may only move forward: the first document may be past it already.
        if scorer.doc() <= doc && scorer.seek(doc) == doc {
            Ok(Explanation::new("access filter", 0.0))
        } else {
            Err(TantivyError::InvalidArgument(format!(
                "document {doc} is not visible to the viewer"
            )))
        }
    }
}
