//! Backend tokens presented as `Authorization: Bearer`: verified locally against the backend's
//! JWKS, or by the user-info or introspection call, with the result cached under a SHA-256 of the token (never the
//! token itself) and one backend call in flight per token.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm};
use jsonwebtoken::{decode_header, Algorithm, DecodingKey, Validation};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::backend::breaker::Lane;
use crate::backend::claims::{claims_mapping, identity_from_claims, Verdict};
use crate::backend::client::Backend;
use crate::config::{Config, IntrospectionConfig, JwksConfig, Mapping, UserinfoBudget};
use crate::identity::BackendUser;
use crate::shared::cache::{SingleFlight, TtlCache};
use crate::shared::error::{AuthError, AuthResult};
use crate::tokens::jwt_crypto::{decode_prepared, PreparedKey};
use crate::tokens::librechat::{expired, now_secs};

/// How long a "no" from the backend is remembered: long enough to absorb a burst of retries,
/// short enough that a fixed backend is seen quickly.
pub const NEGATIVE_TTL: Duration = Duration::from_secs(5);

/// After a failed JWKS fetch, the last good key set is served and no background refetch starts
/// for this long (a failing endpoint is not hammered by every request).
const JWKS_RETRY: Duration = Duration::from_secs(5);
/// The longest wait between JWKS fetches of requests that have no usable key set.
const JWKS_MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How long a token seen valid is vouched for at most (its `exp` ends it sooner).
const SEEN_VALID_TTL: Duration = Duration::from_secs(24 * 3600);
/// How long an address a valid backend token came from is vouched for.
const GOOD_ADDRESS_TTL: Duration = Duration::from_secs(3600);
/// Longer "addresses" are not addresses (an IPv6 address with a zone fits).
const MAX_ADDRESS_LEN: usize = 64;

/// A poisoned lock only means another thread panicked mid-update: the value is still usable.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

pub type TokenKey = [u8; 32];

pub fn token_key(token: &str) -> TokenKey {
    Sha256::digest(token.as_bytes()).into()
}

/// Keys by `kid`, each prepared once for its algorithm (src/tokens/jwt_crypto.rs).
type Keys = HashMap<String, Arc<PreparedKey>>;

/// A key set as fetched; replaced whole (never mutated), so readers hold it without a lock.
struct KeySet {
    keys: Keys,
    fetched: Instant,
}

/// The JWKS state: the last good key set, one fetch at a time shared by everyone who waits for it,
/// and the clocks of the refetch rules. No lock is held across a fetch.
struct JwksState {
    current: Mutex<Option<Arc<KeySet>>>,
    flight: SingleFlight<(), AuthResult<Arc<KeySet>>>,
    /// When the last fetch caused by an unknown `kid` was allowed (the cooldown's clock).
    unknown_refetch: Mutex<Option<Instant>>,
    /// When the last fetch failed, and how many failed in a row (the back-off's clock).
    failed_at: Mutex<Option<Instant>>,
    failures: AtomicU32,
    /// A background refresh of a stale set is running.
    refreshing: AtomicBool,
}

impl JwksState {
    /// Fetches the key set, or joins the fetch in flight. A failure keeps the last good set.
    async fn fetch(&self, backend: &Backend, cfg: &JwksConfig) -> AuthResult<Arc<KeySet>> {
        self.flight
            .run((), || async {
                let fetched = match backend.jwks(&cfg.url).await {
                    Ok(raw) => {
                        let keys = parse_key_set(&raw);
                        if keys.is_empty() {
                            // An empty or broken set would lock everyone out: treat it as a failure.
                            Err(AuthError::BackendBadResponse(
                                "JWKS has no usable key".into(),
                            ))
                        } else {
                            Ok(keys)
                        }
                    }
                    Err(AuthError::BackendTimeout) => {
                        Err(AuthError::BackendUnavailable("JWKS timed out".into()))
                    }
                    Err(e) => Err(e),
                };
                match fetched {
                    Ok(keys) => {
                        let set = Arc::new(KeySet {
                            keys,
                            fetched: Instant::now(),
                        });
                        *lock(&self.current) = Some(set.clone());
                        *lock(&self.failed_at) = None;
                        self.failures.store(0, Ordering::Relaxed);
                        Ok(set)
                    }
                    Err(e) => {
                        *lock(&self.failed_at) = Some(Instant::now());
                        self.failures.fetch_add(1, Ordering::Relaxed);
                        Err(e)
                    }
                }
            })
            .await
    }

    /// Whether the JWKS failed so recently that a request without a usable key set must not ask it
    /// again yet: 1 s after one failure, doubling with each failure in a row, at most
    /// `JWKS_MAX_BACKOFF`. Requests meanwhile are answered 503 at once instead of each fetching.
    fn backing_off(&self) -> bool {
        let failures = self.failures.load(Ordering::Relaxed);
        let backoff = Duration::from_secs(1)
            .saturating_mul(1 << failures.saturating_sub(1).min(5))
            .min(JWKS_MAX_BACKOFF);
        lock(&self.failed_at).is_some_and(|t| t.elapsed() < backoff)
    }

    /// Whether an unknown `kid` may cause a fetch now (at most once per cooldown); counts it.
    fn allow_unknown_refetch(&self, cooldown: Duration) -> bool {
        let mut last = lock(&self.unknown_refetch);
        if last.is_some_and(|t| t.elapsed() < cooldown) {
            return false;
        }
        *last = Some(Instant::now());
        true
    }
}

/// Clears the "refresh running" flag however the background task ends (also when dropped).
struct RefreshingGuard(Arc<JwksState>);

impl Drop for RefreshingGuard {
    fn drop(&mut self) {
        self.0.refreshing.store(false, Ordering::SeqCst);
    }
}

/// The budget of user-info calls for tokens the caches do not know: a cap on calls in flight and
/// a token bucket (`per_second`, up to `burst`). Over budget, a check fails at once (503) instead
/// of reaching the backend, so random tokens cannot turn into a flood of backend calls.
///
/// Half of it (of the bucket and of the calls in flight) is kept for vouched checks (tokens seen
/// valid before, tokens from an address a valid backend token came from): a flood of junk tokens
/// spends only the other half, so it cannot push real users out.
struct Budget {
    max_concurrent: usize,
    in_flight: AtomicUsize,
    per_second: f64,
    burst: f64,
    bucket: Mutex<(f64, Instant)>,
}

/// Whether a check may use the half of the budget kept for real users.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Vouched {
    Yes,
    No,
}

/// One user-info call in flight; ends with the call.
struct BudgetPermit<'a>(&'a Budget);

impl Drop for BudgetPermit<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Budget {
    fn new(b: UserinfoBudget) -> Budget {
        Budget {
            max_concurrent: b.max_concurrent.max(1),
            in_flight: AtomicUsize::new(0),
            per_second: f64::from(b.per_second.max(1)),
            burst: f64::from(b.burst.max(1)),
            bucket: Mutex::new((f64::from(b.burst.max(1)), Instant::now())),
        }
    }

    fn try_take(&self, vouched: Vouched) -> Option<BudgetPermit<'_>> {
        // An unvouched check must leave the kept half: in flight and in the bucket.
        let (max_in_flight, floor) = match vouched {
            Vouched::Yes => (self.max_concurrent, 1.0),
            Vouched::No => (
                self.max_concurrent.div_ceil(2),
                (self.burst / 2.0).floor() + 1.0,
            ),
        };
        if self.in_flight.fetch_add(1, Ordering::SeqCst) >= max_in_flight {
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        let permit = BudgetPermit(self);
        let mut bucket = lock(&self.bucket);
        let now = Instant::now();
        let refill = now.saturating_duration_since(bucket.1).as_secs_f64() * self.per_second;
        *bucket = ((bucket.0 + refill).min(self.burst), now);
        if bucket.0 < floor {
            return None;
        }
        bucket.0 -= 1.0;
        Some(permit)
    }
}

/// How long until the token's `exp` (the answer's, else read from a JWT-shaped token), if it has one.
fn time_to_exp(token: &str, exp_hint: Option<u64>) -> Option<Duration> {
    exp_hint
        .or_else(|| unverified_exp(token))
        .map(|exp| Duration::from_secs(exp.saturating_sub(now_secs())))
}

/// `ttl`, shortened to the token's remaining life when it has one.
fn bounded_by(ttl: Duration, to_exp: Option<Duration>) -> Duration {
    to_exp.map_or(ttl, |d| ttl.min(d))
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

pub(crate) fn parse_key_set(v: &Value) -> Keys {
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
            out.insert(kid, Arc::new(PreparedKey::new(key, alg)));
        }
    }
    out
}

pub struct Bearer {
    positive: TtlCache<TokenKey, BackendUser>,
    negative: TtlCache<TokenKey, String>,
    /// Access tokens of LibreChat sessions (the backend's answer at a login or refresh, or found
    /// in a session document): the only backend tokens a 2FA user is accepted with.
    session_tokens: TtlCache<TokenKey, ()>,
    /// Tokens seen valid (until their `exp`, at most a day) and client addresses a valid backend
    /// token came from (an hour): their checks are vouched for (`Budget`).
    seen_valid: TtlCache<TokenKey, ()>,
    good_addresses: TtlCache<String, ()>,
    flights: SingleFlight<TokenKey, AuthResult<Verdict>>,
    positive_ttl: Duration,
    jwks: Option<JwksConfig>,
    /// The claim checks of backend JWTs per algorithm, built once.
    jwt_validations: Vec<(Algorithm, Validation)>,
    introspection: Option<IntrospectionConfig>,
    keys: Arc<JwksState>,
    budget: Budget,
    claims_mapping: Mapping,
}

impl Bearer {
    pub fn new(cfg: &Config) -> Bearer {
        crate::tokens::jwt_crypto::install();
        Bearer {
            positive: TtlCache::new(cfg.cache_max),
            negative: TtlCache::new(cfg.cache_max),
            session_tokens: TtlCache::new(cfg.cache_max),
            seen_valid: TtlCache::new(cfg.cache_max),
            good_addresses: TtlCache::new(cfg.cache_max),
            flights: SingleFlight::new(),
            positive_ttl: cfg.token_cache_ttl,
            jwks: cfg.jwks.clone(),
            jwt_validations: cfg
                .jwks
                .iter()
                .flat_map(|j| {
                    [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA]
                        .map(|alg| (alg, jwt_validation(alg, j)))
                })
                .collect(),
            introspection: cfg.introspection.clone(),
            keys: Arc::new(JwksState {
                current: Mutex::new(None),
                flight: SingleFlight::new(),
                unknown_refetch: Mutex::new(None),
                failed_at: Mutex::new(None),
                failures: AtomicU32::new(0),
                refreshing: AtomicBool::new(false),
            }),
            budget: Budget::new(cfg.userinfo_budget),
            claims_mapping: claims_mapping(cfg),
        }
    }

    /// A cached verdict, without any I/O (the synchronous hot path).
    pub fn cached(&self, key: &TokenKey) -> Option<Verdict> {
        if let Some(u) = self.positive.get(key) {
            return Some(Verdict::Valid(u));
        }
        self.negative.get(key).map(Verdict::Refused)
    }

    /// Callers that shared a check or a JWKS fetch already in flight (`flight` label, count).
    pub fn flight_joins(&self) -> [(&'static str, u64); 2] {
        [
            ("backend_token", self.flights.joins()),
            ("jwks", self.keys.flight.joins()),
        ]
    }

    /// Forgets every cached good verdict on a backend user's tokens (a revocation of the user).
    pub fn forget_identity(&self, backend_id: &str) {
        self.positive.retain(|_, u| u.id != backend_id);
    }

    pub fn forget(&self, key: &TokenKey) {
        self.positive.remove(key);
        self.negative.remove(key);
        self.session_tokens.remove(key);
    }

    /// Remembers a token known to be good: the backend's own answer at a login or refresh, the
    /// access token of a LibreChat session.
    pub fn remember(&self, token: &str, user: BackendUser, exp_hint: Option<u64>) {
        let ttl = self.ttl_for(token, exp_hint);
        let key = token_key(token);
        self.positive.insert(key, user, ttl);
        self.session_tokens.insert(key, (), ttl);
    }

    /// Remembers that a token is the access token of a LibreChat session (found in the database).
    pub fn remember_session_token(&self, token: &str) {
        self.session_tokens
            .insert(token_key(token), (), self.ttl_for(token, None));
    }

    /// Whether a token is known (on this server) as the access token of a LibreChat session.
    pub fn is_session_token(&self, key: &TokenKey) -> bool {
        self.session_tokens.get(key).is_some()
    }

    /// At most `BACKEND_TOKEN_CACHE_TTL`, and never past the token's own `exp` when it has one.
    fn ttl_for(&self, token: &str, exp_hint: Option<u64>) -> Duration {
        bounded_by(self.positive_ttl, time_to_exp(token, exp_hint))
    }

    /// Whether backend tokens are checked by a backend call, under the budget (not by JWKS).
    fn budgeted(&self) -> bool {
        self.jwks.is_none()
    }

    /// Checks a backend token: from the cache, else by JWKS, introspection or user info (one call
    /// per token at a time). Backend trouble is an error (503), a refusal a `Verdict::Refused` (401).
    /// `from`: the client's address, when known (a valid token vouches for it, see `Budget`).
    pub async fn verify(
        &self,
        backend: &Backend,
        token: &str,
        from: Option<&str>,
    ) -> AuthResult<Verdict> {
        let key = token_key(token);
        if let Some(v) = self.cached(&key) {
            return Ok(v);
        }
        // Only checks under the budget look at (or keep) what vouches for them.
        let from = from.filter(|a| self.budgeted() && !a.is_empty() && a.len() <= MAX_ADDRESS_LEN);
        let vouched = if self.budgeted()
            && (self.seen_valid.get(&key).is_some()
                || self.session_tokens.get(&key).is_some()
                || from.is_some_and(|a| self.good_addresses.get(&a.to_string()).is_some()))
        {
            Vouched::Yes
        } else {
            Vouched::No
        };
        let verdict = self
            .flights
            .run(key, || async {
                // `exp` of an introspection answer bounds the cache entry like a JWT's own.
                let (verdict, exp) = match (&self.jwks, &self.introspection) {
                    (Some(_), _) => match self.verify_jwt(backend, token).await {
                        Ok((v, exp)) => (Ok(v), exp),
                        Err(e) => (Err(e), None),
                    },
                    (None, Some(cfg)) => {
                        match self
                            .verify_introspection(backend, cfg, token, vouched)
                            .await
                        {
                            Ok((v, exp)) => (Ok(v), exp),
                            Err(e) => (Err(e), None),
                        }
                    }
                    (None, None) => (self.verify_userinfo(backend, token, vouched).await, None),
                };
                if let Ok(v) = &verdict {
                    self.keep(key, token, v, exp);
                }
                verdict
            })
            .await;
        if let (Ok(Verdict::Valid(_)), Some(address)) = (&verdict, from) {
            self.good_addresses
                .insert(address.to_string(), (), GOOD_ADDRESS_TTL);
        }
        verdict
    }

    /// The verdict on a backend JWT when nothing has to be waited for: JWKS mode, a fresh key set
    /// holding the token's key. `None` leaves the token to `verify` (a key set to fetch or refresh,
    /// an unknown `kid`, claims that do not map). Cached as `verify` caches it. Decided on the
    /// caller's thread: a first sight then costs the verify alone, not a hop to the runtime and back.
    pub fn verify_now(&self, token: &str, key: TokenKey) -> Option<Verdict> {
        let cfg = self.jwks.as_ref()?;
        let (verdict, exp) = match self.jwt_header(token) {
            Err(why) => (Verdict::Refused(why.into()), None),
            Ok((alg, validation, kid)) => {
                let set = lock(&self.keys.current).clone()?;
                if set.fetched.elapsed() > cfg.cache_ttl {
                    return None;
                }
                let prepared = set.keys.get(&kid)?;
                self.jwt_verdict(token, alg, validation, prepared).ok()?
            }
        };
        self.keep(key, token, &verdict, exp);
        Some(verdict)
    }

    /// Caches a verdict: a good one until the token's (or the answer's) `exp`, bounded by the TTL.
    fn keep(&self, key: TokenKey, token: &str, verdict: &Verdict, exp: Option<u64>) {
        match verdict {
            Verdict::Valid(u) => {
                let to_exp = time_to_exp(token, exp);
                if self.budgeted() {
                    self.seen_valid
                        .insert(key, (), bounded_by(SEEN_VALID_TTL, to_exp));
                }
                self.positive
                    .insert(key, u.clone(), bounded_by(self.positive_ttl, to_exp))
            }
            Verdict::Refused(why) => self.negative.insert(key, why.clone(), NEGATIVE_TTL),
        }
    }

    async fn verify_userinfo(
        &self,
        backend: &Backend,
        token: &str,
        vouched: Vouched,
    ) -> AuthResult<Verdict> {
        let Some(_permit) = self.budget.try_take(vouched) else {
            // Not cached (an error): the same token is checked again once the budget allows.
            return Err(AuthError::BackendCircuitOpen(
                "too many unknown tokens to check at once".into(),
            ));
        };
        match backend.userinfo(token, Lane::Token).await {
            Ok(Some(user)) => Ok(Verdict::Valid(user)),
            Ok(None) => Ok(Verdict::Refused("the backend refused the token".into())),
            // A slow backend is an outage here, not a bad token: 503, never 401.
            Err(AuthError::BackendTimeout) => {
                Err(AuthError::BackendUnavailable("user info timed out".into()))
            }
            Err(e) => Err(e),
        }
    }

    /// RFC 7662: one introspection call under the same budget as user-info calls.
    async fn verify_introspection(
        &self,
        backend: &Backend,
        cfg: &IntrospectionConfig,
        token: &str,
        vouched: Vouched,
    ) -> AuthResult<(Verdict, Option<u64>)> {
        let Some(_permit) = self.budget.try_take(vouched) else {
            return Err(AuthError::BackendCircuitOpen(
                "too many unknown tokens to check at once".into(),
            ));
        };
        let answer = match backend.introspect(cfg, token).await {
            Ok(a) => a,
            Err(AuthError::BackendTimeout) => {
                return Err(AuthError::BackendUnavailable(
                    "introspection timed out".into(),
                ))
            }
            Err(e) => return Err(e),
        };
        crate::backend::introspection::judge(&answer, cfg, &self.claims_mapping, now_secs())
    }

    /// The verdict on a backend JWT, with the `exp` of a verified one (it bounds the cache entry).
    async fn verify_jwt(
        &self,
        backend: &Backend,
        token: &str,
    ) -> AuthResult<(Verdict, Option<u64>)> {
        let refused = |why: &str| Ok((Verdict::Refused(why.into()), None));
        let Some(cfg) = &self.jwks else {
            return refused("JWKS not configured");
        };
        let (alg, validation, kid) = match self.jwt_header(token) {
            Ok(parts) => parts,
            Err(why) => return refused(why),
        };
        match self.key_for(backend, cfg, &kid).await? {
            Some(prepared) => self.jwt_verdict(token, alg, validation, &prepared),
            None => refused("unknown signing key"),
        }
    }

    /// What a backend JWT's header decides before its key is looked up: its algorithm (one that
    /// is allowed, with that algorithm's claim checks) and its `kid`.
    fn jwt_header(&self, token: &str) -> Result<(Algorithm, &Validation, String), &'static str> {
        let header = decode_header(token).map_err(|_| "not a JWT")?;
        let (_, validation) = self
            .jwt_validations
            .iter()
            .find(|(a, _)| *a == header.alg)
            .ok_or("algorithm not allowed")?;
        let kid = header.kid.ok_or("token has no key id")?;
        Ok((header.alg, validation, kid))
    }

    /// The verdict on a backend JWT signed with `alg` against the key its `kid` names.
    fn jwt_verdict(
        &self,
        token: &str,
        alg: Algorithm,
        validation: &Validation,
        key: &PreparedKey,
    ) -> AuthResult<(Verdict, Option<u64>)> {
        let refused = |why: &str| Ok((Verdict::Refused(why.into()), None));
        if key.algorithm() != alg {
            return refused("algorithm does not match the key");
        }
        let claims = match backend_claims(token, key, validation, now_secs()) {
            Ok(c) => c,
            Err(why) => return refused(why),
        };
        // The same `exp` `unverified_exp` would read from this payload.
        let exp = claims.get("exp").and_then(Value::as_u64);
        Ok((identity_from_claims(&claims, &self.claims_mapping)?, exp))
    }

    /// The key for `kid`. A fresh key set answers at once. A stale one still answers for a known
    /// `kid` (up to `max_stale` past its TTL) while one background fetch replaces it, so a slow
    /// or failing JWKS never makes requests wait for each other. Only a request the last good set
    /// cannot answer (no set yet, too stale, an unknown `kid` past the cooldown) waits for a fetch,
    /// shared with everyone else waiting.
    async fn key_for(
        &self,
        backend: &Backend,
        cfg: &JwksConfig,
        kid: &str,
    ) -> AuthResult<Option<Arc<PreparedKey>>> {
        let current = lock(&self.keys.current).clone();
        if let Some(set) = &current {
            let age = set.fetched.elapsed();
            let fresh = age <= cfg.cache_ttl;
            let usable = age <= cfg.cache_ttl.saturating_add(cfg.max_stale);
            if !fresh && usable {
                self.refresh_in_background(backend, cfg);
            }
            match set.keys.get(kid) {
                Some(k) if usable => return Ok(Some(k.clone())),
                Some(_) => {}
                None if usable && !self.keys.allow_unknown_refetch(cfg.refetch_cooldown) => {
                    // The set is current (its last fetch succeeded): the `kid` is unknown.
                    if lock(&self.keys.failed_at).is_none() {
                        return Ok(None);
                    }
                    // The fetch for it failed: a key rotated in meanwhile cannot be told from
                    // junk, so the answer is the outage's (503), never a refusal (found by the
                    // soak run), and the JWKS is asked again as when no set is usable.
                    if self.keys.backing_off() {
                        return Err(AuthError::BackendCircuitOpen(
                            "the JWKS failed, asked again shortly".into(),
                        ));
                    }
                    let set = self.keys.fetch(backend, cfg).await?;
                    return Ok(set.keys.get(kid).cloned());
                }
                None if usable => {
                    let set = self.keys.fetch(backend, cfg).await?;
                    return Ok(set.keys.get(kid).cloned());
                }
                None => {}
            }
        }
        // No usable key set: while the JWKS is failing, not every request asks it again.
        if self.keys.backing_off() {
            return Err(AuthError::BackendCircuitOpen(
                "the JWKS failed, asked again shortly".into(),
            ));
        }
        let set = self.keys.fetch(backend, cfg).await?;
        Ok(set.keys.get(kid).cloned())
    }

    /// Starts one fetch of the key set in the background, unless one runs or the last failed less
    /// than `JWKS_RETRY` ago.
    fn refresh_in_background(&self, backend: &Backend, cfg: &JwksConfig) {
        let state = self.keys.clone();
        if lock(&state.failed_at).is_some_and(|t| t.elapsed() < JWKS_RETRY) {
            return;
        }
        if state.refreshing.swap(true, Ordering::SeqCst) {
            return;
        }
        let guard = RefreshingGuard(state);
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (backend, cfg) = (backend.clone(), cfg.clone());
        runtime.spawn(async move {
            // A failure is remembered in the state; requests keep using the last good set.
            let _ = guard.0.fetch(&backend, &cfg).await;
            drop(guard);
        });
    }
}

/// The claim checks of a backend JWT signed with `alg`: `iss`, `aud` when configured, `exp` and
/// `iss` required, 0 s leeway (`exp` itself is compared by `backend_claims`).
fn jwt_validation(alg: Algorithm, cfg: &JwksConfig) -> Validation {
    let mut validation = Validation::new(alg);
    validation.leeway = 0;
    // jsonwebtoken accepts `exp == now`; `exp` is compared below instead.
    validation.validate_exp = false;
    validation.set_issuer(&[&cfg.issuer]);
    match &cfg.audience {
        Some(aud) => validation.set_audience(&[aud]),
        None => validation.validate_aud = false,
    }
    validation.required_spec_claims = ["exp", "iss"].iter().map(|s| s.to_string()).collect();
    validation
}

/// A backend JWT's claims, verified against `key` at time `now`: signature, the checks of
/// `validation` (`jwt_validation`), `exp <= now` expired. The reason is safe to show.
fn backend_claims(
    token: &str,
    key: &PreparedKey,
    validation: &Validation,
    now: u64,
) -> Result<Value, &'static str> {
    let claims = match decode_prepared::<Value>(token, key, validation) {
        Ok(d) => d.claims,
        Err(e) => {
            return Err(match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => "token expired",
                jsonwebtoken::errors::ErrorKind::InvalidIssuer => "wrong issuer",
                jsonwebtoken::errors::ErrorKind::InvalidAudience => "wrong audience",
                jsonwebtoken::errors::ErrorKind::InvalidSignature => "bad signature",
                _ => "invalid token",
            })
        }
    };
    match claims.get("exp").and_then(Value::as_f64) {
        Some(exp) if !expired(exp, now) => Ok(claims),
        Some(_) => Err("token expired"),
        None => Err("invalid token"),
    }
}

/// `exp` of a JWT-shaped token, read without verification: only ever used to shorten a cache TTL.
fn unverified_exp(token: &str) -> Option<u64> {
    let payload = token.split('.').nth(1)?;
    crate::tokens::librechat::decode_json::<Value>(payload)?
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

    fn jwks_config() -> JwksConfig {
        JwksConfig {
            url: url::Url::parse("http://127.0.0.1:9/jwks").unwrap(),
            issuer: "https://idp".into(),
            audience: None,
            id_claim: "sub".into(),
            cache_ttl: Duration::from_secs(600),
            refetch_cooldown: Duration::from_secs(30),
            max_stale: Duration::from_secs(86_400),
        }
    }

    #[test]
    fn item_8_20_backend_jwt_exp_equal_to_now_is_expired() {
        // The algorithm checks come before this function; HS256 only stands in for a key here.
        let exp = now_secs() + 100;
        let token = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(Algorithm::HS256),
            &serde_json::json!({"sub": "u1", "iss": "https://idp", "exp": exp}),
            &jsonwebtoken::EncodingKey::from_secret(b"k"),
        )
        .unwrap();
        let key = PreparedKey::new(DecodingKey::from_secret(b"k"), Algorithm::HS256);
        let cfg = jwt_validation(Algorithm::HS256, &jwks_config());
        assert!(backend_claims(&token, &key, &cfg, exp - 1).is_ok());
        assert_eq!(
            backend_claims(&token, &key, &cfg, exp).err(),
            Some("token expired")
        );
        let other_iss = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(Algorithm::HS256),
            &serde_json::json!({"sub": "u1", "iss": "https://evil", "exp": exp}),
            &jsonwebtoken::EncodingKey::from_secret(b"k"),
        )
        .unwrap();
        assert_eq!(
            backend_claims(&other_iss, &key, &cfg, exp - 1).err(),
            Some("wrong issuer")
        );
    }

    #[test]
    fn item_8_7_userinfo_budget_caps_calls_in_flight_and_their_rate() {
        let b = Budget::new(UserinfoBudget {
            max_concurrent: 2,
            per_second: 1,
            burst: 3,
        });
        let p1 = b.try_take(Vouched::Yes).unwrap();
        let p2 = b.try_take(Vouched::Yes).unwrap();
        assert!(b.try_take(Vouched::Yes).is_none(), "a third call in flight");
        drop((p1, p2));
        assert!(b.try_take(Vouched::Yes).is_some(), "the burst's third call");
        // The burst is spent: nothing more until the bucket refills (1 per second).
        assert!(b.try_take(Vouched::Yes).is_none());
        assert_eq!(b.in_flight.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn item_21_8_unvouched_checks_leave_half_the_budget_to_vouched_ones() {
        let b = Budget::new(UserinfoBudget {
            max_concurrent: 4,
            per_second: 1,
            burst: 10,
        });
        // Unvouched: half of the calls in flight...
        let held: Vec<_> = (0..2).map(|_| b.try_take(Vouched::No).unwrap()).collect();
        assert!(
            b.try_take(Vouched::No).is_none(),
            "a third unvouched call in flight"
        );
        assert!(
            b.try_take(Vouched::Yes).is_some(),
            "a vouched one still passes"
        );
        drop(held);
        // ...and half of the bucket: 3 of its 10 spent above, 2 more leave the kept 5.
        for _ in 0..2 {
            assert!(b.try_take(Vouched::No).is_some());
        }
        assert!(
            b.try_take(Vouched::No).is_none(),
            "the kept half is not for junk"
        );
        for _ in 0..5 {
            assert!(
                b.try_take(Vouched::Yes).is_some(),
                "the kept half serves real users"
            );
        }
        assert!(b.try_take(Vouched::Yes).is_none());
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
        assert_eq!(keys.get("e").map(|k| k.algorithm()), Some(Algorithm::EdDSA));
    }
}

/// Where a first-sight JWKS verify spends its time, per algorithm (no thresholds: a measurement).
/// `cargo test --release --features noop jwks_first_sight_breakdown -- --ignored --nocapture`
#[cfg(test)]
mod timing {
    use super::*;
    use crate::tokens::jwt_crypto::test_keys::signer;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
    use base64::Engine;
    use ring::signature as rs;
    use std::time::Instant;

    /// Microseconds per call of `f(0..n)`, the best of three rounds (the machine is shared).
    fn per_call<T>(n: usize, mut f: impl FnMut(usize) -> T) -> f64 {
        (0..3)
            .map(|round| {
                let start = Instant::now();
                for i in 0..n {
                    std::hint::black_box(f(round * n + i));
                }
                start.elapsed().as_nanos() as f64 / n as f64 / 1000.0
            })
            .fold(f64::MAX, f64::min)
    }

    #[test]
    #[ignore]
    fn jwks_first_sight_breakdown() {
        crate::tokens::jwt_crypto::install();
        let n = 400;
        let mut vars = crate::config::tests::sample_vars();
        vars.insert("BACKEND_BEARER_TOKENS".into(), "jwks".into());
        vars.insert("BACKEND_JWKS_URL".into(), "http://127.0.0.1:9/jwks".into());
        vars.insert("BACKEND_JWT_ISSUER".into(), "https://idp".into());
        vars.insert("AUTH_CACHE_MAX_ENTRIES".into(), "100000".into());
        let cfg = Config::from_vars(&vars).unwrap();
        let backend = Backend::new(&cfg).unwrap();
        let jcfg = cfg.jwks.clone().unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        for alg in [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA] {
            let s = signer(alg, "k1");
            let keys = parse_key_set(&serde_json::json!({"keys": [s.jwk.clone()]}));
            let pk = keys.get("k1").unwrap().clone();
            let key = DecodingKey::from_jwk(&serde_json::from_value::<Jwk>(s.jwk.clone()).unwrap())
                .unwrap();
            let v = jwt_validation(alg, &jcfg);
            let now = now_secs();
            let mint = |count: usize, prefix: &str| -> Vec<String> {
                (0..count)
                    .map(|i| {
                        s.token(
                            &serde_json::json!({"sub": "u-1", "iss": "https://idp", "aud": "lc",
                            "email": "a@b.c", "name": "A", "preferred_username": "a", "roles": [],
                            "iat": now, "exp": now + 900, "jti": format!("{prefix}{i}")}),
                        )
                    })
                    .collect()
            };
            let tokens = mint(n * 3, "j");
            let t = |i: usize| tokens[i % n].as_str();
            let fresh = mint(n * 6, "f");
            let parts = |i: usize| {
                let tk = t(i);
                let dot = tk.rfind('.').unwrap();
                (&tk[..dot], B64.decode(&tk[dot + 1..]).unwrap())
            };
            // Warm-up.
            for i in 0..50 {
                let _ = backend_claims(t(i), &pk, &v, now);
            }
            let r_key = per_call(n, |i| token_key(t(i)));
            let r_header = per_call(n, |i| decode_header(t(i)).unwrap());
            let r_keyclone = per_call(n, |_| keys.get("k1").cloned());
            let r_claims = per_call(n, |i| backend_claims(t(i), &pk, &v, now).unwrap());
            let r_decode_old = per_call(n, |i| {
                jsonwebtoken::decode::<Value>(t(i), &key, &v).unwrap()
            });
            let r_validation = per_call(n, |_| jwt_validation(alg, &jcfg));
            let r_rc_fresh = per_call(n, |i| {
                let (m, sig) = parts(i);
                let v = (jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER.verifier_factory)(
                    &alg, &key,
                )
                .unwrap();
                v.verify(m.as_bytes(), &sig).is_ok()
            });
            let installed = |i: usize| {
                let tk = t(i);
                let dot = tk.rfind('.').unwrap();
                jsonwebtoken::crypto::verify(&tk[dot + 1..], &tk.as_bytes()[..dot], &key, alg)
                    .unwrap()
            };
            assert!(installed(0));
            let r_installed = per_call(n, installed);
            let ring_alg: &dyn rs::VerificationAlgorithm = match alg {
                Algorithm::RS256 => &rs::RSA_PKCS1_2048_8192_SHA256,
                Algorithm::ES256 => &rs::ECDSA_P256_SHA256_FIXED,
                _ => &rs::ED25519,
            };
            let r_ring_parse = match key.kind() {
                jsonwebtoken::DecodingKeyKind::RsaModulusExponent { n: kn, e } => {
                    per_call(n, |i| {
                        let (m, _) = parts(i);
                        rs::RsaPublicKeyComponents { n: kn, e }
                            .verify(&rs::RSA_PKCS1_2048_8192_SHA256, m.as_bytes(), &[1])
                            .is_ok()
                    })
                }
                _ => 0.0,
            };
            let r_ring = match key.kind() {
                jsonwebtoken::DecodingKeyKind::RsaModulusExponent { n: kn, e } => {
                    per_call(n, |i| {
                        let (m, sig) = parts(i);
                        rs::RsaPublicKeyComponents { n: kn, e }
                            .verify(&rs::RSA_PKCS1_2048_8192_SHA256, m.as_bytes(), &sig)
                            .is_ok()
                    })
                }
                jsonwebtoken::DecodingKeyKind::SecretOrDer(b) => per_call(n, |i| {
                    let (m, sig) = parts(i);
                    let ok = rs::UnparsedPublicKey::new(ring_alg, b)
                        .verify(m.as_bytes(), &sig)
                        .is_ok();
                    assert!(ok);
                    ok
                }),
            };
            let r_parts = per_call(n, parts);
            let claims = backend_claims(t(0), &pk, &v, now).unwrap();
            let mapping = claims_mapping(&cfg);
            let r_ident = per_call(n, |_| identity_from_claims(&claims, &mapping).unwrap());
            let r_exp = per_call(n, |i| unverified_exp(t(i)));
            // The whole first sight through Bearer::verify, key set in place.
            let b = Bearer::new(&cfg);
            *lock(&b.keys.current) = Some(Arc::new(KeySet {
                keys: keys.clone(),
                fetched: Instant::now(),
            }));
            let r_jwt = per_call(n, |i| rt.block_on(b.verify_jwt(&backend, t(i))).unwrap());
            let r_miss = per_call(n, |i| b.cached(&token_key(&fresh[i])));
            let user = match identity_from_claims(&claims, &mapping).unwrap() {
                Verdict::Valid(u) => u,
                _ => unreachable!(),
            };
            let r_insert = per_call(n, |i| {
                b.positive.insert(
                    token_key(&fresh[3 * n + i]),
                    user.clone(),
                    Duration::from_secs(60),
                )
            });
            let r_flight = per_call(n, |i| {
                rt.block_on(b.flights.run(token_key(&fresh[i]), || async {
                    Ok(Verdict::Valid(user.clone()))
                }))
            });
            let r_full = per_call(n, |i| {
                rt.block_on(b.verify(&backend, &tokens[i], None)).unwrap()
            });
            let r_repeat = per_call(n, |i| {
                rt.block_on(b.verify(&backend, &tokens[i], None)).unwrap()
            });
            println!(
                "{alg:?} us/call: Bearer::verify first {r_full:.2} repeat {r_repeat:.2} \
                 (verify_jwt {r_jwt:.2}, cache miss {r_miss:.2}, insert {r_insert:.2}, \
                 single flight {r_flight:.2}) | \
                 backend_claims {r_claims:.2} (decode, per-token verifier {r_decode_old:.2}, \
                 Validation {r_validation:.2}, ring RSA key parse {r_ring_parse:.2}, installed provider verify incl. b64 {r_installed:.2}, \
                 RustCrypto verifier new+verify {r_rc_fresh:.2}, ring verify {r_ring:.2}, split+b64 sig {r_parts:.2}) | \
                 decode_header {r_header:.2} key clone {r_keyclone:.2} token_key {r_key:.2} \
                 identity {r_ident:.2} unverified_exp {r_exp:.2}"
            );
        }
    }
}
