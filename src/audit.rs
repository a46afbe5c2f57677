//! Auditors' checks that gRPC and the console share: a decision replayed at a past time
//! (ExplainDecision), and today's log checked against a checkpoint an auditor kept
//! (VerifyAuditChain's trusted checkpoint). Plain store, tlog and domain calls; each edge maps the
//! outcome onto its own surface.

use crate::domain::note::Checkpoint;
use crate::domain::registry::RegistryChange;
use crate::domain::replay::SellerReplay;
use crate::domain::verify::{Context, Decided, VerifyRequest, decide};
use crate::domain::{Policy, Timestamp};
use crate::error::{Error, Result};
use crate::store::Store;
use crate::tlog::Tlog;

/// Events read per query while recomputing a root.
const ROOT_PAGE: u64 = 5000;

/// The decision `request` would have got at `at`: the seller's events up to the last revision
/// written by then, folded and decided under `policy`. min_revision is a freshness demand on a live
/// replica and means nothing in a replay; a replay is made from the log itself, so it is never stale.
pub async fn explain(store: &Store, policy: &Policy, request: &VerifyRequest, at: Timestamp) -> Result<Decided> {
    let revision = store.revision_at(at).await?;
    let mut replay = SellerReplay::new(request.seller_id.clone());
    for e in store.replay_events(&request.seller_id, revision, true).await? {
        let change = RegistryChange::from_event(&e.kind, &e.payload)
            .map_err(|why| Error::Internal(format!("registry event {}: {why}", e.revision)))?;
        replay.apply(e.revision, &change);
    }
    let orders = replay.order_views();
    let ctx = Context { policy, orders: &orders, now: at, stale: false };
    let verdict = decide(&ctx, replay.view().as_ref(), request);
    Ok(Decided { verdict, revision, now: at })
}

/// What the log says against a kept checkpoint.
pub struct TrustedCheck {
    pub size: i64,
    pub consistent: bool,
    /// The first revision whose event no longer hashes to the leaf written for it, if known.
    pub first_bad: Option<i64>,
    pub problem: String,
}

/// Checks today's log against `note`, a checkpoint the auditor kept: it must verify with this
/// service's key (else INVALID_ARGUMENT on `field`), and the first `size` events, rehashed, must
/// give its root.
pub async fn check_trusted(store: &Store, tlog: &Tlog, note: &str, field: &str) -> Result<TrustedCheck> {
    let checkpoint =
        Checkpoint::open(note, tlog.verifier()).map_err(|e| Error::invalid(field, format!("refused: {e}")))?;
    if checkpoint.origin != tlog.origin() {
        return Err(Error::invalid(
            field,
            format!("is for log {:?}, this service signs {:?}", checkpoint.origin, tlog.origin()),
        ));
    }
    let size = checkpoint.size as i64;
    let (head, _) = store.head().await?;
    if head < size {
        return Ok(TrustedCheck {
            size,
            consistent: false,
            first_bad: Some(head + 1),
            problem: format!("the log has {head} events, the trusted checkpoint {size}: it was truncated"),
        });
    }
    let (root, first_bad) = match store.recompute_registry_root(checkpoint.size, ROOT_PAGE).await {
        Ok(r) => r,
        Err(Error::FailedPrecondition(problem)) => {
            return Ok(TrustedCheck { size, consistent: false, first_bad: None, problem });
        }
        Err(e) => return Err(e),
    };
    if root == checkpoint.root {
        return Ok(TrustedCheck { size, consistent: true, first_bad: None, problem: String::new() });
    }
    let at =
        first_bad.map(|r| format!(" (revision {r} no longer hashes to the leaf written for it)")).unwrap_or_default();
    Ok(TrustedCheck {
        size,
        consistent: false,
        first_bad,
        problem: format!(
            "the first {size} events hash to root {}, the trusted checkpoint says {}: history was rewritten{at}",
            hex::encode(root),
            hex::encode(checkpoint.root)
        ),
    })
}
