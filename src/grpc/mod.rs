//! Thin gRPC adapters: convert proto to domain at the edge, call the snapshot or the store, convert
//! back, and map errors to status codes in one place ([`crate::error`]).

mod audit;
pub mod client_import;
pub mod convert;
pub mod health;
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
    /// The checkpoint signers of both logs (`None` with checkpoints off).
    pub tlog: Option<crate::tlog::Tlogs>,
}

impl Shared {
    /// Where auditors' history reads go: the standby the snapshot follows (the primary when there
    /// is none), so that audit traffic stays off the primary. Exports, the chain check and other
    /// long scans stay on the primary, which holds the whole log for certain.
    pub fn audit_reads(&self) -> &Store {
        self.sources.reader()
    }
}

/// Every gRPC service safeguard serves, as one set of routes: the contract's three services, the
/// standard health service (with the reporter that sets its statuses) and server reflection.
pub fn routes(
    shared: &Shared,
    max_message_bytes: usize,
) -> anyhow::Result<(tonic::service::Routes, tonic_health::server::HealthReporter)> {
    use crate::pb::v1::audit_service_server::AuditServiceServer;
    use crate::pb::v1::registry_service_server::RegistryServiceServer;
    use crate::pb::v1::verification_service_server::VerificationServiceServer;
    let (reporter, health) = tonic_health::server::health_reporter();
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(crate::pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let max = max_message_bytes;
    let mut routes = tonic::service::RoutesBuilder::default();
    routes
        .add_service(health)
        .add_service(reflection().build_v1()?)
        .add_service(reflection().build_v1alpha()?)
        .add_service(
            VerificationServiceServer::new(VerificationApi::new(shared.clone())).max_decoding_message_size(max),
        )
        .add_service(RegistryServiceServer::new(RegistryApi::new(shared.clone())).max_decoding_message_size(max))
        .add_service(AuditServiceServer::new(AuditApi::new(shared.clone())).max_decoding_message_size(max));
    Ok((routes.routes(), reporter))
}

/// The deadline a client set with the `grpc-timeout` header, if any.
pub fn client_deadline<T>(request: &tonic::Request<T>) -> Option<Duration> {
    crate::overload::parse_grpc_timeout(request.metadata().get("grpc-timeout")?.to_str().ok()?)
}

#[cfg(test)]
mod tests {
    /// The layout's rule, checked literally: generated proto types (ours and grpc.health's) are
    /// imported only under `src/grpc/` (and defined in `src/pb.rs`); everything else speaks domain.
    #[test]
    fn no_module_outside_grpc_imports_generated_proto_types() {
        fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
            for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    walk(&path, out);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    out.push(path);
                }
            }
        }
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        walk(&src, &mut files);
        assert!(files.len() > 20, "found only {} source files under {}", files.len(), src.display());
        let mut offenders = Vec::new();
        for file in files {
            let rel = file.strip_prefix(&src).unwrap_or(&file).to_string_lossy().replace('\\', "/");
            if rel.starts_with("grpc/") || rel == "pb.rs" {
                continue;
            }
            let text = std::fs::read_to_string(&file).unwrap_or_default();
            for (n, line) in text.lines().enumerate() {
                if ["crate::pb", "safeguard::pb", "tonic_health::pb", "pb::v1"].iter().any(|p| line.contains(p)) {
                    offenders.push(format!("src/{rel}:{}: {}", n + 1, line.trim()));
                }
            }
        }
        assert!(offenders.is_empty(), "proto types used outside src/grpc/:\n{}", offenders.join("\n"));
    }
}
