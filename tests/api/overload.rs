//! Overload that operators can see and clients can act on: shed requests answer UNAVAILABLE, late
//! ones DEADLINE_EXCEEDED, both counted by code; long imports are bounded by an idle timeout
//! between messages rather than by the request timeout, and their report is bounded.

use std::net::SocketAddr;
use std::time::Duration;

use safeguard::config::Settings;
use safeguard::pb::v1 as pb;
use safeguard::pb::v1::DataCategory as C;
use safeguard::pb::v1::Purpose as P;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::harness::*;
use crate::on_both;

/// A server on a fresh `backend` database with `adjust` applied to the test settings.
async fn spawn(backend: Backend, adjust: impl FnOnce(&mut Settings)) -> Option<TestApp> {
    let db = TestDb::new(backend).await?;
    let mut settings = test_settings(&db);
    adjust(&mut settings);
    Some(TestApp::spawn_with(db, settings).await)
}

/// The value of one sample on `/metrics` (0 when absent: counters start unregistered).
async fn sample(addr: SocketAddr, series: &str) -> f64 {
    let mut conn = TcpStream::connect(addr).await.unwrap();
    conn.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut body = String::new();
    conn.read_to_string(&mut body).await.unwrap();
    body.lines().find_map(|l| l.strip_prefix(series).and_then(|rest| rest.trim().parse::<f64>().ok())).unwrap_or(0.0)
}

/// A request that waits (up to `server.max_min_revision_wait_ms`) for a revision that never comes.
fn slow_verify() -> pb::VerifySellerRequest {
    let mut req = verify("acme", P::OrderFulfillment, &[C::RecipientName]);
    req.min_revision = 1_000_000_000;
    req
}

const VERIFY_UNAVAILABLE: &str = r#"safeguard_rpc_requests_total{method="VerifySeller",code="UNAVAILABLE"}"#;
const VERIFY_DEADLINE: &str = r#"safeguard_rpc_requests_total{method="VerifySeller",code="DEADLINE_EXCEEDED"}"#;

async fn requests_beyond_the_concurrency_limit_are_shed_as_unavailable_and_counted(backend: Backend) {
    let Some(app) = spawn(backend, |s| {
        s.server.concurrency_limit = 1;
        s.server.load_shed = true;
        s.server.max_min_revision_wait_ms = 2_000;
    })
    .await
    else {
        return;
    };
    let metrics = app.metrics_addr.unwrap();
    let before = sample(metrics, VERIFY_UNAVAILABLE).await;
    const CALLS: usize = 6;
    let calls: Vec<_> = (0..CALLS)
        .map(|_| {
            let mut client = app.verification.clone();
            tokio::spawn(async move { client.verify_seller(slow_verify()).await.unwrap_err() })
        })
        .collect();
    let mut shed = 0;
    for call in calls {
        let status = call.await.unwrap();
        // The one admitted waits for the revision and answers UNAVAILABLE too, with its own reason.
        assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
        if status.message().contains("overloaded") {
            shed += 1;
        }
    }
    assert!(shed >= 1, "with room for one request, some of {CALLS} concurrent ones are shed");
    let counted = sample(metrics, VERIFY_UNAVAILABLE).await - before;
    assert!(counted >= CALLS as f64, "every refused request is counted by its code: {counted}");
    app.stop().await;
}
on_both!(requests_beyond_the_concurrency_limit_are_shed_as_unavailable_and_counted);

async fn a_request_past_the_request_timeout_is_deadline_exceeded_and_counted(backend: Backend) {
    let Some(mut app) = spawn(backend, |s| {
        s.server.request_timeout_ms = 200;
        s.server.max_min_revision_wait_ms = 3_000;
    })
    .await
    else {
        return;
    };
    let metrics = app.metrics_addr.unwrap();
    let before = sample(metrics, VERIFY_DEADLINE).await;
    let status = app.verification.verify_seller(slow_verify()).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::DeadlineExceeded, "{status:?}");
    assert!(sample(metrics, VERIFY_DEADLINE).await - before >= 1.0, "the timed-out request is counted");
    app.stop().await;
}
on_both!(a_request_past_the_request_timeout_is_deadline_exceeded_and_counted);

fn seller_item(id: &str) -> pb::ImportSellersRequest {
    pb::ImportSellersRequest { item: Some(pb::import_sellers_request::Item::Seller(seller(id))) }
}

fn bad_seller_item(id: &str) -> pb::ImportSellersRequest {
    let mut s = seller(id);
    s.country = "not a country".into();
    pb::ImportSellersRequest { item: Some(pb::import_sellers_request::Item::Seller(s)) }
}

async fn an_import_longer_than_the_request_timeout_completes_with_its_report(backend: Backend) {
    let Some(mut app) = spawn(backend, |s| {
        s.server.request_timeout_ms = 500;
        s.server.stream_idle_timeout_ms = 5_000;
    })
    .await
    else {
        return;
    };
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(async move {
        // Twelve pauses of 100 ms: the stream lasts over a second, each pause far below the idle timeout.
        for i in 0..12 {
            let item = if i % 5 == 4 { bad_seller_item(&format!("bad{i}")) } else { seller_item(&format!("s{i}")) };
            tx.send(item).await.unwrap();
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let report = app.registry.import_sellers(ReceiverStream::new(rx)).await.unwrap().into_inner();
    assert_eq!(report.sellers_created, 10);
    assert_eq!(report.errors_total, 2);
    assert_eq!(report.errors.iter().map(|e| e.index).collect::<Vec<_>>(), vec![4, 9]);
    app.stop().await;
}
on_both!(an_import_longer_than_the_request_timeout_completes_with_its_report);

async fn an_idle_import_is_ended_with_deadline_exceeded_and_what_it_applied(backend: Backend) {
    let Some(mut app) = spawn(backend, |s| s.server.stream_idle_timeout_ms = 300).await else { return };
    let (tx, rx) = mpsc::channel(64);
    let call = {
        let mut registry = app.registry.clone();
        tokio::spawn(async move { registry.import_sellers(ReceiverStream::new(rx)).await })
    };
    // One full batch (1,000 items, applied) and three more (not yet a batch) ...
    for i in 0..1_003 {
        tx.send(seller_item(&format!("idle{i}"))).await.unwrap();
    }
    // ... then the sender stays open and silent: the stream is idle, not finished.
    let status = call.await.unwrap().unwrap_err();
    drop(tx);
    assert_eq!(status.code(), tonic::Code::DeadlineExceeded, "{status:?}");
    assert!(status.message().contains("idle"), "{status:?}");
    assert!(status.message().contains("the first 1000 items were applied"), "{status:?}");
    assert!(status.message().contains("sellers created 1000"), "{status:?}");
    assert!(status.message().contains("resend from item 1000"), "{status:?}");
    // What the message reports is what the registry holds.
    app.registry.get_seller(pb::GetSellerRequest { seller_id: "idle999".into() }).await.unwrap();
    let unfinished = app.registry.get_seller(pb::GetSellerRequest { seller_id: "idle1000".into() }).await;
    assert_eq!(unfinished.unwrap_err().code(), tonic::Code::NotFound);
    app.stop().await;
}
on_both!(an_idle_import_is_ended_with_deadline_exceeded_and_what_it_applied);

async fn an_import_report_lists_the_first_thousand_errors_and_counts_them_all(backend: Backend) {
    let Some(mut app) = spawn(backend, |_| {}).await else { return };
    let items: Vec<_> = (0..1_200).map(|i| bad_seller_item(&format!("bad{i}"))).collect();
    let report = app.registry.import_sellers(tokio_stream::iter(items)).await.unwrap().into_inner();
    assert_eq!(report.errors_total, 1_200);
    assert_eq!(report.errors.len(), 1_000);
    assert_eq!(report.errors.first().map(|e| e.index), Some(0));
    assert_eq!(report.errors.last().map(|e| e.index), Some(999));
    app.stop().await;
}
on_both!(an_import_report_lists_the_first_thousand_errors_and_counts_them_all);

async fn a_file_streamed_over_grpc_is_imported_and_reported_by_line(backend: Backend) {
    use safeguard::cli::{self, Format, GenerateOptions, ImportOptions};
    let Some(mut app) = spawn(backend, |s| s.server.request_timeout_ms = 500).await else { return };
    let (_, mut csv) =
        cli::generate(&GenerateOptions { sellers: 40, seed: 7, as_of: 1_768_435_200, format: Format::Csv }, Vec::new())
            .unwrap();
    // One row the server refuses (an unknown country), after the header and the generated rows.
    csv.extend_from_slice(b"seller,bad1,Bad Ltd.,ZZZ,ACTIVE,RECIPIENT,a@bad.example,p@bad.example");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sellers.csv");
    let header_len = String::from_utf8_lossy(&csv).lines().next().unwrap().split(',').count();
    // Pad the appended row to the header's width, whatever the generator's columns are.
    csv.extend(std::iter::repeat_n(b',', header_len - 8));
    csv.push(b'\n');
    std::fs::write(&path, &csv).unwrap();
    let lines = String::from_utf8_lossy(&csv).lines().count() as u64;

    let admin = token("test-admin", &[safeguard::auth::Role::Admin]);
    let endpoint = format!("http://{}", app.addr);
    let report = cli::import_grpc(&endpoint, Some(&admin), &path, &ImportOptions::default()).await.unwrap();
    assert_eq!(report.sellers_created, 40, "{report}");
    assert!(report.attestations_created > 0, "{report}");
    assert_eq!(report.errors.iter().map(|e| e.line).collect::<Vec<_>>(), vec![lines], "{report:?}");
    let first = app.registry.list_sellers(safeguard::pb::v1::ListSellersRequest::default()).await.unwrap();
    assert!(!first.into_inner().sellers.is_empty());
    app.stop().await;
}
on_both!(a_file_streamed_over_grpc_is_imported_and_reported_by_line);
