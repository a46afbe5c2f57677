//! The auditor's side: suspension orders (PIPA 28-9), supervision evidence (PIPA 26(4)) and the
//! record of every decision made.

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
                    .table("suspension_orders")
                    .col(string_len("order_id", 64).primary_key())
                    .col(string_len("order_ref", 256))
                    // Exactly one of seller_id and country is non-empty.
                    .col(string_len("seller_id", 64))
                    .col(string_len("country", 2))
                    .col(text("categories"))
                    .col(big_integer("effective_time"))
                    .col(string_len("note", 1024))
                    .col(boolean("lifted"))
                    .col(big_integer_null("lift_time"))
                    .col(string_len("lift_reason", 1024))
                    .col(string_len("created_by", 256))
                    .col(big_integer("revision"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("supervisions")
                    .col(string_len("supervision_id", 64).primary_key())
                    .col(string_len("seller_id", 64))
                    .col(string_len("kind", 32))
                    .col(big_integer("time"))
                    .col(char_len("evidence_sha256", 64))
                    .col(string_len("note", 1024))
                    .col(string_len("recorded_by", 256))
                    .col(big_integer("revision"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("supervisions_seller")
                            .from("supervisions", "seller_id")
                            .to("sellers", "seller_id"),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(Index::create().name("supervisions_seller").table("supervisions").col("seller_id").to_owned())
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("decisions")
                    .col(string_len("decision_id", 64).primary_key())
                    .col(big_integer("time"))
                    .col(string_len("caller", 256))
                    .col(string_len("seller_id", 64))
                    .col(string_len("purpose", 32))
                    .col(string_len("basis", 64))
                    .col(string_len("basis_evidence_ref", 256))
                    .col(text("categories"))
                    .col(string_len("decision", 32))
                    .col(text("allowed"))
                    // The denials and reasons as JSON.
                    .col(text("reasons"))
                    .col(big_integer("revision"))
                    .col(string_len("policy_version", 128))
                    .col(big_integer("lost_records"))
                    .to_owned(),
            )
            .await?;
        manager.create_index(Index::create().name("decisions_time").table("decisions").col("time").to_owned()).await?;
        manager
            .create_index(
                Index::create()
                    .name("decisions_seller_time")
                    .table("decisions")
                    .col("seller_id")
                    .col("time")
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in ["decisions", "supervisions", "suspension_orders"] {
            manager.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}
