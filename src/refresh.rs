//! Refresh and logout: sessions that follow the backend, rotated under a lease kept in the session
//! document itself, so that concurrent refreshes on any number of servers make one backend call.

use std::sync::Arc;
use std::time::Duration;

use mongodb::bson::{oid::ObjectId, DateTime, Document};

use crate::backend::{BackendTokens, BackendUser};
use crate::bearer::token_key;
use crate::config::SessionMode;
use crate::error::{AuthError, AuthResult};
use crate::service::{Db, Service};
use crate::sessions::{sha256_hex, StoredSession};
use crate::users::{Profile, PROVIDER};

/// How often a refresh waiting for another server's refresh of the same session looks again.
const REFRESH_POLL: Duration = Duration::from_millis(50);

/// A refreshed session.
pub struct Refreshed {
    pub user: Arc<str>,
    pub token: String,
    pub refresh_token: String,
    pub refresh_expires_at_ms: i64,
    /// `token_provider` cookie value: ours, or `librechat` for a local account's session.
    pub provider: &'static str,
}

fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 2)
}

impl Service {
    /// `POST /api/auth/refresh`: verifies the LibreChat refresh token, consults the backend (one
    /// call per session even under concurrent refreshes on several servers), rotates, re-syncs.
    pub async fn refresh(&self, refresh_token: &str) -> AuthResult<Refreshed> {
        let claims = self
            .tokens
            .verify_refresh(refresh_token)
            .map_err(|e| match e {
                AuthError::TokenExpired => {
                    AuthError::SessionInvalid("Refresh token expired".into())
                }
                _ => AuthError::SessionInvalid("Invalid refresh token".into()),
            })?;
        let sid = ObjectId::parse_str(&claims.session_id)
            .map_err(|_| AuthError::SessionInvalid("Invalid refresh token".into()))?;
        let hash = sha256_hex(refresh_token);
        let db = self.db().await?;
        let owner = ObjectId::new().to_hex();
        let lease_ms = duration_ms(self.config.backend_timeout * 3 + Duration::from_secs(5));
        let give_up = DateTime::now().timestamp_millis() + lease_ms;
        loop {
            let now = DateTime::now().timestamp_millis();
            let Some(s) = db.sessions.find(sid).await? else {
                return Err(AuthError::SessionInvalid("Session not found".into()));
            };
            if s.user.to_hex() != claims.id {
                return Err(AuthError::SessionInvalid("Invalid refresh token".into()));
            }
            if s.expiration_ms <= now {
                db.sessions.delete(sid).await?;
                return Err(AuthError::SessionInvalid("Session expired".into()));
            }
            if s.hash == hash {
                if db.sessions.try_lock(&s, &owner, lease_ms).await? {
                    return self.rotate(db, &s, &owner).await;
                }
                // Another request (here or on another server) is refreshing this session.
                if now > give_up {
                    return Err(AuthError::BackendUnavailable(
                        "refresh still in progress".into(),
                    ));
                }
                tokio::time::sleep(REFRESH_POLL).await;
                continue;
            }
            let within_grace = s.prev_hash.as_deref() == Some(hash.as_str())
                && s.rotated_at_ms.is_some_and(|t| {
                    now.saturating_sub(t) <= duration_ms(self.config.refresh_grace)
                });
            if within_grace {
                if let Some(next) = db.sessions.next_token(&s)? {
                    return self.refreshed_answer(db, &s, next).await;
                }
            }
            // A rotated-away token replayed after the grace window: treat as theft.
            db.sessions.delete(sid).await?;
            self.evict_user(&s.user.to_hex());
            return Err(AuthError::SessionInvalid(
                "Refresh token reuse detected; the session was ended".into(),
            ));
        }
    }

    /// Holding the lease: backend refresh, user re-sync, rotation.
    async fn rotate(&self, db: &Db, s: &StoredSession, owner: &str) -> AuthResult<Refreshed> {
        let outcome = self.refresh_with_backend(db, s).await;
        let (user, backend) = match outcome {
            Ok(v) => v,
            Err(e @ AuthError::SessionInvalid(_)) => {
                db.sessions.delete(s.id).await?;
                self.evict_user(&s.user.to_hex());
                return Err(e);
            }
            Err(e) => {
                // Backend down or slow: keep the session so the user can retry (503, not 504:
                // the client treats both alike and a retry is the remedy).
                db.sessions.unlock(s, owner).await?;
                return Err(match e {
                    AuthError::BackendTimeout => {
                        AuthError::BackendUnavailable("refresh timed out".into())
                    }
                    e => e,
                });
            }
        };
        let Some(next) = db
            .sessions
            .rotate(&self.tokens, s, owner, backend.as_ref().map(|(t, _)| t))
            .await?
        else {
            return Err(AuthError::BackendUnavailable(
                "refresh lease expired".into(),
            ));
        };
        self.refreshed_answer_for(s, user, next, backend)
    }

    /// Consults the backend for a session: `SessionInvalid` when it says no.
    async fn refresh_with_backend(
        &self,
        db: &Db,
        s: &StoredSession,
    ) -> AuthResult<(Document, Option<(BackendTokens, Option<BackendUser>)>)> {
        let ended = || AuthError::SessionInvalid("The backend ended the session".into());
        let stored = match db.sessions.backend_tokens(s)? {
            Some(t) => t,
            None => {
                let user = db
                    .users
                    .find_public(s.user)
                    .await?
                    .ok_or_else(|| AuthError::SessionInvalid("User not found".into()))?;
                match self.adopt_two_factor_login(db, s, &user).await? {
                    Some(t) => t,
                    // A session of another provider (a local LibreChat account), or one LibreChat
                    // made without our login: LibreChat's own refresh.
                    None => return Ok((user, None)),
                }
            }
        };
        let (tokens, answer_user) = match &stored.refresh_token {
            Some(rt) => match self.backend.refresh(rt).await? {
                None => return Err(ended()),
                Some(a) => {
                    let mut tokens = a.tokens;
                    // A backend that does not rotate keeps the old refresh token valid.
                    tokens.refresh_token = tokens.refresh_token.or_else(|| Some(rt.clone()));
                    (tokens, a.user)
                }
            },
            // No backend refresh token: the stored access token must still be accepted.
            None => (stored.clone(), None),
        };
        let identity = match answer_user {
            Some(u) => u,
            None => self
                .backend
                .userinfo(&tokens.access_token)
                .await?
                .ok_or_else(ended)?,
        };
        // A user who lost a required role (or whose domain is no longer allowed) is logged out.
        self.config
            .policy
            .admit(&identity)
            .map_err(|e| AuthError::SessionInvalid(e.to_string()))?;
        let user = db
            .users
            .sync(&Profile::from_backend(&identity, &self.config.policy))
            .await?;
        if user.get_object_id("_id").ok() != Some(s.user) {
            return Err(AuthError::SessionInvalid(
                "The backend user no longer matches this session".into(),
            ));
        }
        Ok((user, Some((tokens, Some(identity)))))
    }

    /// A session LibreChat's 2FA step created after our login answered `twoFAPending`: it takes
    /// over the backend tokens that login left, so from now on it follows the backend.
    async fn adopt_two_factor_login(
        &self,
        db: &Db,
        s: &StoredSession,
        user: &Document,
    ) -> AuthResult<Option<BackendTokens>> {
        if user.get_str("provider") != Ok(PROVIDER) {
            return Ok(None);
        }
        let Some((pending, tokens)) = db.sessions.claim_pending(s).await? else {
            return Ok(None);
        };
        db.sessions.adopt_pending(s, pending, &tokens).await?;
        Ok(Some(tokens))
    }

    fn refreshed_answer_for(
        &self,
        s: &StoredSession,
        user: Document,
        refresh_token: String,
        backend: Option<(BackendTokens, Option<BackendUser>)>,
    ) -> AuthResult<Refreshed> {
        let token = match &backend {
            Some((tokens, identity)) => {
                self.session_token(&user, s.user, tokens, identity.as_ref())?
            }
            None => self.access_token_for(&user, s.user)?,
        };
        let provider = if backend.is_some() || user.get_str("provider") == Ok(PROVIDER) {
            PROVIDER
        } else {
            "librechat"
        };
        let cached = self.cache_user(&user)?;
        Ok(Refreshed {
            user: cached.json,
            token,
            refresh_token,
            refresh_expires_at_ms: s.expiration_ms,
            provider,
        })
    }

    /// A concurrent refresh that lost the race: the winner's refresh token, a fresh access token
    /// (in backend mode the backend access token the winner stored).
    async fn refreshed_answer(
        &self,
        db: &Db,
        s: &StoredSession,
        refresh_token: String,
    ) -> AuthResult<Refreshed> {
        let user = db
            .users
            .find_public(s.user)
            .await?
            .ok_or_else(|| AuthError::SessionInvalid("User not found".into()))?;
        let backend = match self.config.session_mode {
            SessionMode::Backend => db.sessions.backend_tokens(s)?.map(|t| (t, None)),
            SessionMode::LibreChat => None,
        };
        self.refreshed_answer_for(s, user, refresh_token, backend)
    }

    /// `POST /api/auth/logout`: ends the session the refresh token names (if it is this user's),
    /// tells the backend (best effort) and forgets cached entries. Returns whether the backend
    /// logout failed (for logging), never an error for it.
    pub async fn logout(
        &self,
        refresh_token: Option<&str>,
        user_id: Option<&str>,
    ) -> AuthResult<bool> {
        if let Some(id) = user_id {
            self.evict_user(id);
        }
        let Some(claims) = refresh_token.and_then(|t| self.tokens.verify_refresh(t).ok()) else {
            return Ok(false);
        };
        if user_id.is_some_and(|id| id != claims.id) {
            return Ok(false);
        }
        let Ok(sid) = ObjectId::parse_str(&claims.session_id) else {
            return Ok(false);
        };
        let db = self.db().await?;
        let Some(s) = db.sessions.find(sid).await? else {
            return Ok(false);
        };
        let hash = refresh_token.map(sha256_hex).unwrap_or_default();
        if s.hash != hash && s.prev_hash.as_deref() != Some(hash.as_str()) {
            return Ok(false);
        }
        db.sessions.delete(sid).await?;
        self.evict_user(&s.user.to_hex());
        let tokens = match db.sessions.backend_tokens(&s) {
            Ok(Some(t)) => t,
            Ok(None) => match db.sessions.claim_pending(&s).await {
                // A 2FA session logged out before its first refresh: end the backend's side too.
                Ok(Some((pending, t))) => {
                    // Best effort: an unclaimed record also ends at its TTL.
                    let _ = db.sessions.drop_pending(pending).await;
                    t
                }
                _ => return Ok(false),
            },
            Err(_) => return Ok(false),
        };
        self.bearer.forget(&token_key(&tokens.access_token));
        let Some(url) = &self.config.logout_url else {
            return Ok(false);
        };
        Ok(self
            .backend
            .logout(url, &tokens.access_token, tokens.refresh_token.as_deref())
            .await
            .is_err())
    }
}
