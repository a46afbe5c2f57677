//! `safeguard register`: the recipient register (PIPA 28-8(2), Art. 26(2)) straight from the
//! registry database, for publishing or handing to a regulator without a running server. It judges
//! the registry exactly as `ExportRecipientRegister` does: the state is loaded in one transaction,
//! folded into the same snapshot the service serves from, and every active seller is asked, per
//! purpose the policy allows, for every category the policy permits ([`compliance::recipient`]).
//!
//! [`compliance::recipient`]: crate::domain::replay::compliance::recipient

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context as _;

use crate::config::Settings;
use crate::domain::replay::compliance::{Recipient, asks, recipient};
use crate::domain::verify::Context;
use crate::domain::{Policy, Timestamp, Vocab};
use crate::snapshot::{Record, Snapshot};
use crate::startup::{connect_store, load_policy};

/// `safeguard register`.
#[derive(Debug, Clone, clap::Args)]
pub struct RegisterArgs {
    /// csv: a header row, then one row per seller and purpose, with the columns seller_id,
    /// legal_name, privacy_contact, country, purpose, categories (`;`-separated names),
    /// retention_days. json: ONE JSON document, an array with one object per seller:
    /// {"seller_id", "legal_name", "privacy_contact", "country", "purposes": [{"purpose",
    /// "categories": [...], "retention_days"}]} (not JSON Lines).
    #[arg(long, value_enum, default_value = "csv")]
    pub format: RegisterFormat,
    /// Write to this file instead of standard output.
    #[arg(long, short, value_name = "PATH")]
    pub output: Option<PathBuf>,
}

/// The register's output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RegisterFormat {
    /// One row per seller and purpose.
    Csv,
    /// One JSON document: an array of sellers.
    Json,
}

/// What a register run wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegisterSummary {
    /// Sellers listed.
    pub recipients: usize,
    /// Sellers in the registry.
    pub sellers: usize,
    pub revision: i64,
    pub policy_version: String,
}

impl std::fmt::Display for RegisterSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} of {} sellers may receive buyer data (registry revision {}, policy {})",
            self.recipients, self.sellers, self.revision, self.policy_version
        )
    }
}

/// The CSV columns.
pub const REGISTER_COLUMNS: [&str; 7] =
    ["seller_id", "legal_name", "privacy_contact", "country", "purpose", "categories", "retention_days"];

/// Writes the register of the configured database to `out`, judged at `now` by the configured
/// policy; sellers in seller-id order.
pub async fn register<W: Write + Send + 'static>(
    settings: &Settings,
    format: RegisterFormat,
    now: Timestamp,
    out: W,
) -> anyhow::Result<(RegisterSummary, W)> {
    let policy = load_policy(settings)?;
    let store = connect_store(settings).await?;
    let (snapshot, broken) = crate::snapshot::load(&store).await.context("cannot load the registry")?;
    if let Some((revision, problem)) = broken {
        anyhow::bail!("the registry log cannot be trusted from revision {revision}: {problem} (run VerifyAuditChain)");
    }
    // Judging a large registry is CPU and file work: keep it off the async workers.
    tokio::task::spawn_blocking(move || write_register(&snapshot, &policy, now, format, out)).await?
}

/// Runs `safeguard register`.
pub async fn run_register(settings: &Settings, args: RegisterArgs) -> anyhow::Result<()> {
    let out = super::open_output(args.output.as_deref())?;
    let (summary, _) = register(settings, args.format, Timestamp::now(), out).await?;
    eprintln!("register: {summary}");
    Ok(())
}

fn json_entry(r: &Recipient) -> serde_json::Value {
    let purposes: Vec<serde_json::Value> = r
        .purposes
        .iter()
        .map(|p| {
            serde_json::json!({
                "purpose": p.purpose.name(),
                "categories": p.categories.iter().map(|c| c.name()).collect::<Vec<_>>(),
                "retention_days": p.retention_days,
            })
        })
        .collect();
    serde_json::json!({
        "seller_id": r.seller_id.as_str(),
        "legal_name": r.legal_name,
        "privacy_contact": r.privacy_contact,
        "country": r.country.as_str(),
        "purposes": purposes,
    })
}

fn write_register<W: Write>(
    snapshot: &Snapshot,
    policy: &Policy,
    now: Timestamp,
    format: RegisterFormat,
    out: W,
) -> anyhow::Result<(RegisterSummary, W)> {
    let mut summary = RegisterSummary {
        sellers: snapshot.len(),
        revision: snapshot.revision,
        policy_version: policy.version.clone(),
        ..RegisterSummary::default()
    };
    let ctx = Context { policy, orders: &snapshot.orders, now, stale: false };
    let asks = asks(policy);
    let mut sellers: Vec<Record<'_>> = snapshot.iter().collect();
    sellers.sort_unstable_by(|a, b| a.id().cmp(b.id()));
    let entries = sellers.into_iter().filter_map(|s| recipient(&ctx, &s, &asks));
    let out = match format {
        RegisterFormat::Csv => {
            let mut w = csv::Writer::from_writer(out);
            w.write_record(REGISTER_COLUMNS)?;
            for r in entries {
                summary.recipients += 1;
                for p in &r.purposes {
                    let categories: Vec<&str> = p.categories.iter().map(|c| c.name()).collect();
                    w.write_record([
                        r.seller_id.as_str(),
                        &r.legal_name,
                        &r.privacy_contact,
                        r.country.as_str(),
                        p.purpose.name(),
                        &categories.join(";"),
                        &p.retention_days.to_string(),
                    ])?;
                }
            }
            w.into_inner().map_err(|e| anyhow::anyhow!("cannot write the register: {}", e.error()))?
        }
        RegisterFormat::Json => {
            let mut out = out;
            out.write_all(b"[")?;
            for r in entries {
                out.write_all(if summary.recipients == 0 { b"\n" } else { b",\n" })?;
                serde_json::to_writer(&mut out, &json_entry(&r))?;
                summary.recipients += 1;
            }
            out.write_all(b"\n]\n")?;
            out
        }
    };
    let mut out = out;
    out.flush()?;
    Ok((summary, out))
}
