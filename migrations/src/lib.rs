//! The schema history of safeguard. One set of migrations serves SQLite and PostgreSQL; each file is
//! frozen once released and never imports the application's entities, so history stays history.
//! Times are stored as BIGINT microseconds since the Unix epoch (UTC): exact, identical on both
//! databases, and compared numerically in SQL.

pub use sea_orm_migration::prelude::*;

mod m20261128_000001_create_registry;
mod m20261128_000002_create_audit;
mod m20261202_000002_scope_request_ids;
mod m20261202_000003_create_decision_quarantine;
mod m20261202_000004_create_merkle;
mod m20261202_000005_create_heartbeat;
mod m20261203_000006_create_decision_log;

/// Runs safeguard's migrations.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261128_000001_create_registry::Migration),
            Box::new(m20261128_000002_create_audit::Migration),
            Box::new(m20261202_000002_scope_request_ids::Migration),
            Box::new(m20261202_000003_create_decision_quarantine::Migration),
            Box::new(m20261202_000004_create_merkle::Migration),
            Box::new(m20261202_000005_create_heartbeat::Migration),
            Box::new(m20261203_000006_create_decision_log::Migration),
        ]
    }
}
