//! The connector error type: configuration mistakes are kept apart from source failures so
//! that the binary can tell an administrator "fix your config" from "the share is down".

use std::path::PathBuf;

use crate::extract::ExtractError;

/// Why a connector could not be built, checked or run.
#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    /// The connector's configuration is wrong; retrying will not help.
    #[error("invalid configuration: {0}")]
    Config(String),

    /// The source could not be reached or answered with an error.
    #[error("source unavailable: {reason}")]
    Unavailable { reason: String },

    /// The source was reached but could not be listed completely, so a mark-and-sweep based on
    /// this run would delete documents that still exist.
    #[error("listing incomplete: {reason}")]
    Incomplete { reason: String },

    /// A file-system operation on the source failed.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// Text extraction failed for a document that the connector could not skip.
    #[error(transparent)]
    Extract(#[from] ExtractError),

    /// The receiver of changes went away, so the run stopped; nothing is wrong with the source.
    #[error("run cancelled: the receiver of changes is gone")]
    Cancelled,

    /// A bug or an unexpected condition inside the connector (for example a task that panicked).
    #[error("internal connector error: {0}")]
    Internal(String),
}

impl ConnectorError {
    /// True for mistakes in the configuration (fix the TOML), false for failures of the source
    /// or the connector (retry later, look at the source).
    pub fn is_config(&self) -> bool {
        matches!(self, ConnectorError::Config(_))
    }
}
