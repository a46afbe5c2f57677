//! The compact register entry against the owned entry it replaced: for every purpose and category
//! combination a policy allows, the page shows the same text.

use std::sync::Arc;
use std::time::Duration;

use super::{Entry, build_register, purpose_line};
use crate::domain::replay::compliance::{Grant, Grants, RecipientPurpose, asks, evaluate};
use crate::domain::verify::{Context, Contract, SellerView};
use crate::domain::{
    Country, DataCategory, Policy, Purpose, SellerId, SellerRole, SellerStatus, Set, Timestamp, Vocab,
};
use crate::snapshot::{Registry, Snapshot};

/// A purpose line as the register rendered it from an owned entry.
fn owned_line(p: &RecipientPurpose) -> String {
    let cats: Vec<&str> = p.categories.iter().map(|c| c.name()).collect();
    format!("{} · {} · {} d", p.purpose.name(), cats.join(", "), p.retention_days)
}

/// Every non-empty subset of `all`, each in the order of `all`.
fn subsets(all: &[DataCategory]) -> impl Iterator<Item = Vec<DataCategory>> + '_ {
    (1..1u32 << all.len())
        .map(move |mask| all.iter().enumerate().filter(|(i, _)| mask >> i & 1 == 1).map(|(_, c)| *c).collect())
}

/// A policy that allows every purpose every category: the widest entries there can be.
fn everything() -> Policy {
    let cats: Vec<String> = DataCategory::ALL.iter().map(|c| format!("{:?}", c.name())).collect();
    let mut toml = String::from(
        "version = \"everything\"\ndecision_ttl_seconds = 300\nexpiring_soon_days = 30\n\
         baseline_clauses = [\"PURPOSE_LIMITATION\"]\n[accepted_bases]\nRECIPIENT = [\"SEPARATE_CONSENT\"]\n\
         ENTRUSTEE = [\"SEPARATE_CONSENT\"]\n",
    );
    for p in Purpose::ALL {
        toml.push_str(&format!("[purposes.{}]\ncategories = [{}]\nretention_days = 365\n", p.name(), cats.join(", ")));
    }
    Policy::from_toml(&toml).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn a_grant_reads_as_the_owned_purpose_for_every_combination_the_policy_allows() {
    for policy in [Policy::default_pipa(), everything()] {
        let asks = asks(&policy);
        assert!(!asks.is_empty(), "{}", policy.version);
        for ask in &asks {
            for categories in subsets(&ask.categories) {
                for retention_days in [0, 1, 90, u32::MAX] {
                    let owned =
                        RecipientPurpose { purpose: ask.purpose, categories: categories.clone(), retention_days };
                    let grant = Grant::from(&owned);
                    assert_eq!(grant.expand(), owned);
                    assert_eq!(purpose_line(&grant), owned_line(&owned));
                }
            }
        }
        // Every set of purposes as one entry, in ask order.
        for mask in 1..1u32 << asks.len() {
            let owned: Vec<RecipientPurpose> = asks
                .iter()
                .enumerate()
                .filter(|(i, _)| mask >> i & 1 == 1)
                .map(|(i, a)| RecipientPurpose {
                    purpose: a.purpose,
                    categories: a.categories.clone(),
                    retention_days: 30 * i as u32,
                })
                .collect();
            let mut grants = Grants::new();
            for p in &owned {
                grants.push(Grant::from(p));
            }
            assert_eq!(grants.iter().map(Grant::expand).collect::<Vec<_>>(), owned);
            let shown: Vec<String> = grants.iter().map(purpose_line).collect();
            assert_eq!(shown, owned.iter().map(owned_line).collect::<Vec<_>>());
        }
    }
}

#[test]
fn a_register_entry_is_a_few_tens_of_bytes() {
    assert_eq!(std::mem::size_of::<Grant>(), 8);
    assert!(std::mem::size_of::<Entry>() <= 56, "{} bytes", std::mem::size_of::<Entry>());
}

fn seller(n: usize, status: SellerStatus, contracts: Vec<Contract>) -> SellerView {
    let countries = ["US", "CN", "JP", "DE", "SG"];
    SellerView {
        seller_id: SellerId::parse(&format!("s-{n:05}")).unwrap_or_else(|e| panic!("{e}")),
        legal_name: format!("Seller {n} Ltd. — 株式会社"),
        privacy_contact: format!("privacy+{n}@seller.example"),
        country: Country::parse(countries[n % countries.len()]).unwrap_or_else(|e| panic!("{e}")),
        status,
        role: SellerRole::Recipient,
        contracts,
        last_supervision: None,
    }
}

fn contract(purposes: Set<Purpose>, categories: Set<DataCategory>, retention_days: u32) -> Contract {
    let now = Timestamp::now();
    Contract {
        attestation_id: Arc::from("00000000-0000-4000-8000-000000000001"),
        clauses: Set::from_bits(u32::MAX),
        purposes,
        categories,
        effective: now.plus_days(-1),
        expire: now.plus_days(365),
        revoked: false,
        retention_days,
    }
}

/// Sellers whose contracts grant each purpose each subset of its categories, and each set of
/// purposes everything; and some that may receive nothing.
fn sellers(policy: &Policy) -> Vec<SellerView> {
    let asks = asks(policy);
    let mut out = Vec::new();
    for ask in &asks {
        for categories in subsets(&ask.categories) {
            let c = contract([ask.purpose].into_iter().collect(), categories.into_iter().collect(), 0);
            out.push(seller(out.len(), SellerStatus::Active, vec![c]));
        }
    }
    for mask in 1..1u32 << asks.len() {
        let purposes = asks.iter().enumerate().filter(|(i, _)| mask >> i & 1 == 1).map(|(_, a)| a.purpose).collect();
        let c = contract(purposes, Set::from_bits(u32::MAX), 7 * mask);
        out.push(seller(out.len(), SellerStatus::Active, vec![c]));
    }
    let all = contract(Set::from_bits(u32::MAX), Set::from_bits(u32::MAX), 0);
    out.push(seller(out.len(), SellerStatus::Suspended, vec![all.clone()]));
    out.push(seller(out.len(), SellerStatus::Active, vec![]));
    out.push(seller(out.len(), SellerStatus::Active, vec![Contract { revoked: true, ..all }]));
    out
}

/// A register row as text: seller, name, contact, country and the purpose lines.
type Shown = (String, String, String, String, Vec<String>);

#[test]
fn the_compact_register_shows_what_owned_entries_showed() {
    for policy in [Policy::default_pipa(), everything()] {
        let views = sellers(&policy);
        let mut snapshot = Snapshot::default();
        for v in &views {
            snapshot.sellers.insert(v);
        }
        let registry = Registry::new(snapshot, Arc::new(policy.clone()), Duration::from_secs(60));
        let register = build_register(&registry, 1);

        // What the register listed before its entries were compact: the owned entry of each
        // seller that may receive something, straight from the engine's verdicts.
        let ctx = Context { policy: &policy, orders: &[], now: Timestamp::now(), stale: false };
        let asks = asks(&policy);
        let mut before: Vec<Shown> = views
            .iter()
            .filter(|v| v.status == SellerStatus::Active)
            .filter_map(|v| {
                let lines: Vec<String> = evaluate(&ctx, v, &asks)
                    .into_iter()
                    .filter(|(_, verdict)| !verdict.allowed.is_empty())
                    .map(|(purpose, verdict)| {
                        owned_line(&RecipientPurpose {
                            purpose,
                            categories: verdict.allowed,
                            retention_days: verdict.retention_days,
                        })
                    })
                    .collect();
                (!lines.is_empty()).then(|| {
                    (
                        v.seller_id.to_string(),
                        v.legal_name.clone(),
                        v.privacy_contact.clone(),
                        v.country.to_string(),
                        lines,
                    )
                })
            })
            .collect();
        before.sort_by(|a, b| (&a.3, &a.0).cmp(&(&b.3, &b.0)));
        assert_eq!(before.len(), views.len() - 3, "{}: every seller but the last three is listed", policy.version);

        let shown = |country: Option<&str>| -> Vec<Shown> {
            register
                .rows(register.of(country))
                .map(|r| {
                    let lines = r.grants.iter().map(purpose_line).collect();
                    (
                        r.seller_id.to_owned(),
                        r.legal_name.to_owned(),
                        r.privacy_contact.to_owned(),
                        r.country.to_string(),
                        lines,
                    )
                })
                .collect()
        };
        assert_eq!(shown(None), before, "{}", policy.version);
        for (country, range) in &register.countries {
            let of_country: Vec<Shown> = before.iter().filter(|s| s.3 == country.as_str()).cloned().collect();
            assert_eq!(shown(Some(country.as_str())), of_country);
            assert_eq!(range.len(), of_country.len());
        }
        assert!(shown(Some("ZZ")).is_empty());
    }
}
