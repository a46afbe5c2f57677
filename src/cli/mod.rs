//! Operator commands over the registry database: `import`, `export`, `generate`, `register` and
//! `audit` (export and offline verification of the verifiable log).
//! They work on the database directly (no server needed) through the same [`Store`] writes the gRPC
//! API uses, so every import is an ordinary, hash-chained registry write that running replicas follow.
//!
//! # The import formats
//! One row is a seller or an attestation (a contract), named by its `type`; the fields are the
//! proto fields legal writes, named as in the proto. `docs/import-format.md` has the full
//! reference and examples; `examples/data/` has sample files.
//!
//! - **JSON Lines** (`.jsonl`, `.ndjson`): one object per line,
//!   `{"type": "seller", "seller_id": …, "legal_name": …, "country": …, "status": …, "role": …,
//!   "contact_email": …, "privacy_contact": …}` or `{"type": "attestation", "seller_id": …,
//!   "contract_ref": …, "document_sha256": …, "clauses": […], "purposes": […], "categories": […],
//!   "signed_time": …, "effective_time": …, "expire_time": …, "signatory": …, "retention_days": …}`.
//!   Blank lines are skipped; any other key is an error.
//! - **CSV** (`.csv`): one flat file, RFC 4180 quoting, UTF-8, a header row naming the columns
//!   `type`, then the union of both kinds' columns (`seller_id` once). Columns may come in any order
//!   and unused ones may be left out; a cell of the other kind's columns must be empty. List cells
//!   hold `;`-separated names (`ORDER_FULFILLMENT;CUSTOMS_CLEARANCE`).
//!
//! In both, vocabulary values are the proto names without their enum prefix (`SECURITY_SAFEGUARDS`,
//! not `CLAUSE_SECURITY_SAFEGUARDS`); an empty `status` means ACTIVE; times are RFC 3339 with an
//! offset (`2025-03-01T00:00:00Z`, `2025-03-01T09:00:00+09:00`), kept to the microsecond; an empty
//! `retention_days` means 0 (the contract sets no limit of its own).
//!
//! # Import semantics
//! Each row is validated exactly as the same item sent to `ImportSellers` would be (the rules of
//! [`convert`]), then rows are applied in file order in transactions of 1,000 through
//! [`Store::import_batch`]: a seller is created, or updated when it differs; an attestation is
//! created unless the same signed document (seller_id, document_sha256) is already attested. A
//! re-run of the same file therefore changes nothing. A bad row is reported with its line (1-based,
//! as an editor numbers it) and field, and the other rows are still imported.
//!
//! # Export
//! Sellers in seller-id order, each followed by its **active** attestations in submission order.
//! Revoked attestations are left out: the formats have no state column, and a revoked contract that
//! came back through import would be ACTIVE again. On an empty database, importing an export and
//! exporting again gives the same file.
//!
//! [`convert`]: crate::grpc::convert

mod audit;
mod export;
mod format;
mod generate;
pub(crate) mod import;
pub(crate) mod read;
mod register;
mod write;

use std::io::{BufWriter, IsTerminal as _, Write};
use std::path::{Path, PathBuf};

use anyhow::Context as _;

pub use crate::grpc::client_import::import_grpc;
pub use audit::{
    AuditArgs, AuditCommand, ExportedEvent, export_audit, read_key, run_audit, sign_offline, verify_export,
    verify_proof,
};
pub use export::{ExportSummary, export_store};
pub use format::{Format, Record, format_time, parse_time};
pub use generate::{GenerateOptions, GenerateSummary, generate};
pub use import::{BATCH, ImportOptions, ImportReport, RowError, import_file, import_reader};
pub use register::{REGISTER_COLUMNS, RegisterArgs, RegisterFormat, RegisterSummary, register, run_register};
pub use write::RecordWriter;

use crate::config::Settings;
use crate::grpc::convert;
use crate::startup::connect_store;
use crate::store::Store;

/// `safeguard import PATH`.
#[derive(Debug, Clone, clap::Args)]
pub struct ImportArgs {
    /// The file: .csv, or .jsonl / .ndjson (see docs/import-format.md).
    #[arg(value_name = "PATH")]
    pub path: PathBuf,
    /// The file's format, when its extension does not tell.
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Recorded as the actor of every registry event the import writes (direct imports only; over
    /// gRPC the token's subject is the actor).
    #[arg(long, default_value = "cli:import", value_name = "NAME")]
    pub actor: String,
    /// Stream the file to a running server's ImportSellers (`http://host:port`) instead of
    /// writing to the configured database.
    #[arg(long, value_name = "URL")]
    pub grpc: Option<String>,
    /// The bearer token for `--grpc` (legal or admin role).
    #[arg(long, env = "SAFEGUARD_TOKEN", value_name = "JWT", hide_env_values = true)]
    pub token: Option<String>,
}

/// `safeguard export`.
#[derive(Debug, Clone, clap::Args)]
pub struct ExportArgs {
    /// Output format [default: from the --output extension, else csv].
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Write to this file instead of standard output.
    #[arg(long, short, value_name = "PATH")]
    pub output: Option<PathBuf>,
}

/// `safeguard generate`.
#[derive(Debug, Clone, clap::Args)]
pub struct GenerateArgs {
    /// How many sellers.
    #[arg(long, value_name = "N")]
    pub sellers: u64,
    /// Output format [default: from the --output extension, else csv].
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Write to this file instead of standard output.
    #[arg(long, short, value_name = "PATH")]
    pub output: Option<PathBuf>,
    /// The same seed (and day) always gives the same data.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The day the contracts are laid out around (YYYY-MM-DD) [default: today, UTC].
    #[arg(long, value_name = "DATE")]
    pub as_of: Option<chrono::NaiveDate>,
}

/// Connects to the configured database and migrates it if the settings say so.
pub async fn open_store(settings: &Settings) -> anyhow::Result<Store> {
    let store = connect_store(settings).await?;
    if settings.database.migrate_on_start {
        store.migrate().await.context("cannot apply migrations")?;
    }
    Ok(store)
}

/// Imports `path` into the configured database.
pub async fn import(settings: &Settings, path: &Path, options: &ImportOptions) -> anyhow::Result<ImportReport> {
    let store = open_store(settings).await?;
    let report = import_file(&store, path, options).await?;
    // A bulk load ends with a checkpoint over it. The rows are in either way, and a running
    // server signs on its next tick, so a signing failure is reported, not fatal.
    if let Err(e) = sign_offline(settings, &store).await {
        tracing::warn!(error = format!("{e:#}"), "no checkpoint signed after the import");
    }
    Ok(report)
}

/// Exports the configured database's registry to `out`.
pub async fn export<W: Write + Send + 'static>(
    settings: &Settings,
    format: Format,
    out: W,
) -> anyhow::Result<(ExportSummary, W)> {
    export_store(&open_store(settings).await?, format, out).await
}

/// Runs `safeguard import`: rows with faults on stderr as `PATH:LINE: field: message`, then a
/// summary; fails (a non-zero exit) if any row was not imported.
pub async fn run_import(settings: &Settings, args: ImportArgs) -> anyhow::Result<()> {
    let actor =
        convert::text(&args.actor, "--actor", convert::MAX_REQUEST_ID, true).map_err(|v| anyhow::anyhow!("{v}"))?;
    let options =
        ImportOptions { format: args.format, actor, batch_size: BATCH, progress: std::io::stderr().is_terminal() };
    let report = match &args.grpc {
        Some(endpoint) => import_grpc(endpoint, args.token.as_deref(), &args.path, &options).await?,
        None => import(settings, &args.path, &options).await?,
    };
    let shown = args.path.display();
    for e in &report.errors {
        match e.field.as_str() {
            "" => eprintln!("{shown}:{}: {}", e.line, e.message),
            field => eprintln!("{shown}:{}: {field}: {}", e.line, e.message),
        }
    }
    eprintln!("imported {shown}: {report}");
    let failed = report.failed_rows();
    anyhow::ensure!(failed == 0, "{failed} of {} rows were not imported (listed above)", report.rows);
    anyhow::ensure!(report.errors_unlisted == 0, "{} more errors were not listed", report.errors_unlisted);
    Ok(())
}

fn output_format(format: Option<Format>, output: Option<&Path>) -> anyhow::Result<Format> {
    match (format, output) {
        (Some(f), _) => Ok(f),
        (None, None) => Ok(Format::Csv),
        (None, Some(path)) => Format::from_path(path).with_context(|| {
            format!("cannot tell a format from {}: pass --format csv or --format jsonl", path.display())
        }),
    }
}

fn open_output(output: Option<&Path>) -> anyhow::Result<Box<dyn Write + Send>> {
    Ok(match output {
        Some(path) => Box::new(BufWriter::with_capacity(
            1 << 16,
            std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?,
        )),
        None => Box::new(BufWriter::with_capacity(1 << 16, std::io::stdout())),
    })
}

/// Runs `safeguard export`.
pub async fn run_export(settings: &Settings, args: ExportArgs) -> anyhow::Result<()> {
    let format = output_format(args.format, args.output.as_deref())?;
    let out = open_output(args.output.as_deref())?;
    let (summary, _) = export(settings, format, out).await?;
    eprintln!("exported {summary}");
    Ok(())
}

/// Runs `safeguard generate`.
pub async fn run_generate(args: GenerateArgs) -> anyhow::Result<()> {
    let format = output_format(args.format, args.output.as_deref())?;
    let as_of = match args.as_of {
        Some(day) => day.and_hms_opt(0, 0, 0).map(|t| t.and_utc().timestamp()).unwrap_or_default(),
        None => crate::domain::Timestamp::now().to_parts().0,
    };
    let options = GenerateOptions { sellers: args.sellers, seed: args.seed, as_of, format };
    let out = open_output(args.output.as_deref())?;
    let (summary, _) = tokio::task::spawn_blocking(move || generate(&options, out)).await??;
    eprintln!("generated {} sellers and {} attestations", summary.sellers, summary.attestations);
    Ok(())
}
