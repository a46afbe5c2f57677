//! Load generator: VerifySeller throughput through the real server and real gRPC clients on
//! loopback, comparing configurations in one run so that the machine's noise cancels out in the
//! ratios. Rounds are interleaved (A B C D, A B C D, ...) and each configuration's median is reported
//! as a ratio against the first (the baseline).
//!
//! Configurations: no authentication (the baseline), HS256, ES256, RS256 and EdDSA bearer tokens
//! (issue: auth cost on checkout), and decision records `all` against `off`.
//!
//! `cargo bench --bench load -- [--seconds N] [--rounds N] [--clients N]`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use safeguard::auth::Role;
use safeguard::auth::keys::mint;
use safeguard::config::{Secret, Settings};
use safeguard::domain::record::RecordMode;
use safeguard::pb::v1 as pb;
use safeguard::pb::v1::registry_service_client::RegistryServiceClient;
use safeguard::pb::v1::verification_service_client::VerificationServiceClient;
use safeguard::startup::App;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;

const SECRET: &str = "load-generator-secret-of-at-least-32-bytes";
const SELLERS: usize = 2_000;
const KEYS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/keys");
/// The audience the load generator's tokens are minted for and the server requires.
const AUDIENCE: &str = "safeguard";

struct Config {
    name: &'static str,
    alg: Option<Algorithm>,
    record: RecordMode,
}

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn token(alg: Algorithm) -> String {
    let key = match alg {
        Algorithm::HS256 => EncodingKey::from_secret(SECRET.as_bytes()).unwrap(),
        Algorithm::RS256 => EncodingKey::from_rsa_pem(&std::fs::read(format!("{KEYS}/rs256.key")).unwrap()).unwrap(),
        Algorithm::ES256 => EncodingKey::from_ec_pem(&std::fs::read(format!("{KEYS}/es256.key")).unwrap()).unwrap(),
        _ => EncodingKey::from_ed_pem(&std::fs::read(format!("{KEYS}/eddsa.key")).unwrap()).unwrap(),
    };
    mint(&Header::new(alg), &key, "load-generator", &[Role::Admin], 3600, None, Some(AUDIENCE)).unwrap()
}

async fn start(
    dir: &std::path::Path,
    auth: bool,
    record: RecordMode,
) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let mut s = Settings::default();
    s.server.listen_addr = SocketAddr::from(([127, 0, 0, 1], 0));
    s.database.url = format!("sqlite://{}?mode=rwc", dir.join("load.db").display());
    s.auth.hs256_secret = Some(Secret::new(SECRET));
    s.auth.rs256_public_key_file = Some(format!("{KEYS}/rs256.pub").into());
    s.auth.es256_public_key_file = Some(format!("{KEYS}/es256.pub").into());
    s.auth.eddsa_public_key_file = Some(format!("{KEYS}/eddsa.pub").into());
    // Public keys make an audience mandatory.
    s.auth.audience = Some(AUDIENCE.to_owned());
    s.auth.insecure_disabled = !auth;
    s.decisions.mode = record;
    s.server.concurrency_limit_per_connection = 1024;
    s.metrics.listen_addr = SocketAddr::from(([127, 0, 0, 1], 0));
    s.console.enabled = false;
    let app = App::build(s).await.unwrap();
    let addr = app.local_addr();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run_until_stopped(async {
        let _ = rx.await;
    }));
    (addr, tx)
}

fn authed<T>(msg: T, bearer: &Option<MetadataValue<tonic::metadata::Ascii>>) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    if let Some(b) = bearer {
        r.metadata_mut().insert("authorization", b.clone());
    }
    r
}

async fn seed(addr: SocketAddr) {
    let channel = Channel::from_shared(format!("http://{addr}")).unwrap().connect().await.unwrap();
    let bearer = Some(format!("Bearer {}", token(Algorithm::HS256)).parse().unwrap());
    let mut registry = RegistryServiceClient::new(channel);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let ts = |days: i64| Some(prost_types::Timestamp { seconds: now + days * 86_400, nanos: 0 });
    let mut items = Vec::new();
    for i in 0..SELLERS {
        use pb::import_sellers_request::Item;
        let id = format!("seller-{i}");
        items.push(pb::ImportSellersRequest {
            item: Some(Item::Seller(pb::Seller {
                seller_id: id.clone(),
                legal_name: format!("Seller {i} Ltd."),
                country: "CN".into(),
                role: pb::SellerRole::Recipient as i32,
                contact_email: format!("legal@s{i}.example"),
                privacy_contact: format!("privacy@s{i}.example"),
                ..Default::default()
            })),
        });
        items.push(pb::ImportSellersRequest {
            item: Some(Item::Attestation(pb::Attestation {
                seller_id: id,
                contract_ref: format!("DPA-{i}"),
                document_sha256: format!("{i:064x}"),
                clauses: (1..=14).collect(),
                purposes: vec![1, 2],
                categories: vec![1, 2, 3, 5, 6],
                signed_time: ts(-2),
                effective_time: ts(-1),
                expire_time: ts(365),
                signatory: "Load Generator".into(),
                ..Default::default()
            })),
        });
    }
    registry.import_sellers(authed(tokio_stream::iter(items), &bearer)).await.unwrap();
}

/// Requests per second with `clients` concurrent callers for `seconds`.
async fn measure(addr: SocketAddr, bearer: Option<String>, clients: u64, seconds: u64) -> f64 {
    let channel = Channel::from_shared(format!("http://{addr}")).unwrap().connect().await.unwrap();
    let bearer: Option<MetadataValue<_>> = bearer.map(|t| format!("Bearer {t}").parse().unwrap());
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for c in 0..clients {
        let mut client = VerificationServiceClient::new(channel.clone());
        let (bearer, done) = (bearer.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            let mut i = c as usize;
            while Instant::now() < deadline {
                i = (i * 7919 + 13) % SELLERS;
                let req = pb::VerifySellerRequest {
                    seller_id: format!("seller-{i}"),
                    categories: vec![1, 2, 3],
                    purpose: 1,
                    basis: 1,
                    ..Default::default()
                };
                let r = client.verify_seller(authed(req, &bearer)).await.unwrap().into_inner();
                assert_eq!(r.decision(), pb::Decision::Allow);
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / seconds as f64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[tokio::main]
async fn main() {
    let seconds = arg("--seconds", 3);
    let rounds = arg("--rounds", 3);
    let clients = arg("--clients", 32);
    use RecordMode::{All, Off};
    let configs = [
        Config { name: "no auth, records off", alg: None, record: Off },
        Config { name: "HS256, records off", alg: Some(Algorithm::HS256), record: Off },
        Config { name: "ES256, records off", alg: Some(Algorithm::ES256), record: Off },
        Config { name: "RS256, records off", alg: Some(Algorithm::RS256), record: Off },
        Config { name: "EdDSA, records off", alg: Some(Algorithm::EdDSA), record: Off },
        Config { name: "no auth, records all", alg: None, record: All },
    ];
    let dir = tempfile::tempdir().unwrap();
    let (open_addr, _stop_open) = start(dir.path(), false, Off).await;
    seed(open_addr).await;
    // Servers over the same database file, started after the seed so they load it whole.
    let (auth_addr, _stop_auth) = start(dir.path(), true, Off).await;
    let (recording_addr, _stop_recording) = start(dir.path(), false, All).await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    println!(
        "VerifySeller through gRPC on loopback: {SELLERS} sellers, {clients} concurrent callers, {rounds} rounds x {seconds}s"
    );
    let mut results: Vec<Vec<f64>> = vec![Vec::new(); configs.len()];
    for round in 0..rounds {
        for (i, c) in configs.iter().enumerate() {
            let (addr, bearer) = match (c.alg, c.record) {
                (None, Off) => (open_addr, None),
                (None, _) => (recording_addr, None),
                (Some(alg), _) => (auth_addr, Some(token(alg))),
            };
            let rps = measure(addr, bearer, clients, seconds).await;
            println!("  round {round} {:<20} {rps:>10.0} req/s", c.name);
            results[i].push(rps);
        }
    }
    let base = median(results[0].clone());
    println!("\n{:<20} {:>12} {:>8}", "configuration", "median rps", "ratio");
    for (c, r) in configs.iter().zip(results) {
        let m = median(r);
        println!("{:<20} {:>12.0} {:>8.3}", c.name, m, m / base);
    }
}
