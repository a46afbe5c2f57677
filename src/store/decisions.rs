//! The decision records: written in batches off the hot path, listed and fetched by auditors, and
//! pruned after the retention period.

use sea_orm::{ActiveValue::Set as Val, ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use super::entities::decision;
use super::{Store, rows};
use crate::domain::record::{DecisionRecord, RecordedReasons};
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

fn to_row(r: &DecisionRecord) -> decision::ActiveModel {
    decision::ActiveModel {
        decision_id: Val(r.decision_id.clone()),
        time: Val(r.time.as_micros()),
        caller: Val(r.caller.clone()),
        seller_id: Val(r.seller_id.as_ref().map(ToString::to_string).unwrap_or_default()),
        purpose: Val(r.purpose.map(|p| p.name()).unwrap_or_default().to_owned()),
        basis: Val(r.basis.map(|b| b.name()).unwrap_or_default().to_owned()),
        basis_evidence_ref: Val(r.basis_evidence_ref.clone()),
        categories: Val(rows::names(&r.categories)),
        decision: Val(r.decision.map(|d| d.name()).unwrap_or_default().to_owned()),
        allowed: Val(rows::names(&r.allowed)),
        reasons: Val(serde_json::to_string(&r.outcome).unwrap_or_default()),
        revision: Val(r.revision),
        policy_version: Val(r.policy_version.clone()),
        lost_records: Val(r.lost_records),
    }
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

fn from_row(m: decision::Model) -> Result<DecisionRecord> {
    let key = m.decision_id.as_str();
    Ok(DecisionRecord {
        decision_id: m.decision_id.clone(),
        time: Timestamp::from_micros(m.time),
        caller: m.caller.clone(),
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
        policy_version: m.policy_version.clone(),
        lost_records: m.lost_records,
    })
}

impl Store {
    /// Inserts a batch of decision records.
    pub async fn insert_decisions(&self, records: &[DecisionRecord]) -> Result<()> {
        for chunk in records.chunks(200) {
            decision::Entity::insert_many(chunk.iter().map(to_row).collect::<Vec<_>>())
                .exec_without_returning(&self.db)
                .await?;
        }
        Ok(())
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
