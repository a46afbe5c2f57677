//! The authentication layer: verifies the bearer token once per request, caches what it verified, and
//! puts the caller's [`Principal`] in the request extensions for the handlers to authorize. Health and
//! reflection need no token, so load balancers and grpcurl work without one.
//!
//! A refused token answers UNAUTHENTICATED (or PERMISSION_DENIED for a verified token that grants no
//! known role) and is counted in `safeguard_auth_refused_total{reason}`; the reason is logged at warn
//! at most once per reason every [`LOG_INTERVAL`], because a client retrying a bad token, or a
//! scanner, would otherwise write one line per request.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http::{Request, Response};
use quick_cache::sync::Cache;
use tower::{Layer, Service};

use super::keys::{Refusal, TokenError, Verified, Verifier};
use super::{Principal, Role};
use crate::error::Error;

/// Paths served without a token.
const OPEN_PREFIXES: [&str; 3] =
    ["/grpc.health.v1.Health/", "/grpc.reflection.v1.ServerReflection/", "/grpc.reflection.v1alpha.ServerReflection/"];

/// At most one warn line per refusal reason this often; the line says how many were not logged.
pub const LOG_INTERVAL: Duration = Duration::from_secs(10);

/// The refusal counters, registered once (one handle per reason, so counting a refusal is an
/// atomic increment, never a registry lookup) and the state of the rate-limited log.
struct Refusals {
    counters: [metrics::Counter; Refusal::ALL.len()],
    /// Per reason: milliseconds since `epoch` of the last line logged, plus one (0: never).
    last_logged: [AtomicU64; Refusal::ALL.len()],
    /// Per reason: refusals not logged since the last line.
    suppressed: [AtomicU64; Refusal::ALL.len()],
    epoch: Instant,
}

impl Refusals {
    fn register() -> Self {
        Self {
            counters: Refusal::ALL.map(|r| metrics::counter!("safeguard_auth_refused_total", "reason" => r.name())),
            last_logged: std::array::from_fn(|_| AtomicU64::new(0)),
            suppressed: std::array::from_fn(|_| AtomicU64::new(0)),
            epoch: Instant::now(),
        }
    }

    /// Counts a refusal, and logs it unless its reason was logged within [`LOG_INTERVAL`].
    fn record(&self, error: &TokenError, path: &str) {
        let reason = error.refusal();
        self.counters[reason.index()].increment(1);
        let now = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        if let Some(suppressed) = self.log_due(reason, now) {
            // The caller learns only that credentials were refused; the reason is for operators.
            tracing::warn!(
                reason = reason.name(),
                detail = %error,
                path,
                suppressed,
                "request refused: {} ({suppressed} more like it not logged since the last line)",
                if reason == Refusal::Role { "the token grants no known role" } else { "unauthenticated" }
            );
        }
    }

    /// Whether a refusal for `reason` at `now` (milliseconds since `epoch`) is logged: if so, how
    /// many were suppressed since the last line; if not, it is counted as suppressed.
    fn log_due(&self, reason: Refusal, now: u64) -> Option<u64> {
        let i = reason.index();
        // Stored plus one, so that 0 means "never logged".
        let stamp = now.saturating_add(1);
        let last = self.last_logged[i].load(Ordering::Relaxed);
        let due = last == 0 || stamp.saturating_sub(last) >= LOG_INTERVAL.as_millis() as u64;
        // Of concurrent refusals that find the interval over, exactly one wins the exchange and logs.
        if due && self.last_logged[i].compare_exchange(last, stamp, Ordering::Relaxed, Ordering::Relaxed).is_ok() {
            Some(self.suppressed[i].swap(0, Ordering::Relaxed))
        } else {
            self.suppressed[i].fetch_add(1, Ordering::Relaxed);
            None
        }
    }
}

/// Verifies tokens, remembering verified ones (bounded, never past their expiry) so that an ES256 or
/// RS256 token costs a hash lookup after its first use instead of a signature check per request.
pub struct Authenticator {
    verifier: Verifier,
    cache: Cache<String, Verified>,
    /// Registered on first use rather than here: the metrics recorder is installed after the auth
    /// layer is built, and a handle taken before it would count into nothing.
    refusals: OnceLock<Refusals>,
}

impl Authenticator {
    /// An authenticator caching up to `capacity` tokens.
    pub fn new(verifier: Verifier, capacity: usize) -> Self {
        Self { verifier, cache: Cache::new(capacity.max(1)), refusals: OnceLock::new() }
    }

    fn refusals(&self) -> &Refusals {
        self.refusals.get_or_init(Refusals::register)
    }

    /// Counts and (rate-limited) logs a refused request.
    pub fn refused(&self, error: &TokenError, path: &str) {
        self.refusals().record(error, path);
    }

    /// The caller behind an `authorization` header value.
    pub fn authenticate(&self, header: Option<&http::HeaderValue>) -> Result<Principal, TokenError> {
        let value = header.and_then(|h| h.to_str().ok()).ok_or(TokenError::Missing)?;
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(TokenError::Missing)?;
        let now = jsonwebtoken::get_current_timestamp();
        if let Some(hit) = self.cache.get(token) {
            if now < hit.exp {
                return Ok(hit.principal);
            }
            self.cache.remove(token);
        }
        let verified = self.verifier.verify(token)?;
        let principal = verified.principal.clone();
        self.cache.insert(token.to_owned(), verified);
        Ok(principal)
    }
}

/// The tower layer. `AuthLayer::disabled()` lets every call through as an anonymous admin: for
/// benchmarks that measure the cost of authentication, never configurable in a deployment.
#[derive(Clone)]
pub struct AuthLayer {
    auth: Option<Arc<Authenticator>>,
}

impl AuthLayer {
    /// Authenticates every request but health and reflection.
    pub fn new(auth: Arc<Authenticator>) -> Self {
        Self { auth: Some(auth) }
    }

    /// No authentication.
    pub fn disabled() -> Self {
        Self { auth: None }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        // The server is being assembled, after the metrics recorder: register the refusal counters
        // now, so every reason is exported (at 0) before the first refusal.
        if let Some(auth) = &self.auth {
            auth.refusals();
        }
        AuthService { inner, auth: self.auth.clone() }
    }
}

/// The service [`AuthLayer`] wraps around the gRPC routes.
#[derive(Clone)]
pub struct AuthService<S> {
    inner: S,
    auth: Option<Arc<Authenticator>>,
}

type BoxFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

impl<S, B> Service<Request<B>> for AuthService<S>
where
    S: Service<Request<B>, Response = Response<tonic::body::Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
{
    type Response = Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let auth = match &self.auth {
            None => {
                req.extensions_mut().insert(Principal { subject: "anonymous".into(), roles: [Role::Admin].into() });
                return Box::pin(self.inner.call(req));
            }
            Some(_) if OPEN_PREFIXES.iter().any(|p| req.uri().path().starts_with(p)) => {
                return Box::pin(self.inner.call(req));
            }
            Some(auth) => auth,
        };
        match auth.authenticate(req.headers().get(http::header::AUTHORIZATION)) {
            Ok(p) => {
                req.extensions_mut().insert(p);
                Box::pin(self.inner.call(req))
            }
            Err(e) => {
                auth.refused(&e, req.uri().path());
                let error = match e {
                    // The token is genuine, so the caller is authenticated; it is only allowed
                    // nothing. Refused here, before any handler, so no RPC can forget to.
                    TokenError::NoRoles => Error::PermissionDenied("the token grants no role of this service".into()),
                    _ => Error::Unauthenticated,
                };
                let status = tonic::Status::from(error);
                Box::pin(std::future::ready(Ok(status.into_http())))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_refusal_reason_has_its_own_slot_and_label() {
        for (i, r) in Refusal::ALL.iter().enumerate() {
            assert_eq!(r.index(), i, "{r:?}");
        }
        let labels: std::collections::BTreeSet<_> = Refusal::ALL.iter().map(|r| r.name()).collect();
        assert_eq!(labels.len(), Refusal::ALL.len());
    }

    #[test]
    fn refusals_are_logged_once_per_reason_per_interval_with_the_count_suppressed() {
        let r = Refusals::register();
        let interval = LOG_INTERVAL.as_millis() as u64;
        assert_eq!(r.log_due(Refusal::Expired, 5), Some(0), "the first refusal is logged");
        assert_eq!(r.log_due(Refusal::Expired, 6), None);
        assert_eq!(r.log_due(Refusal::Expired, 5 + interval - 1), None);
        // Another reason has its own budget.
        assert_eq!(r.log_due(Refusal::Missing, 7), Some(0));
        assert_eq!(r.log_due(Refusal::Expired, 5 + interval), Some(2), "two were suppressed meanwhile");
        assert_eq!(r.log_due(Refusal::Expired, 6 + interval), None);
        assert_eq!(r.log_due(Refusal::Expired, 5 + 3 * interval), Some(1));
    }
}
