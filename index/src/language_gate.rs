//! A query that is empty in every segment without documents of one language.
//!
//! A user's query is built twice, once per language (Danish words against the Danish fields of
//! Danish documents, English likewise), and each half requires the document's language.
//! tantivy builds the scorers of every clause of a conjunction before it notices that the
//! language clause is empty, so in a segment that holds one language only the other half
//! still opened the postings of each word in every field: for selective
//! queries that was most of a search's cost. The gate asks the segment's term dictionary once
//! and skips the half outright. Results are unchanged: the half it skips could match nothing.

use tantivy::query::{EmptyScorer, EnableScoring, Explanation, Query, Scorer, Weight};
use tantivy::{DocId, Score, SeekDangerResult, SegmentReader, TERMINATED, Term};

/// `inner`, in the segments where some document has `term`; nothing elsewhere. `inner` must
/// itself require `term`.
#[derive(Debug)]
pub(crate) struct LanguageGate {
    term: Term,
    inner: Box<dyn Query>,
}

impl Clone for LanguageGate {
    fn clone(&self) -> Self {
        LanguageGate {
            term: self.term.clone(),
            inner: self.inner.box_clone(),
        }
    }
}

impl LanguageGate {
    pub(crate) fn new(term: Term, inner: Box<dyn Query>) -> LanguageGate {
        LanguageGate { term, inner }
    }
}

impl Query for LanguageGate {
    fn weight(&self, enable_scoring: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        Ok(Box::new(GateWeight {
            term: self.term.clone(),
            inner: self.inner.weight(enable_scoring)?,
        }))
    }

    fn query_terms<'a>(&'a self, visitor: &mut dyn FnMut(&'a Term, bool)) {
        // Snippets look for the inner query's words.
        self.inner.query_terms(visitor);
    }
}

struct GateWeight {
    term: Term,
    inner: Box<dyn Weight>,
}

impl GateWeight {
    fn closed(&self, reader: &SegmentReader) -> tantivy::Result<bool> {
        Ok(reader
            .inverted_index(self.term.field())?
            .doc_freq(&self.term)?
            == 0)
    }
}

impl Weight for GateWeight {
    fn scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        if self.closed(reader)? {
            return Ok(Box::new(EmptyScorer));
        }
        self.inner.scorer(reader, boost)
    }

    fn scorer_danger(
        &self,
        reader: &SegmentReader,
        target: DocId,
        boost: Score,
    ) -> tantivy::Result<(SeekDangerResult, Box<dyn Scorer>)> {
        if self.closed(reader)? {
            return Ok((
                SeekDangerResult::SeekLowerBound(TERMINATED),
                Box::new(EmptyScorer),
            ));
        }
        self.inner.scorer_danger(reader, target, boost)
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        self.inner.explain(reader, doc)
    }
}
