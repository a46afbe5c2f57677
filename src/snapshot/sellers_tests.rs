#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use super::*;
use crate::domain::verify::SellerFacts;
use crate::domain::verify::{Context, Contract, OrderView, SuspensionScope, VerifyRequest, decide, decide_for};
use crate::domain::{
    Clause, Country, DataCategory, Policy, Purpose, SellerId, SellerRole, SellerStatus, Set, Timestamp, TransferBasis,
    Vocab,
};
use crate::snapshot::Snapshot;

const UUID: &str = "0192f0c4-6b1e-7cc3-9a2d-5e4f3a2b1c0d";

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn set<T: Vocab>(&mut self) -> Set<T> {
        Set::from_bits(self.next() as u32)
    }
}

fn now() -> Timestamp {
    Timestamp::from_micros(1_767_225_600_000_000)
}

fn contract(id: &str, rng: &mut Rng) -> Contract {
    let day = 86_400_000_000;
    Contract {
        attestation_id: Arc::from(id),
        clauses: rng.set(),
        purposes: rng.set(),
        categories: rng.set(),
        effective: Timestamp::from_micros(now().as_micros() - day * (rng.below(400) as i64 - 20)),
        expire: Timestamp::from_micros(now().as_micros() + day * (rng.below(800) as i64 - 300)),
        revoked: rng.below(6) == 0,
        retention_days: [0, 30, 90, 365][rng.below(4) as usize],
    }
}

fn view(i: usize, rng: &mut Rng) -> SellerView {
    let ids = [UUID.to_owned(), format!("att-{i}"), UUID.to_uppercase(), format!("{{{UUID}}}"), String::new()];
    let contracts =
        (0..rng.below(4)).map(|k| contract(&ids[(rng.below(5) as usize + k as usize) % ids.len()], rng)).collect();
    SellerView {
        seller_id: SellerId::parse(&format!("seller-{i}")).unwrap(),
        legal_name: format!("판매자 {i} Trading Co., Ltd."),
        privacy_contact: if i.is_multiple_of(7) { String::new() } else { format!("privacy@seller-{i}.example") },
        country: Country::parse(["CN", "US", "VN", "HK"][rng.below(4) as usize]).unwrap(),
        status: SellerStatus::ALL[rng.below(3) as usize],
        role: SellerRole::ALL[rng.below(2) as usize],
        contracts,
        last_supervision: (rng.below(2) == 0).then(|| Timestamp::from_micros(rng.next() as i64 >> 8)),
    }
}

fn many(n: usize) -> (Sellers, Vec<SellerView>) {
    let mut rng = Rng(0x5AFE_C0DE);
    let views: Vec<SellerView> = (0..n).map(|i| view(i, &mut rng)).collect();
    let mut sellers = Sellers::default();
    for v in &views {
        sellers.insert(v);
    }
    (sellers, views)
}

#[test]
fn every_field_round_trips_through_a_record() {
    let mut rng = Rng(7);
    let full = SellerView {
        seller_id: SellerId::parse(&"x".repeat(SellerId::MAX_LEN)).unwrap(),
        legal_name: "Ünïcödé 深圳 Co., Ltd. 👍".repeat(20),
        privacy_contact: "dpo@example.cn".to_owned(),
        country: Country::parse("CN").unwrap(),
        status: SellerStatus::Suspended,
        role: SellerRole::Entrustee,
        contracts: vec![
            Contract {
                clauses: Clause::ALL.iter().copied().collect(),
                purposes: Purpose::ALL.iter().copied().collect(),
                categories: DataCategory::ALL.iter().copied().collect(),
                effective: Timestamp::MIN,
                expire: Timestamp::MAX,
                revoked: true,
                retention_days: u32::MAX,
                ..contract(UUID, &mut rng)
            },
            contract("not-a-uuid", &mut rng),
            contract(&UUID.to_uppercase(), &mut rng),
            contract(&UUID.replace('-', ""), &mut rng),
            contract("", &mut rng),
        ],
        last_supervision: Some(Timestamp::from_micros(-1)),
    };
    let mut sellers = Sellers::default();
    sellers.insert(&full);
    let record = sellers.get(full.seller_id.as_str()).unwrap();
    assert_eq!(record.view(), full);
    assert_eq!(record.len(), record::encode(&full).len());
    let ids: Vec<String> = (0..full.contracts.len()).map(|i| record.attestation_id(i).to_string()).collect();
    assert_eq!(ids, full.contracts.iter().map(|c| c.attestation_id.to_string()).collect::<Vec<_>>());

    let (sellers, views) = many(500);
    for v in &views {
        assert_eq!(sellers.get(v.seller_id.as_str()).map(|r| r.view()).as_ref(), Some(v));
    }
    assert!(sellers.get("seller-500").is_none());
}

#[test]
fn a_canonical_uuid_takes_sixteen_bytes_and_anything_else_its_text() {
    let mut rng = Rng(3);
    let with = |id: &str, rng: &mut Rng| {
        let mut v = view(1, rng);
        v.contracts = vec![contract(id, rng)];
        record::encode(&v).len() - record::encode(&SellerView { contracts: Vec::new(), ..v }).len()
    };
    assert_eq!(with(UUID, &mut rng), 26 + 16);
    assert_eq!(with(&UUID.to_uppercase(), &mut rng), 26 + 4 + 36);
    assert_eq!(with("att-1", &mut rng), 26 + 4 + 5);
}

#[test]
fn compact_records_decide_exactly_as_views_do() {
    let policy = Policy::default_pipa();
    let (sellers, views) = many(3000);
    let orders = vec![
        OrderView {
            scope: SuspensionScope::Country(Country::parse("VN").unwrap()),
            categories: [DataCategory::CustomsCode].into_iter().collect(),
            effective: now().plus_days(-3),
            lifted: false,
        },
        OrderView {
            scope: SuspensionScope::Seller(SellerId::parse("seller-42").unwrap()),
            categories: Set::empty(),
            effective: now().plus_days(2),
            lifted: false,
        },
    ];
    let ctx = Context { policy: &policy, orders: &orders, now: now(), stale: false };
    let mut rng = Rng(11);
    for v in &views {
        for purpose in Purpose::ALL {
            let categories: Vec<DataCategory> = rng.set::<DataCategory>().iter().collect();
            let req = VerifyRequest {
                seller_id: v.seller_id.clone(),
                categories: if categories.is_empty() { vec![DataCategory::RecipientName] } else { categories },
                purpose: *purpose,
                basis: TransferBasis::ALL.get(rng.below(6) as usize).copied(),
                basis_evidence_ref: String::new(),
                min_revision: 0,
            };
            let record = sellers.get(v.seller_id.as_str()).unwrap();
            assert_eq!(decide_for(&ctx, Some(&record), &req), decide(&ctx, Some(v), &req), "{v:?} {req:?}");
        }
    }
}

#[test]
fn a_reader_keeps_its_version_while_the_next_one_changes() {
    let (mut sellers, views) = many(2000);
    let before = sellers.clone();
    let mut renamed = views[5].clone();
    renamed.legal_name = "Renamed Ltd".to_owned();
    renamed.contracts.clear();
    sellers.insert(&renamed);
    assert!(sellers.remove(views[6].seller_id.as_str()));
    assert!(!sellers.remove(views[6].seller_id.as_str()));
    let mut rng = Rng(99);
    for i in 2000..6000 {
        sellers.insert(&view(i, &mut rng));
    }

    assert_eq!(before.len(), 2000);
    for v in &views {
        assert_eq!(before.get(v.seller_id.as_str()).map(|r| r.view()).as_ref(), Some(v));
    }
    assert!(before.get("seller-2500").is_none());

    assert_eq!(sellers.len(), 5999);
    assert_eq!(sellers.get(views[5].seller_id.as_str()).map(|r| r.view()), Some(renamed));
    assert!(sellers.get(views[6].seller_id.as_str()).is_none());
    assert_eq!(sellers.iter().count(), 5999);
}

#[test]
fn a_record_handle_reads_its_seller_in_its_version_however_the_next_changes() {
    let (mut sellers, views) = many(2000);
    let before = sellers.clone();
    let handles: Vec<(RecordAt, String)> = before.iter_at().map(|(at, r)| (at, r.id().to_owned())).collect();
    assert_eq!(handles.len(), 2000);
    // Every seller of the next version replaced, some removed: the shards are copied, the
    // handles still name the records of the version they came from.
    for v in &views {
        let mut renamed = v.clone();
        renamed.legal_name = format!("{} (renamed)", v.legal_name);
        sellers.insert(&renamed);
    }
    for v in &views[..100] {
        assert!(sellers.remove(v.seller_id.as_str()));
    }
    for (at, id) in &handles {
        let r = before.at(*at).unwrap();
        assert_eq!(r.id(), id);
        assert_eq!(Some(r.view()), before.get(id).map(|r| r.view()));
    }
    assert!(Sellers::default().at(handles[0].0).is_none(), "an empty version has no record there");
}

#[test]
fn shrinking_after_a_load_drops_every_replaced_record() {
    // A load as the fold makes it: each seller, then the seller again with its contract.
    let (_, views) = many(5_000);
    let mut loaded = Sellers::default();
    for v in &views {
        loaded.insert(&SellerView { contracts: Vec::new(), ..v.clone() });
        loaded.insert(v);
    }
    let arenas = |s: &Sellers| s.shards.iter().map(|shard| shard.bytes.capacity()).sum::<usize>();
    let live: usize = loaded.iter().map(|r| r.len()).sum();
    assert!(arenas(&loaded) > live * 3 / 2, "the load left replaced records behind");
    loaded.shrink_to_fit();
    assert_eq!(arenas(&loaded), live, "only the live records are kept, exactly sized");
    assert!(loaded.shards.iter().all(|shard| shard.dead == 0));
    for v in &views {
        assert_eq!(loaded.get(v.seller_id.as_str()).map(|r| r.view()).as_ref(), Some(v));
    }
}

#[test]
fn replacing_sellers_many_times_compacts_the_arenas_and_loses_none() {
    let (mut sellers, mut views) = many(20_000);
    let grown = sellers.heap_bytes();
    for round in 0..6 {
        for v in views.iter_mut() {
            v.legal_name = format!("Round {round} Co., Ltd.");
            sellers.insert(v);
        }
    }
    assert_eq!(sellers.len(), 20_000);
    for v in &views {
        assert_eq!(sellers.get(v.seller_id.as_str()).map(|r| r.view()).as_ref(), Some(v));
    }
    // Dead records are reclaimed: six rounds of replacements do not hold six copies.
    assert!(sellers.heap_bytes() < grown * 3, "{} vs {grown}", sellers.heap_bytes());
    for v in &views[..19_990] {
        assert!(sellers.remove(v.seller_id.as_str()));
    }
    assert_eq!(sellers.len(), 10);
    assert_eq!(sellers.iter().count(), 10);
}

#[test]
fn the_fold_keeps_contracts_and_supervision_across_seller_changes() {
    use crate::domain::fold::FoldTarget;
    let mut rng = Rng(5);
    let mut snap = Snapshot::default();
    let original = view(1, &mut rng);
    snap.sellers.insert(&SellerView { last_supervision: Some(now()), ..original.clone() });
    let id = original.seller_id.clone();

    let mut seller = crate::domain::registry::Seller {
        seller_id: id.clone(),
        legal_name: "New Name GmbH".to_owned(),
        country: Country::parse("DE").unwrap(),
        status: SellerStatus::Active,
        role: SellerRole::Entrustee,
        contact_email: "a@b.de".to_owned(),
        privacy_contact: "dpo@b.de".to_owned(),
        revision: 2,
        create_time: now(),
        update_time: now(),
    };
    snap.put_seller(&seller);
    let got = snap.view(id.as_str()).unwrap();
    assert_eq!((got.legal_name.as_str(), got.privacy_contact.as_str()), ("New Name GmbH", "dpo@b.de"));
    assert_eq!((got.country, got.status, got.role), (seller.country, seller.status, seller.role));
    assert_eq!((got.contracts, got.last_supervision), (original.contracts.clone(), Some(now())));

    snap.set_last_supervision(&id, now().plus_days(1));
    assert_eq!(snap.last_supervision(&id), Some(now().plus_days(1)));
    seller.legal_name = "Newer".to_owned();
    snap.put_seller(&seller);
    assert_eq!(snap.view(id.as_str()).unwrap().last_supervision, Some(now().plus_days(1)));
    assert!(snap.has_seller(&id));
    assert_eq!(snap.len(), 1);
}

#[test]
fn an_attestation_replaces_the_contract_with_its_id_or_is_appended() {
    use crate::domain::fold::FoldTarget;
    use crate::domain::registry::Attestation;
    use crate::domain::{AttestationState, DocumentSha256};
    let mut rng = Rng(8);
    let mut snap = Snapshot::default();
    let mut v = view(3, &mut rng);
    v.contracts = vec![contract(UUID, &mut rng), contract("att-legacy", &mut rng)];
    snap.sellers.insert(&v);
    let attestation = |id: &str, state: AttestationState| Attestation {
        attestation_id: id.to_owned(),
        seller_id: v.seller_id.clone(),
        contract_ref: "C-1".to_owned(),
        document_sha256: DocumentSha256::parse(&"ab".repeat(32)).unwrap(),
        clauses: vec![Clause::SecuritySafeguards],
        purposes: vec![Purpose::OrderFulfillment],
        categories: vec![DataCategory::RecipientName],
        signed_time: now(),
        effective_time: now(),
        expire_time: now().plus_days(30),
        signatory: "S".to_owned(),
        retention_days: 30,
        state,
        revoke_reason: String::new(),
        submitted_by: "legal".to_owned(),
        revision: 9,
    };
    let revoked = attestation(UUID, AttestationState::Revoked);
    snap.put_attestation(&revoked);
    let fresh = attestation("0192f0c4-6b1e-7cc3-9a2d-000000000001", AttestationState::Active);
    snap.put_attestation(&fresh);
    let got = snap.view(v.seller_id.as_str()).unwrap();
    let expected = vec![Contract::compile(&revoked), v.contracts[1].clone(), Contract::compile(&fresh)];
    assert_eq!(got.contracts, expected);
    assert_eq!(SellerView { contracts: expected, ..v.clone() }, got);
}
