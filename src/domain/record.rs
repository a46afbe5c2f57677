//! The record of one decision, kept for auditors: who asked what, and what the answer was and why.

use serde::{Deserialize, Serialize};

use super::ids::{SellerId, Timestamp};
use super::verify::Reason;
use super::vocab::{DataCategory, Decision, Purpose, TransferBasis};

/// One recorded decision, or a marker that `lost_records` decisions could not be recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecisionRecord {
    pub decision_id: String,
    pub time: Timestamp,
    /// Shared with the caller's principal: recording a decision copies no string.
    pub caller: std::sync::Arc<str>,
    /// `None` only on a lost-records marker.
    pub seller_id: Option<SellerId>,
    pub purpose: Option<Purpose>,
    pub basis: Option<TransferBasis>,
    pub basis_evidence_ref: String,
    pub categories: Vec<DataCategory>,
    pub decision: Option<Decision>,
    pub allowed: Vec<DataCategory>,
    pub outcome: RecordedReasons,
    pub revision: i64,
    /// Shared with the verification service, which holds it for the life of the process.
    pub policy_version: std::sync::Arc<str>,
    pub lost_records: i64,
}

/// The reasons of a decision, stored as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RecordedReasons {
    pub denied: Vec<(DataCategory, Vec<Reason>)>,
    pub reasons: Vec<Reason>,
}

/// Which decisions are recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum RecordMode {
    /// Every decision.
    #[default]
    All,
    /// Only decisions that denied something (DENY and ALLOW_PARTIAL).
    DenyOnly,
    /// None.
    Off,
}

impl RecordMode {
    /// Whether a decision with this outcome is recorded.
    pub fn records(self, decision: Decision) -> bool {
        match self {
            Self::All => true,
            Self::DenyOnly => decision != Decision::Allow,
            Self::Off => false,
        }
    }
}

/// A decision record as it is stored and exported: every column of `decisions` in its stored
/// text form. The record's leaf in the decision log is built from these fields, so an auditor
/// holding an exported row can recompute it without knowing safeguard's types.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordRow {
    /// The record's position in the decision log; `None` until it has one (written while
    /// checkpoints were off, and not yet given one).
    pub leaf_index: Option<i64>,
    pub decision_id: String,
    /// Microseconds since the Unix epoch.
    pub time: i64,
    pub caller: String,
    /// Empty on a lost-records marker.
    pub seller_id: String,
    pub purpose: String,
    pub basis: String,
    pub basis_evidence_ref: String,
    /// Category names separated by single spaces.
    pub categories: String,
    /// Empty on a lost-records marker.
    pub decision: String,
    pub allowed: String,
    /// The reasons as JSON, byte for byte as stored.
    pub reasons: String,
    pub revision: i64,
    pub policy_version: String,
    pub lost_records: i64,
}

fn names<T: super::vocab::Vocab>(values: &[T]) -> String {
    let mut out = String::new();
    for v in values {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(v.name());
    }
    out
}

impl RecordRow {
    /// The stored form of a record, not yet in the log.
    pub fn of(r: &DecisionRecord) -> Self {
        use super::vocab::Vocab;
        Self {
            leaf_index: None,
            decision_id: r.decision_id.clone(),
            time: r.time.as_micros(),
            caller: r.caller.to_string(),
            seller_id: r.seller_id.as_ref().map(|s| s.as_str().to_owned()).unwrap_or_default(),
            purpose: r.purpose.map(|p| p.name()).unwrap_or_default().to_owned(),
            basis: r.basis.map(|b| b.name()).unwrap_or_default().to_owned(),
            basis_evidence_ref: r.basis_evidence_ref.clone(),
            categories: names(&r.categories),
            decision: r.decision.map(|d| d.name()).unwrap_or_default().to_owned(),
            allowed: names(&r.allowed),
            reasons: serde_json::to_string(&r.outcome).unwrap_or_default(),
            revision: r.revision,
            policy_version: r.policy_version.to_string(),
            lost_records: r.lost_records,
        }
    }

    /// The record's leaf bytes in the decision log (`docs/verifiable-log.md`): its leaf index and
    /// then every column, framed as registry leaves are. `None` while it has no leaf index.
    pub fn leaf_bytes(&self) -> Option<Vec<u8>> {
        let ints = self.leaf_ints()?;
        Some(super::chain::framed(&self.leaf_fields(&ints)))
    }

    /// The hash of [`leaf_bytes`](Self::leaf_bytes), computed without building them.
    pub fn leaf_hash(&self) -> Option<super::merkle::Hash> {
        let ints = self.leaf_ints()?;
        Some(super::merkle::framed_leaf_hash(&self.leaf_fields(&ints)))
    }

    /// The leaf index, time, revision and lost-records count as the leaf frames them.
    fn leaf_ints(&self) -> Option<[[u8; 8]; 4]> {
        let index = self.leaf_index?;
        Some([index, self.time, self.revision, self.lost_records].map(i64::to_be_bytes))
    }

    /// The leaf's fields, in order, given [`leaf_ints`](Self::leaf_ints).
    fn leaf_fields<'a>(&'a self, [index, time, revision, lost]: &'a [[u8; 8]; 4]) -> [&'a [u8]; 15] {
        [
            index,
            self.decision_id.as_bytes(),
            time,
            self.caller.as_bytes(),
            self.seller_id.as_bytes(),
            self.purpose.as_bytes(),
            self.basis.as_bytes(),
            self.basis_evidence_ref.as_bytes(),
            self.categories.as_bytes(),
            self.decision.as_bytes(),
            self.allowed.as_bytes(),
            self.reasons.as_bytes(),
            revision,
            self.policy_version.as_bytes(),
            lost,
        ]
    }

    /// A one-line description of leaf bytes of the decision log, if that is what they are.
    pub fn describe_leaf(data: &[u8]) -> Option<String> {
        let fields = super::chain::unframe(data)?;
        let [index, id, _time, caller, seller, _purpose, _basis, _ref, _cats, decision, ..] = fields.as_slice() else {
            return None;
        };
        if fields.len() != 15 || index.len() != 8 {
            return None;
        }
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        Some(format!(
            "decision {} ({}) for seller {:?} asked by {}",
            text(id),
            text(decision),
            text(seller),
            text(caller)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> RecordRow {
        RecordRow {
            leaf_index: Some(7),
            decision_id: "d".into(),
            time: 1,
            caller: "c".into(),
            seller_id: "s".into(),
            purpose: "ORDER_FULFILLMENT".into(),
            basis: "CONTRACT".into(),
            basis_evidence_ref: String::new(),
            categories: "NAME PHONE".into(),
            decision: "ALLOW".into(),
            allowed: "NAME PHONE".into(),
            reasons: "{}".into(),
            revision: 3,
            policy_version: "p".into(),
            lost_records: 0,
        }
    }

    #[test]
    fn every_column_and_the_leaf_index_change_the_leaf() {
        let base = row();
        let bytes = base.leaf_bytes().unwrap();
        assert_eq!(&bytes[..16], &[0, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 7]);
        let changes: Vec<RecordRow> = vec![
            RecordRow { leaf_index: Some(8), ..row() },
            RecordRow { decision_id: "e".into(), ..row() },
            RecordRow { time: 2, ..row() },
            RecordRow { caller: "x".into(), ..row() },
            RecordRow { seller_id: "t".into(), ..row() },
            RecordRow { purpose: "CUSTOMS_CLEARANCE".into(), ..row() },
            RecordRow { basis: "CONSENT".into(), ..row() },
            RecordRow { basis_evidence_ref: "r".into(), ..row() },
            RecordRow { categories: "NAME".into(), ..row() },
            RecordRow { decision: "DENY".into(), ..row() },
            RecordRow { allowed: "NAME".into(), ..row() },
            RecordRow { reasons: "{ }".into(), ..row() },
            RecordRow { revision: 4, ..row() },
            RecordRow { policy_version: "q".into(), ..row() },
            RecordRow { lost_records: 1, ..row() },
        ];
        for changed in changes {
            assert_ne!(changed.leaf_bytes().unwrap(), bytes, "{changed:?}");
            let hash = changed.leaf_hash().unwrap();
            assert_eq!(hash, crate::domain::merkle::leaf_hash(&changed.leaf_bytes().unwrap()), "{changed:?}");
            assert_ne!(hash, base.leaf_hash().unwrap(), "{changed:?}");
        }
        assert_eq!(RecordRow { leaf_index: None, ..row() }.leaf_hash(), None);
        assert_eq!(RecordRow { leaf_index: None, ..row() }.leaf_bytes(), None);
        let described = RecordRow::describe_leaf(&bytes).unwrap();
        assert!(described.contains("decision d (ALLOW)"), "{described}");
        assert_eq!(RecordRow::describe_leaf(b"junk"), None);
    }
}
