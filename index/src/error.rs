//! The crate's one error type.

use std::path::PathBuf;

/// Everything that can go wrong in the index.
///
/// The variants fall in two groups, told apart by [`IndexError::is_user_error`]: mistakes in
/// what a caller asked for (a request out of bounds, a malformed filter or document), which
/// should be reported back as such, and internal failures (a damaged index, the disk, the
/// engine), which should be logged and shown only as "something went wrong".
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// The search request is out of bounds (page too deep, too many hits asked for).
    #[error("invalid search request: {0}")]
    InvalidRequest(String),
    /// A facet filter cannot be applied (empty value, impossible year).
    #[error("invalid filter: {0}")]
    InvalidFilter(String),
    /// A document cannot be indexed as given (no source or id, a reserved character in the
    /// source name). This is the calling connector's mistake, not the end user's.
    #[error("invalid document: {0}")]
    InvalidDocument(String),
    /// Another [`crate::IndexWriter`] is alive for this index (in this process or another).
    #[error("another index writer is already open")]
    WriterBusy,
    /// The index on disk is damaged or was written with another schema; see
    /// [`crate::SearchIndex::open_or_rebuild`].
    #[error("index at {path} is damaged: {reason}")]
    Corrupt {
        /// The index directory.
        path: PathBuf,
        /// What was found wrong.
        reason: String,
    },
    /// A filesystem operation around the index failed.
    #[error("index i/o failed at {path}")]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The commit payload could not be encoded.
    #[error("commit payload could not be encoded")]
    Payload(#[from] serde_json::Error),
    /// The search engine failed.
    #[error("search engine failure")]
    Engine(#[from] tantivy::TantivyError),
}

impl IndexError {
    /// True for mistakes in the caller's request (answer "bad request"), false for internal
    /// failures (log, answer "internal error").
    pub fn is_user_error(&self) -> bool {
        matches!(
            self,
            IndexError::InvalidRequest(_) | IndexError::InvalidFilter(_)
        )
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> IndexError {
        IndexError::Io {
            path: path.into(),
            source,
        }
    }
}
