//! Where the checkpoint signing key and the checkpoint directory are. The key lives in a file, never
//! in the database: whoever can rewrite the database must not also be able to sign a new history.
//! With SQLite and nothing configured, the first run creates the key in a 0600 file beside the
//! database, as for the token secret; PostgreSQL deployments name the file (it is created there if
//! it does not exist yet, also 0600).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::config::Settings;
use crate::domain::note::NoteSigner;

/// The key file used when none is configured: beside the SQLite database.
pub fn default_key_path(database_url: &str) -> Option<PathBuf> {
    let rest = database_url.strip_prefix("sqlite://").or_else(|| database_url.strip_prefix("sqlite:"))?;
    let file = rest.split('?').next().unwrap_or_default();
    if file.is_empty() || file.contains(":memory:") {
        return None;
    }
    let dir = Path::new(file).parent().map(Path::to_path_buf).unwrap_or_default();
    Some(dir.join("safeguard.signing-key"))
}

/// The configured key file, or the default one.
pub fn key_path(settings: &Settings) -> anyhow::Result<PathBuf> {
    match &settings.audit.signing_key_file {
        Some(path) => Ok(path.clone()),
        None => default_key_path(&settings.database.url).ok_or_else(|| {
            anyhow::anyhow!(
                "audit.signing_key_file must be set with this database (or audit.checkpoints = false): \
                 the checkpoint key is never kept in the database"
            )
        }),
    }
}

/// The checkpoint directory: configured, or `checkpoints/` beside the key.
pub fn checkpoint_dir(settings: &Settings, key: &Path) -> PathBuf {
    settings
        .audit
        .checkpoint_dir
        .clone()
        .unwrap_or_else(|| key.parent().map(Path::to_path_buf).unwrap_or_default().join("checkpoints"))
}

/// Writes a new random key named `name` to `path` (mode 0600; fails if the file exists).
pub fn create_key(path: &Path, name: &str) -> anyhow::Result<NoteSigner> {
    let signer = NoteSigner::from_seed(name, rand::random::<[u8; 32]>())?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).with_context(|| format!("cannot create {}", path.display()))?;
    writeln!(file, "{}", signer.to_private_string()).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(signer)
}

/// The signer key, created on a first run when `create` allows it.
pub fn load_signer(settings: &Settings, create: bool) -> anyhow::Result<(NoteSigner, PathBuf)> {
    let path = key_path(settings)?;
    if path.exists() {
        let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let signer = NoteSigner::parse(&text).with_context(|| format!("{} is not a signer key", path.display()))?;
        return Ok((signer, path));
    }
    anyhow::ensure!(create, "the checkpoint signing key {} does not exist", path.display());
    let signer = create_key(&path, &settings.audit.origin)?;
    tracing::warn!(file = %path.display(), key = %signer.verifier(), "created the checkpoint signing key; give auditors its public key");
    Ok((signer, path))
}
