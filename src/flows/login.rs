//! Login: the backend checks the credentials, the user is synced into LibreChat's users, and a
//! LibreChat session starts (or LibreChat's 2FA step takes over).

use mongodb::bson::{oid::ObjectId, Document};
use serde_json::Value;

use crate::backend::breaker::Lane;
use crate::backend::client::{LoginAnswer, LoginReply};
use crate::flows::service::Service;
use crate::identity::{agreed_tenant, tenant_id, BackendTokens, BackendUser};
use crate::shared::audit::{events, AuditEvent};
use crate::shared::error::{AuthError, AuthResult};
use crate::store::sessions::NewSession;
use crate::store::users::Profile;

/// Bounds of the login form fields (LibreChat caps passwords at 128; backends may allow more).
pub const MAX_USERNAME_CHARS: usize = 256;
pub const MAX_PASSWORD_CHARS: usize = 1024;

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
    /// The backend asks for its own second factor: LibreChat's 2FA screen takes the code, which
    /// goes to the backend (`verify_challenge`, docs/second-factor.md).
    BackendChallenge {
        temp_token: String,
        /// The challenge's record (what the temp token names).
        record: ObjectId,
    },
    /// The user has 2FA: LibreChat's second step takes over with the temp token.
    TwoFactorPending {
        user: Document,
        temp_token: String,
        /// The pending login's record (its backend tokens wait there for the session).
        pending: ObjectId,
    },
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

/// A request's tenant as it came (LibreChat's tenant context or the trusted `X-Tenant-Id`),
/// checked as LibreChat's `preAuthTenant` checks the header: a 400 when it is not a tenant id.
pub fn request_tenant(raw: Option<&str>) -> AuthResult<Option<String>> {
    tenant_id(raw, "the request's tenant (X-Tenant-Id)").map_err(AuthError::BadRequest)
}

/// The tenant of a backend user reached through a request of tenant `request`: the request's and
/// the backend's (`BACKEND_TENANT_FIELD`) must agree when both are known (docs/tenants.md).
pub fn user_tenant(request: Option<&str>, user: &BackendUser) -> AuthResult<Option<String>> {
    let backend = tenant_id(user.tenant.as_deref(), "the backend's tenant of the user")
        .map_err(AuthError::BackendBadResponse)?;
    agreed_tenant(request, backend.as_deref()).map_err(|m| AuthError::TenantMismatch(m.into()))
}

/// What a canary login found (`doctor --check-login`): nothing was written, no session kept.
pub struct LoginCheck {
    pub backend_id: String,
    pub email: String,
    pub username: String,
    /// The LibreChat role the role mapping gives (`None`: no mapping configured).
    pub role: Option<&'static str>,
    /// The backend session the login opened: ended, the end failed, or no `BACKEND_LOGOUT_URL`.
    pub backend_session_ended: Option<bool>,
}

impl Service {
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

    /// `tenant`: the request's (`request_tenant`).
    pub async fn login(&self, body: &Value, tenant: Option<&str>) -> AuthResult<LoginOutcome> {
        let (username, password) = login_fields(body)?;
        match self.backend.login(&username, &password).await? {
            LoginReply::Tokens(answer) => self.open_session(*answer, tenant, false).await,
            LoginReply::Challenge(c) => self.challenge(c, tenant).await,
        }
    }

    /// After the backend accepted a login (`second_factor`: and its own second factor): the
    /// session, or the failure, with the backend's session ended then.
    pub(crate) async fn open_session(
        &self,
        answer: LoginAnswer,
        tenant: Option<&str>,
        second_factor: bool,
    ) -> AuthResult<LoginOutcome> {
        let tokens = answer.tokens.clone();
        let backend_id = answer.user.as_ref().map(|u| u.id.clone());
        let outcome = self.start_session(answer, tenant, second_factor).await;
        if outcome.is_err() {
            // The backend issued tokens that no session will hold: end its session too.
            self.abandon_backend_session(tokens, backend_id);
        }
        outcome
    }

    /// A login as far as the backend and this configuration go (the backend's answer, the user it
    /// maps to, the role and domain policy), with no user written and no LibreChat session; the
    /// backend session it opened is ended at once where `BACKEND_LOGOUT_URL` allows.
    pub async fn check_login(&self, body: &Value) -> AuthResult<LoginCheck> {
        let (username, password) = login_fields(body)?;
        let answer = match self.backend.login(&username, &password).await? {
            LoginReply::Tokens(answer) => *answer,
            // The credentials are right; the canary cannot answer the second factor.
            LoginReply::Challenge(_) => return Err(AuthError::TwoFactorRequired),
        };
        let tokens = answer.tokens.clone();
        let checked = match self.login_user(answer.user, &tokens.access_token).await {
            Ok(user) => self.config.policy.admit(&user).map(|()| user),
            Err(e) => Err(e),
        };
        let end_failed = self.backend_logout(&tokens).await;
        let backend_session_ended = self.config.logout_url.is_some().then_some(!end_failed);
        let user = checked?;
        let profile = Profile::from_backend(&user, &self.config.policy);
        Ok(LoginCheck {
            backend_id: user.id,
            email: profile.email,
            username: profile.username,
            role: profile.role,
            backend_session_ended,
        })
    }

    /// After the backend accepted the credentials: user sync, then the session (or LibreChat's 2FA
    /// step, unless the backend's own second factor was passed: it counts as that step).
    async fn start_session(
        &self,
        answer: LoginAnswer,
        tenant: Option<&str>,
        second_factor: bool,
    ) -> AuthResult<LoginOutcome> {
        let backend_user = self
            .login_user(answer.user, &answer.tokens.access_token)
            .await?;
        self.config.policy.admit(&backend_user)?;
        let tenant = user_tenant(tenant, &backend_user)?;
        let profile =
            Profile::from_backend(&backend_user, &self.config.policy).in_tenant(tenant.clone());
        let db = self.db().await?;
        let user = db.users.sync(&profile).await?;
        let user_id = user
            .get_object_id("_id")
            .map_err(|_| AuthError::Internal("user without ObjectId".into()))?;
        if !second_factor && user.get_bool("twoFactorEnabled").unwrap_or(false) {
            // LibreChat's second step creates the session; its first refresh claims these.
            let pending = db.sessions.stash_pending(user_id, &answer.tokens).await?;
            return Ok(LoginOutcome::TwoFactorPending {
                temp_token: self.tokens.two_fa_temp_token(&user_id.to_hex())?,
                user,
                pending,
            });
        }
        let session = db
            .sessions
            .create(&self.tokens, user_id, tenant.as_deref(), &answer.tokens)
            .await?;
        self.session_started(user, user_id, session, |user| {
            self.session_token(user, user_id, &answer.tokens, Some(&backend_user))
        })
        .await
    }

    /// A session just created: its access token minted (`mint`) once a revocation of its user in
    /// this very second is past, so that the token is not refused; the user cached; the answer.
    pub(crate) async fn session_started(
        &self,
        user: Document,
        user_id: ObjectId,
        session: NewSession,
        mint: impl FnOnce(&Document) -> AuthResult<String>,
    ) -> AuthResult<LoginOutcome> {
        self.after_revocation_second(&user_id.to_hex()).await;
        let token = mint(&user)?;
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

    /// A login the application did not complete (its answer was not the login's: LibreChat's
    /// admin check refused it, say): the session it started ends, at the backend too, as after
    /// any failed login. `session` is its refresh token, `pending` a 2FA login's record id.
    /// Whether the backend was told.
    pub async fn abandon_login(
        &self,
        user_id: &str,
        refresh_token: Option<&str>,
        pending: Option<&str>,
    ) -> AuthResult<bool> {
        if let Some(t) = refresh_token {
            return self.logout(Some(t), Some(user_id)).await;
        }
        let (Some(pending), Ok(user)) = (pending, ObjectId::parse_str(user_id)) else {
            return Ok(false);
        };
        let Ok(pending) = ObjectId::parse_str(pending) else {
            return Ok(false);
        };
        let db = self.db().await?;
        match db.sessions.take_pending(pending, user).await? {
            Some(tokens) => Ok(self.backend_logout(&tokens).await),
            None => Ok(false),
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
}
