//! Telemetry: tracing subscribers (text or JSON), the Prometheus recorder, the metrics HTTP endpoint,
//! and the tower layer that counts and times every RPC by method and status code.
//!
//! Metrics cost an atomic increment or two per call: VerifySeller's counters are looked up by static
//! labels, and nothing is logged per call at info level.

use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};
use std::time::Instant;

use http::{Request, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tower::{Layer, Service};

/// Latency buckets (seconds): VerifySeller lives in the first few, registry writes further up.
const BUCKETS: &[f64] =
    &[0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// The process-wide Prometheus recorder, installed on first use. One per process because the
/// `metrics` facade has one global recorder; several servers in one process (tests) share it.
pub fn metrics_handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), BUCKETS)
            .map(PrometheusBuilder::build_recorder)
            .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder());
        let handle = recorder.handle();
        // Fails only if another recorder was installed first; then our handle renders nothing, and
        // that is visible on /metrics rather than fatal.
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was already installed");
        }
        handle
    })
}

/// Serves `GET /metrics` (Prometheus text format) on `listener` until `shutdown`.
pub async fn serve_metrics(
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let handle = metrics_handle();
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || async move {
            ([(http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], handle.render())
        }),
    );
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Installs the tracing subscriber: `RUST_LOG` wins over `level`.
pub fn init_tracing(format: LogFormat, level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(true).try_init(),
    };
}

/// Counts and times every RPC by method and gRPC status code.
#[derive(Clone, Copy, Default)]
pub struct MetricsLayer;

impl<S> Layer<S> for MetricsLayer {
    type Service = MetricsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        MetricsService { inner }
    }
}

/// The service [`MetricsLayer`] wraps around the routes.
#[derive(Clone)]
pub struct MetricsService<S> {
    inner: S,
}

type BoxFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

impl<S, B, RB> Service<Request<B>> for MetricsService<S>
where
    S: Service<Request<B>, Response = Response<RB>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    RB: Send + 'static,
{
    type Response = Response<RB>;
    type Error = S::Error;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let outcome = Outcome { method: rpc_name(req.uri().path()), started: Instant::now(), code: None };
        let fut = self.inner.call(req);
        Box::pin(async move {
            // Moves the whole guard in (a closure would capture only the field it assigns).
            let mut outcome = outcome;
            let result = fut.await;
            // A unary RPC that fails answers trailers-only, with grpc-status in the headers; an
            // answer without it succeeded (streams that fail midway are counted as OK here).
            outcome.code = Some(match &result {
                Ok(resp) => resp
                    .headers()
                    .get("grpc-status")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<i32>().ok())
                    .map_or("OK", |c| code_name(tonic::Code::from(c))),
                Err(_) => "UNAVAILABLE",
            });
            result
        })
    }
}

/// Counts one RPC when it is dropped: with its code once it answered, as CANCELLED if it never did
/// (the client went away, or the client's own deadline ran out first), so no request goes uncounted.
struct Outcome {
    method: &'static str,
    started: Instant,
    code: Option<&'static str>,
}

impl Drop for Outcome {
    fn drop(&mut self) {
        let code = self.code.unwrap_or("CANCELLED");
        metrics::counter!("safeguard_rpc_requests_total", "method" => self.method, "code" => code).increment(1);
        metrics::histogram!("safeguard_rpc_duration_seconds", "method" => self.method)
            .record(self.started.elapsed().as_secs_f64());
    }
}

/// The RPC's method name (`VerifySeller`), from a static table so labels never allocate and a
/// client cannot mint new label values.
fn rpc_name(path: &str) -> &'static str {
    const KNOWN: &[&str] = &[
        "VerifySeller",
        "BatchVerifySellers",
        "CreateSeller",
        "UpdateSeller",
        "GetSeller",
        "ListSellers",
        "SubmitAttestation",
        "RevokeAttestation",
        "ImportSellers",
        "ListRegistryEvents",
        "GetSellerHistory",
        "GetSellerAsOf",
        "VerifyAuditChain",
        "ExplainDecision",
        "ListDecisions",
        "GetDecision",
        "GetComplianceReport",
        "ExportRecipientRegister",
        "CreateSuspensionOrder",
        "LiftSuspensionOrder",
        "ListSuspensionOrders",
        "RecordSupervision",
        "Check",
        "Watch",
        "ServerReflectionInfo",
    ];
    let name = path.rsplit('/').next().unwrap_or_default();
    KNOWN.iter().find(|k| **k == name).copied().unwrap_or("other")
}

/// The canonical name of a gRPC status code.
pub fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "OK",
        Cancelled => "CANCELLED",
        Unknown => "UNKNOWN",
        InvalidArgument => "INVALID_ARGUMENT",
        DeadlineExceeded => "DEADLINE_EXCEEDED",
        NotFound => "NOT_FOUND",
        AlreadyExists => "ALREADY_EXISTS",
        PermissionDenied => "PERMISSION_DENIED",
        ResourceExhausted => "RESOURCE_EXHAUSTED",
        FailedPrecondition => "FAILED_PRECONDITION",
        Aborted => "ABORTED",
        OutOfRange => "OUT_OF_RANGE",
        Unimplemented => "UNIMPLEMENTED",
        Internal => "INTERNAL",
        Unavailable => "UNAVAILABLE",
        DataLoss => "DATA_LOSS",
        Unauthenticated => "UNAUTHENTICATED",
    }
}
