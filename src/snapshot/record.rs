//! One seller of the compact snapshot as a run of bytes: fixed-size fields, the seller's strings
//! packed after them, then each contract as a fixed-size bitset record. A [`Record`] reads it in
//! place, so a decision costs no decoding and no allocation beyond what the verdict itself holds.
//!
//! Layout (little-endian):
//! ```text
//! header   status u8 · role u8 · country [u8; 2] · flags u8 · id_len u8 · name_len u32 ·
//!          contact_len u32 · contracts u16                                      (16 bytes)
//! [last supervision i64, when flags has SUPERVISED]
//! seller id · legal name · privacy contact                          (id_len + name_len + contact_len)
//! per contract: flags u8 · clauses u16 · categories u16 · purposes u8 · retention_days u32 ·
//!               effective i64 · expire i64                                       (26 bytes)
//!               then the attestation id: 16 bytes when it is a UUID in canonical form, else
//!               len u32 · bytes
//! ```
//! Attestation ids are server-assigned UUIDs, so most contracts take 42 bytes. An id is stored as
//! 16 bytes only when formatting those bytes gives back exactly the same text, so every id round-trips.

use std::sync::Arc;

use crate::domain::verify::{AttestationRef, Contract, SellerFacts, SellerView, Terms};
use crate::domain::{Country, SellerId, SellerRole, SellerStatus, Set, Timestamp, Vocab};

const HEADER: usize = 16;
const TERMS: usize = 26;
const SUPERVISED: u8 = 1;
const REVOKED: u8 = 1;
const UUID_ID: u8 = 2;

/// The seller fields a record holds, borrowed.
#[derive(Debug, Clone, Copy)]
pub(super) struct Fields<'a> {
    pub seller_id: &'a str,
    pub legal_name: &'a str,
    pub privacy_contact: &'a str,
    pub country: Country,
    pub status: SellerStatus,
    pub role: SellerRole,
    pub last_supervision: Option<Timestamp>,
}

impl<'a> Fields<'a> {
    pub fn of(view: &'a SellerView) -> Self {
        Self {
            seller_id: view.seller_id.as_str(),
            legal_name: &view.legal_name,
            privacy_contact: &view.privacy_contact,
            country: view.country,
            status: view.status,
            role: view.role,
            last_supervision: view.last_supervision,
        }
    }
}

fn len_u32(s: &str) -> u32 {
    // Longer text cannot pass validation (names are at most 512 characters); saturating keeps
    // the record well formed even so, and the check below refuses to write it.
    u32::try_from(s.len()).unwrap_or(u32::MAX)
}

/// Encodes a seller whose contracts are already encoded (`contracts`, `count` of them).
pub(super) fn encode_with(fields: &Fields<'_>, count: u16, contracts: &[u8]) -> Vec<u8> {
    let id = fields.seller_id.as_bytes();
    let supervised = fields.last_supervision.is_some();
    let mut out = Vec::with_capacity(
        HEADER
            + if supervised { 8 } else { 0 }
            + id.len()
            + fields.legal_name.len()
            + fields.privacy_contact.len()
            + contracts.len(),
    );
    out.push(fields.status.number() as u8);
    out.push(fields.role.number() as u8);
    out.extend_from_slice(&fields.country.as_bytes());
    out.push(if supervised { SUPERVISED } else { 0 });
    // A SellerId is at most 64 bytes by construction.
    out.push(id.len().min(SellerId::MAX_LEN) as u8);
    out.extend_from_slice(&len_u32(fields.legal_name).to_le_bytes());
    out.extend_from_slice(&len_u32(fields.privacy_contact).to_le_bytes());
    out.extend_from_slice(&count.to_le_bytes());
    if let Some(t) = fields.last_supervision {
        out.extend_from_slice(&t.as_micros().to_le_bytes());
    }
    out.extend_from_slice(&id[..id.len().min(SellerId::MAX_LEN)]);
    out.extend_from_slice(fields.legal_name.as_bytes());
    out.extend_from_slice(fields.privacy_contact.as_bytes());
    out.extend_from_slice(contracts);
    out
}

/// Encodes a whole seller view.
pub(super) fn encode(view: &SellerView) -> Vec<u8> {
    let mut contracts = Vec::with_capacity(view.contracts.len() * (TERMS + 16));
    for c in &view.contracts {
        encode_contract(c, &mut contracts);
    }
    let count = u16::try_from(view.contracts.len()).unwrap_or(u16::MAX);
    encode_with(&Fields::of(view), count, &contracts)
}

/// The attestation id as stored: 16 bytes for a canonical UUID, else its length and text.
fn encode_id(id: &str, flags: &mut u8, out: &mut Vec<u8>) {
    match uuid::Uuid::try_parse(id) {
        Ok(u) if u.hyphenated().encode_lower(&mut uuid::Uuid::encode_buffer()) == id => {
            *flags |= UUID_ID;
            out.extend_from_slice(u.as_bytes());
        }
        _ => {
            out.extend_from_slice(&len_u32(id).to_le_bytes());
            out.extend_from_slice(id.as_bytes());
        }
    }
}

/// Appends one encoded contract to `out`.
pub(super) fn encode_contract(c: &Contract, out: &mut Vec<u8>) {
    let at = out.len();
    let mut flags = if c.revoked { REVOKED } else { 0 };
    out.push(0);
    // Clause and category numbers are at most 14, purpose numbers at most 5: the bits fit.
    out.extend_from_slice(&(c.clauses.bits() as u16).to_le_bytes());
    out.extend_from_slice(&(c.categories.bits() as u16).to_le_bytes());
    out.push(c.purposes.bits() as u8);
    out.extend_from_slice(&c.retention_days.to_le_bytes());
    out.extend_from_slice(&c.effective.as_micros().to_le_bytes());
    out.extend_from_slice(&c.expire.as_micros().to_le_bytes());
    encode_id(&c.attestation_id, &mut flags, out);
    out[at] = flags;
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn i64_at(b: &[u8], at: usize) -> i64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    i64::from_le_bytes(x)
}

/// The seller id of the record that starts `bytes`: what the snapshot's hash table compares.
pub(super) fn id_of(bytes: &[u8]) -> &[u8] {
    let start = HEADER + if bytes[4] & SUPERVISED != 0 { 8 } else { 0 };
    &bytes[start..start + usize::from(bytes[5])]
}

/// A seller record read in place. Cheap to copy: a slice.
#[derive(Clone, Copy)]
pub struct Record<'a> {
    bytes: &'a [u8],
}

impl std::fmt::Debug for Record<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Record").field("seller_id", &self.seller_id()).field("len", &self.len()).finish()
    }
}

impl<'a> Record<'a> {
    /// The record that starts `bytes` (which may run on past its end).
    pub(super) fn at(bytes: &'a [u8]) -> Self {
        Self { bytes }
    }

    fn strings(&self) -> usize {
        HEADER + if self.bytes[4] & SUPERVISED != 0 { 8 } else { 0 }
    }

    fn name_len(&self) -> usize {
        u32_at(self.bytes, 6) as usize
    }

    fn contact_len(&self) -> usize {
        u32_at(self.bytes, 10) as usize
    }

    fn text(&self, from: usize, len: usize) -> &'a str {
        // Written from a `&str`, so valid UTF-8; a damaged record reads as empty text.
        std::str::from_utf8(&self.bytes[from..from + len]).unwrap_or("")
    }

    /// Where the contracts begin.
    fn contracts_at(&self) -> usize {
        self.strings() + usize::from(self.bytes[5]) + self.name_len() + self.contact_len()
    }

    /// The record's bytes, exactly: what the saved snapshot file holds.
    pub(super) fn bytes(&self) -> &'a [u8] {
        &self.bytes[..self.len()]
    }

    /// How many contracts the record holds.
    pub fn contract_count(&self) -> usize {
        usize::from(u16_at(self.bytes, 14))
    }

    /// The encoded contracts.
    pub(super) fn contract_bytes(&self) -> &'a [u8] {
        let at = self.contracts_at();
        &self.bytes[at..at + self.contracts_len(at)]
    }

    fn contracts_len(&self, at: usize) -> usize {
        let mut end = at;
        for _ in 0..self.contract_count() {
            end += contract_len(&self.bytes[end..]);
        }
        end - at
    }

    /// The length of the record in bytes.
    pub fn len(&self) -> usize {
        let at = self.contracts_at();
        at + self.contracts_len(at)
    }

    /// Never: a record always holds its header.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Each contract's encoded bytes, in first-seen order.
    pub(super) fn contract_slices(&self) -> ContractSlices<'a> {
        ContractSlices { rest: &self.bytes[self.contracts_at()..], left: self.contract_count() }
    }

    /// The seller id.
    pub fn id(&self) -> &'a str {
        self.text(self.strings(), usize::from(self.bytes[5]))
    }

    /// The seller fields.
    pub(super) fn fields(&self) -> Fields<'a> {
        Fields {
            seller_id: self.id(),
            legal_name: self.name(),
            privacy_contact: self.contact(),
            country: self.country_code(),
            status: SellerStatus::from_number(i32::from(self.bytes[0])).unwrap_or(SellerStatus::Offboarded),
            role: SellerRole::from_number(i32::from(self.bytes[1])).unwrap_or(SellerRole::Recipient),
            last_supervision: self.supervision(),
        }
    }

    /// The legal name, borrowed for as long as the version's bytes, not just this `Record`.
    pub fn name(&self) -> &'a str {
        self.text(self.strings() + usize::from(self.bytes[5]), self.name_len())
    }

    /// The privacy contact, borrowed for as long as the version's bytes.
    pub fn contact(&self) -> &'a str {
        self.text(self.strings() + usize::from(self.bytes[5]) + self.name_len(), self.contact_len())
    }

    fn country_code(&self) -> Country {
        Country::from_stored([self.bytes[2], self.bytes[3]])
    }

    fn supervision(&self) -> Option<Timestamp> {
        (self.bytes[4] & SUPERVISED != 0).then(|| Timestamp::from_micros(i64_at(self.bytes, HEADER)))
    }

    /// The contracts, decoded.
    pub fn contracts(&self) -> impl Iterator<Item = Contract> + 'a {
        self.contract_slices()
            .map(|c| Contract { attestation_id: attestation_id(c).into_shared(), ..contract_of(terms(c)) })
    }

    /// The whole seller, materialised: for pages and reports, not for the hot path.
    pub fn view(&self) -> SellerView {
        let f = self.fields();
        SellerView {
            seller_id: SellerId::from_stored(f.seller_id),
            legal_name: f.legal_name.to_owned(),
            privacy_contact: f.privacy_contact.to_owned(),
            country: f.country,
            status: f.status,
            role: f.role,
            contracts: self.contracts().collect(),
            last_supervision: f.last_supervision,
        }
    }

    /// How many of the seller's contracts are in force at `now`.
    pub fn in_force_count(&self, now: Timestamp) -> usize {
        self.terms().filter(|t| t.in_force(now)).count()
    }
}

fn contract_of(t: Terms) -> Contract {
    Contract {
        attestation_id: Arc::from(""),
        clauses: t.clauses,
        purposes: t.purposes,
        categories: t.categories,
        effective: t.effective,
        expire: t.expire,
        revoked: t.revoked,
        retention_days: t.retention_days,
    }
}

/// The length of the encoded contract that starts `c`.
fn contract_len(c: &[u8]) -> usize {
    if c[0] & UUID_ID != 0 { TERMS + 16 } else { TERMS + 4 + u32_at(c, TERMS) as usize }
}

fn terms(c: &[u8]) -> Terms {
    Terms {
        clauses: Set::from_bits(u32::from(u16_at(c, 1))),
        categories: Set::from_bits(u32::from(u16_at(c, 3))),
        purposes: Set::from_bits(u32::from(c[5])),
        retention_days: u32_at(c, 6),
        effective: Timestamp::from_micros(i64_at(c, 10)),
        expire: Timestamp::from_micros(i64_at(c, 18)),
        revoked: c[0] & REVOKED != 0,
    }
}

/// The stored form of an attestation id: what two contracts are compared by.
pub(super) fn id_bytes(c: &[u8]) -> &[u8] {
    &c[TERMS..contract_len(c)]
}

fn attestation_id(c: &[u8]) -> AttestationRef {
    if c[0] & UUID_ID != 0 {
        let mut raw = [0u8; 16];
        raw.copy_from_slice(&c[TERMS..TERMS + 16]);
        AttestationRef::Uuid(uuid::Uuid::from_bytes(raw))
    } else {
        let len = u32_at(c, TERMS) as usize;
        AttestationRef::Text(Arc::from(std::str::from_utf8(&c[TERMS + 4..TERMS + 4 + len]).unwrap_or("")))
    }
}

/// The encoded contracts of a record, one slice each.
#[derive(Clone)]
pub(super) struct ContractSlices<'a> {
    rest: &'a [u8],
    left: usize,
}

impl<'a> Iterator for ContractSlices<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let (c, rest) = self.rest.split_at(contract_len(self.rest));
        self.rest = rest;
        Some(c)
    }
}

impl SellerFacts for Record<'_> {
    fn seller_id(&self) -> &str {
        self.id()
    }
    fn legal_name(&self) -> &str {
        self.name()
    }
    fn privacy_contact(&self) -> &str {
        self.contact()
    }
    fn country(&self) -> Country {
        self.country_code()
    }
    fn status(&self) -> SellerStatus {
        SellerStatus::from_number(i32::from(self.bytes[0])).unwrap_or(SellerStatus::Offboarded)
    }
    fn role(&self) -> SellerRole {
        SellerRole::from_number(i32::from(self.bytes[1])).unwrap_or(SellerRole::Recipient)
    }
    fn last_supervision(&self) -> Option<Timestamp> {
        self.supervision()
    }
    fn terms(&self) -> impl Iterator<Item = Terms> + Clone {
        self.contract_slices().map(terms)
    }
    fn attestation_id(&self, index: usize) -> AttestationRef {
        self.contract_slices().nth(index).map(attestation_id).unwrap_or_else(|| AttestationRef::Text(Arc::from("")))
    }
}

/// The length of the record that starts `bytes`, if it is well formed within them: every length
/// it declares fits, its texts are UTF-8 and its seller id is a non-empty id. What a record read
/// from outside memory (the saved snapshot file) must pass before [`Record`] reads it in place,
/// since `Record` trusts its bytes and would panic on a length that runs past them.
pub(super) fn checked_len(bytes: &[u8]) -> Option<usize> {
    let header = bytes.get(..HEADER)?;
    SellerStatus::from_number(i32::from(header[0]))?;
    SellerRole::from_number(i32::from(header[1]))?;
    if header[4] & !SUPERVISED != 0 {
        return None;
    }
    let strings = HEADER + if header[4] & SUPERVISED != 0 { 8 } else { 0 };
    let id_len = usize::from(header[5]);
    if id_len == 0 || id_len > SellerId::MAX_LEN {
        return None;
    }
    let name_len = u32_at(header, 6) as usize;
    let contact_len = u32_at(header, 10) as usize;
    let mut at = strings;
    for len in [id_len, name_len, contact_len] {
        let end = at.checked_add(len)?;
        std::str::from_utf8(bytes.get(at..end)?).ok()?;
        at = end;
    }
    for _ in 0..u16_at(header, 14) {
        let c = bytes.get(at..at.checked_add(TERMS)?)?;
        if c[0] & !(REVOKED | UUID_ID) != 0 {
            return None;
        }
        let len = if c[0] & UUID_ID != 0 {
            TERMS + 16
        } else {
            let id_len = u32_at(bytes.get(at..at.checked_add(TERMS + 4)?)?, TERMS) as usize;
            let start = at + TERMS + 4;
            std::str::from_utf8(bytes.get(start..start.checked_add(id_len)?)?).ok()?;
            (TERMS + 4).checked_add(id_len)?
        };
        at = at.checked_add(len)?;
        bytes.get(..at)?;
    }
    Some(at)
}
