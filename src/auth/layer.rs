//! The authentication layer: verifies the bearer token once per request, caches what it verified, and
//! puts the caller's [`Principal`] in the request extensions for the handlers to authorize. Health and
//! reflection need no token, so load balancers and grpcurl work without one.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use quick_cache::sync::Cache;
use tower::{Layer, Service};

use super::keys::{TokenError, Verified, Verifier};
use super::{Principal, Role};

/// Paths served without a token.
const OPEN_PREFIXES: [&str; 3] =
    ["/grpc.health.v1.Health/", "/grpc.reflection.v1.ServerReflection/", "/grpc.reflection.v1alpha.ServerReflection/"];

/// Verifies tokens, remembering verified ones (bounded, never past their expiry) so that an ES256 or
/// RS256 token costs a hash lookup after its first use instead of a signature check per request.
pub struct Authenticator {
    verifier: Verifier,
    cache: Cache<String, Verified>,
}

impl Authenticator {
    /// An authenticator caching up to `capacity` tokens.
    pub fn new(verifier: Verifier, capacity: usize) -> Self {
        Self { verifier, cache: Cache::new(capacity.max(1)) }
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
        let principal = match &self.auth {
            None => Ok(Principal { subject: "anonymous".to_owned(), roles: vec![Role::Admin] }),
            Some(_) if OPEN_PREFIXES.iter().any(|p| req.uri().path().starts_with(p)) => {
                return Box::pin(self.inner.call(req));
            }
            Some(auth) => auth.authenticate(req.headers().get(http::header::AUTHORIZATION)),
        };
        match principal {
            Ok(p) => {
                req.extensions_mut().insert(p);
                Box::pin(self.inner.call(req))
            }
            Err(e) => {
                // The caller learns only that credentials were refused; the reason is for operators.
                tracing::warn!(reason = %e, path = req.uri().path(), "request refused: unauthenticated");
                let status = tonic::Status::unauthenticated("missing or invalid credentials");
                Box::pin(std::future::ready(Ok(status.into_http())))
            }
        }
    }
}
