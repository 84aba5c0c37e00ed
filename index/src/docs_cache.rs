//! The maps of sources' documents (external id → fingerprint) read last, each with the
//! segments it was read from.
//!
//! A sync reads its source's map once per run: every document's id and fingerprint, from two
//! string columns of every segment. When the searcher still shows the very segments a map
//! was read from, with the same deletions, it shows the very same documents, so the map is
//! handed out again instead: the scheduled re-sync of a source while the index is quiet
//! reads nothing. Segments only move forward (a commit or a merge makes new ones, a delete
//! moves a segment's delete opstamp), so a map read from other segments can never be right
//! again: it is dropped at the next commit's reload.
//!
//! The maps are capped in documents over all sources: about 200 bytes each, so a large
//! source's map, which would cost more memory than its re-read costs time, is not kept.

use std::collections::BTreeMap;
use std::sync::Arc;

use tantivy::Opstamp;
use tantivy::index::SegmentId;

use crate::DocsById;

/// The segments a searcher shows, each with its delete opstamp.
pub(crate) type Segments = BTreeMap<SegmentId, Option<Opstamp>>;

/// The most documents kept over all sources (about 20 MB).
pub(crate) const DOCS_CACHE_LIMIT: usize = 100_000;

pub(crate) struct DocsCache {
    limit: usize,
    /// Least recently used first.
    entries: Vec<Entry>,
}

struct Entry {
    source: String,
    segments: Segments,
    docs: Arc<DocsById>,
}

impl DocsCache {
    pub(crate) fn new(limit: usize) -> DocsCache {
        DocsCache {
            limit,
            entries: Vec::new(),
        }
    }

    /// The source's map if it was read from exactly `segments`.
    pub(crate) fn get(&mut self, source: &str, segments: &Segments) -> Option<Arc<DocsById>> {
        let at = self
            .entries
            .iter()
            .position(|e| e.source == source && e.segments == *segments)?;
        let entry = self.entries.remove(at);
        let docs = Arc::clone(&entry.docs);
        self.entries.push(entry);
        Some(docs)
    }

    /// Keeps the source's map, read from `segments`, unless it alone is over the limit;
    /// the least recently used go to make room.
    pub(crate) fn put(&mut self, source: &str, segments: Segments, docs: Arc<DocsById>) {
        self.entries.retain(|e| e.source != source);
        if docs.len() > self.limit {
            return;
        }
        while self.documents() + docs.len() > self.limit && !self.entries.is_empty() {
            self.entries.remove(0);
        }
        self.entries.push(Entry {
            source: source.to_owned(),
            segments,
            docs,
        });
    }

    /// Drops every map not read from `segments`: after a reload they can never be handed out
    /// again.
    pub(crate) fn retain_current(&mut self, segments: &Segments) {
        self.entries.retain(|e| e.segments == *segments);
    }

    fn documents(&self) -> usize {
        self.entries.iter().map(|e| e.docs.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn docs(n: usize) -> Arc<DocsById> {
        Arc::new((0..n).map(|i| (format!("d{i}"), None)).collect())
    }

    fn segments(ids: &[(u128, Option<Opstamp>)]) -> Segments {
        ids.iter()
            .map(|&(id, deletes)| {
                (
                    SegmentId::from_uuid_string(&format!("{id:032x}")).unwrap(),
                    deletes,
                )
            })
            .collect()
    }

    #[test]
    fn a_map_is_handed_out_for_its_own_segments_only() {
        let mut cache = DocsCache::new(10);
        let one = segments(&[(1, None)]);
        let wiki = docs(3);
        cache.put("wiki", one.clone(), Arc::clone(&wiki));
        assert!(Arc::ptr_eq(&cache.get("wiki", &one).unwrap(), &wiki));
        assert!(cache.get("feed", &one).is_none());
        // A new segment, or deletions in the same one: other documents.
        assert!(
            cache
                .get("wiki", &segments(&[(1, None), (2, None)]))
                .is_none()
        );
        assert!(cache.get("wiki", &segments(&[(1, Some(7))])).is_none());
        assert!(cache.get("wiki", &one).is_some());

        cache.retain_current(&segments(&[(2, None)]));
        assert!(cache.get("wiki", &one).is_none());
    }

    #[test]
    fn the_limit_counts_documents_and_drops_the_least_recently_used() {
        let mut cache = DocsCache::new(10);
        let seg = segments(&[(1, None)]);
        cache.put("a", seg.clone(), docs(4));
        cache.put("b", seg.clone(), docs(4));
        assert!(cache.get("a", &seg).is_some());
        // 4 + 4 + 4 > 10: "b", used least recently, goes.
        cache.put("c", seg.clone(), docs(4));
        assert!(cache.get("b", &seg).is_none());
        assert!(cache.get("a", &seg).is_some());
        assert!(cache.get("c", &seg).is_some());
        // Too large alone: not kept, and nothing else is dropped for it.
        cache.put("huge", seg.clone(), docs(11));
        assert!(cache.get("huge", &seg).is_none());
        assert!(cache.get("a", &seg).is_some());
        // A source read again replaces its own map.
        let newer = docs(2);
        cache.put("a", seg.clone(), Arc::clone(&newer));
        assert!(Arc::ptr_eq(&cache.get("a", &seg).unwrap(), &newer));
        assert_eq!(cache.documents(), 6);
    }
}
