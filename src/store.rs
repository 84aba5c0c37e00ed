//! The state database: one SQLite file under the data directory holding what is not in the
//! search index — sync run history and their errors, the audit log and the login sessions.
//!
//! It is not the place for documents (those live in the tantivy index) nor for configuration
//! (the TOML files are the single source of truth). Every call runs on `spawn_blocking`, so
//! callers on the async executor never wait on disk I/O themselves.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, ErrorCode, OptionalExtension, TransactionBehavior, params};
use serde::Serialize;

/// How long a statement waits for another connection (a second `samle` process, such as a CLI
/// sync next to the server) to release its lock before failing with "database is locked".
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Only the first errors of a run are kept: a source that fails on every document would
/// otherwise write millions of rows, and the first fifty tell the administrator what is wrong.
pub const MAX_ERRORS_PER_RUN: u64 = 50;

/// Longest error message kept, in bytes. Connectors sometimes put a whole HTML error page in
/// their message; the start of it is enough to diagnose, the rest only bloats the database.
const MAX_ERROR_MESSAGE_BYTES: usize = 4096;

/// The triggers a sync run may have; anything else is a programming error in the caller.
pub const RUN_TRIGGERS: &[&str] = &["schedule", "startup", "cli", "manual"];

/// Schema migrations, applied in order. Entry `i` brings the schema from `user_version == i`
/// to `i + 1`. Never edit an entry that has shipped: append a new one.
const MIGRATIONS: &[&str] = &[
    // 1: sync runs, their errors, the audit log and the login sessions. Timestamps are unix
    // seconds (UTC) everywhere, so that the session expiry can be compared in SQL.
    "
    CREATE TABLE runs (
        id           INTEGER PRIMARY KEY AUTOINCREMENT,
        source       TEXT    NOT NULL,
        triggered_by TEXT    NOT NULL,
        is_full      INTEGER NOT NULL,
        started_at   INTEGER NOT NULL,
        finished_at  INTEGER,
        status       TEXT    NOT NULL,
        seen         INTEGER NOT NULL DEFAULT 0,
        added        INTEGER NOT NULL DEFAULT 0,
        updated      INTEGER NOT NULL DEFAULT 0,
        unchanged    INTEGER NOT NULL DEFAULT 0,
        deleted      INTEGER NOT NULL DEFAULT 0,
        failed       INTEGER NOT NULL DEFAULT 0,
        error_count  INTEGER NOT NULL DEFAULT 0,
        message      TEXT
    ) STRICT;
    CREATE INDEX runs_by_source ON runs (source, id);
    CREATE INDEX runs_by_status ON runs (status);

    CREATE TABLE run_errors (
        run_id   INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        seq      INTEGER NOT NULL,
        document TEXT,
        message  TEXT    NOT NULL,
        at       INTEGER NOT NULL,
        PRIMARY KEY (run_id, seq)
    ) STRICT;

    CREATE TABLE audit (
        id     INTEGER PRIMARY KEY AUTOINCREMENT,
        at     INTEGER NOT NULL,
        actor  TEXT,
        action TEXT    NOT NULL,
        detail TEXT    NOT NULL,
        client TEXT
    ) STRICT;

    CREATE TABLE sessions (
        id         TEXT    PRIMARY KEY,
        data       TEXT    NOT NULL,
        expires_at INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX sessions_by_expiry ON sessions (expires_at);
    ",
];

/// The schema version this program writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create the directory for database {path}: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open database {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("cannot set up database {path}: {message}")]
    Setup { path: PathBuf, message: String },
    #[error(
        "database {path} failed its integrity check ({report}); restore it from a backup or move it away to start with an empty state database"
    )]
    Corrupt { path: PathBuf, report: String },
    #[error(
        "database {path} has schema version {found}, newer than this program supports ({supported}); run a newer samle"
    )]
    TooNew {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    #[error("cannot migrate database {path} to schema version {version}: {source}")]
    Migrate {
        path: PathBuf,
        version: i64,
        source: rusqlite::Error,
    },
    #[error("database {path} could not be written: the disk is full")]
    DiskFull { path: PathBuf },
    #[error("no sync run with id {0}")]
    NoSuchRun(i64),
    #[error("invalid argument: {0}")]
    Invalid(String),
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("database task failed: {0}")]
    Task(String),
}

impl StoreError {
    /// Whether the error is the caller's mistake (an unknown run, a bad argument) rather than a
    /// failure of the database itself.
    pub fn is_caller_error(&self) -> bool {
        matches!(self, StoreError::NoSuchRun(_) | StoreError::Invalid(_))
    }
}

/// Whether a SQLite error means the disk (or the page limit) is full.
fn is_disk_full(err: &rusqlite::Error) -> bool {
    err.sqlite_error_code() == Some(ErrorCode::DiskFull)
}

/// Whether a SQLite error means the file is damaged or is not a database at all.
fn is_corruption(err: &rusqlite::Error) -> bool {
    matches!(
        err.sqlite_error_code(),
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase)
    )
}

/// A handle on the state database. Cloning is cheap; all clones share one connection.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    // One connection behind a mutex is enough: writes are few (runs, audit, sessions) and
    // SQLite serialises writers anyway. A std mutex is right because it is only ever locked
    // inside `spawn_blocking`, never across an await.
    conn: Mutex<Connection>,
    path: PathBuf,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RunCounts {
    pub seen: u64,
    pub added: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub deleted: u64,
    pub failed: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct RunOutcome {
    pub status: RunStatus,
    pub counts: RunCounts,
    pub message: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Running,
    Ok,
    Failed,
    Interrupted,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Ok => "ok",
            RunStatus::Failed => "failed",
            RunStatus::Interrupted => "interrupted",
        }
    }

    pub fn parse(s: &str) -> Option<RunStatus> {
        match s {
            "running" => Some(RunStatus::Running),
            "ok" => Some(RunStatus::Ok),
            "failed" => Some(RunStatus::Failed),
            "interrupted" => Some(RunStatus::Interrupted),
            _ => None,
        }
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct RunRecord {
    pub id: i64,
    pub source: String,
    pub trigger: String,
    pub full: bool,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub status: RunStatus,
    pub counts: RunCounts,
    pub error_count: u64,
    pub message: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct RunErrorRecord {
    pub document: Option<String>,
    pub message: String,
    pub at: DateTime<Utc>,
}

#[derive(Clone, Debug, Serialize)]
pub struct AuditRecord {
    pub at: DateTime<Utc>,
    pub actor: Option<String>,
    pub action: String,
    pub detail: String,
    pub client: Option<String>,
}

impl Store {
    /// Opens (creating if needed) the database at `path`, checks its integrity and brings its
    /// schema up to date.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| StoreError::CreateDir {
                path: path.to_path_buf(),
                source,
            })?;
        }
        let open_err = |source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        };
        let mut conn = Connection::open(path).map_err(open_err)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;

        // Check before anything writes to the file: migrating or switching the journal mode of
        // a damaged database could make it worse.
        quick_check(&conn).map_err(|err| match err {
            CheckError::Sqlite(e) if is_corruption(&e) => StoreError::Corrupt {
                path: path.to_path_buf(),
                report: e.to_string(),
            },
            CheckError::Sqlite(e) => open_err(e),
            CheckError::Failed(report) => StoreError::Corrupt {
                path: path.to_path_buf(),
                report,
            },
        })?;

        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .map_err(open_err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            // WAL is what lets readers proceed during a write and keeps a crash mid-commit
            // harmless; a file system that cannot do it (some network shares) is not supported.
            return Err(StoreError::Setup {
                path: path.to_path_buf(),
                message: format!(
                    "the file system does not support write-ahead logging (journal mode is {mode})"
                ),
            });
        }
        // FULL rather than NORMAL: in WAL mode NORMAL survives a process crash but may lose
        // the last commits on power loss, and an audit entry or a logout that was acknowledged
        // must not come back undone. The write rate here (runs, audit, sessions) is low enough
        // that one fsync per commit costs nothing noticeable.
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(open_err)?;
        conn.pragma_update(None, "foreign_keys", true)
            .map_err(open_err)?;

        migrate(&mut conn, path)?;

        tracing::debug!(path = %path.display(), schema_version = SCHEMA_VERSION, "state database opened");
        Ok(Store {
            inner: Arc::new(Inner {
                conn: Mutex::new(conn),
                path: path.to_path_buf(),
            }),
        })
    }

    /// The file this store was opened from.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs `f` with the connection on the blocking thread pool.
    pub async fn call<F, R>(&self, f: F) -> Result<R, StoreError>
    where
        F: FnOnce(&mut Connection) -> rusqlite::Result<R> + Send + 'static,
        R: Send + 'static,
    {
        self.with_conn(move |conn| f(conn).map_err(StoreError::from))
            .await
    }

    /// Like [`Store::call`], but the closure may return the store's own errors.
    async fn with_conn<F, R>(&self, f: F) -> Result<R, StoreError>
    where
        F: FnOnce(&mut Connection) -> Result<R, StoreError> + Send + 'static,
        R: Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        let result = tokio::task::spawn_blocking(move || {
            // A panic inside an earlier closure poisons the mutex, but the connection itself
            // is still sound: an open transaction was rolled back when it was dropped during
            // unwinding. Refusing every later call would turn one bug into an outage.
            let mut conn = inner.conn.lock().unwrap_or_else(PoisonError::into_inner);
            f(&mut conn)
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?;
        result.map_err(|err| match err {
            StoreError::Sqlite(e) if is_disk_full(&e) => {
                tracing::error!(path = %self.inner.path.display(), "state database write failed: disk full");
                StoreError::DiskFull {
                    path: self.inner.path.clone(),
                }
            }
            other => other,
        })
    }

    /// Runs SQLite's quick integrity check on the open database.
    pub async fn quick_check(&self) -> Result<(), StoreError> {
        let path = self.inner.path.clone();
        self.with_conn(move |conn| {
            quick_check(conn).map_err(|err| match err {
                CheckError::Sqlite(e) => StoreError::Sqlite(e),
                CheckError::Failed(report) => StoreError::Corrupt { path, report },
            })
        })
        .await
    }

    // ---- sync runs ----

    /// Records the start of a sync run and returns its id.
    pub async fn run_started(
        &self,
        source: &str,
        trigger: &str,
        full: bool,
    ) -> Result<i64, StoreError> {
        if !RUN_TRIGGERS.contains(&trigger) {
            return Err(StoreError::Invalid(format!(
                "unknown run trigger {trigger:?} (expected one of {})",
                RUN_TRIGGERS.join(", ")
            )));
        }
        let source = source.to_owned();
        let trigger = trigger.to_owned();
        self.call(move |conn| {
            conn.execute(
                "INSERT INTO runs (source, triggered_by, is_full, started_at, status)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    source,
                    trigger,
                    full,
                    Utc::now().timestamp(),
                    RunStatus::Running.as_str()
                ],
            )?;
            Ok(conn.last_insert_rowid())
        })
        .await
    }

    /// Records how a run ended.
    pub async fn run_finished(&self, run_id: i64, outcome: &RunOutcome) -> Result<(), StoreError> {
        if outcome.status == RunStatus::Running {
            return Err(StoreError::Invalid(
                "a finished run cannot have the status \"running\"".to_owned(),
            ));
        }
        let outcome = outcome.clone();
        self.with_conn(move |conn| {
            let c = &outcome.counts;
            let changed = conn.execute(
                "UPDATE runs SET finished_at = ?2, status = ?3, seen = ?4, added = ?5,
                        updated = ?6, unchanged = ?7, deleted = ?8, failed = ?9, message = ?10
                 WHERE id = ?1",
                params![
                    run_id,
                    Utc::now().timestamp(),
                    outcome.status.as_str(),
                    to_sql_int(c.seen),
                    to_sql_int(c.added),
                    to_sql_int(c.updated),
                    to_sql_int(c.unchanged),
                    to_sql_int(c.deleted),
                    to_sql_int(c.failed),
                    outcome.message.as_deref().map(truncate_message),
                ],
            )?;
            if changed == 0 {
                return Err(StoreError::NoSuchRun(run_id));
            }
            Ok(())
        })
        .await
    }

    /// Records one error of a run. Every error is counted, but only the first
    /// [`MAX_ERRORS_PER_RUN`] are kept.
    pub async fn run_error(
        &self,
        run_id: i64,
        document: Option<&str>,
        message: &str,
    ) -> Result<(), StoreError> {
        let document = document.map(str::to_owned);
        let message = truncate_message(message).to_owned();
        self.with_conn(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let count: Option<u64> = tx
                .query_row(
                    "UPDATE runs SET error_count = error_count + 1 WHERE id = ?1
                     RETURNING error_count",
                    params![run_id],
                    |row| get_u64(row, 0),
                )
                .optional()?;
            let Some(count) = count else {
                return Err(StoreError::NoSuchRun(run_id));
            };
            if count <= MAX_ERRORS_PER_RUN {
                tx.execute(
                    "INSERT INTO run_errors (run_id, seq, document, message, at)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![
                        run_id,
                        to_sql_int(count),
                        document,
                        message,
                        Utc::now().timestamp()
                    ],
                )?;
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    /// The most recent runs, newest first, of one source or of all.
    pub async fn recent_runs(
        &self,
        source: Option<&str>,
        limit: usize,
    ) -> Result<Vec<RunRecord>, StoreError> {
        let source = source.map(str::to_owned);
        let limit = clamp_limit(limit);
        self.call(move |conn| {
            let sql = format!(
                "SELECT {RUN_COLUMNS} FROM runs
                 WHERE (?1 IS NULL OR source = ?1)
                 ORDER BY id DESC LIMIT ?2"
            );
            let mut stmt = conn.prepare_cached(&sql)?;
            let rows = stmt.query_map(params![source, limit], run_from_row)?;
            rows.collect()
        })
        .await
    }

    /// The latest run of every source that has one, keyed by source.
    pub async fn last_runs(&self) -> Result<BTreeMap<String, RunRecord>, StoreError> {
        self.call(|conn| {
            let sql = format!(
                "SELECT {RUN_COLUMNS} FROM runs
                 WHERE id IN (SELECT MAX(id) FROM runs GROUP BY source)"
            );
            let mut stmt = conn.prepare_cached(&sql)?;
            let rows = stmt.query_map([], run_from_row)?;
            rows.map(|r| r.map(|run| (run.source.clone(), run)))
                .collect()
        })
        .await
    }

    /// The latest successful run of every source that has one, keyed by source: the
    /// index's copy of the source is complete as of that run's start.
    pub async fn last_ok_runs(&self) -> Result<BTreeMap<String, RunRecord>, StoreError> {
        self.call(|conn| {
            let sql = format!(
                "SELECT {RUN_COLUMNS} FROM runs
                 WHERE id IN (SELECT MAX(id) FROM runs WHERE status = 'ok' GROUP BY source)"
            );
            let mut stmt = conn.prepare_cached(&sql)?;
            let rows = stmt.query_map([], run_from_row)?;
            rows.map(|r| r.map(|run| (run.source.clone(), run)))
                .collect()
        })
        .await
    }

    /// The kept errors of a run, oldest first.
    pub async fn run_errors(&self, run_id: i64) -> Result<Vec<RunErrorRecord>, StoreError> {
        self.call(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT document, message, at FROM run_errors WHERE run_id = ?1 ORDER BY seq",
            )?;
            let rows = stmt.query_map(params![run_id], |row| {
                Ok(RunErrorRecord {
                    document: row.get(0)?,
                    message: row.get(1)?,
                    at: timestamp(row, 2)?,
                })
            })?;
            rows.collect()
        })
        .await
    }

    /// Marks runs left "running" by a process that died as "interrupted"; returns how many
    /// were marked. Call once at start-up, before starting any run, and only once nothing else
    /// can be syncing on this database (for example after taking the index writer lock):
    /// otherwise the live run of a concurrent `samle sync` would be marked too.
    pub async fn mark_interrupted_runs(&self) -> Result<u64, StoreError> {
        // Not logged here: the caller knows whether this is a server start or a CLI run.
        self.call(|conn| {
            let n = conn.execute(
                "UPDATE runs SET status = ?1, finished_at = ?2,
                        message = COALESCE(message, 'the process stopped before the run finished')
                 WHERE status = ?3",
                params![
                    RunStatus::Interrupted.as_str(),
                    Utc::now().timestamp(),
                    RunStatus::Running.as_str()
                ],
            )?;
            Ok(n as u64)
        })
        .await
    }

    // ---- audit log ----

    /// Appends an entry to the audit log.
    pub async fn audit(
        &self,
        actor: Option<&str>,
        action: &str,
        detail: &str,
        client: Option<&str>,
    ) -> Result<(), StoreError> {
        let actor = actor.map(str::to_owned);
        let action = action.to_owned();
        let detail = detail.to_owned();
        let client = client.map(str::to_owned);
        self.call(move |conn| {
            conn.execute(
                "INSERT INTO audit (at, actor, action, detail, client) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![Utc::now().timestamp(), actor, action, detail, client],
            )?;
            Ok(())
        })
        .await
    }

    /// The most recent audit entries, newest first.
    pub async fn recent_audit(&self, limit: usize) -> Result<Vec<AuditRecord>, StoreError> {
        let limit = clamp_limit(limit);
        self.call(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT at, actor, action, detail, client FROM audit ORDER BY id DESC LIMIT ?1",
            )?;
            let rows = stmt.query_map(params![limit], |row| {
                Ok(AuditRecord {
                    at: timestamp(row, 0)?,
                    actor: row.get(1)?,
                    action: row.get(2)?,
                    detail: row.get(3)?,
                    client: row.get(4)?,
                })
            })?;
            rows.collect()
        })
        .await
    }
}

const RUN_COLUMNS: &str = "id, source, triggered_by, is_full, started_at, finished_at, status, \
     seen, added, updated, unchanged, deleted, failed, error_count, message";

fn run_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<RunRecord> {
    let status: String = row.get(6)?;
    let status = RunStatus::parse(&status).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            6,
            rusqlite::types::Type::Text,
            format!("unknown run status {status:?}").into(),
        )
    })?;
    Ok(RunRecord {
        id: row.get(0)?,
        source: row.get(1)?,
        trigger: row.get(2)?,
        full: row.get(3)?,
        started_at: timestamp(row, 4)?,
        finished_at: row
            .get::<_, Option<i64>>(5)?
            .map(|secs| to_datetime(5, secs))
            .transpose()?,
        status,
        counts: RunCounts {
            seen: get_u64(row, 7)?,
            added: get_u64(row, 8)?,
            updated: get_u64(row, 9)?,
            unchanged: get_u64(row, 10)?,
            deleted: get_u64(row, 11)?,
            failed: get_u64(row, 12)?,
        },
        error_count: get_u64(row, 13)?,
        message: row.get(14)?,
    })
}

/// Counts are `u64` in Rust but SQLite integers are signed; no count comes near `i64::MAX`,
/// so saturating is only a guard against nonsense input.
fn to_sql_int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn get_u64(row: &rusqlite::Row<'_>, idx: usize) -> rusqlite::Result<u64> {
    let n: i64 = row.get(idx)?;
    u64::try_from(n).map_err(|_| {
        rusqlite::Error::FromSqlConversionFailure(
            idx,
            rusqlite::types::Type::Integer,
            format!("negative count {n}").into(),
        )
    })
}

fn timestamp(row: &rusqlite::Row<'_>, idx: usize) -> rusqlite::Result<DateTime<Utc>> {
    to_datetime(idx, row.get(idx)?)
}

fn to_datetime(idx: usize, secs: i64) -> rusqlite::Result<DateTime<Utc>> {
    DateTime::from_timestamp(secs, 0).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            idx,
            rusqlite::types::Type::Integer,
            format!("timestamp {secs} out of range").into(),
        )
    })
}

/// SQLite limits are signed; a `usize::MAX` "no limit" must not wrap to a negative number.
fn clamp_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

fn truncate_message(message: &str) -> &str {
    if message.len() <= MAX_ERROR_MESSAGE_BYTES {
        return message;
    }
    let mut end = MAX_ERROR_MESSAGE_BYTES;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    &message[..end]
}

enum CheckError {
    Sqlite(rusqlite::Error),
    Failed(String),
}

fn quick_check(conn: &Connection) -> Result<(), CheckError> {
    let mut stmt = conn
        .prepare("PRAGMA quick_check")
        .map_err(CheckError::Sqlite)?;
    let lines = stmt
        .query_map([], |row| row.get::<_, String>(0))
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<String>>>())
        .map_err(CheckError::Sqlite)?;
    if lines.len() == 1 && lines[0] == "ok" {
        Ok(())
    } else {
        Err(CheckError::Failed(lines.join("; ")))
    }
}

fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    loop {
        // IMMEDIATE takes the write lock before reading the version, so two processes opening
        // the same new database cannot both apply the same migration.
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|source| StoreError::Open {
                path: path.to_path_buf(),
                source,
            })?;
        let version: i64 = tx
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(|source| StoreError::Open {
                path: path.to_path_buf(),
                source,
            })?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::TooNew {
                path: path.to_path_buf(),
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
        let Some(sql) = usize::try_from(version)
            .ok()
            .and_then(|v| MIGRATIONS.get(v))
        else {
            return Ok(());
        };
        let target = version + 1;
        let migrate_err = |source| StoreError::Migrate {
            path: path.to_path_buf(),
            version: target,
            source,
        };
        tx.execute_batch(sql).map_err(migrate_err)?;
        // user_version lives in the database header, which is part of the transaction: the
        // schema change and the version bump commit together or not at all.
        tx.pragma_update(None, "user_version", target)
            .map_err(migrate_err)?;
        tx.commit().map_err(migrate_err)?;
        tracing::info!(path = %path.display(), version = target, "state database migrated");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("state/samle.db")).unwrap();
        (dir, store)
    }

    fn user_version(store: &Store) -> i64 {
        let conn = store.inner.conn.lock().unwrap();
        conn.pragma_query_value(None, "user_version", |row| row.get(0))
            .unwrap()
    }

    #[tokio::test]
    async fn open_creates_parent_dir_and_sets_pragmas() {
        let (_dir, store) = temp_store();
        assert!(store.path().exists());
        let (mode, sync, fk): (String, i64, i64) = store
            .call(|c| {
                Ok((
                    c.pragma_query_value(None, "journal_mode", |r| r.get(0))?,
                    c.pragma_query_value(None, "synchronous", |r| r.get(0))?,
                    c.pragma_query_value(None, "foreign_keys", |r| r.get(0))?,
                ))
            })
            .await
            .unwrap();
        assert_eq!(mode, "wal");
        assert_eq!(sync, 2, "synchronous=FULL");
        assert_eq!(fk, 1);
        store.quick_check().await.unwrap();
    }

    #[tokio::test]
    async fn migrations_are_idempotent_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("samle.db");
        let store = Store::open(&path).unwrap();
        assert_eq!(user_version(&store), SCHEMA_VERSION);
        store
            .audit(Some("mette"), "login", "ok", None)
            .await
            .unwrap();
        drop(store);
        for _ in 0..3 {
            let store = Store::open(&path).unwrap();
            assert_eq!(user_version(&store), SCHEMA_VERSION);
            assert_eq!(store.recent_audit(10).await.unwrap().len(), 1);
        }
    }

    #[tokio::test]
    async fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("samle.db");
        drop(Store::open(&path).unwrap());
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        drop(conn);
        let err = Store::open(&path).unwrap_err();
        assert!(matches!(err, StoreError::TooNew { .. }), "{err}");
        assert!(err.to_string().contains("samle.db"), "{err}");
    }

    #[test]
    fn a_file_that_is_not_a_database_is_refused_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("samle.db");
        std::fs::write(&path, vec![0x5a; 8192]).unwrap();
        let err = Store::open(&path).unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
        assert!(err.to_string().contains(&*path.to_string_lossy()), "{err}");
    }

    #[test]
    fn an_unopenable_path_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        // A directory where the database file should be.
        let path = dir.path().join("samle.db");
        std::fs::create_dir(&path).unwrap();
        let err = Store::open(&path).unwrap_err();
        assert!(err.to_string().contains(&*path.to_string_lossy()), "{err}");
    }

    #[tokio::test]
    async fn run_lifecycle() {
        let (_dir, store) = temp_store();
        let id = store.run_started("wiki", "schedule", true).await.unwrap();
        let runs = store.recent_runs(None, 10).await.unwrap();
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].id, id);
        assert_eq!(runs[0].status, RunStatus::Running);
        assert!(runs[0].full);
        assert_eq!(runs[0].trigger, "schedule");
        assert!(runs[0].finished_at.is_none());

        let counts = RunCounts {
            seen: 10,
            added: 3,
            updated: 2,
            unchanged: 4,
            deleted: 1,
            failed: 1,
        };
        store
            .run_finished(
                id,
                &RunOutcome {
                    status: RunStatus::Ok,
                    counts: counts.clone(),
                    message: Some("traversal complete".into()),
                },
            )
            .await
            .unwrap();
        let run = &store.recent_runs(Some("wiki"), 10).await.unwrap()[0];
        assert_eq!(run.status, RunStatus::Ok);
        assert_eq!(run.counts, counts);
        assert_eq!(run.message.as_deref(), Some("traversal complete"));
        assert!(run.finished_at.unwrap() >= run.started_at);
    }

    #[tokio::test]
    async fn recent_and_last_runs_are_newest_first_per_source() {
        let (_dir, store) = temp_store();
        let a1 = store.run_started("a", "startup", true).await.unwrap();
        let b1 = store.run_started("b", "cli", false).await.unwrap();
        let a2 = store.run_started("a", "manual", false).await.unwrap();
        let all: Vec<i64> = store
            .recent_runs(None, 10)
            .await
            .unwrap()
            .iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(all, vec![a2, b1, a1]);
        let only_a: Vec<i64> = store
            .recent_runs(Some("a"), 10)
            .await
            .unwrap()
            .iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(only_a, vec![a2, a1]);
        assert_eq!(store.recent_runs(None, 1).await.unwrap().len(), 1);
        assert_eq!(store.recent_runs(None, usize::MAX).await.unwrap().len(), 3);

        let last = store.last_runs().await.unwrap();
        assert_eq!(last.len(), 2);
        assert_eq!(last["a"].id, a2);
        assert_eq!(last["b"].id, b1);

        // The last successful run ignores later failures and runs still going.
        let finish = |status| RunOutcome {
            status,
            counts: RunCounts::default(),
            message: None,
        };
        store
            .run_finished(a1, &finish(RunStatus::Ok))
            .await
            .unwrap();
        store
            .run_finished(a2, &finish(RunStatus::Failed))
            .await
            .unwrap();
        let a3 = store.run_started("a", "manual", false).await.unwrap();
        let ok = store.last_ok_runs().await.unwrap();
        assert_eq!(ok.len(), 1, "b has not succeeded: {ok:?}");
        assert_eq!(ok["a"].id, a1);
        store
            .run_finished(a3, &finish(RunStatus::Ok))
            .await
            .unwrap();
        assert_eq!(store.last_ok_runs().await.unwrap()["a"].id, a3);
    }

    #[tokio::test]
    async fn bad_run_arguments_are_caller_errors() {
        let (_dir, store) = temp_store();
        let err = store.run_started("a", "cron", false).await.unwrap_err();
        assert!(err.is_caller_error(), "{err}");
        let outcome = RunOutcome {
            status: RunStatus::Ok,
            counts: RunCounts::default(),
            message: None,
        };
        let err = store.run_finished(999, &outcome).await.unwrap_err();
        assert!(matches!(err, StoreError::NoSuchRun(999)), "{err}");
        let err = store.run_error(999, None, "x").await.unwrap_err();
        assert!(matches!(err, StoreError::NoSuchRun(999)), "{err}");
        let id = store.run_started("a", "cli", false).await.unwrap();
        let running = RunOutcome {
            status: RunStatus::Running,
            ..outcome
        };
        assert!(
            store
                .run_finished(id, &running)
                .await
                .unwrap_err()
                .is_caller_error()
        );
    }

    #[tokio::test]
    async fn only_the_first_errors_are_kept_but_all_are_counted() {
        let (_dir, store) = temp_store();
        let id = store.run_started("files", "manual", true).await.unwrap();
        let other = store.run_started("feeds", "manual", true).await.unwrap();
        for i in 0..(MAX_ERRORS_PER_RUN + 20) {
            let doc = format!("doc-{i}");
            store
                .run_error(id, Some(&doc), "cannot parse")
                .await
                .unwrap();
        }
        store.run_error(other, None, "timeout").await.unwrap();

        let errors = store.run_errors(id).await.unwrap();
        assert_eq!(errors.len() as u64, MAX_ERRORS_PER_RUN);
        assert_eq!(errors[0].document.as_deref(), Some("doc-0"));
        assert_eq!(errors[49].document.as_deref(), Some("doc-49"));
        let run = &store.recent_runs(Some("files"), 1).await.unwrap()[0];
        assert_eq!(run.error_count, MAX_ERRORS_PER_RUN + 20);

        let other_errors = store.run_errors(other).await.unwrap();
        assert_eq!(other_errors.len(), 1);
        assert_eq!(other_errors[0].document, None);
    }

    #[tokio::test]
    async fn long_error_messages_are_truncated_on_a_char_boundary() {
        let (_dir, store) = temp_store();
        let id = store.run_started("web", "manual", false).await.unwrap();
        let long = "ø".repeat(MAX_ERROR_MESSAGE_BYTES);
        store.run_error(id, None, &long).await.unwrap();
        let kept = &store.run_errors(id).await.unwrap()[0].message;
        assert!(kept.len() <= MAX_ERROR_MESSAGE_BYTES);
        assert!(kept.chars().all(|c| c == 'ø'));
    }

    #[tokio::test]
    async fn running_runs_become_interrupted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("samle.db");
        let store = Store::open(&path).unwrap();
        let running = store.run_started("wiki", "schedule", false).await.unwrap();
        let done = store.run_started("feeds", "schedule", false).await.unwrap();
        store
            .run_finished(
                done,
                &RunOutcome {
                    status: RunStatus::Failed,
                    counts: RunCounts::default(),
                    message: Some("source answered 503".into()),
                },
            )
            .await
            .unwrap();
        drop(store);

        let store = Store::open(&path).unwrap();
        assert_eq!(store.mark_interrupted_runs().await.unwrap(), 1);
        assert_eq!(store.mark_interrupted_runs().await.unwrap(), 0);
        let last = store.last_runs().await.unwrap();
        assert_eq!(last["wiki"].id, running);
        assert_eq!(last["wiki"].status, RunStatus::Interrupted);
        assert!(last["wiki"].finished_at.is_some());
        assert!(last["wiki"].message.is_some());
        assert_eq!(last["feeds"].status, RunStatus::Failed);
        assert_eq!(
            last["feeds"].message.as_deref(),
            Some("source answered 503")
        );
    }

    #[tokio::test]
    async fn audit_entries_newest_first() {
        let (_dir, store) = temp_store();
        store
            .audit(Some("mette"), "login", "demo directory", Some("10.0.0.7"))
            .await
            .unwrap();
        store
            .audit(None, "login refused", "wrong password for \"ib\"", None)
            .await
            .unwrap();
        let entries = store.recent_audit(10).await.unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].action, "login refused");
        assert_eq!(entries[0].actor, None);
        assert_eq!(entries[1].actor.as_deref(), Some("mette"));
        assert_eq!(entries[1].client.as_deref(), Some("10.0.0.7"));
        assert_eq!(store.recent_audit(1).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn sql_payloads_are_stored_verbatim() {
        let (_dir, store) = temp_store();
        let evil = "'); DROP TABLE runs;--";
        let id = store.run_started(evil, "manual", false).await.unwrap();
        store.run_error(id, Some(evil), evil).await.unwrap();
        store
            .audit(Some(evil), evil, evil, Some(evil))
            .await
            .unwrap();

        let run = &store.recent_runs(Some(evil), 1).await.unwrap()[0];
        assert_eq!(run.source, evil);
        let err = &store.run_errors(id).await.unwrap()[0];
        assert_eq!(err.document.as_deref(), Some(evil));
        assert_eq!(err.message, evil);
        let entry = &store.recent_audit(1).await.unwrap()[0];
        assert_eq!(entry.actor.as_deref(), Some(evil));
        assert_eq!(entry.action, evil);
        assert_eq!(entry.detail, evil);
        assert_eq!(entry.client.as_deref(), Some(evil));
        assert_eq!(store.recent_runs(None, 10).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn acknowledged_writes_survive_an_unclean_stop() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("samle.db");
        let store = Store::open(&path).unwrap();
        for i in 0..20 {
            store
                .audit(None, "write", &i.to_string(), None)
                .await
                .unwrap();
        }
        // Leak the connection: it is never closed and the WAL is never checkpointed, as after
        // a crash. (The real kill -9 test lives in tests/store_crash.rs.)
        std::mem::forget(store);

        let store = Store::open(&path).unwrap();
        store.quick_check().await.unwrap();
        let entries = store.recent_audit(100).await.unwrap();
        assert_eq!(entries.len(), 20);
        assert_eq!(entries[0].detail, "19");
    }

    #[tokio::test]
    async fn a_full_disk_gives_a_clean_error_and_keeps_earlier_writes() {
        let (_dir, store) = temp_store();
        store.audit(None, "before", "kept", None).await.unwrap();
        // SQLite reports SQLITE_FULL when the page limit is reached, exactly as on a full disk.
        let pages: i64 = store
            .call(|c| c.pragma_query_value(None, "page_count", |r| r.get(0)))
            .await
            .unwrap();
        store
            .call(move |c| c.pragma_update(None, "max_page_count", pages + 2))
            .await
            .unwrap();
        let big = "x".repeat(64 * 1024);
        let err = store.audit(None, "too big", &big, None).await.unwrap_err();
        assert!(matches!(err, StoreError::DiskFull { .. }), "{err:?}");
        assert!(err.to_string().contains("disk is full"), "{err}");

        store.quick_check().await.unwrap();
        let entries = store.recent_audit(10).await.unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].detail, "kept");
    }

    #[test]
    fn run_status_round_trips() {
        for s in [
            RunStatus::Running,
            RunStatus::Ok,
            RunStatus::Failed,
            RunStatus::Interrupted,
        ] {
            assert_eq!(RunStatus::parse(s.as_str()), Some(s));
            assert_eq!(
                serde_json::to_value(s).unwrap(),
                serde_json::json!(s.as_str())
            );
        }
        assert_eq!(RunStatus::parse("OK"), None);
    }
}
