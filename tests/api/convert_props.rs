//! Property tests of the proto → domain edge (`safeguard::grpc::convert`) over arbitrary messages:
//! it never panics, what it accepts honours the documented bounds, what it refuses names only fields
//! that exist in the message, and what is well formed is accepted.

use std::collections::BTreeSet;

use proptest::collection::vec;
use proptest::prelude::*;
use prost_types::Timestamp;
use safeguard::domain::{Timestamp as DomainTime, Vocab};
use safeguard::grpc::convert::{
    MAX_EMAIL, MAX_NAME, MAX_REF, MAX_RETENTION_DAYS, attestation_fields, seller_fields, verify_request,
};
use safeguard::pb::v1 as pb;

// ---- Strategies -------------------------------------------------------------------------------

/// Any string, biased towards the edges: empty, blank, near every length bound, the seller-id
/// alphabet, e-mail-like, multi-byte and control characters.
fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        " {1,3}",
        "[A-Za-z0-9._:-]{1,70}",
        "[A-Z]{2}",
        "[a-z]{2,3}",
        "[a-z]{0,6}@[a-z]{0,6}\\.?[a-z]{0,3}",
        "\\PC{0,24}",
        any::<String>(),
        "[a-z]{0,5}[\\x00-\\x1f\\x7f\\u{80}-\\u{9f}][a-z]{0,5}",
        "[a-z]{0,5}[\\u{61c}\\u{200b}-\\u{200f}\\u{2028}-\\u{202e}\\u{2060}-\\u{206f}\\u{feff}][a-z]{0,5}",
        (0usize..1100).prop_map(|n| "a".repeat(n)),
        (0usize..600).prop_map(|n| "한".repeat(n)),
    ]
}

/// Any enum number: mostly around the defined range, sometimes anything.
fn any_enum() -> impl Strategy<Value = i32> {
    prop_oneof![4 => -2i32..18, 1 => any::<i32>()]
}

fn any_list() -> impl Strategy<Value = Vec<i32>> {
    prop_oneof![vec(any_enum(), 0..18), vec(1i32..=14, 0..18)]
}

fn any_time() -> impl Strategy<Value = Option<Timestamp>> {
    let seconds = prop_oneof![
        any::<i64>(),
        -62_135_596_900i64..253_402_300_900,
        1_600_000_000i64..1_900_000_000,
        Just(i64::MAX),
        Just(i64::MIN),
        Just(253_402_300_799i64),
        Just(-62_135_596_800i64),
    ];
    let nanos = prop_oneof![0i32..1_000_000_000, any::<i32>(), Just(-1), Just(1_000_000_000), Just(999_999_999)];
    proptest::option::weighted(0.9, (seconds, nanos).prop_map(|(seconds, nanos)| Timestamp { seconds, nanos }))
}

fn valid_id() -> impl Strategy<Value = String> {
    "[A-Za-z0-9._:-]{1,64}"
}

fn valid_name() -> impl Strategy<Value = String> {
    // Printable (no Unicode "Other"), and neither a line nor a paragraph separator.
    "[A-Za-z][\\PC&&[^\\u{2028}\\u{2029}]]{0,40}"
}

fn valid_email() -> impl Strategy<Value = String> {
    "[a-z0-9.]{0,8}[a-z]@[a-z]{1,10}\\.[a-z]{2,4}"
}

fn valid_country() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["CN", "US", "KR", "DE", "JP", "VN", "GB", "SG"]).prop_map(str::to_owned)
}

fn valid_list(max: i32) -> impl Strategy<Value = Vec<i32>> {
    prop::sample::subsequence((1..=max).collect::<Vec<_>>(), 1..=max as usize).prop_shuffle()
}

/// Either a valid value (usually) or anything at all.
fn mostly<T: std::fmt::Debug + Clone + 'static>(
    valid: impl Strategy<Value = T> + 'static,
    any: impl Strategy<Value = T> + 'static,
) -> BoxedStrategy<T> {
    prop_oneof![4 => valid, 1 => any].boxed()
}

fn a_prefix() -> impl Strategy<Value = String> {
    prop_oneof![Just(String::new()), Just("seller".to_owned()), "requests\\[[0-9]{1,2}\\]"]
}

fn seller_from(
    (seller_id, legal_name, country, status, role, contact_email, privacy_contact, etag): (
        String,
        String,
        String,
        i32,
        i32,
        String,
        String,
        String,
    ),
) -> pb::Seller {
    pb::Seller {
        seller_id,
        legal_name,
        country,
        status,
        role,
        contact_email,
        privacy_contact,
        etag,
        revision: 7,
        ..Default::default()
    }
}

fn arb_seller() -> impl Strategy<Value = pb::Seller> {
    (
        mostly(valid_id(), any_text()),
        mostly(valid_name(), any_text()),
        mostly(valid_country(), any_text()),
        mostly(0i32..=3, any_enum()),
        mostly(1i32..=2, any_enum()),
        mostly(valid_email(), any_text()),
        mostly(valid_name(), any_text()),
        any_text(),
    )
        .prop_map(seller_from)
}

fn valid_seller() -> impl Strategy<Value = pb::Seller> {
    (valid_id(), valid_name(), valid_country(), 0i32..=3, 1i32..=2, valid_email(), valid_name(), any_text())
        .prop_map(seller_from)
}

fn valid_sha() -> impl Strategy<Value = String> {
    "[0-9a-fA-F]{64}"
}

/// Seconds since the epoch, now.
fn now_seconds() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

/// In force for a while: seconds in 1970..2100, effective strictly before expire, signed a day
/// before taking effect or today, whichever is earlier (a contract is never signed in the future).
fn valid_times() -> impl Strategy<Value = (Option<Timestamp>, Option<Timestamp>, Option<Timestamp>)> {
    (0i64..4_000_000_000, 1i64..1_000_000_000, 0i32..1_000_000_000, 0i32..1_000_000_000).prop_map(
        |(from, span, n1, n2)| {
            let t = |seconds, nanos| Some(Timestamp { seconds, nanos });
            (t((from - 86_400).min(now_seconds()), 0), t(from, n1), t(from + span, n2))
        },
    )
}

type AttestationParts = (
    (String, String, String, String),
    (Vec<i32>, Vec<i32>, Vec<i32>),
    (Option<Timestamp>, Option<Timestamp>, Option<Timestamp>),
    u32,
);

fn attestation_from(
    (
        (seller_id, contract_ref, document_sha256, signatory),
        (clauses, purposes, categories),
        (signed, effective, expire),
        retention_days,
    ): AttestationParts,
) -> pb::Attestation {
    pb::Attestation {
        attestation_id: "ignored".into(),
        seller_id,
        contract_ref,
        document_sha256,
        clauses,
        purposes,
        categories,
        signed_time: signed,
        effective_time: effective,
        expire_time: expire,
        signatory,
        retention_days,
        state: 2,
        submitted_by: "ignored".into(),
        ..Default::default()
    }
}

fn arb_attestation() -> impl Strategy<Value = pb::Attestation> {
    (
        (
            mostly(valid_id(), any_text()),
            mostly(valid_name(), any_text()),
            mostly(valid_sha(), any_text()),
            mostly(valid_name(), any_text()),
        ),
        (mostly(valid_list(14), any_list()), mostly(valid_list(5), any_list()), mostly(valid_list(13), any_list())),
        prop_oneof![
            4 => valid_times(),
            1 => (any_time(), any_time(), any_time()),
            // The edges of the validity window: expiring as it takes effect, or before.
            1 => valid_times().prop_map(|(s, e, _)| (s, e, e)),
            1 => valid_times().prop_map(|(s, e, x)| (s, x, e)),
        ],
        prop_oneof![0u32..=MAX_RETENTION_DAYS, any::<u32>()],
    )
        .prop_map(attestation_from)
}

fn valid_attestation() -> impl Strategy<Value = pb::Attestation> {
    (
        (valid_id(), valid_name(), valid_sha(), valid_name()),
        (valid_list(14), valid_list(5), valid_list(13)),
        valid_times(),
        0u32..=MAX_RETENTION_DAYS,
    )
        .prop_map(attestation_from)
}

fn arb_verify() -> impl Strategy<Value = pb::VerifySellerRequest> {
    (
        mostly(valid_id(), any_text()),
        mostly(valid_list(13), any_list()),
        mostly(1i32..=5, any_enum()),
        mostly(0i32..=5, any_enum()),
        mostly("[A-Za-z0-9-]{0,40}", any_text()),
        mostly(0i64..1_000_000, any::<i64>()),
    )
        .prop_map(|(seller_id, categories, purpose, basis, basis_evidence_ref, min_revision)| {
            pb::VerifySellerRequest { seller_id, categories, purpose, basis, basis_evidence_ref, min_revision }
        })
}

fn valid_verify() -> impl Strategy<Value = pb::VerifySellerRequest> {
    (valid_id(), valid_list(13), 1i32..=5, 0i32..=5, "[A-Za-z0-9 -]{0,40}", 0i64..=i64::MAX).prop_map(
        |(seller_id, categories, purpose, basis, basis_evidence_ref, min_revision)| pb::VerifySellerRequest {
            seller_id,
            categories,
            purpose,
            basis,
            basis_evidence_ref,
            min_revision,
        },
    )
}

// ---- Oracles ----------------------------------------------------------------------------------

fn at(prefix: &str, field: &str) -> String {
    if prefix.is_empty() { field.to_owned() } else { format!("{prefix}.{field}") }
}

/// The paths a violation may name: the message's scalar fields, its lists, and their elements.
fn paths(prefix: &str, scalars: &[&str], lists: &[(&str, usize)]) -> BTreeSet<String> {
    let mut all: BTreeSet<String> = scalars.iter().map(|f| at(prefix, f)).collect();
    for (list, len) in lists {
        all.insert(at(prefix, list));
        all.extend((0..*len).map(|i| at(prefix, &format!("{list}[{i}]"))));
    }
    all
}

fn is_seller_id(s: &str) -> bool {
    (1..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b".-_:".contains(&b))
}

/// Characters that hide or reorder displayed text: bidi controls, zero-width and invisible
/// characters, line and paragraph separators (listed here independently of the code under test).
fn is_hidden(c: char) -> bool {
    let c = u32::from(c);
    c == 0x61C
        || (0x200B..=0x200F).contains(&c)
        || (0x2028..=0x202E).contains(&c)
        || (0x2060..=0x206F).contains(&c)
        || c == 0xFEFF
        || (0xFFF9..=0xFFFB).contains(&c)
        || (0xE0000..=0xE007F).contains(&c)
}

/// Required free text within `max` characters, without control or hidden characters.
fn is_text(s: &str, max: usize) -> bool {
    !s.trim().is_empty() && s.chars().count() <= max && !s.chars().any(|c| c.is_control() || is_hidden(c))
}

fn is_country(s: &str) -> bool {
    s.len() == 2 && s.bytes().all(|b| b.is_ascii_uppercase())
}

fn distinct<T: Ord>(items: &[T]) -> bool {
    items.iter().collect::<BTreeSet<_>>().len() == items.len()
}

fn micros(t: &Option<Timestamp>) -> Option<i64> {
    t.as_ref().map(|t| t.seconds * 1_000_000 + i64::from(t.nanos / 1000))
}

fn check_paths(fields: &[String], allowed: &BTreeSet<String>) -> Result<(), TestCaseError> {
    prop_assert!(!fields.is_empty(), "an Err without a violation");
    for f in fields {
        prop_assert!(allowed.contains(f), "violation names {f:?}, which is not a field of the message: {allowed:?}");
    }
    Ok(())
}

fn check_seller(s: &pb::Seller, prefix: &str) -> Result<(), TestCaseError> {
    match seller_fields(s, prefix) {
        Ok(f) => {
            prop_assert!(is_seller_id(f.seller_id.as_str()));
            prop_assert_eq!(f.seller_id.as_str(), s.seller_id.as_str());
            prop_assert!(is_country(&f.country.to_string()));
            prop_assert_eq!(f.country.to_string(), s.country.clone());
            prop_assert!(is_text(&f.legal_name, MAX_NAME));
            prop_assert_eq!(&f.legal_name, &s.legal_name);
            prop_assert!(is_text(&f.privacy_contact, MAX_NAME));
            prop_assert!(is_text(&f.contact_email, MAX_EMAIL));
            prop_assert!(f.contact_email.contains('@') && !f.contact_email.contains(char::is_whitespace));
            prop_assert_eq!(f.status.number(), if s.status == 0 { 1 } else { s.status });
            prop_assert_eq!(f.role.number(), s.role);
        }
        Err(vs) => {
            let fields: Vec<String> = vs.into_iter().map(|v| v.field).collect();
            let allowed = paths(
                prefix,
                &["seller_id", "legal_name", "country", "status", "role", "contact_email", "privacy_contact"],
                &[],
            );
            check_paths(&fields, &allowed)?;
        }
    }
    Ok(())
}

fn check_attestation(a: &pb::Attestation, prefix: &str) -> Result<(), TestCaseError> {
    match attestation_fields(a, prefix) {
        Ok(f) => {
            prop_assert!(is_seller_id(f.seller_id.as_str()));
            prop_assert!(is_text(&f.contract_ref, MAX_REF));
            prop_assert!(is_text(&f.signatory, MAX_NAME));
            let sha = f.document_sha256.as_str();
            prop_assert!(sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
            prop_assert_eq!(sha, a.document_sha256.to_ascii_lowercase());
            let clauses: Vec<i32> = f.clauses.iter().map(|c| c.number()).collect();
            let purposes: Vec<i32> = f.purposes.iter().map(|p| p.number()).collect();
            let categories: Vec<i32> = f.categories.iter().map(|c| c.number()).collect();
            for (got, sent) in [(&clauses, &a.clauses), (&purposes, &a.purposes), (&categories, &a.categories)] {
                prop_assert!(!got.is_empty() && distinct(got));
                prop_assert_eq!(got, sent);
            }
            prop_assert!(f.effective_time < f.expire_time);
            prop_assert!(f.signed_time.as_micros() <= (now_seconds() + 61) * 1_000_000, "signed in the future");
            for (t, sent) in [
                (f.signed_time, &a.signed_time),
                (f.effective_time, &a.effective_time),
                (f.expire_time, &a.expire_time),
            ] {
                prop_assert!((DomainTime::MIN..=DomainTime::MAX).contains(&t));
                prop_assert_eq!(Some(t.as_micros()), micros(sent));
            }
            prop_assert!(f.retention_days <= MAX_RETENTION_DAYS);
            prop_assert_eq!(f.retention_days, a.retention_days);
        }
        Err(vs) => {
            let fields: Vec<String> = vs.into_iter().map(|v| v.field).collect();
            let allowed = paths(
                prefix,
                &[
                    "seller_id",
                    "contract_ref",
                    "document_sha256",
                    "signed_time",
                    "effective_time",
                    "expire_time",
                    "signatory",
                    "retention_days",
                ],
                &[("clauses", a.clauses.len()), ("purposes", a.purposes.len()), ("categories", a.categories.len())],
            );
            check_paths(&fields, &allowed)?;
        }
    }
    Ok(())
}

fn check_verify(r: &pb::VerifySellerRequest, prefix: &str) -> Result<(), TestCaseError> {
    match verify_request(r, prefix) {
        Ok(q) => {
            prop_assert!(is_seller_id(q.seller_id.as_str()));
            prop_assert_eq!(q.seller_id.as_str(), r.seller_id.as_str());
            let categories: Vec<i32> = q.categories.iter().map(|c| c.number()).collect();
            prop_assert!(!categories.is_empty() && distinct(&categories));
            prop_assert_eq!(&categories, &r.categories);
            prop_assert_eq!(q.purpose.number(), r.purpose);
            prop_assert_eq!(q.basis.map_or(0, |b| b.number()), r.basis);
            prop_assert!(q.basis_evidence_ref.chars().count() <= MAX_REF);
            prop_assert!(!q.basis_evidence_ref.chars().any(|c| c.is_control() || is_hidden(c)));
            prop_assert!(q.min_revision >= 0);
            prop_assert_eq!(q.min_revision, r.min_revision);
        }
        Err(vs) => {
            let fields: Vec<String> = vs.into_iter().map(|v| v.field).collect();
            let allowed = paths(
                prefix,
                &["seller_id", "purpose", "basis", "basis_evidence_ref", "min_revision"],
                &[("categories", r.categories.len())],
            );
            check_paths(&fields, &allowed)?;
        }
    }
    Ok(())
}

// ---- Properties -------------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn seller_fields_accepts_only_bounded_values_and_names_only_real_fields(s in arb_seller(), prefix in a_prefix()) {
        check_seller(&s, &prefix)?;
    }

    #[test]
    fn attestation_fields_accepts_only_bounded_values_and_names_only_real_fields(
        a in arb_attestation(),
        prefix in a_prefix(),
    ) {
        check_attestation(&a, &prefix)?;
    }

    #[test]
    fn verify_request_accepts_only_bounded_values_and_names_only_real_fields(
        r in arb_verify(),
        prefix in a_prefix(),
    ) {
        check_verify(&r, &prefix)?;
    }

    #[test]
    fn well_formed_sellers_are_accepted(s in valid_seller()) {
        let r = seller_fields(&s, "seller");
        prop_assert!(r.is_ok(), "{:?} refused: {:?}", s, r.err());
        check_seller(&s, "seller")?;
    }

    #[test]
    fn well_formed_attestations_are_accepted(a in valid_attestation()) {
        let r = attestation_fields(&a, "attestation");
        prop_assert!(r.is_ok(), "{:?} refused: {:?}", a, r.err());
        check_attestation(&a, "attestation")?;
    }

    #[test]
    fn well_formed_verify_requests_are_accepted(r in valid_verify()) {
        let got = verify_request(&r, "requests[0]");
        prop_assert!(got.is_ok(), "{:?} refused: {:?}", r, got.err());
        check_verify(&r, "requests[0]")?;
    }
}

/// The arbitrary strategies reach both outcomes often enough for the properties above to mean
/// something: a generator that only ever produced invalid messages would pass them vacuously.
#[test]
fn the_arbitrary_strategies_reach_both_outcomes() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let count = |ok: &mut [usize; 2], accepted: bool| ok[usize::from(accepted)] += 1;
    let (mut s, mut a, mut v) = ([0; 2], [0; 2], [0; 2]);
    for _ in 0..2_000 {
        let seller = arb_seller().new_tree(&mut runner).unwrap().current();
        count(&mut s, seller_fields(&seller, "").is_ok());
        let att = arb_attestation().new_tree(&mut runner).unwrap().current();
        count(&mut a, attestation_fields(&att, "").is_ok());
        let req = arb_verify().new_tree(&mut runner).unwrap().current();
        count(&mut v, verify_request(&req, "").is_ok());
    }
    for (what, [refused, accepted]) in [("seller", s), ("attestation", a), ("verify", v)] {
        assert!(refused >= 100 && accepted >= 100, "{what}: {accepted} accepted, {refused} refused of 2000");
    }
}
