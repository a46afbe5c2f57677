//! What operators rely on: health that follows the database and the snapshot, reflection, metrics,
//! and configuration layering.

use std::net::SocketAddr;
use std::sync::Arc;

use safeguard::config::Settings;
use safeguard::pb::v1 as pb;
use safeguard::pb::v1::DataCategory as C;
use safeguard::pb::v1::Purpose as P;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;
use tonic_health::pb::health_check_response::ServingStatus;

use crate::both;
use crate::harness::*;

/// A TCP proxy in front of PostgreSQL that the test can cut and restore: "stopping the database"
/// for one server without disturbing the other tests that share the PostgreSQL server.
struct Proxy {
    addr: SocketAddr,
    up: Arc<std::sync::atomic::AtomicBool>,
    conns: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Proxy {
    async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let up = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let conns = Arc::new(Mutex::new(Vec::new()));
        let (up2, conns2) = (up.clone(), conns.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else { return };
                if !up2.load(std::sync::atomic::Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let upstream = upstream.clone();
                conns2.lock().await.push(tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                }));
            }
        });
        Self { addr, up, conns }
    }

    async fn cut(&self) {
        self.up.store(false, std::sync::atomic::Ordering::SeqCst);
        for c in self.conns.lock().await.drain(..) {
            c.abort();
        }
    }

    fn restore(&self) {
        self.up.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

const VERIFICATION: &str = "safeguard.v1.VerificationService";
const REGISTRY: &str = "safeguard.v1.RegistryService";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_follows_the_database_and_the_snapshot() {
    let Some(db) = TestDb::new(Backend::Postgres).await else { return };
    // Route the server's database connections through the proxy.
    let (head, tail) = db.url.split_once('@').unwrap();
    let (hostport, path) = tail.split_once('/').unwrap();
    let proxy = Proxy::start(hostport.to_owned()).await;
    let mut settings = test_settings(&db);
    settings.database.url = format!("{head}@{}/{path}", proxy.addr);
    settings.database.connect_timeout_ms = 500;
    settings.snapshot.max_staleness_ms = 6_000;
    let mut app = TestApp::spawn_with(db, settings).await;

    app.create_seller(seller("acme")).await;
    let (_, rev) = app.attest(attestation("acme", 1)).await;
    let req = verify("acme", P::OrderFulfillment, &[C::RecipientName]);
    assert_eq!(app.verify_at(req.clone(), rev).await.decision(), pb::Decision::Allow);
    assert_eq!(health(&app, "").await, ServingStatus::Serving);
    assert_eq!(health(&app, REGISTRY).await, ServingStatus::Serving);

    proxy.cut().await;
    eventually("the registry reports NOT_SERVING", || async {
        health(&app, REGISTRY).await == ServingStatus::NotServing
    })
    .await;
    // Decisions come from memory: still served, still allowed, while the snapshot is fresh enough.
    assert_eq!(health(&app, VERIFICATION).await, ServingStatus::Serving);
    assert_eq!(app.verify_at(req.clone(), 0).await.decision(), pb::Decision::Allow);
    let err = app.registry.get_seller(pb::GetSellerRequest { seller_id: "acme".into() }).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unavailable, "{err:?}");

    eventually("verification reports NOT_SERVING", || async {
        health(&app, VERIFICATION).await == ServingStatus::NotServing
    })
    .await;
    let r = app.verify_at(req.clone(), 0).await;
    assert_eq!(r.decision(), pb::Decision::Deny);
    assert_eq!(codes(&r.reasons), vec![pb::ReasonCode::RegistryStale]);

    proxy.restore();
    eventually("everything reports SERVING again", || async {
        health(&app, REGISTRY).await == ServingStatus::Serving && health(&app, "").await == ServingStatus::Serving
    })
    .await;
    assert_eq!(app.verify_at(req, 0).await.decision(), pb::Decision::Allow);
    app.stop().await;
}

both!(reflection_lists_every_service_in_v1_and_v1alpha, |app: TestApp| async move {
    use tokio_stream::StreamExt;
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    let mut client = ServerReflectionClient::new(app.channel.clone());
    let req = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = client.server_reflection_info(tokio_stream::iter(vec![req])).await.unwrap().into_inner();
    let Some(Ok(resp)) = stream.next().await else { panic!("no reflection answer") };
    let Some(MessageResponse::ListServicesResponse(list)) = resp.message_response else { panic!("{resp:?}") };
    let names: Vec<_> = list.service.into_iter().map(|s| s.name).collect();
    for expected in [VERIFICATION, REGISTRY, "grpc.health.v1.Health"] {
        assert!(names.contains(&expected.to_owned()), "{names:?}");
    }

    use tonic_reflection::pb::v1alpha::ServerReflectionRequest as AlphaReq;
    use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient as AlphaClient;
    use tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest as AlphaRequest;
    let mut alpha = AlphaClient::new(app.channel.clone());
    let req = AlphaReq {
        host: String::new(),
        message_request: Some(AlphaRequest::FileContainingSymbol(VERIFICATION.into())),
    };
    let mut stream = alpha.server_reflection_info(tokio_stream::iter(vec![req])).await.unwrap().into_inner();
    assert!(matches!(stream.next().await, Some(Ok(_))));
    app
});

async fn scrape(addr: SocketAddr) -> String {
    let mut conn = TcpStream::connect(addr).await.unwrap();
    conn.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut body = String::new();
    conn.read_to_string(&mut body).await.unwrap();
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    body
}

both!(metrics_count_rpcs_and_decisions, |mut app: TestApp| async move {
    app.create_seller(seller("acme")).await;
    let (_, rev) = app.attest(attestation("acme", 1)).await;
    app.verify_at(verify("acme", P::OrderFulfillment, &[C::RecipientName, C::PaymentData]), rev).await;
    let (_, mut anonymous) = app.clients_as(None);
    let _ = anonymous.get_seller(pb::GetSellerRequest { seller_id: "acme".into() }).await;
    let text = scrape(app.metrics_addr.unwrap()).await;
    for needle in [
        r#"safeguard_rpc_requests_total{method="VerifySeller",code="OK"}"#,
        r#"safeguard_rpc_requests_total{method="GetSeller",code="UNAUTHENTICATED"}"#,
        r#"safeguard_rpc_duration_seconds_bucket{method="VerifySeller""#,
        r#"safeguard_decisions_total{decision="ALLOW_PARTIAL"}"#,
        r#"safeguard_decision_reasons_total{reason="CATEGORY_PROHIBITED"}"#,
    ] {
        assert!(text.contains(needle), "missing {needle} in\n{text}");
    }
    // Gauges come from the monitor, once a second.
    let addr = app.metrics_addr.unwrap();
    eventually("the snapshot gauges are published", || async move {
        let text = scrape(addr).await;
        text.contains("safeguard_snapshot_revision") && text.contains("safeguard_database_pool_connections")
    })
    .await;
    app
});

#[test]
fn configuration_layers_a_file_over_defaults_and_names_bad_keys() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("safeguard.toml");
    std::fs::write(
        &file,
        "[server]\nlisten_addr = \"0.0.0.0:6000\"\n[database]\nurl = \"postgres://app:hunter2@db:5432/safeguard\"\n[auth]\nhs256_secret = \"0123456789abcdef0123456789abcdef\"\n",
    )
    .unwrap();
    let s = Settings::load(Some(&file)).unwrap();
    assert_eq!(s.server.listen_addr.port(), 6000);
    assert_eq!(s.snapshot.poll_interval_ms, 250, "unset keys keep their defaults");
    let printed = toml::to_string(&s.redacted()).unwrap();
    assert!(!printed.contains("hunter2") && !printed.contains("0123456789abcdef"), "{printed}");
    assert!(printed.contains("[redacted]"));

    std::fs::write(&file, "[snapshot]\npoll_interval_ms = \"soon\"\n").unwrap();
    let err = Settings::load(Some(&file)).unwrap_err().to_string();
    assert!(err.contains("poll_interval_ms"), "{err}");
    std::fs::write(&file, "[server]\nlisten_adr = \"127.0.0.1:1\"\n").unwrap();
    let err = Settings::load(Some(&file)).unwrap_err().to_string();
    assert!(err.contains("listen_adr"), "{err}");
    std::fs::write(&file, "[snapshot]\nmax_staleness_ms = 10\n").unwrap();
    let err = Settings::load(Some(&file)).unwrap_err().to_string();
    assert!(err.contains("max_staleness_ms"), "{err}");
}
