//! The task that keeps the snapshot following the event log: it polls on an interval and wakes at
//! once after a local write. Because revisions commit in order, "events after my revision" never
//! skips one; a gap can only mean a damaged log, and the follower then stops advancing, so the
//! snapshot goes stale and every decision becomes DENY REGISTRY_STALE (failing closed).

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use super::{Registry, Snapshot};
use crate::domain::Timestamp;
use crate::domain::registry::RegistryChange;
use crate::error::{Error, Result};
use crate::store::Store;

/// Events applied per database round trip.
const BATCH: u64 = 2000;

/// Starts following the log. Abort the handle to stop.
pub fn spawn_follower(registry: Arc<Registry>, store: Store, poll: Duration) -> JoinHandle<()> {
    let committed = store.committed();
    tokio::spawn(async move {
        loop {
            match sync_once(&registry, &store).await {
                Ok(true) => {}
                // More is waiting: go on without sleeping.
                Ok(false) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, revision = registry.revision(), "snapshot could not follow the registry log")
                }
            }
            tokio::select! {
                () = committed.notified() => {}
                () = tokio::time::sleep(poll) => {}
            }
        }
    })
}

/// Applies the next batch of events. Returns whether the snapshot has caught up with the log.
pub async fn sync_once(registry: &Registry, store: &Store) -> Result<bool> {
    let started = Timestamp::now();
    let current = registry.snapshot();
    let events = store.events_after(current.revision, BATCH).await?;
    if events.is_empty() {
        registry.mark_synced(started);
        return Ok(true);
    }
    let caught_up = (events.len() as u64) < BATCH;
    let mut next = Snapshot::clone(&current);
    for e in &events {
        if e.revision != next.revision + 1 {
            return Err(Error::Internal(format!(
                "registry log has a gap: revision {} follows {}",
                e.revision, next.revision
            )));
        }
        let change = RegistryChange::from_event(&e.kind, &e.payload).map_err(Error::Internal)?;
        next.apply(e.revision, &change);
    }
    registry.publish(next, if caught_up { started } else { Timestamp::from_micros(registry.synced_at()) });
    Ok(caught_up)
}
