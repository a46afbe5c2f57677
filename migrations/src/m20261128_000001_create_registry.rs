//! The registry: current-state tables for sellers and attestations, the append-only hash-chained
//! event log, the chain head (the row every write locks, so commit order equals revision order), and
//! the record of applied request ids (a retried write is applied once).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("sellers")
                    .col(string_len("seller_id", 64).primary_key())
                    .col(string_len("legal_name", 512))
                    .col(char_len("country", 2))
                    .col(string_len("status", 32))
                    .col(string_len("role", 32))
                    .col(string_len("contact_email", 320))
                    .col(string_len("privacy_contact", 512))
                    .col(big_integer("revision"))
                    .col(big_integer("create_time"))
                    .col(big_integer("update_time"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create().name("sellers_country_status").table("sellers").col("country").col("status").to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table("attestations")
                    .col(string_len("attestation_id", 64).primary_key())
                    .col(string_len("seller_id", 64))
                    .col(string_len("contract_ref", 256))
                    .col(char_len("document_sha256", 64))
                    // Space-separated vocabulary names: readable in the database, portable across both.
                    .col(text("clauses"))
                    .col(text("purposes"))
                    .col(text("categories"))
                    .col(big_integer("signed_time"))
                    .col(big_integer("effective_time"))
                    .col(big_integer("expire_time"))
                    .col(string_len("signatory", 512))
                    .col(integer("retention_days"))
                    .col(string_len("state", 32))
                    .col(string_len("revoke_reason", 1024))
                    .col(string_len("submitted_by", 256))
                    .col(big_integer("revision"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("attestations_seller")
                            .from("attestations", "seller_id")
                            .to("sellers", "seller_id"),
                    )
                    .to_owned(),
            )
            .await?;
        // One signed document is attested once per seller: the natural key that makes re-imports no-ops.
        manager
            .create_index(
                Index::create()
                    .name("attestations_seller_document")
                    .table("attestations")
                    .col("seller_id")
                    .col("document_sha256")
                    .unique()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table("registry_events")
                    .col(big_integer("revision").primary_key())
                    .col(big_integer("time"))
                    .col(string_len("actor", 256))
                    .col(string_len("kind", 64))
                    .col(string_len("seller_id", 64))
                    .col(text("payload"))
                    .col(char_len("prev_hash", 64))
                    .col(char_len("hash", 64))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("registry_events_seller")
                    .table("registry_events")
                    .col("seller_id")
                    .col("revision")
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table("registry_head")
                    .col(integer("id").primary_key())
                    .col(big_integer("revision"))
                    .col(char_len("hash", 64))
                    .to_owned(),
            )
            .await?;
        manager
            .exec_stmt(
                Query::insert()
                    .into_table("registry_head")
                    .columns(["id", "revision", "hash"])
                    .values_panic([1.into(), 0i64.into(), GENESIS_HASH.into()])
                    .to_owned(),
            )
            .await?;

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

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in ["applied_requests", "registry_head", "registry_events", "attestations", "sellers"] {
            manager.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}
