//! The verifiable logs (the registry's events, and the decision records): signed checkpoints,
//! inclusion and consistency proofs, and the check of the registry log against a checkpoint an
//! auditor kept. Proofs read O(log n) tree nodes; only the check
//! against a kept checkpoint rereads the events, because it must not trust the stored tree.

use std::sync::Arc;

use tonic::{Request, Response};

use crate::audit::TrustedCheck;
use crate::auth::{Role, authorize};
use crate::domain::chain::leaf_bytes;
use crate::domain::merkle::leaf_hash;
use crate::domain::proof_file::TlogProof;
use crate::error::{Error, Result};
use crate::grpc::Shared;
use crate::pb::v1 as pb;
use crate::store::merkle::{DECISIONS_LOG, REGISTRY_LOG};
use crate::tlog::{Signed, Tlog, Tlogs};

fn tlogs(shared: &Shared) -> Result<&Tlogs> {
    shared
        .tlog
        .as_ref()
        .ok_or_else(|| Error::FailedPrecondition("checkpoints are off on this server (audit.checkpoints)".into()))
}

/// The signer of the log a request names: empty means the registry, unless the request names a
/// decision. Naming an unknown log is a client error, not an empty answer.
fn tlog<'s>(shared: &'s Shared, log: &str, decision: bool) -> Result<&'s Arc<Tlog>> {
    let log = match log {
        "" if decision => DECISIONS_LOG,
        "" => REGISTRY_LOG,
        other => other,
    };
    if log != REGISTRY_LOG && log != DECISIONS_LOG {
        return Err(Error::invalid(
            "log",
            format!("unknown log {log:?}: the provable logs are \"{REGISTRY_LOG}\" and \"{DECISIONS_LOG}\""),
        ));
    }
    let tlogs = tlogs(shared)?;
    tlogs.get(log).ok_or_else(|| Error::Internal(format!("no signer for {log}")))
}

fn size(value: i64, field: &str) -> Result<u64> {
    u64::try_from(value).map_err(|_| Error::invalid(field, "must not be negative"))
}

fn pb_checkpoint(tlog: &Tlog, s: &Signed) -> pb::SignedCheckpoint {
    pb::SignedCheckpoint {
        log: tlog.log().to_owned(),
        origin: s.checkpoint.origin.clone(),
        tree_size: s.checkpoint.size as i64,
        root_hash: s.checkpoint.root.to_vec(),
        note: s.note.clone(),
        public_key: tlog.verifier().to_string(),
    }
}

/// GetCheckpoint.
pub async fn checkpoint(
    shared: &Shared,
    request: Request<pb::GetCheckpointRequest>,
) -> Result<Response<pb::SignedCheckpoint>> {
    authorize(&request, &[Role::Auditor])?;
    let tlog = tlog(shared, &request.get_ref().log, false)?;
    let signed = tlog.sign_now().await?;
    Ok(Response::new(pb_checkpoint(tlog, &signed)))
}

/// The entry a GetInclusionProof request names: its leaf index and canonical leaf bytes.
async fn entry(shared: &Shared, tlog: &Tlog, req: &pb::GetInclusionProofRequest) -> Result<(u64, Vec<u8>)> {
    if tlog.log() == DECISIONS_LOG {
        if req.revision != 0 {
            return Err(Error::invalid("revision", "give a decision_id for the decisions log, not a revision"));
        }
        if req.decision_id.is_empty() {
            return Err(Error::invalid("decision_id", "required for the decisions log"));
        }
        let row = shared
            .store
            .decision_row(&req.decision_id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("decision {:?} (not recorded, or pruned)", req.decision_id)))?;
        let (Some(index), Some(data)) = (row.leaf_index, row.leaf_bytes()) else {
            return Err(Error::FailedPrecondition(format!(
                "decision {} is not in the decision log yet: it was recorded while checkpoints were off and is \
                 placed at the next start with them on",
                req.decision_id
            )));
        };
        let index = index as u64;
        // An edited record no longer hashes to the leaf its recorder wrote: say so, rather than
        // hand out a proof that cannot verify.
        if shared.store.leaf_hash(DECISIONS_LOG, index).await? != Some(leaf_hash(&data)) {
            tracing::error!(decision_id = %req.decision_id, index, "a decision record does not match its leaf");
            return Err(Error::FailedPrecondition(format!(
                "decision {} no longer matches the leaf written for it (entry {index}): the record was edited after \
                 it was written",
                req.decision_id
            )));
        }
        return Ok((index, data));
    }
    if !req.decision_id.is_empty() {
        return Err(Error::invalid("decision_id", "decisions are proven in the \"decisions\" log"));
    }
    if req.revision < 1 {
        return Err(Error::invalid("revision", "must be a registry revision (1 or more)"));
    }
    let event = shared
        .store
        .events_after(req.revision - 1, 1)
        .await?
        .into_iter()
        .find(|e| e.revision == req.revision)
        .ok_or_else(|| Error::NotFound(format!("registry revision {}", req.revision)))?;
    let data = leaf_bytes(&event.logged().fields);
    Ok(((req.revision - 1) as u64, data))
}

/// GetInclusionProof: a registry revision, or a decision id (in the decisions log).
pub async fn inclusion(
    shared: &Shared,
    request: Request<pb::GetInclusionProofRequest>,
) -> Result<Response<pb::InclusionProof>> {
    authorize(&request, &[Role::Auditor])?;
    let req = request.into_inner();
    let tlog = tlog(shared, &req.log, !req.decision_id.is_empty())?;
    let log = tlog.log();
    let (index, data) = entry(shared, tlog, &req).await?;
    let (tree_size, checkpoint) = if req.tree_size == 0 {
        let signed = tlog.sign_now().await?;
        (signed.checkpoint.size, Some(signed))
    } else {
        let s = size(req.tree_size, "tree_size")?;
        (s, tlog.latest().filter(|c| c.checkpoint.size == s))
    };
    if index >= tree_size {
        return Err(Error::invalid(
            "tree_size",
            format!("entry {index} of the {log} log is not in a tree of {tree_size} (not yet signed?)"),
        ));
    }
    let path = shared.store.inclusion_proof(log, index, tree_size).await?;
    let tlog_proof = checkpoint
        .as_ref()
        .map(|c| {
            TlogProof { extra: Some(data.clone()), index, path: path.clone(), checkpoint: c.note.clone() }.encode()
        })
        .unwrap_or_default();
    Ok(Response::new(pb::InclusionProof {
        leaf_index: index as i64,
        tree_size: tree_size as i64,
        audit_path: path.iter().map(|h| h.to_vec()).collect(),
        leaf_hash: leaf_hash(&data).to_vec(),
        leaf_data: data,
        checkpoint: checkpoint.map(|c| pb_checkpoint(tlog, &c)),
        tlog_proof,
    }))
}

/// GetConsistencyProof.
pub async fn consistency(
    shared: &Shared,
    request: Request<pb::GetConsistencyProofRequest>,
) -> Result<Response<pb::ConsistencyProof>> {
    authorize(&request, &[Role::Auditor])?;
    let req = request.into_inner();
    let tlog = tlog(shared, &req.log, false)?;
    let log = tlog.log();
    let old = size(req.old_size, "old_size")?;
    let new = if req.new_size == 0 { tlog.sign_now().await?.checkpoint.size } else { size(req.new_size, "new_size")? };
    if old > new {
        return Err(Error::invalid("old_size", format!("must not exceed new_size ({new})")));
    }
    let hashes = shared.store.consistency_proof(log, old, new).await?;
    Ok(Response::new(pb::ConsistencyProof {
        old_size: old as i64,
        new_size: new as i64,
        hashes: hashes.iter().map(|h| h.to_vec()).collect(),
        old_root: shared.store.tree_root(log, old).await?.to_vec(),
        new_root: shared.store.tree_root(log, new).await?.to_vec(),
    }))
}

/// Checks today's log against `note`, a checkpoint the auditor kept ([`crate::audit::check_trusted`]).
pub async fn check_trusted(shared: &Shared, note: &str) -> Result<TrustedCheck> {
    crate::audit::check_trusted(&shared.store, &tlogs(shared)?.registry, note, "trusted_checkpoint").await
}
