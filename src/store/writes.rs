//! Registry writes. Each validates against the current state inside the write transaction, writes the
//! new state and appends exactly one event per changed entity, then commits all of it at once.

use std::collections::{HashMap, HashSet};

use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ColumnTrait, Condition, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, QuerySelect};
use serde::{Deserialize, Serialize};

use super::entities::{attestation, seller};
use super::log::WriteTx;
use super::{Store, rows};
use crate::domain::registry::{Attestation, AttestationFields, RegistryChange, Seller, SellerFields, SellerUpdate};
use crate::domain::{AttestationState, SellerId, Violation};
use crate::error::{Error, Result};

/// One item of a bulk import.
#[derive(Debug, Clone)]
pub enum ImportItem {
    Seller(SellerFields),
    Attestation(AttestationFields),
}

/// One item of an import that was not applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportRowError {
    /// The item's 0-based position in the whole import.
    pub index: i64,
    pub field: String,
    pub message: String,
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportOutcome {
    pub sellers_created: i64,
    pub sellers_updated: i64,
    pub sellers_unchanged: i64,
    pub attestations_created: i64,
    pub attestations_unchanged: i64,
    pub errors: Vec<ImportRowError>,
    pub revision: i64,
}

fn new_seller(fields: SellerFields, w: &WriteTx<'_>) -> Seller {
    Seller {
        seller_id: fields.seller_id,
        legal_name: fields.legal_name,
        country: fields.country,
        status: fields.status,
        role: fields.role,
        contact_email: fields.contact_email,
        privacy_contact: fields.privacy_contact,
        revision: w.next_revision(),
        create_time: w.time(),
        update_time: w.time(),
    }
}

fn changed_seller(current: &Seller, fields: SellerFields, w: &WriteTx<'_>) -> Seller {
    Seller {
        revision: w.next_revision(),
        create_time: current.create_time,
        update_time: w.time(),
        ..new_seller(fields, w)
    }
}

fn new_attestation(fields: AttestationFields, w: &WriteTx<'_>) -> Attestation {
    Attestation {
        attestation_id: uuid::Uuid::now_v7().to_string(),
        seller_id: fields.seller_id,
        contract_ref: fields.contract_ref,
        document_sha256: fields.document_sha256,
        clauses: fields.clauses,
        purposes: fields.purposes,
        categories: fields.categories,
        signed_time: fields.signed_time,
        effective_time: fields.effective_time,
        expire_time: fields.expire_time,
        signatory: fields.signatory,
        retention_days: fields.retention_days,
        state: AttestationState::Active,
        revoke_reason: String::new(),
        submitted_by: w.actor().to_owned(),
        revision: w.next_revision(),
    }
}

async fn find_seller(w: &WriteTx<'_>, id: &SellerId) -> Result<Option<Seller>> {
    seller::Entity::find_by_id(id.to_string()).one(w.tx()).await?.map(rows::seller_from_row).transpose()
}

async fn find_attestation_by_document(w: &WriteTx<'_>, f: &AttestationFields) -> Result<Option<attestation::Model>> {
    Ok(attestation::Entity::find()
        .filter(attestation::Column::SellerId.eq(f.seller_id.as_str()))
        .filter(attestation::Column::DocumentSha256.eq(f.document_sha256.as_str()))
        .one(w.tx())
        .await?)
}

impl Store {
    /// Registers a new seller.
    pub async fn create_seller(
        &self,
        actor: &str,
        request_id: Option<&str>,
        fields: SellerFields,
    ) -> Result<(Seller, i64)> {
        const KIND: &str = "CreateSeller";
        let mut w = self.begin_write(actor).await?;
        if let Some(prior) = w.replayed(request_id, KIND).await? {
            return Ok(prior);
        }
        if find_seller(&w, &fields.seller_id).await?.is_some() {
            return Err(Error::AlreadyExists(format!("seller {}", fields.seller_id)));
        }
        let seller = new_seller(fields, &w);
        seller::Entity::insert(rows::seller_to_row(&seller)).exec_without_returning(w.tx()).await?;
        w.append(&RegistryChange::SellerCreated(seller.clone()));
        let revision = w.commit(request_id.map(|id| (id, KIND, &seller))).await?;
        Ok((seller, revision))
    }

    /// Changes the masked fields of a seller, if the caller's etag (when given) is current.
    pub async fn update_seller(
        &self,
        actor: &str,
        request_id: Option<&str>,
        update: SellerUpdate,
    ) -> Result<(Seller, i64)> {
        const KIND: &str = "UpdateSeller";
        let mut w = self.begin_write(actor).await?;
        if let Some(prior) = w.replayed(request_id, KIND).await? {
            return Ok(prior);
        }
        let id = &update.fields.seller_id;
        let current = find_seller(&w, id).await?.ok_or_else(|| Error::NotFound(format!("seller {id}")))?;
        if let Some(etag) = &update.etag
            && *etag != current.etag()
        {
            return Err(Error::Aborted(format!(
                "seller {id} changed since etag {etag} was read (now {}): read it again and retry",
                current.etag()
            )));
        }
        let fields = update.apply(&current);
        let seller = if current.same_content(&fields) {
            current
        } else {
            let seller = changed_seller(&current, fields, &w);
            seller::Entity::update(rows::seller_to_row(&seller)).exec(w.tx()).await?;
            w.append(&RegistryChange::SellerUpdated(seller.clone()));
            seller
        };
        let revision = w.commit(request_id.map(|id| (id, KIND, &seller))).await?;
        Ok((seller, revision))
    }

    /// Records a new contract attestation for an existing seller.
    pub async fn submit_attestation(
        &self,
        actor: &str,
        request_id: Option<&str>,
        fields: AttestationFields,
    ) -> Result<(Attestation, i64)> {
        const KIND: &str = "SubmitAttestation";
        let mut w = self.begin_write(actor).await?;
        if let Some(prior) = w.replayed(request_id, KIND).await? {
            return Ok(prior);
        }
        if find_seller(&w, &fields.seller_id).await?.is_none() {
            return Err(Error::NotFound(format!("seller {}", fields.seller_id)));
        }
        if let Some(existing) = find_attestation_by_document(&w, &fields).await? {
            return Err(Error::AlreadyExists(format!(
                "an attestation of document {} for seller {} (attestation {})",
                fields.document_sha256.as_str(),
                fields.seller_id,
                existing.attestation_id
            )));
        }
        let att = new_attestation(fields, &w);
        attestation::Entity::insert(rows::attestation_to_row(&att)).exec_without_returning(w.tx()).await?;
        w.append(&RegistryChange::AttestationSubmitted(att.clone()));
        let revision = w.commit(request_id.map(|id| (id, KIND, &att))).await?;
        Ok((att, revision))
    }

    /// Revokes an active attestation: from the next snapshot revision on, no decision relies on it.
    pub async fn revoke_attestation(
        &self,
        actor: &str,
        request_id: Option<&str>,
        attestation_id: &str,
        reason: &str,
    ) -> Result<(Attestation, i64)> {
        const KIND: &str = "RevokeAttestation";
        let mut w = self.begin_write(actor).await?;
        if let Some(prior) = w.replayed(request_id, KIND).await? {
            return Ok(prior);
        }
        let row = attestation::Entity::find_by_id(attestation_id.to_owned())
            .one(w.tx())
            .await?
            .ok_or_else(|| Error::NotFound(format!("attestation {attestation_id}")))?;
        let current = rows::attestation_from_row(row)?;
        if current.state == AttestationState::Revoked {
            return Err(Error::FailedPrecondition(format!("attestation {attestation_id} is already revoked")));
        }
        let att = Attestation {
            state: AttestationState::Revoked,
            revoke_reason: reason.to_owned(),
            revision: w.next_revision(),
            ..current
        };
        attestation::Entity::update(rows::attestation_to_row(&att)).exec(w.tx()).await?;
        w.append(&RegistryChange::AttestationRevoked(att.clone()));
        let revision = w.commit(request_id.map(|id| (id, KIND, &att))).await?;
        Ok((att, revision))
    }

    /// Applies one batch of an import in one transaction. Items that cannot apply (an attestation for
    /// an unknown seller) are reported and skipped; the rest commit together. Each item comes with
    /// its position in the whole import, for error reports.
    pub async fn import_batch(&self, actor: &str, items: Vec<(i64, ImportItem)>) -> Result<ImportOutcome> {
        let mut out = ImportOutcome::default();
        let mut w = self.begin_write(actor).await?;
        // What the database already holds for the sellers this batch names, read up front in a few
        // `IN (…)` queries: one round trip per item made a large import crawl, most of all over a
        // network to PostgreSQL.
        let named: HashSet<&str> = items
            .iter()
            .map(|(_, item)| match item {
                ImportItem::Seller(f) => f.seller_id.as_str(),
                ImportItem::Attestation(f) => f.seller_id.as_str(),
            })
            .collect();
        let named: Vec<&str> = named.into_iter().collect();
        // Kept current through the batch: an update replaces its entry, a creation adds one.
        let mut sellers = find_sellers(&w, &named).await?;
        // Only a seller the database already holds can have attested documents there.
        let attested: Vec<(&str, &str)> = items
            .iter()
            .filter_map(|(_, item)| match item {
                ImportItem::Attestation(f) if sellers.contains_key(&f.seller_id) => {
                    Some((f.seller_id.as_str(), f.document_sha256.as_str()))
                }
                _ => None,
            })
            .collect();
        let mut documents = find_documents(&w, &attested).await?;
        let mut new_sellers = Vec::new();
        let mut new_atts = Vec::new();
        // Sellers created earlier in this same batch.
        let mut batch_sellers = HashSet::new();
        for (index, item) in items {
            match item {
                ImportItem::Seller(fields) => match sellers.get(&fields.seller_id) {
                    Some(_) if batch_sellers.contains(&fields.seller_id) => {
                        out.errors
                            .push(row_error(index, Violation::new("seller.seller_id", "appears twice in one batch")));
                    }
                    None => {
                        let seller = new_seller(fields, &w);
                        w.append(&RegistryChange::SellerCreated(seller.clone()));
                        batch_sellers.insert(seller.seller_id.clone());
                        new_sellers.push(rows::seller_to_row(&seller));
                        sellers.insert(seller.seller_id.clone(), seller);
                        out.sellers_created += 1;
                    }
                    Some(current) if current.same_content(&fields) => out.sellers_unchanged += 1,
                    Some(current) => {
                        let seller = changed_seller(current, fields, &w);
                        seller::Entity::update(rows::seller_to_row(&seller)).exec(w.tx()).await?;
                        w.append(&RegistryChange::SellerUpdated(seller.clone()));
                        sellers.insert(seller.seller_id.clone(), seller);
                        out.sellers_updated += 1;
                    }
                },
                ImportItem::Attestation(fields) => {
                    let key = (fields.seller_id.to_string(), fields.document_sha256.as_str().to_owned());
                    if documents.contains(&key) {
                        out.attestations_unchanged += 1;
                    } else if !sellers.contains_key(&fields.seller_id) {
                        out.errors.push(row_error(
                            index,
                            Violation::new(
                                "attestation.seller_id",
                                format!("seller {} is not registered", fields.seller_id),
                            ),
                        ));
                    } else {
                        let att = new_attestation(fields, &w);
                        w.append(&RegistryChange::AttestationSubmitted(att.clone()));
                        documents.insert(key);
                        new_atts.push(rows::attestation_to_row(&att));
                        out.attestations_created += 1;
                    }
                }
            }
        }
        // Moved into the statements chunk by chunk rather than cloned: a batch holds megabytes.
        let mut new_sellers = new_sellers.into_iter().peekable();
        while new_sellers.peek().is_some() {
            seller::Entity::insert_many(new_sellers.by_ref().take(500)).exec_without_returning(w.tx()).await?;
        }
        let mut new_atts = new_atts.into_iter().peekable();
        while new_atts.peek().is_some() {
            attestation::Entity::insert_many(new_atts.by_ref().take(250)).exec_without_returning(w.tx()).await?;
        }
        out.revision = w.commit::<()>(None).await?;
        Ok(out)
    }
}

/// Seller ids per `IN (…)` lookup: well under SQLite's and PostgreSQL's bound-parameter limits.
const LOOKUP_CHUNK: usize = 1000;

/// The sellers among `ids` that exist, by id.
async fn find_sellers(w: &WriteTx<'_>, ids: &[&str]) -> Result<HashMap<SellerId, Seller>> {
    let mut found = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(LOOKUP_CHUNK) {
        let rows =
            seller::Entity::find().filter(seller::Column::SellerId.is_in(chunk.iter().copied())).all(w.tx()).await?;
        for row in rows {
            let s = rows::seller_from_row(row)?;
            found.insert(s.seller_id.clone(), s);
        }
    }
    Ok(found)
}

/// Which of the (seller id, document SHA-256) `pairs` are attested already. One equality pair per
/// OR term, so each is a lookup in the unique (seller_id, document_sha256) index: a `seller_id IN
/// (…)` instead lets PostgreSQL, before its statistics catch up with a fast-growing table, choose
/// a sequential scan per batch.
async fn find_documents(w: &WriteTx<'_>, pairs: &[(&str, &str)]) -> Result<HashSet<(String, String)>> {
    let postgres = w.tx().get_database_backend() == DbBackend::Postgres;
    // PostgreSQL keeps the digest as char(64): compared with a text parameter, the column would be
    // cast to text, which the index does not serve.
    let document = |d: &str| if postgres { Expr::val(d).cast_as("bpchar") } else { Expr::val(d) };
    let mut found = HashSet::new();
    for chunk in pairs.chunks(LOOKUP_CHUNK / 2) {
        let any = chunk.iter().fold(Condition::any(), |any, (seller_id, d)| {
            any.add(
                Condition::all()
                    .add(attestation::Column::SellerId.eq(*seller_id))
                    .add(Expr::col((attestation::Entity, attestation::Column::DocumentSha256)).eq(document(d))),
            )
        });
        let rows: Vec<(String, String)> = attestation::Entity::find()
            .select_only()
            .column(attestation::Column::SellerId)
            .column(attestation::Column::DocumentSha256)
            .filter(any)
            .into_tuple()
            .all(w.tx())
            .await?;
        found.extend(rows);
    }
    Ok(found)
}

fn row_error(index: i64, v: Violation) -> ImportRowError {
    ImportRowError { index, field: v.field, message: v.description }
}
