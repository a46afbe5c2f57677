//! Overload protection in the project's own tower stack, *inside* the metrics layer, so every
//! refused request is counted in `safeguard_rpc_requests_total` with the code its client saw.
//!
//! From the outside in: [`StatusLayer`] turns every tower error into a gRPC status (the one place
//! that does), load shedding refuses at once what the concurrency limit has no room for, and
//! [`UnaryTimeoutLayer`] bounds each unary RPC. The codes are chosen for what a client should do:
//! - shed → UNAVAILABLE: the request never started, so it is safe to retry, preferably on another
//!   replica (RESOURCE_EXHAUSTED would read as a quota the caller exhausted);
//! - request timeout → DEADLINE_EXCEEDED: the standard code for "took too long" (tonic's own
//!   timeout answers CANCELLED, which clients read as "the caller gave up").
//!
//! Client streams (ImportSellers, reflection) are exempt from the request timeout: a long import is
//! not a stuck one. Their handlers bound the idle time between messages instead.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Request, Response};
use tower::{BoxError, Layer, Service};

/// The request timeout fired.
#[derive(Debug, thiserror::Error)]
#[error("the request took longer than {0:?}")]
pub struct RequestTimedOut(pub Duration);

/// Whether the RPC at `path` receives a stream of messages, so its length is the client's, not
/// ours, to decide.
pub fn is_client_stream(path: &str) -> bool {
    const CLIENT_STREAMS: &[&str] = &["/ImportSellers", "/ServerReflectionInfo"];
    CLIENT_STREAMS.iter().any(|m| path.ends_with(m))
}

/// The deadline a client set with the `grpc-timeout` header, if any.
fn header_timeout(headers: &http::HeaderMap) -> Option<Duration> {
    parse_grpc_timeout(headers.get("grpc-timeout")?.to_str().ok()?)
}

/// A `grpc-timeout` header value (digits and a unit, `250m`), as a duration.
pub fn parse_grpc_timeout(raw: &str) -> Option<Duration> {
    let (digits, unit) = raw.split_at(raw.len().checked_sub(1)?);
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.saturating_mul(3600)),
        "M" => Duration::from_secs(n.saturating_mul(60)),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// The gRPC status for an error raised by a tower layer. Handlers' own errors never get here:
/// they are already responses.
pub fn status_for(err: &BoxError) -> tonic::Status {
    if err.is::<tower::load_shed::error::Overloaded>() {
        return tonic::Status::unavailable("server overloaded: too many requests in flight; retry on another replica");
    }
    if let Some(RequestTimedOut(after)) = err.downcast_ref::<RequestTimedOut>() {
        return tonic::Status::deadline_exceeded(format!(
            "the request did not complete within the server's timeout of {} ms",
            after.as_millis()
        ));
    }
    tracing::error!(error = %err, "request failed in the service stack");
    tonic::Status::internal("internal error")
}

/// Answers every tower error as a gRPC status (trailers-only), so the metrics layer above sees
/// the code and the client gets a proper status instead of a reset stream.
#[derive(Clone, Copy, Default)]
pub struct StatusLayer;

impl<S> Layer<S> for StatusLayer {
    type Service = StatusService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        StatusService { inner }
    }
}

/// The service [`StatusLayer`] wraps.
#[derive(Clone)]
pub struct StatusService<S> {
    inner: S,
}

type BoxFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

impl<S, B> Service<Request<B>> for StatusService<S>
where
    S: Service<Request<B>, Response = Response<tonic::body::Body>>,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    type Response = Response<tonic::body::Body>;
    type Error = BoxError;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // None of the layers below fails readiness (load shedding reports overload from `call`).
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let fut = self.inner.call(req);
        Box::pin(async move {
            match fut.await {
                Ok(response) => Ok(response),
                Err(err) => Ok(status_for(&err.into()).into_http()),
            }
        })
    }
}

/// Bounds each unary RPC by the configured timeout, or the client's `grpc-timeout` if shorter.
#[derive(Clone, Copy)]
pub struct UnaryTimeoutLayer {
    timeout: Duration,
}

impl UnaryTimeoutLayer {
    /// A layer with the server's request timeout.
    pub fn new(timeout: Duration) -> Self {
        Self { timeout }
    }
}

impl<S> Layer<S> for UnaryTimeoutLayer {
    type Service = UnaryTimeout<S>;

    fn layer(&self, inner: S) -> Self::Service {
        UnaryTimeout { inner, timeout: self.timeout }
    }
}

/// The service [`UnaryTimeoutLayer`] wraps.
#[derive(Clone)]
pub struct UnaryTimeout<S> {
    inner: S,
    timeout: Duration,
}

impl<S, B> Service<Request<B>> for UnaryTimeout<S>
where
    S: Service<Request<B>>,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let limit = if is_client_stream(req.uri().path()) {
            None
        } else {
            Some(header_timeout(req.headers()).map_or(self.timeout, |client| client.min(self.timeout)))
        };
        let fut = self.inner.call(req);
        Box::pin(async move {
            match limit {
                None => fut.await.map_err(Into::into),
                Some(limit) => match tokio::time::timeout(limit, fut).await {
                    Ok(result) => result.map_err(Into::into),
                    Err(_) => Err(RequestTimedOut(limit).into()),
                },
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tower_errors_map_to_retryable_and_deadline_codes() {
        let shed: BoxError = Box::new(tower::load_shed::error::Overloaded::new());
        assert_eq!(status_for(&shed).code(), tonic::Code::Unavailable);
        let late: BoxError = Box::new(RequestTimedOut(Duration::from_millis(200)));
        assert_eq!(status_for(&late).code(), tonic::Code::DeadlineExceeded);
    }

    #[test]
    fn only_client_streams_escape_the_request_timeout() {
        assert!(is_client_stream("/safeguard.v1.RegistryService/ImportSellers"));
        assert!(!is_client_stream("/safeguard.v1.VerificationService/VerifySeller"));
    }
}
