//! LibreChat's own JWTs: access tokens (`JWT_SECRET`), refresh tokens (`JWT_REFRESH_SECRET`) and
//! 2FA temp tokens, in exactly the shapes LibreChat signs them.

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::error::{AuthError, AuthResult};

/// LibreChat's 2FA temp token lives five minutes.
const TEMP_TOKEN_SECS: u64 = 5 * 60;

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

#[derive(Deserialize)]
struct PeekClaims {
    iss: Option<serde_json::Value>,
    id: Option<serde_json::Value>,
    #[serde(rename = "userId")]
    user_id: Option<serde_json::Value>,
    #[serde(rename = "sessionId")]
    session_id: Option<serde_json::Value>,
    #[serde(rename = "twoFAPending")]
    two_fa_pending: Option<serde_json::Value>,
}

fn peek_part<T: for<'de> Deserialize<'de>>(part: &str) -> Option<T> {
    use base64::Engine;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&raw).ok()
}

pub fn classify(token: &str) -> TokenClass {
    if token.is_empty()
        || token.len() > MAX_TOKEN_LEN
        || !token.bytes().all(|b| b.is_ascii_graphic())
    {
        return TokenClass::Garbage;
    }
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return TokenClass::BackendOpaque;
    };
    let (Some(header), Some(claims)) = (peek_part::<PeekHeader>(h), peek_part::<PeekClaims>(p))
    else {
        return TokenClass::BackendOpaque;
    };
    if claims.iss.is_some() {
        return TokenClass::BackendJwt;
    }
    let librechat_claims = claims.id.is_some()
        || claims.user_id.is_some()
        || claims.session_id.is_some()
        || claims.two_fa_pending.is_some();
    let hmac_or_none = header.alg.starts_with("HS") || header.alg.eq_ignore_ascii_case("none");
    if librechat_claims || hmac_or_none {
        TokenClass::LibreChat
    } else {
        TokenClass::BackendOpaque
    }
}

#[derive(Deserialize)]
struct VerifiedAccess {
    id: Option<serde_json::Value>,
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
    access_verify: DecodingKey,
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
    pub fn new(jwt_secret: &[u8], jwt_refresh_secret: &[u8], session_expiry_ms: u64) -> Tokens {
        Tokens {
            access_key: EncodingKey::from_secret(jwt_secret),
            refresh_key: EncodingKey::from_secret(jwt_refresh_secret),
            access_verify: DecodingKey::from_secret(jwt_secret),
            refresh_verify: DecodingKey::from_secret(jwt_refresh_secret),
            validation: librechat_validation(),
            // jsonwebtoken (JS) takes `expiresIn` in seconds; LibreChat passes ms / 1000.
            session_expiry_secs: (session_expiry_ms / 1000).max(1),
        }
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

    /// Verifies a LibreChat access token and returns the user id it names. Refresh tokens (other
    /// secret) and 2FA temp tokens (no `id`) fail.
    pub fn verify_access(&self, token: &str) -> AuthResult<String> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(AuthError::TokenInvalid("token too large".into()));
        }
        let data = decode::<VerifiedAccess>(token, &self.access_verify, &self.validation)
            .map_err(token_error)?;
        match data.claims.id {
            Some(serde_json::Value::String(id)) if !id.is_empty() => Ok(id),
            _ => Err(AuthError::TokenInvalid("not an access token".into())),
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
        let t = Tokens::new(b"a", b"r", 900_000);
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
        let t = Tokens::new(b"a", b"r", 900_000);
        let good = t.access_token(&subject()).unwrap();
        assert_eq!(t.verify_access(&good).unwrap(), "abc");
        let other = Tokens::new(b"x", b"r", 900_000)
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
    fn classification_comes_before_verification() {
        let t = Tokens::new(b"a", b"r", 900_000);
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
        let t = Tokens::new(b"a", b"r", 900_000);
        let p = payload(&t.two_fa_temp_token("abc").unwrap());
        assert_eq!(p["userId"], "abc");
        assert_eq!(p["twoFAPending"], true);
        assert!(p.get("id").is_none());
    }
}
