//! Failover: the standby a replica follows is promoted and the primary's address moves to it. The
//! replica carries on without a restart, at the revisions the new primary assigns; a replica that
//! had applied a write the new primary never received finds that the new log does not extend what
//! it applied, and stops deciding.
//!
//! The promoted server stops being a standby for good, so this uses its own one
//! (`SAFEGUARD_TEST_PROMOTABLE_STANDBY_URL`, 127.0.0.1:5434), which `.ci/standby.sh start` recreates.

use safeguard::pb::v1 as pb;
use tonic_health::pb::health_check_response::ServingStatus;

use crate::harness::*;
use crate::replication::decides_at;
use crate::standby::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_promoted_standby_takes_over_and_a_replica_that_applied_a_lost_write_halts() {
    let Some(promotable) = standby_base("SAFEGUARD_TEST_PROMOTABLE_STANDBY_URL") else { return };
    if sql(&promotable, "SELECT CAST(pg_is_in_recovery() AS TEXT)").await.as_deref() != Some("true") {
        let ci = std::env::var("CI").is_ok_and(|v| v == "true");
        assert!(!ci, "{promotable} was promoted by an earlier run: recreate it with .ci/standby.sh start");
        eprintln!("{promotable} is no longer a standby (promoted by an earlier run): failover test skipped");
        return;
    }
    let base = postgres_url().unwrap();
    let db = TestDb::new(Backend::Postgres).await.unwrap();
    let shared = db.share();
    // Writes straight to the old primary, like an application server that has not failed over.
    let mut writer = TestApp::spawn_with(db, test_settings(&shared)).await;
    let standby_url = same_schema_on(&shared, &promotable);
    replayed_schema(&standby_url).await;

    // The standby streams through a proxy, so that it can miss a write as an asynchronous standby
    // does when its primary fails.
    let wal = Proxy::start(&host_port(&base)).await;
    exec(
        &promotable,
        &format!("ALTER SYSTEM SET primary_conninfo = 'host=127.0.0.1 port={} user=postgres'", wal.addr.port()),
    )
    .await;
    exec(&promotable, "SELECT pg_reload_conf()").await;
    let port = wal.addr.port().to_string();
    eventually("the standby streams through the proxy", || async {
        sql(&promotable, "SELECT CAST(sender_port AS TEXT) FROM pg_stat_wal_receiver").await.as_deref() == Some(&port)
    })
    .await;

    // "The primary's address", which moves at failover.
    let address = Proxy::start(&host_port(&base)).await;
    let primary = shared.url.replacen(&base, &address.route(&base), 1);
    let replica = TestApp::spawn_with(shared.share(), replica_settings(&shared, primary.clone(), standby_url)).await;
    let mut follows_primary = test_settings(&shared);
    follows_primary.database.url = primary;
    follows_primary.database.migrate_on_start = false;
    follows_primary.database.connect_timeout_ms = 500;
    let direct = TestApp::spawn_with(shared.share(), follows_primary).await;

    writer.create_seller(seller("acme")).await;
    let (att, rev) = writer.attest(attestation("acme", 1)).await;
    assert_eq!(decides_at(&replica, "acme", rev).await.decision(), pb::Decision::Allow);
    assert_eq!(decides_at(&direct, "acme", rev).await.decision(), pb::Decision::Allow);

    // The standby is cut off; the old primary takes a write that only `direct` applies.
    wal.point_to(None).await;
    let lost = writer
        .registry
        .revoke_attestation(pb::RevokeAttestationRequest {
            attestation_id: att.attestation_id,
            reason: "terminated".into(),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .revision;
    let r = decides_at(&direct, "acme", lost).await;
    assert_eq!(codes(&r.reasons), vec![pb::ReasonCode::ContractRevoked], "{r:?}");

    // Failover: the standby is promoted and the primary's address moves to it.
    exec(&promotable, "SELECT pg_promote(true, 60)").await;
    address.point_to(Some(&host_port(&promotable))).await;

    // The replica that followed the standby writes through the new primary with no restart, and
    // decides at the revision it assigned (the lost write's number, with other content).
    let mut registry = replica.registry.clone();
    let mut taken_over = None;
    for _ in 0..300 {
        let beta = pb::CreateSellerRequest { seller: Some(seller("beta")), request_id: "beta".into() };
        if let Ok(r) = registry.create_seller(beta).await {
            taken_over = Some(r.into_inner().revision);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let taken_over = taken_over.expect("no write through the replica reached the new primary");
    assert_eq!(taken_over, lost, "the new primary goes on from the last revision it received");
    let r = decides_at(&replica, "acme", taken_over).await;
    assert_eq!(r.decision(), pb::Decision::Allow, "the revocation was lost with the old primary: {r:?}");
    eventually("the replica serves", || async { health(&replica, VERIFICATION).await == ServingStatus::Serving }).await;

    // The replica that applied the lost write: the new log holds another event at that revision.
    eventually("the replica that applied the lost write stops deciding", || {
        let mut client = direct.verification.clone();
        async move {
            let r =
                client.verify_seller(verify("acme", pb::Purpose::OrderFulfillment, &[pb::DataCategory::RecipientName]));
            codes(&r.await.unwrap().into_inner().reasons) == vec![pb::ReasonCode::RegistryStale]
        }
    })
    .await;
    eventually("it reports NOT_SERVING", || async { health(&direct, VERIFICATION).await == ServingStatus::NotServing })
        .await;

    direct.stop().await;
    replica.stop().await;
    writer.stop().await;
}
