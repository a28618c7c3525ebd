//! The effective configuration as `doctor` shows it: every variable the service reads, defaults
//! where unset, secrets redacted (`JWT_SECRET`, `JWT_REFRESH_SECRET`,
//! `BACKEND_INTROSPECTION_CLIENT_SECRET` and `BACKEND_TOKEN_ENCRYPTION_KEY` only as their length, `MONGO_URI` without its password, URLs
//! without userinfo or query string).

use std::collections::HashMap;

use reqwest::Url;

/// How a variable is shown.
#[derive(Clone, Copy)]
enum Show {
    /// The value as is.
    Plain,
    /// Only whether it is set and its length.
    Secret,
    /// An http(s) URL without userinfo and query string.
    Url,
    /// A MongoDB connection string without its password.
    MongoUri,
}

/// What happens when a variable is not set.
#[derive(Clone, Copy)]
enum Unset {
    Required,
    Default(&'static str),
    /// Optional; the text says what being unset means.
    Optional(&'static str),
}

/// Every variable the service reads (`src/config/mod.rs`), plus the switch of the wiring.
const VARIABLES: &[(&str, Show, Unset)] = &[
    (
        "USE_CUSTOM_BACKEND_AUTH",
        Show::Plain,
        Unset::Default("false (LibreChat's own login)"),
    ),
    (
        "NODE_ENV",
        Show::Plain,
        Unset::Optional("cookies without Secure unless SESSION_COOKIE_SECURE=true"),
    ),
    (
        "SESSION_COOKIE_SECURE",
        Show::Plain,
        Unset::Optional("Secure decided by NODE_ENV and DOMAIN_SERVER"),
    ),
    (
        "DOMAIN_SERVER",
        Show::Plain,
        Unset::Optional("in production: Secure cookies"),
    ),
    ("BACKEND_AUTH_URL", Show::Url, Unset::Required),
    ("BACKEND_USER_INFO_URL", Show::Url, Unset::Required),
    ("BACKEND_REFRESH_URL", Show::Url, Unset::Required),
    (
        "BACKEND_LOGOUT_URL",
        Show::Url,
        Unset::Optional("no backend logout call"),
    ),
    ("BACKEND_TIMEOUT_MS", Show::Plain, Unset::Default("10000")),
    (
        "BACKEND_CA_CERT_PATH",
        Show::Plain,
        Unset::Optional("system trusted roots only"),
    ),
    (
        "BACKEND_ALLOW_INSECURE_HTTP",
        Show::Plain,
        Unset::Default("false"),
    ),
    (
        "BACKEND_LOGIN_USES_USERNAME",
        Show::Plain,
        Unset::Default("false"),
    ),
    (
        "BACKEND_SESSION_MODE",
        Show::Plain,
        Unset::Default("librechat"),
    ),
    (
        "BACKEND_BEARER_TOKENS",
        Show::Plain,
        Unset::Default("userinfo"),
    ),
    ("BACKEND_JWKS_URL", Show::Url, Unset::Optional("")),
    ("BACKEND_JWT_ISSUER", Show::Plain, Unset::Optional("")),
    (
        "BACKEND_JWT_AUDIENCE",
        Show::Plain,
        Unset::Optional("audience not checked"),
    ),
    ("BACKEND_JWT_ID_CLAIM", Show::Plain, Unset::Default("sub")),
    ("BACKEND_JWKS_CACHE_TTL", Show::Plain, Unset::Default("600")),
    (
        "BACKEND_JWKS_REFETCH_COOLDOWN_MS",
        Show::Plain,
        Unset::Default("30000"),
    ),
    (
        "BACKEND_JWKS_MAX_STALE",
        Show::Plain,
        Unset::Default("86400"),
    ),
    ("BACKEND_INTROSPECTION_URL", Show::Url, Unset::Optional("")),
    (
        "BACKEND_INTROSPECTION_CLIENT_ID",
        Show::Plain,
        Unset::Optional(""),
    ),
    (
        "BACKEND_INTROSPECTION_CLIENT_SECRET",
        Show::Secret,
        Unset::Optional(""),
    ),
    (
        "BACKEND_INTROSPECTION_AUDIENCE",
        Show::Plain,
        Unset::Optional("audience not checked"),
    ),
    (
        "BACKEND_INTROSPECTION_ISSUER",
        Show::Plain,
        Unset::Optional("issuer not checked"),
    ),
    (
        "BACKEND_INTROSPECTION_SCOPE",
        Show::Plain,
        Unset::Optional("no scope required"),
    ),
    (
        "BACKEND_INTROSPECTION_ID_CLAIM",
        Show::Plain,
        Unset::Default("sub"),
    ),
    ("BACKEND_TOKEN_CACHE_TTL", Show::Plain, Unset::Default("60")),
    (
        "BACKEND_USERINFO_MAX_CONCURRENT",
        Show::Plain,
        Unset::Default("32"),
    ),
    ("BACKEND_USERINFO_RATE", Show::Plain, Unset::Default("50")),
    ("BACKEND_USERINFO_BURST", Show::Plain, Unset::Default("100")),
    ("BACKEND_BREAKER_FAILURES", Show::Plain, Unset::Default("5")),
    (
        "BACKEND_BREAKER_COOLDOWN_MS",
        Show::Plain,
        Unset::Default("30000"),
    ),
    ("BACKEND_BREAKER_PROBES", Show::Plain, Unset::Default("1")),
    ("BACKEND_MAX_PENDING", Show::Plain, Unset::Default("256")),
    (
        "BACKEND_PROVISION_ON_BEARER",
        Show::Plain,
        Unset::Default("false"),
    ),
    (
        "BACKEND_LOGIN_USERNAME_FIELD",
        Show::Plain,
        Unset::Default("username"),
    ),
    (
        "BACKEND_ACCESS_TOKEN_FIELD",
        Show::Plain,
        Unset::Default("token,access_token"),
    ),
    (
        "BACKEND_REFRESH_TOKEN_FIELD",
        Show::Plain,
        Unset::Default("refreshToken,refresh_token"),
    ),
    (
        "BACKEND_EXPIRES_IN_FIELD",
        Show::Plain,
        Unset::Default("expiresIn,expires_in"),
    ),
    ("BACKEND_USER_ID_FIELD", Show::Plain, Unset::Default("id")),
    (
        "BACKEND_USER_EMAIL_FIELD",
        Show::Plain,
        Unset::Default("email"),
    ),
    (
        "BACKEND_USER_USERNAME_FIELD",
        Show::Plain,
        Unset::Default("username"),
    ),
    (
        "BACKEND_USER_NAME_FIELD",
        Show::Plain,
        Unset::Default("name"),
    ),
    (
        "BACKEND_USER_AVATAR_FIELD",
        Show::Plain,
        Unset::Default("avatar"),
    ),
    (
        "BACKEND_ROLES_FIELD",
        Show::Plain,
        Unset::Optional("no roles read"),
    ),
    ("BACKEND_ADMIN_ROLES", Show::Plain, Unset::Optional("")),
    (
        "BACKEND_REQUIRED_ROLES",
        Show::Plain,
        Unset::Optional("no role required"),
    ),
    (
        "BACKEND_ALLOWED_EMAIL_DOMAINS",
        Show::Plain,
        Unset::Optional("every domain"),
    ),
    (
        "BACKEND_LINK_EXISTING",
        Show::Plain,
        Unset::Default("never"),
    ),
    ("JWT_SECRET", Show::Secret, Unset::Required),
    ("JWT_REFRESH_SECRET", Show::Secret, Unset::Required),
    (
        "BACKEND_TOKEN_ENCRYPTION_KEY",
        Show::Secret,
        Unset::Required,
    ),
    (
        "SESSION_EXPIRY",
        Show::Plain,
        Unset::Default("900000 (15 minutes)"),
    ),
    (
        "REFRESH_TOKEN_EXPIRY",
        Show::Plain,
        Unset::Default("604800000 (7 days)"),
    ),
    ("REFRESH_GRACE_MS", Show::Plain, Unset::Default("10000")),
    ("USER_CACHE_TTL", Show::Plain, Unset::Default("5")),
    (
        "AUTH_CACHE_MAX_ENTRIES",
        Show::Plain,
        Unset::Default("10000"),
    ),
    ("MONGO_URI", Show::MongoUri, Unset::Required),
    ("MONGO_TIMEOUT_MS", Show::Plain, Unset::Default("5000")),
    ("CHECK_BALANCE", Show::Plain, Unset::Default("false")),
    ("START_BALANCE", Show::Plain, Unset::Default("0")),
    (
        "BACKEND_EVENTS_SECRET",
        Show::Secret,
        Unset::Optional("backend events off"),
    ),
    (
        "BACKEND_EVENTS_TOLERANCE_SECONDS",
        Show::Plain,
        Unset::Default("300"),
    ),
    (
        "BACKEND_SESSION_ID_FIELD",
        Show::Plain,
        Unset::Default("session_id, sid, sessionId"),
    ),
    ("REVOCATION_POLL_MS", Show::Plain, Unset::Default("1000")),
];

/// The configuration as the service sees it: every variable it reads, `(default) …` where unset,
/// secrets redacted. Works on any input, valid or not.
pub fn effective_config(vars: &HashMap<String, String>) -> Vec<(String, String)> {
    VARIABLES
        .iter()
        .map(|(name, show, unset)| {
            let value = vars.get(*name).map(|v| v.trim()).filter(|v| !v.is_empty());
            let shown = match (value, show, unset) {
                (None, _, Unset::Required) => "NOT SET".to_string(),
                (None, _, Unset::Default(d)) => format!("(default) {d}"),
                (None, _, Unset::Optional("")) => "(not set)".to_string(),
                (None, _, Unset::Optional(meaning)) => format!("(not set: {meaning})"),
                (Some(v), Show::Plain, _) => v.to_string(),
                (Some(v), Show::Secret, _) => format!("set ({} chars)", v.chars().count()),
                (Some(v), Show::Url, _) => match Url::parse(v) {
                    Ok(url) => shown_url(&url),
                    Err(_) => format!("(not a URL, {} chars)", v.chars().count()),
                },
                (Some(v), Show::MongoUri, _) => redact_mongo_uri(v),
            };
            (name.to_string(), shown)
        })
        .collect()
}

/// A URL as safe to print: scheme, host, port and path; userinfo dropped, query and fragment
/// replaced by `…` (they may carry keys or tokens).
pub fn shown_url(url: &Url) -> String {
    let mut s = format!("{}://", url.scheme());
    if !url.username().is_empty() || url.password().is_some() {
        s.push_str("***@");
    }
    s.push_str(url.host_str().unwrap_or(""));
    if let Some(port) = url.port() {
        s.push_str(&format!(":{port}"));
    }
    s.push_str(url.path());
    if url.query().is_some() {
        s.push_str("?…");
    }
    if url.fragment().is_some() {
        s.push_str("#…");
    }
    s
}

/// Query options of a connection string whose values are (or may be) secrets.
fn sensitive_option(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    [
        "password",
        "secret",
        "token",
        "key",
        "authmechanismproperties",
    ]
    .iter()
    .any(|s| k.contains(s))
}

/// A MongoDB connection string with its password replaced by `***`. The userinfo ends at the
/// LAST `@` of the string, so a password with an unescaped `@`, `/` or `?` is still wholly hidden
/// (an `@` elsewhere only hides more than needed). Sensitive query options are hidden too.
pub fn redact_mongo_uri(uri: &str) -> String {
    let uri = uri.trim();
    let (scheme, rest) = match uri.find("://") {
        Some(i) => (&uri[..i + 3], &uri[i + 3..]),
        None => return format!("(not a MongoDB URI, {} chars)", uri.chars().count()),
    };
    let (user, rest) = match rest.rfind('@') {
        Some(at) => {
            let userinfo = &rest[..at];
            let user = match userinfo.split_once(':') {
                Some((name, _password)) => format!("{name}:***@"),
                None => format!("{userinfo}@"),
            };
            (user, &rest[at + 1..])
        }
        None => (String::new(), rest),
    };
    let (hosts_db, query) = match rest.split_once('?') {
        Some((h, q)) => (h, Some(q)),
        None => (rest, None),
    };
    let mut out = format!("{scheme}{user}{hosts_db}");
    if let Some(q) = query {
        let opts: Vec<String> = q
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, _)) if sensitive_option(k) => format!("{k}=***"),
                _ => pair.to_string(),
            })
            .collect();
        out.push('?');
        out.push_str(&opts.join("&"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::sample_vars;
    use crate::config::Config;

    #[test]
    fn every_variable_config_reads_is_shown() {
        // Any quoted upper-case name in config/mod.rs is a variable it reads.
        let source = include_str!("../config/mod.rs");
        let production = &source[..source.find("#[cfg(test)]").unwrap_or(source.len())];
        let mut names: Vec<&str> = production
            .split('"')
            .skip(1)
            .step_by(2)
            .filter(|s| {
                s.len() > 3
                    && s.bytes()
                        .all(|b| b.is_ascii_uppercase() || b == b'_' || b.is_ascii_digit())
            })
            .collect();
        names.sort_unstable();
        names.dedup();
        assert!(names.len() > 30, "{names:?}");
        for name in names {
            assert!(
                VARIABLES.iter().any(|(n, _, _)| *n == name),
                "{name} is read by config/mod.rs but not shown by doctor"
            );
        }
    }

    #[test]
    fn shown_defaults_are_the_real_defaults() {
        let c = Config::from_vars(&sample_vars()).unwrap();
        let shown: HashMap<String, String> = effective_config(&sample_vars()).into_iter().collect();
        let def = |n: &str| shown[n].trim_start_matches("(default) ").to_string();
        assert_eq!(
            def("BACKEND_TIMEOUT_MS"),
            c.backend_timeout.as_millis().to_string()
        );
        assert_eq!(
            def("MONGO_TIMEOUT_MS"),
            c.db_timeout.as_millis().to_string()
        );
        assert!(def("SESSION_EXPIRY").starts_with(&c.session_expiry_ms.to_string()));
        assert!(def("REFRESH_TOKEN_EXPIRY").starts_with(&c.refresh_token_expiry_ms.to_string()));
        assert_eq!(
            def("REFRESH_GRACE_MS"),
            c.refresh_grace.as_millis().to_string()
        );
        assert_eq!(
            def("USER_CACHE_TTL"),
            c.user_cache_ttl.as_secs().to_string()
        );
        assert_eq!(def("AUTH_CACHE_MAX_ENTRIES"), c.cache_max.to_string());
        assert_eq!(
            def("BACKEND_TOKEN_CACHE_TTL"),
            c.token_cache_ttl.as_secs().to_string()
        );
        assert_eq!(
            def("BACKEND_ACCESS_TOKEN_FIELD"),
            c.mapping.access_token.join(",")
        );
        assert_eq!(
            def("BACKEND_REFRESH_TOKEN_FIELD"),
            c.mapping.refresh_token.join(",")
        );
        assert_eq!(
            def("BACKEND_EXPIRES_IN_FIELD"),
            c.mapping.expires_in.join(",")
        );
        assert_eq!(def("START_BALANCE"), c.start_balance.to_string());
        let mut vars = sample_vars();
        vars.insert("BACKEND_BEARER_TOKENS".into(), "jwks".into());
        vars.insert("BACKEND_JWKS_URL".into(), "http://127.0.0.1:9/jwks".into());
        vars.insert("BACKEND_JWT_ISSUER".into(), "https://idp".into());
        let j = Config::from_vars(&vars).unwrap().jwks.unwrap();
        assert_eq!(
            def("BACKEND_JWKS_CACHE_TTL"),
            j.cache_ttl.as_secs().to_string()
        );
        assert_eq!(
            def("BACKEND_JWKS_REFETCH_COOLDOWN_MS"),
            j.refetch_cooldown.as_millis().to_string()
        );
        assert_eq!(
            def("BACKEND_JWKS_MAX_STALE"),
            j.max_stale.as_secs().to_string()
        );
        let b = Config::from_vars(&sample_vars()).unwrap().userinfo_budget;
        assert_eq!(
            def("BACKEND_USERINFO_MAX_CONCURRENT"),
            b.max_concurrent.to_string()
        );
        assert_eq!(def("BACKEND_USERINFO_RATE"), b.per_second.to_string());
        assert_eq!(def("BACKEND_USERINFO_BURST"), b.burst.to_string());
        let br = Config::from_vars(&sample_vars()).unwrap().breaker;
        assert_eq!(def("BACKEND_BREAKER_FAILURES"), br.failures.to_string());
        assert_eq!(
            def("BACKEND_BREAKER_COOLDOWN_MS"),
            br.cooldown.as_millis().to_string()
        );
        assert_eq!(def("BACKEND_BREAKER_PROBES"), br.probes.to_string());
        assert_eq!(def("BACKEND_MAX_PENDING"), br.max_pending.to_string());
        assert_eq!(def("BACKEND_JWT_ID_CLAIM"), j.id_claim);
        let i = Config::from_vars(&crate::config::tests::introspection_vars())
            .unwrap()
            .introspection
            .unwrap();
        assert_eq!(def("BACKEND_INTROSPECTION_ID_CLAIM"), i.id_claim);
    }

    #[test]
    fn secrets_are_redacted() {
        let mut vars = sample_vars();
        vars.insert("JWT_SECRET".into(), "super-secret-value".into());
        vars.insert(
            "BACKEND_INTROSPECTION_CLIENT_SECRET".into(),
            "super-secret-client".into(),
        );
        vars.insert(
            "MONGO_URI".into(),
            "mongodb://admin:p@ss/w?rd@db1:27017,db2/lc?authSource=admin&tlsCertificateKeyFilePassword=kp".into(),
        );
        vars.remove("JWT_REFRESH_SECRET");
        let shown: HashMap<String, String> = effective_config(&vars).into_iter().collect();
        assert_eq!(shown["JWT_SECRET"], "set (18 chars)");
        assert_eq!(
            shown["BACKEND_INTROSPECTION_CLIENT_SECRET"],
            "set (19 chars)"
        );
        assert_eq!(shown["JWT_REFRESH_SECRET"], "NOT SET");
        assert_eq!(shown["BACKEND_TOKEN_ENCRYPTION_KEY"], "set (64 chars)");
        assert_eq!(
            shown["MONGO_URI"],
            "mongodb://admin:***@db1:27017,db2/lc?authSource=admin&tlsCertificateKeyFilePassword=***"
        );
        for line in shown.values() {
            assert!(
                !line.contains("super-secret") && !line.contains("ss/w") && !line.contains("kp")
            );
        }
        assert_eq!(redact_mongo_uri("mongodb://h:1/db"), "mongodb://h:1/db");
        assert_eq!(
            redact_mongo_uri("mongodb+srv://u:x@c.example/db"),
            "mongodb+srv://u:***@c.example/db"
        );
        assert_eq!(
            redact_mongo_uri("mongodb://x509user@h/db"),
            "mongodb://x509user@h/db"
        );
        assert_eq!(
            redact_mongo_uri("not-a-uri"),
            "(not a MongoDB URI, 9 chars)"
        );
    }

    #[test]
    fn urls_lose_userinfo_and_query() {
        let u = Url::parse("https://u:pw@idp.example:8443/login?key=abc#frag").unwrap();
        assert_eq!(shown_url(&u), "https://***@idp.example:8443/login?…#…");
        let mut vars = sample_vars();
        vars.insert(
            "BACKEND_LOGOUT_URL".into(),
            "http://idp/logout?api_key=zzz".into(),
        );
        vars.insert("BACKEND_JWKS_URL".into(), "not a url with secret".into());
        let shown: HashMap<String, String> = effective_config(&vars).into_iter().collect();
        assert_eq!(shown["BACKEND_LOGOUT_URL"], "http://idp/logout?…");
        assert_eq!(shown["BACKEND_JWKS_URL"], "(not a URL, 21 chars)");
        assert_eq!(
            shown["BACKEND_CA_CERT_PATH"],
            "(not set: system trusted roots only)"
        );
        assert_eq!(shown["BACKEND_SESSION_MODE"], "(default) librechat");
    }
}
