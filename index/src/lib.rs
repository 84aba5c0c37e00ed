//! Samle's search index. This crate owns the tantivy schema, the Danish and English
//! analysers (one analysed copy of each text per language, folded then stemmed, so that
//! `Aarhus` meets `Århus` and `medarbejderne` meets `medarbejder`),
//! the single writer (upserts, deletes, mark-and-sweep, commits that carry the connectors'
//! cursors), and the one search function, which takes the viewer's [`Principals`] and trims
//! by access list inside the tantivy query so that hits, counts, facets and snippets never
//! show what the viewer may not see.
//!
//! It is not the place for anything that talks to the outside world: it does no network
//! I/O and knows nothing of HTTP, LDAP, sessions or connectors. The binary (`src/`) turns
//! connector documents into [`IndexDoc`]s, login sessions into [`Principals`], and requests
//! into [`SearchRequest`]s. All calls block (tantivy work is CPU and disk bound): call them
//! from `spawn_blocking` or a dedicated thread, never on the async executor.

mod acl_cache;
mod analysis;
pub mod baseline;
mod collect;
mod directory;
mod doc;
mod docs_cache;
mod error;
mod language_gate;
mod passage;
mod principals;
mod schema;
mod search;
mod search_index;
mod small_union;
mod stats;
mod writer;

pub use chrono::{DateTime, Utc};

pub use doc::{IndexDoc, Lang, StoredDoc};
pub use error::IndexError;
pub use principals::Principals;
pub use search::{
    FacetCount, FacetFilter, Facets, Hit, MAX_FACET_VALUES, MAX_LIMIT, MAX_OFFSET, SearchRequest,
    SearchResults, SnippetPart, SortOrder,
};
pub use search_index::{DocsById, IdSet, IndexStats, SearchIndex};
pub use writer::{IndexWriter, MIN_WRITER_HEAP_BYTES, SweepOutcome};
