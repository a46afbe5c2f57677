//! gRPC health (grpc.health.v1) and the registry gauges, refreshed every second.
//!
//! - VerificationService (and the overall status) is SERVING while the snapshot is within the
//!   configured maximum staleness — even with the database down, because decisions come from memory;
//!   past it, or once the log was found damaged, every decision is DENY REGISTRY_STALE and a load
//!   balancer should prefer another replica.
//! - RegistryService is SERVING only while the database answers: every registry call needs it.
//! - `safeguard.v1.DecisionRecorder` (no RPCs; a health name only) is NOT_SERVING while the
//!   decision recorder cannot write and is retrying. It never turns VerificationService
//!   NOT_SERVING: decisions still flow, queue up, and what overflows is counted and marked.

use std::sync::Arc;
use std::time::Duration;

use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::domain::Timestamp;
use crate::grpc::{RegistryApi, VerificationApi};
use crate::pb::v1::registry_service_server::RegistryServiceServer;
use crate::pb::v1::verification_service_server::VerificationServiceServer;
use crate::recorder::DecisionLog;
use crate::snapshot::Registry;
use crate::store::Store;

/// How often health and gauges are refreshed.
const INTERVAL: Duration = Duration::from_secs(1);
/// Recounting contracts in force walks the whole snapshot: do it less often.
const RECOUNT_EVERY: u32 = 15;

fn status(ok: bool) -> ServingStatus {
    if ok { ServingStatus::Serving } else { ServingStatus::NotServing }
}

/// The gRPC service names reported on.
pub fn verification_name() -> &'static str {
    <VerificationServiceServer<VerificationApi> as tonic::server::NamedService>::NAME
}

/// The gRPC service names reported on.
pub fn registry_name() -> &'static str {
    <RegistryServiceServer<RegistryApi> as tonic::server::NamedService>::NAME
}

/// The health name of the decision recorder.
pub const RECORDER_NAME: &str = "safeguard.v1.DecisionRecorder";

/// Sets every status at once.
pub async fn set_all(reporter: &HealthReporter, verification: bool, registry: bool, recorder: bool) {
    reporter.set_service_status("", status(verification)).await;
    reporter.set_service_status(verification_name(), status(verification)).await;
    reporter.set_service_status(registry_name(), status(registry)).await;
    reporter.set_service_status(RECORDER_NAME, status(recorder)).await;
}

/// Refreshes health and gauges until aborted.
pub async fn monitor(reporter: HealthReporter, store: Store, registry: Arc<Registry>, decisions: Arc<DecisionLog>) {
    let mut tick = 0u32;
    loop {
        let head = tokio::time::timeout(INTERVAL, store.head()).await;
        let db_ok = matches!(head, Ok(Ok(_)));
        let fresh = registry.is_fresh();
        let recorder = decisions.status();
        set_all(&reporter, fresh, db_ok, !recorder.failing).await;
        metrics::gauge!("safeguard_decision_records_queued").set(recorder.queued as f64);
        metrics::gauge!("safeguard_decision_records_oldest_unwritten_age_seconds")
            .set(recorder.oldest_unwritten_age.as_secs_f64());

        let snapshot = registry.snapshot();
        metrics::gauge!("safeguard_snapshot_revision").set(snapshot.revision as f64);
        metrics::gauge!("safeguard_snapshot_staleness_seconds").set(registry.staleness().as_secs_f64());
        if let Ok(Ok((head, _))) = head {
            metrics::gauge!("safeguard_snapshot_lag_revisions").set((head - snapshot.revision).max(0) as f64);
        }
        metrics::gauge!("safeguard_database_up").set(if db_ok { 1.0 } else { 0.0 });
        let (size, idle) = store.pool_stats();
        metrics::gauge!("safeguard_database_pool_connections", "state" => "in_use")
            .set((size as usize).saturating_sub(idle) as f64);
        metrics::gauge!("safeguard_database_pool_connections", "state" => "idle").set(idle as f64);
        if tick.is_multiple_of(RECOUNT_EVERY) {
            let now = Timestamp::now();
            let sellers = snapshot.len();
            let in_force: usize = snapshot.iter().map(|s| s.in_force_count(now)).sum();
            metrics::gauge!("safeguard_sellers").set(sellers as f64);
            metrics::gauge!("safeguard_attestations_in_force").set(in_force as f64);
        }
        tick = tick.wrapping_add(1);
        tokio::time::sleep(INTERVAL).await;
    }
}

/// Asks the server at `addr` for the health of `service` ("" for the whole server): Ok when it
/// answers SERVING (`safeguard healthcheck`, for container health checks).
pub async fn check(addr: String, service: String) -> anyhow::Result<()> {
    use anyhow::Context as _;
    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};
    let channel = tonic::transport::Endpoint::from_shared(addr.clone())?
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(2))
        .connect()
        .await
        .with_context(|| format!("cannot connect to {addr}"))?;
    let status = HealthClient::new(channel).check(HealthCheckRequest { service }).await?.into_inner().status();
    anyhow::ensure!(status == ServingStatus::Serving, "{addr} reports {status:?}");
    Ok(())
}
