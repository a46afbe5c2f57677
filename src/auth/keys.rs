//! Token verification keys, parsed once at start-up. Each key is pinned to one algorithm: a token is
//! checked only against keys of the algorithm its header names, and only algorithms with a configured
//! key are accepted — so `none`, and an HS256 token "signed" with an RSA public key, never verify.

use std::path::{Path, PathBuf};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::{Principal, Role};
use crate::config::AuthSettings;

/// Why keys could not be loaded (start-up stops).
#[derive(Debug, thiserror::Error)]
#[error("auth: {0}")]
pub struct KeyError(pub String);

/// Why a token was refused. Logged, never told to the caller.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("no bearer token")]
    Missing,
    #[error("token algorithm {0:?} has no configured key")]
    Algorithm(String),
    #[error("token rejected: {0}")]
    Invalid(#[from] jsonwebtoken::errors::Error),
    #[error("token subject is empty, longer than {MAX_SUBJECT} characters, or holds control or invisible characters")]
    Subject,
    #[error("token has no roles claim with a known role")]
    NoRoles,
}

/// The longest token subject accepted: the subject is the actor of registry writes and the caller
/// of decision records, both columns of 256 characters, so a longer one could not be recorded.
pub const MAX_SUBJECT: usize = 256;

/// Why tokens are refused, as a fixed set of metric labels (a caller cannot mint new ones).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No `authorization: Bearer` header, or an empty one.
    Missing,
    /// Not a JWS at all: bad encoding, header or claims JSON.
    Malformed,
    /// An algorithm with no configured key (`none`, HS384, HS256 on a public-key server).
    Algorithm,
    /// The signature does not verify with any configured key.
    Signature,
    /// Past its `exp` (beyond the leeway).
    Expired,
    /// Before its `nbf`.
    NotYetValid,
    /// Wrong or missing `iss`.
    Issuer,
    /// Wrong or missing `aud`.
    Audience,
    /// A required claim (`exp`, `sub`) is missing, or another check failed.
    Invalid,
    /// `sub` is empty, too long or holds control characters.
    Subject,
    /// Verified, but no role safeguard knows (PERMISSION_DENIED, not UNAUTHENTICATED).
    Role,
}

impl Refusal {
    /// Every reason, in label order.
    pub const ALL: [Self; 11] = [
        Self::Missing,
        Self::Malformed,
        Self::Algorithm,
        Self::Signature,
        Self::Expired,
        Self::NotYetValid,
        Self::Issuer,
        Self::Audience,
        Self::Invalid,
        Self::Subject,
        Self::Role,
    ];

    /// The metric label.
    pub fn name(self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Malformed => "malformed",
            Self::Algorithm => "algorithm",
            Self::Signature => "signature",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::Issuer => "issuer",
            Self::Audience => "audience",
            Self::Invalid => "invalid",
            Self::Subject => "subject",
            Self::Role => "role",
        }
    }

    /// The position of this reason in [`Refusal::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

impl TokenError {
    /// The reason label this refusal is counted under.
    pub fn refusal(&self) -> Refusal {
        use jsonwebtoken::errors::ErrorKind as K;
        match self {
            Self::Missing => Refusal::Missing,
            Self::Algorithm(_) => Refusal::Algorithm,
            Self::Subject => Refusal::Subject,
            Self::NoRoles => Refusal::Role,
            Self::Invalid(e) => match e.kind() {
                K::InvalidToken | K::Base64(_) | K::Json(_) | K::Utf8(_) => Refusal::Malformed,
                K::InvalidAlgorithm | K::InvalidAlgorithmName | K::MissingAlgorithm => Refusal::Algorithm,
                K::InvalidSignature => Refusal::Signature,
                K::ExpiredSignature => Refusal::Expired,
                K::ImmatureSignature => Refusal::NotYetValid,
                K::InvalidIssuer => Refusal::Issuer,
                K::InvalidAudience => Refusal::Audience,
                K::MissingRequiredClaim(claim) if claim == "iss" => Refusal::Issuer,
                K::MissingRequiredClaim(claim) if claim == "aud" => Refusal::Audience,
                K::MissingRequiredClaim(claim) if claim == "sub" => Refusal::Subject,
                _ => Refusal::Invalid,
            },
        }
    }
}

/// Whether `sub` may name a caller: 1 to [`MAX_SUBJECT`] characters, none of them a control or an
/// invisible or bidi formatting character, since it is shown to auditors as the actor of writes.
fn subject_ok(sub: &str) -> bool {
    !sub.is_empty() && sub.chars().count() <= MAX_SUBJECT && crate::domain::ids::check_display_text(sub).is_ok()
}

/// The claims safeguard reads.
#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// One audience or several (RFC 7519 4.1.3 allows both).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<Audience>,
}

/// The `aud` claim: a string or an array of strings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

struct Key {
    kid: Option<String>,
    alg: Algorithm,
    key: DecodingKey,
}

/// Every configured verification key and the validation rules.
pub struct Verifier {
    keys: Vec<Key>,
    issuer: Option<String>,
    audience: Option<String>,
    leeway: u64,
}

/// A verified token: who, and until when.
#[derive(Debug, Clone)]
pub struct Verified {
    pub principal: Principal,
    pub exp: u64,
}

fn read(path: &Path) -> Result<Vec<u8>, KeyError> {
    std::fs::read(path).map_err(|e| KeyError(format!("cannot read {}: {e}", path.display())))
}

fn pem_key(path: &Path, alg: Algorithm) -> Result<Key, KeyError> {
    let pem = read(path)?;
    let key = match alg {
        Algorithm::RS256 => DecodingKey::from_rsa_pem(&pem),
        Algorithm::ES256 => DecodingKey::from_ec_pem(&pem),
        _ => DecodingKey::from_ed_pem(&pem),
    }
    .map_err(|e| KeyError(format!("{} is not a {alg:?} public key in PEM: {e}", path.display())))?;
    Ok(Key { kid: None, alg, key })
}

impl Verifier {
    /// Loads the configured keys; `hs256_secret` is the resolved shared secret, if any.
    pub fn new(settings: &AuthSettings, hs256_secret: Option<&[u8]>) -> Result<Self, KeyError> {
        let mut keys = Vec::new();
        if let Some(secret) = hs256_secret {
            if secret.len() < 32 {
                return Err(KeyError("the HS256 secret must be at least 32 bytes".into()));
            }
            let key = DecodingKey::from_secret(secret).map_err(|e| KeyError(e.to_string()))?;
            keys.push(Key { kid: None, alg: Algorithm::HS256, key });
        }
        let pems: [(&Option<PathBuf>, Algorithm); 3] = [
            (&settings.rs256_public_key_file, Algorithm::RS256),
            (&settings.es256_public_key_file, Algorithm::ES256),
            (&settings.eddsa_public_key_file, Algorithm::EdDSA),
        ];
        for (path, alg) in pems {
            if let Some(path) = path {
                keys.push(pem_key(path, alg)?);
            }
        }
        if let Some(path) = &settings.jwks_file {
            let set: JwkSet = serde_json::from_slice(&read(path)?)
                .map_err(|e| KeyError(format!("{} is not a JWKS document: {e}", path.display())))?;
            for jwk in &set.keys {
                let alg = jwk
                    .common
                    .key_algorithm
                    .and_then(|a| a.to_string().parse::<Algorithm>().ok())
                    .filter(|a| matches!(a, Algorithm::RS256 | Algorithm::ES256 | Algorithm::EdDSA))
                    .ok_or_else(|| {
                        KeyError(format!("every key in {} needs an alg of RS256, ES256 or EdDSA", path.display()))
                    })?;
                let key = DecodingKey::from_jwk(jwk).map_err(|e| KeyError(format!("{}: {e}", path.display())))?;
                keys.push(Key { kid: jwk.common.key_id.clone(), alg, key });
            }
        }
        if keys.is_empty() {
            return Err(KeyError("no verification key is configured".into()));
        }
        Ok(Self {
            keys,
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
            leeway: settings.leeway_seconds,
        })
    }

    /// Verifies a compact JWS: signature, algorithm pinning, `exp` (required), `nbf`, `iss`, `aud`.
    pub fn verify(&self, token: &str) -> Result<Verified, TokenError> {
        let header = jsonwebtoken::decode_header(token)?;
        let candidates = self
            .keys
            .iter()
            .filter(|k| k.alg == header.alg && (header.kid.is_none() || k.kid.is_none() || k.kid == header.kid));
        let mut validation = Validation::new(header.alg);
        validation.leeway = self.leeway;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "sub"]);
        // jsonwebtoken checks `iss` and `aud` only when the token carries them: a configured
        // issuer or audience must also make the claim required, or a token without it passes.
        if let Some(iss) = &self.issuer {
            validation.set_issuer(&[iss]);
            validation.required_spec_claims.insert("iss".to_owned());
        }
        match &self.audience {
            Some(aud) => {
                validation.set_audience(&[aud]);
                validation.required_spec_claims.insert("aud".to_owned());
            }
            None => validation.validate_aud = false,
        }
        let mut last = TokenError::Algorithm(format!("{:?}", header.alg));
        for k in candidates {
            match jsonwebtoken::decode::<Claims>(token, &k.key, &validation) {
                Ok(data) => {
                    if !subject_ok(&data.claims.sub) {
                        return Err(TokenError::Subject);
                    }
                    let roles: Vec<Role> = data.claims.roles.iter().filter_map(|r| Role::parse(r)).collect();
                    if roles.is_empty() {
                        return Err(TokenError::NoRoles);
                    }
                    return Ok(Verified {
                        principal: Principal { subject: data.claims.sub.into(), roles: roles.into() },
                        exp: data.claims.exp,
                    });
                }
                Err(e) => last = TokenError::Invalid(e),
            }
        }
        Err(last)
    }
}

/// Signs an HS256 token (`safeguard token`, tests, the load generator).
pub fn mint_hs256(
    secret: &[u8],
    sub: &str,
    roles: &[Role],
    ttl_seconds: u64,
    issuer: Option<&str>,
    audience: Option<&str>,
) -> Result<String, KeyError> {
    let key = EncodingKey::from_secret(secret).map_err(|e| KeyError(e.to_string()))?;
    mint(&Header::new(Algorithm::HS256), &key, sub, roles, ttl_seconds, issuer, audience)
}

/// Signs a token with any key; refuses a subject that verification would refuse.
pub fn mint(
    header: &Header,
    key: &EncodingKey,
    sub: &str,
    roles: &[Role],
    ttl_seconds: u64,
    issuer: Option<&str>,
    audience: Option<&str>,
) -> Result<String, KeyError> {
    // A token the verifier would refuse is not worth minting.
    if !subject_ok(sub) {
        return Err(KeyError(format!(
            "the subject must be 1 to {MAX_SUBJECT} characters without control or invisible characters"
        )));
    }
    let claims = Claims {
        sub: sub.to_owned(),
        exp: jsonwebtoken::get_current_timestamp() + ttl_seconds,
        nbf: None,
        roles: roles.iter().map(|r| r.name().to_owned()).collect(),
        iss: issuer.map(str::to_owned),
        aud: audience.map(|a| Audience::One(a.to_owned())),
    };
    jsonwebtoken::encode(header, &claims, key).map_err(|e| KeyError(e.to_string()))
}
