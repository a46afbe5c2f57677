//! Authentication and authorization through the real server: forged, expired and misaddressed tokens
//! are refused alike, tokens of every configured algorithm are accepted, health and reflection are
//! open, each role reaches exactly its RPCs, and the token's subject is what the registry records.

use std::path::PathBuf;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use safeguard::auth::Role;
use safeguard::pb::v1 as pb;
use safeguard::pb::v1::DataCategory as C;
use safeguard::pb::v1::Purpose as P;
use safeguard::pb::v1::registry_service_client::RegistryServiceClient;
use safeguard::pb::v1::verification_service_client::VerificationServiceClient;
use safeguard::store::{DbOptions, Store};
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
        ("only an unknown role", Token(hs256(secret, &claims_with("roles", json!(["superuser"]))))),
        ("no roles at all", Token(hs256(secret, &claims_with("roles", json!([]))))),
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
        let app = TestApp::spawn_with(db, settings).await;
        let forged = hs256(&key_bytes("rs256.pub"), &good_claims());
        let err = verify_as(&app, &Credential::Token(forged)).await.unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated, "{backend:?}");
        let genuine = sign(Algorithm::RS256, &private_key(Algorithm::RS256), &good_claims());
        assert!(verify_as(&app, &Credential::Token(genuine)).await.is_ok(), "{backend:?}");
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

// ---- The role table --------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rpc {
    VerifySeller,
    BatchVerifySellers,
    CreateSeller,
    UpdateSeller,
    GetSeller,
    ListSellers,
    SubmitAttestation,
    RevokeAttestation,
    ImportSellers,
}

const RPCS: [Rpc; 9] = [
    Rpc::VerifySeller,
    Rpc::BatchVerifySellers,
    Rpc::CreateSeller,
    Rpc::UpdateSeller,
    Rpc::GetSeller,
    Rpc::ListSellers,
    Rpc::SubmitAttestation,
    Rpc::RevokeAttestation,
    Rpc::ImportSellers,
];

/// What the auth rules make of a call; the code an allowed call then gets is beside the point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Allowed,
    Denied,
    Unauthenticated,
}

/// Calls `rpc` with a minimal (mostly empty) request: an allowed caller gets past authorization and
/// then meets validation, NOT_FOUND or OK; nothing valid enough to write is ever sent.
async fn call(
    rpc: Rpc,
    v: &mut VerificationServiceClient<Authed>,
    r: &mut RegistryServiceClient<Authed>,
) -> Result<(), tonic::Status> {
    match rpc {
        Rpc::VerifySeller => v.verify_seller(pb::VerifySellerRequest::default()).await.map(drop),
        Rpc::BatchVerifySellers => v.batch_verify_sellers(pb::BatchVerifySellersRequest::default()).await.map(drop),
        Rpc::CreateSeller => r.create_seller(pb::CreateSellerRequest::default()).await.map(drop),
        Rpc::UpdateSeller => r.update_seller(pb::UpdateSellerRequest::default()).await.map(drop),
        Rpc::GetSeller => r.get_seller(pb::GetSellerRequest::default()).await.map(drop),
        Rpc::ListSellers => r.list_sellers(pb::ListSellersRequest::default()).await.map(drop),
        Rpc::SubmitAttestation => r.submit_attestation(pb::SubmitAttestationRequest::default()).await.map(drop),
        Rpc::RevokeAttestation => r.revoke_attestation(pb::RevokeAttestationRequest::default()).await.map(drop),
        Rpc::ImportSellers => {
            r.import_sellers(tokio_stream::iter(Vec::<pb::ImportSellersRequest>::new())).await.map(drop)
        }
    }
}

/// The rules of DESIGN.md / the issue for one role.
fn may_call(role: Role, rpc: Rpc) -> bool {
    use Rpc::*;
    match role {
        Role::Checkout => matches!(rpc, VerifySeller | BatchVerifySellers),
        Role::Legal => !matches!(rpc, VerifySeller | BatchVerifySellers),
        Role::Auditor => matches!(rpc, GetSeller | ListSellers),
        Role::Admin => true,
    }
}

/// A row of the role table.
struct Caller {
    name: &'static str,
    token: Option<String>,
    /// The roles the expectation is computed from; `None`: not authenticated at all.
    roles: Option<Vec<Role>>,
}

both!(each_role_reaches_exactly_the_rpcs_it_is_granted, |app: TestApp| async move {
    let unknown_role =
        hs256(TEST_SECRET.as_bytes(), &json!({ "sub": "mallory", "exp": now() + 3600, "roles": ["superuser"] }));
    let caller = |name, roles: &[Role]| Caller { name, token: Some(token(name, roles)), roles: Some(roles.to_vec()) };
    let callers = vec![
        caller("checkout", &[Role::Checkout]),
        caller("legal", &[Role::Legal]),
        caller("auditor", &[Role::Auditor]),
        caller("admin", &[Role::Admin]),
        caller("checkout+auditor", &[Role::Checkout, Role::Auditor]),
        Caller { name: "unknown role only", token: Some(unknown_role), roles: None },
        Caller { name: "no token", token: None, roles: None },
    ];
    let mut table = format!("{:<18}", "caller");
    for rpc in RPCS {
        table.push_str(&format!(" {:<20}", format!("{rpc:?}")));
    }
    table.push('\n');
    let mut wrong = 0;
    for Caller { name, token, roles } in &callers {
        let (mut v, mut r) = app.clients_as(token.as_deref());
        table.push_str(&format!("{name:<18}"));
        for rpc in RPCS {
            let result = call(rpc, &mut v, &mut r).await;
            let got = match &result {
                Err(s) if s.code() == Code::PermissionDenied => Outcome::Denied,
                Err(s) if s.code() == Code::Unauthenticated => Outcome::Unauthenticated,
                _ => Outcome::Allowed,
            };
            let expected = match roles {
                None => Outcome::Unauthenticated,
                Some(roles) if roles.iter().any(|role| may_call(*role, rpc)) => Outcome::Allowed,
                Some(_) => Outcome::Denied,
            };
            let code = result.err().map_or(Code::Ok, |s| s.code());
            let cell = if got == expected {
                format!("{got:?}({code:?})")
            } else {
                wrong += 1;
                format!("!{got:?}≠{expected:?}")
            };
            table.push_str(&format!(" {cell:<20}"));
        }
        table.push('\n');
    }
    assert_eq!(wrong, 0, "{wrong} cells differ from the role rules (marked !got≠expected):\n{table}");
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
    let store = Store::connect(&DbOptions {
        url: app.db.url.clone(),
        max_connections: 2,
        connect_timeout: std::time::Duration::from_secs(5),
    })
    .await
    .unwrap();
    let actors: Vec<_> = store.events_after(0, 10).await.unwrap().into_iter().map(|e| e.actor).collect();
    assert_eq!(actors, vec!["alice", "alice"]);
    app
});
