//! The test harness: a real safeguard on 127.0.0.1:0 over a fresh database (an SQLite file in a
//! temporary directory, or a fresh PostgreSQL schema), driven by the generated tonic clients.

use std::net::SocketAddr;
use std::time::Duration;

use safeguard::auth::Role;
use safeguard::auth::keys::mint_hs256;
use safeguard::config::Settings;
use safeguard::pb::v1 as pb;
use safeguard::pb::v1::registry_service_client::RegistryServiceClient;
use safeguard::pb::v1::verification_service_client::VerificationServiceClient;
use safeguard::startup::App;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

/// The HS256 secret test servers are configured with.
pub const TEST_SECRET: &str = "test-secret-for-safeguard-integration-tests-only";

/// A token signed with [`TEST_SECRET`], valid for an hour.
pub fn token(sub: &str, roles: &[Role]) -> String {
    mint_hs256(TEST_SECRET.as_bytes(), sub, roles, 3600, None, None).unwrap()
}

/// Adds `authorization: Bearer <token>` to every call (or nothing, for `None`).
#[derive(Clone)]
pub struct Bearer(Option<MetadataValue<Ascii>>);

impl Bearer {
    /// A bearer of `token`.
    pub fn new(token: Option<&str>) -> Self {
        Self(token.map(|t| format!("Bearer {t}").parse().unwrap()))
    }
}

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(v) = &self.0 {
            req.metadata_mut().insert("authorization", v.clone());
        }
        Ok(req)
    }
}

/// A channel that authenticates every call.
pub type Authed = InterceptedService<Channel, Bearer>;

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The PostgreSQL server tests use, if any: `SAFEGUARD_TEST_POSTGRES_URL`.
pub fn postgres_url() -> Option<String> {
    std::env::var("SAFEGUARD_TEST_POSTGRES_URL").ok().filter(|u| !u.is_empty())
}

/// A fresh, empty database for one test.
pub struct TestDb {
    pub url: String,
    pub backend: Backend,
    /// Where the checkpoint key and checkpoints live (outside the database, as in production).
    pub key_dir: std::path::PathBuf,
    _dir: Option<tempfile::TempDir>,
    pg: Option<(String, String)>,
}

impl TestDb {
    /// `None` when the backend is PostgreSQL and no server is configured (the test is skipped).
    pub async fn new(backend: Backend) -> Option<Self> {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let url = format!("sqlite://{}?mode=rwc", dir.path().join("safeguard.db").display());
                Some(Self { url, backend, key_dir: dir.path().to_owned(), _dir: Some(dir), pg: None })
            }
            Backend::Postgres => {
                let Some(base) = postgres_url() else {
                    eprintln!("SAFEGUARD_TEST_POSTGRES_URL is not set: PostgreSQL variant skipped");
                    return None;
                };
                let schema = format!("sg_{}", uuid::Uuid::now_v7().simple());
                psql(&base, &format!("CREATE SCHEMA {schema}")).await;
                let sep = if base.contains('?') { '&' } else { '?' };
                let url = format!("{base}{sep}options[search_path]={schema}");
                let dir = tempfile::tempdir().unwrap();
                Some(Self { url, backend, key_dir: dir.path().to_owned(), _dir: Some(dir), pg: Some((base, schema)) })
            }
        }
    }

    /// The same database for a second server; dropping it is left to the original.
    pub fn share(&self) -> Self {
        Self { url: self.url.clone(), backend: self.backend, key_dir: self.key_dir.clone(), _dir: None, pg: None }
    }

    /// Cuts the registry's log back to `revision` and moves its head there: a database restored
    /// from an older backup, or truncated by hand, whose chain is still consistent.
    pub async fn truncate_registry_log(&self, revision: i64) {
        self.execute(&format!("DELETE FROM registry_events WHERE revision > {revision}")).await;
        self.execute(&format!(
            "UPDATE registry_head SET revision = {revision}, \
             hash = (SELECT hash FROM registry_events WHERE revision = {revision}) WHERE id = 1"
        ))
        .await;
    }

    /// safeguard's own store on the test's database, beside the server's (two connections).
    pub async fn store(&self) -> safeguard::store::Store {
        Self::store_at(&self.url).await
    }

    /// safeguard's own store on the database at `url`.
    pub async fn store_at(url: &str) -> safeguard::store::Store {
        safeguard::store::Store::connect(&safeguard::store::DbOptions {
            url: url.to_owned(),
            max_connections: 2,
            connect_timeout: std::time::Duration::from_secs(5),
            sqlite_cache_kib: 2_000,
        })
        .await
        .unwrap()
    }

    /// Runs raw SQL against the test's database (for tampering and inspection).
    pub async fn execute(&self, sql: &str) {
        use sea_orm::ConnectionTrait;
        let db = sea_orm::Database::connect(self.url.as_str()).await.unwrap();
        db.execute_unprepared(sql).await.unwrap();
        db.close().await.unwrap();
    }

    /// Drops a PostgreSQL schema; SQLite files go with their temporary directory.
    pub async fn drop_now(&mut self) {
        if let Some((base, schema)) = self.pg.take() {
            psql(&base, &format!("DROP SCHEMA IF EXISTS {schema} CASCADE")).await;
        }
    }
}

async fn psql(url: &str, sql: &str) {
    use sea_orm::ConnectionTrait;
    let db = sea_orm::Database::connect(url).await.unwrap();
    db.execute_unprepared(sql).await.unwrap();
    db.close().await.unwrap();
}

/// Settings for a test server on `db`: an ephemeral port and a quick follower.
pub fn test_settings(db: &TestDb) -> Settings {
    let mut s = Settings::default();
    s.server.listen_addr = SocketAddr::from(([127, 0, 0, 1], 0));
    s.database.url = db.url.clone();
    s.database.max_connections = 5;
    s.snapshot.poll_interval_ms = 50;
    s.snapshot.heartbeat_ms = 100;
    s.server.max_min_revision_wait_ms = 3_000;
    s.auth.hs256_secret = Some(safeguard::config::Secret::new(TEST_SECRET));
    s.metrics.listen_addr = SocketAddr::from(([127, 0, 0, 1], 0));
    // PostgreSQL needs a configured key file; SQLite would default to this same place.
    s.audit.signing_key_file = Some(db.key_dir.join("safeguard.signing-key"));
    s.console.listen_addr = SocketAddr::from(([127, 0, 0, 1], 0));
    s
}

/// A running server and clients connected to it.
pub struct TestApp {
    pub addr: SocketAddr,
    /// Where `/metrics` is served.
    pub metrics_addr: Option<SocketAddr>,
    /// Where the console is served.
    pub console_addr: Option<SocketAddr>,
    pub db: TestDb,
    /// Clients authenticated as `test-admin` with the admin role.
    pub verification: VerificationServiceClient<Authed>,
    pub registry: RegistryServiceClient<Authed>,
    pub channel: Channel,
    /// The server's in-memory registry, for what the API does not show (how it was loaded).
    pub state: std::sync::Arc<safeguard::snapshot::Registry>,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<anyhow::Result<()>>>,
}

impl TestApp {
    /// Starts a server on a fresh database; `None` if the backend is not available.
    pub async fn spawn(backend: Backend) -> Option<Self> {
        let db = TestDb::new(backend).await?;
        let settings = test_settings(&db);
        Some(Self::spawn_with(db, settings).await)
    }

    /// Starts a server with explicit settings on `db`.
    pub async fn spawn_with(db: TestDb, settings: Settings) -> Self {
        let app = App::build(settings).await.unwrap();
        let addr = app.local_addr();
        let metrics_addr = app.metrics_addr();
        let console_addr = app.console_addr();
        let state = app.registry();
        let (tx, rx) = oneshot::channel::<()>();
        let server = tokio::spawn(app.run_until_stopped(async {
            let _ = rx.await;
        }));
        let channel = Channel::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect_timeout(Duration::from_secs(5))
            .connect()
            .await
            .unwrap();
        let admin = Bearer::new(Some(&token("test-admin", &[Role::Admin])));
        Self {
            addr,
            metrics_addr,
            console_addr,
            db,
            verification: VerificationServiceClient::with_interceptor(channel.clone(), admin.clone()),
            registry: RegistryServiceClient::with_interceptor(channel.clone(), admin),
            channel,
            state,
            shutdown: Some(tx),
            server: Some(server),
        }
    }

    /// Clients that present `token` (or no token).
    pub fn clients_as(
        &self,
        token: Option<&str>,
    ) -> (VerificationServiceClient<Authed>, RegistryServiceClient<Authed>) {
        let bearer = Bearer::new(token);
        (
            VerificationServiceClient::with_interceptor(self.channel.clone(), bearer.clone()),
            RegistryServiceClient::with_interceptor(self.channel.clone(), bearer),
        )
    }

    /// Stops the server (finishing in-flight requests) but keeps the database.
    pub async fn stop_server(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.unwrap().unwrap();
        }
    }

    /// Stops the server and serves the same database and key directory again, with the default
    /// test settings: a restart.
    pub async fn restart(&mut self) -> TestApp {
        self.stop_server().await;
        TestApp::spawn_with(self.db.share(), test_settings(&self.db)).await
    }

    /// Stops the server (finishing in-flight requests) and drops the database.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.unwrap().unwrap();
        }
        self.db.drop_now().await;
    }
}

/// Runs a test body on SQLite and on PostgreSQL: `both!(name, |app| async move { ... })` defines
/// `sqlite::name` and `postgres::name`.
#[macro_export]
macro_rules! both {
    ($name:ident, $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                if let Some(app) = $crate::harness::TestApp::spawn($crate::harness::Backend::Sqlite).await {
                    let app = ($body)(app).await;
                    $crate::harness::TestApp::stop(app).await;
                }
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(app) = $crate::harness::TestApp::spawn($crate::harness::Backend::Postgres).await {
                    let app = ($body)(app).await;
                    $crate::harness::TestApp::stop(app).await;
                }
            }
        }
    };
}

/// Runs `async fn $name(Backend)` as `$name::sqlite` and `$name::postgres`: for tests that build
/// their own settings or restart the server, which `both!` cannot.
#[macro_export]
macro_rules! on_both {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::harness::Backend::Sqlite).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name($crate::harness::Backend::Postgres).await
            }
        }
    };
}

/// The health status the server reports for `service` ("" for the whole server).
pub async fn health(app: &TestApp, service: &str) -> tonic_health::pb::health_check_response::ServingStatus {
    let mut client = tonic_health::pb::health_client::HealthClient::new(app.channel.clone());
    let req = tonic_health::pb::HealthCheckRequest { service: service.to_owned() };
    client.check(req).await.unwrap().into_inner().status()
}

/// Polls `check` every 100 ms until it holds, for up to 30 s; panics naming `what` otherwise.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..300 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting until {what}");
}

// ---- Builders for requests -------------------------------------------------------------------

/// Now plus `days`, on the wire.
pub fn days_from_now(days: i64) -> Option<prost_types::Timestamp> {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    Some(prost_types::Timestamp { seconds: now + days * 86_400, nanos: 0 })
}

/// An active recipient seller in China.
pub fn seller(id: &str) -> pb::Seller {
    pb::Seller {
        seller_id: id.to_owned(),
        legal_name: format!("{id} Trading Co., Ltd."),
        country: "CN".to_owned(),
        status: pb::SellerStatus::Active as i32,
        role: pb::SellerRole::Recipient as i32,
        contact_email: format!("legal@{id}.example"),
        privacy_contact: format!("privacy@{id}.example"),
        ..Default::default()
    }
}

/// The default policy's baseline clauses.
pub fn baseline_clauses() -> Vec<i32> {
    use pb::Clause::*;
    [
        PurposeLimitation,
        DataMinimization,
        SecuritySafeguards,
        RetentionAndDeletion,
        OnwardTransferRestriction,
        BreachNotification,
        GrievanceAndDisputeResolution,
        DataSubjectRights,
        SupervisionAndAudit,
        LiabilityAndCompensation,
        SuspensionAndTermination,
        PipaComplianceUndertaking,
    ]
    .iter()
    .map(|c| *c as i32)
    .collect()
}

/// A contract attestation in force for a year: every baseline clause plus IDENTIFIER_PROTECTION,
/// fulfilment and customs purposes, the categories they permit. `doc` makes the document hash unique.
pub fn attestation(seller_id: &str, doc: u8) -> pb::Attestation {
    use pb::DataCategory::*;
    let mut clauses = baseline_clauses();
    clauses.push(pb::Clause::IdentifierProtection as i32);
    pb::Attestation {
        seller_id: seller_id.to_owned(),
        contract_ref: format!("DPA-{seller_id}-{doc}"),
        document_sha256: format!("{doc:02x}").repeat(32),
        clauses,
        purposes: vec![pb::Purpose::OrderFulfillment as i32, pb::Purpose::CustomsClearance as i32],
        categories: [
            RecipientName,
            PhoneNumber,
            ShippingAddress,
            OrderContents,
            PlatformBuyerId,
            CustomsCode,
            DateOfBirth,
        ]
        .iter()
        .map(|c| *c as i32)
        .collect(),
        signed_time: days_from_now(-10),
        effective_time: days_from_now(-1),
        expire_time: days_from_now(365),
        signatory: "Jane Kim, Head of Legal".to_owned(),
        retention_days: 60,
        ..Default::default()
    }
}

/// A VerifySeller request with SEPARATE_CONSENT.
pub fn verify(seller_id: &str, purpose: pb::Purpose, categories: &[pb::DataCategory]) -> pb::VerifySellerRequest {
    pb::VerifySellerRequest {
        seller_id: seller_id.to_owned(),
        categories: categories.iter().map(|c| *c as i32).collect(),
        purpose: purpose as i32,
        basis: pb::TransferBasis::SeparateConsent as i32,
        basis_evidence_ref: "consent-123".to_owned(),
        min_revision: 0,
    }
}

impl TestApp {
    /// Registers a seller; returns the revision.
    pub async fn create_seller(&mut self, s: pb::Seller) -> i64 {
        self.registry
            .create_seller(pb::CreateSellerRequest { seller: Some(s), request_id: String::new() })
            .await
            .unwrap()
            .into_inner()
            .revision
    }

    /// Submits an attestation; returns it and the revision.
    pub async fn attest(&mut self, a: pb::Attestation) -> (pb::Attestation, i64) {
        let r = self
            .registry
            .submit_attestation(pb::SubmitAttestationRequest { attestation: Some(a), request_id: String::new() })
            .await
            .unwrap()
            .into_inner();
        (r.attestation.unwrap(), r.revision)
    }

    /// Verifies at least at `revision`.
    pub async fn verify_at(&mut self, mut req: pb::VerifySellerRequest, revision: i64) -> pb::VerifySellerResponse {
        req.min_revision = revision;
        self.verification.verify_seller(req).await.unwrap().into_inner()
    }
}

/// The field paths of an INVALID_ARGUMENT status's BadRequest details.
pub fn violated_fields(status: &tonic::Status) -> Vec<String> {
    use tonic_types::StatusExt;
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    status
        .get_details_bad_request()
        .map(|b| b.field_violations.into_iter().map(|v| v.field).collect())
        .unwrap_or_default()
}

/// Reason codes of a decision's seller-level reasons.
pub fn codes(reasons: &[pb::Reason]) -> Vec<pb::ReasonCode> {
    reasons.iter().map(|r| r.code()).collect()
}

impl TestApp {
    /// An AuditService client that presents `token` (or no token).
    pub fn audit_as(&self, token: Option<&str>) -> safeguard::pb::v1::audit_service_client::AuditServiceClient<Authed> {
        safeguard::pb::v1::audit_service_client::AuditServiceClient::with_interceptor(
            self.channel.clone(),
            Bearer::new(token),
        )
    }
}

/// `GET /metrics` from `addr`: the status line, headers and Prometheus text.
pub async fn scrape_metrics(addr: SocketAddr) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    conn.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut body = String::new();
    conn.read_to_string(&mut body).await.unwrap();
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    body
}

/// The value of the sample `series` (name and labels exactly as rendered) in Prometheus text.
pub fn metric_value(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
}

/// The single number a `SELECT COUNT(*) ...` answers, over a connection of its own.
pub async fn count(db: &TestDb, sql: &str) -> i64 {
    use sea_orm::ConnectionTrait;
    let conn = sea_orm::Database::connect(db.url.as_str()).await.unwrap();
    let stmt = sea_orm::Statement::from_string(conn.get_database_backend(), sql);
    let row = conn.query_one_raw(stmt).await.unwrap().unwrap();
    let n: i64 = row.try_get_by_index(0).unwrap();
    conn.close().await.unwrap();
    n
}

/// `safeguard audit verify …` as an auditor runs it: no database, no server. (success, output)
pub fn offline_verify(args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_safeguard"))
        .args(["audit", "verify"])
        .args(args)
        .env("SAFEGUARD__LOG__LEVEL", "error")
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// Writes `text` to `dir/name`; returns the path.
pub fn write_file(dir: &std::path::Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}
