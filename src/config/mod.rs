//! Typed configuration, parsed and validated once when the service is built. Input is a map of
//! environment-variable names to strings (`process.env`, possibly overridden by the operator's
//! options), so the same names work in `.env` and in code. Every failure names its variable.
//!
//! May use: shared, identity.

use std::collections::HashMap;
use std::time::Duration;

use base64::Engine;
use url::Url;

use crate::shared::error::{AuthError, AuthResult};
use crate::shared::net::Cidr;

pub mod settings;

use settings::{Kind, Setting};

/// HMAC-SHA256 keys shorter than this are guessable offline from one signed request.
const MIN_EVENTS_SECRET_CHARS: usize = 32;
/// `SESSION_EXPIRY` arithmetic: no real expression is longer or deeper (and the parser recurses).
const MAX_ARITHMETIC_LEN: usize = 256;
const MAX_ARITHMETIC_DEPTH: usize = 16;

/// What the browser receives as `token`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionMode {
    /// A LibreChat access token (default; backend tokens stay server-side).
    LibreChat,
    /// The backend's access token (the seed's behaviour).
    Backend,
}

/// How backend tokens presented as `Authorization: Bearer` are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BearerMode {
    Off,
    Userinfo,
    Jwks,
    /// RFC 7662 token introspection (`BACKEND_INTROSPECTION_URL`).
    Introspection,
}

/// A secret kept out of `Debug` output (a `Config` may be printed while debugging).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// `BACKEND_BEARER_TOKENS=introspection`: where and as which client tokens are introspected, and
/// what an active token's answer must also say.
#[derive(Debug, Clone)]
pub struct IntrospectionConfig {
    pub url: Url,
    pub client_id: String,
    pub client_secret: Secret,
    /// `aud` (a string or an array) must contain it when set.
    pub audience: Option<String>,
    /// `iss` must equal it when set.
    pub issuer: Option<String>,
    /// Every one of these must be in the space-separated `scope`.
    pub required_scopes: Vec<String>,
    pub id_claim: String,
    /// `token_type` must be this (any case) when set: for servers that leave it out of the answers
    /// for refresh tokens.
    pub token_type: Option<String>,
}

#[derive(Debug, Clone)]
pub struct JwksConfig {
    pub url: Url,
    pub issuer: String,
    pub audience: Option<String>,
    pub id_claim: String,
    pub cache_ttl: Duration,
    pub refetch_cooldown: Duration,
    /// How long past `cache_ttl` the last good key set still verifies while refetches fail.
    pub max_stale: Duration,
}

/// The budget of user-info calls for backend tokens the caches do not know.
#[derive(Debug, Clone, Copy)]
pub struct UserinfoBudget {
    pub max_concurrent: usize,
    pub per_second: u32,
    pub burst: u32,
}

/// The circuit breaker per backend host and its bound on calls in flight (`src/backend/breaker.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Failures in a row that open it; 0 turns the breaker off (the pending bound stays).
    pub failures: u32,
    pub cooldown: Duration,
    /// Calls let through at once while half-open.
    pub probes: u32,
    /// Calls in flight per host at most.
    pub max_pending: usize,
    /// How long a call waits for a place when they are all taken (`BACKEND_TIMEOUT_MS`).
    pub queue_wait: Duration,
}

/// Where the backend's answers keep their values. Paths are dot-separated; alternatives are tried
/// in order (the first present wins).
#[derive(Debug, Clone)]
pub struct Mapping {
    pub login_username_field: String,
    pub access_token: Vec<String>,
    pub refresh_token: Vec<String>,
    pub expires_in: Vec<String>,
    pub user_id: Vec<String>,
    pub user_email: Vec<String>,
    pub user_username: Vec<String>,
    pub user_name: Vec<String>,
    pub user_avatar: Vec<String>,
    pub user_roles: Vec<String>,
    /// The backend's session id in a login or refresh answer (`session.revoked` events name it).
    pub session_id: Vec<String>,
    /// The user's LibreChat tenant (`BACKEND_TENANT_FIELD`; docs/tenants.md).
    pub user_tenant: Vec<String>,
}

/// The backend's own second factor (docs/second-factor.md): a login answer that asks for it is
/// carried through LibreChat's 2FA screen to `BACKEND_MFA_VERIFY_URL`.
#[derive(Debug, Clone, PartialEq)]
pub struct MfaConfig {
    pub verify_url: Url,
    /// The login answer's flag that a second factor is required.
    pub flag: Vec<String>,
    /// The login answer's challenge id.
    pub challenge: Vec<String>,
    /// A non-2xx status whose answer is read for a challenge (a 401 or 403 of some backends).
    pub status: Option<u16>,
    /// The verify request's keys: the challenge id and the code.
    pub challenge_key: String,
    pub code_key: String,
    /// LibreChat's backup-code form goes to the backend (`"backup": true`); else refused here.
    pub backup_codes: bool,
    /// How long a challenge waits for its code at most.
    pub ttl: Duration,
    /// Codes tried per challenge at most.
    pub max_attempts: u32,
}

/// Where a user named by a trusted proxy's headers comes from (`BACKEND_SSO_PROXY_USERS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyUsers {
    /// Looked up at `BACKEND_SSO_LOOKUP_URL` by name: they must exist at the backend.
    Backend,
    /// Taken from the headers alone.
    Headers,
}

/// Single sign-on (docs/single-sign-on.md): the portal's session cookie, a trusted proxy's headers.
#[derive(Debug, Clone, PartialEq)]
pub struct SsoConfig {
    /// `BACKEND_SSO_COOKIE`: the portal's session cookie.
    pub cookie: Option<String>,
    /// `BACKEND_SSO_COOKIE_URL`: validates the forwarded cookie; without it, the cookie's value is
    /// a bearer token checked as `BACKEND_BEARER_TOKENS` says.
    pub cookie_url: Option<Url>,
    /// `BACKEND_SSO_PROXIES`: the proxies whose identity headers are believed (TCP peer).
    pub proxies: Vec<Cidr>,
    pub user_headers: Vec<String>,
    pub email_headers: Vec<String>,
    pub name_headers: Vec<String>,
    pub groups_headers: Vec<String>,
    pub proxy_users: ProxyUsers,
    pub lookup_url: Option<Url>,
    /// `BACKEND_SSO_LOGOUT_URL`: where the browser goes after a LibreChat logout.
    pub logout_url: Option<Url>,
}

impl SsoConfig {
    pub fn enabled(&self) -> bool {
        self.cookie.is_some() || !self.proxies.is_empty()
    }

    /// The request headers the shim passes on (lower case): the proxy's, when proxies are set.
    pub fn header_names(&self) -> Vec<String> {
        if self.proxies.is_empty() {
            return Vec::new();
        }
        [
            &self.user_headers,
            &self.email_headers,
            &self.name_headers,
            &self.groups_headers,
        ]
        .into_iter()
        .flatten()
        .cloned()
        .collect()
    }
}

/// Whether an existing account of another provider with the backend user's email may be linked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkExisting {
    Never,
    Email,
}

/// Who may log in, and as which LibreChat role.
#[derive(Debug, Clone)]
pub struct Policy {
    pub admin_roles: Vec<String>,
    pub required_roles: Vec<String>,
    /// Lower-cased; empty means every domain.
    pub allowed_email_domains: Vec<String>,
    pub link_existing: LinkExisting,
    /// A linked account keeps its local password and LibreChat 2FA secrets.
    pub keep_local_secrets: bool,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub auth_url: Url,
    pub userinfo_url: Url,
    pub refresh_url: Url,
    pub jwt_secret: Vec<u8>,
    pub jwt_refresh_secret: Vec<u8>,
    pub mongo_uri: String,
    pub session_expiry_ms: u64,
    pub refresh_token_expiry_ms: u64,
    pub backend_timeout: Duration,
    pub db_timeout: Duration,
    pub token_encryption_key: [u8; 32],
    pub balance_enabled: bool,
    /// LibreChat's `TRUST_TENANT_HEADER`: a request's `X-Tenant-Id` names its tenant.
    pub trust_tenant_header: bool,
    /// `JWT_FAST_PATH`: the shim answers cached tokens under passport (lib/fastPath.js).
    pub jwt_fast_path: bool,
    pub sso: SsoConfig,
    pub start_balance: i64,
    /// The session cookies' `Secure` flag, decided as LibreChat decides it (`secure_cookie`).
    pub secure_cookies: bool,
    pub mapping: Mapping,
    pub policy: Policy,
    pub logout_url: Option<Url>,
    pub session_mode: SessionMode,
    pub refresh_grace: Duration,
    pub user_cache_ttl: Duration,
    pub cache_max: usize,
    /// `AUTH_LOG_REPEAT_SECONDS`: applied by the shim's log lines (lib/repeatedLines.js).
    pub log_repeat: Duration,
    pub bearer_mode: BearerMode,
    pub jwks: Option<JwksConfig>,
    pub introspection: Option<IntrospectionConfig>,
    pub token_cache_ttl: Duration,
    pub provision_on_bearer: bool,
    pub userinfo_budget: UserinfoBudget,
    pub breaker: BreakerConfig,
    /// Extra trusted roots (PEM) for internal backends: `BACKEND_CA_CERT_PATH`.
    pub ca_cert_pem: Option<Vec<u8>>,
    /// `BACKEND_LOGIN_USES_USERNAME`: LibreChat's login page asks for a user name, not an email.
    pub login_uses_username: bool,
    /// `BACKEND_MFA_VERIFY_URL` and its settings: the backend's second factor, when set.
    pub mfa: Option<MfaConfig>,
    /// `BACKEND_EVENTS_SECRET`: backend events are accepted, signed with it, only when set.
    pub events_secret: Option<Vec<u8>>,
    /// How far a signed event's timestamp may be from now (replay window).
    pub events_tolerance_secs: u64,
    /// How often every instance reads revocations made by the others (zero: never).
    pub revocation_poll: Duration,
}

/// Read access to the variable map with the parsing rules shared by all variables.
struct Vars<'a>(&'a HashMap<String, String>);

impl<'a> Vars<'a> {
    /// A set, non-blank value (surrounding whitespace removed).
    fn get(&self, name: &str) -> Option<&'a str> {
        self.0.get(name).map(|v| v.trim()).filter(|v| !v.is_empty())
    }

    fn required(&self, name: &'static str) -> AuthResult<&'a str> {
        self.get(name)
            .ok_or_else(|| AuthError::config(name, "is required but not set"))
    }

    fn url(&self, name: &'static str) -> AuthResult<Url> {
        let raw = self.required(name)?;
        let url = Url::parse(raw)
            .map_err(|_| AuthError::config(name, "must be an absolute http:// or https:// URL"))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(AuthError::config(
                name,
                "must be an absolute http:// or https:// URL",
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(AuthError::config(
                name,
                "must not carry credentials in the URL",
            ));
        }
        Ok(url)
    }

    fn optional_url(&self, name: &'static str) -> AuthResult<Option<Url>> {
        self.get(name).map(|_| self.url(name)).transpose()
    }

    /// The row of a setting (config/settings.rs): its kind and default. Every name read here has
    /// one; a missing row is a mistake of this file, reported rather than panicking.
    fn row(name: &'static str) -> AuthResult<&'static Setting> {
        settings::find(name)
            .ok_or_else(|| AuthError::Internal(format!("{name} is not in the settings table")))
    }

    /// The row's default value (`None` when it has none).
    fn default_of(name: &'static str) -> AuthResult<Option<&'static str>> {
        Ok(match Self::row(name)?.default {
            settings::WhenUnset::Default(v) => Some(v),
            _ => None,
        })
    }

    /// A whole number within the row's bounds, else its default.
    fn whole(&self, name: &'static str) -> AuthResult<u64> {
        let Kind::Whole { min, max, .. } = Self::row(name)?.kind else {
            return Err(AuthError::Internal(format!("{name} is not a whole number")));
        };
        let default = Self::default_of(name)?
            .and_then(|d| d.parse::<u64>().ok())
            .ok_or_else(|| AuthError::Internal(format!("{name} has no default")))?;
        self.number_in(name, default, min, max)
    }

    /// A whole number in `min..=max`.
    fn number_in(&self, name: &'static str, default: u64, min: u64, max: u64) -> AuthResult<u64> {
        match self.get(name) {
            None => Ok(default),
            Some(raw) => raw
                .parse::<u64>()
                .ok()
                .filter(|n| (min..=max).contains(n))
                .ok_or_else(|| {
                    let expected = if max == u64::MAX {
                        format!("must be a whole number >= {min}")
                    } else {
                        format!("must be a whole number from {min} to {max}")
                    };
                    AuthError::config(name, expected)
                }),
        }
    }

    /// Our own flags: `true` or `false` (any case); anything else is a mistake worth reporting.
    fn flag(&self, name: &'static str) -> AuthResult<bool> {
        let default = Self::default_of(name)? == Some("true");
        match self.get(name).map(|v| v.to_ascii_lowercase()) {
            None => Ok(default),
            Some(v) if v == "true" => Ok(true),
            Some(v) if v == "false" => Ok(false),
            Some(_) => Err(AuthError::config(name, "must be true or false")),
        }
    }

    /// One of `options`; the row's default when unset.
    fn choice<T: Copy>(&self, name: &'static str, options: &[(&str, T)]) -> AuthResult<T> {
        let raw = match self.get(name) {
            Some(raw) => raw,
            None => Self::default_of(name)?
                .ok_or_else(|| AuthError::Internal(format!("{name} has no default")))?,
        };
        options
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(raw))
            .map(|(_, v)| *v)
            .ok_or_else(|| {
                let names: Vec<&str> = options.iter().map(|(k, _)| *k).collect();
                AuthError::config(name, format!("must be one of: {}", names.join(", ")))
            })
    }

    /// A positive number of milliseconds up to the row's bound, arithmetic allowed.
    fn millis(&self, name: &'static str) -> AuthResult<u64> {
        let Kind::Millis { max } = Self::row(name)?.kind else {
            return Err(AuthError::Internal(format!(
                "{name} is not in milliseconds"
            )));
        };
        match self.get(name) {
            None => Self::default_of(name)?
                .and_then(|d| d.parse::<u64>().ok())
                .ok_or_else(|| AuthError::Internal(format!("{name} has no default"))),
            Some(raw) => match eval_arithmetic(raw) {
                Some(v) if (1.0..=max as f64).contains(&v) => Ok(v as u64),
                _ => Err(AuthError::config(
                    name,
                    format!("must be a positive number of milliseconds up to {max} (arithmetic such as 1000 * 60 * 15 is allowed)"),
                )),
            },
        }
    }

    /// LibreChat's `isEnabled`: true only for `true`, case-insensitive.
    fn librechat_flag(&self, name: &str) -> bool {
        self.get(name)
            .map(|v| v.eq_ignore_ascii_case("true"))
            .unwrap_or(false)
    }

    /// A comma-separated list; the row's default when unset.
    fn paths(&self, name: &'static str) -> AuthResult<Vec<String>> {
        let raw = match self.get(name) {
            Some(raw) => raw,
            None => Self::default_of(name)?.unwrap_or(""),
        };
        Ok(raw
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect())
    }

    /// Text; the row's default when unset.
    fn text(&self, name: &'static str) -> AuthResult<String> {
        let value = match self.get(name) {
            Some(v) => Some(v),
            None => Self::default_of(name)?,
        };
        value
            .map(str::to_string)
            .ok_or_else(|| AuthError::Internal(format!("{name} has no default")))
    }
}

/// The backend's second factor, read only with `BACKEND_MFA_VERIFY_URL`.
fn mfa_config(v: &Vars) -> AuthResult<Option<MfaConfig>> {
    let Some(verify_url) = v.optional_url("BACKEND_MFA_VERIFY_URL")? else {
        return Ok(None);
    };
    let status = match v.get("BACKEND_MFA_STATUS") {
        None => None,
        Some(s) => Some(
            s.parse::<u16>()
                .ok()
                .filter(|n| (400..500).contains(n))
                .ok_or_else(|| {
                    AuthError::config("BACKEND_MFA_STATUS", "must be a 4xx status code")
                })?,
        ),
    };
    Ok(Some(MfaConfig {
        verify_url,
        flag: v.paths("BACKEND_MFA_FIELD")?,
        challenge: v.paths("BACKEND_MFA_CHALLENGE_FIELD")?,
        status,
        challenge_key: v.text("BACKEND_MFA_CHALLENGE_KEY")?,
        code_key: v.text("BACKEND_MFA_CODE_KEY")?,
        backup_codes: v.flag("BACKEND_MFA_BACKUP_CODES")?,
        ttl: Duration::from_secs(v.whole("BACKEND_MFA_TTL")?),
        max_attempts: u32::try_from(v.whole("BACKEND_MFA_MAX_ATTEMPTS")?).unwrap_or(5),
    }))
}

/// The single sign-on settings, checked together.
fn sso_config(v: &Vars, bearer_mode: BearerMode) -> AuthResult<SsoConfig> {
    let cookie = v.get("BACKEND_SSO_COOKIE").map(str::to_string);
    // RFC 6265's cookie-name token: no separators, spaces or controls.
    // (`\x22` is the double quote: no quote character in this file's strings, which a test reads.)
    let token_char =
        |c: char| c.is_ascii_graphic() && !b"()<>@,;:\\/[]?={}\x22".contains(&(c as u8));
    if cookie
        .as_deref()
        .is_some_and(|c| !c.chars().all(token_char))
    {
        return Err(AuthError::config(
            "BACKEND_SSO_COOKIE",
            "must be a cookie name (letters, digits and !#$%&'*+-.^_`|~)",
        ));
    }
    let cookie_url = v.optional_url("BACKEND_SSO_COOKIE_URL")?;
    if cookie.is_some() && cookie_url.is_none() && bearer_mode == BearerMode::Off {
        return Err(AuthError::config(
            "BACKEND_SSO_COOKIE",
            "needs BACKEND_SSO_COOKIE_URL, or BACKEND_BEARER_TOKENS other than off to check the cookie as a token",
        ));
    }
    let proxies = v
        .paths("BACKEND_SSO_PROXIES")?
        .iter()
        .map(|p| Cidr::parse(p))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| {
            AuthError::config(
                "BACKEND_SSO_PROXIES",
                "must be addresses or address ranges (10.0.0.5, 10.0.0.0/8, fd00::/8), comma-separated",
            )
        })?;
    let lower = |name: &'static str| -> AuthResult<Vec<String>> {
        Ok(v.paths(name)?
            .iter()
            .map(|h| h.to_ascii_lowercase())
            .collect())
    };
    let proxy_users = v.choice(
        "BACKEND_SSO_PROXY_USERS",
        &[
            ("backend", ProxyUsers::Backend),
            ("headers", ProxyUsers::Headers),
        ],
    )?;
    let lookup_url = v.optional_url("BACKEND_SSO_LOOKUP_URL")?;
    if !proxies.is_empty() && proxy_users == ProxyUsers::Backend && lookup_url.is_none() {
        return Err(AuthError::config(
            "BACKEND_SSO_LOOKUP_URL",
            "is required with BACKEND_SSO_PROXIES unless BACKEND_SSO_PROXY_USERS=headers",
        ));
    }
    Ok(SsoConfig {
        cookie,
        cookie_url,
        proxies,
        user_headers: lower("BACKEND_SSO_USER_HEADER")?,
        email_headers: lower("BACKEND_SSO_EMAIL_HEADER")?,
        name_headers: lower("BACKEND_SSO_NAME_HEADER")?,
        groups_headers: lower("BACKEND_SSO_GROUPS_HEADER")?,
        proxy_users,
        lookup_url,
        logout_url: v.optional_url("BACKEND_SSO_LOGOUT_URL")?,
    })
}

impl Config {
    /// Every backend URL the service may call: the breaker's hosts (and the metrics' labels) are
    /// theirs. A new backend endpoint adds its URL here.
    pub fn backend_urls(&self) -> Vec<&Url> {
        let mut urls = vec![&self.auth_url, &self.userinfo_url, &self.refresh_url];
        urls.extend(self.logout_url.as_ref());
        urls.extend(self.jwks.as_ref().map(|j| &j.url));
        urls.extend(self.introspection.as_ref().map(|i| &i.url));
        urls.extend(self.sso.cookie_url.as_ref());
        urls.extend(self.mfa.as_ref().map(|m| &m.verify_url));
        urls.extend(self.sso.lookup_url.as_ref());
        urls
    }

    pub fn from_vars(map: &HashMap<String, String>) -> AuthResult<Config> {
        let v = Vars(map);
        let auth_url = v.url("BACKEND_AUTH_URL")?;
        let userinfo_url = v.url("BACKEND_USER_INFO_URL")?;
        let refresh_url = v.url("BACKEND_REFRESH_URL")?;

        let jwt_secret = v.required("JWT_SECRET")?.as_bytes().to_vec();
        let jwt_refresh_secret = v.required("JWT_REFRESH_SECRET")?.as_bytes().to_vec();
        if jwt_secret == jwt_refresh_secret {
            // Equal secrets make every refresh token a valid access token.
            return Err(AuthError::config(
                "JWT_REFRESH_SECRET",
                "must differ from JWT_SECRET",
            ));
        }

        let mongo_uri = v.required("MONGO_URI")?.to_string();
        if !(mongo_uri.starts_with("mongodb://") || mongo_uri.starts_with("mongodb+srv://")) {
            return Err(AuthError::config(
                "MONGO_URI",
                "must start with mongodb:// or mongodb+srv://",
            ));
        }

        let start_balance = v
            .get("START_BALANCE")
            .or(Vars::default_of("START_BALANCE")?)
            .unwrap_or("0")
            .parse::<i64>()
            .map_err(|_| {
                AuthError::config("START_BALANCE", "must be a whole number of token credits")
            })?;

        let mapping = Mapping {
            login_username_field: v.text("BACKEND_LOGIN_USERNAME_FIELD")?,
            access_token: v.paths("BACKEND_ACCESS_TOKEN_FIELD")?,
            refresh_token: v.paths("BACKEND_REFRESH_TOKEN_FIELD")?,
            expires_in: v.paths("BACKEND_EXPIRES_IN_FIELD")?,
            user_id: v.paths("BACKEND_USER_ID_FIELD")?,
            user_email: v.paths("BACKEND_USER_EMAIL_FIELD")?,
            user_username: v.paths("BACKEND_USER_USERNAME_FIELD")?,
            user_name: v.paths("BACKEND_USER_NAME_FIELD")?,
            user_avatar: v.paths("BACKEND_USER_AVATAR_FIELD")?,
            user_roles: v.paths("BACKEND_ROLES_FIELD")?,
            session_id: v.paths("BACKEND_SESSION_ID_FIELD")?,
            user_tenant: v.paths("BACKEND_TENANT_FIELD")?,
        };
        let policy = Policy {
            admin_roles: v.paths("BACKEND_ADMIN_ROLES")?,
            required_roles: v.paths("BACKEND_REQUIRED_ROLES")?,
            allowed_email_domains: v
                .paths("BACKEND_ALLOWED_EMAIL_DOMAINS")?
                .into_iter()
                .map(|d| crate::identity::fold_case(d.trim_start_matches('@')))
                .collect(),
            keep_local_secrets: v.flag("BACKEND_LINK_KEEP_LOCAL_SECRETS")?,
            link_existing: v.choice(
                "BACKEND_LINK_EXISTING",
                &[
                    ("never", LinkExisting::Never),
                    ("email", LinkExisting::Email),
                ],
            )?,
        };
        if mapping.user_roles.is_empty()
            && !(policy.admin_roles.is_empty() && policy.required_roles.is_empty())
        {
            return Err(AuthError::config(
                "BACKEND_ROLES_FIELD",
                "is required when BACKEND_ADMIN_ROLES or BACKEND_REQUIRED_ROLES is set",
            ));
        }

        let session_mode = v.choice(
            "BACKEND_SESSION_MODE",
            &[
                ("librechat", SessionMode::LibreChat),
                ("backend", SessionMode::Backend),
            ],
        )?;
        let bearer_mode = v.choice(
            "BACKEND_BEARER_TOKENS",
            &[
                ("userinfo", BearerMode::Userinfo),
                ("jwks", BearerMode::Jwks),
                ("introspection", BearerMode::Introspection),
                ("off", BearerMode::Off),
            ],
        )?;
        if session_mode == SessionMode::Backend && bearer_mode == BearerMode::Off {
            return Err(AuthError::config(
                "BACKEND_BEARER_TOKENS",
                "must not be off with BACKEND_SESSION_MODE=backend (the browser presents backend tokens)",
            ));
        }
        let jwks = if bearer_mode == BearerMode::Jwks {
            let url = v.url("BACKEND_JWKS_URL")?;
            let issuer = v.required("BACKEND_JWT_ISSUER")?.to_string();
            Some(JwksConfig {
                url,
                issuer,
                audience: v.get("BACKEND_JWT_AUDIENCE").map(str::to_string),
                id_claim: v.text("BACKEND_JWT_ID_CLAIM")?,
                cache_ttl: Duration::from_secs(v.whole("BACKEND_JWKS_CACHE_TTL")?),
                refetch_cooldown: Duration::from_millis(
                    v.whole("BACKEND_JWKS_REFETCH_COOLDOWN_MS")?,
                ),
                max_stale: Duration::from_secs(v.whole("BACKEND_JWKS_MAX_STALE")?),
            })
        } else {
            None
        };

        let introspection = if bearer_mode == BearerMode::Introspection {
            Some(IntrospectionConfig {
                url: v.url("BACKEND_INTROSPECTION_URL")?,
                client_id: v.required("BACKEND_INTROSPECTION_CLIENT_ID")?.to_string(),
                client_secret: Secret(
                    v.required("BACKEND_INTROSPECTION_CLIENT_SECRET")?
                        .to_string(),
                ),
                audience: v.get("BACKEND_INTROSPECTION_AUDIENCE").map(str::to_string),
                issuer: v.get("BACKEND_INTROSPECTION_ISSUER").map(str::to_string),
                required_scopes: v
                    .get("BACKEND_INTROSPECTION_SCOPE")
                    .map(|s| {
                        s.split([' ', ','])
                            .filter(|s| !s.is_empty())
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default(),
                id_claim: v.text("BACKEND_INTROSPECTION_ID_CLAIM")?,
                token_type: v
                    .get("BACKEND_INTROSPECTION_TOKEN_TYPE")
                    .map(str::to_string),
            })
        } else {
            None
        };

        let logout_url = v.optional_url("BACKEND_LOGOUT_URL")?;
        let sso = sso_config(&v, bearer_mode)?;
        let mfa = mfa_config(&v)?;
        let production = v.get("NODE_ENV") == Some("production");
        let allow_insecure_http = v.flag("BACKEND_ALLOW_INSECURE_HTTP")?;
        if production && !allow_insecure_http {
            let urls = [
                ("BACKEND_AUTH_URL", Some(&auth_url)),
                ("BACKEND_USER_INFO_URL", Some(&userinfo_url)),
                ("BACKEND_REFRESH_URL", Some(&refresh_url)),
                ("BACKEND_LOGOUT_URL", logout_url.as_ref()),
                ("BACKEND_JWKS_URL", jwks.as_ref().map(|j| &j.url)),
                (
                    "BACKEND_INTROSPECTION_URL",
                    introspection.as_ref().map(|i| &i.url),
                ),
                ("BACKEND_SSO_COOKIE_URL", sso.cookie_url.as_ref()),
                (
                    "BACKEND_MFA_VERIFY_URL",
                    mfa.as_ref().map(|m| &m.verify_url),
                ),
                ("BACKEND_SSO_LOOKUP_URL", sso.lookup_url.as_ref()),
            ];
            if let Some((name, _)) = urls
                .iter()
                .find(|(_, u)| u.is_some_and(|u| u.scheme() == "http"))
            {
                return Err(AuthError::config(
                    name,
                    "must use https:// when NODE_ENV=production (or set BACKEND_ALLOW_INSECURE_HTTP=true)",
                ));
            }
        }
        let ca_cert_pem = match v.get("BACKEND_CA_CERT_PATH") {
            None => None,
            Some(path) => Some(std::fs::read(path).map_err(|_| {
                AuthError::config("BACKEND_CA_CERT_PATH", "cannot be read (a PEM file path)")
            })?),
        };

        Ok(Config {
            ca_cert_pem,
            login_uses_username: v.flag("BACKEND_LOGIN_USES_USERNAME")?,
            events_secret: match v.get("BACKEND_EVENTS_SECRET") {
                None => None,
                Some(s) if s.chars().count() < MIN_EVENTS_SECRET_CHARS => {
                    return Err(AuthError::config(
                        "BACKEND_EVENTS_SECRET",
                        format!("must be at least {MIN_EVENTS_SECRET_CHARS} characters (e.g. `openssl rand -hex 32`)"),
                    ))
                }
                Some(s) => Some(s.as_bytes().to_vec()),
            },
            events_tolerance_secs: v.whole("BACKEND_EVENTS_TOLERANCE_SECONDS")?,
            revocation_poll: Duration::from_millis(v.whole("REVOCATION_POLL_MS")?),
            logout_url,
            session_mode,
            refresh_grace: Duration::from_millis(v.whole("REFRESH_GRACE_MS")?),
            user_cache_ttl: Duration::from_secs(v.whole("USER_CACHE_TTL")?),
            cache_max: usize::try_from(v.whole("AUTH_CACHE_MAX_ENTRIES")?)
                .unwrap_or(usize::MAX),
            log_repeat: Duration::from_secs(v.whole("AUTH_LOG_REPEAT_SECONDS")?),
            bearer_mode,
            jwks,
            introspection,
            token_cache_ttl: Duration::from_secs(v.whole("BACKEND_TOKEN_CACHE_TTL")?),
            provision_on_bearer: v.flag("BACKEND_PROVISION_ON_BEARER")?,
            userinfo_budget: UserinfoBudget {
                max_concurrent: usize::try_from(v.whole("BACKEND_USERINFO_MAX_CONCURRENT")?)
                .unwrap_or(100_000),
                per_second: u32::try_from(v.whole("BACKEND_USERINFO_RATE")?)
                .unwrap_or(1_000_000),
                burst: u32::try_from(v.whole("BACKEND_USERINFO_BURST")?)
                .unwrap_or(1_000_000),
            },
            breaker: BreakerConfig {
                failures: u32::try_from(v.whole("BACKEND_BREAKER_FAILURES")?)
                .unwrap_or(1_000),
                cooldown: Duration::from_millis(v.whole("BACKEND_BREAKER_COOLDOWN_MS")?),
                probes: u32::try_from(v.whole("BACKEND_BREAKER_PROBES")?)
                .unwrap_or(1_000),
                max_pending: usize::try_from(v.whole("BACKEND_MAX_PENDING")?)
                .unwrap_or(100_000),
                queue_wait: Duration::from_millis(v.millis("BACKEND_TIMEOUT_MS")?),
            },
            auth_url,
            userinfo_url,
            refresh_url,
            jwt_secret,
            jwt_refresh_secret,
            mongo_uri,
            session_expiry_ms: v.millis("SESSION_EXPIRY")?,
            refresh_token_expiry_ms: v.millis("REFRESH_TOKEN_EXPIRY")?,
            backend_timeout: Duration::from_millis(v.millis("BACKEND_TIMEOUT_MS")?),
            db_timeout: Duration::from_millis(v.millis("MONGO_TIMEOUT_MS")?),
            token_encryption_key: parse_key(v.required("BACKEND_TOKEN_ENCRYPTION_KEY")?)?,
            balance_enabled: v.librechat_flag("CHECK_BALANCE"),
            sso,
            mfa,
            trust_tenant_header: v.librechat_flag("TRUST_TENANT_HEADER"),
            jwt_fast_path: v.flag("JWT_FAST_PATH")?,
            start_balance,
            secure_cookies: secure_cookie(map),
            mapping,
            policy,
        })
    }
}

/// LibreChat's `shouldUseSecureCookie()` (`packages/api/src/oauth/csrf.ts`, v0.8.6 to v0.8.8-rc1),
/// on the raw values as LibreChat reads them, so that our cookies carry the flag LibreChat's own
/// would: `SESSION_COOKIE_SECURE=true|false` (trimmed, any case) wins; anything else is ignored
/// and the flag is on in production (`NODE_ENV` exactly `production`) unless `DOMAIN_SERVER`'s
/// host is `localhost`, `127.0.0.1`, `::1` or ends with `.localhost`. The host is read with the
/// WHATWG URL rules LibreChat's `new URL` applies (the `url` crate implements them), so
/// `http://[::1]:3080` has the host `[::1]` and is not local there either.
fn secure_cookie(vars: &HashMap<String, String>) -> bool {
    let raw = |name: &str| vars.get(name).map(String::as_str);
    match raw("SESSION_COOKIE_SECURE").map(|v| v.trim().to_lowercase()) {
        Some(v) if v == "true" => return true,
        Some(v) if v == "false" => return false,
        _ => {}
    }
    let production = raw("NODE_ENV") == Some("production");
    let domain = raw("DOMAIN_SERVER").unwrap_or("");
    let host = if domain.is_empty() {
        String::new()
    } else {
        let has_scheme = domain
            .get(..8)
            .is_some_and(|p| p.eq_ignore_ascii_case("https://"))
            || domain
                .get(..7)
                .is_some_and(|p| p.eq_ignore_ascii_case("http://"));
        let normalized = if has_scheme {
            domain.to_string()
        } else {
            format!("http://{domain}")
        };
        match Url::parse(&normalized) {
            Ok(url) => url.host_str().unwrap_or("").to_lowercase(),
            // LibreChat falls back to the whole value.
            Err(_) => domain.to_lowercase(),
        }
    };
    let local =
        matches!(host.as_str(), "localhost" | "127.0.0.1" | "::1") || host.ends_with(".localhost");
    production && !local
}

/// 32 bytes for AES-256-GCM, as 64 hex characters or standard base64.
fn parse_key(raw: &str) -> AuthResult<[u8; 32]> {
    let bytes = if raw.len() == 64 && raw.bytes().all(|b| b.is_ascii_hexdigit()) {
        hex::decode(raw).ok()
    } else {
        base64::engine::general_purpose::STANDARD.decode(raw).ok()
    };
    bytes
        .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok())
        .ok_or_else(|| {
            AuthError::config(
                "BACKEND_TOKEN_ENCRYPTION_KEY",
                "must be 32 random bytes as 64 hex characters or base64 (e.g. `openssl rand -hex 32`)",
            )
        })
}

/// Evaluates `+ - * /` with parentheses over decimal numbers: the subset of LibreChat's `math()`
/// that expiry variables use (`1000 * 60 * 15`).
/// Longer or deeper input is refused (`None`): the parser recurses once per parenthesis.
pub fn eval_arithmetic(s: &str) -> Option<f64> {
    if s.len() > MAX_ARITHMETIC_LEN {
        return None;
    }
    struct P<'a> {
        b: &'a [u8],
        i: usize,
        depth: usize,
    }
    impl P<'_> {
        fn ws(&mut self) {
            while self.i < self.b.len() && self.b[self.i].is_ascii_whitespace() {
                self.i += 1;
            }
        }
        fn expr(&mut self) -> Option<f64> {
            let mut v = self.term()?;
            loop {
                self.ws();
                match self.b.get(self.i) {
                    Some(b'+') => {
                        self.i += 1;
                        v += self.term()?;
                    }
                    Some(b'-') => {
                        self.i += 1;
                        v -= self.term()?;
                    }
                    _ => return Some(v),
                }
            }
        }
        fn term(&mut self) -> Option<f64> {
            let mut v = self.atom()?;
            loop {
                self.ws();
                match self.b.get(self.i) {
                    Some(b'*') => {
                        self.i += 1;
                        v *= self.atom()?;
                    }
                    Some(b'/') => {
                        self.i += 1;
                        v /= self.atom()?;
                    }
                    _ => return Some(v),
                }
            }
        }
        fn atom(&mut self) -> Option<f64> {
            self.ws();
            if self.b.get(self.i) == Some(&b'(') {
                self.i += 1;
                self.depth += 1;
                if self.depth > MAX_ARITHMETIC_DEPTH {
                    return None;
                }
                let v = self.expr()?;
                self.depth -= 1;
                self.ws();
                if self.b.get(self.i) != Some(&b')') {
                    return None;
                }
                self.i += 1;
                return Some(v);
            }
            let start = self.i;
            while self.i < self.b.len()
                && (self.b[self.i].is_ascii_digit() || self.b[self.i] == b'.')
            {
                self.i += 1;
            }
            std::str::from_utf8(&self.b[start..self.i])
                .ok()?
                .parse()
                .ok()
        }
    }
    let mut p = P {
        b: s.as_bytes(),
        i: 0,
        depth: 0,
    };
    let v = p.expr()?;
    p.ws();
    (p.i == p.b.len()).then_some(v)
}

#[cfg(test)]
pub mod tests {
    use super::*;

    pub fn sample_vars() -> HashMap<String, String> {
        [
            ("BACKEND_AUTH_URL", "http://127.0.0.1:9/login"),
            ("BACKEND_USER_INFO_URL", "http://127.0.0.1:9/userinfo"),
            ("BACKEND_REFRESH_URL", "http://127.0.0.1:9/refresh"),
            ("JWT_SECRET", "access-secret"),
            ("JWT_REFRESH_SECRET", "refresh-secret"),
            ("MONGO_URI", "mongodb://127.0.0.1:9/test"),
            (
                "BACKEND_TOKEN_ENCRYPTION_KEY",
                "0000000000000000000000000000000000000000000000000000000000000000",
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    fn invalid_var(vars: &HashMap<String, String>) -> &'static str {
        match Config::from_vars(vars) {
            Err(AuthError::ConfigInvalid { var, .. }) => var,
            other => panic!("expected CONFIG_INVALID, got {other:?}"),
        }
    }

    #[test]
    fn defaults() {
        let c = Config::from_vars(&sample_vars()).unwrap();
        assert_eq!(c.session_expiry_ms, 900_000);
        assert_eq!(c.refresh_token_expiry_ms, 604_800_000);
        assert_eq!(c.backend_timeout, Duration::from_secs(10));
        assert_eq!(
            c.breaker,
            BreakerConfig {
                failures: 5,
                cooldown: Duration::from_secs(30),
                probes: 1,
                max_pending: 256,
                queue_wait: Duration::from_secs(10),
            }
        );
        assert!(!c.balance_enabled);
        assert!(!c.secure_cookies);
        assert_eq!(c.mapping.access_token, vec!["token", "access_token"]);
        assert!(!c.login_uses_username);
    }

    #[test]
    fn item_10_1_login_uses_username_is_a_validated_flag() {
        let mut vars = sample_vars();
        vars.insert("BACKEND_LOGIN_USES_USERNAME".into(), " TRUE ".into());
        assert!(Config::from_vars(&vars).unwrap().login_uses_username);
        vars.insert("BACKEND_LOGIN_USES_USERNAME".into(), "false".into());
        assert!(!Config::from_vars(&vars).unwrap().login_uses_username);
        vars.insert("BACKEND_LOGIN_USES_USERNAME".into(), "yes".into());
        assert_eq!(invalid_var(&vars), "BACKEND_LOGIN_USES_USERNAME");
    }

    #[test]
    fn each_required_variable_is_named() {
        for name in [
            "BACKEND_AUTH_URL",
            "BACKEND_USER_INFO_URL",
            "BACKEND_REFRESH_URL",
            "JWT_SECRET",
            "JWT_REFRESH_SECRET",
            "MONGO_URI",
            "BACKEND_TOKEN_ENCRYPTION_KEY",
        ] {
            let mut vars = sample_vars();
            vars.remove(name);
            assert_eq!(invalid_var(&vars), name);
            vars.insert(name.to_string(), "   ".to_string());
            assert_eq!(invalid_var(&vars), name);
        }
    }

    #[test]
    fn invalid_values_are_named() {
        let cases = [
            ("BACKEND_AUTH_URL", "not a url"),
            ("BACKEND_USER_INFO_URL", "ftp://example.com/x"),
            ("BACKEND_REFRESH_URL", "https://user:pw@example.com/r"),
            ("JWT_REFRESH_SECRET", "access-secret"),
            ("MONGO_URI", "postgres://x"),
            ("SESSION_EXPIRY", "soon"),
            ("REFRESH_TOKEN_EXPIRY", "-5"),
            ("BACKEND_TIMEOUT_MS", "0"),
            ("BACKEND_TOKEN_ENCRYPTION_KEY", "abcd"),
            ("START_BALANCE", "lots"),
            ("BACKEND_SESSION_MODE", "cookie"),
            ("BACKEND_BEARER_TOKENS", "maybe"),
            ("USER_CACHE_TTL", "-1"),
            ("BACKEND_PROVISION_ON_BEARER", "yes"),
            ("BACKEND_LOGOUT_URL", "/logout"),
            ("BACKEND_CA_CERT_PATH", "/nonexistent/ca.pem"),
            ("BACKEND_LINK_EXISTING", "always"),
        ];
        for (name, value) in cases {
            let mut vars = sample_vars();
            vars.insert(name.to_string(), value.to_string());
            assert_eq!(invalid_var(&vars), name, "{name}={value}");
        }
    }

    #[test]
    fn plain_http_is_refused_in_production_unless_allowed() {
        let mut vars = sample_vars();
        vars.insert("NODE_ENV".into(), "production".into());
        assert_eq!(invalid_var(&vars), "BACKEND_AUTH_URL");
        vars.insert(
            "BACKEND_AUTH_URL".into(),
            "https://idp.example/login".into(),
        );
        assert_eq!(invalid_var(&vars), "BACKEND_USER_INFO_URL");
        vars.insert("BACKEND_ALLOW_INSECURE_HTTP".into(), "true".into());
        assert!(Config::from_vars(&vars).is_ok());
        vars.insert("BACKEND_ALLOW_INSECURE_HTTP".into(), "yes".into());
        assert_eq!(invalid_var(&vars), "BACKEND_ALLOW_INSECURE_HTTP");
    }

    #[test]
    fn role_lists_need_a_roles_field() {
        let mut vars = sample_vars();
        vars.insert("BACKEND_ADMIN_ROLES".into(), "admin, ops".into());
        assert_eq!(invalid_var(&vars), "BACKEND_ROLES_FIELD");
        vars.insert("BACKEND_ROLES_FIELD".into(), "groups".into());
        let c = Config::from_vars(&vars).unwrap();
        assert_eq!(c.policy.admin_roles, vec!["admin", "ops"]);
        assert_eq!(c.policy.link_existing, LinkExisting::Never);
    }

    #[test]
    fn bearer_modes() {
        let mut vars = sample_vars();
        vars.insert("BACKEND_BEARER_TOKENS".into(), "jwks".into());
        assert_eq!(invalid_var(&vars), "BACKEND_JWKS_URL");
        vars.insert("BACKEND_JWKS_URL".into(), "http://127.0.0.1:9/jwks".into());
        assert_eq!(invalid_var(&vars), "BACKEND_JWT_ISSUER");
        vars.insert("BACKEND_JWT_ISSUER".into(), "https://idp".into());
        let c = Config::from_vars(&vars).unwrap();
        assert_eq!(c.bearer_mode, BearerMode::Jwks);
        assert_eq!(c.jwks.unwrap().id_claim, "sub");
        let mut vars = sample_vars();
        vars.insert("BACKEND_SESSION_MODE".into(), "backend".into());
        vars.insert("BACKEND_BEARER_TOKENS".into(), "off".into());
        assert_eq!(invalid_var(&vars), "BACKEND_BEARER_TOKENS");
    }

    #[test]
    fn item_8_16_durations_have_upper_bounds() {
        let cases = [
            ("USER_CACHE_TTL", "86400", "86401"),
            ("BACKEND_TOKEN_CACHE_TTL", "86400", "86401"),
            ("REFRESH_GRACE_MS", "86400000", "86400001"),
            (
                "SESSION_EXPIRY",
                "1000 * 60 * 60 * 24 * 365",
                "1000 * 60 * 60 * 24 * 366",
            ),
            ("REFRESH_TOKEN_EXPIRY", "31536000000", "31536000001"),
            ("BACKEND_TIMEOUT_MS", "600000", "600001"),
            ("MONGO_TIMEOUT_MS", "600000", "600001"),
            ("BACKEND_USERINFO_MAX_CONCURRENT", "100000", "100001"),
            ("BACKEND_USERINFO_RATE", "1000000", "0"),
            ("BACKEND_USERINFO_BURST", "1000000", "1000001"),
            ("BACKEND_BREAKER_FAILURES", "1000", "1001"),
            ("BACKEND_BREAKER_COOLDOWN_MS", "86400000", "86400001"),
            ("BACKEND_BREAKER_PROBES", "1000", "1001"),
            ("BACKEND_MAX_PENDING", "100000", "100001"),
        ];
        for (name, max, over) in cases {
            let mut vars = sample_vars();
            vars.insert(name.to_string(), max.to_string());
            assert!(Config::from_vars(&vars).is_ok(), "{name}={max}");
            for bad in [over, "18446744073709551615", "1e300"] {
                vars.insert(name.to_string(), bad.to_string());
                assert_eq!(invalid_var(&vars), name, "{name}={bad}");
            }
        }
        let mut vars = sample_vars();
        vars.insert("BACKEND_BEARER_TOKENS".into(), "jwks".into());
        vars.insert("BACKEND_JWKS_URL".into(), "http://127.0.0.1:9/jwks".into());
        vars.insert("BACKEND_JWT_ISSUER".into(), "https://idp".into());
        for (name, max, over) in [
            ("BACKEND_JWKS_CACHE_TTL", "86400", "86401"),
            ("BACKEND_JWKS_REFETCH_COOLDOWN_MS", "86400000", "86400001"),
            ("BACKEND_JWKS_MAX_STALE", "604800", "604801"),
        ] {
            let mut vars = vars.clone();
            vars.insert(name.to_string(), max.to_string());
            assert!(Config::from_vars(&vars).is_ok(), "{name}={max}");
            vars.insert(name.to_string(), over.to_string());
            assert_eq!(invalid_var(&vars), name, "{name}={over}");
        }
    }

    pub fn introspection_vars() -> HashMap<String, String> {
        let mut vars = sample_vars();
        vars.insert("BACKEND_BEARER_TOKENS".into(), "introspection".into());
        vars.insert(
            "BACKEND_INTROSPECTION_URL".into(),
            "http://127.0.0.1:9/introspect".into(),
        );
        vars.insert("BACKEND_INTROSPECTION_CLIENT_ID".into(), "librechat".into());
        vars.insert(
            "BACKEND_INTROSPECTION_CLIENT_SECRET".into(),
            "client-secret-value".into(),
        );
        vars
    }

    #[test]
    fn item_11_5_introspection_mode_names_each_missing_or_bad_variable() {
        let c = Config::from_vars(&introspection_vars()).unwrap();
        assert_eq!(c.bearer_mode, BearerMode::Introspection);
        let i = c.introspection.clone().unwrap();
        assert_eq!(i.url.as_str(), "http://127.0.0.1:9/introspect");
        assert_eq!(i.client_id, "librechat");
        assert_eq!(i.client_secret.expose(), "client-secret-value");
        assert_eq!(
            (i.audience, i.issuer, i.required_scopes.len()),
            (None, None, 0)
        );
        assert_eq!(i.id_claim, "sub");
        // The secret never shows in a debug print of the configuration.
        assert!(!format!("{c:?}").contains("client-secret-value"));
        // Each required variable, missing or blank, is named.
        for name in [
            "BACKEND_INTROSPECTION_URL",
            "BACKEND_INTROSPECTION_CLIENT_ID",
            "BACKEND_INTROSPECTION_CLIENT_SECRET",
        ] {
            let mut vars = introspection_vars();
            vars.remove(name);
            assert_eq!(invalid_var(&vars), name);
            vars.insert(name.into(), "  ".into());
            assert_eq!(invalid_var(&vars), name);
        }
        // The URL rules of the other backend URLs.
        for bad in [
            "/introspect",
            "ftp://idp/introspect",
            "https://id:pw@idp/introspect",
        ] {
            let vars = with(&introspection_vars(), "BACKEND_INTROSPECTION_URL", bad);
            assert_eq!(invalid_var(&vars), "BACKEND_INTROSPECTION_URL", "{bad}");
        }
        let mut prod = introspection_vars();
        prod.insert("NODE_ENV".into(), "production".into());
        for (name, url) in [
            ("BACKEND_AUTH_URL", "https://idp/login"),
            ("BACKEND_USER_INFO_URL", "https://idp/userinfo"),
            ("BACKEND_REFRESH_URL", "https://idp/refresh"),
        ] {
            prod.insert(name.into(), url.into());
        }
        assert_eq!(invalid_var(&prod), "BACKEND_INTROSPECTION_URL");
        prod.insert(
            "BACKEND_INTROSPECTION_URL".into(),
            "https://idp/introspect".into(),
        );
        assert!(Config::from_vars(&prod).is_ok());
        // The optional checks, trimmed; scopes split at spaces and commas.
        let mut vars = introspection_vars();
        vars.insert(
            "BACKEND_INTROSPECTION_AUDIENCE".into(),
            " librechat ".into(),
        );
        vars.insert(
            "BACKEND_INTROSPECTION_ISSUER".into(),
            " https://idp ".into(),
        );
        vars.insert(
            "BACKEND_INTROSPECTION_SCOPE".into(),
            " chat  profile,api ".into(),
        );
        vars.insert("BACKEND_INTROSPECTION_ID_CLAIM".into(), " uid ".into());
        let i = Config::from_vars(&vars).unwrap().introspection.unwrap();
        assert_eq!(i.audience.as_deref(), Some("librechat"));
        assert_eq!(i.issuer.as_deref(), Some("https://idp"));
        assert_eq!(i.required_scopes, vec!["chat", "profile", "api"]);
        assert_eq!(i.id_claim, "uid");
        // In any case, like the other choices; not read in the other modes.
        let c = Config::from_vars(&with(
            &introspection_vars(),
            "BACKEND_BEARER_TOKENS",
            " Introspection ",
        ))
        .unwrap();
        assert_eq!(c.bearer_mode, BearerMode::Introspection);
        let mut other = with(&introspection_vars(), "BACKEND_BEARER_TOKENS", "userinfo");
        other.remove("BACKEND_INTROSPECTION_CLIENT_SECRET");
        assert!(Config::from_vars(&other).unwrap().introspection.is_none());
    }

    #[test]
    fn item_21_11c_auth_cache_max_entries_has_an_upper_bound() {
        let ok = with(&sample_vars(), "AUTH_CACHE_MAX_ENTRIES", "1000000");
        assert_eq!(Config::from_vars(&ok).unwrap().cache_max, 1_000_000);
        for too_many in ["1000001", "18446744073709551615"] {
            let vars = with(&sample_vars(), "AUTH_CACHE_MAX_ENTRIES", too_many);
            assert_eq!(invalid_var(&vars), "AUTH_CACHE_MAX_ENTRIES", "{too_many}");
        }
    }

    fn jwks_vars() -> HashMap<String, String> {
        let mut vars = sample_vars();
        vars.insert("BACKEND_BEARER_TOKENS".into(), "jwks".into());
        vars.insert("BACKEND_JWKS_URL".into(), "http://127.0.0.1:9/jwks".into());
        vars.insert("BACKEND_JWT_ISSUER".into(), "https://idp".into());
        vars
    }

    fn with(base: &HashMap<String, String>, name: &str, value: &str) -> HashMap<String, String> {
        let mut vars = base.clone();
        vars.insert(name.to_string(), value.to_string());
        vars
    }

    #[test]
    fn item_14_19_every_numeric_variable_refuses_zero_negative_fraction_huge_and_text() {
        type Read = fn(&Config) -> u128;
        // (variable, whether it needs JWKS mode, the smallest allowed value, how it is read back)
        let table: [(&str, bool, u128, Read); 23] = [
            ("SESSION_EXPIRY", false, 1, |c| {
                u128::from(c.session_expiry_ms)
            }),
            ("REFRESH_TOKEN_EXPIRY", false, 1, |c| {
                u128::from(c.refresh_token_expiry_ms)
            }),
            ("BACKEND_TIMEOUT_MS", false, 1, |c| {
                c.backend_timeout.as_millis()
            }),
            ("MONGO_TIMEOUT_MS", false, 1, |c| c.db_timeout.as_millis()),
            ("REFRESH_GRACE_MS", false, 0, |c| {
                c.refresh_grace.as_millis()
            }),
            ("USER_CACHE_TTL", false, 0, |c| {
                u128::from(c.user_cache_ttl.as_secs())
            }),
            ("AUTH_CACHE_MAX_ENTRIES", false, 1, |c| c.cache_max as u128),
            ("AUTH_LOG_REPEAT_SECONDS", false, 0, |c| {
                u128::from(c.log_repeat.as_secs())
            }),
            ("BACKEND_TOKEN_CACHE_TTL", false, 0, |c| {
                u128::from(c.token_cache_ttl.as_secs())
            }),
            ("BACKEND_USERINFO_MAX_CONCURRENT", false, 1, |c| {
                c.userinfo_budget.max_concurrent as u128
            }),
            ("BACKEND_USERINFO_RATE", false, 1, |c| {
                u128::from(c.userinfo_budget.per_second)
            }),
            ("BACKEND_USERINFO_BURST", false, 1, |c| {
                u128::from(c.userinfo_budget.burst)
            }),
            ("BACKEND_EVENTS_TOLERANCE_SECONDS", false, 1, |c| {
                u128::from(c.events_tolerance_secs)
            }),
            ("REVOCATION_POLL_MS", false, 0, |c| {
                c.revocation_poll.as_millis()
            }),
            ("BACKEND_BREAKER_FAILURES", false, 0, |c| {
                u128::from(c.breaker.failures)
            }),
            ("BACKEND_BREAKER_COOLDOWN_MS", false, 1, |c| {
                c.breaker.cooldown.as_millis()
            }),
            ("BACKEND_BREAKER_PROBES", false, 1, |c| {
                u128::from(c.breaker.probes)
            }),
            ("BACKEND_MAX_PENDING", false, 1, |c| {
                c.breaker.max_pending as u128
            }),
            ("BACKEND_JWKS_CACHE_TTL", true, 1, |c| {
                u128::from(c.jwks.as_ref().unwrap().cache_ttl.as_secs())
            }),
            ("BACKEND_JWKS_REFETCH_COOLDOWN_MS", true, 0, |c| {
                c.jwks.as_ref().unwrap().refetch_cooldown.as_millis()
            }),
            ("BACKEND_JWKS_MAX_STALE", true, 0, |c| {
                u128::from(c.jwks.as_ref().unwrap().max_stale.as_secs())
            }),
            ("BACKEND_MFA_TTL", false, 1, |c| {
                u128::from(c.mfa.as_ref().unwrap().ttl.as_secs())
            }),
            ("BACKEND_MFA_MAX_ATTEMPTS", false, 1, |c| {
                u128::from(c.mfa.as_ref().unwrap().max_attempts)
            }),
        ];
        // The table is every numeric variable: each setting of a numeric kind.
        let mut read_as_numbers: Vec<&str> = settings::SETTINGS
            .iter()
            .filter(|s| matches!(s.kind, Kind::Whole { .. } | Kind::Millis { .. }))
            .map(|s| s.name)
            .collect();
        read_as_numbers.sort_unstable();
        let mut in_table: Vec<&str> = table.iter().map(|(n, ..)| *n).collect();
        in_table.sort_unstable();
        assert_eq!(in_table, read_as_numbers);
        for (name, needs_jwks, min, read) in table {
            let mut base = if needs_jwks {
                jwks_vars()
            } else {
                sample_vars()
            };
            // The second factor's numbers are read only with its URL.
            base.insert(
                "BACKEND_MFA_VERIFY_URL".into(),
                "http://127.0.0.1:9/mfa".into(),
            );
            let ok = |value: &str| {
                Config::from_vars(&with(&base, name, value))
                    .map(|c| read(&c))
                    .unwrap_or_else(|e| panic!("{name}={value:?}: {e:?}"))
            };
            // Trimmed; the smallest allowed value is taken as it is.
            assert_eq!(ok(" 7 "), 7, "{name}");
            assert_eq!(ok(&min.to_string()), min, "{name}");
            if min > 0 {
                assert_eq!(invalid_var(&with(&base, name, "0")), name, "{name}=0");
            }
            for bad in [
                "-1",
                "-0.5",
                "0.5",
                "1e3",
                "99999999999999999999999",
                "ten",
                "10 ms",
                "0x10",
                "1,000",
                "NaN",
                "inf",
            ] {
                assert_eq!(invalid_var(&with(&base, name, bad)), name, "{name}={bad}");
            }
            // Whole numbers only, except that the millisecond variables take arithmetic (as
            // LibreChat's `math()`), whose value is cut to whole milliseconds.
            let arithmetic = matches!(
                name,
                "SESSION_EXPIRY"
                    | "REFRESH_TOKEN_EXPIRY"
                    | "BACKEND_TIMEOUT_MS"
                    | "MONGO_TIMEOUT_MS"
            );
            if arithmetic {
                assert_eq!(ok("1.5"), 1, "{name}");
                assert_eq!(ok("1000 * 1.5"), 1500, "{name}");
                assert_eq!(invalid_var(&with(&base, name, "1/0")), name, "{name}=1/0");
            } else {
                assert_eq!(invalid_var(&with(&base, name, "1.5")), name, "{name}=1.5");
                assert_eq!(
                    invalid_var(&with(&base, name, "2 * 3")),
                    name,
                    "{name}=2 * 3"
                );
            }
        }
        // START_BALANCE: any whole number (nothing is credited unless it is above 0).
        for (value, credits) in [(" 20000 ", 20000), ("0", 0), ("-1", -1)] {
            let c = Config::from_vars(&with(&sample_vars(), "START_BALANCE", value)).unwrap();
            assert_eq!(c.start_balance, credits);
        }
        for bad in ["1.5", "99999999999999999999", "lots", "1e3"] {
            let vars = with(&sample_vars(), "START_BALANCE", bad);
            assert_eq!(invalid_var(&vars), "START_BALANCE", "START_BALANCE={bad}");
        }
    }

    #[test]
    fn item_14_19_choices_and_flags_in_any_case_and_trimmed() {
        let base = sample_vars();
        let c = Config::from_vars(&with(&base, "BACKEND_SESSION_MODE", " BACKEND ")).unwrap();
        assert_eq!(c.session_mode, SessionMode::Backend);
        let c = Config::from_vars(&with(&base, "BACKEND_SESSION_MODE", "LibreChat")).unwrap();
        assert_eq!(c.session_mode, SessionMode::LibreChat);
        let c = Config::from_vars(&with(&jwks_vars(), "BACKEND_BEARER_TOKENS", " jwks ")).unwrap();
        assert_eq!(c.bearer_mode, BearerMode::Jwks);
        let c = Config::from_vars(&with(&base, "BACKEND_BEARER_TOKENS", "OFF")).unwrap();
        assert_eq!(c.bearer_mode, BearerMode::Off);
        let c = Config::from_vars(&with(&base, "BACKEND_BEARER_TOKENS", "UserInfo")).unwrap();
        assert_eq!(c.bearer_mode, BearerMode::Userinfo);
        let c = Config::from_vars(&with(&base, "BACKEND_LINK_EXISTING", "\tEmail\n")).unwrap();
        assert_eq!(c.policy.link_existing, LinkExisting::Email);
        for (name, bad) in [
            ("BACKEND_SESSION_MODE", "back end"),
            ("BACKEND_BEARER_TOKENS", "jwks,userinfo"),
            ("BACKEND_LINK_EXISTING", "e-mail"),
        ] {
            assert_eq!(invalid_var(&with(&base, name, bad)), name, "{name}={bad}");
        }

        type Flag = (&'static str, fn(&Config) -> bool);
        let flags: [Flag; 2] = [
            ("BACKEND_PROVISION_ON_BEARER", |c| c.provision_on_bearer),
            ("BACKEND_LOGIN_USES_USERNAME", |c| c.login_uses_username),
        ];
        for (name, read) in flags {
            for (value, on) in [
                ("TRUE", true),
                (" True ", true),
                ("FALSE", false),
                ("false", false),
            ] {
                let c = Config::from_vars(&with(&base, name, value)).unwrap();
                assert_eq!(read(&c), on, "{name}={value}");
            }
            for bad in ["1", "0", "yes", "on", "truee", "t r u e"] {
                assert_eq!(invalid_var(&with(&base, name, bad)), name, "{name}={bad}");
            }
        }
        let mut prod = with(&base, "NODE_ENV", "production");
        prod.insert("BACKEND_ALLOW_INSECURE_HTTP".into(), " TRUE ".into());
        assert!(Config::from_vars(&prod).is_ok());
        prod.insert("BACKEND_ALLOW_INSECURE_HTTP".into(), "1".into());
        assert_eq!(invalid_var(&prod), "BACKEND_ALLOW_INSECURE_HTTP");
        // LibreChat's own flag keeps LibreChat's rule: `true` in any case, anything else is off.
        for (value, on) in [
            (" TRUE ", true),
            ("True", true),
            ("1", false),
            ("yes", false),
        ] {
            let c = Config::from_vars(&with(&base, "CHECK_BALANCE", value)).unwrap();
            assert_eq!(c.balance_enabled, on, "CHECK_BALANCE={value}");
        }
    }

    #[test]
    fn issue_26_single_sign_on_settings_are_checked_together() {
        let base = sample_vars();
        let c = Config::from_vars(&base).unwrap();
        assert!(!c.sso.enabled());
        assert!(c.sso.header_names().is_empty());
        assert_eq!(
            invalid_var(&with(&base, "BACKEND_SSO_COOKIE", "a b")),
            "BACKEND_SSO_COOKIE"
        );
        assert_eq!(
            invalid_var(&with(&base, "BACKEND_SSO_COOKIE", "a;b")),
            "BACKEND_SSO_COOKIE"
        );
        let cookie = with(&base, "BACKEND_SSO_COOKIE", "portal_session");
        assert_eq!(
            Config::from_vars(&cookie).unwrap().sso.cookie.as_deref(),
            Some("portal_session")
        );
        // A cookie checked as a token needs a token mode.
        assert_eq!(
            invalid_var(&with(&cookie, "BACKEND_BEARER_TOKENS", "off")),
            "BACKEND_SSO_COOKIE"
        );
        let url = with(
            &cookie,
            "BACKEND_SSO_COOKIE_URL",
            "https://portal.example.com/s",
        );
        assert!(Config::from_vars(&with(&url, "BACKEND_BEARER_TOKENS", "off")).is_ok());
        assert_eq!(
            invalid_var(&with(&base, "BACKEND_SSO_PROXIES", "10.0.0.0/33")),
            "BACKEND_SSO_PROXIES"
        );
        // Proxy users looked up at the backend need its lookup URL.
        let proxies = with(&base, "BACKEND_SSO_PROXIES", " 10.0.0.5 , fd00::/8 ");
        assert_eq!(invalid_var(&proxies), "BACKEND_SSO_LOOKUP_URL");
        let c = Config::from_vars(&with(&proxies, "BACKEND_SSO_PROXY_USERS", "headers")).unwrap();
        assert_eq!(c.sso.proxies.len(), 2);
        assert!(c
            .sso
            .header_names()
            .contains(&"x-forwarded-user".to_string()));
        let c = Config::from_vars(&with(
            &with(
                &proxies,
                "BACKEND_SSO_LOOKUP_URL",
                "https://id.example.com/users",
            ),
            "BACKEND_SSO_USER_HEADER",
            "X-Authentik-Username",
        ))
        .unwrap();
        assert_eq!(c.sso.user_headers, vec!["x-authentik-username".to_string()]);
        assert_eq!(c.backend_urls().len(), 4);
    }

    #[test]
    fn item_14_19_lists_and_strings_are_trimmed() {
        let mut vars = sample_vars();
        vars.insert("BACKEND_ROLES_FIELD".into(), " roles , groups ,, ".into());
        vars.insert(
            "BACKEND_REQUIRED_ROLES".into(),
            " staff , contractor ".into(),
        );
        vars.insert(
            "BACKEND_ALLOWED_EMAIL_DOMAINS".into(),
            " @Example.COM , corp.example ,".into(),
        );
        vars.insert(
            "BACKEND_USER_EMAIL_FIELD".into(),
            " mail , profile.email ".into(),
        );
        vars.insert(
            "BACKEND_AUTH_URL".into(),
            "  http://127.0.0.1:9/login\t".into(),
        );
        vars.insert("BACKEND_LOGIN_USERNAME_FIELD".into(), " email ".into());
        let c = Config::from_vars(&vars).unwrap();
        assert_eq!(c.mapping.user_roles, vec!["roles", "groups"]);
        assert_eq!(c.policy.required_roles, vec!["staff", "contractor"]);
        assert_eq!(
            c.policy.allowed_email_domains,
            vec!["example.com", "corp.example"]
        );
        assert_eq!(c.mapping.user_email, vec!["mail", "profile.email"]);
        assert_eq!(c.auth_url.as_str(), "http://127.0.0.1:9/login");
        assert_eq!(c.mapping.login_username_field, "email");
        let c =
            Config::from_vars(&with(&jwks_vars(), "BACKEND_JWT_ISSUER", " https://idp ")).unwrap();
        assert_eq!(c.jwks.unwrap().issuer, "https://idp");
    }

    #[test]
    fn item_14_19_required_roles_need_a_roles_field() {
        let vars = with(&sample_vars(), "BACKEND_REQUIRED_ROLES", "staff");
        assert_eq!(invalid_var(&vars), "BACKEND_ROLES_FIELD");
        // A blank roles field is no roles field.
        assert_eq!(
            invalid_var(&with(&vars, "BACKEND_ROLES_FIELD", " , ")),
            "BACKEND_ROLES_FIELD"
        );
        let c = Config::from_vars(&with(&vars, "BACKEND_ROLES_FIELD", "roles")).unwrap();
        assert_eq!(c.policy.required_roles, vec!["staff"]);
        // A blank list is no list: no roles field needed.
        assert!(Config::from_vars(&with(&sample_vars(), "BACKEND_REQUIRED_ROLES", " , ")).is_ok());
    }

    #[test]
    fn item_8_17_deeply_nested_expiry_is_invalid_not_a_stack_overflow() {
        let deep = format!("{}1{}", "(".repeat(200_000), ")".repeat(200_000));
        let mut vars = sample_vars();
        vars.insert("SESSION_EXPIRY".into(), deep);
        assert_eq!(invalid_var(&vars), "SESSION_EXPIRY");
        // Sane nesting still works.
        assert_eq!(eval_arithmetic("((1000 * (60)) * 15)"), Some(900_000.0));
        let nested = format!("{}1{}", "(".repeat(16), ")".repeat(16));
        assert_eq!(eval_arithmetic(&nested), Some(1.0));
        let deeper = format!("{}1{}", "(".repeat(17), ")".repeat(17));
        assert_eq!(eval_arithmetic(&deeper), None);
    }

    /// `secure_cookies` for these variables on top of the sample ones.
    fn secure_with(extra: &[(&str, &str)]) -> bool {
        let mut vars = sample_vars();
        vars.insert("BACKEND_ALLOW_INSECURE_HTTP".into(), "true".into());
        for (k, v) in extra {
            vars.insert(k.to_string(), v.to_string());
        }
        Config::from_vars(&vars).unwrap().secure_cookies
    }

    #[test]
    fn item_10_2_secure_cookie_follows_librechat_should_use_secure_cookie() {
        let prod = ("NODE_ENV", "production");
        // SESSION_COOKIE_SECURE wins, trimmed and in any case, over every other input.
        for v in ["true", "TRUE", " True "] {
            assert!(secure_with(&[("SESSION_COOKIE_SECURE", v)]), "{v}");
            assert!(secure_with(&[
                ("SESSION_COOKIE_SECURE", v),
                ("DOMAIN_SERVER", "http://localhost:3080")
            ]));
        }
        for v in ["false", "FALSE", " false\t"] {
            assert!(!secure_with(&[prod, ("SESSION_COOKIE_SECURE", v)]), "{v}");
            assert!(!secure_with(&[
                prod,
                ("SESSION_COOKIE_SECURE", v),
                ("DOMAIN_SERVER", "https://chat.example.com")
            ]));
        }
        // Any other value is ignored (LibreChat tests for exactly true/false): the heuristic decides.
        for v in ["yes", "1", "0", "off", "", "   "] {
            assert!(secure_with(&[prod, ("SESSION_COOKIE_SECURE", v)]), "{v:?}");
            assert!(!secure_with(&[("SESSION_COOKIE_SECURE", v)]), "{v:?}");
        }
        // Not production: never Secure, whatever DOMAIN_SERVER says. NODE_ENV is compared exactly.
        assert!(!secure_with(&[]));
        assert!(!secure_with(&[(
            "DOMAIN_SERVER",
            "https://chat.example.com"
        )]));
        for env in ["development", "Production", "PRODUCTION", " production"] {
            assert!(!secure_with(&[("NODE_ENV", env)]), "{env:?}");
        }
        // Production, no DOMAIN_SERVER (or an empty one): Secure, as LibreChat v0.7.9 to v0.8.2.
        assert!(secure_with(&[prod]));
        assert!(secure_with(&[prod, ("DOMAIN_SERVER", "")]));
        // Production and a DOMAIN_SERVER whose host is local: not Secure. The host as WHATWG URL
        // parsing gives it to LibreChat's `new URL(...).hostname` (checked against Node 24).
        for local in [
            "http://localhost:3080",
            "localhost:3080",
            "HTTP://LocalHost",
            "https://localhost",
            "http://127.0.0.1:3080",
            "http://127.1:3080",
            "0x7f.0.0.1",
            "app.localhost",
            "http://chat.app.localhost:3080/",
            "http://user@localhost",
            "localhost/path",
            "::1", // not a URL host: LibreChat compares the whole value
        ] {
            assert!(!secure_with(&[prod, ("DOMAIN_SERVER", local)]), "{local}");
        }
        // Production and any other host: Secure. `[::1]` keeps its brackets in a URL's hostname,
        // so LibreChat does not count it as local; an unparsable value is compared whole.
        for remote in [
            "https://chat.example.com",
            "chat.example.com:3080",
            "http://192.168.1.10:3080",
            "http://[::1]:3080",
            "http://localhost.:3080",
            "http://localhost.example.com",
            "http://localhost:99999",
            "http://xn--localhost",
        ] {
            assert!(secure_with(&[prod, ("DOMAIN_SERVER", remote)]), "{remote}");
        }
    }

    #[test]
    fn expiry_arithmetic_and_key_formats() {
        let mut vars = sample_vars();
        vars.insert("SESSION_EXPIRY".into(), "1000 * 60 * 15".into());
        vars.insert(
            "REFRESH_TOKEN_EXPIRY".into(),
            "(1000 * 60 * 60 * 24) * 7".into(),
        );
        vars.insert(
            "BACKEND_TOKEN_ENCRYPTION_KEY".into(),
            base64::engine::general_purpose::STANDARD.encode([7u8; 32]),
        );
        vars.insert("NODE_ENV".into(), "production".into());
        vars.insert("BACKEND_ALLOW_INSECURE_HTTP".into(), "true".into());
        let c = Config::from_vars(&vars).unwrap();
        assert_eq!(c.session_expiry_ms, 900_000);
        assert_eq!(c.refresh_token_expiry_ms, 604_800_000);
        assert_eq!(c.token_encryption_key, [7u8; 32]);
        assert!(c.secure_cookies);
        assert_eq!(eval_arithmetic("2*(3+4)-1"), Some(13.0));
        assert_eq!(eval_arithmetic("2*"), None);
        assert_eq!(eval_arithmetic("process.exit()"), None);
    }
}
