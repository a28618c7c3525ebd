//! Backend events as stored: the checked event, and the record of the events applied (for their
//! ids, applied once, and the per-user order of state events), kept as long as revocations.

use mongodb::bson::{doc, DateTime};
use mongodb::error::{ErrorKind, WriteFailure};
use mongodb::options::IndexOptions;
use mongodb::{Database, IndexModel};
use serde_json::Value;

use crate::shared::error::AuthResult;
use crate::store::collection::{expiry_index, Indexed};
use crate::store::revocation::now_ms;

pub const EVENTS_COLLECTION: &str = "customBackendEvents";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    UserDisabled,
    UserDeleted,
    UserChanged,
    SessionRevoked,
}

impl Kind {
    pub const ALL: [(&'static str, Kind); 4] = [
        ("user.disabled", Kind::UserDisabled),
        ("user.deleted", Kind::UserDeleted),
        ("user.changed", Kind::UserChanged),
        ("session.revoked", Kind::SessionRevoked),
    ];

    pub fn name(self) -> &'static str {
        Kind::ALL
            .iter()
            .find(|(_, k)| *k == self)
            .map_or("", |(n, _)| n)
    }
}

/// A checked event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub id: String,
    pub kind: Kind,
    /// When it happened at the backend (ms).
    pub time_ms: i64,
    /// The backend's id of the user.
    pub user: String,
    /// `session.revoked`: the backend's session id.
    pub session: Option<String>,
    /// `user.changed`: the user as the backend's user info answers it.
    pub profile: Option<Value>,
    /// `tenantId`: the one tenant whose account of the user it is about; none: every tenant's.
    pub tenant: Option<String>,
}

/// Events applied (for their ids and the per-user order), kept as long as revocations.
pub struct EventStore {
    events: Indexed,
    retention_ms: i64,
}

pub fn event_indexes() -> Vec<IndexModel> {
    vec![
        IndexModel::builder()
            .keys(doc! { "userId": 1, "time": -1 })
            .options(
                IndexOptions::builder()
                    .name("userId_1_time_-1".to_string())
                    .build(),
            )
            .build(),
        expiry_index(),
    ]
}

const STATE_KINDS: [&str; 3] = ["user.disabled", "user.deleted", "user.changed"];

impl EventStore {
    pub fn new(db: &Database, retention_ms: i64) -> EventStore {
        EventStore {
            events: Indexed::new(db, EVENTS_COLLECTION, event_indexes),
            retention_ms,
        }
    }

    pub async fn seen(&self, id: &str) -> AuthResult<bool> {
        Ok(self
            .events
            .get()
            .await?
            .find_one(doc! { "_id": id })
            .projection(doc! { "_id": 1 })
            .await?
            .is_some())
    }

    /// The time of the newest state event applied for this backend user.
    pub async fn latest_state(&self, user: &str) -> AuthResult<Option<i64>> {
        let d = self
            .events
            .get()
            .await?
            .find_one(doc! { "userId": user, "type": { "$in": STATE_KINDS.to_vec() } })
            .sort(doc! { "time": -1 })
            .await?;
        Ok(d.and_then(|d| d.get_datetime("time").ok().map(|t| t.timestamp_millis())))
    }

    /// Claims an event id for this delivery: `false` when another delivery (here or on another
    /// server) claimed it first, so that concurrent deliveries of one event apply it once.
    pub async fn claim(&self, e: &Event) -> AuthResult<bool> {
        let now = now_ms();
        let r = self
            .events
            .get()
            .await?
            .insert_one(doc! {
                "_id": &e.id,
                "userId": &e.user,
                "type": e.kind.name(),
                "time": DateTime::from_millis(e.time_ms),
                "receivedAt": DateTime::from_millis(now),
                "expiresAt": DateTime::from_millis(now.saturating_add(self.retention_ms)),
            })
            .await;
        match r {
            Ok(_) => Ok(true),
            Err(e) if is_duplicate_key(&e) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Gives a claim back when applying the event failed: the backend's retry applies it.
    pub async fn release(&self, id: &str) -> AuthResult<()> {
        self.events
            .get()
            .await?
            .delete_one(doc! { "_id": id })
            .await?;
        Ok(())
    }
}

fn is_duplicate_key(e: &mongodb::error::Error) -> bool {
    matches!(&*e.kind, ErrorKind::Write(WriteFailure::WriteError(w)) if w.code == 11000)
}
