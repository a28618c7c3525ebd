//! The flows: login (backend → user sync → session), per-request authentication (LibreChat tokens
//! and backend tokens), refresh and logout. One `Service` per configuration, shared by every
//! request; the MongoDB client is built on first use, inside the async runtime.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, OnceLock, Weak};

use mongodb::bson::{oid::ObjectId, Bson, Document};
use mongodb::options::ClientOptions;
use serde_json::Value;
use tokio::sync::OnceCell;

use crate::audit::{events, Audit, AuditEvent};
use crate::backend::{Backend, BackendTokens, BackendUser, LoginAnswer};
use crate::bearer::{token_key, Bearer, Verdict};
use crate::breaker::Lane;
use crate::cache::{SingleFlight, TtlCache};
use crate::config::{BearerMode, Config, SessionMode};
use crate::error::{AuthError, AuthResult};
use crate::metrics::{Cache, Metrics};
use crate::revocation::{first_valid_second, now_ms, NotBefore, RevocationStore};
use crate::sessions::Sessions;
use crate::tokens::{classify, issued_at, AccessCheck, AccessSubject, TokenClass, Tokens};
use crate::users::{Profile, Users, PROVIDER};

/// Bounds of the login form fields (LibreChat caps passwords at 128; backends may allow more).
pub const MAX_USERNAME_CHARS: usize = 256;
pub const MAX_PASSWORD_CHARS: usize = 1024;

pub(crate) struct Db {
    client: mongodb::Client,
    pub(crate) users: Users,
    pub(crate) sessions: Sessions,
    pub(crate) revocations: RevocationStore,
    pub(crate) events: crate::events::EventStore,
}

/// A user document ready for JS (relaxed Extended JSON), its `_id` hex and its cache version.
#[derive(Clone)]
pub struct CachedUser {
    pub id: Arc<str>,
    pub json: Arc<str>,
    pub version: u32,
    /// `twoFactorEnabled`: backend tokens are accepted only as a session's
    /// (docs/sessions-and-tokens.md, "Every request").
    pub two_factor: bool,
}

pub struct Service {
    pub config: Config,
    pub(crate) backend: Backend,
    pub(crate) tokens: Tokens,
    pub(crate) bearer: Bearer,
    db: OnceCell<Db>,
    /// User documents by `_id` hex, for the per-request hot path.
    users_cache: TtlCache<String, CachedUser>,
    /// LibreChat `_id` hex by backend id, for backend bearer tokens.
    source_ids: TtlCache<String, String>,
    /// The user of a backend id when `source_ids` has none: concurrent requests of one backend
    /// user (every `USER_CACHE_TTL`, all requests in flight miss at once) share one lookup.
    pub(crate) source_lookups: SingleFlight<String, AuthResult<Option<Document>>>,
    versions: AtomicU32,
    /// Backend tokens from refreshes whose answer the database refused to store.
    pub(crate) unsaved: crate::refresh::Unsaved,
    /// The package's own metrics (docs/operations.md, "Metrics").
    pub metrics: Arc<Metrics>,
    /// Revoked users' "not before" times: read on every request, from memory only.
    pub(crate) revoked: NotBefore,
    /// The service itself, for its background poll (which must not keep it alive).
    pub(crate) me: OnceLock<Weak<Service>>,
    closed: AtomicBool,
    /// Audit events without a request, to the shim's listener (docs/security.md, "Audit events").
    pub audit: Audit,
}

/// What the synchronous check of a bearer token decided.
pub enum SyncAuth {
    /// Verified, and the user document is cached at this version.
    User { id: String, version: u32 },
    /// Verified; the user document must be loaded (`load_user`), and the token's `iat` checked
    /// again once the database (and with it every revocation) is known.
    Load { id: String, iat: Option<u64> },
    /// A backend token that needs a backend round trip (`authenticate_backend`).
    Backend,
    /// Refused with this code (a metric's label); the reason is safe to show.
    Invalid(&'static str, String),
}

/// What a login ends in.
pub enum LoginOutcome {
    /// A LibreChat session was started.
    Session {
        user: Document,
        token: String,
        refresh_token: String,
        refresh_expires_at_ms: i64,
        /// The session document's `_id` (an audit reference, not a secret).
        session: ObjectId,
    },
    /// The user has 2FA: LibreChat's second step takes over with the temp token.
    TwoFactorPending { user: Document, temp_token: String },
}

/// The breaker's transitions as audit events: opened, and closed again (half-open is a step).
fn breaker_audit(audit: Audit) -> crate::breaker::Listener {
    Arc::new(
        move |host: &str, lane: Lane, state: crate::breaker::BreakerState| {
            let name = match state {
                crate::breaker::BreakerState::Open => events::BREAKER_OPENED,
                crate::breaker::BreakerState::Closed => events::BREAKER_CLOSED,
                crate::breaker::BreakerState::HalfOpen => return,
            };
            let mut e = AuditEvent::new(name, "ok");
            e.host = Some(host.to_string());
            e.lane = Some(lane.name());
            audit.emit(e);
        },
    )
}

/// A token issued before a revocation of its user (docs/logout-events-revocation.md, "Revocation").
fn revoked() -> AuthError {
    AuthError::TokenInvalid("token revoked".into())
}

/// Reads `email` (LibreChat's form name; it may hold a username) or `username`, and `password`.
pub fn login_fields(body: &Value) -> AuthResult<(String, String)> {
    let field = |name: &str| body.get(name).filter(|v| !v.is_null());
    let username = match field("email").or_else(|| field("username")) {
        None => {
            return Err(AuthError::BadRequest(
                "Username or email is required.".into(),
            ))
        }
        Some(Value::String(s)) => s.trim().to_string(),
        Some(_) => {
            return Err(AuthError::BadRequest(
                "Username or email must be a string.".into(),
            ))
        }
    };
    if username.is_empty() {
        return Err(AuthError::BadRequest(
            "Username or email is required.".into(),
        ));
    }
    if username.chars().count() > MAX_USERNAME_CHARS {
        return Err(AuthError::BadRequest(format!(
            "Username or email must be at most {MAX_USERNAME_CHARS} characters."
        )));
    }
    let password = match field("password") {
        None => return Err(AuthError::BadRequest("Password is required.".into())),
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(AuthError::BadRequest("Password must be a string.".into())),
    };
    if password.trim().is_empty() {
        return Err(AuthError::BadRequest("Password is required.".into()));
    }
    if password.chars().count() > MAX_PASSWORD_CHARS {
        return Err(AuthError::BadRequest(format!(
            "Password must be at most {MAX_PASSWORD_CHARS} characters."
        )));
    }
    Ok((username, password))
}

/// The user as LibreChat hands it out: the document plus `id`, as relaxed Extended JSON, which the
/// shim turns back into ObjectIds and Dates.
pub fn user_ejson(mut user: Document) -> AuthResult<String> {
    let id = user
        .get_object_id("_id")
        .map_err(|_| AuthError::Internal("user without ObjectId".into()))?;
    user.insert("id", id.to_hex());
    serde_json::to_string(&Bson::Document(user).into_relaxed_extjson())
        .map_err(|_| AuthError::Internal("cannot serialise the user".into()))
}

impl Service {
    /// The service, shared, with its handle for the background revocation poll.
    pub fn shared(vars: &HashMap<String, String>) -> AuthResult<Arc<Service>> {
        let service = Arc::new(Service::new(vars)?);
        let _ = service.me.set(Arc::downgrade(&service));
        Ok(service)
    }

    pub fn new(vars: &HashMap<String, String>) -> AuthResult<Service> {
        let config = Config::from_vars(vars)?;
        let metrics = Arc::new(Metrics::default());
        let audit = Audit::default();
        let backend = Backend::new(&config)?.with_metrics(metrics.clone());
        backend
            .breakers()
            .set_listener(breaker_audit(audit.clone()));
        Ok(Service {
            backend,
            metrics,
            audit,
            bearer: Bearer::new(&config),
            users_cache: TtlCache::new(config.cache_max),
            source_ids: TtlCache::new(config.cache_max),
            source_lookups: SingleFlight::new(),
            versions: AtomicU32::new(1),
            unsaved: Default::default(),
            tokens: Tokens::new(
                &config.jwt_secret,
                &config.jwt_refresh_secret,
                config.session_expiry_ms,
            )?,
            config,
            db: OnceCell::new(),
            revoked: NotBefore::default(),
            me: OnceLock::new(),
            closed: AtomicBool::new(false),
        })
    }

    /// Waits, right after a revocation of the user, for the second after it: a token carries its
    /// `iat` in whole seconds, and one issued in the revocation's own second is refused
    /// (`revocation::first_valid_second`). At most a second, and only then.
    pub(crate) async fn after_revocation_second(&self, user: &str) {
        let Some(nb) = self.revoked.get(user) else {
            return;
        };
        let first_ms = first_valid_second(nb).saturating_mul(1000);
        let wait = first_ms.saturating_sub(now_ms());
        if wait > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(
                wait.unsigned_abs().min(1_000),
            ))
            .await;
        }
    }

    /// The database if connected (never connects).
    pub(crate) fn connected_db(&self) -> Option<&Db> {
        self.db.get()
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }

    pub(crate) async fn db(&self) -> AuthResult<&Db> {
        self.db
            .get_or_try_init(|| async {
                // The URI is never echoed: it may hold a password.
                let mut opts = ClientOptions::parse(&self.config.mongo_uri)
                    .await
                    .map_err(|e| match *e.kind {
                        mongodb::error::ErrorKind::DnsResolve { .. } => AuthError::DbUnavailable,
                        _ => AuthError::config(
                            "MONGO_URI",
                            "is not a valid MongoDB connection string",
                        ),
                    })?;
                opts.server_selection_timeout = Some(self.config.db_timeout);
                opts.connect_timeout = Some(self.config.db_timeout);
                opts.app_name = Some("librechat-custom-backend-auth".into());
                let client = mongodb::Client::with_options(opts)?;
                let db = client
                    .default_database()
                    .unwrap_or_else(|| client.database("test"));
                let db = Db {
                    users: Users::new(
                        &db,
                        self.config.balance_enabled,
                        self.config.start_balance,
                        self.config.policy.link_existing,
                    ),
                    sessions: Sessions::new(
                        &db,
                        &self.config.token_encryption_key,
                        self.config.refresh_token_expiry_ms,
                    ),
                    revocations: RevocationStore::new(&db, self.revocation_retention_ms()),
                    events: crate::events::EventStore::new(&db, self.revocation_retention_ms()),
                    client,
                };
                // Revocations still in force are known before any token is accepted from here.
                self.start_revocation_poll(&db).await?;
                Ok(db)
            })
            .await
    }

    /// The backend's user for a fresh login: from the login answer when it carries id and email,
    /// else from user info with the new access token.
    async fn login_user(
        &self,
        answer_user: Option<BackendUser>,
        access: &str,
    ) -> AuthResult<BackendUser> {
        if let Some(u) = answer_user {
            return Ok(u);
        }
        self.backend
            .userinfo(access, Lane::Session)
            .await?
            .ok_or_else(|| {
                AuthError::BackendBadResponse("user info refused the new access token".into())
            })
    }

    pub async fn login(&self, body: &Value) -> AuthResult<LoginOutcome> {
        let (username, password) = login_fields(body)?;
        let answer = self.backend.login(&username, &password).await?;
        let tokens = answer.tokens.clone();
        let backend_id = answer.user.as_ref().map(|u| u.id.clone());
        let outcome = self.start_session(answer).await;
        if outcome.is_err() {
            // The backend issued tokens that no session will hold: end its session too.
            self.abandon_backend_session(tokens, backend_id);
        }
        outcome
    }

    /// After the backend accepted the credentials: user sync, then the session (or 2FA step).
    async fn start_session(&self, answer: LoginAnswer) -> AuthResult<LoginOutcome> {
        let backend_user = self
            .login_user(answer.user, &answer.tokens.access_token)
            .await?;
        self.config.policy.admit(&backend_user)?;
        let profile = Profile::from_backend(&backend_user, &self.config.policy);
        let db = self.db().await?;
        let user = db.users.sync(&profile).await?;
        let user_id = user
            .get_object_id("_id")
            .map_err(|_| AuthError::Internal("user without ObjectId".into()))?;
        if user.get_bool("twoFactorEnabled").unwrap_or(false) {
            // LibreChat's second step creates the session; its first refresh claims these.
            db.sessions.stash_pending(user_id, &answer.tokens).await?;
            return Ok(LoginOutcome::TwoFactorPending {
                temp_token: self.tokens.two_fa_temp_token(&user_id.to_hex())?,
                user,
            });
        }
        let session = db
            .sessions
            .create(&self.tokens, user_id, &answer.tokens)
            .await?;
        self.after_revocation_second(&user_id.to_hex()).await;
        let token = self.session_token(&user, user_id, &answer.tokens, Some(&backend_user))?;
        self.cache_user(&user)?;
        Ok(LoginOutcome::Session {
            user,
            token,
            refresh_token: session.refresh_token,
            refresh_expires_at_ms: session.expires_at_ms,
            session: session.session_id,
        })
    }

    /// Tells `BACKEND_LOGOUT_URL` (when set) about tokens of a login that failed after the backend
    /// issued them. Best effort, in the background, so the error answer does not wait for it; the
    /// call is bounded by `BACKEND_TIMEOUT_MS` like every backend call.
    /// Its end is audited (`backend_session.ended`): it happens after the request was answered.
    fn abandon_backend_session(&self, tokens: BackendTokens, backend_id: Option<String>) {
        let Some(url) = self.config.logout_url.clone() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let backend = self.backend.clone();
        let audit = self.audit.clone();
        runtime.spawn(async move {
            let ended = backend
                .logout(&url, &tokens.access_token, tokens.refresh_token.as_deref())
                .await;
            let outcome = ended.as_ref().map_or_else(AuthError::code, |_| "ok");
            let mut event = AuditEvent::new(events::BACKEND_SESSION_ENDED, outcome);
            event.backend_id = backend_id;
            audit.emit(event);
        });
    }

    /// The `token` the browser gets: a LibreChat access token, or in backend mode the backend's
    /// own access token. A token the backend just issued for a known identity is remembered as
    /// valid, so its first use needs no user-info call.
    pub(crate) fn session_token(
        &self,
        user: &Document,
        id: ObjectId,
        backend: &BackendTokens,
        identity: Option<&BackendUser>,
    ) -> AuthResult<String> {
        if self.config.session_mode == SessionMode::LibreChat {
            return self.access_token_for(user, id);
        }
        if let Some(identity) = identity {
            let exp = backend
                .expires_in_secs
                .map(|s| crate::tokens::now_secs().saturating_add(s));
            self.bearer
                .remember(&backend.access_token, identity.clone(), exp);
            self.source_ids
                .insert(identity.id.clone(), id.to_hex(), self.config.user_cache_ttl);
        }
        Ok(backend.access_token.clone())
    }

    // ----------------------------------------------------------------------------------------
    // Per-request authentication

    /// Puts a user document into the hot-path cache (or only converts it when the cache is off).
    pub(crate) fn cache_user(&self, user: &Document) -> AuthResult<CachedUser> {
        let id = user
            .get_object_id("_id")
            .map_err(|_| AuthError::Internal("user without ObjectId".into()))?
            .to_hex();
        let cached = CachedUser {
            id: Arc::from(id.as_str()),
            json: Arc::from(user_ejson(user.clone())?),
            version: self.versions.fetch_add(1, Ordering::Relaxed),
            two_factor: user.get_bool("twoFactorEnabled").unwrap_or(false),
        };
        self.users_cache
            .insert(id, cached.clone(), self.config.user_cache_ttl);
        Ok(cached)
    }

    pub fn evict_user(&self, id: &str) {
        self.users_cache.remove(&id.to_string());
        self.source_ids.retain(|_, v| v != id);
    }

    pub fn cached_user(&self, id: &str) -> Option<CachedUser> {
        self.users_cache.get(&id.to_string())
    }

    /// Verifies a LibreChat access token (HS256, `JWT_SECRET`, `exp`, `id`, not revoked): the
    /// user id.
    pub fn verify_access(&self, token: &str) -> AuthResult<String> {
        match self.tokens.check_access(token) {
            AccessCheck::Valid(id, iat) if self.revoked.refuses(&id, iat) => Err(revoked()),
            AccessCheck::Valid(id, _) => Ok(id),
            AccessCheck::Invalid(e) => Err(e),
            AccessCheck::NotLibreChat(_) => Err(AuthError::TokenInvalid(
                "not a LibreChat access token".into(),
            )),
        }
    }

    /// Whether a backend token of LibreChat user `id` predates a revocation of that user: a JWT
    /// by its `iat`; an opaque token by when the backend last vouched for it (`checked_ms`: its
    /// cached verdicts are dropped with the revocation, so only a check in flight meanwhile is).
    fn backend_token_revoked(&self, token: &str, id: &str, checked_ms: Option<i64>) -> bool {
        let Some(nb) = self.revoked.get(id) else {
            return false;
        };
        match classify(token) {
            TokenClass::BackendJwt => self.revoked.refuses(id, issued_at(token)),
            _ => checked_ms.is_some_and(|at| at < nb),
        }
    }

    /// `cached_user` on the per-request path, counted as a cache hit or miss.
    fn counted_user(&self, id: &str) -> Option<CachedUser> {
        let cached = self.cached_user(id);
        self.metrics.cache(Cache::User, cached.is_some());
        cached
    }

    fn user_state(&self, id: String, iat: Option<u64>) -> SyncAuth {
        match self.counted_user(&id) {
            Some(c) => SyncAuth::User {
                id,
                version: c.version,
            },
            None => SyncAuth::Load { id, iat },
        }
    }

    /// The synchronous part of every request: classify, verify a LibreChat token, or answer a
    /// backend token from the caches. No I/O.
    pub fn authenticate_sync(&self, token: &str) -> SyncAuth {
        match self.tokens.check_access(token) {
            AccessCheck::Valid(id, iat) if self.revoked.refuses(&id, iat) => {
                SyncAuth::Invalid("TOKEN_INVALID", revoked().to_string())
            }
            AccessCheck::Valid(id, iat) => self.user_state(id, iat),
            AccessCheck::Invalid(e) => SyncAuth::Invalid(e.code(), e.to_string()),
            AccessCheck::NotLibreChat(TokenClass::Garbage) => {
                SyncAuth::Invalid("TOKEN_INVALID", "malformed token".into())
            }
            AccessCheck::NotLibreChat(_) => {
                if self.config.bearer_mode == BearerMode::Off {
                    return SyncAuth::Invalid(
                        "TOKEN_INVALID",
                        "backend tokens are not accepted".into(),
                    );
                }
                let key = token_key(token);
                let verdict = self.bearer.cached(&key);
                self.metrics.cache(Cache::BackendToken, verdict.is_some());
                match verdict.or_else(|| self.bearer.verify_now(token, key)) {
                    Some(Verdict::Refused(why)) => SyncAuth::Invalid("TOKEN_INVALID", why),
                    // The policy holds on the cached path too; the slow path answers its 403.
                    Some(Verdict::Valid(identity))
                        if self.config.policy.admit(&identity).is_err() =>
                    {
                        SyncAuth::Backend
                    }
                    Some(Verdict::Valid(identity)) => match self.source_ids.get(&identity.id) {
                        Some(id) if self.backend_token_revoked(token, &id, None) => {
                            SyncAuth::Invalid("TOKEN_INVALID", revoked().to_string())
                        }
                        // A 2FA user's token needs the slow path's check unless known as a
                        // session's; an uncached user is loaded by the slow path, which checks.
                        Some(id) => match self.counted_user(&id) {
                            Some(c) if !c.two_factor || self.bearer.is_session_token(&key) => {
                                SyncAuth::User {
                                    id,
                                    version: c.version,
                                }
                            }
                            _ => SyncAuth::Backend,
                        },
                        None => SyncAuth::Backend,
                    },
                    None => SyncAuth::Backend,
                }
            }
        }
    }

    /// `load_user` for a LibreChat access token issued at `iat`: a server that connects to the
    /// database with this request learns only now of revocations made before it started.
    pub async fn load_token_user(
        &self,
        id: &str,
        iat: Option<u64>,
    ) -> AuthResult<Option<CachedUser>> {
        self.db().await?;
        if self.revoked.refuses(id, iat) {
            return Err(revoked());
        }
        self.load_user(id).await
    }

    /// Loads a user by `_id` hex (as LibreChat's jwt strategy does) into the cache.
    pub async fn load_user(&self, id: &str) -> AuthResult<Option<CachedUser>> {
        if let Some(c) = self.cached_user(id) {
            return Ok(Some(c));
        }
        let Ok(oid) = ObjectId::parse_str(id) else {
            return Ok(None);
        };
        let db = self.db().await?;
        match db.users.find_public(oid).await? {
            Some(user) => self.cache_user(&user).map(Some),
            None => Ok(None),
        }
    }

    /// A backend token the caches could not answer: verified by JWKS or user info, mapped to the
    /// LibreChat user by provider + `idOnTheSource` (created when provisioning is on).
    pub async fn authenticate_backend(&self, token: &str) -> AuthResult<CachedUser> {
        match classify(token) {
            // Damaged, oversized or with control characters: never sent anywhere.
            TokenClass::Garbage => return Err(AuthError::TokenInvalid("malformed token".into())),
            TokenClass::LibreChat => {
                return Err(AuthError::TokenInvalid(
                    "backend tokens are not accepted".into(),
                ))
            }
            TokenClass::BackendJwt | TokenClass::BackendOpaque => {}
        }
        if self.config.bearer_mode == BearerMode::Off {
            return Err(AuthError::TokenInvalid(
                "backend tokens are not accepted".into(),
            ));
        }
        let checked_ms = now_ms();
        let identity = match self.bearer.verify(&self.backend, token).await? {
            Verdict::Valid(u) => u,
            Verdict::Refused(why) => return Err(AuthError::TokenInvalid(why)),
        };
        self.config.policy.admit(&identity)?;
        if let Some(id) = self.source_ids.get(&identity.id) {
            if let Some(u) = self.load_user(&id).await? {
                self.refuse_revoked(token, &u.id, checked_ms)?;
                self.check_second_factor(token, &u).await?;
                return Ok(u);
            }
        }
        let db = self.db().await?;
        let found = self
            .source_lookups
            .run(identity.id.clone(), || async {
                match db.users.find_id_by_source(&identity.id).await? {
                    Some(oid) => db.users.find_public(oid).await,
                    None => Ok(None),
                }
            })
            .await?;
        let user = match found {
            Some(user) => Some(user),
            None if self.config.provision_on_bearer => {
                if identity.email.is_empty() {
                    return Err(AuthError::TokenInvalid(
                        "the token carries no email to create the account with".into(),
                    ));
                }
                Some(
                    db.users
                        .sync(&Profile::from_backend(&identity, &self.config.policy))
                        .await?,
                )
            }
            None => None,
        };
        let user = user.ok_or_else(|| {
            AuthError::TokenInvalid("no LibreChat account for this backend user".into())
        })?;
        let cached = self.cache_user(&user)?;
        self.refuse_revoked(token, &cached.id, checked_ms)?;
        if let Ok(oid) = user.get_object_id("_id") {
            self.source_ids
                .insert(identity.id, oid.to_hex(), self.config.user_cache_ttl);
        }
        self.check_second_factor(token, &cached).await?;
        Ok(cached)
    }

    /// `backend_token_revoked` as an error; a refused token's cached verdict is forgotten.
    fn refuse_revoked(&self, token: &str, id: &str, checked_ms: i64) -> AuthResult<()> {
        if self.backend_token_revoked(token, id, Some(checked_ms)) {
            self.bearer.forget(&token_key(token));
            return Err(revoked());
        }
        Ok(())
    }

    /// A user with LibreChat's 2FA is never authenticated by a backend token obtained with the
    /// password alone: only the access token of a LibreChat session (which passed the second step,
    /// or was started before 2FA was enabled) is accepted, and only in backend session mode, the
    /// one mode in which a browser holds such a token.
    async fn check_second_factor(&self, token: &str, user: &CachedUser) -> AuthResult<()> {
        if !user.two_factor {
            return Ok(());
        }
        if self.config.session_mode == SessionMode::Backend {
            if self.bearer.is_session_token(&token_key(token)) {
                return Ok(());
            }
            let oid = ObjectId::parse_str(&*user.id)
                .map_err(|_| AuthError::Internal("user without ObjectId".into()))?;
            if self
                .db()
                .await?
                .sessions
                .holds_access_token(oid, token)
                .await?
            {
                self.bearer.remember_session_token(token);
                return Ok(());
            }
        }
        Err(AuthError::TwoFactorRequired)
    }

    pub(crate) fn access_token_for(&self, user: &Document, id: ObjectId) -> AuthResult<String> {
        self.access_token_until(user, id, None)
    }

    /// `access_token_for`, expiring at `exp` (seconds) when given.
    pub(crate) fn access_token_until(
        &self,
        user: &Document,
        id: ObjectId,
        exp: Option<u64>,
    ) -> AuthResult<String> {
        let subject = AccessSubject {
            id: &id.to_hex(),
            username: user.get_str("username").unwrap_or_default(),
            provider: user.get_str("provider").unwrap_or(PROVIDER),
            email: user.get_str("email").unwrap_or_default(),
        };
        let now = crate::tokens::now_secs();
        let exp = exp.unwrap_or_else(|| now.saturating_add(self.tokens.session_expiry_secs()));
        self.tokens.access_token_issued(&subject, now, exp)
    }

    pub async fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
        if let Some(db) = self.db.get() {
            db.client.clone().shutdown().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn code(r: AuthResult<(String, String)>) -> &'static str {
        r.err().map(|e| e.code()).unwrap_or("OK")
    }

    #[test]
    fn login_fields_are_validated() {
        assert_eq!(
            login_fields(&json!({"email":" Alice ","password":"pw"})).unwrap(),
            ("Alice".to_string(), "pw".to_string())
        );
        assert_eq!(
            code(login_fields(&json!({"username":"a","password":"pw"}))),
            "OK"
        );
        assert_eq!(code(login_fields(&json!({"password":"pw"}))), "BAD_REQUEST");
        assert_eq!(
            code(login_fields(&json!({"email":"  ","password":"pw"}))),
            "BAD_REQUEST"
        );
        assert_eq!(
            code(login_fields(&json!({"email":"a","password":"   "}))),
            "BAD_REQUEST"
        );
        assert_eq!(
            code(login_fields(&json!({"email":["a"],"password":"pw"}))),
            "BAD_REQUEST"
        );
        assert_eq!(
            code(login_fields(&json!({"email":"a","password":123}))),
            "BAD_REQUEST"
        );
        let long = "x".repeat(MAX_USERNAME_CHARS + 1);
        assert_eq!(
            code(login_fields(&json!({"email":long,"password":"pw"}))),
            "BAD_REQUEST"
        );
        let long = "x".repeat(MAX_PASSWORD_CHARS + 1);
        assert_eq!(
            code(login_fields(&json!({"email":"a","password":long}))),
            "BAD_REQUEST"
        );
        assert_eq!(code(login_fields(&json!("not an object"))), "BAD_REQUEST");
    }

    #[test]
    fn user_ejson_adds_id_and_keeps_types() {
        let id = ObjectId::new();
        let s = user_ejson(
            mongodb::bson::doc! {"_id": id, "createdAt": mongodb::bson::DateTime::now()},
        )
        .unwrap();
        let v: Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v["id"], id.to_hex());
        assert_eq!(v["_id"]["$oid"], id.to_hex());
        assert!(v["createdAt"]["$date"].is_string());
    }
}
