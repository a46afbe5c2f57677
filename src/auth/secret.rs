//! Where the HS256 secret comes from: configured inline, from a file, or — on a first run with no
//! key configured and an SQLite database — created at random in a 0600 file beside the database, so
//! that running the service stays one command and is never open to anyone.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::config::Settings;

use super::keys::KeyError;

/// The secret file used when no key is configured: beside the SQLite database.
pub fn default_secret_path(database_url: &str) -> Option<PathBuf> {
    let rest = database_url.strip_prefix("sqlite://").or_else(|| database_url.strip_prefix("sqlite:"))?;
    let file = rest.split('?').next().unwrap_or_default();
    if file.is_empty() || file.contains(":memory:") {
        return None;
    }
    let dir = Path::new(file).parent().map(Path::to_path_buf).unwrap_or_default();
    Some(dir.join("safeguard.secret"))
}

fn read_secret(path: &Path) -> Result<Vec<u8>, KeyError> {
    let text = std::fs::read_to_string(path).map_err(|e| KeyError(format!("cannot read {}: {e}", path.display())))?;
    Ok(text.trim().as_bytes().to_vec())
}

fn create_secret(path: &Path) -> Result<Vec<u8>, KeyError> {
    let secret = hex::encode(rand::random::<[u8; 32]>());
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|e| KeyError(format!("cannot create {}: {e}", path.display())))?;
    file.write_all(secret.as_bytes()).map_err(|e| KeyError(format!("cannot write {}: {e}", path.display())))?;
    Ok(secret.into_bytes())
}

/// The HS256 secret in force, if any. `create`: make one on a first run without keys.
pub fn resolve_hs256_secret(settings: &Settings, create: bool) -> Result<Option<Vec<u8>>, KeyError> {
    let auth = &settings.auth;
    if let Some(secret) = &auth.hs256_secret {
        return Ok(Some(secret.expose().as_bytes().to_vec()));
    }
    if let Some(path) = &auth.hs256_secret_file {
        return read_secret(path).map(Some);
    }
    if auth.has_keys() {
        return Ok(None);
    }
    let path = default_secret_path(&settings.database.url).ok_or_else(|| {
        KeyError(
            "no token key is configured: set auth.hs256_secret(_file) or a public key (required with PostgreSQL)"
                .into(),
        )
    })?;
    if path.exists() {
        return read_secret(&path).map(Some);
    }
    if !create {
        return Err(KeyError(format!("no token key is configured and {} does not exist yet", path.display())));
    }
    let secret = create_secret(&path)?;
    tracing::warn!(
        file = %path.display(),
        "no token key configured: created a random HS256 secret; mint a token with \
         `safeguard token --role checkout --sub my-service`"
    );
    Ok(Some(secret))
}
