//! Recently used login sessions kept in memory in front of the database.
//!
//! Every request of a logged-in user loads its session. From SQLite that is a query on the
//! blocking thread pool per request: with many clients the pool grows a thread each, and
//! each thread keeps an allocator arena of its own (at 16 clients on 100,000 documents that
//! was half of the server's memory). Only this process writes its data directory's sessions
//! (the index writer's lock keeps a second `samle serve` out), so a copy in memory stays true
//! as long as every change goes through here: creating and saving write to the database
//! first, and a deleted session is remembered as deleted for a while, so that a load that
//! read it just before the logout cannot bring it back.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use time::OffsetDateTime;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, SessionStore};

/// Sessions kept; past this the expired ones go, then the least recently used.
const MAX_SESSIONS: usize = 4096;
/// How long a deleted session's id is remembered: longer than any request takes.
const TOMBSTONE: Duration = Duration::from_secs(120);

#[derive(Clone, Debug)]
pub struct SessionCache<S> {
    store: S,
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug, Default)]
struct Inner {
    /// id → record, and the tick of its last use.
    records: HashMap<Id, (Record, u64)>,
    /// Ids deleted lately, with when.
    deleted: HashMap<Id, Instant>,
    tick: u64,
}

impl Inner {
    fn insert(&mut self, record: Record) {
        if self.records.len() >= MAX_SESSIONS && !self.records.contains_key(&record.id) {
            let now = OffsetDateTime::now_utc();
            self.records.retain(|_, (r, _)| r.expiry_date > now);
            if self.records.len() >= MAX_SESSIONS
                && let Some(oldest) = self
                    .records
                    .iter()
                    .min_by_key(|(_, (_, used))| *used)
                    .map(|(id, _)| *id)
            {
                self.records.remove(&oldest);
            }
        }
        self.tick += 1;
        let tick = self.tick;
        self.records.insert(record.id, (record, tick));
    }
}

impl<S> SessionCache<S> {
    pub fn new(store: S) -> SessionCache<S> {
        SessionCache {
            store,
            inner: Arc::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl<S: SessionStore + Clone> SessionStore for SessionCache<S> {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        self.store.create(record).await?;
        self.lock().insert(record.clone());
        Ok(())
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        self.store.save(record).await?;
        // Only a session that is still here is updated: one deleted meanwhile stays deleted,
        // as the database's save does not re-create it either.
        let mut inner = self.lock();
        inner.tick += 1;
        let tick = inner.tick;
        if let Some(entry) = inner.records.get_mut(&record.id) {
            *entry = (record.clone(), tick);
        }
        Ok(())
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        {
            let mut inner = self.lock();
            inner.tick += 1;
            let tick = inner.tick;
            if let Some((record, used)) = inner.records.get_mut(id) {
                if record.expiry_date > OffsetDateTime::now_utc() {
                    *used = tick;
                    return Ok(Some(record.clone()));
                }
                inner.records.remove(id);
                return Ok(None);
            }
        }
        let record = self.store.load(id).await?;
        if let Some(record) = &record {
            let mut inner = self.lock();
            if !inner.deleted.contains_key(id) {
                inner.insert(record.clone());
            }
        }
        Ok(record)
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        {
            let mut inner = self.lock();
            inner.records.remove(id);
            let now = Instant::now();
            inner
                .deleted
                .retain(|_, at| now.duration_since(*at) < TOMBSTONE);
            inner.deleted.insert(*id, now);
        }
        self.store.delete(id).await
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::session_store::SqliteSessionStore;
    use crate::store::Store;

    fn record() -> Record {
        Record {
            id: Id::default(),
            data: HashMap::from([("user".to_owned(), json!("mette"))]),
            expiry_date: OffsetDateTime::from_unix_timestamp(
                OffsetDateTime::now_utc().unix_timestamp() + 3600,
            )
            .unwrap(),
        }
    }

    fn stores() -> (
        tempfile::TempDir,
        SqliteSessionStore,
        SessionCache<SqliteSessionStore>,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let sqlite = SqliteSessionStore::new(Store::open(&dir.path().join("samle.db")).unwrap());
        let cache = SessionCache::new(sqlite.clone());
        (dir, sqlite, cache)
    }

    #[tokio::test]
    async fn changes_reach_the_database_and_loads_see_them() {
        let (_dir, sqlite, cache) = stores();
        let mut rec = record();
        cache.create(&mut rec).await.unwrap();
        assert_eq!(sqlite.load(&rec.id).await.unwrap(), Some(rec.clone()));
        rec.data.insert("csrf".to_owned(), json!("abc"));
        cache.save(&rec).await.unwrap();
        assert_eq!(sqlite.load(&rec.id).await.unwrap(), Some(rec.clone()));
        assert_eq!(cache.load(&rec.id).await.unwrap(), Some(rec.clone()));
        cache.delete(&rec.id).await.unwrap();
        assert_eq!(cache.load(&rec.id).await.unwrap(), None);
        assert_eq!(sqlite.load(&rec.id).await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_session_of_before_a_restart_is_read_from_the_database() {
        let (_dir, sqlite, cache) = stores();
        let mut rec = record();
        sqlite.create(&mut rec).await.unwrap();
        assert_eq!(cache.load(&rec.id).await.unwrap(), Some(rec));
    }

    #[tokio::test]
    async fn a_deleted_session_stays_deleted() {
        let (_dir, sqlite, cache) = stores();
        let mut rec = record();
        cache.create(&mut rec).await.unwrap();
        cache.delete(&rec.id).await.unwrap();
        // A request that loaded the session before the logout saves it afterwards.
        cache.save(&rec).await.unwrap();
        assert_eq!(cache.load(&rec.id).await.unwrap(), None);
        // Nor does a stale copy read from the database come back through the cache.
        let mut again = rec.clone();
        sqlite.create(&mut again).await.unwrap();
        assert_eq!(again.id, rec.id, "the id was free again");
        cache.load(&rec.id).await.unwrap();
        cache.store.delete(&rec.id).await.unwrap();
        assert_eq!(cache.load(&rec.id).await.unwrap(), None);
    }

    #[tokio::test]
    async fn an_expired_session_is_not_loaded() {
        let (_dir, _sqlite, cache) = stores();
        let mut rec = record();
        cache.create(&mut rec).await.unwrap();
        cache.lock().records.get_mut(&rec.id).unwrap().0.expiry_date =
            OffsetDateTime::now_utc() - time::Duration::seconds(1);
        assert_eq!(cache.load(&rec.id).await.unwrap(), None);
    }
}
