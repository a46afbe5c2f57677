//! The sellers of one snapshot version, compact: a fixed number of shards, each an `Arc`'d byte
//! arena of [`Record`]s plus a hash table of `u32` offsets into it. A version is cheap to clone
//! (one `Arc` per shard), and a change copies only the shard it touches, and only once per
//! version: readers holding an older version keep theirs, untouched.
//!
//! Why this shape: a seller with one contract is about 120 bytes of data. A map of owned views
//! (`Arc<SellerView>` with its `String`s, `Vec` and `Arc<str>`) spends as much again on pointers,
//! allocation headers and a persistent map's nodes; here a seller costs its bytes, a 4-byte slot
//! and a control byte. With 1,024 shards a change copies about 1/1,024 of the registry.

use std::hash::BuildHasher;
use std::sync::Arc;

use hashbrown::HashTable;
use hashbrown::hash_table::Entry;

use super::record::{self, Record};
use crate::domain::verify::SellerView;

/// How many shards a version has: a power of two.
pub const SHARDS: usize = 1024;

/// An arena is compacted when dead records take more than half of it, past this size.
const COMPACT_FROM: usize = 4096;

#[derive(Clone, Default)]
struct Shard {
    bytes: Vec<u8>,
    /// The offset of each live record in `bytes`, by the hash of its seller id.
    table: HashTable<u32>,
    /// Bytes of `bytes` held by replaced or removed records.
    dead: usize,
}

impl Shard {
    fn record(&self, offset: u32) -> Record<'_> {
        Record::at(&self.bytes[offset as usize..])
    }

    fn compact(&mut self) {
        let mut bytes = Vec::with_capacity(self.bytes.len() - self.dead);
        for offset in self.table.iter_mut() {
            let start = *offset as usize;
            let len = Record::at(&self.bytes[start..]).len();
            *offset = arena_offset(bytes.len());
            bytes.extend_from_slice(&self.bytes[start..start + len]);
        }
        self.bytes = bytes;
        self.dead = 0;
    }
}

fn arena_offset(len: usize) -> u32 {
    // A shard holds about 1/1,024 of the registry: 4 GiB per shard would be 4 TiB in all.
    u32::try_from(len).unwrap_or(u32::MAX)
}

/// Where one seller's record lies in one version: its shard and its offset in the shard's arena.
/// Six bytes, where a copy of the record would be a hundred: a holder of the version (the
/// recipient register holds the snapshot it judged) reads the record again through it.
///
/// Meaningful only for the version it was taken from, or a clone of it: a later write copies the
/// shard it changes, and may move records within the copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordAt {
    offset: u32,
    shard: u16,
}

/// Every seller of a snapshot version.
pub struct Sellers {
    shards: Box<[Arc<Shard>]>,
    len: usize,
    hasher: foldhash::fast::RandomState,
}

impl Default for Sellers {
    fn default() -> Self {
        // One empty shard shared by every slot: a shard is copied out on its first write.
        let empty = Arc::new(Shard::default());
        Self {
            shards: (0..SHARDS).map(|_| Arc::clone(&empty)).collect(),
            len: 0,
            hasher: foldhash::fast::RandomState::default(),
        }
    }
}

impl Clone for Sellers {
    /// Another version sharing every shard.
    fn clone(&self) -> Self {
        Self { shards: self.shards.clone(), len: self.len, hasher: self.hasher.clone() }
    }
}

impl Sellers {
    fn hash(&self, id: &[u8]) -> u64 {
        self.hasher.hash_one(id)
    }

    /// The shard of a hash: bits the shard's own table does not use for its buckets (the low
    /// bits) or its control bytes (the top seven).
    fn shard_of(hash: u64) -> usize {
        (hash >> 40) as usize & (SHARDS - 1)
    }

    /// How many sellers there are.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The seller `id`, read in place.
    pub fn get(&self, id: &str) -> Option<Record<'_>> {
        let hash = self.hash(id.as_bytes());
        let shard = &self.shards[Self::shard_of(hash)];
        let offset = shard.table.find(hash, |&o| record::id_of(&shard.bytes[o as usize..]) == id.as_bytes())?;
        Some(shard.record(*offset))
    }

    /// Whether the seller `id` is present.
    pub fn contains(&self, id: &str) -> bool {
        self.get(id).is_some()
    }

    /// Every seller, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = Record<'_>> {
        self.shards.iter().flat_map(|s| s.table.iter().map(|&o| s.record(o)))
    }

    /// Every seller with where its record lies, in no particular order.
    pub fn iter_at(&self) -> impl Iterator<Item = (RecordAt, Record<'_>)> {
        self.shards.iter().enumerate().flat_map(|(index, s)| {
            // SHARDS is 1,024: a shard index fits.
            let shard = index as u16;
            s.table.iter().map(move |&offset| (RecordAt { offset, shard }, s.record(offset)))
        })
    }

    /// The record `at` names, if it lies within this version (see [`RecordAt`] for which version
    /// it names the right record in).
    pub fn at(&self, at: RecordAt) -> Option<Record<'_>> {
        let shard = self.shards.get(usize::from(at.shard))?;
        ((at.offset as usize) < shard.bytes.len()).then(|| shard.record(at.offset))
    }

    /// Inserts `view`, or replaces the seller with its id.
    pub fn insert(&mut self, view: &SellerView) {
        self.put(&record::encode(view));
    }

    /// Inserts or replaces the seller whose encoded record is `bytes`.
    pub(super) fn put(&mut self, bytes: &[u8]) {
        let id = record::id_of(bytes);
        let hash = self.hash(id);
        let hasher = self.hasher.clone();
        let shard = Arc::make_mut(&mut self.shards[Self::shard_of(hash)]);
        let Shard { bytes: arena, table, dead } = shard;
        let offset = arena_offset(arena.len());
        let rehash = |&o: &u32| hasher.hash_one(record::id_of(&arena[o as usize..]));
        match table.entry(hash, |&o| record::id_of(&arena[o as usize..]) == id, rehash) {
            Entry::Occupied(mut e) => {
                *dead += Record::at(&arena[*e.get() as usize..]).len();
                *e.get_mut() = offset;
            }
            Entry::Vacant(e) => {
                e.insert(offset);
                self.len += 1;
            }
        }
        if arena.capacity() - arena.len() < bytes.len() {
            // Grow by an eighth, not the doubling `Vec` would choose: an arena's slack is memory
            // every seller pays for, and each shard is copied exactly sized on its first write.
            arena.reserve_exact(bytes.len().max(arena.len() / 8));
        }
        arena.extend_from_slice(bytes);
        if shard.dead > COMPACT_FROM && shard.dead * 2 > shard.bytes.len() {
            shard.compact();
        }
    }

    /// Removes the seller `id`; whether it was there.
    pub fn remove(&mut self, id: &str) -> bool {
        let hash = self.hash(id.as_bytes());
        let index = Self::shard_of(hash);
        if self.shards[index]
            .table
            .find(hash, |&o| record::id_of(&self.shards[index].bytes[o as usize..]) == id.as_bytes())
            .is_none()
        {
            return false;
        }
        let shard = Arc::make_mut(&mut self.shards[index]);
        let Shard { bytes: arena, table, dead } = shard;
        if let Ok(e) = table.find_entry(hash, |&o| record::id_of(&arena[o as usize..]) == id.as_bytes()) {
            *dead += Record::at(&arena[*e.get() as usize..]).len();
            e.remove();
            self.len -= 1;
        }
        if shard.table.is_empty() {
            *shard = Shard::default();
        } else if shard.dead > COMPACT_FROM && shard.dead * 2 > shard.bytes.len() {
            shard.compact();
        }
        true
    }

    /// Gives back the slack of every shard's arena and table, and the bytes of replaced records:
    /// after a bulk load, before serving. A load replaces most records at least once (a seller,
    /// then its attestation), and leaves fewer dead bytes than the half that compacts a shard as it
    /// is written: without this, about two fifths of a freshly loaded arena were dead records.
    pub fn shrink_to_fit(&mut self) {
        let hasher = self.hasher.clone();
        for shard in self.shards.iter_mut() {
            if shard.dead == 0
                && shard.bytes.capacity() == shard.bytes.len()
                && shard.table.capacity() == shard.table.len()
            {
                continue;
            }
            let shard = Arc::make_mut(shard);
            if shard.dead > 0 {
                // Copies the live records into an arena of exactly their size.
                shard.compact();
            } else {
                shard.bytes.shrink_to_fit();
            }
            let Shard { bytes, table, .. } = shard;
            table.shrink_to_fit(|&o| hasher.hash_one(record::id_of(&bytes[o as usize..])));
        }
    }

    /// Heap bytes held by the shards' arenas and tables: what a seller costs.
    pub fn heap_bytes(&self) -> usize {
        let shards = self.shards.len() * std::mem::size_of::<Arc<Shard>>();
        shards
            + self
                .shards
                .iter()
                .map(|s| s.bytes.capacity() + s.table.allocation_size() + std::mem::size_of::<Shard>())
                .sum::<usize>()
    }
}

#[cfg(test)]
#[path = "sellers_tests.rs"]
mod tests;
