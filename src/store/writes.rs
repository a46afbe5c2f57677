//! Registry writes. Each validates against the current state inside the write transaction, writes the
//! new state and appends exactly one event per changed entity, then commits all of it at once.

use std::collections::{HashMap, HashSet};

use sea_orm::{ConnectionTrait, DbBackend, EntityTrait};
use serde::{Deserialize, Serialize};

use super::entities::{attestation, seller};
use super::log::{RequestKey, WriteTx};
use super::{Store, rows};
use crate::domain::fold::FoldTarget;
use crate::domain::registry::{Attestation, AttestationFields, RegistryChange, Seller, SellerFields, SellerUpdate};
use crate::domain::{AttestationState, SellerId, Violation};
use crate::error::{Error, Result};

/// One item of a bulk import.
#[derive(Debug, Clone)]
pub enum ImportItem {
    Seller(SellerImport),
    Attestation(AttestationFields),
}

/// A seller as an import names it. A routine re-import must not undo legal's decisions, so an item
/// without a status keeps an existing seller's own (a new seller starts ACTIVE); only an explicit
/// status changes it. An item that carries an etag applies only to that version of the seller.
#[derive(Debug, Clone)]
pub struct SellerImport {
    pub fields: SellerFields,
    /// Whether the item named a status (`fields.status` is ACTIVE otherwise).
    pub status_given: bool,
    pub etag: Option<String>,
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

impl Store {
    /// Registers a new seller.
    pub async fn create_seller(
        &self,
        actor: &str,
        request_id: Option<&str>,
        fields: SellerFields,
    ) -> Result<(Seller, i64)> {
        let key = RequestKey::new(actor, "CreateSeller", request_id, &fields);
        let mut w = self.begin_write(actor).await?;
        if let Some(prior) = w.replayed(key.as_ref()).await? {
            return Ok(prior);
        }
        if w.fold_sellers(&[fields.seller_id.as_str()]).await?.has_seller(&fields.seller_id) {
            return Err(Error::AlreadyExists(format!("seller {}", fields.seller_id)));
        }
        let seller = new_seller(fields, &w);
        seller::Entity::insert(rows::seller_to_row(&seller)).exec_without_returning(w.tx()).await?;
        w.append(&RegistryChange::SellerCreated(seller.clone()));
        let revision = w.commit(key.as_ref().map(|k| (k, &seller))).await?;
        Ok((seller, revision))
    }

    /// Changes the masked fields of a seller, if the caller's etag (when given) is current.
    pub async fn update_seller(
        &self,
        actor: &str,
        request_id: Option<&str>,
        update: SellerUpdate,
    ) -> Result<(Seller, i64)> {
        let key = RequestKey::new(actor, "UpdateSeller", request_id, &update.requested());
        let mut w = self.begin_write(actor).await?;
        if let Some(prior) = w.replayed(key.as_ref()).await? {
            return Ok(prior);
        }
        let id = &update.fields.seller_id;
        let mut state = w.fold_sellers(&[id.as_str()]).await?;
        let current = state.sellers.remove(id).ok_or_else(|| Error::NotFound(format!("seller {id}")))?;
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
        let revision = w.commit(key.as_ref().map(|k| (k, &seller))).await?;
        Ok((seller, revision))
    }

    /// Records a new contract attestation for an existing seller.
    pub async fn submit_attestation(
        &self,
        actor: &str,
        request_id: Option<&str>,
        fields: AttestationFields,
    ) -> Result<(Attestation, i64)> {
        let key = RequestKey::new(actor, "SubmitAttestation", request_id, &fields);
        let mut w = self.begin_write(actor).await?;
        if let Some(prior) = w.replayed(key.as_ref()).await? {
            return Ok(prior);
        }
        let state = w.fold_sellers(&[fields.seller_id.as_str()]).await?;
        if !state.has_seller(&fields.seller_id) {
            return Err(Error::NotFound(format!("seller {}", fields.seller_id)));
        }
        if let Some(existing) = state.attestation_of_document(&fields.seller_id, &fields.document_sha256) {
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
        let revision = w.commit(key.as_ref().map(|k| (k, &att))).await?;
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
        let key = RequestKey::new(actor, "RevokeAttestation", request_id, &(attestation_id, reason));
        let mut w = self.begin_write(actor).await?;
        if let Some(prior) = w.replayed(key.as_ref()).await? {
            return Ok(prior);
        }
        let not_found = || Error::NotFound(format!("attestation {attestation_id}"));
        // The table says whose attestation it is; the seller's log says what it is.
        let row =
            attestation::Entity::find_by_id(attestation_id.to_owned()).one(w.tx()).await?.ok_or_else(not_found)?;
        let mut state = w.fold_sellers(&[row.seller_id.as_str()]).await?;
        let current = state
            .attestations
            .values_mut()
            .flat_map(std::mem::take)
            .find(|a| a.attestation_id == attestation_id)
            .ok_or_else(not_found)?;
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
        let revision = w.commit(key.as_ref().map(|k| (k, &att))).await?;
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
                ImportItem::Seller(f) => f.fields.seller_id.as_str(),
                ImportItem::Attestation(f) => f.seller_id.as_str(),
            })
            .collect();
        let named: Vec<&str> = named.into_iter().collect();
        // The sellers as their log says they are, kept current through the batch: an update replaces
        // its entry, a creation adds one.
        let state = w.fold_sellers(&named).await?;
        let mut documents: HashSet<(String, String)> = state
            .attestations
            .values()
            .flatten()
            .map(|a| (a.seller_id.to_string(), a.document_sha256.as_str().to_owned()))
            .collect();
        let mut sellers: HashMap<SellerId, Seller> = state.sellers.into_iter().collect();
        let mut new_sellers = Vec::new();
        let mut new_atts = Vec::new();
        // Sellers created earlier in this same batch.
        let mut batch_sellers = HashSet::new();
        for (index, item) in items {
            match item {
                ImportItem::Seller(SellerImport { mut fields, status_given, etag }) => match sellers
                    .get(&fields.seller_id)
                {
                    Some(_) if batch_sellers.contains(&fields.seller_id) => {
                        out.errors
                            .push(row_error(index, Violation::new("seller.seller_id", "appears twice in one batch")));
                    }
                    None if etag.is_some() => out.errors.push(row_error(
                        index,
                        Violation::new("seller.etag", format!("seller {} is not registered", fields.seller_id)),
                    )),
                    Some(current) if etag.as_ref().is_some_and(|e| *e != current.etag()) => {
                        out.errors.push(row_error(
                            index,
                            Violation::new(
                                "seller.etag",
                                format!("is stale: seller {} is now at {}", fields.seller_id, current.etag()),
                            ),
                        ));
                    }
                    None => {
                        let seller = new_seller(fields, &w);
                        w.append(&RegistryChange::SellerCreated(seller.clone()));
                        batch_sellers.insert(seller.seller_id.clone());
                        new_sellers.push(rows::seller_to_row(&seller));
                        sellers.insert(seller.seller_id.clone(), seller);
                        out.sellers_created += 1;
                    }
                    Some(current) => {
                        if !status_given {
                            fields.status = current.status;
                        }
                        if current.same_content(&fields) {
                            out.sellers_unchanged += 1;
                            continue;
                        }
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
        self.refresh_statistics(out.revision).await;
        Ok(out)
    }

    /// Keeps PostgreSQL's planner statistics current while a bulk import grows the log. Without
    /// them (a new database, or autovacuum off) the planner prices each batch's
    /// `seller_id IN (…)` read of the log as a whole-table scan, and an import slows quadratically:
    /// 180,000 sellers took 106 s instead of 20. Refreshed whenever the log has doubled since the
    /// last refresh, so a whole import costs a handful of `ANALYZE`s. A failure only costs speed,
    /// so it is logged, not returned: the batch is already committed.
    async fn refresh_statistics(&self, revision: i64) {
        use std::sync::atomic::Ordering;
        if self.db.get_database_backend() != DbBackend::Postgres {
            return;
        }
        let last = self.analyzed_at.load(Ordering::Relaxed);
        if revision < last.saturating_mul(2).max(1) || self.analyzed_at.swap(revision, Ordering::Relaxed) != last {
            return;
        }
        let sql = "ANALYZE registry_events, merkle_nodes, sellers, attestations";
        if let Err(e) = self.db.execute_unprepared(sql).await {
            tracing::warn!(error = %e, "could not refresh the planner statistics after an import batch");
        }
    }
}

fn row_error(index: i64, v: Violation) -> ImportRowError {
    ImportRowError { index, field: v.field, message: v.description }
}
