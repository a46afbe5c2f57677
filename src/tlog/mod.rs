//! Signed checkpoints of the two Merkle logs — the registry's events (origin `audit.origin`) and
//! the decision records (`<origin>/decisions`) — and the watch that each only ever grows.
//!
//! A [`Tlog`] holds the Ed25519 key (from a file, never the database; both logs sign with it) and
//! the last checkpoint it signed (kept in a directory, never the database). Before every
//! signature — at start-up, every `audit.checkpoint_interval_s`, and after a bulk import — it
//! checks that the database's log extends that checkpoint:
//! - the log's head (the head revision; `decision_log_head`) and the tree agree on its size, and
//!   the size has not shrunk;
//! - the stored tree at the old size has the old root, and a consistency proof from the old size
//!   to the new verifies;
//! - registry only: the leaves added since are recomputed from the events themselves and give the
//!   new root, because the snapshot folds the events, so an event edited after its write would
//!   change decisions. A decision record's leaf is computed by the recorder in the record's own
//!   transaction and nothing reads the record back to decide, so the tree as written is what is
//!   signed; a record edited afterwards no longer matches its leaf, which every proof shows.
//!
//! If any check fails the evidence is logged at error, the registry is halted (every decision DENY
//! REGISTRY_STALE, health NOT_SERVING) and nothing is signed again until an operator acts. Signing
//! runs on its own task and only reads the database, so VerifySeller never waits for it.

mod files;
pub mod keys;

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use tokio::sync::{Mutex, Notify};
use tokio::task::JoinHandle;

pub use files::CheckpointDir;

use crate::config::Settings;
use crate::domain::merkle::{Frontier, Hash, NodeId, verify_consistency};
use crate::domain::note::{Checkpoint, NoteSigner, NoteVerifier};
use crate::error::{Error, Result};
use crate::snapshot::{Registry, SavedFile};
use crate::store::Store;
use crate::store::merkle::{DECISIONS_LOG, REGISTRY_LOG};

/// A checkpoint and the signed note that carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    pub checkpoint: Checkpoint,
    pub note: String,
}

/// What a check before signing found.
enum Check {
    /// The log extends the last checkpoint; here is its size and root now.
    Extends { size: u64, root: Hash },
    /// It does not: the evidence.
    Broken(String),
}

/// Both logs' signers, as the service runs them.
#[derive(Clone)]
pub struct Tlogs {
    pub registry: Arc<Tlog>,
    pub decisions: Arc<Tlog>,
}

impl Tlogs {
    /// The signer of `log` (a [`crate::store::merkle`] log name).
    pub fn get(&self, log: &str) -> Option<&Arc<Tlog>> {
        match log {
            REGISTRY_LOG => Some(&self.registry),
            DECISIONS_LOG => Some(&self.decisions),
            _ => None,
        }
    }
}

/// One log's signer and watch.
pub struct Tlog {
    /// Which log ([`REGISTRY_LOG`] or [`DECISIONS_LOG`]).
    log: &'static str,
    signer: NoteSigner,
    verifier: NoteVerifier,
    origin: String,
    dir: CheckpointDir,
    store: Store,
    registry: Arc<Registry>,
    /// Serializes signing, so two signatures never race on the directory.
    signing: Mutex<()>,
    latest: ArcSwapOption<Signed>,
    wake: Arc<Notify>,
    /// The registry's saved snapshot, written after each check that passes (the registry log's
    /// signer in the service only: the command line has no snapshot worth saving).
    saved: Option<Arc<SavedFile>>,
}

impl Tlog {
    /// Loads the key and the last checkpoint of `log`; `create_key` allows a first run to make a
    /// key.
    pub fn open(
        settings: &Settings,
        log: &'static str,
        store: Store,
        registry: Arc<Registry>,
        create_key: bool,
    ) -> anyhow::Result<Self> {
        let (signer, key) = keys::load_signer(settings, create_key)?;
        let root = keys::checkpoint_dir(settings, &key);
        let dir = CheckpointDir::open(&root, log)?;
        let verifier = signer.verifier();
        dir.write_public_key(&verifier.to_string())?;
        Ok(Self {
            log,
            signer,
            verifier,
            origin: origin_of(&settings.audit.origin, log),
            dir,
            store,
            registry,
            signing: Mutex::new(()),
            latest: ArcSwapOption::empty(),
            wake: Arc::new(Notify::new()),
            saved: None,
        })
    }

    /// The key auditors verify checkpoints with.
    pub fn verifier(&self) -> &NoteVerifier {
        &self.verifier
    }

    /// The log's origin (the first line of its checkpoints).
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Which log this signs ([`REGISTRY_LOG`] or [`DECISIONS_LOG`]).
    pub fn log(&self) -> &'static str {
        self.log
    }

    /// The last checkpoint signed, if any.
    pub fn latest(&self) -> Option<Arc<Signed>> {
        self.latest.load_full()
    }

    /// Asks the signer task to sign soon (after a bulk import), without waiting for it.
    pub fn sign_soon(&self) {
        self.wake.notify_one();
    }

    /// The last checkpoint kept in the directory, verified with this key. A note there that does
    /// not verify, or is for another log, is itself evidence: someone replaced it.
    fn kept(&self) -> std::result::Result<Option<Signed>, String> {
        let note = match self.dir.latest() {
            Ok(Some(note)) => note,
            Ok(None) => return Ok(None),
            Err(e) => return Err(format!("the last checkpoint cannot be read: {e:#}")),
        };
        let checkpoint = Checkpoint::open(&note, &self.verifier)
            .map_err(|e| format!("the kept checkpoint does not verify with {}: {e}", self.verifier.label()))?;
        if checkpoint.origin != self.origin {
            return Err(format!("the kept checkpoint is for {:?}, not {:?}", checkpoint.origin, self.origin));
        }
        Ok(Some(Signed { checkpoint, note }))
    }

    /// The log's size, read so that a write committing in between cannot make it look torn: the
    /// tree's size and the head's.
    async fn stable_size(&self) -> Result<(u64, u64)> {
        for _ in 0..10 {
            let before = self.store.tree_size(self.log).await?;
            let head = self.store.log_size(self.log).await?;
            let after = self.store.tree_size(self.log).await?;
            if before == after {
                return Ok((after, head));
            }
        }
        Err(Error::Unavailable(format!("the {} log kept changing while it was checked", self.log)))
    }

    /// Does the database's log extend `last`?
    async fn check(&self, last: Option<&Checkpoint>) -> Result<Check> {
        let log = self.log;
        let (size, head) = self.stable_size().await?;
        if size != head {
            return Ok(Check::Broken(format!(
                "the {log} log's head says {head} entries but its Merkle tree holds {size}: entries were deleted or \
                 added outside safeguard"
            )));
        }
        let (old, old_root) = last.map_or((0, crate::domain::merkle::empty_root()), |c| (c.size, c.root));
        if size < old {
            return Ok(Check::Broken(format!(
                "the {log} log has {size} entries but the checkpoint signed before had {old}: it was truncated"
            )));
        }
        let stored_old = self.store.tree_root(log, old).await?;
        if stored_old != old_root {
            return Ok(Check::Broken(format!(
                "the {log} log's first {old} entries have root {} but the signed checkpoint says {}: history was \
                 rewritten",
                hex::encode(stored_old),
                hex::encode(old_root)
            )));
        }
        let root = self.store.tree_root(log, size).await?;
        let proof = self.store.consistency_proof(log, old, size).await?;
        if let Err(e) = verify_consistency(old, size, &old_root, &root, &proof) {
            return Ok(Check::Broken(format!("the {log} log at {size} entries is not consistent with {old}: {e}")));
        }
        if log != REGISTRY_LOG {
            return Ok(Check::Extends { size, root });
        }
        // The new leaves from the events themselves, not from the tree: a payload edited since
        // the write would otherwise be signed as if it were the original.
        let frontier_nodes = self.store.frontier(log, old).await?;
        let Some(mut frontier) = Frontier::load(old, |id: NodeId| frontier_nodes.get(&id).copied()) else {
            return Ok(Check::Broken(format!("the registry tree lacks its frontier at {old} events")));
        };
        let from = i64::try_from(old).unwrap_or(i64::MAX) + 1;
        let to = i64::try_from(head).unwrap_or(i64::MAX);
        let events = self.store.event_leaves(from, to).await?;
        for (i, (revision, leaf)) in events.iter().enumerate() {
            if *revision != from + i as i64 {
                return Ok(Check::Broken(format!("registry revision {} is missing from the log", from + i as i64)));
            }
            frontier.append(*leaf);
        }
        if frontier.size() != size || frontier.root() != root {
            return Ok(Check::Broken(format!(
                "the registry events after revision {old} do not hash to the tree's root {}: an event was edited \
                 after it was written",
                hex::encode(root)
            )));
        }
        Ok(Check::Extends { size, root })
    }

    fn halt(&self, evidence: String) {
        tracing::error!(log = self.log, %evidence, "a log does not extend its last signed checkpoint: halting all decisions until an operator acts");
        // The single place where checkpoint evidence stops decisions.
        self.registry.halt(evidence);
    }

    /// Checks the log against the last checkpoint and, if it grew, signs a new one. Returns the
    /// latest checkpoint. A broken log halts the registry and answers FAILED_PRECONDITION.
    pub async fn sign_now(&self) -> Result<Arc<Signed>> {
        let _serial = self.signing.lock().await;
        if let Some(reason) = self.registry.halted() {
            return Err(Error::FailedPrecondition(format!("checkpoints are halted: {reason}")));
        }
        // The newer of what this process signed and what the directory holds (another process,
        // `safeguard import`, may have signed since).
        let mut last = self.latest();
        match self.kept() {
            Err(evidence) => {
                self.halt(evidence.clone());
                return Err(Error::FailedPrecondition(evidence));
            }
            Ok(Some(kept)) if last.as_ref().is_none_or(|l| kept.checkpoint.size > l.checkpoint.size) => {
                last = Some(Arc::new(kept));
            }
            Ok(_) => {}
        }
        let (size, root) = match self.check(last.as_deref().map(|s| &s.checkpoint)).await? {
            Check::Extends { size, root } => (size, root),
            Check::Broken(evidence) => {
                self.halt(evidence.clone());
                return Err(Error::FailedPrecondition(evidence));
            }
        };
        // The log extends what was signed: the registry's snapshot is saved beside the checkpoint,
        // on a blocking task of its own (a caller of GetCheckpoint does not wait for it).
        if let Some(saved) = &self.saved {
            saved.save_soon(&self.registry);
        }
        if let Some(last) = last.as_ref().filter(|l| l.checkpoint.size == size) {
            self.latest.store(Some(last.clone()));
            return Ok(last.clone());
        }
        let checkpoint = Checkpoint { origin: self.origin.clone(), size, root };
        let note = self.signer.sign(&checkpoint.body()).map_err(|e| Error::Internal(e.to_string()))?;
        self.dir.keep(size, &note).map_err(|e| Error::Internal(format!("cannot keep the checkpoint: {e:#}")))?;
        tracing::info!(log = self.log, size, root = %hex::encode(root), "signed a checkpoint");
        let signed = Arc::new(Signed { checkpoint, note });
        self.latest.store(Some(signed.clone()));
        Ok(signed)
    }

    /// Signs every `interval`, or sooner when asked, until the last other handle is dropped.
    pub fn spawn(self: &Arc<Self>, interval: Duration) -> JoinHandle<()> {
        let me = Arc::downgrade(self);
        let wake = self.wake.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = tokio::time::sleep(interval) => {}
                    () = wake.notified() => {}
                }
                // The service holds the only strong handles: once it stops, so does signing.
                let Some(me) = me.upgrade() else { return };
                if me.registry.halted().is_some() {
                    continue;
                }
                if let Err(e) = me.sign_now().await {
                    // Evidence was logged by the halt; a database hiccup is retried next time.
                    tracing::warn!(error = %e, "no checkpoint signed this time");
                }
            }
        })
    }
}

/// The origin of `log`'s checkpoints: the configured origin for the registry, with
/// `/decisions` appended for the decision log.
pub fn origin_of(origin: &str, log: &str) -> String {
    if log == REGISTRY_LOG { origin.to_owned() } else { format!("{origin}/{log}") }
}

/// The registry's saved snapshot file, when `snapshot.saved_file` and checkpoints are on and the
/// checkpoint key exists (it signs the file; on a first run it does not exist yet, and there is no
/// file to read either).
pub fn saved_file(settings: &Settings) -> anyhow::Result<Option<Arc<SavedFile>>> {
    if !settings.audit.checkpoints || !settings.snapshot.saved_file {
        return Ok(None);
    }
    match keys::key_path(settings) {
        Ok(path) if path.exists() => {}
        _ => return Ok(None),
    }
    let (signer, key) = keys::load_signer(settings, false)?;
    let dir = CheckpointDir::open(&keys::checkpoint_dir(settings, &key), REGISTRY_LOG)?;
    Ok(Some(Arc::new(SavedFile::new(&dir.path(), signer))))
}

/// Brings both trees up to date with their logs (the backfill of a log older than its tree) and,
/// unless checkpoints are off, checks each log against its last checkpoint, signs, and starts the
/// signers. A log that fails the check does not stop the start: the service comes up halted, so
/// health reports it and every decision says why.
/// The registry's signer saves the snapshot to `saved` (or to the file [`saved_file`] names once
/// the key exists) after each check that passes.
pub async fn start(
    settings: &Settings,
    store: &Store,
    registry: &Arc<Registry>,
    saved: Option<Arc<SavedFile>>,
) -> anyhow::Result<Option<Tlogs>> {
    if !settings.audit.checkpoints {
        return Ok(None);
    }
    let synced = match store.sync_merkle().await {
        Ok(size) => store.sync_decision_log().await.map(|placed| (size, placed)),
        Err(e) => Err(e),
    };
    match synced {
        Ok((size, placed)) => tracing::debug!(size, placed, "Merkle trees up to date"),
        // A tree that cannot follow its log is evidence too: halt rather than refuse to start.
        Err(Error::Internal(evidence)) => {
            tracing::error!(%evidence, "a Merkle tree does not follow its log: halting all decisions");
            registry.halt(evidence);
        }
        Err(e) => return Err(anyhow::anyhow!("cannot bring the Merkle trees up to date: {e}")),
    }
    let interval = Duration::from_secs(settings.audit.checkpoint_interval_s);
    let open = |log| -> anyhow::Result<Arc<Tlog>> {
        Ok(Arc::new(Tlog::open(settings, log, store.clone(), registry.clone(), true)?))
    };
    let mut registry_log = Tlog::open(settings, REGISTRY_LOG, store.clone(), registry.clone(), true)?;
    // A first run created the key just now: the file can be written from here on.
    registry_log.saved = match saved {
        Some(saved) => Some(saved),
        None => saved_file(settings)?,
    };
    let tlogs = Tlogs { registry: Arc::new(registry_log), decisions: open(DECISIONS_LOG)? };
    for tlog in [&tlogs.registry, &tlogs.decisions] {
        if registry.halted().is_none() {
            // A failure here has halted the registry (evidence) or will be retried (database).
            if let Err(e) = tlog.sign_now().await {
                tracing::warn!(log = tlog.log, error = %e, "no checkpoint signed at start-up");
            }
        }
        tlog.spawn(interval);
    }
    Ok(Some(tlogs))
}
