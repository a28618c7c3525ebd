//! Audit events that happen without a request (docs/security.md, "Audit events"): emitted here,
//! delivered to the JS shim's listener, which adds nothing request-bound and routes them to the
//! same logger and callback as the events of requests. Never blocks: without a listener, or when
//! the listener's queue is full or closing, the event is dropped and counted.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use serde::Serialize;

/// Names of the events emitted natively (the shim's catalogue in `lib/audit.js` holds them too).
pub mod events {
    /// A backend session the package ended in the background (a login refused after the backend
    /// issued tokens): `outcome` is `ok` or the logout call's error code.
    pub const BACKEND_SESSION_ENDED: &str = "backend_session.ended";
    /// A lane of a backend host's circuit breaker opened (failures in a row, or a failed probe):
    /// `host`, `lane`.
    pub const BREAKER_OPENED: &str = "breaker.opened";
    /// It closed again (a probe got an answer): `host`, `lane`.
    pub const BREAKER_CLOSED: &str = "breaker.closed";
}

/// One event. Identifiers only: never a token, a password or a token hash.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AuditEvent {
    pub event: &'static str,
    /// `ok` or an error code.
    pub outcome: &'static str,
    /// LibreChat user `_id` hex.
    pub user_id: Option<String>,
    /// The backend's user id (`idOnTheSource`).
    pub backend_id: Option<String>,
    /// Session document `_id` hex.
    pub session: Option<String>,
    /// The backend host concerned (breaker events).
    pub host: Option<String>,
    /// The breaker lane concerned (breaker events): `login`, `token`, `session` or `keys`.
    pub lane: Option<&'static str>,
    /// When it happened, ms since the epoch (the shim writes it as an ISO string).
    pub time_ms: i64,
}

impl AuditEvent {
    /// An event of now with only its name and outcome; the rest is filled in by the caller.
    pub fn new(event: &'static str, outcome: &'static str) -> Self {
        AuditEvent {
            event,
            outcome,
            user_id: None,
            backend_id: None,
            session: None,
            host: None,
            lane: None,
            time_ms: mongodb::bson::DateTime::now().timestamp_millis(),
        }
    }
}

/// Delivers one serialised event without waiting; `false` when it could not.
pub type Sink = Box<dyn Fn(String) -> bool + Send + Sync>;

#[derive(Default)]
struct Inner {
    sink: RwLock<Option<Sink>>,
    dropped: AtomicU64,
}

/// The channel to the shim; cheap to clone into background tasks.
#[derive(Clone, Default)]
pub struct Audit(Arc<Inner>);

impl Audit {
    /// Sets (or replaces) the listener.
    pub fn listen(&self, sink: Sink) {
        if let Ok(mut s) = self.0.sink.write() {
            *s = Some(sink);
        }
    }

    /// Hands the event to the listener, or drops and counts it.
    pub fn emit(&self, event: AuditEvent) {
        let delivered = match (self.0.sink.read(), serde_json::to_string(&event)) {
            (Ok(s), Ok(json)) => s.as_ref().is_some_and(|deliver| deliver(json)),
            _ => false,
        };
        if !delivered {
            self.0.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Events that could not be delivered so far (no listener, queue full, Node shutting down).
    pub fn dropped(&self) -> u64 {
        self.0.dropped.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn item_11_4_audit_delivers_json_or_drops_and_counts() {
        let audit = Audit::default();
        audit.emit(AuditEvent::new(events::BACKEND_SESSION_ENDED, "ok"));
        assert_eq!(audit.dropped(), 1, "no listener: dropped");
        let got = Arc::new(Mutex::new(Vec::new()));
        let sink = got.clone();
        audit.listen(Box::new(move |json| {
            sink.lock().unwrap().push(json);
            true
        }));
        let mut e = AuditEvent::new(events::BACKEND_SESSION_ENDED, "BACKEND_TIMEOUT");
        e.backend_id = Some("u-1".into());
        audit.emit(e);
        let v: serde_json::Value = serde_json::from_str(&got.lock().unwrap()[0]).unwrap();
        assert_eq!(v["event"], "backend_session.ended");
        assert_eq!(v["outcome"], "BACKEND_TIMEOUT");
        assert_eq!(v["backendId"], "u-1");
        assert!(v["userId"].is_null() && v["timeMs"].as_i64().unwrap() > 0);
        // A listener that cannot take it (queue full): dropped and counted, never waited on.
        audit.listen(Box::new(|_| false));
        audit.emit(AuditEvent::new(events::BACKEND_SESSION_ENDED, "ok"));
        assert_eq!(audit.dropped(), 2);
    }
}
