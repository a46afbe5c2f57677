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
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SellerMask {
    pub legal_name: bool,
    pub country: bool,
    pub status: bool,
    pub role: bool,
    pub contact_email: bool,
    pub privacy_contact: bool,
}

/// A validated UpdateSeller: the new values, which of them apply, and the etag the caller last saw.
#[derive(Debug, Clone, Serialize)]
pub struct SellerUpdate {
    pub fields: SellerFields,
    pub mask: SellerMask,
    pub etag: Option<String>,
}

/// What an UpdateSeller asked for: the masked fields' new values and the etag. A retry of the same
/// update is the same request even when unmasked fields changed meanwhile.
#[derive(Debug, Clone, Serialize)]
pub struct RequestedUpdate<'a> {
    pub seller_id: &'a SellerId,
    pub legal_name: Option<&'a str>,
    pub country: Option<&'a Country>,
    pub status: Option<SellerStatus>,
    pub role: Option<SellerRole>,
    pub contact_email: Option<&'a str>,
    pub privacy_contact: Option<&'a str>,
    pub etag: Option<&'a str>,
}

impl SellerUpdate {
    /// What the update asked for, for its idempotency key.
    pub fn requested(&self) -> RequestedUpdate<'_> {
        let (m, f) = (&self.mask, &self.fields);
        RequestedUpdate {
            seller_id: &f.seller_id,
            legal_name: m.legal_name.then_some(f.legal_name.as_str()),
            country: m.country.then_some(&f.country),
            status: m.status.then_some(f.status),
            role: m.role.then_some(f.role),
            contact_email: m.contact_email.then_some(f.contact_email.as_str()),
            privacy_contact: m.privacy_contact.then_some(f.privacy_contact.as_str()),
            etag: self.etag.as_deref(),
        }
    }

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
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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

/// The kind of a logged change: the one list of them, stored by name in `registry_events.kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    SellerCreated,
    SellerUpdated,
    AttestationSubmitted,
    AttestationRevoked,
    SuspensionOrderCreated,
    SuspensionOrderLifted,
    SupervisionRecorded,
}

impl EventKind {
    /// Every kind, in the order they were introduced.
    pub const ALL: [EventKind; 7] = [
        Self::SellerCreated,
        Self::SellerUpdated,
        Self::AttestationSubmitted,
        Self::AttestationRevoked,
        Self::SuspensionOrderCreated,
        Self::SuspensionOrderLifted,
        Self::SupervisionRecorded,
    ];

    /// The name stored in the log and shown to auditors.
    pub fn name(self) -> &'static str {
        match self {
            Self::SellerCreated => "SELLER_CREATED",
            Self::SellerUpdated => "SELLER_UPDATED",
            Self::AttestationSubmitted => "ATTESTATION_SUBMITTED",
            Self::AttestationRevoked => "ATTESTATION_REVOKED",
            Self::SuspensionOrderCreated => "SUSPENSION_ORDER_CREATED",
            Self::SuspensionOrderLifted => "SUSPENSION_ORDER_LIFTED",
            Self::SupervisionRecorded => "SUPERVISION_RECORDED",
        }
    }

    /// The kind stored under `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Whether the kind changes a seller itself (its record, attestations or supervision evidence).
    /// Suspension orders are the regulator's, not the seller's, and are kept apart in its history.
    pub fn is_sellers_own(self) -> bool {
        !matches!(self, Self::SuspensionOrderCreated | Self::SuspensionOrderLifted)
    }

    /// The names of the kinds that change a seller itself.
    pub fn sellers_own_names() -> Vec<&'static str> {
        Self::ALL.into_iter().filter(|k| k.is_sellers_own()).map(Self::name).collect()
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl RegistryChange {
    /// The event kind stored in the log.
    pub fn kind(&self) -> EventKind {
        match self {
            Self::SellerCreated(_) => EventKind::SellerCreated,
            Self::SellerUpdated(_) => EventKind::SellerUpdated,
            Self::AttestationSubmitted(_) => EventKind::AttestationSubmitted,
            Self::AttestationRevoked(_) => EventKind::AttestationRevoked,
            Self::SuspensionOrderCreated(_) => EventKind::SuspensionOrderCreated,
            Self::SuspensionOrderLifted(_) => EventKind::SuspensionOrderLifted,
            Self::SupervisionRecorded(_) => EventKind::SupervisionRecorded,
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
        let kind = EventKind::parse(kind).ok_or_else(|| format!("unknown event kind {kind:?}"))?;
        let bad = |e: serde_json::Error| format!("event payload of kind {kind} does not parse: {e}");
        Ok(match kind {
            EventKind::SellerCreated => Self::SellerCreated(serde_json::from_str(payload).map_err(bad)?),
            EventKind::SellerUpdated => Self::SellerUpdated(serde_json::from_str(payload).map_err(bad)?),
            EventKind::AttestationSubmitted => Self::AttestationSubmitted(serde_json::from_str(payload).map_err(bad)?),
            EventKind::AttestationRevoked => Self::AttestationRevoked(serde_json::from_str(payload).map_err(bad)?),
            EventKind::SuspensionOrderCreated => {
                Self::SuspensionOrderCreated(serde_json::from_str(payload).map_err(bad)?)
            }
            EventKind::SuspensionOrderLifted => {
                Self::SuspensionOrderLifted(serde_json::from_str(payload).map_err(bad)?)
            }
            EventKind::SupervisionRecorded => Self::SupervisionRecorded(serde_json::from_str(payload).map_err(bad)?),
        })
    }
}
