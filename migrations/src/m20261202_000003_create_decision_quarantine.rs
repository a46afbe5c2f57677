//! Decision records the database refused: kept aside, with the error, so one bad record never
//! blocks the recorder and is still there for an operator to inspect and replay.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("decision_quarantine")
                    .col(string_len("decision_id", 64).primary_key())
                    // The decision's own time: retention counts from it, as for `decisions`.
                    .col(big_integer("time"))
                    .col(big_integer("quarantine_time"))
                    // The record as JSON, in the `decisions` table's columns.
                    .col(text("record"))
                    // What the database said when it refused the record.
                    .col(text("error"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create().name("decision_quarantine_time").table("decision_quarantine").col("time").to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table("decision_quarantine").to_owned()).await
    }
}
