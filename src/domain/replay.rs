//! The registry's history, replayed. Every event carries the whole entity after the change
//! ([`RegistryChange`]), so folding a seller's events in revision order gives the seller exactly as it
//! stood after any revision; the fold mirrors how the snapshot applies the same changes, so a decision
//! replayed from it ([`SellerReplay::view`]) is the decision the service would have made then.
//!
//! Also here, because they are pure functions of stored data: the check of the hash chain
//! ([`ChainVerifier`]) and the whole-registry judgements auditors ask for ([`compliance`]).

pub mod compliance;

use super::chain::{EventFields, GENESIS_HASH, event_hash};
use super::ids::{SellerId, Timestamp};
use super::registry::{Attestation, RegistryChange, Seller, SuspensionOrder};
use super::verify::{Contract, OrderView, SellerView};

/// Every event kind the log holds.
pub const EVENT_KINDS: [&str; 7] = [
    "SELLER_CREATED",
    "SELLER_UPDATED",
    "ATTESTATION_SUBMITTED",
    "ATTESTATION_REVOKED",
    "SUSPENSION_ORDER_CREATED",
    "SUSPENSION_ORDER_LIFTED",
    "SUPERVISION_RECORDED",
];

/// The kinds that change a seller itself: the seller record, its attestations, its supervision
/// evidence. Suspension orders are the regulator's, not the seller's, and are kept apart.
pub const SELLER_EVENT_KINDS: [&str; 5] =
    ["SELLER_CREATED", "SELLER_UPDATED", "ATTESTATION_SUBMITTED", "ATTESTATION_REVOKED", "SUPERVISION_RECORDED"];

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

    /// Applies one change, at `revision`. Changes of other sellers are ignored, as are attestations
    /// and supervision evidence of a seller not yet created (the snapshot ignores them too: the log's
    /// foreign keys make them impossible, so one would mean a corrupt log, and ignoring it fails
    /// closed). Suspension orders of every scope are kept; [`SellerReplay::order_views`] gives them
    /// to the engine, which matches scopes itself.
    pub fn apply(&mut self, revision: i64, change: &RegistryChange) {
        let mine = |id: &SellerId| *id == self.seller_id;
        match change {
            RegistryChange::SellerCreated(s) | RegistryChange::SellerUpdated(s) if mine(&s.seller_id) => {
                self.seller = Some(s.clone());
                self.revision = revision;
            }
            RegistryChange::AttestationSubmitted(a) | RegistryChange::AttestationRevoked(a)
                if mine(&a.seller_id) && self.seller.is_some() =>
            {
                match self.attestations.iter_mut().find(|x| x.attestation_id == a.attestation_id) {
                    Some(slot) => *slot = a.clone(),
                    None => self.attestations.push(a.clone()),
                }
                self.revision = revision;
            }
            RegistryChange::SupervisionRecorded(s) if mine(&s.seller_id) && self.seller.is_some() => {
                self.last_supervision = Some(self.last_supervision.map_or(s.time, |t| t.max(s.time)));
                self.revision = revision;
            }
            RegistryChange::SuspensionOrderCreated(o) | RegistryChange::SuspensionOrderLifted(o) => {
                match self.orders.iter_mut().find(|x| x.order_id == o.order_id) {
                    Some(slot) => *slot = o.clone(),
                    None => self.orders.push(o.clone()),
                }
            }
            _ => {}
        }
    }

    /// The seller as the decision engine sees it; `None` if it did not exist.
    pub fn view(&self) -> Option<SellerView> {
        let s = self.seller.as_ref()?;
        Some(SellerView {
            seller_id: s.seller_id.clone(),
            legal_name: s.legal_name.clone(),
            privacy_contact: s.privacy_contact.clone(),
            country: s.country,
            status: s.status,
            role: s.role,
            contracts: self.attestations.iter().map(Contract::compile).collect(),
            last_supervision: self.last_supervision,
        })
    }

    /// The suspension orders as the decision engine reads them.
    pub fn order_views(&self) -> Vec<OrderView> {
        self.orders
            .iter()
            .map(|o| OrderView {
                scope: o.scope.clone(),
                categories: o.categories.iter().copied().collect(),
                effective: o.effective_time,
                lifted: o.lifted,
            })
            .collect()
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
