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
    /// `backend_id`: who, for the audit (crosses to JS as `err.backendId`, never into the message).
    AccessDenied {
        message: String,
        backend_id: Option<String>,
    },
    /// Another LibreChat account already owns this email.
    AccountConflict,
    /// The request's tenant is not the user's (or the backend's tenant for the user is another).
    TenantMismatch(String),
    /// The backend could not be reached, or answered 5xx.
    BackendUnavailable(String),
    /// The backend did not answer within `BACKEND_TIMEOUT_MS`.
    BackendTimeout,
    /// The backend answered 2xx with something unusable.
    BackendBadResponse(String),
    /// The backend rate-limits us.
    BackendRateLimited,
    /// Not sent: the host's circuit breaker is open (it kept failing) or its calls in flight are
    /// at their bound (`BACKEND_MAX_PENDING`). An outage, like `BackendUnavailable`.
    BackendCircuitOpen(String),
    /// A token that is malformed, forged, of the wrong kind or revoked.
    TokenInvalid(String),
    /// A token whose `exp` has passed.
    TokenExpired,
    /// A backend token of a user with LibreChat's 2FA that is not a session's (it skipped the
    /// second step).
    TwoFactorRequired,
    /// A session that does not exist (any more) or was revoked.
    SessionInvalid(String),
    /// A superseded refresh token came back when no honest client could hold it: the session was
    /// ended. Code `SESSION_INVALID` like any ended session; told apart for the audit (`reason`).
    RefreshReuse,
    /// The user the token names does not exist.
    UserNotFound,
    /// MongoDB could not be reached.
    DbUnavailable,
    /// MongoDB answered with an error we cannot handle.
    DbError,
    /// A backend event without a valid signature (or outside the timestamp window).
    SignatureInvalid(String),
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
            AuthError::AccessDenied { .. } => "ACCESS_DENIED",
            AuthError::AccountConflict => "ACCOUNT_CONFLICT",
            AuthError::TenantMismatch(_) => "TENANT_MISMATCH",
            AuthError::BackendUnavailable(_) => "BACKEND_UNAVAILABLE",
            AuthError::BackendTimeout => "BACKEND_TIMEOUT",
            AuthError::BackendBadResponse(_) => "BACKEND_BAD_RESPONSE",
            AuthError::BackendRateLimited => "BACKEND_RATE_LIMITED",
            AuthError::BackendCircuitOpen(_) => "BACKEND_CIRCUIT_OPEN",
            AuthError::TokenInvalid(_) => "TOKEN_INVALID",
            AuthError::TokenExpired => "TOKEN_EXPIRED",
            AuthError::TwoFactorRequired => "TWO_FACTOR_REQUIRED",
            AuthError::SessionInvalid(_) | AuthError::RefreshReuse => "SESSION_INVALID",
            AuthError::UserNotFound => "USER_NOT_FOUND",
            AuthError::DbUnavailable => "DB_UNAVAILABLE",
            AuthError::DbError => "DB_ERROR",
            AuthError::SignatureInvalid(_) => "SIGNATURE_INVALID",
            AuthError::Internal(_) => "INTERNAL",
        }
    }

    /// What tells this error apart from others of its code, for the audit: crosses to JS as
    /// `[CODE:reason]` and becomes `err.reason`.
    pub fn reason(&self) -> Option<&'static str> {
        match self {
            AuthError::RefreshReuse => Some("reuse"),
            _ => None,
        }
    }

    /// The backend id of the user this error is about, where the error knows it: for the audit.
    pub fn backend_id(&self) -> Option<&str> {
        match self {
            AuthError::AccessDenied { backend_id, .. } => backend_id.as_deref(),
            _ => None,
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
            AuthError::AccessDenied { message, .. } => f.write_str(message),
            AuthError::AccountConflict => f.write_str(
                "An account with this email already exists and is not linked to your organisation's login. Ask an administrator to link or remove it.",
            ),
            AuthError::TenantMismatch(m) => write!(f, "Wrong tenant: {m}."),
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
            AuthError::BackendCircuitOpen(m) => write!(
                f,
                "The authentication service is unavailable (not called: {m}). Please try again later."
            ),
            AuthError::TokenInvalid(m) => write!(f, "Invalid token: {m}"),
            AuthError::TokenExpired => f.write_str("Token expired"),
            AuthError::TwoFactorRequired => f.write_str(
                "Two-factor authentication is required: sign in through LibreChat to use this account.",
            ),
            AuthError::SessionInvalid(m) => f.write_str(m),
            AuthError::RefreshReuse => {
                f.write_str("Refresh token reuse detected; the session was ended")
            }
            AuthError::UserNotFound => f.write_str("User not found"),
            AuthError::DbUnavailable => {
                f.write_str("The database is unavailable. Please try again later.")
            }
            AuthError::DbError => f.write_str("A database operation failed."),
            AuthError::SignatureInvalid(m) => write!(f, "Invalid event signature: {m}"),
            AuthError::Internal(m) => write!(f, "Internal error: {m}"),
        }
    }
}

impl std::error::Error for AuthError {}

/// The one place where our errors become JS errors. The async bridge of napi only keeps a message,
/// so the stable code travels as a `[CODE] ` (or `[CODE:reason] `) prefix that `lib/errors.js`
/// turns back into `err.code` (and `err.reason`); a backend id follows the code as `@` and a JSON
/// string (`[ACCESS_DENIED@"u-42"] `), which becomes `err.backendId`.
impl From<AuthError> for napi::Error {
    fn from(e: AuthError) -> Self {
        let reason = e.reason().map(|r| format!(":{r}")).unwrap_or_default();
        // A JSON string cannot end the prefix early: `"` and `\` inside it are escaped.
        let who = e
            .backend_id()
            .and_then(|id| serde_json::to_string(id).ok())
            .map(|id| format!("@{id}"))
            .unwrap_or_default();
        let message = format!("[{}{reason}{who}] {e}", e.code());
        napi::Error::new(napi::Status::GenericFailure, message)
    }
}

/// Server error codes that mean "no primary / not writable / shutting down / unreachable just now"
/// (the SDAM spec's not-writable-primary and recovering codes, and the driver's retryable ones): a
/// failover or a restart, which a retry a moment later survives.
const UNAVAILABLE_CODES: &[i32] = &[
    6,     // HostUnreachable
    7,     // HostNotFound
    89,    // NetworkTimeout
    91,    // ShutdownInProgress
    134,   // ReadConcernMajorityNotAvailableYet
    189,   // PrimarySteppedDown
    262,   // ExceededTimeLimit
    9001,  // SocketException
    10058, // LegacyNotPrimary
    10107, // NotWritablePrimary
    11600, // InterruptedAtShutdown
    11602, // InterruptedDueToReplStateChange
    13435, // NotPrimaryNoSecondaryOk
    13436, // NotPrimaryOrSecondary
];

/// The driver's labels for an error that a retry may survive.
const UNAVAILABLE_LABELS: &[&str] = &[
    mongodb::error::RETRYABLE_WRITE_ERROR,
    mongodb::error::TRANSIENT_TRANSACTION_ERROR,
    mongodb::error::SYSTEM_OVERLOADED_ERROR,
    mongodb::error::RETRYABLE_ERROR,
];

/// Whether a driver error means the database is unavailable for now (503) rather than failed.
fn db_unavailable(e: &mongodb::error::Error) -> bool {
    use mongodb::error::{ErrorKind, WriteFailure};
    if UNAVAILABLE_LABELS.iter().any(|l| e.contains_label(l)) {
        return true;
    }
    let code = match &*e.kind {
        ErrorKind::ServerSelection { .. }
        | ErrorKind::Io(_)
        | ErrorKind::ConnectionPoolCleared { .. }
        | ErrorKind::DnsResolve { .. } => return true,
        ErrorKind::Command(c) => Some(c.code),
        ErrorKind::Write(WriteFailure::WriteConcernError(w)) => Some(w.code),
        ErrorKind::Write(WriteFailure::WriteError(w)) => Some(w.code),
        ErrorKind::InsertMany(m) => m.write_concern_error.as_ref().map(|w| w.code),
        _ => None,
    };
    if code.is_some_and(|c| UNAVAILABLE_CODES.contains(&c)) {
        return true;
    }
    // The driver wraps some failures (a pool cleared by a network error, ...) around their cause.
    std::error::Error::source(e)
        .and_then(|s| s.downcast_ref::<mongodb::error::Error>())
        .is_some_and(db_unavailable)
}

impl From<mongodb::error::Error> for AuthError {
    fn from(e: mongodb::error::Error) -> Self {
        if db_unavailable(&e) {
            AuthError::DbUnavailable
        } else {
            AuthError::DbError
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
        let e: napi::Error = AuthError::RefreshReuse.into();
        assert!(e.reason.starts_with("[SESSION_INVALID:reuse] "));
    }

    #[test]
    fn a_backend_id_travels_as_a_json_string_after_the_code() {
        let denied = |id: Option<&str>| -> napi::Error {
            AuthError::AccessDenied {
                message: "No.".into(),
                backend_id: id.map(str::to_string),
            }
            .into()
        };
        assert_eq!(denied(Some("u-42")).reason, r#"[ACCESS_DENIED@"u-42"] No."#);
        // A `"`, `\` or `]` in the id cannot end the prefix early.
        assert_eq!(
            denied(Some(r#"a"]\b"#)).reason,
            r#"[ACCESS_DENIED@"a\"]\\b"] No."#
        );
        assert_eq!(denied(None).reason, "[ACCESS_DENIED] No.");
    }

    fn command_error(code: i32, name: &str) -> mongodb::error::Error {
        let c: mongodb::error::CommandError = mongodb::bson::from_document(
            mongodb::bson::doc! { "code": code, "codeName": name, "errmsg": "test" },
        )
        .unwrap();
        mongodb::error::ErrorKind::Command(c).into()
    }

    fn write_concern_error(code: i32, labels: &[&str]) -> mongodb::error::Error {
        let w: mongodb::error::WriteConcernError = mongodb::bson::from_document(
            mongodb::bson::doc! { "code": code, "codeName": "X", "errmsg": "test", "errorLabels": labels },
        )
        .unwrap();
        mongodb::error::ErrorKind::Write(mongodb::error::WriteFailure::WriteConcernError(w)).into()
    }

    fn write_error(code: i32) -> mongodb::error::Error {
        let w: mongodb::error::WriteError =
            mongodb::bson::from_document(mongodb::bson::doc! { "code": code, "errmsg": "test" })
                .unwrap();
        mongodb::error::ErrorKind::Write(mongodb::error::WriteFailure::WriteError(w)).into()
    }

    #[test]
    fn item_8_12_failover_errors_are_db_unavailable() {
        for (code, name) in [
            (91, "ShutdownInProgress"),
            (189, "PrimarySteppedDown"),
            (10107, "NotWritablePrimary"),
            (11600, "InterruptedAtShutdown"),
            (11602, "InterruptedDueToReplStateChange"),
            (13435, "NotPrimaryNoSecondaryOk"),
            (13436, "NotPrimaryOrSecondary"),
            (10058, "LegacyNotPrimary"),
            (6, "HostUnreachable"),
            (7, "HostNotFound"),
            (89, "NetworkTimeout"),
            (9001, "SocketException"),
        ] {
            assert_eq!(
                AuthError::from(command_error(code, name)),
                AuthError::DbUnavailable,
                "command error {code} {name}"
            );
            assert_eq!(
                AuthError::from(write_concern_error(code, &[])),
                AuthError::DbUnavailable,
                "write concern error {code}"
            );
        }
        assert_eq!(
            AuthError::from(write_error(10107)),
            AuthError::DbUnavailable
        );
        // The driver's retryable labels, whatever the code.
        assert_eq!(
            AuthError::from(write_concern_error(100, &["RetryableWriteError"])),
            AuthError::DbUnavailable
        );
        assert_eq!(
            AuthError::from(write_concern_error(100, &["TransientTransactionError"])),
            AuthError::DbUnavailable
        );
        // Network errors.
        let io: mongodb::error::Error =
            std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset").into();
        assert_eq!(AuthError::from(io), AuthError::DbUnavailable);
        // Real failures stay errors: a duplicate key, a bad query, a validation failure.
        assert_eq!(AuthError::from(write_error(11000)), AuthError::DbError);
        assert_eq!(
            AuthError::from(command_error(2, "BadValue")),
            AuthError::DbError
        );
        assert_eq!(
            AuthError::from(command_error(121, "DocumentValidationFailure")),
            AuthError::DbError
        );
        assert_eq!(
            AuthError::from(write_concern_error(100, &[])),
            AuthError::DbError
        );
    }
}
