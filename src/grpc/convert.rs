//! Proto ⇄ domain, at the edge, once. A message is mapped onto the domain's plain input
//! ([`crate::domain::input`]), which validates it whole: every violation is reported with the field's
//! path, and nothing reaches the store unless all of it is valid. Only the mapping lives here.

use prost_types::Timestamp as PbTimestamp;

use crate::domain::input::{
    AttestationInput, SellerInput, SupervisionInput, SuspensionOrderInput, TimeInput, VerifyInput,
};
pub use crate::domain::input::{
    MAX_EMAIL, MAX_NAME, MAX_REASON, MAX_REF, MAX_REQUEST_ID, MAX_RETENTION_DAYS, MAX_SIGNED_TIME_SKEW_SECONDS, list,
    one, path, request_id, text,
};
use crate::domain::registry::{
    Attestation, AttestationFields, Seller, SellerFields, SupervisionFields, SuspensionOrderFields,
};
use crate::domain::verify::{Decided, VerifyRequest};
use crate::domain::{Timestamp, Violation, Vocab};
use crate::pb::v1 as pb;

fn time_input(t: Option<&PbTimestamp>) -> Option<TimeInput> {
    t.map(|t| TimeInput { seconds: t.seconds, nanos: t.nanos })
}

fn pb_time_input(t: Option<TimeInput>) -> Option<PbTimestamp> {
    t.map(|t| PbTimestamp { seconds: t.seconds, nanos: t.nanos })
}

/// A timestamp within the wire format's range (years 1 to 9999).
pub fn time(value: Option<&PbTimestamp>, field: &str) -> Result<Timestamp, Violation> {
    crate::domain::input::time(time_input(value), field)
}

/// A domain timestamp on the wire.
pub fn pb_time(t: Timestamp) -> Option<PbTimestamp> {
    let (seconds, nanos) = t.to_parts();
    Some(PbTimestamp { seconds, nanos })
}

/// A seller message as the domain's input.
pub fn seller_input(s: &pb::Seller) -> SellerInput {
    SellerInput {
        seller_id: s.seller_id.clone(),
        legal_name: s.legal_name.clone(),
        country: s.country.clone(),
        status: s.status,
        role: s.role,
        contact_email: s.contact_email.clone(),
        privacy_contact: s.privacy_contact.clone(),
        etag: s.etag.clone(),
    }
}

/// A seller input as the message a client sends (`safeguard import --grpc`).
pub fn pb_seller_input(s: SellerInput) -> pb::Seller {
    pb::Seller {
        seller_id: s.seller_id,
        legal_name: s.legal_name,
        country: s.country,
        status: s.status,
        role: s.role,
        contact_email: s.contact_email,
        privacy_contact: s.privacy_contact,
        etag: s.etag,
        ..Default::default()
    }
}

/// An attestation message as the domain's input; server-assigned fields are dropped.
pub fn attestation_input(a: &pb::Attestation) -> AttestationInput {
    AttestationInput {
        seller_id: a.seller_id.clone(),
        contract_ref: a.contract_ref.clone(),
        document_sha256: a.document_sha256.clone(),
        clauses: a.clauses.clone(),
        purposes: a.purposes.clone(),
        categories: a.categories.clone(),
        signed_time: time_input(a.signed_time.as_ref()),
        effective_time: time_input(a.effective_time.as_ref()),
        expire_time: time_input(a.expire_time.as_ref()),
        signatory: a.signatory.clone(),
        retention_days: a.retention_days,
    }
}

/// An attestation input as the message a client sends.
pub fn pb_attestation_input(a: AttestationInput) -> pb::Attestation {
    pb::Attestation {
        seller_id: a.seller_id,
        contract_ref: a.contract_ref,
        document_sha256: a.document_sha256,
        clauses: a.clauses,
        purposes: a.purposes,
        categories: a.categories,
        signed_time: pb_time_input(a.signed_time),
        effective_time: pb_time_input(a.effective_time),
        expire_time: pb_time_input(a.expire_time),
        signatory: a.signatory,
        retention_days: a.retention_days,
        ..Default::default()
    }
}

/// The fields legal writes of a seller. `status` UNSPECIFIED defaults to ACTIVE.
pub fn seller_fields(s: &pb::Seller, prefix: &str) -> Result<SellerFields, Vec<Violation>> {
    seller_input(s).validate(prefix)
}

/// The fields legal submits of an attestation; server-assigned fields are ignored.
pub fn attestation_fields(a: &pb::Attestation, prefix: &str) -> Result<AttestationFields, Vec<Violation>> {
    attestation_input(a).validate(prefix)
}

/// The fields of a suspension order.
pub fn order_fields(o: &pb::SuspensionOrder, prefix: &str) -> Result<SuspensionOrderFields, Vec<Violation>> {
    SuspensionOrderInput {
        order_ref: o.order_ref.clone(),
        seller_id: o.seller_id.clone(),
        country: o.country.clone(),
        categories: o.categories.clone(),
        effective_time: time_input(o.effective_time.as_ref()),
        note: o.note.clone(),
    }
    .validate(prefix)
}

/// The fields of supervision evidence.
pub fn supervision_fields(s: &pb::Supervision, prefix: &str) -> Result<SupervisionFields, Vec<Violation>> {
    SupervisionInput {
        seller_id: s.seller_id.clone(),
        kind: s.kind,
        time: time_input(s.time.as_ref()),
        evidence_sha256: s.evidence_sha256.clone(),
        note: s.note.clone(),
    }
    .validate(prefix)
}

/// A VerifySeller request. A missing basis is well formed (decided as BASIS_MISSING).
pub fn verify_request(r: &pb::VerifySellerRequest, prefix: &str) -> Result<VerifyRequest, Vec<Violation>> {
    VerifyInput {
        seller_id: r.seller_id.clone(),
        categories: r.categories.clone(),
        purpose: r.purpose,
        basis: r.basis,
        basis_evidence_ref: r.basis_evidence_ref.clone(),
        min_revision: r.min_revision,
    }
    .validate(prefix)
}

/// A seller on the wire.
pub fn pb_seller(s: &Seller) -> pb::Seller {
    pb::Seller {
        revision: s.revision,
        create_time: pb_time(s.create_time),
        update_time: pb_time(s.update_time),
        ..pb_seller_input(SellerInput::of(s))
    }
}

fn numbers<T: Vocab>(values: &[T]) -> Vec<i32> {
    values.iter().map(|v| v.number()).collect()
}

/// An attestation on the wire.
pub fn pb_attestation(a: &Attestation) -> pb::Attestation {
    pb::Attestation {
        attestation_id: a.attestation_id.clone(),
        state: a.state.number(),
        revoke_reason: a.revoke_reason.clone(),
        submitted_by: a.submitted_by.clone(),
        revision: a.revision,
        ..pb_attestation_input(AttestationInput::of(a))
    }
}

fn pb_reason(r: &crate::domain::verify::Reason) -> pb::Reason {
    pb::Reason { code: r.code.number(), clause: r.clause.map_or(0, Vocab::number), message: r.message().to_owned() }
}

/// A decision on the wire. The disclosure's text is moved out of `d` rather than copied: nothing
/// reads it after the answer (a decision record keeps the outcome and the reasons).
pub fn pb_decision(
    req: &VerifyRequest,
    d: &mut Decided,
    policy_version: &str,
    decision_id: String,
) -> pb::VerifySellerResponse {
    let disclosure = d.verdict.disclosure.take();
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
        disclosure: disclosure.map(|x| pb::Disclosure {
            recipient_legal_name: x.recipient_legal_name,
            recipient_contact: x.recipient_contact,
            country: x.country.to_string(),
            purpose: x.purpose.number(),
            categories: numbers(&v.allowed),
            retention_days: x.retention_days,
        }),
        seller_id: req.seller_id.to_string(),
        decision_time: pb_time(d.now),
    }
}

/// A seller item of an import: as [`seller_fields`], but an UNSPECIFIED status means "keep the
/// existing seller's status" rather than ACTIVE, and an etag, when given, must be current.
pub fn seller_import(s: &pb::Seller, prefix: &str) -> Result<crate::store::SellerImport, Vec<Violation>> {
    let input = seller_input(s);
    let fields = input.validate(prefix)?;
    Ok(crate::store::SellerImport { fields, status_given: input.status_given(), etag: input.etag() })
}
