//! The verifiable log: signed checkpoints, inclusion and consistency proofs, and the check of the
//! log against a checkpoint an auditor kept. Proofs read O(log n) tree nodes; only the check
//! against a kept checkpoint rereads the events, because it must not trust the stored tree.

use std::sync::Arc;

use tonic::{Request, Response};

use crate::audit::TrustedCheck;
use crate::auth::{Role, authorize};
use crate::domain::chain::{EventFields, leaf_bytes};
use crate::domain::merkle::leaf_hash;
use crate::domain::proof_file::TlogProof;
use crate::error::{Error, Result};
use crate::grpc::Shared;
use crate::pb::v1 as pb;
use crate::store::merkle::REGISTRY_LOG;
use crate::tlog::{Signed, Tlog};

fn tlog(shared: &Shared) -> Result<&Arc<Tlog>> {
    shared
        .tlog
        .as_ref()
        .ok_or_else(|| Error::FailedPrecondition("checkpoints are off on this server (audit.checkpoints)".into()))
}

/// Only the registry log is provable for now; naming another is a client error, not an empty answer.
fn check_log(log: &str) -> Result<()> {
    if log.is_empty() || log == REGISTRY_LOG {
        Ok(())
    } else {
        Err(Error::invalid("log", format!("unknown log {log:?}: the provable log is \"{REGISTRY_LOG}\"")))
    }
}

fn size(value: i64, field: &str) -> Result<u64> {
    u64::try_from(value).map_err(|_| Error::invalid(field, "must not be negative"))
}

fn pb_checkpoint(tlog: &Tlog, s: &Signed) -> pb::SignedCheckpoint {
    pb::SignedCheckpoint {
        log: REGISTRY_LOG.to_owned(),
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
    check_log(&request.get_ref().log)?;
    let tlog = tlog(shared)?;
    let signed = tlog.sign_now().await?;
    Ok(Response::new(pb_checkpoint(tlog, &signed)))
}

/// GetInclusionProof.
pub async fn inclusion(
    shared: &Shared,
    request: Request<pb::GetInclusionProofRequest>,
) -> Result<Response<pb::InclusionProof>> {
    authorize(&request, &[Role::Auditor])?;
    let req = request.into_inner();
    check_log(&req.log)?;
    if !req.decision_id.is_empty() {
        return Err(Error::invalid("decision_id", "decision records are not in a provable log yet"));
    }
    if req.revision < 1 {
        return Err(Error::invalid("revision", "must be a registry revision (1 or more)"));
    }
    let index = (req.revision - 1) as u64;
    let tlog = tlog(shared)?;
    let (tree_size, checkpoint) = if req.tree_size == 0 {
        let signed = tlog.sign_now().await?;
        (signed.checkpoint.size, Some(signed))
    } else {
        let s = size(req.tree_size, "tree_size")?;
        (s, tlog.latest().filter(|c| c.checkpoint.size == s))
    };
    if index >= tree_size {
        return Err(Error::invalid("tree_size", format!("revision {} is not in a tree of {tree_size}", req.revision)));
    }
    let path = shared.store.inclusion_proof(REGISTRY_LOG, index, tree_size).await?;
    let event = shared
        .store
        .events_after(req.revision - 1, 1)
        .await?
        .into_iter()
        .find(|e| e.revision == req.revision)
        .ok_or_else(|| Error::NotFound(format!("registry revision {}", req.revision)))?;
    let data = leaf_bytes(&EventFields {
        revision: event.revision,
        time_micros: event.time.as_micros(),
        actor: &event.actor,
        kind: &event.kind,
        seller_id: &event.seller_id,
        payload: &event.payload,
    });
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
    check_log(&req.log)?;
    let old = size(req.old_size, "old_size")?;
    let new = if req.new_size == 0 {
        tlog(shared)?.sign_now().await?.checkpoint.size
    } else {
        size(req.new_size, "new_size")?
    };
    if old > new {
        return Err(Error::invalid("old_size", format!("must not exceed new_size ({new})")));
    }
    let hashes = shared.store.consistency_proof(REGISTRY_LOG, old, new).await?;
    Ok(Response::new(pb::ConsistencyProof {
        old_size: old as i64,
        new_size: new as i64,
        hashes: hashes.iter().map(|h| h.to_vec()).collect(),
        old_root: shared.store.tree_root(REGISTRY_LOG, old).await?.to_vec(),
        new_root: shared.store.tree_root(REGISTRY_LOG, new).await?.to_vec(),
    }))
}

/// Checks today's log against `note`, a checkpoint the auditor kept ([`crate::audit::check_trusted`]).
pub async fn check_trusted(shared: &Shared, note: &str) -> Result<TrustedCheck> {
    crate::audit::check_trusted(&shared.store, tlog(shared)?, note, "trusted_checkpoint").await
}
