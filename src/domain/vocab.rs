//! The closed vocabularies of the domain: clauses, data categories, purposes, transfer bases,
//! statuses and reason codes. Each enum's discriminants equal the proto numbers, so the edge converts
//! with a range check, and each variant owns one bit so that sets of them are a single integer
//! ([`Set`]). Names (`SECURITY_SAFEGUARDS`) are the proto names without their enum prefix; the policy
//! file and the event log use them.

use std::fmt;
use std::marker::PhantomData;

/// A vocabulary enum: a small, closed set of named variants numbered from 1.
pub trait Vocab: Copy + Eq + 'static {
    /// Every variant, in proto order.
    const ALL: &'static [Self];
    /// What the vocabulary is called in error messages ("clause", "data category").
    const KIND: &'static str;
    /// The proto number (1-based).
    fn number(self) -> i32;
    /// The name without the proto enum prefix.
    fn name(self) -> &'static str;
    /// The variant with this proto number, if any (0, UNSPECIFIED, is none).
    fn from_number(n: i32) -> Option<Self> {
        Self::ALL.iter().copied().find(|v| v.number() == n)
    }
    /// The variant with this name, if any.
    fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|v| v.name() == name)
    }
    /// [`name`](Self::name) as a shared string, built once per variant: a decision record that
    /// stores the name copies no text.
    fn shared_name(self) -> std::sync::Arc<str>;
}

/// The names of `values`, in order, separated by single spaces: how lists of them are stored.
pub fn names<T: Vocab>(values: &[T]) -> String {
    let mut out = String::new();
    for v in values {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(v.name());
    }
    out
}

macro_rules! vocab {
    ($(#[$doc:meta])* $name:ident, $kind:literal { $($(#[$vdoc:meta])* $variant:ident = $n:literal => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
        pub enum $name {
            $($(#[$vdoc])* $variant = $n),+
        }

        impl Vocab for $name {
            const ALL: &'static [Self] = &[$(Self::$variant),+];
            const KIND: &'static str = $kind;
            fn number(self) -> i32 {
                self as i32
            }
            fn name(self) -> &'static str {
                match self {
                    $(Self::$variant => $text),+
                }
            }
            fn shared_name(self) -> std::sync::Arc<str> {
                static NAMES: std::sync::OnceLock<Vec<std::sync::Arc<str>>> = std::sync::OnceLock::new();
                let names = NAMES.get_or_init(|| Self::ALL.iter().map(|v| v.name().into()).collect());
                let at = Self::ALL.iter().position(|v| *v == self).unwrap_or_default();
                names[at].clone()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

vocab!(
    /// What a seller contract commits the seller to.
    Clause, "clause" {
        PurposeLimitation = 1 => "PURPOSE_LIMITATION",
        DataMinimization = 2 => "DATA_MINIMIZATION",
        SecuritySafeguards = 3 => "SECURITY_SAFEGUARDS",
        IdentifierProtection = 4 => "IDENTIFIER_PROTECTION",
        RetentionAndDeletion = 5 => "RETENTION_AND_DELETION",
        OnwardTransferRestriction = 6 => "ONWARD_TRANSFER_RESTRICTION",
        SupervisionAndAudit = 7 => "SUPERVISION_AND_AUDIT",
        BreachNotification = 8 => "BREACH_NOTIFICATION",
        GrievanceAndDisputeResolution = 9 => "GRIEVANCE_AND_DISPUTE_RESOLUTION",
        DataSubjectRights = 10 => "DATA_SUBJECT_RIGHTS",
        LiabilityAndCompensation = 11 => "LIABILITY_AND_COMPENSATION",
        SuspensionAndTermination = 12 => "SUSPENSION_AND_TERMINATION",
        PipaComplianceUndertaking = 13 => "PIPA_COMPLIANCE_UNDERTAKING",
        GovernmentAccessTransparency = 14 => "GOVERNMENT_ACCESS_TRANSPARENCY",
    }
);

vocab!(
    /// A category of a buyer's personal data.
    DataCategory, "data category" {
        RecipientName = 1 => "RECIPIENT_NAME",
        PhoneNumber = 2 => "PHONE_NUMBER",
        ShippingAddress = 3 => "SHIPPING_ADDRESS",
        Email = 4 => "EMAIL",
        PlatformBuyerId = 5 => "PLATFORM_BUYER_ID",
        OrderContents = 6 => "ORDER_CONTENTS",
        /// The personal customs clearance code (PCCC), a unique identifier.
        CustomsCode = 7 => "CUSTOMS_CODE",
        DateOfBirth = 8 => "DATE_OF_BIRTH",
        SupportMessages = 9 => "SUPPORT_MESSAGES",
        PaymentData = 10 => "PAYMENT_DATA",
        NationalId = 11 => "NATIONAL_ID",
        DeviceIdentifiers = 12 => "DEVICE_IDENTIFIERS",
        SensitiveInfo = 13 => "SENSITIVE_INFO",
    }
);

vocab!(
    /// Why the data goes to the seller.
    Purpose, "purpose" {
        OrderFulfillment = 1 => "ORDER_FULFILLMENT",
        CustomsClearance = 2 => "CUSTOMS_CLEARANCE",
        CustomerSupport = 3 => "CUSTOMER_SUPPORT",
        ReturnsRefunds = 4 => "RETURNS_REFUNDS",
        Marketing = 5 => "MARKETING",
    }
);

vocab!(
    /// The legal basis of a cross-border transfer (PIPA 28-8(1)).
    TransferBasis, "transfer basis" {
        SeparateConsent = 1 => "SEPARATE_CONSENT",
        LawOrTreaty = 2 => "LAW_OR_TREATY",
        /// Valid only for an entrustee.
        ContractNecessityDisclosed = 3 => "CONTRACT_NECESSITY_DISCLOSED",
        CertifiedRecipient = 4 => "CERTIFIED_RECIPIENT",
        AdequateDestination = 5 => "ADEQUATE_DESTINATION",
    }
);

vocab!(
    /// Whether a seller may receive data at all.
    SellerStatus, "seller status" {
        Active = 1 => "ACTIVE",
        Suspended = 2 => "SUSPENDED",
        Offboarded = 3 => "OFFBOARDED",
    }
);

vocab!(
    /// How the seller uses the data: for its own business, or on the platform's behalf.
    SellerRole, "seller role" {
        Recipient = 1 => "RECIPIENT",
        Entrustee = 2 => "ENTRUSTEE",
    }
);

vocab!(
    /// Whether an attestation still counts.
    AttestationState, "attestation state" {
        Active = 1 => "ACTIVE",
        Revoked = 2 => "REVOKED",
    }
);

vocab!(
    /// How the platform supervised an entrustee (PIPA 26(4)).
    SupervisionKind, "supervision kind" {
        Inspection = 1 => "INSPECTION",
        Training = 2 => "TRAINING",
        Questionnaire = 3 => "QUESTIONNAIRE",
    }
);

vocab!(
    /// The outcome of a verification.
    Decision, "decision" {
        Allow = 1 => "ALLOW",
        AllowPartial = 2 => "ALLOW_PARTIAL",
        Deny = 3 => "DENY",
    }
);

vocab!(
    /// Why a category, or the whole request, was denied; or an advisory that never blocks.
    ReasonCode, "reason code" {
        SellerUnknown = 1 => "SELLER_UNKNOWN",
        SellerSuspended = 2 => "SELLER_SUSPENDED",
        SellerOffboarded = 3 => "SELLER_OFFBOARDED",
        SuspensionOrderActive = 4 => "SUSPENSION_ORDER_ACTIVE",
        ContractMissing = 5 => "CONTRACT_MISSING",
        ContractNotYetEffective = 6 => "CONTRACT_NOT_YET_EFFECTIVE",
        ContractExpired = 7 => "CONTRACT_EXPIRED",
        ContractRevoked = 8 => "CONTRACT_REVOKED",
        PurposeDeniedByPolicy = 9 => "PURPOSE_DENIED_BY_POLICY",
        PurposeNotInContract = 10 => "PURPOSE_NOT_IN_CONTRACT",
        BasisMissing = 11 => "BASIS_MISSING",
        BasisNotAccepted = 12 => "BASIS_NOT_ACCEPTED",
        CategoryProhibited = 13 => "CATEGORY_PROHIBITED",
        CategoryNotPermittedForPurpose = 14 => "CATEGORY_NOT_PERMITTED_FOR_PURPOSE",
        CategoryNotInContract = 15 => "CATEGORY_NOT_IN_CONTRACT",
        ClauseMissing = 16 => "CLAUSE_MISSING",
        RegistryStale = 17 => "REGISTRY_STALE",
        ContractExpiringSoon = 18 => "CONTRACT_EXPIRING_SOON",
        AuditOverdue = 19 => "AUDIT_OVERDUE",
    }
);

/// A set of vocabulary values, one bit each: the decision engine's unit of work. Copy, no allocation.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Set<T> {
    bits: u32,
    _kind: PhantomData<T>,
}

impl<T: Vocab> Set<T> {
    /// The empty set.
    pub const fn empty() -> Self {
        Self { bits: 0, _kind: PhantomData }
    }

    fn bit(value: T) -> u32 {
        1u32 << value.number()
    }

    /// The set as one integer: bit `n` is the value numbered `n`. A compact record stores this.
    pub const fn bits(self) -> u32 {
        self.bits
    }

    /// The set whose [`bits`](Self::bits) are `bits`; bits that name no value are dropped, so a
    /// damaged record can never add a value the vocabulary does not have.
    pub fn from_bits(bits: u32) -> Self {
        // Values are numbered 1..=N without gaps (the proto numbers), so the known bits are 1..=N.
        let known = ((1u64 << (T::ALL.len() + 1)) - 2) as u32;
        Self { bits: bits & known, _kind: PhantomData }
    }

    /// Whether `value` is in the set.
    pub fn contains(self, value: T) -> bool {
        self.bits & Self::bit(value) != 0
    }

    /// Adds `value`.
    pub fn insert(&mut self, value: T) {
        self.bits |= Self::bit(value);
    }

    /// Every value in either set.
    pub fn union(self, other: Self) -> Self {
        Self { bits: self.bits | other.bits, _kind: PhantomData }
    }

    /// The values in both sets.
    pub fn intersection(self, other: Self) -> Self {
        Self { bits: self.bits & other.bits, _kind: PhantomData }
    }

    /// The values of `self` that are not in `other`.
    pub fn difference(self, other: Self) -> Self {
        Self { bits: self.bits & !other.bits, _kind: PhantomData }
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.bits == 0
    }

    /// How many values the set holds.
    pub fn len(self) -> usize {
        self.bits.count_ones() as usize
    }

    /// The values, in proto order.
    pub fn iter(self) -> impl Iterator<Item = T> {
        T::ALL.iter().copied().filter(move |v| self.contains(*v))
    }
}

impl<T: Vocab> Default for Set<T> {
    fn default() -> Self {
        Self::empty()
    }
}

impl<T: Vocab> FromIterator<T> for Set<T> {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        let mut set = Self::empty();
        for value in iter {
            set.insert(value);
        }
        set
    }
}

impl<T: Vocab + fmt::Display> fmt::Debug for Set<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter().map(|v| v.name())).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers_round_trip() {
        for c in Clause::ALL {
            assert_eq!(Clause::from_name(c.name()), Some(*c));
            assert_eq!(Clause::from_number(c.number()), Some(*c));
        }
        assert_eq!(DataCategory::from_number(0), None);
        assert_eq!(DataCategory::from_number(14), None);
        assert_eq!(Purpose::from_name("marketing"), None);
    }

    #[test]
    fn shared_names_are_the_names_and_built_once() {
        for c in DataCategory::ALL {
            assert_eq!(&*c.shared_name(), c.name());
            assert!(std::sync::Arc::ptr_eq(&c.shared_name(), &c.shared_name()));
        }
        for d in Decision::ALL {
            assert_eq!(&*d.shared_name(), d.name());
        }
    }

    #[test]
    fn sets_hold_each_value_once() {
        let set: Set<DataCategory> =
            [DataCategory::Email, DataCategory::Email, DataCategory::CustomsCode].into_iter().collect();
        assert_eq!(set.len(), 2);
        assert_eq!(set.iter().collect::<Vec<_>>(), vec![DataCategory::Email, DataCategory::CustomsCode]);
        assert!(set.difference(set).is_empty());
        assert_eq!(Set::<DataCategory>::from_bits(set.bits()), set);
        assert_eq!(Set::<Purpose>::from_bits(u32::MAX).len(), Purpose::ALL.len());
    }
}
