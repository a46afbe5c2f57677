//! The hash chain over the registry's event log. Each event's hash covers the previous event's hash
//! and every field of the event, so editing, deleting or reordering a stored event breaks the chain
//! from that point on.

use sha2::{Digest, Sha256};

/// The hash the chain starts from (before revision 1): 64 zeros.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The fields of an event that its hash covers.
#[derive(Debug, Clone, Copy)]
pub struct EventFields<'a> {
    pub revision: i64,
    pub time_micros: i64,
    pub actor: &'a str,
    pub kind: &'a str,
    pub seller_id: &'a str,
    pub payload: &'a str,
}

/// SHA-256 over the previous hash and the event's fields, each length-prefixed so that no two
/// different events can produce the same input. Lower-case hex.
pub fn event_hash(prev_hash: &str, event: &EventFields<'_>) -> String {
    let mut h = Sha256::new();
    let mut field = |bytes: &[u8]| {
        h.update((bytes.len() as u64).to_be_bytes());
        h.update(bytes);
    };
    field(prev_hash.as_bytes());
    field(&event.revision.to_be_bytes());
    field(&event.time_micros.to_be_bytes());
    field(event.actor.as_bytes());
    field(event.kind.as_bytes());
    field(event.seller_id.as_bytes());
    field(event.payload.as_bytes());
    hex::encode(h.finalize())
}

/// The bytes of an event as a leaf of the registry's Merkle tree: the same length-prefixed fields
/// the chain hashes (each an 8-byte big-endian length, then the bytes), without the previous hash,
/// because the tree itself fixes the order. `docs/verifiable-log.md` spells the layout out.
pub fn leaf_bytes(event: &EventFields<'_>) -> Vec<u8> {
    framed(&[
        &event.revision.to_be_bytes(),
        &event.time_micros.to_be_bytes(),
        event.actor.as_bytes(),
        event.kind.as_bytes(),
        event.seller_id.as_bytes(),
        event.payload.as_bytes(),
    ])
}

/// Fields concatenated, each as an 8-byte big-endian length and then its bytes: the framing of
/// every leaf safeguard logs, so that no two different entries share their bytes.
pub fn framed(fields: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(fields.iter().map(|f| f.len() + 8).sum());
    frame_each(fields, |bytes| out.extend_from_slice(bytes));
    out
}

/// Hands [`framed`]'s bytes to `sink` piece by piece, without building them: the one definition of
/// the framing, for callers that hash the bytes rather than keep them.
pub fn frame_each(fields: &[&[u8]], mut sink: impl FnMut(&[u8])) {
    for field in fields {
        sink(&(field.len() as u64).to_be_bytes());
        sink(field);
    }
}

/// The fields of framed bytes, or `None` if they are not exactly a sequence of framed fields.
pub fn unframe(mut bytes: &[u8]) -> Option<Vec<&[u8]>> {
    let mut fields = Vec::new();
    while !bytes.is_empty() {
        let (len, rest) = bytes.split_at_checked(8)?;
        let len = usize::try_from(u64::from_be_bytes(len.try_into().ok()?)).ok()?;
        let (field, rest) = rest.split_at_checked(len)?;
        fields.push(field);
        bytes = rest;
    }
    Some(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_changes_the_hash() {
        let base = EventFields { revision: 1, time_micros: 5, actor: "a", kind: "K", seller_id: "s", payload: "{}" };
        let h = event_hash(GENESIS_HASH, &base);
        assert_eq!(h.len(), 64);
        for changed in [
            EventFields { revision: 2, ..base },
            EventFields { time_micros: 6, ..base },
            EventFields { actor: "b", ..base },
            EventFields { kind: "L", ..base },
            EventFields { seller_id: "t", ..base },
            EventFields { payload: "{ }", ..base },
        ] {
            assert_ne!(event_hash(GENESIS_HASH, &changed), h);
        }
        assert_ne!(event_hash(&h, &base), h);
        // Moving a byte between adjacent fields must not collide either.
        let shifted = EventFields { actor: "aK", kind: "", ..base };
        let moved = EventFields { actor: "a", kind: "K", ..base };
        assert_ne!(event_hash(GENESIS_HASH, &shifted), event_hash(GENESIS_HASH, &moved));
    }

    #[test]
    fn leaf_bytes_are_the_chain_fields_without_the_previous_hash() {
        let e = EventFields { revision: 1, time_micros: 5, actor: "a", kind: "K", seller_id: "s", payload: "{}" };
        let mut chained = Vec::new();
        chained.extend_from_slice(&(GENESIS_HASH.len() as u64).to_be_bytes());
        chained.extend_from_slice(GENESIS_HASH.as_bytes());
        chained.extend_from_slice(&leaf_bytes(&e));
        assert_eq!(hex::encode(Sha256::digest(&chained)), event_hash(GENESIS_HASH, &e));
        let bytes = leaf_bytes(&e);
        assert_eq!(&bytes[..16], &[0, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(bytes.len(), 6 * 8 + 8 + 8 + 1 + 1 + 1 + 2);
    }
}
