//! LibreChat's own JWTs: access tokens (`JWT_SECRET`), refresh tokens (`JWT_REFRESH_SECRET`) and
//! 2FA temp tokens, in exactly the shapes LibreChat signs them.

use std::borrow::Cow;

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;
use hmac::{Hmac, Mac};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::error::{AuthError, AuthResult};

/// LibreChat's 2FA temp token lives five minutes.
pub(crate) const TEMP_TOKEN_SECS: u64 = 5 * 60;

/// Longer bearer tokens are refused unread: no LibreChat or sane backend token is this big.
pub const MAX_TOKEN_LEN: usize = 8192;

/// What a bearer token is, decided from its unverified shape before any verification, so that a
/// LibreChat token is never sent to the backend and a backend token never meets `JWT_SECRET`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenClass {
    /// Empty, oversized or not printable ASCII.
    Garbage,
    /// A JWT without `iss` that is HMAC/none-signed or carries LibreChat's claims.
    LibreChat,
    /// A JWT with an `iss` claim (LibreChat never sets one).
    BackendJwt,
    /// Anything else: an opaque backend token.
    BackendOpaque,
}

#[derive(Deserialize)]
struct PeekHeader {
    #[serde(default)]
    alg: String,
}

/// The claims that matter for classification and access-token verification, read in one parse.
#[derive(Deserialize)]
struct PeekClaims {
    iss: Option<IgnoredAny>,
    id: Option<serde_json::Value>,
    #[serde(rename = "userId")]
    user_id: Option<IgnoredAny>,
    #[serde(rename = "sessionId")]
    session_id: Option<IgnoredAny>,
    #[serde(rename = "twoFAPending")]
    two_fa_pending: Option<IgnoredAny>,
    exp: Option<serde_json::Value>,
    nbf: Option<serde_json::Value>,
}

/// base64url, with or without padding.
const B64URL: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The HS256 headers LibreChat's jsonwebtoken (`{"alg":"HS256","typ":"JWT"}`) and ours
/// (`{"typ":"JWT","alg":"HS256"}`) write: recognised without decoding them.
const HS256_HEADERS: [&str; 2] = [
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9",
    "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9",
];

/// A base64url JSON part of a JWT, unverified.
pub(crate) fn decode_json<T: for<'de> Deserialize<'de>>(part: &str) -> Option<T> {
    let raw = B64URL.decode(part).ok()?;
    serde_json::from_slice(&raw).ok()
}

/// A token split once, with its payload read once: classification and verification share it.
struct Inspected<'t> {
    class: TokenClass,
    signing_input: &'t str,
    signature: &'t str,
    alg: Cow<'t, str>,
    claims: Option<PeekClaims>,
}

fn inspect(token: &str) -> Inspected<'_> {
    let unusable = |class| Inspected {
        class,
        signing_input: "",
        signature: "",
        alg: Cow::Borrowed(""),
        claims: None,
    };
    if token.is_empty()
        || token.len() > MAX_TOKEN_LEN
        || !token.bytes().all(|b| b.is_ascii_graphic())
    {
        return unusable(TokenClass::Garbage);
    }
    let Some((signing_input, signature)) = token.rsplit_once('.') else {
        return unusable(TokenClass::BackendOpaque);
    };
    let Some((header, payload)) = signing_input.split_once('.') else {
        return unusable(TokenClass::BackendOpaque);
    };
    if payload.contains('.') {
        return unusable(TokenClass::BackendOpaque);
    }
    let alg = if HS256_HEADERS.contains(&header) {
        Cow::Borrowed("HS256")
    } else {
        match decode_json::<PeekHeader>(header) {
            Some(h) => Cow::Owned(h.alg),
            None => return unusable(TokenClass::BackendOpaque),
        }
    };
    let Some(claims) = decode_json::<PeekClaims>(payload) else {
        return unusable(TokenClass::BackendOpaque);
    };
    let class = if claims.iss.is_some() {
        TokenClass::BackendJwt
    } else if claims.id.is_some()
        || claims.user_id.is_some()
        || claims.session_id.is_some()
        || claims.two_fa_pending.is_some()
        || alg.starts_with("HS")
        || alg.eq_ignore_ascii_case("none")
    {
        TokenClass::LibreChat
    } else {
        TokenClass::BackendOpaque
    };
    Inspected {
        class,
        signing_input,
        signature,
        alg,
        claims: Some(claims),
    }
}

pub fn classify(token: &str) -> TokenClass {
    inspect(token).class
}

/// What a bearer token is, and for a LibreChat token whether it verifies.
pub enum AccessCheck {
    Valid(String),
    Invalid(AuthError),
    NotLibreChat(TokenClass),
}

#[derive(Deserialize)]
pub struct VerifiedRefresh {
    pub id: String,
    #[serde(rename = "sessionId")]
    pub session_id: String,
}

#[derive(Serialize)]
struct AccessClaims<'a> {
    id: &'a str,
    username: &'a str,
    provider: &'a str,
    email: &'a str,
    iat: u64,
    exp: u64,
}

#[derive(Serialize)]
struct RefreshClaims<'a> {
    id: &'a str,
    #[serde(rename = "sessionId")]
    session_id: &'a str,
    /// Random: two rotations within one second must still give different tokens (and hashes).
    jti: String,
    iat: u64,
    exp: u64,
}

#[derive(Serialize)]
struct TempClaims<'a> {
    #[serde(rename = "userId")]
    user_id: &'a str,
    #[serde(rename = "twoFAPending")]
    two_fa_pending: bool,
    iat: u64,
    exp: u64,
}

/// Who an access token is for.
pub struct AccessSubject<'a> {
    pub id: &'a str,
    pub username: &'a str,
    pub provider: &'a str,
    pub email: &'a str,
}

pub struct Tokens {
    access_key: EncodingKey,
    refresh_key: EncodingKey,
    /// HMAC keyed with `JWT_SECRET` once; cloned per verification (the hot path).
    access_mac: Hmac<Sha256>,
    refresh_verify: DecodingKey,
    validation: Validation,
    session_expiry_secs: u64,
}

fn librechat_validation() -> Validation {
    // HS256 only (no alg confusion, no `none`), `exp` required and enforced with no leeway, as
    // LibreChat's jsonwebtoken does.
    let mut v = Validation::new(Algorithm::HS256);
    v.leeway = 0;
    v.validate_aud = false;
    v.required_spec_claims = ["exp".to_string()].into_iter().collect();
    v
}

fn token_error(e: jsonwebtoken::errors::Error) -> AuthError {
    match e.kind() {
        ErrorKind::ExpiredSignature => AuthError::TokenExpired,
        ErrorKind::InvalidSignature => AuthError::TokenInvalid("bad signature".into()),
        ErrorKind::InvalidAlgorithm => AuthError::TokenInvalid("algorithm not allowed".into()),
        _ => AuthError::TokenInvalid("malformed token".into()),
    }
}

pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Tokens {
    pub fn new(
        jwt_secret: &[u8],
        jwt_refresh_secret: &[u8],
        session_expiry_ms: u64,
    ) -> AuthResult<Tokens> {
        let access_mac = Hmac::<Sha256>::new_from_slice(jwt_secret)
            .map_err(|_| AuthError::config("JWT_SECRET", "cannot be used as an HMAC key"))?;
        Ok(Tokens {
            access_key: EncodingKey::from_secret(jwt_secret),
            refresh_key: EncodingKey::from_secret(jwt_refresh_secret),
            access_mac,
            refresh_verify: DecodingKey::from_secret(jwt_refresh_secret),
            validation: librechat_validation(),
            // jsonwebtoken (JS) takes `expiresIn` in seconds; LibreChat passes ms / 1000.
            session_expiry_secs: (session_expiry_ms / 1000).max(1),
        })
    }

    fn sign<T: Serialize>(claims: &T, key: &EncodingKey) -> AuthResult<String> {
        encode(&Header::new(Algorithm::HS256), claims, key)
            .map_err(|_| AuthError::Internal("cannot sign a token".into()))
    }

    /// `generateToken(user)`: `{id, username, provider, email, iat, exp}` with `JWT_SECRET`.
    pub fn access_token(&self, s: &AccessSubject<'_>) -> AuthResult<String> {
        let iat = now_secs();
        Self::sign(
            &AccessClaims {
                id: s.id,
                username: s.username,
                provider: s.provider,
                email: s.email,
                iat,
                exp: iat + self.session_expiry_secs,
            },
            &self.access_key,
        )
    }

    /// `generateRefreshToken(session)`: `{id, sessionId}` with `JWT_REFRESH_SECRET`, expiring with
    /// the session.
    pub fn refresh_token(&self, user_id: &str, session_id: &str, exp: u64) -> AuthResult<String> {
        Self::sign(
            &RefreshClaims {
                id: user_id,
                session_id,
                jti: {
                    let mut nonce = [0u8; 12];
                    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut nonce);
                    hex::encode(nonce)
                },
                iat: now_secs(),
                exp,
            },
            &self.refresh_key,
        )
    }

    /// Classifies a bearer token and, for a LibreChat token, verifies it as LibreChat's
    /// jsonwebtoken does: HS256 only, signature, `exp` (no leeway), `nbf` when present, and an
    /// `id` (which 2FA temp tokens lack). Refresh tokens fail on their other secret.
    pub fn check_access(&self, token: &str) -> AccessCheck {
        let t = inspect(token);
        if t.class != TokenClass::LibreChat {
            return AccessCheck::NotLibreChat(t.class);
        }
        match self.verify_inspected(&t) {
            Ok(id) => AccessCheck::Valid(id),
            Err(e) => AccessCheck::Invalid(e),
        }
    }

    fn verify_inspected(&self, t: &Inspected<'_>) -> AuthResult<String> {
        if t.alg != "HS256" {
            return Err(AuthError::TokenInvalid("algorithm not allowed".into()));
        }
        let mut sig = [0u8; 32];
        match B64URL.decode_slice(t.signature, &mut sig) {
            Ok(32) => {}
            _ => return Err(AuthError::TokenInvalid("bad signature".into())),
        }
        let mut mac = self.access_mac.clone();
        mac.update(t.signing_input.as_bytes());
        mac.verify_slice(&sig)
            .map_err(|_| AuthError::TokenInvalid("bad signature".into()))?;
        let claims = t
            .claims
            .as_ref()
            .ok_or_else(|| AuthError::TokenInvalid("malformed token".into()))?;
        let now = now_secs() as f64;
        match claims.exp.as_ref().map(serde_json::Value::as_f64) {
            Some(Some(exp)) if now < exp => {}
            Some(Some(_)) => return Err(AuthError::TokenExpired),
            _ => return Err(AuthError::TokenInvalid("no valid exp".into())),
        }
        if let Some(nbf) = &claims.nbf {
            match nbf.as_f64() {
                Some(nbf) if now >= nbf => {}
                _ => return Err(AuthError::TokenInvalid("not valid yet".into())),
            }
        }
        match &claims.id {
            Some(serde_json::Value::String(id)) if !id.is_empty() => Ok(id.clone()),
            _ => Err(AuthError::TokenInvalid("not an access token".into())),
        }
    }

    /// Verifies a LibreChat access token and returns the user id it names.
    pub fn verify_access(&self, token: &str) -> AuthResult<String> {
        match self.check_access(token) {
            AccessCheck::Valid(id) => Ok(id),
            AccessCheck::Invalid(e) => Err(e),
            AccessCheck::NotLibreChat(_) => Err(AuthError::TokenInvalid(
                "not a LibreChat access token".into(),
            )),
        }
    }

    /// Verifies a LibreChat refresh token (`JWT_REFRESH_SECRET`).
    pub fn verify_refresh(&self, token: &str) -> AuthResult<VerifiedRefresh> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(AuthError::TokenInvalid("token too large".into()));
        }
        decode::<VerifiedRefresh>(token, &self.refresh_verify, &self.validation)
            .map(|d| d.claims)
            .map_err(token_error)
    }

    /// `generate2FATempToken(userId)`: `{userId, twoFAPending: true}` with `JWT_SECRET`, 5 minutes.
    pub fn two_fa_temp_token(&self, user_id: &str) -> AuthResult<String> {
        let iat = now_secs();
        Self::sign(
            &TempClaims {
                user_id,
                two_fa_pending: true,
                iat,
                exp: iat + TEMP_TOKEN_SECS,
            },
            &self.access_key,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    fn payload(token: &str) -> serde_json::Value {
        let part = token.split('.').nth(1).unwrap();
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .unwrap();
        serde_json::from_slice(&raw).unwrap()
    }

    #[test]
    fn access_token_has_librechat_claims() {
        let t = Tokens::new(b"a", b"r", 900_000).unwrap();
        let tok = t
            .access_token(&AccessSubject {
                id: "abc",
                username: "u",
                provider: "custom-backend",
                email: "e@x.io",
            })
            .unwrap();
        let p = payload(&tok);
        assert_eq!(p["id"], "abc");
        assert_eq!(p["provider"], "custom-backend");
        assert_eq!(p["exp"].as_u64().unwrap() - p["iat"].as_u64().unwrap(), 900);
        let keys: Vec<_> = p.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys.len(), 6);
    }

    fn subject() -> AccessSubject<'static> {
        AccessSubject {
            id: "abc",
            username: "u",
            provider: "p",
            email: "e@x.io",
        }
    }

    #[test]
    fn verify_accepts_own_tokens_and_refuses_the_rest() {
        let t = Tokens::new(b"a", b"r", 900_000).unwrap();
        let good = t.access_token(&subject()).unwrap();
        assert_eq!(t.verify_access(&good).unwrap(), "abc");
        let other = Tokens::new(b"x", b"r", 900_000)
            .unwrap()
            .access_token(&subject())
            .unwrap();
        assert!(t.verify_access(&other).is_err());
        let refresh = t.refresh_token("abc", "s1", now_secs() + 60).unwrap();
        assert!(t.verify_access(&refresh).is_err());
        assert_eq!(t.verify_refresh(&refresh).unwrap().session_id, "s1");
        assert_ne!(
            refresh,
            t.refresh_token("abc", "s1", now_secs() + 60).unwrap()
        );
        assert!(t.verify_refresh(&good).is_err());
        let temp = t.two_fa_temp_token("abc").unwrap();
        assert!(matches!(
            t.verify_access(&temp),
            Err(AuthError::TokenInvalid(_))
        ));
        // `alg: none` with the same payload.
        let payload = good.split('.').nth(1).unwrap();
        let none = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{payload}.");
        assert!(t.verify_access(&none).is_err());
        // Tampered payload.
        let mut parts: Vec<String> = good.split('.').map(String::from).collect();
        parts[1] = parts[1].replace('a', "b");
        assert!(t.verify_access(&parts.join(".")).is_err());
        // Expired.
        let expired = encode(
            &Header::new(Algorithm::HS256),
            &serde_json::json!({"id": "abc", "exp": now_secs() - 5}),
            &EncodingKey::from_secret(b"a"),
        )
        .unwrap();
        assert_eq!(t.verify_access(&expired), Err(AuthError::TokenExpired));
    }

    #[test]
    fn known_headers_are_what_they_claim() {
        assert_eq!(
            B64URL.decode(HS256_HEADERS[0]).unwrap(),
            br#"{"alg":"HS256","typ":"JWT"}"#
        );
        assert_eq!(
            B64URL.decode(HS256_HEADERS[1]).unwrap(),
            br#"{"typ":"JWT","alg":"HS256"}"#
        );
        // Another spelling of an HS256 header takes the slow path and still verifies.
        let t = Tokens::new(b"a", b"r", 900_000).unwrap();
        let good = t.access_token(&subject()).unwrap();
        let (_, rest) = good.split_once('.').unwrap();
        let other_header = B64URL.encode(br#"{"alg":"HS256"}"#);
        let mut mac = Hmac::<Sha256>::new_from_slice(b"a").unwrap();
        let payload = rest.split('.').next().unwrap();
        mac.update(format!("{other_header}.{payload}").as_bytes());
        let sig = B64URL.encode(mac.finalize().into_bytes());
        let respelled = format!("{other_header}.{payload}.{sig}");
        assert_eq!(t.verify_access(&respelled).unwrap(), "abc");
        // nbf in the future.
        let future = encode(
            &Header::new(Algorithm::HS256),
            &serde_json::json!({"id": "abc", "exp": now_secs() + 60, "nbf": now_secs() + 30}),
            &EncodingKey::from_secret(b"a"),
        )
        .unwrap();
        assert!(t.verify_access(&future).is_err());
        // exp as a string is refused, as jsonwebtoken does.
        let bad_exp = encode(
            &Header::new(Algorithm::HS256),
            &serde_json::json!({"id": "abc", "exp": "9999999999"}),
            &EncodingKey::from_secret(b"a"),
        )
        .unwrap();
        assert!(t.verify_access(&bad_exp).is_err());
    }

    #[test]
    fn classification_comes_before_verification() {
        let t = Tokens::new(b"a", b"r", 900_000).unwrap();
        assert_eq!(
            classify(&t.access_token(&subject()).unwrap()),
            TokenClass::LibreChat
        );
        assert_eq!(
            classify(&t.two_fa_temp_token("x").unwrap()),
            TokenClass::LibreChat
        );
        assert_eq!(classify("at_0123abcd"), TokenClass::BackendOpaque);
        assert_eq!(classify(""), TokenClass::Garbage);
        assert_eq!(classify("with space"), TokenClass::Garbage);
        assert_eq!(
            classify(&"x".repeat(MAX_TOKEN_LEN + 1)),
            TokenClass::Garbage
        );
        let backend = encode(
            &Header::new(Algorithm::HS256),
            &serde_json::json!({"sub": "u1", "iss": "https://idp", "exp": now_secs() + 60}),
            &EncodingKey::from_secret(b"other"),
        )
        .unwrap();
        assert_eq!(classify(&backend), TokenClass::BackendJwt);
    }

    #[test]
    fn temp_token_has_no_id() {
        let t = Tokens::new(b"a", b"r", 900_000).unwrap();
        let p = payload(&t.two_fa_temp_token("abc").unwrap());
        assert_eq!(p["userId"], "abc");
        assert_eq!(p["twoFAPending"], true);
        assert!(p.get("id").is_none());
    }
}
