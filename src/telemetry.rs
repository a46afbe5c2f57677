//! Telemetry: tracing subscribers (text or JSON), the Prometheus recorder, the metrics HTTP endpoint,
//! and the tower layer that counts and times every RPC by method and status code.
//!
//! Metrics cost an atomic increment or two per call: every handle is registered once and kept (no
//! label lookup per call), and nothing is logged per call at info level.

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
        spawn_upkeep(handle.clone());
        handle
    })
}

/// How often histogram samples are folded into their buckets.
const UPKEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// Folds histogram samples into their buckets every [`UPKEEP_EVERY`], on a thread of its own for
/// the life of the process. The exporter keeps every sample until a scrape or an upkeep folds it:
/// with nobody scraping `/metrics`, that was ~20 bytes of RSS per request for ever (the 10-minute
/// soak grew from 240 to 416 MiB).
fn spawn_upkeep(handle: PrometheusHandle) {
    let started = std::thread::Builder::new().name("metrics-upkeep".into()).spawn(move || {
        loop {
            std::thread::sleep(UPKEEP_EVERY);
            handle.run_upkeep();
        }
    });
    if let Err(e) = started {
        tracing::error!(error = %e, "cannot start the metrics upkeep thread; histograms grow until scraped");
    }
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

impl<S, B, RB> Service<Request<B>> for MetricsService<S>
where
    S: Service<Request<B>, Response = Response<RB>>,
{
    type Response = Response<RB>;
    type Error = S::Error;
    type Future = Counted<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let outcome = Outcome { method: rpc_index(req.uri().path()), started: Instant::now(), code: None };
        Counted { inner: self.inner.call(req), outcome }
    }
}

pin_project_lite::pin_project! {
    /// The inner service's future, counted when it answers or is dropped (no allocation per call).
    pub struct Counted<F> {
        #[pin]
        inner: F,
        outcome: Outcome,
    }
}

impl<F, RB, E> Future for Counted<F>
where
    F: Future<Output = Result<Response<RB>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = std::task::ready!(this.inner.poll(cx));
        // A unary RPC that fails answers trailers-only, with grpc-status in the headers; an answer
        // without it succeeded (streams that fail midway are counted as OK here).
        this.outcome.code = Some(match &result {
            Ok(resp) => resp
                .headers()
                .get("grpc-status")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<i32>().ok())
                .map_or(tonic::Code::Ok, tonic::Code::from),
            Err(_) => tonic::Code::Unavailable,
        });
        Poll::Ready(result)
    }
}

/// Counts one RPC when it is dropped: with its code once it answered, as CANCELLED if it never did
/// (the client went away, or the client's own deadline ran out first), so no request goes uncounted.
struct Outcome {
    method: usize,
    started: Instant,
    code: Option<tonic::Code>,
}

impl Drop for Outcome {
    fn drop(&mut self) {
        let handles = rpc_handles(self.method);
        handles.count(self.code.unwrap_or(tonic::Code::Cancelled)).increment(1);
        handles.duration.record(self.started.elapsed().as_secs_f64());
    }
}

/// The RPCs counted by name; any other path is counted as `other`, so a client cannot mint label values.
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
    "GetCheckpoint",
    "GetInclusionProof",
    "GetConsistencyProof",
    "CreateSuspensionOrder",
    "LiftSuspensionOrder",
    "ListSuspensionOrders",
    "RecordSupervision",
    "Check",
    "Watch",
    "ServerReflectionInfo",
    "other",
];

/// The RPC's index in [`KNOWN`] (`other` when unknown).
fn rpc_index(path: &str) -> usize {
    let name = path.rsplit('/').next().unwrap_or_default();
    KNOWN.iter().position(|k| *k == name).unwrap_or(KNOWN.len() - 1)
}

/// One RPC's metric handles, registered once: a call costs an atomic load and the increments, not a
/// label lookup. A (method, code) counter is registered on its first use, so /metrics lists only the
/// pairs that occurred.
struct RpcHandles {
    method: &'static str,
    codes: [OnceLock<metrics::Counter>; 17],
    duration: metrics::Histogram,
}

impl RpcHandles {
    fn count(&self, code: tonic::Code) -> &metrics::Counter {
        let i = (code as usize).min(self.codes.len() - 1);
        self.codes[i].get_or_init(
            || metrics::counter!("safeguard_rpc_requests_total", "method" => self.method, "code" => code_name(code)),
        )
    }
}

fn rpc_handles(method: usize) -> &'static RpcHandles {
    static HANDLES: OnceLock<Vec<RpcHandles>> = OnceLock::new();
    let all = HANDLES.get_or_init(|| {
        // The handles bind to the recorder installed at registration: install it first.
        metrics_handle();
        KNOWN
            .iter()
            .map(|&method| RpcHandles {
                method,
                codes: std::array::from_fn(|_| OnceLock::new()),
                duration: metrics::histogram!("safeguard_rpc_duration_seconds", "method" => method),
            })
            .collect()
    });
    &all[method.min(all.len() - 1)]
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
