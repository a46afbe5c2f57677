//! A seller as written, and the one patch of a seller that UpdateSeller and the console share.

use super::{MAX_NAME, country, email, one, path, text};
use crate::domain::registry::{Seller, SellerFields, SellerMask, SellerUpdate};
use crate::domain::{SellerId, SellerStatus, Violation, Violations, Vocab};

/// A seller as written: every field legal controls, plus the etag an update or import names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SellerInput {
    pub seller_id: String,
    pub legal_name: String,
    pub country: String,
    /// 0 (UNSPECIFIED): ACTIVE for a new seller.
    pub status: i32,
    pub role: i32,
    pub contact_email: String,
    pub privacy_contact: String,
    /// Empty: none given.
    pub etag: String,
}

impl SellerInput {
    /// A registered seller's fields, as an input that validates back to the same fields.
    pub fn of(s: &Seller) -> Self {
        Self {
            seller_id: s.seller_id.to_string(),
            legal_name: s.legal_name.clone(),
            country: s.country.to_string(),
            status: s.status.number(),
            role: s.role.number(),
            contact_email: s.contact_email.clone(),
            privacy_contact: s.privacy_contact.clone(),
            etag: s.etag(),
        }
    }

    /// The fields legal writes of a seller. `status` UNSPECIFIED defaults to ACTIVE.
    pub fn validate(&self, prefix: &str) -> Result<SellerFields, Vec<Violation>> {
        let mut v = Violations::new();
        let seller_id = v.check(SellerId::parse_field(&self.seller_id, &path(prefix, "seller_id")));
        let legal_name = v.check(text(&self.legal_name, &path(prefix, "legal_name"), MAX_NAME, true));
        let country = v.check(country(&self.country, &path(prefix, "country")));
        let status = if self.status == 0 {
            Some(SellerStatus::Active)
        } else {
            v.check(one(self.status, &path(prefix, "status")))
        };
        let role = v.check(one(self.role, &path(prefix, "role")));
        let contact_email = v.check(email(&self.contact_email, &path(prefix, "contact_email")));
        let privacy_contact = v.check(text(&self.privacy_contact, &path(prefix, "privacy_contact"), MAX_NAME, true));
        match (seller_id, legal_name, country, status, role, contact_email, privacy_contact) {
            (
                Some(seller_id),
                Some(legal_name),
                Some(country),
                Some(status),
                Some(role),
                Some(contact_email),
                Some(privacy_contact),
            ) if v.is_empty() => {
                Ok(SellerFields { seller_id, legal_name, country, status, role, contact_email, privacy_contact })
            }
            _ => Err(v.into_vec()),
        }
    }

    /// Whether the input names a status (an import keeps an existing seller's status otherwise).
    pub fn status_given(&self) -> bool {
        self.status != 0
    }

    /// The etag, when one is given.
    pub fn etag(&self) -> Option<String> {
        (!self.etag.is_empty()).then(|| self.etag.clone())
    }
}

/// A seller field an update may replace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SellerField {
    LegalName,
    Country,
    Status,
    Role,
    ContactEmail,
    PrivacyContact,
}

impl SellerField {
    /// Every updatable field.
    pub const ALL: [SellerField; 6] =
        [Self::LegalName, Self::Country, Self::Status, Self::Role, Self::ContactEmail, Self::PrivacyContact];

    /// The field's name, as a field mask path names it.
    pub fn name(self) -> &'static str {
        match self {
            Self::LegalName => "legal_name",
            Self::Country => "country",
            Self::Status => "status",
            Self::Role => "role",
            Self::ContactEmail => "contact_email",
            Self::PrivacyContact => "privacy_contact",
        }
    }

    fn slot(self, mask: &mut SellerMask) -> &mut bool {
        match self {
            Self::LegalName => &mut mask.legal_name,
            Self::Country => &mut mask.country,
            Self::Status => &mut mask.status,
            Self::Role => &mut mask.role,
            Self::ContactEmail => &mut mask.contact_email,
            Self::PrivacyContact => &mut mask.privacy_contact,
        }
    }
}

/// An update of a seller: which fields it replaces (the field mask, as a set of domain fields),
/// their new values, and the etag the writer last saw. UpdateSeller, the console's edit form and
/// any other writer validate it the same way, against the seller as it stands.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SellerPatch {
    pub mask: SellerMask,
    pub values: SellerInput,
}

impl SellerPatch {
    /// A patch of the fields `paths` names (a field mask; `mask_field` names it in errors).
    pub fn from_paths(values: SellerInput, paths: &[String], mask_field: &str) -> Result<Self, Violation> {
        if paths.is_empty() {
            return Err(Violation::new(mask_field, "must name at least one field"));
        }
        let mut mask = SellerMask::default();
        for (i, p) in paths.iter().enumerate() {
            let field = SellerField::ALL.into_iter().find(|f| f.name() == p).ok_or_else(|| {
                Violation::new(format!("{mask_field}.paths[{i}]"), format!("{p:?} is not an updatable seller field"))
            })?;
            *field.slot(&mut mask) = true;
        }
        Ok(Self { mask, values })
    }

    /// A patch of every field (a form that shows them all).
    pub fn all(values: SellerInput) -> Self {
        let mut mask = SellerMask::default();
        SellerField::ALL.into_iter().for_each(|f| *f.slot(&mut mask) = true);
        Self { mask, values }
    }

    /// The seller the patch is for.
    pub fn seller_id(&self, prefix: &str) -> Result<SellerId, Violation> {
        SellerId::parse_field(&self.values.seller_id, &path(prefix, "seller_id"))
    }

    /// Validates the patch against `current`: only the masked fields are taken from the patch (the
    /// rest of its values may be empty), and the seller they make must be valid as a whole.
    pub fn validate(&self, current: &Seller, prefix: &str) -> Result<SellerUpdate, Vec<Violation>> {
        let (m, new) = (&self.mask, &self.values);
        if m.status && new.status == 0 {
            return Err(vec![Violation::new(path(prefix, "status"), "must be specified")]);
        }
        let mut probe = SellerInput::of(current);
        let pick = |on: bool, new: &str, old: &mut String| {
            if on {
                new.clone_into(old);
            }
        };
        pick(m.legal_name, &new.legal_name, &mut probe.legal_name);
        pick(m.country, &new.country, &mut probe.country);
        pick(m.contact_email, &new.contact_email, &mut probe.contact_email);
        pick(m.privacy_contact, &new.privacy_contact, &mut probe.privacy_contact);
        if m.status {
            probe.status = new.status;
        }
        if m.role {
            probe.role = new.role;
        }
        let fields = probe.validate(prefix)?;
        Ok(SellerUpdate { fields, mask: self.mask, etag: new.etag() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{SellerRole, Timestamp};

    fn seller_input() -> SellerInput {
        SellerInput {
            seller_id: "s-1".into(),
            legal_name: "Acme Ltd".into(),
            country: "CN".into(),
            role: SellerRole::Recipient.number(),
            contact_email: "legal@acme.cn".into(),
            privacy_contact: "dpo@acme.cn".into(),
            ..SellerInput::default()
        }
    }

    #[test]
    fn a_patch_takes_only_masked_fields_and_validates_the_result() {
        let fields = seller_input().validate("").unwrap();
        let now = Timestamp::now();
        let current = Seller {
            seller_id: fields.seller_id.clone(),
            legal_name: fields.legal_name.clone(),
            country: fields.country,
            status: fields.status,
            role: fields.role,
            contact_email: fields.contact_email.clone(),
            privacy_contact: fields.privacy_contact.clone(),
            revision: 3,
            create_time: now,
            update_time: now,
        };
        let values = SellerInput { seller_id: "s-1".into(), legal_name: "Acme Two".into(), ..Default::default() };
        let patch = SellerPatch::from_paths(values, &["legal_name".into()], "update_mask").unwrap();
        let update = patch.validate(&current, "seller").unwrap();
        assert_eq!(update.fields.legal_name, "Acme Two");
        assert_eq!(update.fields.contact_email, "legal@acme.cn");
        assert!(update.mask.legal_name && !update.mask.country);

        let bad = SellerInput { country: "Korea".into(), ..Default::default() };
        let err =
            SellerPatch::from_paths(bad, &["country".into()], "update_mask").unwrap().validate(&current, "seller");
        assert_eq!(err.unwrap_err()[0].field, "seller.country");
        let unknown = SellerPatch::from_paths(SellerInput::default(), &["etag".into()], "update_mask").unwrap_err();
        assert_eq!(unknown.field, "update_mask.paths[0]");
    }
}
