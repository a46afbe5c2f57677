//! The hot path of VerifySeller without the network: look a seller up in a snapshot-sized map and
//! decide. The registry is synthetic but shaped like the case that motivated safeguard: 180,000
//! foreign sellers, most with a complete contract, the rest missing a clause, expired, revoked,
//! without a contract or suspended. Sellers live in the same persistent map the production snapshot
//! uses (`imbl::HashMap<SellerId, Arc<SellerView>>`), and requests hit random sellers, so cache
//! misses are part of the measurement; `baseline/lookup_only` measures the lookup alone on the same
//! ids, so what `decide` adds is the difference.
#![allow(clippy::unwrap_used)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use safeguard::domain::verify::{Context, Contract, OrderView, SellerView, SuspensionScope, VerifyRequest, decide};
use safeguard::domain::{
    Clause, Country, DataCategory, Decision, Policy, Purpose, SellerId, SellerRole, SellerStatus, Set, Timestamp,
    TransferBasis, Vocab,
};

const SELLERS: usize = 180_000;
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
        attestation_id: Arc::from(format!("att-{n:07}")),
        clauses,
        purposes,
        categories: everything.difference(policy.prohibited),
        effective: now().plus_seconds(-(rng.below(365 * DAY as u64) as i64) - DAY),
        expire: now().plus_seconds(rng.below(730 * DAY as u64) as i64 + DAY),
        revoked: false,
        retention_days: [0, 30, 60, 90, 180][rng.below(5) as usize],
    }
}

fn seller(rng: &mut Rng, policy: &Policy, i: usize) -> SellerView {
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
            let mut old = full_contract(rng, policy, SELLERS + i);
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

struct Fixture {
    policy: Policy,
    sellers: imbl::HashMap<SellerId, Arc<SellerView>>,
    orders: Vec<OrderView>,
    fulfilment: Vec<VerifyRequest>,
    customs: Vec<VerifyRequest>,
}

impl Fixture {
    fn build() -> Self {
        let policy = Policy::default_pipa();
        let mut rng = Rng(0x5AFE_6A4D_2026_0001);
        let sellers: imbl::HashMap<SellerId, Arc<SellerView>> =
            (0..SELLERS).map(|i| (seller_id(i), Arc::new(seller(&mut rng, &policy, i)))).collect();
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
        let picks: Vec<usize> = (0..SAMPLE).map(|_| rng.below(SELLERS as u64) as usize).collect();
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
        Self { policy, sellers, orders, fulfilment, customs }
    }

    fn context(&self) -> Context<'_> {
        Context { policy: &self.policy, orders: &self.orders, now: now(), stale: false }
    }

    /// What the production snapshot does per request: one lookup, one decision.
    fn verify(&self, req: &VerifyRequest) -> Decision {
        let seller = self.sellers.get(req.seller_id.as_str()).map(|s| &**s);
        decide(&self.context(), seller, req).decision
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
            black_box(fx.sellers.get(black_box(req.seller_id.as_str())).map(|s| s.status))
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
                let seller = fx.sellers.get(req.seller_id.as_str()).map(|s| &**s);
                decide(&ctx, seller, req)
            });
        });
    }
    group.finish();
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
