//! The decision log through the public API, on SQLite and PostgreSQL: every recorded decision is
//! an entry of its own Merkle log (`<origin>/decisions`) with signed checkpoints; each has an
//! inclusion proof that `safeguard audit verify` accepts offline; an edited record, a truncated
//! log and a checkpoint under another key are all refused; the log grows across restarts and
//! stays consistent with what was signed before, taking in records written before it existed.

use safeguard::auth::Role;
use safeguard::domain::merkle::{Hash, verify_consistency, verify_inclusion};
use safeguard::domain::note::{Checkpoint, NoteSigner, NoteVerifier};
use safeguard::pb::v1 as pb;
use safeguard::pb::v1::DataCategory as C;
use safeguard::pb::v1::Purpose as P;
use safeguard::pb::v1::audit_service_client::AuditServiceClient;
use tonic::Code;

use crate::harness::*;
use crate::on_both;

type Audit = AuditServiceClient<Authed>;

const DECISIONS: &str = "decisions";

fn auditor(app: &TestApp) -> Audit {
    AuditServiceClient::with_interceptor(app.channel.clone(), Bearer::new(Some(&token("auditor", &[Role::Auditor]))))
}

fn hash(bytes: &[u8]) -> Hash {
    bytes.try_into().unwrap()
}

async fn spawn(backend: Backend) -> Option<TestApp> {
    let db = TestDb::new(backend).await?;
    let settings = test_settings(&db);
    Some(TestApp::spawn_with(db, settings).await)
}

/// Decisions of every kind: ALLOW on acme, DENY on a seller nobody registered, and ALLOW_PARTIAL
/// on acme (a category its contract does not cover). Returns their ids once all are recorded.
async fn decide(app: &mut TestApp, rounds: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for _ in 0..rounds {
        for req in [
            verify("acme", P::OrderFulfillment, &[C::RecipientName]),
            verify("nobody", P::OrderFulfillment, &[C::RecipientName]),
            verify("acme", P::OrderFulfillment, &[C::RecipientName, C::NationalId]),
        ] {
            ids.push(app.verify_at(req, 0).await.decision_id);
        }
    }
    let db = app.db.share();
    let want = ids.clone();
    eventually("every decision is recorded", || {
        let (db, want) = (db.share(), want.clone());
        async move {
            let list = want.iter().map(|id| format!("'{id}'")).collect::<Vec<_>>().join(", ");
            count(&db, &format!("SELECT COUNT(*) FROM decisions WHERE decision_id IN ({list})")).await
                == want.len() as i64
        }
    })
    .await;
    ids
}

async fn decisions_checkpoint(app: &TestApp) -> pb::SignedCheckpoint {
    let req = pb::GetCheckpointRequest { log: DECISIONS.into() };
    auditor(app).get_checkpoint(req).await.unwrap().into_inner()
}

async fn proof(app: &TestApp, id: &str, tree_size: i64) -> Result<pb::InclusionProof, tonic::Status> {
    let req = pb::GetInclusionProofRequest { decision_id: id.into(), tree_size, ..Default::default() };
    auditor(app).get_inclusion_proof(req).await.map(|r| r.into_inner())
}

async fn every_decision_has_an_inclusion_proof_that_verifies_offline(backend: Backend) {
    let Some(mut app) = spawn(backend).await else { return };
    app.create_seller(seller("acme")).await;
    app.attest(attestation("acme", 1)).await;
    let ids = decide(&mut app, 2).await;
    let cp = decisions_checkpoint(&app).await;
    assert_eq!(cp.log, DECISIONS);
    assert_eq!(cp.tree_size, ids.len() as i64);
    let registry = auditor(&app).get_checkpoint(pb::GetCheckpointRequest::default()).await.unwrap().into_inner();
    assert_eq!(cp.origin, format!("{}/decisions", registry.origin));
    assert_eq!(cp.public_key, registry.public_key, "both logs sign with the same key");

    let dir = tempfile::tempdir().unwrap();
    let key = write_file(dir.path(), "key", &cp.public_key);
    let root = hash(&cp.root_hash);
    let mut indexes = Vec::new();
    for id in &ids {
        let p = proof(&app, id, 0).await.unwrap();
        assert_eq!(p.tree_size, cp.tree_size);
        let path: Vec<Hash> = p.audit_path.iter().map(|h| hash(h)).collect();
        verify_inclusion(p.leaf_index as u64, p.tree_size as u64, &hash(&p.leaf_hash), &path, &root).unwrap();
        indexes.push(p.leaf_index);
        let file = write_file(dir.path(), &format!("{id}.tlog-proof"), &p.tlog_proof);
        let (ok, out) = offline_verify(&["--proof", &file, "--key", &key]);
        assert!(ok && out.contains(&format!("decision {id} ")), "{out}");
    }
    indexes.sort_unstable();
    assert_eq!(indexes, (0..ids.len() as i64).collect::<Vec<_>>(), "one leaf per record, no gaps");

    // A proof under a checkpoint signed with another key is refused.
    let p = proof(&app, &ids[0], 0).await.unwrap();
    let body = Checkpoint { origin: cp.origin.clone(), size: cp.tree_size as u64, root }.body();
    let forged = NoteSigner::from_seed(&cp.origin, [7; 32]).unwrap().sign(&body).unwrap();
    let swapped = write_file(dir.path(), "swapped", &p.tlog_proof.replace(&cp.note, &forged));
    let (ok, out) = offline_verify(&["--proof", &swapped, "--key", &key]);
    let label = NoteVerifier::parse(&cp.public_key).unwrap().label();
    assert!(!ok && out.contains(&format!("no signature by {label}")), "{out}");

    // The export carries the decision log; it verifies, and extends the checkpoint kept above.
    let settings = test_settings(&app.db);
    let store = safeguard::startup::connect_store(&settings).await.unwrap();
    let export = dir.path().join("export");
    let (events, records) = safeguard::cli::export_audit(&settings, &store, &export).await.unwrap();
    assert_eq!((events, records), (2, ids.len() as u64));
    let kept = write_file(dir.path(), "kept.checkpoint", &cp.note);
    let export_dir = export.display().to_string();
    let (ok, out) = offline_verify(&["--export", &export_dir, "--key", &key, "--checkpoint", &kept]);
    assert!(ok && out.contains(&format!("{} decisions ({} records checked", ids.len(), ids.len())), "{out}");
    assert!(out.contains("extends the kept checkpoint"), "{out}");

    // Someone turns a DENY into an ALLOW in the table: the service no longer proves the record,
    // and an export taken now shows exactly which record was edited.
    let denied = &ids[1];
    app.db.execute(&format!("UPDATE decisions SET decision = 'ALLOW' WHERE decision_id = '{denied}'")).await;
    let err = proof(&app, denied, 0).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(err.message().contains("edited"), "{err:?}");
    let tampered = dir.path().join("tampered");
    safeguard::cli::export_audit(&settings, &store, &tampered).await.unwrap();
    let (ok, out) = offline_verify(&["--export", &tampered.display().to_string(), "--key", &key]);
    assert!(!ok && out.contains(&format!("decision {denied} ")) && out.contains("edited"), "{out}");

    // Asking for a revision in the decision log, or a decision in the registry, is a client error.
    let req = pb::GetInclusionProofRequest { log: DECISIONS.into(), revision: 1, ..Default::default() };
    let err = auditor(&app).get_inclusion_proof(req).await.unwrap_err();
    assert_eq!(violated_fields(&err), vec!["revision"]);
    let req =
        pb::GetInclusionProofRequest { log: "registry".into(), decision_id: ids[0].clone(), ..Default::default() };
    let err = auditor(&app).get_inclusion_proof(req).await.unwrap_err();
    assert_eq!(violated_fields(&err), vec!["decision_id"]);
    let err = proof(&app, "no-such-decision", 0).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    app.stop().await;
}
on_both!(every_decision_has_an_inclusion_proof_that_verifies_offline);

async fn a_truncated_decision_log_halts_decisions_at_start_up(backend: Backend) {
    let Some(mut app) = spawn(backend).await else { return };
    app.create_seller(seller("acme")).await;
    app.attest(attestation("acme", 1)).await;
    let ids = decide(&mut app, 2).await;
    assert_eq!(decisions_checkpoint(&app).await.tree_size, ids.len() as i64);
    app.stop_server().await;
    // Remove the last records, their leaves and move the head back: a shorter, self-consistent
    // history in the database. Node keys are `log << 56 | level << 50 | index`; log 2 is decisions.
    app.db.execute("DELETE FROM decisions WHERE leaf_index >= 2").await;
    app.db
        .execute(&format!(
            "DELETE FROM merkle_nodes WHERE id >= {} AND id NOT IN ({}, {})",
            2i64 << 56,
            2i64 << 56,
            (2i64 << 56) + 1
        ))
        .await;
    app.db.execute("UPDATE decision_log_head SET size = 2 WHERE id = 1").await;

    let mut again = app.restart().await;
    let d = again.verify_at(verify("acme", P::OrderFulfillment, &[C::RecipientName]), 0).await;
    assert_eq!(d.decision(), pb::Decision::Deny);
    assert_eq!(codes(&d.reasons), vec![pb::ReasonCode::RegistryStale]);
    let refused = auditor(&again).get_checkpoint(pb::GetCheckpointRequest { log: DECISIONS.into() }).await.unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(refused.message().contains("truncated"), "{refused:?}");
    again.stop().await;
    app.stop().await;
}
on_both!(a_truncated_decision_log_halts_decisions_at_start_up);

/// A record as an older version wrote it, a minute ago: no leaf index.
fn old_record(id: &str) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_micros();
    let time = now - 60_000_000;
    format!(
        "INSERT INTO decisions (decision_id, time, caller, seller_id, purpose, basis, basis_evidence_ref, \
         categories, decision, allowed, reasons, revision, policy_version, lost_records) VALUES \
         ('{id}', {time}, 'old', 'acme', 'ORDER_FULFILLMENT', 'SEPARATE_CONSENT', '', 'RECIPIENT_NAME', 'DENY', '', \
         '{{\"denied\":[],\"reasons\":[]}}', 0, 'v1', 0)"
    )
}

async fn the_decision_log_grows_across_a_restart_and_stays_consistent(backend: Backend) {
    let Some(mut app) = spawn(backend).await else { return };
    app.create_seller(seller("acme")).await;
    app.attest(attestation("acme", 1)).await;
    let first = decide(&mut app, 1).await;
    let before = decisions_checkpoint(&app).await;
    assert_eq!(before.tree_size, 3);
    app.stop_server().await;
    // A record written without a leaf index (before the decision log existed) is placed at the
    // next start, after those already in the log.
    app.db.execute(&old_record("from-before")).await;

    let mut again = app.restart().await;
    let later = decide(&mut again, 1).await;
    let after = decisions_checkpoint(&again).await;
    assert_eq!(after.tree_size, 7);
    let pinned = NoteVerifier::parse(&before.public_key).unwrap();
    assert_eq!(Checkpoint::open(&after.note, &pinned).unwrap().size, 7);
    let req = pb::GetConsistencyProofRequest { log: DECISIONS.into(), old_size: 3, new_size: 7 };
    let p = auditor(&again).get_consistency_proof(req).await.unwrap().into_inner();
    let hashes: Vec<Hash> = p.hashes.iter().map(|h| hash(h)).collect();
    verify_consistency(3, 7, &hash(&before.root_hash), &hash(&after.root_hash), &hashes).unwrap();

    let old = proof(&again, "from-before", 0).await.unwrap();
    assert_eq!(old.leaf_index, 3);
    for id in first.iter().chain(&later) {
        let p = proof(&again, id, 7).await.unwrap();
        let path: Vec<Hash> = p.audit_path.iter().map(|h| hash(h)).collect();
        verify_inclusion(p.leaf_index as u64, 7, &hash(&p.leaf_hash), &path, &hash(&after.root_hash)).unwrap();
    }
    // The records signed before the restart are still proven in the tree signed before it.
    let p = proof(&again, &first[0], 3).await.unwrap();
    let path: Vec<Hash> = p.audit_path.iter().map(|h| hash(h)).collect();
    verify_inclusion(p.leaf_index as u64, 3, &hash(&p.leaf_hash), &path, &hash(&before.root_hash)).unwrap();
    let kept = std::fs::read_dir(app.db.key_dir.join("checkpoints/decisions")).unwrap().count();
    assert!(kept >= 3, "two checkpoints and the latest pointer, found {kept} files");
    again.stop().await;
    app.stop().await;
}
on_both!(the_decision_log_grows_across_a_restart_and_stays_consistent);

/// A batch's first attempt skips the look-up of stored ids. Should a record be there all the same
/// (here: one written already, offered again as new), the whole batch is refused and nothing is
/// written, so no record ever gets a second leaf; offered as a retry, it is skipped.
async fn a_record_offered_again_as_new_never_gets_a_second_leaf(backend: Backend) {
    let Some(mut app) = spawn(backend).await else { return };
    app.create_seller(seller("acme")).await;
    app.attest(attestation("acme", 1)).await;
    let ids = decide(&mut app, 1).await;
    let store = app.db.store().await;
    let written = store.get_decision(&ids[0]).await.unwrap().unwrap();
    let mut new = written.clone();
    new.decision_id = uuid::Uuid::now_v7().to_string();
    let size = store.decision_log_size().await.unwrap();

    let refused = store.insert_decisions(&[new.clone(), written.clone()], true).await;
    assert!(refused.is_err(), "{backend:?}: a stored record offered as new is refused");
    assert_eq!(store.decision_log_size().await.unwrap(), size, "{backend:?}: nothing was placed");
    assert!(store.get_decision(&new.decision_id).await.unwrap().is_none(), "{backend:?}: nothing was written");

    store.insert_decisions(&[new.clone(), written.clone()], false).await.unwrap();
    assert_eq!(store.decision_log_size().await.unwrap(), size + 1, "{backend:?}: only the new record is placed");
    assert_eq!(store.get_decision(&new.decision_id).await.unwrap(), Some(new.clone()));
    let leaves = count(&app.db, "SELECT COUNT(*) FROM decisions WHERE leaf_index IS NOT NULL").await;
    assert_eq!(u64::try_from(leaves).unwrap(), size + 1, "{backend:?}: one leaf per record");
    app.stop().await;
}
on_both!(a_record_offered_again_as_new_never_gets_a_second_leaf);
