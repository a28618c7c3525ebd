//! Single sign-on (docs/single-sign-on.md): a page load that carries the portal's session cookie,
//! or a trusted proxy's identity headers, starts a LibreChat session as a login does, with the
//! backend (or the portal) deciding who it is. A session started so lives only as long as that
//! identity: each refresh checks it again.

use std::collections::HashMap;

use hmac::{Hmac, Mac};
use mongodb::bson::oid::ObjectId;
use serde_json::{json, Value};
use sha2::Sha256;

use crate::backend::claims::Verdict;
use crate::backend::client::map_user;
use crate::config::ProxyUsers;
use crate::flows::login::{user_tenant, LoginOutcome};
use crate::flows::refresh::{Refreshed, SsoState};
use crate::flows::service::{source_key, Service};
use crate::identity::{BackendUser, SsoIdentity, Via};
use crate::shared::error::{AuthError, AuthResult};
use crate::shared::net::peer_address;
use crate::store::users::Profile;

/// A portal cookie longer than this is not sent anywhere (browsers cap a cookie at 4096 bytes).
const MAX_COOKIE_BYTES: usize = 4096;

/// What the shim passes from a request: the portal cookie's value, the TCP peer, the proxy's
/// headers (lower-case names, as configured), and this browser's pause mark (after a logout).
#[derive(Debug, Clone, Default)]
pub struct SsoInput {
    pub cookie: Option<String>,
    pub peer: Option<String>,
    pub headers: HashMap<String, String>,
    pub paused: Option<String>,
}

/// What a request's credential says.
pub enum SsoFound {
    /// No credential (or only a paused one).
    None,
    /// Identity headers from a peer that is not a trusted proxy: ignored (and counted).
    Untrusted,
    Identity(SsoIdentity),
}

/// What a refresh with single sign-on ended in.
pub enum AfterRefresh {
    Refreshed(Refreshed),
    /// The portal identity belongs to someone else than the session: that session was ended
    /// and one of the portal's user started.
    Switched(LoginOutcome, Via),
}

/// Failures that say nothing about the credential (the portal or the backend could not answer).
fn is_outage(e: &AuthError) -> bool {
    matches!(
        e,
        AuthError::BackendUnavailable(_)
            | AuthError::BackendTimeout
            | AuthError::BackendCircuitOpen(_)
            | AuthError::BackendRateLimited
            | AuthError::BackendBadResponse(_)
            | AuthError::DbUnavailable
            | AuthError::DbError
    )
}

/// The first header of `names` with a non-blank value.
fn first_header<'a>(headers: &'a HashMap<String, String>, names: &[String]) -> Option<&'a str> {
    names
        .iter()
        .find_map(|n| headers.get(n).map(|v| v.trim()).filter(|v| !v.is_empty()))
}

impl Service {
    /// The credential a request carries and what it names (`None`: nothing to sign in with). A
    /// refused or unusable credential is an error (`TOKEN_INVALID`), an outage the backend's.
    pub async fn sso_identity(&self, input: &SsoInput) -> AuthResult<SsoFound> {
        let sso = &self.config.sso;
        let cookie = input.cookie.as_deref().filter(|c| !c.is_empty());
        if let (Some(name), Some(value)) = (sso.cookie.as_deref(), cookie) {
            if self.sso_paused(input, Via::Cookie, value) {
                return Ok(SsoFound::None);
            }
            let user = self
                .portal_cookie_user(name, value, input.peer.as_deref())
                .await?;
            return Ok(SsoFound::Identity(SsoIdentity {
                user,
                via: Via::Cookie,
            }));
        }
        let Some(name) = first_header(&input.headers, &sso.user_headers) else {
            return Ok(SsoFound::None);
        };
        if sso.proxies.is_empty() {
            return Ok(SsoFound::None);
        }
        let trusted = input
            .peer
            .as_deref()
            .and_then(peer_address)
            .is_some_and(|ip| sso.proxies.iter().any(|c| c.contains(&ip)));
        if !trusted {
            self.metrics.sso_untrusted_headers();
            return Ok(SsoFound::Untrusted);
        }
        if self.sso_paused(input, Via::Proxy, name) {
            return Ok(SsoFound::None);
        }
        let user = match sso.proxy_users {
            ProxyUsers::Headers => self.proxy_header_user(name, &input.headers)?,
            ProxyUsers::Backend => self.proxy_backend_user(name).await?,
        };
        Ok(SsoFound::Identity(SsoIdentity {
            user,
            via: Via::Proxy,
        }))
    }

    /// The portal cookie's user: validated by `BACKEND_SSO_COOKIE_URL`, or as a bearer token.
    async fn portal_cookie_user(
        &self,
        name: &str,
        value: &str,
        peer: Option<&str>,
    ) -> AuthResult<BackendUser> {
        let refused = || AuthError::TokenInvalid("the portal session is not accepted".into());
        if value.len() > MAX_COOKIE_BYTES {
            return Err(refused());
        }
        let Some(url) = self.config.sso.cookie_url.clone() else {
            return match self.bearer.verify(&self.backend, value, peer).await? {
                Verdict::Valid(u) => Ok(u),
                Verdict::Refused(_) => Err(refused()),
            };
        };
        self.portal
            .cookie_user(
                &self.backend,
                &url,
                name,
                value,
                self.config.token_cache_ttl,
            )
            .await?
            .ok_or_else(refused)
    }

    /// A proxy-named user the backend describes (`BACKEND_SSO_LOOKUP_URL`).
    async fn proxy_backend_user(&self, name: &str) -> AuthResult<BackendUser> {
        let unknown = || AuthError::TokenInvalid("the backend has no user of that name".into());
        let Some(url) = self.config.sso.lookup_url.clone() else {
            return Err(AuthError::Internal("no BACKEND_SSO_LOOKUP_URL".into()));
        };
        self.portal
            .named_user(&self.backend, &url, name, self.config.user_cache_ttl)
            .await?
            .ok_or_else(unknown)
    }

    /// A user taken from the proxy's headers alone, checked as a backend's user is (usable id,
    /// an email address, bounded fields); the groups are the role mapping's roles.
    fn proxy_header_user(
        &self,
        name: &str,
        headers: &HashMap<String, String>,
    ) -> AuthResult<BackendUser> {
        let sso = &self.config.sso;
        let groups: Vec<&str> = first_header(headers, &sso.groups_headers)
            .map(|g| {
                g.split(',')
                    .map(str::trim)
                    .filter(|g| !g.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        let from_headers: Value = json!({
            "id": name,
            "username": name,
            "email": first_header(headers, &sso.email_headers),
            "name": first_header(headers, &sso.name_headers),
            "roles": groups,
        });
        let mut mapping = self.config.mapping.clone();
        mapping.user_id = vec!["id".into()];
        mapping.user_email = vec!["email".into()];
        mapping.user_username = vec!["username".into()];
        mapping.user_name = vec!["name".into()];
        mapping.user_avatar = Vec::new();
        mapping.user_roles = vec!["roles".into()];
        mapping.user_tenant = Vec::new();
        map_user(&from_headers, &mapping).map_err(|e| {
            AuthError::TokenInvalid(format!("the proxy's headers name no usable user ({e})"))
        })
    }

    /// The mark a logout leaves in the browser for this credential (HMAC, nothing of it in clear):
    /// while the same credential comes back with it, single sign-on waits.
    pub fn sso_pause_mark(&self, input: &SsoInput) -> Option<String> {
        let sso = &self.config.sso;
        if let (Some(_), Some(value)) = (&sso.cookie, input.cookie.as_deref()) {
            return (!value.is_empty()).then(|| self.mark(Via::Cookie, value));
        }
        let name = first_header(&input.headers, &sso.user_headers)?;
        (!sso.proxies.is_empty()).then(|| self.mark(Via::Proxy, name))
    }

    fn mark(&self, via: Via, credential: &str) -> String {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.config.token_encryption_key) else {
            return String::new();
        };
        mac.update(b"sso-pause\0");
        mac.update(via.name().as_bytes());
        mac.update(b"\0");
        mac.update(credential.as_bytes());
        hex::encode(&mac.finalize().into_bytes()[..16])
    }

    fn sso_paused(&self, input: &SsoInput, via: Via, credential: &str) -> bool {
        input
            .paused
            .as_deref()
            .is_some_and(|p| !p.is_empty() && p == self.mark(via, credential))
    }

    /// Starts a session for a single sign-on identity, as a login does: policy, tenant, user sync,
    /// session. A user with LibreChat's 2FA is not signed in so (`TWO_FACTOR_REQUIRED`): they log
    /// in with the password and the second step.
    pub async fn sso_login(
        &self,
        identity: &SsoIdentity,
        tenant: Option<&str>,
    ) -> AuthResult<LoginOutcome> {
        self.config.policy.admit(&identity.user)?;
        let tenant = user_tenant(tenant, &identity.user)?;
        let profile =
            Profile::from_backend(&identity.user, &self.config.policy).in_tenant(tenant.clone());
        let db = self.db().await?;
        let user = db.users.sync(&profile).await?;
        if user.get_bool("twoFactorEnabled").unwrap_or(false) {
            return Err(AuthError::TwoFactorRequired);
        }
        let user_id = user
            .get_object_id("_id")
            .map_err(|_| AuthError::Internal("user without ObjectId".into()))?;
        let session = db
            .sessions
            .create_sso(
                &self.tokens,
                user_id,
                tenant.as_deref(),
                identity.via.name(),
            )
            .await?;
        self.session_started(user, user_id, session, |user| {
            self.access_token_for(user, user_id)
        })
        .await
    }

    /// What a refresh goes on with: a refused credential is none, an outage unknown.
    async fn sso_state(&self, input: &SsoInput) -> SsoState {
        match self.sso_identity(input).await {
            Ok(SsoFound::Identity(i)) => SsoState::Present(i),
            Ok(_) => SsoState::Absent,
            Err(e) if is_outage(&e) => SsoState::Unknown(e),
            Err(_) => SsoState::Absent,
        }
    }

    /// The LibreChat account of a single sign-on identity in a tenant, if it has one.
    async fn sso_account(
        &self,
        user: &BackendUser,
        tenant: Option<&str>,
    ) -> AuthResult<Option<String>> {
        let tenant = user_tenant(tenant, user)?;
        let key = source_key(&user.id, tenant.as_deref());
        if let Some(id) = self.source_ids.get(&key) {
            return Ok(Some(id));
        }
        let db = self.db().await?;
        let found = db
            .users
            .find_id_by_source(&user.id, tenant.as_deref())
            .await?
            .map(|oid: ObjectId| oid.to_hex());
        if let Some(id) = &found {
            self.source_ids
                .insert(key, id.clone(), self.config.user_cache_ttl);
        }
        Ok(found)
    }

    /// `POST /api/auth/refresh` with single sign-on on: the portal identity wins. A session of
    /// another person ends and the portal's user gets one (a shared browser never shows the
    /// previous user's chats); the same person's session is refreshed, a single sign-on session
    /// only while its identity is still there.
    pub async fn refresh_with_sso(
        &self,
        refresh_token: &str,
        tenant: Option<&str>,
        input: &SsoInput,
    ) -> AuthResult<AfterRefresh> {
        let sso = self.sso_state(input).await;
        if let SsoState::Present(identity) = &sso {
            if let Ok(claims) = self.tokens.verify_refresh_at(refresh_token, 0) {
                let account = self.sso_account(&identity.user, tenant).await?;
                if account.as_deref() != Some(claims.id.as_str()) {
                    self.logout(Some(refresh_token), Some(&claims.id)).await?;
                    let login = self.sso_login(identity, tenant).await?;
                    return Ok(AfterRefresh::Switched(login, identity.via));
                }
            }
        }
        self.refresh(refresh_token, tenant, &sso)
            .await
            .map(AfterRefresh::Refreshed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_header_skips_blank_values() {
        let h: HashMap<String, String> = [
            ("remote-user".to_string(), "  ".to_string()),
            ("x-forwarded-user".to_string(), " ann ".to_string()),
        ]
        .into();
        let names = vec!["remote-user".to_string(), "x-forwarded-user".to_string()];
        assert_eq!(first_header(&h, &names), Some("ann"));
        assert_eq!(first_header(&HashMap::new(), &names), None);
    }
}
