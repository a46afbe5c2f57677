//! Replicas over one database converge on the same revision: a write through one is visible on the
//! other to a VerifySeller that names the write's revision.

use safeguard::pb::v1 as pb;
use safeguard::pb::v1::DataCategory as C;
use safeguard::pb::v1::Purpose as P;

use crate::harness::*;

async fn write_on_one_read_on_the_other(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else { return };
    let shared = db.share();
    let mut settings_b = test_settings(&shared);
    // B learns of A's writes only by polling the log, never by a local wake-up.
    settings_b.snapshot.poll_interval_ms = 200;
    let mut a = TestApp::spawn_with(db, test_settings(&shared)).await;
    let mut b = TestApp::spawn_with(shared, settings_b).await;

    a.create_seller(seller("acme")).await;
    let (att, rev) = a.attest(attestation("acme", 1)).await;
    let req = verify("acme", P::OrderFulfillment, &[C::RecipientName]);
    let on_b = b.verify_at(req.clone(), rev).await;
    assert_eq!(on_b.decision(), pb::Decision::Allow, "{on_b:?}");
    assert!(on_b.revision >= rev);

    let revoked = b
        .registry
        .revoke_attestation(pb::RevokeAttestationRequest {
            attestation_id: att.attestation_id,
            reason: "terminated".into(),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(revoked.revision, rev + 1, "revisions are one sequence across replicas");
    let on_a = a.verify_at(req, revoked.revision).await;
    assert_eq!(codes(&on_a.reasons), vec![pb::ReasonCode::ContractRevoked]);

    b.stop().await;
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_over_one_postgres_converge() {
    write_on_one_read_on_the_other(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_over_one_sqlite_file_converge() {
    write_on_one_read_on_the_other(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_on_two_servers_get_distinct_consecutive_revisions() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let Some(db) = TestDb::new(backend).await else { continue };
        let shared = db.share();
        let a = TestApp::spawn_with(db, test_settings(&shared)).await;
        let b = TestApp::spawn_with(shared, test_settings(&a.db.share())).await;
        let mut tasks = Vec::new();
        for i in 0..20 {
            let mut client = if i % 2 == 0 { a.registry.clone() } else { b.registry.clone() };
            tasks.push(tokio::spawn(async move {
                client
                    .create_seller(pb::CreateSellerRequest {
                        seller: Some(seller(&format!("c{i}"))),
                        request_id: String::new(),
                    })
                    .await
                    .unwrap()
                    .into_inner()
                    .revision
            }));
        }
        let mut revisions = Vec::new();
        for t in tasks {
            revisions.push(t.await.unwrap());
        }
        revisions.sort();
        assert_eq!(revisions, (1..=20).collect::<Vec<i64>>(), "{backend:?}");
        b.stop().await;
        a.stop().await;
    }
}
