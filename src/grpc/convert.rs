//! Proto ⇄ domain, at the edge, once. Requests are validated whole: every violation is reported with
//! the field's path, and nothing reaches the store unless all of it is valid.

use prost_types::Timestamp as PbTimestamp;

use crate::domain::ids::check_display_text;
use crate::domain::registry::{Attestation, AttestationFields, Seller, SellerFields};
use crate::domain::verify::{Decided, VerifyRequest};
use crate::domain::{Country, DocumentSha256, SellerId, SellerStatus, Timestamp, Violation, Violations, Vocab};
use crate::pb::v1 as pb;

/// Bounds on free-text fields (characters).
pub const MAX_NAME: usize = 512;
pub const MAX_EMAIL: usize = 320;
pub const MAX_REF: usize = 256;
pub const MAX_REASON: usize = 1024;
pub const MAX_REQUEST_ID: usize = 128;
/// Bound on a contract's own retention: 100 years.
pub const MAX_RETENTION_DAYS: u32 = 36_500;

/// `prefix.field`, or `field` at the top level.
pub fn path(prefix: &str, field: &str) -> String {
    if prefix.is_empty() { field.to_owned() } else { format!("{prefix}.{field}") }
}

/// How far in the future a contract's `signed_time` may lie: the submitting client's clock may run
/// ahead of ours by this much. Beyond it the contract is not signed yet, and an attestation of an
/// unsigned contract must never become a basis for ALLOW.
pub const MAX_SIGNED_TIME_SKEW_SECONDS: i64 = 60;

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
    for (i, &v) in values.iter().enumerate() {
        let at = format!("{field}[{i}]");
        if let Some(value) = out.check(one::<T>(v, &at)) {
            if seen.contains(&value) {
                out.push(Violation::new(at, format!("repeats {}", value.name())));
            } else {
                seen.push(value);
            }
        }
    }
    seen
}

/// A timestamp within the wire format's range (years 1 to 9999).
pub fn time(value: Option<&PbTimestamp>, field: &str) -> Result<Timestamp, Violation> {
    let t = value.ok_or_else(|| Violation::new(field, "must be set"))?;
    Timestamp::from_parts(t.seconds, t.nanos)
        .ok_or_else(|| Violation::new(field, "must be between 0001-01-01 and 9999-12-31 with nanos in 0..1e9"))
}

/// A domain timestamp on the wire.
pub fn pb_time(t: Timestamp) -> Option<PbTimestamp> {
    let (seconds, nanos) = t.to_parts();
    Some(PbTimestamp { seconds, nanos })
}

fn country(value: &str, field: &str) -> Result<Country, Violation> {
    Country::parse(value).map_err(|why| Violation::new(field, why))
}

/// The fields legal writes of a seller. `status` UNSPECIFIED defaults to ACTIVE.
pub fn seller_fields(s: &pb::Seller, prefix: &str) -> Result<SellerFields, Vec<Violation>> {
    let mut v = Violations::new();
    let seller_id = v.check(SellerId::parse_field(&s.seller_id, &path(prefix, "seller_id")));
    let legal_name = v.check(text(&s.legal_name, &path(prefix, "legal_name"), MAX_NAME, true));
    let country = v.check(country(&s.country, &path(prefix, "country")));
    let status =
        if s.status == 0 { Some(SellerStatus::Active) } else { v.check(one(s.status, &path(prefix, "status"))) };
    let role = v.check(one(s.role, &path(prefix, "role")));
    let contact_email = v.check(email(&s.contact_email, &path(prefix, "contact_email")));
    let privacy_contact = v.check(text(&s.privacy_contact, &path(prefix, "privacy_contact"), MAX_NAME, true));
    match (seller_id, legal_name, country, status, role, contact_email, privacy_contact) {
        (
            Some(seller_id),
            Some(legal_name),
            Some(country),
            Some(status),
            Some(role),
            Some(contact_email),
            Some(privacy_contact),
        ) if v.is_empty() => {
            Ok(SellerFields { seller_id, legal_name, country, status, role, contact_email, privacy_contact })
        }
        _ => Err(v.into_vec()),
    }
}

fn email(value: &str, field: &str) -> Result<String, Violation> {
    let e = text(value, field, MAX_EMAIL, true)?;
    match e.split_once('@') {
        Some((local, domain)) if !local.is_empty() && domain.contains('.') && !e.contains(char::is_whitespace) => Ok(e),
        _ => Err(Violation::new(field, "must be an email address")),
    }
}

/// The fields legal submits of an attestation; server-assigned fields are ignored. A `signed_time`
/// more than [`MAX_SIGNED_TIME_SKEW_SECONDS`] ahead of now is refused: the contract is not signed.
pub fn attestation_fields(a: &pb::Attestation, prefix: &str) -> Result<AttestationFields, Vec<Violation>> {
    let now = Timestamp::now();
    let mut v = Violations::new();
    let seller_id = v.check(SellerId::parse_field(&a.seller_id, &path(prefix, "seller_id")));
    let contract_ref = v.check(text(&a.contract_ref, &path(prefix, "contract_ref"), MAX_REF, true));
    let document_sha256 = v.check(
        DocumentSha256::parse(&a.document_sha256).map_err(|why| Violation::new(path(prefix, "document_sha256"), why)),
    );
    let clauses = list(&a.clauses, &path(prefix, "clauses"), true, &mut v);
    let purposes = list(&a.purposes, &path(prefix, "purposes"), true, &mut v);
    let categories = list(&a.categories, &path(prefix, "categories"), true, &mut v);
    let signed_time = v.check(time(a.signed_time.as_ref(), &path(prefix, "signed_time")).and_then(|t| {
        if t > now.plus_seconds(MAX_SIGNED_TIME_SKEW_SECONDS) {
            Err(Violation::new(
                path(prefix, "signed_time"),
                "must not be in the future: the contract is not signed yet",
            ))
        } else {
            Ok(t)
        }
    }));
    let effective_time = v.check(time(a.effective_time.as_ref(), &path(prefix, "effective_time")));
    let expire_time = v.check(time(a.expire_time.as_ref(), &path(prefix, "expire_time")));
    if let (Some(from), Some(until)) = (effective_time, expire_time)
        && from >= until
    {
        v.push(Violation::new(path(prefix, "expire_time"), "must be after effective_time"));
    }
    let signatory = v.check(text(&a.signatory, &path(prefix, "signatory"), MAX_NAME, true));
    if a.retention_days > MAX_RETENTION_DAYS {
        v.push(Violation::new(path(prefix, "retention_days"), format!("must be at most {MAX_RETENTION_DAYS}")));
    }
    match (seller_id, contract_ref, document_sha256, signed_time, effective_time, expire_time, signatory) {
        (
            Some(seller_id),
            Some(contract_ref),
            Some(document_sha256),
            Some(signed_time),
            Some(effective_time),
            Some(expire_time),
            Some(signatory),
        ) if v.is_empty() => Ok(AttestationFields {
            seller_id,
            contract_ref,
            document_sha256,
            clauses,
            purposes,
            categories,
            signed_time,
            effective_time,
            expire_time,
            signatory,
            retention_days: a.retention_days,
        }),
        _ => Err(v.into_vec()),
    }
}

/// A VerifySeller request. A missing basis is well formed (decided as BASIS_MISSING).
pub fn verify_request(r: &pb::VerifySellerRequest, prefix: &str) -> Result<VerifyRequest, Vec<Violation>> {
    let mut v = Violations::new();
    let seller_id = v.check(SellerId::parse_field(&r.seller_id, &path(prefix, "seller_id")));
    let categories = list(&r.categories, &path(prefix, "categories"), true, &mut v);
    let purpose = v.check(one(r.purpose, &path(prefix, "purpose")));
    let basis = if r.basis == 0 { None } else { v.check(one(r.basis, &path(prefix, "basis"))) };
    let evidence = v.check(text(&r.basis_evidence_ref, &path(prefix, "basis_evidence_ref"), MAX_REF, false));
    if r.min_revision < 0 {
        v.push(Violation::new(path(prefix, "min_revision"), "must not be negative"));
    }
    match (seller_id, purpose, evidence) {
        (Some(seller_id), Some(purpose), Some(basis_evidence_ref)) if v.is_empty() => Ok(VerifyRequest {
            seller_id,
            categories,
            purpose,
            basis,
            basis_evidence_ref,
            min_revision: r.min_revision,
        }),
        _ => Err(v.into_vec()),
    }
}

/// A seller on the wire.
pub fn pb_seller(s: &Seller) -> pb::Seller {
    pb::Seller {
        seller_id: s.seller_id.to_string(),
        legal_name: s.legal_name.clone(),
        country: s.country.to_string(),
        status: s.status.number(),
        role: s.role.number(),
        contact_email: s.contact_email.clone(),
        privacy_contact: s.privacy_contact.clone(),
        etag: s.etag(),
        revision: s.revision,
        create_time: pb_time(s.create_time),
        update_time: pb_time(s.update_time),
    }
}

fn numbers<T: Vocab>(values: &[T]) -> Vec<i32> {
    values.iter().map(|v| v.number()).collect()
}

/// An attestation on the wire.
pub fn pb_attestation(a: &Attestation) -> pb::Attestation {
    pb::Attestation {
        attestation_id: a.attestation_id.clone(),
        seller_id: a.seller_id.to_string(),
        contract_ref: a.contract_ref.clone(),
        document_sha256: a.document_sha256.as_str().to_owned(),
        clauses: numbers(&a.clauses),
        purposes: numbers(&a.purposes),
        categories: numbers(&a.categories),
        signed_time: pb_time(a.signed_time),
        effective_time: pb_time(a.effective_time),
        expire_time: pb_time(a.expire_time),
        signatory: a.signatory.clone(),
        retention_days: a.retention_days,
        state: a.state.number(),
        revoke_reason: a.revoke_reason.clone(),
        submitted_by: a.submitted_by.clone(),
        revision: a.revision,
    }
}

fn pb_reason(r: &crate::domain::verify::Reason) -> pb::Reason {
    pb::Reason { code: r.code.number(), clause: r.clause.map_or(0, Vocab::number), message: r.message().to_owned() }
}

/// A decision on the wire.
pub fn pb_decision(
    req: &VerifyRequest,
    d: &Decided,
    policy_version: &str,
    decision_id: String,
) -> pb::VerifySellerResponse {
    let v = &d.verdict;
    pb::VerifySellerResponse {
        decision: v.decision.number(),
        allowed_categories: numbers(&v.allowed),
        denied_categories: v
            .denied
            .iter()
            .map(|(c, reasons)| pb::CategoryDenial {
                category: c.number(),
                reasons: reasons.iter().map(pb_reason).collect(),
            })
            .collect(),
        reasons: v.reasons.iter().map(pb_reason).collect(),
        revision: d.revision,
        policy_version: policy_version.to_owned(),
        decision_id,
        valid_until: pb_time(v.valid_until),
        retention_days: v.retention_days,
        attestation_ids: v.attestation_ids.iter().map(|id| id.to_string()).collect(),
        disclosure: v.disclosure.as_ref().map(|x| pb::Disclosure {
            recipient_legal_name: x.recipient_legal_name.clone(),
            recipient_contact: x.recipient_contact.clone(),
            country: x.country.to_string(),
            purpose: x.purpose.number(),
            categories: numbers(&x.categories),
            retention_days: x.retention_days,
        }),
        seller_id: req.seller_id.to_string(),
        decision_time: pb_time(d.now),
    }
}

/// A seller item of an import: as [`seller_fields`], but an UNSPECIFIED status means "keep the
/// existing seller's status" rather than ACTIVE, and an etag, when given, must be current.
pub fn seller_import(s: &pb::Seller, prefix: &str) -> Result<crate::store::SellerImport, Vec<Violation>> {
    let fields = seller_fields(s, prefix)?;
    Ok(crate::store::SellerImport {
        fields,
        status_given: s.status != 0,
        etag: (!s.etag.is_empty()).then(|| s.etag.clone()),
    })
}
