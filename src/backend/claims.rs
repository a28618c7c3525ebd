//! What a backend token's claims (JWKS) or an introspection answer say about its user: the mapping
//! used for them and the verdict the bearer check returns.

use serde_json::Value;

use crate::backend::client::{first_string, map_id, map_roles, map_user};
use crate::config::{Config, Mapping};
use crate::identity::BackendUser;
use crate::shared::error::AuthResult;

/// The outcome of checking a backend token, as cached.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// The backend vouches for this identity.
    Valid(BackendUser),
    /// The backend (or the JWKS) refuses the token; the reason is safe to show.
    Refused(String),
}

/// The mapping for token claims (JWKS) and introspection answers: the configured id claim, and the
/// standard user-name claim tried last.
pub fn claims_mapping(cfg: &Config) -> Mapping {
    let mut m = cfg.mapping.clone();
    if let Some(j) = &cfg.jwks {
        m.user_id = vec![j.id_claim.clone()];
        m.user_username.push("preferred_username".into());
    }
    if let Some(i) = &cfg.introspection {
        m.user_id = vec![i.id_claim.clone()];
        if !m.user_username.iter().any(|p| p == "username") {
            m.user_username.push("username".into());
        }
    }
    m
}

pub fn identity_from_claims(claims: &Value, mapping: &Mapping) -> AuthResult<Verdict> {
    let Some(id) = map_id(claims, mapping) else {
        return Ok(Verdict::Refused("token names no user".into()));
    };
    // A known user needs only the id; provisioning needs the email and checks it again.
    Ok(Verdict::Valid(map_user(claims, mapping).unwrap_or_else(
        |_| BackendUser {
            id,
            roles: map_roles(claims, mapping),
            tenant: first_string(claims, &mapping.user_tenant),
            ..BackendUser::default()
        },
    )))
}
