//! napi exports only. All work lives in the modules below; this file converts between JS values
//! and them.

// Nothing that comes from input, the network or the database may panic; tests may unwrap.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

// The layers, lowest first; each folder's mod.rs says what it owns and what it may use
// (scripts/check-cycles.js keeps to it).
mod backend;
mod config;
mod doctor;
mod flows;
mod identity;
mod shared;
mod store;
mod tokens;

use std::collections::HashMap;
use std::sync::Arc;

use napi::bindgen_prelude::{Buffer, Function, Unknown};
use napi::threadsafe_function::ThreadsafeFunctionCallMode;
use napi_derive::napi;

use crate::flows::login::{request_tenant, LoginOutcome};
use crate::flows::mfa::VerifyOutcome;
use crate::flows::refresh::{Refreshed, SsoState};
use crate::flows::request::SyncAuth;
use crate::flows::service::{user_ejson, Service};
use crate::flows::sso::{AfterRefresh, SsoFound, SsoInput};
use crate::identity::Via;
use crate::shared::metrics::{code_index, Flow};

/// The marker and source id a build was given (build.rs): found in the file by the release spec.
const SOURCE_MARK: &str = concat!("lcba-source-id:", env!("LCBA_SOURCE_ID"));

/// The id of the sources this binary was built from (`scripts/source-id.js`), or `unknown` for a
/// build that was not given one.
#[napi]
pub fn source_id() -> &'static str {
    SOURCE_MARK.split_once(':').map_or("unknown", |(_, id)| id)
}

/// Audit events waiting for the event loop at most; more are dropped (and counted).
const AUDIT_QUEUE: usize = 1024;

/// What `checkLogin` found (a canary login: no user written, no session kept).
#[napi(object)]
pub struct LoginCheckResult {
    pub backend_id: String,
    pub email: String,
    pub username: String,
    /// The LibreChat role the role mapping gives (absent: no mapping configured).
    pub role: Option<String>,
    /// The backend session the login opened: ended, the end failed, or absent without `BACKEND_LOGOUT_URL`.
    pub backend_session_ended: Option<bool>,
}

/// What `login` answers. `user` is relaxed Extended JSON (the shim restores ObjectIds and Dates).
#[napi(object)]
pub struct LoginResult {
    pub user: String,
    pub two_fa_pending: bool,
    /// LibreChat access token (absent while 2FA is pending).
    pub token: Option<String>,
    /// LibreChat refresh token for the `refreshToken` cookie.
    pub refresh_token: Option<String>,
    /// When the session ends (ms since the epoch): the cookies' `expires`.
    pub refresh_expires_at: Option<f64>,
    /// LibreChat's 2FA temp token when `twoFAPending`.
    pub temp_token: Option<String>,
    /// The new session document's `_id` hex (absent while 2FA is pending): an audit reference.
    pub session_id: Option<String>,
    /// The pending 2FA login's record id (while `twoFAPending`): what `abandonLogin` ends.
    pub pending_id: Option<String>,
    /// `twoFAPending` for the backend's own second factor (no LibreChat user yet: `user` is `{}`).
    pub backend_challenge: bool,
}

/// A code posted to LibreChat's 2FA route: `outcome` `not_ours` (LibreChat's own 2FA answers it),
/// `session` (with `login`), `wrong_code`, `expired`, `exhausted`.
#[napi(object)]
pub struct ChallengeResult {
    pub outcome: String,
    pub login: Option<LoginResult>,
}

/// A user as relaxed Extended JSON with its cache version.
#[napi(object)]
pub struct UserRecord {
    pub id: String,
    pub user: String,
    pub version: u32,
}

/// What `refresh` answers.
#[napi(object)]
pub struct RefreshResult {
    pub user: String,
    pub token: String,
    pub refresh_token: String,
    pub refresh_expires_at: f64,
    /// `token_provider` cookie value.
    pub provider: String,
    /// Answered during a backend outage without a backend refresh: `refresh_token` is the one
    /// presented and the cookies stay as they are.
    pub outage: bool,
    /// The backend failure an outage answer stood in for (its error code).
    pub outage_code: Option<String>,
    /// The session document's `_id` hex: an audit reference.
    pub session_id: String,
    /// Single sign-on ended the session presented (another person's) and started this one for the
    /// portal's user: how they came in (`sso-cookie`, `sso-proxy`).
    pub switched_via: Option<String>,
}

/// A login's outcome as the shim gets it.
fn login_result(outcome: LoginOutcome) -> napi::Result<LoginResult> {
    Ok(match outcome {
        LoginOutcome::Session {
            user,
            token,
            refresh_token,
            refresh_expires_at_ms,
            session,
        } => LoginResult {
            user: user_ejson(user)?,
            two_fa_pending: false,
            token: Some(token),
            refresh_token: Some(refresh_token),
            refresh_expires_at: Some(refresh_expires_at_ms as f64),
            temp_token: None,
            session_id: Some(session.to_hex()),
            pending_id: None,
            backend_challenge: false,
        },
        // No LibreChat user before the backend's second factor: `{}`.
        LoginOutcome::BackendChallenge { temp_token, record } => {
            pending_result("{}".into(), temp_token, record, true)
        }
        LoginOutcome::TwoFactorPending {
            user,
            temp_token,
            pending,
        } => pending_result(user_ejson(user)?, temp_token, pending, false),
    })
}

/// A login waiting for its second step (LibreChat's, or the backend's own).
fn pending_result(
    user: String,
    temp_token: String,
    pending: mongodb::bson::oid::ObjectId,
    backend_challenge: bool,
) -> LoginResult {
    LoginResult {
        user,
        two_fa_pending: true,
        token: None,
        refresh_token: None,
        refresh_expires_at: None,
        temp_token: Some(temp_token),
        session_id: None,
        pending_id: Some(pending.to_hex()),
        backend_challenge,
    }
}

/// A refresh that single sign-on answered with a new session for the portal's user.
fn switched(login: LoginOutcome, via: Via) -> napi::Result<RefreshResult> {
    let r = login_result(login)?;
    let missing = || {
        napi::Error::from(crate::shared::error::AuthError::Internal(
            "a switched session without its tokens".into(),
        ))
    };
    Ok(RefreshResult {
        user: r.user,
        token: r.token.ok_or_else(missing)?,
        refresh_token: r.refresh_token.ok_or_else(missing)?,
        refresh_expires_at: r.refresh_expires_at.ok_or_else(missing)?,
        provider: crate::identity::PROVIDER.to_string(),
        outage: false,
        outage_code: None,
        session_id: r.session_id.ok_or_else(missing)?,
        switched_via: Some(via.name().to_string()),
    })
}

/// The single sign-on settings the shim reads requests by (`ssoSettings`).
#[napi(object)]
pub struct SsoSettings {
    /// The portal cookie's name.
    pub cookie: Option<String>,
    /// The proxy headers to pass on (lower case); empty without trusted proxies.
    pub headers: Vec<String>,
    /// `BACKEND_SSO_LOGOUT_URL`: the logout answer's `redirect`.
    pub logout_url: Option<String>,
}

/// What a request carries for single sign-on (docs/single-sign-on.md): the portal cookie's value,
/// the TCP peer's address, the proxy's identity headers (lower-case names) and the pause mark.
#[napi(object)]
pub struct SsoRequest {
    pub cookie: Option<String>,
    pub peer: Option<String>,
    pub headers: Option<HashMap<String, String>>,
    pub paused: Option<String>,
}

impl SsoRequest {
    fn input(self) -> SsoInput {
        SsoInput {
            cookie: self.cookie,
            peer: self.peer,
            headers: self.headers.unwrap_or_default(),
            paused: self.paused,
        }
    }
}

/// A single sign-on attempt: `outcome` `none` (nothing to sign in with), `untrusted` (identity
/// headers from a peer that is not a trusted proxy, ignored) or `session` (with `via` and the
/// session, as a login's).
#[napi(object)]
pub struct SsoLoginResult {
    pub outcome: String,
    pub via: Option<String>,
    pub login: Option<LoginResult>,
}

/// Whom a genuine LibreChat refresh token names (its signature checked, its expiry not): the
/// audit's references for a refresh or logout, never the token.
#[napi(object)]
pub struct RefreshSubject {
    pub user_id: String,
    pub session_id: String,
}

/// Requests of one flow ended with one code (`ok` or an error code).
#[napi(object)]
pub struct MetricsOutcome {
    pub flow: String,
    pub code: String,
    pub count: f64,
}

/// Backend calls of one endpoint with one outcome: a histogram of their latency.
#[napi(object)]
pub struct MetricsBackendCalls {
    pub endpoint: String,
    pub outcome: String,
    /// Cumulative counts, one per bound of `bucketBoundsSeconds`.
    pub buckets: Vec<f64>,
    pub count: f64,
    pub sum_seconds: f64,
}

#[napi(object)]
pub struct MetricsCache {
    pub cache: String,
    pub hits: f64,
    pub misses: f64,
}

#[napi(object)]
pub struct MetricsFlightJoins {
    pub flight: String,
    pub joins: f64,
}

/// One lane of a backend host's circuit breaker.
#[napi(object)]
pub struct MetricsBreaker {
    /// `scheme://host:port` of configured backend URLs only.
    pub host: String,
    /// `login`, `token`, `session` or `keys`.
    pub lane: String,
    /// 0 closed, 1 half-open, 2 open.
    pub state: u32,
    pub openings: f64,
}

/// Everything the service counted since it was built (`metrics()`).
#[napi(object)]
pub struct MetricsSnapshot {
    pub outcomes: Vec<MetricsOutcome>,
    pub bucket_bounds_seconds: Vec<f64>,
    pub backend_calls: Vec<MetricsBackendCalls>,
    pub caches: Vec<MetricsCache>,
    pub single_flight_joins: Vec<MetricsFlightJoins>,
    pub refresh_lease_waits: f64,
    /// Single sign-on identity headers from peers that are not trusted proxies (ignored).
    pub sso_untrusted_headers: f64,
    pub backend_calls_in_flight: f64,
    pub backend_breakers: Vec<MetricsBreaker>,
}

/// One session as `listSessions` shows it: nothing secret. Times in ms since the epoch.
#[napi(object)]
pub struct SessionInfo {
    /// The session document's id: a reference that is not the token.
    pub id: String,
    pub created_at: f64,
    pub last_refreshed_at: Option<f64>,
    pub expires_at: f64,
    /// Whether backend tokens are held for it.
    pub backend_tokens: bool,
}

/// What ending sessions did.
#[napi(object)]
pub struct SessionsEnded {
    pub sessions: u32,
    /// Backend logout calls that failed (the sessions ended all the same).
    pub backend_failures: u32,
}

/// What a backend event did. `status`: `applied`, `duplicate`, `stale` or `no_account`.
#[napi(object)]
pub struct EventResult {
    pub status: String,
    pub id: String,
    pub event_type: String,
    pub backend_id: String,
    /// The first of `user_ids`, if any.
    pub user_id: Option<String>,
    /// Every LibreChat account it was applied to (one per tenant).
    pub user_ids: Vec<String>,
    pub sessions_ended: u32,
}

fn ended(e: crate::flows::control::Ended) -> SessionsEnded {
    SessionsEnded {
        sessions: e.sessions,
        backend_failures: e.backend_failures,
    }
}

fn record(c: crate::flows::service::CachedUser) -> UserRecord {
    UserRecord {
        id: c.id.to_string(),
        user: c.json.to_string(),
        version: c.version,
    }
}

/// The authentication service: configuration, backend client and database, built once and shared.
#[napi]
pub struct CustomBackendAuthService {
    inner: Arc<Service>,
}

/// One line of the effective configuration (`doctor`): secrets are shown only as their length.
#[napi(object)]
pub struct DoctorConfigLine {
    pub name: String,
    pub value: String,
}

/// One check of `doctor`. `level`: `ok`, `info` or `problem`.
#[napi(object)]
pub struct DoctorFinding {
    pub level: String,
    pub check: String,
    pub detail: String,
}

/// What `doctor` answers: the effective configuration, then the checks.
#[napi(object)]
pub struct DoctorReport {
    pub config: Vec<DoctorConfigLine>,
    pub findings: Vec<DoctorFinding>,
}

#[napi]
impl CustomBackendAuthService {
    /// Validates the configuration (environment-variable names → string values) or throws
    /// `[CONFIG_INVALID] VAR: expected …`.
    #[napi(constructor)]
    pub fn new(vars: HashMap<String, String>) -> napi::Result<Self> {
        Ok(CustomBackendAuthService {
            inner: Service::shared(&vars)?,
        })
    }

    /// Whether cookies must be `Secure` (`NODE_ENV=production`).
    #[napi(getter)]
    pub fn secure_cookies(&self) -> bool {
        self.inner.config.secure_cookies
    }

    /// Whether LibreChat's login page should ask for a user name (`BACKEND_LOGIN_USES_USERNAME`).
    #[napi(getter)]
    pub fn login_uses_username(&self) -> bool {
        self.inner.config.login_uses_username
    }

    /// LibreChat's `TRUST_TENANT_HEADER`: a request's `X-Tenant-Id` names its tenant.
    #[napi(getter)]
    pub fn trust_tenant_header(&self) -> bool {
        self.inner.config.trust_tenant_header
    }

    /// `JWT_FAST_PATH`: the shim answers cached tokens under passport (lib/fastPath.js).
    #[napi(getter)]
    pub fn jwt_fast_path(&self) -> bool {
        self.inner.config.jwt_fast_path
    }

    /// `AUTH_CACHE_MAX_ENTRIES` as parsed: the shim bounds its memo of parsed users by it too.
    #[napi(getter)]
    pub fn cache_max_entries(&self) -> u32 {
        u32::try_from(self.inner.config.cache_max).unwrap_or(u32::MAX)
    }

    /// `AUTH_LOG_REPEAT_SECONDS` in milliseconds: the shim's interval for repeated refusals.
    #[napi(getter)]
    pub fn log_repeat_ms(&self) -> u32 {
        u32::try_from(self.inner.config.log_repeat.as_millis()).unwrap_or(u32::MAX)
    }

    /// Logs in with `{email|username, password}` against the backend, syncs the user and starts a
    /// LibreChat session. `tenant`: the request's (docs/tenants.md).
    #[napi]
    pub async fn login(
        &self,
        credentials: serde_json::Value,
        tenant: Option<String>,
    ) -> napi::Result<LoginResult> {
        let inner = self.inner.clone();
        let outcome = match request_tenant(tenant.as_deref()) {
            Ok(t) => inner.login(&credentials, t.as_deref()).await,
            Err(e) => Err(e),
        };
        inner.metrics.result(Flow::Login, &outcome);
        let result = login_result(outcome?)?;
        Ok(result)
    }

    /// A canary login (`doctor --check-login`): the backend checks the credentials and the user is
    /// mapped and checked against the policy as at login, but nothing is written and no session is
    /// kept (the backend's is ended where `BACKEND_LOGOUT_URL` allows). Not counted in the metrics.
    #[napi]
    pub async fn check_login(
        &self,
        credentials: serde_json::Value,
    ) -> napi::Result<LoginCheckResult> {
        let c = self.inner.check_login(&credentials).await?;
        Ok(LoginCheckResult {
            backend_id: c.backend_id,
            email: c.email,
            username: c.username,
            role: c.role.map(str::to_string),
            backend_session_ended: c.backend_session_ended,
        })
    }

    /// The hot path of every request, synchronous (no Promise): classifies the bearer token,
    /// verifies a LibreChat token natively and answers from the caches; a backend JWT whose key
    /// the fresh JWKS set holds is verified here too (no hop to the runtime). The verdict comes packed
    /// in one string, which `lib/service.js` unpacks: a JS object built here costs a runtime
    /// property store per field on every request (measured in the bench server: the call went from
    /// 8.6 to 7.2 us). `u<version>:<id>` (verified, user cached at `version`), `l<iat>:<id>`
    /// (verified, load the user; `iat` may be empty), `b` (a backend token), `i<reason>`.
    /// `tenant`: the request's (docs/tenants.md), usually none.
    #[napi(catch_unwind)]
    pub fn check_bearer(&self, token: String, tenant: Option<String>) -> String {
        // A verdict here ends the check (counted); `load` and `backend` are counted by the call
        // that finishes them.
        let metrics = &self.inner.metrics;
        let verdict = match request_tenant(tenant.as_deref()) {
            Ok(t) => self.inner.authenticate_sync(&token, t.as_deref()),
            Err(e) => SyncAuth::Invalid(e.code(), e.to_string()),
        };
        match verdict {
            SyncAuth::User { id, version } => {
                metrics.ok(Flow::Bearer);
                format!("u{version}:{id}")
            }
            SyncAuth::Load { id, iat } => match iat.and_then(|i| i64::try_from(i).ok()) {
                Some(iat) => format!("l{iat}:{id}"),
                None => format!("l:{id}"),
            },
            SyncAuth::Backend => "b".to_string(),
            SyncAuth::Invalid(code, reason) => {
                if let Some(i) = code_index(code) {
                    metrics.outcome(Flow::Bearer, i);
                }
                format!("i{reason}")
            }
        }
    }

    /// Verifies a LibreChat access token (HS256, `JWT_SECRET`, `exp`, `id`): the user id or null.
    #[napi(catch_unwind)]
    pub fn verify_access_token(&self, token: String) -> Option<String> {
        self.inner.verify_access(&token).ok()
    }

    /// The cached user document (relaxed Extended JSON), if cached.
    #[napi(catch_unwind)]
    pub fn cached_user(&self, id: String) -> Option<UserRecord> {
        self.inner.cached_user(&id).map(record)
    }

    /// Loads a user by id as LibreChat's jwt strategy does; null when there is none.
    #[napi]
    pub async fn load_user(
        &self,
        id: String,
        issued_at: Option<i64>,
        tenant: Option<String>,
    ) -> napi::Result<Option<UserRecord>> {
        let iat = issued_at.and_then(|i| u64::try_from(i).ok());
        let loaded = match request_tenant(tenant.as_deref()) {
            Ok(t) => self.inner.load_token_user_bounded(id, iat, t).await,
            Err(e) => Err(e),
        };
        let metrics = &self.inner.metrics;
        match &loaded {
            Ok(Some(_)) => metrics.ok(Flow::Bearer),
            // The strategy answers 401: the token names no user.
            Ok(None) => metrics.error(Flow::Bearer, &crate::shared::error::AuthError::UserNotFound),
            Err(e) => metrics.error(Flow::Bearer, e),
        }
        Ok(loaded?.map(record))
    }

    /// Verifies a backend token (JWKS or user info, cached, single-flight) and returns its user.
    /// `from`: the client's address; tokens from an address a valid one came from keep their
    /// share of the user-info budget when junk tokens spend the rest.
    #[napi]
    pub async fn authenticate_backend_token(
        &self,
        token: String,
        from: Option<String>,
        tenant: Option<String>,
    ) -> napi::Result<UserRecord> {
        let user = match request_tenant(tenant.as_deref()) {
            Ok(t) => {
                self.inner
                    .authenticate_backend(&token, from.as_deref(), t.as_deref())
                    .await
            }
            Err(e) => Err(e),
        };
        self.inner.metrics.result(Flow::Bearer, &user);
        Ok(record(user?))
    }

    /// Refreshes the session a LibreChat refresh token names. `sso`: what the request carries for
    /// single sign-on, when it is on (the portal identity wins over another person's session).
    #[napi]
    pub async fn refresh(
        &self,
        refresh_token: String,
        tenant: Option<String>,
        sso: Option<SsoRequest>,
    ) -> napi::Result<RefreshResult> {
        let tenant = request_tenant(tenant.as_deref())?;
        let tenant = tenant.as_deref();
        let r = match sso {
            None => {
                self.inner
                    .refresh(&refresh_token, tenant, &SsoState::Absent)
                    .await
            }
            Some(sso) => match self
                .inner
                .refresh_with_sso(&refresh_token, tenant, &sso.input())
                .await
            {
                Ok(AfterRefresh::Refreshed(r)) => Ok(r),
                Ok(AfterRefresh::Switched(login, via)) => {
                    self.inner.metrics.ok(Flow::Login);
                    return switched(login, via);
                }
                Err(e) => Err(e),
            },
        };
        match &r {
            // An outage answer is not a refresh: it counts as the backend's failure.
            Ok(Refreshed {
                outage: Some(e), ..
            }) => self.inner.metrics.error(Flow::Refresh, e),
            _ => self.inner.metrics.result(Flow::Refresh, &r),
        }
        let r = r?;
        Ok(RefreshResult {
            user: r.user.to_string(),
            token: r.token,
            refresh_token: r.refresh_token,
            refresh_expires_at: r.refresh_expires_at_ms as f64,
            provider: r.provider.to_string(),
            outage: r.outage.is_some(),
            outage_code: r.outage.as_ref().map(|e| e.code().to_string()),
            session_id: r.session.to_hex(),
            switched_via: None,
        })
    }

    /// Single sign-on on a page load without a LibreChat session: the portal cookie or a trusted
    /// proxy's headers start one, as a login does (docs/single-sign-on.md).
    #[napi]
    pub async fn sso_login(
        &self,
        sso: SsoRequest,
        tenant: Option<String>,
    ) -> napi::Result<SsoLoginResult> {
        let inner = self.inner.clone();
        let tenant = request_tenant(tenant.as_deref())?;
        let found = inner.sso_identity(&sso.input()).await;
        let identity = match found {
            Ok(SsoFound::None) => {
                return Ok(SsoLoginResult {
                    outcome: "none".into(),
                    via: None,
                    login: None,
                })
            }
            Ok(SsoFound::Untrusted) => {
                return Ok(SsoLoginResult {
                    outcome: "untrusted".into(),
                    via: None,
                    login: None,
                })
            }
            Ok(SsoFound::Identity(i)) => i,
            Err(e) => {
                inner.metrics.error(Flow::Login, &e);
                return Err(e.into());
            }
        };
        let outcome = inner.sso_login(&identity, tenant.as_deref()).await;
        inner.metrics.result(Flow::Login, &outcome);
        Ok(SsoLoginResult {
            outcome: "session".into(),
            via: Some(identity.via.name().into()),
            login: Some(login_result(outcome?)?),
        })
    }

    /// A code typed into LibreChat's 2FA screen (`POST /api/auth/2fa/verify-temp`): to the backend
    /// when the temp token is a backend challenge's (docs/second-factor.md).
    #[napi]
    pub async fn verify_challenge(
        &self,
        temp_token: String,
        code: Option<String>,
        backup_code: Option<String>,
        tenant: Option<String>,
    ) -> napi::Result<ChallengeResult> {
        let inner = self.inner.clone();
        let tenant = request_tenant(tenant.as_deref())?;
        let r = inner
            .verify_challenge(
                &temp_token,
                code.as_deref(),
                backup_code.as_deref(),
                tenant.as_deref(),
            )
            .await;
        let outcome = |name: &str| ChallengeResult {
            outcome: name.into(),
            login: None,
        };
        match r {
            Ok(VerifyOutcome::NotOurs) => Ok(outcome("not_ours")),
            Ok(VerifyOutcome::WrongCode) => Ok(outcome("wrong_code")),
            Ok(VerifyOutcome::Expired) => Ok(outcome("expired")),
            Ok(VerifyOutcome::Exhausted) => Ok(outcome("exhausted")),
            Ok(VerifyOutcome::Session(login)) => {
                inner.metrics.ok(Flow::Login);
                Ok(ChallengeResult {
                    outcome: "session".into(),
                    login: Some(login_result(login)?),
                })
            }
            Err(e) => {
                inner.metrics.error(Flow::Login, &e);
                Err(e.into())
            }
        }
    }

    /// The pause mark a logout leaves for this request's single sign-on credential (an HMAC of
    /// it), or null when it carries none.
    #[napi(catch_unwind)]
    pub fn sso_pause_mark(&self, sso: SsoRequest) -> Option<String> {
        self.inner.sso_pause_mark(&sso.input())
    }

    /// What the shim reads from a request for single sign-on: `{cookie, headers, logoutUrl}`, or
    /// null when it is off.
    #[napi(getter)]
    pub fn sso_settings(&self) -> Option<SsoSettings> {
        let sso = &self.inner.config.sso;
        sso.enabled().then(|| SsoSettings {
            cookie: sso.cookie.clone(),
            headers: sso.header_names(),
            logout_url: sso.logout_url.as_ref().map(|u| u.to_string()),
        })
    }

    /// The user and session a refresh token names, if it is genuine (expired or not); null
    /// otherwise. For the audit of refreshes and logouts: identifiers only.
    #[napi(catch_unwind)]
    pub fn refresh_subject(&self, refresh_token: String) -> Option<RefreshSubject> {
        // Time 0: the expiry is not checked, an expired token still names its session.
        let claims = self
            .inner
            .tokens
            .verify_refresh_at(&refresh_token, 0)
            .ok()?;
        Some(RefreshSubject {
            user_id: claims.id,
            session_id: claims.session_id,
        })
    }

    /// Sets the listener of audit events without a request (docs/security.md, "Audit events"):
    /// called with one JSON string per event, from the event loop, never awaited. The listener does
    /// not keep Node's event loop alive (weak), and events beyond its queue are dropped and
    /// counted.
    #[napi]
    pub fn set_audit_listener(
        &self,
        listener: Function<String, Unknown<'static>>,
    ) -> napi::Result<()> {
        let tsfn = listener
            .build_threadsafe_function()
            .callee_handled::<false>()
            .weak::<true>()
            .max_queue_size::<AUDIT_QUEUE>()
            .build()?;
        self.inner.audit.listen(Box::new(move |json| {
            tsfn.call(json, ThreadsafeFunctionCallMode::NonBlocking) == napi::Status::Ok
        }));
        Ok(())
    }

    /// Audit events dropped so far (no listener, its queue full, Node shutting down).
    #[napi(getter)]
    pub fn audit_events_dropped(&self) -> f64 {
        self.inner.audit.dropped() as f64
    }

    /// Ends the session; resolves `true` when the backend logout call failed (it never fails the
    /// logout).
    #[napi]
    pub async fn logout(
        &self,
        refresh_token: Option<String>,
        user_id: Option<String>,
    ) -> napi::Result<bool> {
        let ended = self
            .inner
            .logout(refresh_token.as_deref(), user_id.as_deref())
            .await;
        self.inner.metrics.result(Flow::Logout, &ended);
        Ok(ended?)
    }

    /// Ends what a login started when the application did not complete it (the admin panel's
    /// admin check refused the user): the session of `refreshToken`, or the pending 2FA login
    /// `pendingId`, at the backend too. Whether the backend was told.
    #[napi]
    pub async fn abandon_login(
        &self,
        user_id: String,
        refresh_token: Option<String>,
        pending_id: Option<String>,
    ) -> napi::Result<bool> {
        Ok(self
            .inner
            .abandon_login(&user_id, refresh_token.as_deref(), pending_id.as_deref())
            .await?)
    }

    /// Counts an outcome the shim decided before any native call (a login refused for its
    /// fields). Only known flows and codes count: anything else is ignored (`false`), so no input
    /// can create a label.
    #[napi(catch_unwind)]
    pub fn count_outcome(&self, flow: String, code: String) -> bool {
        match (Flow::parse(&flow), code_index(&code)) {
            (Some(f), Some(i)) => {
                self.inner.metrics.outcome(f, i);
                true
            }
            _ => false,
        }
    }

    /// The package's own metrics so far (docs/operations.md, "Metrics").
    #[napi(catch_unwind)]
    pub fn metrics(&self) -> MetricsSnapshot {
        let [token, jwks] = self.inner.bearer.flight_joins();
        let user = ("backend_user", self.inner.source_lookups.joins());
        let s = self.inner.metrics.snapshot(&[token, jwks, user]);
        MetricsSnapshot {
            outcomes: s
                .outcomes
                .into_iter()
                .map(|(flow, code, n)| MetricsOutcome {
                    flow: flow.into(),
                    code: code.into(),
                    count: n as f64,
                })
                .collect(),
            bucket_bounds_seconds: crate::shared::metrics::BUCKETS_SECONDS.to_vec(),
            backend_calls: s
                .calls
                .into_iter()
                .map(|c| MetricsBackendCalls {
                    endpoint: c.endpoint.into(),
                    outcome: c.outcome.into(),
                    buckets: c.buckets.into_iter().map(|n| n as f64).collect(),
                    count: c.count as f64,
                    sum_seconds: c.sum_seconds,
                })
                .collect(),
            caches: s
                .caches
                .into_iter()
                .map(|(cache, hits, misses)| MetricsCache {
                    cache: cache.into(),
                    hits: hits as f64,
                    misses: misses as f64,
                })
                .collect(),
            single_flight_joins: s
                .flight_joins
                .into_iter()
                .map(|(flight, joins)| MetricsFlightJoins {
                    flight: flight.into(),
                    joins: joins as f64,
                })
                .collect(),
            refresh_lease_waits: s.lease_waits as f64,
            sso_untrusted_headers: s.sso_untrusted_headers as f64,
            backend_calls_in_flight: s.in_flight as f64,
            backend_breakers: self
                .inner
                .backend
                .breakers()
                .states()
                .into_iter()
                .map(|b| MetricsBreaker {
                    host: b.origin,
                    lane: b.lane.name().into(),
                    state: b.state as u32,
                    openings: b.openings as f64,
                })
                .collect(),
        }
    }

    /// Whether backend events are accepted (`BACKEND_EVENTS_SECRET` is set).
    #[napi(getter)]
    pub fn events_enabled(&self) -> bool {
        self.inner.events_enabled()
    }

    /// Checks a signed backend event (raw body, signature header) and applies it.
    #[napi]
    pub async fn handle_backend_event(
        &self,
        body: Buffer,
        signature: String,
    ) -> napi::Result<EventResult> {
        let body = body.to_vec();
        let o = self.inner.handle_event(&body, &signature).await?;
        Ok(EventResult {
            status: o.status.name().to_string(),
            id: o.event.id,
            event_type: o.event.kind.name().to_string(),
            backend_id: o.event.user,
            user_id: o.user_ids.first().cloned(),
            user_ids: o.user_ids,
            sessions_ended: o.sessions_ended,
        })
    }

    /// Log out everywhere: ends every session of the user, on every server.
    #[napi]
    pub async fn logout_all(&self, user_id: String) -> napi::Result<SessionsEnded> {
        let r = self.inner.logout_all(&user_id).await;
        self.inner.metrics.result(Flow::Logout, &r);
        Ok(ended(r?))
    }

    /// Ends one session of the user.
    #[napi]
    pub async fn end_session(
        &self,
        user_id: String,
        session_id: String,
    ) -> napi::Result<SessionsEnded> {
        Ok(ended(
            self.inner.end_session_of(&user_id, &session_id).await?,
        ))
    }

    /// The user's live sessions, newest first.
    #[napi]
    pub async fn list_sessions(&self, user_id: String) -> napi::Result<Vec<SessionInfo>> {
        let list = self.inner.list_sessions(&user_id).await?;
        Ok(list
            .into_iter()
            .map(|s| SessionInfo {
                id: s.id.to_hex(),
                created_at: s.created_at_ms as f64,
                last_refreshed_at: s.last_refreshed_at_ms.map(|t| t as f64),
                expires_at: s.expires_at_ms as f64,
                backend_tokens: s.backend_tokens,
            })
            .collect())
    }

    /// Forgets a cached user (after a change made elsewhere).
    #[napi]
    pub fn evict_user(&self, id: String) {
        self.inner.evict_user(&id);
    }

    /// Closes the database connections.
    #[napi]
    pub async fn close(&self) -> napi::Result<()> {
        self.inner.close().await;
        Ok(())
    }

    /// `npx librechat-custom-backend-auth doctor`: validates the configuration (environment-variable
    /// names → values), shows it with secrets redacted, and checks the backend URLs (no credentials
    /// sent) and the database and its indexes. Static: needs no service (the configuration may be
    /// invalid).
    #[napi]
    pub async fn doctor(vars: HashMap<String, String>) -> napi::Result<DoctorReport> {
        let (config, findings) = crate::doctor::diagnose(&vars).await;
        Ok(DoctorReport {
            config: config
                .into_iter()
                .map(|(name, value)| DoctorConfigLine { name, value })
                .collect(),
            findings: findings
                .into_iter()
                .map(|f| DoctorFinding {
                    level: f.level.to_string(),
                    check: f.check,
                    detail: f.detail,
                })
                .collect(),
        })
    }
}
