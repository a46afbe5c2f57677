//! Replicas that follow a PostgreSQL hot standby (`database.read_urls`) while writing through the
//! primary. These need a real streaming standby, which `.ci/standby.sh start` makes:
//! `SAFEGUARD_TEST_STANDBY_URL` (127.0.0.1:5433, paused and resumed here, never promoted) and
//! `SAFEGUARD_TEST_PROMOTABLE_STANDBY_URL` (127.0.0.1:5434, promoted by the failover test). Without
//! them the tests are skipped, except in CI (`CI=true`), where a missing standby fails them.
//!
//! Each test uses a fresh schema on the primary; the standby replays it, so the same URL with the
//! standby's host and port reads the same schema.

use std::time::Duration;

use safeguard::config::Settings;
use safeguard::pb::v1 as pb;
use safeguard::pb::v1::DataCategory as C;
use safeguard::pb::v1::Purpose as P;
use tonic_health::pb::health_check_response::ServingStatus;

use crate::harness::*;
use crate::standby::*;

/// Starts the primary-connected server (it migrates and writes the heartbeat) and a replica that
/// follows the standby, once the standby has replayed the schema.
async fn primary_and_replica(standby: &str, tune: impl FnOnce(&mut Settings)) -> (TestApp, TestApp) {
    let db = TestDb::new(Backend::Postgres).await.unwrap();
    let shared = db.share();
    let primary = TestApp::spawn_with(db, test_settings(&shared)).await;
    let standby_url = same_schema_on(&shared, standby);
    replayed_schema(&standby_url).await;
    let mut settings = replica_settings(&shared, shared.url.clone(), standby_url);
    tune(&mut settings);
    let replica = TestApp::spawn_with(shared, settings).await;
    (primary, replica)
}

fn fulfilment(seller_id: &str) -> pb::VerifySellerRequest {
    verify(seller_id, P::OrderFulfillment, &[C::RecipientName])
}

/// Waits until `app` decides `seller_id` at revision `rev` or later, without naming the revision
/// (so the answer comes from what it follows, not from a catch-up).
pub async fn decides_at(app: &TestApp, seller_id: &str, rev: i64) -> pb::VerifySellerResponse {
    let mut client = app.verification.clone();
    for _ in 0..300 {
        let r = client.verify_seller(fulfilment(seller_id)).await.unwrap().into_inner();
        if r.revision >= rev {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the replica never decided at revision {rev}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_on_the_primary_reaches_a_replica_that_follows_the_standby() {
    let Some(standby) = standby_base("SAFEGUARD_TEST_STANDBY_URL") else { return };
    let _lock = StandbyLock::exclusive(false).await;
    let (mut primary, replica) = primary_and_replica(&standby, |_| {}).await;
    primary.create_seller(seller("acme")).await;
    let (_, rev) = primary.attest(attestation("acme", 1)).await;
    let r = decides_at(&replica, "acme", rev).await;
    assert_eq!(r.decision(), pb::Decision::Allow, "{r:?}");
    eventually("the replica reports SERVING", || async {
        health(&replica, VERIFICATION).await == ServingStatus::Serving
    })
    .await;
    replica.stop().await;
    primary.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_that_stops_replaying_makes_its_replicas_stale_until_it_resumes() {
    let Some(standby) = standby_base("SAFEGUARD_TEST_STANDBY_URL") else { return };
    let _lock = StandbyLock::exclusive(true).await;
    let (mut primary, replica) = primary_and_replica(&standby, |s| s.snapshot.max_staleness_ms = 2_000).await;
    primary.create_seller(seller("acme")).await;
    let (_, rev) = primary.attest(attestation("acme", 1)).await;
    assert_eq!(decides_at(&replica, "acme", rev).await.decision(), pb::Decision::Allow);

    // The standby keeps answering every query, but its heartbeat stops moving.
    let paused = Paused::pause(&standby).await;
    eventually("the replica denies REGISTRY_STALE", || {
        let mut client = replica.verification.clone();
        async move {
            let r = client.verify_seller(fulfilment("acme")).await.unwrap().into_inner();
            codes(&r.reasons) == vec![pb::ReasonCode::RegistryStale]
        }
    })
    .await;
    eventually("the replica reports NOT_SERVING", || async {
        health(&replica, VERIFICATION).await == ServingStatus::NotServing
    })
    .await;
    // The primary-connected server is not behind anything: it keeps deciding.
    let on_primary = primary.verify_at(fulfilment("acme"), rev).await;
    assert_eq!(on_primary.decision(), pb::Decision::Allow);

    drop(paused);
    eventually("the replica decides again", || {
        let mut client = replica.verification.clone();
        async move { client.verify_seller(fulfilment("acme")).await.unwrap().into_inner().decision() == pb::Decision::Allow }
    })
    .await;
    eventually("the replica reports SERVING", || async {
        health(&replica, VERIFICATION).await == ServingStatus::Serving
    })
    .await;
    replica.stop().await;
    primary.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_min_revision_ahead_of_a_paused_standby_is_answered_from_the_primary() {
    let Some(standby) = standby_base("SAFEGUARD_TEST_STANDBY_URL") else { return };
    let _lock = StandbyLock::exclusive(true).await;
    let (mut primary, mut replica) = primary_and_replica(&standby, |_| {}).await;
    let rev = primary.create_seller(seller("acme")).await;
    assert_eq!(decides_at(&replica, "acme", rev).await.revision, rev);

    let paused = Paused::pause(&standby).await;
    let (_, rev) = primary.attest(attestation("acme", 1)).await;
    let r = replica.verify_at(fulfilment("acme"), rev).await;
    assert_eq!(r.decision(), pb::Decision::Allow, "{r:?}");
    assert!(r.revision >= rev, "{r:?}");
    // Neither the standby nor the primary has this one: UNAVAILABLE, not a guess.
    let mut ahead = fulfilment("acme");
    ahead.min_revision = rev + 100;
    let err = replica.verification.verify_seller(ahead).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unavailable, "{err:?}");
    drop(paused);

    // Once the standby replays the same events, following it goes on from there.
    let rev = primary.create_seller(seller("beta")).await;
    assert!(decides_at(&replica, "acme", rev).await.revision >= rev);
    replica.stop().await;
    primary.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_primary_unreachable_a_replica_decides_from_its_standby_and_refuses_writes() {
    let Some(standby) = standby_base("SAFEGUARD_TEST_STANDBY_URL") else { return };
    let _lock = StandbyLock::exclusive(false).await;
    let proxy = Proxy::start(&host_port(&postgres_url().unwrap())).await;
    let route = proxy.route(&postgres_url().unwrap());
    let (mut primary, mut replica) = primary_and_replica(&standby, |s| {
        s.database.url = s.database.url.replacen(&postgres_url().unwrap(), &route, 1);
    })
    .await;
    primary.create_seller(seller("acme")).await;
    proxy.point_to(None).await;

    // Written through another server that reaches the primary; replayed by the standby.
    let (_, rev) = primary.attest(attestation("acme", 1)).await;
    let r = decides_at(&replica, "acme", rev).await;
    assert_eq!(r.decision(), pb::Decision::Allow, "{r:?}");
    let err = replica
        .registry
        .create_seller(pb::CreateSellerRequest { seller: Some(seller("beta")), request_id: String::new() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unavailable, "{err:?}");
    eventually("the registry reports NOT_SERVING", || async {
        health(&replica, REGISTRY).await == ServingStatus::NotServing
    })
    .await;
    // Auditors' history reads are served by the standby too.
    let mut audit = replica.audit_as(Some(&token("auditor", &[safeguard::auth::Role::Auditor])));
    let events = audit.list_registry_events(pb::ListRegistryEventsRequest::default()).await.unwrap().into_inner();
    assert_eq!(events.events.last().map(|e| e.revision), Some(rev), "{events:?}");
    eventually("the replica reports SERVING", || async {
        health(&replica, VERIFICATION).await == ServingStatus::Serving
    })
    .await;

    // The primary comes back: writes go through again, with no restart.
    proxy.point_to(Some(&host_port(&postgres_url().unwrap()))).await;
    eventually("writes succeed again", || {
        let mut client = replica.registry.clone();
        async move {
            client
                .create_seller(pb::CreateSellerRequest { seller: Some(seller("beta")), request_id: "b".into() })
                .await
                .is_ok()
        }
    })
    .await;
    replica.stop().await;
    primary.stop().await;
}

/// Not a check but a measurement for docs/scaling.md, run by hand:
/// `cargo nextest run --run-ignored only -E 'test(/measure_replication/)' --no-capture` with the
/// standby variables set. A burst of writes through the primary: the standby's replay lag (in
/// revisions and in time) sampled during it, then how long a replica following the standby takes
/// to decide at the last revision once the burst is acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a check"]
async fn measure_replication_lag_and_convergence() {
    let Some(standby) = standby_base("SAFEGUARD_TEST_STANDBY_URL") else { return };
    let _lock = StandbyLock::exclusive(true).await;
    // The production default poll, so that convergence is what a deployment sees.
    let (primary, replica) = primary_and_replica(&standby, |s| s.snapshot.poll_interval_ms = 250).await;
    let standby_schema = same_schema_on(&primary.db, &standby);
    const WRITERS: usize = 16;
    const EACH: usize = 50;
    let started = std::time::Instant::now();
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let mut client = primary.registry.clone();
        tasks.push(tokio::spawn(async move {
            let mut last = 0;
            for i in 0..EACH {
                let s = seller(&format!("s{w}x{i}"));
                last = client
                    .create_seller(pb::CreateSellerRequest { seller: Some(s), request_id: String::new() })
                    .await
                    .unwrap()
                    .into_inner()
                    .revision;
            }
            last
        }));
    }
    let mut max_lag_revisions = 0i64;
    let mut max_replay_lag_ms = 0f64;
    let primary_url = primary.db.url.clone();
    while !tasks.iter().all(|t| t.is_finished()) {
        let head = sql(&primary_url, "SELECT CAST(revision AS TEXT) FROM registry_head WHERE id = 1").await;
        let replayed =
            sql(&standby_schema, "SELECT CAST(COALESCE(MAX(revision), 0) AS TEXT) FROM registry_events").await;
        let lag = sql(
            &primary_url,
            "SELECT CAST(COALESCE(MAX(EXTRACT(EPOCH FROM replay_lag) * 1000), 0) AS TEXT) FROM pg_stat_replication",
        )
        .await;
        let parse = |v: Option<String>| v.and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        max_lag_revisions = max_lag_revisions.max((parse(head) - parse(replayed)) as i64);
        max_replay_lag_ms = max_replay_lag_ms.max(parse(lag));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut last = 0;
    for t in tasks {
        last = last.max(t.await.unwrap());
    }
    let burst = started.elapsed();
    let acked = std::time::Instant::now();
    let mut client = replica.verification.clone();
    while client.verify_seller(fulfilment("s0x0")).await.unwrap().into_inner().revision < last {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let converged = acked.elapsed();
    println!(
        "burst: {} writes by {WRITERS} writers in {:.2}s ({:.0} writes/s); standby lag during it: max {} revisions, \
         replay_lag max {:.1} ms; replica following the standby decided at the last revision {:.1} ms after the burst was acknowledged",
        WRITERS * EACH,
        burst.as_secs_f64(),
        (WRITERS * EACH) as f64 / burst.as_secs_f64(),
        max_lag_revisions,
        max_replay_lag_ms,
        converged.as_secs_f64() * 1000.0
    );
    replica.stop().await;
    primary.stop().await;
}

#[test]
fn read_urls_must_be_postgres_standbys_and_staleness_must_leave_room_for_a_heartbeat() {
    let mut s = Settings::default();
    s.database.url = "postgres://app@primary:5432/safeguard".into();
    s.database.read_urls = vec!["postgres://app:hunter2@standby:5432/safeguard".into()];
    s.validate().unwrap();
    assert!(!toml::to_string(&s.redacted()).unwrap().contains("hunter2"));

    s.database.read_urls = vec!["sqlite://copy.db".into()];
    assert!(s.validate().unwrap_err().to_string().contains("database.read_urls"));
    s.database.read_urls.clear();

    s.snapshot.heartbeat_ms = 30_000;
    assert!(s.validate().unwrap_err().to_string().contains("heartbeat_ms"));
}

crate::both!(the_heartbeat_migration_goes_down_and_up_again, |app: TestApp| async move {
    use migrations::MigratorTrait;
    use sea_orm::ConnectionTrait;
    let db = sea_orm::Database::connect(app.db.url.as_str()).await.unwrap();
    let count = "SELECT COUNT(*) FROM registry_heartbeat";
    // The server wrote its heartbeat at start-up.
    assert!(db.execute_unprepared(count).await.is_ok());
    // Down to just before the heartbeat's migration, whatever came after it.
    let all = migrations::Migrator::migrations();
    let at = all.iter().position(|m| m.name() == "m20261202_000005_create_heartbeat").unwrap();
    migrations::Migrator::down(&db, Some((all.len() - at) as u32)).await.unwrap();
    assert!(db.execute_unprepared(count).await.is_err(), "down drops registry_heartbeat");
    migrations::Migrator::up(&db, None).await.unwrap();
    assert!(db.execute_unprepared(count).await.is_ok());
    db.close().await.unwrap();
    app
});
