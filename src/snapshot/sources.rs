//! Where the snapshot reads the log from, and the heartbeat that says how current that is.
//!
//! A replica follows the database nearest to it: the first of `database.read_urls` (hot standbys)
//! that answers, moving to the next when one fails, or the primary itself when there are none.
//! The primary stays the source of truth for read-your-writes: a `min_revision` the standby has not
//! replayed yet is fetched from it (see [`super::catch_up_from`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::store::Store;

/// The databases the snapshot reads: the standbys, in order of preference, and the primary.
#[derive(Clone)]
pub struct Sources {
    readers: Arc<[Store]>,
    current: Arc<AtomicUsize>,
    primary: Store,
    standbys: bool,
    /// One catch-up from the primary at a time: requests that all name a revision the standby lacks
    /// wait for one fetch instead of each sending their own to the primary.
    pub(super) catching_up: Arc<tokio::sync::Mutex<()>>,
}

impl Sources {
    /// Follows `readers` in order (the primary itself when there are none).
    pub fn new(primary: Store, readers: Vec<Store>) -> Self {
        let standbys = !readers.is_empty();
        let readers: Arc<[Store]> = if standbys { readers.into() } else { Arc::from([primary.clone()]) };
        Self { readers, current: Arc::new(AtomicUsize::new(0)), primary, standbys, catching_up: Arc::default() }
    }

    /// The database followed now.
    pub fn reader(&self) -> &Store {
        let i = self.current.load(Ordering::Acquire) % self.readers.len();
        &self.readers[i]
    }

    /// How many databases the log can be followed from.
    pub fn reader_count(&self) -> usize {
        self.readers.len()
    }

    /// Whether the log is followed from standbys rather than from the primary.
    pub fn has_standbys(&self) -> bool {
        self.standbys
    }

    /// The primary: writes, and the revisions a standby has not replayed yet.
    pub fn primary(&self) -> &Store {
        &self.primary
    }

    /// Moves on to the next standby after the current one failed; with one, it is retried.
    pub fn next_reader(&self) {
        if self.readers.len() > 1 {
            let i = self.current.fetch_add(1, Ordering::AcqRel).wrapping_add(1) % self.readers.len();
            tracing::warn!(reader = i, "snapshot follows the next database in database.read_urls");
        }
    }
}

/// Writes the heartbeat to the primary every `every` until aborted. Every instance that can reach
/// the primary writes it (the newest time wins), so replicas stay fresh as long as any instance
/// reaches the primary, and go stale together when none does.
pub fn spawn_heartbeat(primary: Store, every: Duration) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut failing = false;
        loop {
            match primary.write_heartbeat().await {
                Ok(()) if failing => {
                    failing = false;
                    tracing::info!("heartbeat written to the primary again");
                }
                Ok(()) => {}
                // Logged once per outage: the staleness gauge and health say the rest.
                Err(e) if !failing => {
                    failing = true;
                    tracing::warn!(error = %e, "cannot write the heartbeat to the primary");
                }
                Err(_) => {}
            }
            tokio::time::sleep(every).await;
        }
    })
}
