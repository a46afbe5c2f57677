//! Writing rows: the inverse of reading, so that what is written reads back to the same records.

use std::io::{self, Write};

use super::format::{CSV_HEADER, Format, Record, SELLER_COLUMNS, format_time, name, names};
use crate::domain::{Clause, DataCategory, Purpose, SellerRole, SellerStatus};

/// Writes records in one format; the output reads back to the same records.
pub enum RecordWriter<W: Write> {
    Csv(Box<csv::Writer<W>>),
    Jsonl(W),
}

impl<W: Write> RecordWriter<W> {
    /// A writer of `format` to `out`; CSV starts with the header.
    pub fn new(format: Format, out: W) -> io::Result<Self> {
        Ok(match format {
            Format::Csv => {
                let mut w = csv::WriterBuilder::new().from_writer(out);
                w.write_record(CSV_HEADER).map_err(io::Error::other)?;
                Self::Csv(Box::new(w))
            }
            Format::Jsonl => Self::Jsonl(out),
        })
    }

    /// Writes one record.
    pub fn write(&mut self, record: &Record) -> io::Result<()> {
        match (self, record) {
            (Self::Csv(w), Record::Seller(s)) => {
                let row = [
                    "seller",
                    &s.seller_id,
                    &s.legal_name,
                    &s.country,
                    name::<SellerStatus>(s.status),
                    name::<SellerRole>(s.role),
                    &s.contact_email,
                    &s.privacy_contact,
                ];
                w.write_record(row.into_iter().chain([""; 10])).map_err(io::Error::other)
            }
            (Self::Csv(w), Record::Attestation(a)) => {
                let row = [
                    "attestation".to_owned(),
                    a.seller_id.clone(),
                    a.contract_ref.clone(),
                    a.document_sha256.clone(),
                    names::<Clause>(&a.clauses).join(";"),
                    names::<Purpose>(&a.purposes).join(";"),
                    names::<DataCategory>(&a.categories).join(";"),
                    format_time(a.signed_time.as_ref()),
                    format_time(a.effective_time.as_ref()),
                    format_time(a.expire_time.as_ref()),
                    a.signatory.clone(),
                    a.retention_days.to_string(),
                ];
                let [kind, seller_id, rest @ ..] = row;
                let blanks = std::iter::repeat_n(String::new(), SELLER_COLUMNS.len() - 1);
                w.write_record([kind, seller_id].into_iter().chain(blanks).chain(rest)).map_err(io::Error::other)
            }
            (Self::Jsonl(w), record) => {
                write_json_line(&mut *w, record)?;
                w.write_all(b"\n")
            }
        }
    }

    /// Flushes and returns the output.
    pub fn finish(self) -> io::Result<W> {
        let mut out = match self {
            Self::Csv(w) => w.into_inner().map_err(|e| io::Error::other(e.to_string()))?,
            Self::Jsonl(w) => w,
        };
        out.flush()?;
        Ok(out)
    }
}

/// A seller line of JSON Lines, keys in proto order.
#[derive(serde::Serialize)]
struct SellerLine<'a> {
    r#type: &'static str,
    seller_id: &'a str,
    legal_name: &'a str,
    country: &'a str,
    status: &'static str,
    role: &'static str,
    contact_email: &'a str,
    privacy_contact: &'a str,
}

/// An attestation line of JSON Lines, keys in proto order.
#[derive(serde::Serialize)]
struct AttestationLine<'a> {
    r#type: &'static str,
    seller_id: &'a str,
    contract_ref: &'a str,
    document_sha256: &'a str,
    clauses: Vec<&'static str>,
    purposes: Vec<&'static str>,
    categories: Vec<&'static str>,
    signed_time: String,
    effective_time: String,
    expire_time: String,
    signatory: &'a str,
    retention_days: u32,
}

fn write_json_line(w: &mut impl Write, record: &Record) -> serde_json::Result<()> {
    match record {
        Record::Seller(s) => serde_json::to_writer(
            w,
            &SellerLine {
                r#type: "seller",
                seller_id: &s.seller_id,
                legal_name: &s.legal_name,
                country: &s.country,
                status: name::<SellerStatus>(s.status),
                role: name::<SellerRole>(s.role),
                contact_email: &s.contact_email,
                privacy_contact: &s.privacy_contact,
            },
        ),
        Record::Attestation(a) => serde_json::to_writer(
            w,
            &AttestationLine {
                r#type: "attestation",
                seller_id: &a.seller_id,
                contract_ref: &a.contract_ref,
                document_sha256: &a.document_sha256,
                clauses: names::<Clause>(&a.clauses),
                purposes: names::<Purpose>(&a.purposes),
                categories: names::<DataCategory>(&a.categories),
                signed_time: format_time(a.signed_time.as_ref()),
                effective_time: format_time(a.effective_time.as_ref()),
                expire_time: format_time(a.expire_time.as_ref()),
                signatory: &a.signatory,
                retention_days: a.retention_days,
            },
        ),
    }
}
