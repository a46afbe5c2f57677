//! The registry snapshot saved to a signed file beside the checkpoints, so that a restart folds
//! only the tail of the log instead of all of it.
//!
//! The log stays the truth. The file is written only from a snapshot whose every event this
//! process checked, and signed with the checkpoint key (which never lives in the database). At
//! start-up it is trusted only if its signature verifies, it parses, and the database still holds
//! the event at its revision, intact and with the hash the file names; otherwise it is ignored and
//! the whole log is folded as without it. The events after it are folded with the usual checks,
//! linking to its hash. The events under it are checked again in the background once the service
//! serves ([`spawn_history_check`]): an event edited in the database after the file was written
//! halts the registry, as the whole fold would have.
//!
//! Layout (little-endian), then a 64-byte Ed25519 signature over
//! SHA-256(`"safeguard registry snapshot v1\n"` ‖ body):
//! ```text
//! magic "SGREGSNP" · version u32 · key id u32 · revision i64 · hash_len u16 · hash ·
//! sellers u64 · orders u32
//! per seller: len u32 · the record as the snapshot holds it (record.rs)
//! per order:  id_len u32 · id · scope u8 (0 seller, 1 country) · seller: len u8 · id | country [u8; 2] ·
//!             categories u32 · effective i64 · lifted u8
//! ```

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tokio::task::JoinHandle;

use super::record;
use super::{Registry, Snapshot};
use crate::domain::note::{NoteSigner, NoteVerifier};
use crate::domain::replay::ChainVerifier;
use crate::domain::verify::{OrderView, SuspensionScope};
use crate::domain::{Country, SellerId, Set, Timestamp};
use crate::error::Result;
use crate::store::{FoldedLog, Store};

/// The file's name in the registry's checkpoint directory.
pub const FILE_NAME: &str = "snapshot.bin";
const MAGIC: &[u8; 8] = b"SGREGSNP";
const VERSION: u32 = 1;
/// What the signature covers before the body, so that it can never be taken for a signature over
/// anything else the key signs (checkpoint notes).
const DOMAIN: &[u8] = b"safeguard registry snapshot v1\n";
const SIGNATURE: usize = 64;
/// How long the background check waits before it retries after a database error.
const RETRY: Duration = Duration::from_secs(5);

/// The saved snapshot file: where it is and the key it is signed with.
pub struct SavedFile {
    path: PathBuf,
    signer: NoteSigner,
    verifier: NoteVerifier,
    /// The revision of the file on disk as far as this process knows (0: none, or one not
    /// trusted), so that an unchanged snapshot is not written again.
    written: AtomicI64,
    /// Serializes writers: two saves never race on the temporary file.
    writing: Mutex<()>,
}

impl std::fmt::Debug for SavedFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SavedFile").field("path", &self.path).field("key", &self.verifier.label()).finish()
    }
}

/// How the start-up snapshot was loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartUp {
    /// The whole log was folded; why the file was not used, if there was one.
    WholeLog { file_ignored: Option<String> },
    /// From the saved file at `revision`, with the `tail` events after it folded.
    FromFile { revision: i64, tail: i64 },
}

impl SavedFile {
    /// The file `DIR/registry/snapshot.bin` of the checkpoint directory `dir`, signed by `signer`.
    pub fn new(dir: &Path, signer: NoteSigner) -> Self {
        let verifier = signer.verifier();
        Self { path: dir.join(FILE_NAME), signer, verifier, written: AtomicI64::new(0), writing: Mutex::new(()) }
    }

    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The snapshot in the file, verified and parsed; `Ok(None)` when there is no file. Blocking.
    pub fn read(&self) -> std::result::Result<Option<Snapshot>, String> {
        let bytes = match std::fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("cannot read {}: {e}", self.path.display())),
        };
        decode(&bytes, &self.verifier).map(Some)
    }

    /// Writes `snapshot` to the file atomically: a temporary file, synced, renamed over it, and
    /// the directory synced. Blocking.
    pub fn write(&self, snapshot: &Snapshot) -> std::io::Result<()> {
        let _one = self.writing.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if self.written.load(Ordering::Acquire) == snapshot.revision {
            return Ok(());
        }
        let tmp = self.path.with_extension("bin.tmp");
        let file = std::fs::File::create(&tmp)?;
        let mut out = Hashing { inner: BufWriter::with_capacity(1 << 20, file), digest: Sha256::new() };
        out.digest.update(DOMAIN);
        encode_body(snapshot, self.signer.id(), &mut out)?;
        let digest = out.digest.finalize();
        let mut file = out.inner;
        file.write_all(&self.signer.sign_bytes(&digest))?;
        let file = file.into_inner().map_err(std::io::IntoInnerError::into_error)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp, &self.path)?;
        if let Some(dir) = self.path.parent() {
            // The rename itself is durable only once the directory is.
            std::fs::File::open(dir)?.sync_all()?;
        }
        self.written.store(snapshot.revision, Ordering::Release);
        Ok(())
    }

    /// Saves the registry's current snapshot on a blocking task, unless it is already saved, the
    /// registry is halted, or not every event under it has been checked by this process yet (a
    /// start from the file whose background check has not finished): the file only ever holds
    /// what was verified.
    pub fn save_soon(self: &Arc<Self>, registry: &Registry) {
        if registry.halted().is_some() || !registry.history_checked() {
            return;
        }
        let snapshot = registry.snapshot();
        if snapshot.revision == 0 || snapshot.revision == self.written.load(Ordering::Acquire) {
            return;
        }
        let me = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            match me.write(&snapshot) {
                Ok(()) => tracing::info!(
                    revision = snapshot.revision,
                    sellers = snapshot.len(),
                    file = %me.path.display(),
                    ms = started.elapsed().as_millis() as u64,
                    "saved the registry snapshot"
                ),
                Err(e) => tracing::warn!(error = %e, file = %me.path.display(), "cannot save the registry snapshot"),
            }
        });
    }
}

/// A writer that hashes what it writes.
struct Hashing<W> {
    inner: W,
    digest: Sha256,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.digest.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn len_u32(len: usize) -> std::io::Result<[u8; 4]> {
    u32::try_from(len)
        .map(u32::to_le_bytes)
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "a length does not fit 32 bits"))
}

/// Writes the body (everything the signature covers after the domain) of `snapshot`.
fn encode_body(snapshot: &Snapshot, key_id: u32, out: &mut impl Write) -> std::io::Result<()> {
    out.write_all(MAGIC)?;
    out.write_all(&VERSION.to_le_bytes())?;
    out.write_all(&key_id.to_le_bytes())?;
    out.write_all(&snapshot.revision.to_le_bytes())?;
    let hash = snapshot.hash.as_bytes();
    let hash_len = u16::try_from(hash.len())
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "the chain hash is too long"))?;
    out.write_all(&hash_len.to_le_bytes())?;
    out.write_all(hash)?;
    out.write_all(&(snapshot.len() as u64).to_le_bytes())?;
    out.write_all(&len_u32(snapshot.orders_by_id.len())?)?;
    // The live records only, walking the tables: dead bytes in the arenas are not saved.
    for r in snapshot.iter() {
        let bytes = r.bytes();
        out.write_all(&len_u32(bytes.len())?)?;
        out.write_all(bytes)?;
    }
    for (id, order) in snapshot.orders_by_id.iter() {
        out.write_all(&len_u32(id.len())?)?;
        out.write_all(id.as_bytes())?;
        match &order.scope {
            SuspensionScope::Seller(seller) => {
                out.write_all(&[0, seller.as_str().len().min(SellerId::MAX_LEN) as u8])?;
                out.write_all(seller.as_str().as_bytes())?;
            }
            SuspensionScope::Country(country) => {
                out.write_all(&[1])?;
                out.write_all(&country.as_bytes())?;
            }
        }
        out.write_all(&order.categories.bits().to_le_bytes())?;
        out.write_all(&order.effective.as_micros().to_le_bytes())?;
        out.write_all(&[u8::from(order.lifted)])?;
    }
    Ok(())
}

/// Reads a file's bytes: the signature first, then every length checked, so a damaged or
/// foreign file is an error and never a panic.
pub fn decode(bytes: &[u8], verifier: &NoteVerifier) -> std::result::Result<Snapshot, String> {
    let Some(split) = bytes.len().checked_sub(SIGNATURE) else { return Err("the file is too short".into()) };
    let (body, signature) = bytes.split_at(split);
    let mut r = Reader { bytes: body, at: 0 };
    if r.take(MAGIC.len())? != MAGIC {
        return Err("the file is not a saved registry snapshot".into());
    }
    let version = r.u32()?;
    if version != VERSION {
        return Err(format!("format version {version} is not {VERSION}"));
    }
    let key_id = r.u32()?;
    if key_id != verifier.id() {
        return Err(format!("signed by key {key_id:08x}, not by {}", verifier.label()));
    }
    let mut digest = Sha256::new();
    digest.update(DOMAIN);
    digest.update(body);
    let signature: &[u8; SIGNATURE] = signature.try_into().map_err(|_| "the signature is cut short".to_owned())?;
    if !verifier.verify_bytes(&digest.finalize(), signature) {
        return Err(format!("the signature does not verify with {}: the file was altered", verifier.label()));
    }
    let revision = r.i64()?;
    if revision < 1 {
        return Err(format!("revision {revision} is not a revision of the log"));
    }
    let hash_len = usize::from(r.u16()?);
    let hash = std::str::from_utf8(r.take(hash_len)?).map_err(|_| "the chain hash is not text".to_owned())?.to_owned();
    let sellers = r.u64()?;
    let orders = r.u32()?;
    let mut snapshot = Snapshot { revision, hash, ..Snapshot::default() };
    for _ in 0..sellers {
        let len = r.u32()? as usize;
        let bytes = r.take(len)?;
        if record::checked_len(bytes) != Some(len) {
            return Err(format!("a seller record at byte {} is malformed", r.at - len));
        }
        snapshot.sellers.put(bytes);
    }
    if snapshot.sellers.len() as u64 != sellers {
        return Err("a seller appears twice".into());
    }
    snapshot.sellers.shrink_to_fit();
    for _ in 0..orders {
        let len = r.u32()? as usize;
        let id = std::str::from_utf8(r.take(len)?).map_err(|_| "an order id is not text".to_owned())?.to_owned();
        let scope = match r.take(1)?[0] {
            0 => {
                let len = usize::from(r.take(1)?[0]);
                let seller =
                    std::str::from_utf8(r.take(len)?).map_err(|_| "an order's seller is not text".to_owned())?;
                SuspensionScope::Seller(SellerId::parse(seller).map_err(|why| format!("an order's seller {why}"))?)
            }
            1 => {
                let code = std::str::from_utf8(r.take(2)?).map_err(|_| "an order's country is not text".to_owned())?;
                SuspensionScope::Country(Country::parse(code).map_err(|why| format!("an order's country {why}"))?)
            }
            other => return Err(format!("order scope {other} is unknown")),
        };
        let categories = Set::from_bits(r.u32()?);
        let effective = Timestamp::from_micros(r.i64()?);
        let lifted = match r.take(1)?[0] {
            0 => false,
            1 => true,
            other => return Err(format!("an order's lifted flag is {other}")),
        };
        if snapshot.orders_by_id.insert(id, OrderView { scope, categories, effective, lifted }).is_some() {
            return Err("an order appears twice".into());
        }
    }
    if r.at != body.len() {
        return Err(format!("{} bytes follow the last order", body.len() - r.at));
    }
    snapshot.orders = Arc::new(snapshot.orders_by_id.values().cloned().collect());
    Ok(snapshot)
}

/// A cursor over the body that fails, never panics, past the end.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> std::result::Result<&'a [u8], String> {
        let end = self.at.checked_add(n).filter(|&end| end <= self.bytes.len());
        let Some(end) = end else { return Err(format!("the file ends early (at byte {})", self.bytes.len())) };
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn array<const N: usize>(&mut self) -> std::result::Result<[u8; N], String> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u16(&mut self) -> std::result::Result<u16, String> {
        self.array().map(u16::from_le_bytes)
    }

    fn u32(&mut self) -> std::result::Result<u32, String> {
        self.array().map(u32::from_le_bytes)
    }

    fn u64(&mut self) -> std::result::Result<u64, String> {
        self.array().map(u64::from_le_bytes)
    }

    fn i64(&mut self) -> std::result::Result<i64, String> {
        self.array().map(i64::from_le_bytes)
    }
}

/// A snapshot loaded from the saved file and the tail of the log.
pub(crate) struct FromFile {
    pub snapshot: Snapshot,
    /// Where the tail stopped being trustworthy, if it did: the caller halts.
    pub broken: Option<(i64, String)>,
    /// The file's revision and chain hash, which the background check must reach.
    pub revision: i64,
    pub hash: String,
}

/// The snapshot from `saved` and the events after it in `store`, or why the file cannot be used
/// (logged by the caller; the whole log is folded instead). An error is the database's.
pub(crate) async fn load(store: &Store, saved: &Arc<SavedFile>) -> Result<std::result::Result<FromFile, String>> {
    let file = Arc::clone(saved);
    let read = tokio::task::spawn_blocking(move || file.read()).await;
    let mut snapshot = match read {
        Ok(Ok(Some(snapshot))) => snapshot,
        Ok(Ok(None)) => return Ok(Err("there is no saved snapshot".into())),
        Ok(Err(why)) => return Ok(Err(why)),
        Err(e) => return Ok(Err(format!("reading the file failed: {e}"))),
    };
    let (revision, hash) = (snapshot.revision, snapshot.hash.clone());
    let (head, _) = store.head().await?;
    if head < revision {
        return Ok(Err(format!(
            "the file is at revision {revision} but the database's log ends at {head} (a restored or truncated \
             database?)"
        )));
    }
    let event = store.events_after(revision - 1, 1).await?;
    let Some(event) = event.first().filter(|e| e.revision == revision) else {
        return Ok(Err(format!("the database holds no event at the file's revision {revision}")));
    };
    // The event at the file's revision must be intact (its hash covers its fields and the link
    // before it) and be the one the file was folded to.
    if !ChainVerifier::resume(revision - 1, &event.prev_hash).check(&event.logged()) {
        return Ok(Err(format!("the database's event at the file's revision {revision} does not match its hash")));
    }
    if event.hash != hash {
        return Ok(Err(format!(
            "the database's event at revision {revision} has another hash than the file's: the log was replaced"
        )));
    }
    // Only a file the database vouches for counts as saved: one it refuses is written over at the
    // next save, even at the same revision.
    saved.written.store(revision, Ordering::Release);
    let FoldedLog { revision: last, hash: last_hash, broken } =
        store.fold_log_from(&mut snapshot, ChainVerifier::resume(revision, &hash)).await?;
    snapshot.sellers.shrink_to_fit();
    snapshot.revision = last;
    snapshot.hash = last_hash;
    Ok(Ok(FromFile { snapshot, broken, revision, hash }))
}

/// Checks, after the service serves, the events under the saved snapshot it started from: every
/// link from revision 1 to `revision`, every event's hash, and that the hash at `revision` is the
/// file's. Only hashing: no payload is parsed and nothing is built. Any difference halts the
/// registry. A database error is retried.
pub fn spawn_history_check(store: Store, registry: Arc<Registry>, revision: i64, hash: String) -> JoinHandle<()> {
    tokio::spawn(async move {
        metrics::gauge!("safeguard_registry_history_checked").set(0.0);
        loop {
            if registry.halted().is_some() {
                return;
            }
            let started = Instant::now();
            match check_history(&store, revision, &hash).await {
                Ok(None) => {
                    registry.set_history_checked();
                    metrics::gauge!("safeguard_registry_history_checked").set(1.0);
                    tracing::info!(
                        revision,
                        ms = started.elapsed().as_millis() as u64,
                        "the log under the saved snapshot checks: every event up to its revision is intact"
                    );
                    return;
                }
                Ok(Some((at, problem))) => {
                    registry.halt(format!(
                        "registry log rejected at revision {at}: {problem} (under the saved snapshot this replica \
                         started from, at revision {revision})"
                    ));
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot check the log under the saved snapshot; retrying");
                    tokio::time::sleep(RETRY).await;
                }
            }
        }
    })
}

async fn check_history(store: &Store, revision: i64, hash: &str) -> Result<Option<(i64, String)>> {
    let mut pages = store.event_pages(0, revision);
    let mut chain = ChainVerifier::new();
    'pages: while let Some(page) = pages.next().await {
        for e in &page? {
            if e.revision > revision {
                break 'pages;
            }
            if !chain.check(&e.logged()) {
                let (at, problem) = chain.problem().unwrap_or((e.revision, "the chain is broken"));
                return Ok(Some((at, problem.to_owned())));
            }
        }
    }
    let last = chain.last_revision();
    if last != revision {
        return Ok(Some((last + 1, format!("the log ends at revision {last}, under the saved snapshot's {revision}"))));
    }
    if chain.last_hash() != hash {
        return Ok(Some((
            revision,
            format!("revision {revision} does not have the hash the saved snapshot was folded to"),
        )));
    }
    Ok(None)
}

#[cfg(test)]
#[path = "saved_tests.rs"]
mod tests;
