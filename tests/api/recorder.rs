//! The decision recorder never stops: a record the database refuses is quarantined while every
//! other decision is recorded, a database that goes away loses and duplicates nothing (and health
//! says the recorder is behind meanwhile), and pruning keeps both tables within the retention.

use std::net::SocketAddr;

use safeguard::auth::Role;
use safeguard::config::Settings;
use safeguard::pb::v1::DataCategory as C;
use safeguard::pb::v1::Purpose as P;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tonic_health::pb::health_check_response::ServingStatus;

use crate::harness::*;
use crate::on_both;

const RECORDER: &str = "safeguard.v1.DecisionRecorder";
const VERIFICATION: &str = "safeguard.v1.VerificationService";

async fn spawn(backend: Backend, adjust: impl FnOnce(&mut Settings)) -> Option<TestApp> {
    let db = TestDb::new(backend).await?;
    let mut settings = test_settings(&db);
    adjust(&mut settings);
    Some(TestApp::spawn_with(db, settings).await)
}

/// [`spawn`], with the seller `acme`.
async fn with_acme(backend: Backend, adjust: impl FnOnce(&mut Settings)) -> Option<TestApp> {
    let mut app = spawn(backend, adjust).await?;
    app.create_seller(seller("acme")).await;
    Some(app)
}

async fn sample(addr: SocketAddr, series: &str) -> f64 {
    let mut conn = TcpStream::connect(addr).await.unwrap();
    conn.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut body = String::new();
    conn.read_to_string(&mut body).await.unwrap();
    body.lines().find_map(|l| l.strip_prefix(series).and_then(|rest| rest.trim().parse::<f64>().ok())).unwrap_or(0.0)
}

/// Makes a decision on the seller `acme` as `app`'s admin or, with `caller`, as that checkout caller.
async fn decide(app: &TestApp, caller: Option<&str>) {
    let mut client = match caller {
        None => app.verification.clone(),
        Some(sub) => app.clients_as(Some(&token(sub, &[Role::Checkout]))).0,
    };
    client.verify_seller(verify("acme", P::OrderFulfillment, &[C::RecipientName])).await.unwrap();
}

async fn install_poison_trigger(db: &TestDb) {
    match db.backend {
        Backend::Sqlite => {
            db.execute(
                "CREATE TRIGGER poison BEFORE INSERT ON decisions WHEN NEW.caller = 'poison' \
                 BEGIN SELECT RAISE(ABORT, 'refused'); END",
            )
            .await
        }
        Backend::Postgres => {
            db.execute(
                "CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
                 IF NEW.caller = 'poison' THEN RAISE EXCEPTION 'refused'; END IF; RETURN NEW; END $$",
            )
            .await;
            db.execute("CREATE TRIGGER poison BEFORE INSERT ON decisions FOR EACH ROW EXECUTE FUNCTION refuse_poison()")
                .await
        }
    }
}

async fn a_refused_record_is_quarantined_and_every_other_decision_is_recorded(backend: Backend) {
    let Some(mut app) = spawn(backend, |_| {}).await else { return };
    app.create_seller(seller("acme")).await;
    install_poison_trigger(&app.db).await;
    let metrics = app.metrics_addr.unwrap();
    let before = sample(metrics, "safeguard_decision_records_quarantined_total").await;
    // Poisoned records interleaved with good ones, so batches mix them.
    let decisions: Vec<_> = (0..40).map(|i| if i % 10 == 3 { Some("poison") } else { None }).collect();
    let calls: Vec<_> = decisions
        .iter()
        .map(|caller| {
            let app_channel = (app.verification.clone(), app.clients_as(Some(&token("poison", &[Role::Checkout]))).0);
            let poison = caller.is_some();
            tokio::spawn(async move {
                let (mut admin, mut poisoned) = app_channel;
                let client = if poison { &mut poisoned } else { &mut admin };
                client.verify_seller(verify("acme", P::OrderFulfillment, &[C::RecipientName])).await.unwrap();
            })
        })
        .collect();
    for call in calls {
        call.await.unwrap();
    }
    decide(&app, None).await;
    let db = app.db.share();
    eventually("the good records are written and the poisoned ones quarantined", || {
        let db = db.share();
        async move {
            count(&db, "SELECT COUNT(*) FROM decisions").await == 37
                && count(&db, "SELECT COUNT(*) FROM decision_quarantine").await == 4
        }
    })
    .await;
    assert_eq!(count(&db, "SELECT COUNT(*) FROM decisions WHERE caller = 'poison'").await, 0);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM decision_quarantine WHERE error LIKE '%refused%'").await, 4);
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM decision_quarantine WHERE record LIKE '%\"caller\":\"poison\"%'").await,
        4,
        "the quarantine keeps the record itself"
    );
    assert!(sample(metrics, "safeguard_decision_records_quarantined_total").await - before >= 4.0);
    assert_eq!(health(&app, RECORDER).await, ServingStatus::Serving);
    // The recorder goes on: a decision made afterwards is recorded too.
    decide(&app, None).await;
    eventually("a later decision is recorded", || {
        let db = db.share();
        async move { count(&db, "SELECT COUNT(*) FROM decisions").await == 38 }
    })
    .await;
    app.stop().await;
}
on_both!(a_refused_record_is_quarantined_and_every_other_decision_is_recorded);

async fn a_database_outage_loses_and_duplicates_nothing_and_health_shows_it(backend: Backend) {
    let Some(mut app) = spawn(backend, |_| {}).await else { return };
    app.create_seller(seller("acme")).await;
    for _ in 0..5 {
        decide(&app, None).await;
    }
    let db = app.db.share();
    eventually("the first decisions are recorded", || {
        let db = db.share();
        async move { count(&db, "SELECT COUNT(*) FROM decisions").await == 5 }
    })
    .await;

    // The table goes away while decisions flow: the writer cannot write, and must not blame records.
    db.execute("ALTER TABLE decisions RENAME TO decisions_away").await;
    for _ in 0..20 {
        decide(&app, None).await;
    }
    let probe = &app;
    eventually("health says the recorder is behind", || async move {
        health(probe, RECORDER).await == ServingStatus::NotServing
    })
    .await;
    assert_eq!(health(&app, VERIFICATION).await, ServingStatus::Serving, "decisions still flow");
    for _ in 0..5 {
        decide(&app, None).await;
    }
    db.execute("ALTER TABLE decisions_away RENAME TO decisions").await;

    eventually("every decision is recorded once the table is back", || {
        let db = db.share();
        async move { count(&db, "SELECT COUNT(*) FROM decisions").await == 30 }
    })
    .await;
    eventually("health says the recorder caught up", || async move {
        health(probe, RECORDER).await == ServingStatus::Serving
    })
    .await;
    assert_eq!(count(&db, "SELECT COUNT(DISTINCT decision_id) FROM decisions").await, 30);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM decisions WHERE lost_records > 0").await, 0, "nothing was lost");
    assert_eq!(count(&db, "SELECT COUNT(*) FROM decision_quarantine").await, 0, "no record was blamed");
    app.stop().await;
}
on_both!(a_database_outage_loses_and_duplicates_nothing_and_health_shows_it);

fn old_decision(id: &str) -> String {
    format!(
        "INSERT INTO decisions (decision_id, time, caller, seller_id, purpose, basis, basis_evidence_ref, \
         categories, decision, allowed, reasons, revision, policy_version, lost_records) VALUES \
         ('{id}', 1000, 'old', 'acme', 'ORDER_FULFILLMENT', 'SEPARATE_CONSENT', '', 'RECIPIENT_NAME', 'DENY', '', \
         '{{\"denied\":[],\"reasons\":[]}}', 0, 'v1', 0)"
    )
}

fn old_quarantined(id: &str) -> String {
    format!(
        "INSERT INTO decision_quarantine (decision_id, time, quarantine_time, record, error) VALUES \
         ('{id}', 1000, 2000, '{{}}', 'refused')"
    )
}

async fn pruning_removes_old_records_and_quarantined_records_in_bounded_batches(backend: Backend) {
    let Some(app) = with_acme(backend, |s| {
        s.decisions.retention_days = 1;
        s.decisions.prune_interval_s = 1;
        // Fewer rows per statement than there are to prune: pruning takes several statements.
        s.decisions.prune_batch_size = 2;
    })
    .await
    else {
        return;
    };
    let db = app.db.share();
    for i in 0..5 {
        db.execute(&old_decision(&format!("old-{i}"))).await;
        db.execute(&old_quarantined(&format!("oldq-{i}"))).await;
    }
    decide(&app, None).await;
    eventually("old records and quarantined records are pruned, recent ones kept", || {
        let db = db.share();
        async move {
            count(&db, "SELECT COUNT(*) FROM decisions WHERE caller = 'old'").await == 0
                && count(&db, "SELECT COUNT(*) FROM decision_quarantine").await == 0
                && count(&db, "SELECT COUNT(*) FROM decisions").await == 1
        }
    })
    .await;
    app.stop().await;
}
on_both!(pruning_removes_old_records_and_quarantined_records_in_bounded_batches);

/// The records of a decision log, and the decisions its lost-records markers stand for.
async fn recorded_and_lost(db: &TestDb) -> (i64, i64) {
    let kept = count(db, "SELECT COUNT(*) FROM decisions WHERE lost_records = 0").await;
    let lost = count(db, "SELECT CAST(COALESCE(SUM(lost_records), 0) AS BIGINT) FROM decisions").await;
    (kept, lost)
}

/// Holds the decision log's head row (PostgreSQL: its row lock; SQLite: the write lock), so the
/// writer blocks on its next batch without failing, until the returned transaction ends.
async fn block_the_writer(db: &TestDb) -> sea_orm::DatabaseTransaction {
    use sea_orm::{ConnectionTrait, TransactionTrait};
    let conn = sea_orm::Database::connect(db.url.as_str()).await.unwrap();
    let txn = conn.begin().await.unwrap();
    txn.execute_unprepared("UPDATE decision_log_head SET size = size WHERE id = 1").await.unwrap();
    txn
}

/// A server with a record queue of one, whose decisions would wait a minute for room, and the
/// seller `acme`.
async fn queue_of_one(backend: Backend) -> Option<TestApp> {
    with_acme(backend, |s| {
        s.decisions.queue_capacity = 1;
        s.decisions.batch_size = 1;
        s.decisions.full_queue_wait_ms = 60_000;
    })
    .await
}

/// A batch that is not full gathers records for `decisions.linger_ms` before it is written; a
/// shutdown writes it at once, however long the linger, so no acknowledged decision is lost. The
/// shutdown waits at most 10 s for the writer: with a linger of ten minutes, only the early wake
/// gets the records written at all.
async fn a_lingering_batch_is_written_at_shutdown(backend: Backend) {
    let Some(mut app) = with_acme(backend, |s| s.decisions.linger_ms = 600_000).await else { return };
    decide(&app, None).await;
    decide(&app, Some("checkout-b")).await;
    app.stop_server().await;
    assert_eq!(recorded_and_lost(&app.db).await, (2, 0), "{backend:?}");
    let callers = count(&app.db, "SELECT COUNT(DISTINCT caller) FROM decisions").await;
    assert_eq!(callers, 2, "{backend:?}");
    app.stop().await;
}
on_both!(a_lingering_batch_is_written_at_shutdown);

/// A full queue ends the linger: the decision waiting for room gets it as soon as the writer takes
/// the queued records, not when a ten-minute linger ends (it would wait its minute for room and be
/// counted as lost).
async fn a_full_queue_ends_the_linger(backend: Backend) {
    let Some(mut app) = with_acme(backend, |s| {
        s.decisions.queue_capacity = 2;
        s.decisions.linger_ms = 600_000;
        s.decisions.full_queue_wait_ms = 60_000;
    })
    .await
    else {
        return;
    };
    for _ in 0..6 {
        decide(&app, None).await;
    }
    app.stop_server().await;
    assert_eq!(recorded_and_lost(&app.db).await, (6, 0), "{backend:?}");
    app.stop().await;
}
on_both!(a_full_queue_ends_the_linger);

async fn a_client_that_goes_away_while_its_record_waits_leaves_a_counted_gap(backend: Backend) {
    let Some(app) = queue_of_one(backend).await else { return };
    decide(&app, None).await;
    let db = app.db.share();
    eventually("the first decision is recorded", || {
        let db = db.share();
        async move { recorded_and_lost(&db).await == (1, 0) }
    })
    .await;

    let blocker = block_the_writer(&db).await;
    // The first is taken by the blocked writer, the second fills the queue of one.
    decide(&app, None).await;
    decide(&app, None).await;
    // The third waits for room; its client gives up and goes away.
    let mut client = app.verification.clone();
    let gave_up = tokio::time::timeout(
        std::time::Duration::from_millis(500),
        client.verify_seller(verify("acme", P::OrderFulfillment, &[C::RecipientName])),
    )
    .await;
    assert!(gave_up.is_err(), "{backend:?}: the third decision waits for room in the full queue");
    // Let the server see the stream reset and drop the waiting decision before the writer resumes.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    blocker.rollback().await.unwrap();

    // Writing resumes: the dropped record is not silently missing but marked as one lost decision.
    decide(&app, None).await;
    eventually("the decisions are recorded and the dropped one is marked lost", || {
        let db = db.share();
        async move { recorded_and_lost(&db).await == (4, 1) }
    })
    .await;
    app.stop().await;
}
on_both!(a_client_that_goes_away_while_its_record_waits_leaves_a_counted_gap);

async fn a_failing_writer_never_makes_decisions_wait_and_the_overflow_is_marked(backend: Backend) {
    let Some(app) = queue_of_one(backend).await else { return };
    let db = app.db.share();
    db.execute("ALTER TABLE decisions RENAME TO decisions_away").await;
    decide(&app, None).await;
    let probe = &app;
    eventually("the writer is failing", || async move { health(probe, RECORDER).await == ServingStatus::NotServing })
        .await;
    // A full queue in front of a failing writer: waiting for room would wait the whole minute, so
    // every one of these must be answered at once, its record counted as lost.
    for i in 0..20 {
        let mut client = app.verification.clone();
        let answered = tokio::time::timeout(
            std::time::Duration::from_secs(20),
            client.verify_seller(verify("acme", P::OrderFulfillment, &[C::RecipientName])),
        )
        .await;
        assert!(answered.is_ok_and(|r| r.is_ok()), "{backend:?}: decision {i} was answered without waiting");
    }
    db.execute("ALTER TABLE decisions_away RENAME TO decisions").await;
    eventually("every decision is recorded or counted in a marker", || {
        let db = db.share();
        async move {
            let (kept, lost) = recorded_and_lost(&db).await;
            kept + lost == 21 && lost >= 19
        }
    })
    .await;
    app.stop().await;
}
on_both!(a_failing_writer_never_makes_decisions_wait_and_the_overflow_is_marked);
