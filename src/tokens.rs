//! LibreChat's own JWTs: access tokens (`JWT_SECRET`), refresh tokens (`JWT_REFRESH_SECRET`) and
//! 2FA temp tokens, in exactly the shapes LibreChat signs them.

use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde::Serialize;

use crate::error::{AuthError, AuthResult};

/// LibreChat's 2FA temp token lives five minutes.
const TEMP_TOKEN_SECS: u64 = 5 * 60;

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
    session_expiry_secs: u64,
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
                iat: now_secs(),
                exp,
            },
            &self.refresh_key,
        )
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
        assert_eq!(
            p["exp"].as_u64().unwrap() - p["iat"].as_u64().unwrap(),
            900
        );
        let keys: Vec<_> = p.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys.len(), 6);
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
