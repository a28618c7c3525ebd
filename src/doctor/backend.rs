//! The backend URLs: each answers a plain GET that carries no credentials; the JWKS URL answers
//! with a usable key set. No error text of an HTTP answer is copied (it may echo a request).

use std::error::Error as _;
use std::time::Duration;

use reqwest::{header::LOCATION, Client, StatusCode, Url};
use serde_json::Value;

use std::sync::Arc;

use super::env::shown_url;
use super::finding::{finding, Finding, OK, PROBLEM};
use crate::backend::breaker::{Breakers, Lane, Outcome};
use crate::config::Config;

/// The largest key set read from `BACKEND_JWKS_URL`.
const MAX_JWKS_BYTES: usize = 1024 * 1024;

/// Each probe goes through `breakers` as the service's calls do, so that their states after the
/// probes can be shown (`doctor/breaker.rs`).
pub async fn check_backend(cfg: &Config, breakers: &Arc<Breakers>) -> Vec<Finding> {
    let http = match crate::backend::client::http_client(cfg) {
        Ok(c) => c,
        Err(e) => return vec![finding(PROBLEM, "backend", format!("[{}] {}", e.code(), e))],
    };
    // Each URL in the breaker lane of the service's calls to it.
    let mut urls = vec![
        ("BACKEND_AUTH_URL", cfg.auth_url.clone(), Lane::Login),
        (
            "BACKEND_USER_INFO_URL",
            cfg.userinfo_url.clone(),
            Lane::Token,
        ),
        (
            "BACKEND_REFRESH_URL",
            cfg.refresh_url.clone(),
            Lane::Session,
        ),
    ];
    if let Some(u) = &cfg.logout_url {
        urls.push(("BACKEND_LOGOUT_URL", u.clone(), Lane::Session));
    }
    if let Some(j) = &cfg.jwks {
        urls.push(("BACKEND_JWKS_URL", j.url.clone(), Lane::Keys));
    }
    if let Some(i) = &cfg.introspection {
        // A bare GET, as for the others: no client credentials, no token.
        urls.push(("BACKEND_INTROSPECTION_URL", i.url.clone(), Lane::Token));
    }
    let timeout = cfg.backend_timeout;
    let checks: Vec<_> = urls
        .into_iter()
        .map(|(name, url, lane)| {
            let http = http.clone();
            let breakers = breakers.clone();
            let jwks = lane == Lane::Keys;
            tokio::spawn(async move {
                let permit = match breakers.admit(&url, lane, false) {
                    Ok(p) => p,
                    Err(e) => {
                        return finding(
                            PROBLEM,
                            name,
                            format!("{} not probed: {e}", shown_url(&url)),
                        )
                    }
                };
                let (f, outcome) = check_url(&http, name, &url, jwks, timeout).await;
                permit.finish(outcome);
                f
            })
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
/// problems (redirects are not followed by the service; a 5xx is the backend failing). The outcome
/// is the breaker's: no answer or a 5xx is a failure, as for the service's calls.
async fn check_url(
    http: &Client,
    name: &str,
    url: &Url,
    jwks: bool,
    timeout: Duration,
) -> (Finding, Outcome) {
    let f = check_answer(http, name, url, jwks, timeout).await;
    let failed = f.level == PROBLEM
        && (f.detail.starts_with("no answer from ") || f.detail.ends_with("(server error)"));
    let outcome = if failed {
        Outcome::Failed
    } else {
        Outcome::Answered
    };
    (f, outcome)
}

async fn check_answer(
    http: &Client,
    name: &str,
    url: &Url,
    jwks: bool,
    timeout: Duration,
) -> Finding {
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
        // A POST-only route answers a GET so on most servers (a healthy install prints this for
        // each of them), as does a wrong path: the server is up; the first login tells the rest.
        return finding(
            OK,
            name,
            format!("{shown} answers (HTTP 404 to a GET without credentials, as a POST-only route does; a wrong path would too)"),
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
    Some((crate::backend::bearer::parse_key_set(v).len(), total))
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

/// `host:port` of a URL, for "no answer from …".
fn host_port(url: &Url) -> String {
    format!(
        "{}:{}",
        url.host_str().unwrap_or("?"),
        url.port_or_known_default().unwrap_or(0)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::sample_vars;

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
    async fn item_22_6_a_post_only_route_answering_404_to_a_get_is_ok_not_info() {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            if let Ok((mut s, _)) = listener.accept() {
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf);
                let _ = s.write_all(
                    b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
            }
        });
        let cfg = Config::from_vars(&sample_vars()).unwrap();
        let http = crate::backend::client::http_client(&cfg).unwrap();
        let url = Url::parse(&format!("http://127.0.0.1:{port}/login")).unwrap();
        let (f, outcome) =
            check_url(&http, "BACKEND_AUTH_URL", &url, false, cfg.backend_timeout).await;
        assert_eq!(outcome, Outcome::Answered);
        assert_eq!(f.level, OK);
        assert!(f
            .detail
            .contains("HTTP 404 to a GET without credentials, as a POST-only route does"));
    }

    #[tokio::test]
    async fn closed_port_is_no_answer() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let cfg = Config::from_vars(&sample_vars()).unwrap();
        let http = crate::backend::client::http_client(&cfg).unwrap();
        let url = Url::parse(&format!("http://127.0.0.1:{port}/refresh?secret=1")).unwrap();
        let (f, outcome) = check_url(
            &http,
            "BACKEND_REFRESH_URL",
            &url,
            false,
            cfg.backend_timeout,
        )
        .await;
        assert_eq!(outcome, Outcome::Failed);
        assert_eq!(f.level, PROBLEM);
        assert_eq!(
            f.detail,
            format!("no answer from 127.0.0.1:{port} (connection refused)")
        );
    }
}
