//! The backend's second-factor challenges waiting for their code (docs/second-factor.md): the
//! challenge id sealed (it is a backend secret), the login's tenant, when it expires and how many
//! codes were tried. The temp token LibreChat's 2FA screen carries names only the record.

use mongodb::bson::{doc, oid::ObjectId, DateTime, Document};
use mongodb::options::ReturnDocument;
use mongodb::{Database, IndexModel};

use crate::shared::error::{AuthError, AuthResult};
use crate::store::collection::{expiry_index, Indexed};
use crate::store::sessions::TokenCipher;

pub const CHALLENGES_COLLECTION: &str = "customBackendMfaChallenges";

/// Its index (also checked by `doctor`): the TTL on `expiresAt`.
pub fn challenge_indexes() -> Vec<IndexModel> {
    vec![expiry_index()]
}

/// A challenge a code may be tried against now.
pub struct Open {
    pub challenge: String,
    pub tenant: Option<String>,
}

/// What one more code may do.
pub enum Attempt {
    Open(Open),
    /// Every allowed code was tried: the challenge is void (and gone).
    Exhausted,
    /// Used, expired, or never there.
    Gone,
}

fn ctx(id: &ObjectId) -> String {
    format!("mfa:{}", id.to_hex())
}

pub struct Challenges {
    records: Indexed,
    cipher: TokenCipher,
}

impl Challenges {
    pub fn new(db: &Database, key: &[u8; 32]) -> Challenges {
        Challenges {
            records: Indexed::new(db, CHALLENGES_COLLECTION, challenge_indexes),
            cipher: TokenCipher::new(key),
        }
    }

    /// Keeps a challenge until `expires_at_ms`: its record id.
    pub async fn stash(
        &self,
        challenge: &str,
        tenant: Option<&str>,
        expires_at_ms: i64,
    ) -> AuthResult<ObjectId> {
        let id = ObjectId::new();
        let mut d = doc! {
            "_id": id,
            "challenge": self.cipher.seal(challenge, &ctx(&id), "challenge")?,
            "attempts": 0,
            "createdAt": DateTime::now(),
            "expiresAt": DateTime::from_millis(expires_at_ms),
        };
        if let Some(t) = tenant {
            d.insert("tenantId", t);
        }
        self.records.get().await?.insert_one(d).await?;
        Ok(id)
    }

    /// Counts one more code against the challenge, at most `max` in all.
    pub async fn attempt(&self, id: ObjectId, max: u32) -> AuthResult<Attempt> {
        let records = self.records.get().await?;
        let now = DateTime::now();
        let taken = records
            .find_one_and_update(
                doc! { "_id": id, "expiresAt": { "$gt": now }, "attempts": { "$lt": i64::from(max) } },
                doc! { "$inc": { "attempts": 1 } },
            )
            .return_document(ReturnDocument::After)
            .await?;
        let Some(d) = taken else {
            // Still there but not open: its codes are spent (or it expired and waits for the TTL).
            return Ok(
                match records.find_one_and_delete(doc! { "_id": id }).await? {
                    Some(d) if open_until(&d) > now.timestamp_millis() => Attempt::Exhausted,
                    _ => Attempt::Gone,
                },
            );
        };
        let sealed = d
            .get_str("challenge")
            .map_err(|_| AuthError::Internal("a challenge without its id".into()))?;
        Ok(Attempt::Open(Open {
            challenge: self.cipher.open(sealed, &ctx(&id), "challenge")?,
            tenant: d.get_str("tenantId").ok().map(str::to_string),
        }))
    }

    /// Gives back an attempt the backend could not judge (it was down).
    pub async fn refund(&self, id: ObjectId) -> AuthResult<()> {
        self.records
            .get()
            .await?
            .update_one(
                doc! { "_id": id, "attempts": { "$gt": 0 } },
                doc! { "$inc": { "attempts": -1 } },
            )
            .await?;
        Ok(())
    }

    /// Ends a challenge (passed, or the backend says it is gone): its temp token is void.
    pub async fn end(&self, id: ObjectId) -> AuthResult<()> {
        self.records
            .get()
            .await?
            .delete_one(doc! { "_id": id })
            .await?;
        Ok(())
    }
}

fn open_until(d: &Document) -> i64 {
    d.get_datetime("expiresAt")
        .map(|t| t.timestamp_millis())
        .unwrap_or(0)
}
