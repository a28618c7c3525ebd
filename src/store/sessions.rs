//! LibreChat session documents (`sessions`), with the backend's tokens kept server-side in them,
//! encrypted with AES-256-GCM and bound to their session.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use mongodb::bson::{doc, oid::ObjectId, DateTime, Document};
use mongodb::{Collection, Database, IndexModel};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::identity::BackendTokens;
use crate::shared::error::{AuthError, AuthResult};
use crate::store::collection::expiry_index;
use crate::store::refresh_rules::{claim_bounds, claim_until, Generation};
use crate::store::revocation::CLOCK_SKEW_MS;
use crate::tokens::librechat::Tokens;

/// Sealed values: `v2.` binds each value to its session (or pending 2FA login) and its field;
/// `v1.` (before 0.2) bound it to the session only and is still opened, for one release, so that
/// sessions started before the upgrade survive it (each is re-sealed as `v2.` at its next refresh).
const CIPHER_VERSION: &str = "v2";
const LEGACY_CIPHER_VERSION: &str = "v1";
/// How many superseded refresh tokens of a session are remembered (reuse detection, grace).
pub const GENERATIONS_KEPT: usize = 8;
/// Where a login waiting for LibreChat's own 2FA step keeps the backend's tokens until the session
/// that step creates (LibreChat's code, which knows nothing of them) claims them.
pub const PENDING_COLLECTION: &str = "customBackendPending2fa";
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

pub fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// Encrypts backend tokens at rest. The session id and the field name are authenticated data, so a
/// ciphertext copied into another session, or into another field of its own (the access token in
/// place of the refresh token), does not decrypt.
#[derive(Clone)]
pub struct TokenCipher(Aes256Gcm);

/// Associated data of a `v2.` value; `/` occurs in neither part, so the pair is unambiguous.
fn aad(context: &str, field: &str) -> String {
    format!("{context}/{field}")
}

/// Associated data of a `v1.` value: the context alone (`next:` + session id for `next`).
fn legacy_aad(context: &str, field: &str) -> String {
    if field == "next" {
        format!("next:{context}")
    } else {
        context.to_string()
    }
}

impl TokenCipher {
    pub fn new(key: &[u8; 32]) -> TokenCipher {
        TokenCipher(Aes256Gcm::new(key.into()))
    }

    /// Seals `plain` for field `field` of the session (or pending login) `context`.
    pub fn seal(&self, plain: &str, context: &str, field: &str) -> AuthResult<String> {
        let mut nonce = [0u8; 12];
        rand::thread_rng().fill_bytes(&mut nonce);
        let ct = self
            .0
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plain.as_bytes(),
                    aad: aad(context, field).as_bytes(),
                },
            )
            .map_err(|_| AuthError::Internal("cannot encrypt a token".into()))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        Ok(format!("{CIPHER_VERSION}.{}", B64.encode(out)))
    }

    pub fn open(&self, sealed: &str, context: &str, field: &str) -> AuthResult<String> {
        let bad = || AuthError::SessionInvalid("stored backend token cannot be decrypted".into());
        let (body, aad) = match sealed.split_once('.') {
            Some((CIPHER_VERSION, body)) => (body, aad(context, field)),
            Some((LEGACY_CIPHER_VERSION, body)) => (body, legacy_aad(context, field)),
            _ => return Err(bad()),
        };
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
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| bad())?;
        String::from_utf8(plain).map_err(|_| bad())
    }

    /// Backend tokens as stored at rest (`accessToken`, `refreshToken`, `accessExpiresAt`), each
    /// token sealed for its own field of `ctx`.
    pub fn seal_backend(&self, ctx: &str, t: &BackendTokens) -> AuthResult<Document> {
        let mut d = doc! { "accessToken": self.seal(&t.access_token, ctx, "accessToken")? };
        // Finds the session of a backend access token presented as Bearer (2FA users,
        // docs/sessions-and-tokens.md, "Every request").
        d.insert("accessHash", sha256_hex(&t.access_token));
        if let Some(rt) = &t.refresh_token {
            d.insert("refreshToken", self.seal(rt, ctx, "refreshToken")?);
        }
        // Hashed: `session.revoked` events find the session by it; a refresh answer without one
        // keeps the login's.
        if let Some(sid) = &t.session_id {
            d.insert("sid", sha256_hex(sid));
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

    pub fn open_backend(&self, b: &Document, ctx: &str) -> AuthResult<Option<BackendTokens>> {
        let open = |k: &str| -> AuthResult<Option<String>> {
            b.get_str(k).ok().map(|v| self.open(v, ctx, k)).transpose()
        };
        let Some(access_token) = open("accessToken")? else {
            return Ok(None);
        };
        Ok(Some(BackendTokens {
            access_token,
            refresh_token: open("refreshToken")?,
            expires_in_secs: None,
            session_id: None,
        }))
    }
}

/// A started session: what the controller puts into the cookies.
#[derive(Debug)]
pub struct NewSession {
    pub session_id: ObjectId,
    pub refresh_token: String,
    pub expires_at_ms: i64,
}

/// How the session's backend tokens changed under a refresh.
#[derive(Debug, PartialEq)]
pub enum Stash {
    /// Stored; the value identifies this version of the backend tokens.
    Stored(Option<String>),
    /// The session no longer exists (logged out, ended).
    Gone,
    /// Someone else changed the backend tokens meanwhile.
    Changed,
}

/// A session document as read back, with our rotation state.
#[derive(Debug, Clone)]
pub struct StoredSession {
    pub id: ObjectId,
    pub user: ObjectId,
    pub hash: String,
    pub expiration_ms: i64,
    /// The last superseded refresh tokens, newest first, at most `GENERATIONS_KEPT`.
    pub generations: Vec<Generation>,
    /// The sealed current refresh token (the one `hash` names), handed to any request that comes
    /// with a superseded token within the grace window.
    next_sealed: Option<String>,
    backend: Option<Document>,
    /// `tenantId`: the tenant the session was started in.
    pub tenant: Option<String>,
    /// `customBackend.sso`: single sign-on started it (`sso-cookie`, `sso-proxy`).
    pub sso: Option<String>,
    /// `customBackend.lock`: the refresh lease, when one is held (or was left).
    pub lease: Option<Lease>,
}

/// Who holds a session's refresh lease, since when and until when by the holder's clock.
#[derive(Debug, Clone, PartialEq)]
pub struct Lease {
    pub owner: String,
    pub since: DateTime,
    pub until: Option<DateTime>,
}

impl Lease {
    /// A refresh lease is over when it is over by any clock within `CLOCK_SKEW_MS` of ours: past
    /// its `until`, or older than `lease_ms` (a crashed server's lease, whatever length it was
    /// taken for). The holder dated it by its own clock: one running behind ours would otherwise
    /// lose its lease early, while it may still be storing the backend's answer (found by the soak
    /// run). A lease that is over by the holder's clock only is taken over by a request that has
    /// watched it for a whole lease (`take_over`).
    pub fn is_over(&self, now: DateTime, lease_ms: i64) -> bool {
        let now_ms = now.timestamp_millis().saturating_sub(CLOCK_SKEW_MS);
        self.until.is_some_and(|u| u.timestamp_millis() < now_ms)
            || self.since.timestamp_millis() < now_ms.saturating_sub(lease_ms)
    }
}

/// The session document as the refresh reads it.
fn stored(id: ObjectId, d: &Document) -> AuthResult<StoredSession> {
    let cb = d.get_document("customBackend").ok();
    Ok(StoredSession {
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
        generations: read_generations(cb),
        next_sealed: cb.and_then(|c| c.get_str("next").ok()).map(str::to_string),
        backend: cb.filter(|c| c.contains_key("accessToken")).cloned(),
        tenant: d.get_str("tenantId").ok().map(str::to_string),
        sso: cb.and_then(|c| c.get_str("sso").ok()).map(str::to_string),
        lease: cb.and_then(|c| c.get_document("lock").ok()).and_then(|l| {
            Some(Lease {
                owner: l.get_str("owner").ok()?.to_string(),
                since: *l.get_datetime("since").ok()?,
                until: l.get_datetime("until").ok().copied(),
            })
        }),
    })
}

fn lease(owner: &str, now: DateTime, lease_ms: i64) -> Document {
    doc! {
        "owner": owner,
        "since": now,
        "until": DateTime::from_millis(now.timestamp_millis().saturating_add(lease_ms)),
    }
}

impl StoredSession {
    /// The sealed backend refresh token as stored: identifies the version of the backend tokens
    /// (each sealing has its own nonce), so that writes can be made conditional on it.
    pub fn backend_version(&self) -> Option<String> {
        self.backend
            .as_ref()
            .and_then(|b| b.get_str("refreshToken").ok())
            .map(str::to_string)
    }

    /// Where a superseded token is in `generations`.
    pub fn generation(&self, hash: &str) -> Option<usize> {
        self.generations.iter().position(|g| g.hash == hash)
    }
}

/// A filter matching the session only while its backend tokens are the version `version`.
fn at_version(id: ObjectId, version: Option<&str>) -> Document {
    match version {
        Some(v) => doc! { "_id": id, "customBackend.refreshToken": v },
        None => doc! { "_id": id, "customBackend.refreshToken": { "$exists": false } },
    }
}

fn read_generations(cb: Option<&Document>) -> Vec<Generation> {
    let Some(cb) = cb else {
        return Vec::new();
    };
    if let Ok(list) = cb.get_array("prev") {
        return list
            .iter()
            .filter_map(|g| g.as_document())
            .filter_map(|g| {
                Some(Generation {
                    hash: g.get_str("hash").ok()?.to_string(),
                    at_ms: g.get_datetime("at").ok()?.timestamp_millis(),
                    skipped: g.get_bool("skipped").unwrap_or(false),
                })
            })
            .take(GENERATIONS_KEPT)
            .collect();
    }
    // Written before 0.2: the previous token only.
    match (cb.get_str("prevHash"), cb.get_datetime("rotatedAt")) {
        (Ok(h), Ok(at)) => vec![Generation {
            hash: h.to_string(),
            at_ms: at.timestamp_millis(),
            skipped: false,
        }],
        _ => Vec::new(),
    }
}

/// Cloned for a background write (`Service::store_unsaved_later`): the handles are shared.
#[derive(Clone)]
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

    fn sealed_backend(&self, ctx: &str, t: &BackendTokens) -> AuthResult<Document> {
        self.cipher.seal_backend(ctx, t)
    }

    fn open_backend(&self, b: &Document, ctx: &str) -> AuthResult<Option<BackendTokens>> {
        self.cipher.open_backend(b, ctx)
    }

    pub async fn find(&self, id: ObjectId) -> AuthResult<Option<StoredSession>> {
        match self.sessions.find_one(doc! {"_id": id}).await? {
            Some(d) => stored(id, &d).map(Some),
            None => Ok(None),
        }
    }

    /// The backend tokens stored in the session (`None` for a session of another provider).
    pub fn backend_tokens(&self, s: &StoredSession) -> AuthResult<Option<BackendTokens>> {
        match &s.backend {
            Some(b) => self.open_backend(b, &s.id.to_hex()),
            None => Ok(None),
        }
    }

    /// The session's current refresh token, as the last rotation produced it.
    pub fn next_token(&self, s: &StoredSession) -> AuthResult<Option<String>> {
        s.next_sealed
            .as_deref()
            .map(|v| self.cipher.open(v, &s.id.to_hex(), "next"))
            .transpose()
    }

    /// Takes the session's refresh lease if the token is still current and the lease was free as
    /// `s` was read (none, or `Lease::is_over`) and is still that one: a compare-and-set that
    /// MongoDB decides, so this holds across every server sharing the database. One exact
    /// condition rather than an `$or` of the free cases: a database with a simpler planner than
    /// MongoDB's scans the whole collection for an `$or`, even beside `_id` (the test database
    /// spent 29 ms on it against 1.3 ms; #28).
    pub async fn try_lock(
        &self,
        s: &StoredSession,
        owner: &str,
        lease_ms: i64,
    ) -> AuthResult<bool> {
        match &s.lease {
            // Matches a lock that is missing or null: released.
            None => {
                let free = doc! { "customBackend.lock": null };
                self.lease_when(s, free, owner, lease_ms).await
            }
            Some(held) if held.is_over(DateTime::now(), lease_ms) => {
                self.take_over(s, held, owner, lease_ms).await
            }
            Some(_) => Ok(false),
        }
    }

    /// Takes over the lease `held` (its owner and start, as this request read it) if nobody has
    /// taken it since and the token is still current.
    pub async fn take_over(
        &self,
        s: &StoredSession,
        held: &Lease,
        owner: &str,
        lease_ms: i64,
    ) -> AuthResult<bool> {
        let same = doc! {
            "customBackend.lock.owner": &held.owner,
            "customBackend.lock.since": held.since,
        };
        self.lease_when(s, same, owner, lease_ms).await
    }

    /// The lease for `owner` when the session's token is still current and `condition` holds.
    async fn lease_when(
        &self,
        s: &StoredSession,
        condition: Document,
        owner: &str,
        lease_ms: i64,
    ) -> AuthResult<bool> {
        let mut filter = doc! { "_id": s.id, "refreshTokenHash": &s.hash };
        filter.extend(condition);
        let r = self
            .sessions
            .update_one(
                filter,
                doc! { "$set": { "customBackend.lock": lease(owner, DateTime::now(), lease_ms) } },
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

    /// Stores the backend tokens a backend refresh just produced, at once and on their own, if
    /// the session still holds `version` (the tokens that refresh consumed): from here on a retry
    /// uses them, whatever fails next. Not tied to the lease: whoever holds it next must see them.
    pub async fn stash_backend(
        &self,
        s: &StoredSession,
        version: Option<&str>,
        backend: &BackendTokens,
    ) -> AuthResult<Stash> {
        let sealed = self.sealed_backend(&s.id.to_hex(), backend)?;
        let stored = sealed.get_str("refreshToken").ok().map(str::to_string);
        let mut set = Document::new();
        for (k, v) in sealed {
            set.insert(format!("customBackend.{k}"), v);
        }
        let mut unset = Document::new();
        if backend.refresh_token.is_none() {
            unset.insert("customBackend.refreshToken", "");
        }
        if backend.expires_in_secs.is_none() {
            unset.insert("customBackend.accessExpiresAt", "");
        }
        let mut update = doc! { "$set": set };
        if !unset.is_empty() {
            update.insert("$unset", unset);
        }
        let r = self
            .sessions
            .update_one(at_version(s.id, version), update)
            .await?;
        if r.matched_count == 1 {
            return Ok(Stash::Stored(stored));
        }
        Ok(match self.find(s.id).await? {
            None => Stash::Gone,
            Some(_) => Stash::Changed,
        })
    }

    /// Rotates the session (new refresh token, same absolute expiry, as LibreChat does), releasing
    /// the lease. The current token joins the superseded ones; when a superseded token (`retried`,
    /// its index) came back instead of the current one, the current one is marked `skipped` and the
    /// retried one superseded anew. Returns the new refresh token, or `None` when the lease was lost
    /// meanwhile (or the session ended).
    pub async fn rotate(
        &self,
        tokens: &Tokens,
        s: &StoredSession,
        owner: &str,
        retried: Option<usize>,
    ) -> AuthResult<Option<String>> {
        let refresh_token = tokens.refresh_token(
            &s.user.to_hex(),
            &s.id.to_hex(),
            u64::try_from(s.expiration_ms / 1000).unwrap_or(0),
        )?;
        let now = DateTime::now();
        let mut generations = vec![Generation {
            hash: s.hash.clone(),
            at_ms: now.timestamp_millis(),
            skipped: retried.is_some(),
        }];
        generations.extend(s.generations.iter().enumerate().map(|(i, g)| Generation {
            at_ms: if Some(i) == retried {
                now.timestamp_millis()
            } else {
                g.at_ms
            },
            ..g.clone()
        }));
        generations.truncate(GENERATIONS_KEPT);
        let prev: Vec<Document> = generations
            .iter()
            .map(|g| {
                doc! { "hash": &g.hash, "at": DateTime::from_millis(g.at_ms), "skipped": g.skipped }
            })
            .collect();
        let set = doc! {
            "refreshTokenHash": sha256_hex(&refresh_token),
            "customBackend.prev": prev,
            "customBackend.next": self.cipher.seal(&refresh_token, &s.id.to_hex(), "next")?,
        };
        let r = self
            .sessions
            .update_one(
                doc! { "_id": s.id, "refreshTokenHash": &s.hash, "customBackend.lock.owner": owner },
                doc! {
                    "$set": set,
                    "$unset": {
                        "customBackend.lock": "",
                        "customBackend.prevHash": "",
                        "customBackend.rotatedAt": "",
                    },
                },
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

    /// Deletes the session only while it holds the backend tokens `version`: whoever deletes it
    /// knows which backend tokens died with it (and can end them at the backend). `false` when the
    /// session is gone or its backend tokens changed meanwhile.
    pub async fn delete_at(&self, id: ObjectId, version: Option<&str>) -> AuthResult<bool> {
        let r = self.sessions.delete_one(at_version(id, version)).await?;
        Ok(r.deleted_count == 1)
    }

    /// `createSession(userId)` + `generateRefreshToken(session)` in one insert: LibreChat's document
    /// (`refreshTokenHash`, `expiration`, `user`, `__v`) plus our encrypted `customBackend` part.
    pub async fn create(
        &self,
        tokens: &Tokens,
        user: ObjectId,
        tenant: Option<&str>,
        backend: &BackendTokens,
    ) -> AuthResult<NewSession> {
        self.insert_new(tokens, user, tenant, |id| self.sealed_backend(id, backend))
            .await
    }

    /// A session single sign-on started (`via`: `sso-cookie`, `sso-proxy`): no backend tokens; it
    /// lives as long as its identity does (each refresh checks it).
    pub async fn create_sso(
        &self,
        tokens: &Tokens,
        user: ObjectId,
        tenant: Option<&str>,
        via: &str,
    ) -> AuthResult<NewSession> {
        self.insert_new(tokens, user, tenant, |_| Ok(doc! { "sso": via }))
            .await
    }

    /// A new session document, as LibreChat's `createSession` writes it, with our `customBackend`.
    async fn insert_new(
        &self,
        tokens: &Tokens,
        user: ObjectId,
        tenant: Option<&str>,
        ours: impl FnOnce(&str) -> AuthResult<Document>,
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
        let mut session = doc! {
            "expiration": DateTime::from_millis(expires_at_ms),
            "user": user,
            "_id": session_id,
            "refreshTokenHash": sha256_hex(&refresh_token),
        };
        // As LibreChat's tenant plugin writes it in the user's tenant.
        if let Some(t) = tenant {
            session.insert("tenantId", t);
        }
        session.insert("__v", 0);
        session.insert("customBackend", ours(&session_id.to_hex())?);
        self.sessions.insert_one(session).await?;
        Ok(NewSession {
            session_id,
            refresh_token,
            expires_at_ms,
        })
    }
}

/// What may be shown about a session: nothing secret (no token, no hash).
#[derive(Debug, Clone, PartialEq)]
pub struct SessionSummary {
    pub id: ObjectId,
    pub created_at_ms: i64,
    /// The last refresh (rotation), if any.
    pub last_refreshed_at_ms: Option<i64>,
    pub expires_at_ms: i64,
    /// Whether backend tokens are held for it (a session of this package's login).
    pub backend_tokens: bool,
}

/// An ended session and the backend tokens that died with it (to end at the backend).
pub struct EndedSession {
    pub backend: Option<BackendTokens>,
}

/// What ending sessions found: the sessions, and when the newest 2FA login pending among them
/// stops being claimable (its temp token's lifetime and the clock slack).
pub struct EndedSessions {
    pub sessions: Vec<EndedSession>,
    pub pending_until_ms: Option<i64>,
}

/// Which of a user's sessions to end.
pub enum Which<'a> {
    All,
    /// Every session of a user the backend no longer admits (disabled, deleted, refused by the
    /// policy): also the 2FA logins still pending, whose temp tokens must not start a session.
    Barred,
    One(ObjectId),
    /// Those holding this backend session id (unhashed, as the backend names it).
    BackendSession(&'a str),
}

impl Sessions {
    /// The user's live sessions, newest first.
    pub async fn list(&self, user: ObjectId) -> AuthResult<Vec<SessionSummary>> {
        let mut cursor = self
            .sessions
            .find(doc! { "user": user, "expiration": { "$gt": DateTime::now() } })
            .projection(doc! {
                "expiration": 1,
                "customBackend.prev": 1,
                "customBackend.rotatedAt": 1,
                "customBackend.accessHash": 1,
            })
            .sort(doc! { "_id": -1 })
            .await?;
        let mut out = Vec::new();
        while cursor.advance().await? {
            let d: Document = cursor.deserialize_current()?;
            let Ok(id) = d.get_object_id("_id") else {
                continue;
            };
            let cb = d.get_document("customBackend").ok();
            out.push(SessionSummary {
                id,
                created_at_ms: id.timestamp().timestamp_millis(),
                last_refreshed_at_ms: read_generations(cb).first().map(|g| g.at_ms),
                expires_at_ms: d
                    .get_datetime("expiration")
                    .map(|t| t.timestamp_millis())
                    .unwrap_or(0),
                backend_tokens: cb.is_some_and(|c| c.contains_key("accessHash")),
            });
        }
        Ok(out)
    }

    /// Ends the user's sessions that `which` names, and their pending 2FA logins when all end.
    /// Returns each ended session with its backend tokens (`None` when they cannot be opened).
    pub async fn end(&self, user: ObjectId, which: Which<'_>) -> AuthResult<EndedSessions> {
        let mut filter = doc! { "user": user };
        match &which {
            Which::All | Which::Barred => {}
            Which::One(id) => {
                filter.insert("_id", *id);
            }
            Which::BackendSession(sid) => {
                filter.insert("customBackend.sid", sha256_hex(sid));
            }
        }
        let mut cursor = self.sessions.find(filter.clone()).await?;
        let mut ended = Vec::new();
        while cursor.advance().await? {
            let d: Document = cursor.deserialize_current()?;
            let Ok(id) = d.get_object_id("_id") else {
                continue;
            };
            let backend = d
                .get_document("customBackend")
                .ok()
                .filter(|c| c.contains_key("accessToken"))
                .and_then(|c| self.open_backend(c, &id.to_hex()).ok().flatten());
            ended.push(EndedSession { backend });
        }
        // The filter again, not the ids: a session the cursor missed (created meanwhile) ends too.
        self.sessions.delete_many(filter).await?;
        let mut pending_until_ms = None;
        if matches!(which, Which::All | Which::Barred) {
            // Until when their temp tokens could still start a session (LibreChat's 2FA step).
            pending_until_ms = self
                .pending
                .find_one(doc! { "user": user })
                .sort(doc! { "claimUntil": -1 })
                .projection(doc! { "claimUntil": 1 })
                .await?
                .and_then(|d| {
                    d.get_datetime("claimUntil")
                        .ok()
                        .map(|t| t.timestamp_millis())
                });
            self.pending.delete_many(doc! { "user": user }).await?;
        }
        Ok(EndedSessions {
            sessions: ended,
            pending_until_ms,
        })
    }
}

/// The pending 2FA logins' indexes (also checked by `doctor`): lookup by user, newest first, and
/// a TTL on `expiresAt`.
pub fn pending_indexes() -> Vec<IndexModel> {
    let by_user = IndexModel::builder()
        .keys(doc! { "user": 1, "createdAt": -1 })
        .build();
    vec![by_user, expiry_index()]
}

/// A 2FA login's backend tokens, waiting for the session LibreChat's second step creates.
impl Sessions {
    /// Keeps the tokens of a login answered with `twoFAPending` (no session yet).
    pub async fn stash_pending(
        &self,
        user: ObjectId,
        backend: &BackendTokens,
    ) -> AuthResult<ObjectId> {
        // Best effort, retried until it succeeds once: lookups stay correct without the indexes,
        // and expired records are also deleted below.
        let _ = self
            .pending_indexed
            .get_or_try_init(|| async {
                self.pending
                    .create_indexes(pending_indexes())
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
        let claim_until = claim_until(at);
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
        Ok(id)
    }

    /// Takes a pending 2FA login of `user` out (a login that was not completed): its backend
    /// tokens, to end at the backend; `None` when it is gone (claimed, expired) or unreadable.
    pub async fn take_pending(
        &self,
        id: ObjectId,
        user: ObjectId,
    ) -> AuthResult<Option<BackendTokens>> {
        let Some(d) = self
            .pending
            .find_one_and_delete(
                doc! { "_id": id, "user": user, "claimedBy": { "$exists": false } },
            )
            .await?
        else {
            return Ok(None);
        };
        Ok(d.get_document("backend")
            .ok()
            .and_then(|b| self.open_backend(b, &pending_ctx(&id)).ok().flatten()))
    }

    /// The tokens of the 2FA login a session without backend tokens came from: the newest pending
    /// login of its user made shortly before the session was created. Marked as claimed by this
    /// session, so that no other session takes them.
    pub async fn claim_pending(
        &self,
        s: &StoredSession,
    ) -> AuthResult<Option<(ObjectId, BackendTokens)>> {
        let (created_at_most, claim_until_at_least) =
            claim_bounds(s.id.timestamp().timestamp_millis());
        let found = self
            .pending
            .find_one_and_update(
                doc! {
                    "user": s.user,
                    "createdAt": { "$lte": DateTime::from_millis(created_at_most) },
                    "claimUntil": { "$gte": DateTime::from_millis(claim_until_at_least) },
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
    fn a_lease_is_over_by_any_clock_within_the_skew_of_ours() {
        let now = DateTime::from_millis(1_000_000_000);
        let at = |ms: i64| DateTime::from_millis(1_000_000_000 + ms);
        let lease = |since: i64, until: Option<i64>| Lease {
            owner: "o".into(),
            since: at(since),
            until: until.map(at),
        };
        let lease_ms = 10_000;
        // Taken just now, for lease_ms: held.
        assert!(!lease(0, Some(lease_ms)).is_over(now, lease_ms));
        // Past its `until` by less than the skew: the holder's clock may be behind ours.
        assert!(!lease(-20_000, Some(-CLOCK_SKEW_MS + 1)).is_over(now, lease_ms));
        // Past its `until` by more than the skew: over.
        assert!(lease(-20_000, Some(-CLOCK_SKEW_MS - 1)).is_over(now, lease_ms));
        // Dated far ahead (a holder whose clock ran ahead), but older than a lease by every clock.
        assert!(lease(-CLOCK_SKEW_MS - lease_ms - 1, Some(3_600_000)).is_over(now, lease_ms));
        assert!(!lease(-CLOCK_SKEW_MS - lease_ms + 1, Some(3_600_000)).is_over(now, lease_ms));
        // A lease without `until`: its start decides.
        assert!(!lease(0, None).is_over(now, lease_ms));
        assert!(lease(-CLOCK_SKEW_MS - lease_ms - 1, None).is_over(now, lease_ms));
    }

    #[test]
    fn cipher_round_trip_is_bound_to_its_context() {
        let c = TokenCipher::new(&[1u8; 32]);
        let sealed = c
            .seal("backend-refresh-token", "s1", "refreshToken")
            .unwrap();
        assert!(sealed.starts_with("v2."));
        assert!(!sealed.contains("backend-refresh-token"));
        assert_eq!(
            c.open(&sealed, "s1", "refreshToken").unwrap(),
            "backend-refresh-token"
        );
        assert!(c.open(&sealed, "s2", "refreshToken").is_err());
        assert!(TokenCipher::new(&[2u8; 32])
            .open(&sealed, "s1", "refreshToken")
            .is_err());
        assert!(c.open("v2.!!", "s1", "refreshToken").is_err());
        assert!(c.open("v3.AAAA", "s1", "refreshToken").is_err());
        assert_ne!(
            sealed,
            c.seal("backend-refresh-token", "s1", "refreshToken")
                .unwrap()
        );
    }

    /// A `v1.` value as 0.1 sealed it: the context alone as associated data.
    fn seal_v1(c: &TokenCipher, plain: &str, aad: &str) -> String {
        let nonce = [7u8; 12];
        let ct =
            c.0.encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plain.as_bytes(),
                    aad: aad.as_bytes(),
                },
            )
            .unwrap();
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        format!("v1.{}", B64.encode(out))
    }

    #[test]
    fn item_8_22a_swapped_access_and_refresh_ciphertexts_do_not_open() {
        let c = TokenCipher::new(&[3u8; 32]);
        let tokens = BackendTokens {
            access_token: "the-access-token".into(),
            refresh_token: Some("the-refresh-token".into()),
            expires_in_secs: None,
            session_id: None,
        };
        for ctx in ["65f000000000000000000001", "2fa:65f000000000000000000002"] {
            let sealed = c.seal_backend(ctx, &tokens).unwrap();
            let opened = c.open_backend(&sealed, ctx).unwrap().unwrap();
            assert_eq!(opened.access_token, "the-access-token");
            assert_eq!(opened.refresh_token.as_deref(), Some("the-refresh-token"));
            // Someone with write access to the database swaps the two fields.
            let swapped = doc! {
                "accessToken": sealed.get_str("refreshToken").unwrap(),
                "refreshToken": sealed.get_str("accessToken").unwrap(),
            };
            assert!(c.open_backend(&swapped, ctx).is_err(), "{ctx}");
            // Nor does a token open as the session's `next` refresh token.
            assert!(c
                .open(sealed.get_str("refreshToken").unwrap(), ctx, "next")
                .is_err());
        }
    }

    #[test]
    fn v1_values_sealed_before_field_binding_still_open() {
        let c = TokenCipher::new(&[4u8; 32]);
        let sid = "65f000000000000000000003";
        let b = doc! {
            "accessToken": seal_v1(&c, "old-access", sid),
            "refreshToken": seal_v1(&c, "old-refresh", sid),
        };
        let t = c.open_backend(&b, sid).unwrap().unwrap();
        assert_eq!(t.access_token, "old-access");
        assert_eq!(t.refresh_token.as_deref(), Some("old-refresh"));
        let next = seal_v1(&c, "old-next", &format!("next:{sid}"));
        assert_eq!(c.open(&next, sid, "next").unwrap(), "old-next");
        // A v1 value never opens as v2 (no downgrade by relabelling).
        let relabelled = b.get_str("accessToken").unwrap().replacen("v1.", "v2.", 1);
        assert!(c.open(&relabelled, sid, "accessToken").is_err());
    }

    /// Refused as a damaged value: SESSION_INVALID (the session ends at its refresh), no panic.
    fn assert_refused(c: &TokenCipher, sealed: &str, what: &str) {
        match c.open(sealed, "s1", "refreshToken") {
            Err(e @ AuthError::SessionInvalid(_)) => {
                assert_eq!(e.code(), "SESSION_INVALID", "{what}");
                assert_eq!(
                    e.to_string(),
                    "stored backend token cannot be decrypted",
                    "{what}"
                );
            }
            other => panic!("{what}: expected SESSION_INVALID, got {other:?}"),
        }
    }

    #[test]
    fn item_14_18_damaged_sealed_values_are_refused_never_a_panic() {
        let c = TokenCipher::new(&[5u8; 32]);
        let sealed = c
            .seal("backend-refresh-token", "s1", "refreshToken")
            .unwrap();
        assert_eq!(
            c.open(&sealed, "s1", "refreshToken").unwrap(),
            "backend-refresh-token"
        );
        let raw = B64.decode(&sealed["v2.".len()..]).unwrap();
        // nonce (12) | ciphertext (as long as the plain text) | tag (16)
        assert_eq!(raw.len(), 12 + "backend-refresh-token".len() + 16);
        let reseal = |bytes: &[u8]| format!("v2.{}", B64.encode(bytes));
        let flipped = |i: usize| {
            let mut b = raw.clone();
            b[i] ^= 0x01;
            reseal(&b)
        };
        assert_refused(&c, &flipped(0), "a flipped nonce byte");
        assert_refused(&c, &flipped(12), "a flipped first ciphertext byte");
        assert_refused(
            &c,
            &flipped(raw.len() - 17),
            "a flipped last ciphertext byte",
        );
        assert_refused(&c, &flipped(raw.len() - 16), "a flipped first tag byte");
        assert_refused(&c, &flipped(raw.len() - 1), "a flipped last tag byte");
        for keep in [raw.len() - 1, raw.len() - 16, 28, 27, 12, 11, 1, 0] {
            assert_refused(
                &c,
                &reseal(&raw[..keep]),
                &format!("truncated to {keep} bytes"),
            );
        }
        let body = &sealed["v2.".len()..];
        for prefix in ["v3.", "V2.", "v0.", "v2..", "v2", ".", "", "v1v2."] {
            assert_refused(
                &c,
                &format!("{prefix}{body}"),
                &format!("prefix {prefix:?}"),
            );
        }
        assert_refused(&c, "v2.", "an empty body");
        assert_refused(&c, "v2.@@@", "a body that is not base64url");
        assert_refused(&c, &format!("{sealed}="), "padding");
        // A whole `v2.` value of another field or session is refused the same way.
        assert_refused(
            &c,
            &c.seal("x", "s2", "refreshToken").unwrap(),
            "another session's",
        );
        assert_refused(
            &c,
            &c.seal("x", "s1", "accessToken").unwrap(),
            "another field's",
        );
        // A stored document with a damaged token refuses the pair, not half of it.
        let b = doc! { "accessToken": c.seal("a", "s1", "accessToken").unwrap(), "refreshToken": flipped(20) };
        assert!(matches!(
            c.open_backend(&b, "s1"),
            Err(AuthError::SessionInvalid(_))
        ));
    }

    #[test]
    fn sha256_matches_known_vector() {
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
