//! The one validator of what people and clients write: plain-Rust inputs (text, vocabulary numbers,
//! second/nanosecond times, exactly as the wire carries them) in, validated domain values out.
//! gRPC maps its messages onto these inputs, the CLI its file rows, the console its forms, so a
//! value is accepted or refused with the same words wherever it comes from. Every fault of an input
//! is reported at once, each naming its field by the path the API uses (`seller.country`,
//! `attestation.clauses[2]`); nothing reaches the store unless all of it is valid.
//!
//! `seller`: sellers and the one `SellerPatch`; `contract`: attestations, suspension orders,
//! supervision evidence and verification requests.

mod contract;
mod seller;

pub use contract::{AttestationInput, SupervisionInput, SuspensionOrderInput, VerifyInput};
pub use seller::{SellerField, SellerInput, SellerPatch};

use super::ids::check_display_text;
use super::{Country, DocumentSha256, Timestamp, Violation, Violations, Vocab};

/// Bounds on free-text fields (characters).
pub const MAX_NAME: usize = 512;
pub const MAX_EMAIL: usize = 320;
pub const MAX_REF: usize = 256;
pub const MAX_REASON: usize = 1024;
pub const MAX_REQUEST_ID: usize = 128;
/// Longest server-assigned id (attestation, order) a client may name.
pub const MAX_ID: usize = 64;
/// Bound on a contract's own retention: 100 years.
pub const MAX_RETENTION_DAYS: u32 = 36_500;

/// How far in the future a contract's `signed_time` may lie: the submitting client's clock may run
/// ahead of ours by this much. Beyond it the contract is not signed yet, and an attestation of an
/// unsigned contract must never become a basis for ALLOW.
pub const MAX_SIGNED_TIME_SKEW_SECONDS: i64 = 60;

/// `prefix.field`, or `field` at the top level.
pub fn path(prefix: &str, field: &str) -> String {
    if prefix.is_empty() { field.to_owned() } else { format!("{prefix}.{field}") }
}

/// A time as the wire carries it: not yet known to be in range.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeInput {
    pub seconds: i64,
    pub nanos: i32,
}

impl From<Timestamp> for TimeInput {
    fn from(t: Timestamp) -> Self {
        let (seconds, nanos) = t.to_parts();
        Self { seconds, nanos }
    }
}

/// A required or optional bounded string, free of control, invisible and bidi formatting
/// characters ([`check_display_text`]): free text here is shown to buyers, legal and auditors.
pub fn text(value: &str, field: &str, max: usize, required: bool) -> Result<String, Violation> {
    if required && value.trim().is_empty() {
        return Err(Violation::new(field, "must not be empty"));
    }
    if value.chars().count() > max {
        return Err(Violation::new(field, format!("must be at most {max} characters")));
    }
    check_display_text(value).map_err(|why| Violation::new(field, why))?;
    Ok(value.to_owned())
}

/// An optional request id: a retried write with the same id is applied once.
pub fn request_id(value: &str) -> Result<Option<String>, Violation> {
    let id = text(value, "request_id", MAX_REQUEST_ID, false)?;
    Ok((!id.is_empty()).then_some(id))
}

/// A required enum value: not UNSPECIFIED, and a number the contract defines.
pub fn one<T: Vocab>(value: i32, field: &str) -> Result<T, Violation> {
    if value == 0 {
        return Err(Violation::new(field, "must be specified"));
    }
    T::from_number(value).ok_or_else(|| Violation::new(field, format!("{value} is not a known {}", T::KIND)))
}

/// A list of enum values: each valid, none repeated, at least one when `required`.
pub fn list<T: Vocab>(values: &[i32], field: &str, required: bool, out: &mut Violations) -> Vec<T> {
    if required && values.is_empty() {
        out.push(Violation::new(field, "must list at least one value"));
    }
    if values.len() > T::ALL.len() {
        out.push(Violation::new(field, format!("must list at most {} values", T::ALL.len())));
        return Vec::new();
    }
    let mut seen = Vec::with_capacity(values.len());
    // The field path is formatted only for a violation: this runs for every VerifySeller.
    let at = |i: usize| format!("{field}[{i}]");
    for (i, &v) in values.iter().enumerate() {
        match T::from_number(v).filter(|_| v != 0) {
            Some(value) if seen.contains(&value) => {
                out.push(Violation::new(at(i), format!("repeats {}", value.name())))
            }
            Some(value) => seen.push(value),
            None => {
                if let Err(violation) = one::<T>(v, &at(i)) {
                    out.push(violation);
                }
            }
        }
    }
    seen
}

/// A timestamp within the wire format's range (years 1 to 9999).
pub fn time(value: Option<TimeInput>, field: &str) -> Result<Timestamp, Violation> {
    let t = value.ok_or_else(|| Violation::new(field, "must be set"))?;
    Timestamp::from_parts(t.seconds, t.nanos)
        .ok_or_else(|| Violation::new(field, "must be between 0001-01-01 and 9999-12-31 with nanos in 0..1e9"))
}

pub(super) fn country(value: &str, field: &str) -> Result<Country, Violation> {
    Country::parse(value).map_err(|why| Violation::new(field, why))
}

pub(super) fn email(value: &str, field: &str) -> Result<String, Violation> {
    let e = text(value, field, MAX_EMAIL, true)?;
    match e.split_once('@') {
        Some((local, domain)) if !local.is_empty() && domain.contains('.') && !e.contains(char::is_whitespace) => Ok(e),
        _ => Err(Violation::new(field, "must be an email address")),
    }
}

pub(super) fn sha256(value: &str, field: &str) -> Result<DocumentSha256, Violation> {
    DocumentSha256::parse(value).map_err(|why| Violation::new(field, why))
}

/// A required server-assigned id (`attestation_id`, `order_id`) and a required reason: what a
/// revoke or a lift names. Both faults are reported together.
pub fn id_and_reason(id: &str, id_field: &str, reason: &str) -> Result<(String, String), Vec<Violation>> {
    let mut v = Violations::new();
    let id = v.check(text(id, id_field, MAX_ID, true));
    let reason = v.check(text(reason, "reason", MAX_REASON, true));
    match (id, reason) {
        (Some(id), Some(reason)) if v.is_empty() => Ok((id, reason)),
        _ => Err(v.into_vec()),
    }
}
