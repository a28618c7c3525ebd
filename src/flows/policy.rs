//! Who may log in and as which LibreChat role: email domains, required roles, admin roles.

use crate::config::Policy;
use crate::identity::BackendUser;
use crate::identity::{fold_case, ROLE_ADMIN, ROLE_USER};
use crate::shared::error::{AuthError, AuthResult};

impl Policy {
    /// Refuses a backend user the configuration does not allow (403, before anything is written).
    pub fn admit(&self, u: &BackendUser) -> AuthResult<()> {
        if !self.allowed_email_domains.is_empty() {
            // The domain of exactly the address that is stored (same case folding).
            let email = fold_case(&u.email);
            let domain = email.rsplit_once('@').map(|(_, d)| d).unwrap_or_default();
            if !self.allowed_email_domains.iter().any(|d| d == domain) {
                return Err(denied(
                    u,
                    "The email domain of your account is not allowed to use this LibreChat.",
                ));
            }
        }
        if !self.required_roles.is_empty()
            && !u.roles.iter().any(|r| self.required_roles.contains(r))
        {
            return Err(denied(
                u,
                "Your account does not have a role required to use this LibreChat.",
            ));
        }
        Ok(())
    }

    /// The LibreChat role the backend roles give, when admin roles are configured. `None` leaves
    /// LibreChat's own rule (the first user is ADMIN; later changes are the administrators').
    pub fn role(&self, u: &BackendUser) -> Option<&'static str> {
        if self.admin_roles.is_empty() {
            return None;
        }
        Some(if u.roles.iter().any(|r| self.admin_roles.contains(r)) {
            ROLE_ADMIN
        } else {
            ROLE_USER
        })
    }
}

fn denied(u: &BackendUser, message: &str) -> AuthError {
    AuthError::AccessDenied {
        message: message.into(),
        backend_id: Some(u.id.clone()),
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{LinkExisting, Policy};

    use super::*;

    fn user(email: &str, roles: &[&str]) -> BackendUser {
        BackendUser {
            id: "1".into(),
            email: email.into(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            ..BackendUser::default()
        }
    }

    fn policy(admin: &[&str], required: &[&str], domains: &[&str]) -> Policy {
        let list = |l: &[&str]| l.iter().map(|s| s.to_string()).collect();
        Policy {
            admin_roles: list(admin),
            required_roles: list(required),
            allowed_email_domains: list(domains),
            link_existing: LinkExisting::Never,
            keep_local_secrets: false,
        }
    }

    #[test]
    fn domains_and_required_roles() {
        let p = policy(&[], &["staff"], &["example.com"]);
        assert!(p.admit(&user("a@Example.COM", &["staff"])).is_ok());
        assert!(p.admit(&user("a@evil.com", &["staff"])).is_err());
        assert!(p
            .admit(&user("a@example.com.evil.com", &["staff"]))
            .is_err());
        assert!(p.admit(&user("a@example.com", &["guest"])).is_err());
        assert!(policy(&[], &[], &[]).admit(&user("a@x.io", &[])).is_ok());
    }

    #[test]
    fn item_8_4_a_kelvin_sign_domain_is_not_the_ascii_domain() {
        let p = policy(&[], &[], &["korp.com"]);
        assert!(p.admit(&user("mal@\u{212A}orp.com", &[])).is_err());
        assert!(p.admit(&user("mal@KORP.com", &[])).is_ok());
    }

    #[test]
    fn item_14_19_domain_list_excludes_subdomains_and_ignores_a_leading_at() {
        // As configured: `@corp.example` in BACKEND_ALLOWED_EMAIL_DOMAINS.
        let mut vars = crate::config::tests::sample_vars();
        vars.insert(
            "BACKEND_ALLOWED_EMAIL_DOMAINS".into(),
            "@corp.example, Example.COM".into(),
        );
        let p = crate::config::Config::from_vars(&vars).unwrap().policy;
        assert!(p.admit(&user("a@corp.example", &[])).is_ok());
        assert!(p.admit(&user("a@CORP.example", &[])).is_ok());
        assert!(p.admit(&user("a@example.com", &[])).is_ok());
        for refused in [
            "a@sub.corp.example",
            "a@mail.example.com",
            "a@xcorp.example",
            "a@corp.example.org",
            "a@corp.example.",
            "a@@corp.example.evil",
            "corp.example",
            "a@",
        ] {
            assert!(p.admit(&user(refused, &[])).is_err(), "{refused}");
        }
        // The `@` itself is not part of the domain compared.
        assert!(!p.allowed_email_domains.iter().any(|d| d.starts_with('@')));
    }

    #[test]
    fn item_14_19_roles_are_case_sensitive() {
        let p = policy(&["Admin"], &["Staff"], &[]);
        assert!(p.admit(&user("a@x.io", &["Staff"])).is_ok());
        for other in ["staff", "STAFF", " Staff", "Staff "] {
            assert!(p.admit(&user("a@x.io", &[other])).is_err(), "{other:?}");
        }
        assert_eq!(
            p.role(&user("a@x.io", &["Staff", "Admin"])),
            Some(ROLE_ADMIN)
        );
        assert_eq!(
            p.role(&user("a@x.io", &["Staff", "admin"])),
            Some(ROLE_USER)
        );
        assert_eq!(
            p.role(&user("a@x.io", &["Staff", "ADMIN"])),
            Some(ROLE_USER)
        );
    }

    #[test]
    fn roles_map_only_when_configured() {
        assert_eq!(
            policy(&[], &[], &[]).role(&user("a@x.io", &["admin"])),
            None
        );
        let p = policy(&["admin"], &[], &[]);
        assert_eq!(p.role(&user("a@x.io", &["admin", "x"])), Some(ROLE_ADMIN));
        assert_eq!(p.role(&user("a@x.io", &["x"])), Some(ROLE_USER));
    }
}
