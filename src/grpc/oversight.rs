//! RegistryService's oversight RPCs: suspension orders (PIPA 28-9) and supervision evidence
//! (PIPA 26(4)). Mapped here and validated by `domain::input`; the trait methods in `registry.rs` delegate.

use tonic::{Request, Response};
use tracing::Instrument;

use super::Shared;
use super::convert::{self, MAX_REASON, pb_time, text};
use crate::auth::{Role, authorize};
use crate::domain::registry::{Supervision, SuspensionOrder};
use crate::domain::verify::SuspensionScope;
use crate::domain::{Violations, Vocab};
use crate::error::{Error, Result};
use crate::pb::v1 as pb;

/// A suspension order on the wire.
pub fn pb_order(o: &SuspensionOrder) -> pb::SuspensionOrder {
    let (seller_id, country) = match &o.scope {
        SuspensionScope::Seller(id) => (id.to_string(), String::new()),
        SuspensionScope::Country(c) => (String::new(), c.to_string()),
    };
    pb::SuspensionOrder {
        order_id: o.order_id.clone(),
        order_ref: o.order_ref.clone(),
        seller_id,
        country,
        categories: o.categories.iter().map(|c| c.number()).collect(),
        effective_time: pb_time(o.effective_time),
        note: o.note.clone(),
        lifted: o.lifted,
        lift_time: o.lift_time.and_then(pb_time),
        lift_reason: o.lift_reason.clone(),
        created_by: o.created_by.clone(),
        revision: o.revision,
    }
}

/// Supervision evidence on the wire.
pub fn pb_supervision(s: &Supervision) -> pb::Supervision {
    pb::Supervision {
        supervision_id: s.supervision_id.clone(),
        seller_id: s.seller_id.to_string(),
        kind: s.kind.number(),
        time: pb_time(s.time),
        evidence_sha256: s.evidence_sha256.as_str().to_owned(),
        note: s.note.clone(),
        recorded_by: s.recorded_by.clone(),
        revision: s.revision,
    }
}

pub async fn create_order(
    shared: &Shared,
    request: Request<pb::CreateSuspensionOrderRequest>,
) -> Result<Response<pb::CreateSuspensionOrderResponse>> {
    let actor = authorize(&request, &[Role::Legal])?.subject.clone();
    let req = request.into_inner();
    let request_id = convert::request_id(&req.request_id)?;
    let order = req.order.ok_or_else(|| Error::invalid("order", "must be set"))?;
    let fields = convert::order_fields(&order, "order").map_err(Error::Invalid)?;
    let span = tracing::info_span!("create_suspension_order", %actor, order_ref = %fields.order_ref);
    let (order, revision) =
        shared.store.create_suspension_order(&actor, request_id.as_deref(), fields).instrument(span).await?;
    Ok(Response::new(pb::CreateSuspensionOrderResponse { order: Some(pb_order(&order)), revision }))
}

pub async fn lift_order(
    shared: &Shared,
    request: Request<pb::LiftSuspensionOrderRequest>,
) -> Result<Response<pb::LiftSuspensionOrderResponse>> {
    let actor = authorize(&request, &[Role::Legal])?.subject.clone();
    let req = request.into_inner();
    let mut v = Violations::new();
    let request_id = v.check(convert::request_id(&req.request_id));
    let id = v.check(text(&req.order_id, "order_id", 64, true));
    let reason = v.check(text(&req.reason, "reason", MAX_REASON, true));
    let (Some(request_id), Some(id), Some(reason)) = (request_id, id, reason) else {
        return Err(Error::Invalid(v.into_vec()));
    };
    let span = tracing::info_span!("lift_suspension_order", %actor, order = %id);
    let (order, revision) =
        shared.store.lift_suspension_order(&actor, request_id.as_deref(), &id, &reason).instrument(span).await?;
    Ok(Response::new(pb::LiftSuspensionOrderResponse { order: Some(pb_order(&order)), revision }))
}

pub async fn list_orders(
    shared: &Shared,
    request: Request<pb::ListSuspensionOrdersRequest>,
) -> Result<Response<pb::ListSuspensionOrdersResponse>> {
    authorize(&request, &[Role::Legal, Role::Auditor])?;
    let orders = shared.store.list_suspension_orders(request.get_ref().include_lifted).await?;
    Ok(Response::new(pb::ListSuspensionOrdersResponse { orders: orders.iter().map(pb_order).collect() }))
}

pub async fn record_supervision(
    shared: &Shared,
    request: Request<pb::RecordSupervisionRequest>,
) -> Result<Response<pb::RecordSupervisionResponse>> {
    let actor = authorize(&request, &[Role::Legal])?.subject.clone();
    let req = request.into_inner();
    let request_id = convert::request_id(&req.request_id)?;
    let s = req.supervision.ok_or_else(|| Error::invalid("supervision", "must be set"))?;
    let fields = convert::supervision_fields(&s, "supervision").map_err(Error::Invalid)?;
    let span = tracing::info_span!("record_supervision", %actor, seller = %fields.seller_id);
    let (record, revision) =
        shared.store.record_supervision(&actor, request_id.as_deref(), fields).instrument(span).await?;
    Ok(Response::new(pb::RecordSupervisionResponse { supervision: Some(pb_supervision(&record)), revision }))
}
