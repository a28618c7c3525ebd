//! The package's own metrics: outcomes of login, refresh, logout and bearer checks by error code,
//! backend call latency per endpoint and outcome, cache hits and misses, refresh lease waits and
//! backend calls in flight (single-flight joins are counted by `cache::SingleFlight` itself).
//! Every label comes from a fixed table here, so no input can create a series; counting is one
//! relaxed atomic add into a fixed array: no lock, no allocation on the hot path. `snapshot()`
//! reads them for the JS side (`service.metrics()`, prom-client collectors).
//! The circuit breakers' state and openings per backend host are kept by `breaker::Breakers` (one
//! series per configured host) and read from there into the same snapshot (`lib.rs`).

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use crate::shared::error::AuthError;

/// The `code` label: `ok` and every stable code of `AuthError::code()` (a test keeps them equal).
pub const CODES: [&str; 21] = [
    "ok",
    "CONFIG_INVALID",
    "BAD_REQUEST",
    "INVALID_CREDENTIALS",
    "ACCESS_DENIED",
    "ACCOUNT_CONFLICT",
    "TENANT_MISMATCH",
    "BACKEND_UNAVAILABLE",
    "BACKEND_TIMEOUT",
    "BACKEND_BAD_RESPONSE",
    "BACKEND_RATE_LIMITED",
    "BACKEND_CIRCUIT_OPEN",
    "TOKEN_INVALID",
    "TOKEN_EXPIRED",
    "TWO_FACTOR_REQUIRED",
    "SESSION_INVALID",
    "USER_NOT_FOUND",
    "DB_UNAVAILABLE",
    "DB_ERROR",
    "SIGNATURE_INVALID",
    "INTERNAL",
];

/// The `flow` label, in the order of `Flow`.
pub const FLOWS: [&str; 4] = ["login", "refresh", "logout", "bearer"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Login = 0,
    Refresh = 1,
    Logout = 2,
    /// Every request's token check (`customJwtStrategy`).
    Bearer = 3,
}

impl Flow {
    pub fn parse(s: &str) -> Option<Flow> {
        match s {
            "login" => Some(Flow::Login),
            "refresh" => Some(Flow::Refresh),
            "logout" => Some(Flow::Logout),
            "bearer" => Some(Flow::Bearer),
            _ => None,
        }
    }
}

/// The `endpoint` label of backend calls, in the order of `Endpoint`.
pub const ENDPOINTS: [&str; 9] = [
    "login",
    "refresh",
    "userinfo",
    "jwks",
    "logout",
    "introspection",
    "sso_cookie",
    "sso_lookup",
    "mfa_verify",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Login = 0,
    Refresh = 1,
    Userinfo = 2,
    Jwks = 3,
    Logout = 4,
    /// RFC 7662 token introspection (`BACKEND_BEARER_TOKENS=introspection`).
    Introspection = 5,
    /// The portal cookie's validation (`BACKEND_SSO_COOKIE_URL`).
    SsoCookie = 6,
    /// A proxy-named user's lookup (`BACKEND_SSO_LOOKUP_URL`).
    SsoLookup = 7,
    /// The second factor's code check (`BACKEND_MFA_VERIFY_URL`).
    MfaVerify = 8,
}

impl Endpoint {
    /// The name used in error messages (unchanged from before the metrics).
    pub fn what(self) -> &'static str {
        match self {
            Endpoint::Login => "login",
            Endpoint::Refresh => "refresh",
            Endpoint::Userinfo => "user info",
            Endpoint::Jwks => "JWKS",
            Endpoint::Logout => "logout",
            Endpoint::Introspection => "introspection",
            Endpoint::SsoCookie => "portal session check",
            Endpoint::SsoLookup => "user lookup",
            Endpoint::MfaVerify => "second factor check",
        }
    }
}

/// The `outcome` label of backend calls: `refused` is the backend's "no" (401/403, and 400 for
/// refresh); the others follow the error a call ends in.
pub const CALL_OUTCOMES: [&str; 6] = [
    "ok",
    "refused",
    "timeout",
    "unavailable",
    "rate_limited",
    "bad_response",
];

pub fn call_outcome(result: Result<bool, &AuthError>) -> usize {
    match result {
        Ok(true) => 0,
        Ok(false) => 1,
        Err(AuthError::BackendTimeout) => 2,
        Err(AuthError::BackendRateLimited) => 4,
        Err(AuthError::BackendBadResponse(_)) => 5,
        Err(_) => 3,
    }
}

/// Upper bounds (seconds) of the latency histogram's buckets; `+Inf` follows. Fixed, from a fast
/// local backend (5 ms) up to the longest `BACKEND_TIMEOUT_MS` worth distinguishing.
pub const BUCKETS_SECONDS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// The same bounds in microseconds, compared as integers when counting.
const BUCKETS_US: [u64; 11] = [
    5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000, 5_000_000,
    10_000_000,
];

/// The `cache` label, in the order of `Cache`.
pub const CACHES: [&str; 2] = ["user", "backend_token"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cache {
    /// User documents by id (every request with a LibreChat token).
    User = 0,
    /// Verdicts on backend tokens (every request with a backend token).
    BackendToken = 1,
}

/// A latency histogram: one counter per bucket (not cumulative; `+Inf` last) and the sum.
#[derive(Default)]
pub struct Histogram {
    buckets: [AtomicU64; BUCKETS_US.len() + 1],
    sum_us: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        let i = BUCKETS_US
            .iter()
            .position(|&bound| us <= bound)
            .unwrap_or(BUCKETS_US.len());
        self.buckets[i].fetch_add(1, Relaxed);
        self.sum_us.fetch_add(us, Relaxed);
    }

    /// Cumulative counts per bound (without `+Inf`), the total count and the sum in seconds.
    pub fn read(&self) -> (Vec<u64>, u64, f64) {
        let mut cumulative = Vec::with_capacity(BUCKETS_US.len());
        let mut total = 0u64;
        for (i, b) in self.buckets.iter().enumerate() {
            total = total.saturating_add(b.load(Relaxed));
            if i < BUCKETS_US.len() {
                cumulative.push(total);
            }
        }
        (cumulative, total, self.sum_us.load(Relaxed) as f64 / 1e6)
    }
}

#[derive(Default)]
pub struct Metrics {
    outcomes: [[AtomicU64; CODES.len()]; FLOWS.len()],
    calls: [[Histogram; CALL_OUTCOMES.len()]; ENDPOINTS.len()],
    cache_hits: [AtomicU64; CACHES.len()],
    cache_misses: [AtomicU64; CACHES.len()],
    lease_waits: AtomicU64,
    sso_untrusted: AtomicU64,
    in_flight: AtomicI64,
}

/// The index of a code in `CODES`; `None` for anything else (no label is ever made up).
pub fn code_index(code: &str) -> Option<usize> {
    CODES.iter().position(|c| *c == code)
}

/// One backend call in flight: counted in the gauge from its start to its end (also when the
/// future is dropped, e.g. by a timeout).
pub struct InFlight<'a>(&'a Metrics);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Relaxed);
    }
}

impl Metrics {
    pub fn outcome(&self, flow: Flow, code: usize) {
        if let Some(c) = self.outcomes[flow as usize].get(code) {
            c.fetch_add(1, Relaxed);
        }
    }

    pub fn ok(&self, flow: Flow) {
        self.outcome(flow, 0);
    }

    pub fn result<T>(&self, flow: Flow, r: &Result<T, AuthError>) {
        match r {
            Ok(_) => self.ok(flow),
            Err(e) => self.error(flow, e),
        }
    }

    pub fn error(&self, flow: Flow, e: &AuthError) {
        if let Some(i) = code_index(e.code()) {
            self.outcome(flow, i);
        }
    }

    pub fn backend_call_started(&self) -> InFlight<'_> {
        self.in_flight.fetch_add(1, Relaxed);
        InFlight(self)
    }

    pub fn backend_call(&self, endpoint: Endpoint, outcome: usize, took: Duration) {
        if let Some(h) = self.calls[endpoint as usize].get(outcome) {
            h.observe(took);
        }
    }

    pub fn cache(&self, cache: Cache, hit: bool) {
        let counters = if hit {
            &self.cache_hits
        } else {
            &self.cache_misses
        };
        counters[cache as usize].fetch_add(1, Relaxed);
    }

    /// Single sign-on identity headers from a peer that is not a trusted proxy (ignored).
    pub fn sso_untrusted_headers(&self) {
        self.sso_untrusted.fetch_add(1, Relaxed);
    }

    pub fn lease_wait(&self) {
        self.lease_waits.fetch_add(1, Relaxed);
    }

    /// Everything counted so far. Outcomes: every non-zero one, and `ok` of each flow always;
    /// backend calls: every endpoint/outcome with at least one call.
    pub fn snapshot(&self, flight_joins: &[(&'static str, u64)]) -> Snapshot {
        let mut outcomes = Vec::new();
        for (f, row) in self.outcomes.iter().enumerate() {
            for (c, n) in row.iter().enumerate() {
                let n = n.load(Relaxed);
                if n > 0 || c == 0 {
                    outcomes.push((FLOWS[f], CODES[c], n));
                }
            }
        }
        let mut calls = Vec::new();
        for (e, row) in self.calls.iter().enumerate() {
            for (o, h) in row.iter().enumerate() {
                let (buckets, count, sum_seconds) = h.read();
                if count > 0 {
                    calls.push(CallSeries {
                        endpoint: ENDPOINTS[e],
                        outcome: CALL_OUTCOMES[o],
                        buckets,
                        count,
                        sum_seconds,
                    });
                }
            }
        }
        Snapshot {
            outcomes,
            calls,
            caches: CACHES
                .iter()
                .enumerate()
                .map(|(i, name)| {
                    (
                        *name,
                        self.cache_hits[i].load(Relaxed),
                        self.cache_misses[i].load(Relaxed),
                    )
                })
                .collect(),
            flight_joins: flight_joins.to_vec(),
            lease_waits: self.lease_waits.load(Relaxed),
            sso_untrusted_headers: self.sso_untrusted.load(Relaxed),
            in_flight: self.in_flight.load(Relaxed).max(0),
        }
    }
}

pub struct CallSeries {
    pub endpoint: &'static str,
    pub outcome: &'static str,
    /// Cumulative, one per `BUCKETS_SECONDS` bound.
    pub buckets: Vec<u64>,
    pub count: u64,
    pub sum_seconds: f64,
}

pub struct Snapshot {
    /// (flow, code, count)
    pub outcomes: Vec<(&'static str, &'static str, u64)>,
    pub calls: Vec<CallSeries>,
    /// (cache, hits, misses)
    pub caches: Vec<(&'static str, u64, u64)>,
    /// (flight, joins)
    pub flight_joins: Vec<(&'static str, u64)>,
    pub lease_waits: u64,
    pub sso_untrusted_headers: u64,
    pub in_flight: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_error() -> Vec<AuthError> {
        vec![
            AuthError::config("X", "y"),
            AuthError::BadRequest(String::new()),
            AuthError::InvalidCredentials,
            AuthError::AccessDenied {
                message: String::new(),
                backend_id: None,
            },
            AuthError::AccountConflict,
            AuthError::TenantMismatch(String::new()),
            AuthError::BackendUnavailable(String::new()),
            AuthError::BackendTimeout,
            AuthError::BackendBadResponse(String::new()),
            AuthError::BackendRateLimited,
            AuthError::BackendCircuitOpen(String::new()),
            AuthError::TokenInvalid(String::new()),
            AuthError::TokenExpired,
            AuthError::TwoFactorRequired,
            AuthError::SessionInvalid(String::new()),
            AuthError::UserNotFound,
            AuthError::DbUnavailable,
            AuthError::DbError,
            AuthError::SignatureInvalid(String::new()),
            AuthError::Internal(String::new()),
        ]
    }

    #[test]
    fn item_10_7_every_error_code_has_a_label_and_nothing_else_does() {
        let errors = every_error();
        assert_eq!(errors.len() + 1, CODES.len());
        for e in &errors {
            assert!(code_index(e.code()).is_some(), "{} has no label", e.code());
        }
        assert_eq!(code_index("ok"), Some(0));
        assert_eq!(code_index("SOMETHING_NEW"), None);
        assert_eq!(code_index("invalid_credentials"), None);
    }

    #[test]
    fn item_10_7_outcomes_count_by_flow_and_code() {
        let m = Metrics::default();
        m.ok(Flow::Bearer);
        m.ok(Flow::Bearer);
        m.result::<()>(Flow::Login, &Err(AuthError::InvalidCredentials));
        m.result(Flow::Login, &Ok(()));
        m.error(Flow::Refresh, &AuthError::BackendTimeout);
        m.outcome(Flow::Logout, CODES.len()); // out of range: ignored, no panic
        let s = m.snapshot(&[("backend_token", 3), ("jwks", 0)]);
        let get = |f: &str, c: &str| {
            s.outcomes
                .iter()
                .find(|(ff, cc, _)| *ff == f && *cc == c)
                .map(|t| t.2)
        };
        assert_eq!(get("bearer", "ok"), Some(2));
        assert_eq!(get("login", "ok"), Some(1));
        assert_eq!(get("login", "INVALID_CREDENTIALS"), Some(1));
        assert_eq!(get("refresh", "BACKEND_TIMEOUT"), Some(1));
        // `ok` of every flow is always there; other zero counts are not.
        assert_eq!(get("logout", "ok"), Some(0));
        assert_eq!(get("logout", "INTERNAL"), None);
        assert_eq!(s.outcomes.len(), 4 + 2);
        assert_eq!(s.flight_joins, vec![("backend_token", 3), ("jwks", 0)]);
        assert_eq!(Flow::parse("bearer"), Some(Flow::Bearer));
        assert_eq!(Flow::parse("Bearer"), None);
    }

    #[test]
    fn item_10_7_histogram_buckets_are_cumulative_with_bounds_inclusive() {
        let h = Histogram::default();
        h.observe(Duration::from_micros(5_000)); // exactly the first bound: le="0.005"
        h.observe(Duration::from_micros(5_001)); // next bucket
        h.observe(Duration::from_millis(300)); // le="0.5"
        h.observe(Duration::from_secs(60)); // +Inf only
        let (buckets, count, sum) = h.read();
        assert_eq!(buckets.len(), BUCKETS_SECONDS.len());
        assert_eq!(buckets, vec![1, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3]);
        assert_eq!(count, 4);
        assert!((sum - 60.310_001).abs() < 1e-9, "{sum}");
        for (s, us) in BUCKETS_SECONDS.iter().zip(BUCKETS_US) {
            assert_eq!((s * 1e6).round() as u64, us);
        }
    }

    #[test]
    fn item_10_7_backend_calls_by_endpoint_outcome_and_in_flight_gauge() {
        let m = Metrics::default();
        {
            let _a = m.backend_call_started();
            let _b = m.backend_call_started();
            assert_eq!(m.snapshot(&[("a", 0), ("b", 0)]).in_flight, 2);
        }
        assert_eq!(m.snapshot(&[("a", 0), ("b", 0)]).in_flight, 0);
        m.backend_call(
            Endpoint::Userinfo,
            call_outcome(Ok(true)),
            Duration::from_millis(7),
        );
        m.backend_call(
            Endpoint::Login,
            call_outcome(Err(&AuthError::BackendTimeout)),
            Duration::from_secs(3),
        );
        m.backend_call(Endpoint::Jwks, CALL_OUTCOMES.len(), Duration::ZERO); // ignored
        let s = m.snapshot(&[("a", 0), ("b", 0)]);
        let series: Vec<(&str, &str, u64)> = s
            .calls
            .iter()
            .map(|c| (c.endpoint, c.outcome, c.count))
            .collect();
        assert_eq!(series, vec![("login", "timeout", 1), ("userinfo", "ok", 1)]);
        assert_eq!(call_outcome(Ok(false)), 1);
        assert_eq!(
            CALL_OUTCOMES[call_outcome(Err(&AuthError::BackendUnavailable(String::new())))],
            "unavailable"
        );
        m.cache(Cache::User, true);
        m.cache(Cache::User, false);
        m.cache(Cache::BackendToken, false);
        m.lease_wait();
        let s = m.snapshot(&[("a", 0), ("b", 0)]);
        assert_eq!(s.caches, vec![("user", 1, 1), ("backend_token", 0, 1)]);
        assert_eq!(s.lease_waits, 1);
    }
}
