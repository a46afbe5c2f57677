//! Who is calling and what they may do.

use std::fmt;

use crate::error::Error;

/// A role granted by the caller's token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Checkout: VerificationService.
    Checkout,
    /// Legal: RegistryService reads and writes.
    Legal,
    /// Auditors: RegistryService reads and AuditService.
    Auditor,
    /// Everything.
    Admin,
}

impl Role {
    /// The role named in a token's `roles` claim.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "checkout" => Some(Self::Checkout),
            "legal" => Some(Self::Legal),
            "auditor" => Some(Self::Auditor),
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }

    /// The name used in tokens.
    pub fn name(self) -> &'static str {
        match self {
            Self::Checkout => "checkout",
            Self::Legal => "legal",
            Self::Auditor => "auditor",
            Self::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The token's `sub`: recorded as the actor of every registry write.
    pub subject: String,
    pub roles: Vec<Role>,
}

impl Principal {
    /// Ok if the caller holds any of `roles`, or is an admin.
    pub fn require(&self, roles: &[Role]) -> Result<(), Error> {
        if self.roles.iter().any(|r| *r == Role::Admin || roles.contains(r)) {
            Ok(())
        } else {
            let names: Vec<_> = roles.iter().map(|r| r.name()).collect();
            Err(Error::PermissionDenied(format!("this call needs the role {}", names.join(" or "))))
        }
    }
}
