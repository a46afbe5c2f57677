//! Reading rows: text into the domain's inputs (vocabulary names into numbers, RFC 3339 into
//! times), every malformed field reported by name. Every rule beyond that is the domain
//! validator's ([`crate::domain::input`]), applied by [`Record::into_item`], so a row is accepted
//! exactly when the same item sent to `ImportSellers` would be.

use serde_json::{Map, Value};

use super::format::{ATTESTATION_COLUMNS, CSV_HEADER, Record, SELLER_COLUMNS, parse_time};
use crate::domain::input::{AttestationInput, SellerInput, TimeInput};
use crate::domain::{Clause, DataCategory, Purpose, SellerRole, SellerStatus, Violation, Violations, Vocab};
use crate::store::ImportItem;

/// Access to one row's fields, whatever the file format.
pub trait Fields {
    /// The row's `type`.
    fn kind(&self) -> Result<String, Violation>;
    /// A text field; empty when absent.
    fn text(&self, name: &str) -> Result<String, Violation>;
    /// A list of vocabulary names; empty when absent.
    fn names(&self, name: &str) -> Result<Vec<String>, Violation>;
    /// A whole number; `None` when absent.
    fn number(&self, name: &str) -> Result<Option<u64>, Violation>;
    /// Every field present with a value that the row's kind does not have.
    fn foreign(&self, allowed: &[&str]) -> Vec<Violation>;
}

/// Reads and validates one row: every fault of the row, reading and validation alike, in one go.
pub fn item(row: &impl Fields) -> Result<ImportItem, Vec<Violation>> {
    let (record, mut faults) = record(row)?;
    match record.into_item() {
        Ok(item) if faults.is_empty() => Ok(item),
        Ok(_) => Err(faults),
        Err(more) => {
            // A field that could not be read reached validation empty: its "must be set" or
            // "must list at least one value" would only repeat the reading fault.
            let base = |field: &str| field.split('[').next().unwrap_or(field).to_owned();
            let unread: Vec<String> = faults.iter().map(|v| base(&v.field)).collect();
            faults.extend(more.into_iter().filter(|v| !unread.contains(&base(&v.field))));
            Err(faults)
        }
    }
}

/// Reads one row into a record and the faults found reading it; fails only when the row's type
/// cannot be told.
fn record(row: &impl Fields) -> Result<(Record, Vec<Violation>), Vec<Violation>> {
    let kind = row.kind().map_err(|v| vec![v])?;
    let mut v = Violations::new();
    let record = match kind.as_str() {
        "seller" => {
            row.foreign(&SELLER_COLUMNS).into_iter().for_each(|x| v.push(x));
            Record::Seller(SellerInput {
                seller_id: v.check(row.text("seller_id")).unwrap_or_default(),
                legal_name: v.check(row.text("legal_name")).unwrap_or_default(),
                country: v.check(row.text("country")).unwrap_or_default(),
                status: one::<SellerStatus>(row, "status", &mut v),
                role: one::<SellerRole>(row, "role", &mut v),
                contact_email: v.check(row.text("contact_email")).unwrap_or_default(),
                privacy_contact: v.check(row.text("privacy_contact")).unwrap_or_default(),
                etag: String::new(),
            })
        }
        "attestation" => {
            row.foreign(&ATTESTATION_COLUMNS).into_iter().for_each(|x| v.push(x));
            let retention = v.check(row.number("retention_days")).flatten().unwrap_or(0);
            let retention_days = u32::try_from(retention).unwrap_or_else(|_| {
                v.push(Violation::new("retention_days", "is too large"));
                0
            });
            Record::Attestation(AttestationInput {
                seller_id: v.check(row.text("seller_id")).unwrap_or_default(),
                contract_ref: v.check(row.text("contract_ref")).unwrap_or_default(),
                document_sha256: v.check(row.text("document_sha256")).unwrap_or_default(),
                clauses: many::<Clause>(row, "clauses", &mut v),
                purposes: many::<Purpose>(row, "purposes", &mut v),
                categories: many::<DataCategory>(row, "categories", &mut v),
                signed_time: time(row, "signed_time", &mut v),
                effective_time: time(row, "effective_time", &mut v),
                expire_time: time(row, "expire_time", &mut v),
                signatory: v.check(row.text("signatory")).unwrap_or_default(),
                retention_days,
            })
        }
        other => {
            return Err(vec![Violation::new("type", format!("{other:?} is neither \"seller\" nor \"attestation\""))]);
        }
    };
    Ok((record, v.into_vec()))
}

fn unknown<T: Vocab>(name: &str) -> String {
    let known = T::ALL.iter().map(|t| t.name()).collect::<Vec<_>>().join(", ");
    format!("{name:?} is not a {}: use one of {known}", T::KIND)
}

/// An optional single vocabulary value: 0 (UNSPECIFIED) when empty, as on the wire.
fn one<T: Vocab>(row: &impl Fields, field: &str, v: &mut Violations) -> i32 {
    let Some(name) = v.check(row.text(field)) else { return 0 };
    let name = name.trim();
    if name.is_empty() {
        return 0;
    }
    T::from_name(name).map_or_else(|| (v.push(Violation::new(field, unknown::<T>(name))), 0).1, Vocab::number)
}

fn many<T: Vocab>(row: &impl Fields, field: &str, v: &mut Violations) -> Vec<i32> {
    let Some(names) = v.check(row.names(field)) else { return Vec::new() };
    let mut numbers = Vec::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        match T::from_name(name) {
            Some(t) => numbers.push(t.number()),
            None => v.push(Violation::new(format!("{field}[{i}]"), unknown::<T>(name))),
        }
    }
    numbers
}

fn time(row: &impl Fields, field: &str, v: &mut Violations) -> Option<TimeInput> {
    let text = v.check(row.text(field))?;
    let text = text.trim();
    if text.is_empty() {
        // Left to the validator, which reports "must be set" like the API does.
        return None;
    }
    match parse_time(text) {
        Some(t) => Some(t),
        None => {
            v.push(Violation::new(field, format!("{text:?} is not an RFC 3339 time such as 2025-01-31T00:00:00Z")));
            None
        }
    }
}

/// A CSV row: the header decides which column is which.
pub struct CsvRow<'a> {
    pub header: &'a [String],
    pub record: &'a csv::StringRecord,
}

impl CsvRow<'_> {
    fn get(&self, name: &str) -> &str {
        self.header.iter().position(|h| h == name).and_then(|i| self.record.get(i)).unwrap_or("")
    }
}

impl Fields for CsvRow<'_> {
    fn kind(&self) -> Result<String, Violation> {
        Ok(self.get("type").trim().to_owned())
    }
    fn text(&self, name: &str) -> Result<String, Violation> {
        Ok(self.get(name).to_owned())
    }
    fn names(&self, name: &str) -> Result<Vec<String>, Violation> {
        Ok(self.get(name).split(';').map(str::trim).filter(|n| !n.is_empty()).map(str::to_owned).collect())
    }
    fn number(&self, name: &str) -> Result<Option<u64>, Violation> {
        let text = self.get(name).trim();
        if text.is_empty() {
            return Ok(None);
        }
        text.parse().map(Some).map_err(|_| Violation::new(name, format!("{text:?} is not a whole number")))
    }
    fn foreign(&self, allowed: &[&str]) -> Vec<Violation> {
        self.header
            .iter()
            .zip(self.record.iter())
            .filter(|(h, value)| h.as_str() != "type" && !allowed.contains(&h.as_str()) && !value.trim().is_empty())
            .map(|(h, _)| Violation::new(h.as_str(), "is not a column of this row's type: leave it empty"))
            .collect()
    }
}

/// Checks a CSV header: `type` present, every column known, none twice.
pub fn check_header(header: &[String]) -> Result<(), String> {
    if !header.iter().any(|h| h == "type") {
        return Err("the header has no `type` column".into());
    }
    for (i, h) in header.iter().enumerate() {
        if !CSV_HEADER.contains(&h.as_str()) {
            return Err(format!("unknown column {h:?} in the header (known: {})", CSV_HEADER.join(", ")));
        }
        if header[..i].contains(h) {
            return Err(format!("column {h:?} appears twice in the header"));
        }
    }
    Ok(())
}

/// A JSON Lines row: one object.
pub struct JsonRow(pub Map<String, Value>);

impl Fields for JsonRow {
    fn kind(&self) -> Result<String, Violation> {
        match self.0.get("type") {
            Some(Value::String(s)) => Ok(s.clone()),
            None => Err(Violation::new("type", "is missing: \"seller\" or \"attestation\"")),
            Some(_) => Err(Violation::new("type", "must be the string \"seller\" or \"attestation\"")),
        }
    }
    fn text(&self, name: &str) -> Result<String, Violation> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(String::new()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(_) => Err(Violation::new(name, "must be a string")),
        }
    }
    fn names(&self, name: &str) -> Result<Vec<String>, Violation> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, item)| match item {
                    Value::String(s) => Ok(s.clone()),
                    _ => Err(Violation::new(format!("{name}[{i}]"), "must be a string")),
                })
                .collect(),
            Some(_) => Err(Violation::new(name, "must be an array of names")),
        }
    }
    fn number(&self, name: &str) -> Result<Option<u64>, Violation> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => {
                n.as_u64().map(Some).ok_or_else(|| Violation::new(name, "must be a whole number, at least 0"))
            }
            Some(_) => Err(Violation::new(name, "must be a number")),
        }
    }
    fn foreign(&self, allowed: &[&str]) -> Vec<Violation> {
        self.0
            .keys()
            .filter(|k| k.as_str() != "type" && !allowed.contains(&k.as_str()))
            .map(|k| Violation::new(k.as_str(), "is not a field of this row's type"))
            .collect()
    }
}

/// Reads and validates one line of JSON Lines.
pub fn json_item(line: &str) -> Result<ImportItem, Vec<Violation>> {
    json_row(line, item)
}

/// Reads one row into the record a client of `ImportSellers` sends (`safeguard import --grpc`).
/// Only reading faults are found here; the server validates the rest and reports it by item index.
pub fn request(row: &impl Fields) -> Result<Record, Vec<Violation>> {
    let (record, faults) = record(row)?;
    if faults.is_empty() { Ok(record) } else { Err(faults) }
}

/// Reads one line of JSON Lines into the record a client of `ImportSellers` sends.
pub fn json_request(line: &str) -> Result<Record, Vec<Violation>> {
    json_row(line, request)
}

fn json_row<T>(line: &str, read: impl Fn(&JsonRow) -> Result<T, Vec<Violation>>) -> Result<T, Vec<Violation>> {
    match serde_json::from_str::<Value>(line) {
        Ok(Value::Object(map)) => read(&JsonRow(map)),
        Ok(_) => Err(vec![Violation::new("", "must be a JSON object")]),
        Err(e) => Err(vec![Violation::new("", format!("is not valid JSON: {e}"))]),
    }
}
