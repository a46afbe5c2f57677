//! `safeguard import`: a file streamed into the registry in batches. A blocking thread reads and
//! validates rows while the async side writes the previous batch, so parsing and the database
//! overlap; the bounded channel between them keeps memory flat whatever the file's size.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::sync::mpsc;

use super::format::Format;
use super::read::{CsvRow, check_header, item, json_item};
use crate::domain::Violation;
use crate::store::{ImportItem, ImportOutcome, Store};

/// Rows applied per transaction, as `ImportSellers` does.
pub const BATCH: usize = 1000;

/// How to import.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// The file's format; `None`: from its extension.
    pub format: Option<Format>,
    /// Recorded as the actor of every event the import appends.
    pub actor: String,
    /// Rows per transaction.
    pub batch_size: usize,
    /// Draw a progress bar on stderr.
    pub progress: bool,
}

impl Default for ImportOptions {
    fn default() -> Self {
        Self { format: None, actor: "cli:import".into(), batch_size: BATCH, progress: false }
    }
}

/// A row that was not imported, or one of its faults: a row can have several.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    /// 1-based line of the file where the row starts, as an editor numbers it.
    pub line: u64,
    /// The column (CSV) or key (JSON Lines); empty when the row as a whole is unreadable.
    pub field: String,
    pub message: String,
}

impl std::fmt::Display for RowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.field.is_empty() {
            write!(f, "line {}: {}", self.line, self.message)
        } else {
            write!(f, "line {}: {}: {}", self.line, self.field, self.message)
        }
    }
}

/// What an import did.
#[derive(Debug, Clone, Default)]
pub struct ImportReport {
    /// Data rows read (blank lines and the CSV header not counted).
    pub rows: u64,
    pub sellers_created: i64,
    pub sellers_updated: i64,
    pub sellers_unchanged: i64,
    pub attestations_created: i64,
    pub attestations_unchanged: i64,
    /// Every fault, in line order.
    pub errors: Vec<RowError>,
    /// The registry revision after the import.
    pub revision: i64,
    pub elapsed: Duration,
    /// Errors a server counted but did not list (`--grpc`: a report lists the first 1000).
    pub errors_unlisted: i64,
}

impl ImportReport {
    /// How many rows were not imported.
    pub fn failed_rows(&self) -> usize {
        self.errors.iter().map(|e| e.line).collect::<BTreeSet<_>>().len()
    }

    /// Rows read per second.
    pub fn rows_per_second(&self) -> f64 {
        self.rows as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Whether the import changed nothing (a re-run of the same file).
    pub fn changed_nothing(&self) -> bool {
        self.sellers_created == 0 && self.sellers_updated == 0 && self.attestations_created == 0
    }
}

impl std::fmt::Display for ImportReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{} rows in {:.1} s ({:.0} rows/s), registry at revision {}",
            self.rows,
            self.elapsed.as_secs_f64(),
            self.rows_per_second(),
            self.revision
        )?;
        writeln!(
            f,
            "  sellers:      {} created, {} updated, {} unchanged",
            self.sellers_created, self.sellers_updated, self.sellers_unchanged
        )?;
        writeln!(
            f,
            "  attestations: {} created, {} unchanged",
            self.attestations_created, self.attestations_unchanged
        )?;
        write!(f, "  errors:       {} rows not imported", self.failed_rows())?;
        if self.errors_unlisted > 0 {
            write!(f, ", and {} more errors the server did not list", self.errors_unlisted)?;
        }
        Ok(())
    }
}

/// What the reading thread hands to the writer: up to one batch of valid rows, and the faults of
/// the invalid rows read along the way. `T` is what a row becomes: a validated [`ImportItem`], or
/// the message that `safeguard import --grpc` sends.
pub(crate) struct Chunk<T> {
    /// Each item with its 0-based position among the valid rows; `import_batch` echoes it in errors.
    pub(crate) items: Vec<(i64, T)>,
    /// The line of each item, in the same order.
    pub(crate) lines: Vec<u64>,
    pub(crate) errors: Vec<RowError>,
    pub(crate) rows: u64,
    /// Bytes of the file consumed so far.
    pub(crate) bytes: u64,
}

impl<T> Chunk<T> {
    fn new(capacity: usize) -> Self {
        Self {
            items: Vec::with_capacity(capacity),
            lines: Vec::with_capacity(capacity),
            errors: Vec::new(),
            rows: 0,
            bytes: 0,
        }
    }
}

fn faults(line: u64, violations: Vec<Violation>) -> impl Iterator<Item = RowError> {
    violations.into_iter().map(move |v| RowError { line, field: v.field, message: v.description })
}

/// How a row is read: from CSV, and from one line of JSON Lines.
pub(crate) struct Parsers<T> {
    pub(crate) csv: fn(&CsvRow<'_>) -> Result<T, Vec<Violation>>,
    pub(crate) json: fn(&str) -> Result<T, Vec<Violation>>,
}

/// Reads rows and sends them in chunks; stops early if the receiver is gone (the import failed).
pub(crate) struct Reader<T> {
    tx: mpsc::Sender<Chunk<T>>,
    chunk: Chunk<T>,
    batch_size: usize,
    next_index: i64,
    parse: Parsers<T>,
}

impl<T> Reader<T> {
    /// A reader that sends chunks of `batch_size` items to `tx`.
    pub(crate) fn new(tx: mpsc::Sender<Chunk<T>>, batch_size: usize, parse: Parsers<T>) -> Self {
        Self { tx, chunk: Chunk::new(batch_size), batch_size, next_index: 0, parse }
    }

    /// Reads the whole input in `format`.
    pub(crate) fn read(self, format: Format, input: impl Read) -> anyhow::Result<()> {
        match format {
            Format::Csv => self.csv(input),
            Format::Jsonl => self.jsonl(input),
        }
    }

    /// Adds one row; false when the import has stopped.
    fn row(&mut self, line: u64, bytes: u64, parsed: Result<T, Vec<Violation>>) -> bool {
        self.chunk.rows += 1;
        self.chunk.bytes = bytes;
        match parsed {
            Ok(item) => {
                self.chunk.items.push((self.next_index, item));
                self.chunk.lines.push(line);
                self.next_index += 1;
            }
            Err(violations) => self.chunk.errors.extend(faults(line, violations)),
        }
        self.chunk.items.len() < self.batch_size || self.flush()
    }

    fn flush(&mut self) -> bool {
        let chunk = std::mem::replace(&mut self.chunk, Chunk::new(self.batch_size));
        self.chunk.bytes = chunk.bytes;
        self.tx.blocking_send(chunk).is_ok()
    }

    fn csv(mut self, input: impl Read) -> anyhow::Result<()> {
        let mut csv = csv::ReaderBuilder::new().has_headers(true).from_reader(input);
        let header: Vec<String> =
            csv.headers().context("cannot read the CSV header")?.iter().map(|h| h.trim().to_owned()).collect();
        check_header(&header).map_err(|e| anyhow::anyhow!("line 1: {e}"))?;
        let mut rec = csv::StringRecord::new();
        loop {
            let read = csv.read_record(&mut rec);
            let bytes = csv.position().byte();
            let parsed = match read {
                Ok(false) => break,
                Ok(true) => {
                    let line = rec.position().map_or(0, csv::Position::line);
                    if rec.iter().all(|f| f.trim().is_empty()) {
                        continue;
                    }
                    (line, (self.parse.csv)(&CsvRow { header: &header, record: &rec }))
                }
                // A row with the wrong number of fields, or not UTF-8: reported, and reading goes on.
                Err(e) => match e.kind() {
                    csv::ErrorKind::UnequalLengths { pos, expected_len, len } => (
                        pos.as_ref().map_or(0, csv::Position::line),
                        Err(vec![Violation::new("", format!("has {len} fields where the header has {expected_len}"))]),
                    ),
                    csv::ErrorKind::Utf8 { pos, .. } => (
                        pos.as_ref().map_or(0, csv::Position::line),
                        Err(vec![Violation::new("", "is not valid UTF-8")]),
                    ),
                    _ => return Err(e).context("cannot read the CSV file"),
                },
            };
            if !self.row(parsed.0, bytes, parsed.1) {
                return Ok(());
            }
        }
        self.flush();
        Ok(())
    }

    fn jsonl(mut self, input: impl Read) -> anyhow::Result<()> {
        let mut input = BufReader::with_capacity(1 << 16, input);
        let mut buf = Vec::new();
        let (mut line, mut bytes) = (0u64, 0u64);
        loop {
            buf.clear();
            let n = input.read_until(b'\n', &mut buf).context("cannot read the file")?;
            if n == 0 {
                break;
            }
            line += 1;
            bytes += n as u64;
            let parsed = match std::str::from_utf8(&buf) {
                Ok(text) if text.trim().is_empty() => continue,
                Ok(text) => (self.parse.json)(text),
                Err(_) => Err(vec![Violation::new("", "is not valid UTF-8")]),
            };
            if !self.row(line, bytes, parsed) {
                return Ok(());
            }
        }
        self.flush();
        Ok(())
    }
}

/// Imports `path` into `store`, batch by batch.
pub async fn import_file(store: &Store, path: &Path, options: &ImportOptions) -> anyhow::Result<ImportReport> {
    let (format, file, size) = open(path, options)?;
    let bar = progress_bar(options.progress, size);
    let shown = path.display().to_string();
    let input = BufReader::with_capacity(1 << 16, file);
    let report = import_reader(Some(store), format, input, &shown, options, |report, bytes| {
        bar.set_position(bytes);
        bar.set_message(format!("{} rows, {} errors", report.rows, report.errors.len()));
    })
    .await?;
    bar.finish_and_clear();
    Ok(report)
}

/// Imports `input` (named `name` in errors) into `store`, batch by batch, calling `progress` with
/// the report so far and the bytes consumed after each batch. Without a store it is a dry run:
/// every row is read and validated exactly as an import would, and nothing is written; the report
/// then counts no created or updated rows and carries the log's head as `revision` only when a
/// store is given (0 otherwise).
pub async fn import_reader<R: Read + Send + 'static>(
    store: Option<&Store>,
    format: Format,
    input: R,
    name: &str,
    options: &ImportOptions,
    mut progress: impl FnMut(&ImportReport, u64),
) -> anyhow::Result<ImportReport> {
    anyhow::ensure!(options.batch_size > 0, "the batch size must be positive");
    let started = Instant::now();
    // Two chunks in flight: one being written, one read ahead.
    let (tx, mut rx) = mpsc::channel::<Chunk<ImportItem>>(2);
    let reader = Reader::new(tx, options.batch_size, Parsers { csv: |row| item(row), json: json_item });
    let shown = name.to_owned();
    let reading = tokio::task::spawn_blocking(move || {
        reader.read(format, input).with_context(|| format!("cannot import {shown}"))
    });

    let mut report = ImportReport::default();
    let mut revision = None;
    while let Some(chunk) = rx.recv().await {
        report.rows += chunk.rows;
        report.errors.extend(chunk.errors);
        if let (Some(store), Some(&(first, _))) = (store, chunk.items.first()) {
            let outcome = store.import_batch(&options.actor, chunk.items).await.context("the import stopped")?;
            merge(&mut report, &outcome, first, &chunk.lines);
            revision = Some(outcome.revision);
        }
        progress(&report, chunk.bytes);
    }
    reading.await.context("the reading thread failed")??;

    report.revision = match (revision, store) {
        (Some(r), _) => r,
        (None, Some(store)) => store.head().await?.0,
        (None, None) => 0,
    };
    // Stable: a row's faults stay in the order they were found.
    report.errors.sort_by_key(|e| e.line);
    report.elapsed = started.elapsed();
    Ok(report)
}

/// The file's format (from the options or its extension), the open file and its size.
pub(crate) fn open(path: &Path, options: &ImportOptions) -> anyhow::Result<(Format, File, u64)> {
    let format = match options.format.or_else(|| Format::from_path(path)) {
        Some(f) => f,
        None => anyhow::bail!(
            "cannot tell the format of {} from its extension (.csv, .jsonl, .ndjson): pass --format csv or jsonl",
            path.display()
        ),
    };
    anyhow::ensure!(options.batch_size > 0, "the batch size must be positive");
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    Ok((format, file, size))
}

/// Reads `file` on a blocking thread.
pub(crate) fn spawn_reader<T: Send + 'static>(
    reader: Reader<T>,
    format: Format,
    file: File,
    path: &Path,
) -> tokio::task::JoinHandle<anyhow::Result<()>> {
    let shown: PathBuf = path.to_owned();
    tokio::task::spawn_blocking(move || {
        reader
            .read(format, BufReader::with_capacity(1 << 16, file))
            .with_context(|| format!("cannot import {}", shown.display()))
    })
}

fn merge(report: &mut ImportReport, outcome: &ImportOutcome, first: i64, lines: &[u64]) {
    report.sellers_created += outcome.sellers_created;
    report.sellers_updated += outcome.sellers_updated;
    report.sellers_unchanged += outcome.sellers_unchanged;
    report.attestations_created += outcome.attestations_created;
    report.attestations_unchanged += outcome.attestations_unchanged;
    for e in &outcome.errors {
        let line = usize::try_from(e.index - first).ok().and_then(|i| lines.get(i)).copied().unwrap_or(0);
        // The store names fields as the API does (`attestation.seller_id`); the file has columns.
        let field = e.field.split_once('.').map_or(e.field.as_str(), |(_, f)| f).to_owned();
        report.errors.push(RowError { line, field, message: e.message.clone() });
    }
}

pub(crate) fn progress_bar(show: bool, bytes: u64) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(bytes), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} ({bytes_per_sec}, eta {eta}) {msg}",
    ) {
        bar.set_style(style);
    }
    bar
}
