//! `safeguard export`: the registry's current state in an import format. Active attestations only:
//! the formats have no state column, and a revoked contract written out would come back ACTIVE on
//! import, which is exactly the fail-open mistake the registry exists to prevent. Revoked
//! attestations remain in the database and its event log, which is where auditors read them.

use std::io::Write;

use super::format::{Format, Record};
use super::write::RecordWriter;
use crate::domain::AttestationState;
use crate::domain::input::{AttestationInput, SellerInput};
use crate::store::{RegistryState, Store};

/// What an export wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportSummary {
    pub sellers: usize,
    pub attestations: usize,
    /// Revoked attestations left out.
    pub revoked_skipped: usize,
    /// The registry revision the export is a snapshot of.
    pub revision: i64,
}

impl std::fmt::Display for ExportSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} sellers and {} active attestations at revision {} ({} revoked attestations not exported)",
            self.sellers, self.attestations, self.revision, self.revoked_skipped
        )
    }
}

/// Writes the whole registry to `out`: sellers in seller-id order, each followed by its active
/// attestations in the order they were submitted. The state is read in one transaction, so the
/// output is the registry exactly as it was at one revision.
pub async fn export_store<W: Write + Send + 'static>(
    store: &Store,
    format: Format,
    out: W,
) -> anyhow::Result<(ExportSummary, W)> {
    let state = store.load_state().await?;
    // Serialising a large registry is CPU and file work: keep it off the async workers.
    tokio::task::spawn_blocking(move || write_state(state, format, out)).await?
}

fn write_state<W: Write>(state: RegistryState, format: Format, out: W) -> anyhow::Result<(ExportSummary, W)> {
    let mut summary = ExportSummary { revision: state.revision, ..ExportSummary::default() };
    let mut by_seller = state.attestations;
    let mut w = RecordWriter::new(format, out)?;
    for seller in state.sellers.values() {
        w.write(&Record::Seller(SellerInput::of(seller)))?;
        summary.sellers += 1;
        for a in by_seller.remove(&seller.seller_id).unwrap_or_default() {
            match a.state {
                AttestationState::Active => {
                    w.write(&Record::Attestation(AttestationInput::of(&a)))?;
                    summary.attestations += 1;
                }
                AttestationState::Revoked => summary.revoked_skipped += 1,
            }
        }
    }
    Ok((summary, w.finish()?))
}
