//! RegistryService: legal's writes and everyone's reads of the registry. Every write answers with
//! the registry revision it produced, which VerifySeller's `min_revision` accepts, so legal's client
//! can read its own writes from any replica.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use tonic::{Request, Response, Status, Streaming};
use tracing::Instrument;

use super::{Shared, convert};
use crate::auth::{Role, authorize};
use crate::domain::input::SellerPatch;
use crate::domain::{Country, SellerId, SellerStatus, Violation};
use crate::error::{Error, Result};
use crate::pb::v1 as pb;
use crate::pb::v1::registry_service_server::RegistryService;
use crate::store::{ImportItem, ImportOutcome, ImportRowError};

/// Largest ListSellers page.
pub const MAX_PAGE_SIZE: i32 = 1000;
const DEFAULT_PAGE_SIZE: i32 = 100;
/// Import items applied per transaction: big enough to amortise the commit, small enough to keep
/// the write lock briefly.
const IMPORT_BATCH: usize = 1000;

/// The RegistryService implementation.
pub struct RegistryApi {
    shared: Shared,
}

impl RegistryApi {
    pub fn new(shared: Shared) -> Self {
        Self { shared }
    }
}

/// What a page token encodes: where the last page ended, and the filters it was for.
#[derive(Serialize, Deserialize, PartialEq)]
struct PageToken {
    after: String,
    country: String,
    status: i32,
}

fn decode_token(raw: &str, req: &pb::ListSellersRequest) -> Result<Option<SellerId>> {
    if raw.is_empty() {
        return Ok(None);
    }
    let bad = || Error::invalid("page_token", "is not a token from a ListSellers response with these filters");
    let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| bad())?;
    let token: PageToken = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    if token.country != req.country || token.status != req.status {
        return Err(bad());
    }
    SellerId::parse(&token.after).map(Some).map_err(|_| bad())
}

fn encode_token(after: &SellerId, req: &pb::ListSellersRequest) -> String {
    let token = PageToken { after: after.to_string(), country: req.country.clone(), status: req.status };
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&token).unwrap_or_default())
}

fn import_item(req: pb::ImportSellersRequest, index: i64) -> Result<ImportItem, Vec<ImportRowError>> {
    let as_rows = |vs: Vec<Violation>| {
        vs.into_iter().map(|v| ImportRowError { index, field: v.field, message: v.description }).collect()
    };
    match req.item {
        Some(pb::import_sellers_request::Item::Seller(s)) => {
            convert::seller_import(&s, "seller").map(ImportItem::Seller).map_err(as_rows)
        }
        Some(pb::import_sellers_request::Item::Attestation(a)) => {
            convert::attestation_fields(&a, "attestation").map(ImportItem::Attestation).map_err(as_rows)
        }
        None => Err(as_rows(vec![Violation::new("item", "must be a seller or an attestation")])),
    }
}

/// Errors an import report lists; beyond it only `errors_total` counts them, so a file of bad rows
/// cannot make the report larger than a client accepts.
const MAX_REPORTED_ERRORS: usize = 1000;

/// The first [`MAX_REPORTED_ERRORS`] item errors of an import (by index) and how many there were.
#[derive(Default)]
struct ErrorTally {
    kept: Vec<ImportRowError>,
    total: i64,
}

impl ErrorTally {
    fn add(&mut self, errors: Vec<ImportRowError>) {
        self.total += errors.len() as i64;
        self.kept.extend(errors);
        // Trimming to the lowest indices is safe at any time: what is dropped has MAX smaller ones.
        if self.kept.len() > 2 * MAX_REPORTED_ERRORS {
            self.trim();
        }
    }

    fn trim(&mut self) {
        self.kept.sort_by_key(|e| e.index);
        self.kept.truncate(MAX_REPORTED_ERRORS);
    }

    fn finish(mut self) -> (Vec<ImportRowError>, i64) {
        self.trim();
        (self.kept, self.total)
    }
}

/// `status`, extended with what an import that ends early did commit: every item before `applied`.
fn partial(status: Status, total: &ImportOutcome, errors: &ErrorTally, applied: i64) -> Status {
    Status::new(
        status.code(),
        format!(
            "{}; the first {applied} items were applied (sellers created {}, updated {}, unchanged {}; \
             attestations created {}, unchanged {}; {} errors) up to revision {}, none after them; \
             the import is idempotent: resend from item {applied}",
            status.message(),
            total.sellers_created,
            total.sellers_updated,
            total.sellers_unchanged,
            total.attestations_created,
            total.attestations_unchanged,
            errors.total,
            total.revision,
        ),
    )
}

fn merge(total: &mut ImportOutcome, part: ImportOutcome) {
    total.sellers_created += part.sellers_created;
    total.sellers_updated += part.sellers_updated;
    total.sellers_unchanged += part.sellers_unchanged;
    total.attestations_created += part.attestations_created;
    total.attestations_unchanged += part.attestations_unchanged;
    total.errors.extend(part.errors);
    total.revision = total.revision.max(part.revision);
}

#[tonic::async_trait]
impl RegistryService for RegistryApi {
    async fn create_seller(
        &self,
        request: Request<pb::CreateSellerRequest>,
    ) -> Result<Response<pb::CreateSellerResponse>, Status> {
        let actor = authorize(&request, &[Role::Legal])?.subject.clone();
        let req = request.into_inner();
        let request_id = convert::request_id(&req.request_id).map_err(Error::from)?;
        let seller = req.seller.ok_or_else(|| Error::invalid("seller", "must be set"))?;
        let fields = convert::seller_fields(&seller, "seller").map_err(Error::Invalid)?;
        let span = tracing::info_span!("create_seller", %actor, seller = %fields.seller_id);
        let (seller, revision) =
            self.shared.store.create_seller(&actor, request_id.as_deref(), fields).instrument(span).await?;
        Ok(Response::new(pb::CreateSellerResponse { seller: Some(convert::pb_seller(&seller)), revision }))
    }

    async fn update_seller(
        &self,
        request: Request<pb::UpdateSellerRequest>,
    ) -> Result<Response<pb::UpdateSellerResponse>, Status> {
        let actor = authorize(&request, &[Role::Legal])?.subject.clone();
        let req = request.into_inner();
        let request_id = convert::request_id(&req.request_id).map_err(Error::from)?;
        let seller = req.seller.ok_or_else(|| Error::invalid("seller", "must be set"))?;
        let paths = req.update_mask.map(|m| m.paths).unwrap_or_default();
        let patch =
            SellerPatch::from_paths(convert::seller_input(&seller), &paths, "update_mask").map_err(Error::from)?;
        let id = patch.seller_id("seller").map_err(Error::from)?;
        let current =
            self.shared.store.get_seller(&id).await?.ok_or_else(|| Error::NotFound(format!("seller {id}")))?.0;
        // Only the masked fields are validated from the message; the rest of `seller` may be empty.
        let update = patch.validate(&current, "seller").map_err(Error::Invalid)?;
        let span = tracing::info_span!("update_seller", %actor, seller = %id);
        let (seller, revision) =
            self.shared.store.update_seller(&actor, request_id.as_deref(), update).instrument(span).await?;
        Ok(Response::new(pb::UpdateSellerResponse { seller: Some(convert::pb_seller(&seller)), revision }))
    }

    async fn get_seller(
        &self,
        request: Request<pb::GetSellerRequest>,
    ) -> Result<Response<pb::GetSellerResponse>, Status> {
        authorize(&request, &[Role::Legal, Role::Auditor])?;
        let id = SellerId::parse_field(&request.get_ref().seller_id, "seller_id").map_err(Error::from)?;
        let (seller, atts, revision) =
            self.shared.store.get_seller(&id).await?.ok_or_else(|| Error::NotFound(format!("seller {id}")))?;
        Ok(Response::new(pb::GetSellerResponse {
            seller: Some(convert::pb_seller(&seller)),
            attestations: atts.iter().map(convert::pb_attestation).collect(),
            revision,
        }))
    }

    async fn list_sellers(
        &self,
        request: Request<pb::ListSellersRequest>,
    ) -> Result<Response<pb::ListSellersResponse>, Status> {
        authorize(&request, &[Role::Legal, Role::Auditor])?;
        let req = request.into_inner();
        let country = if req.country.is_empty() {
            None
        } else {
            Some(Country::parse(&req.country).map_err(|why| Error::invalid("country", why))?)
        };
        let status: Option<SellerStatus> =
            if req.status == 0 { None } else { Some(convert::one(req.status, "status").map_err(Error::from)?) };
        if !(0..=MAX_PAGE_SIZE).contains(&req.page_size) {
            return Err(Error::invalid("page_size", format!("must be between 0 and {MAX_PAGE_SIZE}")).into());
        }
        let size = if req.page_size == 0 { DEFAULT_PAGE_SIZE } else { req.page_size };
        let after = decode_token(&req.page_token, &req)?;
        // One more than a page tells whether another page follows.
        let mut sellers = self.shared.store.list_sellers(country, status, after.as_ref(), size as u64 + 1).await?;
        let next_page_token = if sellers.len() > size as usize {
            sellers.truncate(size as usize);
            sellers.last().map(|s| encode_token(&s.seller_id, &req)).unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Response::new(pb::ListSellersResponse {
            sellers: sellers.iter().map(convert::pb_seller).collect(),
            next_page_token,
        }))
    }

    async fn submit_attestation(
        &self,
        request: Request<pb::SubmitAttestationRequest>,
    ) -> Result<Response<pb::SubmitAttestationResponse>, Status> {
        let actor = authorize(&request, &[Role::Legal])?.subject.clone();
        let req = request.into_inner();
        let request_id = convert::request_id(&req.request_id).map_err(Error::from)?;
        let att = req.attestation.ok_or_else(|| Error::invalid("attestation", "must be set"))?;
        let fields = convert::attestation_fields(&att, "attestation").map_err(Error::Invalid)?;
        let span = tracing::info_span!("submit_attestation", %actor, seller = %fields.seller_id);
        let (att, revision) =
            self.shared.store.submit_attestation(&actor, request_id.as_deref(), fields).instrument(span).await?;
        Ok(Response::new(pb::SubmitAttestationResponse { attestation: Some(convert::pb_attestation(&att)), revision }))
    }

    async fn revoke_attestation(
        &self,
        request: Request<pb::RevokeAttestationRequest>,
    ) -> Result<Response<pb::RevokeAttestationResponse>, Status> {
        let actor = authorize(&request, &[Role::Legal])?.subject.clone();
        let req = request.into_inner();
        let mut v = crate::domain::Violations::new();
        let request_id = v.check(convert::request_id(&req.request_id));
        let id = v.check(convert::text(&req.attestation_id, "attestation_id", 64, true));
        let reason = v.check(convert::text(&req.reason, "reason", convert::MAX_REASON, true));
        let (Some(request_id), Some(id), Some(reason)) = (request_id, id, reason) else {
            return Err(Error::Invalid(v.into_vec()).into());
        };
        let span = tracing::info_span!("revoke_attestation", %actor, attestation = %id);
        let (att, revision) =
            self.shared.store.revoke_attestation(&actor, request_id.as_deref(), &id, &reason).instrument(span).await?;
        Ok(Response::new(pb::RevokeAttestationResponse { attestation: Some(convert::pb_attestation(&att)), revision }))
    }

    async fn import_sellers(
        &self,
        request: Request<Streaming<pb::ImportSellersRequest>>,
    ) -> Result<Response<pb::ImportSellersResponse>, Status> {
        let actor = authorize(&request, &[Role::Legal])?.subject.clone();
        let idle = self.shared.stream_idle_timeout;
        let mut stream = request.into_inner();
        // An import that writes nothing answers the log's head, not this replica's snapshot, which
        // may not have applied the caller's previous write yet.
        let head = self.shared.store.head().await?.0;
        let mut total = ImportOutcome { revision: head, ..ImportOutcome::default() };
        let mut errors = ErrorTally::default();
        let mut batch = Vec::with_capacity(IMPORT_BATCH);
        let mut index = 0i64;
        // Every item before this one is applied or reported: where a resend would start.
        let mut applied = 0i64;
        let span = tracing::info_span!("import_sellers", %actor);
        // The request timeout does not apply to this stream (however long a bulk load takes, it is
        // working); a client that stops sending is bounded by the idle timeout instead.
        let ended = loop {
            let next = match tokio::time::timeout(idle, stream.message()).await {
                Ok(Ok(next)) => next,
                Ok(Err(status)) => break Some(status),
                Err(_) => {
                    break Some(Status::deadline_exceeded(format!(
                        "import stream idle for more than {} ms",
                        idle.as_millis()
                    )));
                }
            };
            let done = next.is_none();
            if let Some(item) = next {
                match import_item(item, index) {
                    Ok(item) => batch.push((index, item)),
                    Err(faults) => errors.add(faults),
                }
                index += 1;
            }
            if batch.len() >= IMPORT_BATCH || (done && !batch.is_empty()) {
                let items = std::mem::take(&mut batch);
                let outcome = self.shared.store.import_batch(&actor, items).instrument(span.clone()).await;
                let mut outcome = outcome.map_err(|e| partial(e.into(), &total, &errors, applied))?;
                errors.add(std::mem::take(&mut outcome.errors));
                merge(&mut total, outcome);
                applied = index;
            }
            if done {
                break None;
            }
        };
        if let Some(status) = ended {
            // A stream that breaks or goes idle applies nothing of its unfinished batch (a client
            // cut off midway must not leave a random prefix of it); the status says exactly which
            // items were applied, and the import is idempotent, so the client resends from there.
            return Err(partial(status, &total, &errors, applied));
        }
        let (errors, errors_total) = errors.finish();
        // A bulk load is a natural point for a checkpoint; the signer does it on its own task.
        if let Some(tlog) = &self.shared.tlog {
            tlog.registry.sign_soon();
        }
        Ok(Response::new(pb::ImportSellersResponse {
            sellers_created: total.sellers_created,
            sellers_updated: total.sellers_updated,
            sellers_unchanged: total.sellers_unchanged,
            attestations_created: total.attestations_created,
            attestations_unchanged: total.attestations_unchanged,
            errors: errors
                .into_iter()
                .map(|e| pb::ImportError { index: e.index, field: e.field, message: e.message })
                .collect(),
            revision: total.revision,
            errors_total,
        }))
    }

    async fn create_suspension_order(
        &self,
        request: Request<pb::CreateSuspensionOrderRequest>,
    ) -> Result<Response<pb::CreateSuspensionOrderResponse>, Status> {
        Ok(super::oversight::create_order(&self.shared, request).await?)
    }

    async fn lift_suspension_order(
        &self,
        request: Request<pb::LiftSuspensionOrderRequest>,
    ) -> Result<Response<pb::LiftSuspensionOrderResponse>, Status> {
        Ok(super::oversight::lift_order(&self.shared, request).await?)
    }

    async fn list_suspension_orders(
        &self,
        request: Request<pb::ListSuspensionOrdersRequest>,
    ) -> Result<Response<pb::ListSuspensionOrdersResponse>, Status> {
        Ok(super::oversight::list_orders(&self.shared, request).await?)
    }

    async fn record_supervision(
        &self,
        request: Request<pb::RecordSupervisionRequest>,
    ) -> Result<Response<pb::RecordSupervisionResponse>, Status> {
        Ok(super::oversight::record_supervision(&self.shared, request).await?)
    }
}
