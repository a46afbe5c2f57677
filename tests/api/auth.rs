//! Authentication through the real server: forged, expired and misaddressed tokens are refused alike
//! and counted by reason, tokens of every configured algorithm are accepted, a genuine token without
//! a known role is PERMISSION_DENIED, public keys need an audience, health and reflection are open,
//! and the token's subject is what the registry records. Which role reaches which RPC is the table
//! in `permissions.rs`.

use std::path::PathBuf;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use safeguard::auth::Role;
use safeguard::pb::v1 as pb;
use safeguard::pb::v1::DataCategory as C;
use safeguard::pb::v1::Purpose as P;
use safeguard::pb::v1::verification_service_client::VerificationServiceClient;
use serde_json::{Value, json};
use tonic::Code;

use crate::both;
use crate::harness::*;

const ISSUER: &str = "https://idp.example";
const AUDIENCE: &str = "safeguard";

fn key_file(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/keys").join(name)
}

fn key_bytes(name: &str) -> Vec<u8> {
    std::fs::read(key_file(name)).unwrap()
}

fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

/// Claims the strict server accepts: right issuer and audience, an hour to live, role checkout.
fn good_claims() -> Value {
    json!({ "sub": "checkout-svc", "exp": now() + 3600, "roles": ["checkout"], "iss": ISSUER, "aud": AUDIENCE })
}

/// `good_claims` with `key` replaced (or removed, for `Value::Null`).
fn claims_with(key: &str, value: Value) -> Value {
    let mut c = good_claims();
    let map = c.as_object_mut().unwrap();
    if value.is_null() {
        map.remove(key);
    } else {
        map.insert(key.to_owned(), value);
    }
    c
}

fn sign(alg: Algorithm, key: &EncodingKey, claims: &Value) -> String {
    jsonwebtoken::encode(&Header::new(alg), claims, key).unwrap()
}

fn hs256(secret: &[u8], claims: &Value) -> String {
    sign(Algorithm::HS256, &EncodingKey::from_secret(secret).unwrap(), claims)
}

/// The private fixture key of an asymmetric algorithm.
fn private_key(alg: Algorithm) -> EncodingKey {
    match alg {
        Algorithm::RS256 => EncodingKey::from_rsa_pem(&key_bytes("rs256.key")).unwrap(),
        Algorithm::ES256 => EncodingKey::from_ec_pem(&key_bytes("es256.key")).unwrap(),
        Algorithm::EdDSA => EncodingKey::from_ed_pem(&key_bytes("eddsa.key")).unwrap(),
        other => panic!("no fixture key for {other:?}"),
    }
}

fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap())
}

/// A server that accepts HS256 (the test secret), RS256, ES256 and EdDSA, and requires `iss`/`aud`.
async fn spawn_strict(backend: Backend) -> Option<TestApp> {
    let db = TestDb::new(backend).await?;
    let mut settings = test_settings(&db);
    settings.auth.rs256_public_key_file = Some(key_file("rs256.pub"));
    settings.auth.es256_public_key_file = Some(key_file("es256.pub"));
    settings.auth.eddsa_public_key_file = Some(key_file("eddsa.pub"));
    settings.auth.issuer = Some(ISSUER.to_owned());
    settings.auth.audience = Some(AUDIENCE.to_owned());
    Some(TestApp::spawn_with(db, settings).await)
}

/// What a caller presents in the `authorization` header.
enum Credential {
    Nothing,
    /// Sent as `Bearer <token>`.
    Token(String),
    /// Sent verbatim.
    Header(&'static str),
}

async fn verify_as(app: &TestApp, credential: &Credential) -> Result<pb::VerifySellerResponse, tonic::Status> {
    let request = verify("acme", P::OrderFulfillment, &[C::RecipientName]);
    match credential {
        Credential::Nothing => app.clients_as(None).0.verify_seller(request).await,
        Credential::Token(t) => app.clients_as(Some(t)).0.verify_seller(request).await,
        Credential::Header(raw) => {
            let value: tonic::metadata::MetadataValue<_> = raw.parse().unwrap();
            let mut client =
                VerificationServiceClient::with_interceptor(app.channel.clone(), move |mut r: tonic::Request<()>| {
                    r.metadata_mut().insert("authorization", value.clone());
                    Ok(r)
                });
            client.verify_seller(request).await
        }
    }
    .map(tonic::Response::into_inner)
}

/// Every way of presenting bad credentials the issue lists, and a few more.
fn attacks() -> Vec<(&'static str, Credential)> {
    use Credential::*;
    let secret = TEST_SECRET.as_bytes();
    let t = now();
    let unknown_ec_key = rcgen::KeyPair::generate().unwrap().serialize_pem();
    let valid_rs256 = sign(Algorithm::RS256, &private_key(Algorithm::RS256), &good_claims());
    let admin_payload = b64(&claims_with("roles", json!(["admin"])));
    let parts: Vec<&str> = valid_rs256.split('.').collect();
    let tampered = format!("{}.{admin_payload}.{}", parts[0], parts[2]);
    vec![
        ("no token", Nothing),
        ("Bearer garbage", Token("garbage".into())),
        ("empty bearer", Header("Bearer ")),
        ("Basic scheme", Header("Basic dXNlcjpwYXNzd29yZA==")),
        (
            "HS256 signed with another secret",
            Token(hs256(b"another-secret-that-is-also-32-bytes-long!", &good_claims())),
        ),
        ("HS384 with the right secret (algorithm not configured)", {
            Token(sign(Algorithm::HS384, &EncodingKey::from_secret(secret).unwrap(), &good_claims()))
        }),
        ("expired beyond the leeway", Token(hs256(secret, &claims_with("exp", json!(t - 120))))),
        ("nbf in the future", Token(hs256(secret, &claims_with("nbf", json!(t + 3600))))),
        ("wrong iss", Token(hs256(secret, &claims_with("iss", json!("https://evil.example"))))),
        ("missing iss", Token(hs256(secret, &claims_with("iss", Value::Null)))),
        ("wrong aud", Token(hs256(secret, &claims_with("aud", json!("someone-else"))))),
        ("missing aud", Token(hs256(secret, &claims_with("aud", Value::Null)))),
        ("missing exp", Token(hs256(secret, &claims_with("exp", Value::Null)))),
        ("missing sub", Token(hs256(secret, &claims_with("sub", Value::Null)))),
        ("alg none", Token(format!("{}.{}.", b64(&json!({ "alg": "none", "typ": "JWT" })), b64(&good_claims())))),
        ("HS256 keyed with the RS256 public key", Token(hs256(&key_bytes("rs256.pub"), &good_claims()))),
        ("HS256 keyed with the ES256 public key", Token(hs256(&key_bytes("es256.pub"), &good_claims()))),
        (
            "ES256 signed by an unknown key",
            Token(sign(
                Algorithm::ES256,
                &EncodingKey::from_ec_pem(unknown_ec_key.as_bytes()).unwrap(),
                &good_claims(),
            )),
        ),
        ("RS256 payload swapped after signing", Token(tampered)),
        ("empty sub", Token(hs256(secret, &claims_with("sub", json!(""))))),
        ("sub of 257 characters", Token(hs256(secret, &claims_with("sub", json!("s".repeat(257)))))),
        ("sub with a line break", Token(hs256(secret, &claims_with("sub", json!("alice\nbob"))))),
        ("sub with a right-to-left override", Token(hs256(secret, &claims_with("sub", json!("alice\u{202E}nimda"))))),
        ("sub that is not a string", Token(hs256(secret, &claims_with("sub", json!(42))))),
        ("harness token without iss and aud", Token(token("checkout-svc", &[Role::Checkout]))),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_forged_expired_or_misaddressed_token_is_unauthenticated_with_one_message() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let Some(app) = spawn_strict(backend).await else { continue };
        let mut rows = Vec::new();
        for (name, credential) in attacks() {
            let outcome = verify_as(&app, &credential).await;
            rows.push((name, outcome.map(|_| ()).map_err(|s| (s.code(), s.message().to_owned()))));
        }
        let table: String = rows.iter().map(|(name, r)| format!("  {name:<58} {r:?}\n")).collect();
        for (name, outcome) in &rows {
            assert!(
                matches!(outcome, Err((Code::Unauthenticated, _))),
                "{backend:?}: `{name}` was not refused as UNAUTHENTICATED:\n{table}"
            );
        }
        let messages: std::collections::BTreeSet<_> =
            rows.iter().filter_map(|(_, r)| r.as_ref().err()).map(|(_, m)| m).collect();
        assert_eq!(messages.len(), 1, "{backend:?}: the message tells which check failed:\n{table}");
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn valid_tokens_of_every_configured_algorithm_are_accepted() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let Some(app) = spawn_strict(backend).await else { continue };
        let secret = TEST_SECRET.as_bytes();
        let t = now();
        let cases = [
            ("HS256", hs256(secret, &good_claims())),
            ("RS256", sign(Algorithm::RS256, &private_key(Algorithm::RS256), &good_claims())),
            ("ES256", sign(Algorithm::ES256, &private_key(Algorithm::ES256), &good_claims())),
            ("EdDSA", sign(Algorithm::EdDSA, &private_key(Algorithm::EdDSA), &good_claims())),
            // Within the 30 s clock-skew leeway.
            ("HS256 expired 5 s ago", hs256(secret, &claims_with("exp", json!(t - 5)))),
            ("HS256 nbf 5 s ahead", hs256(secret, &claims_with("nbf", json!(t + 5)))),
            ("HS256 with aud as an array", hs256(secret, &claims_with("aud", json!(["other", "safeguard"])))),
            ("HS256 with an unknown role beside checkout", {
                hs256(secret, &claims_with("roles", json!(["superuser", "checkout"])))
            }),
            ("HS256 with a sub of 256 characters", hs256(secret, &claims_with("sub", json!("s".repeat(256))))),
            ("HS256 with a non-ASCII sub", hs256(secret, &claims_with("sub", json!("법무팀-서비스")))),
        ];
        for (name, token) in cases {
            // Twice: the second call is answered from the verified-token cache.
            for attempt in 0..2 {
                let r = verify_as(&app, &Credential::Token(token.clone())).await;
                let r = r.unwrap_or_else(|s| panic!("{backend:?}: {name} (attempt {attempt}) refused: {s:?}"));
                // A decision, not an error: the seller is unknown, so it is DENY SELLER_UNKNOWN.
                assert_eq!(r.decision(), pb::Decision::Deny, "{name}");
                assert_eq!(codes(&r.reasons), vec![pb::ReasonCode::SellerUnknown], "{name}");
            }
        }
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_key_only_server_refuses_hs256_tokens_keyed_with_its_public_key() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let Some(db) = TestDb::new(backend).await else { continue };
        let mut settings = test_settings(&db);
        settings.auth.hs256_secret = None;
        settings.auth.rs256_public_key_file = Some(key_file("rs256.pub"));
        settings.auth.audience = Some(AUDIENCE.to_owned());
        let app = TestApp::spawn_with(db, settings).await;
        let forged = hs256(&key_bytes("rs256.pub"), &good_claims());
        let err = verify_as(&app, &Credential::Token(forged)).await.unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated, "{backend:?}");
        let genuine = sign(Algorithm::RS256, &private_key(Algorithm::RS256), &good_claims());
        assert!(verify_as(&app, &Credential::Token(genuine)).await.is_ok(), "{backend:?}");
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_genuine_token_without_a_known_role_is_permission_denied_not_unauthenticated() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let Some(app) = spawn_strict(backend).await else { continue };
        let secret = TEST_SECRET.as_bytes();
        for (name, roles) in [
            ("only an unknown role", json!(["superuser"])),
            ("no roles at all", json!([])),
            ("no roles claim", Value::Null),
        ] {
            let token = hs256(secret, &claims_with("roles", roles));
            let err = verify_as(&app, &Credential::Token(token)).await.unwrap_err();
            assert_eq!(err.code(), Code::PermissionDenied, "{backend:?}: {name}: {err:?}");
        }
        app.stop().await;
    }
}

/// Configures one public key file.
type SetKey = fn(&mut safeguard::config::AuthSettings, PathBuf);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_keys_without_an_audience_stop_start_up() {
    let Some(db) = TestDb::new(Backend::Sqlite).await else { return };
    let missing_jwks = PathBuf::from("/nonexistent/jwks.json");
    let cases: [(&str, SetKey, PathBuf); 4] = [
        ("RS256", |a, p| a.rs256_public_key_file = Some(p), key_file("rs256.pub")),
        ("ES256", |a, p| a.es256_public_key_file = Some(p), key_file("es256.pub")),
        ("EdDSA", |a, p| a.eddsa_public_key_file = Some(p), key_file("eddsa.pub")),
        ("JWKS", |a, p| a.jwks_file = Some(p), missing_jwks),
    ];
    for (name, configure, file) in cases {
        for audience in [None, Some("  ")] {
            let mut settings = test_settings(&db);
            configure(&mut settings.auth, file.clone());
            settings.auth.audience = audience.map(str::to_owned);
            let err = match safeguard::startup::App::build(settings).await {
                Ok(_) => panic!("{name} without an audience ({audience:?}) started"),
                Err(e) => format!("{e:#}"),
            };
            assert!(err.contains("auth.audience"), "{name}: {err}");
        }
    }
    // With an audience it starts; HS256 alone needs none (the harness's own settings).
    let mut settings = test_settings(&db);
    settings.auth.rs256_public_key_file = Some(key_file("rs256.pub"));
    settings.auth.audience = Some(AUDIENCE.to_owned());
    let app = TestApp::spawn_with(db.share(), settings).await;
    let genuine = sign(Algorithm::RS256, &private_key(Algorithm::RS256), &good_claims());
    assert!(verify_as(&app, &Credential::Token(genuine)).await.is_ok());
    // A token the same identity provider minted for another service is refused.
    let elsewhere = sign(Algorithm::RS256, &private_key(Algorithm::RS256), &claims_with("aud", json!("billing")));
    assert_eq!(verify_as(&app, &Credential::Token(elsewhere)).await.unwrap_err().code(), Code::Unauthenticated);
    app.stop().await;
    let hs256_only = test_settings(&db);
    assert!(hs256_only.auth.audience.is_none());
    let app = TestApp::spawn_with(db, hs256_only).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_tokens_are_counted_by_reason_on_the_metrics_endpoint() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let Some(db) = TestDb::new(backend).await else { continue };
        let mut settings = test_settings(&db);
        settings.metrics.enabled = true;
        settings.auth.issuer = Some(ISSUER.to_owned());
        settings.auth.audience = Some(AUDIENCE.to_owned());
        let app = TestApp::spawn_with(db, settings).await;
        let metrics = app.metrics_addr.unwrap();
        let series = |reason: &str| format!("safeguard_auth_refused_total{{reason=\"{reason}\"}}");
        let secret = TEST_SECRET.as_bytes();
        let t = now();
        let sent: Vec<(&str, Credential, usize)> = vec![
            ("missing", Credential::Nothing, 3),
            ("expired", Credential::Token(hs256(secret, &claims_with("exp", json!(t - 600)))), 2),
            ("subject", Credential::Token(hs256(secret, &claims_with("sub", json!("s".repeat(300))))), 2),
            ("audience", Credential::Token(hs256(secret, &claims_with("aud", json!("billing")))), 1),
            ("signature", Credential::Token(hs256(b"another-secret-that-is-also-32-bytes-long!", &good_claims())), 1),
            ("role", Credential::Token(hs256(secret, &claims_with("roles", json!(["superuser"])))), 2),
        ];
        let before = scrape_metrics(metrics).await;
        for (_, credential, times) in &sent {
            for _ in 0..*times {
                assert!(verify_as(&app, credential).await.is_err());
            }
        }
        let after = scrape_metrics(metrics).await;
        for (reason, _, times) in &sent {
            // The recorder is process-wide: other servers in this process may add to the counts.
            let was = metric_value(&before, &series(reason)).unwrap_or(0.0);
            let now = metric_value(&after, &series(reason));
            assert!(
                now.is_some_and(|n| n - was >= *times as f64),
                "{backend:?}: {reason}: {was} before, {now:?} after {times} refusals in\n{after}"
            );
        }
        app.stop().await;
    }
}

both!(health_and_reflection_answer_without_a_token, |app: TestApp| async move {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    let mut health = HealthClient::new(app.channel.clone());
    for service in ["", "safeguard.v1.VerificationService", "safeguard.v1.RegistryService"] {
        let r = health.check(HealthCheckRequest { service: service.into() }).await.unwrap().into_inner();
        assert_eq!(r.status(), ServingStatus::Serving, "{service:?}");
    }

    let mut reflection = ServerReflectionClient::new(app.channel.clone());
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = reflection.server_reflection_info(tokio_stream::iter(vec![request])).await.unwrap().into_inner();
    let Some(MessageResponse::ListServicesResponse(list)) = stream.message().await.unwrap().unwrap().message_response
    else {
        panic!("reflection did not list services");
    };
    let names: Vec<_> = list.service.into_iter().map(|s| s.name).collect();
    assert!(names.iter().any(|n| n == "safeguard.v1.VerificationService"), "{names:?}");
    assert!(names.iter().any(|n| n == "safeguard.v1.RegistryService"), "{names:?}");

    // The same channel without a token is refused everywhere else.
    let err = verify_as(&app, &Credential::Nothing).await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    app
});

both!(the_token_subject_is_recorded_as_the_actor_of_writes, |app: TestApp| async move {
    let alice = token("alice", &[Role::Legal]);
    let (_, mut registry) = app.clients_as(Some(&alice));
    registry
        .create_seller(pb::CreateSellerRequest { seller: Some(seller("acme")), request_id: String::new() })
        .await
        .unwrap();
    let submitted = registry
        .submit_attestation(pb::SubmitAttestationRequest {
            attestation: Some(attestation("acme", 1)),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(submitted.attestation.unwrap().submitted_by, "alice");
    let got = registry.get_seller(pb::GetSellerRequest { seller_id: "acme".into() }).await.unwrap().into_inner();
    assert_eq!(got.attestations[0].submitted_by, "alice");
    let store = app.db.store().await;
    let actors: Vec<_> = store.events_after(0, 10).await.unwrap().into_iter().map(|e| e.actor).collect();
    assert_eq!(actors, vec!["alice", "alice"]);
    app
});
