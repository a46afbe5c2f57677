//! Suspension orders (PIPA 28-9), supervision evidence (PIPA 26(4)) and the decision record.

use std::time::Duration;

use safeguard::domain::record::RecordMode;
use safeguard::pb::v1 as pb;
use safeguard::pb::v1::DataCategory as C;
use safeguard::pb::v1::Purpose as P;
use safeguard::store::DecisionFilter;

use crate::both;
use crate::harness::*;

fn order(seller_id: &str, country: &str, categories: &[C]) -> pb::CreateSuspensionOrderRequest {
    pb::CreateSuspensionOrderRequest {
        order: Some(pb::SuspensionOrder {
            order_ref: "PIPC-2026-0042".into(),
            seller_id: seller_id.into(),
            country: country.into(),
            categories: categories.iter().map(|c| *c as i32).collect(),
            effective_time: days_from_now(0),
            note: "order to suspend transfers".into(),
            ..Default::default()
        }),
        request_id: String::new(),
    }
}

both!(suspension_by_country_blocks_every_seller_there_until_lifted, |mut app: TestApp| async move {
    app.create_seller(seller("cn-1")).await;
    app.create_seller(seller("cn-2")).await;
    let mut us = seller("us-1");
    us.country = "US".into();
    app.create_seller(us).await;
    for (i, id) in ["cn-1", "cn-2", "us-1"].iter().enumerate() {
        app.attest(attestation(id, i as u8 + 1)).await;
    }
    let created = app.registry.create_suspension_order(order("", "CN", &[])).await.unwrap().into_inner();
    let o = created.order.unwrap();
    assert!(!o.order_id.is_empty() && !o.lifted);
    assert_eq!(o.created_by, "test-admin");
    for basis in [pb::TransferBasis::SeparateConsent, pb::TransferBasis::LawOrTreaty] {
        for id in ["cn-1", "cn-2"] {
            let mut req = verify(id, P::OrderFulfillment, &[C::RecipientName, C::ShippingAddress]);
            req.basis = basis as i32;
            let r = app.verify_at(req, created.revision).await;
            assert_eq!(r.decision(), pb::Decision::Deny, "{id}");
            assert_eq!(codes(&r.reasons), vec![pb::ReasonCode::SuspensionOrderActive]);
            assert!(
                r.denied_categories.iter().all(|d| codes(&d.reasons) == vec![pb::ReasonCode::SuspensionOrderActive])
            );
        }
    }
    let r = app.verify_at(verify("us-1", P::OrderFulfillment, &[C::RecipientName]), created.revision).await;
    assert_eq!(r.decision(), pb::Decision::Allow, "other countries are untouched");

    let listed = app
        .registry
        .list_suspension_orders(pb::ListSuspensionOrdersRequest { include_lifted: false })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.orders.len(), 1);
    let lifted = app
        .registry
        .lift_suspension_order(pb::LiftSuspensionOrderRequest {
            order_id: o.order_id.clone(),
            reason: "order withdrawn".into(),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(lifted.order.as_ref().unwrap().lifted);
    let r = app.verify_at(verify("cn-1", P::OrderFulfillment, &[C::RecipientName]), lifted.revision).await;
    assert_eq!(r.decision(), pb::Decision::Allow, "lifting restores the earlier answer");
    let err = app
        .registry
        .lift_suspension_order(pb::LiftSuspensionOrderRequest {
            order_id: o.order_id,
            reason: "again".into(),
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::FailedPrecondition);
    let listed = app
        .registry
        .list_suspension_orders(pb::ListSuspensionOrdersRequest { include_lifted: false })
        .await
        .unwrap()
        .into_inner();
    assert!(listed.orders.is_empty());
    let all = app
        .registry
        .list_suspension_orders(pb::ListSuspensionOrdersRequest { include_lifted: true })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(all.orders.len(), 1);
    app
});

both!(seller_order_on_some_categories_denies_only_those, |mut app: TestApp| async move {
    app.create_seller(seller("acme")).await;
    app.attest(attestation("acme", 1)).await;
    let rev =
        app.registry.create_suspension_order(order("acme", "", &[C::CustomsCode])).await.unwrap().into_inner().revision;
    let r = app.verify_at(verify("acme", P::CustomsClearance, &[C::RecipientName, C::CustomsCode]), rev).await;
    assert_eq!(r.decision(), pb::Decision::AllowPartial);
    assert_eq!(r.allowed_categories, vec![C::RecipientName as i32]);
    assert_eq!(codes(&r.denied_categories[0].reasons), vec![pb::ReasonCode::SuspensionOrderActive]);

    // An order that takes effect later does not apply yet, but shortens how long the answer holds.
    let mut later = order("acme", "", &[]);
    later.order.as_mut().unwrap().effective_time =
        Some(prost_types::Timestamp { seconds: days_from_now(0).unwrap().seconds + 60, nanos: 0 });
    let rev = app.registry.create_suspension_order(later).await.unwrap().into_inner().revision;
    let r = app.verify_at(verify("acme", P::OrderFulfillment, &[C::RecipientName]), rev).await;
    assert_eq!(r.decision(), pb::Decision::Allow);
    assert!(r.valid_until.unwrap().seconds <= days_from_now(0).unwrap().seconds + 61);

    for (bad, field) in [
        (order("", "", &[]), "order.seller_id"),
        (order("ghost!", "", &[]), "order.seller_id"),
        (order("", "XX", &[]), "order.country"),
    ] {
        let err = app.registry.create_suspension_order(bad).await.unwrap_err();
        assert_eq!(violated_fields(&err), vec![field]);
    }
    let err = app.registry.create_suspension_order(order("ghost", "", &[])).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);
    app
});

both!(entrustee_without_recent_supervision_gets_audit_overdue_advice, |mut app: TestApp| async move {
    let mut e = seller("courier");
    e.role = pb::SellerRole::Entrustee as i32;
    app.create_seller(e).await;
    let (_, rev) = app.attest(attestation("courier", 1)).await;
    let req = verify("courier", P::OrderFulfillment, &[C::ShippingAddress]);
    let r = app.verify_at(req.clone(), rev).await;
    assert_eq!(r.decision(), pb::Decision::Allow, "an advisory never blocks");
    assert_eq!(codes(&r.reasons), vec![pb::ReasonCode::AuditOverdue]);

    let record = |days: i64| pb::RecordSupervisionRequest {
        supervision: Some(pb::Supervision {
            seller_id: "courier".into(),
            kind: pb::SupervisionKind::Inspection as i32,
            time: days_from_now(days),
            evidence_sha256: "ab".repeat(32),
            note: "on-site inspection".into(),
            ..Default::default()
        }),
        request_id: String::new(),
    };
    let old = app.registry.record_supervision(record(-400)).await.unwrap().into_inner();
    assert_eq!(old.supervision.unwrap().recorded_by, "test-admin");
    let r = app.verify_at(req.clone(), old.revision).await;
    assert_eq!(codes(&r.reasons), vec![pb::ReasonCode::AuditOverdue], "older than the policy's 365 days");
    let recent = app.registry.record_supervision(record(-10)).await.unwrap().into_inner();
    let r = app.verify_at(req, recent.revision).await;
    assert!(r.reasons.is_empty(), "{:?}", r.reasons);

    let mut bad = record(0);
    bad.supervision.as_mut().unwrap().kind = 9;
    bad.supervision.as_mut().unwrap().evidence_sha256 = "nope".into();
    let mut fields = violated_fields(&app.registry.record_supervision(bad).await.unwrap_err());
    fields.sort();
    assert_eq!(fields, vec!["supervision.evidence_sha256", "supervision.kind"]);
    app
});

async fn recorded(app: &TestApp, expected: usize) -> Vec<safeguard::domain::record::DecisionRecord> {
    let store = app.db.store().await;
    let mut got = Vec::new();
    for _ in 0..100 {
        got = store.list_decisions(&DecisionFilter::default(), 10_000).await.unwrap();
        let total: i64 = got.iter().map(|r| if r.lost_records > 0 { r.lost_records } else { 1 }).sum();
        if total as usize >= expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    got
}

async fn app_recording(backend: Backend, mode: RecordMode, queue: usize) -> Option<TestApp> {
    app_waiting(backend, mode, queue, 1_000).await
}

/// As [`app_recording`], with `wait_ms` for room in a full queue.
async fn app_waiting(backend: Backend, mode: RecordMode, queue: usize, wait_ms: u64) -> Option<TestApp> {
    let db = TestDb::new(backend).await?;
    let mut settings = test_settings(&db);
    settings.decisions.mode = mode;
    settings.decisions.queue_capacity = queue;
    settings.decisions.full_queue_wait_ms = wait_ms;
    settings.metrics.enabled = true;
    settings.decisions.batch_size = 7;
    let mut app = TestApp::spawn_with(db, settings).await;
    app.create_seller(seller("acme")).await;
    app.attest(attestation("acme", 1)).await;
    Some(app)
}

async fn three_decisions(app: &mut TestApp) {
    let rev =
        app.registry.get_seller(pb::GetSellerRequest { seller_id: "acme".into() }).await.unwrap().into_inner().revision;
    app.verify_at(verify("acme", P::OrderFulfillment, &[C::RecipientName]), rev).await;
    app.verify_at(verify("acme", P::OrderFulfillment, &[C::RecipientName, C::Email]), rev).await;
    app.verify_at(verify("nobody", P::OrderFulfillment, &[C::RecipientName]), rev).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decisions_are_recorded_as_the_mode_says() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let Some(mut app) = app_recording(backend, RecordMode::All, 1024).await else { continue };
        three_decisions(&mut app).await;
        let all = recorded(&app, 3).await;
        let decisions: Vec<_> = all.iter().map(|r| r.decision.unwrap()).collect();
        use safeguard::domain::Decision::*;
        assert_eq!(decisions, vec![Allow, AllowPartial, Deny], "{backend:?}");
        let partial = &all[1];
        assert_eq!(&*partial.caller, "test-admin");
        assert_eq!(partial.seller_id.as_ref().unwrap().as_str(), "acme");
        assert_eq!(partial.basis_evidence_ref, "consent-123");
        assert_eq!(partial.outcome.denied.len(), 1);
        assert_eq!(&*partial.policy_version, "pipa-kr-2026.11");
        app.stop().await;

        let Some(mut app) = app_recording(backend, RecordMode::DenyOnly, 1024).await else { continue };
        three_decisions(&mut app).await;
        // Stopping drains the queue: whatever was acknowledged is in the record.
        let url = app.db.share();
        app.stop_server().await;
        let only = recorded_in(&url.url, 2).await;
        let decisions: Vec<_> = only.iter().map(|r| r.decision.unwrap()).collect();
        assert_eq!(decisions, vec![AllowPartial, Deny], "{backend:?}");

        let Some(mut app) = app_recording(backend, RecordMode::Off, 1024).await else { continue };
        three_decisions(&mut app).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(recorded(&app, 0).await.is_empty());
        app.stop().await;
    }
}

async fn recorded_in(url: &str, expected: usize) -> Vec<safeguard::domain::record::DecisionRecord> {
    let store = TestDb::store_at(url).await;
    let got = store.list_decisions(&DecisionFilter::default(), 10_000).await.unwrap();
    assert!(got.len() >= expected);
    got
}

/// 100 decisions of one cart into a queue of one record.
async fn a_cart_through_a_queue_of_one(app: &mut TestApp) -> Vec<safeguard::domain::record::DecisionRecord> {
    let rev =
        app.registry.get_seller(pb::GetSellerRequest { seller_id: "acme".into() }).await.unwrap().into_inner().revision;
    let mut requests: Vec<_> = (0..100).map(|_| verify("acme", P::OrderFulfillment, &[C::RecipientName])).collect();
    requests[0].min_revision = rev;
    let r =
        app.verification.batch_verify_sellers(pb::BatchVerifySellersRequest { requests }).await.unwrap().into_inner();
    assert_eq!(r.responses.len(), 100);
    assert!(r.responses.iter().all(|x| x.decision() == pb::Decision::Allow));
    recorded(app, 100).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overflowing_record_queue_keeps_answering_and_records_the_loss() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        // No wait for room: the operator chose answering at once over recording everything.
        let Some(mut app) = app_waiting(backend, RecordMode::All, 1, 0).await else { continue };
        let got = a_cart_through_a_queue_of_one(&mut app).await;
        let lost: i64 = got.iter().map(|r| r.lost_records).sum();
        let kept = got.iter().filter(|r| r.lost_records == 0).count() as i64;
        assert!(lost > 0, "{backend:?}: a queue of one cannot take 100 decisions at once");
        assert_eq!(kept + lost, 100, "{backend:?}: every decision is either recorded or counted as lost");
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_record_queue_slows_decisions_to_the_writer_instead_of_losing_records() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let Some(mut app) = app_recording(backend, RecordMode::All, 1).await else { continue };
        // The recorder is process-wide: the other backend's run adds to the same counter.
        let metrics = app.metrics_addr.unwrap();
        let waited = || async move {
            let text = scrape_metrics(metrics).await;
            metric_value(&text, "safeguard_decision_records_waited_total").unwrap_or(0.0)
        };
        let before = waited().await;
        let got = a_cart_through_a_queue_of_one(&mut app).await;
        assert_eq!(got.iter().map(|r| r.lost_records).sum::<i64>(), 0, "{backend:?}: no record was lost");
        assert_eq!(got.len(), 100, "{backend:?}: every decision is recorded");
        let after = waited().await;
        assert!(after > before, "{backend:?}: decisions waited for room in the queue ({before} → {after})");
        app.stop().await;
    }
}
