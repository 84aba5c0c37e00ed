//! The connector trait and what a run receives: the last cursor, the fingerprints of the
//! documents already indexed, and a sink for the changes.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::mpsc;

use crate::error::ConnectorError;
use crate::model::Change;

/// The fingerprints of the documents already indexed for a source, so that a connector can skip
/// what has not changed.
///
/// They may be read only when first needed: a run that needs none of them (a feed answering
/// 304) then never pays for reading a whole source's ids from the index. From async code, call
/// [`KnownDocs::load`] before the first lookup, so that the reading happens off the async
/// threads and a failure to read stops the run; a lookup before it reads them in place.
#[async_trait::async_trait]
pub trait KnownDocs: Send + Sync {
    /// Makes the fingerprints ready. An error means they cannot be read: the run must fail
    /// rather than treat every document as new.
    async fn load(&self) -> Result<(), ConnectorError> {
        Ok(())
    }

    /// A known document: its fingerprint and, where the known documents have places, its
    /// place. `None` for a document not known. Borrowed: a re-sync looks up every document,
    /// and most only to compare.
    fn find(&self, external_id: &str) -> Option<KnownDoc<'_>>;

    /// The fingerprint of a known document; `None` for one not known (or without one).
    fn fingerprint(&self, external_id: &str) -> Option<&str> {
        self.find(external_id)?.fingerprint
    }

    /// Calls `each` with every known document's id and fingerprint, in no particular order.
    fn for_each(&self, each: &mut dyn FnMut(&str, &str));
}

/// A known document as [`KnownDocs::find`] gives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KnownDoc<'a> {
    /// The fingerprint it was indexed with, if it has one.
    pub fingerprint: Option<&'a str>,
    /// Its place among the source's known documents, by which [`Change::UnchangedKnown`]
    /// names it; `None` where the known documents have no places (a plain map).
    pub slot: Option<u32>,
}

/// Fingerprints without places: a connector reports these documents unchanged by id.
impl KnownDocs for HashMap<String, String> {
    fn find(&self, external_id: &str) -> Option<KnownDoc<'_>> {
        self.get(external_id).map(|fingerprint| KnownDoc {
            fingerprint: Some(fingerprint),
            slot: None,
        })
    }

    fn for_each(&self, each: &mut dyn FnMut(&str, &str)) {
        for (id, fingerprint) in self {
            each(id, fingerprint);
        }
    }
}

/// Where a connector sends its changes. The bounded channel gives back-pressure: a connector
/// never runs far ahead of the index writer.
#[derive(Clone, Debug)]
pub struct ChangeSink {
    tx: mpsc::Sender<Change>,
}

impl ChangeSink {
    pub fn new(tx: mpsc::Sender<Change>) -> Self {
        Self { tx }
    }

    /// Sends one change, waiting while the channel is full.
    ///
    /// Returns [`ConnectorError::Cancelled`] when the receiver is gone, which a connector
    /// should pass on with `?` so that it stops working for nobody.
    pub async fn send(&self, change: Change) -> Result<(), ConnectorError> {
        self.tx
            .send(change)
            .await
            .map_err(|_| ConnectorError::Cancelled)
    }

    /// Sends one change from a blocking thread (`spawn_blocking`), waiting while the channel
    /// is full. Never call it from async code: it would block the runtime.
    pub fn blocking_send(&self, change: Change) -> Result<(), ConnectorError> {
        // Most sends find room: only a full channel needs the machinery that parks the thread.
        match self.tx.try_send(change) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(change)) => self
                .tx
                .blocking_send(change)
                .map_err(|_| ConnectorError::Cancelled),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(ConnectorError::Cancelled),
        }
    }

    /// Sends changes in order from a blocking thread, as [`ChangeSink::blocking_send`] does,
    /// with each run of consecutive `Unchanged`s packed into one `UnchangedMany`.
    pub fn blocking_send_all(
        &self,
        changes: impl IntoIterator<Item = Change>,
    ) -> Result<(), ConnectorError> {
        let mut unchanged = Vec::new();
        for change in changes {
            match change {
                Change::Unchanged { external_id } => unchanged.push(external_id),
                other => {
                    self.blocking_send_unchanged(std::mem::take(&mut unchanged))?;
                    self.blocking_send(other)?;
                }
            }
        }
        self.blocking_send_unchanged(unchanged)
    }

    fn blocking_send_unchanged(&self, mut external_ids: Vec<String>) -> Result<(), ConnectorError> {
        match external_ids.len() {
            0 => Ok(()),
            1 => self.blocking_send(Change::Unchanged {
                external_id: external_ids.swap_remove(0),
            }),
            _ => self.blocking_send(Change::UnchangedMany { external_ids }),
        }
    }

    /// True once the receiver is gone.
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}

/// Everything one run of a connector receives.
#[derive(Clone)]
pub struct RunContext {
    /// The configured source's id, for logs.
    pub source_id: String,
    /// The cursor of the last committed checkpoint, if any.
    pub cursor: Option<String>,
    /// Ignore the cursor and list everything.
    pub full: bool,
    /// Fingerprints of the documents already indexed for this source.
    pub known: Arc<dyn KnownDocs>,
    pub sink: ChangeSink,
}

/// A portal seen as a stream of document changes.
#[async_trait::async_trait]
pub trait Connector: Send + Sync {
    /// The kind as written in the configuration ("file-share").
    fn kind(&self) -> &'static str;

    /// Tests connectivity and credentials. `Ok` carries human-readable notes such as
    /// "root /x is readable, 42 files match"; `Err` says exactly what is wrong.
    async fn check(&self) -> Result<Vec<String>, ConnectorError> {
        Ok(Vec::new())
    }

    /// Emits the changes since `ctx.cursor` (or everything when `ctx.full` or there is no
    /// cursor). Returns `Err` when the source failed, so that the caller deletes nothing.
    async fn run(&self, ctx: RunContext) -> Result<(), ConnectorError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unchanged(id: &str) -> Change {
        Change::Unchanged {
            external_id: id.to_owned(),
        }
    }

    #[test]
    fn unchanged_documents_in_a_row_go_as_one_message() {
        let (tx, mut rx) = mpsc::channel(16);
        let sink = ChangeSink::new(tx);
        let upsert = Change::Upsert(Box::default());
        let delete = Change::Delete {
            external_id: "d".to_owned(),
        };
        sink.blocking_send_all([
            unchanged("a"),
            unchanged("b"),
            upsert.clone(),
            unchanged("c"),
            delete.clone(),
            unchanged("e"),
            unchanged("f"),
            unchanged("g"),
        ])
        .unwrap();
        sink.blocking_send_all([]).unwrap();
        drop(sink);
        let many = |ids: &[&str]| Change::UnchangedMany {
            external_ids: ids.iter().map(|id| id.to_string()).collect(),
        };
        let mut sent = Vec::new();
        while let Some(change) = rx.blocking_recv() {
            sent.push(change);
        }
        assert_eq!(
            sent,
            [
                many(&["a", "b"]),
                upsert,
                unchanged("c"),
                delete,
                many(&["e", "f", "g"]),
            ]
        );
        let singles: Vec<Change> = sent.into_iter().flat_map(Change::into_singles).collect();
        assert_eq!(singles.len(), 8);
        assert_eq!(singles[6], unchanged("f"));
    }

    #[test]
    fn blocking_sends_wait_for_room_and_stop_when_the_receiver_is_gone() {
        let (tx, mut rx) = mpsc::channel(1);
        let sink = ChangeSink::new(tx);
        let sender = std::thread::spawn(move || {
            // The first finds room, the second waits until the first is taken.
            sink.blocking_send(unchanged("a")).unwrap();
            sink.blocking_send(unchanged("b")).unwrap();
            sink
        });
        assert_eq!(rx.blocking_recv(), Some(unchanged("a")));
        assert_eq!(rx.blocking_recv(), Some(unchanged("b")));
        let sink = sender.join().unwrap();
        // Full, then closed while waiting, and closed outright.
        sink.blocking_send(unchanged("c")).unwrap();
        let waiting = std::thread::spawn({
            let sink = sink.clone();
            move || sink.blocking_send(unchanged("d"))
        });
        std::thread::sleep(std::time::Duration::from_millis(50));
        drop(rx);
        assert!(matches!(
            waiting.join().unwrap(),
            Err(ConnectorError::Cancelled)
        ));
        assert!(matches!(
            sink.blocking_send(unchanged("e")),
            Err(ConnectorError::Cancelled)
        ));
    }
}
