//! The in-memory registry that VerifySeller reads: every seller and its contracts compiled to
//! bitsets, at one revision. A background task follows the event log and applies each change
//! incrementally; readers get a consistent, immutable version through one atomic load and never wait
//! for the database or a lock.
//!
//! Sellers are held compact ([`Sellers`]): each seller one run of bytes in a sharded arena, read
//! in place by the decision engine ([`Record`]), and a change copies only the shard it touches, so a
//! reader holding the previous version is never disturbed.

mod follower;
mod record;
pub mod saved;
mod sellers;
mod sources;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use tokio::sync::watch;

pub use follower::{Loaded, catch_up_from, load, load_from, spawn_follower, sync_once};
pub use record::Record;
pub use saved::{SavedFile, StartUp, spawn_history_check};
pub use sellers::{RecordAt, SHARDS, Sellers};
pub use sources::{Sources, spawn_heartbeat};

use crate::clock::WallClock;
use crate::domain::chain::GENESIS_HASH;
use crate::domain::fold::FoldTarget;
use crate::domain::registry::{Attestation, Seller, SuspensionOrder};
use crate::domain::verify::{
    Context, Contract, Decided, OrderView, SellerFacts, SellerView, VerifyRequest, decide_for,
};
use crate::domain::{Policy, SellerId, Timestamp};
use crate::error::{Error, Result};

/// One immutable version of the registry: the verified event log folded up to `revision`.
#[derive(Clone)]
pub struct Snapshot {
    pub revision: i64,
    /// The hash of the event at `revision` (the genesis hash before the first): the next event must
    /// link to it, or the follower stops.
    pub hash: String,
    /// Every seller, compact. Read it through [`Snapshot::get`] and [`Snapshot::iter`].
    pub sellers: Sellers,
    /// Every suspension order, as the engine reads them (few: rebuilt on each order change).
    pub orders: Arc<Vec<OrderView>>,
    orders_by_id: imbl::HashMap<String, OrderView>,
}

impl Default for Snapshot {
    fn default() -> Self {
        Self {
            revision: 0,
            hash: GENESIS_HASH.to_owned(),
            sellers: Sellers::default(),
            orders: Arc::default(),
            orders_by_id: imbl::HashMap::new(),
        }
    }
}

impl Snapshot {
    /// The seller `id`, read in place.
    pub fn get(&self, id: &str) -> Option<Record<'_>> {
        self.sellers.get(id)
    }

    /// The seller `id` as an owned view.
    pub fn view(&self, id: &str) -> Option<SellerView> {
        self.get(id).map(|r| r.view())
    }

    /// Every seller, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = Record<'_>> {
        self.sellers.iter()
    }

    /// Every seller with where its record lies, for a holder of this snapshot that reads the
    /// records again later ([`Snapshot::at`]).
    pub fn iter_at(&self) -> impl Iterator<Item = (RecordAt, Record<'_>)> {
        self.sellers.iter_at()
    }

    /// The seller at `at`, which [`Snapshot::iter_at`] of this snapshot gave.
    pub fn at(&self, at: RecordAt) -> Option<Record<'_>> {
        self.sellers.at(at)
    }

    /// How many sellers the registry holds.
    pub fn len(&self) -> usize {
        self.sellers.len()
    }

    /// Whether the registry holds no seller.
    pub fn is_empty(&self) -> bool {
        self.sellers.is_empty()
    }
}

impl FoldTarget for Snapshot {
    fn has_seller(&self, id: &SellerId) -> bool {
        self.sellers.contains(id.as_str())
    }

    fn put_seller(&mut self, s: &Seller) {
        let view = SellerView::of(s);
        let mut fields = record::Fields::of(&view);
        let bytes = match self.sellers.get(s.seller_id.as_str()) {
            Some(current) => {
                fields.last_supervision = current.last_supervision();
                record::encode_with(&fields, current.contract_count() as u16, current.contract_bytes())
            }
            None => record::encode_with(&fields, 0, &[]),
        };
        self.sellers.put(&bytes);
    }

    fn put_attestation(&mut self, a: &Attestation) {
        let Some(current) = self.sellers.get(a.seller_id.as_str()) else { return };
        let mut encoded = Vec::new();
        record::encode_contract(&Contract::compile(a), &mut encoded);
        let id = record::id_bytes(&encoded);
        // Replaced in place, or appended: "as last changed, in first-seen order", as fold::upsert.
        let mut contracts = Vec::with_capacity(current.contract_bytes().len() + encoded.len());
        let mut found = false;
        for c in current.contract_slices() {
            if !found && record::id_bytes(c) == id {
                contracts.extend_from_slice(&encoded);
                found = true;
            } else {
                contracts.extend_from_slice(c);
            }
        }
        let mut count = current.contract_count();
        if !found {
            contracts.extend_from_slice(&encoded);
            count += 1;
        }
        let bytes = record::encode_with(&current.fields(), u16::try_from(count).unwrap_or(u16::MAX), &contracts);
        self.sellers.put(&bytes);
    }

    fn put_order(&mut self, o: &SuspensionOrder) {
        self.orders_by_id.insert(o.order_id.clone(), OrderView::of(o));
        self.orders = Arc::new(self.orders_by_id.values().cloned().collect());
    }

    fn last_supervision(&self, id: &SellerId) -> Option<Timestamp> {
        self.sellers.get(id.as_str()).and_then(|r| r.last_supervision())
    }

    fn set_last_supervision(&mut self, id: &SellerId, time: Timestamp) {
        let Some(current) = self.sellers.get(id.as_str()) else { return };
        let mut fields = current.fields();
        fields.last_supervision = Some(time);
        let bytes = record::encode_with(&fields, current.contract_count() as u16, current.contract_bytes());
        self.sellers.put(&bytes);
    }
}

/// The shared handle to the in-memory registry and the policy it is judged by.
pub struct Registry {
    current: ArcSwap<Snapshot>,
    /// The monotonic clock's origin for `synced_at`.
    epoch: Instant,
    /// When the snapshot was last known to match the log, in nanoseconds since `epoch`: the time
    /// of the newest heartbeat replayed, carried onto the monotonic clock when it was read.
    /// Monotonic: stepping the system clock back cannot make an old sync look recent.
    synced_at: AtomicU64,
    /// Held while a new version is built and published, by the follower and by read-your-writes
    /// catch-ups alike, so neither publishes over a newer one. The hot path never takes it.
    applying: Mutex<()>,
    /// Set when the log can no longer be trusted (a broken hash link, a log that does not extend
    /// what was applied): every decision is then DENY REGISTRY_STALE until an operator acts.
    halted: AtomicBool,
    halt_reason: Mutex<Option<String>>,
    /// Whether every event under the snapshot was chain-checked by this process: false from a start
    /// from the saved file until its background check passes. The file is only written when true.
    history_checked: AtomicBool,
    /// How the snapshot was loaded at start-up.
    start_up: OnceLock<StartUp>,
    revision: watch::Sender<i64>,
    policy: Arc<Policy>,
    max_staleness: Duration,
    clock: WallClock,
}

impl Registry {
    /// A registry starting from `snapshot`, judged by `policy` on the system clock.
    pub fn new(snapshot: Snapshot, policy: Arc<Policy>, max_staleness: Duration) -> Arc<Self> {
        Self::with_clock(snapshot, policy, max_staleness, WallClock::default())
    }

    /// A registry whose decisions read `clock`.
    pub fn with_clock(snapshot: Snapshot, policy: Arc<Policy>, max_staleness: Duration, clock: WallClock) -> Arc<Self> {
        let (revision, _) = watch::channel(snapshot.revision);
        let now = Instant::now();
        // The origin lies well before creation, so that 0 ("never synced", see `start_synced`)
        // reads as older than any bound.
        let epoch = now.checked_sub(max_staleness.saturating_mul(2) + Duration::from_secs(1)).unwrap_or(now);
        let created = u64::try_from(now.saturating_duration_since(epoch).as_nanos()).unwrap_or(u64::MAX);
        Arc::new(Self {
            current: ArcSwap::from_pointee(snapshot),
            epoch,
            // Fresh as of creation, until told otherwise.
            synced_at: AtomicU64::new(created),
            applying: Mutex::new(()),
            halted: AtomicBool::new(false),
            halt_reason: Mutex::new(None),
            history_checked: AtomicBool::new(true),
            start_up: OnceLock::new(),
            revision,
            policy,
            max_staleness,
            clock,
        })
    }

    /// The policy decisions are made under.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The wall clock decisions are judged by.
    pub fn clock(&self) -> &WallClock {
        &self.clock
    }

    /// The revision of the current snapshot.
    pub fn revision(&self) -> i64 {
        self.current.load().revision
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    fn since_epoch(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX)
    }

    /// How long since the snapshot was last known to match the log, on the monotonic clock.
    pub fn staleness(&self) -> Duration {
        let now = self.since_epoch(Instant::now());
        Duration::from_nanos(now.saturating_sub(self.synced_at.load(Ordering::Acquire)))
    }

    /// Whether decisions are being made: not halted, and within the maximum staleness.
    pub fn is_fresh(&self) -> bool {
        !self.halted.load(Ordering::Acquire) && self.staleness() <= self.max_staleness
    }

    /// Stops every decision (DENY REGISTRY_STALE, health NOT_SERVING) because the log cannot be
    /// trusted; the first reason is kept and logged at error. Only a restart, after an operator has
    /// looked at the evidence, clears it.
    pub fn halt(&self, reason: String) {
        let Ok(mut slot) = self.halt_reason.lock() else { return self.halted.store(true, Ordering::Release) };
        if slot.is_none() {
            tracing::error!(%reason, revision = self.revision(), "registry halted: every decision is DENY REGISTRY_STALE until an operator acts");
            *slot = Some(reason);
        }
        self.halted.store(true, Ordering::Release);
    }

    /// Whether every event under the current snapshot has been chain-checked by this process (see
    /// [`saved`]): false while the log under a saved snapshot is being checked in the background.
    pub fn history_checked(&self) -> bool {
        self.history_checked.load(Ordering::Acquire)
    }

    fn set_history_checked(&self) {
        self.history_checked.store(true, Ordering::Release);
    }

    /// How the snapshot was loaded at start-up, once it was.
    pub fn start_up(&self) -> Option<&StartUp> {
        self.start_up.get()
    }

    /// Records how the snapshot was loaded; a start from the saved file leaves the history to be
    /// checked.
    pub fn set_start_up(&self, how: StartUp) {
        if matches!(how, StartUp::FromFile { .. }) {
            self.history_checked.store(false, Ordering::Release);
        }
        let _ = self.start_up.set(how);
    }

    /// Why decisions are halted, if they are.
    pub fn halted(&self) -> Option<String> {
        if !self.halted.load(Ordering::Acquire) {
            return None;
        }
        Some(self.halt_reason.lock().ok().and_then(|r| r.clone()).unwrap_or_else(|| "halted".to_owned()))
    }

    /// Publishes a new version (the follower's job); `synced_at` is when the log was read, if the
    /// snapshot now holds all of it.
    fn publish(&self, snapshot: Snapshot, synced_at: Option<Instant>) {
        let revision = snapshot.revision;
        self.current.store(Arc::new(snapshot));
        if let Some(at) = synced_at {
            self.mark_synced(at);
        }
        self.revision.send_if_modified(|r| {
            let changed = *r != revision;
            *r = revision;
            changed
        });
    }

    /// Sets when the loaded snapshot was last known complete, before anything follows the log:
    /// `None` when no heartbeat vouches for it (a standby that has not replayed one yet, a
    /// snapshot behind the heartbeat), so that decisions wait for the follower's first sync.
    pub fn start_synced(&self, at: Option<Instant>) {
        self.synced_at.store(at.map_or(0, |at| self.since_epoch(at)), Ordering::Release);
    }

    /// Records that the snapshot held everything the log had at `at` (the heartbeat's time).
    fn mark_synced(&self, at: Instant) {
        self.synced_at.fetch_max(self.since_epoch(at), Ordering::AcqRel);
    }

    /// Waits until the snapshot reaches `min_revision`, for at most `wait`.
    pub async fn wait_for(&self, min_revision: i64, wait: Duration) -> Result<()> {
        let mut rx = self.revision.subscribe();
        match tokio::time::timeout(wait, rx.wait_for(|r| *r >= min_revision)).await {
            Ok(Ok(_)) => Ok(()),
            _ => Err(Error::Unavailable(format!(
                "this replica has not reached revision {min_revision} yet (at {}); retry",
                self.revision()
            ))),
        }
    }

    /// Decides a request from memory: the hot path.
    pub fn verify(&self, req: &VerifyRequest) -> Decided {
        let now = self.clock.now();
        let snap = self.current.load();
        let ctx = Context { policy: &self.policy, orders: &snap.orders, now, stale: !self.is_fresh() };
        let seller = snap.sellers.get(req.seller_id.as_str());
        Decided { verdict: decide_for(&ctx, seller.as_ref(), req), revision: snap.revision, now }
    }
}
