//! The Merkle tree over each log (RFC 6962): the hash of every perfect subtree, so that roots and
//! proofs read O(log n) rows and an append writes O(log n).
//!
//! One integer key per node, `log << 56 | level << 50 | index` (log 1 = the registry; level 0 holds
//! the leaf hashes, level k the subtrees of 2^k leaves), and the 32-byte hash as binary. The store
//! keeps every fourth level (0, 4, 8, …) and folds the others, so an append writes about 1.07
//! rows per event; with a single integer key each row is one B-tree insert (in SQLite the key is
//! the rowid itself).

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
                    .col(big_integer("id").primary_key())
                    .col(binary_len("hash", 32))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table("merkle_nodes").to_owned()).await
    }
}
