//! The document model every connector emits. `src/` converts it into the index's own type.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One document as a connector sees it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Document {
    /// Stable within the source (file share: the relative path with `/` separators).
    pub external_id: String,
    /// "file", "page", "article", "person", ...
    pub kind: String,
    pub title: String,
    pub body: String,
    pub url: Option<String>,
    pub author: Option<String>,
    /// "da" / "en" when the source knows it.
    pub language: Option<String>,
    pub created: Option<DateTime<Utc>>,
    pub updated: Option<DateTime<Utc>>,
    /// Principals allowed to see the document ("group:ledere", "user:mette", "authenticated",
    /// "public"). Empty means nobody may see it: an unmappable permission must never widen
    /// access.
    pub acl: Vec<String>,
    pub tags: Vec<String>,
    /// Opaque change marker, handed back through `KnownDocs` on the next run.
    pub fingerprint: Option<String>,
    /// Structured facts shown beside the text, such as a person's `phone`, `mail`,
    /// `department` and `manager`. Stored for display; searched only through `body`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub properties: BTreeMap<String, String>,
}

/// One event of a connector run.
// The document is boxed: a change is moved several times on its way to the index writer (into
// a batch, the channel, out of it), and most changes of a re-sync are small `Unchanged`s that
// would otherwise each be moved at a whole document's size.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    /// The document is new or changed.
    Upsert(Box<Document>),
    /// Seen and not modified: counts as seen for mark-and-sweep.
    Unchanged { external_id: String },
    /// Several documents seen and not modified, as many `Unchanged`s in this order: one
    /// message where a connector finds thousands in a row (a file share's walk), so that the
    /// receiver handles them together instead of being woken for each.
    UnchangedMany { external_ids: Vec<String> },
    /// Several known documents seen and not modified, named by their places
    /// ([`crate::KnownDoc::slot`]) rather than their ids, in this order: what a re-sync
    /// sends for most of a large source, at four bytes a document and no id to hash or free.
    UnchangedKnown { slots: Vec<u32> },
    /// The source said the document is gone.
    Delete { external_id: String },
    /// The document could not be read. Reported, never fatal: the old indexed version stays.
    Failed { external_id: String, error: String },
    /// Everything before this event is complete and may be committed with this cursor.
    Checkpoint { cursor: String },
    /// A full, successful listing of the source has been emitted.
    TraversalComplete,
}

impl Change {
    /// The document id this change concerns, if any.
    pub fn external_id(&self) -> Option<&str> {
        match self {
            Change::Upsert(doc) => Some(&doc.external_id),
            Change::Unchanged { external_id }
            | Change::Delete { external_id }
            | Change::Failed { external_id, .. } => Some(external_id),
            Change::Checkpoint { .. }
            | Change::TraversalComplete
            | Change::UnchangedMany { .. }
            | Change::UnchangedKnown { .. } => None,
        }
    }

    /// The change as single changes: an `UnchangedMany` as its `Unchanged`s, any other as
    /// itself (an `UnchangedKnown` too: only the known documents can name its slots).
    pub fn into_singles(self) -> impl Iterator<Item = Change> {
        let (many, one) = match self {
            Change::UnchangedMany { external_ids } => (external_ids, None),
            other => (Vec::new(), Some(other)),
        };
        many.into_iter()
            .map(|external_id| Change::Unchanged { external_id })
            .chain(one)
    }

    /// The cursor of a checkpoint.
    pub fn cursor(&self) -> Option<&str> {
        match self {
            Change::Checkpoint { cursor } => Some(cursor),
            _ => None,
        }
    }
}
