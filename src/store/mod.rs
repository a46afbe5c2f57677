//! Storage: the only module that speaks sea-orm. The registry is an append-only, hash-chained event
//! log (`registry_events`) plus current-state tables written in the same transaction; SQLite by
//! default, PostgreSQL in production, one set of migrations for both.

mod decisions;
mod entities;
mod history;
mod log;
mod oversight;
mod rows;
mod writes;

use std::sync::Arc;
use std::time::Duration;

use sea_orm::{
    ColumnTrait, ConnectOptions, Database, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, TransactionTrait,
};
use tokio::sync::{Mutex, Notify};

pub use decisions::DecisionFilter;
use entities::{attestation, event, head, order, seller, supervision};
pub use history::EventFilter;
pub use writes::{ImportItem, ImportOutcome, ImportRowError};

use crate::domain::registry::{Attestation, Seller, Supervision, SuspensionOrder};
use crate::domain::{Country, SellerId, SellerStatus, Timestamp, Vocab};
use crate::error::{Error, Result};

impl From<DbErr> for Error {
    fn from(e: DbErr) -> Self {
        Error::Database(Box::new(e))
    }
}

/// How to reach the database.
#[derive(Debug, Clone)]
pub struct DbOptions {
    /// `sqlite://path?mode=rwc` or `postgres://…`.
    pub url: String,
    pub max_connections: u32,
    pub connect_timeout: Duration,
}

/// One event of the registry's log, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    pub revision: i64,
    pub time: Timestamp,
    pub actor: String,
    pub kind: String,
    pub seller_id: String,
    pub payload: String,
    pub prev_hash: String,
    pub hash: String,
}

impl From<event::Model> for StoredEvent {
    fn from(m: event::Model) -> Self {
        Self {
            revision: m.revision,
            time: Timestamp::from_micros(m.time),
            actor: m.actor,
            kind: m.kind,
            seller_id: m.seller_id,
            payload: m.payload,
            prev_hash: m.prev_hash,
            hash: m.hash,
        }
    }
}

/// The registry's whole current state at one revision: what the snapshot starts from.
#[derive(Debug, Default)]
pub struct RegistryState {
    pub revision: i64,
    pub sellers: Vec<Seller>,
    pub attestations: Vec<Attestation>,
    pub orders: Vec<SuspensionOrder>,
    pub supervisions: Vec<Supervision>,
}

/// The registry database.
#[derive(Clone)]
pub struct Store {
    db: DatabaseConnection,
    write_serial: Arc<Mutex<()>>,
    committed: Arc<Notify>,
}

impl Store {
    /// Connects to the database (creating an SQLite file if the URL says `mode=rwc`).
    pub async fn connect(options: &DbOptions) -> Result<Self> {
        let mut opts = ConnectOptions::new(options.url.clone());
        opts.max_connections(options.max_connections)
            .connect_timeout(options.connect_timeout)
            .acquire_timeout(options.connect_timeout)
            .sqlx_logging(false)
            // WAL lets readers proceed while a write commits; the busy timeout makes a writer from
            // another process wait for the lock instead of failing at once.
            .map_sqlx_sqlite_opts(|o| {
                o.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                    .busy_timeout(Duration::from_secs(10))
                    .foreign_keys(true)
            });
        let db = Database::connect(opts).await?;
        Ok(Self { db, write_serial: Arc::new(Mutex::new(())), committed: Arc::new(Notify::new()) })
    }

    /// Applies pending migrations.
    pub async fn migrate(&self) -> Result<()> {
        use migrations::MigratorTrait;
        migrations::Migrator::up(&self.db, None).await?;
        Ok(())
    }

    /// Notified after every local commit that changed the registry.
    pub fn committed(&self) -> Arc<Notify> {
        self.committed.clone()
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<()> {
        self.db.ping().await?;
        Ok(())
    }

    /// Connections in the pool: (open, idle).
    pub fn pool_stats(&self) -> (u32, usize) {
        match self.db.get_database_backend() {
            sea_orm::DatabaseBackend::Postgres => {
                let pool = self.db.get_postgres_connection_pool();
                (pool.size(), pool.num_idle())
            }
            _ => {
                let pool = self.db.get_sqlite_connection_pool();
                (pool.size(), pool.num_idle())
            }
        }
    }

    /// The head of the chain: the latest revision and its hash.
    pub async fn head(&self) -> Result<(i64, String)> {
        let h = head::Entity::find_by_id(1)
            .one(&self.db)
            .await?
            .ok_or_else(|| Error::Internal("the registry head row is missing: run `safeguard migrate`".into()))?;
        Ok((h.revision, h.hash))
    }

    /// Up to `limit` events after `revision`, oldest first.
    pub async fn events_after(&self, revision: i64, limit: u64) -> Result<Vec<StoredEvent>> {
        let rows = event::Entity::find()
            .filter(event::Column::Revision.gt(revision))
            .order_by_asc(event::Column::Revision)
            .limit(limit)
            .all(&self.db)
            .await?;
        Ok(rows.into_iter().map(StoredEvent::from).collect())
    }

    /// The whole current state, read in one transaction so that it is exactly the state at the
    /// revision it reports.
    pub async fn load_state(&self) -> Result<RegistryState> {
        let tx = self.db.begin().await?;
        let revision = head::Entity::find_by_id(1).one(&tx).await?.map_or(0, |h| h.revision);
        let sellers = seller::Entity::find().all(&tx).await?;
        let attestations = attestation::Entity::find().all(&tx).await?;
        let orders = order::Entity::find().order_by_asc(order::Column::Revision).all(&tx).await?;
        let supervisions = supervision::Entity::find().all(&tx).await?;
        tx.commit().await?;
        Ok(RegistryState {
            revision,
            sellers: sellers.into_iter().map(rows::seller_from_row).collect::<Result<_>>()?,
            attestations: attestations.into_iter().map(rows::attestation_from_row).collect::<Result<_>>()?,
            orders: orders.into_iter().map(rows::order_from_row).collect::<Result<_>>()?,
            supervisions: supervisions.into_iter().map(rows::supervision_from_row).collect::<Result<_>>()?,
        })
    }

    /// A seller with its attestations (oldest first), and the revision they were read at.
    pub async fn get_seller(&self, id: &SellerId) -> Result<Option<(Seller, Vec<Attestation>, i64)>> {
        let tx = self.db.begin().await?;
        let revision = head::Entity::find_by_id(1).one(&tx).await?.map_or(0, |h| h.revision);
        let Some(row) = seller::Entity::find_by_id(id.to_string()).one(&tx).await? else {
            return Ok(None);
        };
        let atts = attestation::Entity::find()
            .filter(attestation::Column::SellerId.eq(id.as_str()))
            .order_by_asc(attestation::Column::Revision)
            .all(&tx)
            .await?;
        tx.commit().await?;
        let atts = atts.into_iter().map(rows::attestation_from_row).collect::<Result<_>>()?;
        Ok(Some((rows::seller_from_row(row)?, atts, revision)))
    }

    /// Up to `limit` sellers after `after` in seller-id order, filtered by country and status.
    pub async fn list_sellers(
        &self,
        country: Option<Country>,
        status: Option<SellerStatus>,
        after: Option<&SellerId>,
        limit: u64,
    ) -> Result<Vec<Seller>> {
        let mut q = seller::Entity::find().order_by_asc(seller::Column::SellerId).limit(limit);
        if let Some(c) = country {
            q = q.filter(seller::Column::Country.eq(c.as_str()));
        }
        if let Some(s) = status {
            q = q.filter(seller::Column::Status.eq(s.name()));
        }
        if let Some(a) = after {
            q = q.filter(seller::Column::SellerId.gt(a.as_str()));
        }
        q.all(&self.db).await?.into_iter().map(rows::seller_from_row).collect()
    }
}
