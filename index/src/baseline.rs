//! A bare tantivy index: the baseline that Samle's own indexing and search are measured
//! against (`samle bench`). Two text fields with tantivy's default analyser, an id, nothing
//! else: no languages, no folding, no access lists, no facets, no snippets. It exists only
//! for benchmarks; nothing in the portal uses it.

use std::path::Path;

use tantivy::collector::TopDocs;
use tantivy::query::QueryParser;
use tantivy::schema::{Field, STORED, STRING, Schema, TEXT, Value as _};
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, doc};

use crate::IndexError;

pub struct RawIndex {
    index: Index,
    writer: IndexWriter,
    reader: Option<IndexReader>,
    dir: std::path::PathBuf,
    id: Field,
    title: Field,
    body: Field,
}

impl RawIndex {
    /// Creates a new index in `dir` (which must be empty or missing).
    pub fn create(dir: &Path, heap_bytes: usize) -> Result<RawIndex, IndexError> {
        std::fs::create_dir_all(dir).map_err(|e| IndexError::io(dir, e))?;
        let mut b = Schema::builder();
        let id = b.add_text_field("id", STRING | STORED);
        let title = b.add_text_field("title", TEXT | STORED);
        let body = b.add_text_field("body", TEXT | STORED);
        let index = Index::create_in_dir(dir, b.build()).map_err(IndexError::from)?;
        let writer = index
            .writer(heap_bytes.max(15_000_000))
            .map_err(IndexError::from)?;
        Ok(RawIndex {
            index,
            writer,
            reader: None,
            dir: dir.to_path_buf(),
            id,
            title,
            body,
        })
    }

    pub fn add(&mut self, id: &str, title: &str, body: &str) -> Result<(), IndexError> {
        self.writer
            .add_document(doc!(self.id => id, self.title => title, self.body => body))
            .map_err(IndexError::from)?;
        Ok(())
    }

    pub fn commit(&mut self) -> Result<(), IndexError> {
        self.writer.commit().map_err(IndexError::from)?;
        let reader = self
            .index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(IndexError::from)?;
        self.reader = Some(reader);
        Ok(())
    }

    /// Top `limit` by relevance over title and body, any term (tantivy's default), with each
    /// hit's id read from the store, as a real search page would.
    pub fn search(&self, query: &str, limit: usize) -> Result<Vec<String>, IndexError> {
        let Some(reader) = &self.reader else {
            return Ok(Vec::new());
        };
        let searcher = reader.searcher();
        let parser = QueryParser::for_index(&self.index, vec![self.title, self.body]);
        let (q, _) = parser.parse_query_lenient(query);
        let top = searcher
            .search(&q, &TopDocs::with_limit(limit).order_by_score())
            .map_err(IndexError::from)?;
        let mut ids = Vec::with_capacity(top.len());
        for (_, addr) in top {
            let d: TantivyDocument = searcher.doc(addr).map_err(IndexError::from)?;
            if let Some(v) = d.get_first(self.id).and_then(|v| v.as_str()) {
                ids.push(v.to_string());
            }
        }
        Ok(ids)
    }

    pub fn size_bytes(&self) -> Result<u64, IndexError> {
        let entries = std::fs::read_dir(&self.dir).map_err(|e| IndexError::io(&self.dir, e))?;
        Ok(entries
            .flatten()
            .filter_map(|e| e.metadata().ok())
            .map(|m| m.len())
            .sum())
    }
}
