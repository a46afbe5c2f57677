//! `safeguard generate`: realistic synthetic registries for demos and benchmarks. The output is a
//! pure function of (seed, number of sellers, as-of day), written in seller-id order with each
//! seller's contracts after it: the order `export` writes, so `export` after importing a generated
//! file on an empty database reproduces the file byte for byte.
//!
//! The mix is meant to exercise every branch of VerifySeller: most sellers hold a complete contract
//! (every baseline clause plus IDENTIFIER_PROTECTION) in force; some contracts lack a clause or
//! IDENTIFIER_PROTECTION, some have expired, some are not yet effective, some expire within 30 days;
//! some sellers have no contract, some are suspended or offboarded, some renewed an older contract.

use std::io::Write;

use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use sha2::{Digest, Sha256};

use super::format::{Format, Record};
use super::write::RecordWriter;
use crate::domain::input::{AttestationInput, SellerInput, TimeInput};
use crate::domain::{Clause, DataCategory, Purpose, SellerRole, SellerStatus, Vocab};

/// What to generate.
#[derive(Debug, Clone)]
pub struct GenerateOptions {
    pub sellers: u64,
    pub seed: u64,
    /// Contract validity is laid out around this instant (seconds since the epoch), so that the
    /// data is "current" on that day.
    pub as_of: i64,
    pub format: Format,
}

/// What was generated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GenerateSummary {
    pub sellers: u64,
    pub attestations: u64,
}

const DAY: i64 = 86_400;

/// (country, weight, e-mail domain suffix, legal forms).
const COUNTRIES: &[(&str, u32, &str, &[&str])] = &[
    ("CN", 40, "com.cn", &["Co., Ltd.", "Trading Co., Ltd.", "Technology Co., Ltd."]),
    ("US", 14, "com", &["LLC", "Inc.", "Corp."]),
    ("JP", 8, "co.jp", &["Co., Ltd.", "K.K.", "Corporation"]),
    ("HK", 7, "com.hk", &["Limited", "(HK) Limited", "Trading Limited"]),
    ("DE", 5, "de", &["GmbH", "GmbH & Co. KG", "AG"]),
    ("GB", 5, "co.uk", &["Ltd", "Limited", "plc"]),
    ("SG", 4, "com.sg", &["Pte. Ltd.", "Pte Ltd"]),
    ("VN", 4, "vn", &["Co., Ltd.", "JSC"]),
    ("FR", 3, "fr", &["SAS", "SARL", "S.A."]),
    ("IT", 3, "it", &["S.r.l.", "S.p.A."]),
    ("TW", 3, "com.tw", &["Co., Ltd.", "Corporation"]),
    ("TH", 2, "co.th", &["Co., Ltd."]),
    ("AU", 1, "com.au", &["Pty Ltd"]),
    ("NL", 1, "nl", &["B.V."]),
];

const CN_CITIES: &[&str] =
    &["Shenzhen", "Guangzhou", "Yiwu", "Hangzhou", "Shanghai", "Dongguan", "Ningbo", "Xiamen", "Suzhou", "Qingdao"];

const WORDS: &[&str] = &[
    "Golden",
    "Bright",
    "Blue Ocean",
    "Evergreen",
    "Star",
    "Harbor",
    "Summit",
    "Lotus",
    "Pioneer",
    "Silver",
    "Sunrise",
    "Jade",
    "Maple",
    "Orion",
    "Crystal",
    "Dragon",
    "Phoenix",
    "Northern",
    "Pacific",
    "Eastern",
    "Apex",
    "Nova",
    "Vertex",
    "Zenith",
    "Atlas",
    "Kite",
    "Cedar",
    "Coral",
    "Aurora",
    "Meridian",
];

const TRADES: &[&str] = &[
    "Trading",
    "Electronics",
    "Apparel",
    "Cosmetics",
    "Home Goods",
    "Toys",
    "Sports",
    "Outdoor",
    "Kitchenware",
    "Pet Supplies",
    "Beauty",
    "Digital",
    "Textile",
    "Import & Export",
    "E-Commerce",
    "Crafts",
    "Furniture",
    "Lighting",
    "Audio",
    "Optics",
    "Health Foods",
    "Baby Products",
];

const PEOPLE: &[&str] = &[
    "Wang Fang",
    "Li Wei",
    "Zhang Min",
    "Liu Yang",
    "Chen Jing",
    "Emily Carter",
    "Michael Brown",
    "Sato Yuki",
    "Tanaka Hiroshi",
    "Anna Schmidt",
    "Lukas Müller",
    "Oliver Smith",
    "Tan Wei Ming",
    "Nguyễn Thị Lan",
    "Camille Martin",
    "Giulia Rossi",
    "Lin Chia-Hui",
    "Somchai Srisuk",
    "Jack Wilson",
    "Sanne de Vries",
];

const TITLES: &[&str] =
    &["Head of Legal", "General Counsel", "CEO", "Legal Director", "Compliance Manager", "Director"];

/// The baseline clauses of the default policy.
const BASELINE: &[Clause] = &[
    Clause::PurposeLimitation,
    Clause::DataMinimization,
    Clause::SecuritySafeguards,
    Clause::RetentionAndDeletion,
    Clause::OnwardTransferRestriction,
    Clause::SupervisionAndAudit,
    Clause::BreachNotification,
    Clause::GrievanceAndDisputeResolution,
    Clause::DataSubjectRights,
    Clause::LiabilityAndCompensation,
    Clause::SuspensionAndTermination,
    Clause::PipaComplianceUndertaking,
];

/// Writes `options.sellers` sellers with their contracts to `out`.
pub fn generate<W: Write>(options: &GenerateOptions, out: W) -> std::io::Result<(GenerateSummary, W)> {
    let mut rng = StdRng::seed_from_u64(options.seed);
    let mut w = RecordWriter::new(options.format, out)?;
    let mut summary = GenerateSummary::default();
    // Zero-padded so that seller-id order is generation order.
    let width = options.sellers.to_string().len().max(7);
    for i in 1..=options.sellers {
        let id = format!("seller-{i:0width$}");
        let seller = seller(&mut rng, &id);
        w.write(&Record::Seller(seller))?;
        summary.sellers += 1;
        for a in contracts(&mut rng, options, i, &id) {
            w.write(&Record::Attestation(a))?;
            summary.attestations += 1;
        }
    }
    Ok((summary, w.finish()?))
}

fn pick<'a, T>(rng: &mut StdRng, items: &'a [T]) -> &'a T {
    // Every list above is non-empty.
    items.choose(rng).unwrap_or(&items[0])
}

fn seller(rng: &mut StdRng, id: &str) -> SellerInput {
    let total: u32 = COUNTRIES.iter().map(|c| c.1).sum();
    let mut roll = rng.random_range(0..total);
    let &(country, _, tld, forms) = COUNTRIES
        .iter()
        .find(|c| {
            let hit = roll < c.1;
            roll = roll.saturating_sub(c.1);
            hit
        })
        .unwrap_or(&COUNTRIES[0]);
    let (word, trade, form) = (*pick(rng, WORDS), *pick(rng, TRADES), *pick(rng, forms));
    let legal_name = match country {
        "CN" => format!("{} {word} {trade} {form}", pick(rng, CN_CITIES)),
        "VN" => format!("Công ty TNHH {word} {trade}"),
        _ => format!("{word} {trade} {form}"),
    };
    let slug: String = format!("{word}{}", trade.split(' ').next().unwrap_or(trade))
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect::<String>()
        .to_ascii_lowercase();
    let domain = format!("{slug}{}.{tld}", rng.random_range(1..1000));
    let contact_email = format!("{}@{domain}", pick(rng, &["legal", "compliance", "contracts", "ops"]));
    let privacy_contact = match rng.random_range(0..3) {
        0 => format!("privacy@{domain}"),
        1 => format!("Data Protection Officer, dpo@{domain}"),
        _ => format!("{} <dpo@{domain}>", pick(rng, PEOPLE)),
    };
    let status = match rng.random_range(0..100) {
        0..94 => SellerStatus::Active,
        94..98 => SellerStatus::Suspended,
        _ => SellerStatus::Offboarded,
    };
    let role = if rng.random_bool(0.15) { SellerRole::Entrustee } else { SellerRole::Recipient };
    SellerInput {
        seller_id: id.to_owned(),
        legal_name,
        country: country.to_owned(),
        status: status.number(),
        role: role.number(),
        contact_email,
        privacy_contact,
        etag: String::new(),
    }
}

fn at(seconds: i64) -> Option<TimeInput> {
    Some(TimeInput { seconds, nanos: 0 })
}

/// The seller's contracts, oldest first: none (7%), or a current one, preceded for some by the
/// expired contract it renewed.
fn contracts(rng: &mut StdRng, options: &GenerateOptions, index: u64, seller_id: &str) -> Vec<AttestationInput> {
    if rng.random_bool(0.07) {
        return Vec::new();
    }
    let today = options.as_of.div_euclid(DAY) * DAY;
    let mut clauses: Vec<Clause> = BASELINE.to_vec();
    clauses.push(Clause::IdentifierProtection);
    // When the current contract starts and ends.
    let (effective, expire) = match rng.random_range(0..100) {
        // Incomplete: one baseline clause missing.
        0..8 => {
            clauses.remove(rng.random_range(0..BASELINE.len()));
            in_force(rng, today)
        }
        // Baseline only: no IDENTIFIER_PROTECTION, so no customs code or date of birth.
        8..12 => {
            clauses.pop();
            in_force(rng, today)
        }
        12..18 => {
            let expire = today - rng.random_range(1..365) * DAY;
            (expire - rng.random_range(1..=3) * 365 * DAY, expire)
        }
        18..22 => {
            let effective = today + rng.random_range(1..90) * DAY;
            (effective, effective + rng.random_range(1..=3) * 365 * DAY)
        }
        22..25 => (today - rng.random_range(300..700) * DAY, today + rng.random_range(1..=30) * DAY),
        _ => in_force(rng, today),
    };
    if rng.random_bool(0.1) {
        clauses.push(Clause::GovernmentAccessTransparency);
    }
    let mut out = Vec::with_capacity(2);
    if rng.random_bool(0.15) {
        // The contract this one renewed: the baseline clauses only; it ended when the new one began.
        let old_effective = effective - rng.random_range(1..=2) * 365 * DAY;
        out.push(attestation(rng, options.seed, index, 1, seller_id, BASELINE.to_vec(), old_effective, effective));
    }
    let n = out.len() + 1;
    out.push(attestation(rng, options.seed, index, n, seller_id, clauses, effective, expire));
    // A contract not yet in effect was still signed already: the registry refuses a signed_time in
    // the future.
    for a in &mut out {
        if let Some(t) = a.signed_time.as_mut() {
            t.seconds = t.seconds.min(today);
        }
    }
    out
}

fn in_force(rng: &mut StdRng, today: i64) -> (i64, i64) {
    (today - rng.random_range(1..700) * DAY, today + rng.random_range(31..1100) * DAY)
}

#[allow(clippy::too_many_arguments)]
fn attestation(
    rng: &mut StdRng,
    seed: u64,
    index: u64,
    n: usize,
    seller_id: &str,
    clauses: Vec<Clause>,
    effective: i64,
    expire: i64,
) -> AttestationInput {
    use DataCategory as C;
    use Purpose as P;
    let mut purposes = vec![P::OrderFulfillment];
    let mut categories =
        vec![C::RecipientName, C::PhoneNumber, C::ShippingAddress, C::PlatformBuyerId, C::OrderContents];
    if rng.random_bool(0.75) {
        purposes.push(P::CustomsClearance);
        categories.push(C::CustomsCode);
        if rng.random_bool(0.5) {
            categories.push(C::DateOfBirth);
        }
    }
    if rng.random_bool(0.4) {
        purposes.push(P::CustomerSupport);
        categories.push(C::SupportMessages);
    }
    if rng.random_bool(0.5) {
        purposes.push(P::ReturnsRefunds);
    }
    if rng.random_bool(0.03) {
        // A contract that asks for more than the policy permits.
        categories.push(C::Email);
    }
    categories.sort_unstable_by_key(|c| c.number());
    // Unique per (seed, seller, contract): a stand-in for the SHA-256 of the signed PDF.
    let digest = Sha256::digest(format!("safeguard-generate:{seed}:{index}:{n}"));
    let year = 1970 + effective.div_euclid(365 * DAY + DAY / 4);
    let signed = effective - rng.random_range(1..30) * DAY - rng.random_range(0..DAY);
    AttestationInput {
        seller_id: seller_id.to_owned(),
        contract_ref: format!("DPA-{year}-{index:07}-{n}"),
        document_sha256: hex::encode(digest),
        clauses: clauses.into_iter().map(Vocab::number).collect(),
        purposes: purposes.into_iter().map(Vocab::number).collect(),
        categories: categories.into_iter().map(Vocab::number).collect(),
        signed_time: at(signed),
        effective_time: at(effective),
        expire_time: at(expire),
        signatory: format!("{}, {}", pick(rng, PEOPLE), pick(rng, TITLES)),
        retention_days: *pick(rng, &[0, 30, 60, 90, 90, 180]),
    }
}
