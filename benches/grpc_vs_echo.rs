//! The pieces of the echo-baseline benchmark that must be Rust; `benches/grpc_vs_echo.py` runs them.
//! Load comes from h2load (an external process); the baseline is the cheapest server doing the same
//! network work: a tonic server, the same tonic version, whose VerifySeller RPC decodes its request
//! and answers it back.
//!
//! ```text
//! grpc_vs_echo echo --listen ADDR                  serve the echo baseline
//! grpc_vs_echo token --key PEM --audience AUD      print an ES256 checkout token
//! grpc_vs_echo bodies --addr URL --token T --out DIR
//!                                                  find an ALLOW and a CLAUSE_MISSING seller in a running
//!                                                  safeguard, write their framed requests (allow.bin,
//!                                                  deny.bin) and 4,096 requests for distinct sellers (mix/)
//! grpc_vs_echo cycle --addr URL --token T --dir DIR --connections N --streams N --seconds S
//!                                                  the many-seller load: cycles the bodies in DIR/mix
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use prost::Message;
use safeguard::auth::Role;
use safeguard::pb::v1 as pb;
use safeguard::pb::v1::verification_service_client::VerificationServiceClient;
use tonic::codegen::{BoxFuture, Service, http};
use tonic::metadata::MetadataValue;
use tonic::server::{Grpc, NamedService, UnaryService};
use tonic::transport::{Channel, Server};

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned()
}

fn need(name: &str) -> String {
    arg(name).unwrap_or_else(|| panic!("{name} is required"))
}

fn number(name: &str, default: u64) -> u64 {
    arg(name).and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The echo service: the same path as VerifySeller, the request decoded and sent back.
#[derive(Clone)]
struct Echo;

impl NamedService for Echo {
    const NAME: &'static str = "safeguard.v1.VerificationService";
}

struct EchoMethod;

impl UnaryService<pb::VerifySellerRequest> for EchoMethod {
    type Response = pb::VerifySellerRequest;
    type Future = BoxFuture<tonic::Response<Self::Response>, tonic::Status>;

    fn call(&mut self, request: tonic::Request<pb::VerifySellerRequest>) -> Self::Future {
        Box::pin(async move { Ok(tonic::Response::new(request.into_inner())) })
    }
}

impl<B> Service<http::Request<B>> for Echo
where
    B: tonic::codegen::Body + Send + 'static,
    B::Error: Into<tonic::codegen::StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        Box::pin(async move {
            let codec = tonic_prost::ProstCodec::<pb::VerifySellerRequest, pb::VerifySellerRequest>::default();
            Ok(Grpc::new(codec).unary(EchoMethod, req).await)
        })
    }
}

/// A request in gRPC's length-prefixed framing, as h2load sends it.
fn framed(req: &pb::VerifySellerRequest) -> Vec<u8> {
    let body = req.encode_to_vec();
    let mut out = Vec::with_capacity(body.len() + 5);
    out.push(0);
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&body);
    out
}

fn request(seller_id: &str, categories: &[pb::DataCategory]) -> pb::VerifySellerRequest {
    pb::VerifySellerRequest {
        seller_id: seller_id.to_owned(),
        categories: categories.iter().map(|c| *c as i32).collect(),
        purpose: pb::Purpose::OrderFulfillment as i32,
        basis: pb::TransferBasis::SeparateConsent as i32,
        basis_evidence_ref: "consent-0001".to_owned(),
        min_revision: 0,
    }
}

/// Adds the bearer token to every call.
#[derive(Clone)]
struct Bearer(MetadataValue<tonic::metadata::Ascii>);

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut r: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        r.metadata_mut().insert("authorization", self.0.clone());
        Ok(r)
    }
}

type Client = VerificationServiceClient<tonic::service::interceptor::InterceptedService<Channel, Bearer>>;

async fn client(addr: &str, token: &str) -> Client {
    let channel = Channel::from_shared(addr.to_owned()).unwrap().connect().await.unwrap();
    VerificationServiceClient::with_interceptor(channel, Bearer(format!("Bearer {token}").parse().unwrap()))
}

async fn bodies() {
    use pb::DataCategory::*;
    let (addr, token, out) = (need("--addr"), need("--token"), PathBuf::from(need("--out")));
    let mut client = client(&addr, &token).await;
    let cats = [RecipientName, PhoneNumber, ShippingAddress];
    let (mut allow, mut deny, mut mix) = (None, None, Vec::new());
    for i in 1..=20_000u32 {
        let id = format!("seller-{i:07}");
        let req = request(&id, &cats);
        let r = client.verify_seller(req.clone()).await.unwrap().into_inner();
        let clause_missing =
            r.denied_categories.iter().all(|d| d.reasons.iter().any(|x| x.code() == pb::ReasonCode::ClauseMissing));
        match r.decision() {
            pb::Decision::Allow if allow.is_none() => allow = Some(req.clone()),
            pb::Decision::Deny if deny.is_none() && clause_missing && r.reasons.is_empty() => deny = Some(req.clone()),
            _ => {}
        }
        if mix.len() < 4096 {
            mix.push(req);
        }
        if allow.is_some() && deny.is_some() && mix.len() >= 4096 {
            break;
        }
    }
    std::fs::create_dir_all(out.join("mix")).unwrap();
    std::fs::write(out.join("allow.bin"), framed(&allow.expect("no ALLOW seller found"))).unwrap();
    std::fs::write(out.join("deny.bin"), framed(&deny.expect("no CLAUSE_MISSING seller found"))).unwrap();
    for (i, req) in mix.iter().enumerate() {
        std::fs::write(out.join("mix").join(format!("{i:04}.pb")), req.encode_to_vec()).unwrap();
    }
    eprintln!("bodies written to {}", out.display());
}

/// Sends pre-encoded request bytes and takes the answer as bytes: the load generator does no
/// protobuf work of its own, and any server answering `grpc-status: 0` counts as a success.
#[derive(Clone, Default)]
struct RawCodec;

struct RawBytes;

impl tonic::codec::Encoder for RawBytes {
    type Item = bytes::Bytes;
    type Error = tonic::Status;

    fn encode(&mut self, item: bytes::Bytes, dst: &mut tonic::codec::EncodeBuf<'_>) -> Result<(), tonic::Status> {
        use bytes::BufMut;
        dst.put(item);
        Ok(())
    }
}

impl tonic::codec::Decoder for RawBytes {
    type Item = bytes::Bytes;
    type Error = tonic::Status;

    fn decode(&mut self, src: &mut tonic::codec::DecodeBuf<'_>) -> Result<Option<bytes::Bytes>, tonic::Status> {
        use bytes::Buf;
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

impl tonic::codec::Codec for RawCodec {
    type Encode = bytes::Bytes;
    type Decode = bytes::Bytes;
    type Encoder = RawBytes;
    type Decoder = RawBytes;

    fn encoder(&mut self) -> RawBytes {
        RawBytes
    }

    fn decoder(&mut self) -> RawBytes {
        RawBytes
    }
}

/// The many-seller load: `connections` HTTP/2 connections, `streams` requests in flight on each,
/// cycling through the requests in `dir/mix`. Prints `req/s p50_us p99_us errors`.
async fn cycle() {
    let (addr, token, dir) = (need("--addr"), need("--token"), PathBuf::from(need("--dir")));
    let (connections, streams, seconds) =
        (number("--connections", 16), number("--streams", 32), number("--seconds", 10));
    let mut reqs = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(dir.join("mix")).unwrap().map(|e| e.unwrap().path()).collect();
    entries.sort();
    for p in entries {
        reqs.push(bytes::Bytes::from(std::fs::read(p).unwrap()));
    }
    let reqs = Arc::new(reqs);
    let next = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    let bearer: MetadataValue<_> = format!("Bearer {token}").parse().unwrap();
    let path = http::uri::PathAndQuery::from_static("/safeguard.v1.VerificationService/VerifySeller");
    for _ in 0..connections {
        let channel = Channel::from_shared(addr.clone()).unwrap().connect().await.unwrap();
        for _ in 0..streams {
            let (reqs, next, errors) = (reqs.clone(), next.clone(), errors.clone());
            let (mut grpc, bearer, path) = (tonic::client::Grpc::new(channel.clone()), bearer.clone(), path.clone());
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::new();
                while Instant::now() < deadline {
                    let i = next.fetch_add(1, Ordering::Relaxed) as usize % reqs.len();
                    let t = Instant::now();
                    let mut req = tonic::Request::new(reqs[i].clone());
                    req.metadata_mut().insert("authorization", bearer.clone());
                    let ok = match grpc.ready().await {
                        Ok(()) => grpc.unary(req, path.clone(), RawCodec).await.is_ok(),
                        Err(_) => false,
                    };
                    if !ok {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                    lat.push(t.elapsed().as_micros() as u64);
                }
                lat
            }));
        }
    }
    let started = Instant::now();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort_unstable();
    let pct =
        |p: f64| all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1))).copied().unwrap_or(0);
    println!("{:.0} {} {} {}", all.len() as f64 / elapsed, pct(0.5), pct(0.99), errors.load(Ordering::Relaxed));
}

fn token() {
    let key = EncodingKey::from_ec_pem(&std::fs::read(need("--key")).unwrap()).unwrap();
    let aud = need("--audience");
    let t = safeguard::auth::keys::mint(
        &Header::new(Algorithm::ES256),
        &key,
        "bench-checkout",
        &[Role::Checkout],
        86_400,
        None,
        Some(&aud),
    )
    .unwrap();
    println!("{t}");
}

#[tokio::main]
async fn main() {
    match std::env::args().nth(1).as_deref() {
        Some("echo") => {
            let addr = need("--listen").parse().unwrap();
            Server::builder().add_service(Echo).serve(addr).await.unwrap();
        }
        Some("token") => token(),
        Some("bodies") => bodies().await,
        Some("cycle") => cycle().await,
        // `cargo bench` runs every bench with `--bench`: this one is driven by the script.
        _ => eprintln!("grpc_vs_echo: run benches/grpc_vs_echo.py (see the module doc)"),
    }
}
