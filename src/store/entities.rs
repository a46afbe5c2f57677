//! sea-orm entities: the tables as the store reads and writes them. The schema itself is defined by
//! the `migrations` crate; these mirror it and never create it.

/// Current state of each seller.
pub mod seller {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "sellers")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub seller_id: String,
        pub legal_name: String,
        pub country: String,
        pub status: String,
        pub role: String,
        pub contact_email: String,
        pub privacy_contact: String,
        pub revision: i64,
        pub create_time: i64,
        pub update_time: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Current state of each attestation.
pub mod attestation {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "attestations")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub attestation_id: String,
        pub seller_id: String,
        pub contract_ref: String,
        pub document_sha256: String,
        pub clauses: String,
        pub purposes: String,
        pub categories: String,
        pub signed_time: i64,
        pub effective_time: i64,
        pub expire_time: i64,
        pub signatory: String,
        pub retention_days: i32,
        pub state: String,
        pub revoke_reason: String,
        pub submitted_by: String,
        pub revision: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// The append-only, hash-chained log of every registry change.
pub mod event {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "registry_events")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub revision: i64,
        pub time: i64,
        pub actor: String,
        pub kind: String,
        pub seller_id: String,
        pub payload: String,
        pub prev_hash: String,
        pub hash: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// The one-row head of the chain: the latest revision and hash. Every write locks it first.
pub mod head {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "registry_head")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: i32,
        pub revision: i64,
        pub hash: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// The request ids of applied writes, with their results, so a retried write answers as the first.
pub mod applied_request {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "applied_requests")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub caller: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub rpc: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub request_id: String,
        pub digest: String,
        pub revision: i64,
        pub result: String,
        pub time: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Suspension orders (PIPA 28-9).
pub mod order {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "suspension_orders")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub order_id: String,
        pub order_ref: String,
        pub seller_id: String,
        pub country: String,
        pub categories: String,
        pub effective_time: i64,
        pub note: String,
        pub lifted: bool,
        pub lift_time: Option<i64>,
        pub lift_reason: String,
        pub created_by: String,
        pub revision: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Supervision evidence (PIPA 26(4)).
pub mod supervision {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "supervisions")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub supervision_id: String,
        pub seller_id: String,
        pub kind: String,
        pub time: i64,
        pub evidence_sha256: String,
        pub note: String,
        pub recorded_by: String,
        pub revision: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// The record of every decision made.
pub mod decision {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "decisions")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub decision_id: String,
        pub time: i64,
        pub caller: String,
        pub seller_id: String,
        pub purpose: String,
        pub basis: String,
        pub basis_evidence_ref: String,
        pub categories: String,
        pub decision: String,
        pub allowed: String,
        pub reasons: String,
        pub revision: i64,
        pub policy_version: String,
        pub lost_records: i64,
        /// The record's position in the decision log (NULL until it has one).
        pub leaf_index: Option<i64>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Decision records the database refused, kept aside with the error.
pub mod decision_quarantine {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "decision_quarantine")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub decision_id: String,
        pub time: i64,
        pub quarantine_time: i64,
        pub record: String,
        pub error: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
