//! LibreChat session documents (`sessions`), with the backend's tokens kept server-side in them,
//! encrypted with AES-256-GCM and bound to their session.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use mongodb::bson::{doc, oid::ObjectId, DateTime, Document};
use mongodb::{Collection, Database};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::backend::BackendTokens;
use crate::error::{AuthError, AuthResult};
use crate::tokens::Tokens;

const CIPHER_VERSION: &str = "v1";
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
    cipher: TokenCipher,
    refresh_expiry_ms: i64,
}

impl Sessions {
    pub fn new(db: &Database, key: &[u8; 32], refresh_expiry_ms: u64) -> Sessions {
        Sessions {
            sessions: db.collection("sessions"),
            cipher: TokenCipher::new(key),
            refresh_expiry_ms: i64::try_from(refresh_expiry_ms).unwrap_or(i64::MAX / 2),
        }
    }

    /// The backend tokens as stored inside the session document.
    fn sealed_backend(&self, session_id: &ObjectId, t: &BackendTokens) -> AuthResult<Document> {
        let ctx = session_id.to_hex();
        let mut d = doc! { "accessToken": self.cipher.seal(&t.access_token, &ctx)? };
        if let Some(rt) = &t.refresh_token {
            d.insert("refreshToken", self.cipher.seal(rt, &ctx)?);
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
        let Some(b) = &s.backend else {
            return Ok(None);
        };
        let ctx = s.id.to_hex();
        let open = |k: &str| -> AuthResult<Option<String>> {
            b.get_str(k)
                .ok()
                .map(|v| self.cipher.open(v, &ctx))
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
            for (k, v) in self.sealed_backend(&s.id, b)? {
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
            "customBackend": self.sealed_backend(&session_id, backend)?,
        };
        self.sessions.insert_one(session).await?;
        Ok(NewSession {
            refresh_token,
            expires_at_ms,
        })
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
