//! The registry's entities as the domain sees them, and the changes the event log records. A change
//! carries the whole entity as it stands after the change, so that a follower (the snapshot, an
//! auditor replaying history) needs nothing but the log.

use serde::{Deserialize, Serialize};

use super::ids::{Country, DocumentSha256, SellerId, Timestamp};
use super::verify::SuspensionScope;
use super::vocab::{AttestationState, Clause, DataCategory, Purpose, SellerRole, SellerStatus, SupervisionKind};

/// A foreign seller as registered by legal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seller {
    pub seller_id: SellerId,
    pub legal_name: String,
    pub country: Country,
    pub status: SellerStatus,
    pub role: SellerRole,
    pub contact_email: String,
    pub privacy_contact: String,
    /// The registry revision of this record's last change.
    pub revision: i64,
    pub create_time: Timestamp,
    pub update_time: Timestamp,
}

impl Seller {
    /// The entity tag clients send back to UpdateSeller: it changes with every change of the record.
    pub fn etag(&self) -> String {
        format!("\"r{}\"", self.revision)
    }

    /// Whether the fields legal controls are the same (ignoring revision and times).
    pub fn same_content(&self, other: &SellerFields) -> bool {
        self.legal_name == other.legal_name
            && self.country == other.country
            && self.status == other.status
            && self.role == other.role
            && self.contact_email == other.contact_email
            && self.privacy_contact == other.privacy_contact
    }
}

/// The fields of a seller that legal writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SellerFields {
    pub seller_id: SellerId,
    pub legal_name: String,
    pub country: Country,
    pub status: SellerStatus,
    pub role: SellerRole,
    pub contact_email: String,
    pub privacy_contact: String,
}

/// Which seller fields an update replaces, from the request's field mask.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SellerMask {
    pub legal_name: bool,
    pub country: bool,
    pub status: bool,
    pub role: bool,
    pub contact_email: bool,
    pub privacy_contact: bool,
}

/// A validated UpdateSeller: the new values, which of them apply, and the etag the caller last saw.
#[derive(Debug, Clone)]
pub struct SellerUpdate {
    pub fields: SellerFields,
    pub mask: SellerMask,
    pub etag: Option<String>,
}

impl SellerUpdate {
    /// `current` with the masked fields replaced.
    pub fn apply(&self, current: &Seller) -> SellerFields {
        let (m, f) = (&self.mask, &self.fields);
        SellerFields {
            seller_id: current.seller_id.clone(),
            legal_name: if m.legal_name { f.legal_name.clone() } else { current.legal_name.clone() },
            country: if m.country { f.country } else { current.country },
            status: if m.status { f.status } else { current.status },
            role: if m.role { f.role } else { current.role },
            contact_email: if m.contact_email { f.contact_email.clone() } else { current.contact_email.clone() },
            privacy_contact: if m.privacy_contact {
                f.privacy_contact.clone()
            } else {
                current.privacy_contact.clone()
            },
        }
    }
}

/// Legal's attestation that a data-protection contract with a seller was signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attestation {
    pub attestation_id: String,
    pub seller_id: SellerId,
    pub contract_ref: String,
    pub document_sha256: DocumentSha256,
    pub clauses: Vec<Clause>,
    pub purposes: Vec<Purpose>,
    pub categories: Vec<DataCategory>,
    pub signed_time: Timestamp,
    pub effective_time: Timestamp,
    pub expire_time: Timestamp,
    pub signatory: String,
    /// Days the seller agreed to keep the data; 0: the contract sets no limit of its own.
    pub retention_days: u32,
    pub state: AttestationState,
    pub revoke_reason: String,
    pub submitted_by: String,
    pub revision: i64,
}

/// The fields of an attestation that legal submits; the server assigns the rest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttestationFields {
    pub seller_id: SellerId,
    pub contract_ref: String,
    pub document_sha256: DocumentSha256,
    pub clauses: Vec<Clause>,
    pub purposes: Vec<Purpose>,
    pub categories: Vec<DataCategory>,
    pub signed_time: Timestamp,
    pub effective_time: Timestamp,
    pub expire_time: Timestamp,
    pub signatory: String,
    pub retention_days: u32,
}

/// A suspension order (PIPA 28-9): transfers to a seller, or to every seller of a country, stop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SuspensionOrder {
    pub order_id: String,
    pub order_ref: String,
    pub scope: SuspensionScope,
    /// Empty: every category.
    pub categories: Vec<DataCategory>,
    pub effective_time: Timestamp,
    pub note: String,
    pub lifted: bool,
    pub lift_time: Option<Timestamp>,
    pub lift_reason: String,
    pub created_by: String,
    pub revision: i64,
}

/// The fields of a suspension order that legal submits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuspensionOrderFields {
    pub order_ref: String,
    pub scope: SuspensionScope,
    pub categories: Vec<DataCategory>,
    pub effective_time: Timestamp,
    pub note: String,
}

/// Evidence that the platform supervised an entrustee (PIPA 26(4)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Supervision {
    pub supervision_id: String,
    pub seller_id: SellerId,
    pub kind: SupervisionKind,
    pub time: Timestamp,
    pub evidence_sha256: DocumentSha256,
    pub note: String,
    pub recorded_by: String,
    pub revision: i64,
}

/// The fields of supervision evidence that legal records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SupervisionFields {
    pub seller_id: SellerId,
    pub kind: SupervisionKind,
    pub time: Timestamp,
    pub evidence_sha256: DocumentSha256,
    pub note: String,
}

/// One change to the registry, as recorded in the event log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RegistryChange {
    SellerCreated(Seller),
    SellerUpdated(Seller),
    AttestationSubmitted(Attestation),
    AttestationRevoked(Attestation),
    SuspensionOrderCreated(SuspensionOrder),
    SuspensionOrderLifted(SuspensionOrder),
    SupervisionRecorded(Supervision),
}

impl RegistryChange {
    /// The event kind stored in the log.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::SellerCreated(_) => "SELLER_CREATED",
            Self::SellerUpdated(_) => "SELLER_UPDATED",
            Self::AttestationSubmitted(_) => "ATTESTATION_SUBMITTED",
            Self::AttestationRevoked(_) => "ATTESTATION_REVOKED",
            Self::SuspensionOrderCreated(_) => "SUSPENSION_ORDER_CREATED",
            Self::SuspensionOrderLifted(_) => "SUSPENSION_ORDER_LIFTED",
            Self::SupervisionRecorded(_) => "SUPERVISION_RECORDED",
        }
    }

    /// The seller the change concerns; none for a country-wide suspension order.
    pub fn seller_id(&self) -> Option<&SellerId> {
        match self {
            Self::SellerCreated(s) | Self::SellerUpdated(s) => Some(&s.seller_id),
            Self::AttestationSubmitted(a) | Self::AttestationRevoked(a) => Some(&a.seller_id),
            Self::SuspensionOrderCreated(o) | Self::SuspensionOrderLifted(o) => match &o.scope {
                SuspensionScope::Seller(id) => Some(id),
                SuspensionScope::Country(_) => None,
            },
            Self::SupervisionRecorded(s) => Some(&s.seller_id),
        }
    }

    /// The entity as JSON: the event's payload.
    pub fn payload(&self) -> String {
        let json = match self {
            Self::SellerCreated(s) | Self::SellerUpdated(s) => serde_json::to_string(s),
            Self::AttestationSubmitted(a) | Self::AttestationRevoked(a) => serde_json::to_string(a),
            Self::SuspensionOrderCreated(o) | Self::SuspensionOrderLifted(o) => serde_json::to_string(o),
            Self::SupervisionRecorded(s) => serde_json::to_string(s),
        };
        // Serialising these plain structs cannot fail: no maps with non-string keys, no floats.
        json.unwrap_or_default()
    }

    /// Rebuilds a change from a stored event's kind and payload.
    pub fn from_event(kind: &str, payload: &str) -> Result<Self, String> {
        let bad = |e: serde_json::Error| format!("event payload of kind {kind} does not parse: {e}");
        Ok(match kind {
            "SELLER_CREATED" => Self::SellerCreated(serde_json::from_str(payload).map_err(bad)?),
            "SELLER_UPDATED" => Self::SellerUpdated(serde_json::from_str(payload).map_err(bad)?),
            "ATTESTATION_SUBMITTED" => Self::AttestationSubmitted(serde_json::from_str(payload).map_err(bad)?),
            "ATTESTATION_REVOKED" => Self::AttestationRevoked(serde_json::from_str(payload).map_err(bad)?),
            "SUSPENSION_ORDER_CREATED" => Self::SuspensionOrderCreated(serde_json::from_str(payload).map_err(bad)?),
            "SUSPENSION_ORDER_LIFTED" => Self::SuspensionOrderLifted(serde_json::from_str(payload).map_err(bad)?),
            "SUPERVISION_RECORDED" => Self::SupervisionRecorded(serde_json::from_str(payload).map_err(bad)?),
            other => return Err(format!("unknown event kind {other}")),
        })
    }
}
