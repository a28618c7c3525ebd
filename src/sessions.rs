//! LibreChat session documents (`sessions`), with the backend's tokens kept server-side in them,
//! encrypted with AES-256-GCM and bound to their session.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use mongodb::bson::{doc, oid::ObjectId, DateTime, Document};
use mongodb::options::IndexOptions;
use mongodb::{Collection, Database, IndexModel};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::backend::BackendTokens;
use crate::error::{AuthError, AuthResult};
use crate::tokens::{Tokens, TEMP_TOKEN_SECS};

const CIPHER_VERSION: &str = "v1";
/// Where a login waiting for LibreChat's own 2FA step keeps the backend's tokens until the session
/// that step creates (LibreChat's code, which knows nothing of them) claims them.
const PENDING_COLLECTION: &str = "customBackendPending2fa";
/// Only a session created within the temp token's lifetime (plus a minute) after the login can
/// claim its tokens.
const PENDING_CLAIM_WINDOW_MS: i64 = (TEMP_TOKEN_SECS as i64 + 60) * 1000;
/// ObjectIds carry whole seconds, and servers' clocks differ a little.
const CLOCK_SLACK_MS: i64 = 2_000;
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

pub fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// Encrypts backend tokens at rest. The session id is authenticated data, so a ciphertext copied
/// into another session does not decrypt.
pub struct TokenCipher(Aes256Gcm);

impl TokenCipher {
    pub fn new(key: &[u8; 32]) -> TokenCipher {
        TokenCipher(Aes256Gcm::new(key.into()))
    }

    pub fn seal(&self, plain: &str, context: &str) -> AuthResult<String> {
        let mut nonce = [0u8; 12];
        rand::thread_rng().fill_bytes(&mut nonce);
        let ct = self
            .0
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plain.as_bytes(),
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| AuthError::Internal("cannot encrypt a token".into()))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        Ok(format!("{CIPHER_VERSION}.{}", B64.encode(out)))
    }

    pub fn open(&self, sealed: &str, context: &str) -> AuthResult<String> {
        let bad = || AuthError::SessionInvalid("stored backend token cannot be decrypted".into());
        let body = sealed
            .strip_prefix(CIPHER_VERSION)
            .and_then(|r| r.strip_prefix('.'))
            .ok_or_else(bad)?;
        let raw = B64.decode(body).map_err(|_| bad())?;
        if raw.len() < 12 {
            return Err(bad());
        }
        let (nonce, ct) = raw.split_at(12);
        let nonce = <[u8; 12]>::try_from(nonce).map_err(|_| bad())?;
        let plain = self
            .0
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: ct,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| bad())?;
        String::from_utf8(plain).map_err(|_| bad())
    }
}

/// A started session: what the controller puts into the cookies.
#[derive(Debug)]
pub struct NewSession {
    pub refresh_token: String,
    pub expires_at_ms: i64,
}

/// A session document as read back, with our rotation state.
#[derive(Debug)]
pub struct StoredSession {
    pub id: ObjectId,
    pub user: ObjectId,
    pub hash: String,
    pub expiration_ms: i64,
    /// The hash before the last rotation, when it happened, and the refresh token it produced
    /// (sealed): concurrent refreshes with the previous token get that same token.
    pub prev_hash: Option<String>,
    pub rotated_at_ms: Option<i64>,
    next_sealed: Option<String>,
    backend: Option<Document>,
}

pub struct Sessions {
    sessions: Collection<Document>,
    pending: Collection<Document>,
    pending_indexed: tokio::sync::OnceCell<()>,
    cipher: TokenCipher,
    refresh_expiry_ms: i64,
}

fn pending_ctx(id: &ObjectId) -> String {
    format!("2fa:{}", id.to_hex())
}

impl Sessions {
    pub fn new(db: &Database, key: &[u8; 32], refresh_expiry_ms: u64) -> Sessions {
        Sessions {
            sessions: db.collection("sessions"),
            pending: db.collection(PENDING_COLLECTION),
            pending_indexed: tokio::sync::OnceCell::new(),
            cipher: TokenCipher::new(key),
            refresh_expiry_ms: i64::try_from(refresh_expiry_ms).unwrap_or(i64::MAX / 2),
        }
    }

    /// Backend tokens as stored at rest, sealed for `ctx` (a session id, or a pending 2FA login).
    fn sealed_backend(&self, ctx: &str, t: &BackendTokens) -> AuthResult<Document> {
        let mut d = doc! { "accessToken": self.cipher.seal(&t.access_token, ctx)? };
        // Finds the session of a backend access token presented as Bearer (2FA users, section 6).
        d.insert("accessHash", sha256_hex(&t.access_token));
        if let Some(rt) = &t.refresh_token {
            d.insert("refreshToken", self.cipher.seal(rt, ctx)?);
        }
        if let Some(secs) = t.expires_in_secs {
            let at = DateTime::now().timestamp_millis().saturating_add(
                i64::try_from(secs)
                    .unwrap_or(i64::MAX / 2_000)
                    .saturating_mul(1000),
            );
            d.insert("accessExpiresAt", DateTime::from_millis(at));
        }
        Ok(d)
    }

    fn open_backend(&self, b: &Document, ctx: &str) -> AuthResult<Option<BackendTokens>> {
        let open = |k: &str| -> AuthResult<Option<String>> {
            b.get_str(k)
                .ok()
                .map(|v| self.cipher.open(v, ctx))
                .transpose()
        };
        let Some(access_token) = open("accessToken")? else {
            return Ok(None);
        };
        Ok(Some(BackendTokens {
            access_token,
            refresh_token: open("refreshToken")?,
            expires_in_secs: None,
        }))
    }

    pub async fn find(&self, id: ObjectId) -> AuthResult<Option<StoredSession>> {
        let Some(d) = self.sessions.find_one(doc! {"_id": id}).await? else {
            return Ok(None);
        };
        let cb = d.get_document("customBackend").ok();
        let str_of = |k: &str| cb.and_then(|c| c.get_str(k).ok()).map(str::to_string);
        let ms_of = |k: &str| {
            cb.and_then(|c| c.get_datetime(k).ok())
                .map(|t| t.timestamp_millis())
        };
        Ok(Some(StoredSession {
            id,
            user: d
                .get_object_id("user")
                .map_err(|_| AuthError::SessionInvalid("session without user".into()))?,
            hash: d
                .get_str("refreshTokenHash")
                .unwrap_or_default()
                .to_string(),
            expiration_ms: d
                .get_datetime("expiration")
                .map(|t| t.timestamp_millis())
                .unwrap_or(0),
            prev_hash: str_of("prevHash"),
            rotated_at_ms: ms_of("rotatedAt"),
            next_sealed: str_of("next"),
            backend: cb.filter(|c| c.contains_key("accessToken")).cloned(),
        }))
    }

    /// The backend tokens stored in the session (`None` for a session of another provider).
    pub fn backend_tokens(&self, s: &StoredSession) -> AuthResult<Option<BackendTokens>> {
        match &s.backend {
            Some(b) => self.open_backend(b, &s.id.to_hex()),
            None => Ok(None),
        }
    }

    /// The refresh token the last rotation produced.
    pub fn next_token(&self, s: &StoredSession) -> AuthResult<Option<String>> {
        s.next_sealed
            .as_deref()
            .map(|v| self.cipher.open(v, &format!("next:{}", s.id.to_hex())))
            .transpose()
    }

    /// Takes the session's refresh lease if the token is still current and nobody holds it.
    /// MongoDB decides, so this holds across every server sharing the database.
    pub async fn try_lock(
        &self,
        s: &StoredSession,
        owner: &str,
        lease_ms: i64,
    ) -> AuthResult<bool> {
        let now = DateTime::now();
        let r = self
            .sessions
            .update_one(
                doc! {
                    "_id": s.id,
                    "refreshTokenHash": &s.hash,
                    "$or": [
                        { "customBackend.lock": { "$exists": false } },
                        { "customBackend.lock": null },
                        { "customBackend.lock.until": { "$lt": now } },
                    ],
                },
                doc! { "$set": { "customBackend.lock": {
                    "owner": owner,
                    "until": DateTime::from_millis(now.timestamp_millis().saturating_add(lease_ms)),
                } } },
            )
            .await?;
        Ok(r.modified_count == 1)
    }

    pub async fn unlock(&self, s: &StoredSession, owner: &str) -> AuthResult<()> {
        self.sessions
            .update_one(
                doc! { "_id": s.id, "customBackend.lock.owner": owner },
                doc! { "$unset": { "customBackend.lock": "" } },
            )
            .await?;
        Ok(())
    }

    /// Rotates the session (new refresh token, same absolute expiry, as LibreChat does) and its
    /// backend tokens, releasing the lease. Returns the new refresh token, or `None` when the lease
    /// was lost meanwhile.
    pub async fn rotate(
        &self,
        tokens: &Tokens,
        s: &StoredSession,
        owner: &str,
        backend: Option<&BackendTokens>,
    ) -> AuthResult<Option<String>> {
        let refresh_token = tokens.refresh_token(
            &s.user.to_hex(),
            &s.id.to_hex(),
            u64::try_from(s.expiration_ms / 1000).unwrap_or(0),
        )?;
        let mut set = doc! {
            "refreshTokenHash": sha256_hex(&refresh_token),
            "customBackend.prevHash": &s.hash,
            "customBackend.rotatedAt": DateTime::now(),
            "customBackend.next": self.cipher.seal(&refresh_token, &format!("next:{}", s.id.to_hex()))?,
        };
        if let Some(b) = backend {
            for (k, v) in self.sealed_backend(&s.id.to_hex(), b)? {
                set.insert(format!("customBackend.{k}"), v);
            }
        }
        let r = self
            .sessions
            .update_one(
                doc! { "_id": s.id, "customBackend.lock.owner": owner },
                doc! { "$set": set, "$unset": { "customBackend.lock": "" } },
            )
            .await?;
        Ok((r.modified_count == 1).then_some(refresh_token))
    }

    /// Whether a live session of `user` holds `access_token` as its backend access token.
    pub async fn holds_access_token(&self, user: ObjectId, access_token: &str) -> AuthResult<bool> {
        let found = self
            .sessions
            .find_one(doc! {
                "user": user,
                "customBackend.accessHash": sha256_hex(access_token),
                "expiration": { "$gt": DateTime::now() },
            })
            .projection(doc! { "_id": 1 })
            .await?;
        Ok(found.is_some())
    }

    pub async fn delete(&self, id: ObjectId) -> AuthResult<()> {
        self.sessions.delete_one(doc! {"_id": id}).await?;
        Ok(())
    }

    /// `createSession(userId)` + `generateRefreshToken(session)` in one insert: LibreChat's document
    /// (`refreshTokenHash`, `expiration`, `user`, `__v`) plus our encrypted `customBackend` part.
    pub async fn create(
        &self,
        tokens: &Tokens,
        user: ObjectId,
        backend: &BackendTokens,
    ) -> AuthResult<NewSession> {
        let session_id = ObjectId::new();
        let expires_at_ms = DateTime::now()
            .timestamp_millis()
            .saturating_add(self.refresh_expiry_ms);
        let refresh_token = tokens.refresh_token(
            &user.to_hex(),
            &session_id.to_hex(),
            u64::try_from(expires_at_ms / 1000).unwrap_or(0),
        )?;
        let session = doc! {
            "expiration": DateTime::from_millis(expires_at_ms),
            "user": user,
            "_id": session_id,
            "refreshTokenHash": sha256_hex(&refresh_token),
            "__v": 0,
            "customBackend": self.sealed_backend(&session_id.to_hex(), backend)?,
        };
        self.sessions.insert_one(session).await?;
        Ok(NewSession {
            refresh_token,
            expires_at_ms,
        })
    }
}

/// A 2FA login's backend tokens, waiting for the session LibreChat's second step creates.
impl Sessions {
    /// Keeps the tokens of a login answered with `twoFAPending` (no session yet).
    pub async fn stash_pending(&self, user: ObjectId, backend: &BackendTokens) -> AuthResult<()> {
        // Best effort, retried until it succeeds once: lookups stay correct without the indexes,
        // and expired records are also deleted below.
        let _ = self
            .pending_indexed
            .get_or_try_init(|| async {
                let by_user = IndexModel::builder()
                    .keys(doc! { "user": 1, "createdAt": -1 })
                    .build();
                let ttl = IndexModel::builder()
                    .keys(doc! { "expiresAt": 1 })
                    .options(
                        IndexOptions::builder()
                            .expire_after(std::time::Duration::ZERO)
                            .build(),
                    )
                    .build();
                self.pending
                    .create_indexes([by_user, ttl])
                    .await
                    .map(|_| ())
            })
            .await;
        let now = DateTime::now();
        self.pending
            .delete_many(doc! { "expiresAt": { "$lte": now } })
            .await?;
        let id = ObjectId::new();
        let at = now.timestamp_millis();
        let claim_until = at.saturating_add(PENDING_CLAIM_WINDOW_MS);
        self.pending
            .insert_one(doc! {
                "_id": id,
                "user": user,
                "createdAt": now,
                "claimUntil": DateTime::from_millis(claim_until),
                // Unclaimed, they are worthless once a session claiming them would have expired.
                "expiresAt": DateTime::from_millis(claim_until.saturating_add(self.refresh_expiry_ms)),
                "backend": self.sealed_backend(&pending_ctx(&id), backend)?,
            })
            .await?;
        Ok(())
    }

    /// The tokens of the 2FA login a session without backend tokens came from: the newest pending
    /// login of its user made shortly before the session was created. Marked as claimed by this
    /// session, so that no other session takes them.
    pub async fn claim_pending(
        &self,
        s: &StoredSession,
    ) -> AuthResult<Option<(ObjectId, BackendTokens)>> {
        let created = s.id.timestamp().timestamp_millis();
        let found = self
            .pending
            .find_one_and_update(
                doc! {
                    "user": s.user,
                    "createdAt": { "$lte": DateTime::from_millis(created.saturating_add(CLOCK_SLACK_MS)) },
                    "claimUntil": { "$gte": DateTime::from_millis(created) },
                    "expiresAt": { "$gt": DateTime::now() },
                    "$or": [ { "claimedBy": { "$exists": false } }, { "claimedBy": s.id } ],
                },
                doc! { "$set": { "claimedBy": s.id } },
            )
            .sort(doc! { "createdAt": -1 })
            .await?;
        let Some(d) = found else {
            return Ok(None);
        };
        let Ok(id) = d.get_object_id("_id") else {
            return Ok(None);
        };
        let tokens = d
            .get_document("backend")
            .ok()
            .and_then(|b| self.open_backend(b, &pending_ctx(&id)).ok().flatten());
        match tokens {
            Some(t) => Ok(Some((id, t))),
            None => {
                // Sealed with another key (or damaged): of no use to anyone.
                self.drop_pending(id).await?;
                Ok(None)
            }
        }
    }

    /// Moves claimed tokens into their session (a session that has tokens keeps its own), then
    /// forgets the pending login.
    pub async fn adopt_pending(
        &self,
        s: &StoredSession,
        pending: ObjectId,
        backend: &BackendTokens,
    ) -> AuthResult<()> {
        let mut set = Document::new();
        for (k, v) in self.sealed_backend(&s.id.to_hex(), backend)? {
            set.insert(format!("customBackend.{k}"), v);
        }
        self.sessions
            .update_one(
                doc! { "_id": s.id, "customBackend.accessToken": { "$exists": false } },
                doc! { "$set": set },
            )
            .await?;
        self.drop_pending(pending).await
    }

    pub async fn drop_pending(&self, id: ObjectId) -> AuthResult<()> {
        self.pending.delete_one(doc! { "_id": id }).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cipher_round_trip_is_bound_to_its_context() {
        let c = TokenCipher::new(&[1u8; 32]);
        let sealed = c.seal("backend-refresh-token", "s1").unwrap();
        assert!(!sealed.contains("backend-refresh-token"));
        assert_eq!(c.open(&sealed, "s1").unwrap(), "backend-refresh-token");
        assert!(c.open(&sealed, "s2").is_err());
        assert!(TokenCipher::new(&[2u8; 32]).open(&sealed, "s1").is_err());
        assert!(c.open("v1.!!", "s1").is_err());
        assert_ne!(sealed, c.seal("backend-refresh-token", "s1").unwrap());
    }

    #[test]
    fn sha256_matches_known_vector() {
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
