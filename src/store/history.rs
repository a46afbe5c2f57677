//! Reads of the event log for auditors: the filtered change feed, a seller's history, the revision
//! in force at a time, the events a replay needs, and the check of the whole hash chain.

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use super::entities::event;
use super::{Store, StoredEvent};
use crate::domain::registry::EventKind;
use crate::domain::replay::{ChainReport, ChainVerifier};
use crate::domain::{SellerId, Timestamp};
use crate::error::Result;

/// Filters of the change feed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    /// Only events with a greater revision.
    pub after: i64,
    pub seller_id: Option<SellerId>,
    pub kind: Option<String>,
    pub actor: Option<String>,
    /// Inclusive.
    pub start: Option<Timestamp>,
    /// Exclusive.
    pub end: Option<Timestamp>,
}

impl Store {
    /// Up to `limit` events matching `f`, oldest first.
    pub async fn list_events(&self, f: &EventFilter, limit: u64) -> Result<Vec<StoredEvent>> {
        let mut q = event::Entity::find()
            .filter(event::Column::Revision.gt(f.after))
            .order_by_asc(event::Column::Revision)
            .limit(limit);
        if let Some(id) = &f.seller_id {
            q = q.filter(event::Column::SellerId.eq(id.as_str()));
        }
        if let Some(kind) = &f.kind {
            q = q.filter(event::Column::Kind.eq(kind.as_str()));
        }
        if let Some(actor) = &f.actor {
            q = q.filter(event::Column::Actor.eq(actor.as_str()));
        }
        if let Some(t) = f.start {
            q = q.filter(event::Column::Time.gte(t.as_micros()));
        }
        if let Some(t) = f.end {
            q = q.filter(event::Column::Time.lt(t.as_micros()));
        }
        Ok(q.all(&self.db).await?.into_iter().map(StoredEvent::from).collect())
    }

    /// Every event that changed the seller, its attestations or its supervision evidence, oldest
    /// first (suspension orders are not the seller's own history).
    pub async fn seller_history(&self, id: &SellerId) -> Result<Vec<StoredEvent>> {
        let rows = event::Entity::find()
            .filter(event::Column::SellerId.eq(id.as_str()))
            .filter(event::Column::Kind.is_in(EventKind::sellers_own_names()))
            .order_by_asc(event::Column::Revision)
            .all(&self.db)
            .await?;
        Ok(rows.into_iter().map(StoredEvent::from).collect())
    }

    /// The last revision written at or before `t`; 0 if none was.
    pub async fn revision_at(&self, t: Timestamp) -> Result<i64> {
        let revision: Option<i64> = event::Entity::find()
            .select_only()
            .column(event::Column::Revision)
            .filter(event::Column::Time.lte(t.as_micros()))
            .order_by_desc(event::Column::Revision)
            .limit(1)
            .into_tuple()
            .one(&self.db)
            .await?;
        Ok(revision.unwrap_or(0))
    }

    /// What a replay of one seller up to `revision` needs, oldest first: every event filed under the
    /// seller (its record, attestations, supervision and the orders naming it) and, with
    /// `country_orders`, the country-wide suspension orders (the only events filed under no seller).
    /// Both are served by the (seller_id, revision) index.
    pub async fn replay_events(&self, id: &SellerId, revision: i64, country_orders: bool) -> Result<Vec<StoredEvent>> {
        let sellers: Vec<&str> = if country_orders { vec![id.as_str(), ""] } else { vec![id.as_str()] };
        let rows = event::Entity::find()
            .filter(event::Column::SellerId.is_in(sellers))
            .filter(event::Column::Revision.lte(revision))
            .order_by_asc(event::Column::Revision)
            .all(&self.db)
            .await?;
        Ok(rows.into_iter().map(StoredEvent::from).collect())
    }

    /// Recomputes the hash chain over the whole log, `page` events per query, and compares its end
    /// with the head row. Stops at the first break.
    pub async fn verify_chain(&self, page: u64) -> Result<ChainReport> {
        let mut verifier = ChainVerifier::new();
        let mut after = 0;
        let mut looked_again = false;
        loop {
            let events = self.events_after(after, page).await?;
            if events.is_empty() {
                let (revision, hash) = self.head().await?;
                // A write may have committed since the last page: the head and its events commit
                // together, so once the head shows it, one more query sees its events.
                if revision > after && !looked_again {
                    looked_again = true;
                    continue;
                }
                return Ok(verifier.finish(revision, &hash));
            }
            looked_again = false;
            for e in &events {
                if !verifier.check(&e.logged()) {
                    let (revision, hash) = self.head().await?;
                    return Ok(verifier.finish(revision, &hash));
                }
            }
            after = events.last().map_or(after, |e| e.revision);
        }
    }
}
