//! The flows: login (backend → user sync → session). One `Service` per configuration, shared by
//! every request; the MongoDB client is built on first use, inside the async runtime.

use std::collections::HashMap;

use mongodb::bson::{oid::ObjectId, Bson, Document};
use mongodb::options::ClientOptions;
use serde_json::Value;
use tokio::sync::OnceCell;

use crate::backend::{Backend, BackendUser};
use crate::config::Config;
use crate::error::{AuthError, AuthResult};
use crate::sessions::Sessions;
use crate::tokens::{AccessSubject, Tokens};
use crate::users::{Profile, Users, PROVIDER};

/// Bounds of the login form fields (LibreChat caps passwords at 128; backends may allow more).
pub const MAX_USERNAME_CHARS: usize = 256;
pub const MAX_PASSWORD_CHARS: usize = 1024;

struct Db {
    client: mongodb::Client,
    users: Users,
    sessions: Sessions,
}

pub struct Service {
    pub config: Config,
    backend: Backend,
    tokens: Tokens,
    db: OnceCell<Db>,
}

/// What a login ends in.
pub enum LoginOutcome {
    /// A LibreChat session was started.
    Session {
        user: Document,
        token: String,
        refresh_token: String,
        refresh_expires_at_ms: i64,
    },
    /// The user has 2FA: LibreChat's second step takes over with the temp token.
    TwoFactorPending { user: Document, temp_token: String },
}

/// Reads `email` (LibreChat's form name; it may hold a username) or `username`, and `password`.
pub fn login_fields(body: &Value) -> AuthResult<(String, String)> {
    let field = |name: &str| body.get(name).filter(|v| !v.is_null());
    let username = match field("email").or_else(|| field("username")) {
        None => return Err(AuthError::BadRequest("Username or email is required.".into())),
        Some(Value::String(s)) => s.trim().to_string(),
        Some(_) => return Err(AuthError::BadRequest("Username or email must be a string.".into())),
    };
    if username.is_empty() {
        return Err(AuthError::BadRequest("Username or email is required.".into()));
    }
    if username.chars().count() > MAX_USERNAME_CHARS {
        return Err(AuthError::BadRequest(format!(
            "Username or email must be at most {MAX_USERNAME_CHARS} characters."
        )));
    }
    let password = match field("password") {
        None => return Err(AuthError::BadRequest("Password is required.".into())),
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(AuthError::BadRequest("Password must be a string.".into())),
    };
    if password.trim().is_empty() {
        return Err(AuthError::BadRequest("Password is required.".into()));
    }
    if password.chars().count() > MAX_PASSWORD_CHARS {
        return Err(AuthError::BadRequest(format!(
            "Password must be at most {MAX_PASSWORD_CHARS} characters."
        )));
    }
    Ok((username, password))
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
    pub fn new(vars: &HashMap<String, String>) -> AuthResult<Service> {
        let config = Config::from_vars(vars)?;
        Ok(Service {
            backend: Backend::new(&config)?,
            tokens: Tokens::new(
                &config.jwt_secret,
                &config.jwt_refresh_secret,
                config.session_expiry_ms,
            ),
            config,
            db: OnceCell::new(),
        })
    }

    async fn db(&self) -> AuthResult<&Db> {
        self.db
            .get_or_try_init(|| async {
                // The URI is never echoed: it may hold a password.
                let mut opts = ClientOptions::parse(&self.config.mongo_uri)
                    .await
                    .map_err(|e| match *e.kind {
                        mongodb::error::ErrorKind::DnsResolve { .. } => AuthError::DbUnavailable,
                        _ => AuthError::config("MONGO_URI", "is not a valid MongoDB connection string"),
                    })?;
                opts.server_selection_timeout = Some(self.config.db_timeout);
                opts.connect_timeout = Some(self.config.db_timeout);
                opts.app_name = Some("librechat-custom-backend-auth".into());
                let client = mongodb::Client::with_options(opts)?;
                let db = client
                    .default_database()
                    .unwrap_or_else(|| client.database("test"));
                Ok(Db {
                    users: Users::new(&db, self.config.balance_enabled, self.config.start_balance),
                    sessions: Sessions::new(
                        &db,
                        &self.config.token_encryption_key,
                        self.config.refresh_token_expiry_ms,
                    ),
                    client,
                })
            })
            .await
    }

    /// The backend's user for a fresh login: from the login answer when it carries id and email,
    /// else from user info with the new access token.
    async fn login_user(&self, answer_user: Option<BackendUser>, access: &str) -> AuthResult<BackendUser> {
        if let Some(u) = answer_user {
            return Ok(u);
        }
        self.backend.userinfo(access).await?.ok_or_else(|| {
            AuthError::BackendBadResponse("user info refused the new access token".into())
        })
    }

    pub async fn login(&self, body: &Value) -> AuthResult<LoginOutcome> {
        let (username, password) = login_fields(body)?;
        let answer = self.backend.login(&username, &password).await?;
        let backend_user = self
            .login_user(answer.user, &answer.tokens.access_token)
            .await?;
        let profile = Profile::from_backend(&backend_user);
        let db = self.db().await?;
        let user = db.users.sync(&profile).await?;
        let user_id = user
            .get_object_id("_id")
            .map_err(|_| AuthError::Internal("user without ObjectId".into()))?;
        if user.get_bool("twoFactorEnabled").unwrap_or(false) {
            return Ok(LoginOutcome::TwoFactorPending {
                temp_token: self.tokens.two_fa_temp_token(&user_id.to_hex())?,
                user,
            });
        }
        let token = self.access_token_for(&user, user_id)?;
        let session = db
            .sessions
            .create(&self.tokens, user_id, &answer.tokens)
            .await?;
        Ok(LoginOutcome::Session {
            user,
            token,
            refresh_token: session.refresh_token,
            refresh_expires_at_ms: session.expires_at_ms,
        })
    }

    fn access_token_for(&self, user: &Document, id: ObjectId) -> AuthResult<String> {
        self.tokens.access_token(&AccessSubject {
            id: &id.to_hex(),
            username: user.get_str("username").unwrap_or_default(),
            provider: user.get_str("provider").unwrap_or(PROVIDER),
            email: user.get_str("email").unwrap_or_default(),
        })
    }

    pub async fn close(&self) {
        if let Some(db) = self.db.get() {
            db.client.clone().shutdown().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn code(r: AuthResult<(String, String)>) -> &'static str {
        r.err().map(|e| e.code()).unwrap_or("OK")
    }

    #[test]
    fn login_fields_are_validated() {
        assert_eq!(
            login_fields(&json!({"email":" Alice ","password":"pw"})).unwrap(),
            ("Alice".to_string(), "pw".to_string())
        );
        assert_eq!(code(login_fields(&json!({"username":"a","password":"pw"}))), "OK");
        assert_eq!(code(login_fields(&json!({"password":"pw"}))), "BAD_REQUEST");
        assert_eq!(code(login_fields(&json!({"email":"  ","password":"pw"}))), "BAD_REQUEST");
        assert_eq!(code(login_fields(&json!({"email":"a","password":"   "}))), "BAD_REQUEST");
        assert_eq!(code(login_fields(&json!({"email":["a"],"password":"pw"}))), "BAD_REQUEST");
        assert_eq!(code(login_fields(&json!({"email":"a","password":123}))), "BAD_REQUEST");
        let long = "x".repeat(MAX_USERNAME_CHARS + 1);
        assert_eq!(code(login_fields(&json!({"email":long,"password":"pw"}))), "BAD_REQUEST");
        let long = "x".repeat(MAX_PASSWORD_CHARS + 1);
        assert_eq!(code(login_fields(&json!({"email":"a","password":long}))), "BAD_REQUEST");
        assert_eq!(code(login_fields(&json!("not an object"))), "BAD_REQUEST");
    }

    #[test]
    fn user_ejson_adds_id_and_keeps_types() {
        let id = ObjectId::new();
        let s = user_ejson(mongodb::bson::doc! {"_id": id, "createdAt": mongodb::bson::DateTime::now()})
            .unwrap();
        let v: Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v["id"], id.to_hex());
        assert_eq!(v["_id"]["$oid"], id.to_hex());
        assert!(v["createdAt"]["$date"].is_string());
    }
}
