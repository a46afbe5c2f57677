//! The registry's state as the log says it is: the verified event log folded through the one fold
//! ([`crate::domain::fold`]). The snapshot is loaded this way at start-up, and so are the exports and
//! the recipient register: the state tables serve queries, but nothing that decides, and nothing
//! that is handed to a regulator, rests on a row the log does not also say.

use std::collections::{BTreeMap, HashMap};

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder};

use super::entities::event;
use super::log::WriteTx;
use super::{Store, StoredEvent};
use crate::domain::chain::EventFields;
use crate::domain::fold::{self, FoldTarget, Folded};
use crate::domain::ids::{DocumentSha256, SellerId, Timestamp};
use crate::domain::registry::RegistryChange;
use crate::domain::registry::{Attestation, Seller, SuspensionOrder};
use crate::domain::replay::{ChainVerifier, LoggedEvent};
use crate::error::{Error, Result};

/// Events per round trip while folding the whole log. Up to three pages are alive at once (one
/// being folded, one read ahead, one decoding), and the allocator keeps what the peak needed: at
/// 10,000 events a page that was ~200 B per seller of RSS at SERVING on SQLite (180,000 sellers,
/// `benches/startup_rss.py`), at 2,000 it is gone, and start-up is no slower.
const PAGE: u64 = 2_000;

/// Where a fold of the log ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoldedLog {
    /// The last revision applied.
    pub revision: i64,
    /// Its hash.
    pub hash: String,
    /// The first event that could not be trusted, and why; nothing from it on was applied.
    pub broken: Option<(i64, String)>,
}

impl StoredEvent {
    /// The event as the chain check reads it.
    pub fn logged(&self) -> LoggedEvent<'_> {
        LoggedEvent {
            fields: EventFields {
                revision: self.revision,
                time_micros: self.time.as_micros(),
                actor: &self.actor,
                kind: &self.kind,
                seller_id: &self.seller_id,
                payload: &self.payload,
            },
            prev_hash: &self.prev_hash,
            hash: &self.hash,
        }
    }
}

/// Checks `e` against `chain` and applies it to `target`; the break, if it is one.
pub(crate) fn apply_checked(
    chain: &mut ChainVerifier,
    target: &mut impl FoldTarget,
    e: &StoredEvent,
) -> Result<(), (i64, String)> {
    if !chain.check(&e.logged()) {
        let (revision, problem) = chain.problem().unwrap_or((e.revision, "the chain is broken"));
        return Err((revision, problem.to_owned()));
    }
    // A payload the hash covers but that does not parse was written by something that is not
    // safeguard: as untrustworthy as a broken link.
    let change = RegistryChange::from_event(&e.kind, &e.payload).map_err(|why| (e.revision, why))?;
    if fold::apply(target, &change) == Folded::UnknownSeller {
        tracing::error!(revision = e.revision, seller = ?change.seller_id(), "registry event for a seller never created: ignored");
    }
    Ok(())
}

impl Store {
    /// The events after revision `after` up to `to`, in pages read by a task of their own, one
    /// page ahead, so the database (and, on SQLite, its worker thread decoding rows) works while
    /// the caller checks and folds or hashes the page before. A page may run past `to`.
    pub(crate) fn event_pages(&self, after: i64, to: i64) -> EventPages {
        let (pages, received) = tokio::sync::mpsc::channel::<Result<Vec<StoredEvent>>>(2);
        let reader = self.clone();
        let fetch = tokio::spawn(async move {
            let mut after = after;
            while after < to {
                let page = reader.events_after(after, PAGE).await;
                let full = page.as_ref().is_ok_and(|events| events.len() as u64 == PAGE);
                after = page.as_ref().ok().and_then(|events| events.last()).map_or(after, |e| e.revision);
                if pages.send(page).await.is_err() || !full {
                    break;
                }
            }
        });
        EventPages { received, fetch }
    }

    /// Folds every event into `target`, oldest first, checking each link of the hash chain, and
    /// finally that the head row is the last event (a head past the end means events were deleted).
    pub async fn fold_log(&self, target: &mut impl FoldTarget) -> Result<FoldedLog> {
        self.fold_log_from(target, ChainVerifier::new()).await
    }

    /// Folds the events after the one `chain` resumes from (see [`ChainVerifier::resume`]) into
    /// `target`, which must hold the log up to it, with the same checks as [`Store::fold_log`]:
    /// the tail of the log on top of a saved snapshot.
    pub async fn fold_log_from(&self, target: &mut impl FoldTarget, mut chain: ChainVerifier) -> Result<FoldedLog> {
        // The head is read first and the fold stops at it: the head moves in the same transaction
        // as its event, so every event up to it is there, while events committed during the fold
        // (a busy primary, a standby replaying) are left to the follower instead of looking like a
        // head that lags its log.
        let (head_revision, head_hash) = self.head().await?;
        let mut pages = self.event_pages(chain.last_revision(), head_revision);
        let mut outcome = Ok(None);
        'pages: while let Some(page) = pages.next().await {
            let events = match page {
                Ok(events) => events,
                Err(e) => {
                    outcome = Err(e);
                    break;
                }
            };
            for e in &events {
                if e.revision > head_revision {
                    break 'pages;
                }
                if let Err(broken) = apply_checked(&mut chain, target, e) {
                    outcome = Ok(Some(broken));
                    break 'pages;
                }
            }
        }
        drop(pages);
        if let Some(broken) = outcome? {
            return Ok(folded(&chain, Some(broken)));
        }
        let last = chain.last_revision();
        let broken = if head_revision != last {
            Some((last + 1, format!("the head row is at revision {head_revision} but the log ends at revision {last}")))
        } else if head_hash != chain.last_hash() {
            Some((last, format!("the head row's hash is not the hash of revision {last}")))
        } else {
            None
        };
        Ok(folded(&chain, broken))
    }
}

/// Pages of events being read ahead ([`Store::event_pages`]); dropping it stops the reader.
pub(crate) struct EventPages {
    received: tokio::sync::mpsc::Receiver<Result<Vec<StoredEvent>>>,
    fetch: tokio::task::JoinHandle<()>,
}

impl EventPages {
    /// The next page, or `None` after the last.
    pub(crate) async fn next(&mut self) -> Option<Result<Vec<StoredEvent>>> {
        self.received.recv().await
    }
}

impl Drop for EventPages {
    fn drop(&mut self) {
        self.fetch.abort();
    }
}

fn folded(chain: &ChainVerifier, broken: Option<(i64, String)>) -> FoldedLog {
    FoldedLog { revision: chain.last_revision(), hash: chain.last_hash().to_owned(), broken }
}

/// The registry's whole state as full entities, folded from the log: what exports are written from.
#[derive(Debug, Default)]
pub struct RegistryState {
    pub revision: i64,
    /// In seller-id order.
    pub sellers: BTreeMap<SellerId, Seller>,
    /// Each seller's attestations as last changed, in submission order.
    pub attestations: HashMap<SellerId, Vec<Attestation>>,
    /// Every suspension order as last changed, in creation order.
    pub orders: Vec<SuspensionOrder>,
    pub last_supervision: HashMap<SellerId, Timestamp>,
}

impl FoldTarget for RegistryState {
    fn has_seller(&self, id: &SellerId) -> bool {
        self.sellers.contains_key(id)
    }

    fn put_seller(&mut self, seller: &Seller) {
        self.sellers.insert(seller.seller_id.clone(), seller.clone());
    }

    fn put_attestation(&mut self, a: &Attestation) {
        let list = self.attestations.entry(a.seller_id.clone()).or_default();
        fold::upsert(list, a.clone(), |x| x.attestation_id.clone());
    }

    fn put_order(&mut self, o: &SuspensionOrder) {
        fold::upsert(&mut self.orders, o.clone(), |x| x.order_id.clone());
    }

    fn last_supervision(&self, id: &SellerId) -> Option<Timestamp> {
        self.last_supervision.get(id).copied()
    }

    fn set_last_supervision(&mut self, id: &SellerId, time: Timestamp) {
        self.last_supervision.insert(id.clone(), time);
    }
}

impl RegistryState {
    /// The seller's attestation of the signed document `sha256`, if there is one.
    pub fn attestation_of_document(&self, seller: &SellerId, sha256: &DocumentSha256) -> Option<&Attestation> {
        self.attestations.get(seller)?.iter().find(|a| a.document_sha256 == *sha256)
    }
}

/// Seller ids per `IN (…)` query: well under SQLite's and PostgreSQL's bound-parameter limits.
const SELLERS_PER_QUERY: usize = 1000;

impl WriteTx<'_> {
    /// The named sellers as their own events say they are, read inside the write's transaction
    /// (under the chain head lock, so nothing changes them meanwhile). Writes decide on this, not
    /// on the state tables: a row edited under the service must not be copied into a new event
    /// and so laundered into the log.
    pub async fn fold_sellers(&self, ids: &[&str]) -> Result<RegistryState> {
        fold_sellers(self.tx(), ids).await
    }
}

/// The named sellers folded from the events filed under them, read through `db`.
pub(crate) async fn fold_sellers(db: &impl ConnectionTrait, ids: &[&str]) -> Result<RegistryState> {
    let mut state = RegistryState::default();
    for chunk in ids.chunks(SELLERS_PER_QUERY) {
        let rows = event::Entity::find()
            .filter(event::Column::SellerId.is_in(chunk.iter().copied()))
            .order_by_asc(event::Column::Revision)
            .all(db)
            .await?;
        for row in rows {
            let change = RegistryChange::from_event(&row.kind, &row.payload)
                .map_err(|why| Error::Internal(format!("registry event {}: {why}", row.revision)))?;
            fold::apply(&mut state, &change);
        }
    }
    Ok(state)
}

impl Store {
    /// The whole state as the verified log says it is. A log that cannot be trusted is an error:
    /// an export or a register handed on must never be built from a damaged log.
    pub async fn load_state(&self) -> Result<RegistryState> {
        let mut state = RegistryState::default();
        let folded = self.fold_log(&mut state).await?;
        if let Some((revision, problem)) = folded.broken {
            return Err(Error::Internal(format!(
                "the registry log cannot be trusted from revision {revision}: {problem} (run VerifyAuditChain)"
            )));
        }
        state.revision = folded.revision;
        Ok(state)
    }
}
