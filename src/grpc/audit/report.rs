//! Whole-registry answers from the current snapshot: the compliance report and the recipient
//! register. Both judge every seller with the decision engine, which is CPU work proportional to the
//! registry: it runs on the blocking pool, never on the async workers that serve checkout.

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::RegisterStream;
use crate::auth::{Role, authorize};
use crate::domain::replay::compliance::{Recipient, asks, compliance as judge, recipient};
use crate::domain::verify::Context;
use crate::domain::{Timestamp, Vocab};
use crate::error::{Error, Result};
use crate::grpc::Shared;
use crate::grpc::convert::pb_time;
use crate::pb::v1 as pb;
use crate::snapshot::{Record, Snapshot};

/// The horizon of the expiring-contracts list when the request leaves it 0.
const DEFAULT_EXPIRING_DAYS: u32 = 30;
/// Register entries buffered ahead of a slow reader.
const REGISTER_BUFFER: usize = 256;

/// The sellers of a snapshot in seller-id order (the register's order, stable across replicas),
/// as compact records, judged in place.
pub fn sellers_by_id(snapshot: &Snapshot) -> Vec<Record<'_>> {
    let mut sellers: Vec<Record<'_>> = snapshot.iter().collect();
    sellers.sort_unstable_by(|a, b| a.id().cmp(b.id()));
    sellers
}

/// A register entry on the wire.
pub fn pb_recipient(r: &Recipient) -> pb::RecipientEntry {
    pb::RecipientEntry {
        seller_id: r.seller_id.to_string(),
        legal_name: r.legal_name.clone(),
        privacy_contact: r.privacy_contact.clone(),
        country: r.country.to_string(),
        purposes: r
            .purposes
            .iter()
            .map(|p| pb::RecipientPurpose {
                purpose: p.purpose.number(),
                categories: p.categories.iter().map(|c| c.number()).collect(),
                retention_days: p.retention_days,
            })
            .collect(),
    }
}

fn joined(e: tokio::task::JoinError) -> Error {
    Error::Internal(format!("a report task failed: {e}"))
}

pub async fn compliance(
    shared: &Shared,
    request: Request<pb::GetComplianceReportRequest>,
) -> Result<Response<pb::ComplianceReport>> {
    authorize(&request, &[Role::Auditor])?;
    let days = match request.get_ref().expiring_within_days {
        0 => DEFAULT_EXPIRING_DAYS,
        n => n,
    };
    let registry = Arc::clone(&shared.registry);
    let report = tokio::task::spawn_blocking(move || {
        let snapshot = registry.snapshot();
        let policy = registry.policy();
        let now = Timestamp::now();
        // The report judges the registry as it is, so staleness is not a finding here (health and
        // VerifySeller report it).
        let ctx = Context { policy, orders: &snapshot.orders, now, stale: false };
        let c = judge(&ctx, snapshot.iter().map(|r| r.view()), days);
        pb::ComplianceReport {
            countries: c
                .countries
                .iter()
                .map(|(country, n)| pb::CountryCompliance {
                    country: country.to_string(),
                    allowed: n.allowed,
                    partial: n.partial,
                    denied: n.denied,
                    suspended: n.suspended,
                    no_contract: n.no_contract,
                })
                .collect(),
            missing_clauses: c
                .missing_clauses
                .iter()
                .map(|(clause, sellers)| pb::ClauseCount { clause: clause.number(), sellers: *sellers })
                .collect(),
            expiring: c
                .expiring
                .iter()
                .map(|e| pb::ExpiringContract {
                    seller_id: e.seller_id.to_string(),
                    attestation_id: e.attestation_id.to_string(),
                    expire_time: pb_time(e.expire),
                })
                .collect(),
            revision: snapshot.revision,
            policy_version: policy.version.clone(),
            time: pb_time(now),
        }
    })
    .await
    .map_err(joined)?;
    Ok(Response::new(report))
}

pub async fn register(
    shared: &Shared,
    request: Request<pb::ExportRecipientRegisterRequest>,
) -> Result<Response<RegisterStream>> {
    authorize(&request, &[Role::Auditor])?;
    let registry = Arc::clone(&shared.registry);
    let (tx, rx) = mpsc::channel::<Result<pb::RecipientEntry, Status>>(REGISTER_BUFFER);
    // One snapshot for the whole stream: the register is the registry at one revision. The task
    // ends when the client goes away (the send fails) or every seller was judged.
    tokio::task::spawn_blocking(move || {
        let snapshot = registry.snapshot();
        let policy = registry.policy();
        let ctx = Context { policy, orders: &snapshot.orders, now: Timestamp::now(), stale: false };
        let asks = asks(policy);
        for seller in sellers_by_id(&snapshot) {
            if let Some(entry) = recipient(&ctx, &seller, &asks)
                && tx.blocking_send(Ok(pb_recipient(&entry))).is_err()
            {
                return;
            }
        }
    });
    Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
}
