//! The decision records: written in batches off the hot path, listed and fetched by auditors, and
//! pruned after the retention period. A record the database refuses is quarantined
//! (`decision_quarantine`) so it never blocks the others.

use sea_orm::sqlx::Arguments;
use sea_orm::sqlx::postgres::PgDatabaseError;
use sea_orm::sqlx::sqlite::SqliteArguments;
use sea_orm::{
    ActiveValue::Set as Val, ColumnTrait, Condition, ConnectionTrait, DbBackend, DbErr, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, RuntimeErr, Statement, TransactionTrait, Value,
};

use super::Store;
use super::decision_log::all_stored;
use super::entities::{decision, decision_quarantine};
use super::sqlite_txn::SqliteTxn;
use crate::domain::record::{DecisionRecord, RecordRow, RecordedReasons};
use crate::domain::{Decision, SellerId, Timestamp, Vocab};
use crate::error::{Error, Result};

/// Filters of ListDecisions.
#[derive(Debug, Clone, Default)]
pub struct DecisionFilter {
    pub seller_id: Option<SellerId>,
    pub decision: Option<Decision>,
    pub start: Option<Timestamp>,
    pub end: Option<Timestamp>,
    /// Continue after this (time, decision_id), oldest first.
    pub after: Option<(i64, String)>,
}

/// The columns of `decisions`, in the order [`bind_row`] binds them, each with its PostgreSQL type
/// for `json_to_recordset`.
const COLUMNS: [(&str, &str); 15] = [
    ("decision_id", "text"),
    ("time", "bigint"),
    ("caller", "text"),
    ("seller_id", "text"),
    ("purpose", "text"),
    ("basis", "text"),
    ("basis_evidence_ref", "text"),
    ("categories", "text"),
    ("decision", "text"),
    ("allowed", "text"),
    ("reasons", "text"),
    ("revision", "bigint"),
    ("policy_version", "text"),
    ("lost_records", "bigint"),
    ("leaf_index", "bigint"),
];

/// Most rows per SQLite INSERT: a power of two whose 15 columns stay under SQLite's 32,766 bound
/// parameters.
const SQLITE_ROWS: usize = 1_024;

/// How a batch is inserted, skipping decision ids already stored, so a batch retried after a
/// failure half-way (or after a commit whose answer was lost) never fails on a duplicate.
/// - PostgreSQL: one INSERT for the whole batch, whatever its size, with the rows as one bound
///   parameter, a JSON array of [`RecordRow`]s that `json_to_recordset` unpacks: one statement
///   text, prepared once, and one value to bind instead of fifteen per row.
/// - SQLite: multi-row `VALUES` in chunks whose sizes are powers of two, so only eleven statement
///   texts ever exist and each is parsed once (SQLite's own JSON functions turned out to cost more
///   per row than binding: `json_each` renders every element back to text).
fn insert_sql(backend: DbBackend, rows: usize) -> &'static str {
    static PG: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    static SQLITE: [std::sync::OnceLock<String>; 11] = [const { std::sync::OnceLock::new() }; 11];
    if backend == DbBackend::Postgres {
        return PG.get_or_init(|| {
            let list = COLUMNS.iter().map(|(n, _)| format!("\"{n}\"")).collect::<Vec<_>>().join(", ");
            let types = COLUMNS.iter().map(|(n, t)| format!("\"{n}\" {t}")).collect::<Vec<_>>().join(", ");
            format!(
                "INSERT INTO decisions ({list}) SELECT {list} FROM json_to_recordset($1::json) AS r({types}) \
                 ON CONFLICT (decision_id) DO NOTHING"
            )
        });
    }
    let shape = rows.max(1).ilog2().min(10) as usize;
    SQLITE[shape].get_or_init(|| {
        let list = COLUMNS.iter().map(|(n, _)| format!("\"{n}\"")).collect::<Vec<_>>().join(", ");
        let row = format!("({})", vec!["?"; COLUMNS.len()].join(", "));
        let values = vec![row.as_str(); 1 << shape].join(", ");
        format!("INSERT INTO decisions ({list}) VALUES {values} ON CONFLICT (decision_id) DO NOTHING")
    })
}

/// Binds one record's columns, in [`COLUMNS`] order: its texts are shared into the arguments, not
/// copied.
fn bind_row(r: RecordRow, args: &mut SqliteArguments) -> Result<()> {
    let bind = |e: sea_orm::sqlx::error::BoxDynError| Error::Internal(format!("decision record: {e}"));
    args.add(r.decision_id).map_err(bind)?;
    args.add(r.time).map_err(bind)?;
    args.add(r.caller).map_err(bind)?;
    args.add(r.seller_id).map_err(bind)?;
    args.add(r.purpose).map_err(bind)?;
    args.add(r.basis).map_err(bind)?;
    args.add(r.basis_evidence_ref).map_err(bind)?;
    args.add(r.categories).map_err(bind)?;
    args.add(r.decision).map_err(bind)?;
    args.add(r.allowed).map_err(bind)?;
    args.add(r.reasons).map_err(bind)?;
    args.add(r.revision).map_err(bind)?;
    args.add(r.policy_version).map_err(bind)?;
    args.add(r.lost_records).map_err(bind)?;
    args.add(r.leaf_index).map_err(bind)
}

/// The record as JSON with the `decisions` table's column names, so it can be inspected and put
/// back by hand.
fn record_json(r: &DecisionRecord) -> String {
    serde_json::to_string(&RecordRow::of(r)).unwrap_or_default()
}

/// Whether the database answered and refused the statement itself (a constraint, a trigger, a
/// value it will not take) rather than being unreachable or failing for reasons of its own that a
/// retry outlasts: a lock or busy database, a serialization conflict or deadlock, a shutdown, no
/// resources. Only a refusal can be a record's fault; the recorder still checks the tables are
/// there before it blames a record (a missing table is refused too, but no record is at fault).
pub fn refused_by_database(err: &Error) -> bool {
    let Error::Database(source) = err else { return false };
    let Some(DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e))) =
        source.downcast_ref::<DbErr>()
    else {
        return false;
    };
    let sea_orm::sqlx::Error::Database(db) = e.as_ref() else { return false };
    if let Some(pg) = db.try_downcast_ref::<PgDatabaseError>() {
        // SQLSTATE classes: 08 connection, 40 transaction rollback, 53 insufficient resources,
        // 57 operator intervention, 58 system error.
        return !["08", "40", "53", "57", "58"].iter().any(|class| pg.code().starts_with(class));
    }
    // SQLite (extended) result codes; the primary code is the low byte: BUSY 5, LOCKED 6, NOMEM 7,
    // IOERR 10, FULL 13, CANTOPEN 14.
    let primary = db.code().and_then(|c| c.parse::<u32>().ok()).map(|c| c & 0xff);
    !matches!(primary, Some(5 | 6 | 7 | 10 | 13 | 14))
}

fn opt<T: Vocab>(name: &str, key: &str) -> Result<Option<T>> {
    if name.is_empty() {
        return Ok(None);
    }
    T::from_name(name).map(Some).ok_or_else(|| Error::Internal(format!("stored decision {key:?}: unknown {name:?}")))
}

fn list<T: Vocab>(text: &str, key: &str) -> Result<Vec<T>> {
    text.split_whitespace()
        .map(|n| T::from_name(n).ok_or_else(|| Error::Internal(format!("stored decision {key:?}: unknown {n:?}"))))
        .collect()
}

/// A stored record in its stored form.
pub(super) fn row_of(m: decision::Model) -> RecordRow {
    RecordRow {
        leaf_index: m.leaf_index,
        decision_id: m.decision_id.into(),
        time: m.time,
        caller: m.caller.into(),
        seller_id: m.seller_id.into(),
        purpose: m.purpose.into(),
        basis: m.basis.into(),
        basis_evidence_ref: m.basis_evidence_ref.into(),
        categories: m.categories.into(),
        decision: m.decision.into(),
        allowed: m.allowed.into(),
        reasons: m.reasons.into(),
        revision: m.revision,
        policy_version: m.policy_version.into(),
        lost_records: m.lost_records,
    }
}

fn from_row(m: decision::Model) -> Result<DecisionRecord> {
    let key = m.decision_id.as_str();
    Ok(DecisionRecord {
        decision_id: m.decision_id.clone(),
        time: Timestamp::from_micros(m.time),
        caller: m.caller.as_str().into(),
        seller_id: if m.seller_id.is_empty() {
            None
        } else {
            Some(SellerId::parse(&m.seller_id).map_err(|e| Error::Internal(format!("stored decision {key:?}: {e}")))?)
        },
        purpose: opt(&m.purpose, key)?,
        basis: opt(&m.basis, key)?,
        basis_evidence_ref: m.basis_evidence_ref.clone(),
        categories: list(&m.categories, key)?,
        decision: opt(&m.decision, key)?,
        allowed: list(&m.allowed, key)?,
        outcome: serde_json::from_str::<RecordedReasons>(&m.reasons)
            .map_err(|e| Error::Internal(format!("stored decision {key:?}: {e}")))?,
        revision: m.revision,
        policy_version: m.policy_version.as_str().into(),
        lost_records: m.lost_records,
    })
}

impl Store {
    /// Inserts a batch of decision records in one transaction ([`insert_sql`]).
    /// Idempotent: a record already there (a retried batch) is skipped, never an error, so a batch
    /// that failed midway can simply be written again. With the Merkle tree on, the new records
    /// get the next leaf indexes of the decision log and their leaves go into the tree in the same
    /// transaction ([`super::decision_log`]).
    ///
    /// `fresh`: these records were never offered to the database before (a batch's first
    /// attempt), so the look-up of stored ids is skipped; should a record be there all the same,
    /// nothing is written and the error says so, and the batch is to be retried as not fresh.
    pub async fn insert_decisions(&self, records: &[DecisionRecord], fresh: bool) -> Result<()> {
        let backend = self.db.get_database_backend();
        let mut rows: Vec<RecordRow> = records.iter().map(RecordRow::of).collect();
        if backend != DbBackend::Postgres {
            return self.insert_decisions_sqlite(rows, fresh).await;
        }
        let txn = self.db.begin().await?;
        if self.merkle.load(std::sync::atomic::Ordering::Relaxed) {
            super::decision_log::place(&txn, &mut rows, fresh).await?;
        }
        let mut inserted = 0;
        if !rows.is_empty() {
            let batch = serde_json::to_string(&rows).map_err(|e| Error::Internal(format!("decision batch: {e}")))?;
            let sql = insert_sql(backend, rows.len());
            let done = txn.execute_raw(Statement::from_sql_and_values(backend, sql, [Value::from(batch)])).await?;
            inserted = done.rows_affected();
        }
        all_stored(fresh, rows.len(), inserted)?;
        txn.commit().await?;
        Ok(())
    }

    /// [`Store::insert_decisions`] on SQLite: in a transaction on the writer's own connection
    /// ([`SqliteTxn`]), so the rows' values are bound without another copy.
    async fn insert_decisions_sqlite(&self, mut rows: Vec<RecordRow>, fresh: bool) -> Result<()> {
        let txn = SqliteTxn::begin(&self.sqlite_writer, self.db.get_sqlite_connection_pool()).await?;
        if self.merkle.load(std::sync::atomic::Ordering::Relaxed) {
            super::decision_log::place(&txn, &mut rows, fresh).await?;
        }
        let given = rows.len();
        let mut inserted = 0;
        let mut left = given;
        let mut rows = rows.into_iter();
        while left > 0 {
            // The largest power of two that fits what is left, up to SQLITE_ROWS.
            let n = (1usize << left.ilog2()).min(SQLITE_ROWS);
            let mut args = SqliteArguments::default();
            args.reserve(n * COLUMNS.len(), 0);
            for row in rows.by_ref().take(n) {
                bind_row(row, &mut args)?;
            }
            inserted += txn.execute_bound(insert_sql(DbBackend::Sqlite, n), args).await?;
            left -= n;
        }
        all_stored(fresh, given, inserted)?;
        txn.commit().await?;
        Ok(())
    }

    /// Whether the decision tables can be read at all: tells "the database refuses this record"
    /// from "the tables are not there or the database is away".
    pub async fn probe_decisions(&self) -> Result<()> {
        decision::Entity::find()
            .select_only()
            .column(decision::Column::DecisionId)
            .limit(1)
            .into_tuple::<String>()
            .all(&self.db)
            .await?;
        decision_quarantine::Entity::find()
            .select_only()
            .column(decision_quarantine::Column::DecisionId)
            .limit(1)
            .into_tuple::<String>()
            .all(&self.db)
            .await?;
        Ok(())
    }

    /// Keeps a record the database refused, with the error; false if it was quarantined already.
    pub async fn quarantine_decision(&self, record: &DecisionRecord, error: &str) -> Result<bool> {
        let row = decision_quarantine::ActiveModel {
            decision_id: Val(record.decision_id.clone()),
            time: Val(record.time.as_micros()),
            quarantine_time: Val(Timestamp::now().as_micros()),
            record: Val(record_json(record)),
            error: Val(error.to_owned()),
        };
        let inserted = decision_quarantine::Entity::insert(row)
            .on_conflict_do_nothing_on([decision_quarantine::Column::DecisionId])
            .exec_without_returning(&self.db)
            .await?;
        Ok(matches!(inserted, sea_orm::TryInsertResult::Inserted(n) if n > 0))
    }

    /// Deletes up to `batch` quarantined records older than `before`; returns how many went.
    pub async fn prune_quarantine(&self, before: Timestamp, batch: u64) -> Result<u64> {
        let ids: Vec<String> = decision_quarantine::Entity::find()
            .select_only()
            .column(decision_quarantine::Column::DecisionId)
            .filter(decision_quarantine::Column::Time.lt(before.as_micros()))
            .limit(batch)
            .into_tuple()
            .all(&self.db)
            .await?;
        if ids.is_empty() {
            return Ok(0);
        }
        let res = decision_quarantine::Entity::delete_many()
            .filter(decision_quarantine::Column::DecisionId.is_in(ids))
            .exec(&self.db)
            .await?;
        Ok(res.rows_affected)
    }

    /// One decision record.
    pub async fn get_decision(&self, id: &str) -> Result<Option<DecisionRecord>> {
        decision::Entity::find_by_id(id.to_owned()).one(&self.db).await?.map(from_row).transpose()
    }

    /// Up to `limit` decision records, oldest first.
    pub async fn list_decisions(&self, f: &DecisionFilter, limit: u64) -> Result<Vec<DecisionRecord>> {
        let mut q = decision::Entity::find()
            .order_by_asc(decision::Column::Time)
            .order_by_asc(decision::Column::DecisionId)
            .limit(limit);
        if let Some(id) = &f.seller_id {
            q = q.filter(decision::Column::SellerId.eq(id.as_str()));
        }
        if let Some(d) = f.decision {
            q = q.filter(decision::Column::Decision.eq(d.name()));
        }
        if let Some(t) = f.start {
            q = q.filter(decision::Column::Time.gte(t.as_micros()));
        }
        if let Some(t) = f.end {
            q = q.filter(decision::Column::Time.lt(t.as_micros()));
        }
        if let Some((time, id)) = &f.after {
            q = q.filter(
                Condition::any().add(decision::Column::Time.gt(*time)).add(
                    Condition::all()
                        .add(decision::Column::Time.eq(*time))
                        .add(decision::Column::DecisionId.gt(id.as_str())),
                ),
            );
        }
        q.all(&self.db).await?.into_iter().map(from_row).collect()
    }

    /// Deletes up to `batch` records older than `before`; returns how many went.
    pub async fn prune_decisions(&self, before: Timestamp, batch: u64) -> Result<u64> {
        let ids: Vec<String> = decision::Entity::find()
            .select_only()
            .column(decision::Column::DecisionId)
            .filter(decision::Column::Time.lt(before.as_micros()))
            .limit(batch)
            .into_tuple()
            .all(&self.db)
            .await?;
        if ids.is_empty() {
            return Ok(0);
        }
        let res =
            decision::Entity::delete_many().filter(decision::Column::DecisionId.is_in(ids)).exec(&self.db).await?;
        Ok(res.rows_affected)
    }
}
