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

use crate::shared::error::{AuthError, AuthResult};

/// LibreChat's 2FA temp token lives five minutes.
pub(crate) const TEMP_TOKEN_SECS: u64 = 5 * 60;

/// Longer bearer tokens are refused unread: no LibreChat or sane backend token is this big.
pub const MAX_TOKEN_LEN: usize = 8192;

/// What a bearer token is, decided from its unverified shape before any verification, so that a
/// LibreChat token (whole or damaged) is never sent to the backend and a backend token never meets
/// `JWT_SECRET`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenClass {
    /// Refused unread: empty, oversized, not printable ASCII, or JWT-shaped but not a well-formed
    /// JWT (a damaged token: wrong number of parts, non-canonical base64url, not JSON).
    Garbage,
    /// A JWT without `iss` that is HMAC/none-signed or carries LibreChat's claims.
    LibreChat,
    /// A JWT with an `iss` claim (LibreChat never sets one).
    BackendJwt,
    /// Anything else: an opaque backend token (or a well-formed JWT without `iss` signed otherwise).
    BackendOpaque,
}

#[derive(Deserialize)]
struct PeekHeader {
    #[serde(default)]
    alg: String,
    /// Present in a JWE header: an encrypted (five-part) token is opaque to us.
    enc: Option<IgnoredAny>,
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
    provider: Option<IgnoredAny>,
    exp: Option<serde_json::Value>,
    nbf: Option<serde_json::Value>,
    iat: Option<serde_json::Value>,
}

/// A numeric claim in whole seconds (fractions dropped); `None` when absent or not a number >= 0.
fn seconds(v: &Option<serde_json::Value>) -> Option<u64> {
    v.as_ref()
        .and_then(serde_json::Value::as_f64)
        .filter(|n| n.is_finite() && *n >= 0.0)
        .map(|n| n as u64)
}

/// Canonical base64url only: no padding, no non-zero trailing bits (as jsonwebtoken in JS and in
/// Rust decode), so that `<token>=` or a respelled signature is not the same token.
const B64URL: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone)
        .with_decode_allow_trailing_bits(false),
);

/// The beginning of every base64url JSON object (`{"`): each part of a JWT starts with it.
const JSON_PART_START: &str = "eyJ";
/// `{"alg":` and `{"typ":` (JWT headers), `{"id":` and `{"userId":` (LibreChat payloads): found
/// anywhere in a token, they make it JWT-shaped (too long to occur in a random opaque token).
const JWT_MARKERS: [&str; 4] = ["eyJhbGciOi", "eyJ0eXAiOi", "eyJpZCI6", "eyJ1c2VySWQiOi"];

/// Whether a token looks like a JWT (or a piece of one): then it must be a well-formed JWT, or it
/// is refused locally and never goes to the backend.
fn jwt_shaped(token: &str) -> bool {
    // In any case: a token lower- or upper-cased whole is still a damaged JWT.
    token.split('.').any(|p| {
        p.get(..JSON_PART_START.len())
            .is_some_and(|s| s.eq_ignore_ascii_case(JSON_PART_START))
    }) || JWT_MARKERS.iter().any(|m| contains_ignore_case(token, m))
}

/// `needle` in `haystack`, ASCII letters in any case (both are ASCII here).
fn contains_ignore_case(haystack: &str, needle: &str) -> bool {
    haystack
        .as_bytes()
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

/// Whether a token with a `.` holds a piece of a LibreChat header: any 6 characters in a row of
/// either spelling. A damaged LibreChat token keeps some (4 edits leave a run of 7 of its 36), a
/// random opaque token practically never has one (62 strings of 6 base64url characters).
fn librechat_fragment(token: &str) -> bool {
    const W: usize = 6;
    HS256_HEADERS
        .iter()
        .any(|h| (0..=h.len() - W).any(|i| contains_ignore_case(token, &h[i..i + W])))
}

/// Whether `part` is canonical base64url (what a signature must be before anything reads it).
fn canonical_b64url(part: &str) -> bool {
    // 32 bytes hold an HS256 signature; larger ones (RSA) take the allocating path.
    let mut buf = [0u8; 64];
    match B64URL.decode_slice(part, &mut buf) {
        Ok(_) => true,
        Err(base64::DecodeSliceError::OutputSliceTooSmall) => B64URL.decode(part).is_ok(),
        Err(_) => false,
    }
}

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
    // Opaque backend tokens never look like a JWT; anything that does must be a well-formed one.
    // (Looked at only off the hot path: a well-formed LibreChat token never gets here.)
    let damaged = || {
        if jwt_shaped(token) || (token.contains('.') && librechat_fragment(token)) {
            unusable(TokenClass::Garbage)
        } else {
            unusable(TokenClass::BackendOpaque)
        }
    };
    let Some((signing_input, signature)) = token.rsplit_once('.') else {
        return damaged();
    };
    let Some((header, payload)) = signing_input.split_once('.') else {
        return damaged();
    };
    if payload.contains('.') {
        // Five parts: a JWE (encrypted, opaque to us) when its header says so.
        let jwe = token.split('.').count() == 5
            && decode_json::<PeekHeader>(header).is_some_and(|h| h.enc.is_some());
        return if jwe {
            unusable(TokenClass::BackendOpaque)
        } else {
            damaged()
        };
    }
    let alg = if HS256_HEADERS.contains(&header) {
        Cow::Borrowed("HS256")
    } else {
        match decode_json::<PeekHeader>(header) {
            Some(h) => Cow::Owned(h.alg),
            None => return damaged(),
        }
    };
    let Some(claims) = decode_json::<PeekClaims>(payload) else {
        return damaged();
    };
    // LibreChat's own claims win over an `iss`: a LibreChat token edited to carry one is damaged.
    let librechat_claims = claims.session_id.is_some()
        || claims.two_fa_pending.is_some()
        || (claims.id.is_some() && claims.provider.is_some());
    let class = if claims.iss.is_some() && !librechat_claims {
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
    // A LibreChat token's signature is decoded (canonically) by its verification, on the hot path;
    // a JWT going to the backend is checked here.
    if class != TokenClass::LibreChat && !canonical_b64url(signature) {
        return unusable(TokenClass::Garbage);
    }
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

/// The `iat` of a JWT, read without verifying it: only for a token already verified.
pub fn issued_at(token: &str) -> Option<u64> {
    inspect(token).claims.as_ref().and_then(|c| seconds(&c.iat))
}

/// What a bearer token is, and for a LibreChat token whether it verifies.
pub enum AccessCheck {
    /// The user id and the token's `iat` (seconds), when it has one.
    Valid(String, Option<u64>),
    Invalid(AuthError),
    NotLibreChat(TokenClass),
}

#[derive(Deserialize)]
pub struct VerifiedRefresh {
    pub id: String,
    #[serde(rename = "sessionId")]
    pub session_id: String,
    /// Checked by us (`exp <= now` is expired), not by jsonwebtoken (which accepts `exp == now`).
    exp: f64,
}

/// `exp <= now` is expired: a token is valid strictly before its `exp` second (0 s leeway), as
/// LibreChat's jsonwebtoken (`exp <= Math.floor(Date.now() / 1000)` is expired).
pub fn expired(exp: f64, now: u64) -> bool {
    exp <= now as f64
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

/// The temp token of a backend's second-factor challenge: LibreChat's `twoFAPending` shape, the
/// record of the challenge instead of a user (`src/store/challenges.rs`).
#[derive(Serialize, Deserialize)]
struct ChallengeClaims {
    #[serde(rename = "twoFAPending")]
    two_fa_pending: bool,
    #[serde(rename = "cbaChallenge")]
    challenge: String,
    iat: u64,
    exp: u64,
}

/// What a temp token LibreChat's 2FA screen posts back is.
#[derive(Debug, PartialEq)]
pub enum TempToken {
    /// A backend challenge's, still valid: its record id.
    Challenge(String),
    /// A backend challenge's whose time is up.
    Expired,
    /// Not one of ours (LibreChat's own 2FA, or no token at all).
    Other,
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
    /// For the temp tokens of backend challenges (not the hot path).
    access_verify: DecodingKey,
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
    // `exp` is compared by us against an explicit `now` (see `expired`).
    v.validate_exp = false;
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
            access_verify: DecodingKey::from_secret(jwt_secret),
            validation: librechat_validation(),
            // jsonwebtoken (JS) takes `expiresIn` in seconds; LibreChat passes ms / 1000.
            session_expiry_secs: (session_expiry_ms / 1000).max(1),
        })
    }

    fn sign<T: Serialize>(claims: &T, key: &EncodingKey) -> AuthResult<String> {
        encode(&Header::new(Algorithm::HS256), claims, key)
            .map_err(|_| AuthError::Internal("cannot sign a token".into()))
    }

    /// `SESSION_EXPIRY` in seconds: an access token's lifetime.
    pub fn session_expiry_secs(&self) -> u64 {
        self.session_expiry_secs
    }

    /// `generateToken(user)`: `{id, username, provider, email, iat, exp}` with `JWT_SECRET`.
    #[cfg(test)]
    pub fn access_token(&self, s: &AccessSubject<'_>) -> AuthResult<String> {
        self.access_token_until(s, now_secs().saturating_add(self.session_expiry_secs))
    }

    /// An access token as `access_token`, expiring at `exp` (seconds) instead.
    #[cfg(test)]
    pub fn access_token_until(&self, s: &AccessSubject<'_>, exp: u64) -> AuthResult<String> {
        self.access_token_issued(s, now_secs(), exp)
    }

    /// `generateToken(user)` (`{id, username, provider, email, iat, exp}` with `JWT_SECRET`) with
    /// the given `iat` and `exp` (seconds).
    pub fn access_token_issued(
        &self,
        s: &AccessSubject<'_>,
        iat: u64,
        exp: u64,
    ) -> AuthResult<String> {
        Self::sign(
            &AccessClaims {
                id: s.id,
                username: s.username,
                provider: s.provider,
                email: s.email,
                iat,
                exp,
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
        self.check_access_at(token, now_secs())
    }

    /// `check_access` at a given time (seconds since the epoch).
    pub fn check_access_at(&self, token: &str, now: u64) -> AccessCheck {
        let t = inspect(token);
        if t.class != TokenClass::LibreChat {
            return AccessCheck::NotLibreChat(t.class);
        }
        match self.verify_inspected(&t, now) {
            Ok(valid) => AccessCheck::Valid(valid.0, valid.1),
            Err(e) => AccessCheck::Invalid(e),
        }
    }

    fn verify_inspected(&self, t: &Inspected<'_>, now: u64) -> AuthResult<(String, Option<u64>)> {
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
        match claims.exp.as_ref().map(serde_json::Value::as_f64) {
            Some(Some(exp)) if !expired(exp, now) => {}
            Some(Some(_)) => return Err(AuthError::TokenExpired),
            _ => return Err(AuthError::TokenInvalid("no valid exp".into())),
        }
        if let Some(nbf) = &claims.nbf {
            match nbf.as_f64() {
                Some(nbf) if now as f64 >= nbf => {}
                _ => return Err(AuthError::TokenInvalid("not valid yet".into())),
            }
        }
        match &claims.id {
            Some(serde_json::Value::String(id)) if !id.is_empty() => {
                Ok((id.clone(), seconds(&claims.iat)))
            }
            _ => Err(AuthError::TokenInvalid("not an access token".into())),
        }
    }

    /// Verifies a LibreChat access token and returns the user id it names.
    #[cfg(test)]
    pub fn verify_access(&self, token: &str) -> AuthResult<String> {
        match self.check_access(token) {
            AccessCheck::Valid(id, _) => Ok(id),
            AccessCheck::Invalid(e) => Err(e),
            AccessCheck::NotLibreChat(_) => Err(AuthError::TokenInvalid(
                "not a LibreChat access token".into(),
            )),
        }
    }

    /// Verifies a LibreChat refresh token (`JWT_REFRESH_SECRET`).
    pub fn verify_refresh(&self, token: &str) -> AuthResult<VerifiedRefresh> {
        self.verify_refresh_at(token, now_secs())
    }

    /// `verify_refresh` at a given time (seconds since the epoch).
    pub fn verify_refresh_at(&self, token: &str, now: u64) -> AuthResult<VerifiedRefresh> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(AuthError::TokenInvalid("token too large".into()));
        }
        let claims = decode::<VerifiedRefresh>(token, &self.refresh_verify, &self.validation)
            .map(|d| d.claims)
            .map_err(token_error)?;
        if expired(claims.exp, now) {
            return Err(AuthError::TokenExpired);
        }
        Ok(claims)
    }

    /// A backend challenge's temp token: `{twoFAPending: true, cbaChallenge: <record id>}` with
    /// `JWT_SECRET`, valid until `exp` (seconds).
    pub fn challenge_temp_token(&self, record: &str, exp: u64) -> AuthResult<String> {
        Self::sign(
            &ChallengeClaims {
                two_fa_pending: true,
                challenge: record.to_string(),
                iat: now_secs(),
                exp,
            },
            &self.access_key,
        )
    }

    /// Tells a backend challenge's temp token (signature checked; its expiry by us, so that an
    /// expired one is still known as ours) from any other.
    pub fn temp_token(&self, token: &str) -> TempToken {
        if token.len() > MAX_TOKEN_LEN {
            return TempToken::Other;
        }
        let mut lenient = self.validation.clone();
        lenient.validate_exp = false;
        lenient.required_spec_claims.clear();
        match decode::<ChallengeClaims>(token, &self.access_verify, &lenient) {
            Ok(d) if d.claims.two_fa_pending && expired(d.claims.exp as f64, now_secs()) => {
                TempToken::Expired
            }
            Ok(d) if d.claims.two_fa_pending => TempToken::Challenge(d.claims.challenge),
            _ => TempToken::Other,
        }
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

    fn good_token() -> (Tokens, String) {
        let t = Tokens::new(b"a", b"r", 900_000).unwrap();
        let tok = t.access_token(&subject()).unwrap();
        (t, tok)
    }

    #[test]
    fn item_8_9_only_canonical_base64url_verifies() {
        let (t, good) = good_token();
        assert_eq!(t.verify_access(&good).unwrap(), "abc");
        for padded in [format!("{good}="), format!("{good}==")] {
            assert!(t.verify_access(&padded).is_err(), "{padded}");
        }
        // The same signature bytes spelled with non-zero trailing bits.
        let (input, sig) = good.rsplit_once('.').unwrap();
        let last = sig.chars().last().unwrap();
        let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let i = alphabet.find(last).unwrap();
        let respelled = alphabet.chars().nth(i | 1).unwrap();
        assert_ne!(respelled, last);
        let other = format!("{input}.{}{respelled}", &sig[..sig.len() - 1]);
        assert!(t.verify_access(&other).is_err());
        // Padding inside the header or the payload.
        let parts: Vec<&str> = good.split('.').collect();
        let header = B64URL.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
        let padded_header = format!("{header}=.{}.{}", parts[1], parts[2]);
        assert!(t.verify_access(&padded_header).is_err());
        // A backend JWT with a padded part never reaches the backend either.
        let h = B64URL.encode(br#"{"alg":"RS256","kid":"k"}"#);
        let p = B64URL.encode(br#"{"sub":"u1","iss":"https://idp"}"#);
        let backend = format!("{h}.{p}.c2lnbmF0dXJl");
        assert_eq!(classify(&backend), TokenClass::BackendJwt);
        assert_eq!(classify(&format!("{backend}=")), TokenClass::Garbage);
        assert_eq!(
            classify(&format!("{h}=.{p}.c2lnbmF0dXJl")),
            TokenClass::Garbage
        );
        assert_eq!(
            classify(&format!("{h}.{p}=.c2lnbmF0dXJl")),
            TokenClass::Garbage
        );
    }

    /// A small deterministic PRNG (xorshift), so the corpus is the same on every run.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    #[test]
    fn item_8_10_damaged_librechat_tokens_are_never_backend_tokens() {
        let (_, good) = good_token();
        let temp = Tokens::new(b"a", b"r", 900_000)
            .unwrap()
            .two_fa_temp_token("abc")
            .unwrap();
        let chars: Vec<char> =
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/!~"
                .chars()
                .collect();
        let mut rng = Rng(0x5eed_1234_abcd_9876);
        let mut corpus: Vec<String> = Vec::new();
        for base in [&good, &temp] {
            let b: Vec<char> = base.chars().collect();
            corpus.extend([
                format!("{base}."),
                format!(".{base}"),
                format!("{base}.x"),
                format!("{base}{base}"),
                format!("{base}.{base}"),
                format!("x{base}"),
                format!("{base}x"),
                base.replace('.', ""),
                base.replacen('.', "", 1),
            ]);
            // Cut short anywhere (keeping `eyJ`, the start every JWT has).
            corpus.extend((3..b.len()).map(|n| b[..n].iter().collect::<String>()));
            for _ in 0..3000 {
                let mut m = b.clone();
                for _ in 0..=rng.below(3) {
                    let at = rng.below(m.len());
                    let c = chars[rng.below(chars.len())];
                    match rng.below(4) {
                        0 => m[at] = c,
                        1 => {
                            m.remove(at);
                        }
                        2 => m.insert(at, c),
                        _ => {
                            let next = (at + 1) % m.len();
                            m.swap(at, next);
                        }
                    }
                }
                let m: String = m.into_iter().collect();
                if m != *base {
                    corpus.push(m);
                }
            }
        }
        for m in &corpus {
            let class = classify(m);
            assert!(
                matches!(class, TokenClass::Garbage | TokenClass::LibreChat),
                "{m} classified {class:?}"
            );
        }
        // Real backend tokens keep going to the backend.
        assert_eq!(classify("at_0123abcdef"), TokenClass::BackendOpaque);
        assert_eq!(
            classify("ya29.a0AfH6SMBx-opaque"),
            TokenClass::BackendOpaque
        );
        let jwe_header = B64URL.encode(br#"{"alg":"RSA-OAEP","enc":"A256GCM"}"#);
        assert_eq!(
            classify(&format!("{jwe_header}.a.b.c.d")),
            TokenClass::BackendOpaque
        );
    }

    #[test]
    fn item_21_11a_a_librechat_token_cased_whole_or_given_an_iss_is_not_a_backend_token() {
        let (_, good) = good_token();
        let t = Tokens::new(b"a", b"r", 900_000).unwrap();
        let refresh = t
            .refresh_token(
                "65f0c0ffee0000000000abcd",
                "65f0c0ffee0000000000abce",
                now_secs() + 60,
            )
            .unwrap();
        let temp = t.two_fa_temp_token("abc").unwrap();
        for base in [good.clone(), refresh, temp] {
            for damaged in [base.to_ascii_lowercase(), base.to_ascii_uppercase()] {
                let class = classify(&damaged);
                assert!(
                    matches!(class, TokenClass::Garbage | TokenClass::LibreChat),
                    "{damaged} classified {class:?}"
                );
            }
        }
        // LibreChat's payload with an `iss` added (re-encoded, the signature left as it was).
        let parts: Vec<&str> = good.split('.').collect();
        let mut claims: serde_json::Value =
            serde_json::from_slice(&B64URL.decode(parts[1]).unwrap()).unwrap();
        claims["iss"] = serde_json::json!("https://idp.example");
        let edited = format!(
            "{}.{}.{}",
            parts[0],
            B64URL.encode(serde_json::to_vec(&claims).unwrap()),
            parts[2]
        );
        assert_eq!(classify(&edited), TokenClass::LibreChat);
        // A backend JWT with an `iss` and an `id` of its own stays a backend token.
        let backend = format!(
            "{}.{}.{}",
            B64URL.encode(br#"{"alg":"RS256","kid":"k1"}"#),
            B64URL.encode(br#"{"iss":"https://idp","sub":"u-1","id":"u-1"}"#),
            B64URL.encode([7u8; 64])
        );
        assert_eq!(classify(&backend), TokenClass::BackendJwt);
        assert_eq!(classify("at_0123abcdef"), TokenClass::BackendOpaque);
    }

    #[test]
    fn item_8_20_exp_equal_to_now_is_expired() {
        let t = Tokens::new(b"a", b"r", 900_000).unwrap();
        let exp = now_secs() + 100;
        let access = encode(
            &Header::new(Algorithm::HS256),
            &serde_json::json!({"id": "abc", "exp": exp}),
            &EncodingKey::from_secret(b"a"),
        )
        .unwrap();
        assert!(matches!(
            t.check_access_at(&access, exp - 1),
            AccessCheck::Valid(_, None)
        ));
        assert!(matches!(
            t.check_access_at(&access, exp),
            AccessCheck::Invalid(AuthError::TokenExpired)
        ));
        let refresh = t.refresh_token("abc", "s1", exp).unwrap();
        assert_eq!(t.verify_refresh_at(&refresh, exp - 1).unwrap().id, "abc");
        assert_eq!(
            t.verify_refresh_at(&refresh, exp).err(),
            Some(AuthError::TokenExpired)
        );
        assert_eq!(
            t.verify_refresh_at(&refresh, exp + 1).err(),
            Some(AuthError::TokenExpired)
        );
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
