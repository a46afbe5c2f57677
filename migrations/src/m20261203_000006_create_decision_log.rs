//! Decision records become a log of their own (`<origin>/decisions`), provable like the registry:
//! each record gets a leaf index, allocated from one head row under its lock, and its leaf goes into
//! `merkle_nodes` as log 2 in the same transaction as the record.
//!
//! `leaf_index` is NULL for records written before this migration (or while checkpoints are off);
//! the service gives them indexes at its next start with checkpoints on, oldest first.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(Table::alter().table("decisions").add_column(big_integer_null("leaf_index")).to_owned())
            .await?;
        manager
            .create_index(
                Index::create().name("decisions_leaf_index").table("decisions").col("leaf_index").unique().to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("decision_log_head")
                    // Always 1: every recorder allocates leaf indexes from the same row.
                    .col(integer("id").primary_key())
                    // Leaves in the decision log: the next record's leaf index.
                    .col(big_integer("size"))
                    .to_owned(),
            )
            .await?;
        manager
            .exec_stmt(
                Query::insert()
                    .into_table("decision_log_head")
                    .columns(["id", "size"])
                    .values_panic([1.into(), 0i64.into()])
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table("decision_log_head").to_owned()).await?;
        manager.drop_index(Index::drop().name("decisions_leaf_index").table("decisions").to_owned()).await?;
        manager.alter_table(Table::alter().table("decisions").drop_column("leaf_index").to_owned()).await
    }
}
