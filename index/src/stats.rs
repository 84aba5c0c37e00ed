//! The BM25 statistics of one search, each looked up once.
//!
//! tantivy weighs every term of a query with its document frequency and its field's token
//! count, summed over all segments (a term-dictionary lookup per segment). A Samle query holds
//! each word several times: in the Danish and the English half (the same term wherever both
//! analyses agree, as for names), every field's token count is asked for per term, and the
//! snippets weigh the body terms again. Remembering the answers for the length of one search gives the same
//! numbers for fewer lookups.

use std::cell::RefCell;
use std::collections::HashMap;

use tantivy::query::Bm25StatisticsProvider;
use tantivy::schema::Field;
use tantivy::{Searcher, Term};

pub(crate) struct QueryStats<'a> {
    searcher: &'a Searcher,
    doc_freqs: RefCell<HashMap<Term, u64>>,
    tokens: RefCell<HashMap<Field, u64>>,
}

impl<'a> QueryStats<'a> {
    pub(crate) fn new(searcher: &'a Searcher) -> QueryStats<'a> {
        QueryStats {
            searcher,
            doc_freqs: RefCell::default(),
            tokens: RefCell::default(),
        }
    }
}

impl Bm25StatisticsProvider for QueryStats<'_> {
    fn total_num_tokens(&self, field: Field) -> tantivy::Result<u64> {
        if let Some(n) = self.tokens.borrow().get(&field) {
            return Ok(*n);
        }
        let n = Bm25StatisticsProvider::total_num_tokens(self.searcher, field)?;
        self.tokens.borrow_mut().insert(field, n);
        Ok(n)
    }

    fn total_num_docs(&self) -> tantivy::Result<u64> {
        Bm25StatisticsProvider::total_num_docs(self.searcher)
    }

    fn doc_freq(&self, term: &Term) -> tantivy::Result<u64> {
        if let Some(n) = self.doc_freqs.borrow().get(term) {
            return Ok(*n);
        }
        let n = self.searcher.doc_freq(term)?;
        self.doc_freqs.borrow_mut().insert(term.clone(), n);
        Ok(n)
    }
}
