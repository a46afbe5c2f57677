//! The one validator of what people and clients write: plain-Rust inputs (text, vocabulary numbers,
//! second/nanosecond times, exactly as the wire carries them) in, validated domain values out.
//! gRPC maps its messages onto these inputs, the CLI its file rows, the console its forms, so a
//! value is accepted or refused with the same words wherever it comes from. Every fault of an input
//! is reported at once, each naming its field by the path the API uses (`seller.country`,
//! `attestation.clauses[2]`); nothing reaches the store unless all of it is valid.

use super::ids::check_display_text;
use super::registry::{
    Attestation, AttestationFields, Seller, SellerFields, SellerMask, SellerUpdate, SupervisionFields,
    SuspensionOrderFields,
};
use super::verify::{SuspensionScope, VerifyRequest};
use super::{Country, DocumentSha256, SellerId, SellerStatus, Timestamp, Violation, Violations, Vocab};

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
pub fn time(value: Option<TimeInput>, field: &str) -> Result<Timestamp, Violation> {
    let t = value.ok_or_else(|| Violation::new(field, "must be set"))?;
    Timestamp::from_parts(t.seconds, t.nanos)
        .ok_or_else(|| Violation::new(field, "must be between 0001-01-01 and 9999-12-31 with nanos in 0..1e9"))
}

fn country(value: &str, field: &str) -> Result<Country, Violation> {
    Country::parse(value).map_err(|why| Violation::new(field, why))
}

fn email(value: &str, field: &str) -> Result<String, Violation> {
    let e = text(value, field, MAX_EMAIL, true)?;
    match e.split_once('@') {
        Some((local, domain)) if !local.is_empty() && domain.contains('.') && !e.contains(char::is_whitespace) => Ok(e),
        _ => Err(Violation::new(field, "must be an email address")),
    }
}

fn sha256(value: &str, field: &str) -> Result<DocumentSha256, Violation> {
    DocumentSha256::parse(value).map_err(|why| Violation::new(field, why))
}

/// A seller as written: every field legal controls, plus the etag an update or import names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SellerInput {
    pub seller_id: String,
    pub legal_name: String,
    pub country: String,
    /// 0 (UNSPECIFIED): ACTIVE for a new seller.
    pub status: i32,
    pub role: i32,
    pub contact_email: String,
    pub privacy_contact: String,
    /// Empty: none given.
    pub etag: String,
}

impl SellerInput {
    /// A registered seller's fields, as an input that validates back to the same fields.
    pub fn of(s: &Seller) -> Self {
        Self {
            seller_id: s.seller_id.to_string(),
            legal_name: s.legal_name.clone(),
            country: s.country.to_string(),
            status: s.status.number(),
            role: s.role.number(),
            contact_email: s.contact_email.clone(),
            privacy_contact: s.privacy_contact.clone(),
            etag: s.etag(),
        }
    }

    /// The fields legal writes of a seller. `status` UNSPECIFIED defaults to ACTIVE.
    pub fn validate(&self, prefix: &str) -> Result<SellerFields, Vec<Violation>> {
        let mut v = Violations::new();
        let seller_id = v.check(SellerId::parse_field(&self.seller_id, &path(prefix, "seller_id")));
        let legal_name = v.check(text(&self.legal_name, &path(prefix, "legal_name"), MAX_NAME, true));
        let country = v.check(country(&self.country, &path(prefix, "country")));
        let status = if self.status == 0 {
            Some(SellerStatus::Active)
        } else {
            v.check(one(self.status, &path(prefix, "status")))
        };
        let role = v.check(one(self.role, &path(prefix, "role")));
        let contact_email = v.check(email(&self.contact_email, &path(prefix, "contact_email")));
        let privacy_contact = v.check(text(&self.privacy_contact, &path(prefix, "privacy_contact"), MAX_NAME, true));
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

    /// Whether the input names a status (an import keeps an existing seller's status otherwise).
    pub fn status_given(&self) -> bool {
        self.status != 0
    }

    /// The etag, when one is given.
    pub fn etag(&self) -> Option<String> {
        (!self.etag.is_empty()).then(|| self.etag.clone())
    }
}

/// A seller field an update may replace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SellerField {
    LegalName,
    Country,
    Status,
    Role,
    ContactEmail,
    PrivacyContact,
}

impl SellerField {
    /// Every updatable field.
    pub const ALL: [SellerField; 6] =
        [Self::LegalName, Self::Country, Self::Status, Self::Role, Self::ContactEmail, Self::PrivacyContact];

    /// The field's name, as a field mask path names it.
    pub fn name(self) -> &'static str {
        match self {
            Self::LegalName => "legal_name",
            Self::Country => "country",
            Self::Status => "status",
            Self::Role => "role",
            Self::ContactEmail => "contact_email",
            Self::PrivacyContact => "privacy_contact",
        }
    }

    fn slot(self, mask: &mut SellerMask) -> &mut bool {
        match self {
            Self::LegalName => &mut mask.legal_name,
            Self::Country => &mut mask.country,
            Self::Status => &mut mask.status,
            Self::Role => &mut mask.role,
            Self::ContactEmail => &mut mask.contact_email,
            Self::PrivacyContact => &mut mask.privacy_contact,
        }
    }
}

/// An update of a seller: which fields it replaces (the field mask, as a set of domain fields),
/// their new values, and the etag the writer last saw. UpdateSeller, the console's edit form and
/// any other writer validate it the same way, against the seller as it stands.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SellerPatch {
    pub mask: SellerMask,
    pub values: SellerInput,
}

impl SellerPatch {
    /// A patch of the fields `paths` names (a field mask; `mask_field` names it in errors).
    pub fn from_paths(values: SellerInput, paths: &[String], mask_field: &str) -> Result<Self, Violation> {
        if paths.is_empty() {
            return Err(Violation::new(mask_field, "must name at least one field"));
        }
        let mut mask = SellerMask::default();
        for (i, p) in paths.iter().enumerate() {
            let field = SellerField::ALL.into_iter().find(|f| f.name() == p).ok_or_else(|| {
                Violation::new(format!("{mask_field}.paths[{i}]"), format!("{p:?} is not an updatable seller field"))
            })?;
            *field.slot(&mut mask) = true;
        }
        Ok(Self { mask, values })
    }

    /// A patch of every field (a form that shows them all).
    pub fn all(values: SellerInput) -> Self {
        let mut mask = SellerMask::default();
        SellerField::ALL.into_iter().for_each(|f| *f.slot(&mut mask) = true);
        Self { mask, values }
    }

    /// The seller the patch is for.
    pub fn seller_id(&self, prefix: &str) -> Result<SellerId, Violation> {
        SellerId::parse_field(&self.values.seller_id, &path(prefix, "seller_id"))
    }

    /// Validates the patch against `current`: only the masked fields are taken from the patch (the
    /// rest of its values may be empty), and the seller they make must be valid as a whole.
    pub fn validate(&self, current: &Seller, prefix: &str) -> Result<SellerUpdate, Vec<Violation>> {
        let (m, new) = (&self.mask, &self.values);
        if m.status && new.status == 0 {
            return Err(vec![Violation::new(path(prefix, "status"), "must be specified")]);
        }
        let mut probe = SellerInput::of(current);
        let pick = |on: bool, new: &str, old: &mut String| {
            if on {
                new.clone_into(old);
            }
        };
        pick(m.legal_name, &new.legal_name, &mut probe.legal_name);
        pick(m.country, &new.country, &mut probe.country);
        pick(m.contact_email, &new.contact_email, &mut probe.contact_email);
        pick(m.privacy_contact, &new.privacy_contact, &mut probe.privacy_contact);
        if m.status {
            probe.status = new.status;
        }
        if m.role {
            probe.role = new.role;
        }
        let fields = probe.validate(prefix)?;
        Ok(SellerUpdate { fields, mask: self.mask, etag: new.etag() })
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::SellerRole;

    fn seller_input() -> SellerInput {
        SellerInput {
            seller_id: "s-1".into(),
            legal_name: "Acme Ltd".into(),
            country: "CN".into(),
            role: SellerRole::Recipient.number(),
            contact_email: "legal@acme.cn".into(),
            privacy_contact: "dpo@acme.cn".into(),
            ..SellerInput::default()
        }
    }

    #[test]
    fn a_patch_takes_only_masked_fields_and_validates_the_result() {
        let fields = seller_input().validate("").unwrap();
        let now = Timestamp::now();
        let current = Seller {
            seller_id: fields.seller_id.clone(),
            legal_name: fields.legal_name.clone(),
            country: fields.country,
            status: fields.status,
            role: fields.role,
            contact_email: fields.contact_email.clone(),
            privacy_contact: fields.privacy_contact.clone(),
            revision: 3,
            create_time: now,
            update_time: now,
        };
        let values = SellerInput { seller_id: "s-1".into(), legal_name: "Acme Two".into(), ..Default::default() };
        let patch = SellerPatch::from_paths(values, &["legal_name".into()], "update_mask").unwrap();
        let update = patch.validate(&current, "seller").unwrap();
        assert_eq!(update.fields.legal_name, "Acme Two");
        assert_eq!(update.fields.contact_email, "legal@acme.cn");
        assert!(update.mask.legal_name && !update.mask.country);

        let bad = SellerInput { country: "Korea".into(), ..Default::default() };
        let err =
            SellerPatch::from_paths(bad, &["country".into()], "update_mask").unwrap().validate(&current, "seller");
        assert_eq!(err.unwrap_err()[0].field, "seller.country");
        let unknown = SellerPatch::from_paths(SellerInput::default(), &["etag".into()], "update_mask").unwrap_err();
        assert_eq!(unknown.field, "update_mask.paths[0]");
    }

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
