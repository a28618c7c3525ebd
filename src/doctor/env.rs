//! The effective configuration as `doctor` shows it: every setting of `src/config/settings.rs`,
//! defaults where unset, secrets redacted (the secret kinds only as their length, `MONGO_URI`
//! without its password, URLs without userinfo or query string).

use std::collections::HashMap;

use reqwest::Url;

use crate::config::settings::{Kind, WhenUnset, SETTINGS};

/// The configuration as the service sees it: every setting (`src/config/settings.rs`), `(default) …`
/// where unset, secrets redacted. Works on any input, valid or not.
pub fn effective_config(vars: &HashMap<String, String>) -> Vec<(String, String)> {
    SETTINGS
        .iter()
        .map(|s| {
            let value = vars.get(s.name).map(|v| v.trim()).filter(|v| !v.is_empty());
            let shown = match (value, s.default) {
                (None, WhenUnset::Required) => "NOT SET".to_string(),
                (None, WhenUnset::RequiredWith(mode)) => format!("(not set: required with {mode})"),
                (None, WhenUnset::Default(_)) => {
                    format!("(default) {}", s.default_shown().unwrap_or_default())
                }
                (None, WhenUnset::Means("")) => "(not set)".to_string(),
                (None, WhenUnset::Means(meaning)) => format!("(not set: {meaning})"),
                (Some(v), _) if s.kind.is_secret() => format!("set ({} chars)", v.chars().count()),
                (Some(v), _) if s.kind == Kind::Url => match Url::parse(v) {
                    Ok(url) => shown_url(&url),
                    Err(_) => format!("(not a URL, {} chars)", v.chars().count()),
                },
                (Some(v), _) if s.kind == Kind::MongoUri => redact_mongo_uri(v),
                (Some(v), _) => v.to_string(),
            };
            (s.name.to_string(), shown)
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
                SETTINGS.iter().any(|s| s.name == name),
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
