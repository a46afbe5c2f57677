//! Rows ⇄ domain entities. Rows hold vocabulary values by name (readable to an auditor with a SQL
//! prompt); reading a row back re-validates it, so a corrupted row is an error, never a guess.

use sea_orm::ActiveValue::Set as Val;

use super::entities::{attestation, order, seller, supervision};
use crate::domain::registry::{Attestation, Seller, Supervision, SuspensionOrder};
use crate::domain::verify::SuspensionScope;
use crate::domain::{Country, SellerId, Timestamp, Vocab};
use crate::error::{Error, Result};

fn corrupt(what: &str, key: &str, why: impl std::fmt::Display) -> Error {
    Error::Internal(format!("stored {what} {key:?} is corrupt: {why}"))
}

fn vocab<T: Vocab>(name: &str, what: &str, key: &str) -> Result<T> {
    T::from_name(name).ok_or_else(|| corrupt(what, key, format!("unknown {} {name:?}", T::KIND)))
}

fn vocab_list<T: Vocab>(text: &str, what: &str, key: &str) -> Result<Vec<T>> {
    text.split_whitespace().map(|n| vocab(n, what, key)).collect()
}

use crate::domain::vocab::names;

pub fn seller_from_row(m: seller::Model) -> Result<Seller> {
    let key = m.seller_id.as_str();
    Ok(Seller {
        seller_id: SellerId::parse(key).map_err(|e| corrupt("seller", key, e))?,
        legal_name: m.legal_name.clone(),
        country: Country::parse(&m.country).map_err(|e| corrupt("seller", key, e))?,
        status: vocab(&m.status, "seller", key)?,
        role: vocab(&m.role, "seller", key)?,
        contact_email: m.contact_email.clone(),
        privacy_contact: m.privacy_contact.clone(),
        revision: m.revision,
        create_time: Timestamp::from_micros(m.create_time),
        update_time: Timestamp::from_micros(m.update_time),
    })
}

pub fn seller_to_row(s: &Seller) -> seller::ActiveModel {
    seller::ActiveModel {
        seller_id: Val(s.seller_id.to_string()),
        legal_name: Val(s.legal_name.clone()),
        country: Val(s.country.to_string()),
        status: Val(s.status.name().to_owned()),
        role: Val(s.role.name().to_owned()),
        contact_email: Val(s.contact_email.clone()),
        privacy_contact: Val(s.privacy_contact.clone()),
        revision: Val(s.revision),
        create_time: Val(s.create_time.as_micros()),
        update_time: Val(s.update_time.as_micros()),
    }
}

pub fn attestation_to_row(a: &Attestation) -> attestation::ActiveModel {
    attestation::ActiveModel {
        attestation_id: Val(a.attestation_id.clone()),
        seller_id: Val(a.seller_id.to_string()),
        contract_ref: Val(a.contract_ref.clone()),
        document_sha256: Val(a.document_sha256.as_str().to_owned()),
        clauses: Val(names(&a.clauses)),
        purposes: Val(names(&a.purposes)),
        categories: Val(names(&a.categories)),
        signed_time: Val(a.signed_time.as_micros()),
        effective_time: Val(a.effective_time.as_micros()),
        expire_time: Val(a.expire_time.as_micros()),
        signatory: Val(a.signatory.clone()),
        // Validated at the edge to fit (at most 36,500 days).
        retention_days: Val(i32::try_from(a.retention_days).unwrap_or(i32::MAX)),
        state: Val(a.state.name().to_owned()),
        revoke_reason: Val(a.revoke_reason.clone()),
        submitted_by: Val(a.submitted_by.clone()),
        revision: Val(a.revision),
    }
}

pub fn order_from_row(m: order::Model) -> Result<SuspensionOrder> {
    let key = m.order_id.as_str();
    let what = "suspension order";
    let scope = if m.seller_id.is_empty() {
        SuspensionScope::Country(Country::parse(&m.country).map_err(|e| corrupt(what, key, e))?)
    } else {
        SuspensionScope::Seller(SellerId::parse(&m.seller_id).map_err(|e| corrupt(what, key, e))?)
    };
    Ok(SuspensionOrder {
        order_id: m.order_id.clone(),
        order_ref: m.order_ref.clone(),
        scope,
        categories: vocab_list(&m.categories, what, key)?,
        effective_time: Timestamp::from_micros(m.effective_time),
        note: m.note.clone(),
        lifted: m.lifted,
        lift_time: m.lift_time.map(Timestamp::from_micros),
        lift_reason: m.lift_reason.clone(),
        created_by: m.created_by.clone(),
        revision: m.revision,
    })
}

pub fn order_to_row(o: &SuspensionOrder) -> order::ActiveModel {
    let (seller_id, country) = match &o.scope {
        SuspensionScope::Seller(id) => (id.to_string(), String::new()),
        SuspensionScope::Country(c) => (String::new(), c.to_string()),
    };
    order::ActiveModel {
        order_id: Val(o.order_id.clone()),
        order_ref: Val(o.order_ref.clone()),
        seller_id: Val(seller_id),
        country: Val(country),
        categories: Val(names(&o.categories)),
        effective_time: Val(o.effective_time.as_micros()),
        note: Val(o.note.clone()),
        lifted: Val(o.lifted),
        lift_time: Val(o.lift_time.map(Timestamp::as_micros)),
        lift_reason: Val(o.lift_reason.clone()),
        created_by: Val(o.created_by.clone()),
        revision: Val(o.revision),
    }
}

pub fn supervision_to_row(s: &Supervision) -> supervision::ActiveModel {
    supervision::ActiveModel {
        supervision_id: Val(s.supervision_id.clone()),
        seller_id: Val(s.seller_id.to_string()),
        kind: Val(s.kind.name().to_owned()),
        time: Val(s.time.as_micros()),
        evidence_sha256: Val(s.evidence_sha256.as_str().to_owned()),
        note: Val(s.note.clone()),
        recorded_by: Val(s.recorded_by.clone()),
        revision: Val(s.revision),
    }
}
