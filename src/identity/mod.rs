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
    /// From `BACKEND_TENANT_FIELD`: the LibreChat tenant the backend puts the user in, as sent
    /// (checked by `tenant_id` where it is used).
    pub tenant: Option<String>,
}

/// How a single sign-on user came in (the audit events' `via`; a session's `customBackend.sso`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// The portal's session cookie.
    Cookie,
    /// A trusted proxy's identity headers.
    Proxy,
}

impl Via {
    pub fn name(self) -> &'static str {
        match self {
            Via::Cookie => "sso-cookie",
            Via::Proxy => "sso-proxy",
        }
    }
}

/// A request's single sign-on identity, as the backend (or the portal) vouched for it.
#[derive(Debug, Clone)]
pub struct SsoIdentity {
    pub user: BackendUser,
    pub via: Via,
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

/// LibreChat's reserved tenant of deliberate cross-tenant operations (`SYSTEM_TENANT_ID` of
/// `@librechat/data-schemas`): never a request's or a user's.
pub const SYSTEM_TENANT: &str = "__SYSTEM__";
/// LibreChat's bounds of a tenant id (`preAuthTenant`): at most 128 of `[-a-zA-Z0-9_.]`.
const MAX_TENANT_CHARS: usize = 128;

/// A tenant id as LibreChat accepts one from a request: trimmed, empty meaning none; the system
/// tenant, an over-long id or another character is refused (`what` names the source).
pub fn tenant_id(raw: Option<&str>, what: &str) -> Result<Option<String>, String> {
    let Some(t) = raw.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    if t == SYSTEM_TENANT {
        return Err(format!("{what} names the reserved system tenant"));
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if t.len() > MAX_TENANT_CHARS || !t.chars().all(allowed) {
        return Err(format!(
            "{what} is not a tenant id (at most {MAX_TENANT_CHARS} of letters, digits, '-', '_', '.')"
        ));
    }
    Ok(Some(t.to_string()))
}

/// The tenant of a login or of a backend token: the request's and the backend's, which must be
/// the same when both are known; either one alone decides; neither is a deployment without tenants.
pub fn agreed_tenant(
    request: Option<&str>,
    backend: Option<&str>,
) -> Result<Option<String>, &'static str> {
    match (request, backend) {
        (Some(r), Some(b)) if r != b => Err("the backend puts this user in another tenant"),
        (r, b) => Ok(r.or(b).map(str::to_string)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_ids_follow_librechats_rules() {
        assert_eq!(tenant_id(None, "t"), Ok(None));
        assert_eq!(tenant_id(Some("  "), "t"), Ok(None));
        assert_eq!(
            tenant_id(Some(" acme.eu-1_x "), "t"),
            Ok(Some("acme.eu-1_x".into()))
        );
        assert!(tenant_id(Some("__SYSTEM__"), "t").is_err());
        assert!(tenant_id(Some("a b"), "t").is_err());
        assert!(tenant_id(Some("a/b"), "t").is_err());
        assert!(tenant_id(Some(&"a".repeat(129)), "t").is_err());
        assert!(tenant_id(Some(&"a".repeat(128)), "t").is_ok());
    }

    #[test]
    fn request_and_backend_tenants_must_agree() {
        assert_eq!(agreed_tenant(None, None), Ok(None));
        assert_eq!(agreed_tenant(Some("a"), None), Ok(Some("a".into())));
        assert_eq!(agreed_tenant(None, Some("b")), Ok(Some("b".into())));
        assert_eq!(agreed_tenant(Some("a"), Some("a")), Ok(Some("a".into())));
        assert!(agreed_tenant(Some("a"), Some("b")).is_err());
    }
}
