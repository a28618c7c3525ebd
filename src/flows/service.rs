//! The `Service`, one per configuration and shared by every request: its parts (backend client,
//! token checks, caches, metrics, audit), the database connection (built on first use, inside the
//! async runtime), the hot-path user cache, the LibreChat tokens it mints, and the revocations it
//! applies from every server (the poll). The flows live beside it, one file each.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use mongodb::bson::{oid::ObjectId, Bson, Document};
use mongodb::options::ClientOptions;
use tokio::sync::OnceCell;

use crate::backend::bearer::Bearer;
use crate::backend::breaker::Lane;
use crate::backend::client::Backend;
use crate::config::{Config, SessionMode};
use crate::identity::PROVIDER;
use crate::identity::{BackendTokens, BackendUser};
use crate::shared::audit::{events, Audit, AuditEvent};
use crate::shared::cache::{SingleFlight, TtlCache};
use crate::shared::error::{AuthError, AuthResult};
use crate::shared::metrics::Metrics;
use crate::store::revocation::{
    first_valid_second, now_ms, NotBefore, Record, RevocationStore, CLOCK_SKEW_MS,
};
use crate::store::sessions::Sessions;
use crate::store::users::Users;
use crate::tokens::librechat::{AccessSubject, Tokens};

pub(crate) struct Db {
    pub(crate) client: mongodb::Client,
    pub(crate) users: Users,
    pub(crate) sessions: Sessions,
    pub(crate) revocations: RevocationStore,
    pub(crate) events: crate::store::events::EventStore,
    pub(crate) challenges: crate::store::challenges::Challenges,
}

/// A user document ready for JS (relaxed Extended JSON), its `_id` hex and its cache version.
#[derive(Clone)]
pub struct CachedUser {
    pub id: Arc<str>,
    pub json: Arc<str>,
    pub version: u32,
    /// `twoFactorEnabled`: backend tokens are accepted only as a session's
    /// (docs/sessions-and-tokens.md, "Every request").
    pub two_factor: bool,
    /// `tenantId`: the LibreChat tenant the user belongs to.
    pub tenant: Option<Arc<str>>,
}

impl CachedUser {
    /// Whether a request of tenant `request` may be this user's: any request when it names no
    /// tenant (LibreChat then takes the tenant from the user), else only one of the user's tenant.
    pub fn in_tenant(&self, request: Option<&str>) -> bool {
        request.is_none_or(|r| self.tenant.as_deref() == Some(r))
    }
}

/// The key of `source_ids` and `source_lookups`: a backend identity within a tenant.
pub(crate) fn source_key(backend_id: &str, tenant: Option<&str>) -> String {
    match tenant {
        None => backend_id.to_string(),
        // `\n` never occurs in a usable backend id (no control characters) nor in a tenant id.
        Some(t) => format!("{backend_id}\n{t}"),
    }
}

pub struct Service {
    pub config: Config,
    pub(crate) backend: Backend,
    pub(crate) tokens: Tokens,
    pub(crate) bearer: Bearer,
    pub(crate) db: OnceCell<Db>,
    /// User documents by `_id` hex, for the per-request hot path.
    pub(crate) users_cache: TtlCache<String, CachedUser>,
    /// LibreChat `_id` hex by backend id, for backend bearer tokens.
    pub(crate) source_ids: TtlCache<String, String>,
    /// The user of a backend id when `source_ids` has none: concurrent requests of one backend
    /// user (every `USER_CACHE_TTL`, all requests in flight miss at once) share one lookup.
    pub(crate) source_lookups: SingleFlight<String, AuthResult<Option<Document>>>,
    /// Single sign-on verdicts (portal cookies, proxy-named users).
    pub(crate) portal: crate::backend::portal::Portal,
    pub(crate) versions: AtomicU32,
    /// Backend tokens from refreshes whose answer the database refused to store.
    pub(crate) unsaved: Arc<crate::store::unsaved::Unsaved>,
    /// The package's own metrics (docs/operations.md, "Metrics").
    pub metrics: Arc<Metrics>,
    /// Revoked users' "not before" times: read on every request, from memory only.
    pub(crate) revoked: NotBefore,
    /// The "not before" of the revocation this server last wrote for a user, for a second or two:
    /// a second one that refuses nothing more is not written (`control::revoke`).
    pub(crate) revocations_written: TtlCache<String, i64>,
    /// The service itself, for its background poll (which must not keep it alive).
    pub(crate) me: OnceLock<Weak<Service>>,
    pub(crate) closed: AtomicBool,
    /// Audit events without a request, to the shim's listener (docs/security.md, "Audit events").
    pub audit: Audit,
}

/// The breaker's transitions as audit events: opened, and closed again (half-open is a step).
fn breaker_audit(audit: Audit) -> crate::backend::breaker::Listener {
    Arc::new(
        move |host: &str, lane: Lane, state: crate::backend::breaker::BreakerState| {
            let name = match state {
                crate::backend::breaker::BreakerState::Open => events::BREAKER_OPENED,
                crate::backend::breaker::BreakerState::Closed => events::BREAKER_CLOSED,
                crate::backend::breaker::BreakerState::HalfOpen => return,
            };
            let mut e = AuditEvent::new(name, "ok");
            e.host = Some(host.to_string());
            e.lane = Some(lane.name());
            audit.emit(e);
        },
    )
}

/// The user as LibreChat hands it out: the document plus `id`, as relaxed Extended JSON, which the
/// shim turns back into ObjectIds and Dates.
pub fn user_ejson(mut user: Document) -> AuthResult<String> {
    let id = user
        .get_object_id("_id")
        .map_err(|_| AuthError::Internal("user without ObjectId".into()))?;
    user.insert("id", id.to_hex());
    serde_json::to_string(&Bson::Document(user).into_relaxed_extjson())
        .map_err(|_| AuthError::Internal("cannot serialise the user".into()))
}

impl Service {
    /// The service, shared, with its handle for the background revocation poll.
    pub fn shared(vars: &HashMap<String, String>) -> AuthResult<Arc<Service>> {
        let service = Arc::new(Service::new(vars)?);
        let _ = service.me.set(Arc::downgrade(&service));
        Ok(service)
    }

    pub fn new(vars: &HashMap<String, String>) -> AuthResult<Service> {
        let config = Config::from_vars(vars)?;
        let metrics = Arc::new(Metrics::default());
        let audit = Audit::default();
        let backend = Backend::new(&config)?.with_metrics(metrics.clone());
        backend
            .breakers()
            .set_listener(breaker_audit(audit.clone()));
        Ok(Service {
            backend,
            metrics,
            audit,
            bearer: Bearer::new(&config),
            users_cache: TtlCache::new(config.cache_max),
            source_ids: TtlCache::new(config.cache_max),
            revocations_written: TtlCache::new(config.cache_max),
            source_lookups: SingleFlight::new(),
            portal: crate::backend::portal::Portal::new(config.cache_max),
            versions: AtomicU32::new(1),
            unsaved: Default::default(),
            tokens: Tokens::new(
                &config.jwt_secret,
                &config.jwt_refresh_secret,
                config.session_expiry_ms,
            )?,
            config,
            db: OnceCell::new(),
            revoked: NotBefore::default(),
            me: OnceLock::new(),
            closed: AtomicBool::new(false),
        })
    }

    /// Waits, right after a revocation of the user, for the second after it (at most a second,
    /// and only then): a token carries its `iat` in whole seconds and is dated past the revocation
    /// (`access_token_until`), so only a revocation in a later second than the first refuses it.
    pub(crate) async fn after_revocation_second(&self, user: &str) {
        let Some(nb) = self.revoked.get(user) else {
            return;
        };
        let first_ms = first_valid_second(nb).saturating_mul(1000);
        let wait = first_ms.saturating_add(1).saturating_sub(now_ms());
        if wait > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(
                wait.unsigned_abs().min(1_000),
            ))
            .await;
        }
    }

    /// The database if connected (never connects).
    pub(crate) fn connected_db(&self) -> Option<&Db> {
        self.db.get()
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }

    pub(crate) async fn db(&self) -> AuthResult<&Db> {
        self.db
            .get_or_try_init(|| async {
                // The URI is never echoed: it may hold a password.
                let mut opts = ClientOptions::parse(&self.config.mongo_uri)
                    .await
                    .map_err(|e| match *e.kind {
                        mongodb::error::ErrorKind::DnsResolve { .. } => AuthError::DbUnavailable,
                        _ => AuthError::config(
                            "MONGO_URI",
                            "is not a valid MongoDB connection string",
                        ),
                    })?;
                opts.server_selection_timeout = Some(self.config.db_timeout);
                opts.connect_timeout = Some(self.config.db_timeout);
                opts.app_name = Some("librechat-custom-backend-auth".into());
                let client = mongodb::Client::with_options(opts)?;
                let db = client
                    .default_database()
                    .unwrap_or_else(|| client.database("test"));
                let db = Db {
                    users: Users::new(
                        &db,
                        self.config.balance_enabled,
                        self.config.start_balance,
                        &self.config.policy,
                    ),
                    sessions: Sessions::new(
                        &db,
                        &self.config.token_encryption_key,
                        self.config.refresh_token_expiry_ms,
                    ),
                    revocations: RevocationStore::new(&db, self.revocation_retention_ms()),
                    events: crate::store::events::EventStore::new(
                        &db,
                        self.revocation_retention_ms(),
                    ),
                    challenges: crate::store::challenges::Challenges::new(
                        &db,
                        &self.config.token_encryption_key,
                    ),
                    client,
                };
                // Revocations still in force are known before any token is accepted from here.
                self.start_revocation_poll(&db).await?;
                Ok(db)
            })
            .await
    }

    /// The `token` the browser gets: a LibreChat access token, or in backend mode the backend's
    /// own access token. A token the backend just issued for a known identity is remembered as
    /// valid, so its first use needs no user-info call.
    pub(crate) fn session_token(
        &self,
        user: &Document,
        id: ObjectId,
        backend: &BackendTokens,
        identity: Option<&BackendUser>,
    ) -> AuthResult<String> {
        if self.config.session_mode == SessionMode::LibreChat {
            return self.access_token_for(user, id);
        }
        if let Some(identity) = identity {
            let exp = backend
                .expires_in_secs
                .map(|s| crate::tokens::librechat::now_secs().saturating_add(s));
            self.bearer
                .remember(&backend.access_token, identity.clone(), exp);
            let key = source_key(&identity.id, user.get_str("tenantId").ok());
            self.source_ids
                .insert(key, id.to_hex(), self.config.user_cache_ttl);
        }
        Ok(backend.access_token.clone())
    }

    /// Puts a user document into the hot-path cache (or only converts it when the cache is off).
    pub(crate) fn cache_user(&self, user: &Document) -> AuthResult<CachedUser> {
        let id = user
            .get_object_id("_id")
            .map_err(|_| AuthError::Internal("user without ObjectId".into()))?
            .to_hex();
        let cached = CachedUser {
            id: Arc::from(id.as_str()),
            json: Arc::from(user_ejson(user.clone())?),
            version: self.versions.fetch_add(1, Ordering::Relaxed),
            two_factor: user.get_bool("twoFactorEnabled").unwrap_or(false),
            tenant: user.get_str("tenantId").ok().map(Arc::from),
        };
        self.users_cache
            .insert(id, cached.clone(), self.config.user_cache_ttl);
        Ok(cached)
    }

    pub fn evict_user(&self, id: &str) {
        self.users_cache.remove(&id.to_string());
        self.source_ids.retain(|_, v| v != id);
    }

    pub fn cached_user(&self, id: &str) -> Option<CachedUser> {
        self.users_cache.get(&id.to_string())
    }

    pub(crate) fn access_token_for(&self, user: &Document, id: ObjectId) -> AuthResult<String> {
        self.access_token_until(user, id, None)
    }

    /// `access_token_for`, expiring at `exp` (seconds) when given.
    pub(crate) fn access_token_until(
        &self,
        user: &Document,
        id: ObjectId,
        exp: Option<u64>,
    ) -> AuthResult<String> {
        let subject = AccessSubject {
            id: &id.to_hex(),
            username: user.get_str("username").unwrap_or_default(),
            provider: user.get_str("provider").unwrap_or(PROVIDER),
            email: user.get_str("email").unwrap_or_default(),
        };
        let now = crate::tokens::librechat::now_secs();
        let exp = exp.unwrap_or_else(|| now.saturating_add(self.tokens.session_expiry_secs()));
        // Right after a revocation of the user, dated past what it refuses (`ISSUER_SKEW_MS`).
        let iat = self
            .revoked
            .first_iat(subject.id)
            .map_or(now, |first| first.max(now));
        self.tokens.access_token_issued(&subject, iat, exp)
    }

    /// Applies a revocation on this server (memory and caches): at once for our own, from the
    /// poll for the others'. `false` when it was applied before.
    pub(crate) fn apply_revocation(&self, r: &Record) -> bool {
        if !self.revoked.first_sight(r) {
            return false;
        }
        let user = r.user.to_hex();
        if let Some(nb) = r.not_before_ms {
            self.revoked.raise(&user, nb);
        }
        self.evict_user(&user);
        if let Some(b) = &r.backend_id {
            self.bearer.forget_identity(b);
        }
        true
    }

    /// Reads the revocations written since `since_ms` and applies the new ones here.
    pub(crate) async fn poll_revocations(&self, db: &Db, since_ms: i64) -> AuthResult<()> {
        for r in db.revocations.since(since_ms).await? {
            self.apply_revocation(&r);
        }
        Ok(())
    }

    /// The first read (everything still in force), then the poll of the other servers' writes,
    /// every `REVOCATION_POLL_MS`, until the service is closed or dropped.
    pub(crate) async fn start_revocation_poll(&self, db: &Db) -> AuthResult<()> {
        let retention = self.revocation_retention_ms();
        let started = now_ms();
        self.poll_revocations(db, started.saturating_sub(retention))
            .await?;
        let every = self.config.revocation_poll;
        let Some(me) = self.me.get().cloned() else {
            return Ok(());
        };
        if every.is_zero() {
            return Ok(());
        }
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(poll_loop(me, every, started, retention));
        }
        Ok(())
    }

    /// How long a revocation can matter: until every token issued before it has expired. Access
    /// tokens live `SESSION_EXPIRY`; a refresh token, and a backend JWT judged against it, at most
    /// `REFRESH_TOKEN_EXPIRY` (the longer one).
    pub(crate) fn revocation_retention_ms(&self) -> i64 {
        let longest = self
            .config
            .session_expiry_ms
            .max(self.config.refresh_token_expiry_ms);
        i64::try_from(longest).unwrap_or(i64::MAX / 2)
    }

    pub async fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
        if let Some(db) = self.db.get() {
            db.client.clone().shutdown().await;
        }
    }
}

async fn poll_loop(me: Weak<Service>, every: Duration, mut since: i64, retention: i64) {
    loop {
        tokio::time::sleep(every).await;
        let Some(service) = me.upgrade() else {
            return;
        };
        if service.is_closed() {
            return;
        }
        let started = now_ms();
        // A failed read is retried from the same point at the next tick. (The database is
        // connected: the poll starts from its connection.)
        if let Some(db) = service.connected_db() {
            if service
                .poll_revocations(db, since.saturating_sub(CLOCK_SKEW_MS))
                .await
                .is_ok()
            {
                since = started;
            }
        }
        service.revoked.prune(started, retention, since);
        drop::<Arc<Service>>(service);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn user_ejson_adds_id_and_keeps_types() {
        let id = ObjectId::new();
        let s = user_ejson(
            mongodb::bson::doc! {"_id": id, "createdAt": mongodb::bson::DateTime::now()},
        )
        .unwrap();
        let v: Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v["id"], id.to_hex());
        assert_eq!(v["_id"]["$oid"], id.to_hex());
        assert!(v["createdAt"]["$date"].is_string());
    }
}
