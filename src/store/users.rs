//! The LibreChat user document: found by `provider` + `idOnTheSource`, created and updated exactly
//! as LibreChat's mongoose `User` model writes it, plus the start balance `createUser` grants.

use mongodb::bson::{doc, oid::ObjectId, Bson, DateTime, Document};
use mongodb::error::{ErrorKind, WriteFailure};
use mongodb::options::{IndexOptions, ReturnDocument};
use mongodb::{Collection, Database, IndexModel};
use tokio::sync::OnceCell;

use crate::config::{LinkExisting, Policy};
use crate::identity::{fold_case, BackendUser, PROVIDER, ROLE_ADMIN, ROLE_USER};
use crate::shared::error::{AuthError, AuthResult};

/// The package's own collection of small shared facts (today: who is the first user).
pub const META_COLLECTION: &str = "customBackendMeta";
/// The marker document deciding LibreChat's first-user rule across every server.
const FIRST_ADMIN_MARKER: &str = "firstUserAdmin";
/// Our own unique index on `users`: one account per backend identity and tenant, whatever
/// LibreChat's indexes.
pub const SOURCE_INDEX_NAME: &str = "customBackend_provider_idOnTheSource_tenantId";
/// Its predecessor without the tenant (before 0.2), which would keep one backend identity from
/// having an account in two tenants: dropped when ours is created.
pub const OLD_SOURCE_INDEX_NAME: &str = "customBackend_provider_idOnTheSource";

pub fn source_index_keys() -> Document {
    doc! { "provider": 1, "idOnTheSource": 1, "tenantId": 1 }
}

/// A filter's `tenantId` for a tenant: the tenant, or none (`null` also matches a document without
/// the field, which is how LibreChat stores a user outside every tenant).
pub fn tenant_filter(tenant: Option<&str>) -> Bson {
    tenant.map_or(Bson::Null, Bson::from)
}

pub fn source_index_filter() -> Document {
    doc! { "provider": PROVIDER }
}

/// Fields LibreChat never hands out with a user: what its jwt strategy deselects
/// (`-password -__v -totpSecret -backupCodes`) and what the schema marks `select: false`.
const HIDDEN_FIELDS: &[&str] = &[
    "password",
    "__v",
    "totpSecret",
    "backupCodes",
    "pendingTotpSecret",
    "pendingBackupCodes",
    "pinnedOrder",
    "agentTriggerDeletionStartedAt",
    "subagentAdmissionFences",
];

pub fn public_projection() -> Document {
    HIDDEN_FIELDS
        .iter()
        .map(|f| (f.to_string(), 0.into()))
        .collect()
}

/// What a backend user becomes in LibreChat's schema (lower-cased, in ASCII only: see `fold_case`).
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    pub id_on_the_source: String,
    pub email: String,
    pub username: String,
    pub name: String,
    pub avatar: Option<String>,
    /// The role the backend's roles give; `None` when no role mapping is configured.
    pub role: Option<&'static str>,
    /// The LibreChat tenant of the account (`None`: a deployment without tenants).
    pub tenant: Option<String>,
}

impl Profile {
    pub fn from_backend(u: &BackendUser, policy: &Policy) -> Profile {
        // LibreChat's fallbacks: username from the email's local part, name from the username.
        let username = u
            .username
            .clone()
            .unwrap_or_else(|| u.email.split('@').next().unwrap_or_default().to_string());
        let name = u.name.clone().unwrap_or_else(|| username.clone());
        Profile {
            id_on_the_source: u.id.clone(),
            email: fold_case(&u.email),
            username: fold_case(&username),
            name,
            avatar: u.avatar.clone(),
            role: policy.role(u),
            tenant: None,
        }
    }

    /// The same profile, in a tenant.
    pub fn in_tenant(self, tenant: Option<String>) -> Profile {
        Profile { tenant, ..self }
    }
}

/// Whether a stored user already says what a sync with `p` would write (`update`): then a refresh
/// writes nothing. A pending TTL (`expiresAt`) is cleared by a write, so a user with one does not
/// match.
pub fn matches_profile(user: &Document, p: &Profile) -> bool {
    let is = |k: &str, v: &str| user.get_str(k) == Ok(v);
    is("provider", PROVIDER)
        && is("idOnTheSource", &p.id_on_the_source)
        && is("email", &p.email)
        && is("username", &p.username)
        && is("name", &p.name)
        && user.get_bool("emailVerified") == Ok(true)
        && p.avatar.as_deref().is_none_or(|a| is("avatar", a))
        && p.role.is_none_or(|r| is("role", r))
        && !user.contains_key("expiresAt")
}

/// The new user document, field for field and in the order mongoose writes it
/// (`@librechat/data-schemas` 0.0.71; a test diffs it against `User.create`).
pub fn new_user_document(p: &Profile, role: &str, now: DateTime) -> Document {
    let mut d = doc! {
        "_id": ObjectId::new(),
        "name": &p.name,
        "username": &p.username,
        "email": &p.email,
        "emailVerified": true,
    };
    if let Some(avatar) = &p.avatar {
        d.insert("avatar", avatar);
    }
    d.extend(doc! {
        "provider": PROVIDER,
        "role": role,
        "plugins": [],
        "twoFactorEnabled": false,
        "termsAccepted": false,
        "termsAcceptedAt": null,
        "personalization": { "memories": true, "statefulCodeEnvironment": "user", "_id": ObjectId::new() },
        "pinnedOrder": [],
        "idOnTheSource": &p.id_on_the_source,
        "backupCodes": [],
        "refreshToken": [],
        "favorites": [],
        "skillStates": {},
        "createdAt": now,
        "updatedAt": now,
    });
    // Where LibreChat's tenant plugin puts it (set in its pre-save hook).
    if let Some(t) = &p.tenant {
        d.insert("tenantId", t);
    }
    d.insert("__v", 0);
    d
}

pub struct Users {
    users: Collection<Document>,
    balances: Collection<Document>,
    meta: Collection<Document>,
    source_indexed: OnceCell<()>,
    start_balance: Option<i64>,
    link_existing: LinkExisting,
    /// `BACKEND_LINK_KEEP_LOCAL_SECRETS`: a linked account keeps its local password and 2FA.
    keep_local_secrets: bool,
}

fn is_duplicate_key(e: &mongodb::error::Error) -> bool {
    match &*e.kind {
        ErrorKind::Write(WriteFailure::WriteError(w)) => w.code == 11000,
        ErrorKind::Command(c) => c.code == 11000,
        _ => false,
    }
}

impl Users {
    pub fn new(db: &Database, balance_enabled: bool, start_balance: i64, policy: &Policy) -> Users {
        Users {
            users: db.collection("users"),
            balances: db.collection("balances"),
            meta: db.collection(META_COLLECTION),
            source_indexed: OnceCell::new(),
            start_balance: (balance_enabled && start_balance > 0).then_some(start_balance),
            link_existing: policy.link_existing,
            keep_local_secrets: policy.keep_local_secrets,
        }
    }

    /// An account about to be linked loses what let its first owner sign in without the backend:
    /// the local password and LibreChat's 2FA (secret, backup codes; 2FA is off until set up anew).
    async fn drop_local_secrets(&self, owner: &Document) -> AuthResult<()> {
        let id = owner
            .get_object_id("_id")
            .map_err(|_| AuthError::Internal("user without ObjectId".into()))?;
        self.users
            .update_one(
                doc! { "_id": id },
                doc! {
                    "$unset": { "password": "", "totpSecret": "", "backupCodes": "" },
                    "$set": { "twoFactorEnabled": false },
                },
            )
            .await?;
        Ok(())
    }

    /// Creates or updates the LibreChat user for a backend identity. Returns the stored document
    /// without secret fields.
    /// Everything happens inside the profile's tenant: another tenant's accounts (the same
    /// identity, the same email) are other people's.
    pub async fn sync(&self, p: &Profile) -> AuthResult<Document> {
        let tenant = tenant_filter(p.tenant.as_deref());
        let key = doc! { "provider": PROVIDER, "idOnTheSource": &p.id_on_the_source, "tenantId": &tenant };
        // The account of this identity and the one owning the email, in one read (issue 28).
        let mut cursor = self
            .users
            .find(doc! { "tenantId": &tenant, "$or": [
                { "provider": PROVIDER, "idOnTheSource": &p.id_on_the_source },
                { "email": &p.email },
            ] })
            .projection(
                doc! {"_id": 1, "provider": 1, "idOnTheSource": 1, "emailVerified": 1, "email": 1},
            )
            .await?;
        let mut found = Vec::new();
        while cursor.advance().await? {
            found.push(cursor.deserialize_current()?);
        }
        let is_identity = |d: &Document| {
            d.get_str("provider").ok() == Some(PROVIDER)
                && d.get_str("idOnTheSource").ok() == Some(p.id_on_the_source.as_str())
        };
        if let Some(existing) = found.iter().find(|d| is_identity(d)) {
            // Another account holding the email refuses the update, as `update` checks.
            if found
                .iter()
                .any(|d| !is_identity(d) && d.get_str("email").ok() == Some(p.email.as_str()))
            {
                return Err(AuthError::AccountConflict);
            }
            let user = self.write(existing, p).await?;
            // A start balance a failed earlier login could not write is written now.
            self.repair_balance(&user).await?;
            return Ok(user);
        }
        // Never take over another account that owns the email (LibreChat refuses a provider
        // mismatch), unless the operator opted in to linking accounts of other providers by email.
        if let Some(owner) = found.into_iter().next() {
            let provider = owner.get_str("provider").unwrap_or_default();
            // (A parallel first login of this same identity that inserted it since our read is
            // met by the insert below: its duplicate key.)
            // Linking takes over an account of another provider, never one whose email its owner
            // did not verify: whoever registered the address first would otherwise hand the real
            // owner an account holding their own password and second factor.
            let linkable = self.link_existing == LinkExisting::Email
                && provider != PROVIDER
                && owner.get_bool("emailVerified").unwrap_or(false);
            if linkable && !self.keep_local_secrets {
                self.drop_local_secrets(&owner).await?;
            }
            if linkable {
                let user = self.update(&owner, p).await?;
                self.repair_balance(&user).await?;
                return Ok(user);
            }
            return Err(AuthError::AccountConflict);
        }
        // Uniqueness of the identity is ours to enforce, not LibreChat's email index's.
        self.ensure_source_index().await?;
        // As LibreChat (v0.8.5+): only the first user of a deployment without tenants becomes
        // ADMIN by order; a tenant's administrators come from a trusted source (the role mapping).
        let claim = match (p.role, &p.tenant) {
            (None, None) => self.claim_first_admin(&p.id_on_the_source).await?,
            _ => None,
        };
        let role = p.role.unwrap_or(if claim.is_some() {
            ROLE_ADMIN
        } else {
            ROLE_USER
        });
        let mut user = new_user_document(p, role, DateTime::now());
        let inserted = match self.users.insert_one(&user).await {
            Ok(_) => {
                for k in HIDDEN_FIELDS {
                    user.remove(k);
                }
                true
            }
            Err(e) if is_duplicate_key(&e) => {
                // A concurrent first login of the same identity won; use its document.
                let existing = match self.users.find_one(key).projection(doc! {"_id": 1}).await {
                    Ok(Some(existing)) => existing,
                    Ok(None) => {
                        self.release_first_admin(&p.id_on_the_source, claim).await;
                        return Err(AuthError::AccountConflict);
                    }
                    Err(e) => {
                        self.release_first_admin(&p.id_on_the_source, claim).await;
                        return Err(e.into());
                    }
                };
                user = self.update(&existing, p).await?;
                false
            }
            Err(e) => {
                self.release_first_admin(&p.id_on_the_source, claim).await;
                return Err(e.into());
            }
        };
        if let Some(nonce) = claim {
            let first = self.settle_first_admin(&p.id_on_the_source, nonce).await?;
            let want = if first { ROLE_ADMIN } else { ROLE_USER };
            // Our insert as ADMIN lost to another first login: USER. Or a parallel login of this
            // identity inserted it as USER while we held the claim: ADMIN.
            if user.get_str("role").ok() != Some(want) && (inserted || first) {
                let id = user
                    .get_object_id("_id")
                    .map_err(|_| AuthError::Internal("user without ObjectId".into()))?;
                self.users
                    .update_one(doc! {"_id": id}, doc! {"$set": {"role": want}})
                    .await?;
                user.insert("role", want);
            }
        }
        if inserted {
            self.repair_balance(&user).await?;
        }
        Ok(user)
    }

    /// Creates our unique index on `(provider, idOnTheSource)` for `custom-backend` users, once
    /// per process (an existing identical index is a no-op for MongoDB).
    async fn ensure_source_index(&self) -> AuthResult<()> {
        self.source_indexed
            .get_or_try_init(|| async {
                let model = IndexModel::builder()
                    .keys(source_index_keys())
                    .options(
                        IndexOptions::builder()
                            .name(SOURCE_INDEX_NAME.to_string())
                            .unique(true)
                            .partial_filter_expression(source_index_filter())
                            .build(),
                    )
                    .build();
                self.users.create_index(model).await?;
                // The old index without the tenant would still refuse a second tenant's account.
                match self.users.drop_index(OLD_SOURCE_INDEX_NAME).await {
                    Ok(()) => {}
                    Err(e) if matches!(&*e.kind, ErrorKind::Command(c) if c.code == 27) => {}
                    Err(e) => return Err(e.into()),
                }
                Ok::<(), AuthError>(())
            })
            .await?;
        Ok(())
    }

    /// LibreChat's first-user rule ("the first user of an empty `users` collection is ADMIN"),
    /// decided in the database so that it holds across parallel logins and servers: the marker
    /// document names the backend identity that claims the first place, with a nonce. A claim
    /// held by an identity without an account (its login failed, or the users were removed since)
    /// can be taken over, by a compare-and-swap on that nonce. Returns our nonce when we hold it.
    async fn claim_first_admin(&self, source: &str) -> AuthResult<Option<ObjectId>> {
        if self
            .users
            .find_one(doc! {})
            .projection(doc! {"_id": 1})
            .await?
            .is_some()
        {
            return Ok(None);
        }
        let nonce = ObjectId::new();
        let marker = doc! { "_id": FIRST_ADMIN_MARKER, "source": source, "nonce": nonce, "at": DateTime::now() };
        match self.meta.insert_one(marker).await {
            Ok(_) => return Ok(Some(nonce)),
            Err(e) if is_duplicate_key(&e) => {}
            Err(e) => return Err(e.into()),
        }
        let Some(held) = self
            .meta
            .find_one(doc! { "_id": FIRST_ADMIN_MARKER })
            .await?
        else {
            return Ok(None);
        };
        let held_nonce = held.get("nonce").cloned().unwrap_or(Bson::Null);
        match held.get_str("source") {
            Ok(s) if s == source => return Ok(held_nonce.as_object_id()),
            Ok(s) => {
                if self.find_id_by_source(s, None).await?.is_some() {
                    return Ok(None);
                }
            }
            Err(_) => {}
        }
        let r = self
            .meta
            .update_one(
                doc! { "_id": FIRST_ADMIN_MARKER, "nonce": held_nonce },
                doc! { "$set": { "source": source, "nonce": nonce, "at": DateTime::now() } },
            )
            .await?;
        Ok((r.modified_count == 1).then_some(nonce))
    }

    /// After the identity's account exists: makes our claim final by changing its nonce (so a
    /// takeover decided on an older read fails). `false` when another first login took the claim
    /// over meanwhile; `true` also when another login of this same identity settled it.
    async fn settle_first_admin(&self, source: &str, nonce: ObjectId) -> AuthResult<bool> {
        let r = self
            .meta
            .update_one(
                doc! { "_id": FIRST_ADMIN_MARKER, "source": source, "nonce": nonce },
                doc! { "$set": { "nonce": ObjectId::new(), "settledAt": DateTime::now() } },
            )
            .await?;
        if r.matched_count == 1 {
            return Ok(true);
        }
        let held = self
            .meta
            .find_one(doc! { "_id": FIRST_ADMIN_MARKER })
            .await?;
        Ok(held.is_some_and(|m| m.get_str("source").ok() == Some(source)))
    }

    /// A login that fails after claiming gives the claim back (best effort: a claim of an
    /// identity without an account can be taken over anyway).
    async fn release_first_admin(&self, source: &str, claim: Option<ObjectId>) {
        if let Some(nonce) = claim {
            let _ = self
                .meta
                .delete_one(doc! { "_id": FIRST_ADMIN_MARKER, "source": source, "nonce": nonce })
                .await;
        }
    }

    /// `write` after checking that no other account of the tenant holds the profile's email.
    async fn update(&self, existing: &Document, p: &Profile) -> AuthResult<Document> {
        let id = existing
            .get_object_id("_id")
            .map_err(|_| AuthError::Internal("user without ObjectId".into()))?;
        if self
            .users
            .find_one(doc! { "email": &p.email, "_id": { "$ne": id }, "tenantId": tenant_filter(p.tenant.as_deref()) })
            .projection(doc! {"_id": 1})
            .await?
            .is_some()
        {
            return Err(AuthError::AccountConflict);
        }
        self.write(existing, p).await
    }

    /// The profile written into the account `existing` (its `_id`).
    async fn write(&self, existing: &Document, p: &Profile) -> AuthResult<Document> {
        let id = existing
            .get_object_id("_id")
            .map_err(|_| AuthError::Internal("user without ObjectId".into()))?;
        // `provider`/`idOnTheSource`/`emailVerified` only change when an account is linked.
        let mut set = doc! {
            "name": &p.name,
            "username": &p.username,
            "email": &p.email,
            "provider": PROVIDER,
            "idOnTheSource": &p.id_on_the_source,
            "emailVerified": true,
            "updatedAt": DateTime::now(),
        };
        if let Some(avatar) = &p.avatar {
            set.insert("avatar", avatar);
        }
        if let Some(role) = p.role {
            set.insert("role", role);
        }
        // As LibreChat's updateUser: every update also clears a pending TTL.
        let updated = self
            .users
            .find_one_and_update(
                doc! {"_id": id},
                doc! { "$set": set, "$unset": { "expiresAt": "" } },
            )
            .projection(public_projection())
            .return_document(ReturnDocument::After)
            .await
            .map_err(|e| {
                if is_duplicate_key(&e) {
                    AuthError::AccountConflict
                } else {
                    e.into()
                }
            })?;
        updated.ok_or(AuthError::UserNotFound)
    }

    /// The user by `_id` as LibreChat's jwt strategy loads it; a missing `role` becomes `USER` and is
    /// saved, as LibreChat does.
    pub async fn find_public(&self, id: ObjectId) -> AuthResult<Option<Document>> {
        let Some(mut user) = self
            .users
            .find_one(doc! {"_id": id})
            .projection(public_projection())
            .await?
        else {
            return Ok(None);
        };
        if !matches!(user.get("role"), Some(mongodb::bson::Bson::String(r)) if !r.is_empty()) {
            self.users
                .update_one(doc! {"_id": id}, doc! {"$set": {"role": ROLE_USER}})
                .await?;
            user.insert("role", ROLE_USER);
        }
        Ok(Some(user))
    }

    /// The LibreChat user linked to a backend identity in a tenant.
    pub async fn find_id_by_source(
        &self,
        id_on_the_source: &str,
        tenant: Option<&str>,
    ) -> AuthResult<Option<ObjectId>> {
        let found = self
            .users
            .find_one(doc! { "provider": PROVIDER, "idOnTheSource": id_on_the_source, "tenantId": tenant_filter(tenant) })
            .projection(doc! {"_id": 1})
            .await?;
        Ok(found.and_then(|d| d.get_object_id("_id").ok()))
    }

    /// The LibreChat users linked to a backend identity, in one tenant (`Some`) or in every one
    /// (`None`), with each one's tenant.
    pub async fn find_by_source(
        &self,
        id_on_the_source: &str,
        tenant: Option<Option<&str>>,
    ) -> AuthResult<Vec<(ObjectId, Option<String>)>> {
        let mut filter = doc! { "provider": PROVIDER, "idOnTheSource": id_on_the_source };
        if let Some(t) = tenant {
            filter.insert("tenantId", tenant_filter(t));
        }
        let mut cursor = self
            .users
            .find(filter)
            .projection(doc! {"_id": 1, "tenantId": 1})
            .await?;
        let mut found = Vec::new();
        while cursor.advance().await? {
            let d = cursor.deserialize_current()?;
            if let Ok(id) = d.get_object_id("_id") {
                found.push((id, d.get_str("tenantId").ok().map(str::to_string)));
            }
        }
        Ok(found)
    }

    /// The start balance when `CHECK_BALANCE` and `START_BALANCE` ask for one and the user has
    /// no balance document, as LibreChat's `createUser` writes it. Run at every login, so that a
    /// balance a failed login could not write is written by the next one; an existing balance is
    /// never touched (`$setOnInsert` only). The new document's `_id` is the user's, so parallel
    /// logins cannot create two.
    async fn repair_balance(&self, user: &Document) -> AuthResult<()> {
        let (Some(amount), Ok(id)) = (self.start_balance, user.get_object_id("_id")) else {
            return Ok(());
        };
        let mut insert = doc! {
                        "_id": id,
                        "user": id,
                        "tokenCredits": amount,
                        "autoRefillEnabled": false,
                        "refillIntervalValue": 30,
                        "refillIntervalUnit": "days",
                        "refillAmount": 0,
                        "lastRefill": DateTime::now(),
                        "__v": 0,
        };
        // LibreChat's tenant plugin scopes the upsert, so the new balance carries the tenant.
        if let Some(t) = user.get("tenantId") {
            insert.insert("tenantId", t.clone());
        }
        let upsert = self
            .balances
            .update_one(doc! { "user": id }, doc! { "$setOnInsert": insert })
            .upsert(true)
            .await;
        match upsert {
            Ok(_) => Ok(()),
            // A parallel login inserted it; any other conflict is a failure.
            Err(e) if is_duplicate_key(&e) => {
                match self
                    .balances
                    .find_one(doc! { "user": id })
                    .projection(doc! {"_id": 1})
                    .await?
                {
                    Some(_) => Ok(()),
                    None => Err(e.into()),
                }
            }
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_fallbacks_and_lowercasing() {
        let policy = Policy {
            admin_roles: vec![],
            required_roles: vec![],
            allowed_email_domains: vec![],
            link_existing: LinkExisting::Never,
            keep_local_secrets: false,
        };
        let p = Profile::from_backend(
            &BackendUser {
                id: "7".into(),
                email: "Mixed.Case@Example.COM".into(),
                ..BackendUser::default()
            },
            &policy,
        );
        assert_eq!(p.email, "mixed.case@example.com");
        assert_eq!(p.username, "mixed.case");
        assert_eq!(p.name, "Mixed.Case");
    }

    #[test]
    fn item_8_4_case_folding_is_ascii_only() {
        assert_eq!(fold_case("Karol@Example.COM"), "karol@example.com");
        // KELVIN SIGN, ANGSTROM SIGN and OHM SIGN stay themselves: they never meet k, å or ω.
        assert_eq!(
            fold_case("\u{212A}arol@example.com"),
            "\u{212A}arol@example.com"
        );
        assert_ne!(
            fold_case("\u{212A}arol@example.com"),
            fold_case("karol@example.com")
        );
        assert_ne!(fold_case("\u{212B}se@x.io"), fold_case("\u{C5}se@x.io"));
        assert_ne!(fold_case("\u{2126}@x.io"), fold_case("\u{3A9}@x.io"));
        assert_eq!(fold_case("mal@\u{212A}ORP.com"), "mal@\u{212A}orp.com");
    }

    /// A backend user `7` (a@b.io), without role mapping, outside tenants.
    fn profile() -> Profile {
        Profile {
            id_on_the_source: "7".into(),
            email: "a@b.io".into(),
            username: "a".into(),
            name: "A".into(),
            avatar: None,
            role: None,
            tenant: None,
        }
    }

    #[test]
    fn issue_28_a_user_matching_the_backend_needs_no_write() {
        let p = Profile {
            role: Some(ROLE_USER),
            ..profile()
        };
        let stored = new_user_document(&p, ROLE_USER, DateTime::now());
        assert!(matches_profile(&stored, &p));
        let renamed = Profile {
            name: "B".into(),
            ..p.clone()
        };
        assert!(!matches_profile(&stored, &renamed));
        let promoted = Profile {
            role: Some(ROLE_ADMIN),
            ..p.clone()
        };
        assert!(!matches_profile(&stored, &promoted));
        let pictured = Profile {
            avatar: Some("https://x/a.png".into()),
            ..p.clone()
        };
        assert!(!matches_profile(&stored, &pictured));
        // Without a role mapping, whatever role the user has stays (sync would not set one).
        assert!(matches_profile(
            &stored,
            &Profile {
                role: None,
                ..p.clone()
            }
        ));
        let mut pending = stored.clone();
        pending.insert("expiresAt", DateTime::now());
        assert!(!matches_profile(&pending, &p));
    }

    #[test]
    fn new_document_has_librechat_defaults() {
        let p = profile();
        let d = new_user_document(&p, ROLE_USER, DateTime::now());
        assert!(d.get("tenantId").is_none());
        let keys = |d: &Document| d.keys().cloned().collect::<Vec<_>>();
        let in_tenant = new_user_document(
            &p.clone().in_tenant(Some("acme".into())),
            ROLE_USER,
            DateTime::now(),
        );
        // Where LibreChat's tenant plugin puts it: after `updatedAt`, before `__v`.
        assert_eq!(
            keys(&in_tenant)[keys(&in_tenant).len() - 2..],
            ["tenantId", "__v"]
        );
        assert_eq!(d.get_str("provider").unwrap(), PROVIDER);
        assert_eq!(d.get_i32("__v").unwrap(), 0);
        assert!(d.get_bool("emailVerified").unwrap());
        assert!(d.get("avatar").is_none());
        assert!(d
            .get_document("personalization")
            .unwrap()
            .get_object_id("_id")
            .is_ok());
    }
}
