//! One error type for the whole addon. Each variant has a stable `code`; the JS shim maps codes to
//! HTTP statuses in one table (`index.js`). Messages are safe to show to a user: they never carry a
//! password, a token, a backend body or a connection string.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    /// A configuration value is missing or invalid; names the variable.
    ConfigInvalid { var: &'static str, expected: String },
    /// The login request itself is unusable (missing, empty, oversized or mistyped field).
    BadRequest(String),
    /// The backend refused the credentials.
    InvalidCredentials,
    /// The backend accepted the user but the configuration refuses them (role, email domain).
    AccessDenied(String),
    /// Another LibreChat account already owns this email.
    AccountConflict,
    /// The backend could not be reached, or answered 5xx.
    BackendUnavailable(String),
    /// The backend did not answer within `BACKEND_TIMEOUT_MS`.
    BackendTimeout,
    /// The backend answered 2xx with something unusable.
    BackendBadResponse(String),
    /// The backend rate-limits us.
    BackendRateLimited,
    /// A token that is malformed, forged, of the wrong kind or revoked.
    TokenInvalid(String),
    /// A token whose `exp` has passed.
    TokenExpired,
    /// A backend token of a user with LibreChat's 2FA that is not a session's (it skipped the
    /// second step).
    TwoFactorRequired,
    /// A session that does not exist (any more) or was revoked.
    SessionInvalid(String),
    /// The user the token names does not exist.
    UserNotFound,
    /// MongoDB could not be reached.
    DbUnavailable,
    /// MongoDB answered with an error we cannot handle.
    DbError,
    /// A bug: should never happen, never carries input.
    Internal(String),
}

pub type AuthResult<T> = Result<T, AuthError>;

impl AuthError {
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::ConfigInvalid { .. } => "CONFIG_INVALID",
            AuthError::BadRequest(_) => "BAD_REQUEST",
            AuthError::InvalidCredentials => "INVALID_CREDENTIALS",
            AuthError::AccessDenied(_) => "ACCESS_DENIED",
            AuthError::AccountConflict => "ACCOUNT_CONFLICT",
            AuthError::BackendUnavailable(_) => "BACKEND_UNAVAILABLE",
            AuthError::BackendTimeout => "BACKEND_TIMEOUT",
            AuthError::BackendBadResponse(_) => "BACKEND_BAD_RESPONSE",
            AuthError::BackendRateLimited => "BACKEND_RATE_LIMITED",
            AuthError::TokenInvalid(_) => "TOKEN_INVALID",
            AuthError::TokenExpired => "TOKEN_EXPIRED",
            AuthError::TwoFactorRequired => "TWO_FACTOR_REQUIRED",
            AuthError::SessionInvalid(_) => "SESSION_INVALID",
            AuthError::UserNotFound => "USER_NOT_FOUND",
            AuthError::DbUnavailable => "DB_UNAVAILABLE",
            AuthError::DbError => "DB_ERROR",
            AuthError::Internal(_) => "INTERNAL",
        }
    }

    pub fn config(var: &'static str, expected: impl Into<String>) -> Self {
        AuthError::ConfigInvalid {
            var,
            expected: expected.into(),
        }
    }
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthError::ConfigInvalid { var, expected } => write!(f, "{var}: {expected}"),
            AuthError::BadRequest(m) => f.write_str(m),
            AuthError::InvalidCredentials => f.write_str("Invalid username or password."),
            AuthError::AccessDenied(m) => f.write_str(m),
            AuthError::AccountConflict => f.write_str(
                "An account with this email already exists and is not linked to your organisation's login. Ask an administrator to link or remove it.",
            ),
            AuthError::BackendUnavailable(m) => {
                write!(f, "The authentication service is unavailable ({m}). Please try again later.")
            }
            AuthError::BackendTimeout => {
                f.write_str("The authentication service did not answer in time. Please try again later.")
            }
            AuthError::BackendBadResponse(m) => {
                write!(f, "The authentication service gave an unusable answer ({m}).")
            }
            AuthError::BackendRateLimited => {
                f.write_str("Too many requests to the authentication service. Please try again later.")
            }
            AuthError::TokenInvalid(m) => write!(f, "Invalid token: {m}"),
            AuthError::TokenExpired => f.write_str("Token expired"),
            AuthError::TwoFactorRequired => f.write_str(
                "Two-factor authentication is required: sign in through LibreChat to use this account.",
            ),
            AuthError::SessionInvalid(m) => f.write_str(m),
            AuthError::UserNotFound => f.write_str("User not found"),
            AuthError::DbUnavailable => {
                f.write_str("The database is unavailable. Please try again later.")
            }
            AuthError::DbError => f.write_str("A database operation failed."),
            AuthError::Internal(m) => write!(f, "Internal error: {m}"),
        }
    }
}

impl std::error::Error for AuthError {}

/// The one place where our errors become JS errors. The async bridge of napi only keeps a message,
/// so the stable code travels as a `[CODE] ` prefix that `index.js` turns back into `err.code`.
impl From<AuthError> for napi::Error {
    fn from(e: AuthError) -> Self {
        napi::Error::new(
            napi::Status::GenericFailure,
            format!("[{}] {}", e.code(), e),
        )
    }
}

impl From<mongodb::error::Error> for AuthError {
    fn from(e: mongodb::error::Error) -> Self {
        use mongodb::error::ErrorKind;
        match *e.kind {
            ErrorKind::ServerSelection { .. }
            | ErrorKind::Io(_)
            | ErrorKind::ConnectionPoolCleared { .. }
            | ErrorKind::DnsResolve { .. } => AuthError::DbUnavailable,
            _ => AuthError::DbError,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable_and_prefixed() {
        let e: napi::Error = AuthError::config("JWT_SECRET", "must be set").into();
        assert_eq!(e.reason, "[CONFIG_INVALID] JWT_SECRET: must be set");
        let e: napi::Error = AuthError::InvalidCredentials.into();
        assert!(e.reason.starts_with("[INVALID_CREDENTIALS] "));
    }
}
