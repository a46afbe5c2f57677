//! Fail closed under misuse: reused idempotency keys, state tables edited under the service, events
//! forged into the log, routine re-imports, and a clock stepped back. Each test plays the attacker
//! or the hurried operator against the real server, on SQLite and PostgreSQL.

use std::time::Duration;

use safeguard::auth::Role;
use safeguard::pb::v1 as pb;
use safeguard::pb::v1::DataCategory as C;
use safeguard::pb::v1::Purpose as P;
use sea_orm::{ConnectionTrait, Statement};
use tonic_health::pb::health_check_response::ServingStatus;

use crate::both;
use crate::harness::*;
use crate::on_both;

const VERIFICATION: &str = "safeguard.v1.VerificationService";

/// One number from raw SQL (for inspecting what the API does not show).
async fn scalar(db: &TestDb, sql: &str) -> i64 {
    let conn = sea_orm::Database::connect(db.url.as_str()).await.unwrap();
    let row = conn.query_one_raw(Statement::from_string(conn.get_database_backend(), sql)).await.unwrap().unwrap();
    let n: i64 = row.try_get_by_index(0).unwrap();
    conn.close().await.unwrap();
    n
}

fn fulfilment(seller_id: &str) -> pb::VerifySellerRequest {
    verify(seller_id, P::OrderFulfillment, &[C::RecipientName, C::ShippingAddress])
}

async fn revoke(app: &mut TestApp, id: &str, request_id: &str) -> Result<pb::RevokeAttestationResponse, tonic::Status> {
    app.registry
        .revoke_attestation(pb::RevokeAttestationRequest {
            attestation_id: id.to_owned(),
            reason: "contract terminated".into(),
            request_id: request_id.to_owned(),
        })
        .await
        .map(tonic::Response::into_inner)
}

both!(a_request_id_reused_for_another_revocation_is_refused, |mut app: TestApp| async move {
    app.create_seller(seller("acme")).await;
    app.create_seller(seller("bolt")).await;
    let (a, _) = app.attest(attestation("acme", 1)).await;
    let (b, rev) = app.attest(attestation("bolt", 2)).await;
    let first = revoke(&mut app, &a.attestation_id, "r-1").await.unwrap();
    // A retry of the same request is answered as the first time, and writes nothing more.
    let retry = revoke(&mut app, &a.attestation_id, "r-1").await.unwrap();
    assert_eq!(retry.revision, first.revision);
    // The same key for another attestation is refused, naming the key, and writes nothing.
    let err = revoke(&mut app, &b.attestation_id, "r-1").await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::FailedPrecondition, "{err:?}");
    assert!(err.message().contains("r-1"), "{}", err.message());
    let got = app.registry.get_seller(pb::GetSellerRequest { seller_id: "bolt".into() }).await.unwrap().into_inner();
    assert_eq!(got.revision, first.revision, "the refused reuse appended nothing");
    assert_eq!(got.attestations[0].state(), pb::AttestationState::Active);
    // Nothing was acknowledged that did not happen: revoking B needs its own key, and then holds.
    let revoked = revoke(&mut app, &b.attestation_id, "r-2").await.unwrap();
    let r = app.verify_at(fulfilment("bolt"), revoked.revision).await;
    assert_eq!(r.decision(), pb::Decision::Deny);
    assert!(rev < revoked.revision);
    app
});

both!(two_callers_sharing_a_request_id_each_get_their_own_write, |app: TestApp| async move {
    let (_, mut alice) = app.clients_as(Some(&token("alice", &[Role::Legal])));
    let (_, mut bob) = app.clients_as(Some(&token("bob", &[Role::Legal])));
    let create = |s: pb::Seller| pb::CreateSellerRequest { seller: Some(s), request_id: "1".into() };
    let a = alice.create_seller(create(seller("acme"))).await.unwrap().into_inner();
    let b = bob.create_seller(create(seller("bolt"))).await.unwrap().into_inner();
    assert_eq!(a.seller.unwrap().seller_id, "acme");
    assert_eq!(b.seller.unwrap().seller_id, "bolt");
    assert!(b.revision > a.revision);
    for id in ["acme", "bolt"] {
        alice.get_seller(pb::GetSellerRequest { seller_id: id.into() }).await.unwrap();
    }
    // The same key on another RPC of the same caller is another key.
    let att = pb::SubmitAttestationRequest { attestation: Some(attestation("acme", 1)), request_id: "1".into() };
    alice.submit_attestation(att).await.unwrap();
    // The same caller reusing the key for another seller is refused, and bolt2 does not exist.
    let err = alice.create_seller(create(seller("bolt2"))).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::FailedPrecondition, "{err:?}");
    let missing = alice.get_seller(pb::GetSellerRequest { seller_id: "bolt2".into() }).await.unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);
    app
});

async fn request_ids_expire_and_are_pruned(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else { return };
    let mut settings = test_settings(&db);
    settings.registry.request_id_window_s = 1;
    let mut app = TestApp::spawn_with(db, settings).await;
    for i in 0..3 {
        let req = pb::CreateSellerRequest { seller: Some(seller(&format!("s{i}"))), request_id: format!("k{i}") };
        app.registry.create_seller(req).await.unwrap();
    }
    assert!(scalar(&app.db, "SELECT COUNT(*) FROM applied_requests").await > 0);
    eventually("expired request ids are pruned", || async {
        scalar(&app.db, "SELECT COUNT(*) FROM applied_requests").await == 0
    })
    .await;
    // After the window a retry is a new write: the seller exists, so it is refused as such.
    let req = pb::CreateSellerRequest { seller: Some(seller("s0")), request_id: "k0".into() };
    assert_eq!(app.registry.create_seller(req).await.unwrap_err().code(), tonic::Code::AlreadyExists);
    app.stop().await;
}
on_both!(request_ids_expire_and_are_pruned);

async fn an_edited_state_table_does_not_revive_a_revoked_contract(backend: Backend) {
    let Some(mut app) = TestApp::spawn(backend).await else { return };
    app.create_seller(seller("acme")).await;
    let (att, rev) = app.attest(attestation("acme", 1)).await;
    assert_eq!(app.verify_at(fulfilment("acme"), rev).await.decision(), pb::Decision::Allow);
    let revoked = revoke(&mut app, &att.attestation_id, "").await.unwrap();
    app.stop_server().await;
    // Someone with database access revives the contract and the seller in the tables only.
    app.db.execute("UPDATE attestations SET state = 'ACTIVE', revoke_reason = ''").await;
    app.db.execute("UPDATE sellers SET legal_name = 'Forged Ltd.'").await;
    let settings = test_settings(&app.db);
    let mut restarted = TestApp::spawn_with(app.db.share(), settings).await;
    let r = restarted.verify_at(fulfilment("acme"), revoked.revision).await;
    assert_eq!(r.decision(), pb::Decision::Deny);
    let denied: Vec<_> = r.denied_categories.iter().flat_map(|d| codes(&d.reasons)).collect();
    assert!(
        denied.contains(&pb::ReasonCode::ContractRevoked)
            || codes(&r.reasons).contains(&pb::ReasonCode::ContractRevoked)
    );
    // Legal and auditors are shown what the log says, too.
    let got =
        restarted.registry.get_seller(pb::GetSellerRequest { seller_id: "acme".into() }).await.unwrap().into_inner();
    assert_eq!(got.attestations[0].state(), pb::AttestationState::Revoked);
    assert_ne!(got.seller.as_ref().unwrap().legal_name, "Forged Ltd.");
    // And a later write cannot launder the edited row into the log.
    let update = pb::UpdateSellerRequest {
        seller: Some(pb::Seller {
            seller_id: "acme".into(),
            contact_email: "new@acme.example".into(),
            ..Default::default()
        }),
        update_mask: Some(prost_types::FieldMask { paths: vec!["contact_email".into()] }),
        request_id: String::new(),
    };
    let updated = restarted.registry.update_seller(update).await.unwrap().into_inner();
    assert_ne!(updated.seller.unwrap().legal_name, "Forged Ltd.");
    restarted.stop_server().await;
    app.stop().await;
}
on_both!(an_edited_state_table_does_not_revive_a_revoked_contract);

/// A forged event at the head of the log: the next revision, linked to the head, with a hash that
/// is not the event's.
fn forged_event(revision: i64, prev_hash: &str) -> String {
    let payload = r#"{"seller_id":"ghost","legal_name":"Ghost","country":"CN","status":"ACTIVE","role":"RECIPIENT","contact_email":"a@b.cn","privacy_contact":"p","revision":99,"create_time":0,"update_time":0}"#;
    format!(
        "INSERT INTO registry_events (revision, time, actor, kind, seller_id, payload, prev_hash, hash) \
         VALUES ({revision}, 0, 'intruder', 'SELLER_CREATED', 'ghost', '{payload}', '{prev_hash}', '{}')",
        "ab".repeat(32)
    )
}

both!(an_event_forged_at_the_head_halts_decisions, |mut app: TestApp| async move {
    app.create_seller(seller("acme")).await;
    let (_, rev) = app.attest(attestation("acme", 1)).await;
    assert_eq!(app.verify_at(fulfilment("acme"), rev).await.decision(), pb::Decision::Allow);
    let head = scalar(&app.db, "SELECT MAX(revision) FROM registry_events").await;
    assert_eq!(head, rev);
    let prev: String = {
        let conn = sea_orm::Database::connect(app.db.url.as_str()).await.unwrap();
        let sql = format!("SELECT hash FROM registry_events WHERE revision = {head}");
        let row = conn.query_one_raw(Statement::from_string(conn.get_database_backend(), sql)).await.unwrap().unwrap();
        row.try_get_by_index(0).unwrap()
    };
    app.db.execute(&forged_event(head + 1, &prev)).await;
    eventually("the follower refuses the forged event", || {
        let mut client = app.verification.clone();
        async move {
            let r = client.verify_seller(fulfilment("acme")).await.unwrap().into_inner();
            codes(&r.reasons) == vec![pb::ReasonCode::RegistryStale]
        }
    })
    .await;
    // Nothing the forged event says went live, and the replica says it cannot serve.
    let r = app.verification.verify_seller(fulfilment("ghost")).await.unwrap().into_inner();
    assert_eq!(r.decision(), pb::Decision::Deny);
    assert_eq!(r.revision, rev, "the snapshot stopped before the forged revision");
    eventually("verification reports NOT_SERVING", || async {
        health(&app, VERIFICATION).await == ServingStatus::NotServing
    })
    .await;
    app
});

async fn a_rewritten_event_is_refused_at_start_up(backend: Backend) {
    let Some(mut app) = TestApp::spawn(backend).await else { return };
    app.create_seller(seller("acme")).await;
    let (att, _) = app.attest(attestation("acme", 1)).await;
    let revoked = revoke(&mut app, &att.attestation_id, "").await.unwrap();
    app.stop_server().await;
    // The revocation's payload is rewritten to say ACTIVE, and the head is left alone.
    let sql = format!(
        "UPDATE registry_events SET payload = REPLACE(REPLACE(payload, 'REVOKED', 'ACTIVE'), 'Revoked', 'Active') \
         WHERE revision = {}",
        revoked.revision
    );
    app.db.execute(&sql).await;
    let mut restarted = TestApp::spawn_with(app.db.share(), test_settings(&app.db)).await;
    let r = restarted.verification.verify_seller(fulfilment("acme")).await.unwrap().into_inner();
    assert_eq!(codes(&r.reasons), vec![pb::ReasonCode::RegistryStale]);
    assert_eq!(r.decision(), pb::Decision::Deny);
    assert_eq!(health(&restarted, VERIFICATION).await, ServingStatus::NotServing);
    restarted.stop_server().await;
    app.stop().await;
}
on_both!(a_rewritten_event_is_refused_at_start_up);

fn import_item(s: pb::Seller) -> pb::ImportSellersRequest {
    pb::ImportSellersRequest { item: Some(pb::import_sellers_request::Item::Seller(s)) }
}

both!(a_reimport_without_status_keeps_a_suspended_seller_suspended, |mut app: TestApp| async move {
    app.create_seller(seller("acme")).await;
    app.attest(attestation("acme", 1)).await;
    let suspend = pb::UpdateSellerRequest {
        seller: Some(pb::Seller {
            seller_id: "acme".into(),
            status: pb::SellerStatus::Suspended as i32,
            ..Default::default()
        }),
        update_mask: Some(prost_types::FieldMask { paths: vec!["status".into()] }),
        request_id: String::new(),
    };
    let suspended = app.registry.update_seller(suspend).await.unwrap().into_inner();
    // The routine nightly re-import names no status.
    let mut routine = seller("acme");
    routine.status = 0;
    let out = app.registry.import_sellers(tokio_stream::iter(vec![import_item(routine.clone())])).await.unwrap();
    let out = out.into_inner();
    assert_eq!((out.sellers_unchanged, out.sellers_updated), (1, 0));
    assert_eq!(out.revision, suspended.revision);
    let r = app.verify_at(fulfilment("acme"), out.revision).await;
    assert_eq!(codes(&r.reasons), vec![pb::ReasonCode::SellerSuspended]);
    // A stale etag is honoured: the item is refused and nothing changes.
    let mut stale = seller("acme");
    stale.etag = suspended.seller.as_ref().map(|s| s.etag.clone()).unwrap_or_default() + "x";
    let out = app.registry.import_sellers(tokio_stream::iter(vec![import_item(stale)])).await.unwrap().into_inner();
    let errors: Vec<_> = out.errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(errors, vec!["seller.etag"]);
    assert_eq!(out.revision, suspended.revision);
    // Only an explicit status, with the current etag, changes it.
    let mut reactivate = seller("acme");
    reactivate.etag = suspended.seller.unwrap().etag;
    let out =
        app.registry.import_sellers(tokio_stream::iter(vec![import_item(reactivate)])).await.unwrap().into_inner();
    assert_eq!(out.sellers_updated, 1);
    let r = app.verify_at(fulfilment("acme"), out.revision).await;
    assert_eq!(r.decision(), pb::Decision::Allow);
    app
});

async fn a_clock_stepped_back_does_not_keep_a_dead_follower_fresh(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else { return };
    let mut settings = test_settings(&db);
    settings.snapshot.max_staleness_ms = 1_000;
    let clock = settings.snapshot.clock.clone();
    let mut app = TestApp::spawn_with(db, settings).await;
    app.create_seller(seller("acme")).await;
    let (_, rev) = app.attest(attestation("acme", 1)).await;
    assert_eq!(app.verify_at(fulfilment("acme"), rev).await.decision(), pb::Decision::Allow);
    // The follower can no longer read the log, and the system clock steps back an hour.
    app.db.execute("ALTER TABLE registry_events RENAME TO registry_events_away").await;
    clock.step(-3_600);
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let r = app.verification.verify_seller(fulfilment("acme")).await.unwrap().into_inner();
    assert_eq!(codes(&r.reasons), vec![pb::ReasonCode::RegistryStale], "{r:?}");
    // Once the log is back, decisions resume.
    app.db.execute("ALTER TABLE registry_events_away RENAME TO registry_events").await;
    eventually("decisions resume", || {
        let mut client = app.verification.clone();
        async move { client.verify_seller(fulfilment("acme")).await.unwrap().into_inner().decision() == pb::Decision::Allow }
    })
    .await;
    app.stop().await;
}
on_both!(a_clock_stepped_back_does_not_keep_a_dead_follower_fresh);
