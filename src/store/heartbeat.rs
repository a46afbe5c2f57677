//! The heartbeat: a single row (`registry_heartbeat`, id 1) holding a time on the primary's clock
//! and the registry's revision at that time. Whichever instance can reach the primary writes it
//! every `snapshot.heartbeat_ms`; every replica reads it from the database it follows (its hot
//! standby, or the primary itself when it has none).
//!
//! Both times are the database's own clock, taken in SQL, never a replica's: the written time is the
//! primary's clock, and the time it is compared with at the read is the reading server's clock (the
//! standby's; the primary's itself without one). A standby that has stopped replaying keeps
//! answering queries, but its heartbeat stops moving while its clock does not, so its age grows
//! and every replica that follows it goes stale.

use std::time::Duration;

use sea_orm::{ConnectionTrait, DatabaseBackend, Statement};

use super::Store;
use crate::error::{Error, Result};

/// A heartbeat as read from the database a replica follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Heartbeat {
    /// When the primary wrote it: microseconds since the Unix epoch on the primary's clock.
    pub time_micros: i64,
    /// The registry's revision when it was written: every event up to it committed before it.
    pub revision: i64,
    /// How old it was when read, on the reading database's clock (never negative).
    pub age: Duration,
}

/// "Now" in microseconds since the Unix epoch, evaluated by the database. PostgreSQL's statement
/// timestamp is taken before the statement's snapshot, so every event committed before that time is
/// visible to the same statement, and the heartbeat never claims a time later than the revision it
/// reports was current.
fn now_micros(backend: DatabaseBackend) -> &'static str {
    match backend {
        DatabaseBackend::Postgres => "CAST(EXTRACT(EPOCH FROM statement_timestamp()) * 1000000 AS BIGINT)",
        // julianday('now') is fixed for the whole statement; 2440587.5 is the Unix epoch's day.
        _ => "CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER)",
    }
}

impl Store {
    /// Writes the heartbeat: the database's time and the chain head's revision, in one statement.
    /// Several writers update the same row; a time older than the stored one is ignored, so the
    /// heartbeat never moves backwards.
    pub async fn write_heartbeat(&self) -> Result<()> {
        let backend = self.db.get_database_backend();
        let sql = format!(
            "INSERT INTO registry_heartbeat (id, time, revision) \
             SELECT 1, {now}, revision FROM registry_head WHERE id = 1 \
             ON CONFLICT (id) DO UPDATE SET \
             revision = CASE WHEN excluded.time > registry_heartbeat.time THEN excluded.revision ELSE registry_heartbeat.revision END, \
             time = CASE WHEN excluded.time > registry_heartbeat.time THEN excluded.time ELSE registry_heartbeat.time END",
            now = now_micros(backend)
        );
        self.db.execute_raw(Statement::from_string(backend, sql)).await?;
        Ok(())
    }

    /// Reads the heartbeat with this database's clock; `None` until one has been written.
    pub async fn read_heartbeat(&self) -> Result<Option<Heartbeat>> {
        let backend = self.db.get_database_backend();
        let sql = format!(
            "SELECT time, revision, {now} AS now FROM registry_heartbeat WHERE id = 1",
            now = now_micros(backend)
        );
        let Some(row) = self.db.query_one_raw(Statement::from_string(backend, sql)).await? else { return Ok(None) };
        let time: i64 = row.try_get("", "time")?;
        let revision: i64 = row.try_get("", "revision")?;
        let now: i64 = row.try_get("", "now")?;
        let age = u64::try_from(now.saturating_sub(time)).unwrap_or(0);
        Ok(Some(Heartbeat { time_micros: time, revision, age: Duration::from_micros(age) }))
    }

    /// Whether this database is a hot standby (replaying another's log). Only PostgreSQL has them.
    pub async fn in_recovery(&self) -> Result<bool> {
        let backend = self.db.get_database_backend();
        if backend != DatabaseBackend::Postgres {
            return Ok(false);
        }
        let row = self
            .db
            .query_one_raw(Statement::from_string(backend, "SELECT pg_is_in_recovery() AS r"))
            .await?
            .ok_or_else(|| Error::Internal("pg_is_in_recovery() returned no row".into()))?;
        Ok(row.try_get("", "r")?)
    }
}
