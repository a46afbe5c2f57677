//! The task that keeps the snapshot following the event log: it polls on an interval and wakes at
//! once after a local write. Because revisions commit in order, "events after my revision" never
//! skips one.
//!
//! The log is the truth, and the snapshot trusts nothing else: it is built by folding the log from
//! its first event ([`load`]), never from the state tables, and every event is checked before it is
//! applied: its revision follows the last one, its `prev_hash` is the hash of the last one, and its
//! own hash matches its fields. An event that fails any check (a row inserted, edited or removed
//! under the service) halts the registry: every decision becomes DENY REGISTRY_STALE, health
//! NOT_SERVING, and the evidence is logged at error, until an operator acts.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use super::{Registry, Snapshot};
use crate::domain::replay::ChainVerifier;
use crate::error::{Error, Result};
use crate::store::{Store, apply_checked};

/// Events applied per database round trip while following.
const BATCH: u64 = 2000;

/// Folds the whole verified log into a snapshot. On a broken log it returns the snapshot as far as
/// the log could be trusted, with the break (revision, what it looks like); the caller halts.
pub async fn load(store: &Store) -> Result<(Snapshot, Option<(i64, String)>)> {
    let mut snap = Snapshot::default();
    let folded = store.fold_log(&mut snap).await?;
    snap.revision = folded.revision;
    snap.hash = folded.hash;
    Ok((snap, folded.broken))
}

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

/// Applies the next batch of events. Returns whether the snapshot has caught up with the log. A
/// halted registry applies nothing more: what it would apply is what can no longer be trusted.
pub async fn sync_once(registry: &Registry, store: &Store) -> Result<bool> {
    if let Some(reason) = registry.halted() {
        return Err(Error::Unavailable(reason));
    }
    let started = Instant::now();
    let current = registry.snapshot();
    let events = store.events_after(current.revision, BATCH).await?;
    if events.is_empty() {
        registry.mark_synced(started);
        return Ok(true);
    }
    let caught_up = (events.len() as u64) < BATCH;
    let mut next = Snapshot::clone(&current);
    let mut chain = ChainVerifier::resume(next.revision, &next.hash);
    for e in &events {
        if let Err((revision, problem)) = apply_checked(&mut chain, &mut next, e) {
            // What came before the break is sound: publish it, then stop deciding.
            next.revision = chain.last_revision();
            next.hash = chain.last_hash().to_owned();
            registry.publish(next, None);
            let reason = format!("registry log rejected at revision {revision}: {problem}");
            registry.halt(reason.clone());
            return Err(Error::Unavailable(reason));
        }
    }
    next.revision = chain.last_revision();
    next.hash = chain.last_hash().to_owned();
    registry.publish(next, caught_up.then_some(started));
    Ok(caught_up)
}
