//! Storage: the only module that speaks sea-orm. The registry is an append-only, hash-chained event
//! log (`registry_events`) plus current-state tables written in the same transaction; SQLite by
//! default, PostgreSQL in production, one set of migrations for both.

mod decision_log;
mod decisions;
mod entities;
mod fold;
mod heartbeat;
mod history;
mod log;
pub mod merkle;
mod oversight;
mod rows;
mod sqlite_txn;
mod writes;

use std::sync::Arc;
use std::time::Duration;

use sea_orm::{
    ColumnTrait, ConnectOptions, Database, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, TransactionTrait,
};
use tokio::sync::{Mutex, Notify};

pub use decisions::{DecisionFilter, refused_by_database};
use entities::{event, head, seller};
pub(crate) use fold::apply_checked;
pub use fold::{FoldedLog, RegistryState};
pub use heartbeat::Heartbeat;
pub use history::EventFilter;
pub use log::RequestKey;
pub use writes::{ImportItem, ImportOutcome, ImportRowError, SellerImport};

use crate::domain::registry::{Attestation, Seller};
use crate::domain::{Country, SellerId, SellerStatus, Timestamp, Vocab};
use crate::error::{Error, Result};

impl From<DbErr> for Error {
    fn from(e: DbErr) -> Self {
        Error::Database(Box::new(e))
    }
}

/// How long request ids are remembered unless configured otherwise.
pub const DEFAULT_REQUEST_ID_WINDOW: Duration = Duration::from_secs(7 * 86_400);

/// How to reach the database.
#[derive(Debug, Clone)]
pub struct DbOptions {
    /// `sqlite://path?mode=rwc` or `postgres://…`.
    pub url: String,
    pub max_connections: u32,
    pub connect_timeout: Duration,
    /// SQLite only: each connection's page cache, in KiB.
    pub sqlite_cache_kib: u32,
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

/// The registry database.
#[derive(Clone)]
pub struct Store {
    db: DatabaseConnection,
    write_serial: Arc<Mutex<()>>,
    /// How long a write's request id is remembered.
    request_id_window: Duration,
    committed: Arc<Notify>,
    /// Whether writes append to the Merkle tree (off with `audit.checkpoints = false`; the tree
    /// is then caught up by the next start or write with it on).
    merkle: Arc<std::sync::atomic::AtomicBool>,
    /// The log size when a bulk import last refreshed PostgreSQL's planner statistics (see
    /// `Store::import_batch`).
    analyzed_at: Arc<std::sync::atomic::AtomicI64>,
    /// SQLite: the decision writer's own connection ([`sqlite_txn::WriterConnection`]).
    sqlite_writer: sqlite_txn::WriterConnection,
}

impl Store {
    /// Connects to the database (creating an SQLite file if the URL says `mode=rwc`).
    pub async fn connect(options: &DbOptions) -> Result<Self> {
        Self::open(options, false).await
    }

    /// A pool that connects on first use: a database that is down now (a primary in another zone,
    /// a standby being rebuilt) does not stop the service from starting, and every later query
    /// retries the connection.
    pub async fn connect_lazy(options: &DbOptions) -> Result<Self> {
        Self::open(options, true).await
    }

    async fn open(options: &DbOptions, lazy: bool) -> Result<Self> {
        let cache_size = format!("-{}", options.sqlite_cache_kib);
        let mut opts = ConnectOptions::new(options.url.clone());
        opts.max_connections(options.max_connections)
            .connect_lazy(lazy)
            .connect_timeout(options.connect_timeout)
            .acquire_timeout(options.connect_timeout)
            .sqlx_logging(false)
            // WAL lets readers proceed while a write commits; the busy timeout makes a writer from
            // another process wait for the lock instead of failing at once. Each connection keeps
            // a page cache of its own in this process (`database.sqlite_cache_kib`; SQLite's
            // default is 2 MiB): once the start-up fold and the background check have read the
            // whole log through a pool of ten, that was ~40 MiB of RSS at 180,000 sellers, on top
            // of the operating system's cache of the same file.
            .map_sqlx_sqlite_opts(move |o| {
                o.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                    .busy_timeout(Duration::from_secs(10))
                    .foreign_keys(true)
                    .pragma("cache_size", cache_size.clone())
            });
        let db = Database::connect(opts).await?;
        Ok(Self {
            db,
            write_serial: Arc::new(Mutex::new(())),
            request_id_window: DEFAULT_REQUEST_ID_WINDOW,
            committed: Arc::new(Notify::new()),
            merkle: Arc::new(std::sync::atomic::AtomicBool::new(true)),
            analyzed_at: Arc::new(std::sync::atomic::AtomicI64::new(0)),
            sqlite_writer: Arc::default(),
        })
    }

    /// Remembers request ids for `window` (default 7 days).
    pub fn with_request_id_window(mut self, window: Duration) -> Self {
        self.request_id_window = window;
        self
    }

    /// How long request ids are remembered.
    pub fn request_id_window(&self) -> Duration {
        self.request_id_window
    }

    /// Keys recorded before this time, seen from `now`, have expired.
    pub(crate) fn request_ids_expire_before(&self, now: Timestamp) -> Timestamp {
        now.plus_seconds(-i64::try_from(self.request_id_window.as_secs()).unwrap_or(i64::MAX))
    }

    /// Deletes up to `batch` expired request ids; returns how many went. Batches keep each delete
    /// short, so pruning never holds up writes.
    pub async fn prune_request_ids(&self, now: Timestamp, batch: u64) -> Result<u64> {
        use entities::applied_request;
        let cutoff = self.request_ids_expire_before(now).as_micros();
        let keys: Vec<(String, String, String)> = applied_request::Entity::find()
            .select_only()
            .column(applied_request::Column::Caller)
            .column(applied_request::Column::Rpc)
            .column(applied_request::Column::RequestId)
            .filter(applied_request::Column::Time.lt(cutoff))
            .limit(batch)
            .into_tuple()
            .all(&self.db)
            .await?;
        let mut deleted = 0;
        let tx = self.db.begin().await?;
        for key in keys {
            deleted += applied_request::Entity::delete_by_id(key).exec(&tx).await?.rows_affected;
        }
        tx.commit().await?;
        Ok(deleted)
    }

    /// Applies pending migrations.
    pub async fn migrate(&self) -> Result<()> {
        use migrations::MigratorTrait;
        migrations::Migrator::up(&self.db, None).await?;
        Ok(())
    }

    /// Turns appending to the Merkle tree on or off (for measuring its cost; see `audit.checkpoints`).
    pub fn set_merkle(&self, on: bool) {
        self.merkle.store(on, std::sync::atomic::Ordering::Relaxed);
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

    /// A seller with its attestations (oldest first), and the revision they were read at: folded
    /// from the seller's own events, so what legal and auditors are shown is what the log says.
    pub async fn get_seller(&self, id: &SellerId) -> Result<Option<(Seller, Vec<Attestation>, i64)>> {
        let tx = self.db.begin().await?;
        let revision = head::Entity::find_by_id(1).one(&tx).await?.map_or(0, |h| h.revision);
        let mut state = fold::fold_sellers(&tx, &[id.as_str()]).await?;
        tx.commit().await?;
        let Some(seller) = state.sellers.remove(id) else { return Ok(None) };
        let atts = state.attestations.remove(id).unwrap_or_default();
        Ok(Some((seller, atts, revision)))
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
