//! AuditService: the auditor's side of the registry. Every RPC is for auditors (and admins) and
//! authorizes first. The RPCs read the event log and the decision records from the database, or the
//! current snapshot, never the hot path's locks; replays and reports call the same pure `decide`
//! that VerifySeller does, so what an auditor sees is what checkout got.
//!
//! - [`history`]: the change feed, a seller's history and state as of a time, the chain check;
//! - [`decisions`]: ExplainDecision and the decision records;
//! - [`report`]: the compliance report and the recipient register;
//! - [`proofs`]: signed checkpoints, inclusion and consistency proofs, the check against a kept checkpoint.

mod decisions;
mod history;
mod proofs;
mod report;

use std::pin::Pin;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use prost_types::Timestamp as PbTimestamp;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use tonic::{Request, Response, Status};

use super::{Shared, convert};
use crate::domain::{Timestamp, Violation, Violations};
use crate::error::{Error, Result};
use crate::pb::v1 as pb;
use crate::pb::v1::audit_service_server::AuditService;

/// Largest page of ListRegistryEvents and ListDecisions.
pub const MAX_PAGE_SIZE: i32 = 1000;
const DEFAULT_PAGE_SIZE: i32 = 100;

/// The AuditService implementation.
pub struct AuditApi {
    shared: Shared,
}

impl AuditApi {
    pub fn new(shared: Shared) -> Self {
        Self { shared }
    }
}

/// The page size a request asked for: 0 means the default; more than the maximum is refused
/// rather than silently cut, so a client never mistakes a short page for the end.
fn page_size(raw: i32) -> Result<u64, Violation> {
    if !(0..=MAX_PAGE_SIZE).contains(&raw) {
        return Err(Violation::new("page_size", format!("must be between 0 and {MAX_PAGE_SIZE}")));
    }
    Ok(if raw == 0 { DEFAULT_PAGE_SIZE } else { raw } as u64)
}

/// An optional time filter.
fn optional_time(value: Option<&PbTimestamp>, field: &str) -> Result<Option<Timestamp>, Violation> {
    value.map(|t| convert::time(Some(t), field)).transpose()
}

/// A `[start_time, end_time)` filter; either end may be open.
fn time_range(
    start: Option<&PbTimestamp>,
    end: Option<&PbTimestamp>,
    v: &mut Violations,
) -> (Option<Timestamp>, Option<Timestamp>) {
    let start = v.check(optional_time(start, "start_time")).flatten();
    let end = v.check(optional_time(end, "end_time")).flatten();
    if let (Some(s), Some(e)) = (start, end)
        && e < s
    {
        v.push(Violation::new("end_time", "must not be before start_time"));
    }
    (start, end)
}

/// A time as a fingerprint part.
fn time_part(t: Option<&PbTimestamp>) -> String {
    t.map(|t| format!("{}.{}", t.seconds, t.nanos)).unwrap_or_default()
}

/// A digest of a request's filters, so that a page token only continues the query it came from.
fn fingerprint(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p.as_bytes());
    }
    hex::encode(&h.finalize()[..12])
}

/// What a page token encodes: where the last page ended, and the fingerprint of its filters.
#[derive(Serialize, serde::Deserialize)]
struct PageToken<T> {
    after: T,
    filters: String,
}

fn encode_token<T: Serialize>(after: T, filters: &str) -> String {
    let token = PageToken { after, filters: filters.to_owned() };
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&token).unwrap_or_default())
}

/// The position a token continues from; an empty token starts at the beginning. A token from
/// another RPC, or for other filters, is INVALID_ARGUMENT: continuing it would skip or repeat rows.
fn decode_token<T: DeserializeOwned>(raw: &str, filters: &str, rpc: &str) -> Result<Option<T>, Violation> {
    if raw.is_empty() {
        return Ok(None);
    }
    let bad = || Violation::new("page_token", format!("is not a token from a {rpc} response with these filters"));
    let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| bad())?;
    let token: PageToken<T> = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    if token.filters != filters {
        return Err(bad());
    }
    Ok(Some(token.after))
}

/// The stream ExportRecipientRegister answers with.
pub type RegisterStream = Pin<Box<dyn tokio_stream::Stream<Item = Result<pb::RecipientEntry, Status>> + Send>>;

#[tonic::async_trait]
impl AuditService for AuditApi {
    async fn list_registry_events(
        &self,
        request: Request<pb::ListRegistryEventsRequest>,
    ) -> Result<Response<pb::ListRegistryEventsResponse>, Status> {
        Ok(history::list_events(&self.shared, request).await?)
    }

    async fn get_seller_history(
        &self,
        request: Request<pb::GetSellerHistoryRequest>,
    ) -> Result<Response<pb::GetSellerHistoryResponse>, Status> {
        Ok(history::seller_history(&self.shared, request).await?)
    }

    async fn get_seller_as_of(
        &self,
        request: Request<pb::GetSellerAsOfRequest>,
    ) -> Result<Response<pb::GetSellerAsOfResponse>, Status> {
        Ok(history::seller_as_of(&self.shared, request).await?)
    }

    async fn verify_audit_chain(
        &self,
        request: Request<pb::VerifyAuditChainRequest>,
    ) -> Result<Response<pb::VerifyAuditChainResponse>, Status> {
        Ok(history::verify_chain(&self.shared, request).await?)
    }

    async fn explain_decision(
        &self,
        request: Request<pb::ExplainDecisionRequest>,
    ) -> Result<Response<pb::ExplainDecisionResponse>, Status> {
        Ok(decisions::explain(&self.shared, request).await?)
    }

    async fn list_decisions(
        &self,
        request: Request<pb::ListDecisionsRequest>,
    ) -> Result<Response<pb::ListDecisionsResponse>, Status> {
        Ok(decisions::list(&self.shared, request).await?)
    }

    async fn get_decision(
        &self,
        request: Request<pb::GetDecisionRequest>,
    ) -> Result<Response<pb::DecisionRecord>, Status> {
        Ok(decisions::get(&self.shared, request).await?)
    }

    async fn get_compliance_report(
        &self,
        request: Request<pb::GetComplianceReportRequest>,
    ) -> Result<Response<pb::ComplianceReport>, Status> {
        Ok(report::compliance(&self.shared, request).await?)
    }

    type ExportRecipientRegisterStream = RegisterStream;

    async fn export_recipient_register(
        &self,
        request: Request<pb::ExportRecipientRegisterRequest>,
    ) -> Result<Response<Self::ExportRecipientRegisterStream>, Status> {
        Ok(report::register(&self.shared, request).await?)
    }

    async fn get_checkpoint(
        &self,
        request: Request<pb::GetCheckpointRequest>,
    ) -> Result<Response<pb::SignedCheckpoint>, Status> {
        Ok(proofs::checkpoint(&self.shared, request).await?)
    }

    async fn get_inclusion_proof(
        &self,
        request: Request<pb::GetInclusionProofRequest>,
    ) -> Result<Response<pb::InclusionProof>, Status> {
        Ok(proofs::inclusion(&self.shared, request).await?)
    }

    async fn get_consistency_proof(
        &self,
        request: Request<pb::GetConsistencyProofRequest>,
    ) -> Result<Response<pb::ConsistencyProof>, Status> {
        Ok(proofs::consistency(&self.shared, request).await?)
    }
}

/// Every violation collected, or nothing.
fn done(v: Violations) -> Result<()> {
    if v.is_empty() { Ok(()) } else { Err(Error::Invalid(v.into_vec())) }
}
