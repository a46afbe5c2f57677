//! The record of one decision, kept for auditors: who asked what, and what the answer was and why.

use std::sync::Arc;

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
    pub caller: Arc<str>,
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
    pub policy_version: Arc<str>,
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

/// Text of a stored column, shared: the vocabulary's names, the caller and the policy version are
/// the same few strings in every record, so a row refers to them instead of copying them, and the
/// SQLite writer binds them without another copy.
pub type Text = Arc<str>;

/// (De)serializes a [`Text`] as a JSON string.
mod text {
    use super::Text;

    pub fn serialize<S: serde::Serializer>(t: &Text, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(t)
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Text, D::Error> {
        <String as serde::Deserialize>::deserialize(d).map(Text::from)
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
    #[serde(with = "text")]
    pub decision_id: Text,
    /// Microseconds since the Unix epoch.
    pub time: i64,
    #[serde(with = "text")]
    pub caller: Text,
    /// Empty on a lost-records marker.
    #[serde(with = "text")]
    pub seller_id: Text,
    #[serde(with = "text")]
    pub purpose: Text,
    #[serde(with = "text")]
    pub basis: Text,
    #[serde(with = "text")]
    pub basis_evidence_ref: Text,
    /// Category names separated by single spaces.
    #[serde(with = "text")]
    pub categories: Text,
    /// Empty on a lost-records marker.
    #[serde(with = "text")]
    pub decision: Text,
    #[serde(with = "text")]
    pub allowed: Text,
    /// The reasons as JSON, byte for byte as stored.
    #[serde(with = "text")]
    pub reasons: Text,
    pub revision: i64,
    #[serde(with = "text")]
    pub policy_version: Text,
    pub lost_records: i64,
}

/// The shared empty text.
fn empty() -> Text {
    static EMPTY: std::sync::OnceLock<Text> = std::sync::OnceLock::new();
    EMPTY.get_or_init(|| "".into()).clone()
}

/// The names separated by single spaces; one name is its shared name.
fn names<T: super::vocab::Vocab>(values: &[T]) -> Text {
    match values {
        [] => empty(),
        [one] => one.shared_name(),
        _ => super::vocab::names(values).into(),
    }
}

fn shared<T: super::vocab::Vocab>(value: Option<T>) -> Text {
    value.map_or_else(empty, T::shared_name)
}

/// The stored reasons: a decision without any (every ALLOW) shares one text.
fn reasons_json(outcome: &RecordedReasons) -> Text {
    static NONE: std::sync::OnceLock<Text> = std::sync::OnceLock::new();
    if outcome.denied.is_empty() && outcome.reasons.is_empty() {
        return NONE
            .get_or_init(|| serde_json::to_string(&RecordedReasons::default()).unwrap_or_default().into())
            .clone();
    }
    serde_json::to_string(outcome).unwrap_or_default().into()
}

impl RecordRow {
    /// The stored form of a record, not yet in the log.
    pub fn of(r: &DecisionRecord) -> Self {
        Self {
            leaf_index: None,
            decision_id: r.decision_id.as_str().into(),
            time: r.time.as_micros(),
            caller: r.caller.clone(),
            seller_id: r.seller_id.as_ref().map_or_else(empty, SellerId::shared),
            purpose: shared(r.purpose),
            basis: shared(r.basis),
            basis_evidence_ref: if r.basis_evidence_ref.is_empty() {
                empty()
            } else {
                r.basis_evidence_ref.as_str().into()
            },
            categories: names(&r.categories),
            decision: shared(r.decision),
            allowed: names(&r.allowed),
            reasons: reasons_json(&r.outcome),
            revision: r.revision,
            policy_version: r.policy_version.clone(),
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
            basis_evidence_ref: "".into(),
            categories: "NAME PHONE".into(),
            decision: "ALLOW".into(),
            allowed: "NAME PHONE".into(),
            reasons: "{}".into(),
            revision: 3,
            policy_version: "p".into(),
            lost_records: 0,
        }
    }

    fn record(categories: Vec<DataCategory>, outcome: RecordedReasons) -> DecisionRecord {
        DecisionRecord {
            decision_id: "0193c1a0-0000-7000-8000-000000000001".into(),
            time: Timestamp::from_micros(5),
            caller: "checkout".into(),
            seller_id: Some(SellerId::parse("S-1").unwrap()),
            purpose: Some(Purpose::OrderFulfillment),
            basis: None,
            basis_evidence_ref: String::new(),
            allowed: categories.clone(),
            categories,
            decision: Some(Decision::Allow),
            outcome,
            revision: 9,
            policy_version: "v1".into(),
            lost_records: 0,
        }
    }

    #[test]
    fn the_stored_form_spells_every_column_and_survives_json() {
        use crate::domain::vocab::{Clause, ReasonCode};
        let one = RecordRow::of(&record(vec![DataCategory::RecipientName], RecordedReasons::default()));
        assert_eq!(&*one.categories, "RECIPIENT_NAME");
        assert_eq!(&*one.purpose, "ORDER_FULFILLMENT");
        assert_eq!(&*one.basis, "");
        assert_eq!(&*one.seller_id, "S-1");
        assert_eq!(&*one.reasons, r#"{"denied":[],"reasons":[]}"#);
        let denied = RecordedReasons {
            denied: vec![(
                DataCategory::CustomsCode,
                vec![Reason { code: ReasonCode::ClauseMissing, clause: Some(Clause::DataMinimization) }],
            )],
            reasons: Vec::new(),
        };
        let many = RecordRow::of(&record(vec![DataCategory::PhoneNumber, DataCategory::CustomsCode], denied.clone()));
        assert_eq!(&*many.categories, "PHONE_NUMBER CUSTOMS_CODE");
        assert_eq!(&*many.allowed, "PHONE_NUMBER CUSTOMS_CODE");
        assert_eq!(serde_json::from_str::<RecordedReasons>(&many.reasons).unwrap(), denied);
        let json = serde_json::to_string(&many).unwrap();
        assert!(json.contains(r#""categories":"PHONE_NUMBER CUSTOMS_CODE""#), "{json}");
        assert_eq!(serde_json::from_str::<RecordRow>(&json).unwrap(), many);
        let marker = RecordRow::of(&DecisionRecord {
            seller_id: None,
            decision: None,
            ..record(Vec::new(), RecordedReasons::default())
        });
        assert_eq!((&*marker.seller_id, &*marker.decision, &*marker.categories), ("", "", ""));
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
