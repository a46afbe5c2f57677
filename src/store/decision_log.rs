//! The decision log: decision records as a Merkle log of their own (`<origin>/decisions`).
//!
//! A batch of records takes the next leaf indexes from `decision_log_head` and appends their
//! leaves to `merkle_nodes` (log 2) in the transaction that inserts them ([`place`]). The head row
//! is written first, so the transaction holds its lock (PostgreSQL: the row lock; SQLite: the
//! database write lock) before it reads anything: two recorders — two servers over one database —
//! never hand out the same index, and indexes have no gaps.
//!
//! Records are pruned after their retention; their leaves stay in the tree, so the roots signed
//! before stay provable and an export says which leaves no longer have a record.

use std::collections::HashSet;

use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Statement,
    TransactionTrait, Value,
};

use super::Store;
use super::decisions::row_of;
use super::entities::decision;
use super::merkle::{DECISIONS_LOG, append_exact};
use crate::domain::merkle::Hash;
use crate::domain::record::RecordRow;
use crate::error::{Error, Result};

/// Records given leaf indexes per transaction while backfilling.
const BACKFILL_PAGE: u64 = 1_000;

/// The `decision_log_head` table (its schema is the migration's).
pub(crate) mod head {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "decision_log_head")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: i32,
        pub size: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

fn index_of(size: i64) -> Result<u64> {
    u64::try_from(size).map_err(|_| Error::Internal(format!("decision_log_head holds a negative size {size}")))
}

/// Takes the head row's lock and reads the log's size.
async fn lock_head(txn: &impl ConnectionTrait) -> Result<u64> {
    head::Entity::update_many()
        .col_expr(head::Column::Size, Expr::col(head::Column::Size))
        .filter(head::Column::Id.eq(1))
        .exec(txn)
        .await?;
    let head = head::Entity::find_by_id(1)
        .one(txn)
        .await?
        .ok_or_else(|| Error::Internal("the decision log head row is missing: run `safeguard migrate`".into()))?;
    index_of(head.size)
}

async fn set_head(txn: &impl ConnectionTrait, size: u64) -> Result<()> {
    let size = i64::try_from(size).map_err(|_| Error::Internal("the decision log outgrew a BIGINT".into()))?;
    head::Entity::update_many()
        .col_expr(head::Column::Size, Expr::value(size))
        .filter(head::Column::Id.eq(1))
        .exec(txn)
        .await?;
    Ok(())
}

/// The leaf of a row that has its index.
fn leaf_of(row: &RecordRow) -> Result<Hash> {
    row.leaf_hash().ok_or_else(|| Error::Internal(format!("decision {} has no leaf index", row.decision_id)))
}

/// Which of `rows` are stored already: one query, the ids bound as one JSON array.
async fn stored_ids(txn: &impl ConnectionTrait, rows: &[RecordRow]) -> Result<HashSet<String>> {
    let backend = txn.get_database_backend();
    let ids: Vec<&str> = rows.iter().map(|r| &*r.decision_id).collect();
    let ids = serde_json::to_string(&ids).map_err(|e| Error::Internal(format!("decision ids: {e}")))?;
    let sql = match backend {
        DbBackend::Postgres => {
            "SELECT decision_id FROM decisions WHERE decision_id IN (SELECT json_array_elements_text($1::json))"
        }
        _ => "SELECT decision_id FROM decisions WHERE decision_id IN (SELECT value FROM json_each(?))",
    };
    let found = txn.query_all_raw(Statement::from_sql_and_values(backend, sql, [Value::from(ids)])).await?;
    found.iter().map(|row| Ok(row.try_get::<String>("", "decision_id")?)).collect()
}

/// Appends `rows` to the decision log inside `txn`: drops those already stored (a retried batch
/// whose commit was answered too late), gives the rest the next leaf indexes in order, adds their
/// leaves to the tree and moves the head. The caller inserts the rows in the same transaction.
///
/// `fresh` rows were never offered to the database before, so the look-up of stored ids is
/// skipped; the caller then checks that the database stored every one of them, and rolls back if
/// not ([`all_stored`]), so a row already there never gets a second leaf.
pub(super) async fn place(txn: &impl ConnectionTrait, rows: &mut Vec<RecordRow>, fresh: bool) -> Result<()> {
    let first = lock_head(txn).await?;
    if !fresh {
        let stored = stored_ids(txn, rows).await?;
        let mut seen = HashSet::new();
        rows.retain(|r| !stored.contains(&*r.decision_id) && seen.insert(r.decision_id.clone()));
    }
    if rows.is_empty() {
        return Ok(());
    }
    let mut leaves = Vec::with_capacity(rows.len());
    for (i, row) in rows.iter_mut().enumerate() {
        row.leaf_index = Some(i64::try_from(first + i as u64).map_err(|_| Error::Internal("leaf index".into()))?);
        leaves.push(leaf_of(row)?);
    }
    append_exact(txn, DECISIONS_LOG, first, &leaves).await?;
    set_head(txn, first + leaves.len() as u64).await
}

/// A batch of fresh rows must have stored every row: one skipped as a duplicate would leave a leaf
/// without its row. The error makes the caller roll back, and the writer retry the batch with the
/// look-up of stored ids. Rows that are not fresh were looked up already and may be skipped.
pub(super) fn all_stored(fresh: bool, given: usize, inserted: u64) -> Result<()> {
    let given = given as u64;
    if !fresh || inserted == given {
        return Ok(());
    }
    Err(Error::Internal(format!(
        "{} of {given} decision records were stored already; the batch is retried with a look-up of stored ids",
        given - inserted.min(given)
    )))
}

impl Store {
    /// Records in the decision log.
    pub async fn decision_log_size(&self) -> Result<u64> {
        let head = head::Entity::find_by_id(1)
            .one(&self.db)
            .await?
            .ok_or_else(|| Error::Internal("the decision log head row is missing: run `safeguard migrate`".into()))?;
        index_of(head.size)
    }

    /// Gives every record without a leaf index one, oldest first (records written before the
    /// decision log existed, or while checkpoints were off); returns how many it placed.
    pub async fn sync_decision_log(&self) -> Result<u64> {
        let mut placed = 0;
        loop {
            let txn = self.db.begin().await?;
            let first = lock_head(&txn).await?;
            let page = decision::Entity::find()
                .filter(decision::Column::LeafIndex.is_null())
                .order_by_asc(decision::Column::Time)
                .order_by_asc(decision::Column::DecisionId)
                .limit(BACKFILL_PAGE)
                .all(&txn)
                .await?;
            if page.is_empty() {
                txn.commit().await?;
                return Ok(placed);
            }
            let mut leaves = Vec::with_capacity(page.len());
            for (i, model) in page.into_iter().enumerate() {
                let mut row = row_of(model);
                let index = i64::try_from(first + i as u64).map_err(|_| Error::Internal("leaf index".into()))?;
                row.leaf_index = Some(index);
                leaves.push(leaf_of(&row)?);
                decision::Entity::update_many()
                    .col_expr(decision::Column::LeafIndex, Expr::value(index))
                    .filter(decision::Column::DecisionId.eq(&*row.decision_id))
                    .filter(decision::Column::LeafIndex.is_null())
                    .exec(&txn)
                    .await?;
            }
            append_exact(&txn, DECISIONS_LOG, first, &leaves).await?;
            set_head(&txn, first + leaves.len() as u64).await?;
            txn.commit().await?;
            placed += leaves.len() as u64;
        }
    }

    /// One record in its stored form, with its leaf index.
    pub async fn decision_row(&self, id: &str) -> Result<Option<RecordRow>> {
        Ok(decision::Entity::find_by_id(id.to_owned()).one(&self.db).await?.map(row_of))
    }

    /// Up to `limit` records of the decision log with leaf indexes `from` and up, by index.
    pub async fn decision_rows_from(&self, from: u64, limit: u64) -> Result<Vec<RecordRow>> {
        let from = i64::try_from(from).map_err(|_| Error::invalid("leaf_index", "too large"))?;
        let rows = decision::Entity::find()
            .filter(decision::Column::LeafIndex.gte(from))
            .order_by_asc(decision::Column::LeafIndex)
            .limit(limit)
            .all(&self.db)
            .await?;
        Ok(rows.into_iter().map(row_of).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_without_an_index_has_no_leaf() {
        let row = RecordRow {
            leaf_index: None,
            decision_id: "d".into(),
            time: 0,
            caller: "".into(),
            seller_id: "".into(),
            purpose: "".into(),
            basis: "".into(),
            basis_evidence_ref: "".into(),
            categories: "".into(),
            decision: "".into(),
            allowed: "".into(),
            reasons: "".into(),
            revision: 0,
            policy_version: "".into(),
            lost_records: 0,
        };
        assert!(leaf_of(&row).is_err());
        assert!(leaf_of(&RecordRow { leaf_index: Some(0), ..row }).is_ok());
    }
}
