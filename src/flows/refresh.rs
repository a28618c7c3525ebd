//! Refresh and logout: sessions that follow the backend, rotated under a lease kept in the session
//! document itself, so that concurrent refreshes on any number of servers make one backend call.
//!
//! The backend's refresh token is single-use at most backends: once the backend answered a refresh,
//! only the new tokens keep the session alive. They are therefore written to the session document
//! at once, on their own, conditional on the session still holding the tokens they replace; every
//! later step (user info, user sync, rotation of the LibreChat token) may fail and be retried with
//! them. Whoever deletes a session does so conditionally on the backend tokens it read, so that it
//! knows which backend tokens died with it and can end them at the backend.

use std::sync::Arc;
use std::time::{Duration, Instant};

use mongodb::bson::{oid::ObjectId, DateTime, Document};

use crate::backend::bearer::token_key;
use crate::backend::breaker::Lane;
use crate::config::SessionMode;
use crate::flows::login::user_tenant;
use crate::flows::service::{Db, Service};
use crate::identity::PROVIDER;
use crate::identity::{BackendTokens, BackendUser, SsoIdentity};
use crate::shared::error::{AuthError, AuthResult};
use crate::store::refresh_rules;
use crate::store::sessions::{sha256_hex, Lease, Stash, StoredSession};
use crate::store::users::{matches_profile, Profile};

/// How often a refresh waiting for another server's refresh of the same session looks again.
const REFRESH_POLL: Duration = Duration::from_millis(50);
/// What the refresh lease gives its holder beyond the backend call's own bound
/// (`BACKEND_TIMEOUT_MS`): time to store the backend's answer. Past the lease, another request
/// may take over; once the answer is stored that is harmless (it refreshes with the new tokens).
const LEASE_SLACK: Duration = Duration::from_secs(5);
/// How often, and for how long, backend tokens the database refused are tried again.
const UNSAVED_RETRY: Duration = Duration::from_millis(500);
const UNSAVED_RETRY_FOR: Duration = Duration::from_secs(120);
/// Conditional deletes retried when a concurrent refresh changed the session meanwhile.
const END_ATTEMPTS: usize = 5;

/// A refreshed session.
pub struct Refreshed {
    pub user: Arc<str>,
    pub token: String,
    pub refresh_token: String,
    pub refresh_expires_at_ms: i64,
    /// `token_provider` cookie value: ours, or `librechat` for a local account's session.
    pub provider: &'static str,
    /// Answered during a backend outage without a backend refresh (`outage_answer`):
    /// `refresh_token` is the one presented, unchanged, and the cookies need not be set again.
    /// The backend's failure it answered in place of (counted as the refresh's outcome).
    pub outage: Option<AuthError>,
    /// The session document's `_id` (an audit reference, not a secret).
    pub session: ObjectId,
}

/// The single sign-on state a refresh goes on with (docs/single-sign-on.md).
pub enum SsoState {
    /// No usable credential: a session single sign-on started ends.
    Absent,
    Present(SsoIdentity),
    /// It could not be checked now (backend or portal down): nothing ends, nothing starts.
    Unknown(AuthError),
}

fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 2)
}

/// The logout's database failures answer 503: nothing was ended, the client may simply retry.
fn retryable(e: AuthError) -> AuthError {
    match e {
        AuthError::DbError => AuthError::DbUnavailable,
        e => e,
    }
}

impl Service {
    /// How long a refresh lease lasts, and so the longest a refresh waits for another one.
    fn lease_ms(&self) -> i64 {
        duration_ms(self.config.backend_timeout + LEASE_SLACK)
    }

    /// `POST /api/auth/refresh`: verifies the LibreChat refresh token, consults the backend (one
    /// call per session even under concurrent refreshes on several servers), rotates, re-syncs.
    /// `tenant`: the request's; a session of another tenant is refused and left as it is. `sso`:
    /// the request's single sign-on state (docs/single-sign-on.md), for a session it started.
    pub async fn refresh(
        &self,
        refresh_token: &str,
        tenant: Option<&str>,
        sso: &SsoState,
    ) -> AuthResult<Refreshed> {
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
        let lease_ms = self.lease_ms();
        let grace_ms = duration_ms(self.config.refresh_grace);
        // A lease is taken over once this request has watched it for `lease_ms` (below), so a
        // refresh waits at most that, and a second to take it.
        let give_up = DateTime::now().timestamp_millis() + lease_ms + 1_000;
        // Counted once per refresh that had to wait for another's lease.
        let mut waited = false;
        // The lease another request holds, and since when this one has seen it, by this server's
        // clock: once that is a whole lease, it is taken over whatever the holder's clock says.
        let mut watched: Option<(Lease, Instant)> = None;
        loop {
            let now = DateTime::now().timestamp_millis();
            let Some(s) = db.sessions.find(sid).await? else {
                return Err(AuthError::SessionInvalid("Session not found".into()));
            };
            if s.user.to_hex() != claims.id {
                return Err(AuthError::SessionInvalid("Invalid refresh token".into()));
            }
            if tenant.is_some() && s.tenant.as_deref() != tenant {
                return Err(AuthError::TenantMismatch(
                    "this session belongs to another tenant".into(),
                ));
            }
            if s.expiration_ms <= now {
                db.sessions.delete(sid).await?;
                return Err(AuthError::SessionInvalid("Session expired".into()));
            }
            let retried = if s.hash == hash {
                None
            } else {
                let Some(i) = s.generation(&hash) else {
                    return self.reuse(db, s).await;
                };
                let g = &s.generations[i];
                if refresh_rules::within_grace(now, g.at_ms, grace_ms) {
                    // Another tab or server rotated a moment ago: the session's current token,
                    // without a backend call.
                    if let Some(next) = db.sessions.next_token(&s)? {
                        return self.refreshed_answer(db, &s, next).await;
                    }
                }
                // Later, only the last token used may come back, while no newer one was ever
                // used: its answer never reached the client. It is refreshed again and the
                // unused newer token is skipped (it counts as reuse if it shows up after all).
                if !refresh_rules::lost_answer(&s.generations, i) {
                    return self.reuse(db, s).await;
                }
                Some(i)
            };
            if db.sessions.try_lock(&s, &owner, lease_ms).await? {
                return self
                    .locked(db, &s, &owner, retried, refresh_token, sso)
                    .await;
            }
            match (&watched, &s.lease) {
                (Some((seen, at)), Some(held)) if seen == held => {
                    if at.elapsed() >= Duration::from_millis(lease_ms.unsigned_abs())
                        && db.sessions.take_over(&s, held, &owner, lease_ms).await?
                    {
                        return self
                            .locked(db, &s, &owner, retried, refresh_token, sso)
                            .await;
                    }
                }
                (_, held) => watched = held.clone().map(|l| (l, Instant::now())),
            }
            // Another request (here or on another server) is refreshing this session.
            if !waited {
                waited = true;
                self.metrics.lease_wait();
            }
            if now > give_up {
                return Err(AuthError::BackendUnavailable(
                    "refresh still in progress".into(),
                ));
            }
            tokio::time::sleep(REFRESH_POLL).await;
        }
    }

    /// Backend tokens the database refused to store are written as soon as it answers again
    /// (every `UNSAVED_RETRY`, for `UNSAVED_RETRY_FOR`), and the lease released: until then only
    /// this server knows the live backend refresh token, and another server refreshing with the
    /// stored, spent one ends the session at a backend that detects reuse (found by the soak run).
    fn store_unsaved_later(
        &self,
        db: &Db,
        s: &StoredSession,
        version: Option<String>,
        tokens: BackendTokens,
        owner: &str,
    ) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (sessions, unsaved) = (db.sessions.clone(), Arc::clone(&self.unsaved));
        let (s, owner) = (s.clone(), owner.to_string());
        runtime.spawn(async move {
            let started = Instant::now();
            while started.elapsed() < UNSAVED_RETRY_FOR {
                tokio::time::sleep(UNSAVED_RETRY).await;
                // A retry on this server used them meanwhile (and stored what came of it).
                if unsaved.get(s.id, version.as_deref()).is_none() {
                    return;
                }
                match sessions
                    .stash_backend(&s, version.as_deref(), &tokens)
                    .await
                {
                    Ok(Stash::Stored(_)) => {
                        unsaved.forget(s.id);
                        let _ = sessions.unlock(&s, &owner).await;
                        return;
                    }
                    // Ended, or changed by a newer refresh: nothing left to store.
                    Ok(Stash::Gone | Stash::Changed) => {
                        unsaved.forget(s.id);
                        return;
                    }
                    Err(_) => {}
                }
            }
        });
    }

    /// Holding the lease: the rotation of a password or a single sign-on session.
    async fn locked(
        &self,
        db: &Db,
        s: &StoredSession,
        owner: &str,
        retried: Option<usize>,
        refresh_token: &str,
        sso: &SsoState,
    ) -> AuthResult<Refreshed> {
        if s.sso.is_some() {
            return self.rotate_sso(db, s, owner, retried, sso).await;
        }
        self.rotate(db, s, owner, retried, refresh_token).await
    }

    /// A superseded token used when it can no longer be an honest client's: treated as stolen.
    /// The session ends, here and at the backend.
    async fn reuse(&self, db: &Db, s: StoredSession) -> AuthResult<Refreshed> {
        if let Some(ended) = self.end_session(db, s).await? {
            if let Ok(Some(t)) = db.sessions.backend_tokens(&ended) {
                self.backend_logout(&t).await;
            }
        }
        Err(AuthError::RefreshReuse)
    }

    /// Deletes the session as it is when deleted: returns that state (whose backend tokens died
    /// with it), or `None` when someone else ended it first.
    async fn end_session(
        &self,
        db: &Db,
        mut s: StoredSession,
    ) -> AuthResult<Option<StoredSession>> {
        self.evict_user(&s.user.to_hex());
        for _ in 0..END_ATTEMPTS {
            if db
                .sessions
                .delete_at(s.id, s.backend_version().as_deref())
                .await?
            {
                return Ok(Some(s));
            }
            match db.sessions.find(s.id).await? {
                None => return Ok(None),
                Some(again) => s = again,
            }
        }
        // Its backend tokens keep changing under us: end it all the same.
        db.sessions.delete(s.id).await?;
        Ok(Some(s))
    }

    /// Tells the backend (when `BACKEND_LOGOUT_URL` is set) that these tokens are done, and forgets
    /// the cached verdict on the access token. Best effort: `true` when the call failed.
    pub(crate) async fn backend_logout(&self, tokens: &BackendTokens) -> bool {
        self.bearer.forget(&token_key(&tokens.access_token));
        let Some(url) = &self.config.logout_url else {
            return false;
        };
        self.backend
            .logout(url, &tokens.access_token, tokens.refresh_token.as_deref())
            .await
            .is_err()
    }

    /// Gives up for now (backend or database trouble): the session and its stored tokens stay,
    /// the lease is released, the client may retry (503, not 504: the client treats both alike).
    async fn release(&self, db: &Db, s: &StoredSession, owner: &str, e: AuthError) -> AuthError {
        // Unreleased, the lease ends by itself.
        let _ = db.sessions.unlock(s, owner).await;
        match e {
            AuthError::BackendTimeout => AuthError::BackendUnavailable("refresh timed out".into()),
            e => e,
        }
    }

    /// The backend could not answer (down, slow, rate limited, an unusable answer), the lease is
    /// released and the session kept. LibreChat's web client leaves the app for its login page on
    /// any refresh answer without a token (`silentRefresh` in `client/src/hooks/AuthContext.tsx`,
    /// v0.8.8-rc1), which is what a page reload meets. So, in `librechat` session mode, the
    /// browser gets a LibreChat access token again for the session's current refresh token,
    /// without a rotation and expiring no later than the access token issued with that refresh
    /// token (when it was issued, plus `SESSION_EXPIRY`): what a reload lost, never a longer
    /// stay than the backend last granted. Otherwise (past that, a retried superseded token,
    /// backend session mode, no user) the error stands (503).
    async fn outage_answer(
        &self,
        db: &Db,
        s: &StoredSession,
        retried: Option<usize>,
        presented: &str,
        e: AuthError,
    ) -> AuthResult<Refreshed> {
        let outage = matches!(
            e,
            AuthError::BackendUnavailable(_)
                | AuthError::BackendCircuitOpen(_)
                | AuthError::BackendTimeout
                | AuthError::BackendRateLimited
                | AuthError::BackendBadResponse(_)
        );
        if !outage || retried.is_some() || self.config.session_mode != SessionMode::LibreChat {
            return Err(e);
        }
        // When the current refresh token was issued: the last rotation, or the session's creation.
        let issued_ms = s
            .generations
            .iter()
            .map(|g| g.at_ms)
            .chain(std::iter::once(s.id.timestamp().timestamp_millis()))
            .max()
            .unwrap_or(0);
        let session_expiry_ms = i64::try_from(self.config.session_expiry_ms).unwrap_or(i64::MAX);
        let exp_ms = issued_ms.saturating_add(session_expiry_ms);
        let exp = u64::try_from(exp_ms / 1000).unwrap_or(0);
        if exp <= crate::tokens::librechat::now_secs() {
            return Err(e);
        }
        let user = match db.users.find_public(s.user).await {
            Ok(Some(u)) if u.get_str("provider") == Ok(PROVIDER) => u,
            _ => return Err(e),
        };
        self.after_revocation_second(&s.user.to_hex()).await;
        let token = self.access_token_until(&user, s.user, Some(exp))?;
        let cached = self.cache_user(&user)?;
        Ok(Refreshed {
            user: cached.json,
            token,
            refresh_token: presented.to_string(),
            refresh_expires_at_ms: s.expiration_ms,
            provider: PROVIDER,
            outage: Some(e),
            session: s.id,
        })
    }

    /// The backend or the policy refused the session: it ends, if it still holds the backend
    /// tokens `version` this refresh saw; `live` tokens (issued by this refresh) are logged out.
    async fn refuse(
        &self,
        db: &Db,
        s: &StoredSession,
        owner: &str,
        version: Option<&str>,
        live: Option<&BackendTokens>,
        e: AuthError,
    ) -> AuthError {
        match db.sessions.delete_at(s.id, version).await {
            Ok(true) => {
                self.evict_user(&s.user.to_hex());
                if let Some(t) = live {
                    self.backend_logout(t).await;
                }
                e
            }
            Ok(false) => match db.sessions.find(s.id).await {
                Ok(None) => e,
                // Newer backend tokens than the refused ones (a refresh that took over the lease):
                // the session is theirs; try again.
                Ok(Some(_)) => {
                    let e = AuthError::BackendUnavailable("the session changed meanwhile".into());
                    self.release(db, s, owner, e).await
                }
                Err(db_err) => self.release(db, s, owner, db_err).await,
            },
            // Not ended: a retry meets the same refusal and ends it then.
            Err(db_err) => self.release(db, s, owner, db_err).await,
        }
    }

    /// Holding the lease: backend refresh (its answer stored at once), user info, policy, user
    /// re-sync, rotation.
    async fn rotate(
        &self,
        db: &Db,
        s: &StoredSession,
        owner: &str,
        retried: Option<usize>,
        presented: &str,
    ) -> AuthResult<Refreshed> {
        let ended = || AuthError::SessionInvalid("The backend ended the session".into());
        let adopted;
        let (s, stored) = match db.sessions.backend_tokens(s) {
            Ok(Some(t)) => (s, t),
            Err(e) => {
                return Err(self
                    .refuse(db, s, owner, s.backend_version().as_deref(), None, e)
                    .await)
            }
            Ok(None) => {
                let user = match db.users.find_public(s.user).await {
                    Ok(Some(u)) => u,
                    Ok(None) => {
                        let e = AuthError::SessionInvalid("User not found".into());
                        return Err(self.refuse(db, s, owner, None, None, e).await);
                    }
                    Err(e) => return Err(self.release(db, s, owner, e).await),
                };
                match self.adopt_two_factor_login(db, s, &user).await {
                    Ok(Some((again, t))) => {
                        adopted = again;
                        (&adopted, t)
                    }
                    // A user of ours whose session has no backend session, and none to take
                    // over (its 2FA login ended meanwhile, or never was ours): never extended
                    // without the backend.
                    Ok(None) if user.get_str("provider") == Ok(PROVIDER) => {
                        let e = AuthError::SessionInvalid("No backend session to refresh".into());
                        return Err(self.refuse(db, s, owner, None, None, e).await);
                    }
                    // A session of another provider (a local LibreChat account): LibreChat's own
                    // refresh.
                    Ok(None) => return self.finish(db, s, owner, retried, user, None).await,
                    Err(e) => return Err(self.release(db, s, owner, e).await),
                }
            }
        };
        let version = s.backend_version();
        let (tokens, answer_user, version) = match &stored.refresh_token {
            // No backend refresh token: the stored access token must still be accepted.
            None => (stored, None, version),
            Some(stored_rt) => {
                // A refresh here whose answer the database refused: its tokens are the live ones.
                let rt = match self.unsaved.get(s.id, version.as_deref()) {
                    Some(t) => t.refresh_token.unwrap_or_else(|| stored_rt.clone()),
                    None => stored_rt.clone(),
                };
                let answer = match self.backend.refresh(&rt).await {
                    Ok(Some(a)) => a,
                    Ok(None) => {
                        let e = ended();
                        return Err(self.refuse(db, s, owner, version.as_deref(), None, e).await);
                    }
                    Err(e) => {
                        let e = self.release(db, s, owner, e).await;
                        return self.outage_answer(db, s, retried, presented, e).await;
                    }
                };
                let mut tokens = answer.tokens;
                // A backend that does not rotate keeps the old refresh token valid.
                let rotated = tokens.refresh_token.as_ref().is_some_and(|n| *n != rt);
                tokens.refresh_token = tokens.refresh_token.or(Some(rt));
                // The old backend refresh token is dead now: store the new tokens before
                // anything else can fail.
                match db
                    .sessions
                    .stash_backend(s, version.as_deref(), &tokens)
                    .await
                {
                    Ok(Stash::Stored(v)) => {
                        self.unsaved.forget(s.id);
                        (tokens, answer.user, v)
                    }
                    Ok(Stash::Gone) => {
                        // Logged out (or ended) while the backend answered: nobody else knows
                        // these tokens, so end them at the backend.
                        self.backend_logout(&tokens).await;
                        self.evict_user(&s.user.to_hex());
                        return Err(AuthError::SessionInvalid("Session not found".into()));
                    }
                    Ok(Stash::Changed) => {
                        // Another refresh took over the lease and stored newer tokens; ours are
                        // surplus (unless the backend does not rotate: then they are shared).
                        if rotated {
                            self.backend_logout(&tokens).await;
                        }
                        let e = AuthError::BackendUnavailable("refresh lease expired".into());
                        return Err(self.release(db, s, owner, e).await);
                    }
                    Err(e) => {
                        self.unsaved.keep(s.id, version.clone(), tokens.clone());
                        self.store_unsaved_later(db, s, version, tokens, owner);
                        return Err(self.release(db, s, owner, e).await);
                    }
                }
            }
        };
        let live = Some(&tokens);
        let identity = match answer_user {
            Some(u) => u,
            None => match self
                .backend
                .userinfo(&tokens.access_token, Lane::Session)
                .await
            {
                Ok(Some(u)) => u,
                Ok(None) => {
                    let e = ended();
                    return Err(self.refuse(db, s, owner, version.as_deref(), live, e).await);
                }
                Err(e) => {
                    let e = self.release(db, s, owner, e).await;
                    return self.outage_answer(db, s, retried, presented, e).await;
                }
            },
        };
        let user = self
            .resync(db, s, owner, &identity, version.as_deref(), live, "backend")
            .await?;
        self.finish(db, s, owner, retried, user, Some((tokens, Some(identity))))
            .await
    }

    /// Holding the lease, a session single sign-on started: its identity must still be on the
    /// request and the same person; then the user is re-synced from it and the token rotated.
    async fn rotate_sso(
        &self,
        db: &Db,
        s: &StoredSession,
        owner: &str,
        retried: Option<usize>,
        sso: &SsoState,
    ) -> AuthResult<Refreshed> {
        let identity = match sso {
            SsoState::Present(i) => &i.user,
            SsoState::Unknown(e) => return Err(self.release(db, s, owner, e.clone()).await),
            SsoState::Absent => {
                let e = AuthError::SessionInvalid("The portal session ended".into());
                return Err(self.refuse(db, s, owner, None, None, e).await);
            }
        };
        let user = self
            .resync(db, s, owner, identity, None, None, "portal")
            .await?;
        self.finish(db, s, owner, retried, user, None).await
    }

    /// Holding the lease: the session's user re-synced from the identity the backend (or the
    /// portal, `who`) vouches for now. A user the policy no longer admits, another person, or one
    /// placed in another tenant ends the session (`refuse`); a database failure releases the lease.
    /// Checked before anything is written: nothing is created or changed for another identity.
    #[allow(clippy::too_many_arguments)]
    async fn resync(
        &self,
        db: &Db,
        s: &StoredSession,
        owner: &str,
        identity: &BackendUser,
        version: Option<&str>,
        live: Option<&BackendTokens>,
        who: &str,
    ) -> AuthResult<Document> {
        let gone =
            || AuthError::SessionInvalid(format!("The {who} user no longer matches this session"));
        if let Err(e) = self.config.policy.admit(identity) {
            let e = AuthError::SessionInvalid(e.to_string());
            return Err(self.refuse(db, s, owner, version, live, e).await);
        }
        let user = match db.users.find_public(s.user).await {
            Ok(u) => u,
            Err(e) => return Err(self.release(db, s, owner, e).await),
        };
        let same = user.as_ref().is_some_and(|u| {
            u.get_str("provider") == Ok(PROVIDER)
                && u.get_str("idOnTheSource") == Ok(identity.id.as_str())
        });
        if !same {
            return Err(self.refuse(db, s, owner, version, live, gone()).await);
        }
        // The user stays in their tenant: an identity now placed in another one ends the session.
        let tenant = user
            .as_ref()
            .and_then(|u| u.get_str("tenantId").ok())
            .map(str::to_string);
        if let Err(e) = user_tenant(tenant.as_deref(), identity) {
            let e = AuthError::SessionInvalid(e.to_string());
            return Err(self.refuse(db, s, owner, version, live, e).await);
        }
        let profile = Profile::from_backend(identity, &self.config.policy).in_tenant(tenant);
        // Nothing changed at the backend: the document stays as it is (no write; #28).
        if let Some(user) = user.filter(|u| matches_profile(u, &profile)) {
            return Ok(user);
        }
        let user = match db.users.sync(&profile).await {
            Ok(u) => u,
            Err(e) => return Err(self.release(db, s, owner, e).await),
        };
        if user.get_object_id("_id").ok() != Some(s.user) {
            return Err(self.refuse(db, s, owner, version, live, gone()).await);
        }
        Ok(user)
    }

    /// Rotates the LibreChat refresh token (releasing the lease) and answers.
    async fn finish(
        &self,
        db: &Db,
        s: &StoredSession,
        owner: &str,
        retried: Option<usize>,
        user: Document,
        backend: Option<(BackendTokens, Option<BackendUser>)>,
    ) -> AuthResult<Refreshed> {
        match db.sessions.rotate(&self.tokens, s, owner, retried).await {
            Ok(Some(next)) => {
                self.after_revocation_second(&s.user.to_hex()).await;
                self.refreshed_answer_for(s, user, next, backend)
            }
            // The backend tokens are stored: a retry goes on from them.
            Err(e) => Err(self.release(db, s, owner, e).await),
            Ok(None) => match db.sessions.find(s.id).await {
                Ok(None) => Err(AuthError::SessionInvalid("Session not found".into())),
                _ => Err(AuthError::BackendUnavailable(
                    "refresh lease expired".into(),
                )),
            },
        }
    }

    /// A session LibreChat's 2FA step created after our login answered `twoFAPending`: it takes
    /// over the backend tokens that login left, so from now on it follows the backend. Returns the
    /// session as it now is, with those tokens.
    async fn adopt_two_factor_login(
        &self,
        db: &Db,
        s: &StoredSession,
        user: &Document,
    ) -> AuthResult<Option<(StoredSession, BackendTokens)>> {
        if user.get_str("provider") != Ok(PROVIDER) {
            return Ok(None);
        }
        let Some((pending, tokens)) = db.sessions.claim_pending(s).await? else {
            return Ok(None);
        };
        db.sessions.adopt_pending(s, pending, &tokens).await?;
        let again = db
            .sessions
            .find(s.id)
            .await?
            .ok_or_else(|| AuthError::SessionInvalid("Session not found".into()))?;
        // A session that had tokens of its own keeps them.
        let tokens = db.sessions.backend_tokens(&again)?.unwrap_or(tokens);
        Ok(Some((again, tokens)))
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
            outage: None,
            session: s.id,
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
        self.after_revocation_second(&s.user.to_hex()).await;
        self.refreshed_answer_for(s, user, refresh_token, backend)
    }

    /// `POST /api/auth/logout`: ends the session the refresh token names (if it is this user's),
    /// then tells the backend (best effort) and forgets cached entries. Returns whether the backend
    /// logout failed (for logging), never an error for it. An error means the session was not
    /// ended (database trouble: 503, retry).
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
        let db = self.db().await.map_err(retryable)?;
        let Some(s) = db.sessions.find(sid).await.map_err(retryable)? else {
            return Ok(false);
        };
        let hash = refresh_token.map(sha256_hex).unwrap_or_default();
        if s.hash != hash && s.generation(&hash).is_none() {
            return Ok(false);
        }
        // Deleted as it is at that moment: a refresh that stored new backend tokens meanwhile
        // makes us delete (and end at the backend) those; one that stores them later finds the
        // session gone and ends them itself.
        let Some(s) = self.end_session(db, s).await.map_err(retryable)? else {
            return Ok(false);
        };
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
        Ok(self.backend_logout(&tokens).await)
    }
}
