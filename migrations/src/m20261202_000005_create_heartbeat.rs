//! The heartbeat the primary writes: one row holding the primary's clock and the registry's revision
//! at that moment. A replica reads it from its hot standby; how old the replayed heartbeat is tells
//! it how far behind the standby is, which "my query succeeded" never could (a standby that stopped
//! replaying still answers every query).

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
                    .table("registry_heartbeat")
                    // Always 1: every writer updates the same row, and the newest time wins.
                    .col(integer("id").primary_key())
                    // Microseconds since the Unix epoch on the database's clock, never a replica's.
                    .col(big_integer("time"))
                    .col(big_integer("revision"))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table("registry_heartbeat").to_owned()).await
    }
}
