//! `safeguard audit export` and `safeguard audit verify`: the registry's verifiable history taken
//! out of the service, and checked with nothing but the files and the public key — no database, no
//! server. `docs/verifiable-log.md` describes every file so that an auditor can re-implement the
//! check.
//!
//! An export directory holds `events.jsonl` (every event, oldest first), `checkpoints/` (every
//! signed checkpoint, as kept by the service) and `public-key`. Verifying it recomputes each event's
//! leaf and the hash chain, and checks that every checkpoint verifies and has the root of the first
//! `size` events; with a kept checkpoint, that the export extends it too.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use crate::config::Settings;
use crate::domain::chain::{EventFields, GENESIS_HASH, event_hash, leaf_bytes};
use crate::domain::merkle::{Frontier, Hash, leaf_hash};
use crate::domain::note::{Checkpoint, NoteVerifier};
use crate::domain::proof_file::TlogProof;
use crate::snapshot::{Registry, Snapshot};
use crate::store::Store;
use crate::store::merkle::REGISTRY_LOG;
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

/// Signs a checkpoint of the log as it is now (used after `safeguard import` and by export).
pub async fn sign_offline(settings: &Settings, store: &Store) -> anyhow::Result<Option<Arc<crate::tlog::Signed>>> {
    if !settings.audit.checkpoints {
        return Ok(None);
    }
    store.sync_merkle().await.context("cannot bring the Merkle tree up to date")?;
    let tlog = Tlog::open(settings, store.clone(), offline_registry(), true)?;
    Ok(Some(tlog.sign_now().await.context("no checkpoint signed")?))
}

/// Writes an export of the registry log to `out`; returns how many events it holds.
pub async fn export_audit(settings: &Settings, store: &Store, out: &Path) -> anyhow::Result<u64> {
    sign_offline(settings, store).await?.context("checkpoints are off (audit.checkpoints): nothing to export")?;
    std::fs::create_dir_all(out.join("checkpoints")).with_context(|| format!("cannot create {}", out.display()))?;
    let (signer, key_path) = keys::load_signer(settings, false)?;
    let dir = CheckpointDir::open(&keys::checkpoint_dir(settings, &key_path), REGISTRY_LOG)?;
    std::fs::write(out.join("public-key"), format!("{}\n", signer.verifier()))?;
    for (path, note) in dir.all()? {
        let name = path.file_name().context("a checkpoint file without a name")?;
        std::fs::write(out.join("checkpoints").join(name), note)?;
    }
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
    Ok(count)
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

/// Verifies an export directory; returns a one-line summary, or exactly what is wrong.
pub fn verify_export(dir: &Path, key: &NoteVerifier, kept: Option<&Path>) -> anyhow::Result<String> {
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
    let mut roots = Frontier::default();
    let mut root_at = vec![roots.root()];
    for leaf in &leaves {
        roots.append(*leaf);
        root_at.push(roots.root());
    }
    let check = |cp: &Checkpoint, what: &str| -> anyhow::Result<()> {
        let root = root_at.get(cp.size as usize).with_context(|| {
            format!("{what} covers {} events but the export has only {}: events were removed", cp.size, leaves.len())
        })?;
        anyhow::ensure!(
            *root == cp.root,
            "{what} (size {}) has root {} but the events give {}: history was rewritten",
            cp.size,
            hex::encode(cp.root),
            hex::encode(root)
        );
        Ok(())
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join("checkpoints"))
        .context("cannot list checkpoints/")?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    files.sort();
    anyhow::ensure!(!files.is_empty(), "the export holds no checkpoint");
    let mut latest: Option<Checkpoint> = None;
    for path in &files {
        let note = std::fs::read_to_string(path)?;
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let cp = Checkpoint::open(&note, key).with_context(|| format!("checkpoint {name} is refused"))?;
        check(&cp, &format!("checkpoint {name}"))?;
        if latest.as_ref().is_none_or(|l| cp.size >= l.size) {
            latest = Some(cp);
        }
    }
    if let Some(path) = kept {
        check(&open_kept(path, key)?, "the kept checkpoint")?;
    }
    let latest = latest.context("no checkpoint")?;
    Ok(format!(
        "ok: {} events, {} checkpoints, latest {} at size {} root {}",
        leaves.len(),
        files.len(),
        latest.origin,
        latest.size,
        hex::encode(latest.root)
    ))
}

/// The fields of a leaf's canonical bytes, for showing what a proof proved.
fn describe_leaf(data: &[u8]) -> String {
    let mut fields = Vec::new();
    let mut rest = data;
    while rest.len() >= 8 {
        let (len, tail) = rest.split_at(8);
        let len = u64::from_be_bytes(len.try_into().unwrap_or_default()) as usize;
        if tail.len() < len {
            break;
        }
        fields.push(&tail[..len]);
        rest = &tail[len..];
    }
    match fields.as_slice() {
        [rev, _time, actor, kind, seller, _payload] if rev.len() == 8 => format!(
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
            let events = export_audit(settings, &store, &out).await?;
            eprintln!("exported {events} events and their checkpoints to {}", out.display());
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
