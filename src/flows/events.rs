//! Backend events (push): signed notices from the backend that a user was disabled, deleted or
//! changed, or that one of its sessions was revoked. Checked here (HMAC-SHA256 over timestamp and
//! body, a timestamp window, one application per event id, never an older event over a newer
//! one), applied at once on this server and, through revocations, on every other.

use hmac::{Hmac, Mac};
use mongodb::bson::oid::ObjectId;
use mongodb::bson::DateTime;
use serde_json::Value;
use sha2::Sha256;

use crate::flows::control::TellBackend;
use crate::flows::login::user_tenant;
use crate::flows::service::Service;
use crate::identity::tenant_id;
use crate::shared::error::{AuthError, AuthResult};
use crate::shared::json::{parse_unique, JsonError};
use crate::store::events::{Event, Kind};
use crate::store::revocation::{now_ms, Record};
use crate::store::sessions::Which;
use crate::store::users::Profile;

/// The body of one event, at most (the shim refuses more with 413 before reading it whole).
pub const MAX_EVENT_BYTES: usize = 64 * 1024;
const MAX_ID_CHARS: usize = 256;

/// What an event did.
#[derive(Debug, Clone, PartialEq)]
pub enum Status {
    Applied,
    /// This event id was applied before: nothing done again.
    Duplicate,
    /// A newer event about this user was applied before: nothing done.
    Stale,
    /// No LibreChat account belongs to this backend user: nothing to do.
    NoAccount,
}

impl Status {
    pub fn name(&self) -> &'static str {
        match self {
            Status::Applied => "applied",
            Status::Duplicate => "duplicate",
            Status::Stale => "stale",
            Status::NoAccount => "no_account",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub status: Status,
    pub event: Event,
    /// The LibreChat users (`_id` hex) it was applied to: one per tenant with an account.
    pub user_ids: Vec<String>,
    pub sessions_ended: u32,
}

/// An event whose `time` is further ahead of this server's clock than a signature may be.
fn bad_time() -> AuthError {
    AuthError::BadRequest(
        "event time is ahead of this server's clock by more than BACKEND_EVENTS_TOLERANCE_SECONDS"
            .into(),
    )
}

fn bad(m: &str) -> AuthError {
    AuthError::SignatureInvalid(m.to_string())
}

/// Checks `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">` (several `v1` allowed, for a
/// sender rotating its secret) against the secret, within `tolerance_secs` of `now_secs`. The
/// comparison is constant-time.
pub fn verify_signature(
    secret: &[u8],
    header: &str,
    body: &[u8],
    now_secs: i64,
    tolerance_secs: i64,
) -> AuthResult<()> {
    let mut t: Option<&str> = None;
    let mut signatures = Vec::new();
    for part in header.split(',').map(str::trim) {
        match part.split_once('=') {
            Some(("t", v)) => t = Some(v),
            Some(("v1", v)) => signatures.push(v),
            _ => {}
        }
    }
    let t = t.ok_or_else(|| bad("no timestamp"))?;
    let at: i64 = t
        .parse()
        .ok()
        .filter(|_| t.len() <= 12 && t.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| bad("timestamp is not a whole number of seconds"))?;
    if (now_secs - at).abs() > tolerance_secs {
        return Err(bad("timestamp outside the tolerance"));
    }
    if signatures.is_empty() {
        return Err(bad("no v1 signature"));
    }
    for s in signatures.iter().take(4) {
        let Ok(sig) = hex::decode(s) else {
            continue;
        };
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
            return Err(AuthError::Internal("event secret unusable".into()));
        };
        mac.update(t.as_bytes());
        mac.update(b".");
        mac.update(body);
        if mac.verify_slice(&sig).is_ok() {
            return Ok(());
        }
    }
    Err(bad("signature does not match"))
}

fn field<'a>(v: &'a Value, name: &str) -> Option<&'a Value> {
    v.get(name).filter(|x| !x.is_null())
}

/// A bounded string field without control characters.
fn text(v: &Value, name: &str, required: bool) -> AuthResult<Option<String>> {
    match field(v, name) {
        None if required => Err(AuthError::BadRequest(format!("event {name} is required"))),
        None => Ok(None),
        Some(Value::String(s))
            if !s.is_empty()
                && s.chars().count() <= MAX_ID_CHARS
                && !s.chars().any(char::is_control) =>
        {
            Ok(Some(s.clone()))
        }
        Some(Value::Number(n)) if name == "userId" => Ok(Some(n.to_string())),
        Some(_) => Err(AuthError::BadRequest(format!(
            "event {name} must be a non-empty string of at most {MAX_ID_CHARS} characters"
        ))),
    }
}

/// `time`: Unix seconds (fractions allowed) or an RFC 3339 string.
fn time_ms(v: &Value) -> AuthResult<i64> {
    let bad_time =
        || AuthError::BadRequest("event time must be Unix seconds or an RFC 3339 date".into());
    match field(v, "time") {
        Some(Value::Number(n)) => n
            .as_f64()
            .filter(|s| s.is_finite() && *s > 0.0 && *s < 1e11)
            .map(|s| (s * 1000.0) as i64)
            .ok_or_else(bad_time),
        Some(Value::String(s)) if s.len() <= 64 => DateTime::parse_rfc3339_str(s)
            .map(|d| d.timestamp_millis())
            .map_err(|_| bad_time()),
        None => Err(AuthError::BadRequest("event time is required".into())),
        Some(_) => Err(bad_time()),
    }
}

/// Reads an event body (JSON); every problem is a 400 naming the field.
pub fn parse(body: &[u8]) -> AuthResult<Event> {
    let v: Value = parse_unique(body).map_err(|e| {
        AuthError::BadRequest(match e {
            JsonError::NotJson => "event body is not JSON".into(),
            JsonError::DuplicateKey => "event body repeats a key".into(),
        })
    })?;
    if !v.is_object() {
        return Err(AuthError::BadRequest("event body must be an object".into()));
    }
    let type_name = text(&v, "type", true)?.unwrap_or_default();
    let kind = Kind::ALL
        .iter()
        .find(|(n, _)| *n == type_name)
        .map(|(_, k)| *k)
        .ok_or_else(|| {
            let names: Vec<&str> = Kind::ALL.iter().map(|(n, _)| *n).collect();
            AuthError::BadRequest(format!("event type must be one of: {}", names.join(", ")))
        })?;
    let session = text(&v, "sessionId", kind == Kind::SessionRevoked)?;
    let profile = match (kind, field(&v, "user")) {
        (Kind::UserChanged, Some(u @ Value::Object(_))) => Some(u.clone()),
        (Kind::UserChanged, _) => {
            return Err(AuthError::BadRequest(
                "event user (the user as user info answers it) is required".into(),
            ))
        }
        _ => None,
    };
    Ok(Event {
        id: text(&v, "id", true)?.unwrap_or_default(),
        kind,
        time_ms: time_ms(&v)?,
        user: text(&v, "userId", true)?.unwrap_or_default(),
        session,
        profile,
        tenant: match field(&v, "tenantId") {
            None => None,
            Some(Value::String(t)) => {
                tenant_id(Some(t), "event tenantId").map_err(AuthError::BadRequest)?
            }
            Some(_) => {
                return Err(AuthError::BadRequest(
                    "event tenantId must be a string".into(),
                ))
            }
        },
    })
}

impl Service {
    /// Whether backend events are accepted (`BACKEND_EVENTS_SECRET` is set).
    pub fn events_enabled(&self) -> bool {
        self.config.events_secret.is_some()
    }

    /// Checks and applies one signed event (docs/logout-events-revocation.md, "Backend events").
    pub async fn handle_event(&self, body: &[u8], signature: &str) -> AuthResult<Outcome> {
        let secret = self
            .config
            .events_secret
            .as_deref()
            .ok_or_else(|| bad("backend events are not enabled"))?;
        if body.len() > MAX_EVENT_BYTES {
            return Err(AuthError::BadRequest("event body is too large".into()));
        }
        let tolerance = i64::try_from(self.config.events_tolerance_secs).unwrap_or(300);
        verify_signature(secret, signature, body, now_ms() / 1000, tolerance)?;
        let event = parse(body)?;
        let outcome = |status, user_ids, sessions_ended| Outcome {
            status,
            event: event.clone(),
            user_ids,
            sessions_ended,
        };
        // A time further ahead than a signature may be (a backend node's clock far off) would
        // order every later event of the user behind it.
        let ahead_ms = tolerance.saturating_mul(1000);
        if event.time_ms > now_ms().saturating_add(ahead_ms) {
            return Err(bad_time());
        }
        let db = self.db().await?;
        if db.events.seen(&event.id).await? {
            return Ok(outcome(Status::Duplicate, Vec::new(), 0));
        }
        // Order decides between profile states only: a disable or delete always takes effect.
        if event.kind == Kind::UserChanged {
            let too_old = event.time_ms < now_ms().saturating_sub(self.revocation_retention_ms());
            let newer = db
                .events
                .latest_state(&event.user)
                .await?
                .is_some_and(|t| t > event.time_ms);
            if too_old || newer {
                return Ok(outcome(Status::Stale, Vec::new(), 0));
            }
        }
        if !db.events.claim(&event).await? {
            return Ok(outcome(Status::Duplicate, Vec::new(), 0));
        }
        match self.apply(&event).await {
            // Kept claimed all the same when no account had it: its order holds against later events.
            Ok((users, _)) if users.is_empty() => Ok(outcome(Status::NoAccount, Vec::new(), 0)),
            Ok((users, ended)) => Ok(outcome(
                Status::Applied,
                users.into_iter().map(ObjectId::to_hex).collect(),
                ended,
            )),
            Err(e) => {
                // Unclaimed, so that the backend's retry of it is applied.
                let _ = db.events.release(&event.id).await;
                Err(e)
            }
        }
    }

    /// An event's effects on each LibreChat account of the backend user (one per tenant, or only
    /// the named tenant's): the accounts and the sessions it ended.
    async fn apply(&self, event: &Event) -> AuthResult<(Vec<ObjectId>, u32)> {
        let db = self.db().await?;
        let scope = event.tenant.as_deref().map(Some);
        let accounts = db.users.find_by_source(&event.user, scope).await?;
        let mut ended = 0;
        for (user, tenant) in &accounts {
            ended += self.apply_to(event, *user, tenant.as_deref()).await?;
        }
        Ok((accounts.into_iter().map(|(id, _)| id).collect(), ended))
    }

    /// An event's effect on one account: the sessions it ended.
    async fn apply_to(
        &self,
        event: &Event,
        user: ObjectId,
        tenant: Option<&str>,
    ) -> AuthResult<u32> {
        let backend_id = Some(event.user.clone());
        let ended = match event.kind {
            Kind::UserDisabled | Kind::UserDeleted => {
                self.end_sessions(
                    user,
                    backend_id,
                    Which::Barred,
                    event.kind.name(),
                    TellBackend::Background,
                )
                .await?
                .sessions
            }
            Kind::SessionRevoked => {
                let sid = event.session.as_deref().unwrap_or_default();
                self.end_sessions(
                    user,
                    backend_id,
                    Which::BackendSession(sid),
                    event.kind.name(),
                    TellBackend::No,
                )
                .await?
                .sessions
            }
            Kind::UserChanged => self.apply_change(event, user, tenant).await?,
        };
        Ok(ended)
    }

    /// `user.changed`: the user document re-synced now (role mapping included) and every server's
    /// caches of it dropped; a user the policy no longer admits loses every session instead.
    async fn apply_change(
        &self,
        event: &Event,
        user: ObjectId,
        tenant: Option<&str>,
    ) -> AuthResult<u32> {
        let raw = event.profile.as_ref().cloned().unwrap_or(Value::Null);
        let changed = self
            .backend
            .user_from(&raw)
            .map_err(|_| AuthError::BadRequest("event user lacks a usable id or email".into()))?;
        if changed.id != event.user {
            return Err(AuthError::BadRequest(
                "event user id differs from userId".into(),
            ));
        }
        // An account in a tenant the backend no longer puts the user in is barred like a denial.
        let moved = user_tenant(tenant, &changed).is_err();
        if moved || self.config.policy.admit(&changed).is_err() {
            let ended = self
                .end_sessions(
                    user,
                    Some(event.user.clone()),
                    Which::Barred,
                    "user.denied",
                    TellBackend::Background,
                )
                .await?;
            return Ok(ended.sessions);
        }
        let db = self.db().await?;
        let profile = Profile::from_backend(&changed, &self.config.policy)
            .in_tenant(tenant.map(str::to_string));
        db.users.sync(&profile).await?;
        self.revoke(
            db,
            Record::new(user, Some(event.user.clone()), None, "user.changed"),
        )
        .await?;
        Ok(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn sign(t: i64, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(SECRET).unwrap();
        mac.update(format!("{t}.").as_bytes());
        mac.update(body);
        format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
    }

    #[test]
    fn item_11_1_signatures_are_checked_with_their_window() {
        let body = br#"{"id":"e1"}"#;
        let now = 1_700_000_000;
        assert!(verify_signature(SECRET, &sign(now, body), body, now, 300).is_ok());
        assert!(verify_signature(SECRET, &sign(now - 300, body), body, now, 300).is_ok());
        let code = |h: &str, b: &[u8]| {
            verify_signature(SECRET, h, b, now, 300)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        assert!(code(&sign(now - 301, body), body).contains("tolerance"));
        assert!(code(&sign(now + 301, body), body).contains("tolerance"));
        assert!(code(&sign(now, body), br#"{"id":"e2"}"#).contains("does not match"));
        assert!(code("", body).contains("no timestamp"));
        assert!(code(&format!("t={now}"), body).contains("no v1"));
        assert!(code(&format!("t={now},v1=zz"), body).contains("does not match"));
        assert!(code(&format!("t=-{now},v1=00"), body).contains("whole number"));
        // A rotating sender sends two signatures; one good one suffices.
        let two = format!(
            "t={now},v1={},v1={}",
            "00".repeat(32),
            &sign(now, body)[16..]
        );
        assert!(verify_signature(SECRET, &two, body, now, 300).is_ok());
        // Another secret does not verify.
        assert!(verify_signature(
            b"another-secret-another-secret-xx",
            &sign(now, body),
            body,
            now,
            300
        )
        .is_err());
    }

    #[test]
    fn item_11_1_event_bodies_are_validated_field_by_field() {
        let e = parse(br#"{"id":"e1","type":"user.disabled","time":1700000000.5,"userId":"u1"}"#)
            .unwrap();
        assert_eq!(e.kind, Kind::UserDisabled);
        assert_eq!(e.time_ms, 1_700_000_000_500);
        assert_eq!(e.user, "u1");
        let e = parse(
            br#"{"id":"e1","type":"user.disabled","time":"2023-11-14T22:13:20Z","userId":42}"#,
        )
        .unwrap();
        assert_eq!(e.time_ms, 1_700_000_000_000);
        assert_eq!(e.user, "42");
        let msg = |b: &[u8]| parse(b).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(msg(b"nope").contains("not JSON"));
        assert!(msg(b"[]").contains("object"));
        assert!(
            msg(br#"{"id":"e1","type":"user.renamed","time":1,"userId":"u"}"#).contains("one of")
        );
        assert!(
            msg(br#"{"type":"user.disabled","time":1,"userId":"u"}"#).contains("id is required")
        );
        assert!(
            msg(br#"{"id":"e1","type":"user.disabled","userId":"u"}"#).contains("time is required")
        );
        assert!(
            msg(br#"{"id":"e1","type":"user.disabled","time":"yesterday","userId":"u"}"#)
                .contains("RFC 3339")
        );
        assert!(
            msg(br#"{"id":"e1","type":"user.disabled","time":1}"#).contains("userId is required")
        );
        assert!(
            msg(br#"{"id":"e1","type":"session.revoked","time":1,"userId":"u"}"#)
                .contains("sessionId")
        );
        assert!(
            msg(br#"{"id":"e1","type":"user.changed","time":1,"userId":"u"}"#).contains("user")
        );
        let long = format!(
            r#"{{"id":"{}","type":"user.disabled","time":1,"userId":"u"}}"#,
            "x".repeat(300)
        );
        assert!(msg(long.as_bytes()).contains("at most"));
        assert!(
            msg(br#"{"id":"a\u0000b","type":"user.disabled","time":1,"userId":"u"}"#)
                .contains("at most")
        );
    }
}
