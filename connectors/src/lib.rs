//! Connectors turn the organisation's portals (file shares and feeds today; wikis, CMSs and the
//! staff directory later) into streams of document changes, and this crate holds the text
//! extraction they share (HTML, Markdown, plain text, PDF, DOCX, ODT). A connector reports
//! what it saw: `Upsert`, `Unchanged`, `Delete`, `Failed`, checkpoints and "traversal
//! complete"; the binary decides what that means for the index.
//!
//! It is not the place for indexing, serving or storing: nothing here touches tantivy, axum or
//! the SQLite store, and no connector decides what is deleted from the index. A connector that
//! cannot finish returns an error so that the caller deletes nothing.

pub mod connector;
pub mod error;
pub mod extract;
pub mod feed;
pub mod file_share;
pub mod http;
pub mod mediawiki;
pub mod memory;
pub mod model;
pub mod params;
pub mod registry;
pub mod website;
pub mod wordpress;

pub use connector::{ChangeSink, Connector, KnownDoc, KnownDocs, RunContext};
pub use error::ConnectorError;
pub use feed::{Feed, FeedParams};
pub use file_share::{AccessRule, FileShare, FileShareParams};
pub use http::{HttpClient, HttpParams};
pub use mediawiki::{MediaWiki, MediaWikiParams};
pub use memory::MemoryConnector;
pub use model::{Change, Document};
pub use registry::{ConnectorParams, KINDS, build};
pub use website::{PrefixAccess, Website, WebsiteParams};
pub use wordpress::{WordPress, WordPressParams};
