//! Whole-registry judgements: which sellers may receive what (the recipient register buyers must be
//! told of, PIPA 28-8(2)), and how the registry stands per country. Each seller is judged by the very
//! engine checkout uses ([`decide`]), asked for everything the policy could allow: per purpose the
//! policy does not deny, every category it permits for that purpose and does not prohibit, on
//! SEPARATE_CONSENT. So the register never lists a transfer VerifySeller would refuse.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::domain::policy::Policy;
use crate::domain::verify::{Context, SellerFacts, SellerView, Verdict, VerifyRequest, decide_for};
use crate::domain::{Clause, Country, DataCategory, Decision, Purpose, ReasonCode, SellerId, SellerStatus};
use crate::domain::{Set, Timestamp, TransferBasis, Vocab};

/// What a whole-registry evaluation asks of every seller for one purpose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ask {
    pub purpose: Purpose,
    /// The categories the policy permits for the purpose minus those it prohibits; never empty.
    pub categories: Vec<DataCategory>,
}

/// One ask per purpose the policy does not deny (and that permits some category), in proto order.
pub fn asks(policy: &Policy) -> Vec<Ask> {
    Purpose::ALL
        .iter()
        .filter_map(|&purpose| {
            let rule = policy.purpose(purpose);
            let categories: Vec<DataCategory> = rule.permitted.difference(policy.prohibited).iter().collect();
            (!rule.denied && !categories.is_empty()).then_some(Ask { purpose, categories })
        })
        .collect()
}

/// Decides every ask for `seller` (a view or a compact record), in the order of `asks`.
pub fn evaluate<S: SellerFacts>(ctx: &Context<'_>, seller: &S, asks: &[Ask]) -> Vec<(Purpose, Verdict)> {
    let seller_id = SellerId::from_stored(seller.seller_id());
    asks.iter()
        .map(|ask| {
            let req = VerifyRequest {
                seller_id: seller_id.clone(),
                categories: ask.categories.clone(),
                purpose: ask.purpose,
                basis: Some(TransferBasis::SeparateConsent),
                basis_evidence_ref: String::new(),
                min_revision: 0,
            };
            (ask.purpose, decide_for(ctx, Some(seller), &req))
        })
        .collect()
}

/// Where a seller stands, for the compliance report. Each seller has exactly one standing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Active, and every ask allowed in full.
    Allowed,
    /// Active, and something allowed, not everything.
    Partial,
    /// Active with an attestation, and nothing allowed.
    Denied,
    /// SUSPENDED or OFFBOARDED, or every category asked for is held by a suspension order.
    Suspended,
    /// Active, and no attestation at all.
    NoContract,
}

/// The standing of `seller` given its verdicts on every ask (empty for a seller not active).
pub fn standing(seller: &SellerView, verdicts: &[(Purpose, Verdict)]) -> Standing {
    if seller.status != SellerStatus::Active {
        return Standing::Suspended;
    }
    let held_by_order = |v: &Verdict| {
        v.allowed.is_empty()
            && v.denied.iter().all(|(_, why)| why.iter().all(|r| r.code == ReasonCode::SuspensionOrderActive))
    };
    if !verdicts.is_empty() && verdicts.iter().all(|(_, v)| held_by_order(v)) {
        return Standing::Suspended;
    }
    if seller.contracts.is_empty() {
        return Standing::NoContract;
    }
    if !verdicts.is_empty() && verdicts.iter().all(|(_, v)| v.decision == Decision::Allow) {
        Standing::Allowed
    } else if verdicts.iter().any(|(_, v)| !v.allowed.is_empty()) {
        Standing::Partial
    } else {
        Standing::Denied
    }
}

/// The clauses the verdicts found missing (CLAUSE_MISSING), each once.
pub fn missing_clauses(verdicts: &[(Purpose, Verdict)]) -> Set<Clause> {
    verdicts
        .iter()
        .flat_map(|(_, v)| v.denied.iter().flat_map(|(_, why)| why.iter()))
        .filter(|r| r.code == ReasonCode::ClauseMissing)
        .filter_map(|r| r.clause)
        .collect()
}

/// Sellers of one country by standing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CountryCounts {
    pub allowed: i64,
    pub partial: i64,
    pub denied: i64,
    pub suspended: i64,
    pub no_contract: i64,
}

impl CountryCounts {
    fn add(&mut self, standing: Standing) {
        let slot = match standing {
            Standing::Allowed => &mut self.allowed,
            Standing::Partial => &mut self.partial,
            Standing::Denied => &mut self.denied,
            Standing::Suspended => &mut self.suspended,
            Standing::NoContract => &mut self.no_contract,
        };
        *slot += 1;
    }
}

/// A contract in force that expires soon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expiring {
    pub seller_id: SellerId,
    pub attestation_id: Arc<str>,
    pub expire: Timestamp,
}

/// The registry's compliance at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Compliance {
    /// By country code.
    pub countries: BTreeMap<Country, CountryCounts>,
    /// Per clause, how many sellers' contracts in force lack it; most missed first.
    pub missing_clauses: Vec<(Clause, i64)>,
    /// Contracts in force expiring within the horizon, soonest first.
    pub expiring: Vec<Expiring>,
}

/// Judges every seller at `ctx.now`; lists the contracts in force that expire within
/// `expiring_within_days`.
pub fn compliance(
    ctx: &Context<'_>,
    sellers: impl IntoIterator<Item = impl std::borrow::Borrow<SellerView>>,
    expiring_within_days: u32,
) -> Compliance {
    let asks = asks(ctx.policy);
    let horizon = ctx.now.plus_days(i64::from(expiring_within_days));
    let mut out = Compliance::default();
    let mut missing: BTreeMap<Clause, i64> = BTreeMap::new();
    for seller in sellers {
        let seller = seller.borrow();
        // A seller not active is denied before anything is asked: no need to ask.
        let verdicts = if seller.status == SellerStatus::Active { evaluate(ctx, seller, &asks) } else { Vec::new() };
        out.countries.entry(seller.country).or_default().add(standing(seller, &verdicts));
        for clause in missing_clauses(&verdicts).iter() {
            *missing.entry(clause).or_default() += 1;
        }
        for c in seller.contracts.iter().filter(|c| c.in_force(ctx.now) && c.expire <= horizon) {
            out.expiring.push(Expiring {
                seller_id: seller.seller_id.clone(),
                attestation_id: c.attestation_id.clone(),
                expire: c.expire,
            });
        }
    }
    out.missing_clauses = missing.into_iter().collect();
    // Stable: equal counts stay in clause (proto) order.
    out.missing_clauses.sort_by_key(|(_, sellers)| std::cmp::Reverse(*sellers));
    out.expiring
        .sort_by(|a, b| (a.expire, &a.seller_id, &a.attestation_id).cmp(&(b.expire, &b.seller_id, &b.attestation_id)));
    out
}

/// What a recipient may receive for one purpose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipientPurpose {
    pub purpose: Purpose,
    /// In the policy's category order.
    pub categories: Vec<DataCategory>,
    pub retention_days: u32,
}

/// [`RecipientPurpose`] in 8 bytes and no allocation: the categories as a bitset, as a compact
/// snapshot record stores a contract's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    retention_days: u32,
    /// [`Set::bits`] of the categories: category numbers are at most 13, so they fit.
    categories: u16,
    /// One byte: the enum has no wider representation.
    purpose: Purpose,
}

impl Grant {
    /// The purpose, `categories` (never empty) and retention of one allowed ask.
    pub fn new(purpose: Purpose, categories: Set<DataCategory>, retention_days: u32) -> Self {
        Self { retention_days, categories: categories.bits() as u16, purpose }
    }

    pub fn purpose(&self) -> Purpose {
        self.purpose
    }

    /// In proto order, which is the policy's category order ([`Set::iter`]), so the order
    /// [`Verdict::allowed`] had.
    pub fn categories(&self) -> Set<DataCategory> {
        Set::from_bits(u32::from(self.categories))
    }

    pub fn retention_days(&self) -> u32 {
        self.retention_days
    }

    /// The same grant with its categories listed.
    pub fn expand(&self) -> RecipientPurpose {
        RecipientPurpose {
            purpose: self.purpose,
            categories: self.categories().iter().collect(),
            retention_days: self.retention_days,
        }
    }
}

impl From<&RecipientPurpose> for Grant {
    fn from(p: &RecipientPurpose) -> Self {
        Self::new(p.purpose, p.categories.iter().copied().collect(), p.retention_days)
    }
}

/// Every purpose a recipient may receive data for, in ask (proto) order, at fixed size: one slot
/// per purpose of the vocabulary, so a register of 180,000 sellers holds no allocation per seller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grants {
    slots: [Grant; Purpose::ALL.len()],
    len: u8,
}

impl Grants {
    /// Empty: no purpose granted.
    pub fn new() -> Self {
        let none = Grant { retention_days: 0, categories: 0, purpose: Purpose::ALL[0] };
        Self { slots: [none; Purpose::ALL.len()], len: 0 }
    }

    /// Appends `grant`; a grant past one per purpose (which asks never give) is dropped.
    pub fn push(&mut self, grant: Grant) {
        if let Some(slot) = self.slots.get_mut(usize::from(self.len)) {
            *slot = grant;
            self.len += 1;
        }
    }

    /// The grants, in the order pushed.
    pub fn iter(&self) -> impl Iterator<Item = &Grant> {
        self.slots[..usize::from(self.len)].iter()
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Default for Grants {
    fn default() -> Self {
        Self::new()
    }
}

/// What `seller` may receive now, per purpose: nothing when it may receive nothing (then it is not
/// in the register). The one judgement behind every form of the register, the console's compact
/// one and the [`Recipient`] entries streamed and exported.
pub fn grants<S: SellerFacts>(ctx: &Context<'_>, seller: &S, asks: &[Ask]) -> Grants {
    let mut out = Grants::new();
    if seller.status() != SellerStatus::Active {
        return out;
    }
    for (purpose, v) in evaluate(ctx, seller, asks) {
        if !v.allowed.is_empty() {
            out.push(Grant::new(purpose, v.allowed.iter().copied().collect(), v.retention_days));
        }
    }
    out
}

/// One entry of the recipient register: a seller that may currently receive some buyer data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    pub seller_id: SellerId,
    pub legal_name: String,
    pub privacy_contact: String,
    pub country: Country,
    /// Only purposes with something allowed; never empty.
    pub purposes: Vec<RecipientPurpose>,
}

/// The register entry of `seller` (a view or a compact record), or `None` if it may receive
/// nothing now.
pub fn recipient<S: SellerFacts>(ctx: &Context<'_>, seller: &S, asks: &[Ask]) -> Option<Recipient> {
    let grants = grants(ctx, seller, asks);
    (!grants.is_empty()).then(|| Recipient {
        seller_id: SellerId::from_stored(seller.seller_id()),
        legal_name: seller.legal_name().to_owned(),
        privacy_contact: seller.privacy_contact().to_owned(),
        country: seller.country(),
        purposes: grants.iter().map(Grant::expand).collect(),
    })
}
