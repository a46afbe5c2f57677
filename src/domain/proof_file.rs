//! The C2SP `tlog-proof` file: an entry's index, its audit path and the signed checkpoint it leads
//! to, verifiable offline. safeguard puts the entry's canonical leaf bytes on the optional `extra`
//! line, so the file alone says what was logged; that line is not trusted by itself — it only
//! counts once its hash verifies up to the signed root.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

use super::merkle::{Hash, leaf_hash, verify_inclusion};
use super::note::{Checkpoint, NoteVerifier};

/// The first line of every proof file.
pub const HEADER: &str = "c2sp.org/tlog-proof@v1";

/// A parsed `tlog-proof`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlogProof {
    pub extra: Option<Vec<u8>>,
    pub index: u64,
    pub path: Vec<Hash>,
    /// The signed checkpoint note, verbatim.
    pub checkpoint: String,
}

impl TlogProof {
    /// The file's text.
    pub fn encode(&self) -> String {
        let mut out = format!("{HEADER}\n");
        if let Some(extra) = &self.extra {
            out.push_str(&format!("extra {}\n", B64.encode(extra)));
        }
        out.push_str(&format!("index {}\n", self.index));
        for h in &self.path {
            out.push_str(&B64.encode(h));
            out.push('\n');
        }
        out.push('\n');
        out.push_str(&self.checkpoint);
        out
    }

    /// Reads a proof file.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (head, checkpoint) =
            text.split_once("\n\n").ok_or("no blank line between the inclusion proof and the checkpoint")?;
        let mut lines = head.split('\n');
        if lines.next() != Some(HEADER) {
            return Err(format!("the first line must be {HEADER}"));
        }
        let mut line = lines.next().ok_or("the index line is missing")?;
        let mut extra = None;
        if let Some(e) = line.strip_prefix("extra ") {
            extra = Some(B64.decode(e).map_err(|_| "the extra line is not base64")?);
            line = lines.next().ok_or("the index line is missing")?;
        }
        let index = line.strip_prefix("index ").ok_or("expected the index line")?;
        if index.is_empty() || (index.len() > 1 && index.starts_with('0')) {
            return Err("the index is a decimal without leading zeros".into());
        }
        let index = index.parse().map_err(|_| "the index is not a number")?;
        let path = lines
            .map(|l| {
                let bytes = B64.decode(l).map_err(|_| format!("proof line {l:?} is not base64"))?;
                Hash::try_from(bytes).map_err(|_| format!("proof line {l:?} is not a SHA-256 hash"))
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Self { extra, index, path, checkpoint: checkpoint.to_owned() })
    }

    /// Verifies the proof: the checkpoint's signature by `verifier`, then the entry (`leaf_data`,
    /// or the extra line) up to its root. Returns the checkpoint and the entry's bytes.
    pub fn verify(&self, verifier: &NoteVerifier, leaf_data: Option<&[u8]>) -> Result<(Checkpoint, Vec<u8>), String> {
        let checkpoint = Checkpoint::open(&self.checkpoint, verifier).map_err(|e| format!("checkpoint: {e}"))?;
        let data = leaf_data
            .map(<[u8]>::to_vec)
            .or_else(|| self.extra.clone())
            .ok_or("the proof carries no entry (no extra line) and none was given")?;
        verify_inclusion(self.index, checkpoint.size, &leaf_hash(&data), &self.path, &checkpoint.root)
            .map_err(|e| format!("entry {} is not in the checkpointed tree: {e}", self.index))?;
        Ok((checkpoint, data))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::merkle::{Frontier, Plan};
    use crate::domain::note::NoteSigner;

    #[test]
    fn a_proof_file_round_trips_and_verifies_only_its_entry() {
        let mut f = Frontier::default();
        let mut nodes = std::collections::HashMap::new();
        let data: Vec<Vec<u8>> = (0..5u8).map(|i| vec![i; 3]).collect();
        for d in &data {
            nodes.extend(f.append(leaf_hash(d)));
        }
        let signer = NoteSigner::from_seed("example.com/log", [5; 32]).unwrap();
        let cp = Checkpoint { origin: "example.com/log".into(), size: 5, root: f.root() };
        let proof = TlogProof {
            extra: Some(data[3].clone()),
            index: 3,
            path: Plan::inclusion(3, 5).unwrap().assemble(|id| nodes.get(&id).copied()).unwrap(),
            checkpoint: signer.sign(&cp.body()).unwrap(),
        };
        let text = proof.encode();
        assert!(text.starts_with("c2sp.org/tlog-proof@v1\nextra AwMD\nindex 3\n"));
        let parsed = TlogProof::parse(&text).unwrap();
        assert_eq!(parsed, proof);
        assert_eq!(parsed.verify(&signer.verifier(), None).unwrap().1, data[3]);
        assert!(parsed.verify(&signer.verifier(), Some(&data[2])).is_err());
        let other = NoteSigner::from_seed("example.com/log", [6; 32]).unwrap();
        assert!(parsed.verify(&other.verifier(), None).unwrap_err().contains("no signature"));
    }
}
