//! The decision engine: DESIGN.md's rules, in their order, as one pure function of (the seller as
//! the snapshot holds it, the compiled policy, the suspension orders, the request, now). It reads no
//! clock, takes no lock and does no I/O, so the same inputs always give the same verdict: that is
//! what lets ExplainDecision replay a past decision with this very code.
//!
//! Failing closed is structural: a category is allowed only at the very end of rule 7, after every
//! check passed; every early return denies all requested categories.

use std::sync::Arc;

use super::ids::{Country, SellerId, Timestamp};
use super::policy::{Policy, role_index};
use super::registry::Attestation;
use super::vocab::{
    AttestationState, Clause, DataCategory, Decision, Purpose, ReasonCode, SellerRole, SellerStatus, Set,
    TransferBasis, Vocab,
};

/// A validated VerifySeller request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyRequest {
    pub seller_id: SellerId,
    /// Non-empty, no duplicates, in the caller's order.
    pub categories: Vec<DataCategory>,
    pub purpose: Purpose,
    /// `None` is well formed: decided as BASIS_MISSING.
    pub basis: Option<TransferBasis>,
    pub basis_evidence_ref: String,
    /// 0: any revision.
    pub min_revision: i64,
}

/// A contract attestation compiled for the hot path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contract {
    pub attestation_id: Arc<str>,
    pub clauses: Set<Clause>,
    pub purposes: Set<Purpose>,
    pub categories: Set<DataCategory>,
    pub effective: Timestamp,
    pub expire: Timestamp,
    pub revoked: bool,
    /// 0: no limit of the contract's own.
    pub retention_days: u32,
}

impl Contract {
    /// Compiles an attestation.
    pub fn compile(a: &Attestation) -> Self {
        Self {
            attestation_id: Arc::from(a.attestation_id.as_str()),
            clauses: a.clauses.iter().copied().collect(),
            purposes: a.purposes.iter().copied().collect(),
            categories: a.categories.iter().copied().collect(),
            effective: a.effective_time,
            expire: a.expire_time,
            revoked: a.state == AttestationState::Revoked,
            retention_days: a.retention_days,
        }
    }

    /// In force at `now`: active, and effective ≤ now < expire.
    pub fn in_force(&self, now: Timestamp) -> bool {
        self.terms().in_force(now)
    }

    /// What the decision engine reads of the contract, without its id.
    pub fn terms(&self) -> Terms {
        Terms {
            clauses: self.clauses,
            purposes: self.purposes,
            categories: self.categories,
            effective: self.effective,
            expire: self.expire,
            revoked: self.revoked,
            retention_days: self.retention_days,
        }
    }
}

/// The terms of a contract as the decision engine reads them: plain bitsets and times, `Copy`, so
/// a compact snapshot can hand them out without allocating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Terms {
    pub clauses: Set<Clause>,
    pub purposes: Set<Purpose>,
    pub categories: Set<DataCategory>,
    pub effective: Timestamp,
    pub expire: Timestamp,
    pub revoked: bool,
    /// 0: no limit of the contract's own.
    pub retention_days: u32,
}

impl Terms {
    /// In force at `now`: active, and effective ≤ now < expire.
    pub fn in_force(&self, now: Timestamp) -> bool {
        !self.revoked && self.effective <= now && now < self.expire
    }
}

/// What the decision engine needs to know of a seller, however it is stored: a [`SellerView`], or a
/// record of the compact in-memory snapshot read in place. [`decide_for`] reads nothing else, so
/// every representation gets the same verdict.
pub trait SellerFacts {
    fn seller_id(&self) -> &str;
    fn legal_name(&self) -> &str;
    fn privacy_contact(&self) -> &str;
    fn country(&self) -> Country;
    fn status(&self) -> SellerStatus;
    fn role(&self) -> SellerRole;
    /// The latest supervision evidence (PIPA 26(4)), if any was recorded.
    fn last_supervision(&self) -> Option<Timestamp>;
    /// The terms of every contract, in first-seen order.
    fn terms(&self) -> impl Iterator<Item = Terms> + Clone;
    /// The attestation id of the `index`th contract of [`terms`](Self::terms). Only called for the
    /// contracts a decision relies on.
    fn attestation_id(&self, index: usize) -> AttestationRef;
}

/// A seller as the decision engine needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SellerView {
    pub seller_id: SellerId,
    pub legal_name: String,
    pub privacy_contact: String,
    pub country: Country,
    pub status: SellerStatus,
    pub role: SellerRole,
    pub contracts: Vec<Contract>,
    /// The latest supervision evidence (PIPA 26(4)), if any was recorded.
    pub last_supervision: Option<Timestamp>,
}

impl SellerView {
    /// The view of a seller record, with no contracts and no supervision evidence yet.
    pub fn of(s: &super::registry::Seller) -> Self {
        Self {
            seller_id: s.seller_id.clone(),
            legal_name: s.legal_name.clone(),
            privacy_contact: s.privacy_contact.clone(),
            country: s.country,
            status: s.status,
            role: s.role,
            contracts: Vec::new(),
            last_supervision: None,
        }
    }
}

impl SellerFacts for SellerView {
    fn seller_id(&self) -> &str {
        self.seller_id.as_str()
    }
    fn legal_name(&self) -> &str {
        &self.legal_name
    }
    fn privacy_contact(&self) -> &str {
        &self.privacy_contact
    }
    fn country(&self) -> Country {
        self.country
    }
    fn status(&self) -> SellerStatus {
        self.status
    }
    fn role(&self) -> SellerRole {
        self.role
    }
    fn last_supervision(&self) -> Option<Timestamp> {
        self.last_supervision
    }
    fn terms(&self) -> impl Iterator<Item = Terms> + Clone {
        self.contracts.iter().map(Contract::terms)
    }
    fn attestation_id(&self, index: usize) -> AttestationRef {
        AttestationRef::Text(
            self.contracts.get(index).map(|c| c.attestation_id.clone()).unwrap_or_else(|| Arc::from("")),
        )
    }
}

/// What a suspension order (PIPA 28-9) applies to.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum SuspensionScope {
    Seller(SellerId),
    Country(Country),
}

/// A suspension order as the decision engine needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderView {
    pub scope: SuspensionScope,
    /// Empty: every category.
    pub categories: Set<DataCategory>,
    pub effective: Timestamp,
    pub lifted: bool,
}

impl OrderView {
    /// The view of a suspension order.
    pub fn of(o: &super::registry::SuspensionOrder) -> Self {
        Self {
            scope: o.scope.clone(),
            categories: o.categories.iter().copied().collect(),
            effective: o.effective_time,
            lifted: o.lifted,
        }
    }

    fn matches(&self, seller: &impl SellerFacts) -> bool {
        match &self.scope {
            SuspensionScope::Seller(id) => id.as_str() == seller.seller_id(),
            SuspensionScope::Country(c) => *c == seller.country(),
        }
    }

    fn covered(&self) -> Set<DataCategory> {
        if self.categories.is_empty() { DataCategory::ALL.iter().copied().collect() } else { self.categories }
    }
}

/// One reason for a denial, or an advisory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Reason {
    pub code: ReasonCode,
    /// Set with CLAUSE_MISSING.
    pub clause: Option<Clause>,
}

impl Reason {
    /// A reason without a clause.
    pub const fn of(code: ReasonCode) -> Self {
        Self { code, clause: None }
    }

    /// A human-readable explanation for the caller's logs.
    pub fn message(&self) -> &'static str {
        message(self.code)
    }
}

/// A human-readable explanation of a reason code.
pub fn message(code: ReasonCode) -> &'static str {
    match code {
        ReasonCode::SellerUnknown => "the seller is not in the registry",
        ReasonCode::SellerSuspended => "the seller is suspended",
        ReasonCode::SellerOffboarded => "the seller is offboarded",
        ReasonCode::SuspensionOrderActive => "a suspension order (PIPA 28-9) covers this transfer",
        ReasonCode::ContractMissing => "no data-protection contract is attested for the seller",
        ReasonCode::ContractNotYetEffective => "the seller's contract is not yet effective",
        ReasonCode::ContractExpired => "the seller's contract has expired",
        ReasonCode::ContractRevoked => "the seller's contract attestation was revoked",
        ReasonCode::PurposeDeniedByPolicy => "the policy does not allow transfers for this purpose",
        ReasonCode::PurposeNotInContract => "the contracts in force do not cover this purpose",
        ReasonCode::BasisMissing => "no transfer basis was given",
        ReasonCode::BasisNotAccepted => "the policy does not accept this basis for this purpose and seller role",
        ReasonCode::CategoryProhibited => "the policy prohibits this category for every purpose",
        ReasonCode::CategoryNotPermittedForPurpose => "the policy does not permit this category for this purpose",
        ReasonCode::CategoryNotInContract => "the contracts in force do not cover this category",
        ReasonCode::ClauseMissing => "the contracts in force lack a required clause",
        ReasonCode::RegistryStale => "the registry snapshot is older than the maximum staleness",
        ReasonCode::ContractExpiringSoon => "a contract relied on expires soon",
        ReasonCode::AuditOverdue => "the latest supervision evidence is older than the policy's interval",
    }
}

/// What the buyer must be told (PIPA 28-8(2)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disclosure {
    pub recipient_legal_name: String,
    pub recipient_contact: String,
    pub country: Country,
    pub purpose: Purpose,
    // The categories disclosed are the verdict's `allowed`, which the answer carries already.
    pub retention_days: u32,
}

/// An attestation a decision relies on, as the decision names it. A server-assigned id (a UUID in
/// canonical form) is kept as its 16 bytes and formatted only when the answer is encoded; any other
/// id is shared text. Two refs are equal when they spell the same id.
#[derive(Debug, Clone)]
pub enum AttestationRef {
    Uuid(uuid::Uuid),
    Text(Arc<str>),
}

impl PartialEq for AttestationRef {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Uuid(a), Self::Uuid(b)) => a == b,
            (Self::Text(a), Self::Text(b)) => a == b,
            _ => self.to_string() == other.to_string(),
        }
    }
}

impl Eq for AttestationRef {}

impl AttestationRef {
    /// The id as shared text.
    pub fn into_shared(self) -> Arc<str> {
        match self {
            Self::Uuid(id) => Arc::from(id.hyphenated().to_string()),
            Self::Text(id) => id,
        }
    }
}

impl std::fmt::Display for AttestationRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Uuid(id) => id.hyphenated().fmt(f),
            Self::Text(id) => f.write_str(id),
        }
    }
}

/// The outcome of one verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub decision: Decision,
    /// In request order.
    pub allowed: Vec<DataCategory>,
    /// In request order, each with at least one reason.
    pub denied: Vec<(DataCategory, Vec<Reason>)>,
    /// Seller-level reasons and advisories.
    pub reasons: Vec<Reason>,
    pub valid_until: Timestamp,
    /// 0 unless something is allowed.
    pub retention_days: u32,
    pub attestation_ids: Vec<AttestationRef>,
    /// Set when something is allowed.
    pub disclosure: Option<Disclosure>,
}

/// A verdict, the registry revision it was made at, and when.
#[derive(Debug, Clone)]
pub struct Decided {
    pub verdict: Verdict,
    pub revision: i64,
    pub now: Timestamp,
}

/// Everything a decision depends on besides the seller and the request.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub policy: &'a Policy,
    pub orders: &'a [OrderView],
    pub now: Timestamp,
    /// The snapshot is older than the configured maximum staleness.
    pub stale: bool,
}

fn deny_all(req: &VerifyRequest, reason: Reason, valid_until: Timestamp) -> Verdict {
    Verdict {
        decision: Decision::Deny,
        allowed: Vec::new(),
        denied: req.categories.iter().map(|c| (*c, vec![reason])).collect(),
        reasons: vec![reason],
        valid_until,
        retention_days: 0,
        attestation_ids: Vec::new(),
        disclosure: None,
    }
}

/// Decides `req` for `seller` (`None`: not in the registry). Rules 2 to 9 of DESIGN.md, in order.
pub fn decide(ctx: &Context<'_>, seller: Option<&SellerView>, req: &VerifyRequest) -> Verdict {
    decide_for(ctx, seller, req)
}

/// [`decide`] for a seller in any representation: the compact snapshot's records are decided in
/// place, without building a [`SellerView`].
pub fn decide_for<S: SellerFacts>(ctx: &Context<'_>, seller: Option<&S>, req: &VerifyRequest) -> Verdict {
    let now = ctx.now;
    let policy = ctx.policy;
    let mut valid_until = now.plus_seconds(i64::from(policy.decision_ttl_seconds));

    // Rule 2: a stale registry might miss a revocation or a suspension.
    if ctx.stale {
        return deny_all(req, Reason::of(ReasonCode::RegistryStale), valid_until);
    }
    // Rule 3.
    let Some(seller) = seller else {
        return deny_all(req, Reason::of(ReasonCode::SellerUnknown), valid_until);
    };
    match seller.status() {
        SellerStatus::Active => {}
        SellerStatus::Suspended => return deny_all(req, Reason::of(ReasonCode::SellerSuspended), valid_until),
        SellerStatus::Offboarded => return deny_all(req, Reason::of(ReasonCode::SellerOffboarded), valid_until),
    }

    // Rule 4: suspension orders override every basis. An order that starts later caps valid_until.
    let mut suspended = Set::<DataCategory>::empty();
    for order in ctx.orders.iter().filter(|o| !o.lifted && o.matches(seller)) {
        if order.effective <= now {
            suspended = suspended.union(order.covered());
        } else {
            valid_until = valid_until.min(order.effective);
        }
    }
    let requested: Set<DataCategory> = req.categories.iter().copied().collect();
    let suspension = Reason::of(ReasonCode::SuspensionOrderActive);
    let any_suspended = !requested.intersection(suspended).is_empty();

    // Rules 5 and 6 yield either a seller-level reason for every category not already suspended,
    // or the union of the contracts in force.
    let rule = policy.purpose(req.purpose);
    let mut in_force = seller.terms().enumerate().filter(|(_, c)| c.in_force(now)).peekable();
    let seller_level: Option<ReasonCode> = if rule.denied {
        Some(ReasonCode::PurposeDeniedByPolicy)
    } else if let Some(basis) = req.basis {
        (!rule.bases[role_index(seller.role())].contains(basis)).then_some(ReasonCode::BasisNotAccepted)
    } else {
        Some(ReasonCode::BasisMissing)
    }
    .or_else(|| in_force.peek().is_none().then(|| no_contract_reason(seller.terms(), now)));

    for c in seller.terms().filter(|c| !c.revoked && c.effective > now) {
        // A contract that becomes effective later may change the answer then.
        valid_until = valid_until.min(c.effective);
    }

    let mut clauses = Set::<Clause>::empty();
    let mut purposes = Set::<Purpose>::empty();
    let mut categories = Set::<DataCategory>::empty();
    let mut attestation_ids = Vec::new();
    let mut retention_days = rule.retention_days;
    let mut earliest_expire = Timestamp::MAX;
    if seller_level.is_none() {
        for (index, c) in in_force {
            clauses = clauses.union(c.clauses);
            purposes = purposes.union(c.purposes);
            categories = categories.union(c.categories);
            attestation_ids.push(seller.attestation_id(index));
            if c.retention_days > 0 {
                retention_days = retention_days.min(c.retention_days);
            }
            earliest_expire = earliest_expire.min(c.expire);
        }
    }
    let seller_level =
        seller_level.or_else(|| (!purposes.contains(req.purpose)).then_some(ReasonCode::PurposeNotInContract));

    let mut reasons = Vec::new();
    if any_suspended {
        reasons.push(suspension);
    }
    if let Some(code) = seller_level {
        reasons.push(Reason::of(code));
    }

    // Rule 7, per category, in request order.
    let needed = policy.baseline.union(rule.extra_clauses);
    let mut allowed = Vec::with_capacity(req.categories.len());
    let mut denied = Vec::new();
    for &category in &req.categories {
        if suspended.contains(category) {
            denied.push((category, vec![suspension]));
            continue;
        }
        if let Some(code) = seller_level {
            denied.push((category, vec![Reason::of(code)]));
            continue;
        }
        if policy.prohibited.contains(category) {
            denied.push((category, vec![Reason::of(ReasonCode::CategoryProhibited)]));
            continue;
        }
        if !rule.permitted.contains(category) {
            denied.push((category, vec![Reason::of(ReasonCode::CategoryNotPermittedForPurpose)]));
            continue;
        }
        // What the contracts lack is reported whole, so legal can fix it in one amendment.
        let mut why = Vec::new();
        if !categories.contains(category) {
            why.push(Reason::of(ReasonCode::CategoryNotInContract));
        }
        let missing = needed.union(policy.category_clauses(category)).difference(clauses);
        why.extend(missing.iter().map(|clause| Reason { code: ReasonCode::ClauseMissing, clause: Some(clause) }));
        if why.is_empty() {
            allowed.push(category);
        } else {
            denied.push((category, why));
        }
    }

    // Rule 8.
    let decision = match (allowed.is_empty(), denied.is_empty()) {
        (false, true) => Decision::Allow,
        (true, _) => Decision::Deny,
        (false, false) => Decision::AllowPartial,
    };

    // Rule 9.
    let disclosure = if allowed.is_empty() {
        retention_days = 0;
        None
    } else {
        valid_until = valid_until.min(earliest_expire);
        if earliest_expire < now.plus_days(i64::from(policy.expiring_soon_days)) {
            reasons.push(Reason::of(ReasonCode::ContractExpiringSoon));
        }
        if audit_overdue(policy, seller, now) {
            reasons.push(Reason::of(ReasonCode::AuditOverdue));
        }
        Some(Disclosure {
            recipient_legal_name: seller.legal_name().to_owned(),
            recipient_contact: seller.privacy_contact().to_owned(),
            country: seller.country(),
            purpose: req.purpose,
            retention_days,
        })
    };

    Verdict { decision, allowed, denied, reasons, valid_until, retention_days, attestation_ids, disclosure }
}

/// Rule 6 when no contract is in force: the most telling reason, in DESIGN.md's order.
fn no_contract_reason(contracts: impl Iterator<Item = Terms> + Clone, now: Timestamp) -> ReasonCode {
    if contracts.clone().any(|c| c.revoked) {
        ReasonCode::ContractRevoked
    } else if contracts.clone().any(|c| c.effective > now) {
        ReasonCode::ContractNotYetEffective
    } else if contracts.clone().any(|c| c.expire <= now) {
        ReasonCode::ContractExpired
    } else {
        ReasonCode::ContractMissing
    }
}

/// An entrustee processes on the platform's behalf, so the platform must supervise it (PIPA 26(4)).
fn audit_overdue(policy: &Policy, seller: &impl SellerFacts, now: Timestamp) -> bool {
    match (seller.role(), policy.supervision_interval_days) {
        (SellerRole::Entrustee, Some(days)) => {
            seller.last_supervision().is_none_or(|t| t.plus_days(i64::from(days)) < now)
        }
        _ => false,
    }
}

#[cfg(test)]
#[path = "verify_tests.rs"]
mod tests;
