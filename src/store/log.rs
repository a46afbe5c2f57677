//! The write path of the event log. A [`WriteTx`] is one database transaction that first locks the
//! chain head, so writers — in this process or in any replica over the same database — queue there and
//! revisions are assigned in commit order: a follower reading `revision > n` can never miss a revision
//! that commits late. Every change appended gets the next revision and a hash over the previous one;
//! events, state and head are committed together or not at all.

use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set as Val, ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter, TransactionTrait};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::MutexGuard;

use super::Store;
use super::entities::{applied_request, event, head};
use crate::domain::chain::{EventFields, event_hash};
use crate::domain::registry::RegistryChange;
use crate::domain::{SellerId, Timestamp};
use crate::error::{Error, Result};

/// Rows per multi-row INSERT: well under SQLite's and PostgreSQL's bound-parameter limits.
const INSERT_CHUNK: usize = 500;

/// An idempotency key: a `request_id` as one caller sent it to one RPC, with a digest of what it
/// asked for. Scoping by caller keeps two clients that both count from "1" apart; the digest tells
/// a retry (same request) from a reuse (another request under the same id).
#[derive(Debug, Clone)]
pub struct RequestKey<'a> {
    pub caller: &'a str,
    pub rpc: &'static str,
    pub id: &'a str,
    /// SHA-256 (hex) of the request as validated.
    pub digest: String,
}

impl<'a> RequestKey<'a> {
    /// The key of `request` sent by `caller` to `rpc` with `id`; `None` without a request id.
    pub fn new(caller: &'a str, rpc: &'static str, id: Option<&'a str>, request: &impl Serialize) -> Option<Self> {
        use sha2::Digest;
        let id = id?;
        // Serialising plain validated structs cannot fail; an empty digest would only make a
        // retry look like a reuse, which fails closed.
        let bytes = serde_json::to_vec(request).unwrap_or_default();
        Some(Self { caller, rpc, id, digest: hex::encode(sha2::Sha256::digest(&bytes)) })
    }
}

/// One registry write in progress.
pub struct WriteTx<'s> {
    tx: DatabaseTransaction,
    _serial: MutexGuard<'s, ()>,
    store: &'s Store,
    revision: i64,
    hash: String,
    actor: String,
    time: Timestamp,
    events: Vec<event::ActiveModel>,
}

impl Store {
    /// Begins a write by `actor`, holding the chain head until commit or drop.
    pub(crate) async fn begin_write(&self, actor: &str) -> Result<WriteTx<'_>> {
        // In-process writers queue here rather than on the database lock, which SQLite only polls.
        let serial = self.write_serial.lock().await;
        let tx = self.db.begin().await?;
        // The first statement writes the head row: in PostgreSQL that takes the row lock, in SQLite
        // the database write lock, before anything is read, so no writer works from a stale head.
        head::Entity::update_many()
            .col_expr(head::Column::Revision, Expr::col(head::Column::Revision))
            .filter(head::Column::Id.eq(1))
            .exec(&tx)
            .await?;
        let current = head::Entity::find_by_id(1)
            .one(&tx)
            .await?
            .ok_or_else(|| Error::Internal("the registry head row is missing: run `safeguard migrate`".into()))?;
        Ok(WriteTx {
            tx,
            _serial: serial,
            store: self,
            revision: current.revision,
            hash: current.hash,
            actor: actor.to_owned(),
            time: Timestamp::now(),
            events: Vec::new(),
        })
    }
}

impl<'s> WriteTx<'s> {
    /// The transaction, for reads and state writes.
    pub fn tx(&self) -> &DatabaseTransaction {
        &self.tx
    }

    /// The revision the next appended change will get.
    pub fn next_revision(&self) -> i64 {
        self.revision + 1
    }

    /// The time recorded for this write.
    pub fn time(&self) -> Timestamp {
        self.time
    }

    /// Who is writing.
    pub fn actor(&self) -> &str {
        &self.actor
    }

    /// Appends one change to the log; it is stored at commit.
    pub fn append(&mut self, change: &RegistryChange) {
        let revision = self.revision + 1;
        let payload = change.payload();
        let fields = EventFields {
            revision,
            time_micros: self.time.as_micros(),
            actor: &self.actor,
            kind: change.kind().name(),
            seller_id: change.seller_id().map_or("", SellerId::as_str),
            payload: &payload,
        };
        let hash = event_hash(&self.hash, &fields);
        self.events.push(event::ActiveModel {
            revision: Val(revision),
            time: Val(fields.time_micros),
            actor: Val(self.actor.clone()),
            kind: Val(change.kind().name().to_owned()),
            seller_id: Val(fields.seller_id.to_owned()),
            payload: Val(payload.clone()),
            prev_hash: Val(std::mem::replace(&mut self.hash, hash.clone())),
            hash: Val(hash),
        });
        self.revision = revision;
    }

    /// The stored answer of an earlier write with the same idempotency key, if there was one in
    /// the window. The same key with a different request is refused and writes nothing: answering
    /// it with the first request's result would acknowledge a write that never happened.
    pub async fn replayed<T: DeserializeOwned>(&self, key: Option<&RequestKey<'_>>) -> Result<Option<(T, i64)>> {
        let Some(key) = key else { return Ok(None) };
        let pk = (key.caller.to_owned(), key.rpc.to_owned(), key.id.to_owned());
        let Some(prior) = applied_request::Entity::find_by_id(pk.clone()).one(&self.tx).await? else {
            return Ok(None);
        };
        if prior.time < self.store.request_ids_expire_before(self.time).as_micros() {
            // Expired but not yet pruned: the key is free again.
            applied_request::Entity::delete_by_id(pk).exec(&self.tx).await?;
            return Ok(None);
        }
        if prior.digest != key.digest {
            return Err(Error::FailedPrecondition(format!(
                "request_id {:?} was already used by this caller for a different {} request; use a new request_id for a new write",
                key.id, key.rpc
            )));
        }
        let result = serde_json::from_str(&prior.result)
            .map_err(|e| Error::Internal(format!("stored result of request {:?} does not parse: {e}", key.id)))?;
        Ok(Some((result, prior.revision)))
    }

    /// Stores the appended events, moves the head, records `request` (id, kind, result) and commits.
    /// Returns the revision the registry is at after the write.
    pub async fn commit<T: Serialize>(self, request: Option<(&RequestKey<'_>, &T)>) -> Result<i64> {
        let WriteTx { tx, _serial, store, revision, hash, time, events, .. } = self;
        let wrote = !events.is_empty();
        // The Merkle leaves go in with the events, so the tree never disagrees with the log.
        super::merkle::append_registry(store, &tx, &events).await?;
        let mut events = events.into_iter().peekable();
        while events.peek().is_some() {
            let chunk: Vec<_> = events.by_ref().take(INSERT_CHUNK).collect();
            event::Entity::insert_many(chunk).exec_without_returning(&tx).await?;
        }
        if wrote {
            head::Entity::update_many()
                .col_expr(head::Column::Revision, Expr::value(revision))
                .col_expr(head::Column::Hash, Expr::value(hash))
                .filter(head::Column::Id.eq(1))
                .exec(&tx)
                .await?;
        }
        if let Some((key, result)) = request {
            let result = serde_json::to_string(result).map_err(|e| Error::Internal(e.to_string()))?;
            applied_request::Entity::insert(applied_request::ActiveModel {
                caller: Val(key.caller.to_owned()),
                rpc: Val(key.rpc.to_owned()),
                request_id: Val(key.id.to_owned()),
                digest: Val(key.digest.clone()),
                revision: Val(revision),
                result: Val(result),
                time: Val(time.as_micros()),
            })
            .exec_without_returning(&tx)
            .await?;
        }
        tx.commit().await?;
        if wrote {
            store.committed.notify_one();
        }
        Ok(revision)
    }
}
