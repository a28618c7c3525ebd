//! The identity layer: who a user is to the backend and to LibreChat, as plain values: the
//! backend's user after mapping, the backend's tokens, the provider and role names LibreChat stores,
//! and how e-mail addresses compare. No I/O.
//!
//! May use: nothing.

/// The `provider` LibreChat stores on the users of this package.
pub const PROVIDER: &str = "custom-backend";
/// LibreChat's role names.
pub const ROLE_ADMIN: &str = "ADMIN";
pub const ROLE_USER: &str = "USER";

/// Emails (and user names) are lower-cased in ASCII only: full Unicode lower-casing maps
/// compatibility characters such as U+212A KELVIN SIGN onto ASCII letters, so two different
/// addresses could meet. Every other character is kept as sent.
pub fn fold_case(s: &str) -> String {
    s.to_ascii_lowercase()
}

/// The user as the backend describes them, after mapping.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BackendUser {
    pub id: String,
    pub email: String,
    pub username: Option<String>,
    pub name: Option<String>,
    pub avatar: Option<String>,
    /// From `BACKEND_ROLES_FIELD`: a string (comma/space separated) or an array of strings.
    pub roles: Vec<String>,
}

/// Tokens from a login or refresh answer.
#[derive(Debug, Clone, PartialEq)]
pub struct BackendTokens {
    pub access_token: String,
    pub refresh_token: Option<String>,
    pub expires_in_secs: Option<u64>,
    /// The backend's own session id (`BACKEND_SESSION_ID_FIELD`), kept hashed with the session.
    pub session_id: Option<String>,
}
