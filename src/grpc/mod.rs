//! Thin gRPC adapters: convert proto to domain at the edge, call the snapshot or the store, convert
//! back, and map errors to status codes in one place ([`crate::error`]).

mod audit;
pub mod convert;
pub mod oversight;
mod registry;
mod verification;

use std::sync::Arc;
use std::time::Duration;

pub use audit::AuditApi;
pub use registry::RegistryApi;
pub use verification::VerificationApi;

use crate::snapshot::Registry;
use crate::store::Store;

/// What every handler shares.
#[derive(Clone)]
pub struct Shared {
    /// The primary: writes, exports and long scans.
    pub store: Store,
    /// Where the snapshot follows the log from, and the primary for read-your-writes.
    pub sources: crate::snapshot::Sources,
    pub registry: Arc<Registry>,
    /// Longest a request with `min_revision` waits for the snapshot.
    pub max_min_revision_wait: Duration,
    /// Longest pause between two messages of a client stream (ImportSellers).
    pub stream_idle_timeout: Duration,
    /// Where decisions are recorded.
    pub decisions: Arc<crate::recorder::DecisionLog>,
    /// The checkpoint signer (`None` with checkpoints off).
    pub tlog: Option<Arc<crate::tlog::Tlog>>,
}

impl Shared {
    /// Where auditors' history reads go: the standby the snapshot follows (the primary when there
    /// is none), so that audit traffic stays off the primary. Exports, the chain check and other
    /// long scans stay on the primary, which holds the whole log for certain.
    pub fn audit_reads(&self) -> &Store {
        self.sources.reader()
    }
}

/// The deadline a client set with the `grpc-timeout` header, if any.
pub fn client_deadline<T>(request: &tonic::Request<T>) -> Option<Duration> {
    crate::overload::parse_grpc_timeout(request.metadata().get("grpc-timeout")?.to_str().ok()?)
}
