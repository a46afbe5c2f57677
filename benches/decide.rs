//! The hot path of VerifySeller without the network: look a seller up in the snapshot and decide.
//! The registry is synthetic but shaped like the case that motivated safeguard: 180,000 foreign
//! sellers (`SAFEGUARD_BENCH_SELLERS` for another count, e.g. 10000000), most with a complete
//! contract, the rest missing a clause, expired, revoked, without a contract or suspended. Sellers
//! live in the compact store the production snapshot uses ([`Sellers`]), and requests hit random
//! sellers, so cache misses are part of the measurement; `baseline/lookup_only` measures the lookup
//! alone on the same ids, so what `decide` adds is the difference.
//!
//! Memory is measured in the same run against an anchor: a plain
//! `std::collections::HashMap<SellerId, SellerView>` built from the same data, with heap bytes
//! counted by a counting global allocator. The anchor is built up to 2,000,000 sellers (above that
//! it would dominate the peak RSS this bench reports); `anchor/decide_random_seller` decides on it.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cap::Cap;
use criterion::{Criterion, criterion_group, criterion_main};
use safeguard::domain::verify::{
    Context, Contract, OrderView, SellerView, SuspensionScope, VerifyRequest, decide, decide_for,
};
use safeguard::domain::{
    Clause, Country, DataCategory, Decision, Policy, Purpose, SellerId, SellerRole, SellerStatus, Set, Timestamp,
    TransferBasis, Vocab,
};
use safeguard::snapshot::Sellers;

/// Counts the heap bytes in use, for bytes per seller, over the allocator the service runs on
/// (`src/main.rs`), so a decision's allocations cost here what they cost in production.
#[global_allocator]
static ALLOCATOR: Cap<mimalloc::MiMalloc> = Cap::new(mimalloc::MiMalloc, usize::MAX);

const DEFAULT_SELLERS: usize = 180_000;
/// The largest registry the plain-HashMap anchor is built for.
const ANCHOR_UP_TO: usize = 2_000_000;
/// A power of two, so the benchmark loops index with a mask.
const SAMPLE: usize = 4096;
const DAY: i64 = 86_400;
const COUNTRIES: [&str; 8] = ["CN", "US", "JP", "HK", "SG", "DE", "GB", "VN"];

/// xorshift64*: deterministic, good enough to scatter sellers, and no dependency.
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
}

/// The fixed "now" of the benchmark (2026-01-01T00:00:00Z).
fn now() -> Timestamp {
    Timestamp::from_micros(1_767_225_600_000_000)
}

fn seller_id(i: usize) -> SellerId {
    SellerId::parse(&format!("seller-{i:06}")).unwrap()
}

/// A contract with every clause, purpose and category the default policy can allow, in force from
/// some time in the past year until some time in the next two.
fn full_contract(rng: &mut Rng, policy: &Policy, n: usize) -> Contract {
    let mut clauses = policy.baseline;
    clauses.insert(Clause::IdentifierProtection);
    let purposes: Set<Purpose> =
        [Purpose::OrderFulfillment, Purpose::CustomsClearance, Purpose::CustomerSupport, Purpose::ReturnsRefunds]
            .into_iter()
            .collect();
    let everything: Set<DataCategory> = DataCategory::ALL.iter().copied().collect();
    Contract {
        // Attestation ids are server-assigned UUIDs (v7).
        attestation_id: Arc::from(format!("0192f0c4-{:04x}-7{:03x}-8000-{n:012x}", n >> 16 & 0xffff, n & 0xfff)),
        clauses,
        purposes,
        categories: everything.difference(policy.prohibited),
        effective: now().plus_seconds(-(rng.below(365 * DAY as u64) as i64) - DAY),
        expire: now().plus_seconds(rng.below(730 * DAY as u64) as i64 + DAY),
        revoked: false,
        retention_days: [0, 30, 60, 90, 180][rng.below(5) as usize],
    }
}

fn seller(rng: &mut Rng, policy: &Policy, i: usize, sellers: usize) -> SellerView {
    let mut contract = full_contract(rng, policy, i);
    let mut status = SellerStatus::Active;
    let contracts = match rng.below(100) {
        // A complete contract in force.
        0..60 => vec![contract],
        // The 2024 case: a baseline clause (or identifier protection) is missing.
        60..72 => {
            let clauses: Vec<Clause> = contract.clauses.iter().collect();
            let missing = clauses[rng.below(clauses.len() as u64) as usize];
            contract.clauses = contract.clauses.difference([missing].into_iter().collect());
            vec![contract]
        }
        72..80 => {
            contract.expire = now().plus_seconds(-(rng.below(365 * DAY as u64) as i64) - 1);
            vec![contract]
        }
        80..86 => {
            contract.revoked = true;
            vec![contract]
        }
        // A renewal: the old contract expired, the new one is in force.
        86..92 => {
            let mut old = full_contract(rng, policy, sellers + i);
            old.expire = contract.effective;
            vec![old, contract]
        }
        92..96 => Vec::new(),
        _ => {
            status = if rng.below(2) == 0 { SellerStatus::Suspended } else { SellerStatus::Offboarded };
            vec![contract]
        }
    };
    let role = if rng.below(5) == 0 { SellerRole::Entrustee } else { SellerRole::Recipient };
    SellerView {
        seller_id: seller_id(i),
        legal_name: format!("Seller {i} Trading Co., Ltd."),
        privacy_contact: format!("privacy@seller-{i}.example"),
        country: Country::parse(COUNTRIES[rng.below(COUNTRIES.len() as u64) as usize]).unwrap(),
        status,
        role,
        contracts,
        last_supervision: (role == SellerRole::Entrustee && rng.below(2) == 0)
            .then(|| now().plus_seconds(-(rng.below(500 * DAY as u64) as i64))),
    }
}

/// The seed of the registry: the compact store and the anchor are built from the same sellers.
const SEED: u64 = 0x5AFE_6A4D_2026_0001;

fn sellers_wanted() -> usize {
    std::env::var("SAFEGUARD_BENCH_SELLERS")
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(DEFAULT_SELLERS)
}

/// A line of /proc/self/status in bytes (VmHWM: peak RSS; VmRSS: now).
fn proc_status_bytes(key: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    line.split_whitespace().nth(1)?.parse::<u64>().ok().map(|kb| kb * 1024)
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

struct Fixture {
    policy: Policy,
    sellers: Sellers,
    anchor: Option<HashMap<SellerId, SellerView>>,
    orders: Vec<OrderView>,
    fulfilment: Vec<VerifyRequest>,
    customs: Vec<VerifyRequest>,
}

impl Fixture {
    fn build() -> Self {
        let policy = Policy::default_pipa();
        let n = sellers_wanted();
        let heap_before = ALLOCATOR.allocated();
        let started = Instant::now();
        let mut rng = Rng(SEED);
        let mut sellers = Sellers::default();
        // Streamed: each seller is compiled into the store and dropped, as the start-up fold does.
        for i in 0..n {
            sellers.insert(&seller(&mut rng, &policy, i, n));
        }
        sellers.shrink_to_fit();
        let compact = ALLOCATOR.allocated() - heap_before;
        let rss = proc_status_bytes("VmRSS:").unwrap_or(0);
        let hwm = proc_status_bytes("VmHWM:").unwrap_or(0);
        eprintln!(
            "{n} sellers: compact snapshot {compact} B heap = {:.1} B/seller (built in {:.1} s); \
             process RSS {:.0} MiB, peak RSS (VmHWM) {:.0} MiB",
            compact as f64 / n as f64,
            started.elapsed().as_secs_f64(),
            mib(rss),
            mib(hwm),
        );
        let anchor = (n <= ANCHOR_UP_TO).then(|| {
            let before = ALLOCATOR.allocated();
            let mut rng = Rng(SEED);
            let anchor: HashMap<SellerId, SellerView> =
                (0..n).map(|i| seller(&mut rng, &policy, i, n)).map(|v| (v.seller_id.clone(), v)).collect();
            let bytes = ALLOCATOR.allocated() - before;
            eprintln!(
                "{n} sellers: anchor HashMap<SellerId, SellerView> {bytes} B heap = {:.1} B/seller; \
                 compact / anchor = {:.2}",
                bytes as f64 / n as f64,
                compact as f64 / bytes as f64,
            );
            anchor
        });
        let mut rng = Rng(SEED ^ 0xDEC1DE);
        // A few orders, as a regulator might issue: they are scanned on every decision.
        let orders = vec![
            OrderView {
                scope: SuspensionScope::Country(Country::parse("VN").unwrap()),
                categories: [DataCategory::CustomsCode].into_iter().collect(),
                effective: now().plus_seconds(-30 * DAY),
                lifted: false,
            },
            OrderView {
                scope: SuspensionScope::Seller(seller_id(42)),
                categories: Set::empty(),
                effective: now().plus_seconds(-DAY),
                lifted: false,
            },
            OrderView {
                scope: SuspensionScope::Country(Country::parse("HK").unwrap()),
                categories: Set::empty(),
                effective: now().plus_seconds(-90 * DAY),
                lifted: true,
            },
        ];
        let request = |i: usize, purpose: Purpose, categories: &[DataCategory]| VerifyRequest {
            seller_id: seller_id(i),
            categories: categories.to_vec(),
            purpose,
            basis: Some(TransferBasis::SeparateConsent),
            basis_evidence_ref: String::new(),
            min_revision: 0,
        };
        let picks: Vec<usize> = (0..SAMPLE).map(|_| rng.below(n as u64) as usize).collect();
        let fulfilment = picks
            .iter()
            .map(|&i| {
                request(
                    i,
                    Purpose::OrderFulfillment,
                    &[DataCategory::RecipientName, DataCategory::PhoneNumber, DataCategory::ShippingAddress],
                )
            })
            .collect();
        let customs = picks
            .iter()
            .map(|&i| {
                request(
                    i,
                    Purpose::CustomsClearance,
                    &[
                        DataCategory::RecipientName,
                        DataCategory::ShippingAddress,
                        DataCategory::OrderContents,
                        DataCategory::CustomsCode,
                        DataCategory::DateOfBirth,
                    ],
                )
            })
            .collect();
        Self { policy, sellers, anchor, orders, fulfilment, customs }
    }

    fn context(&self) -> Context<'_> {
        Context { policy: &self.policy, orders: &self.orders, now: now(), stale: false }
    }

    /// What the production snapshot does per request: one lookup, one decision.
    fn verify(&self, req: &VerifyRequest) -> Decision {
        let seller = self.sellers.get(req.seller_id.as_str());
        decide_for(&self.context(), seller.as_ref(), req).decision
    }

    /// How the sample decides, so the numbers can be read against a known mix.
    fn report_mix(&self, name: &str, requests: &[VerifyRequest]) {
        let mut counts = [0usize; 3];
        for req in requests {
            counts[self.verify(req) as usize - 1] += 1;
        }
        eprintln!("{name}: ALLOW {} · ALLOW_PARTIAL {} · DENY {} of {SAMPLE}", counts[0], counts[1], counts[2]);
    }
}

fn benches(c: &mut Criterion) {
    let fx = Fixture::build();
    fx.report_mix("order fulfilment, 3 categories", &fx.fulfilment);
    fx.report_mix("customs clearance, 5 categories", &fx.customs);

    let mut group = c.benchmark_group("baseline");
    group.bench_function("lookup_only", |b| {
        let mut i = 0;
        b.iter(|| {
            let req = &fx.fulfilment[i & (SAMPLE - 1)];
            i += 1;
            black_box(fx.sellers.get(black_box(req.seller_id.as_str())).map(|s| s.contract_count()))
        });
    });
    group.finish();

    let mut group = c.benchmark_group("decide");
    for (name, requests) in [("random_seller", &fx.fulfilment), ("customs_5_categories", &fx.customs)] {
        group.bench_function(name, |b| {
            let ctx = fx.context();
            let mut i = 0;
            b.iter(|| {
                let req = black_box(&requests[i & (SAMPLE - 1)]);
                i += 1;
                let seller = fx.sellers.get(req.seller_id.as_str());
                decide_for(&ctx, seller.as_ref(), req)
            });
        });
    }
    group.finish();

    if let Some(anchor) = &fx.anchor {
        let mut group = c.benchmark_group("anchor");
        group.bench_function("decide_random_seller", |b| {
            let ctx = fx.context();
            let mut i = 0;
            b.iter(|| {
                let req = black_box(&fx.fulfilment[i & (SAMPLE - 1)]);
                i += 1;
                decide(&ctx, anchor.get(req.seller_id.as_str()), req)
            });
        });
        group.finish();
    }
}

criterion_group! {
    name = decide_benches;
    // Three benchmarks of ~6 s each (with the 180,000-seller build) keep a full run under a minute.
    config = Criterion::default()
        .sample_size(50)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    targets = benches
}
criterion_main!(decide_benches);
