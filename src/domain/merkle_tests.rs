//! The Merkle tree against the transparency-dev/merkle test vectors (RFC 6962 hashing), against an
//! independent implementation (the `ct-merkle` crate), and on its invariants (proptest).

use std::collections::HashMap;

use proptest::prelude::*;

use super::*;

fn h(s: &str) -> Hash {
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).unwrap();
    out
}

/// transparency-dev/merkle testonly.LeafInputs.
fn leaf_inputs() -> Vec<Vec<u8>> {
    ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"]
        .iter()
        .map(|s| hex::decode(s).unwrap())
        .collect()
}

/// testonly.RootHashes, by tree size (0 = empty).
const ROOTS: [&str; 9] = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

/// testonly.NodeHashes: (level, index, hash) of every perfect subtree of the 8 leaves.
const NODES: [(u32, u64, &str); 15] = [
    (0, 0, "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
    (0, 1, "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
    (0, 2, "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7"),
    (0, 3, "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7"),
    (0, 4, "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
    (0, 5, "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658"),
    (0, 6, "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
    (0, 7, "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1"),
    (1, 0, "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"),
    (1, 1, "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
    (1, 2, "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
    (1, 3, "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
    (2, 0, "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
    (2, 1, "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
    (3, 0, "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"),
];

/// proof/verify_test.go inclusionProofs: (0-based leaf, size, path).
fn inclusion_vectors() -> Vec<(u64, u64, Vec<Hash>)> {
    vec![
        (
            0,
            8,
            vec![
                h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
                h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
                h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
            ],
        ),
        (
            5,
            8,
            vec![
                h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
                h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
                h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
            ],
        ),
        (2, 3, vec![h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125")]),
        (
            1,
            5,
            vec![
                h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
                h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
                h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
            ],
        ),
        (0, 1, vec![]),
    ]
}

/// proof/verify_test.go consistencyProofs: (size1, size2, proof).
fn consistency_vectors() -> Vec<(u64, u64, Vec<Hash>)> {
    vec![
        (1, 1, vec![]),
        (
            1,
            8,
            vec![
                h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
                h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
                h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
            ],
        ),
        (
            6,
            8,
            vec![
                h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
                h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
                h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
            ],
        ),
        (
            2,
            5,
            vec![
                h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
                h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
            ],
        ),
        (
            6,
            7,
            vec![
                h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
                h("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
                h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
            ],
        ),
    ]
}

/// A node store built by appending, as the database keeps it.
fn build(leaves: &[Hash]) -> (HashMap<NodeId, Hash>, Frontier) {
    let mut nodes = HashMap::new();
    let mut frontier = Frontier::default();
    for leaf in leaves {
        nodes.extend(frontier.append(*leaf));
    }
    (nodes, frontier)
}

fn vector_tree() -> (Vec<Hash>, HashMap<NodeId, Hash>) {
    let leaves: Vec<Hash> = leaf_inputs().iter().map(|d| leaf_hash(d)).collect();
    let (nodes, _) = build(&leaves);
    (leaves, nodes)
}

#[test]
fn roots_and_nodes_match_the_transparency_dev_vectors() {
    let (leaves, nodes) = vector_tree();
    for (size, want) in ROOTS.iter().enumerate() {
        assert_eq!(root_of(&leaves[..size]), h(want), "root of {size}");
        assert_eq!(root_from_nodes(size as u64, |id| nodes.get(&id).copied()), Some(h(want)), "stored root of {size}");
    }
    assert_eq!(nodes.len(), NODES.len());
    for (level, index, want) in NODES {
        assert_eq!(nodes[&NodeId::new(level, index)], h(want), "node {level}/{index}");
    }
    assert_eq!(empty_root(), h(ROOTS[0]));
}

#[test]
fn proofs_match_the_transparency_dev_vectors() {
    let (leaves, nodes) = vector_tree();
    let get = |id: NodeId| nodes.get(&id).copied();
    for (index, size, want) in inclusion_vectors() {
        let got = Plan::inclusion(index, size).unwrap().assemble(get).unwrap();
        assert_eq!(got, want, "inclusion {index}@{size}");
        verify_inclusion(index, size, &leaves[index as usize], &got, &h(ROOTS[size as usize])).unwrap();
    }
    for (old, new, want) in consistency_vectors() {
        let got = Plan::consistency(old, new).unwrap().assemble(get).unwrap();
        assert_eq!(got, want, "consistency {old}->{new}");
        verify_consistency(old, new, &h(ROOTS[old as usize]), &h(ROOTS[new as usize]), &got).unwrap();
    }
}

#[test]
fn trivial_and_malformed_proofs_follow_rfc_9162() {
    let some = h("abacaba000000000000000000000000000000000000000000060061e00123456");
    let empty = empty_root();
    // Every tree extends the empty tree; equal sizes need equal roots and no proof.
    assert!(verify_consistency(0, 0, &empty, &empty, &[]).is_ok());
    assert!(verify_consistency(0, 5, &empty, &some, &[]).is_ok());
    assert!(verify_consistency(1, 1, &some, &some, &[]).is_ok());
    assert!(verify_consistency(1, 1, &some, &empty, &[]).is_err());
    assert!(verify_consistency(0, 1, &empty, &empty, &[empty]).is_err());
    assert!(verify_consistency(2, 1, &some, &some, &[]).is_err());
    assert!(verify_consistency(1, 2, &some, &some, &[]).is_err());
    for (index, size) in [(0, 0), (1, 0), (2, 1)] {
        assert!(verify_inclusion(index, size, &some, &[], &empty).is_err());
    }
    assert!(verify_inclusion(0, 1, &some, &[], &some).is_ok());
}

#[test]
fn corrupted_vector_proofs_are_refused() {
    let (leaves, _) = vector_tree();
    let some = h("abacaba000000000000000000000000000000000000000000060061e00123456");
    for (index, size, proof) in inclusion_vectors().into_iter().filter(|v| !v.2.is_empty()) {
        let root = h(ROOTS[size as usize]);
        let leaf = leaves[index as usize];
        let bad = [
            verify_inclusion(index ^ 1, size, &leaf, &proof, &root),
            verify_inclusion(index, size * 2, &leaf, &proof, &root),
            verify_inclusion(index, size, &some, &proof, &root),
            verify_inclusion(index, size, &leaf, &proof, &some),
            verify_inclusion(index, size, &leaf, &[proof.clone(), vec![root]].concat(), &root),
            verify_inclusion(index, size, &leaf, &[vec![root], proof.clone()].concat(), &root),
            verify_inclusion(index, size, &leaf, &proof[..proof.len() - 1], &root),
        ];
        assert!(bad.iter().all(Result::is_err), "{index}@{size}: {bad:?}");
    }
    for (old, new, proof) in consistency_vectors().into_iter().filter(|v| !v.2.is_empty()) {
        let (r1, r2) = (h(ROOTS[old as usize]), h(ROOTS[new as usize]));
        let bad = [
            verify_consistency(old - 1, new, &r1, &r2, &proof),
            verify_consistency(old + 1, new, &r1, &r2, &proof),
            verify_consistency(old, new * 2, &r1, &r2, &proof),
            verify_consistency(old, new, &r2, &r1, &proof),
            verify_consistency(old, new, &some, &r2, &proof),
            verify_consistency(old, new, &r1, &some, &proof),
            verify_consistency(old, new, &r1, &r2, &[]),
            verify_consistency(old, new, &r1, &r2, &[proof.clone(), vec![r1]].concat()),
            verify_consistency(old, new, &r1, &r2, &[vec![proof[0]], proof.clone()].concat()),
            verify_consistency(old, new, &r1, &r2, &proof[..proof.len() - 1]),
        ];
        assert!(bad.iter().all(Result::is_err), "{old}->{new}: {bad:?}");
    }
}

/// `ct-merkle` hashes and proves independently; its proofs are the concatenated RFC 6962 hashes.
mod cross_check {
    use ct_merkle::mem_backed_tree::MemoryBackedTree;
    use ct_merkle::{ConsistencyProof, InclusionProof, RootHash};
    use sha2_011::Sha256 as Sha256Other;

    use super::*;

    fn other_tree(data: &[Vec<u8>]) -> MemoryBackedTree<Sha256Other, Vec<u8>> {
        let mut t = MemoryBackedTree::new();
        for d in data {
            t.push(d.clone());
        }
        t
    }

    fn flat(hashes: &[Hash]) -> Vec<u8> {
        hashes.concat()
    }

    fn other_root(root: &Hash, size: u64) -> RootHash<Sha256Other> {
        RootHash::new((*root).into(), size)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        #[test]
        fn roots_and_proofs_agree_with_ct_merkle(
            data in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..8), 1..70),
            pick in any::<prop::sample::Index>(),
            old_pick in any::<prop::sample::Index>(),
        ) {
            let other = other_tree(&data);
            let leaves: Vec<Hash> = data.iter().map(|d| leaf_hash(d)).collect();
            let (nodes, frontier) = build(&leaves);
            let get = |id: NodeId| nodes.get(&id).copied();
            let size = leaves.len() as u64;
            let root = frontier.root();
            let other_root_now = other.root();
            prop_assert_eq!(other_root_now.as_bytes().as_slice(), &root[..]);

            let index = pick.index(leaves.len());
            let ours = Plan::inclusion(index as u64, size).unwrap().assemble(get).unwrap();
            let theirs = other.prove_inclusion(index);
            let ours_flat = flat(&ours);
            prop_assert_eq!(theirs.as_bytes(), ours_flat.as_slice());
            other.root().verify_inclusion(&data[index], index as u64, &InclusionProof::from_bytes(flat(&ours))).unwrap();

            let old = old_pick.index(leaves.len()) as u64 + 1;
            if old < size {
                let ours = Plan::consistency(old, size).unwrap().assemble(get).unwrap();
                let theirs = other.prove_consistency((size - old) as usize);
                let ours_flat = flat(&ours);
            prop_assert_eq!(theirs.as_bytes(), ours_flat.as_slice());
                let old_root = root_of(&leaves[..old as usize]);
                let proof = ConsistencyProof::try_from_bytes(flat(&ours)).unwrap();
                other.root().verify_consistency(&other_root(&old_root, old), &proof).unwrap();
            }
        }
    }
}

fn flip(proof: &[Hash], bit: usize) -> Vec<Hash> {
    let mut out = proof.to_vec();
    let total = out.len() * 256;
    let bit = bit % total;
    out[bit / 256][(bit % 256) / 8] ^= 1 << (bit % 8);
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn every_inclusion_proof_verifies_and_any_flipped_bit_fails(
        size in 1u64..300,
        pick in any::<prop::sample::Index>(),
        bit in any::<usize>(),
    ) {
        let leaves: Vec<Hash> = (0..size).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        let (nodes, frontier) = build(&leaves);
        let index = pick.index(size as usize) as u64;
        let proof = Plan::inclusion(index, size).unwrap().assemble(|id| nodes.get(&id).copied()).unwrap();
        let root = frontier.root();
        let leaf = leaves[index as usize];
        prop_assert!(verify_inclusion(index, size, &leaf, &proof, &root).is_ok());
        if !proof.is_empty() {
            prop_assert!(verify_inclusion(index, size, &leaf, &flip(&proof, bit), &root).is_err());
        }
        let mut bad_leaf = leaf;
        bad_leaf[bit % 32] ^= 1 << (bit % 8);
        prop_assert!(verify_inclusion(index, size, &bad_leaf, &proof, &root).is_err());
        let mut bad_root = root;
        bad_root[bit % 32] ^= 1 << (bit % 8);
        prop_assert!(verify_inclusion(index, size, &leaf, &proof, &bad_root).is_err());
    }

    #[test]
    fn every_consistency_proof_verifies_and_any_flipped_bit_fails(
        new in 2u64..300,
        pick in any::<prop::sample::Index>(),
        bit in any::<usize>(),
    ) {
        let leaves: Vec<Hash> = (0..new).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        let (nodes, frontier) = build(&leaves);
        let old = pick.index(new as usize - 1) as u64 + 1;
        let proof = Plan::consistency(old, new).unwrap().assemble(|id| nodes.get(&id).copied()).unwrap();
        let (old_root, new_root) = (root_of(&leaves[..old as usize]), frontier.root());
        prop_assert!(verify_consistency(old, new, &old_root, &new_root, &proof).is_ok());
        prop_assert!(verify_consistency(old, new, &old_root, &new_root, &flip(&proof, bit)).is_err());
        let mut bad = old_root;
        bad[bit % 32] ^= 1 << (bit % 8);
        prop_assert!(verify_consistency(old, new, &bad, &new_root, &proof).is_err());
        let mut bad = new_root;
        bad[bit % 32] ^= 1 << (bit % 8);
        prop_assert!(verify_consistency(old, new, &old_root, &bad, &proof).is_err());
    }

    #[test]
    fn proofs_read_logarithmically_many_nodes(size in 1u64..100_000, pick in any::<prop::sample::Index>()) {
        let index = pick.index(size as usize) as u64;
        let bound = 2 * (64 - size.leading_zeros()) as usize + 2;
        prop_assert!(Plan::inclusion(index, size).unwrap().nodes().len() <= bound);
        prop_assert!(Plan::consistency(index + 1, size).unwrap().nodes().len() <= bound);
        prop_assert!(Frontier::nodes(size).len() <= bound);
    }
}
