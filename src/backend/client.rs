//! HTTP client for the organisation's backend: login, user info, refresh, logout, and the mapping of
//! their answers onto what LibreChat needs. Nothing here logs; bodies of error answers are never
//! read into messages (they may echo credentials).

use std::time::Duration;

use reqwest::{redirect::Policy, Client, RequestBuilder, StatusCode, Url};
use serde_json::Value;

use std::sync::Arc;
use std::time::Instant;

use crate::backend::breaker::{Breakers, KnownNames, Lane, Outcome};
use crate::config::{Config, IntrospectionConfig, Mapping, MfaConfig};
use crate::identity::{BackendTokens, BackendUser};
use crate::shared::error::{AuthError, AuthResult};
use crate::shared::json::{parse_unique, JsonError};
use crate::shared::metrics::{call_outcome, Endpoint, Metrics};

/// Larger answers are not a sane login or user-info answer.
const MAX_BODY_BYTES: usize = 1024 * 1024;
const MAX_FIELD_CHARS: usize = 1024;

/// The backend's user id (a string, or a number kept as its decimal string), exactly as sent: ids
/// are opaque, so one with surrounding whitespace or a control character is not used (it is
/// not trimmed into another user's id).
pub fn map_id(v: &Value, m: &Mapping) -> Option<String> {
    m.user_id
        .iter()
        .find_map(|p| lookup(v, p))
        .and_then(|id| match id {
            Value::String(s) if usable_id(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
}

fn usable_id(s: &str) -> bool {
    !s.is_empty() && s.trim() == s && !s.chars().any(char::is_control)
}

/// An avatar is stored only as an absolute `http(s)` URL (no `javascript:`, `data:`, relative
/// paths): LibreChat's client puts it into an `<img src>`.
fn usable_avatar(s: &str) -> bool {
    Url::parse(s).is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
}

pub fn map_roles(v: &Value, m: &Mapping) -> Vec<String> {
    roles_at(v, &m.user_roles)
}

fn roles_at(v: &Value, paths: &[String]) -> Vec<String> {
    let Some(found) = paths.iter().find_map(|p| lookup(v, p)) else {
        return Vec::new();
    };
    let items: Vec<&str> = match found {
        Value::String(s) => s.split([',', ' ']).collect(),
        Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    items
        .into_iter()
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(str::to_string)
        .collect()
}

#[derive(Debug)]
pub struct RefreshAnswer {
    pub tokens: BackendTokens,
    /// Present when the answer carried a usable user.
    pub user: Option<BackendUser>,
}

#[derive(Debug)]
pub struct LoginAnswer {
    pub tokens: BackendTokens,
    /// Present when the answer itself carried a usable user (id and email).
    pub user: Option<BackendUser>,
}

/// The backend's second factor asked for at login: its challenge, to be answered with a code.
#[derive(Debug, Clone, PartialEq)]
pub struct Challenge {
    pub id: String,
    /// The answer's `expiresIn` (the access-token lifetime field), when it has one.
    pub expires_in_secs: Option<u64>,
}

/// What a login answer is: the session's tokens, or the second factor's challenge.
pub enum LoginReply {
    Tokens(Box<LoginAnswer>),
    Challenge(Challenge),
}

/// What the backend said to a second-factor code.
pub enum MfaVerdict {
    /// Right: the login answer's tokens (and user).
    Passed(Box<LoginAnswer>),
    /// Wrong (401/403): the challenge stays usable.
    Wrong,
    /// The challenge is used up or expired (404/410).
    Gone,
}

/// A challenge id longer than this is not kept (it goes back to the backend in a JSON body).
const MAX_CHALLENGE_CHARS: usize = 4096;

/// A successful answer, or the backend's "no" (401/403, and the call's own refusals).
enum Answer {
    Json(Value),
    /// A non-2xx status the call reads (`BACKEND_MFA_STATUS` at login), with its JSON body.
    Read(Value),
    Refused(StatusCode),
}

/// Cheap to clone (the HTTP client is shared): a background JWKS refresh owns one, and a
/// best-effort call can outlive its request.
#[derive(Clone)]
pub struct Backend {
    http: Client,
    /// `BACKEND_TIMEOUT_MS`: the whole of a call, its wait for a place included.
    timeout: Duration,
    auth_url: Url,
    userinfo_url: Url,
    refresh_url: Url,
    mapping: Mapping,
    /// Latency, outcome and calls in flight of every call (shared with the service).
    metrics: Arc<Metrics>,
    /// The circuit breaker and pending bound per backend host, in front of every call.
    breakers: Arc<Breakers>,
    /// User names whose login the backend accepted: they may probe an open login lane.
    known_names: Arc<KnownNames>,
    mfa: Option<MfaConfig>,
}

/// The HTTP client for every backend call: no redirects followed (a redirect could carry the
/// credentials elsewhere), the configured timeout, TLS always verified, plus `BACKEND_CA_CERT_PATH`.
pub fn http_client(cfg: &Config) -> AuthResult<Client> {
    // reqwest is built without a bundled crypto provider; ring is ours (and the mongodb driver's).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = Client::builder()
        .redirect(Policy::none())
        .timeout(cfg.backend_timeout)
        .connect_timeout(cfg.backend_timeout.min(Duration::from_secs(5)));
    if let Some(pem) = &cfg.ca_cert_pem {
        let certs = reqwest::Certificate::from_pem_bundle(pem)
            .ok()
            .filter(|c| !c.is_empty())
            .ok_or_else(|| AuthError::config("BACKEND_CA_CERT_PATH", "holds no PEM certificate"))?;
        builder = builder.tls_certs_merge(certs);
    }
    builder.build().map_err(|_| match cfg.ca_cert_pem {
        Some(_) => AuthError::config(
            "BACKEND_CA_CERT_PATH",
            "cannot be used as trusted roots for the backend's TLS",
        ),
        None => AuthError::Internal("cannot build the HTTP client".into()),
    })
}

impl Backend {
    pub fn new(cfg: &Config) -> AuthResult<Backend> {
        let http = http_client(cfg)?;
        Ok(Backend {
            http,
            timeout: cfg.backend_timeout,
            auth_url: cfg.auth_url.clone(),
            userinfo_url: cfg.userinfo_url.clone(),
            refresh_url: cfg.refresh_url.clone(),
            mapping: cfg.mapping.clone(),
            metrics: Arc::default(),
            breakers: Arc::new(Breakers::new(cfg.breaker, cfg.backend_urls())),
            known_names: Arc::default(),
            mfa: cfg.mfa.clone(),
        })
    }

    /// The breakers of the backend hosts (their states; `set_listener` for transitions).
    pub fn breakers(&self) -> &Arc<Breakers> {
        &self.breakers
    }

    /// Counts into `metrics` (the service's) instead of a private set.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Backend {
        self.metrics = metrics;
        self
    }

    /// `POST BACKEND_AUTH_URL {username, password}`.
    pub async fn login(&self, username: &str, password: &str) -> AuthResult<LoginReply> {
        let mut body = serde_json::Map::new();
        body.insert(
            self.mapping.login_username_field.clone(),
            Value::String(username.to_string()),
        );
        body.insert("password".into(), Value::String(password.to_string()));
        let req = self.http.post(self.auth_url.clone()).json(&body);
        let known = self.known_names.contains(username);
        let readable: Vec<StatusCode> = self
            .mfa
            .as_ref()
            .and_then(|m| m.status)
            .and_then(|s| StatusCode::from_u16(s).ok())
            .into_iter()
            .collect();
        let answer = self
            .send_full(req, Endpoint::Login, Lane::Login, known, &[], &readable)
            .await?;
        let challenge = match &answer {
            Answer::Json(v) | Answer::Read(v) => self.challenge_in(v)?,
            Answer::Refused(_) => None,
        };
        if let Some(c) = challenge {
            self.known_names.insert(username);
            return Ok(LoginReply::Challenge(c));
        }
        match answer {
            Answer::Refused(_) | Answer::Read(_) => Err(AuthError::InvalidCredentials),
            Answer::Json(v) => {
                self.known_names.insert(username);
                self.login_answer(&v, "login")
                    .map(|a| LoginReply::Tokens(Box::new(a)))
            }
        }
    }

    /// The tokens (and the user, when it is there) of a login answer's shape.
    fn login_answer(&self, v: &Value, what: &str) -> AuthResult<LoginAnswer> {
        let tokens = self.tokens(v, what)?;
        let user = v.get("user").and_then(|u| self.user_from(u).ok());
        Ok(LoginAnswer { tokens, user })
    }

    /// The second factor's challenge in a login answer, when it asks for one (`BACKEND_MFA_FIELD`).
    fn challenge_in(&self, v: &Value) -> AuthResult<Option<Challenge>> {
        let Some(m) = &self.mfa else {
            return Ok(None);
        };
        let asked = m.flag.iter().filter_map(|p| lookup(v, p)).any(|f| {
            f.as_bool() == Some(true) || f.as_str().is_some_and(|s| s.eq_ignore_ascii_case("true"))
        });
        if !asked {
            return Ok(None);
        }
        let id = first_string(v, &m.challenge)
            .filter(|id| id.chars().count() <= MAX_CHALLENGE_CHARS)
            .ok_or_else(|| {
                AuthError::BackendBadResponse(
                    "the login answer asks for a second factor without a usable challenge id"
                        .into(),
                )
            })?;
        let expires_in_secs = self
            .mapping
            .expires_in
            .iter()
            .find_map(|p| lookup(v, p))
            .and_then(Value::as_f64)
            .filter(|s| s.is_finite() && *s > 0.0)
            .map(|s| s as u64);
        Ok(Some(Challenge {
            id,
            expires_in_secs,
        }))
    }

    /// `POST BACKEND_MFA_VERIFY_URL {challengeId, code}` (keys mapped; `"backup": true` for a
    /// backup code): the login answer when the code is right.
    pub async fn mfa_verify(
        &self,
        challenge: &str,
        code: &str,
        backup: bool,
    ) -> AuthResult<MfaVerdict> {
        let Some(m) = &self.mfa else {
            return Err(AuthError::Internal("no BACKEND_MFA_VERIFY_URL".into()));
        };
        let mut body = serde_json::Map::new();
        body.insert(
            m.challenge_key.clone(),
            Value::String(challenge.to_string()),
        );
        body.insert(m.code_key.clone(), Value::String(code.to_string()));
        if backup {
            body.insert("backup".into(), Value::Bool(true));
        }
        let req = self.http.post(m.verify_url.clone()).json(&body);
        let gone = [StatusCode::NOT_FOUND, StatusCode::GONE];
        match self
            .send_full(req, Endpoint::MfaVerify, Lane::Login, true, &gone, &[])
            .await?
        {
            Answer::Refused(s) if gone.contains(&s) => Ok(MfaVerdict::Gone),
            Answer::Refused(_) | Answer::Read(_) => Ok(MfaVerdict::Wrong),
            Answer::Json(v) => self
                .login_answer(&v, "second factor")
                .map(|a| MfaVerdict::Passed(Box::new(a))),
        }
    }

    /// `GET BACKEND_USER_INFO_URL` with the access token. `Ok(None)` when the backend refuses it.
    /// `lane`: `Token` for a bearer token the service has not seen valid, `Session` for the access
    /// token of a login or refresh the backend just accepted.
    pub async fn userinfo(
        &self,
        access_token: &str,
        lane: Lane,
    ) -> AuthResult<Option<BackendUser>> {
        let req = self
            .http
            .get(self.userinfo_url.clone())
            .bearer_auth(access_token);
        let answer = self.send(req, Endpoint::Userinfo, lane).await?;
        self.user_answer(answer)
    }

    /// `GET BACKEND_SSO_COOKIE_URL` with the portal's cookie forwarded: the user it belongs to, or
    /// `None` when the portal refuses it (401/403: signed out, expired).
    pub async fn sso_cookie(
        &self,
        url: &Url,
        name: &str,
        value: &str,
    ) -> AuthResult<Option<BackendUser>> {
        let mut cookie = reqwest::header::HeaderValue::from_str(&format!("{name}={value}"))
            .map_err(|_| {
                AuthError::TokenInvalid("the portal cookie is not a cookie value".into())
            })?;
        cookie.set_sensitive(true);
        let req = self
            .http
            .get(url.clone())
            .header(reqwest::header::COOKIE, cookie);
        let answer = self.send(req, Endpoint::SsoCookie, Lane::Token).await?;
        self.user_answer(answer)
    }

    /// `GET BACKEND_SSO_LOOKUP_URL?username=<name>`: the backend's user of that name, or `None`
    /// (404, 401, 403: no such user here).
    pub async fn sso_lookup(&self, url: &Url, username: &str) -> AuthResult<Option<BackendUser>> {
        let mut url = url.clone();
        url.query_pairs_mut().append_pair("username", username);
        let req = self.http.get(url);
        let answer = self
            .send_full(
                req,
                Endpoint::SsoLookup,
                Lane::Token,
                false,
                &[StatusCode::NOT_FOUND],
                &[],
            )
            .await?;
        self.user_answer(answer)
    }

    /// A user-info-shaped answer: `{user:{...}}` or the bare user object.
    fn user_answer(&self, answer: Answer) -> AuthResult<Option<BackendUser>> {
        match answer {
            Answer::Refused(_) => Ok(None),
            Answer::Json(v) | Answer::Read(v) => {
                let wrapped = v.get("user").filter(|u| u.is_object());
                match wrapped.map(|u| self.user_from(u)) {
                    Some(Ok(u)) => Ok(Some(u)),
                    _ => self.user_from(&v).map(Some),
                }
            }
        }
    }

    /// `POST BACKEND_REFRESH_URL {refreshToken}`. `Ok(None)` when the backend ends the session:
    /// 400/401/403 (OAuth servers answer `invalid_grant` with 400) or a 2xx carrying `error`.
    pub async fn refresh(&self, refresh_token: &str) -> AuthResult<Option<RefreshAnswer>> {
        let req = self
            .http
            .post(self.refresh_url.clone())
            .json(&serde_json::json!({ "refreshToken": refresh_token }));
        match self
            .send_full(
                req,
                Endpoint::Refresh,
                Lane::Session,
                false,
                &[StatusCode::BAD_REQUEST],
                &[],
            )
            .await?
        {
            Answer::Refused(_) => Ok(None),
            Answer::Json(v) | Answer::Read(v) => {
                if first_string(&v, &self.mapping.access_token).is_none()
                    && v.get("error").is_some()
                {
                    return Ok(None);
                }
                let tokens = self.tokens(&v, "refresh")?;
                let user = v.get("user").and_then(|u| self.user_from(u).ok());
                Ok(Some(RefreshAnswer { tokens, user }))
            }
        }
    }

    /// `POST BACKEND_LOGOUT_URL {refreshToken}` with the access token as Bearer. Best effort.
    pub async fn logout(&self, url: &Url, access: &str, refresh: Option<&str>) -> AuthResult<()> {
        let req = self
            .http
            .post(url.clone())
            .bearer_auth(access)
            .json(&serde_json::json!({ "refreshToken": refresh }));
        self.send(req, Endpoint::Logout, Lane::Session)
            .await
            .map(|_| ())
    }

    /// `GET BACKEND_JWKS_URL`: the key set as raw JSON.
    pub async fn jwks(&self, url: &Url) -> AuthResult<Value> {
        match self
            .send(self.http.get(url.clone()), Endpoint::Jwks, Lane::Keys)
            .await?
        {
            Answer::Json(v) | Answer::Read(v) => Ok(v),
            Answer::Refused(_) => Err(AuthError::BackendBadResponse("JWKS refused".into())),
        }
    }

    /// `POST BACKEND_INTROSPECTION_URL` (RFC 7662 section 2.1): `token` and the hint as a form,
    /// the client authenticated by HTTP Basic. The answer as raw JSON. A 401/403 is the endpoint
    /// refusing our client credentials, not a verdict on the token: an error (503), never a 401.
    pub async fn introspect(&self, cfg: &IntrospectionConfig, token: &str) -> AuthResult<Value> {
        use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
        let body = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("token", token)
            .append_pair("token_type_hint", "access_token")
            .finish();
        let req = self
            .http
            .post(cfg.url.clone())
            .header(AUTHORIZATION, client_basic_auth(cfg)?)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(ACCEPT, "application/json")
            .body(body);
        match self.send(req, Endpoint::Introspection, Lane::Token).await? {
            Answer::Json(v) | Answer::Read(v) => Ok(v),
            Answer::Refused(_) => Err(AuthError::BackendUnavailable(
                "introspection refused the client credentials".into(),
            )),
        }
    }

    async fn send(
        &self,
        req: RequestBuilder,
        endpoint: Endpoint,
        lane: Lane,
    ) -> AuthResult<Answer> {
        self.send_full(req, endpoint, lane, false, &[], &[]).await
    }

    /// Sends a request through its host's breaker lane (refused at once while it is open, after a
    /// wait for a place while its calls in flight are at their bound: nothing is sent; `vouched`
    /// may probe an open lane),
    /// timed and counted per endpoint and outcome (a call dropped before it ends, e.g. by a client
    /// gone away, leaves the in-flight gauge but is not timed).
    /// `readable`: non-2xx statuses whose JSON body is read (`Answer::Read`).
    async fn send_full(
        &self,
        req: RequestBuilder,
        endpoint: Endpoint,
        lane: Lane,
        vouched: bool,
        refusals: &[StatusCode],
        readable: &[StatusCode],
    ) -> AuthResult<Answer> {
        let (client, req) = req.build_split();
        let mut req = req.map_err(|e| transport_error(&e, endpoint.what()))?;
        let asked = Instant::now();
        let permit = self
            .breakers
            .admit_waiting(req.url(), lane, vouched)
            .await?;
        if permit.waited() {
            // The wait counts against BACKEND_TIMEOUT_MS: a queued login is answered within it too.
            *req.timeout_mut() = Some(self.timeout.saturating_sub(asked.elapsed()));
        }
        let _in_flight = self.metrics.backend_call_started();
        let started = Instant::now();
        let sent = client.execute(req).await;
        let unreachable = matches!(&sent, Err(e) if e.is_connect());
        let answer = self
            .exchange(sent, endpoint.what(), refusals, readable)
            .await;
        if permit.waited() && matches!(answer, Err(AuthError::BackendTimeout)) {
            // Cut short by our own queue, not given the backend's full time: says nothing about
            // the backend, so it is not counted (the permit drops unfinished).
        } else {
            permit.finish(if unreachable {
                Outcome::Unreachable
            } else {
                Outcome::of(&answer)
            });
        }
        let outcome = call_outcome(match &answer {
            Ok(Answer::Json(_) | Answer::Read(_)) => Ok(true),
            Ok(Answer::Refused(_)) => Ok(false),
            Err(e) => Err(e),
        });
        self.metrics
            .backend_call(endpoint, outcome, started.elapsed());
        answer
    }

    /// One request's answer; `refusals` are statuses that count as the backend's "no" besides
    /// 401/403.
    async fn exchange(
        &self,
        sent: reqwest::Result<reqwest::Response>,
        what: &str,
        refusals: &[StatusCode],
        readable: &[StatusCode],
    ) -> AuthResult<Answer> {
        let mut resp = sent.map_err(|e| transport_error(&e, what))?;
        let status = resp.status();
        let read = readable.contains(&status);
        if !read
            && (status == StatusCode::UNAUTHORIZED
                || status == StatusCode::FORBIDDEN
                || refusals.contains(&status))
        {
            return Ok(Answer::Refused(status));
        }
        if status == StatusCode::TOO_MANY_REQUESTS {
            return Err(AuthError::BackendRateLimited);
        }
        if status.is_server_error() {
            return Err(AuthError::BackendUnavailable(format!(
                "{what} answered {}",
                status.as_u16()
            )));
        }
        if !status.is_success() && !read {
            return Err(AuthError::BackendBadResponse(format!(
                "{what} answered {}",
                status.as_u16()
            )));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| transport_error(&e, what))? {
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(AuthError::BackendBadResponse(format!(
                    "{what} answer is too large"
                )));
            }
            body.extend_from_slice(&chunk);
        }
        match parse_unique(&body) {
            Ok(v) if read => Ok(Answer::Read(v)),
            // A read status whose body is not JSON (a plain-text 403) is the refusal it would be.
            Err(_) if read => Ok(Answer::Refused(status)),
            Ok(v) => Ok(Answer::Json(v)),
            Err(JsonError::NotJson) => Err(AuthError::BackendBadResponse(format!(
                "{what} answer is not JSON"
            ))),
            Err(JsonError::DuplicateKey) => Err(AuthError::BackendBadResponse(format!(
                "{what} answer repeats a key"
            ))),
        }
    }

    pub fn tokens(&self, v: &Value, what: &str) -> AuthResult<BackendTokens> {
        let m = &self.mapping;
        let access_token = first_string(v, &m.access_token)
            .ok_or_else(|| AuthError::BackendBadResponse(format!("{what} answer has no token")))?;
        let refresh_token = first_string(v, &m.refresh_token);
        let expires_in_secs = m
            .expires_in
            .iter()
            .find_map(|p| lookup(v, p))
            .and_then(|e| match e {
                Value::Number(n) => n.as_f64(),
                Value::String(s) => s.trim().parse().ok(),
                _ => None,
            })
            .filter(|s| s.is_finite() && *s > 0.0)
            .map(|s| s as u64);
        Ok(BackendTokens {
            access_token,
            refresh_token,
            expires_in_secs,
            session_id: first_string(v, &m.session_id),
        })
    }

    pub fn user_from(&self, v: &Value) -> AuthResult<BackendUser> {
        map_user(v, &self.mapping)
    }
}

/// The user fields of a backend object (login answer, user info, JWT claims) through a mapping.
pub fn map_user(v: &Value, m: &Mapping) -> AuthResult<BackendUser> {
    let id = map_id(v, m).ok_or_else(|| {
        AuthError::BackendBadResponse(
            "the user has no usable id (missing, blank, or with surrounding whitespace or control characters)".into(),
        )
    })?;
    let email = first_string(v, &m.user_email)
        .ok_or_else(|| AuthError::BackendBadResponse("the user has no email".into()))?;
    if !looks_like_email(&email) {
        return Err(AuthError::BackendBadResponse(
            "the user's email is not an address".into(),
        ));
    }
    if id.chars().count() > MAX_FIELD_CHARS || email.chars().count() > MAX_FIELD_CHARS {
        return Err(AuthError::BackendBadResponse(
            "the user's id or email is too long".into(),
        ));
    }
    let bounded = |s: Option<String>| s.filter(|s| s.chars().count() <= MAX_FIELD_CHARS);
    Ok(BackendUser {
        id,
        email,
        username: bounded(first_string(v, &m.user_username)),
        name: bounded(first_string(v, &m.user_name)),
        avatar: bounded(first_string(v, &m.user_avatar)).filter(|a| usable_avatar(a)),
        roles: roles_at(v, &m.user_roles),
        tenant: first_string(v, &m.user_tenant),
    })
}

/// `Basic base64(id:secret)` with id and secret form-urlencoded first (RFC 6749 section 2.3.1),
/// marked sensitive so that no debug output of the request shows it.
fn client_basic_auth(cfg: &IntrospectionConfig) -> AuthResult<reqwest::header::HeaderValue> {
    use base64::Engine;
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let pair = format!(
        "{}:{}",
        enc(&cfg.client_id),
        enc(cfg.client_secret.expose())
    );
    let b64 = base64::engine::general_purpose::STANDARD.encode(pair);
    let mut value = reqwest::header::HeaderValue::from_str(&format!("Basic {b64}"))
        .map_err(|_| AuthError::Internal("cannot build the client authentication".into()))?;
    value.set_sensitive(true);
    Ok(value)
}

fn transport_error(e: &reqwest::Error, what: &str) -> AuthError {
    if e.is_timeout() {
        AuthError::BackendTimeout
    } else {
        AuthError::BackendUnavailable(format!("{what} unreachable"))
    }
}

/// Value at a dot path (`profile.mail`).
pub fn lookup<'v>(v: &'v Value, path: &str) -> Option<&'v Value> {
    path.split('.')
        .try_fold(v, |cur, key| cur.get(key))
        .filter(|v| !v.is_null())
}

pub(crate) fn first_string(v: &Value, paths: &[String]) -> Option<String> {
    paths.iter().find_map(|p| match lookup(v, p) {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_string()),
        _ => None,
    })
}

/// The check LibreChat's `User` schema applies (`/\S+@\S+\.\S+/`).
fn looks_like_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    let local_ok = local.chars().last().is_some_and(|c| !c.is_whitespace());
    let domain = domain.trim_end();
    let domain_ok = domain.split_once('.').is_some_and(|(a, b)| {
        a.chars().next().is_some_and(|c| !c.is_whitespace())
            && b.chars().next().is_some_and(|c| !c.is_whitespace())
    });
    local_ok && domain_ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::sample_vars;
    use serde_json::json;

    fn backend(extra: &[(&str, &str)]) -> Backend {
        let mut vars = sample_vars();
        for (k, v) in extra {
            vars.insert(k.to_string(), v.to_string());
        }
        Backend::new(&Config::from_vars(&vars).unwrap()).unwrap()
    }

    #[test]
    fn item_11_5_client_credentials_are_form_encoded_before_basic() {
        use base64::Engine;
        let mut vars = crate::config::tests::introspection_vars();
        vars.insert("BACKEND_INTROSPECTION_CLIENT_ID".into(), "lib chat".into());
        vars.insert(
            "BACKEND_INTROSPECTION_CLIENT_SECRET".into(),
            "p:w+%&é".into(),
        );
        let cfg = Config::from_vars(&vars).unwrap().introspection.unwrap();
        let header = client_basic_auth(&cfg).unwrap();
        assert!(header.is_sensitive());
        let b64 = header.to_str().unwrap().strip_prefix("Basic ").unwrap();
        let pair = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap();
        assert_eq!(
            String::from_utf8(pair).unwrap(),
            "lib+chat:p%3Aw%2B%25%26%C3%A9"
        );
    }

    #[test]
    fn tokens_default_and_snake_case_names() {
        let b = backend(&[]);
        let t = b
            .tokens(
                &json!({"token":"a","refreshToken":"r","expiresIn":60}),
                "login",
            )
            .unwrap();
        assert_eq!(t.access_token, "a");
        assert_eq!(t.refresh_token.as_deref(), Some("r"));
        assert_eq!(t.expires_in_secs, Some(60));
        let t = b
            .tokens(
                &json!({"access_token":"a","refresh_token":"r","expires_in":"30"}),
                "login",
            )
            .unwrap();
        assert_eq!(
            (t.access_token.as_str(), t.expires_in_secs),
            ("a", Some(30))
        );
        assert_eq!(
            b.tokens(&json!({"token": ""}), "login"),
            Err(AuthError::BackendBadResponse(
                "login answer has no token".into()
            ))
        );
        assert!(b.tokens(&json!({"token": 5}), "login").is_err());
    }

    #[test]
    fn user_mapping_with_nested_paths() {
        let b = backend(&[
            ("BACKEND_USER_ID_FIELD", "uid"),
            ("BACKEND_USER_EMAIL_FIELD", "profile.mail"),
            ("BACKEND_USER_NAME_FIELD", "profile.display,name"),
        ]);
        let u = b
            .user_from(&json!({"uid": 42, "profile": {"mail": "A@B.io"}, "name": "N"}))
            .unwrap();
        assert_eq!(u.id, "42");
        assert_eq!(u.email, "A@B.io");
        assert_eq!(u.name.as_deref(), Some("N"));
        assert_eq!(u.username, None);
        assert!(u.roles.is_empty());
        let b = backend(&[("BACKEND_ROLES_FIELD", "groups")]);
        let base = json!({"id": 1, "email": "a@b.io"});
        let with = |g: serde_json::Value| {
            let mut v = base.clone();
            v["groups"] = g;
            b.user_from(&v).unwrap().roles
        };
        assert_eq!(with(json!(["a", "b"])), vec!["a", "b"]);
        assert_eq!(with(json!("a, b c")), vec!["a", "b", "c"]);
        assert!(with(json!(5)).is_empty());
    }

    #[test]
    fn item_8_22b_ids_are_kept_exactly_and_refused_when_padded() {
        let m = Config::from_vars(&sample_vars()).unwrap().mapping;
        assert_eq!(
            map_id(&json!({"id": "u-1001"}), &m).as_deref(),
            Some("u-1001")
        );
        assert_eq!(map_id(&json!({"id": 1001}), &m).as_deref(), Some("1001"));
        assert_eq!(map_id(&json!({"id": " u-1001 "}), &m), None);
        assert_eq!(map_id(&json!({"id": "u-1001\t"}), &m), None);
        assert_eq!(map_id(&json!({"id": "u-\u{7f}1001"}), &m), None);
        assert_eq!(map_id(&json!({"id": ""}), &m), None);
    }

    #[test]
    fn item_8_22c_only_http_avatars_are_used() {
        let b = backend(&[]);
        let avatar = |a: &str| {
            b.user_from(&json!({"id": "1", "email": "a@b.io", "avatar": a}))
                .unwrap()
                .avatar
        };
        assert_eq!(
            avatar("https://cdn.example.com/a.png").as_deref(),
            Some("https://cdn.example.com/a.png")
        );
        assert_eq!(
            avatar("http://cdn.example.com/a.png").as_deref(),
            Some("http://cdn.example.com/a.png")
        );
        assert_eq!(avatar("javascript:alert(1)"), None);
        assert_eq!(avatar("JavaScript:alert(1)"), None);
        assert_eq!(avatar("data:image/png;base64,AAAA"), None);
        assert_eq!(avatar("/images/a.png"), None);
        assert_eq!(avatar("//cdn.example.com/a.png"), None);
        assert_eq!(avatar("https://"), None);
    }

    #[test]
    fn user_without_id_or_valid_email_is_a_bad_response() {
        let b = backend(&[]);
        assert!(b.user_from(&json!({"email": "a@b.c"})).is_err());
        assert!(b.user_from(&json!({"id": "1"})).is_err());
        assert!(b.user_from(&json!({"id": "1", "email": "nope"})).is_err());
        assert!(b.user_from(&json!({"id": {}, "email": "a@b.c"})).is_err());
        assert!(looks_like_email("a@b.co"));
        assert!(b
            .user_from(&json!({"id": " u-1", "email": "a@b.c"}))
            .is_err());
        assert!(b
            .user_from(&json!({"id": "u-1\n", "email": "a@b.c"}))
            .is_err());
        assert!(b
            .user_from(&json!({"id": "u\u{0}1", "email": "a@b.c"}))
            .is_err());
        assert!(!looks_like_email("a@b"));
    }
}
