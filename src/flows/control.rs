//! Ending sessions on demand (log out everywhere, an administrator, a backend event) so that the
//! end holds on every server: the revocation is recorded, the sessions deleted, the tokens issued
//! before it refused, the caches dropped, and the backend told.

use std::time::Duration;

use mongodb::bson::oid::ObjectId;

use crate::flows::service::{Db, Service};
use crate::identity::BackendTokens;
use crate::identity::PROVIDER;
use crate::shared::error::{AuthError, AuthResult};
use crate::store::revocation::{first_valid_second, now_ms, Record};
use crate::store::sessions::{EndedSession, SessionSummary, Which};

/// Backend logout calls made at once when many sessions end together.
const LOGOUT_CONCURRENCY: usize = 8;

/// Whether the ended sessions' backend tokens are ended at the backend, and how.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum TellBackend {
    /// Awaited; failures counted (an operator's or user's request waits for the answer).
    Await,
    /// In the background (the caller is the backend itself, which must not wait on its own call).
    Background,
    /// Not at all (the backend ended them itself).
    No,
}

/// What ending sessions did.
#[derive(Debug, Default, PartialEq)]
pub struct Ended {
    pub sessions: u32,
    /// Backend logout calls that failed (awaited calls only).
    pub backend_failures: u32,
}

/// A user id from JS: an ObjectId hex, else a clear refusal.
pub fn parse_user_id(id: &str) -> AuthResult<ObjectId> {
    ObjectId::parse_str(id).map_err(|_| AuthError::BadRequest("user id must be an ObjectId".into()))
}

impl Service {
    /// Records a revocation for every server and applies it here at once. One this server wrote
    /// within the same second for the user already refuses every token the new one would (tokens
    /// carry whole seconds): it is not written again, so a loop of "log out everywhere" writes at
    /// most one record per user and second, and drops the user's cached verdicts as often.
    pub(crate) async fn revoke(&self, db: &Db, r: Record) -> AuthResult<()> {
        let user = r.user.to_hex();
        if let (Some(nb), Some(written)) = (r.not_before_ms, self.revocations_written.get(&user)) {
            if first_valid_second(written) >= first_valid_second(nb) {
                return Ok(());
            }
        }
        // Here first: this server refuses at once, even if the write fails (the caller then
        // answers an error and the revocation is retried).
        self.apply_revocation(&r);
        db.revocations.insert(&r).await?;
        if let Some(nb) = r.not_before_ms {
            self.revocations_written
                .insert(user, nb, Duration::from_secs(2));
        }
        Ok(())
    }

    /// The backend id of a LibreChat user of ours (to drop its cached backend-token verdicts).
    async fn backend_id_of(&self, db: &Db, user: ObjectId) -> AuthResult<Option<String>> {
        Ok(db.users.find_public(user).await?.and_then(|u| {
            (u.get_str("provider") == Ok(PROVIDER))
                .then(|| u.get_str("idOnTheSource").ok().map(str::to_string))
                .flatten()
        }))
    }

    /// Ends the sessions of `user` that `which` names: they are deleted, the user's tokens issued
    /// before now are refused on every server (the other sessions' browsers refresh once), and
    /// their backend tokens are ended as `tell` says.
    pub(crate) async fn end_sessions(
        &self,
        user: ObjectId,
        backend_id: Option<String>,
        which: Which<'_>,
        reason: &str,
        tell: TellBackend,
    ) -> AuthResult<Ended> {
        let db = self.db().await?;
        let backend_id = match backend_id {
            Some(b) => Some(b),
            None => self.backend_id_of(db, user).await?,
        };
        let every = matches!(which, Which::All | Which::Barred);
        let barred = matches!(which, Which::Barred);
        let found = db.sessions.end(user, which).await?;
        let ended = found.sessions;
        // Timed once they are gone: a token a refresh of theirs minted meanwhile is older.
        let at = now_ms();
        // A barred user's pending 2FA logins: a session LibreChat's second step starts from one
        // gets its tokens within the temp token's lifetime, so those are refused until then too.
        let not_before = match found.pending_until_ms {
            Some(until) if barred => at.max(until),
            _ => at,
        };
        // Nothing ended (an unknown session): nobody's tokens change.
        if every || !ended.is_empty() {
            self.revoke(db, Record::new(user, backend_id, Some(not_before), reason))
                .await?;
        }
        let sessions = u32::try_from(ended.len()).unwrap_or(u32::MAX);
        let backend_failures = self.tell_backend(ended, tell).await;
        Ok(Ended {
            sessions,
            backend_failures,
        })
    }

    /// Ends backend tokens at `BACKEND_LOGOUT_URL` (when set), a few calls at a time.
    async fn tell_backend(&self, ended: Vec<EndedSession>, tell: TellBackend) -> u32 {
        let tokens: Vec<BackendTokens> = ended.into_iter().filter_map(|e| e.backend).collect();
        for t in &tokens {
            self.bearer
                .forget(&crate::backend::bearer::token_key(&t.access_token));
        }
        let Some(url) = self.config.logout_url.clone() else {
            return 0;
        };
        if tokens.is_empty() || tell == TellBackend::No {
            return 0;
        }
        let backend = self.backend.clone();
        let calls = async move {
            let mut failures = 0u32;
            for chunk in tokens.chunks(LOGOUT_CONCURRENCY) {
                let mut set = tokio::task::JoinSet::new();
                for t in chunk.iter().cloned() {
                    let (b, u) = (backend.clone(), url.clone());
                    set.spawn(async move {
                        b.logout(&u, &t.access_token, t.refresh_token.as_deref())
                            .await
                            .is_err()
                    });
                }
                while let Some(r) = set.join_next().await {
                    if r.unwrap_or(true) {
                        failures += 1;
                    }
                }
            }
            failures
        };
        match tell {
            TellBackend::Await => calls.await,
            _ => {
                if let Ok(rt) = tokio::runtime::Handle::try_current() {
                    rt.spawn(calls);
                }
                0
            }
        }
    }

    /// Log out everywhere: every session of the user (JS: `logoutAll`, `endSessions`).
    pub async fn logout_all(&self, user_id: &str) -> AuthResult<Ended> {
        let user = parse_user_id(user_id)?;
        self.end_sessions(user, None, Which::All, "logout.all", TellBackend::Await)
            .await
    }

    /// Ends one session of the user (an administrator's or the user's choice in a session list).
    pub async fn end_session_of(&self, user_id: &str, session_id: &str) -> AuthResult<Ended> {
        let user = parse_user_id(user_id)?;
        let session = ObjectId::parse_str(session_id)
            .map_err(|_| AuthError::BadRequest("session id must be an ObjectId".into()))?;
        self.end_sessions(
            user,
            None,
            Which::One(session),
            "session.ended",
            TellBackend::Await,
        )
        .await
    }

    /// The user's live sessions, newest first; nothing secret.
    pub async fn list_sessions(&self, user_id: &str) -> AuthResult<Vec<SessionSummary>> {
        let user = parse_user_id(user_id)?;
        self.db().await?.sessions.list(user).await
    }
}
