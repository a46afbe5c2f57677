//! The registry's history: the change feed, a seller's versions, a seller as of a time or revision,
//! and the check of the hash chain.

use tonic::{Request, Response};

use super::{decode_token, done, encode_token, fingerprint, page_size, time_part, time_range};
use crate::auth::{Role, authorize};
use crate::domain::registry::EventKind;
use crate::domain::registry::RegistryChange;
use crate::domain::replay::SellerReplay;
use crate::domain::{SellerId, Violation, Violations};
use crate::error::{Error, Result};
use crate::grpc::Shared;
use crate::grpc::convert::{self, pb_attestation, pb_seller, pb_time};
use crate::grpc::oversight::pb_supervision;
use crate::pb::v1 as pb;
use crate::store::{EventFilter, StoredEvent};

/// Events read per query while checking the chain.
const CHAIN_PAGE: u64 = 5000;

fn pb_event(e: StoredEvent) -> pb::RegistryEvent {
    pb::RegistryEvent {
        revision: e.revision,
        time: pb_time(e.time),
        actor: e.actor,
        kind: e.kind,
        seller_id: e.seller_id,
        payload: e.payload,
        prev_hash: e.prev_hash,
        hash: e.hash,
    }
}

/// The change an event records. A payload that does not parse is a damaged log: an internal error
/// (VerifyAuditChain tells where), never a guess.
fn change_of(e: &StoredEvent) -> Result<RegistryChange> {
    RegistryChange::from_event(&e.kind, &e.payload)
        .map_err(|why| Error::Internal(format!("registry event {}: {why}", e.revision)))
}

/// An optional seller id filter.
fn seller_filter(raw: &str, v: &mut Violations) -> Option<SellerId> {
    if raw.is_empty() { None } else { v.check(SellerId::parse_field(raw, "seller_id")) }
}

pub async fn list_events(
    shared: &Shared,
    request: Request<pb::ListRegistryEventsRequest>,
) -> Result<Response<pb::ListRegistryEventsResponse>> {
    authorize(&request, &[Role::Auditor])?;
    let req = request.into_inner();
    let mut v = Violations::new();
    if req.after_revision < 0 {
        v.push(Violation::new("after_revision", "must not be negative"));
    }
    let seller_id = seller_filter(&req.seller_id, &mut v);
    if !req.kind.is_empty() && EventKind::parse(&req.kind).is_none() {
        let names: Vec<_> = EventKind::ALL.iter().map(|k| k.name()).collect();
        v.push(Violation::new("kind", format!("must be one of {}", names.join(", "))));
    }
    let actor = v.check(convert::text(&req.actor, "actor", convert::MAX_NAME, false));
    let (start, end) = time_range(req.start_time.as_ref(), req.end_time.as_ref(), &mut v);
    let size = v.check(page_size(req.page_size));
    let filters = fingerprint(&[
        &req.after_revision.to_string(),
        &req.seller_id,
        &req.kind,
        &req.actor,
        &time_part(req.start_time.as_ref()),
        &time_part(req.end_time.as_ref()),
    ]);
    let after = v.check(decode_token::<i64>(&req.page_token, &filters, "ListRegistryEvents")).flatten();
    done(v)?;
    let size = size.unwrap_or_default();
    let filter = EventFilter {
        after: after.unwrap_or(0).max(req.after_revision),
        seller_id,
        kind: (!req.kind.is_empty()).then_some(req.kind),
        actor: actor.filter(|a| !a.is_empty()),
        start,
        end,
    };
    // One more than a page tells whether another page follows.
    let mut events = shared.audit_reads().list_events(&filter, size + 1).await?;
    let next_page_token = if events.len() as u64 > size {
        events.truncate(size as usize);
        events.last().map(|e| encode_token(e.revision, &filters)).unwrap_or_default()
    } else {
        String::new()
    };
    Ok(Response::new(pb::ListRegistryEventsResponse {
        events: events.into_iter().map(pb_event).collect(),
        next_page_token,
    }))
}

pub async fn seller_history(
    shared: &Shared,
    request: Request<pb::GetSellerHistoryRequest>,
) -> Result<Response<pb::GetSellerHistoryResponse>> {
    authorize(&request, &[Role::Auditor])?;
    let id = SellerId::parse_field(&request.get_ref().seller_id, "seller_id")?;
    let events = shared.audit_reads().seller_history(&id).await?;
    if events.is_empty() {
        return Err(Error::NotFound(format!("seller {id}")));
    }
    let versions = events
        .iter()
        .map(|e| {
            let mut version = pb::SellerVersion {
                revision: e.revision,
                time: pb_time(e.time),
                actor: e.actor.clone(),
                kind: e.kind.clone(),
                ..Default::default()
            };
            match change_of(e)? {
                RegistryChange::SellerCreated(s) | RegistryChange::SellerUpdated(s) => {
                    version.seller = Some(pb_seller(&s));
                }
                RegistryChange::AttestationSubmitted(a) | RegistryChange::AttestationRevoked(a) => {
                    version.attestation = Some(pb_attestation(&a));
                }
                RegistryChange::SupervisionRecorded(s) => version.supervision = Some(pb_supervision(&s)),
                // The query asks for the seller's own kinds only.
                RegistryChange::SuspensionOrderCreated(_) | RegistryChange::SuspensionOrderLifted(_) => {}
            }
            Ok(version)
        })
        .collect::<Result<_>>()?;
    Ok(Response::new(pb::GetSellerHistoryResponse { versions }))
}

pub async fn seller_as_of(
    shared: &Shared,
    request: Request<pb::GetSellerAsOfRequest>,
) -> Result<Response<pb::GetSellerAsOfResponse>> {
    authorize(&request, &[Role::Auditor])?;
    let req = request.get_ref();
    let mut v = Violations::new();
    let id = v.check(SellerId::parse_field(&req.seller_id, "seller_id"));
    let time = match (&req.time, req.revision) {
        (Some(t), 0) => v.check(convert::time(Some(t), "time")),
        (None, r) if r > 0 => None,
        (None, r) if r < 0 => {
            v.push(Violation::new("revision", "must be positive"));
            None
        }
        _ => {
            v.push(Violation::new("time", "exactly one of time and revision must be set"));
            None
        }
    };
    done(v)?;
    let Some(id) = id else { return Err(Error::invalid("seller_id", "must be set")) };
    // A time stands for the last revision written at or before it: the log's prefix a replica had
    // applied then, whatever the clocks of later writers said.
    let until = match time {
        Some(t) => shared.audit_reads().revision_at(t).await?,
        None => req.revision,
    };
    let mut replay = SellerReplay::new(id.clone());
    for e in shared.audit_reads().replay_events(&id, until, false).await? {
        if EventKind::parse(&e.kind).is_some_and(EventKind::is_sellers_own) {
            replay.apply(e.revision, &change_of(&e)?);
        }
    }
    let Some(seller) = &replay.seller else {
        return Err(Error::NotFound(format!("seller {id} at revision {until}")));
    };
    Ok(Response::new(pb::GetSellerAsOfResponse {
        seller: Some(pb_seller(seller)),
        attestations: replay.attestations.iter().map(pb_attestation).collect(),
        revision: replay.revision,
    }))
}

pub async fn verify_chain(
    shared: &Shared,
    request: Request<pb::VerifyAuditChainRequest>,
) -> Result<Response<pb::VerifyAuditChainResponse>> {
    authorize(&request, &[Role::Auditor])?;
    let mut report = shared.store.verify_chain(CHAIN_PAGE).await?;
    if !report.ok {
        tracing::error!(revision = report.first_broken_revision, problem = %report.problem, "the registry's hash chain is broken");
    }
    let trusted = &request.get_ref().trusted_checkpoint;
    let trusted = if trusted.is_empty() { None } else { Some(super::proofs::check_trusted(shared, trusted).await?) };
    // A chain that rehashes cleanly can still be a rewritten one: the kept checkpoint decides.
    if let Some(t) = trusted.as_ref().filter(|t| !t.consistent && report.ok) {
        tracing::error!(revision = ?t.first_bad, problem = %t.problem, "the registry log does not extend a trusted checkpoint");
        report.ok = false;
        report.first_broken_revision = t.first_bad.unwrap_or(0);
        report.problem = t.problem.clone();
    }
    Ok(Response::new(pb::VerifyAuditChainResponse {
        ok: report.ok,
        head_revision: report.head_revision,
        head_hash: report.head_hash,
        first_broken_revision: report.first_broken_revision,
        problem: report.problem,
        events_checked: report.events_checked,
        checkpoint_checked: trusted.is_some(),
        checkpoint_consistent: trusted.as_ref().is_some_and(|t| t.consistent),
        checkpoint_size: trusted.as_ref().map_or(0, |t| t.size),
    }))
}
