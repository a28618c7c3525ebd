//! napi exports only. All work lives in the modules below; this file converts between JS values
//! and them.

#![deny(clippy::unwrap_used, clippy::expect_used)]

mod backend;
mod config;
mod error;
mod service;
mod sessions;
mod tokens;
mod users;

use std::collections::HashMap;
use std::sync::Arc;

use napi_derive::napi;

use crate::service::{user_ejson, LoginOutcome, Service};

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
}

/// The authentication service: configuration, backend client and database, built once and shared.
#[napi]
pub struct CustomBackendAuthService {
    inner: Arc<Service>,
}

#[napi]
impl CustomBackendAuthService {
    /// Validates the configuration (environment-variable names → string values) or throws
    /// `[CONFIG_INVALID] VAR: expected …`.
    #[napi(constructor)]
    pub fn new(vars: HashMap<String, String>) -> napi::Result<Self> {
        Ok(CustomBackendAuthService {
            inner: Arc::new(Service::new(&vars)?),
        })
    }

    /// Whether cookies must be `Secure` (`NODE_ENV=production`).
    #[napi(getter)]
    pub fn secure_cookies(&self) -> bool {
        self.inner.config.secure_cookies
    }

    /// Logs in with `{email|username, password}` against the backend, syncs the user and starts a
    /// LibreChat session.
    #[napi]
    pub async fn login(&self, credentials: serde_json::Value) -> napi::Result<LoginResult> {
        let inner = self.inner.clone();
        let result = match inner.login(&credentials).await? {
            LoginOutcome::Session {
                user,
                token,
                refresh_token,
                refresh_expires_at_ms,
            } => LoginResult {
                user: user_ejson(user)?,
                two_fa_pending: false,
                token: Some(token),
                refresh_token: Some(refresh_token),
                refresh_expires_at: Some(refresh_expires_at_ms as f64),
                temp_token: None,
            },
            LoginOutcome::TwoFactorPending { user, temp_token } => LoginResult {
                user: user_ejson(user)?,
                two_fa_pending: true,
                token: None,
                refresh_token: None,
                refresh_expires_at: None,
                temp_token: Some(temp_token),
            },
        };
        Ok(result)
    }

    /// Closes the database connections.
    #[napi]
    pub async fn close(&self) -> napi::Result<()> {
        self.inner.close().await;
        Ok(())
    }
}
