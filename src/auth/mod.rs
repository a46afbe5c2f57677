//! Who is calling and what they may do. Authentication happens once per request in a tower layer
//! ([`layer::AuthLayer`]), which puts a [`Principal`] in the request's extensions; each RPC handler
//! then authorizes with `principal.require(..)`, so the rule is visible where the RPC is.

pub mod keys;
pub mod layer;
pub mod secret;

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
    /// The token's `sub`: recorded as the actor of every registry write. Shared, not owned: the
    /// verified-token cache hands out a copy of the principal on every request.
    pub subject: std::sync::Arc<str>,
    pub roles: std::sync::Arc<[Role]>,
}

/// The caller of `request`, as the auth layer found it.
pub fn principal<T>(request: &tonic::Request<T>) -> Result<&Principal, Error> {
    request.extensions().get::<Principal>().ok_or(Error::Unauthenticated)
}

/// Authorizes `request` for any of `roles` (admins may do everything); returns the caller.
pub fn authorize<'r, T>(request: &'r tonic::Request<T>, roles: &[Role]) -> Result<&'r Principal, Error> {
    let p = principal(request)?;
    p.require(roles)?;
    Ok(p)
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
