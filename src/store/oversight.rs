//! Writes of the regulator-facing registry entities: suspension orders (PIPA 28-9) and supervision
//! evidence (PIPA 26(4)). Event-logged like every other write.

use sea_orm::{EntityTrait, QueryOrder};

use super::entities::{order, seller, supervision};
use super::{Store, rows};
use crate::domain::registry::{RegistryChange, Supervision, SupervisionFields, SuspensionOrder, SuspensionOrderFields};
use crate::domain::verify::SuspensionScope;
use crate::error::{Error, Result};

impl Store {
    /// Records a suspension order; it applies from its effective time.
    pub async fn create_suspension_order(
        &self,
        actor: &str,
        request_id: Option<&str>,
        fields: SuspensionOrderFields,
    ) -> Result<(SuspensionOrder, i64)> {
        const KIND: &str = "CreateSuspensionOrder";
        let mut w = self.begin_write(actor).await?;
        if let Some(prior) = w.replayed(request_id, KIND).await? {
            return Ok(prior);
        }
        if let SuspensionScope::Seller(id) = &fields.scope
            && seller::Entity::find_by_id(id.to_string()).one(w.tx()).await?.is_none()
        {
            return Err(Error::NotFound(format!("seller {id}")));
        }
        let order = SuspensionOrder {
            order_id: uuid::Uuid::now_v7().to_string(),
            order_ref: fields.order_ref,
            scope: fields.scope,
            categories: fields.categories,
            effective_time: fields.effective_time,
            note: fields.note,
            lifted: false,
            lift_time: None,
            lift_reason: String::new(),
            created_by: actor.to_owned(),
            revision: w.next_revision(),
        };
        order::Entity::insert(rows::order_to_row(&order)).exec_without_returning(w.tx()).await?;
        w.append(&RegistryChange::SuspensionOrderCreated(order.clone()));
        let revision = w.commit(request_id.map(|id| (id, KIND, &order))).await?;
        Ok((order, revision))
    }

    /// Lifts a suspension order: the earlier answers return from the next snapshot revision on.
    pub async fn lift_suspension_order(
        &self,
        actor: &str,
        request_id: Option<&str>,
        order_id: &str,
        reason: &str,
    ) -> Result<(SuspensionOrder, i64)> {
        const KIND: &str = "LiftSuspensionOrder";
        let mut w = self.begin_write(actor).await?;
        if let Some(prior) = w.replayed(request_id, KIND).await? {
            return Ok(prior);
        }
        let row = order::Entity::find_by_id(order_id.to_owned())
            .one(w.tx())
            .await?
            .ok_or_else(|| Error::NotFound(format!("suspension order {order_id}")))?;
        let current = rows::order_from_row(row)?;
        if current.lifted {
            return Err(Error::FailedPrecondition(format!("suspension order {order_id} is already lifted")));
        }
        let order = SuspensionOrder {
            lifted: true,
            lift_time: Some(w.time()),
            lift_reason: reason.to_owned(),
            revision: w.next_revision(),
            ..current
        };
        order::Entity::update(rows::order_to_row(&order)).exec(w.tx()).await?;
        w.append(&RegistryChange::SuspensionOrderLifted(order.clone()));
        let revision = w.commit(request_id.map(|id| (id, KIND, &order))).await?;
        Ok((order, revision))
    }

    /// Every suspension order, oldest first.
    pub async fn list_suspension_orders(&self, include_lifted: bool) -> Result<Vec<SuspensionOrder>> {
        let rows = order::Entity::find().order_by_asc(order::Column::Revision).all(&self.db).await?;
        let orders = rows.into_iter().map(rows::order_from_row).collect::<Result<Vec<_>>>()?;
        Ok(orders.into_iter().filter(|o| include_lifted || !o.lifted).collect())
    }

    /// Records supervision evidence for a seller.
    pub async fn record_supervision(
        &self,
        actor: &str,
        request_id: Option<&str>,
        fields: SupervisionFields,
    ) -> Result<(Supervision, i64)> {
        const KIND: &str = "RecordSupervision";
        let mut w = self.begin_write(actor).await?;
        if let Some(prior) = w.replayed(request_id, KIND).await? {
            return Ok(prior);
        }
        if seller::Entity::find_by_id(fields.seller_id.to_string()).one(w.tx()).await?.is_none() {
            return Err(Error::NotFound(format!("seller {}", fields.seller_id)));
        }
        let record = Supervision {
            supervision_id: uuid::Uuid::now_v7().to_string(),
            seller_id: fields.seller_id,
            kind: fields.kind,
            time: fields.time,
            evidence_sha256: fields.evidence_sha256,
            note: fields.note,
            recorded_by: actor.to_owned(),
            revision: w.next_revision(),
        };
        supervision::Entity::insert(rows::supervision_to_row(&record)).exec_without_returning(w.tx()).await?;
        w.append(&RegistryChange::SupervisionRecorded(record.clone()));
        let revision = w.commit(request_id.map(|id| (id, KIND, &record))).await?;
        Ok((record, revision))
    }
}
