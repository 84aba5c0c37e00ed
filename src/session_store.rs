//! Server-side login sessions for tower-sessions, kept in the `sessions` table of the state
//! database.
//!
//! Keeping sessions on the server (the cookie holds only a random 128-bit id) is what lets a
//! logout or an expiry really end a session: a replayed cookie finds no record. This module
//! only stores records; timeouts and what goes into a session are decided by the web layer.

use async_trait::async_trait;
use rusqlite::params;
use time::OffsetDateTime;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, ExpiredDeletion, SessionStore};

use crate::store::{Store, StoreError};

/// How many fresh ids `create` tries before giving up. With 128 random bits a single collision
/// is already astronomically unlikely; several in a row mean the generator is broken, and
/// failing is then safer than looping.
const MAX_CREATE_ATTEMPTS: usize = 8;

#[derive(Clone, Debug)]
pub struct SqliteSessionStore {
    store: Store,
}

impl SqliteSessionStore {
    pub fn new(store: Store) -> SqliteSessionStore {
        SqliteSessionStore { store }
    }

    /// Deletes every expired session and returns how many there were. Expired sessions are
    /// never loaded anyway; this only reclaims their space, so run it now and then.
    pub async fn delete_expired(&self) -> Result<u64, StoreError> {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        self.store
            .call(move |conn| {
                let n =
                    conn.execute("DELETE FROM sessions WHERE expires_at <= ?1", params![now])?;
                Ok(n as u64)
            })
            .await
    }
}

fn backend(err: StoreError) -> session_store::Error {
    session_store::Error::Backend(err.to_string())
}

fn encode(record: &Record) -> session_store::Result<String> {
    serde_json::to_string(&record.data).map_err(|e| session_store::Error::Encode(e.to_string()))
}

#[async_trait]
impl SessionStore for SqliteSessionStore {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        let data = encode(record)?;
        // Rounded up: a session must not end before its expiry.
        let expires_at = ceil_unix(record.expiry_date);
        let first = record.id;
        let id = self
            .store
            .call(move |conn| {
                let mut stmt = conn.prepare_cached(
                    "INSERT INTO sessions (id, data, expires_at) VALUES (?1, ?2, ?3)
                     ON CONFLICT (id) DO NOTHING",
                )?;
                let mut id = first;
                for _ in 0..MAX_CREATE_ATTEMPTS {
                    if stmt.execute(params![id.to_string(), data, expires_at])? == 1 {
                        return Ok(Some(id));
                    }
                    // Never reuse the id of another session, even an expired one: that would
                    // hand its cookie holder a session they did not log in to.
                    tracing::warn!("session id collision; generating a new id");
                    id = Id::default();
                }
                Ok(None)
            })
            .await
            .map_err(backend)?;
        match id {
            Some(id) => {
                record.id = id;
                Ok(())
            }
            None => Err(session_store::Error::Backend(
                "could not find a free session id".to_owned(),
            )),
        }
    }

    /// Updates an existing, unexpired session. A record that is gone (logged out in a
    /// concurrent request, or expired) is deliberately not re-created: an upsert here would
    /// let a request that was in flight during logout bring the session back to life.
    async fn save(&self, record: &Record) -> session_store::Result<()> {
        let data = encode(record)?;
        // Rounded up: a session must not end before its expiry.
        let expires_at = ceil_unix(record.expiry_date);
        let id = record.id.to_string();
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let updated = self
            .store
            .call(move |conn| {
                conn.execute(
                    "UPDATE sessions SET data = ?2, expires_at = ?3
                     WHERE id = ?1 AND expires_at > ?4",
                    params![id, data, expires_at, now],
                )
            })
            .await
            .map_err(backend)?;
        if updated == 0 {
            tracing::debug!("session to save no longer exists; not re-creating it");
        }
        Ok(())
    }

    async fn load(&self, session_id: &Id) -> session_store::Result<Option<Record>> {
        let id = *session_id;
        let key = id.to_string();
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let row: Option<(String, i64)> = self
            .store
            .call(move |conn| {
                use rusqlite::OptionalExtension;
                conn.query_row(
                    "SELECT data, expires_at FROM sessions WHERE id = ?1 AND expires_at > ?2",
                    params![key, now],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .optional()
            })
            .await
            .map_err(backend)?;
        let Some((data, expires_at)) = row else {
            return Ok(None);
        };
        let data =
            serde_json::from_str(&data).map_err(|e| session_store::Error::Decode(e.to_string()))?;
        let expiry_date = OffsetDateTime::from_unix_timestamp(expires_at)
            .map_err(|e| session_store::Error::Decode(e.to_string()))?;
        Ok(Some(Record {
            id,
            data,
            expiry_date,
        }))
    }

    async fn delete(&self, session_id: &Id) -> session_store::Result<()> {
        let id = session_id.to_string();
        self.store
            .call(move |conn| conn.execute("DELETE FROM sessions WHERE id = ?1", params![id]))
            .await
            .map_err(backend)?;
        Ok(())
    }
}

#[async_trait]
impl ExpiredDeletion for SqliteSessionStore {
    async fn delete_expired(&self) -> session_store::Result<()> {
        // Calls the inherent method of the same name, which also reports the count.
        SqliteSessionStore::delete_expired(self)
            .await
            .map(|_| ())
            .map_err(backend)
    }
}

/// Unix seconds of `t`, rounded up to the next whole second.
fn ceil_unix(t: OffsetDateTime) -> i64 {
    let secs = t.unix_timestamp();
    if t.nanosecond() > 0 { secs + 1 } else { secs }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use serde_json::json;
    use time::Duration;

    use super::*;

    fn temp_sessions() -> (tempfile::TempDir, SqliteSessionStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("samle.db")).unwrap();
        (dir, SqliteSessionStore::new(store))
    }

    fn record(expires_in: Duration) -> Record {
        Record {
            id: Id::default(),
            data: HashMap::from([
                ("user".to_owned(), json!("mette")),
                ("principals".to_owned(), json!(["user:mette", "group:it"])),
            ]),
            // Whole seconds, because the store keeps unix seconds.
            expiry_date: OffsetDateTime::from_unix_timestamp(
                (OffsetDateTime::now_utc() + expires_in).unix_timestamp(),
            )
            .unwrap(),
        }
    }

    async fn count(sessions: &SqliteSessionStore) -> i64 {
        sessions
            .store
            .call(|c| c.query_row("SELECT COUNT(*) FROM sessions", [], |r| r.get(0)))
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn create_load_save_delete_round_trip() {
        let (_dir, sessions) = temp_sessions();
        let mut rec = record(Duration::hours(1));
        sessions.create(&mut rec).await.unwrap();
        assert_eq!(sessions.load(&rec.id).await.unwrap(), Some(rec.clone()));

        rec.data.insert("csrf".to_owned(), json!("abc"));
        rec.expiry_date += Duration::hours(1);
        sessions.save(&rec).await.unwrap();
        assert_eq!(sessions.load(&rec.id).await.unwrap(), Some(rec.clone()));

        sessions.delete(&rec.id).await.unwrap();
        assert_eq!(sessions.load(&rec.id).await.unwrap(), None);
        // Deleting again is not an error.
        sessions.delete(&rec.id).await.unwrap();
    }

    #[tokio::test]
    async fn unknown_id_loads_nothing() {
        let (_dir, sessions) = temp_sessions();
        assert_eq!(sessions.load(&Id::default()).await.unwrap(), None);
    }

    #[tokio::test]
    async fn create_regenerates_a_colliding_id() {
        let (_dir, sessions) = temp_sessions();
        let mut first = record(Duration::hours(1));
        sessions.create(&mut first).await.unwrap();

        let mut second = record(Duration::hours(1));
        second.id = first.id;
        second.data.insert("user".to_owned(), json!("ib"));
        sessions.create(&mut second).await.unwrap();

        assert_ne!(second.id, first.id);
        assert_eq!(sessions.load(&first.id).await.unwrap(), Some(first));
        assert_eq!(sessions.load(&second.id).await.unwrap(), Some(second));
    }

    #[tokio::test]
    async fn expired_sessions_are_not_loaded_and_are_deleted() {
        let (_dir, sessions) = temp_sessions();
        let mut old = record(-Duration::seconds(5));
        sessions.create(&mut old).await.unwrap();
        let mut live = record(Duration::hours(1));
        sessions.create(&mut live).await.unwrap();

        assert_eq!(sessions.load(&old.id).await.unwrap(), None);
        // Saving an expired session does not extend it.
        old.expiry_date = OffsetDateTime::now_utc() + Duration::hours(1);
        sessions.save(&old).await.unwrap();
        assert_eq!(sessions.load(&old.id).await.unwrap(), None);

        assert_eq!(sessions.delete_expired().await.unwrap(), 1);
        assert_eq!(count(&sessions).await, 1);
        ExpiredDeletion::delete_expired(&sessions).await.unwrap();
        assert_eq!(sessions.load(&live.id).await.unwrap(), Some(live));
    }

    #[tokio::test]
    async fn a_logged_out_session_stays_gone() {
        let (_dir, sessions) = temp_sessions();
        let mut rec = record(Duration::hours(1));
        sessions.create(&mut rec).await.unwrap();
        sessions.delete(&rec.id).await.unwrap();
        // A request that loaded the session before the logout finishes afterwards and saves:
        // this must not bring the session back.
        sessions.save(&rec).await.unwrap();
        assert_eq!(sessions.load(&rec.id).await.unwrap(), None);
        assert_eq!(count(&sessions).await, 0);
    }

    #[tokio::test]
    async fn sessions_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("samle.db");
        let mut rec = record(Duration::hours(1));
        {
            let sessions = SqliteSessionStore::new(Store::open(&path).unwrap());
            sessions.create(&mut rec).await.unwrap();
        }
        let sessions = SqliteSessionStore::new(Store::open(&path).unwrap());
        assert_eq!(sessions.load(&rec.id).await.unwrap(), Some(rec));
    }
}
