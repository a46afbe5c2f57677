//! The transfer policy: a versioned TOML document (the default, PIPA for Korean buyers, is embedded
//! from `policy/pipa-default.toml`), validated and compiled into bitsets once, at start-up, so a
//! decision costs a few integer operations.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use super::vocab::{Clause, DataCategory, Purpose, SellerRole, Set, TransferBasis, Vocab};

/// The built-in default policy.
pub const DEFAULT_POLICY_TOML: &str = include_str!("../../policy/pipa-default.toml");

/// Why a policy document was rejected.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("policy does not parse: {0}")]
    Syntax(#[from] toml::de::Error),
    #[error("policy names an unknown {kind} {name:?} at {at}")]
    UnknownName { kind: &'static str, name: String, at: String },
    #[error("policy is invalid at {at}: {why}")]
    Invalid { at: String, why: String },
    #[error("policy is invalid at line {line} ({at}): {why}")]
    InvalidAtLine { line: usize, at: String, why: String },
}

/// Bases as written: each name keeps where it is in the document, so that a basis the design
/// forbids for a role is reported with its line.
type BasesDoc = BTreeMap<String, Vec<Spanned<String>>>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyDoc {
    version: String,
    decision_ttl_seconds: u32,
    expiring_soon_days: u32,
    #[serde(default)]
    supervision_interval_days: Option<u32>,
    baseline_clauses: Vec<String>,
    #[serde(default)]
    prohibited_categories: Vec<String>,
    accepted_bases: BasesDoc,
    purposes: BTreeMap<String, PurposeDoc>,
    #[serde(default)]
    categories: BTreeMap<String, CategoryDoc>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PurposeDoc {
    #[serde(default)]
    denied: bool,
    #[serde(default)]
    categories: Vec<String>,
    #[serde(default)]
    extra_clauses: Vec<String>,
    #[serde(default)]
    retention_days: u32,
    #[serde(default)]
    accepted_bases: Option<BasesDoc>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CategoryDoc {
    #[serde(default)]
    extra_clauses: Vec<String>,
}

/// What the policy says of one purpose.
#[derive(Debug, Clone, Copy, Default)]
pub struct PurposeRule {
    /// Denied outright (PURPOSE_DENIED_BY_POLICY); a purpose the document omits is denied too.
    pub denied: bool,
    pub permitted: Set<DataCategory>,
    pub extra_clauses: Set<Clause>,
    pub retention_days: u32,
    /// Accepted bases, indexed by [`role_index`].
    pub bases: [Set<TransferBasis>; 2],
}

/// A validated policy, compiled to bitsets.
#[derive(Debug, Clone)]
pub struct Policy {
    pub version: String,
    pub decision_ttl_seconds: u32,
    pub expiring_soon_days: u32,
    pub supervision_interval_days: Option<u32>,
    pub baseline: Set<Clause>,
    pub prohibited: Set<DataCategory>,
    purposes: [PurposeRule; 6],
    category_clauses: [Set<Clause>; 14],
}

/// The slot of a role in [`PurposeRule::bases`].
pub fn role_index(role: SellerRole) -> usize {
    match role {
        SellerRole::Recipient => 0,
        SellerRole::Entrustee => 1,
    }
}

fn names<T: Vocab>(list: &[String], at: &str) -> Result<Set<T>, PolicyError> {
    list.iter()
        .map(|name| {
            T::from_name(name).ok_or_else(|| PolicyError::UnknownName {
                kind: T::KIND,
                name: name.clone(),
                at: at.to_owned(),
            })
        })
        .collect()
}

fn one<T: Vocab>(name: &str, at: &str) -> Result<T, PolicyError> {
    T::from_name(name).ok_or_else(|| PolicyError::UnknownName {
        kind: T::KIND,
        name: name.to_owned(),
        at: at.to_owned(),
    })
}

/// The line (1-based) of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset).map_or(0, |before| before.matches('\n').count()) + 1
}

/// The bases accepted per role. CONTRACT_NECESSITY_DISCLOSED (PIPA 28-8(1)3) covers processing on
/// the platform's behalf, which only an entrustee does: a policy accepting it for a RECIPIENT would
/// let a seller use buyers' data for its own business on a basis that cannot apply, so the policy
/// is refused at start-up rather than any decision relying on it.
fn bases(doc: &BasesDoc, at: &str, text: &str) -> Result<[Set<TransferBasis>; 2], PolicyError> {
    let mut out = [Set::empty(); 2];
    for (role, list) in doc {
        let role: SellerRole = one(role, at)?;
        let at = format!("{at}.{role}");
        for name in list {
            let basis: TransferBasis = one(name.get_ref(), &at)?;
            if basis == TransferBasis::ContractNecessityDisclosed && role != SellerRole::Entrustee {
                return Err(PolicyError::InvalidAtLine {
                    line: line_of(text, name.span().start),
                    at,
                    why: format!("{} is valid only for sellers whose role is ENTRUSTEE", basis.name()),
                });
            }
            out[role_index(role)].insert(basis);
        }
    }
    Ok(out)
}

impl Policy {
    /// Parses, validates and compiles a policy document.
    pub fn from_toml(text: &str) -> Result<Self, PolicyError> {
        let doc: PolicyDoc = toml::from_str(text)?;
        if doc.version.trim().is_empty() {
            return Err(PolicyError::Invalid { at: "version".into(), why: "must not be empty".into() });
        }
        if doc.decision_ttl_seconds == 0 {
            return Err(PolicyError::Invalid { at: "decision_ttl_seconds".into(), why: "must be positive".into() });
        }
        let default_bases = bases(&doc.accepted_bases, "accepted_bases", text)?;
        let mut purposes = [PurposeRule { denied: true, ..PurposeRule::default() }; 6];
        for (name, p) in &doc.purposes {
            let at = format!("purposes.{name}");
            let purpose: Purpose = one(name, "purposes")?;
            let rule = PurposeRule {
                denied: p.denied,
                permitted: names(&p.categories, &format!("{at}.categories"))?,
                extra_clauses: names(&p.extra_clauses, &format!("{at}.extra_clauses"))?,
                retention_days: p.retention_days,
                bases: match &p.accepted_bases {
                    Some(b) => bases(b, &format!("{at}.accepted_bases"), text)?,
                    None => default_bases,
                },
            };
            if !rule.denied && rule.retention_days == 0 {
                return Err(PolicyError::Invalid {
                    at: format!("{at}.retention_days"),
                    why: "an allowed purpose needs a positive retention".into(),
                });
            }
            purposes[purpose.number() as usize] = rule;
        }
        let mut category_clauses = [Set::empty(); 14];
        for (name, c) in &doc.categories {
            let category: DataCategory = one(name, "categories")?;
            category_clauses[category.number() as usize] =
                names(&c.extra_clauses, &format!("categories.{name}.extra_clauses"))?;
        }
        Ok(Self {
            version: doc.version,
            decision_ttl_seconds: doc.decision_ttl_seconds,
            expiring_soon_days: doc.expiring_soon_days,
            supervision_interval_days: doc.supervision_interval_days,
            baseline: names(&doc.baseline_clauses, "baseline_clauses")?,
            prohibited: names(&doc.prohibited_categories, "prohibited_categories")?,
            purposes,
            category_clauses,
        })
    }

    /// The built-in default policy.
    pub fn default_pipa() -> Self {
        // The embedded document is tested below; failing here would be a build defect.
        Self::from_toml(DEFAULT_POLICY_TOML).unwrap_or_else(|e| panic!("embedded default policy is invalid: {e}"))
    }

    /// The rule for `purpose`.
    pub fn purpose(&self, purpose: Purpose) -> &PurposeRule {
        &self.purposes[purpose.number() as usize]
    }

    /// Clauses `category` needs beyond the baseline and its purpose's.
    pub fn category_clauses(&self, category: DataCategory) -> Set<Clause> {
        self.category_clauses[category.number() as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_policy_compiles_as_designed() {
        let p = Policy::default_pipa();
        assert_eq!(p.baseline.len(), 12);
        assert!(!p.baseline.contains(Clause::IdentifierProtection));
        assert_eq!(p.prohibited.len(), 5);
        assert!(p.purpose(Purpose::Marketing).denied);
        let customs = p.purpose(Purpose::CustomsClearance);
        assert_eq!(customs.retention_days, 30);
        assert!(customs.permitted.contains(DataCategory::CustomsCode));
        assert!(p.category_clauses(DataCategory::DateOfBirth).contains(Clause::IdentifierProtection));
        let ful = p.purpose(Purpose::OrderFulfillment);
        assert!(!ful.bases[role_index(SellerRole::Recipient)].contains(TransferBasis::ContractNecessityDisclosed));
        assert!(ful.bases[role_index(SellerRole::Entrustee)].contains(TransferBasis::ContractNecessityDisclosed));
    }

    #[test]
    fn an_unknown_name_is_reported_with_where_it_is() {
        let text = DEFAULT_POLICY_TOML.replace("\"SECURITY_SAFEGUARDS\",", "\"SECURITY_SAFEGARDS\",");
        let err = Policy::from_toml(&text).map(|_| ()).unwrap_err().to_string();
        assert!(err.contains("SECURITY_SAFEGARDS") && err.contains("baseline_clauses"), "{err}");
        let text = DEFAULT_POLICY_TOML.replace("[purposes.MARKETING]", "[purposes.ADVERTISING]");
        let err = Policy::from_toml(&text).map(|_| ()).unwrap_err().to_string();
        assert!(err.contains("ADVERTISING") && err.contains("purpose"), "{err}");
    }

    #[test]
    fn contract_necessity_for_recipients_is_refused_with_its_line() {
        let recipient = "RECIPIENT = [\"SEPARATE_CONSENT\",";
        let line = DEFAULT_POLICY_TOML.lines().position(|l| l.starts_with(recipient)).map(|i| i + 1);
        let text = DEFAULT_POLICY_TOML.replacen(
            recipient,
            "RECIPIENT = [\"SEPARATE_CONSENT\", \"CONTRACT_NECESSITY_DISCLOSED\",",
            1,
        );
        let err = Policy::from_toml(&text).map(|_| ()).unwrap_err().to_string();
        let line = line.map(|l| format!("line {l} ")).unwrap_or_default();
        assert!(!line.is_empty() && err.contains(&line), "{err}");
        assert!(err.contains("accepted_bases.RECIPIENT") && err.contains("CONTRACT_NECESSITY_DISCLOSED"), "{err}");

        // A purpose's own bases are held to the same rule, on the line where the name is.
        let text = DEFAULT_POLICY_TOML.replacen(
            "retention_days = 30\n",
            "retention_days = 30\n\n[purposes.CUSTOMS_CLEARANCE.accepted_bases]\nENTRUSTEE = [\"SEPARATE_CONSENT\"]\nRECIPIENT = [\n  \"SEPARATE_CONSENT\",\n  \"CONTRACT_NECESSITY_DISCLOSED\",\n]\n",
            1,
        );
        let want = text.lines().position(|l| l.contains("\"CONTRACT_NECESSITY_DISCLOSED\",")).map(|i| i + 1);
        let err = Policy::from_toml(&text).map(|_| ()).unwrap_err().to_string();
        assert!(
            want.is_some_and(|l| err.contains(&format!("line {l} ")))
                && err.contains("purposes.CUSTOMS_CLEARANCE.accepted_bases.RECIPIENT"),
            "{err}"
        );
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let text = format!("{DEFAULT_POLICY_TOML}\n[purposes.CUSTOMER_SUPPORT.oops]\n");
        assert!(Policy::from_toml(&text).is_err());
    }
}
