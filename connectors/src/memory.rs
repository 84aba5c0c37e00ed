//! An in-memory connector that replays a fixed list of changes: the test double for the sync
//! and indexing code in `src/`, where a real portal would make a test slow or flaky.

use crate::connector::{Connector, RunContext};
use crate::error::ConnectorError;
use crate::model::Change;

/// Emits a fixed list of changes in order, optionally failing part-way.
///
/// When the run has a cursor (and is not `full`), emission resumes after the
/// `Checkpoint { cursor }` with that cursor, the way a real incremental connector resumes; an
/// unknown cursor replays everything.
#[derive(Clone, Debug, Default)]
pub struct MemoryConnector {
    changes: Vec<Change>,
    failure: Option<(usize, String)>,
}

impl MemoryConnector {
    pub fn new(changes: Vec<Change>) -> Self {
        Self {
            changes,
            failure: None,
        }
    }

    /// After emitting `n` changes, the run fails with
    /// [`ConnectorError::Unavailable`] carrying `message`, like a source that goes down
    /// mid-sync.
    pub fn fail_after(mut self, n: usize, message: impl Into<String>) -> Self {
        self.failure = Some((n, message.into()));
        self
    }

    fn start_index(&self, ctx: &RunContext) -> usize {
        let Some(cursor) = ctx.cursor.as_deref().filter(|_| !ctx.full) else {
            return 0;
        };
        self.changes
            .iter()
            .position(|c| matches!(c, Change::Checkpoint { cursor: seen } if seen == cursor))
            .map_or(0, |i| i + 1)
    }
}

#[async_trait::async_trait]
impl Connector for MemoryConnector {
    fn kind(&self) -> &'static str {
        "memory"
    }

    async fn check(&self) -> Result<Vec<String>, ConnectorError> {
        match &self.failure {
            Some((0, message)) => Err(ConnectorError::Unavailable {
                reason: message.clone(),
            }),
            _ => Ok(vec![format!(
                "memory connector with {} changes",
                self.changes.len()
            )]),
        }
    }

    async fn run(&self, ctx: RunContext) -> Result<(), ConnectorError> {
        let start = self.start_index(&ctx);
        for (emitted, change) in self.changes[start..].iter().enumerate() {
            if let Some((n, message)) = &self.failure
                && emitted >= *n
            {
                return Err(ConnectorError::Unavailable {
                    reason: message.clone(),
                });
            }
            ctx.sink.send(change.clone()).await?;
        }
        match &self.failure {
            Some((_, message)) => Err(ConnectorError::Unavailable {
                reason: message.clone(),
            }),
            None => Ok(()),
        }
    }
}
