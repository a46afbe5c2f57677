//! The RFC 6962 Merkle tree over a log: leaf and node hashes, roots, inclusion and consistency
//! proofs, and their verification (the algorithms of RFC 9162 §2.1.3.2 and §2.1.4.2). No I/O.
//!
//! A tree is stored as its *perfect subtrees*: the node at `(level, index)` is the hash of the
//! `2^level` leaves starting at `index * 2^level`. Appending a leaf completes at most
//! `log2(size)` of them, and every proof and every root is a fold of `O(log n)` of them, so the
//! store never rehashes history. Proof generation is split in two so the store can fetch exactly
//! the nodes a proof needs in one query: [`Plan::nodes`] says which, [`Plan::assemble`] builds it.

use sha2::{Digest, Sha256};

/// A SHA-256 hash.
pub type Hash = [u8; 32];

/// The root of the empty tree: SHA-256 of nothing.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// The hash of a leaf: SHA-256(0x00 || data). The prefix keeps a leaf from passing for a node.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    h.finalize().into()
}

/// The leaf hash of `fields` as [`super::chain::framed`] frames them, without building the framed
/// bytes: the decision writer hashes every record of a batch, and the copy cost more than the hash.
pub fn framed_leaf_hash(fields: &[&[u8]]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    super::chain::frame_each(fields, |bytes| h.update(bytes));
    h.finalize().into()
}

/// The hash of an interior node: SHA-256(0x01 || left || right).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// A perfect subtree: `2^level` leaves starting at leaf `index << level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId {
    pub level: u32,
    pub index: u64,
}

impl NodeId {
    /// The node `(level, index)`.
    pub fn new(level: u32, index: u64) -> Self {
        Self { level, index }
    }
}

/// The perfect subtrees that make up the RFC 6962 subtree `[begin, end)`, left to right, largest
/// first. `begin` must be where such a subtree starts (a multiple of the largest power of two
/// not above the size of the tree it is cut from), which holds for every range the proofs use.
fn range_nodes(begin: u64, end: u64) -> Vec<NodeId> {
    let mut out = Vec::new();
    let mut pos = begin;
    while pos < end {
        let level = 63 - (end - pos).leading_zeros();
        out.push(NodeId::new(level, pos >> level));
        pos += 1 << level;
    }
    out
}

/// MTH of a range from its perfect subtrees: they are folded from the right, as RFC 6962 splits a
/// tree at its largest power of two.
fn fold(hashes: &[Hash]) -> Option<Hash> {
    let (last, rest) = hashes.split_last()?;
    Some(rest.iter().rev().fold(*last, |acc, h| node_hash(h, &acc)))
}

/// The largest power of two strictly below `n` (n ≥ 2).
fn split(n: u64) -> u64 {
    1 << (63 - (n - 1).leading_zeros())
}

/// Which subtree hashes make up a proof or a root, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    ranges: Vec<(u64, u64)>,
}

impl Plan {
    /// The root of a tree of `size` leaves (empty plan for the empty tree).
    pub fn root(size: u64) -> Self {
        Self { ranges: if size == 0 { Vec::new() } else { vec![(0, size)] } }
    }

    /// The RFC 6962 audit path of leaf `index` in a tree of `size` leaves; `None` if out of range.
    pub fn inclusion(index: u64, size: u64) -> Option<Self> {
        fn path(m: u64, lo: u64, hi: u64, out: &mut Vec<(u64, u64)>) {
            if hi - lo <= 1 {
                return;
            }
            let k = split(hi - lo);
            if m < k {
                path(m, lo, lo + k, out);
                out.push((lo + k, hi));
            } else {
                path(m - k, lo + k, hi, out);
                out.push((lo, lo + k));
            }
        }
        if index >= size {
            return None;
        }
        let mut ranges = Vec::new();
        path(index, 0, size, &mut ranges);
        Some(Self { ranges })
    }

    /// The RFC 6962 consistency proof from a tree of `old` leaves to one of `new`; `None` if
    /// `old > new`. Empty when `old` is 0 or equal to `new`: there is nothing to prove.
    pub fn consistency(old: u64, new: u64) -> Option<Self> {
        fn subproof(m: u64, lo: u64, hi: u64, whole: bool, out: &mut Vec<(u64, u64)>) {
            if m == hi - lo {
                if !whole {
                    out.push((lo, hi));
                }
                return;
            }
            let k = split(hi - lo);
            if m <= k {
                subproof(m, lo, lo + k, whole, out);
                out.push((lo + k, hi));
            } else {
                subproof(m - k, lo + k, hi, false, out);
                out.push((lo, lo + k));
            }
        }
        if old > new {
            return None;
        }
        let mut ranges = Vec::new();
        if old > 0 && old < new {
            subproof(old, 0, new, true, &mut ranges);
        }
        Some(Self { ranges })
    }

    /// Every stored node the plan reads, sorted and without repeats.
    pub fn nodes(&self) -> Vec<NodeId> {
        let mut ids: Vec<NodeId> = self.ranges.iter().flat_map(|&(b, e)| range_nodes(b, e)).collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// The proof's hashes from the stored nodes; `None` if `lookup` lacks one of [`Self::nodes`].
    pub fn assemble(&self, lookup: impl Fn(NodeId) -> Option<Hash>) -> Option<Vec<Hash>> {
        self.ranges
            .iter()
            .map(|&(b, e)| {
                let hashes = range_nodes(b, e).into_iter().map(&lookup).collect::<Option<Vec<_>>>()?;
                fold(&hashes)
            })
            .collect()
    }
}

/// The root of a tree from its stored nodes (the empty root for size 0).
pub fn root_from_nodes(size: u64, lookup: impl Fn(NodeId) -> Option<Hash>) -> Option<Hash> {
    if size == 0 {
        return Some(empty_root());
    }
    Plan::root(size).assemble(lookup).and_then(|h| h.first().copied())
}

/// The root of a list of leaf hashes, computed directly (for verifiers that hold every leaf).
pub fn root_of(leaves: &[Hash]) -> Hash {
    let mut frontier = Frontier::default();
    for leaf in leaves {
        frontier.append(*leaf);
    }
    frontier.root()
}

/// The right edge of a tree: the roots of its perfect subtrees, one per set bit of its size,
/// largest first. Enough to append leaves and to compute the root without reading history.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    hashes: Vec<Hash>,
}

impl Frontier {
    /// The nodes that form the frontier of a tree of `size` leaves.
    pub fn nodes(size: u64) -> Vec<NodeId> {
        range_nodes(0, size)
    }

    /// The frontier of a tree of `size` leaves from its stored nodes.
    pub fn load(size: u64, lookup: impl Fn(NodeId) -> Option<Hash>) -> Option<Self> {
        let hashes = Self::nodes(size).into_iter().map(lookup).collect::<Option<Vec<_>>>()?;
        Some(Self { size, hashes })
    }

    /// Leaves in the tree.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends a leaf hash; returns the nodes it completed (the leaf first, then each parent) for
    /// the store to keep.
    pub fn append(&mut self, leaf: Hash) -> Vec<(NodeId, Hash)> {
        let mut done = vec![(NodeId::new(0, self.size), leaf)];
        let mut hash = leaf;
        let mut id = NodeId::new(0, self.size);
        // Each trailing 1 bit of the old size is a left sibling waiting for this leaf's subtree.
        while id.index & 1 == 1 {
            let Some(left) = self.hashes.pop() else { break };
            hash = node_hash(&left, &hash);
            id = NodeId::new(id.level + 1, id.index >> 1);
            done.push((id, hash));
        }
        self.hashes.push(hash);
        self.size += 1;
        done
    }

    /// The tree's root.
    pub fn root(&self) -> Hash {
        fold(&self.hashes).unwrap_or_else(empty_root)
    }
}

/// Why a proof does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("leaf index {index} is outside a tree of {size} leaves")]
    IndexOutOfRange { index: u64, size: u64 },
    #[error("the old tree ({old} leaves) is larger than the new one ({new})")]
    OldLarger { old: u64, new: u64 },
    #[error("the proof has {got} hashes, a proof for these sizes has {want}")]
    WrongLength { got: usize, want: usize },
    #[error("the proof leads to root {computed}, the checkpoint says {expected}")]
    RootMismatch { computed: String, expected: String },
    #[error("the proof does not lead to the old tree's root {expected} (it gives {computed})")]
    OldRootMismatch { computed: String, expected: String },
}

fn mismatch(computed: &Hash, expected: &Hash, old: bool) -> ProofError {
    let (computed, expected) = (hex::encode(computed), hex::encode(expected));
    if old {
        ProofError::OldRootMismatch { computed, expected }
    } else {
        ProofError::RootMismatch { computed, expected }
    }
}

/// Checks that `leaf` is leaf `index` of the tree of `size` leaves with root `root` (RFC 9162
/// §2.1.3.2).
pub fn verify_inclusion(index: u64, size: u64, leaf: &Hash, proof: &[Hash], root: &Hash) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let want = Plan::inclusion(index, size).map_or(0, |p| p.ranges.len());
    if proof.len() != want {
        return Err(ProofError::WrongLength { got: proof.len(), want });
    }
    let (mut f_n, mut s_n) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if f_n & 1 == 1 || f_n == s_n {
            r = node_hash(p, &r);
            while f_n & 1 == 0 && f_n != 0 {
                f_n >>= 1;
                s_n >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    if s_n != 0 {
        return Err(ProofError::WrongLength { got: proof.len(), want });
    }
    if &r != root {
        return Err(mismatch(&r, root, false));
    }
    Ok(())
}

/// Checks that the tree of `old` leaves with root `old_root` is a prefix of the tree of `new`
/// leaves with root `new_root` (RFC 9162 §2.1.4.2).
pub fn verify_consistency(
    old: u64,
    new: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if old > new {
        return Err(ProofError::OldLarger { old, new });
    }
    let want = Plan::consistency(old, new).map_or(0, |p| p.ranges.len());
    if proof.len() != want {
        return Err(ProofError::WrongLength { got: proof.len(), want });
    }
    if old == new {
        // Same size: the same tree, or a fork.
        return if old_root == new_root { Ok(()) } else { Err(mismatch(new_root, old_root, true)) };
    }
    if old == 0 {
        // Every tree extends the empty one.
        return Ok(());
    }
    // A power-of-two old tree is a node of the new one, so the proof omits it.
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if old.is_power_of_two() {
        path.push(*old_root);
    }
    path.extend_from_slice(proof);
    let (mut f_n, mut s_n) = (old - 1, new - 1);
    while f_n & 1 == 1 {
        f_n >>= 1;
        s_n >>= 1;
    }
    let Some((first, rest)) = path.split_first() else {
        return Err(ProofError::WrongLength { got: proof.len(), want });
    };
    let (mut fr, mut sr) = (*first, *first);
    for c in rest {
        if s_n == 0 {
            return Err(ProofError::WrongLength { got: proof.len(), want });
        }
        if f_n & 1 == 1 || f_n == s_n {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while f_n & 1 == 0 && f_n != 0 {
                f_n >>= 1;
                s_n >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    if &fr != old_root {
        return Err(mismatch(&fr, old_root, true));
    }
    if &sr != new_root {
        return Err(mismatch(&sr, new_root, false));
    }
    if s_n != 0 {
        return Err(ProofError::WrongLength { got: proof.len(), want });
    }
    Ok(())
}

#[cfg(test)]
#[path = "merkle_tests.rs"]
mod tests;
