//! The in-memory registry that VerifySeller reads: every seller and its contracts compiled to
//! bitsets, at one revision. A background task follows the event log and applies each change
//! incrementally; readers get a consistent, immutable version through one atomic load and never wait
//! for the database or a lock.
//!
//! The map is a persistent (structurally shared) hash map, so applying a change copies a handful of
//! nodes, not 180,000 entries, and a reader holding the previous version is never disturbed.

mod follower;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::sync::watch;

pub use follower::{spawn_follower, sync_once};

use crate::domain::registry::{Attestation, RegistryChange, Seller, Supervision, SuspensionOrder};
use crate::domain::verify::{Context, Contract, Decided, OrderView, SellerView, VerifyRequest, decide};
use crate::domain::{Policy, SellerId, Timestamp};
use crate::error::{Error, Result};
use crate::store::RegistryState;

/// One immutable version of the registry.
#[derive(Clone, Default)]
pub struct Snapshot {
    pub revision: i64,
    pub sellers: imbl::HashMap<SellerId, Arc<SellerView>>,
    /// Every suspension order, as the engine reads them (few: rebuilt on each order change).
    pub orders: Arc<Vec<OrderView>>,
    orders_by_id: imbl::HashMap<String, OrderView>,
}

impl Snapshot {
    /// The snapshot of a loaded state.
    pub fn from_state(state: RegistryState) -> Self {
        let mut snap = Snapshot { revision: state.revision, ..Snapshot::default() };
        for s in &state.sellers {
            snap.put_seller(s);
        }
        for a in &state.attestations {
            snap.put_attestation(a);
        }
        for o in &state.orders {
            snap.put_order(o);
        }
        for s in &state.supervisions {
            snap.put_supervision(s);
        }
        snap
    }

    /// Applies one change of the log, at `revision`.
    pub fn apply(&mut self, revision: i64, change: &RegistryChange) {
        match change {
            RegistryChange::SellerCreated(s) | RegistryChange::SellerUpdated(s) => self.put_seller(s),
            RegistryChange::AttestationSubmitted(a) | RegistryChange::AttestationRevoked(a) => self.put_attestation(a),
            RegistryChange::SuspensionOrderCreated(o) | RegistryChange::SuspensionOrderLifted(o) => self.put_order(o),
            RegistryChange::SupervisionRecorded(s) => self.put_supervision(s),
        }
        self.revision = revision;
    }

    fn put_seller(&mut self, s: &Seller) {
        let (contracts, last_supervision) = match self.sellers.get(&s.seller_id) {
            Some(v) => (v.contracts.clone(), v.last_supervision),
            None => (Vec::new(), None),
        };
        let view = SellerView {
            seller_id: s.seller_id.clone(),
            legal_name: s.legal_name.clone(),
            privacy_contact: s.privacy_contact.clone(),
            country: s.country,
            status: s.status,
            role: s.role,
            contracts,
            last_supervision,
        };
        self.sellers.insert(s.seller_id.clone(), Arc::new(view));
    }

    fn put_order(&mut self, o: &SuspensionOrder) {
        let view = OrderView {
            scope: o.scope.clone(),
            categories: o.categories.iter().copied().collect(),
            effective: o.effective_time,
            lifted: o.lifted,
        };
        self.orders_by_id.insert(o.order_id.clone(), view);
        self.orders = Arc::new(self.orders_by_id.values().cloned().collect());
    }

    fn put_supervision(&mut self, s: &Supervision) {
        let Some(current) = self.sellers.get(&s.seller_id) else { return };
        if current.last_supervision.is_some_and(|t| t >= s.time) {
            return;
        }
        let view = SellerView { last_supervision: Some(s.time), ..SellerView::clone(current) };
        self.sellers.insert(s.seller_id.clone(), Arc::new(view));
    }

    fn put_attestation(&mut self, a: &Attestation) {
        // The log's foreign key guarantees the seller came first; a change for an unknown seller
        // would be a corrupt log, and ignoring it keeps the seller unknown: DENY, failing closed.
        let Some(current) = self.sellers.get(&a.seller_id) else {
            tracing::error!(attestation = %a.attestation_id, seller = %a.seller_id, "attestation for an unknown seller");
            return;
        };
        let mut view = SellerView::clone(current);
        let contract = Contract::compile(a);
        match view.contracts.iter_mut().find(|c| c.attestation_id == contract.attestation_id) {
            Some(slot) => *slot = contract,
            None => view.contracts.push(contract),
        }
        self.sellers.insert(a.seller_id.clone(), Arc::new(view));
    }
}

/// The shared handle to the in-memory registry and the policy it is judged by.
pub struct Registry {
    current: ArcSwap<Snapshot>,
    /// When the snapshot was last known to match the database (microseconds since the epoch).
    synced_at: AtomicI64,
    revision: watch::Sender<i64>,
    policy: Arc<Policy>,
    max_staleness: Duration,
}

impl Registry {
    /// A registry starting from `snapshot`, judged by `policy`.
    pub fn new(snapshot: Snapshot, policy: Arc<Policy>, max_staleness: Duration) -> Arc<Self> {
        let (revision, _) = watch::channel(snapshot.revision);
        Arc::new(Self {
            current: ArcSwap::from_pointee(snapshot),
            synced_at: AtomicI64::new(Timestamp::now().as_micros()),
            revision,
            policy,
            max_staleness,
        })
    }

    /// The policy decisions are made under.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The revision of the current snapshot.
    pub fn revision(&self) -> i64 {
        self.current.load().revision
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// How long since the snapshot was last known to match the database.
    pub fn staleness(&self, now: Timestamp) -> Duration {
        let micros = now.as_micros().saturating_sub(self.synced_at.load(Ordering::Relaxed));
        Duration::from_micros(u64::try_from(micros).unwrap_or(0))
    }

    /// Publishes a new version (the follower's job).
    fn publish(&self, snapshot: Snapshot, synced_at: Timestamp) {
        let revision = snapshot.revision;
        self.current.store(Arc::new(snapshot));
        self.synced_at.store(synced_at.as_micros(), Ordering::Relaxed);
        self.revision.send_if_modified(|r| {
            let changed = *r != revision;
            *r = revision;
            changed
        });
    }

    fn synced_at(&self) -> i64 {
        self.synced_at.load(Ordering::Relaxed)
    }

    /// Records that the database had nothing newer at `at`.
    fn mark_synced(&self, at: Timestamp) {
        self.synced_at.store(at.as_micros(), Ordering::Relaxed);
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
        let now = Timestamp::now();
        let snap = self.current.load();
        let ctx = Context {
            policy: &self.policy,
            orders: &snap.orders,
            now,
            stale: self.staleness(now) > self.max_staleness,
        };
        let seller = snap.sellers.get(req.seller_id.as_str()).map(|s| &**s);
        Decided { verdict: decide(&ctx, seller, req), revision: snap.revision, now }
    }
}
