//! Writes of the regulator-facing registry entities: suspension orders (PIPA 28-9) and supervision
//! evidence (PIPA 26(4)). Event-logged like every other write.

use sea_orm::{EntityTrait, QueryOrder};

use super::entities::{order, supervision};
use super::log::RequestKey;
use super::{Store, rows};
use crate::domain::fold::FoldTarget;
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
        let key = RequestKey::new(actor, "CreateSuspensionOrder", request_id, &fields);
        let mut w = self.begin_write(actor).await?;
        if let Some(prior) = w.replayed(key.as_ref()).await? {
            return Ok(prior);
        }
        if let SuspensionScope::Seller(id) = &fields.scope
            && !w.fold_sellers(&[id.as_str()]).await?.has_seller(id)
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
        let revision = w.commit(key.as_ref().map(|k| (k, &order))).await?;
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
        let key = RequestKey::new(actor, "LiftSuspensionOrder", request_id, &(order_id, reason));
        let mut w = self.begin_write(actor).await?;
        if let Some(prior) = w.replayed(key.as_ref()).await? {
            return Ok(prior);
        }
        let not_found = || Error::NotFound(format!("suspension order {order_id}"));
        // The table says where the order is filed (under its seller, or under none for a country);
        // the log says what it is.
        let row = order::Entity::find_by_id(order_id.to_owned()).one(w.tx()).await?.ok_or_else(not_found)?;
        let current = w
            .fold_sellers(&[row.seller_id.as_str()])
            .await?
            .orders
            .into_iter()
            .find(|o| o.order_id == order_id)
            .ok_or_else(not_found)?;
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
        let revision = w.commit(key.as_ref().map(|k| (k, &order))).await?;
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
        let key = RequestKey::new(actor, "RecordSupervision", request_id, &fields);
        let mut w = self.begin_write(actor).await?;
        if let Some(prior) = w.replayed(key.as_ref()).await? {
            return Ok(prior);
        }
        if !w.fold_sellers(&[fields.seller_id.as_str()]).await?.has_seller(&fields.seller_id) {
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
        let revision = w.commit(key.as_ref().map(|k| (k, &record))).await?;
        Ok((record, revision))
    }
}
