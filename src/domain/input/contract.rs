//! Contracts and oversight as written: attestations, suspension orders, supervision evidence, and
//! verification requests.

use super::{
    MAX_NAME, MAX_REASON, MAX_REF, MAX_RETENTION_DAYS, MAX_SIGNED_TIME_SKEW_SECONDS, TimeInput, country, list, one,
    path, sha256, text, time,
};
use crate::domain::registry::{Attestation, AttestationFields, SupervisionFields, SuspensionOrderFields};
use crate::domain::verify::{SuspensionScope, VerifyRequest};
use crate::domain::{SellerId, Timestamp, Violation, Violations, Vocab};

/// An attestation as submitted; the server assigns the rest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttestationInput {
    pub seller_id: String,
    pub contract_ref: String,
    pub document_sha256: String,
    pub clauses: Vec<i32>,
    pub purposes: Vec<i32>,
    pub categories: Vec<i32>,
    pub signed_time: Option<TimeInput>,
    pub effective_time: Option<TimeInput>,
    pub expire_time: Option<TimeInput>,
    pub signatory: String,
    pub retention_days: u32,
}

fn numbers<T: Vocab>(values: &[T]) -> Vec<i32> {
    values.iter().map(|v| v.number()).collect()
}

impl AttestationInput {
    /// A recorded attestation's submitted fields, as an input.
    pub fn of(a: &Attestation) -> Self {
        Self {
            seller_id: a.seller_id.to_string(),
            contract_ref: a.contract_ref.clone(),
            document_sha256: a.document_sha256.as_str().to_owned(),
            clauses: numbers(&a.clauses),
            purposes: numbers(&a.purposes),
            categories: numbers(&a.categories),
            signed_time: Some(a.signed_time.into()),
            effective_time: Some(a.effective_time.into()),
            expire_time: Some(a.expire_time.into()),
            signatory: a.signatory.clone(),
            retention_days: a.retention_days,
        }
    }

    /// The fields legal submits of an attestation. A `signed_time` more than
    /// [`MAX_SIGNED_TIME_SKEW_SECONDS`] ahead of now is refused: the contract is not signed.
    pub fn validate(&self, prefix: &str) -> Result<AttestationFields, Vec<Violation>> {
        let now = Timestamp::now();
        let at = |field: &str| path(prefix, field);
        let mut v = Violations::new();
        let seller_id = v.check(SellerId::parse_field(&self.seller_id, &at("seller_id")));
        let contract_ref = v.check(text(&self.contract_ref, &at("contract_ref"), MAX_REF, true));
        let document_sha256 = v.check(sha256(&self.document_sha256, &at("document_sha256")));
        let clauses = list(&self.clauses, &at("clauses"), true, &mut v);
        let purposes = list(&self.purposes, &at("purposes"), true, &mut v);
        let categories = list(&self.categories, &at("categories"), true, &mut v);
        let signed_time = v.check(time(self.signed_time, &at("signed_time")).and_then(|t| {
            if t > now.plus_seconds(MAX_SIGNED_TIME_SKEW_SECONDS) {
                Err(Violation::new(at("signed_time"), "must not be in the future: the contract is not signed yet"))
            } else {
                Ok(t)
            }
        }));
        let effective_time = v.check(time(self.effective_time, &at("effective_time")));
        let expire_time = v.check(time(self.expire_time, &at("expire_time")));
        if let (Some(from), Some(until)) = (effective_time, expire_time)
            && from >= until
        {
            v.push(Violation::new(at("expire_time"), "must be after effective_time"));
        }
        let signatory = v.check(text(&self.signatory, &at("signatory"), MAX_NAME, true));
        if self.retention_days > MAX_RETENTION_DAYS {
            v.push(Violation::new(at("retention_days"), format!("must be at most {MAX_RETENTION_DAYS}")));
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
                retention_days: self.retention_days,
            }),
            _ => Err(v.into_vec()),
        }
    }
}

/// A suspension order as created: exactly one of `seller_id` and `country` names its scope.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SuspensionOrderInput {
    pub order_ref: String,
    pub seller_id: String,
    pub country: String,
    /// Empty: every category.
    pub categories: Vec<i32>,
    /// None: now.
    pub effective_time: Option<TimeInput>,
    pub note: String,
}

impl SuspensionOrderInput {
    /// The fields of a suspension order, validated whole.
    pub fn validate(&self, prefix: &str) -> Result<SuspensionOrderFields, Vec<Violation>> {
        let at = |field: &str| path(prefix, field);
        let mut v = Violations::new();
        let order_ref = v.check(text(&self.order_ref, &at("order_ref"), MAX_REF, true));
        let scope = match (self.seller_id.is_empty(), self.country.is_empty()) {
            (false, true) => {
                v.check(SellerId::parse_field(&self.seller_id, &at("seller_id")).map(SuspensionScope::Seller))
            }
            (true, false) => v.check(country(&self.country, &at("country")).map(SuspensionScope::Country)),
            _ => {
                v.push(Violation::new(at("seller_id"), "exactly one of seller_id and country must be set"));
                None
            }
        };
        let categories = list(&self.categories, &at("categories"), false, &mut v);
        let effective_time = match self.effective_time {
            None => Some(Timestamp::now()),
            Some(t) => v.check(time(Some(t), &at("effective_time"))),
        };
        let note = v.check(text(&self.note, &at("note"), MAX_REASON, false));
        match (order_ref, scope, effective_time, note) {
            (Some(order_ref), Some(scope), Some(effective_time), Some(note)) if v.is_empty() => {
                Ok(SuspensionOrderFields { order_ref, scope, categories, effective_time, note })
            }
            _ => Err(v.into_vec()),
        }
    }
}

/// Supervision evidence as recorded (PIPA 26(4)).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SupervisionInput {
    pub seller_id: String,
    pub kind: i32,
    pub time: Option<TimeInput>,
    pub evidence_sha256: String,
    pub note: String,
}

impl SupervisionInput {
    /// The fields of supervision evidence, validated whole.
    pub fn validate(&self, prefix: &str) -> Result<SupervisionFields, Vec<Violation>> {
        let at = |field: &str| path(prefix, field);
        let mut v = Violations::new();
        let seller_id = v.check(SellerId::parse_field(&self.seller_id, &at("seller_id")));
        let kind = v.check(one(self.kind, &at("kind")));
        let when = v.check(time(self.time, &at("time")));
        let evidence = v.check(sha256(&self.evidence_sha256, &at("evidence_sha256")));
        let note = v.check(text(&self.note, &at("note"), MAX_REASON, false));
        match (seller_id, kind, when, evidence, note) {
            (Some(seller_id), Some(kind), Some(time), Some(evidence_sha256), Some(note)) if v.is_empty() => {
                Ok(SupervisionFields { seller_id, kind, time, evidence_sha256, note })
            }
            _ => Err(v.into_vec()),
        }
    }
}

/// A verification request as asked. A missing basis (0) is well formed: decided as BASIS_MISSING.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyInput {
    pub seller_id: String,
    pub categories: Vec<i32>,
    pub purpose: i32,
    pub basis: i32,
    pub basis_evidence_ref: String,
    pub min_revision: i64,
}

impl VerifyInput {
    /// The request, validated whole.
    pub fn validate(&self, prefix: &str) -> Result<VerifyRequest, Vec<Violation>> {
        let at = |field: &str| path(prefix, field);
        let mut v = Violations::new();
        let seller_id = v.check(SellerId::parse_field(&self.seller_id, &at("seller_id")));
        let categories = list(&self.categories, &at("categories"), true, &mut v);
        let purpose = v.check(one(self.purpose, &at("purpose")));
        let basis = if self.basis == 0 { None } else { v.check(one(self.basis, &at("basis"))) };
        let evidence = v.check(text(&self.basis_evidence_ref, &at("basis_evidence_ref"), MAX_REF, false));
        if self.min_revision < 0 {
            v.push(Violation::new(at("min_revision"), "must not be negative"));
        }
        match (seller_id, purpose, evidence) {
            (Some(seller_id), Some(purpose), Some(basis_evidence_ref)) if v.is_empty() => Ok(VerifyRequest {
                seller_id,
                categories,
                purpose,
                basis,
                basis_evidence_ref,
                min_revision: self.min_revision,
            }),
            _ => Err(v.into_vec()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fault_of_an_attestation_is_reported_with_its_path() {
        let a = AttestationInput { clauses: vec![1, 1, 99], ..Default::default() };
        let fields: Vec<String> = a.validate("attestation").unwrap_err().into_iter().map(|v| v.field).collect();
        for f in
            ["attestation.seller_id", "attestation.clauses[1]", "attestation.clauses[2]", "attestation.signed_time"]
        {
            assert!(fields.contains(&f.to_owned()), "{f} missing from {fields:?}");
        }
    }
}
