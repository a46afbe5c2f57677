//! Tests of the replay fold, the chain check and the whole-registry judgements, on hand-built
//! events and sellers (the engine reads no clock, so "now" is fixed).

use std::sync::Arc;

use super::compliance::{Standing, asks, compliance, recipient, standing};
use super::{ChainVerifier, LoggedEvent, SellerReplay};
use crate::domain::chain::{EventFields, GENESIS_HASH, event_hash};
use crate::domain::registry::{Attestation, RegistryChange, Seller, SuspensionOrder};
use crate::domain::verify::{Context, Contract, OrderView, SellerView, SuspensionScope};
use crate::domain::{
    AttestationState, Clause, Country, DataCategory, DocumentSha256, Policy, Purpose, SellerId, SellerRole,
    SellerStatus, Set, Timestamp, Vocab,
};

fn now() -> Timestamp {
    Timestamp::from_micros(1_767_225_600_000_000)
}

fn id(raw: &str) -> SellerId {
    SellerId::parse(raw).unwrap_or_else(|why| panic!("{raw:?} {why}"))
}

fn country(raw: &str) -> Country {
    Country::parse(raw).unwrap_or_else(|why| panic!("{raw:?} {why}"))
}

fn seller(raw: &str, name: &str, revision: i64) -> Seller {
    Seller {
        seller_id: id(raw),
        legal_name: name.to_owned(),
        country: country("CN"),
        status: SellerStatus::Active,
        role: SellerRole::Recipient,
        contact_email: "legal@x.example".to_owned(),
        privacy_contact: "privacy@x.example".to_owned(),
        revision,
        create_time: now(),
        update_time: now(),
    }
}

fn attestation(raw: &str, att: &str, state: AttestationState, revision: i64) -> Attestation {
    Attestation {
        attestation_id: att.to_owned(),
        seller_id: id(raw),
        contract_ref: "DPA-1".to_owned(),
        document_sha256: DocumentSha256::parse(&"ab".repeat(32)).unwrap_or_else(|e| panic!("{e}")),
        clauses: vec![Clause::PurposeLimitation],
        purposes: vec![Purpose::OrderFulfillment],
        categories: vec![DataCategory::RecipientName],
        signed_time: now(),
        effective_time: now().plus_days(-1),
        expire_time: now().plus_days(365),
        signatory: "Jane".to_owned(),
        retention_days: 0,
        state,
        revoke_reason: String::new(),
        submitted_by: "legal".to_owned(),
        revision,
    }
}

#[test]
fn the_fold_shows_each_revision_as_it_stood() {
    let changes = [
        RegistryChange::SellerCreated(seller("acme", "Acme", 1)),
        RegistryChange::SellerCreated(seller("other", "Other", 2)),
        RegistryChange::AttestationSubmitted(attestation("acme", "a1", AttestationState::Active, 3)),
        RegistryChange::SellerUpdated(seller("acme", "Acme Renamed", 4)),
        RegistryChange::AttestationRevoked(attestation("acme", "a1", AttestationState::Revoked, 5)),
    ];
    let upto = |revision: i64| {
        let mut r = SellerReplay::new(id("acme"));
        for (i, c) in changes.iter().enumerate().take(revision as usize) {
            r.apply(i as i64 + 1, c);
        }
        r
    };
    assert!(upto(0).seller.is_none());
    let r1 = upto(2);
    assert_eq!(r1.seller.as_ref().map(|s| s.legal_name.as_str()), Some("Acme"));
    assert_eq!(r1.revision, 1, "the other seller's event is not this seller's revision");
    let r3 = upto(3);
    assert_eq!(r3.attestations.len(), 1);
    assert_eq!(r3.attestations[0].state, AttestationState::Active);
    let r5 = upto(5);
    assert_eq!(r5.seller.as_ref().map(|s| s.legal_name.as_str()), Some("Acme Renamed"));
    assert_eq!(r5.attestations.len(), 1);
    assert_eq!(r5.attestations[0].state, AttestationState::Revoked);
    assert_eq!(r5.revision, 5);
    let view = r5.view().unwrap_or_else(|| panic!("the seller exists"));
    assert!(view.contracts[0].revoked);
}

#[test]
fn orders_of_every_scope_are_kept_as_last_changed() {
    let order = SuspensionOrder {
        order_id: "o1".to_owned(),
        order_ref: "PIPC-1".to_owned(),
        scope: SuspensionScope::Country(country("CN")),
        categories: Vec::new(),
        effective_time: now(),
        note: String::new(),
        lifted: false,
        lift_time: None,
        lift_reason: String::new(),
        created_by: "legal".to_owned(),
        revision: 1,
    };
    let mut r = SellerReplay::new(id("acme"));
    r.apply(1, &RegistryChange::SuspensionOrderCreated(order.clone()));
    r.apply(2, &RegistryChange::SuspensionOrderLifted(SuspensionOrder { lifted: true, ..order }));
    let views = r.order_views();
    assert_eq!(views.len(), 1);
    assert!(views[0].lifted);
    assert_eq!(r.revision, 0, "orders are not the seller's own revisions");
}

/// A stored chain of `n` events: (revision, time, payload, prev_hash, hash).
fn chain(n: i64) -> Vec<(i64, String, String, String)> {
    let mut prev = GENESIS_HASH.to_owned();
    (1..=n)
        .map(|revision| {
            let payload = format!("{{\"n\":{revision}}}");
            let hash = event_hash(&prev, &fields(revision, &payload));
            (revision, payload, std::mem::replace(&mut prev, hash.clone()), hash)
        })
        .collect()
}

fn fields(revision: i64, payload: &str) -> EventFields<'_> {
    EventFields { revision, time_micros: revision, actor: "a", kind: "SELLER_CREATED", seller_id: "s", payload }
}

fn check(rows: &[(i64, String, String, String)], head: (i64, &str)) -> super::ChainReport {
    let mut v = ChainVerifier::new();
    for (revision, payload, prev_hash, hash) in rows {
        let e = LoggedEvent { fields: fields(*revision, payload), prev_hash, hash };
        if !v.check(&e) {
            break;
        }
    }
    v.finish(head.0, head.1)
}

#[test]
fn an_intact_chain_checks_ok() {
    let rows = chain(5);
    let report = check(&rows, (5, &rows[4].3.clone()));
    assert!(report.ok, "{report:?}");
    assert_eq!(report.events_checked, 5);
    assert_eq!(report.first_broken_revision, 0);
    let empty = check(&[], (0, GENESIS_HASH));
    assert!(empty.ok, "{empty:?}");
}

#[test]
fn edits_deletions_reorders_and_a_wrong_head_are_each_found_where_they_are() {
    let rows = chain(5);
    let head = rows[4].3.clone();

    let mut edited = rows.clone();
    edited[2].1 = "{\"n\":99}".to_owned();
    let r = check(&edited, (5, &head));
    assert_eq!((r.ok, r.first_broken_revision), (false, 3), "{r:?}");
    assert!(r.problem.contains("edited"), "{r:?}");

    let mut deleted = rows.clone();
    deleted.remove(1);
    let r = check(&deleted, (5, &head));
    assert_eq!((r.ok, r.first_broken_revision), (false, 2), "{r:?}");
    assert!(r.problem.contains("missing"), "{r:?}");

    // Rows 2 and 3 trade places: each keeps its revision number but carries the other's content.
    let mut swapped = rows.clone();
    let (a, b) = (swapped[1].clone(), swapped[2].clone());
    swapped[1] = (2, b.1, b.2, b.3);
    swapped[2] = (3, a.1, a.2, a.3);
    let r = check(&swapped, (5, &head));
    assert_eq!((r.ok, r.first_broken_revision), (false, 2), "{r:?}");

    let mut truncated = rows.clone();
    truncated.pop();
    let r = check(&truncated, (5, &head));
    assert_eq!((r.ok, r.first_broken_revision), (false, 5), "{r:?}");

    let r = check(&rows, (5, GENESIS_HASH));
    assert_eq!((r.ok, r.first_broken_revision), (false, 5), "{r:?}");
}

fn contract(id: &str, clauses: Set<Clause>, expire_days: i64) -> Contract {
    Contract {
        attestation_id: Arc::from(id),
        clauses,
        purposes: Purpose::ALL.iter().copied().collect(),
        categories: DataCategory::ALL.iter().copied().collect(),
        effective: now().plus_days(-10),
        expire: now().plus_days(expire_days),
        revoked: false,
        retention_days: 0,
    }
}

fn view(raw: &str, c: &str, status: SellerStatus, contracts: Vec<Contract>) -> SellerView {
    SellerView {
        seller_id: id(raw),
        legal_name: format!("{raw} Ltd."),
        privacy_contact: format!("privacy@{raw}.example"),
        country: country(c),
        status,
        role: SellerRole::Recipient,
        contracts,
        last_supervision: None,
    }
}

#[test]
fn compliance_puts_every_seller_in_one_standing_and_counts_missing_clauses() {
    let policy = Policy::default_pipa();
    let full = policy.baseline.union([Clause::IdentifierProtection].into_iter().collect());
    let no_identifier = policy.baseline;
    let no_grievance = full.difference([Clause::GrievanceAndDisputeResolution].into_iter().collect());
    let sellers = vec![
        view("full", "CN", SellerStatus::Active, vec![contract("c1", full, 365)]),
        view("soon", "CN", SellerStatus::Active, vec![contract("c2", full, 10)]),
        view("partial", "CN", SellerStatus::Active, vec![contract("c3", no_identifier, 365)]),
        view("denied", "US", SellerStatus::Active, vec![contract("c4", no_grievance, 365)]),
        view("none", "US", SellerStatus::Active, Vec::new()),
        view("off", "US", SellerStatus::Offboarded, vec![contract("c5", full, 5)]),
        view("ordered", "JP", SellerStatus::Active, vec![contract("c6", full, 365)]),
    ];
    let orders = vec![OrderView {
        scope: SuspensionScope::Country(country("JP")),
        categories: Set::empty(),
        effective: now().plus_days(-1),
        lifted: false,
    }];
    let ctx = Context { policy: &policy, orders: &orders, now: now(), stale: false };
    let standings: Vec<Standing> = sellers
        .iter()
        .map(|s| {
            let verdicts = if s.status == SellerStatus::Active {
                super::compliance::evaluate(&ctx, s, &asks(&policy))
            } else {
                Vec::new()
            };
            standing(s, &verdicts)
        })
        .collect();
    use Standing::*;
    assert_eq!(standings, vec![Allowed, Allowed, Partial, Denied, NoContract, Suspended, Suspended]);

    let report = compliance(&ctx, &sellers, 30);
    let cn = report.countries[&country("CN")];
    assert_eq!((cn.allowed, cn.partial, cn.denied, cn.suspended, cn.no_contract), (2, 1, 0, 0, 0));
    let us = report.countries[&country("US")];
    assert_eq!((us.allowed, us.partial, us.denied, us.suspended, us.no_contract), (0, 0, 1, 1, 1));
    assert_eq!(report.countries[&country("JP")].suspended, 1);
    assert_eq!(
        report.missing_clauses,
        vec![(Clause::IdentifierProtection, 1), (Clause::GrievanceAndDisputeResolution, 1)]
    );
    let expiring: Vec<&str> = report.expiring.iter().map(|e| &*e.attestation_id).collect();
    assert_eq!(expiring, vec!["c5", "c2"], "soonest first, whatever the seller's status");

    let listed: Vec<String> =
        sellers.iter().filter_map(|s| recipient(&ctx, s, &asks(&policy))).map(|r| r.seller_id.to_string()).collect();
    assert_eq!(listed, vec!["full", "soon", "partial"]);
    let partial = recipient(&ctx, &sellers[2], &asks(&policy)).unwrap_or_else(|| panic!("partial is listed"));
    let customs = partial.purposes.iter().find(|p| p.purpose == Purpose::CustomsClearance);
    let customs = customs.unwrap_or_else(|| panic!("customs is partly allowed"));
    assert!(!customs.categories.contains(&DataCategory::CustomsCode));
    assert_eq!(customs.retention_days, 30);
}
