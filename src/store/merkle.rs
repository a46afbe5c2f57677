//! The Merkle trees in the database (`merkle_nodes`): every perfect subtree hash of each log.
//!
//! - A registry write appends its events' leaves, and the subtrees they complete, in the same
//!   transaction as the events ([`append_registry`], called once from `WriteTx::commit`): the
//!   tree never disagrees with a committed log. An append reads the tree's frontier (one row per
//!   set bit of the size) and writes about 1.07 rows per event (every fourth level is stored).
//! - A log older than this table is backfilled at start-up ([`Store::sync_merkle`]) and, should a
//!   write ever find the tree behind, inside that write.
//! - Roots and proofs read the O(log n) nodes their [`Plan`] names, in one query.

use std::collections::HashMap;
use std::fmt::Write as _;

use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Statement, Value,
};

use super::Store;
use super::entities::event;
use crate::domain::chain::{EventFields, leaf_bytes};
use crate::domain::merkle::{Frontier, Hash, NodeId, Plan, leaf_hash, node_hash};
use crate::error::{Error, Result};

/// The tree over `registry_events`: leaf `i` is the event of revision `i + 1`.
pub const REGISTRY_LOG: &str = "registry";
/// The tree over `decisions`: leaf `i` is the record whose `leaf_index` is `i`.
pub const DECISIONS_LOG: &str = "decisions";

/// Events read per page while backfilling.
const BACKFILL_PAGE: u64 = 2_000;

/// The `merkle_nodes` table (its schema is the migration's).
pub(crate) mod node {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "merkle_nodes")]
    pub struct Model {
        /// `log << 56 | level << 50 | index`.
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: i64,
        pub hash: Vec<u8>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// The leaf hash of an event as read from the log: the fields the chain check reads.
fn stored_leaf(e: &super::StoredEvent) -> Hash {
    leaf_hash(&leaf_bytes(&e.logged().fields))
}

/// Bits of a node key below the log number, and below the level.
const LOG_SHIFT: u32 = 56;
const LEVEL_SHIFT: u32 = 50;

/// The number a log's nodes are keyed under.
fn log_number(log: &str) -> Result<i64> {
    match log {
        REGISTRY_LOG => Ok(1),
        DECISIONS_LOG => Ok(2),
        other => Err(Error::Internal(format!("no Merkle tree is kept for log {other:?}"))),
    }
}

fn key(log: i64, id: NodeId) -> Result<i64> {
    if id.index >= 1 << LEVEL_SHIFT || id.level >= 1 << (LOG_SHIFT - LEVEL_SHIFT) {
        return Err(Error::Internal(format!("Merkle node {id:?} is beyond the key space")));
    }
    Ok((log << LOG_SHIFT) | (i64::from(id.level) << LEVEL_SHIFT) | id.index as i64)
}

fn node_of(key: i64) -> NodeId {
    let level = ((key >> LEVEL_SHIFT) & ((1 << (LOG_SHIFT - LEVEL_SHIFT)) - 1)) as u32;
    NodeId::new(level, (key & ((1 << LEVEL_SHIFT) - 1)) as u64)
}

fn parse_hash(bytes: &[u8]) -> Result<Hash> {
    Hash::try_from(bytes).map_err(|_| Error::Internal(format!("merkle_nodes holds a {}-byte hash", bytes.len())))
}

fn to_i64(v: u64) -> Result<i64> {
    i64::try_from(v).map_err(|_| Error::Internal(format!("{v} does not fit a BIGINT")))
}

/// Every `STRIDE`-th level is stored (0, 4, 8, …): about 1.07 rows per event instead of 2, which
/// is what keeps bulk imports near their speed without the tree. Any other node is folded from its
/// 2^(level mod STRIDE) descendants at the stored level below, so a proof still reads O(log n) rows.
const STRIDE: u32 = 4;

fn is_stored(id: NodeId) -> bool {
    id.level.is_multiple_of(STRIDE)
}

/// The stored level-`base` descendants a node is folded from (itself, if it is stored).
fn descendants(id: NodeId) -> impl Iterator<Item = NodeId> {
    let depth = id.level % STRIDE;
    let base = id.level - depth;
    (0..1u64 << depth).map(move |j| NodeId::new(base, (id.index << depth) + j))
}

/// The nodes among `ids` that the stored tree has (or can fold).
async fn fetch(conn: &impl ConnectionTrait, log: &str, ids: &[NodeId]) -> Result<HashMap<NodeId, Hash>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let n = log_number(log)?;
    let mut need: Vec<NodeId> = ids.iter().flat_map(|id| descendants(*id)).collect();
    need.sort_unstable();
    need.dedup();
    let keys = need.iter().map(|id| key(n, *id)).collect::<Result<Vec<_>>>()?;
    let rows = node::Entity::find().filter(node::Column::Id.is_in(keys)).all(conn).await?;
    let base: HashMap<NodeId, Hash> =
        rows.into_iter().map(|r| Ok((node_of(r.id), parse_hash(&r.hash)?))).collect::<Result<_>>()?;
    let mut out = HashMap::with_capacity(ids.len());
    for id in ids {
        let Some(mut level) = descendants(*id).map(|d| base.get(&d).copied()).collect::<Option<Vec<_>>>() else {
            continue;
        };
        while level.len() > 1 {
            level = level.chunks_exact(2).map(|p| node_hash(&p[0], &p[1])).collect();
        }
        if let Some(h) = level.first() {
            out.insert(*id, *h);
        }
    }
    Ok(out)
}

/// How many leaves the stored tree has.
async fn leaf_count(conn: &impl ConnectionTrait, log: &str) -> Result<u64> {
    let n = log_number(log)?;
    let last = node::Entity::find()
        .filter(node::Column::Id.gte(key(n, NodeId::new(0, 0))?))
        .filter(node::Column::Id.lt(key(n, NodeId::new(1, 0))?))
        .order_by_desc(node::Column::Id)
        .one(conn)
        .await?;
    Ok(last.map_or(0, |r| node_of(r.id).index + 1))
}

/// Stores leaves `first..first + leaves.len()` and every subtree they complete.
async fn append(conn: &impl ConnectionTrait, log: &str, first: u64, leaves: &[Hash]) -> Result<()> {
    let ids = Frontier::nodes(first);
    let stored = fetch(conn, log, &ids).await?;
    let n = log_number(log)?;
    let mut frontier = Frontier::load(first, |id| stored.get(&id).copied()).ok_or_else(|| {
        Error::Internal(format!("the {log} Merkle tree lacks a frontier node at size {first}: it was tampered with"))
    })?;
    // The new nodes travel as one bound parameter, a JSON array of [key, hex hash] pairs that the
    // database unpacks itself: one statement per append, however many nodes.
    let mut nodes = String::with_capacity(leaves.len() * 100);
    nodes.push('[');
    for leaf in leaves {
        for (id, hash) in frontier.append(*leaf).into_iter().filter(|(id, _)| is_stored(*id)) {
            if nodes.len() > 1 {
                nodes.push(',');
            }
            let _ = write!(nodes, "[{},\"{}\"]", key(n, id)?, hex::encode(hash));
        }
    }
    nodes.push(']');
    if nodes.len() > 2 {
        let backend = conn.get_database_backend();
        let sql = match backend {
            DbBackend::Postgres => {
                "INSERT INTO merkle_nodes (id, hash) SELECT (e ->> 0)::bigint, decode(e ->> 1, 'hex') \
                 FROM json_array_elements($1::json) AS e"
            }
            _ => "INSERT INTO merkle_nodes (id, hash) SELECT value ->> 0, unhex(value ->> 1) FROM json_each(?)",
        };
        conn.execute_raw(Statement::from_sql_and_values(backend, sql, [Value::from(nodes)])).await?;
    }
    Ok(())
}

/// Appends the leaves of registry events up to (not including) revision `upto + 1` that the tree
/// does not have yet, reading them from the log: the backfill of a log older than the tree.
async fn catch_up(conn: &impl ConnectionTrait, upto: u64) -> Result<u64> {
    let mut have = leaf_count(conn, REGISTRY_LOG).await?;
    if have > upto {
        return Err(Error::Internal(format!(
            "the registry Merkle tree has {have} leaves but the log only {upto} events: the log was truncated"
        )));
    }
    while have < upto {
        let page = event::Entity::find()
            .filter(event::Column::Revision.gt(to_i64(have)?))
            .filter(event::Column::Revision.lte(to_i64(upto)?))
            .order_by_asc(event::Column::Revision)
            .limit(BACKFILL_PAGE)
            .all(conn)
            .await?;
        let Some(first) = page.first() else { break };
        if first.revision != to_i64(have + 1)? {
            return Err(Error::Internal(format!("registry revision {} is missing from the log", have + 1)));
        }
        let leaves: Vec<Hash> = page.into_iter().map(|m| stored_leaf(&m.into())).collect();
        append(conn, REGISTRY_LOG, have, &leaves).await?;
        have += leaves.len() as u64;
    }
    Ok(have)
}

/// Appends leaves at `first`, which must be exactly the tree's size: a tree that is longer or
/// shorter than its log's head was written outside safeguard, and nothing is added to it.
pub(crate) async fn append_exact(conn: &impl ConnectionTrait, log: &str, first: u64, leaves: &[Hash]) -> Result<()> {
    let have = leaf_count(conn, log).await?;
    if have != first {
        return Err(Error::Internal(format!(
            "the {log} Merkle tree has {have} leaves but its log's head says {first}: one of them was changed \
             outside safeguard"
        )));
    }
    append(conn, log, first, leaves).await
}

/// Adds the leaves of the events a write is about to insert, in the write's transaction.
pub(crate) async fn append_registry(
    store: &Store,
    conn: &impl ConnectionTrait,
    events: &[event::ActiveModel],
) -> Result<()> {
    if !store.merkle.load(std::sync::atomic::Ordering::Relaxed) {
        return Ok(());
    }
    let missing = || Error::Internal("an appended event lacks a field".into());
    let mut leaves = Vec::with_capacity(events.len());
    let mut first = None;
    for e in events {
        let revision = *e.revision.try_as_ref().ok_or_else(missing)?;
        first.get_or_insert(revision);
        leaves.push(leaf_hash(&leaf_bytes(&EventFields {
            revision,
            time_micros: *e.time.try_as_ref().ok_or_else(missing)?,
            actor: e.actor.try_as_ref().ok_or_else(missing)?,
            kind: e.kind.try_as_ref().ok_or_else(missing)?,
            seller_id: e.seller_id.try_as_ref().ok_or_else(missing)?,
            payload: e.payload.try_as_ref().ok_or_else(missing)?,
        })));
    }
    let Some(first) = first else { return Ok(()) };
    let first = u64::try_from(first - 1).map_err(|_| Error::Internal("revisions start at 1".into()))?;
    // Normally the tree is exactly as long as the log; a log from before the tree is caught up here.
    catch_up(conn, first).await?;
    append(conn, REGISTRY_LOG, first, &leaves).await
}

impl Store {
    /// Backfills the registry tree from the log, under the write lock; returns its size.
    pub async fn sync_merkle(&self) -> Result<u64> {
        let w = self.begin_write("safeguard").await?;
        let head = u64::try_from(w.next_revision() - 1).unwrap_or(0);
        let size = catch_up(w.tx(), head).await?;
        w.commit::<()>(None).await?;
        Ok(size)
    }

    /// Entries in a log by its own head: the registry's head revision, or `decision_log_head`.
    /// The tree must agree; a difference is evidence of an edit outside safeguard.
    pub async fn log_size(&self, log: &str) -> Result<u64> {
        match log {
            REGISTRY_LOG => {
                let (head, _) = self.head().await?;
                u64::try_from(head).map_err(|_| Error::Internal(format!("the registry head is at {head}")))
            }
            DECISIONS_LOG => self.decision_log_size().await,
            other => Err(Error::Internal(format!("no Merkle tree is kept for log {other:?}"))),
        }
    }

    /// Leaves in a log's tree.
    pub async fn tree_size(&self, log: &str) -> Result<u64> {
        leaf_count(&self.db, log).await
    }

    async fn planned(&self, log: &str, plan: &Plan, size: u64) -> Result<Vec<Hash>> {
        let have = leaf_count(&self.db, log).await?;
        if size > have {
            return Err(Error::FailedPrecondition(format!("the {log} log has {have} entries, fewer than {size}")));
        }
        let nodes = fetch(&self.db, log, &plan.nodes()).await?;
        plan.assemble(|id| nodes.get(&id).copied())
            .ok_or_else(|| Error::Internal(format!("the {log} Merkle tree lacks a node it needs for size {size}")))
    }

    /// The root of a log's tree at `size` leaves.
    pub async fn tree_root(&self, log: &str, size: u64) -> Result<Hash> {
        if size == 0 {
            return Ok(crate::domain::merkle::empty_root());
        }
        let hashes = self.planned(log, &Plan::root(size), size).await?;
        hashes.first().copied().ok_or_else(|| Error::Internal("an empty root plan".into()))
    }

    /// The stored frontier nodes of a log's tree at `size` leaves.
    pub async fn frontier(&self, log: &str, size: u64) -> Result<HashMap<NodeId, Hash>> {
        fetch(&self.db, log, &Frontier::nodes(size)).await
    }

    /// The stored leaf hashes `from..from + count` (fewer if the tree is shorter), in order.
    pub async fn leaf_range(&self, log: &str, from: u64, count: u64) -> Result<Vec<Hash>> {
        let n = log_number(log)?;
        let rows = node::Entity::find()
            .filter(node::Column::Id.gte(key(n, NodeId::new(0, from))?))
            .filter(node::Column::Id.lt(key(n, NodeId::new(0, from + count))?))
            .order_by_asc(node::Column::Id)
            .all(&self.db)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for (i, r) in rows.iter().enumerate() {
            if node_of(r.id).index != from + i as u64 {
                return Err(Error::Internal(format!("the {log} tree lacks leaf {}", from + i as u64)));
            }
            out.push(parse_hash(&r.hash)?);
        }
        Ok(out)
    }

    /// The stored hash of leaf `index`.
    pub async fn leaf_hash(&self, log: &str, index: u64) -> Result<Option<Hash>> {
        let nodes = fetch(&self.db, log, &[NodeId::new(0, index)]).await?;
        Ok(nodes.get(&NodeId::new(0, index)).copied())
    }

    /// The audit path of leaf `index` in the tree of `size` leaves.
    pub async fn inclusion_proof(&self, log: &str, index: u64, size: u64) -> Result<Vec<Hash>> {
        let plan = Plan::inclusion(index, size)
            .ok_or_else(|| Error::invalid("tree_size", format!("must exceed the leaf index {index}")))?;
        self.planned(log, &plan, size).await
    }

    /// The consistency proof from `old` leaves to `new`.
    pub async fn consistency_proof(&self, log: &str, old: u64, new: u64) -> Result<Vec<Hash>> {
        let plan = Plan::consistency(old, new)
            .ok_or_else(|| Error::invalid("old_size", "must not exceed new_size".to_owned()))?;
        self.planned(log, &plan, new).await
    }

    /// The root of the registry's first `size` events recomputed from the events alone, and the
    /// first revision whose recomputed leaf differs from the leaf stored when it was written (which
    /// names the edited event, unless the tree was rewritten too). `page` events per query.
    pub async fn recompute_registry_root(&self, size: u64, page: u64) -> Result<(Hash, Option<i64>)> {
        let mut frontier = Frontier::default();
        let mut first_bad = None;
        while frontier.size() < size {
            let after = to_i64(frontier.size())?;
            let want = page.min(size - frontier.size());
            let events = self.events_after(after, want).await?;
            if events.first().map(|e| e.revision) != Some(after + 1) {
                return Err(Error::FailedPrecondition(format!("registry revision {} is missing", after + 1)));
            }
            let ids: Vec<NodeId> = (0..events.len() as u64).map(|i| NodeId::new(0, frontier.size() + i)).collect();
            let stored = fetch(&self.db, REGISTRY_LOG, &ids).await?;
            for (i, e) in events.iter().enumerate() {
                if e.revision != after + 1 + i as i64 {
                    return Err(Error::FailedPrecondition(format!(
                        "registry revision {} is missing",
                        after + 1 + i as i64
                    )));
                }
                let leaf = stored_leaf(e);
                if first_bad.is_none() && stored.get(&ids[i]) != Some(&leaf) {
                    first_bad = Some(e.revision);
                }
                frontier.append(leaf);
            }
        }
        Ok((frontier.root(), first_bad))
    }

    /// Registry events `from..=to` by revision with their leaf hashes recomputed from the stored
    /// fields (never read from the tree), for checks that must not trust `merkle_nodes`. Read in
    /// pages, one ahead of the hashing, so a check over a large log holds hashes, not payloads.
    pub async fn event_leaves(&self, from: i64, to: i64) -> Result<Vec<(i64, Hash)>> {
        let mut out = Vec::with_capacity(usize::try_from(to - from + 1).unwrap_or(0));
        let mut pages = self.event_pages(from - 1, to);
        while let Some(page) = pages.next().await {
            out.extend(page?.iter().take_while(|e| e.revision <= to).map(|e| {
                let leaf = stored_leaf(e);
                (e.revision, leaf)
            }));
        }
        Ok(out)
    }
}
