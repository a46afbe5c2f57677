//! The crate's one error type, and its one mapping to gRPC status codes. Client errors carry what
//! the client needs to fix the request; internal errors are logged with their cause chain and answer
//! a generic message, so no database detail leaks to callers.

use tonic::Code;
use tonic_types::{ErrorDetails, StatusExt};

use crate::domain::Violation;

/// Everything that can go wrong while serving a request.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is malformed; nothing was written.
    #[error("invalid request: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<Violation>),
    /// A named entity does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// The entity to create exists already.
    #[error("{0} already exists")]
    AlreadyExists(String),
    /// An optimistic-concurrency check failed (a stale etag); nothing was written.
    #[error("{0}")]
    Aborted(String),
    /// The request contradicts the registry's state (revoking a revoked attestation, say).
    #[error("{0}")]
    FailedPrecondition(String),
    /// The service cannot answer now; retrying later may succeed.
    #[error("{0}")]
    Unavailable(String),
    /// No valid credentials.
    #[error("unauthenticated")]
    Unauthenticated,
    /// Valid credentials without the role the RPC needs.
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    /// The database failed.
    #[error("database error")]
    Database(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A defect or an unexpected state: the details are for the log only.
    #[error("internal error: {0}")]
    Internal(String),
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// One invalid field.
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self::Invalid(vec![Violation::new(field, description)])
    }
}

impl From<Vec<Violation>> for Error {
    fn from(v: Vec<Violation>) -> Self {
        Self::Invalid(v)
    }
}

impl From<Violation> for Error {
    fn from(v: Violation) -> Self {
        Self::Invalid(vec![v])
    }
}

/// Logs the cause chain of an error that the caller will only see as a generic message.
fn log_internal(err: &Error) {
    let mut chain = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        chain.push_str(": ");
        chain.push_str(&s.to_string());
        source = s.source();
    }
    tracing::error!(error = %chain, "request failed");
}

impl From<Error> for tonic::Status {
    fn from(err: Error) -> Self {
        match err {
            Error::Invalid(violations) => {
                let mut details = ErrorDetails::new();
                for v in &violations {
                    details.add_bad_request_violation(v.field.clone(), v.description.clone());
                }
                let message = Error::Invalid(violations).to_string();
                tonic::Status::with_error_details(Code::InvalidArgument, message, details)
            }
            Error::NotFound(_) => tonic::Status::not_found(err.to_string()),
            Error::AlreadyExists(_) => tonic::Status::already_exists(err.to_string()),
            Error::Aborted(m) => tonic::Status::aborted(m),
            Error::FailedPrecondition(m) => tonic::Status::failed_precondition(m),
            Error::Unavailable(m) => tonic::Status::unavailable(m),
            // Which check failed is logged by the auth layer, never told to the caller.
            Error::Unauthenticated => tonic::Status::unauthenticated("missing or invalid credentials"),
            Error::PermissionDenied(m) => tonic::Status::permission_denied(m),
            Error::Database(_) => {
                log_internal(&err);
                tonic::Status::unavailable("the registry database is unavailable; retry later")
            }
            Error::Internal(_) => {
                log_internal(&err);
                tonic::Status::internal("internal error")
            }
        }
    }
}
