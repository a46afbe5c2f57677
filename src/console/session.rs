//! Console sessions: a signed cookie instead of server-side state, so any console replica accepts
//! it and nothing needs cleaning up. The cookie holds who signed in, their roles, when the session
//! ends (never after the token it was made from) and the session's CSRF token; it is HMAC-SHA256
//! signed with a key drawn at start-up, so a restart signs everyone out, which is the safe default.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use http::HeaderMap;
use http::request::Parts;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::ConsoleState;
use crate::auth::{Principal, Role};
use crate::error::Error;

/// The session cookie's name.
pub const COOKIE: &str = "sg_session";
/// Longest a session lasts, however long the token it came from is valid.
pub const MAX_SESSION_SECONDS: u64 = 8 * 3600;

/// A signed-in person.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Session {
    /// The token's subject: the actor of every write made in this session.
    pub sub: String,
    /// Role names, as in tokens.
    pub roles: Vec<String>,
    /// Seconds since the epoch.
    pub exp: u64,
    /// Every form of this session carries it; a post without it is refused.
    pub csrf: String,
}

/// The HMAC key sessions are signed with.
pub struct SessionKey([u8; 32]);

impl SessionKey {
    /// A fresh random key.
    pub fn random() -> Self {
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        Self(key)
    }

    /// HMAC accepts keys of any length, so this is `None` only in theory; callers fail closed.
    fn mac(&self, payload: &str) -> Option<Hmac<Sha256>> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0).ok()?;
        mac.update(payload.as_bytes());
        Some(mac)
    }

    /// The cookie value for `session`.
    pub fn seal(&self, session: &Session) -> Result<String, Error> {
        let json = serde_json::to_vec(session).map_err(|e| Error::Internal(format!("cannot encode a session: {e}")))?;
        let payload = URL_SAFE_NO_PAD.encode(json);
        let mac = self.mac(&payload).ok_or_else(|| Error::Internal("cannot key the session MAC".into()))?;
        let tag = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        Ok(format!("{payload}.{tag}"))
    }

    /// The session in a cookie value, if the signature holds and it has not expired.
    pub fn open(&self, value: &str, now: u64) -> Option<Session> {
        let (payload, tag) = value.split_once('.')?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        // verify_slice compares in constant time.
        self.mac(payload)?.verify_slice(&tag).ok()?;
        let session: Session = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
        (now < session.exp).then_some(session)
    }
}

/// A random token for CSRF fields and request ids.
pub fn random_token() -> String {
    let mut bytes = [0u8; 18];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The value of cookie `name`, if sent.
pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A `Set-Cookie` value with the console's attributes: HttpOnly, SameSite=Strict, path `/`, and
/// Secure when the console is served over TLS.
pub fn set_cookie(name: &str, value: &str, max_age: u64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}")
}

/// Constant-time equality of two tokens, so a guessed CSRF token leaks nothing through timing.
pub fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Session {
    /// The session for a verified principal, ending at `token_exp` or after
    /// [`MAX_SESSION_SECONDS`], whichever is first.
    pub fn for_principal(p: &Principal, token_exp: u64, now: u64) -> Self {
        Self {
            sub: p.subject.to_string(),
            roles: p.roles.iter().map(|r| r.name().to_owned()).collect(),
            exp: token_exp.min(now.saturating_add(MAX_SESSION_SECONDS)),
            csrf: random_token(),
        }
    }

    /// The session as a principal, for the same role checks the API makes.
    pub fn principal(&self) -> Principal {
        Principal {
            subject: self.sub.as_str().into(),
            roles: self.roles.iter().filter_map(|r| Role::parse(r)).collect::<Vec<_>>().into(),
        }
    }

    /// Ok if the person holds any of `roles` (admins hold all).
    pub fn require(&self, roles: &[Role]) -> Result<(), Error> {
        self.principal().require(roles)
    }

    /// Whether the person holds any of `roles`.
    pub fn can(&self, roles: &[Role]) -> bool {
        self.require(roles).is_ok()
    }

    /// Refuses a form whose CSRF field is missing or not this session's.
    pub fn check_csrf(&self, sent: Option<&str>) -> Result<(), Error> {
        match sent {
            Some(sent) if same_token(sent, &self.csrf) => Ok(()),
            _ => Err(Error::PermissionDenied("the form's CSRF token is missing or not this session's".into())),
        }
    }
}

/// Seconds since the epoch.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

impl FromRequestParts<Arc<ConsoleState>> for Session {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<ConsoleState>) -> Result<Self, Self::Rejection> {
        cookie(&parts.headers, COOKIE)
            .and_then(|v| state.key.open(v, unix_now()))
            .ok_or_else(|| Redirect::to("/signin").into_response())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(exp: u64) -> Session {
        Session { sub: "ana".into(), roles: vec!["legal".into()], exp, csrf: "c".into() }
    }

    #[test]
    fn a_sealed_session_opens_until_it_expires() {
        let key = SessionKey::random();
        let sealed = key.seal(&session(100)).unwrap_or_default();
        assert_eq!(key.open(&sealed, 99), Some(session(100)));
        assert_eq!(key.open(&sealed, 100), None);
    }

    #[test]
    fn a_tampered_or_foreign_session_does_not_open() {
        let key = SessionKey::random();
        let sealed = key.seal(&session(100)).unwrap_or_default();
        let (_, tag) = sealed.split_once('.').unwrap_or_default();
        let forged =
            format!("{}.{tag}", URL_SAFE_NO_PAD.encode(br#"{"sub":"x","roles":["admin"],"exp":100,"csrf":"c"}"#));
        assert_eq!(key.open(&forged, 1), None);
        assert_eq!(SessionKey::random().open(&sealed, 1), None);
    }

    #[test]
    fn sessions_end_with_their_token_or_the_cap() {
        let p = Principal { subject: "ana".into(), roles: [Role::Legal].into() };
        assert_eq!(Session::for_principal(&p, 1_000, 900).exp, 1_000);
        assert_eq!(Session::for_principal(&p, u64::MAX, 900).exp, 900 + MAX_SESSION_SECONDS);
    }
}
