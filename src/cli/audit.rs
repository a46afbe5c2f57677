//! `safeguard audit export` and `safeguard audit verify`: the registry's verifiable history taken
//! out of the service, and checked with nothing but the files and the public key — no database, no
//! server. `docs/verifiable-log.md` describes every file so that an auditor can re-implement the
//! check.
//!
//! An export directory holds `events.jsonl` (every event, oldest first), `checkpoints/` (every
//! signed checkpoint of the registry log, as kept by the service) and `public-key`; and for the
//! decision log `decision-leaves.txt` (every leaf hash, in order), `decisions.jsonl` (every record
//! still kept, by leaf index) and `decision-checkpoints/`. Verifying it recomputes each event's leaf
//! and the hash chain, and checks that every checkpoint verifies and has the root of the first
//! `size` entries; that every exported decision record hashes to its leaf; with a kept checkpoint
//! (of either log), that the export extends it too.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use crate::config::Settings;
use crate::domain::chain::{EventFields, GENESIS_HASH, event_hash, leaf_bytes, unframe};
use crate::domain::merkle::{Frontier, Hash, leaf_hash};
use crate::domain::note::{Checkpoint, NoteVerifier};
use crate::domain::proof_file::TlogProof;
use crate::domain::record::RecordRow;
use crate::snapshot::{Registry, Snapshot};
use crate::store::Store;
use crate::store::merkle::{DECISIONS_LOG, REGISTRY_LOG};
use crate::tlog::{CheckpointDir, Tlog, keys};

/// `safeguard audit …`.
#[derive(Debug, Clone, clap::Args)]
pub struct AuditArgs {
    #[command(subcommand)]
    pub command: AuditCommand,
}

/// The audit commands.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum AuditCommand {
    /// Sign a fresh checkpoint and write the events, every checkpoint and the public key to DIR.
    Export {
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Verify an export directory or a single C2SP tlog-proof file, offline.
    Verify {
        /// An export directory written by `safeguard audit export`.
        #[arg(long, value_name = "DIR", conflicts_with = "proof")]
        export: Option<PathBuf>,
        /// A C2SP tlog-proof file (GetInclusionProof's tlog_proof).
        #[arg(long, value_name = "FILE", required_unless_present = "export")]
        proof: Option<PathBuf>,
        /// The log's public key (`name+id+key`), or a file holding it. Pin it: an export's own
        /// public-key file only says what the exporter claims.
        #[arg(long, value_name = "KEY")]
        key: String,
        /// A signed checkpoint kept earlier, which the log must extend.
        #[arg(long, value_name = "FILE")]
        checkpoint: Option<PathBuf>,
    },
}

/// One event in `events.jsonl`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ExportedEvent {
    pub revision: i64,
    pub time_micros: i64,
    pub actor: String,
    pub kind: String,
    pub seller_id: String,
    pub payload: String,
    pub prev_hash: String,
    pub hash: String,
}

impl ExportedEvent {
    fn fields(&self) -> EventFields<'_> {
        EventFields {
            revision: self.revision,
            time_micros: self.time_micros,
            actor: &self.actor,
            kind: &self.kind,
            seller_id: &self.seller_id,
            payload: &self.payload,
        }
    }
}

/// A registry handle for the CLI: it serves no decisions, so halting only means refusing to sign.
fn offline_registry() -> Arc<Registry> {
    Registry::new(
        Snapshot::default(),
        Arc::new(crate::domain::Policy::default_pipa()),
        std::time::Duration::from_secs(1),
    )
}

/// Signs a checkpoint of the registry log as it is now (used after `safeguard import`).
pub async fn sign_offline(settings: &Settings, store: &Store) -> anyhow::Result<Option<Arc<crate::tlog::Signed>>> {
    sign_log_offline(settings, store, REGISTRY_LOG).await
}

/// Signs a checkpoint of `log` as it is now, after bringing its tree up to date.
async fn sign_log_offline(
    settings: &Settings,
    store: &Store,
    log: &'static str,
) -> anyhow::Result<Option<Arc<crate::tlog::Signed>>> {
    if !settings.audit.checkpoints {
        return Ok(None);
    }
    if log == REGISTRY_LOG {
        store.sync_merkle().await.context("cannot bring the Merkle tree up to date")?;
    } else {
        store.sync_decision_log().await.context("cannot bring the decision log up to date")?;
    }
    let tlog = Tlog::open(settings, log, store.clone(), offline_registry(), true)?;
    Ok(Some(tlog.sign_now().await.with_context(|| format!("no checkpoint of the {log} log signed"))?))
}

/// Copies every kept checkpoint of `log` into `out/<sub>`.
fn export_checkpoints(settings: &Settings, log: &str, out: &Path, sub: &str) -> anyhow::Result<()> {
    let dest = out.join(sub);
    std::fs::create_dir_all(&dest).with_context(|| format!("cannot create {}", dest.display()))?;
    let (_, key_path) = keys::load_signer(settings, false)?;
    let dir = CheckpointDir::open(&keys::checkpoint_dir(settings, &key_path), log)?;
    for (path, note) in dir.all()? {
        let name = path.file_name().context("a checkpoint file without a name")?;
        std::fs::write(dest.join(name), note)?;
    }
    Ok(())
}

/// Writes the decision log: every leaf hash of the tree, every record still kept, by leaf index.
/// Returns (leaves, records).
async fn export_decisions(store: &Store, size: u64, out: &Path) -> anyhow::Result<(u64, u64)> {
    let mut leaves = std::io::BufWriter::new(
        std::fs::File::create(out.join("decision-leaves.txt")).context("cannot create decision-leaves.txt")?,
    );
    let mut at = 0;
    while at < size {
        let page = store.leaf_range(DECISIONS_LOG, at, 10_000.min(size - at)).await?;
        anyhow::ensure!(!page.is_empty(), "the decision tree lacks leaf {at}");
        for leaf in &page {
            writeln!(leaves, "{}", hex::encode(leaf))?;
        }
        at += page.len() as u64;
    }
    leaves.flush()?;
    let mut w = std::io::BufWriter::new(
        std::fs::File::create(out.join("decisions.jsonl")).context("cannot create decisions.jsonl")?,
    );
    let (mut from, mut records) = (0, 0);
    loop {
        let page = store.decision_rows_from(from, 5_000).await?;
        let Some(last) = page.last() else { break };
        from = last.leaf_index.map_or(u64::MAX, |i| i as u64 + 1);
        for row in page.iter().filter(|r| r.leaf_index.is_some_and(|i| (i as u64) < size)) {
            serde_json::to_writer(&mut w, row)?;
            w.write_all(b"\n")?;
            records += 1;
        }
        if from >= size {
            break;
        }
    }
    w.flush()?;
    Ok((size, records))
}

/// Writes an export of both logs to `out`; returns how many events and decision records it holds.
pub async fn export_audit(settings: &Settings, store: &Store, out: &Path) -> anyhow::Result<(u64, u64)> {
    sign_log_offline(settings, store, REGISTRY_LOG)
        .await?
        .context("checkpoints are off (audit.checkpoints): nothing to export")?;
    let decisions = sign_log_offline(settings, store, DECISIONS_LOG).await?.context("no decision checkpoint")?;
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let (signer, _) = keys::load_signer(settings, false)?;
    std::fs::write(out.join("public-key"), format!("{}\n", signer.verifier()))?;
    export_checkpoints(settings, REGISTRY_LOG, out, "checkpoints")?;
    export_checkpoints(settings, DECISIONS_LOG, out, "decision-checkpoints")?;
    let (_, records) = export_decisions(store, decisions.checkpoint.size, out).await?;
    let file = std::fs::File::create(out.join("events.jsonl")).context("cannot create events.jsonl")?;
    let mut w = std::io::BufWriter::new(file);
    let (mut after, mut count) = (0, 0u64);
    loop {
        let page = store.events_after(after, 5_000).await?;
        let Some(last) = page.last() else { break };
        after = last.revision;
        for e in page {
            let row = ExportedEvent {
                revision: e.revision,
                time_micros: e.time.as_micros(),
                actor: e.actor,
                kind: e.kind,
                seller_id: e.seller_id,
                payload: e.payload,
                prev_hash: e.prev_hash,
                hash: e.hash,
            };
            serde_json::to_writer(&mut w, &row)?;
            w.write_all(b"\n")?;
            count += 1;
        }
    }
    w.flush()?;
    Ok((count, records))
}

/// The verifier key from a key string or a file holding one.
pub fn read_key(key: &str) -> anyhow::Result<NoteVerifier> {
    let text = if Path::new(key).is_file() { std::fs::read_to_string(key)? } else { key.to_owned() };
    NoteVerifier::parse(&text).context("--key is not a verifier key (name+id+base64key)")
}

fn open_kept(path: &Path, key: &NoteVerifier) -> anyhow::Result<Checkpoint> {
    let note = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    Checkpoint::open(&note, key).with_context(|| format!("the kept checkpoint {} is refused", path.display()))
}

/// The root of every prefix of `leaves`: `roots[n]` is the root of the first `n`.
fn prefix_roots(leaves: &[Hash]) -> Vec<Hash> {
    let mut frontier = Frontier::default();
    let mut roots = Vec::with_capacity(leaves.len() + 1);
    roots.push(frontier.root());
    for leaf in leaves {
        frontier.append(*leaf);
        roots.push(frontier.root());
    }
    roots
}

/// Checks that `cp` has the root of the first `cp.size` entries.
fn check_root(cp: &Checkpoint, roots: &[Hash], what: &str, noun: &str) -> anyhow::Result<()> {
    let have = roots.len() - 1;
    let root = roots.get(cp.size as usize).with_context(|| {
        format!("{what} covers {} {noun} but the export has only {have}: {noun} were removed", cp.size)
    })?;
    anyhow::ensure!(
        *root == cp.root,
        "{what} (size {}) has root {} but the {noun} give {}: history was rewritten",
        cp.size,
        hex::encode(cp.root),
        hex::encode(root)
    );
    Ok(())
}

/// Verifies every checkpoint file in `dir` with `key` and against `roots`; returns how many there
/// are and the latest. Every one must be for `origin`.
fn check_checkpoints(
    dir: &Path,
    key: &NoteVerifier,
    roots: &[Hash],
    origin: Option<&str>,
    noun: &str,
) -> anyhow::Result<(usize, Checkpoint)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    files.sort();
    let mut latest: Option<Checkpoint> = None;
    for path in &files {
        let note = std::fs::read_to_string(path)?;
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let cp = Checkpoint::open(&note, key).with_context(|| format!("checkpoint {name} is refused"))?;
        let want = origin.or(latest.as_ref().map(|l| l.origin.as_str())).unwrap_or(&cp.origin);
        anyhow::ensure!(cp.origin == want, "checkpoint {name} is for {:?}, not {want:?}", cp.origin);
        check_root(&cp, roots, &format!("checkpoint {name}"), noun)?;
        if latest.as_ref().is_none_or(|l| cp.size >= l.size) {
            latest = Some(cp);
        }
    }
    let latest = latest.with_context(|| format!("{} holds no checkpoint", dir.display()))?;
    Ok((files.len(), latest))
}

/// The registry half of an export: the events' chain, leaves and prefix roots.
fn registry_roots(dir: &Path) -> anyhow::Result<Vec<Hash>> {
    let file = std::fs::File::open(dir.join("events.jsonl")).context("cannot open events.jsonl")?;
    let mut leaves: Vec<Hash> = Vec::new();
    let mut prev = GENESIS_HASH.to_owned();
    for (n, line) in BufReader::new(file).lines().enumerate() {
        let e: ExportedEvent = serde_json::from_str(&line?).with_context(|| format!("events.jsonl line {}", n + 1))?;
        let want = n as i64 + 1;
        anyhow::ensure!(
            e.revision == want,
            "events.jsonl line {}: revision {} where {want} belongs",
            n + 1,
            e.revision
        );
        anyhow::ensure!(e.prev_hash == prev, "revision {want}: prev_hash does not link to revision {}", want - 1);
        let hash = event_hash(&prev, &e.fields());
        anyhow::ensure!(e.hash == hash, "revision {want}: its hash does not match its fields (edited)");
        prev = hash;
        leaves.push(leaf_hash(&leaf_bytes(&e.fields())));
    }
    Ok(prefix_roots(&leaves))
}

/// What the decision half of an export holds.
struct DecisionExport {
    roots: Vec<Hash>,
    records: usize,
}

/// The decision half of an export: every leaf, and every record kept checked against its leaf.
/// `None` for an export without a decision log.
fn decision_roots(dir: &Path) -> anyhow::Result<Option<DecisionExport>> {
    let text = match std::fs::read_to_string(dir.join("decision-leaves.txt")) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).context("cannot read decision-leaves.txt"),
    };
    let mut leaves = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let bytes = hex::decode(line).ok().and_then(|b| Hash::try_from(b.as_slice()).ok());
        leaves.push(bytes.with_context(|| format!("decision-leaves.txt line {}: not a 32-byte hex hash", n + 1))?);
    }
    let file = std::fs::File::open(dir.join("decisions.jsonl")).context("cannot open decisions.jsonl")?;
    let (mut records, mut next) = (0, 0u64);
    for (n, line) in BufReader::new(file).lines().enumerate() {
        let row: RecordRow = serde_json::from_str(&line?).with_context(|| format!("decisions.jsonl line {}", n + 1))?;
        let index = row.leaf_index.and_then(|i| u64::try_from(i).ok());
        let index = index.with_context(|| format!("decisions.jsonl line {}: no leaf index", n + 1))?;
        anyhow::ensure!(index >= next, "decisions.jsonl line {}: entry {index} is out of order or repeated", n + 1);
        next = index + 1;
        let leaf = leaves.get(index as usize).with_context(|| {
            format!("decision {} is entry {index}, beyond the log's {} leaves", row.decision_id, leaves.len())
        })?;
        let bytes = row.leaf_bytes().context("a record without a leaf index")?;
        anyhow::ensure!(
            leaf_hash(&bytes) == *leaf,
            "decision {} (entry {index}) does not hash to its leaf: the record was edited after it was written",
            row.decision_id
        );
        records += 1;
    }
    Ok(Some(DecisionExport { roots: prefix_roots(&leaves), records }))
}

/// Verifies an export directory; returns a one-line summary, or exactly what is wrong.
pub fn verify_export(dir: &Path, key: &NoteVerifier, kept: Option<&Path>) -> anyhow::Result<String> {
    let roots = registry_roots(dir)?;
    let (count, latest) = check_checkpoints(&dir.join("checkpoints"), key, &roots, None, "events")?;
    let mut summary = format!(
        "ok: {} events, {count} checkpoints, latest {} at size {} root {}",
        roots.len() - 1,
        latest.origin,
        latest.size,
        hex::encode(latest.root)
    );
    let decisions_origin = crate::tlog::origin_of(&latest.origin, DECISIONS_LOG);
    let decisions = decision_roots(dir)?;
    if let Some(d) = &decisions {
        let (dcount, dlatest) = check_checkpoints(
            &dir.join("decision-checkpoints"),
            key,
            &d.roots,
            Some(&decisions_origin),
            "decision records",
        )?;
        let leaves = d.roots.len() - 1;
        summary.push_str(&format!(
            "; {leaves} decisions ({} records checked against their leaves, {} pruned), {dcount} checkpoints, \
             latest at size {} root {}",
            d.records,
            leaves - d.records,
            dlatest.size,
            hex::encode(dlatest.root)
        ));
    }
    if let Some(path) = kept {
        let cp = open_kept(path, key)?;
        if cp.origin == latest.origin {
            check_root(&cp, &roots, "the kept checkpoint", "events")?;
        } else if let Some(d) = decisions.as_ref().filter(|_| cp.origin == decisions_origin) {
            check_root(&cp, &d.roots, "the kept checkpoint", "decision records")?;
        } else {
            anyhow::bail!("the kept checkpoint is for {:?}, not for a log of this export", cp.origin);
        }
        summary.push_str(&format!("; extends the kept checkpoint of {} at size {}", cp.origin, cp.size));
    }
    Ok(summary)
}

/// The fields of a leaf's canonical bytes, for showing what a proof proved.
fn describe_leaf(data: &[u8]) -> String {
    if let Some(decision) = RecordRow::describe_leaf(data) {
        return decision;
    }
    match unframe(data).as_deref() {
        Some([rev, _time, actor, kind, seller, _payload]) if rev.len() == 8 => format!(
            "revision {} {} by {} (seller {:?})",
            i64::from_be_bytes((*rev).try_into().unwrap_or_default()),
            String::from_utf8_lossy(kind),
            String::from_utf8_lossy(actor),
            String::from_utf8_lossy(seller)
        ),
        _ => format!("{} bytes", data.len()),
    }
}

/// Verifies a tlog-proof file; returns a one-line summary, or exactly what is wrong.
pub fn verify_proof(text: &str, key: &NoteVerifier, kept: Option<&Path>) -> anyhow::Result<String> {
    let proof = TlogProof::parse(text).map_err(|e| anyhow::anyhow!("malformed tlog-proof: {e}"))?;
    let (cp, data) = proof.verify(key, None).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut summary =
        format!("ok: {} is entry {} of {} at size {}", describe_leaf(&data), proof.index, cp.origin, cp.size);
    if let Some(path) = kept {
        let kept = open_kept(path, key)?;
        anyhow::ensure!(
            kept.origin == cp.origin,
            "the kept checkpoint is for {:?}, the proof for {:?}",
            kept.origin,
            cp.origin
        );
        anyhow::ensure!(
            kept.size != cp.size || kept.root == cp.root,
            "the kept checkpoint and the proof's have the same size {} but different roots: the log forked",
            cp.size
        );
        if kept.size != cp.size {
            summary.push_str(&format!(
                "; the kept checkpoint (size {}) needs a consistency proof (GetConsistencyProof) to compare",
                kept.size
            ));
        }
    }
    Ok(summary)
}

/// Runs `safeguard audit …`.
pub async fn run_audit(settings: &Settings, args: AuditArgs) -> anyhow::Result<()> {
    match args.command {
        AuditCommand::Export { out } => {
            let store = super::open_store(settings).await?;
            let (events, decisions) = export_audit(settings, &store, &out).await?;
            eprintln!(
                "exported {events} events, {decisions} decision records and their checkpoints to {}",
                out.display()
            );
            Ok(())
        }
        AuditCommand::Verify { export, proof, key, checkpoint } => {
            let key = read_key(&key)?;
            let summary = match (export, proof) {
                (Some(dir), _) => verify_export(&dir, &key, checkpoint.as_deref())?,
                (None, Some(file)) => {
                    let text =
                        std::fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?;
                    verify_proof(&text, &key, checkpoint.as_deref())?
                }
                (None, None) => anyhow::bail!("give --export DIR or --proof FILE"),
            };
            println!("{summary}");
            Ok(())
        }
    }
}
