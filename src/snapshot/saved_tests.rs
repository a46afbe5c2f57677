#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use super::*;
use crate::domain::verify::{Contract, SellerView};
use crate::domain::{SellerRole, SellerStatus, Vocab};
use crate::snapshot::Sellers;

const UUID: &str = "0192f0c4-6b1e-7cc3-9a2d-5e4f3a2b1c0d";

fn signer(seed: u8) -> NoteSigner {
    NoteSigner::from_seed("test.example/registry", [seed; 32]).unwrap()
}

fn view(i: usize) -> SellerView {
    let contract = |id: &str, revoked: bool| Contract {
        attestation_id: Arc::from(id),
        clauses: Set::from_bits(0b1010_1010),
        purposes: Set::from_bits(0b110),
        categories: Set::from_bits(0b1_0110),
        effective: Timestamp::from_micros(1_700_000_000_000_000 + i as i64),
        expire: Timestamp::from_micros(1_800_000_000_000_000),
        revoked,
        retention_days: 90,
    };
    SellerView {
        seller_id: SellerId::parse(&format!("seller-{i}")).unwrap(),
        legal_name: format!("판매자 {i} Trading Co., Ltd."),
        privacy_contact: if i.is_multiple_of(7) { String::new() } else { format!("privacy@seller-{i}.example") },
        country: Country::parse(["CN", "US", "VN"][i % 3]).unwrap(),
        status: SellerStatus::ALL[i % 3],
        role: SellerRole::ALL[i % 2],
        contracts: (0..i % 4).map(|k| contract(if k == 1 { "att-other" } else { UUID }, k == 2)).collect(),
        last_supervision: i.is_multiple_of(2).then(|| Timestamp::from_micros(1_750_000_000_000_000)),
    }
}

fn snapshot(n: usize) -> Snapshot {
    let mut sellers = Sellers::default();
    for i in 0..n {
        sellers.insert(&view(i));
    }
    // Replaced records leave dead bytes in the arenas, which are not saved.
    sellers.insert(&view(3));
    let mut s = Snapshot { revision: 42, hash: "ab".repeat(32), sellers, ..Snapshot::default() };
    let orders = [
        ("order-1", SuspensionScope::Seller(SellerId::parse("seller-1").unwrap()), false),
        ("order-2", SuspensionScope::Country(Country::parse("CN").unwrap()), true),
    ];
    for (id, scope, lifted) in orders {
        let order =
            OrderView { scope, categories: Set::from_bits(0b110), effective: Timestamp::from_micros(7), lifted };
        s.orders_by_id.insert(id.to_owned(), order);
    }
    s.orders = Arc::new(s.orders_by_id.values().cloned().collect());
    s
}

fn encoded(s: &Snapshot, signer: &NoteSigner) -> Vec<u8> {
    let mut out = Hashing { inner: Vec::new(), digest: Sha256::new() };
    out.digest.update(DOMAIN);
    encode_body(s, signer.id(), &mut out).unwrap();
    let digest = out.digest.finalize();
    let mut bytes = out.inner;
    bytes.extend_from_slice(&signer.sign_bytes(&digest));
    bytes
}

fn same(a: &Snapshot, b: &Snapshot) {
    assert_eq!((a.revision, &a.hash, a.len()), (b.revision, &b.hash, b.len()));
    for r in a.iter() {
        assert_eq!(Some(r.view()), b.view(r.id()), "{}", r.id());
    }
    let mut orders_a: Vec<_> = a.orders_by_id.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    let mut orders_b: Vec<_> = b.orders_by_id.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    orders_a.sort_by(|x, y| x.0.cmp(&y.0));
    orders_b.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(orders_a, orders_b);
    assert_eq!(a.orders.len(), b.orders.len());
}

#[test]
fn a_snapshot_round_trips_through_the_file_format() {
    let s = snapshot(300);
    let key = signer(1);
    let back = decode(&encoded(&s, &key), &key.verifier()).unwrap();
    same(&s, &back);
}

#[test]
fn a_snapshot_round_trips_through_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = SavedFile::new(dir.path(), signer(1));
    assert!(file.read().unwrap().is_none(), "no file yet");
    let s = snapshot(50);
    file.write(&s).unwrap();
    same(&s, &file.read().unwrap().unwrap());
    assert!(!dir.path().join("snapshot.bin.tmp").exists());
}

#[test]
fn every_flipped_byte_and_every_truncation_is_refused_without_a_panic() {
    let s = snapshot(5);
    let key = signer(1);
    let bytes = encoded(&s, &key);
    for at in 0..bytes.len() {
        let mut bad = bytes.clone();
        bad[at] ^= 0x01;
        assert!(decode(&bad, &key.verifier()).is_err(), "a flipped byte {at} was accepted");
    }
    for len in 0..bytes.len() {
        assert!(decode(&bytes[..len], &key.verifier()).is_err(), "a file cut at {len} was accepted");
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(decode(&longer, &key.verifier()).is_err());
}

#[test]
fn a_file_signed_by_another_key_is_refused() {
    let s = snapshot(5);
    let err = decode(&encoded(&s, &signer(2)), &signer(1).verifier()).err().unwrap();
    assert!(err.contains("signed by key"), "{err}");
}

#[test]
fn a_signed_but_malformed_body_is_refused_without_a_panic() {
    // What only a writer with the key could produce: the signature verifies, the body does not
    // parse. Every byte of the body is damaged in turn and signed again.
    let key = signer(1);
    let s = snapshot(3);
    let good = encoded(&s, &key);
    let body = &good[..good.len() - SIGNATURE];
    for at in 0..body.len() {
        for flip in [0x01u8, 0x80, 0xff] {
            let mut bad = body.to_vec();
            bad[at] ^= flip;
            let mut digest = Sha256::new();
            digest.update(DOMAIN);
            digest.update(&bad);
            bad.extend_from_slice(&key.sign_bytes(&digest.finalize()));
            // Either refused, or (a byte no check covers, such as a letter of a name) a snapshot
            // of the same shape: never a panic.
            if let Ok(back) = decode(&bad, &key.verifier()) {
                assert_eq!(back.len(), s.len());
            }
        }
    }
}
