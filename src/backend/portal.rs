//! Single sign-on's checks at the portal and the backend (docs/single-sign-on.md): a portal session
//! cookie forwarded to `BACKEND_SSO_COOKIE_URL`, a proxy-named user looked up at
//! `BACKEND_SSO_LOOKUP_URL`; each verdict cached (a cookie under its SHA-256 only) with one call in
//! flight per key.

use std::time::Duration;

use reqwest::Url;

use crate::backend::bearer::{token_key, TokenKey};
use crate::backend::client::Backend;
use crate::identity::BackendUser;
use crate::shared::cache::{SingleFlight, TtlCache};
use crate::shared::error::AuthResult;

pub struct Portal {
    cookies: TtlCache<TokenKey, Option<BackendUser>>,
    cookie_checks: SingleFlight<TokenKey, AuthResult<Option<BackendUser>>>,
    names: TtlCache<String, Option<BackendUser>>,
    name_lookups: SingleFlight<String, AuthResult<Option<BackendUser>>>,
}

impl Portal {
    pub fn new(capacity: usize) -> Portal {
        Portal {
            cookies: TtlCache::new(capacity),
            cookie_checks: SingleFlight::new(),
            names: TtlCache::new(capacity),
            name_lookups: SingleFlight::new(),
        }
    }

    /// The user of a portal session cookie (`None`: the portal refuses it), cached for `ttl`.
    pub async fn cookie_user(
        &self,
        backend: &Backend,
        url: &Url,
        name: &str,
        value: &str,
        ttl: Duration,
    ) -> AuthResult<Option<BackendUser>> {
        let key = token_key(value);
        if let Some(found) = self.cookies.get(&key) {
            return Ok(found);
        }
        self.cookie_checks
            .run(key, || async {
                let found = backend.sso_cookie(url, name, value).await?;
                self.cookies.insert(key, found.clone(), ttl);
                Ok(found)
            })
            .await
    }

    /// The backend's user of a name (`None`: no such user), cached for `ttl`.
    pub async fn named_user(
        &self,
        backend: &Backend,
        url: &Url,
        name: &str,
        ttl: Duration,
    ) -> AuthResult<Option<BackendUser>> {
        if let Some(found) = self.names.get(&name.to_string()) {
            return Ok(found);
        }
        self.name_lookups
            .run(name.to_string(), || async {
                let found = backend.sso_lookup(url, name).await?;
                self.names.insert(name.to_string(), found.clone(), ttl);
                Ok(found)
            })
            .await
    }
}
