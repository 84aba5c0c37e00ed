//! A union of a few clauses, for a word searched in several fields.
//!
//! The query parser turns each word into "any of" its field queries (the language's title and
//! body). tantivy evaluates such a union with a scorer built for
//! large unions: it keeps a window of 4,096 scores that is copied when the scorer is built
//! and cleared on every jump of a conjunction, per word and segment. For the few, selective
//! clauses of a word that bookkeeping cost more than the matching (a fifth of a search). This
//! union merges its clauses' postings directly. Scores are the same sums in the same order.

use tantivy::query::{
    BooleanQuery, EmptyScorer, EnableScoring, Explanation, Occur, Query, Scorer, Weight,
};
use tantivy::{DocId, DocSet, Score, SegmentReader, TERMINATED, Term};

/// Replaces, throughout `query`, every boolean query whose clauses are all optional ("any
/// of", at least one required) with a [`SmallUnion`] of the same clauses.
pub(crate) fn rewrite(query: Box<dyn Query>) -> Box<dyn Query> {
    let Some(boolean) = query.downcast_ref::<BooleanQuery>() else {
        return query;
    };
    let clauses = boolean.clauses();
    let any_of = clauses.len() > 1
        && boolean.get_minimum_number_should_match() <= 1
        && clauses.iter().all(|(occur, _)| *occur == Occur::Should);
    if any_of {
        return Box::new(SmallUnion {
            clauses: clauses
                .iter()
                .map(|(_, q)| rewrite(q.box_clone()))
                .collect(),
        });
    }
    let clauses = clauses
        .iter()
        .map(|(occur, q)| (*occur, rewrite(q.box_clone())))
        .collect();
    Box::new(BooleanQuery::with_minimum_required_clauses(
        clauses,
        boolean.get_minimum_number_should_match(),
    ))
}

/// Matches the documents that match any clause; scores them with the sum of the matching
/// clauses' scores.
#[derive(Debug)]
pub(crate) struct SmallUnion {
    clauses: Vec<Box<dyn Query>>,
}

impl Clone for SmallUnion {
    fn clone(&self) -> Self {
        SmallUnion {
            clauses: self.clauses.iter().map(|q| q.box_clone()).collect(),
        }
    }
}

impl Query for SmallUnion {
    fn weight(&self, enable_scoring: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        let weights = self
            .clauses
            .iter()
            .map(|q| q.weight(enable_scoring))
            .collect::<tantivy::Result<Vec<_>>>()?;
        Ok(Box::new(SmallUnionWeight { weights }))
    }

    fn query_terms<'a>(&'a self, visitor: &mut dyn FnMut(&'a Term, bool)) {
        for clause in &self.clauses {
            clause.query_terms(visitor);
        }
    }
}

struct SmallUnionWeight {
    weights: Vec<Box<dyn Weight>>,
}

impl Weight for SmallUnionWeight {
    fn scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        let mut scorers = Vec::with_capacity(self.weights.len());
        for weight in &self.weights {
            let scorer = weight.scorer(reader, boost)?;
            if !scorer.is::<EmptyScorer>() && scorer.doc() != TERMINATED {
                scorers.push(scorer);
            }
        }
        Ok(match scorers.len() {
            0 => Box::new(EmptyScorer),
            1 => scorers.swap_remove(0),
            _ => Box::new(UnionScorer::new(scorers)),
        })
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        let mut total = 0.0;
        let mut details = Vec::new();
        for weight in &self.weights {
            if let Ok(explanation) = weight.explain(reader, doc) {
                total += explanation.value();
                details.push(explanation);
            }
        }
        if details.is_empty() {
            return Err(tantivy::TantivyError::InvalidArgument(format!(
                "document {doc} matches no clause of the union"
            )));
        }
        let mut explanation = Explanation::new("sum of", total);
        for detail in details {
            explanation.add_detail(detail);
        }
        Ok(explanation)
    }
}

/// Every clause scorer is positioned at or after `doc`, and `doc` is the least of their
/// positions.
struct UnionScorer {
    scorers: Vec<Box<dyn Scorer>>,
    doc: DocId,
}

impl UnionScorer {
    fn new(scorers: Vec<Box<dyn Scorer>>) -> UnionScorer {
        let mut union = UnionScorer {
            scorers,
            doc: TERMINATED,
        };
        union.doc = union.least();
        union
    }

    fn least(&self) -> DocId {
        self.scorers
            .iter()
            .map(|s| s.doc())
            .min()
            .unwrap_or(TERMINATED)
    }
}

impl DocSet for UnionScorer {
    fn advance(&mut self) -> DocId {
        if self.doc == TERMINATED {
            return TERMINATED;
        }
        for scorer in &mut self.scorers {
            if scorer.doc() == self.doc {
                scorer.advance();
            }
        }
        self.doc = self.least();
        self.doc
    }

    fn seek(&mut self, target: DocId) -> DocId {
        if self.doc >= target {
            return self.doc;
        }
        for scorer in &mut self.scorers {
            if scorer.doc() < target {
                scorer.seek(target);
            }
        }
        self.doc = self.least();
        self.doc
    }

    fn doc(&self) -> DocId {
        self.doc
    }

    fn size_hint(&self) -> u32 {
        // As tantivy's own unions estimate it: the largest clause.
        self.scorers
            .iter()
            .map(|s| s.size_hint())
            .max()
            .unwrap_or(0)
    }

    fn cost(&self) -> u64 {
        self.scorers.iter().map(|s| s.cost()).sum()
    }
}

impl Scorer for UnionScorer {
    fn score(&mut self) -> Score {
        let doc = self.doc;
        let mut total = 0.0;
        for scorer in &mut self.scorers {
            if scorer.doc() == doc {
                total += scorer.score();
            }
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use tantivy::collector::{Count, TopDocs};
    use tantivy::query::TermQuery;
    use tantivy::schema::{IndexRecordOption, STRING, Schema, TEXT};
    use tantivy::{DocAddress, Index, TantivyDocument};

    use super::*;

    /// The same documents and scores as tantivy's own union.
    #[test]
    fn matches_and_scores_like_a_boolean_union() {
        let mut schema = Schema::builder();
        let a = schema.add_text_field("a", TEXT);
        let b = schema.add_text_field("b", TEXT);
        let id = schema.add_text_field("id", STRING);
        let index = Index::create_in_ram(schema.build());
        let mut writer = index.writer::<TantivyDocument>(15_000_000).unwrap();
        for i in 0..500u32 {
            let mut doc = TantivyDocument::default();
            let words = |n: u32| -> String {
                (0..(i % 7 + 1))
                    .map(|k| format!("w{}", (i * 31 + k * n) % 13))
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            doc.add_text(a, words(3));
            doc.add_text(b, words(5));
            doc.add_text(id, i.to_string());
            writer.add_document(doc).unwrap();
            if i % 150 == 0 {
                writer.commit().unwrap();
            }
        }
        writer.commit().unwrap();
        let searcher = index.reader().unwrap().searcher();
        let term = |f, w: &str| -> Box<dyn Query> {
            Box::new(TermQuery::new(
                Term::from_field_text(f, w),
                IndexRecordOption::WithFreqs,
            ))
        };
        for (x, y) in [("w1", "w2"), ("w3", "w12"), ("w0", "nothing")] {
            let boolean = BooleanQuery::new(vec![
                (Occur::Should, term(a, x)),
                (Occur::Should, term(b, x)),
                (Occur::Should, term(a, y)),
                (Occur::Should, term(b, y)),
            ]);
            let union = rewrite(Box::new(boolean.clone()));
            assert!(union.is::<SmallUnion>());
            // With a count beside the page, as searches run: tantivy then scores every match
            // (alone, the page would take a pruning path that sums in another order).
            let top = |q: &dyn Query| -> Vec<(Score, DocAddress)> {
                searcher
                    .search(q, &(Count, TopDocs::with_limit(1000).order_by_score()))
                    .unwrap()
                    .1
            };
            let expected = top(&boolean);
            assert!(!expected.is_empty());
            same(&top(union.as_ref()), &expected, &format!("{x} {y}"));
            // And inside a conjunction, where it is sought rather than walked.
            let both = |q: Box<dyn Query>| {
                BooleanQuery::new(vec![(Occur::Must, q), (Occur::Must, term(b, "w4"))])
            };
            same(
                &top(&both(union.box_clone())),
                &top(&both(Box::new(boolean))),
                &format!("{x} {y} with w4"),
            );
        }
    }

    /// The same hits in the same order with the same scores; on failure, says where they
    /// part rather than printing both lists.
    fn same(got: &[(Score, DocAddress)], expected: &[(Score, DocAddress)], what: &str) {
        let first = got.iter().zip(expected).position(|(g, e)| g != e);
        assert!(
            first.is_none() && got.len() == expected.len(),
            "{what}: {} hits against {}, first difference at {first:?}: {:?} against {:?}",
            got.len(),
            expected.len(),
            first.map(|i| got[i]),
            first.map(|i| expected[i]),
        );
    }
}
