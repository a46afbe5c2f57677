//! The Merkle tree over each log (RFC 6962): the hash of every perfect subtree, so that roots and
//! proofs read O(log n) rows and an append writes O(log n). `log` names the tree (`registry`,
//! later `decisions`); `level` 0 holds the leaf hashes, level k the subtrees of 2^k leaves.

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
                    .table("merkle_nodes")
                    .col(string_len("log", 32))
                    .col(small_integer("level"))
                    .col(big_integer("idx"))
                    // Lower-case hex, like every other hash column.
                    .col(char_len("hash", 64))
                    .primary_key(Index::create().col("log").col("level").col("idx"))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table("merkle_nodes").to_owned()).await
    }
}
