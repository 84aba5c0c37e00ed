//! Reading a whole source's ids and fingerprints from columns, without touching the
//! document store.

use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::StrColumn;
use tantivy::query::Query;
use tantivy::{DocId, Score, Searcher, SegmentOrdinal, SegmentReader};

use crate::IndexError;
use crate::schema::{EXTERNAL_ID_FIELD, FINGERPRINT_FIELD};

/// Collects the matching doc ids of each segment, in order.
struct SegmentDocs;

struct SegmentDocsChild {
    segment: SegmentOrdinal,
    docs: Vec<DocId>,
}

impl Collector for SegmentDocs {
    type Fruit = Vec<(SegmentOrdinal, Vec<DocId>)>;
    type Child = SegmentDocsChild;

    fn for_segment(
        &self,
        segment: SegmentOrdinal,
        _reader: &SegmentReader,
    ) -> tantivy::Result<SegmentDocsChild> {
        Ok(SegmentDocsChild {
            segment,
            docs: Vec::new(),
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(
        &self,
        fruits: Vec<(SegmentOrdinal, Vec<DocId>)>,
    ) -> tantivy::Result<Self::Fruit> {
        Ok(fruits)
    }
}

impl SegmentCollector for SegmentDocsChild {
    type Fruit = (SegmentOrdinal, Vec<DocId>);

    fn collect(&mut self, doc: DocId, _score: Score) {
        self.docs.push(doc);
    }

    fn collect_block(&mut self, docs: &[DocId]) {
        self.docs.extend_from_slice(docs);
    }

    fn harvest(self) -> Self::Fruit {
        (self.segment, self.docs)
    }
}

/// `(external_id, fingerprint)` of every live document matching `query`.
pub(crate) fn ids_and_fingerprints(
    searcher: &Searcher,
    query: &dyn Query,
    with_fingerprints: bool,
) -> Result<Vec<(String, Option<String>)>, IndexError> {
    let per_segment = searcher.search(query, &SegmentDocs)?;
    let mut out = Vec::new();
    for (segment, docs) in per_segment {
        if docs.is_empty() {
            continue;
        }
        let reader = searcher.segment_reader(segment);
        let fast = reader.fast_fields();
        let Some(ids) = fast.str(EXTERNAL_ID_FIELD)? else {
            continue;
        };
        let ids = column_values(&ids, &docs)?;
        let fingerprints = match (with_fingerprints, fast.str(FINGERPRINT_FIELD)?) {
            (true, Some(column)) => column_values(&column, &docs)?,
            _ => vec![None; docs.len()],
        };
        out.extend(
            ids.into_iter()
                .zip(fingerprints)
                .filter_map(|(id, fp)| id.map(|id| (id, fp))),
        );
    }
    Ok(out)
}

/// The first value of `column` for each doc, looked up in ordinal order so that the term
/// dictionary is read block by block rather than once per document.
fn column_values(column: &StrColumn, docs: &[DocId]) -> Result<Vec<Option<String>>, IndexError> {
    let mut by_ord: Vec<(u64, usize)> = docs
        .iter()
        .enumerate()
        .filter_map(|(i, &doc)| column.term_ords(doc).next().map(|ord| (ord, i)))
        .collect();
    by_ord.sort_unstable();
    let ords: Vec<u64> = by_ord.iter().map(|(ord, _)| *ord).collect();
    let mut terms = Vec::with_capacity(ords.len());
    column
        .dictionary()
        .sorted_ords_to_term_cb(&ords, |bytes| {
            // Ids and fingerprints are written as UTF-8: the standard check is the fast path.
            terms.push(match std::str::from_utf8(bytes) {
                Ok(text) => text.to_owned(),
                Err(_) => String::from_utf8_lossy(bytes).into_owned(),
            });
        })
        .map_err(|e| IndexError::Engine(e.into()))?;
    let mut out = vec![None; docs.len()];
    for ((_, i), term) in by_ord.into_iter().zip(terms) {
        out[i] = Some(term);
    }
    Ok(out)
}
