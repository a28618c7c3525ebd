//! Revocations: from a moment on, a user's tokens issued before it stop working, on every server
//! sharing the database. Each is recorded in `customBackendRevocations`; every server keeps the
//! "not before" times in memory (the per-request check reads only memory) and reads the records
//! other servers wrote every `REVOCATION_POLL_MS`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, RwLock};

use mongodb::bson::{doc, oid::ObjectId, DateTime, Document};
use mongodb::options::IndexOptions;
use mongodb::{Database, IndexModel};

use crate::shared::error::AuthResult;
use crate::store::collection::{expiry_index, Indexed};

pub const REVOCATIONS_COLLECTION: &str = "customBackendRevocations";

/// A record written by a server whose clock is up to this much behind ours is still read.
pub const CLOCK_SKEW_MS: i64 = 30_000;

pub fn now_ms() -> i64 {
    DateTime::now().timestamp_millis()
}

/// LibreChat access tokens are minted by every server sharing the database, each by its own
/// clock: a server whose clock runs ahead gives a token issued just before a revocation a later
/// `iat`. So a revocation refuses our tokens dated up to this much after it, and a server minting
/// one for that user meanwhile dates it after that (`NotBefore::first_iat`), never earlier.
pub const ISSUER_SKEW_MS: i64 = CLOCK_SKEW_MS;

/// The first whole second whose tokens a revocation at `nb_ms` lets through: a token carries its
/// `iat` in seconds, so one issued in the revocation's own second may be older than it and is
/// refused too.
pub fn first_valid_second(nb_ms: i64) -> i64 {
    nb_ms.saturating_add(999).div_euclid(1000)
}

/// One revocation: what changed for a user, and from when their tokens must be newer.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub id: ObjectId,
    /// The LibreChat user (`_id`).
    pub user: ObjectId,
    /// The backend's id of the user, when known: its cached backend-token verdicts are dropped.
    pub backend_id: Option<String>,
    /// Tokens issued before this (ms) are refused; `None`: only the caches are dropped (a change).
    pub not_before_ms: Option<i64>,
    /// Why (`user.disabled`, `logout.all`, …): for audit and support, never for a decision.
    pub reason: String,
    /// When it was written, by the writer's clock (ms).
    pub at_ms: i64,
}

impl Record {
    pub fn new(
        user: ObjectId,
        backend_id: Option<String>,
        not_before_ms: Option<i64>,
        reason: &str,
    ) -> Record {
        Record {
            id: ObjectId::new(),
            user,
            backend_id,
            not_before_ms,
            reason: reason.to_string(),
            at_ms: now_ms(),
        }
    }

    fn to_document(&self, retention_ms: i64) -> Document {
        let mut d = doc! {
            "_id": self.id,
            "user": self.user,
            "reason": &self.reason,
            "at": DateTime::from_millis(self.at_ms),
            "expiresAt": DateTime::from_millis(self.at_ms.saturating_add(retention_ms)),
        };
        if let Some(b) = &self.backend_id {
            d.insert("backendId", b);
        }
        if let Some(nb) = self.not_before_ms {
            d.insert("notBefore", DateTime::from_millis(nb));
        }
        d
    }

    fn from_document(d: &Document) -> Option<Record> {
        Some(Record {
            id: d.get_object_id("_id").ok()?,
            user: d.get_object_id("user").ok()?,
            backend_id: d.get_str("backendId").ok().map(str::to_string),
            not_before_ms: d
                .get_datetime("notBefore")
                .ok()
                .map(|t| t.timestamp_millis()),
            reason: d.get_str("reason").unwrap_or_default().to_string(),
            at_ms: d.get_datetime("at").ok()?.timestamp_millis(),
        })
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The "not before" time of every revoked user, in memory, and the records already applied.
#[derive(Default)]
pub struct NotBefore {
    by_user: RwLock<HashMap<String, i64>>,
    /// Entries in `by_user`: zero keeps the per-request check to one atomic load.
    count: AtomicUsize,
    /// Records applied here (by id), with their `at`, so that the poll's overlap applies each once.
    seen: Mutex<HashMap<ObjectId, i64>>,
}

impl NotBefore {
    /// The user's "not before" time (ms), if revoked.
    pub fn get(&self, user: &str) -> Option<i64> {
        if self.count.load(Ordering::Relaxed) == 0 {
            return None;
        }
        self.by_user
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(user)
            .copied()
    }

    /// Whether a backend token of `user` issued at `iat` (seconds, the backend's clock) is
    /// revoked. Without `iat` a revoked user's token cannot be shown to be newer, so it is refused.
    pub fn refuses(&self, user: &str, iat: Option<u64>) -> bool {
        self.refuses_from(user, iat, 0)
    }

    /// `refuses` for a LibreChat access token: dated by whichever server minted it
    /// (`ISSUER_SKEW_MS`).
    pub fn refuses_ours(&self, user: &str, iat: Option<u64>) -> bool {
        self.refuses_from(user, iat, ISSUER_SKEW_MS)
    }

    fn refuses_from(&self, user: &str, iat: Option<u64>, skew_ms: i64) -> bool {
        match self.get(user) {
            None => false,
            Some(nb) => iat.is_none_or(|iat| {
                i64::try_from(iat).unwrap_or(i64::MAX)
                    < first_valid_second(nb.saturating_add(skew_ms))
            }),
        }
    }

    /// The earliest `iat` (seconds) a LibreChat access token of `user` minted now may carry, if
    /// the user was revoked: one `refuses_ours` lets through.
    pub fn first_iat(&self, user: &str) -> Option<u64> {
        let nb = self.get(user)?;
        u64::try_from(first_valid_second(nb.saturating_add(ISSUER_SKEW_MS))).ok()
    }

    /// Raises the user's "not before" to `nb_ms` (never lowers it: an older record changes
    /// nothing).
    pub fn raise(&self, user: &str, nb_ms: i64) {
        let mut map = self.by_user.write().unwrap_or_else(|p| p.into_inner());
        let e = map.entry(user.to_string()).or_insert(i64::MIN);
        *e = (*e).max(nb_ms);
        self.count.store(map.len(), Ordering::Relaxed);
    }

    /// Marks a record applied; `false` when it already was.
    pub fn first_sight(&self, r: &Record) -> bool {
        lock(&self.seen).insert(r.id, r.at_ms).is_none()
    }

    /// Forgets what no token can need any more: "not before" times older than `retention_ms` (a
    /// token issued before them has expired) and applied records the poll cannot see again.
    pub fn prune(&self, now_ms: i64, retention_ms: i64, polled_since_ms: i64) {
        let oldest = now_ms.saturating_sub(retention_ms);
        {
            let mut map = self.by_user.write().unwrap_or_else(|p| p.into_inner());
            map.retain(|_, nb| *nb >= oldest);
            self.count.store(map.len(), Ordering::Relaxed);
        }
        let horizon = polled_since_ms.saturating_sub(2 * CLOCK_SKEW_MS);
        lock(&self.seen).retain(|_, at| *at >= horizon);
    }
}

/// The records in the database.
pub struct RevocationStore {
    records: Indexed,
    retention_ms: i64,
}

/// The collection's indexes (also checked by `doctor`): the poll's range on `at`, and a TTL.
pub fn revocation_indexes() -> Vec<IndexModel> {
    vec![
        IndexModel::builder()
            .keys(doc! { "at": 1 })
            .options(IndexOptions::builder().name("at_1".to_string()).build())
            .build(),
        expiry_index(),
    ]
}

impl RevocationStore {
    pub fn new(db: &Database, retention_ms: i64) -> RevocationStore {
        RevocationStore {
            records: Indexed::new(db, REVOCATIONS_COLLECTION, revocation_indexes),
            retention_ms,
        }
    }

    pub async fn insert(&self, r: &Record) -> AuthResult<()> {
        self.records
            .get()
            .await?
            .insert_one(r.to_document(self.retention_ms))
            .await?;
        Ok(())
    }

    /// Records written at or after `since_ms` (by their writer's clock).
    pub async fn since(&self, since_ms: i64) -> AuthResult<Vec<Record>> {
        let mut cursor = self
            .records
            .get()
            .await?
            .find(doc! { "at": { "$gte": DateTime::from_millis(since_ms) } })
            .await?;
        let mut out = Vec::new();
        while cursor.advance().await? {
            if let Some(r) = Record::from_document(&cursor.deserialize_current()?) {
                out.push(r);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(user: ObjectId, nb: Option<i64>) -> Record {
        Record {
            not_before_ms: nb,
            ..Record::new(user, None, None, "test")
        }
    }

    #[test]
    fn item_11_1_tokens_of_the_revocation_second_are_refused_later_ones_pass() {
        let t = NotBefore::default();
        let user = ObjectId::new().to_hex();
        assert!(!t.refuses(&user, Some(1)), "no revocation: nothing refused");
        t.raise(&user, 1_700_000_000_250);
        assert!(t.refuses(&user, Some(1_699_999_999)));
        // Issued in the revocation's second: maybe before it, so refused.
        assert!(t.refuses(&user, Some(1_700_000_000)));
        assert!(!t.refuses(&user, Some(1_700_000_001)));
        assert!(t.refuses(&user, None), "no iat: cannot be shown newer");
        // Our own tokens: dated by any server's clock, so up to ISSUER_SKEW_MS later are refused,
        // and the first `iat` a server may now give one is past that.
        let skew = u64::try_from(ISSUER_SKEW_MS / 1000).unwrap();
        assert!(t.refuses_ours(&user, Some(1_700_000_000 + skew)));
        assert!(!t.refuses_ours(&user, Some(1_700_000_001 + skew)));
        assert_eq!(t.first_iat(&user), Some(1_700_000_001 + skew));
        assert!(!t.refuses_ours(&user, t.first_iat(&user)));
        assert_eq!(t.first_iat(&ObjectId::new().to_hex()), None);
        assert!(
            !t.refuses(&ObjectId::new().to_hex(), None),
            "other users untouched"
        );
        // Exactly on a second: that second's tokens are not older than it.
        t.raise(&user, 1_700_000_010_000);
        assert!(t.refuses(&user, Some(1_700_000_009)));
        assert!(!t.refuses(&user, Some(1_700_000_010)));
    }

    #[test]
    fn item_11_1_an_older_revocation_never_lowers_a_newer_one() {
        let t = NotBefore::default();
        let user = ObjectId::new().to_hex();
        t.raise(&user, 5_000_000);
        t.raise(&user, 1_000_000);
        assert_eq!(t.get(&user), Some(5_000_000));
    }

    #[test]
    fn item_11_1_records_apply_once_and_old_state_is_pruned() {
        let t = NotBefore::default();
        let user = ObjectId::new();
        let r = record(user, Some(10_000));
        assert!(t.first_sight(&r));
        assert!(!t.first_sight(&r), "the poll's overlap sees it again");
        t.raise(&user.to_hex(), 10_000);
        t.prune(20_000, 5_000, r.at_ms);
        assert_eq!(t.get(&user.to_hex()), None, "older than the retention");
        assert!(!t.first_sight(&r), "still inside the poll's overlap");
        t.prune(20_000, 5_000, r.at_ms + 3 * CLOCK_SKEW_MS);
        assert!(t.first_sight(&r), "past the overlap: forgotten");
    }

    #[test]
    fn item_11_1_records_round_trip_through_bson() {
        let mut r = record(ObjectId::new(), Some(123_000));
        r.backend_id = Some("u-1".into());
        let d = r.to_document(1_000);
        assert_eq!(
            d.get_datetime("expiresAt").unwrap().timestamp_millis(),
            r.at_ms + 1_000
        );
        assert_eq!(Record::from_document(&d), Some(r));
    }
}
