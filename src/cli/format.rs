//! The two file formats and what they share: the columns, the record a row stands for (the domain's
//! input, exactly what the API's messages map to), and RFC 3339 times. See [`crate::cli`] for the formats themselves.

use crate::domain::input::{AttestationInput, SellerInput, TimeInput};
use crate::domain::{Violation, Vocab};
use crate::store::{ImportItem, SellerImport};
use chrono::{DateTime, SecondsFormat};

/// The columns of a seller row, in file order.
pub const SELLER_COLUMNS: [&str; 7] =
    ["seller_id", "legal_name", "country", "status", "role", "contact_email", "privacy_contact"];

/// The columns of an attestation row, in file order.
pub const ATTESTATION_COLUMNS: [&str; 11] = [
    "seller_id",
    "contract_ref",
    "document_sha256",
    "clauses",
    "purposes",
    "categories",
    "signed_time",
    "effective_time",
    "expire_time",
    "signatory",
    "retention_days",
];

/// The CSV header: `type`, then the union of both row kinds' columns (seller_id once).
pub const CSV_HEADER: [&str; 18] = [
    "type",
    "seller_id",
    "legal_name",
    "country",
    "status",
    "role",
    "contact_email",
    "privacy_contact",
    "contract_ref",
    "document_sha256",
    "clauses",
    "purposes",
    "categories",
    "signed_time",
    "effective_time",
    "expire_time",
    "signatory",
    "retention_days",
];

/// One row of a file: an item as a client of `ImportSellers` would send it.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    Seller(SellerInput),
    Attestation(AttestationInput),
}

impl Record {
    /// Validates the row exactly as the gRPC API validates an import item. Field paths are the
    /// column names (`country`, `clauses[2]`).
    pub fn into_item(self) -> Result<ImportItem, Vec<Violation>> {
        match self {
            Record::Seller(s) => {
                let fields = s.validate("")?;
                Ok(ImportItem::Seller(SellerImport { fields, status_given: s.status_given(), etag: s.etag() }))
            }
            Record::Attestation(a) => a.validate("").map(ImportItem::Attestation),
        }
    }
}

/// The file formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One flat CSV file with a `type` column.
    Csv,
    /// JSON Lines: one object per line.
    Jsonl,
}

impl Format {
    /// The format a file name's extension implies: `.csv`, `.jsonl` or `.ndjson`.
    pub fn from_path(path: &std::path::Path) -> Option<Self> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "csv" => Some(Self::Csv),
            "jsonl" | "ndjson" => Some(Self::Jsonl),
            _ => None,
        }
    }
}

/// Parses an RFC 3339 date-time with any offset.
pub fn parse_time(text: &str) -> Option<TimeInput> {
    let t = DateTime::parse_from_rfc3339(text).ok()?;
    Some(TimeInput { seconds: t.timestamp(), nanos: i32::try_from(t.timestamp_subsec_nanos()).ok()? })
}

/// Formats a timestamp as RFC 3339 in UTC, with as many fractional digits as it needs (none for
/// whole seconds), so that reading it back gives the same instant.
pub fn format_time(t: Option<&TimeInput>) -> String {
    t.and_then(|t| DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).ok()?))
        .map(|t| t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
        .unwrap_or_default()
}

pub(super) fn name<T: Vocab>(number: i32) -> &'static str {
    T::from_number(number).map_or("", Vocab::name)
}

pub(super) fn names<T: Vocab>(numbers: &[i32]) -> Vec<&'static str> {
    numbers.iter().map(|n| name::<T>(*n)).collect()
}
