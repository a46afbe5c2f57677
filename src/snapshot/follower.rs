//! The task that keeps the snapshot following the event log: it polls on an interval and wakes at
//! once after a local write. Because revisions commit in order, "events after my revision" never
//! skips one.
//!
//! The log is the truth, and the snapshot trusts nothing else: it is built by folding the log from
//! its first event ([`load`]) or from a saved snapshot file the log still vouches for
//! ([`super::saved`]), never from the state tables, and every event is checked before it is
//! applied: its revision follows the last one, its `prev_hash` is the hash of the last one, and its
//! own hash matches its fields. An event that fails any check (a row inserted, edited or removed
//! under the service) halts the registry: every decision becomes DENY REGISTRY_STALE, health
//! NOT_SERVING, and the evidence is logged at error, until an operator acts.
//!
//! Each read also fetches the event the snapshot is at, so a database that no longer holds it with
//! the same hash (a failover to a server that does not extend what was applied) halts too, and
//! freshness comes from the heartbeat read just before the events, never from the read succeeding.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use super::saved::{self, SavedFile, StartUp};
use super::{Registry, Snapshot, Sources};
use crate::domain::replay::ChainVerifier;
use crate::error::{Error, Result};
use crate::store::{Store, StoredEvent, apply_checked};

/// Events applied per database round trip while following.
const BATCH: u64 = 2000;

/// Folds the whole verified log into a snapshot. On a broken log it returns the snapshot as far as
/// the log could be trusted, with the break (revision, what it looks like); the caller halts.
pub async fn load(store: &Store) -> Result<(Snapshot, Option<(i64, String)>)> {
    let mut snap = Snapshot::default();
    let folded = store.fold_log(&mut snap).await?;
    snap.sellers.shrink_to_fit();
    snap.revision = folded.revision;
    snap.hash = folded.hash;
    Ok((snap, folded.broken))
}

/// A snapshot loaded at start-up.
pub struct Loaded {
    pub snapshot: Snapshot,
    /// Where the log stopped being trustworthy, if it did: the caller halts.
    pub broken: Option<(i64, String)>,
    /// When a heartbeat says the snapshot was complete; `None` when none vouches for it yet.
    pub synced_at: Option<Instant>,
    /// How it was loaded.
    pub start_up: StartUp,
    /// From the saved file: its revision and hash, which the log under it must still reach
    /// ([`super::spawn_history_check`]).
    pub from_file: Option<(i64, String)>,
    /// The database it was loaded from.
    pub store: Store,
}

/// Loads the snapshot from the first database that answers: the standbys in order, then the
/// primary. The heartbeat is read first, as the follower does, so the snapshot is only as fresh as
/// a heartbeat it contains. With a `saved` snapshot file that can be trusted, only the events after
/// it are folded (see [`super::saved`]).
pub async fn load_from(sources: &Sources, saved: Option<&Arc<SavedFile>>) -> Result<Loaded> {
    let mut last = None;
    let standbys = sources.reader_count();
    for _ in 0..standbys {
        match load_with_heartbeat(sources.reader(), saved).await {
            Ok(loaded) => return Ok(loaded),
            Err(e) => {
                tracing::warn!(error = %e, "cannot load the registry from this database; trying the next");
                sources.next_reader();
                last = Some(e);
            }
        }
    }
    if sources.has_standbys() {
        return load_with_heartbeat(sources.primary(), saved).await;
    }
    Err(last.unwrap_or_else(|| Error::Internal("no database to load the registry from".into())))
}

async fn load_with_heartbeat(store: &Store, saved: Option<&Arc<SavedFile>>) -> Result<Loaded> {
    let read_at = Instant::now();
    let heartbeat = store.read_heartbeat().await?;
    let ignored = match saved {
        None => None,
        Some(saved) => match saved::load(store, saved).await? {
            Ok(from) => {
                let synced_at = heartbeat
                    .filter(|hb| hb.revision <= from.snapshot.revision)
                    .and_then(|hb| read_at.checked_sub(hb.age));
                let tail = from.snapshot.revision - from.revision;
                tracing::info!(revision = from.revision, tail, file = %saved.path().display(), "registry snapshot loaded from the saved file, tail of the log folded");
                return Ok(Loaded {
                    snapshot: from.snapshot,
                    broken: from.broken,
                    synced_at,
                    start_up: StartUp::FromFile { revision: from.revision, tail },
                    from_file: Some((from.revision, from.hash)),
                    store: store.clone(),
                });
            }
            Err(why) if saved.path().exists() => {
                tracing::warn!(file = %saved.path().display(), %why, "saved registry snapshot ignored: folding the whole log");
                Some(why)
            }
            Err(_) => {
                tracing::info!(file = %saved.path().display(), "no saved registry snapshot yet: folding the whole log");
                None
            }
        },
    };
    let (snapshot, broken) = load(store).await?;
    tracing::info!(revision = snapshot.revision, "registry snapshot loaded: whole log folded");
    let synced_at = heartbeat.filter(|hb| hb.revision <= snapshot.revision).and_then(|hb| read_at.checked_sub(hb.age));
    Ok(Loaded {
        snapshot,
        broken,
        synced_at,
        start_up: StartUp::WholeLog { file_ignored: ignored },
        from_file: None,
        store: store.clone(),
    })
}

/// Starts following the log. Abort the handle to stop.
pub fn spawn_follower(registry: Arc<Registry>, sources: Sources, poll: Duration) -> JoinHandle<()> {
    let committed = sources.primary().committed();
    tokio::spawn(async move {
        loop {
            match sync_once(&registry, &sources).await {
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

/// Applies the next batch of events from the database followed. Returns whether the snapshot has
/// caught up with it. A halted registry applies nothing more: what it would apply is what can no
/// longer be trusted. A database that fails is left for the next one in `database.read_urls`.
pub async fn sync_once(registry: &Registry, sources: &Sources) -> Result<bool> {
    if let Some(reason) = registry.halted() {
        return Err(Error::Unavailable(reason));
    }
    let result = follow(registry, sources.reader()).await;
    if result.is_err() && registry.halted().is_none() {
        sources.next_reader();
    }
    result
}

async fn follow(registry: &Registry, store: &Store) -> Result<bool> {
    let read_at = Instant::now();
    // The heartbeat first: every event up to its revision committed before it, so the events read
    // next include them all, and a snapshot that reaches its revision is as fresh as it is.
    let heartbeat = store.read_heartbeat().await?;
    let from = registry.revision();
    let events = store.events_after((from - 1).max(0), BATCH).await?;
    let complete = (events.len() as u64) < BATCH;
    let synced = match heartbeat {
        Some(hb) if complete => read_at.checked_sub(hb.age).map(|at| SyncPoint { at, revision: hb.revision }),
        _ => None,
    };
    let applied = apply(registry, &events, synced)?;
    Ok(complete || applied.behind)
}

/// When the log was known complete up to `revision`: the primary's heartbeat time as replayed,
/// carried onto this replica's monotonic clock.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SyncPoint {
    pub at: Instant,
    pub revision: i64,
}

/// What [`apply`] did.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Applied {
    /// The database did not hold the event the snapshot is at: it is behind this replica (a
    /// standby that has not replayed what was fetched from the primary).
    pub behind: bool,
}

/// Applies `events` (read after the revision before the snapshot's, so that the snapshot's own
/// event comes first) on top of the current snapshot, under the registry's apply lock: the
/// follower and read-your-writes catch-ups never publish over each other. Marks the registry
/// synced at `synced` once the snapshot reaches its revision.
pub(crate) fn apply(registry: &Registry, events: &[StoredEvent], synced: Option<SyncPoint>) -> Result<Applied> {
    let _applying = registry.applying.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let current = registry.snapshot();
    let mut chain = ChainVerifier::resume(current.revision, &current.hash);
    let mut next: Option<Snapshot> = None;
    // Revision 0 is the genesis: nothing to find in the log.
    let mut holds_head = current.revision == 0;
    for e in events.iter().filter(|e| e.revision >= current.revision) {
        if e.revision == current.revision {
            if e.hash != current.hash {
                return Err(halt(
                    registry,
                    current.revision,
                    format!(
                        "the database's event at revision {} has hash {}, but this replica applied {}: the log was \
                     replaced by one that does not extend it (a failover to a server that lost writes?)",
                        e.revision, e.hash, current.hash
                    ),
                ));
            }
            holds_head = true;
            continue;
        }
        if !holds_head {
            return Err(halt(
                registry,
                current.revision,
                format!(
                    "the database has revision {} but not revision {} that this replica applied: the log was replaced",
                    e.revision, current.revision
                ),
            ));
        }
        let target = next.get_or_insert_with(|| Snapshot::clone(&current));
        if let Err((revision, problem)) = apply_checked(&mut chain, target, e) {
            // What came before the break is sound: publish it, then stop deciding.
            if let Some(mut sound) = next.take() {
                sound.revision = chain.last_revision();
                sound.hash = chain.last_hash().to_owned();
                registry.publish(sound, None);
            }
            return Err(halt(registry, revision, problem));
        }
    }
    let revision = chain.last_revision();
    let synced_at = synced.filter(|s| holds_head && revision >= s.revision).map(|s| s.at);
    match next {
        Some(mut snap) => {
            snap.revision = revision;
            snap.hash = chain.last_hash().to_owned();
            registry.publish(snap, synced_at);
        }
        None => {
            if let Some(at) = synced_at {
                registry.mark_synced(at);
            }
        }
    }
    Ok(Applied { behind: !holds_head })
}

fn halt(registry: &Registry, revision: i64, problem: String) -> Error {
    let reason = format!("registry log rejected at revision {revision}: {problem}");
    registry.halt(reason.clone());
    Error::Unavailable(reason)
}

/// Brings the snapshot to `min_revision` from the primary, checking every hash as the follower
/// does: read-your-writes for a client whose write the standby has not replayed yet. It never
/// marks the registry fresh: freshness is the followed database's heartbeat alone.
pub async fn catch_up_from(registry: &Registry, sources: &Sources, min_revision: i64) -> Result<()> {
    let _one = sources.catching_up.lock().await;
    loop {
        let from = registry.revision();
        if from >= min_revision {
            return Ok(());
        }
        if let Some(reason) = registry.halted() {
            return Err(Error::Unavailable(reason));
        }
        let events = sources.primary().events_after((from - 1).max(0), BATCH).await?;
        let complete = (events.len() as u64) < BATCH;
        let applied = apply(registry, &events, None)?;
        if applied.behind || (complete && registry.revision() < min_revision) {
            return Err(Error::Unavailable(format!(
                "the primary has no revision {min_revision} yet (this replica is at {})",
                registry.revision()
            )));
        }
    }
}
