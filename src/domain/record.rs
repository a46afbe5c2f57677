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
