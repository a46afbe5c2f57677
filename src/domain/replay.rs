//! The registry's history, replayed. Every event carries the whole entity after the change
//! ([`RegistryChange`]), so folding a seller's events in revision order gives the seller exactly as it
//! stood after any revision. It is the same fold the snapshot applies ([`super::fold`]), so a decision
//! replayed from it ([`SellerReplay::view`]) is the decision the service would have made then.
//!
//! Also here, because they are pure functions of stored data: the check of the hash chain
//! ([`ChainVerifier`]) and the whole-registry judgements auditors ask for ([`compliance`]).

pub mod compliance;

use super::chain::{EventFields, GENESIS_HASH, event_hash};
use super::fold::{self, FoldTarget, Folded, upsert};
use super::ids::{SellerId, Timestamp};
use super::registry::{Attestation, RegistryChange, Seller, SuspensionOrder};
use super::verify::{Contract, OrderView, SellerView};

/// One seller (and the suspension orders) folded from the log up to some revision.
#[derive(Debug, Clone)]
pub struct SellerReplay {
    seller_id: SellerId,
    /// `None` until the seller was created.
    pub seller: Option<Seller>,
    /// Each attestation as last changed, in submission order.
    pub attestations: Vec<Attestation>,
    /// The latest supervision evidence recorded.
    pub last_supervision: Option<Timestamp>,
    /// Every suspension order seen, as last changed, in creation order.
    pub orders: Vec<SuspensionOrder>,
    /// The last revision that changed the seller, its attestations or its supervision; 0 if none.
    pub revision: i64,
}

impl FoldTarget for SellerReplay {
    fn has_seller(&self, id: &SellerId) -> bool {
        *id == self.seller_id && self.seller.is_some()
    }

    fn put_seller(&mut self, seller: &Seller) {
        if seller.seller_id == self.seller_id {
            self.seller = Some(seller.clone());
        }
    }

    fn put_attestation(&mut self, a: &Attestation) {
        upsert(&mut self.attestations, a.clone(), |x| x.attestation_id.clone());
    }

    fn put_order(&mut self, o: &SuspensionOrder) {
        upsert(&mut self.orders, o.clone(), |x| x.order_id.clone());
    }

    fn last_supervision(&self, _: &SellerId) -> Option<Timestamp> {
        self.last_supervision
    }

    fn set_last_supervision(&mut self, _: &SellerId, time: Timestamp) {
        self.last_supervision = Some(time);
    }
}

impl SellerReplay {
    /// Nothing applied yet.
    pub fn new(seller_id: SellerId) -> Self {
        Self {
            seller_id,
            seller: None,
            attestations: Vec::new(),
            last_supervision: None,
            orders: Vec::new(),
            revision: 0,
        }
    }

    /// Applies one change, at `revision`, through the one fold ([`fold::apply`]). Changes of other
    /// sellers are ignored. Suspension orders of every scope are kept; [`SellerReplay::order_views`]
    /// gives them to the engine, which matches scopes itself.
    pub fn apply(&mut self, revision: i64, change: &RegistryChange) {
        let mine = change.seller_id() == Some(&self.seller_id);
        let own = change.kind().is_sellers_own();
        if own && !mine {
            return;
        }
        if fold::apply(self, change) == Folded::Applied && own {
            self.revision = revision;
        }
    }

    /// The seller as the decision engine sees it; `None` if it did not exist.
    pub fn view(&self) -> Option<SellerView> {
        let s = self.seller.as_ref()?;
        let mut view = SellerView::of(s);
        view.contracts = self.attestations.iter().map(Contract::compile).collect();
        view.last_supervision = self.last_supervision;
        Some(view)
    }

    /// The suspension orders as the decision engine reads them.
    pub fn order_views(&self) -> Vec<OrderView> {
        self.orders.iter().map(OrderView::of).collect()
    }
}

/// One stored event as the chain check reads it.
#[derive(Debug, Clone, Copy)]
pub struct LoggedEvent<'a> {
    pub fields: EventFields<'a>,
    pub prev_hash: &'a str,
    pub hash: &'a str,
}

/// The outcome of checking the whole hash chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainReport {
    pub ok: bool,
    pub head_revision: i64,
    pub head_hash: String,
    /// 0 when ok.
    pub first_broken_revision: i64,
    /// Empty when ok.
    pub problem: String,
    pub events_checked: i64,
}

/// Recomputes the chain event by event, oldest first, and stops at the first break. Each check
/// names what the break looks like: a revision missing (a deleted row), a `prev_hash` that is not the
/// previous event's hash (rows reordered or replaced), a hash that does not match the event's fields
/// (an edited row), and finally a head row that is not the last event.
#[derive(Debug, Clone)]
pub struct ChainVerifier {
    next_revision: i64,
    prev_hash: String,
    checked: i64,
    broken: Option<(i64, String)>,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        Self::new()
    }
}

impl ChainVerifier {
    /// A check starting at revision 1 from [`GENESIS_HASH`].
    pub fn new() -> Self {
        Self { next_revision: 1, prev_hash: GENESIS_HASH.to_owned(), checked: 0, broken: None }
    }

    /// A check that goes on from an event already trusted: `revision` with hash `hash`.
    pub fn resume(revision: i64, hash: &str) -> Self {
        Self { next_revision: revision + 1, prev_hash: hash.to_owned(), checked: 0, broken: None }
    }

    /// The first break found: its revision and what it looks like.
    pub fn problem(&self) -> Option<(i64, &str)> {
        self.broken.as_ref().map(|(r, p)| (*r, p.as_str()))
    }

    /// The hash of the last event checked intact (the starting hash before the first).
    pub fn last_hash(&self) -> &str {
        &self.prev_hash
    }

    /// The last revision checked intact; 0 before the first.
    pub fn last_revision(&self) -> i64 {
        self.next_revision - 1
    }

    /// Whether a break was found.
    pub fn is_broken(&self) -> bool {
        self.broken.is_some()
    }

    /// Checks the next stored event (events must come in stored revision order). Returns false once
    /// the chain is broken; later events are then not looked at.
    pub fn check(&mut self, e: &LoggedEvent<'_>) -> bool {
        if self.broken.is_some() {
            return false;
        }
        self.checked += 1;
        let revision = e.fields.revision;
        let expected = self.next_revision;
        let problem = if revision > expected {
            Some((
                expected,
                format!(
                    "revision {expected} is missing: the log jumps from {} to {revision} (an event was deleted)",
                    expected - 1
                ),
            ))
        } else if revision < expected {
            Some((revision, format!("revision {revision} appears again after revision {}", expected - 1)))
        } else if e.prev_hash != self.prev_hash {
            let after =
                if revision == 1 { "the genesis hash".to_owned() } else { format!("revision {}", revision - 1) };
            Some((
                revision,
                format!(
                    "revision {revision} does not follow {after}: its prev_hash is not that hash (events reordered or replaced)"
                ),
            ))
        } else if event_hash(&self.prev_hash, &e.fields) != e.hash {
            Some((revision, format!("revision {revision} does not match its hash (the event was edited)")))
        } else {
            None
        };
        match problem {
            Some(p) => {
                self.broken = Some(p);
                false
            }
            None => {
                self.prev_hash = e.hash.to_owned();
                self.next_revision += 1;
                true
            }
        }
    }

    /// The report, given the head row as it stands after the last event was read.
    pub fn finish(self, head_revision: i64, head_hash: &str) -> ChainReport {
        let last = self.next_revision - 1;
        let broken = self.broken.or_else(|| {
            if head_revision > last {
                Some((
                    last + 1,
                    format!("the head is at revision {head_revision} but the log ends at {last} (events were deleted)"),
                ))
            } else if head_revision < last {
                Some((
                    head_revision + 1,
                    format!("the log holds events after the head revision {head_revision}, up to {last}"),
                ))
            } else if head_hash != self.prev_hash {
                Some((head_revision, format!("the head hash does not match the hash of revision {head_revision}")))
            } else {
                None
            }
        });
        let ok = broken.is_none();
        let (first_broken_revision, problem) = broken.unwrap_or_default();
        ChainReport {
            ok,
            head_revision,
            head_hash: head_hash.to_owned(),
            first_broken_revision,
            problem,
            events_checked: self.checked,
        }
    }
}

#[cfg(test)]
mod tests;
