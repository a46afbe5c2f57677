//! C2SP signed notes with Ed25519 keys, and the C2SP `tlog-checkpoint` they carry. No I/O.
//!
//! - A checkpoint body is three lines: the log's origin, the tree size in decimal, the base64 root.
//! - A signed note is the text (ending in a newline), a blank line, and one line per signature:
//!   `— <key name> base64(key id || signature)`.
//! - A key's id is the first 4 bytes of SHA-256(name || 0x0A || 0x01 || public key); a verifier
//!   key is written `name+hex(id)+base64(0x01 || public key)`, a signer key
//!   `PRIVATE+KEY+name+hex(id)+base64(0x01 || seed)` — the forms `golang.org/x/mod/sumdb/note`
//!   reads, so any Go witness or verifier can check safeguard's checkpoints.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use super::merkle::Hash;

/// The Ed25519 algorithm byte of signed-note keys.
const ALG_ED25519: u8 = 0x01;
/// The em dash that starts every signature line.
const SIG_PREFIX: &str = "\u{2014} ";

/// Why a note, key or checkpoint is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    #[error("malformed key: {0}")]
    Key(String),
    #[error("malformed note: {0}")]
    Malformed(String),
    #[error("the note has no signature by {0}")]
    Unsigned(String),
    #[error("the signature by {0} does not verify: the note was altered or signed by another key")]
    BadSignature(String),
    #[error("malformed checkpoint: {0}")]
    Checkpoint(String),
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(|c| c == '+' || c.is_whitespace() || c.is_control())
}

/// The key id of `name` with Ed25519 public key `public`.
pub fn key_id(name: &str, public: &[u8; 32]) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update([ALG_ED25519]);
    h.update(public);
    let d = h.finalize();
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

/// A key that signs notes.
pub struct NoteSigner {
    name: String,
    id: u32,
    key: SigningKey,
}

impl std::fmt::Debug for NoteSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NoteSigner({}+{:08x})", self.name, self.id)
    }
}

impl NoteSigner {
    /// A signer named `name` from a 32-byte Ed25519 seed.
    pub fn from_seed(name: &str, seed: [u8; 32]) -> Result<Self, NoteError> {
        if !valid_name(name) {
            return Err(NoteError::Key(format!("key name {name:?} must be non-empty, without '+' or spaces")));
        }
        let key = SigningKey::from_bytes(&seed);
        let id = key_id(name, key.verifying_key().as_bytes());
        Ok(Self { name: name.to_owned(), id, key })
    }

    /// Reads `PRIVATE+KEY+name+hexid+base64(0x01||seed)`.
    pub fn parse(text: &str) -> Result<Self, NoteError> {
        let bad = |why: &str| NoteError::Key(why.to_owned());
        let rest = text.trim().strip_prefix("PRIVATE+KEY+").ok_or_else(|| bad("a signer key starts PRIVATE+KEY+"))?;
        let (name, id, key) = split_key(rest)?;
        let seed: [u8; 32] = key.try_into().map_err(|_| bad("an Ed25519 seed is 32 bytes"))?;
        let signer = Self::from_seed(name, seed)?;
        if signer.id != id {
            return Err(bad("the key id does not match the key"));
        }
        Ok(signer)
    }

    /// The signer key string (a secret: write it only to a 0600 file).
    pub fn to_private_string(&self) -> String {
        let mut material = vec![ALG_ED25519];
        material.extend_from_slice(self.key.as_bytes());
        format!("PRIVATE+KEY+{}+{:08x}+{}", self.name, self.id, B64.encode(material))
    }

    /// The key's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The matching verifier.
    pub fn verifier(&self) -> NoteVerifier {
        NoteVerifier { name: self.name.clone(), id: self.id, key: self.key.verifying_key() }
    }

    /// The key id, as signatures name the key.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// An Ed25519 signature over `message` itself, for signed files that are not notes (the saved
    /// registry snapshot signs a domain-separated digest of its body).
    pub fn sign_bytes(&self, message: &[u8]) -> [u8; 64] {
        self.key.sign(message).to_bytes()
    }

    /// Signs `text` (which must end in a newline) into a signed note.
    pub fn sign(&self, text: &str) -> Result<String, NoteError> {
        check_text(text)?;
        let sig = self.key.sign(text.as_bytes());
        let mut blob = self.id.to_be_bytes().to_vec();
        blob.extend_from_slice(&sig.to_bytes());
        Ok(format!("{text}\n{SIG_PREFIX}{} {}\n", self.name, B64.encode(blob)))
    }
}

/// `name+hexid+base64(0x01||key)` split into its parts.
fn split_key(text: &str) -> Result<(&str, u32, Vec<u8>), NoteError> {
    let bad = |why: &str| NoteError::Key(why.to_owned());
    let mut parts = text.splitn(3, '+');
    let (Some(name), Some(id), Some(material)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad("a key is name+id+key"));
    };
    if id.len() != 8 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad("the key id is 8 hex digits"));
    }
    let id = u32::from_str_radix(id, 16).map_err(|_| bad("the key id is 8 hex digits"))?;
    let material = B64.decode(material).map_err(|_| bad("the key is not base64"))?;
    match material.split_first() {
        Some((&ALG_ED25519, key)) => Ok((name, id, key.to_vec())),
        _ => Err(bad("only Ed25519 keys (algorithm 0x01) are supported")),
    }
}

fn check_text(text: &str) -> Result<(), NoteError> {
    if !text.ends_with('\n') {
        return Err(NoteError::Malformed("the text must end in a newline".into()));
    }
    if text.chars().any(|c| c.is_control() && c != '\n') {
        return Err(NoteError::Malformed("the text holds control characters".into()));
    }
    Ok(())
}

/// A public key that verifies notes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteVerifier {
    name: String,
    id: u32,
    key: VerifyingKey,
}

impl NoteVerifier {
    /// Reads `name+hexid+base64(0x01||public key)`.
    pub fn parse(text: &str) -> Result<Self, NoteError> {
        let (name, id, key) = split_key(text.trim())?;
        if !valid_name(name) {
            return Err(NoteError::Key(format!("key name {name:?} is not valid")));
        }
        let key: [u8; 32] = key.try_into().map_err(|_| NoteError::Key("an Ed25519 public key is 32 bytes".into()))?;
        if key_id(name, &key) != id {
            return Err(NoteError::Key("the key id does not match the key".into()));
        }
        let key = VerifyingKey::from_bytes(&key).map_err(|e| NoteError::Key(e.to_string()))?;
        Ok(Self { name: name.to_owned(), id, key })
    }

    /// The key's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key id, as signatures name the key.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// Whether `signature` is this key's signature over `message` ([`NoteSigner::sign_bytes`]).
    pub fn verify_bytes(&self, message: &[u8], signature: &[u8; 64]) -> bool {
        self.key.verify_strict(message, &ed25519_dalek::Signature::from_bytes(signature)).is_ok()
    }

    /// `name+hexid`, as error messages name a key.
    pub fn label(&self) -> String {
        format!("{}+{:08x}", self.name, self.id)
    }

    /// Checks the note's signature by this key and returns its text. Signatures by other keys are
    /// ignored (a witness may have cosigned), but one under this key's name and id that does not
    /// verify is an error: the note was altered.
    pub fn open<'n>(&self, note: &'n str) -> Result<&'n str, NoteError> {
        let split =
            note.rfind("\n\n").ok_or_else(|| NoteError::Malformed("no blank line before the signatures".into()))?;
        let (text, sigs) = (&note[..=split], &note[split + 2..]);
        check_text(text)?;
        if !sigs.ends_with('\n') {
            return Err(NoteError::Malformed("the last signature line must end in a newline".into()));
        }
        let mut found = false;
        for line in sigs.lines() {
            let rest = line
                .strip_prefix(SIG_PREFIX)
                .ok_or_else(|| NoteError::Malformed(format!("{line:?} is not a signature line")))?;
            let (name, blob) = rest
                .split_once(' ')
                .ok_or_else(|| NoteError::Malformed(format!("{line:?} is not a signature line")))?;
            let blob = B64.decode(blob).map_err(|_| NoteError::Malformed(format!("{line:?}: signature not base64")))?;
            if blob.len() < 4 {
                return Err(NoteError::Malformed(format!("{line:?}: signature too short")));
            }
            let id = u32::from_be_bytes([blob[0], blob[1], blob[2], blob[3]]);
            if name != self.name || id != self.id {
                continue;
            }
            let sig =
                ed25519_dalek::Signature::from_slice(&blob[4..]).map_err(|_| NoteError::BadSignature(self.label()))?;
            self.key.verify_strict(text.as_bytes(), &sig).map_err(|_| NoteError::BadSignature(self.label()))?;
            found = true;
        }
        if found { Ok(text) } else { Err(NoteError::Unsigned(self.label())) }
    }
}

impl std::fmt::Display for NoteVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut material = vec![ALG_ED25519];
        material.extend_from_slice(self.key.as_bytes());
        write!(f, "{}+{:08x}+{}", self.name, self.id, B64.encode(material))
    }
}

/// A C2SP `tlog-checkpoint`: which log, how many leaves, and the root over them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
}

impl Checkpoint {
    /// The note text: origin, size and base64 root, each on its own line.
    pub fn body(&self) -> String {
        format!("{}\n{}\n{}\n", self.origin, self.size, B64.encode(self.root))
    }

    /// Reads a checkpoint body (extension lines after the root are allowed and ignored).
    pub fn parse(text: &str) -> Result<Self, NoteError> {
        let bad = |why: &str| NoteError::Checkpoint(why.to_owned());
        if !text.ends_with('\n') {
            return Err(bad("a checkpoint ends in a newline"));
        }
        let mut lines = text.split('\n');
        let origin = lines.next().filter(|o| !o.is_empty()).ok_or_else(|| bad("the first line is the origin"))?;
        let size = lines.next().ok_or_else(|| bad("the second line is the tree size"))?;
        if size.is_empty() || !size.bytes().all(|b| b.is_ascii_digit()) || (size.len() > 1 && size.starts_with('0')) {
            return Err(bad("the tree size is a decimal without leading zeros"));
        }
        let size = size.parse().map_err(|_| bad("the tree size does not fit 64 bits"))?;
        let root = lines.next().ok_or_else(|| bad("the third line is the root hash"))?;
        let root = B64.decode(root).map_err(|_| bad("the root hash is not base64"))?;
        let root: Hash = root.try_into().map_err(|_| bad("the root hash is not 32 bytes"))?;
        Ok(Self { origin: origin.to_owned(), size, root })
    }

    /// Verifies a signed checkpoint note with `verifier` and reads it.
    pub fn open(note: &str, verifier: &NoteVerifier) -> Result<Self, NoteError> {
        Self::parse(verifier.open(note)?)
    }
}

#[cfg(test)]
#[path = "note_tests.rs"]
mod tests;
