//! The checkpoint directory, outside the database:
//!
//! ```text
//! DIR/public-key                       the verifier key auditors pin
//! DIR/<log>/latest.checkpoint          the last signed checkpoint (replaced atomically)
//! DIR/<log>/<size, 20 digits>.checkpoint   every checkpoint ever signed, never rewritten
//! ```
//!
//! The per-checkpoint files are created with `create_new`, so the directory only ever grows and an
//! operator can ship it to WORM storage or to auditors as it is.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

/// One log's part of the checkpoint directory.
#[derive(Debug, Clone)]
pub struct CheckpointDir {
    root: PathBuf,
    log: String,
}

impl CheckpointDir {
    /// The directory of `log` under `root`, created if needed.
    pub fn open(root: &Path, log: &str) -> anyhow::Result<Self> {
        let dir = root.join(log);
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        Ok(Self { root: root.to_owned(), log: log.to_owned() })
    }

    /// This log's directory.
    pub fn path(&self) -> PathBuf {
        self.dir()
    }

    fn dir(&self) -> PathBuf {
        self.root.join(&self.log)
    }

    /// Writes the public key auditors verify with (idempotent).
    pub fn write_public_key(&self, vkey: &str) -> anyhow::Result<()> {
        let path = self.root.join("public-key");
        if std::fs::read_to_string(&path).is_ok_and(|k| k.trim() == vkey) {
            return Ok(());
        }
        std::fs::write(&path, format!("{vkey}\n")).with_context(|| format!("cannot write {}", path.display()))
    }

    /// The last signed checkpoint note, if any.
    pub fn latest(&self) -> anyhow::Result<Option<String>> {
        let path = self.dir().join("latest.checkpoint");
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok(Some(text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    /// Keeps a newly signed checkpoint: its own file first, then the latest pointer.
    pub fn keep(&self, size: u64, note: &str) -> anyhow::Result<()> {
        let path = self.dir().join(format!("{size:020}.checkpoint"));
        match std::fs::OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(mut f) => {
                f.write_all(note.as_bytes()).with_context(|| format!("cannot write {}", path.display()))?;
                f.sync_all().with_context(|| format!("cannot sync {}", path.display()))?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                // Ed25519 is deterministic: the same tree signs to the same note. Anything else at
                // this size is a second history, which the append-only directory must not absorb.
                let existing = std::fs::read_to_string(&path).unwrap_or_default();
                anyhow::ensure!(existing == note, "{} already holds a different checkpoint", path.display());
            }
            Err(e) => return Err(e).with_context(|| format!("cannot create {}", path.display())),
        }
        let tmp = self.dir().join("latest.checkpoint.tmp");
        std::fs::write(&tmp, note).with_context(|| format!("cannot write {}", tmp.display()))?;
        std::fs::rename(&tmp, self.dir().join("latest.checkpoint")).context("cannot replace latest.checkpoint")?;
        Ok(())
    }

    /// Every kept checkpoint note, oldest first.
    pub fn all(&self) -> anyhow::Result<Vec<(PathBuf, String)>> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(self.dir()).with_context(|| format!("cannot list {}", self.dir().display()))? {
            let path = entry?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            if name.len() == 31 && name.ends_with(".checkpoint") && name.as_bytes()[..20].iter().all(u8::is_ascii_digit)
            {
                let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
                out.push((path, text));
            }
        }
        out.sort();
        Ok(out)
    }
}
