//! The LibreChat user document: found by `provider` + `idOnTheSource`, created and updated exactly
//! as LibreChat's mongoose `User` model writes it, plus the start balance `createUser` grants.

use mongodb::bson::{doc, oid::ObjectId, DateTime, Document};
use mongodb::error::{ErrorKind, WriteFailure};
use mongodb::options::ReturnDocument;
use mongodb::{Collection, Database};

use crate::backend::BackendUser;
use crate::config::{LinkExisting, Policy};
use crate::error::{AuthError, AuthResult};

pub const PROVIDER: &str = "custom-backend";
pub const ROLE_ADMIN: &str = "ADMIN";
pub const ROLE_USER: &str = "USER";

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

/// What a backend user becomes in LibreChat's schema (lower-cased as mongoose's `lowercase` does).
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    pub id_on_the_source: String,
    pub email: String,
    pub username: String,
    pub name: String,
    pub avatar: Option<String>,
    /// The role the backend's roles give; `None` when no role mapping is configured.
    pub role: Option<&'static str>,
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
            email: u.email.to_lowercase(),
            username: username.to_lowercase(),
            name,
            avatar: u.avatar.clone(),
            role: policy.role(u),
        }
    }
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
        "__v": 0,
    });
    d
}

pub struct Users {
    users: Collection<Document>,
    balances: Collection<Document>,
    start_balance: Option<i64>,
    link_existing: LinkExisting,
}

fn is_duplicate_key(e: &mongodb::error::Error) -> bool {
    match &*e.kind {
        ErrorKind::Write(WriteFailure::WriteError(w)) => w.code == 11000,
        ErrorKind::Command(c) => c.code == 11000,
        _ => false,
    }
}

impl Users {
    pub fn new(
        db: &Database,
        balance_enabled: bool,
        start_balance: i64,
        link_existing: LinkExisting,
    ) -> Users {
        Users {
            users: db.collection("users"),
            balances: db.collection("balances"),
            start_balance: (balance_enabled && start_balance > 0).then_some(start_balance),
            link_existing,
        }
    }

    /// Creates or updates the LibreChat user for a backend identity. Returns the stored document
    /// without secret fields.
    pub async fn sync(&self, p: &Profile) -> AuthResult<Document> {
        let key = doc! { "provider": PROVIDER, "idOnTheSource": &p.id_on_the_source };
        if let Some(existing) = self
            .users
            .find_one(key.clone())
            .projection(doc! {"_id": 1})
            .await?
        {
            return self.update(&existing, p).await;
        }
        // Never take over another account that owns the email (LibreChat refuses a provider
        // mismatch), unless the operator opted in to linking accounts of other providers by email.
        if let Some(owner) = self
            .users
            .find_one(doc! { "email": &p.email })
            .projection(doc! {"_id": 1, "provider": 1})
            .await?
        {
            let other_provider = owner.get_str("provider").unwrap_or_default() != PROVIDER;
            if self.link_existing == LinkExisting::Email && other_provider {
                return self.update(&owner, p).await;
            }
            return Err(AuthError::AccountConflict);
        }
        let role = match p.role {
            Some(role) => role,
            None => {
                let first = self
                    .users
                    .find_one(doc! {})
                    .projection(doc! {"_id": 1})
                    .await?
                    .is_none();
                if first {
                    ROLE_ADMIN
                } else {
                    ROLE_USER
                }
            }
        };
        let mut user = new_user_document(p, role, DateTime::now());
        match self.users.insert_one(&user).await {
            Ok(_) => {}
            Err(e) if is_duplicate_key(&e) => {
                // A concurrent first login of the same identity won; use its document.
                return match self.users.find_one(key).projection(doc! {"_id": 1}).await? {
                    Some(existing) => self.update(&existing, p).await,
                    None => Err(AuthError::AccountConflict),
                };
            }
            Err(e) => return Err(e.into()),
        }
        if let (Some(amount), Ok(id)) = (self.start_balance, user.get_object_id("_id")) {
            self.grant_start_balance(id, amount).await?;
        }
        for k in HIDDEN_FIELDS {
            user.remove(k);
        }
        Ok(user)
    }

    async fn update(&self, existing: &Document, p: &Profile) -> AuthResult<Document> {
        let id = existing
            .get_object_id("_id")
            .map_err(|_| AuthError::Internal("user without ObjectId".into()))?;
        if self
            .users
            .find_one(doc! { "email": &p.email, "_id": { "$ne": id } })
            .projection(doc! {"_id": 1})
            .await?
            .is_some()
        {
            return Err(AuthError::AccountConflict);
        }
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

    /// The LibreChat user linked to a backend identity.
    pub async fn find_id_by_source(&self, id_on_the_source: &str) -> AuthResult<Option<ObjectId>> {
        let found = self
            .users
            .find_one(doc! { "provider": PROVIDER, "idOnTheSource": id_on_the_source })
            .projection(doc! {"_id": 1})
            .await?;
        Ok(found.and_then(|d| d.get_object_id("_id").ok()))
    }

    /// `createUser`'s balance upsert, with the `$setOnInsert` defaults mongoose adds.
    async fn grant_start_balance(&self, user: ObjectId, amount: i64) -> AuthResult<()> {
        self.balances
            .update_one(
                doc! { "user": user },
                doc! {
                    "$inc": { "tokenCredits": amount },
                    "$setOnInsert": {
                        "user": user,
                        "autoRefillEnabled": false,
                        "refillIntervalValue": 30,
                        "refillIntervalUnit": "days",
                        "refillAmount": 0,
                        "lastRefill": DateTime::now(),
                        "__v": 0,
                    },
                },
            )
            .upsert(true)
            .await?;
        Ok(())
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
    fn new_document_has_librechat_defaults() {
        let p = Profile {
            id_on_the_source: "7".into(),
            email: "a@b.io".into(),
            username: "a".into(),
            name: "A".into(),
            avatar: None,
            role: None,
        };
        let d = new_user_document(&p, ROLE_USER, DateTime::now());
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
