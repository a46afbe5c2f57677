//! Idempotency keys scoped to the caller and the RPC, with a digest of the request. Before, a key was
//! looked up by its id alone, so two callers (or two different requests) sharing a `request_id` got
//! each other's answers and the second write was silently dropped. The old rows cannot be scoped
//! after the fact (they recorded no caller), and they only ever served retries within minutes, so
//! the table is replaced rather than migrated.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table("applied_requests").to_owned()).await?;
        manager
            .create_table(
                Table::create()
                    .table("applied_requests")
                    .col(string_len("caller", 256))
                    .col(string_len("rpc", 64))
                    .col(string_len("request_id", 128))
                    // SHA-256 of the request as validated: the same key with another request is refused.
                    .col(char_len("digest", 64))
                    .col(big_integer("revision"))
                    .col(text("result"))
                    .col(big_integer("time"))
                    .primary_key(Index::create().col("caller").col("rpc").col("request_id"))
                    .to_owned(),
            )
            .await?;
        // Pruning deletes by age.
        manager
            .create_index(
                Index::create().name("applied_requests_time").table("applied_requests").col("time").to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table("applied_requests").to_owned()).await?;
        manager
            .create_table(
                Table::create()
                    .table("applied_requests")
                    .col(string_len("request_id", 128).primary_key())
                    .col(string_len("kind", 64))
                    .col(big_integer("revision"))
                    .col(text("result"))
                    .col(big_integer("time"))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }
}
