//! `librechat-custom-backend-auth doctor`: the effective configuration with secrets redacted, and
//! checks that each backend URL answers (no credentials sent), that the database is reachable and
//! that it has the indexes LibreChat's models define for `users` and `sessions`, and the package's
//! own unique index on the backend identity (`src/users.rs`).
//!
//! Nothing here prints a secret: `JWT_SECRET`, `JWT_REFRESH_SECRET` and
//! `BACKEND_TOKEN_ENCRYPTION_KEY` appear only as their length, `MONGO_URI` without its password,
//! URLs without userinfo or query string, and no error text of the driver or of an HTTP answer is
//! copied (either may echo a connection string or a request).

use std::collections::HashMap;
use std::error::Error as _;
use std::time::Duration;

use mongodb::bson::{doc, Bson, Document};
use mongodb::options::ClientOptions;
use reqwest::{header::LOCATION, Client, StatusCode, Url};
use serde_json::Value;

use crate::config::Config;

pub const OK: &str = "ok";
pub const PROBLEM: &str = "problem";
pub const INFO: &str = "info";

/// The largest key set read from `BACKEND_JWKS_URL`.
const MAX_JWKS_BYTES: usize = 1024 * 1024;

/// One line of the report. `check` names what was checked (a variable, `database`, a collection).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub level: &'static str,
    pub check: String,
    pub detail: String,
}

fn finding(level: &'static str, check: &str, detail: impl Into<String>) -> Finding {
    Finding {
        level,
        check: check.to_string(),
        detail: detail.into(),
    }
}

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

/// Every variable the service reads (`src/config.rs`), plus the switch of the wiring.
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
    ("BACKEND_TOKEN_CACHE_TTL", Show::Plain, Unset::Default("60")),
    (
        "BACKEND_USERINFO_MAX_CONCURRENT",
        Show::Plain,
        Unset::Default("32"),
    ),
    ("BACKEND_USERINFO_RATE", Show::Plain, Unset::Default("50")),
    ("BACKEND_USERINFO_BURST", Show::Plain, Unset::Default("100")),
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

/// `host:port` of a URL, for "no answer from …".
fn host_port(url: &Url) -> String {
    format!(
        "{}:{}",
        url.host_str().unwrap_or("?"),
        url.port_or_known_default().unwrap_or(0)
    )
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

/// The whole report: the effective configuration, then the checks. An invalid configuration is
/// the only finding when it does not validate.
pub async fn diagnose(vars: &HashMap<String, String>) -> (Vec<(String, String)>, Vec<Finding>) {
    let shown = effective_config(vars);
    let findings = match Config::from_vars(vars) {
        Err(e) => vec![finding(
            PROBLEM,
            "configuration",
            format!("[{}] {}", e.code(), e),
        )],
        Ok(cfg) => {
            let mut out = vec![finding(OK, "configuration", "valid")];
            out.extend(run(&cfg).await);
            out
        }
    };
    (shown, findings)
}

/// The checks of a valid configuration: backend URLs and database, run concurrently.
pub async fn run(cfg: &Config) -> Vec<Finding> {
    let (mut out, db) = tokio::join!(check_backend(cfg), check_db(cfg));
    out.extend(db);
    out
}

/* ------------------------------------------------------------------------------------------------
 * Backend URLs
 * ---------------------------------------------------------------------------------------------- */

async fn check_backend(cfg: &Config) -> Vec<Finding> {
    let http = match crate::backend::http_client(cfg) {
        Ok(c) => c,
        Err(e) => return vec![finding(PROBLEM, "backend", format!("[{}] {}", e.code(), e))],
    };
    let mut urls = vec![
        ("BACKEND_AUTH_URL", cfg.auth_url.clone(), false),
        ("BACKEND_USER_INFO_URL", cfg.userinfo_url.clone(), false),
        ("BACKEND_REFRESH_URL", cfg.refresh_url.clone(), false),
    ];
    if let Some(u) = &cfg.logout_url {
        urls.push(("BACKEND_LOGOUT_URL", u.clone(), false));
    }
    if let Some(j) = &cfg.jwks {
        urls.push(("BACKEND_JWKS_URL", j.url.clone(), true));
    }
    let timeout = cfg.backend_timeout;
    let checks: Vec<_> = urls
        .into_iter()
        .map(|(name, url, jwks)| {
            let http = http.clone();
            tokio::spawn(async move { check_url(&http, name, &url, jwks, timeout).await })
        })
        .collect();
    let mut out = Vec::new();
    for (i, c) in checks.into_iter().enumerate() {
        out.push(c.await.unwrap_or_else(|_| {
            finding(PROBLEM, "backend", format!("check {i} failed internally"))
        }));
    }
    out
}

/// `GET url` without credentials or body. Any HTTP answer means the URL answers; 3xx and 5xx are
/// problems (redirects are not followed by the service; a 5xx is the backend failing).
async fn check_url(http: &Client, name: &str, url: &Url, jwks: bool, timeout: Duration) -> Finding {
    let shown = shown_url(url);
    let resp = match http.get(url.clone()).send().await {
        Ok(r) => r,
        Err(e) => {
            return finding(
                PROBLEM,
                name,
                format!(
                    "no answer from {} ({})",
                    host_port(url),
                    transport_reason(&e, timeout)
                ),
            )
        }
    };
    let status = resp.status();
    let code = status.as_u16();
    if status.is_redirection() {
        let target = resp
            .headers()
            .get(LOCATION)
            .and_then(|l| l.to_str().ok())
            .and_then(|l| url.join(l).ok())
            .map(|t| format!(" to {}", shown_url(&t)))
            .unwrap_or_default();
        return finding(
            PROBLEM,
            name,
            format!(
                "{shown} answers HTTP {code}, a redirect{target}; redirects are not followed (they could carry credentials elsewhere): configure the final URL"
            ),
        );
    }
    if status.is_server_error() {
        return finding(
            PROBLEM,
            name,
            format!("{shown} answers HTTP {code} (server error)"),
        );
    }
    if !jwks && status == StatusCode::NOT_FOUND {
        // Answers, but a 404 to GET may as well be a wrong path as a POST-only route.
        return finding(
            INFO,
            name,
            format!("{shown} answers HTTP 404 to a GET without credentials: the server is up; check that the path is right"),
        );
    }
    if !jwks {
        return finding(
            OK,
            name,
            format!("{shown} answers (HTTP {code} to a GET without credentials)"),
        );
    }
    if !status.is_success() {
        return finding(
            PROBLEM,
            name,
            format!("{shown} answers HTTP {code}; a JSON Web Key Set with HTTP 200 is expected"),
        );
    }
    match read_bounded(resp).await {
        None => finding(
            PROBLEM,
            name,
            format!("{shown}: the key set could not be read (larger than 1 MiB or cut off)"),
        ),
        Some(body) => match serde_json::from_slice::<Value>(&body) {
            Err(_) => finding(
                PROBLEM,
                name,
                format!("{shown} answers HTTP {code} but not with JSON"),
            ),
            Ok(v) => match usable_keys(&v) {
                None => finding(
                    PROBLEM,
                    name,
                    format!("{shown} answers JSON without a `keys` array (not a JSON Web Key Set)"),
                ),
                Some((0, total)) => finding(
                    PROBLEM,
                    name,
                    format!(
                        "{shown}: the key set has no usable signing key ({total} key(s); usable: RS256, ES256 on P-256 or EdDSA, with a kid, use absent or sig)"
                    ),
                ),
                Some((usable, total)) => finding(
                    OK,
                    name,
                    format!("{shown} answers with {usable} usable signing key(s) of {total}"),
                ),
            },
        },
    }
}

async fn read_bounded(mut resp: reqwest::Response) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.ok()? {
        if body.len() + chunk.len() > MAX_JWKS_BYTES {
            return None;
        }
        body.extend_from_slice(&chunk);
    }
    Some(body)
}

/// `(usable, total)` keys of a JWKS, by the rules the bearer check applies; `None` when there is
/// no `keys` array.
fn usable_keys(v: &Value) -> Option<(usize, usize)> {
    let total = v.get("keys")?.as_array()?.len();
    Some((crate::bearer::parse_key_set(v).len(), total))
}

/// Why a request got no answer, in words that carry no URL and no request data.
fn transport_reason(e: &reqwest::Error, timeout: Duration) -> String {
    let timed_out = || format!("timeout after {} ms", timeout.as_millis());
    if e.is_timeout() {
        return timed_out();
    }
    let mut texts = Vec::new();
    let mut source = e.source();
    while let Some(s) = source {
        if let Some(tls) = s.downcast_ref::<rustls::Error>() {
            return format!("TLS: {tls}");
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            if let Some(tls) = io.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
                return format!("TLS: {tls}");
            }
            use std::io::ErrorKind as K;
            match io.kind() {
                K::ConnectionRefused => return "connection refused".into(),
                K::ConnectionReset => return "connection reset".into(),
                K::ConnectionAborted => return "connection aborted".into(),
                K::TimedOut => return timed_out(),
                K::AddrNotAvailable => return "address not available".into(),
                _ => {}
            }
        }
        texts.push(s.to_string().to_ascii_lowercase());
        source = s.source();
    }
    let text = texts.join(" | ");
    if text.contains("dns error") || text.contains("failed to lookup address") {
        "host name not resolved".into()
    } else if text.contains("unreachable") {
        "network unreachable".into()
    } else if e.is_connect() {
        "connection failed".into()
    } else {
        "the connection closed without an HTTP answer".into()
    }
}

/* ------------------------------------------------------------------------------------------------
 * Database
 * ---------------------------------------------------------------------------------------------- */

/// The hint on every missing index or collection.
const RUN_LIBRECHAT: &str =
    "LibreChat creates it at start-up (mongoose autoIndex): run LibreChat once against this database";

/// An index LibreChat's models define (`@librechat/data-schemas` up to 0.0.71 and older
/// LibreChat), as a rule on `listIndexes` entries.
struct RequiredIndex {
    collection: &'static str,
    /// What is missing, as shown.
    keys: &'static str,
    /// What creates it by hand (mongosh), when LibreChat does not.
    create: &'static str,
    /// Extra words on why it is needed.
    note: &'static str,
    matches: fn(&Document) -> bool,
    /// A near miss worth naming (same first key, wrong options).
    near_miss: fn(&Document) -> Option<String>,
}

const REQUIRED_INDEXES: &[RequiredIndex] = &[
    RequiredIndex {
        collection: "users",
        keys: "unique {email: 1} (or unique {email: 1, tenantId: 1} in newer LibreChat)",
        create: "db.users.createIndex({email: 1}, {unique: true})",
        note: "",
        matches: |ix| first_key(ix) == Some("email") && flag(ix, "unique"),
        near_miss: |ix| {
            (first_key(ix) == Some("email") && !flag(ix, "unique")).then(|| {
                format!(
                    "{} on {} exists but is not unique",
                    index_name(ix),
                    fmt_keys(ix)
                )
            })
        },
    },
    RequiredIndex {
        collection: "users",
        keys: "{idOnTheSource: 1}",
        create: "db.users.createIndex({idOnTheSource: 1}, {sparse: true})",
        note: " (every login looks the user up by it; LibreChat 0.8 and newer define it)",
        matches: |ix| first_key(ix) == Some("idOnTheSource"),
        near_miss: |_| None,
    },
    RequiredIndex {
        collection: "sessions",
        keys: "TTL {expiration: 1} with expireAfterSeconds: 0",
        create: "db.sessions.createIndex({expiration: 1}, {expireAfterSeconds: 0})",
        note: " (without it, ended sessions are never removed)",
        matches: |ix| {
            first_key(ix) == Some("expiration") && number(ix, "expireAfterSeconds") == Some(0.0)
        },
        near_miss: |ix| {
            (first_key(ix) == Some("expiration")).then(|| match number(ix, "expireAfterSeconds") {
                Some(n) => format!(
                    "{} on {} has expireAfterSeconds: {n}",
                    index_name(ix),
                    fmt_keys(ix)
                ),
                None => format!("{} on {} is not a TTL index", index_name(ix), fmt_keys(ix)),
            })
        },
    },
    RequiredIndex {
        collection: "sessions",
        keys: "{user: 1, …} (LibreChat: unique {user: 1, refreshTokenHash: 1})",
        create: "db.sessions.createIndex({user: 1, refreshTokenHash: 1}, {unique: true})",
        note: "",
        matches: |ix| first_key(ix) == Some("user"),
        near_miss: |_| None,
    },
];

fn first_key(ix: &Document) -> Option<&str> {
    ix.get_document("key")
        .ok()?
        .keys()
        .next()
        .map(String::as_str)
}

fn index_name(ix: &Document) -> String {
    ix.get_str("name").unwrap_or("an index").to_string()
}

/// A boolean option (servers may answer `true` or `1`).
fn flag(ix: &Document, name: &str) -> bool {
    match ix.get(name) {
        Some(Bson::Boolean(b)) => *b,
        Some(other) => number_of(other).is_some_and(|n| n != 0.0),
        None => false,
    }
}

fn number_of(b: &Bson) -> Option<f64> {
    match b {
        Bson::Int32(n) => Some(f64::from(*n)),
        Bson::Int64(n) => Some(*n as f64),
        Bson::Double(n) => Some(*n),
        _ => None,
    }
}

fn number(ix: &Document, name: &str) -> Option<f64> {
    ix.get(name).and_then(number_of)
}

/// `email_1_tenantId_1, unique`, `expiration_1, TTL 0 s`.
fn describe_index(ix: &Document) -> String {
    let mut parts = vec![index_name(ix)];
    if flag(ix, "unique") {
        parts.push("unique".into());
    }
    if flag(ix, "sparse") {
        parts.push("sparse".into());
    }
    if let Some(ttl) = number(ix, "expireAfterSeconds") {
        parts.push(format!("TTL {ttl} s"));
    }
    parts.join(", ")
}

/// `{email: 1, tenantId: 1}`.
fn fmt_keys(ix: &Document) -> String {
    let Ok(keys) = ix.get_document("key") else {
        return "{}".into();
    };
    let parts: Vec<String> = keys
        .iter()
        .map(|(k, v)| match number_of(v) {
            Some(n) => format!("{k}: {n}"),
            None => match v {
                Bson::String(s) => format!("{k}: \"{s}\""),
                _ => format!("{k}: ?"),
            },
        })
        .collect();
    format!("{{{}}}", parts.join(", "))
}

/// Why the database did not answer, in words that carry no connection string.
fn db_reason(e: &mongodb::error::Error, timeout: Duration) -> String {
    use mongodb::error::ErrorKind;
    match &*e.kind {
        ErrorKind::ServerSelection { message, .. } => {
            let m = message.to_ascii_lowercase();
            let why = if m.contains("connection refused") {
                "connection refused"
            } else if m.contains("authentication") || m.contains("auth") && m.contains("fail") {
                "authentication failed: check the user name and password in MONGO_URI"
            } else if m.contains("dns") || m.contains("lookup") {
                "host name not resolved"
            } else if m.contains("tls") || m.contains("certificate") {
                "TLS handshake failed"
            } else {
                "no suitable server"
            };
            format!(
                "{why}; no server selected within {} ms",
                timeout.as_millis()
            )
        }
        ErrorKind::Authentication { .. } => {
            "authentication failed: check the user name and password in MONGO_URI".into()
        }
        ErrorKind::DnsResolve { .. } => "host name not resolved".into(),
        ErrorKind::Io(io) => format!("connection failed ({:?})", io.kind()),
        ErrorKind::Command(c) => format!("server error {} {}", c.code, c.code_name),
        ErrorKind::InvalidTlsConfig { .. } => "invalid TLS options in MONGO_URI".into(),
        _ => "the database answered with an error".into(),
    }
}

async fn check_db(cfg: &Config) -> Vec<Finding> {
    // Same options as the service (`Service::db`).
    let mut opts = match ClientOptions::parse(&cfg.mongo_uri).await {
        Ok(o) => o,
        Err(e) => {
            let why = match *e.kind {
                mongodb::error::ErrorKind::DnsResolve { .. } => {
                    "the host name cannot be resolved (DNS lookup of the mongodb+srv:// record failed)"
                }
                _ => "is not a valid MongoDB connection string",
            };
            return vec![finding(PROBLEM, "MONGO_URI", why)];
        }
    };
    let hosts = opts
        .hosts
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",");
    opts.server_selection_timeout = Some(cfg.db_timeout);
    opts.connect_timeout = Some(cfg.db_timeout);
    opts.app_name = Some("librechat-custom-backend-auth doctor".into());
    let client = match mongodb::Client::with_options(opts) {
        Ok(c) => c,
        Err(e) => {
            return vec![finding(
                PROBLEM,
                "database",
                format!(
                    "cannot connect to {hosts} ({})",
                    db_reason(&e, cfg.db_timeout)
                ),
            )]
        }
    };
    let db = client
        .default_database()
        .unwrap_or_else(|| client.database("test"));
    let out = check_db_contents(&db, &hosts, cfg.db_timeout).await;
    client.shutdown().await;
    out
}

async fn check_db_contents(db: &mongodb::Database, hosts: &str, timeout: Duration) -> Vec<Finding> {
    let name = db.name().to_string();
    if let Err(e) = db.run_command(doc! { "ping": 1 }).await {
        return vec![finding(
            PROBLEM,
            "database",
            format!("unreachable at {hosts} ({})", db_reason(&e, timeout)),
        )];
    }
    let mut out = vec![finding(
        OK,
        "database",
        format!("reachable at {hosts}, database \"{name}\""),
    )];
    let collections = match db.list_collection_names().await {
        Ok(c) => c,
        Err(e) => {
            out.push(finding(
                PROBLEM,
                "database",
                format!("cannot list the collections ({})", db_reason(&e, timeout)),
            ));
            return out;
        }
    };
    for collection in ["users", "sessions"] {
        if !collections.iter().any(|c| c == collection) {
            out.push(finding(
                PROBLEM,
                collection,
                format!(
                    "collection missing in database \"{name}\"; start LibreChat once against this database (it creates the collections and their indexes)"
                ),
            ));
            continue;
        }
        let indexes = match list_indexes(db, collection).await {
            Ok(ix) => ix,
            Err(e) => {
                out.push(finding(
                    PROBLEM,
                    collection,
                    format!("cannot list the indexes ({})", db_reason(&e, timeout)),
                ));
                continue;
            }
        };
        out.extend(check_indexes(collection, &indexes));
        if collection == "users" {
            let ours = check_source_index(&indexes);
            let missing = ours.level == INFO;
            out.push(ours);
            if missing {
                out.extend(check_duplicate_identities(db, timeout).await);
            }
        }
    }
    out
}

/// Our own unique index (`src/users.rs`): one account per backend identity. It is created by the
/// first login that creates a user, so its absence is only information; a different index under
/// its name or keys is a problem (creating ours would fail).
pub fn check_source_index(indexes: &[Document]) -> Finding {
    use crate::users::{source_index_filter, source_index_keys, SOURCE_INDEX_NAME};
    let want_keys = fmt_keys(&doc! { "key": source_index_keys() });
    let create = format!(
        "db.users.createIndex({want_keys}, {{unique: true, partialFilterExpression: {{provider: \"{}\"}}, name: \"{SOURCE_INDEX_NAME}\"}})",
        crate::users::PROVIDER
    );
    let candidate = indexes
        .iter()
        .find(|ix| ix.get_str("name") == Ok(SOURCE_INDEX_NAME))
        .or_else(|| indexes.iter().find(|ix| fmt_keys(ix) == want_keys));
    let Some(ix) = candidate else {
        return finding(
            INFO,
            "users",
            format!(
                "index {SOURCE_INDEX_NAME} (unique {want_keys} for provider \"{}\") not created yet: the first login of a new backend user creates it, or create it: {create}",
                crate::users::PROVIDER
            ),
        );
    };
    let filter_ok = ix.get_document("partialFilterExpression").ok() == Some(&source_index_filter());
    if fmt_keys(ix) == want_keys && flag(ix, "unique") && filter_ok {
        return finding(
            OK,
            "users",
            format!(
                "index {want_keys} ({}, partial: provider \"{}\")",
                describe_index(ix),
                crate::users::PROVIDER
            ),
        );
    }
    finding(
        PROBLEM,
        "users",
        format!(
            "index {} on {} is not the package's unique index on {want_keys} for provider \"{}\"; new backend users cannot be created while it is in the way: drop it (db.users.dropIndex(\"{}\")) and create the right one: {create}",
            index_name(ix),
            fmt_keys(ix),
            crate::users::PROVIDER,
            index_name(ix),
        ),
    )
}

/// Backend identities with more than one account (left by older versions without our index):
/// while there are any, our unique index cannot be created and no new backend user can log in.
async fn check_duplicate_identities(db: &mongodb::Database, timeout: Duration) -> Vec<Finding> {
    let reply = db
        .run_command(doc! {
            "aggregate": "users",
            "pipeline": [
                { "$match": { "provider": crate::users::PROVIDER } },
                { "$group": { "_id": "$idOnTheSource", "n": { "$sum": 1 } } },
                { "$match": { "n": { "$gt": 1 } } },
                { "$count": "identities" },
            ],
            "cursor": {},
        })
        .await;
    let found = reply.map(|r| {
        r.get_document("cursor")
            .and_then(|c| c.get_array("firstBatch"))
            .ok()
            .and_then(|a| a.first())
            .and_then(Bson::as_document)
            .and_then(|d| d.get("identities"))
            .and_then(number_of)
            .unwrap_or(0.0)
    });
    match found {
        Ok(n) if n < 1.0 => vec![],
        Ok(n) => vec![finding(
            PROBLEM,
            "users",
            format!(
                "{} backend identities have more than one account (provider \"{}\", same idOnTheSource); merge or remove the extra accounts, else the package's unique index cannot be created and new backend users cannot log in",
                n,
                crate::users::PROVIDER
            ),
        )],
        Err(e) => vec![finding(
            PROBLEM,
            "users",
            format!("cannot look for duplicate backend identities ({})", db_reason(&e, timeout)),
        )],
    }
}

/// `listIndexes`' first batch: a collection has at most 64 indexes, well under a batch.
async fn list_indexes(
    db: &mongodb::Database,
    collection: &str,
) -> mongodb::error::Result<Vec<Document>> {
    let reply = db.run_command(doc! { "listIndexes": collection }).await?;
    let batch = reply
        .get_document("cursor")
        .and_then(|c| c.get_array("firstBatch"))
        .map(|a| {
            a.iter()
                .filter_map(|b| b.as_document().cloned())
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    Ok(batch)
}

/// One finding per required index of `collection`: OK naming the index found, or PROBLEM.
pub fn check_indexes(collection: &str, indexes: &[Document]) -> Vec<Finding> {
    REQUIRED_INDEXES
        .iter()
        .filter(|r| r.collection == collection)
        .map(|r| match indexes.iter().find(|ix| (r.matches)(ix)) {
            Some(ix) => finding(
                OK,
                collection,
                format!("index {} ({})", fmt_keys(ix), describe_index(ix)),
            ),
            None => {
                let near = indexes
                    .iter()
                    .find_map(|ix| (r.near_miss)(ix))
                    .map(|m| format!(" ({m})"))
                    .unwrap_or_default();
                finding(
                    PROBLEM,
                    collection,
                    format!(
                        "missing index {}{near}{}; {RUN_LIBRECHAT}, or create it: {}",
                        r.keys, r.note, r.create
                    ),
                )
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::sample_vars;

    #[test]
    fn every_variable_config_reads_is_shown() {
        // Any quoted upper-case name in config.rs is a variable it reads.
        let source = include_str!("config.rs");
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
                "{name} is read by config.rs but not shown by doctor"
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
        assert_eq!(def("BACKEND_JWT_ID_CLAIM"), j.id_claim);
    }

    #[test]
    fn secrets_are_redacted() {
        let mut vars = sample_vars();
        vars.insert("JWT_SECRET".into(), "super-secret-value".into());
        vars.insert(
            "MONGO_URI".into(),
            "mongodb://admin:p@ss/w?rd@db1:27017,db2/lc?authSource=admin&tlsCertificateKeyFilePassword=kp".into(),
        );
        vars.remove("JWT_REFRESH_SECRET");
        let shown: HashMap<String, String> = effective_config(&vars).into_iter().collect();
        assert_eq!(shown["JWT_SECRET"], "set (18 chars)");
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

    fn ix(d: Document) -> Document {
        d
    }

    #[test]
    fn index_rules() {
        let all_users = [
            ix(doc! {"key": {"_id": 1}, "name": "_id_"}),
            ix(doc! {"key": {"email": 1}, "name": "email_1"}),
            ix(
                doc! {"key": {"email": 1, "tenantId": 1}, "name": "email_1_tenantId_1", "unique": true},
            ),
            ix(doc! {"key": {"idOnTheSource": 1}, "name": "idOnTheSource_1", "sparse": true}),
        ];
        assert!(check_indexes("users", &all_users)
            .iter()
            .all(|f| f.level == OK));
        let old_users = [
            ix(doc! {"key": {"email": 1}, "name": "email_1", "unique": 1}),
            ix(doc! {"key": {"idOnTheSource": 1, "x": 1}, "name": "i"}),
        ];
        assert!(check_indexes("users", &old_users)
            .iter()
            .all(|f| f.level == OK));
        let weak = [ix(doc! {"key": {"email": 1}, "name": "email_1"})];
        let f = check_indexes("users", &weak);
        assert_eq!(f.len(), 2);
        assert!(f.iter().all(|f| f.level == PROBLEM));
        assert!(f[0].detail.contains("not unique"), "{}", f[0].detail);
        assert!(f[1].detail.contains("idOnTheSource"));

        let sessions = [
            ix(doc! {"key": {"expiration": 1}, "name": "expiration_1", "expireAfterSeconds": 0}),
            ix(doc! {"key": {"user": 1, "refreshTokenHash": 1}, "name": "u", "unique": true}),
        ];
        assert!(check_indexes("sessions", &sessions)
            .iter()
            .all(|f| f.level == OK));
        let wrong_ttl = [ix(
            doc! {"key": {"expiration": 1}, "name": "e", "expireAfterSeconds": 60.0},
        )];
        let f = check_indexes("sessions", &wrong_ttl);
        assert!(f[0].level == PROBLEM && f[0].detail.contains("expireAfterSeconds: 60"));
        assert!(f[1].level == PROBLEM && f[1].detail.contains("{user: 1"));
        assert_eq!(check_indexes("sessions", &[]).len(), 2);
    }

    #[test]
    fn item_8_8_doctor_checks_the_source_index() {
        use crate::users::SOURCE_INDEX_NAME;
        let base = [ix(doc! {"key": {"_id": 1}, "name": "_id_"})];
        assert_eq!(check_source_index(&base).level, INFO);
        let good = ix(doc! {
            "key": {"provider": 1, "idOnTheSource": 1}, "name": SOURCE_INDEX_NAME, "unique": true,
            "partialFilterExpression": {"provider": "custom-backend"},
        });
        let f = check_source_index(&[base[0].clone(), good]);
        assert_eq!(f.level, OK, "{}", f.detail);
        let not_unique = ix(doc! {
            "key": {"provider": 1, "idOnTheSource": 1}, "name": "p_i",
            "partialFilterExpression": {"provider": "custom-backend"},
        });
        let f = check_source_index(&[not_unique]);
        assert_eq!(f.level, PROBLEM);
        assert!(f.detail.contains("dropIndex(\"p_i\")"), "{}", f.detail);
        let not_partial = ix(doc! {
            "key": {"provider": 1, "idOnTheSource": 1}, "name": SOURCE_INDEX_NAME, "unique": true,
        });
        assert_eq!(check_source_index(&[not_partial]).level, PROBLEM);
        let other_keys =
            ix(doc! {"key": {"idOnTheSource": 1}, "name": SOURCE_INDEX_NAME, "unique": true});
        assert_eq!(check_source_index(&[other_keys]).level, PROBLEM);
    }

    #[test]
    fn jwks_usable_keys() {
        let v = serde_json::json!({"keys": [
            {"kty": "oct", "kid": "h", "k": "c2VjcmV0"},
            {"kty": "OKP", "crv": "Ed25519", "kid": "e", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
            {"kty": "OKP", "crv": "Ed25519", "kid": "enc", "use": "enc", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
            {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
            {"kty": "weird", "kid": "w"}
        ]});
        assert_eq!(usable_keys(&v), Some((1, 5)));
        assert_eq!(usable_keys(&serde_json::json!({"keys": []})), Some((0, 0)));
        assert_eq!(usable_keys(&serde_json::json!({"k": []})), None);
    }

    #[tokio::test]
    async fn invalid_configuration_is_the_only_finding() {
        let mut vars = sample_vars();
        vars.insert("BACKEND_TIMEOUT_MS".into(), "0".into());
        let (shown, findings) = diagnose(&vars).await;
        assert!(!shown.is_empty());
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].level, PROBLEM);
        assert!(findings[0]
            .detail
            .starts_with("[CONFIG_INVALID] BACKEND_TIMEOUT_MS:"));
    }

    #[tokio::test]
    async fn closed_port_is_no_answer() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let cfg = Config::from_vars(&sample_vars()).unwrap();
        let http = crate::backend::http_client(&cfg).unwrap();
        let url = Url::parse(&format!("http://127.0.0.1:{port}/refresh?secret=1")).unwrap();
        let f = check_url(
            &http,
            "BACKEND_REFRESH_URL",
            &url,
            false,
            cfg.backend_timeout,
        )
        .await;
        assert_eq!(f.level, PROBLEM);
        assert_eq!(
            f.detail,
            format!("no answer from 127.0.0.1:{port} (connection refused)")
        );
    }
}
