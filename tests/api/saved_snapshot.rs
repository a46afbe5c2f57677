//! Start-up from the saved snapshot file, on SQLite and PostgreSQL: a restart folds only the tail
//! of the log and answers exactly as before; a damaged, foreign or too new file is ignored; and an
//! event edited in the database under the file still halts decisions, found by the background
//! check of the log, without a single ALLOW resting on it.

use std::path::PathBuf;

use safeguard::auth::Role;
use safeguard::domain::note::NoteSigner;
use safeguard::pb::v1 as pb;
use safeguard::pb::v1::DataCategory as C;
use safeguard::pb::v1::Purpose as P;
use safeguard::pb::v1::audit_service_client::AuditServiceClient;
use safeguard::snapshot::{SavedFile, StartUp};
use tonic_health::pb::health_check_response::ServingStatus;

use crate::harness::*;
use crate::on_both;

const VERIFICATION: &str = "safeguard.v1.VerificationService";
const IDS: [&str; 4] = ["acme", "bolt", "cargo", "ghost"];

fn dir(db: &TestDb) -> PathBuf {
    db.key_dir.join("checkpoints").join("registry")
}

fn file(db: &TestDb) -> PathBuf {
    dir(db).join("snapshot.bin")
}

fn key(db: &TestDb) -> NoteSigner {
    NoteSigner::parse(&std::fs::read_to_string(db.key_dir.join("safeguard.signing-key")).unwrap()).unwrap()
}

/// The revision of the saved file, if there is one that verifies with the service's key.
fn saved_revision(db: &TestDb) -> Option<i64> {
    let bytes = std::fs::read(file(db)).ok()?;
    safeguard::snapshot::saved::decode(&bytes, &key(db).verifier()).ok().map(|s| s.revision)
}

/// Signs a checkpoint (GetCheckpoint) and waits until the snapshot at `revision` is saved.
async fn save(app: &TestApp, revision: i64) {
    let token = token("auditor", &[Role::Auditor]);
    let audit = AuditServiceClient::with_interceptor(app.channel.clone(), Bearer::new(Some(&token)));
    // The snapshot saved is the one the registry holds when the checkpoint is signed.
    app.state.wait_for(revision, std::time::Duration::from_secs(10)).await.unwrap();
    eventually("the snapshot is saved", || {
        let mut audit = audit.clone();
        async move {
            audit.get_checkpoint(pb::GetCheckpointRequest::default()).await.unwrap();
            saved_revision(&app.db) == Some(revision)
        }
    })
    .await;
}

fn fulfilment(seller_id: &str) -> pb::VerifySellerRequest {
    verify(seller_id, P::OrderFulfillment, &[C::RecipientName, C::ShippingAddress])
}

/// Each seller's decision and reasons, once the registry is at `revision`.
async fn answers(app: &mut TestApp, revision: i64) -> Vec<(pb::Decision, Vec<pb::ReasonCode>)> {
    let mut out = Vec::new();
    for id in IDS {
        let r = app.verify_at(fulfilment(id), revision).await;
        out.push((r.decision(), codes(&r.reasons)));
    }
    out
}

async fn revoke(app: &mut TestApp, attestation_id: &str) -> i64 {
    let req = pb::RevokeAttestationRequest {
        attestation_id: attestation_id.to_owned(),
        reason: "contract terminated".into(),
        request_id: String::new(),
    };
    app.registry.revoke_attestation(req).await.unwrap().into_inner().revision
}

/// acme attested, bolt attested then revoked: revisions 1 to 5, the revocation at 5.
async fn history(app: &mut TestApp) -> i64 {
    app.create_seller(seller("acme")).await;
    app.attest(attestation("acme", 1)).await;
    app.create_seller(seller("bolt")).await;
    let (att, _) = app.attest(attestation("bolt", 2)).await;
    revoke(app, &att.attestation_id).await
}

async fn halts(app: &mut TestApp) {
    eventually("decisions halt", || {
        let mut client = app.verification.clone();
        async move {
            let r = client.verify_seller(fulfilment("acme")).await.unwrap().into_inner();
            codes(&r.reasons) == vec![pb::ReasonCode::RegistryStale]
        }
    })
    .await;
    eventually("verification is NOT_SERVING", || async {
        health(app, VERIFICATION).await == ServingStatus::NotServing
    })
    .await;
}

async fn a_restart_starts_from_the_saved_snapshot_and_answers_as_before(backend: Backend) {
    let Some(mut app) = TestApp::spawn(backend).await else { return };
    assert!(matches!(app.state.start_up(), Some(StartUp::WholeLog { .. })));
    let revision = history(&mut app).await;
    save(&app, revision).await;
    // Written after the file: the tail a restart folds.
    app.create_seller(seller("cargo")).await;
    let (_, head) = app.attest(attestation("cargo", 3)).await;
    let before = answers(&mut app, head).await;
    assert_eq!(before[0].0, pb::Decision::Allow, "{before:?}");
    assert_eq!(before[1].0, pb::Decision::Deny, "{before:?}");
    assert_eq!(before[2].0, pb::Decision::Allow, "{before:?}");

    let mut again = app.restart().await;
    assert_eq!(again.state.start_up(), Some(&StartUp::FromFile { revision, tail: head - revision }));
    assert_eq!(again.state.revision(), head);
    assert_eq!(answers(&mut again, head).await, before);
    assert_eq!(health(&again, VERIFICATION).await, ServingStatus::Serving);
    eventually("the log under the file checks", || async { again.state.history_checked() }).await;
    assert!(again.state.halted().is_none());

    // The next save is from this start, and a restart from it answers the same again.
    save(&again, head).await;
    let mut third = again.restart().await;
    assert_eq!(third.state.start_up(), Some(&StartUp::FromFile { revision: head, tail: 0 }));
    assert_eq!(answers(&mut third, head).await, before);
    third.stop_server().await;
    app.stop().await;
}
on_both!(a_restart_starts_from_the_saved_snapshot_and_answers_as_before);

async fn a_damaged_or_foreign_file_is_ignored(backend: Backend) {
    let Some(mut app) = TestApp::spawn(backend).await else { return };
    let revision = history(&mut app).await;
    save(&app, revision).await;
    let before = answers(&mut app, revision).await;
    let snapshot = app.state.snapshot();
    type Damage = Box<dyn Fn(&mut Vec<u8>)>;
    let damages: Vec<(&str, Damage)> = vec![
        (
            "one flipped byte",
            Box::new(|b: &mut Vec<u8>| {
                let middle = b.len() / 2;
                b[middle] ^= 0x20;
            }),
        ),
        ("a truncated file", Box::new(|b: &mut Vec<u8>| b.truncate(b.len() / 2))),
        ("an empty file", Box::new(|b: &mut Vec<u8>| b.clear())),
    ];
    app.stop_server().await;
    for (what, damage) in damages {
        let mut bytes = std::fs::read(file(&app.db)).unwrap();
        damage(&mut bytes);
        std::fs::write(file(&app.db), &bytes).unwrap();
        let mut again = TestApp::spawn_with(app.db.share(), test_settings(&app.db)).await;
        assert!(
            matches!(again.state.start_up(), Some(StartUp::WholeLog { file_ignored: Some(_) })),
            "{what}: {:?}",
            again.state.start_up()
        );
        assert_eq!(answers(&mut again, revision).await, before, "{what}");
        assert_eq!(health(&again, VERIFICATION).await, ServingStatus::Serving, "{what}");
        // The service replaces the file it could not use, at its first checkpoint.
        eventually("the file is saved again", || async { saved_revision(&again.db) == Some(revision) }).await;
        again.stop_server().await;
    }
    // A file signed by another key.
    let other = NoteSigner::from_seed("intruder.example", [7; 32]).unwrap();
    SavedFile::new(&dir(&app.db), other).write(&snapshot).unwrap();
    let mut again = TestApp::spawn_with(app.db.share(), test_settings(&app.db)).await;
    match again.state.start_up() {
        Some(StartUp::WholeLog { file_ignored: Some(why) }) => assert!(why.contains("signed by key"), "{why}"),
        other => panic!("a file signed by another key was used: {other:?}"),
    }
    assert_eq!(answers(&mut again, revision).await, before);
    again.stop_server().await;
    app.stop().await;
}
on_both!(a_damaged_or_foreign_file_is_ignored);

async fn a_file_beyond_the_databases_log_is_not_trusted(backend: Backend) {
    let Some(mut app) = TestApp::spawn(backend).await else { return };
    let revision = history(&mut app).await;
    save(&app, revision).await;
    app.stop_server().await;
    // The database is restored from before the last events: its log is shorter than the file.
    app.db.truncate_registry_log(2).await;
    let mut again = TestApp::spawn_with(app.db.share(), test_settings(&app.db)).await;
    match again.state.start_up() {
        Some(StartUp::WholeLog { file_ignored: Some(why) }) => assert!(why.contains("ends at 2"), "{why}"),
        other => panic!("a file beyond the log was used: {other:?}"),
    }
    // As without the file: the whole log is folded, and the signed checkpoint says it was cut.
    halts(&mut again).await;
    assert_eq!(saved_revision(&again.db), Some(revision), "a halted registry saves nothing");
    again.stop_server().await;
    app.stop().await;
}
on_both!(a_file_beyond_the_databases_log_is_not_trusted);

/// Rewrites the revocation at `revision` to say ACTIVE, leaving every hash alone.
async fn unrevoke(db: &TestDb, revision: i64) {
    let sql = format!(
        "UPDATE registry_events SET payload = REPLACE(REPLACE(payload, 'REVOKED', 'ACTIVE'), 'Revoked', 'Active') \
         WHERE revision = {revision}"
    );
    db.execute(&sql).await;
}

async fn an_event_edited_under_the_file_halts_after_the_background_check(backend: Backend) {
    let Some(mut app) = TestApp::spawn(backend).await else { return };
    let revoked = history(&mut app).await;
    let (_, revision) = {
        app.create_seller(seller("cargo")).await;
        app.attest(attestation("cargo", 3)).await
    };
    save(&app, revision).await;
    app.stop_server().await;
    unrevoke(&app.db, revoked).await;
    let mut again = TestApp::spawn_with(app.db.share(), test_settings(&app.db)).await;
    assert_eq!(again.state.start_up(), Some(&StartUp::FromFile { revision, tail: 0 }));
    // The file says revoked: never ALLOW, before the check finds the edit or after.
    let r = again.verification.verify_seller(fulfilment("bolt")).await.unwrap().into_inner();
    assert_eq!(r.decision(), pb::Decision::Deny);
    halts(&mut again).await;
    let r = again.verification.verify_seller(fulfilment("bolt")).await.unwrap().into_inner();
    assert_eq!((r.decision(), codes(&r.reasons)), (pb::Decision::Deny, vec![pb::ReasonCode::RegistryStale]));
    let reason = again.state.halted().unwrap();
    assert!(reason.contains(&format!("revision {revoked}")), "{reason}");
    assert!(!again.state.history_checked());
    again.stop_server().await;
    app.stop().await;
}
on_both!(an_event_edited_under_the_file_halts_after_the_background_check);

async fn an_edited_event_at_the_files_revision_makes_it_ignored_and_halts(backend: Backend) {
    let Some(mut app) = TestApp::spawn(backend).await else { return };
    let revision = history(&mut app).await;
    save(&app, revision).await;
    app.stop_server().await;
    unrevoke(&app.db, revision).await;
    let mut again = TestApp::spawn_with(app.db.share(), test_settings(&app.db)).await;
    match again.state.start_up() {
        Some(StartUp::WholeLog { file_ignored: Some(why) }) => assert!(why.contains("does not match"), "{why}"),
        other => panic!("the file was used over an edited event: {other:?}"),
    }
    halts(&mut again).await;
    again.stop_server().await;
    app.stop().await;
}
on_both!(an_edited_event_at_the_files_revision_makes_it_ignored_and_halts);

async fn an_event_edited_after_the_file_halts_at_start_up(backend: Backend) {
    let Some(mut app) = TestApp::spawn(backend).await else { return };
    app.create_seller(seller("acme")).await;
    app.attest(attestation("acme", 1)).await;
    let (att, revision) = {
        app.create_seller(seller("bolt")).await;
        app.attest(attestation("bolt", 2)).await
    };
    save(&app, revision).await;
    let revoked = revoke(&mut app, &att.attestation_id).await;
    app.stop_server().await;
    unrevoke(&app.db, revoked).await;
    let mut again = TestApp::spawn_with(app.db.share(), test_settings(&app.db)).await;
    assert_eq!(again.state.start_up(), Some(&StartUp::FromFile { revision, tail: 0 }));
    // The tail broke at its first event: halted before the first request, as without the file.
    let r = again.verification.verify_seller(fulfilment("bolt")).await.unwrap().into_inner();
    assert_eq!((r.decision(), codes(&r.reasons)), (pb::Decision::Deny, vec![pb::ReasonCode::RegistryStale]));
    assert_eq!(health(&again, VERIFICATION).await, ServingStatus::NotServing);
    again.stop_server().await;
    app.stop().await;
}
on_both!(an_event_edited_after_the_file_halts_at_start_up);
