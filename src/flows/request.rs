//! Every request: a bearer token checked synchronously from memory where it can be (a LibreChat
//! access token, or a backend token whose verdict is cached), else with the database and the
//! backend (JWKS, user info or introspection), and mapped to the user document LibreChat expects.

use std::sync::Arc;

use mongodb::bson::oid::ObjectId;

use crate::backend::bearer::token_key;
use crate::backend::claims::Verdict;
use crate::config::{BearerMode, SessionMode};
use crate::flows::login::user_tenant;
use crate::flows::service::{source_key, CachedUser, Service};
use crate::shared::error::{AuthError, AuthResult};
use crate::shared::metrics::Cache;
use crate::store::revocation::now_ms;
use crate::store::users::Profile;
use crate::tokens::librechat::{classify, issued_at, AccessCheck, TokenClass};

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

/// A LibreChat token of one tenant's user on a request of another tenant.
fn wrong_tenant() -> AuthError {
    AuthError::TenantMismatch("this token belongs to another tenant".into())
}

/// A token issued before a revocation of its user (docs/logout-events-revocation.md, "Revocation").
fn revoked() -> AuthError {
    AuthError::TokenInvalid("token revoked".into())
}

impl Service {
    /// Verifies a LibreChat access token (HS256, `JWT_SECRET`, `exp`, `id`, not revoked): the
    /// user id.
    pub fn verify_access(&self, token: &str) -> AuthResult<String> {
        match self.tokens.check_access(token) {
            AccessCheck::Valid(id, iat) if self.revoked.refuses_ours(&id, iat) => Err(revoked()),
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

    fn user_state(&self, id: String, iat: Option<u64>, tenant: Option<&str>) -> SyncAuth {
        match self.counted_user(&id) {
            Some(c) if !c.in_tenant(tenant) => {
                SyncAuth::Invalid("TENANT_MISMATCH", wrong_tenant().to_string())
            }
            Some(c) => SyncAuth::User {
                id,
                version: c.version,
            },
            None => SyncAuth::Load { id, iat },
        }
    }

    /// The synchronous part of every request: classify, verify a LibreChat token, or answer a
    /// backend token from the caches. No I/O. `tenant`: the request's (docs/tenants.md).
    pub fn authenticate_sync(&self, token: &str, tenant: Option<&str>) -> SyncAuth {
        match self.tokens.check_access(token) {
            AccessCheck::Valid(id, iat) if self.revoked.refuses_ours(&id, iat) => {
                SyncAuth::Invalid("TOKEN_INVALID", revoked().to_string())
            }
            AccessCheck::Valid(id, iat) => self.user_state(id, iat, tenant),
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
                    Some(Verdict::Valid(identity)) => match user_tenant(tenant, &identity) {
                        Err(e) => SyncAuth::Invalid(e.code(), e.to_string()),
                        Ok(t) => self.cached_backend_user(token, &key, &identity.id, t.as_deref()),
                    },
                    None => SyncAuth::Backend,
                }
            }
        }
    }

    /// A verified backend token's user in a tenant, from the caches alone.
    fn cached_backend_user(
        &self,
        token: &str,
        key: &[u8; 32],
        backend_id: &str,
        tenant: Option<&str>,
    ) -> SyncAuth {
        match self.source_ids.get(&source_key(backend_id, tenant)) {
            Some(id) if self.backend_token_revoked(token, &id, None) => {
                SyncAuth::Invalid("TOKEN_INVALID", revoked().to_string())
            }
            // A 2FA user's token needs the slow path's check unless known as a
            // session's; an uncached user is loaded by the slow path, which checks.
            Some(id) => match self.counted_user(&id) {
                Some(c) if !c.two_factor || self.bearer.is_session_token(key) => SyncAuth::User {
                    id,
                    version: c.version,
                },
                _ => SyncAuth::Backend,
            },
            None => SyncAuth::Backend,
        }
    }

    /// `load_token_user` within twice `MONGO_TIMEOUT_MS` (to connect, then to read), else
    /// `DB_UNAVAILABLE`: the driver's own timeouts cover connecting only, so a database that stops
    /// answering on its open connections (a frozen primary) held every such request as long as it
    /// stalled (found by the soak run). The load goes on and fills the cache when it ends.
    pub async fn load_token_user_bounded(
        self: &Arc<Self>,
        id: String,
        iat: Option<u64>,
        tenant: Option<String>,
    ) -> AuthResult<Option<CachedUser>> {
        let this = Arc::clone(self);
        let limit = self.config.db_timeout.saturating_mul(2);
        let load =
            tokio::spawn(async move { this.load_token_user(&id, iat, tenant.as_deref()).await });
        match tokio::time::timeout(limit, load).await {
            Ok(Ok(loaded)) => loaded,
            Ok(Err(_)) => Err(AuthError::Internal("the user load stopped".into())),
            Err(_) => Err(AuthError::DbUnavailable),
        }
    }

    /// `load_user` for a LibreChat access token issued at `iat`: a server that connects to the
    /// database with this request learns only now of revocations made before it started.
    pub async fn load_token_user(
        &self,
        id: &str,
        iat: Option<u64>,
        tenant: Option<&str>,
    ) -> AuthResult<Option<CachedUser>> {
        self.db().await?;
        if self.revoked.refuses_ours(id, iat) {
            return Err(revoked());
        }
        match self.load_user(id).await? {
            Some(u) if !u.in_tenant(tenant) => Err(wrong_tenant()),
            u => Ok(u),
        }
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
    /// `from`: the client's address, when the caller knows it (see `Bearer::verify`).
    /// `tenant`: the request's; the user is the one of that tenant (or of the backend's tenant for
    /// the identity, which must be the same when both are known).
    pub async fn authenticate_backend(
        &self,
        token: &str,
        from: Option<&str>,
        tenant: Option<&str>,
    ) -> AuthResult<CachedUser> {
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
        let identity = match self.bearer.verify(&self.backend, token, from).await? {
            Verdict::Valid(u) => u,
            Verdict::Refused(why) => return Err(AuthError::TokenInvalid(why)),
        };
        self.config.policy.admit(&identity)?;
        let tenant = user_tenant(tenant, &identity)?;
        let source = source_key(&identity.id, tenant.as_deref());
        if let Some(id) = self.source_ids.get(&source) {
            if let Some(u) = self.load_user(&id).await? {
                self.refuse_revoked(token, &u.id, checked_ms)?;
                self.check_second_factor(token, &u).await?;
                return Ok(u);
            }
        }
        let db = self.db().await?;
        let found = self
            .source_lookups
            .run(source.clone(), || async {
                match db
                    .users
                    .find_id_by_source(&identity.id, tenant.as_deref())
                    .await?
                {
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
                        .sync(
                            &Profile::from_backend(&identity, &self.config.policy)
                                .in_tenant(tenant.clone()),
                        )
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
                .insert(source, oid.to_hex(), self.config.user_cache_ttl);
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
}
