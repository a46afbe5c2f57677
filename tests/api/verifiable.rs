//! The verifiable log through the public API, on SQLite and PostgreSQL: signed checkpoints, proofs
//! that `safeguard audit verify` accepts offline, and a registry that halts when its database no
//! longer extends what it signed — whoever edited the database.

use safeguard::auth::Role;
use safeguard::domain::chain::{EventFields, event_hash};
use safeguard::domain::merkle::{Hash, verify_consistency, verify_inclusion};
use safeguard::domain::note::{Checkpoint, NoteSigner, NoteVerifier};
use safeguard::pb::v1 as pb;
use safeguard::pb::v1::DataCategory as C;
use safeguard::pb::v1::Purpose as P;
use safeguard::pb::v1::audit_service_client::AuditServiceClient;
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::both;
use crate::harness::*;

type Audit = AuditServiceClient<Authed>;

fn auditor(app: &TestApp) -> Audit {
    AuditServiceClient::with_interceptor(app.channel.clone(), Bearer::new(Some(&token("auditor", &[Role::Auditor]))))
}

/// Three sellers and an attestation: revisions 1 to 4.
/// Four registry events; returns the revision of the last.
async fn four_events(app: &mut TestApp) -> i64 {
    app.create_seller(seller("acme")).await;
    app.create_seller(seller("bolt")).await;
    app.attest(attestation("acme", 1)).await;
    app.create_seller(seller("cargo")).await
}

async fn checkpoint(app: &TestApp) -> pb::SignedCheckpoint {
    auditor(app).get_checkpoint(pb::GetCheckpointRequest::default()).await.unwrap().into_inner()
}

fn hash(bytes: &[u8]) -> Hash {
    bytes.try_into().unwrap()
}

async fn acme_decision(app: &mut TestApp) -> pb::VerifySellerResponse {
    app.verify_at(verify("acme", P::OrderFulfillment, &[C::RecipientName]), 0).await
}

/// [`acme_decision`] on a registry at least at `revision`.
async fn acme_decision_at(app: &mut TestApp, revision: i64) -> pb::VerifySellerResponse {
    app.verify_at(verify("acme", P::OrderFulfillment, &[C::RecipientName]), revision).await
}

async fn verification_health(app: &TestApp) -> ServingStatus {
    let mut client = HealthClient::new(app.channel.clone());
    let req = HealthCheckRequest { service: "safeguard.v1.VerificationService".to_owned() };
    client.check(req).await.unwrap().into_inner().status()
}

both!(a_truncated_log_halts_decisions_at_start_up, |mut app: TestApp| async move {
    let revision = four_events(&mut app).await;
    assert_eq!(checkpoint(&app).await.tree_size, 4);
    assert_eq!(acme_decision_at(&mut app, revision).await.decision(), pb::Decision::Allow);
    app.stop_server().await;
    // Delete the last events, and the tree nodes over them, and move the head back: the chain and
    // the tree in the database are now a consistent, shorter history.
    app.db.truncate_registry_log(2).await;
    // Node keys are `log << 56 | level << 50 | index` (docs/verifiable-log.md): keep leaves 0 and 1.
    let leaf = 1i64 << 56;
    app.db.execute(&format!("DELETE FROM merkle_nodes WHERE id NOT IN ({leaf}, {})", leaf + 1)).await;
    let mut again = app.restart().await;
    let chain = auditor(&again).verify_audit_chain(pb::VerifyAuditChainRequest::default()).await.unwrap().into_inner();
    assert!(chain.ok, "the chain alone cannot tell: {chain:?}");

    let d = acme_decision(&mut again).await;
    assert_eq!(d.decision(), pb::Decision::Deny);
    assert_eq!(codes(&d.reasons), vec![pb::ReasonCode::RegistryStale]);
    for _ in 0..100 {
        if verification_health(&again).await == ServingStatus::NotServing {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(verification_health(&again).await, ServingStatus::NotServing);
    let refused = auditor(&again).get_checkpoint(pb::GetCheckpointRequest::default()).await.unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(refused.message().contains("truncated"), "{refused:?}");
    again.stop().await;
    app
});

both!(a_rewritten_payload_is_detected_against_a_kept_checkpoint, |mut app: TestApp| async move {
    four_events(&mut app).await;
    let kept = checkpoint(&app).await;
    // Rewrite revision 2 and recompute every later hash, as someone with the database could.
    let feed = pb::ListRegistryEventsRequest { page_size: 10, ..Default::default() };
    let events = auditor(&app).list_registry_events(feed).await.unwrap().into_inner().events;
    let mut prev = events[0].hash.clone();
    for e in &events[1..] {
        let payload = if e.revision == 2 { e.payload.replace("Trading", "Tradinq") } else { e.payload.clone() };
        let t = e.time.as_ref().unwrap();
        let fields = EventFields {
            revision: e.revision,
            time_micros: t.seconds * 1_000_000 + i64::from(t.nanos / 1000),
            actor: &e.actor,
            kind: &e.kind,
            seller_id: &e.seller_id,
            payload: &payload,
        };
        let h = event_hash(&prev, &fields);
        let sql = format!(
            "UPDATE registry_events SET payload = '{}', prev_hash = '{prev}', hash = '{h}' WHERE revision = {}",
            payload.replace('\'', "''"),
            e.revision
        );
        app.db.execute(&sql).await;
        prev = h;
    }
    app.db.execute(&format!("UPDATE registry_head SET hash = '{prev}' WHERE id = 1")).await;

    let audit = || pb::VerifyAuditChainRequest::default();
    let chain = auditor(&app).verify_audit_chain(audit()).await.unwrap().into_inner();
    assert!(chain.ok, "the recomputed chain passes on its own: {chain:?}");
    let request = pb::VerifyAuditChainRequest { trusted_checkpoint: kept.note.clone() };
    let r = auditor(&app).verify_audit_chain(request).await.unwrap().into_inner();
    assert!(!r.ok, "{r:?}");
    assert!(r.checkpoint_checked && !r.checkpoint_consistent, "{r:?}");
    assert_eq!((r.checkpoint_size, r.first_broken_revision), (4, 2), "{r:?}");
    assert!(r.problem.contains("rewritten"), "{r:?}");
    app
});

both!(every_event_has_an_inclusion_proof_that_verifies_offline, |mut app: TestApp| async move {
    four_events(&mut app).await;
    let cp = checkpoint(&app).await;
    let dir = tempfile::tempdir().unwrap();
    let key = write_file(dir.path(), "key", &cp.public_key);
    for revision in 1..=4 {
        let req = pb::GetInclusionProofRequest { revision, ..Default::default() };
        let p = auditor(&app).get_inclusion_proof(req).await.unwrap().into_inner();
        assert_eq!((p.leaf_index, p.tree_size), (revision - 1, 4));
        let path: Vec<Hash> = p.audit_path.iter().map(|h| hash(h)).collect();
        verify_inclusion(p.leaf_index as u64, 4, &hash(&p.leaf_hash), &path, &hash(&cp.root_hash)).unwrap();
        let file = write_file(dir.path(), &format!("{revision}.tlog-proof"), &p.tlog_proof);
        let (ok, out) = offline_verify(&["--proof", &file, "--key", &key]);
        assert!(ok && out.contains(&format!("revision {revision} ")), "{out}");
    }
    // A proof moved to another index no longer leads to the signed root.
    let req = pb::GetInclusionProofRequest { revision: 2, ..Default::default() };
    let p = auditor(&app).get_inclusion_proof(req).await.unwrap().into_inner();
    let moved = write_file(dir.path(), "moved", &p.tlog_proof.replace("\nindex 1\n", "\nindex 0\n"));
    let (ok, out) = offline_verify(&["--proof", &moved, "--key", &key]);
    assert!(!ok && out.contains("not in the checkpointed tree"), "{out}");

    // The whole log, exported, verifies against the key and the checkpoint kept above.
    let settings = test_settings(&app.db);
    let store = safeguard::startup::connect_store(&settings).await.unwrap();
    let export = dir.path().join("export");
    assert_eq!(safeguard::cli::export_audit(&settings, &store, &export).await.unwrap().0, 4);
    let kept = write_file(dir.path(), "kept.checkpoint", &cp.note);
    let (ok, out) = offline_verify(&["--export", &export.display().to_string(), "--key", &key, "--checkpoint", &kept]);
    assert!(ok && out.contains("ok: 4 events"), "{out}");
    let events = std::fs::read_to_string(export.join("events.jsonl")).unwrap();
    std::fs::write(export.join("events.jsonl"), events.lines().take(3).collect::<Vec<_>>().join("\n")).unwrap();
    let (ok, out) = offline_verify(&["--export", &export.display().to_string(), "--key", &key]);
    assert!(!ok && out.contains("events were removed"), "{out}");
    app
});

both!(a_checkpoint_signed_with_another_key_is_refused, |mut app: TestApp| async move {
    four_events(&mut app).await;
    let cp = checkpoint(&app).await;
    let body = Checkpoint { origin: cp.origin.clone(), size: 4, root: hash(&cp.root_hash) }.body();
    let forged = NoteSigner::from_seed(&cp.origin, [42; 32]).unwrap().sign(&body).unwrap();

    let request = pb::VerifyAuditChainRequest { trusted_checkpoint: forged.clone() };
    let err = auditor(&app).verify_audit_chain(request).await.unwrap_err();
    assert_eq!(violated_fields(&err), vec!["trusted_checkpoint"]);

    let dir = tempfile::tempdir().unwrap();
    let key = write_file(dir.path(), "key", &cp.public_key);
    let req = pb::GetInclusionProofRequest { revision: 3, ..Default::default() };
    let p = auditor(&app).get_inclusion_proof(req).await.unwrap().into_inner();
    let swapped = write_file(dir.path(), "swapped", &p.tlog_proof.replace(&cp.note, &forged));
    let (ok, out) = offline_verify(&["--proof", &swapped, "--key", &key]);
    let label = NoteVerifier::parse(&cp.public_key).unwrap().label();
    assert!(!ok && out.contains(&format!("no signature by {label}")), "{out}");

    // A kept checkpoint replaced by one under another key halts the service at its next start.
    let latest = app.db.key_dir.join("checkpoints/registry/latest.checkpoint");
    std::fs::write(&latest, &forged).unwrap();
    let mut again = app.restart().await;
    let d = acme_decision(&mut again).await;
    assert_eq!(codes(&d.reasons), vec![pb::ReasonCode::RegistryStale]);
    again.stop().await;
    app
});

both!(the_log_grows_across_a_restart_and_stays_consistent, |mut app: TestApp| async move {
    four_events(&mut app).await;
    let before = checkpoint(&app).await;
    let mut again = app.restart().await;
    again.create_seller(seller("delta")).await;
    again.attest(attestation("bolt", 2)).await;
    let after = checkpoint(&again).await;
    assert_eq!((before.tree_size, after.tree_size), (4, 6));
    let pinned = NoteVerifier::parse(&before.public_key).unwrap();
    assert_eq!(Checkpoint::open(&after.note, &pinned).unwrap().size, 6);

    let req = pb::GetConsistencyProofRequest { old_size: 4, new_size: 6, ..Default::default() };
    let p = auditor(&again).get_consistency_proof(req).await.unwrap().into_inner();
    let hashes: Vec<Hash> = p.hashes.iter().map(|h| hash(h)).collect();
    verify_consistency(4, 6, &hash(&before.root_hash), &hash(&after.root_hash), &hashes).unwrap();
    assert_eq!(acme_decision(&mut again).await.decision(), pb::Decision::Allow);
    assert_eq!(verification_health(&again).await, ServingStatus::Serving);
    // Each checkpoint is its own file in the append-only directory.
    let kept = std::fs::read_dir(app.db.key_dir.join("checkpoints/registry")).unwrap().count();
    assert!(kept >= 3, "two checkpoints and the latest pointer, found {kept} files");

    let checkout = AuditServiceClient::with_interceptor(
        again.channel.clone(),
        Bearer::new(Some(&token("shop", &[Role::Checkout]))),
    );
    let err = checkout.clone().get_checkpoint(pb::GetCheckpointRequest::default()).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    again.stop().await;
    app
});

both!(proofs_hold_across_stored_and_folded_tree_levels, |mut app: TestApp| async move {
    // 37 events: full subtrees of 16 and 32 leaves (stored levels) and folded levels above them.
    let mut kept = Vec::new();
    for i in 0..37 {
        app.create_seller(seller(&format!("s{i:02}"))).await;
        if [5, 16, 17].contains(&(i + 1)) {
            kept.push(checkpoint(&app).await);
        }
    }
    let last = checkpoint(&app).await;
    assert_eq!(last.tree_size, 37);
    let root = hash(&last.root_hash);
    for revision in [1, 15, 16, 17, 32, 33, 37] {
        let req = pb::GetInclusionProofRequest { revision, ..Default::default() };
        let p = auditor(&app).get_inclusion_proof(req).await.unwrap().into_inner();
        let path: Vec<Hash> = p.audit_path.iter().map(|h| hash(h)).collect();
        verify_inclusion(p.leaf_index as u64, 37, &hash(&p.leaf_hash), &path, &root).unwrap();
    }
    for old in &kept {
        let req = pb::GetConsistencyProofRequest { old_size: old.tree_size, new_size: 37, ..Default::default() };
        let p = auditor(&app).get_consistency_proof(req).await.unwrap().into_inner();
        let hashes: Vec<Hash> = p.hashes.iter().map(|h| hash(h)).collect();
        verify_consistency(old.tree_size as u64, 37, &hash(&old.root_hash), &root, &hashes).unwrap();
    }
    app
});
