//! Decisions: a request replayed at a past time (ExplainDecision), and the records of the decisions
//! VerifySeller made.

use tonic::{Request, Response};

use super::{decode_token, done, encode_token, fingerprint, page_size, time_part, time_range};
use crate::auth::{Role, authorize};
use crate::domain::record::DecisionRecord;
use crate::domain::verify::Reason;
use crate::domain::{Decision, SellerId, Violation, Violations, Vocab};
use crate::error::{Error, Result};
use crate::grpc::Shared;
use crate::grpc::convert::{self, pb_time};
use crate::pb::v1 as pb;
use crate::store::DecisionFilter;

/// Prefixes the id of a replayed decision, so it is never taken for (or looked up as) a recorded one.
const EXPLAIN_PREFIX: &str = "explain-";

pub async fn explain(
    shared: &Shared,
    request: Request<pb::ExplainDecisionRequest>,
) -> Result<Response<pb::ExplainDecisionResponse>> {
    authorize(&request, &[Role::Auditor])?;
    let req = request.get_ref();
    let mut v = Violations::new();
    let inner = match &req.request {
        Some(r) => match convert::verify_request(r, "request") {
            Ok(r) => Some(r),
            Err(faults) => {
                faults.into_iter().for_each(|f| v.push(f));
                None
            }
        },
        None => {
            v.push(Violation::new("request", "must be set"));
            None
        }
    };
    let at = v.check(convert::time(req.time.as_ref(), "time"));
    done(v)?;
    let (Some(verify), Some(at)) = (inner, at) else { return Err(Error::invalid("request", "must be set")) };

    let policy = shared.registry.policy();
    let mut decided = crate::audit::explain(&shared.store, policy, &verify, at).await?;
    let revision = decided.revision;
    let decision_id = format!("{EXPLAIN_PREFIX}{}", uuid::Uuid::now_v7());
    Ok(Response::new(pb::ExplainDecisionResponse {
        response: Some(convert::pb_decision(&verify, &mut decided, &policy.version, decision_id)),
        revision,
        policy_version: policy.version.clone(),
    }))
}

fn pb_reason(r: &Reason) -> pb::Reason {
    pb::Reason { code: r.code.number(), clause: r.clause.map_or(0, Vocab::number), message: r.message().to_owned() }
}

fn numbers<T: Vocab>(values: &[T]) -> Vec<i32> {
    values.iter().map(|v| v.number()).collect()
}

fn pb_record(r: &DecisionRecord) -> pb::DecisionRecord {
    pb::DecisionRecord {
        decision_id: r.decision_id.clone(),
        time: pb_time(r.time),
        caller: r.caller.to_string(),
        seller_id: r.seller_id.as_ref().map(ToString::to_string).unwrap_or_default(),
        purpose: r.purpose.map_or(0, Vocab::number),
        basis: r.basis.map_or(0, Vocab::number),
        basis_evidence_ref: r.basis_evidence_ref.clone(),
        categories: numbers(&r.categories),
        decision: r.decision.map_or(0, Vocab::number),
        allowed_categories: numbers(&r.allowed),
        denied_categories: r
            .outcome
            .denied
            .iter()
            .map(|(c, why)| pb::CategoryDenial { category: c.number(), reasons: why.iter().map(pb_reason).collect() })
            .collect(),
        reasons: r.outcome.reasons.iter().map(pb_reason).collect(),
        revision: r.revision,
        policy_version: r.policy_version.to_string(),
        lost_records: r.lost_records,
    }
}

pub async fn list(
    shared: &Shared,
    request: Request<pb::ListDecisionsRequest>,
) -> Result<Response<pb::ListDecisionsResponse>> {
    authorize(&request, &[Role::Auditor])?;
    let req = request.into_inner();
    let mut v = Violations::new();
    let seller_id =
        if req.seller_id.is_empty() { None } else { v.check(SellerId::parse_field(&req.seller_id, "seller_id")) };
    let decision: Option<Decision> =
        if req.decision == 0 { None } else { v.check(convert::one(req.decision, "decision")) };
    let (start, end) = time_range(req.start_time.as_ref(), req.end_time.as_ref(), &mut v);
    let size = v.check(page_size(req.page_size));
    let filters = fingerprint(&[
        &req.seller_id,
        &req.decision.to_string(),
        &time_part(req.start_time.as_ref()),
        &time_part(req.end_time.as_ref()),
    ]);
    let after = v.check(decode_token::<(i64, String)>(&req.page_token, &filters, "ListDecisions")).flatten();
    done(v)?;
    let size = size.unwrap_or_default();
    let filter = DecisionFilter { seller_id, decision, start, end, after };
    // One more than a page tells whether another page follows.
    let mut records = shared.store.list_decisions(&filter, size + 1).await?;
    let next_page_token = if records.len() as u64 > size {
        records.truncate(size as usize);
        records.last().map(|r| encode_token((r.time.as_micros(), &r.decision_id), &filters)).unwrap_or_default()
    } else {
        String::new()
    };
    Ok(Response::new(pb::ListDecisionsResponse { decisions: records.iter().map(pb_record).collect(), next_page_token }))
}

pub async fn get(shared: &Shared, request: Request<pb::GetDecisionRequest>) -> Result<Response<pb::DecisionRecord>> {
    authorize(&request, &[Role::Auditor])?;
    let id = convert::text(&request.get_ref().decision_id, "decision_id", convert::MAX_REF, true)?;
    let record = shared.store.get_decision(&id).await?.ok_or_else(|| Error::NotFound(format!("decision {id}")))?;
    Ok(Response::new(pb_record(&record)))
}
