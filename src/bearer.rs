//! Backend tokens presented as `Authorization: Bearer`: verified locally against the backend's
//! JWKS, or by the user-info call, with the result cached under a SHA-256 of the token (never the
//! token itself) and one backend call in flight per token.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm};
use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;

use crate::backend::{map_id, map_roles, map_user, Backend, BackendUser};
use crate::cache::{SingleFlight, TtlCache};
use crate::config::{Config, JwksConfig, Mapping};
use crate::error::{AuthError, AuthResult};
use crate::tokens::now_secs;

/// How long a "no" from the backend is remembered: long enough to absorb a burst of retries,
/// short enough that a fixed backend is seen quickly.
pub const NEGATIVE_TTL: Duration = Duration::from_secs(5);

pub type TokenKey = [u8; 32];

pub fn token_key(token: &str) -> TokenKey {
    Sha256::digest(token.as_bytes()).into()
}

/// The outcome of checking a backend token, as cached.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// The backend vouches for this identity.
    Valid(BackendUser),
    /// The backend (or the JWKS) refuses the token; the reason is safe to show.
    Refused(String),
}

struct KeySet {
    keys: HashMap<String, (DecodingKey, Algorithm)>,
    fetched: Instant,
    refetched: Option<Instant>,
}

/// The algorithms a backend JWT may use: asymmetric only, so that no shared secret is involved.
fn key_algorithm(jwk: &Jwk) -> Option<Algorithm> {
    let declared = jwk.common.key_algorithm;
    let alg = match (&jwk.algorithm, declared) {
        (AlgorithmParameters::RSA(_), None | Some(KeyAlgorithm::RS256)) => Algorithm::RS256,
        (AlgorithmParameters::EllipticCurve(p), None | Some(KeyAlgorithm::ES256))
            if p.curve == EllipticCurve::P256 =>
        {
            Algorithm::ES256
        }
        (AlgorithmParameters::OctetKeyPair(_), None | Some(KeyAlgorithm::EdDSA)) => {
            Algorithm::EdDSA
        }
        _ => return None,
    };
    Some(alg)
}

pub(crate) fn parse_key_set(v: &Value) -> HashMap<String, (DecodingKey, Algorithm)> {
    let mut out = HashMap::new();
    let Some(keys) = v.get("keys").and_then(Value::as_array) else {
        return out;
    };
    for raw in keys {
        // One unusable key (unknown type, encryption key) must not hide the others.
        let Ok(jwk) = serde_json::from_value::<Jwk>(raw.clone()) else {
            continue;
        };
        if raw
            .get("use")
            .and_then(Value::as_str)
            .is_some_and(|u| u != "sig")
        {
            continue;
        }
        let (Some(alg), Some(kid)) = (key_algorithm(&jwk), jwk.common.key_id.clone()) else {
            continue;
        };
        if let Ok(key) = DecodingKey::from_jwk(&jwk) {
            out.insert(kid, (key, alg));
        }
    }
    out
}

pub struct Bearer {
    positive: TtlCache<TokenKey, BackendUser>,
    negative: TtlCache<TokenKey, String>,
    flights: SingleFlight<TokenKey, AuthResult<Verdict>>,
    positive_ttl: Duration,
    jwks: Option<JwksConfig>,
    keys: Mutex<Option<KeySet>>,
    claims_mapping: Mapping,
}

impl Bearer {
    pub fn new(cfg: &Config) -> Bearer {
        let mut claims_mapping = cfg.mapping.clone();
        if let Some(j) = &cfg.jwks {
            claims_mapping.user_id = vec![j.id_claim.clone()];
            claims_mapping
                .user_username
                .push("preferred_username".into());
        }
        Bearer {
            positive: TtlCache::new(cfg.cache_max),
            negative: TtlCache::new(cfg.cache_max),
            flights: SingleFlight::new(),
            positive_ttl: cfg.token_cache_ttl,
            jwks: cfg.jwks.clone(),
            keys: Mutex::new(None),
            claims_mapping,
        }
    }

    /// A cached verdict, without any I/O (the synchronous hot path).
    pub fn cached(&self, key: &TokenKey) -> Option<Verdict> {
        if let Some(u) = self.positive.get(key) {
            return Some(Verdict::Valid(u));
        }
        self.negative.get(key).map(Verdict::Refused)
    }

    pub fn forget(&self, key: &TokenKey) {
        self.positive.remove(key);
        self.negative.remove(key);
    }

    /// Remembers a token known to be good (the backend's own answer at login or refresh).
    pub fn remember(&self, token: &str, user: BackendUser, exp_hint: Option<u64>) {
        let ttl = self.ttl_for(token, exp_hint);
        self.positive.insert(token_key(token), user, ttl);
    }

    /// At most `BACKEND_TOKEN_CACHE_TTL`, and never past the token's own `exp` when it has one.
    fn ttl_for(&self, token: &str, exp_hint: Option<u64>) -> Duration {
        let exp = exp_hint.or_else(|| unverified_exp(token));
        match exp {
            Some(exp) => self
                .positive_ttl
                .min(Duration::from_secs(exp.saturating_sub(now_secs()))),
            None => self.positive_ttl,
        }
    }

    /// Checks a backend token: from the cache, else by JWKS or user info (one call per token at a
    /// time). Backend trouble is an error (503), a refusal is a `Verdict::Refused` (401).
    pub async fn verify(&self, backend: &Backend, token: &str) -> AuthResult<Verdict> {
        let key = token_key(token);
        if let Some(v) = self.cached(&key) {
            return Ok(v);
        }
        self.flights
            .run(key, || async {
                let verdict = match self.jwks {
                    Some(_) => self.verify_jwt(backend, token).await,
                    None => self.verify_userinfo(backend, token).await,
                };
                match &verdict {
                    Ok(Verdict::Valid(u)) => {
                        self.positive
                            .insert(key, u.clone(), self.ttl_for(token, None))
                    }
                    Ok(Verdict::Refused(why)) => {
                        self.negative.insert(key, why.clone(), NEGATIVE_TTL)
                    }
                    Err(_) => {}
                }
                verdict
            })
            .await
    }

    async fn verify_userinfo(&self, backend: &Backend, token: &str) -> AuthResult<Verdict> {
        match backend.userinfo(token).await {
            Ok(Some(user)) => Ok(Verdict::Valid(user)),
            Ok(None) => Ok(Verdict::Refused("the backend refused the token".into())),
            // A slow backend is an outage here, not a bad token: 503, never 401.
            Err(AuthError::BackendTimeout) => {
                Err(AuthError::BackendUnavailable("user info timed out".into()))
            }
            Err(e) => Err(e),
        }
    }

    async fn verify_jwt(&self, backend: &Backend, token: &str) -> AuthResult<Verdict> {
        let Some(cfg) = &self.jwks else {
            return Ok(Verdict::Refused("JWKS not configured".into()));
        };
        let Ok(header) = decode_header(token) else {
            return Ok(Verdict::Refused("not a JWT".into()));
        };
        if !matches!(
            header.alg,
            Algorithm::RS256 | Algorithm::ES256 | Algorithm::EdDSA
        ) {
            return Ok(Verdict::Refused("algorithm not allowed".into()));
        }
        let Some(kid) = header.kid else {
            return Ok(Verdict::Refused("token has no key id".into()));
        };
        let Some((key, alg)) = self.key_for(backend, cfg, &kid).await? else {
            return Ok(Verdict::Refused("unknown signing key".into()));
        };
        if alg != header.alg {
            return Ok(Verdict::Refused("algorithm does not match the key".into()));
        }
        let mut validation = Validation::new(alg);
        validation.leeway = 0;
        validation.set_issuer(&[&cfg.issuer]);
        match &cfg.audience {
            Some(aud) => validation.set_audience(&[aud]),
            None => validation.validate_aud = false,
        }
        validation.required_spec_claims = ["exp", "iss"].iter().map(|s| s.to_string()).collect();
        let claims = match decode::<Value>(token, &key, &validation) {
            Ok(d) => d.claims,
            Err(e) => {
                let why = match e.kind() {
                    jsonwebtoken::errors::ErrorKind::ExpiredSignature => "token expired",
                    jsonwebtoken::errors::ErrorKind::InvalidIssuer => "wrong issuer",
                    jsonwebtoken::errors::ErrorKind::InvalidAudience => "wrong audience",
                    jsonwebtoken::errors::ErrorKind::InvalidSignature => "bad signature",
                    _ => "invalid token",
                };
                return Ok(Verdict::Refused(why.into()));
            }
        };
        identity_from_claims(&claims, &self.claims_mapping)
    }

    /// The key for `kid`, refetching the key set when it is stale, or when the kid is unknown and
    /// the last refetch is older than the cooldown.
    async fn key_for(
        &self,
        backend: &Backend,
        cfg: &JwksConfig,
        kid: &str,
    ) -> AuthResult<Option<(DecodingKey, Algorithm)>> {
        let mut guard = self.keys.lock().await;
        let stale = guard
            .as_ref()
            .is_none_or(|k| k.fetched.elapsed() > cfg.cache_ttl);
        let unknown = guard.as_ref().is_some_and(|k| !k.keys.contains_key(kid));
        let may_refetch = guard
            .as_ref()
            .and_then(|k| k.refetched)
            .is_none_or(|t| t.elapsed() >= cfg.refetch_cooldown);
        if stale || (unknown && may_refetch) {
            let raw = backend.jwks(&cfg.url).await.map_err(|e| match e {
                AuthError::BackendTimeout => AuthError::BackendUnavailable("JWKS timed out".into()),
                e => e,
            })?;
            let now = Instant::now();
            let previous_refetch = guard.as_ref().and_then(|k| k.refetched);
            *guard = Some(KeySet {
                keys: parse_key_set(&raw),
                fetched: now,
                // Only refetches for unknown kids count against the cooldown.
                refetched: if stale { previous_refetch } else { Some(now) },
            });
        }
        Ok(guard.as_ref().and_then(|k| k.keys.get(kid).cloned()))
    }
}

fn identity_from_claims(claims: &Value, mapping: &Mapping) -> AuthResult<Verdict> {
    let Some(id) = map_id(claims, mapping) else {
        return Ok(Verdict::Refused("token names no user".into()));
    };
    // A known user needs only the id; provisioning needs the email and checks it again.
    Ok(Verdict::Valid(map_user(claims, mapping).unwrap_or_else(
        |_| BackendUser {
            id,
            roles: map_roles(claims, mapping),
            ..BackendUser::default()
        },
    )))
}

/// `exp` of a JWT-shaped token, read without verification: only ever used to shorten a cache TTL.
fn unverified_exp(token: &str) -> Option<u64> {
    let payload = token.split('.').nth(1)?;
    crate::tokens::decode_json::<Value>(payload)?
        .get("exp")?
        .as_u64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_never_exceeds_the_token_exp() {
        let mut vars = crate::config::tests::sample_vars();
        vars.insert("BACKEND_TOKEN_CACHE_TTL".into(), "60".into());
        let b = Bearer::new(&Config::from_vars(&vars).unwrap());
        assert_eq!(b.ttl_for("opaque", None), Duration::from_secs(60));
        assert_eq!(
            b.ttl_for("x", Some(now_secs() + 10)),
            Duration::from_secs(10)
        );
        assert_eq!(b.ttl_for("x", Some(now_secs() - 10)), Duration::ZERO);
    }

    #[test]
    fn key_set_keeps_usable_signing_keys_only() {
        let set = serde_json::json!({"keys": [
            {"kty": "oct", "kid": "h", "k": "c2VjcmV0"},
            {"kty": "OKP", "crv": "Ed25519", "kid": "e", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
            {"kty": "OKP", "crv": "Ed25519", "kid": "enc", "use": "enc", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
            {"kty": "weird", "kid": "w"}
        ]});
        let keys = parse_key_set(&set);
        assert_eq!(keys.len(), 1);
        assert_eq!(keys.get("e").map(|k| k.1), Some(Algorithm::EdDSA));
    }
}
