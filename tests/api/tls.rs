//! TLS and mutual TLS on the real server: with `server.tls.client_ca_file` set, only clients holding
//! a certificate from that CA get to speak gRPC at all; a plaintext client gets nothing.

use std::path::PathBuf;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};
use safeguard::auth::Role;
use safeguard::pb::v1::DataCategory as C;
use safeguard::pb::v1::Purpose as P;
use safeguard::pb::v1::verification_service_client::VerificationServiceClient;
use safeguard::startup::App;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

use crate::harness::*;

/// A certificate and its private key, in PEM.
struct Pem {
    cert: String,
    key: String,
}

/// A CA able to sign leaf certificates.
struct Ca {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

fn new_ca(name: &str) -> Ca {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    Ca { pem: cert.pem(), issuer: Issuer::new(params, key) }
}

fn leaf(ca: &Ca, common_name: &str, names: &[&str], usage: ExtendedKeyUsagePurpose) -> Pem {
    let mut params = CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>()).unwrap();
    params.distinguished_name.push(DnType::CommonName, common_name);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![usage];
    params.use_authority_key_identifier_extension = true;
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &ca.issuer).unwrap();
    Pem { cert: cert.pem(), key: key.serialize_pem() }
}

/// The PKI of one test: a CA that signs the server's and the client's certificates, and a stranger
/// CA whose client certificate the server must not accept.
struct Pki {
    ca: Ca,
    client: Pem,
    stranger_client: Pem,
    dir: tempfile::TempDir,
}

impl Pki {
    fn new() -> Self {
        let ca = new_ca("safeguard test CA");
        let server = leaf(&ca, "safeguard server", &["localhost", "127.0.0.1"], ExtendedKeyUsagePurpose::ServerAuth);
        let client = leaf(&ca, "checkout client", &[], ExtendedKeyUsagePurpose::ClientAuth);
        let stranger = new_ca("some other CA");
        let stranger_client = leaf(&stranger, "checkout client", &[], ExtendedKeyUsagePurpose::ClientAuth);
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
        write("ca.pem", &ca.pem);
        write("server.pem", &server.cert);
        write("server.key", &server.key);
        Self { ca, client, stranger_client, dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// A TLS server built directly from [`App`]: the harness connects in plaintext at start-up.
struct TlsServer {
    addr: std::net::SocketAddr,
    db: TestDb,
    shutdown: oneshot::Sender<()>,
    server: JoinHandle<anyhow::Result<()>>,
}

impl TlsServer {
    async fn spawn(db: TestDb, pki: &Pki) -> Self {
        let mut settings = test_settings(&db);
        settings.server.tls.cert_file = Some(pki.path("server.pem"));
        settings.server.tls.key_file = Some(pki.path("server.key"));
        settings.server.tls.client_ca_file = Some(pki.path("ca.pem"));
        let app = App::build(settings).await.unwrap();
        let addr = app.local_addr();
        let (shutdown, rx) = oneshot::channel::<()>();
        let server = tokio::spawn(app.run_until_stopped(async {
            let _ = rx.await;
        }));
        Self { addr, db, shutdown, server }
    }

    async fn stop(mut self) {
        let _ = self.shutdown.send(());
        tokio::time::timeout(Duration::from_secs(10), self.server).await.unwrap().unwrap().unwrap();
        self.db.drop_now().await;
    }
}

/// Connects with `tls` (or in plaintext for `None`) and asks one VerifySeller as checkout; any
/// failure, at connect or at the call, comes back as its description.
async fn verify_over(url: String, tls: Option<ClientTlsConfig>) -> Result<(), String> {
    let mut endpoint = Channel::from_shared(url)
        .map_err(|e| e.to_string())?
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(5));
    if let Some(tls) = tls {
        endpoint = endpoint.tls_config(tls).map_err(|e| format!("tls config: {e}"))?;
    }
    let channel = endpoint.connect().await.map_err(|e| format!("connect: {e:?}"))?;
    let bearer = Bearer::new(Some(&token("checkout", &[Role::Checkout])));
    let mut client = VerificationServiceClient::with_interceptor(channel, bearer);
    let r = client
        .verify_seller(verify("acme", P::OrderFulfillment, &[C::RecipientName]))
        .await
        .map_err(|s| format!("call: {:?} {}", s.code(), s.message()))?;
    // A decision (the seller is unknown), which only a served request can produce.
    match r.into_inner().decision() {
        safeguard::pb::v1::Decision::Deny => Ok(()),
        other => Err(format!("unexpected decision {other:?}")),
    }
}

fn client_tls(trust: &str, identity: Option<&Pem>) -> ClientTlsConfig {
    let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(trust)).domain_name("localhost");
    if let Some(id) = identity {
        tls = tls.identity(Identity::from_pem(&id.cert, &id.key));
    }
    tls
}

/// Runs `body` against a fresh mTLS server on each available backend.
async fn on_each_backend<F, Fut>(body: F)
where
    F: Fn(String, std::sync::Arc<Pki>) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let Some(db) = TestDb::new(backend).await else { continue };
        let pki = std::sync::Arc::new(Pki::new());
        let server = TlsServer::spawn(db, &pki).await;
        // The server reads its PEM files when it starts serving: keep them until it stops.
        body(format!("https://127.0.0.1:{}", server.addr.port()), pki.clone()).await;
        server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_with_a_certificate_from_the_configured_ca_is_served_over_tls() {
    on_each_backend(|url, pki| async move {
        verify_over(url, Some(client_tls(&pki.ca.pem, Some(&pki.client)))).await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_client_without_a_certificate_is_refused() {
    on_each_backend(|url, pki| async move {
        let r = verify_over(url, Some(client_tls(&pki.ca.pem, None))).await;
        assert!(r.is_err(), "a client without a certificate was served");
        eprintln!("refused as expected: {r:?}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificate_from_another_ca_is_refused() {
    on_each_backend(|url, pki| async move {
        let r = verify_over(url, Some(client_tls(&pki.ca.pem, Some(&pki.stranger_client)))).await;
        assert!(r.is_err(), "a client certificate from a foreign CA was accepted");
        eprintln!("refused as expected: {r:?}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plaintext_client_is_refused_by_a_tls_server() {
    on_each_backend(|url, _pki| async move {
        let plain = url.replacen("https://", "http://", 1);
        let r = verify_over(plain, None).await;
        assert!(r.is_err(), "a plaintext client was served");
        eprintln!("refused as expected: {r:?}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_that_does_not_trust_the_server_certificate_does_not_connect() {
    on_each_backend(|url, pki| async move {
        let other = new_ca("untrusted by the server's chain");
        let r = verify_over(url, Some(client_tls(&other.pem, Some(&pki.client)))).await;
        assert!(r.is_err(), "the client accepted a server certificate it has no root for");
    })
    .await;
}
