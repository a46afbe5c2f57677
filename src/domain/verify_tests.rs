//! Tests of the decision engine. The unit tests walk DESIGN.md's rules with the default PIPA policy:
//! each reason code the engine can give has a test that provokes it, and each derived field
//! (valid_until, retention, disclosure, attestation ids) has one that pins its formula. The property
//! tests then throw random sellers, contracts, suspension orders and requests at `decide` and check
//! the invariants that make it fail closed.

use std::fmt;
use std::sync::{Arc, LazyLock};

use proptest::prelude::*;
use proptest::sample::{Index, select, subsequence};

use super::{Context, Contract, OrderView, Reason, SellerView, SuspensionScope, Verdict, VerifyRequest, decide};
use crate::domain::ids::{Country, SellerId, Timestamp};
use crate::domain::policy::{DEFAULT_POLICY_TOML, Policy, role_index};
use crate::domain::vocab::{
    Clause, DataCategory, Decision, Purpose, ReasonCode, SellerRole, SellerStatus, Set, TransferBasis, Vocab,
};

const DAY: i64 = 86_400;

/// Compiled once: the property tests decide many thousands of cases.
static POLICY: LazyLock<Policy> = LazyLock::new(Policy::default_pipa);

/// The default policy after a careless edit that lets ORDER_FULFILLMENT carry EMAIL and PAYMENT_DATA.
/// Under the default policy no purpose permits a prohibited category, so only this one shows that
/// the prohibition itself holds.
static CARELESS_POLICY: LazyLock<Policy> = LazyLock::new(|| {
    let fulfilment =
        r#"categories = ["RECIPIENT_NAME", "PHONE_NUMBER", "SHIPPING_ADDRESS", "ORDER_CONTENTS", "PLATFORM_BUYER_ID"]"#;
    assert!(DEFAULT_POLICY_TOML.contains(fulfilment), "the default policy's ORDER_FULFILLMENT line changed");
    let careless = fulfilment.replace(']', r#", "EMAIL", "PAYMENT_DATA"]"#);
    Policy::from_toml(&DEFAULT_POLICY_TOML.replace(fulfilment, &careless))
        .unwrap_or_else(|e| panic!("the careless policy must still compile: {e}"))
});

/// The fixed "now" of every test (2026-01-01T00:00:00Z): the engine reads no clock.
fn now() -> Timestamp {
    Timestamp::from_micros(1_767_225_600_000_000)
}

fn at(seconds_from_now: i64) -> Timestamp {
    now().plus_seconds(seconds_from_now)
}

fn ttl_end() -> Timestamp {
    at(i64::from(POLICY.decision_ttl_seconds))
}

fn seller_id(raw: &str) -> SellerId {
    SellerId::parse(raw).unwrap_or_else(|why| panic!("test seller id {raw:?} {why}"))
}

fn country(raw: &str) -> Country {
    Country::parse(raw).unwrap_or_else(|why| panic!("test country {raw:?} {why}"))
}

fn set<T: Vocab>(values: &[T]) -> Set<T> {
    values.iter().copied().collect()
}

fn all<T: Vocab>() -> Set<T> {
    set(T::ALL)
}

const SELLER: &str = "acme-cn-1";
const SHIPPING: [DataCategory; 3] =
    [DataCategory::RecipientName, DataCategory::PhoneNumber, DataCategory::ShippingAddress];

/// Every clause the default policy can require: the baseline and IDENTIFIER_PROTECTION.
fn full_clauses() -> Set<Clause> {
    POLICY.baseline.union(set(&[Clause::IdentifierProtection]))
}

/// A contract in force for the past month and the coming year, with every clause the policy can
/// require, every purpose it allows and every category it does not prohibit.
fn full_contract(id: &str) -> Contract {
    Contract {
        attestation_id: Arc::from(id),
        clauses: full_clauses(),
        purposes: set(&[
            Purpose::OrderFulfillment,
            Purpose::CustomsClearance,
            Purpose::CustomerSupport,
            Purpose::ReturnsRefunds,
        ]),
        categories: all::<DataCategory>().difference(POLICY.prohibited),
        effective: at(-30 * DAY),
        expire: at(365 * DAY),
        revoked: false,
        retention_days: 0,
    }
}

fn without_clause(contract: Contract, clause: Clause) -> Contract {
    Contract { clauses: contract.clauses.difference(set(&[clause])), ..contract }
}

/// An active recipient in China with these contracts.
fn recipient(contracts: Vec<Contract>) -> SellerView {
    SellerView {
        seller_id: seller_id(SELLER),
        legal_name: "Acme Cross-Border Trading Co., Ltd.".to_owned(),
        privacy_contact: "privacy@acme.example".to_owned(),
        country: country("CN"),
        status: SellerStatus::Active,
        role: SellerRole::Recipient,
        contracts,
        last_supervision: None,
    }
}

/// An active entrustee in China with these contracts and this supervision record.
fn entrustee(contracts: Vec<Contract>, last_supervision: Option<Timestamp>) -> SellerView {
    SellerView { role: SellerRole::Entrustee, last_supervision, ..recipient(contracts) }
}

/// A request for `categories` under separate consent.
fn request(purpose: Purpose, categories: &[DataCategory]) -> VerifyRequest {
    VerifyRequest {
        seller_id: seller_id(SELLER),
        categories: categories.to_vec(),
        purpose,
        basis: Some(TransferBasis::SeparateConsent),
        basis_evidence_ref: "consent-42".to_owned(),
        min_revision: 0,
    }
}

fn shipping_request() -> VerifyRequest {
    request(Purpose::OrderFulfillment, &SHIPPING)
}

fn decide_in(orders: &[OrderView], stale: bool, seller: Option<&SellerView>, req: &VerifyRequest) -> Verdict {
    let ctx = Context { policy: &POLICY, orders, now: now(), stale };
    decide(&ctx, seller, req)
}

/// The attestation ids a verdict relies on, as the answer spells them.
fn ids(v: &Verdict) -> Vec<String> {
    v.attestation_ids.iter().map(ToString::to_string).collect()
}

fn verify(seller: &SellerView, req: &VerifyRequest) -> Verdict {
    decide_in(&[], false, Some(seller), req)
}

fn codes(reasons: &[Reason]) -> Vec<ReasonCode> {
    reasons.iter().map(|r| r.code).collect()
}

fn denied_categories(v: &Verdict) -> Vec<DataCategory> {
    v.denied.iter().map(|(c, _)| *c).collect()
}

fn reasons_for(v: &Verdict, category: DataCategory) -> Vec<Reason> {
    v.denied.iter().find(|(c, _)| *c == category).map(|(_, r)| r.clone()).unwrap_or_default()
}

fn clause_missing(clause: Clause) -> Reason {
    Reason { code: ReasonCode::ClauseMissing, clause: Some(clause) }
}

/// `v` denies every requested category with `code` alone, reports it at seller level, and carries
/// nothing that would let checkout send data.
fn assert_denies_all_with(v: &Verdict, req: &VerifyRequest, code: ReasonCode) {
    assert_eq!(v.decision, Decision::Deny, "{v:#?}");
    assert!(v.allowed.is_empty(), "{v:#?}");
    let expected: Vec<_> = req.categories.iter().map(|c| (*c, vec![Reason::of(code)])).collect();
    assert_eq!(v.denied, expected);
    assert!(v.reasons.contains(&Reason::of(code)), "{:?}", v.reasons);
    assert_eq!(v.retention_days, 0);
    assert!(v.disclosure.is_none());
}

fn order(scope: SuspensionScope, categories: &[DataCategory], effective: Timestamp) -> OrderView {
    OrderView { scope, categories: set(categories), effective, lifted: false }
}

// ---------------------------------------------------------------------------------------------
// ALLOW and the fields derived from it (rules 8 and 9)

#[test]
fn a_full_contract_allows_every_requested_category() {
    let v = verify(&recipient(vec![full_contract("att-1")]), &shipping_request());
    assert_eq!(v.decision, Decision::Allow);
    assert_eq!(v.allowed, SHIPPING.to_vec());
    assert!(v.denied.is_empty());
    assert!(v.reasons.is_empty(), "no advisory for a recipient with a long contract: {:?}", v.reasons);
    assert_eq!(v.valid_until, ttl_end());
    assert_eq!(v.retention_days, 90);
    assert_eq!(ids(&v), ["att-1"]);
}

#[test]
fn the_disclosure_names_the_recipient_and_what_it_receives() {
    let v = verify(&recipient(vec![full_contract("att-1")]), &shipping_request());
    let d = v.disclosure.expect("a disclosure when something is allowed");
    assert_eq!(d.recipient_legal_name, "Acme Cross-Border Trading Co., Ltd.");
    assert_eq!(d.recipient_contact, "privacy@acme.example");
    assert_eq!(d.country, country("CN"));
    assert_eq!(d.purpose, Purpose::OrderFulfillment);
    assert_eq!(v.allowed, SHIPPING.to_vec());
    assert_eq!(d.retention_days, 90);
}

#[test]
fn the_disclosure_lists_only_the_allowed_categories() {
    let req = request(Purpose::OrderFulfillment, &[DataCategory::Email, DataCategory::RecipientName]);
    let v = verify(&recipient(vec![full_contract("att-1")]), &req);
    assert_eq!(v.decision, Decision::AllowPartial);
    assert_eq!(v.allowed, vec![DataCategory::RecipientName]);
    assert!(v.disclosure.is_some());
}

#[test]
fn allowed_and_denied_categories_keep_the_request_order() {
    let categories = [
        DataCategory::ShippingAddress,
        DataCategory::Email,
        DataCategory::RecipientName,
        DataCategory::CustomsCode,
        DataCategory::PhoneNumber,
        DataCategory::PaymentData,
    ];
    let v = verify(&recipient(vec![full_contract("att-1")]), &request(Purpose::OrderFulfillment, &categories));
    assert_eq!(v.allowed, vec![DataCategory::ShippingAddress, DataCategory::RecipientName, DataCategory::PhoneNumber]);
    assert_eq!(denied_categories(&v), vec![DataCategory::Email, DataCategory::CustomsCode, DataCategory::PaymentData]);
}

#[test]
fn two_contracts_in_force_are_united() {
    // One contract has the baseline clauses and the shipping categories; the other brings
    // identifier protection, the customs purpose and the customs code. Neither suffices alone.
    let base = Contract {
        clauses: POLICY.baseline,
        purposes: set(&[Purpose::OrderFulfillment]),
        categories: set(&[DataCategory::RecipientName, DataCategory::ShippingAddress]),
        ..full_contract("att-base")
    };
    let customs = Contract {
        clauses: set(&[Clause::IdentifierProtection]),
        purposes: set(&[Purpose::CustomsClearance]),
        categories: set(&[DataCategory::CustomsCode]),
        ..full_contract("att-customs")
    };
    let req = request(Purpose::CustomsClearance, &[DataCategory::RecipientName, DataCategory::CustomsCode]);
    let v = verify(&recipient(vec![base.clone(), customs.clone()]), &req);
    assert_eq!(v.decision, Decision::Allow, "{v:#?}");
    assert_eq!(ids(&v), ["att-base", "att-customs"]);

    let alone = verify(&recipient(vec![base]), &req);
    assert_eq!(alone.decision, Decision::Deny);
    assert_eq!(codes(&alone.reasons), vec![ReasonCode::PurposeNotInContract]);
    let alone = verify(&recipient(vec![customs]), &req);
    assert_eq!(alone.decision, Decision::Deny);
}

#[test]
fn only_contracts_in_force_are_relied_on() {
    let revoked = Contract { revoked: true, ..full_contract("att-revoked") };
    let expired = Contract { expire: at(-DAY), ..full_contract("att-expired") };
    let seller = recipient(vec![revoked, full_contract("att-live"), expired]);
    let v = verify(&seller, &shipping_request());
    assert_eq!(v.decision, Decision::Allow);
    assert_eq!(ids(&v), ["att-live"]);
}

#[test]
fn valid_until_is_now_plus_the_policy_ttl_when_the_contracts_outlive_it() {
    let v = verify(&recipient(vec![full_contract("att-1")]), &shipping_request());
    assert_eq!(v.valid_until, now().plus_seconds(300));
}

#[test]
fn valid_until_is_the_earliest_expiry_of_the_contracts_relied_on() {
    let soon = Contract { expire: at(100), ..full_contract("att-soon") };
    let later = Contract { expire: at(200), ..full_contract("att-later") };
    let v = verify(&recipient(vec![later, soon]), &shipping_request());
    assert_eq!(v.decision, Decision::Allow);
    assert_eq!(v.valid_until, at(100));
}

#[test]
fn a_contract_taking_effect_before_the_ttl_ends_caps_valid_until() {
    // From then on the answer may change (the new contract may add categories), so it must not be
    // cached past that moment.
    let next = Contract { effective: at(120), ..full_contract("att-next") };
    let v = verify(&recipient(vec![full_contract("att-1"), next]), &shipping_request());
    assert_eq!(v.decision, Decision::Allow);
    assert_eq!(v.valid_until, at(120));
    assert_eq!(ids(&v), ["att-1"]);
}

#[test]
fn retention_is_the_shorter_of_the_policy_and_the_contract() {
    let short = Contract { retention_days: 45, ..full_contract("att-1") };
    assert_eq!(verify(&recipient(vec![short.clone()]), &shipping_request()).retention_days, 45);

    let long = Contract { retention_days: 120, ..full_contract("att-1") };
    assert_eq!(verify(&recipient(vec![long]), &shipping_request()).retention_days, 90);

    // Customs clearance keeps data for 30 days at most, whatever the contract says.
    let customs = request(Purpose::CustomsClearance, &[DataCategory::CustomsCode]);
    let v = verify(&recipient(vec![short]), &customs);
    assert_eq!(v.retention_days, 30);
    assert_eq!(v.disclosure.map(|d| d.retention_days), Some(30));
}

#[test]
fn a_contract_without_a_retention_of_its_own_takes_the_policys() {
    let none = Contract { retention_days: 0, ..full_contract("att-none") };
    assert_eq!(verify(&recipient(vec![none.clone()]), &shipping_request()).retention_days, 90);

    let sixty = Contract { retention_days: 60, ..full_contract("att-sixty") };
    assert_eq!(verify(&recipient(vec![none, sixty]), &shipping_request()).retention_days, 60);
}

#[test]
fn nothing_allowed_means_no_retention_no_disclosure_and_no_advisory() {
    // The contract expires tomorrow and the entrustee was never supervised, but nothing goes to it,
    // so there is nothing to advise about.
    let expiring = Contract { expire: at(DAY), ..full_contract("att-1") };
    let seller = entrustee(vec![expiring], None);
    let v = verify(&seller, &request(Purpose::OrderFulfillment, &[DataCategory::Email]));
    assert_eq!(v.decision, Decision::Deny);
    assert_eq!(v.retention_days, 0);
    assert!(v.disclosure.is_none());
    assert!(v.reasons.is_empty(), "{:?}", v.reasons);
}

// ---------------------------------------------------------------------------------------------
// Rules 2 and 3: the registry and the seller

#[test]
fn a_stale_registry_denies_everything_with_registry_stale() {
    let req = shipping_request();
    let v = decide_in(&[], true, Some(&recipient(vec![full_contract("att-1")])), &req);
    assert_denies_all_with(&v, &req, ReasonCode::RegistryStale);
    assert_eq!(v.reasons, vec![Reason::of(ReasonCode::RegistryStale)]);
    assert!(v.attestation_ids.is_empty());
}

#[test]
fn a_stale_registry_is_reported_before_an_unknown_seller() {
    let req = shipping_request();
    assert_denies_all_with(&decide_in(&[], true, None, &req), &req, ReasonCode::RegistryStale);
}

#[test]
fn an_unknown_seller_denies_with_seller_unknown() {
    let req = shipping_request();
    let v = decide_in(&[], false, None, &req);
    assert_denies_all_with(&v, &req, ReasonCode::SellerUnknown);
    assert_eq!(v.valid_until, ttl_end());
}

#[test]
fn a_suspended_seller_denies_with_seller_suspended() {
    let seller = SellerView { status: SellerStatus::Suspended, ..recipient(vec![full_contract("att-1")]) };
    let req = shipping_request();
    assert_denies_all_with(&verify(&seller, &req), &req, ReasonCode::SellerSuspended);
}

#[test]
fn an_offboarded_seller_denies_with_seller_offboarded() {
    let seller = SellerView { status: SellerStatus::Offboarded, ..recipient(vec![full_contract("att-1")]) };
    let req = shipping_request();
    assert_denies_all_with(&verify(&seller, &req), &req, ReasonCode::SellerOffboarded);
}

// ---------------------------------------------------------------------------------------------
// Rule 4: suspension orders (PIPA 28-9)

#[test]
fn a_suspension_order_on_the_seller_denies_every_category_with_suspension_order_active() {
    let orders = [order(SuspensionScope::Seller(seller_id(SELLER)), &[], at(-DAY))];
    let req = shipping_request();
    let v = decide_in(&orders, false, Some(&recipient(vec![full_contract("att-1")])), &req);
    assert_denies_all_with(&v, &req, ReasonCode::SuspensionOrderActive);
}

#[test]
fn a_suspension_order_on_the_sellers_country_denies_it() {
    let orders = [order(SuspensionScope::Country(country("CN")), &[], at(0))];
    let req = shipping_request();
    let v = decide_in(&orders, false, Some(&recipient(vec![full_contract("att-1")])), &req);
    assert_denies_all_with(&v, &req, ReasonCode::SuspensionOrderActive);
}

#[test]
fn a_suspension_order_on_another_seller_or_country_does_not_apply() {
    let orders = [
        order(SuspensionScope::Seller(seller_id("someone-else")), &[], at(-DAY)),
        order(SuspensionScope::Country(country("US")), &[], at(-DAY)),
    ];
    let v = decide_in(&orders, false, Some(&recipient(vec![full_contract("att-1")])), &shipping_request());
    assert_eq!(v.decision, Decision::Allow);
    assert!(v.reasons.is_empty());
}

#[test]
fn a_category_limited_suspension_order_denies_only_those_categories() {
    let orders = [order(SuspensionScope::Seller(seller_id(SELLER)), &[DataCategory::PhoneNumber], at(-DAY))];
    let v = decide_in(&orders, false, Some(&recipient(vec![full_contract("att-1")])), &shipping_request());
    assert_eq!(v.decision, Decision::AllowPartial);
    assert_eq!(v.allowed, vec![DataCategory::RecipientName, DataCategory::ShippingAddress]);
    assert_eq!(v.denied, vec![(DataCategory::PhoneNumber, vec![Reason::of(ReasonCode::SuspensionOrderActive)])]);
    assert_eq!(v.reasons, vec![Reason::of(ReasonCode::SuspensionOrderActive)]);
}

#[test]
fn a_suspension_order_on_categories_not_requested_changes_nothing() {
    let orders = [order(SuspensionScope::Seller(seller_id(SELLER)), &[DataCategory::CustomsCode], at(-DAY))];
    let v = decide_in(&orders, false, Some(&recipient(vec![full_contract("att-1")])), &shipping_request());
    assert_eq!(v.decision, Decision::Allow);
    assert!(v.reasons.is_empty(), "{:?}", v.reasons);
}

#[test]
fn a_lifted_suspension_order_no_longer_denies() {
    let lifted = OrderView { lifted: true, ..order(SuspensionScope::Seller(seller_id(SELLER)), &[], at(-DAY)) };
    let v = decide_in(&[lifted], false, Some(&recipient(vec![full_contract("att-1")])), &shipping_request());
    assert_eq!(v.decision, Decision::Allow);
}

#[test]
fn a_suspension_order_taking_effect_later_allows_until_then() {
    let orders = [order(SuspensionScope::Country(country("CN")), &[], at(60))];
    let v = decide_in(&orders, false, Some(&recipient(vec![full_contract("att-1")])), &shipping_request());
    assert_eq!(v.decision, Decision::Allow);
    assert_eq!(v.valid_until, at(60), "checkout must not cache the ALLOW past the order's start");
}

#[test]
fn a_suspension_order_overrides_every_basis_and_keeps_its_reason() {
    // Without a basis the other categories are denied with BASIS_MISSING, but the suspended one
    // still says why it would be denied whatever the basis.
    let orders = [order(SuspensionScope::Seller(seller_id(SELLER)), &[DataCategory::PhoneNumber], at(-DAY))];
    let req = VerifyRequest { basis: None, ..shipping_request() };
    let v = decide_in(&orders, false, Some(&recipient(vec![full_contract("att-1")])), &req);
    assert_eq!(v.decision, Decision::Deny);
    assert_eq!(reasons_for(&v, DataCategory::PhoneNumber), vec![Reason::of(ReasonCode::SuspensionOrderActive)]);
    assert_eq!(reasons_for(&v, DataCategory::RecipientName), vec![Reason::of(ReasonCode::BasisMissing)]);
    assert_eq!(codes(&v.reasons), vec![ReasonCode::SuspensionOrderActive, ReasonCode::BasisMissing]);
}

// ---------------------------------------------------------------------------------------------
// Rule 5: purpose and basis

#[test]
fn marketing_is_denied_by_policy_with_purpose_denied_by_policy() {
    let mut contract = full_contract("att-1");
    contract.purposes.insert(Purpose::Marketing);
    let req = request(Purpose::Marketing, &[DataCategory::RecipientName]);
    assert_denies_all_with(&verify(&recipient(vec![contract]), &req), &req, ReasonCode::PurposeDeniedByPolicy);
}

#[test]
fn a_request_without_a_basis_denies_with_basis_missing() {
    let req = VerifyRequest { basis: None, ..shipping_request() };
    assert_denies_all_with(&verify(&recipient(vec![full_contract("att-1")]), &req), &req, ReasonCode::BasisMissing);
}

#[test]
fn contract_necessity_is_not_accepted_for_a_recipient() {
    let req = VerifyRequest { basis: Some(TransferBasis::ContractNecessityDisclosed), ..shipping_request() };
    let v = verify(&recipient(vec![full_contract("att-1")]), &req);
    assert_denies_all_with(&v, &req, ReasonCode::BasisNotAccepted);
}

#[test]
fn contract_necessity_is_accepted_for_an_entrustee() {
    let req = VerifyRequest { basis: Some(TransferBasis::ContractNecessityDisclosed), ..shipping_request() };
    let v = verify(&entrustee(vec![full_contract("att-1")], Some(at(-30 * DAY))), &req);
    assert_eq!(v.decision, Decision::Allow, "{v:#?}");
    assert!(v.reasons.is_empty(), "{:?}", v.reasons);
}

#[test]
fn every_other_basis_is_accepted_for_a_recipient() {
    for basis in [
        TransferBasis::SeparateConsent,
        TransferBasis::LawOrTreaty,
        TransferBasis::CertifiedRecipient,
        TransferBasis::AdequateDestination,
    ] {
        let req = VerifyRequest { basis: Some(basis), ..shipping_request() };
        assert_eq!(verify(&recipient(vec![full_contract("att-1")]), &req).decision, Decision::Allow, "{basis}");
    }
}

// ---------------------------------------------------------------------------------------------
// Rule 6: contracts in force

#[test]
fn a_seller_without_contracts_denies_with_contract_missing() {
    let req = shipping_request();
    assert_denies_all_with(&verify(&recipient(vec![]), &req), &req, ReasonCode::ContractMissing);
}

#[test]
fn a_contract_not_yet_effective_denies_with_contract_not_yet_effective() {
    let future = Contract { effective: at(DAY), ..full_contract("att-1") };
    let req = shipping_request();
    let v = verify(&recipient(vec![future]), &req);
    assert_denies_all_with(&v, &req, ReasonCode::ContractNotYetEffective);
    assert_eq!(v.valid_until, ttl_end());
}

#[test]
fn a_contract_taking_effect_within_the_ttl_caps_the_denials_validity() {
    let future = Contract { effective: at(30), ..full_contract("att-1") };
    let v = verify(&recipient(vec![future]), &shipping_request());
    assert_eq!(codes(&v.reasons), vec![ReasonCode::ContractNotYetEffective]);
    assert_eq!(v.valid_until, at(30));
}

#[test]
fn a_contract_takes_effect_at_its_effective_time_exactly() {
    let starting = Contract { effective: now(), ..full_contract("att-1") };
    assert_eq!(verify(&recipient(vec![starting]), &shipping_request()).decision, Decision::Allow);
}

#[test]
fn an_expired_contract_denies_with_contract_expired() {
    let expired = Contract { expire: at(-DAY), ..full_contract("att-1") };
    let req = shipping_request();
    assert_denies_all_with(&verify(&recipient(vec![expired]), &req), &req, ReasonCode::ContractExpired);
}

#[test]
fn a_contract_is_expired_at_its_expire_time_exactly() {
    let ending = Contract { expire: now(), ..full_contract("att-1") };
    let req = shipping_request();
    assert_denies_all_with(&verify(&recipient(vec![ending]), &req), &req, ReasonCode::ContractExpired);
}

#[test]
fn a_revoked_contract_denies_with_contract_revoked() {
    let revoked = Contract { revoked: true, ..full_contract("att-1") };
    let req = shipping_request();
    let v = verify(&recipient(vec![revoked]), &req);
    assert_denies_all_with(&v, &req, ReasonCode::ContractRevoked);
    assert!(v.attestation_ids.is_empty());
}

#[test]
fn a_revocation_is_more_telling_than_an_expiry_or_a_future_contract() {
    let revoked = Contract { revoked: true, ..full_contract("att-1") };
    let expired = Contract { expire: at(-DAY), ..full_contract("att-2") };
    let future = Contract { effective: at(DAY), ..full_contract("att-3") };
    let v = verify(&recipient(vec![expired.clone(), future.clone(), revoked]), &shipping_request());
    assert_eq!(codes(&v.reasons), vec![ReasonCode::ContractRevoked]);
    let v = verify(&recipient(vec![expired, future]), &shipping_request());
    assert_eq!(codes(&v.reasons), vec![ReasonCode::ContractNotYetEffective]);
    // A contract revoked and since expired was still revoked: legal withdrew it.
    let revoked_then_expired = Contract { revoked: true, expire: at(-DAY), ..full_contract("att-4") };
    let v = verify(&recipient(vec![revoked_then_expired]), &shipping_request());
    assert_eq!(codes(&v.reasons), vec![ReasonCode::ContractRevoked]);
}

#[test]
fn a_purpose_the_contracts_do_not_cover_denies_with_purpose_not_in_contract() {
    let fulfilment_only = Contract { purposes: set(&[Purpose::OrderFulfillment]), ..full_contract("att-1") };
    let req = request(Purpose::CustomerSupport, &[DataCategory::RecipientName, DataCategory::SupportMessages]);
    let v = verify(&recipient(vec![fulfilment_only]), &req);
    assert_denies_all_with(&v, &req, ReasonCode::PurposeNotInContract);
}

// ---------------------------------------------------------------------------------------------
// Rule 7: per category

#[test]
fn a_prohibited_category_is_denied_with_category_prohibited_even_when_contracted() {
    let everything = Contract { categories: all(), ..full_contract("att-1") };
    let req = request(Purpose::OrderFulfillment, &[DataCategory::RecipientName, DataCategory::Email]);
    let v = verify(&recipient(vec![everything]), &req);
    assert_eq!(v.decision, Decision::AllowPartial);
    assert_eq!(v.allowed, vec![DataCategory::RecipientName]);
    assert_eq!(v.denied, vec![(DataCategory::Email, vec![Reason::of(ReasonCode::CategoryProhibited)])]);
}

#[test]
fn a_prohibited_category_is_denied_even_when_a_purpose_permits_it() {
    assert!(CARELESS_POLICY.purpose(Purpose::OrderFulfillment).permitted.contains(DataCategory::Email));
    let everything = Contract { categories: all(), ..full_contract("att-1") };
    let req = request(Purpose::OrderFulfillment, &[DataCategory::Email, DataCategory::PaymentData]);
    let ctx = Context { policy: &CARELESS_POLICY, orders: &[], now: now(), stale: false };
    let v = decide(&ctx, Some(&recipient(vec![everything])), &req);
    assert_eq!(v.decision, Decision::Deny);
    assert!(v.denied.iter().all(|(_, r)| *r == vec![Reason::of(ReasonCode::CategoryProhibited)]), "{v:#?}");
}

#[test]
fn every_prohibited_category_is_denied_for_every_purpose() {
    let everything = Contract { categories: all(), purposes: all(), clauses: all(), ..full_contract("att-1") };
    let seller = recipient(vec![everything]);
    let prohibited: Vec<_> = POLICY.prohibited.iter().collect();
    assert_eq!(prohibited.len(), 5);
    for purpose in Purpose::ALL.iter().copied().filter(|p| *p != Purpose::Marketing) {
        let v = verify(&seller, &request(purpose, &prohibited));
        assert_eq!(v.decision, Decision::Deny);
        for (_, reasons) in &v.denied {
            assert_eq!(reasons, &vec![Reason::of(ReasonCode::CategoryProhibited)]);
        }
    }
}

#[test]
fn a_category_outside_the_purpose_is_denied_with_category_not_permitted_for_purpose() {
    let req = request(Purpose::OrderFulfillment, &[DataCategory::RecipientName, DataCategory::CustomsCode]);
    let v = verify(&recipient(vec![full_contract("att-1")]), &req);
    assert_eq!(v.decision, Decision::AllowPartial);
    assert_eq!(
        v.denied,
        vec![(DataCategory::CustomsCode, vec![Reason::of(ReasonCode::CategoryNotPermittedForPurpose)])]
    );
}

#[test]
fn a_category_the_contracts_do_not_cover_is_denied_with_category_not_in_contract() {
    let no_phone = Contract {
        categories: full_contract("x").categories.difference(set(&[DataCategory::PhoneNumber])),
        ..full_contract("att-1")
    };
    let v = verify(&recipient(vec![no_phone]), &shipping_request());
    assert_eq!(v.decision, Decision::AllowPartial);
    assert_eq!(v.denied, vec![(DataCategory::PhoneNumber, vec![Reason::of(ReasonCode::CategoryNotInContract)])]);
}

#[test]
fn a_missing_baseline_clause_denies_every_category_naming_the_clause() {
    // The 2024 case: contracts without the grievance and dispute resolution clause.
    let contract = without_clause(full_contract("att-1"), Clause::GrievanceAndDisputeResolution);
    let v = verify(&recipient(vec![contract]), &shipping_request());
    assert_eq!(v.decision, Decision::Deny);
    let expected: Vec<_> =
        SHIPPING.iter().map(|c| (*c, vec![clause_missing(Clause::GrievanceAndDisputeResolution)])).collect();
    assert_eq!(v.denied, expected);
}

#[test]
fn missing_identifier_protection_denies_only_the_customs_code() {
    let contract = without_clause(full_contract("att-1"), Clause::IdentifierProtection);
    let req = request(
        Purpose::CustomsClearance,
        &[DataCategory::RecipientName, DataCategory::CustomsCode, DataCategory::ShippingAddress],
    );
    let v = verify(&recipient(vec![contract]), &req);
    assert_eq!(v.decision, Decision::AllowPartial);
    assert_eq!(v.allowed, vec![DataCategory::RecipientName, DataCategory::ShippingAddress]);
    assert_eq!(v.denied, vec![(DataCategory::CustomsCode, vec![clause_missing(Clause::IdentifierProtection)])]);
}

#[test]
fn everything_a_category_lacks_is_reported_at_once() {
    // Legal should be able to fix the contract in one amendment.
    let contract = Contract {
        categories: set(&[DataCategory::RecipientName]),
        ..without_clause(
            without_clause(full_contract("att-1"), Clause::SecuritySafeguards),
            Clause::IdentifierProtection,
        )
    };
    let req = request(Purpose::CustomsClearance, &[DataCategory::DateOfBirth]);
    let v = verify(&recipient(vec![contract]), &req);
    assert_eq!(
        reasons_for(&v, DataCategory::DateOfBirth),
        vec![
            Reason::of(ReasonCode::CategoryNotInContract),
            clause_missing(Clause::SecuritySafeguards),
            clause_missing(Clause::IdentifierProtection),
        ]
    );
}

#[test]
fn the_clause_missing_reason_names_its_clause_and_explains_itself() {
    let contract = without_clause(full_contract("att-1"), Clause::BreachNotification);
    let v = verify(&recipient(vec![contract]), &shipping_request());
    let reasons = reasons_for(&v, DataCategory::RecipientName);
    assert_eq!(reasons, vec![clause_missing(Clause::BreachNotification)]);
    assert!(reasons.iter().all(|r| !r.message().is_empty()));
}

// ---------------------------------------------------------------------------------------------
// Advisories: CONTRACT_EXPIRING_SOON and AUDIT_OVERDUE never block

#[test]
fn a_contract_expiring_within_thirty_days_is_advised_as_expiring_soon() {
    let expiring = Contract { expire: at(29 * DAY), ..full_contract("att-1") };
    let v = verify(&recipient(vec![expiring]), &shipping_request());
    assert_eq!(v.decision, Decision::Allow);
    assert_eq!(v.reasons, vec![Reason::of(ReasonCode::ContractExpiringSoon)]);

    let later = Contract { expire: at(31 * DAY), ..full_contract("att-1") };
    assert!(verify(&recipient(vec![later]), &shipping_request()).reasons.is_empty());
}

#[test]
fn an_entrustee_never_supervised_is_advised_as_audit_overdue() {
    let v = verify(&entrustee(vec![full_contract("att-1")], None), &shipping_request());
    assert_eq!(v.decision, Decision::Allow);
    assert_eq!(v.reasons, vec![Reason::of(ReasonCode::AuditOverdue)]);
}

#[test]
fn an_entrustee_last_supervised_over_a_year_ago_is_advised_as_audit_overdue() {
    let v = verify(&entrustee(vec![full_contract("att-1")], Some(at(-400 * DAY))), &shipping_request());
    assert_eq!(v.decision, Decision::Allow);
    assert_eq!(v.reasons, vec![Reason::of(ReasonCode::AuditOverdue)]);
}

#[test]
fn an_entrustee_supervised_within_the_year_is_not_overdue() {
    let v = verify(&entrustee(vec![full_contract("att-1")], Some(at(-300 * DAY))), &shipping_request());
    assert!(v.reasons.is_empty(), "{:?}", v.reasons);
}

#[test]
fn a_recipient_is_never_advised_as_audit_overdue() {
    // A recipient uses the data for its own business: the platform does not supervise it.
    let never = recipient(vec![full_contract("att-1")]);
    assert!(verify(&never, &shipping_request()).reasons.is_empty());
    let long_ago = SellerView { last_supervision: Some(at(-3650 * DAY)), ..never };
    assert!(verify(&long_ago, &shipping_request()).reasons.is_empty());
}

#[test]
fn advisories_accompany_a_partial_allow() {
    let expiring = Contract { expire: at(DAY), ..full_contract("att-1") };
    let req = request(Purpose::OrderFulfillment, &[DataCategory::RecipientName, DataCategory::Email]);
    let v = verify(&entrustee(vec![expiring], None), &req);
    assert_eq!(v.decision, Decision::AllowPartial);
    assert_eq!(codes(&v.reasons), vec![ReasonCode::ContractExpiringSoon, ReasonCode::AuditOverdue]);
    assert_eq!(v.valid_until, ttl_end());
}

// =============================================================================================
// Property tests

/// The values of `T` whose bit is set in `bits`.
fn from_bits<T: Vocab>(bits: u32) -> Set<T> {
    T::ALL.iter().copied().filter(|v| bits & (1 << v.number()) != 0).collect()
}

/// A set of `T`, biased toward complete sets and sets lacking one value: uniformly random sets
/// would almost never hold the twelve baseline clauses, and so would never exercise an ALLOW.
fn any_set<T: Vocab + fmt::Debug + fmt::Display>() -> impl Strategy<Value = Set<T>> {
    prop_oneof![
        2 => Just(all::<T>()),
        2 => select(T::ALL).prop_map(|v| all::<T>().difference(set(&[v]))),
        1 => any::<u32>().prop_map(from_bits::<T>),
    ]
}

/// Seconds from now, with the boundaries (0, ±1) well represented.
fn any_offset() -> impl Strategy<Value = i64> {
    prop_oneof![Just(0), Just(1), Just(-1), -600i64..600, -400 * DAY..400 * DAY]
}

fn any_contract() -> impl Strategy<Value = Contract> {
    (
        0u32..10_000,
        any_set::<Clause>(),
        any_set::<Purpose>(),
        any_set::<DataCategory>(),
        prop_oneof![3 => -400 * DAY..0, 1 => any_offset()],
        prop_oneof![3 => 1..400 * DAY, 1 => any_offset()],
        proptest::bool::weighted(0.2),
        prop_oneof![Just(0u32), 1u32..400],
    )
        .prop_map(|(n, clauses, purposes, categories, effective, expire, revoked, retention_days)| Contract {
            attestation_id: Arc::from(format!("att-{n}")),
            clauses,
            purposes,
            categories,
            effective: at(effective),
            expire: at(expire),
            revoked,
            retention_days,
        })
}

static COUNTRIES: [&str; 3] = ["CN", "US", "JP"];

fn any_seller() -> impl Strategy<Value = SellerView> {
    (
        prop_oneof![3 => Just(SellerStatus::Active), 1 => select(SellerStatus::ALL)],
        select(SellerRole::ALL),
        select(&COUNTRIES[..]),
        proptest::collection::vec(any_contract(), 0..=3),
        proptest::option::of(any_offset()),
    )
        .prop_map(|(status, role, code, contracts, supervised)| SellerView {
            status,
            role,
            country: country(code),
            last_supervision: supervised.map(at),
            ..recipient(contracts)
        })
}

fn any_order() -> impl Strategy<Value = OrderView> {
    let scope = prop_oneof![
        select(vec![SELLER, "someone-else"]).prop_map(|s| SuspensionScope::Seller(seller_id(s))),
        select(&COUNTRIES[..]).prop_map(|c| SuspensionScope::Country(country(c))),
    ];
    let categories = prop_oneof![Just(Set::empty()), any::<u32>().prop_map(from_bits::<DataCategory>)];
    (scope, categories, any_offset(), any::<bool>()).prop_map(|(scope, categories, effective, lifted)| OrderView {
        scope,
        categories,
        effective: at(effective),
        lifted,
    })
}

/// Distinct categories in random order: any of them, or (so that a full ALLOW is common enough) only
/// those the policy permits for the purpose.
fn any_categories(purpose: Purpose) -> impl Strategy<Value = Vec<DataCategory>> {
    let permitted: Vec<_> = POLICY.purpose(purpose).permitted.iter().collect();
    let pool = if permitted.is_empty() { DataCategory::ALL.to_vec() } else { permitted };
    prop_oneof![
        subsequence(DataCategory::ALL.to_vec(), 1..=DataCategory::ALL.len()),
        subsequence(pool.clone(), 1..=pool.len()),
    ]
    .prop_shuffle()
}

fn any_request() -> impl Strategy<Value = VerifyRequest> {
    let basis = prop_oneof![1 => Just(None), 4 => select(TransferBasis::ALL).prop_map(Some)];
    (select(Purpose::ALL).prop_flat_map(|p| (Just(p), any_categories(p))), basis)
        .prop_map(|((purpose, categories), basis)| VerifyRequest { categories, basis, ..request(purpose, &[]) })
}

/// Everything `decide` depends on.
#[derive(Debug, Clone)]
struct Case {
    seller: Option<SellerView>,
    orders: Vec<OrderView>,
    req: VerifyRequest,
    stale: bool,
    /// Decide under [`CARELESS_POLICY`] rather than the default.
    careless: bool,
}

impl Case {
    fn policy(&self) -> &'static Policy {
        if self.careless { &CARELESS_POLICY } else { &POLICY }
    }

    fn verdict(&self) -> Verdict {
        let ctx = Context { policy: self.policy(), orders: &self.orders, now: now(), stale: self.stale };
        decide(&ctx, self.seller.as_ref(), &self.req)
    }
}

fn any_case() -> impl Strategy<Value = Case> {
    (
        prop_oneof![1 => Just(None), 8 => any_seller().prop_map(Some)],
        prop_oneof![2 => Just(Vec::new()), 1 => proptest::collection::vec(any_order(), 1..=3)],
        any_request(),
        proptest::bool::weighted(0.1),
        proptest::bool::weighted(0.25),
    )
        .prop_map(|(seller, orders, req, stale, careless)| Case { seller, orders, req, stale, careless })
}

/// What an allowed category must satisfy, computed independently of the engine's control flow.
fn may_be_allowed(case: &Case, category: DataCategory) -> bool {
    let Some(seller) = &case.seller else { return false };
    let policy = case.policy();
    let rule = policy.purpose(case.req.purpose);
    let in_force: Vec<&Contract> = seller.contracts.iter().filter(|c| c.in_force(now())).collect();
    let clauses = in_force.iter().fold(Set::empty(), |s, c| s.union(c.clauses));
    let suspended = case.orders.iter().any(|o| {
        let applies = match &o.scope {
            SuspensionScope::Seller(id) => *id == seller.seller_id,
            SuspensionScope::Country(c) => *c == seller.country,
        };
        applies && !o.lifted && o.effective <= now() && (o.categories.is_empty() || o.categories.contains(category))
    });
    let needed = policy.baseline.union(rule.extra_clauses).union(policy.category_clauses(category));
    !case.stale
        && seller.status == SellerStatus::Active
        && !suspended
        && !rule.denied
        && case.req.basis.is_some_and(|b| rule.bases[role_index(seller.role)].contains(b))
        && in_force.iter().any(|c| c.purposes.contains(case.req.purpose))
        && in_force.iter().any(|c| c.categories.contains(category))
        && !policy.prohibited.contains(category)
        && rule.permitted.contains(category)
        && needed.difference(clauses).is_empty()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    /// (a) Every requested category appears exactly once, and both lists keep the request order.
    #[test]
    fn every_requested_category_is_answered_exactly_once_in_request_order(case in any_case()) {
        let v = case.verdict();
        let denied = denied_categories(&v);
        let mut answered: Vec<_> = v.allowed.iter().chain(&denied).copied().collect();
        answered.sort();
        let mut requested = case.req.categories.clone();
        requested.sort();
        prop_assert_eq!(answered, requested);
        let order_of = |list: &[DataCategory]| -> Vec<DataCategory> {
            case.req.categories.iter().copied().filter(|c| list.contains(c)).collect()
        };
        prop_assert_eq!(&v.allowed, &order_of(&v.allowed));
        prop_assert_eq!(&denied, &order_of(&denied));
    }

    /// (b) No prohibited category is ever allowed, even under a policy whose purpose permits it.
    #[test]
    fn a_prohibited_category_is_never_allowed(case in any_case()) {
        let v = case.verdict();
        prop_assert!(v.allowed.iter().all(|c| !case.policy().prohibited.contains(*c)), "{:?}", v.allowed);
    }

    /// (c) A seller with no contract in force is allowed nothing.
    #[test]
    fn a_seller_without_a_contract_in_force_is_allowed_nothing(case in any_case()) {
        let in_force = case.seller.as_ref().is_some_and(|s| s.contracts.iter().any(|c| c.in_force(now())));
        let v = case.verdict();
        prop_assert!(in_force || v.allowed.is_empty(), "{:#?}", v);
    }

    /// (d) Adding a clause to a contract never turns an allowed category denied.
    #[test]
    fn adding_a_clause_never_denies_what_was_allowed(
        case in any_case(),
        which in any::<Index>(),
        clause in select(Clause::ALL),
    ) {
        let before = case.verdict();
        let mut more = case.clone();
        if let Some(seller) = more.seller.as_mut().filter(|s| !s.contracts.is_empty()) {
            let i = which.index(seller.contracts.len());
            seller.contracts[i].clauses.insert(clause);
        }
        let after = more.verdict();
        for category in &before.allowed {
            prop_assert!(after.allowed.contains(category), "{:?} lost after adding {:?}", category, clause);
        }
    }

    /// (e) The decision follows from the two lists.
    #[test]
    fn the_decision_follows_from_what_is_allowed_and_denied(case in any_case()) {
        let v = case.verdict();
        let expected = match (v.allowed.is_empty(), v.denied.is_empty()) {
            (false, true) => Decision::Allow,
            (true, false) => Decision::Deny,
            (false, false) => Decision::AllowPartial,
            (true, true) => unreachable!("a request has at least one category"),
        };
        prop_assert_eq!(v.decision, expected);
        prop_assert_eq!(v.disclosure.is_some(), !v.allowed.is_empty());
        prop_assert_eq!(v.retention_days > 0, !v.allowed.is_empty());
    }

    /// (f) Every denied category says why.
    #[test]
    fn every_denied_category_has_a_reason(case in any_case()) {
        let v = case.verdict();
        for (category, reasons) in &v.denied {
            prop_assert!(!reasons.is_empty(), "{:?} denied without a reason", category);
            for r in reasons {
                prop_assert_eq!(r.clause.is_some(), r.code == ReasonCode::ClauseMissing);
                prop_assert!(
                    !matches!(r.code, ReasonCode::ContractExpiringSoon | ReasonCode::AuditOverdue),
                    "an advisory never denies"
                );
            }
        }
    }

    /// (g) A stale registry or an unknown seller allows nothing.
    #[test]
    fn a_stale_registry_or_an_unknown_seller_allows_nothing(case in any_case()) {
        let v = case.verdict();
        if case.stale {
            prop_assert!(v.allowed.is_empty());
            prop_assert_eq!(codes(&v.reasons), vec![ReasonCode::RegistryStale]);
        } else if case.seller.is_none() {
            prop_assert!(v.allowed.is_empty());
            prop_assert_eq!(codes(&v.reasons), vec![ReasonCode::SellerUnknown]);
        }
    }

    /// (h) A verdict is never cached past the policy TTL, and an allowing one is valid for a while.
    #[test]
    fn valid_until_is_within_the_ttl_and_after_now_when_something_is_allowed(case in any_case()) {
        let v = case.verdict();
        prop_assert!(v.valid_until <= ttl_end());
        if !v.allowed.is_empty() {
            prop_assert!(v.valid_until > now());
            let relied_on = case.seller.iter().flat_map(|s| &s.contracts).filter(|c| c.in_force(now()));
            for c in relied_on {
                prop_assert!(v.valid_until <= c.expire, "valid past the expiry of {}", c.attestation_id);
            }
        }
    }

    /// (i) The same inputs give the same verdict.
    #[test]
    fn the_decision_is_deterministic(case in any_case()) {
        prop_assert_eq!(case.verdict(), case.clone().verdict());
    }

    /// Soundness against an independent statement of rules 2 to 7: whatever is allowed passes every
    /// rule, and the retention never exceeds the policy's for the purpose.
    #[test]
    fn an_allowed_category_satisfies_every_rule(case in any_case()) {
        let v = case.verdict();
        for category in &v.allowed {
            prop_assert!(may_be_allowed(&case, *category), "{:?} allowed in {:#?}", category, case);
        }
        prop_assert!(v.retention_days <= case.policy().purpose(case.req.purpose).retention_days);
    }

    /// Completeness: a category that passes every rule is allowed (the engine does not fail closed
    /// by accident).
    #[test]
    fn a_category_that_satisfies_every_rule_is_allowed(case in any_case()) {
        let v = case.verdict();
        for category in &case.req.categories {
            if may_be_allowed(&case, *category) {
                prop_assert!(v.allowed.contains(category), "{:?} denied in {:#?}: {:?}", category, case, v);
            }
        }
    }
}

/// The generators are only as good as what they reach: a fixed sample must produce every decision and
/// every reason code, or the properties above would hold vacuously.
#[test]
fn the_generators_reach_every_decision_and_every_reason_code() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    let mut runner = TestRunner::deterministic();
    let strategy = any_case();
    let mut decisions = std::collections::BTreeMap::<Decision, usize>::new();
    let mut reasons = std::collections::BTreeMap::<ReasonCode, usize>::new();
    for _ in 0..4096 {
        let case = strategy.new_tree(&mut runner).map(|tree| tree.current()).unwrap_or_else(|e| panic!("{e}"));
        let v = case.verdict();
        *decisions.entry(v.decision).or_default() += 1;
        for r in v.reasons.iter().chain(v.denied.iter().flat_map(|(_, r)| r)) {
            *reasons.entry(r.code).or_default() += 1;
        }
    }
    eprintln!("{decisions:?}\n{reasons:?}");
    for d in Decision::ALL {
        assert!(decisions.get(d).copied().unwrap_or(0) >= 100, "{d} is rarely reached: {decisions:?}");
    }
    for code in ReasonCode::ALL {
        assert!(reasons.contains_key(code), "{code} is never reached: {reasons:?}");
    }
}
