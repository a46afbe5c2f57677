//! VerificationService: checkout's hot path. Decisions come from the in-memory snapshot; the only
//! wait is the bounded one a client asks for with `min_revision`.

use std::time::{Duration, Instant};

use tonic::{Request, Response, Status};

use super::{Shared, client_deadline, convert};
use crate::auth::{Role, authorize};
use crate::domain::record::{DecisionRecord, RecordedReasons};
use crate::domain::verify::VerifyRequest;
use crate::error::Error;
use crate::pb::v1 as pb;
use crate::pb::v1::verification_service_server::VerificationService;
use crate::snapshot::catch_up_from;

/// Most requests one BatchVerifySellers may carry: one cart.
pub const MAX_BATCH: usize = 100;

/// How long a `min_revision` ahead of the snapshot waits for the followed database before the
/// missing events are fetched from the primary: a healthy standby replays within milliseconds, and
/// the primary is spared a read for every write a client reads back at once.
const FOLLOWED_FIRST: Duration = Duration::from_millis(200);

/// The VerificationService implementation.
pub struct VerificationApi {
    shared: Shared,
    /// The policy's version, shared by every decision record (the policy is fixed for the process).
    policy_version: std::sync::Arc<str>,
}

impl VerificationApi {
    pub fn new(shared: Shared) -> Self {
        let policy_version = shared.registry.policy().version.as_str().into();
        Self { shared, policy_version }
    }

    /// Brings the snapshot to `min_revision` within the client's deadline and the configured
    /// maximum: first a short wait for the followed database (a standby is usually milliseconds
    /// behind), then the missing events from the primary, hash-checked like every other event,
    /// then whatever is left of the wait. UNAVAILABLE only when neither has the revision in time.
    async fn catch_up<T>(&self, request: &Request<T>, min_revision: i64) -> Result<(), Error> {
        let registry = &self.shared.registry;
        if min_revision <= registry.revision() {
            return Ok(());
        }
        let mut wait = self.shared.max_min_revision_wait;
        if let Some(deadline) = client_deadline(request) {
            // Leave a little of the deadline to answer UNAVAILABLE rather than time out silently.
            wait = wait.min(deadline.mul_f32(0.9));
        }
        let until = Instant::now() + wait;
        if registry.wait_for(min_revision, wait.min(FOLLOWED_FIRST)).await.is_ok() {
            return Ok(());
        }
        let left = || until.saturating_duration_since(Instant::now());
        let fetched = tokio::time::timeout(left(), catch_up_from(registry, &self.shared.sources, min_revision)).await;
        match fetched {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(e)) => tracing::debug!(error = %e, min_revision, "cannot catch up from the primary"),
            Err(_) => {}
        }
        registry.wait_for(min_revision, left()).await
    }

    /// Decides `req` and hands its record to the recorder; `deadline` is what is left of the
    /// client's, which a full record queue is never waited on past.
    async fn respond(
        &self,
        req: &VerifyRequest,
        caller: &std::sync::Arc<str>,
        deadline: Option<Instant>,
    ) -> pb::VerifySellerResponse {
        let registry = &self.shared.registry;
        let mut decided = registry.verify(req);
        record_metrics(&decided.verdict);
        let version = &registry.policy().version;
        let decision_id = uuid::Uuid::now_v7().to_string();
        let log = &self.shared.decisions;
        if !log.wants(decided.verdict.decision) {
            // Nothing to record: no copy of the id or of the verdict is made.
            return convert::pb_decision(req, &mut decided, version, decision_id);
        }
        let response = convert::pb_decision(req, &mut decided, version, decision_id.clone());
        let v = decided.verdict;
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        let record = DecisionRecord {
            decision_id,
            time: decided.now,
            caller: caller.clone(),
            seller_id: Some(req.seller_id.clone()),
            purpose: Some(req.purpose),
            basis: req.basis,
            basis_evidence_ref: req.basis_evidence_ref.clone(),
            categories: req.categories.clone(),
            decision: Some(v.decision),
            allowed: v.allowed,
            outcome: RecordedReasons { denied: v.denied, reasons: v.reasons },
            revision: decided.revision,
            policy_version: self.policy_version.clone(),
            lost_records: 0,
        };
        log.record(record, left).await;
        response
    }
}

#[tonic::async_trait]
impl VerificationService for VerificationApi {
    async fn verify_seller(
        &self,
        request: Request<pb::VerifySellerRequest>,
    ) -> Result<Response<pb::VerifySellerResponse>, Status> {
        let caller = authorize(&request, &[Role::Checkout])?.subject.clone();
        let req = convert::verify_request(request.get_ref(), "").map_err(Error::Invalid)?;
        let deadline = answer_by(&request);
        self.catch_up(&request, req.min_revision).await?;
        Ok(Response::new(self.respond(&req, &caller, deadline).await))
    }

    async fn batch_verify_sellers(
        &self,
        request: Request<pb::BatchVerifySellersRequest>,
    ) -> Result<Response<pb::BatchVerifySellersResponse>, Status> {
        let caller = authorize(&request, &[Role::Checkout])?.subject.clone();
        let items = &request.get_ref().requests;
        if items.is_empty() || items.len() > MAX_BATCH {
            return Err(Error::invalid("requests", format!("must hold 1 to {MAX_BATCH} requests")).into());
        }
        let mut violations = Vec::new();
        let mut reqs = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            match convert::verify_request(item, &format!("requests[{i}]")) {
                Ok(r) => reqs.push(r),
                Err(v) => violations.extend(v),
            }
        }
        if !violations.is_empty() {
            return Err(Error::Invalid(violations).into());
        }
        let deadline = answer_by(&request);
        let min_revision = reqs.iter().map(|r| r.min_revision).max().unwrap_or(0);
        self.catch_up(&request, min_revision).await?;
        let mut responses = Vec::with_capacity(reqs.len());
        for r in &reqs {
            responses.push(self.respond(r, &caller, deadline).await);
        }
        Ok(Response::new(pb::BatchVerifySellersResponse { responses }))
    }
}

/// When the answer must be on its way: nine tenths into the client's deadline, leaving the rest
/// for the answer to travel.
fn answer_by<T>(request: &Request<T>) -> Option<Instant> {
    client_deadline(request).map(|d| Instant::now() + d.mul_f32(0.9))
}

/// The decision counters, registered once (after the metrics recorder is installed, which happens
/// before the first request): a label lookup in the registry per decision and per reason cost more
/// than the decision itself.
struct DecisionCounters {
    /// By `Decision::number() - 1`.
    decisions: Vec<metrics::Counter>,
    /// By `ReasonCode::number() - 1`.
    reasons: Vec<metrics::Counter>,
}

fn counters() -> &'static DecisionCounters {
    use crate::domain::{Decision, ReasonCode, Vocab};
    static COUNTERS: std::sync::OnceLock<DecisionCounters> = std::sync::OnceLock::new();
    COUNTERS.get_or_init(|| DecisionCounters {
        decisions: Decision::ALL
            .iter()
            .map(|d| metrics::counter!("safeguard_decisions_total", "decision" => d.name()))
            .collect(),
        reasons: ReasonCode::ALL
            .iter()
            .map(|c| metrics::counter!("safeguard_decision_reasons_total", "reason" => c.name()))
            .collect(),
    })
}

/// Decisions by outcome, and reasons by code (each code once per decision).
fn record_metrics(verdict: &crate::domain::verify::Verdict) {
    use crate::domain::{ReasonCode, Set, Vocab};
    let c = counters();
    let index = |n: i32| usize::try_from(n - 1).unwrap_or(usize::MAX);
    if let Some(counter) = c.decisions.get(index(verdict.decision.number())) {
        counter.increment(1);
    }
    let codes: Set<ReasonCode> =
        verdict.reasons.iter().chain(verdict.denied.iter().flat_map(|(_, reasons)| reasons)).map(|r| r.code).collect();
    for code in codes.iter() {
        if let Some(counter) = c.reasons.get(index(code.number())) {
            counter.increment(1);
        }
    }
}
