//! RegistryService's oversight RPCs: suspension orders (PIPA 28-9) and supervision evidence
//! (PIPA 26(4)). Converted and validated here; the trait methods in `registry.rs` delegate.

use tonic::{Request, Response};
use tracing::Instrument;

use super::Shared;
use super::convert::{self, MAX_REASON, MAX_REF, path, pb_time, text, time};
use crate::auth::{Role, authorize};
use crate::domain::registry::{Supervision, SupervisionFields, SuspensionOrder, SuspensionOrderFields};
use crate::domain::verify::SuspensionScope;
use crate::domain::{Country, DocumentSha256, SellerId, Timestamp, Violation, Violations, Vocab};
use crate::error::{Error, Result};
use crate::pb::v1 as pb;

/// The fields of a suspension order, validated whole.
pub fn order_fields(o: &pb::SuspensionOrder, prefix: &str) -> Result<SuspensionOrderFields, Vec<Violation>> {
    let mut v = Violations::new();
    let order_ref = v.check(text(&o.order_ref, &path(prefix, "order_ref"), MAX_REF, true));
    let scope = match (o.seller_id.is_empty(), o.country.is_empty()) {
        (false, true) => {
            v.check(SellerId::parse_field(&o.seller_id, &path(prefix, "seller_id")).map(SuspensionScope::Seller))
        }
        (true, false) => v.check(
            Country::parse(&o.country)
                .map(SuspensionScope::Country)
                .map_err(|why| Violation::new(path(prefix, "country"), why)),
        ),
        _ => {
            v.push(Violation::new(path(prefix, "seller_id"), "exactly one of seller_id and country must be set"));
            None
        }
    };
    let categories = convert::list(&o.categories, &path(prefix, "categories"), false, &mut v);
    let effective_time = match &o.effective_time {
        None => Some(Timestamp::now()),
        Some(t) => v.check(time(Some(t), &path(prefix, "effective_time"))),
    };
    let note = v.check(text(&o.note, &path(prefix, "note"), MAX_REASON, false));
    match (order_ref, scope, effective_time, note) {
        (Some(order_ref), Some(scope), Some(effective_time), Some(note)) if v.is_empty() => {
            Ok(SuspensionOrderFields { order_ref, scope, categories, effective_time, note })
        }
        _ => Err(v.into_vec()),
    }
}

fn supervision_fields(s: &pb::Supervision, prefix: &str) -> Result<SupervisionFields, Vec<Violation>> {
    let mut v = Violations::new();
    let seller_id = v.check(SellerId::parse_field(&s.seller_id, &path(prefix, "seller_id")));
    let kind = v.check(convert::one(s.kind, &path(prefix, "kind")));
    let at = v.check(time(s.time.as_ref(), &path(prefix, "time")));
    let evidence = v.check(
        DocumentSha256::parse(&s.evidence_sha256).map_err(|why| Violation::new(path(prefix, "evidence_sha256"), why)),
    );
    let note = v.check(text(&s.note, &path(prefix, "note"), MAX_REASON, false));
    match (seller_id, kind, at, evidence, note) {
        (Some(seller_id), Some(kind), Some(time), Some(evidence_sha256), Some(note)) if v.is_empty() => {
            Ok(SupervisionFields { seller_id, kind, time, evidence_sha256, note })
        }
        _ => Err(v.into_vec()),
    }
}

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
    let fields = order_fields(&order, "order").map_err(Error::Invalid)?;
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
    let fields = supervision_fields(&s, "supervision").map_err(Error::Invalid)?;
    let span = tracing::info_span!("record_supervision", %actor, seller = %fields.seller_id);
    let (record, revision) =
        shared.store.record_supervision(&actor, request_id.as_deref(), fields).instrument(span).await?;
    Ok(Response::new(pb::RecordSupervisionResponse { supervision: Some(pb_supervision(&record)), revision }))
}
