//! The one fold of the registry log: which logged change does what to the registry's state. The
//! snapshot the hot path reads (compiled bitset records), an auditor's replay of one seller (full
//! entities) and a write's view of the current state all fold the same events through [`apply`], so
//! the service, ExplainDecision, GetSellerAsOf and history can never disagree about what the log says.
//! They differ only in how they hold the state, which is what [`FoldTarget`] abstracts.

use super::ids::{SellerId, Timestamp};
use super::registry::{Attestation, RegistryChange, Seller, SuspensionOrder};

/// A representation of the registry's state that the log can be folded into.
pub trait FoldTarget {
    /// Whether the seller has been created.
    fn has_seller(&self, id: &SellerId) -> bool;
    /// Creates or replaces a seller record, keeping its attestations and supervision evidence.
    fn put_seller(&mut self, seller: &Seller);
    /// Replaces the seller's attestation with the same id, or adds it.
    fn put_attestation(&mut self, attestation: &Attestation);
    /// Replaces the suspension order with the same id, or adds it.
    fn put_order(&mut self, order: &SuspensionOrder);
    /// The latest supervision evidence of the seller.
    fn last_supervision(&self, id: &SellerId) -> Option<Timestamp>;
    /// Sets the latest supervision evidence of the seller.
    fn set_last_supervision(&mut self, id: &SellerId, time: Timestamp);
}

/// What [`apply`] did with a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Folded {
    Applied,
    /// The change names a seller that was never created. The write path makes that impossible, so
    /// it means a damaged log; leaving it out keeps the seller unknown (DENY), failing closed.
    UnknownSeller,
    /// Supervision evidence older than what is already recorded: the latest evidence stays.
    Superseded,
}

/// Applies one change of the log.
pub fn apply(target: &mut impl FoldTarget, change: &RegistryChange) -> Folded {
    match change {
        RegistryChange::SellerCreated(s) | RegistryChange::SellerUpdated(s) => {
            target.put_seller(s);
            Folded::Applied
        }
        RegistryChange::AttestationSubmitted(a) | RegistryChange::AttestationRevoked(a) => {
            if !target.has_seller(&a.seller_id) {
                return Folded::UnknownSeller;
            }
            target.put_attestation(a);
            Folded::Applied
        }
        RegistryChange::SuspensionOrderCreated(o) | RegistryChange::SuspensionOrderLifted(o) => {
            target.put_order(o);
            Folded::Applied
        }
        RegistryChange::SupervisionRecorded(s) => {
            if !target.has_seller(&s.seller_id) {
                return Folded::UnknownSeller;
            }
            if target.last_supervision(&s.seller_id).is_some_and(|t| t >= s.time) {
                return Folded::Superseded;
            }
            target.set_last_supervision(&s.seller_id, s.time);
            Folded::Applied
        }
    }
}

/// Replaces the item of `items` whose key equals `item`'s, or appends it: how every fold target
/// keeps attestations and orders "as last changed, in first-seen order".
pub fn upsert<T, K: PartialEq>(items: &mut Vec<T>, item: T, key: impl Fn(&T) -> K) {
    let k = key(&item);
    match items.iter_mut().find(|x| key(x) == k) {
        Some(slot) => *slot = item,
        None => items.push(item),
    }
}
