//! LibreChat's own account routes while the backend owns the accounts. The wiring hides sign-up and
//! password reset on the login page, but LibreChat's `POST /api/auth/register` still creates a
//! local account when `ALLOW_REGISTRATION=true` (the default in its `.env.example`, v0.8.8-rc1).
//! Such an account can take a backend user's email first: that user's login then meets an account
//! conflict (409), or with `BACKEND_LINK_EXISTING=email` takes over an account someone else made.

use std::collections::HashMap;

use super::finding::{finding, Finding, INFO, PROBLEM};

/// LibreChat's `isEnabled` on a raw value: `true` in any case, trimmed.
fn enabled(vars: &HashMap<String, String>, name: &str) -> bool {
    vars.get(name)
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

pub fn check(vars: &HashMap<String, String>) -> Vec<Finding> {
    if !enabled(vars, "USE_CUSTOM_BACKEND_AUTH") {
        return vec![finding(
            INFO,
            "USE_CUSTOM_BACKEND_AUTH",
            "is not true: LibreChat runs its own login (the wiring's switch, docs/install.md)",
        )];
    }
    let mut out = Vec::new();
    if enabled(vars, "ALLOW_REGISTRATION") {
        out.push(finding(
            PROBLEM,
            "ALLOW_REGISTRATION",
            "is true: LibreChat's /api/auth/register still creates local accounts, which can take a backend user's email before that user's first login; set ALLOW_REGISTRATION=false",
        ));
    }
    if enabled(vars, "ALLOW_PASSWORD_RESET") {
        out.push(finding(
            INFO,
            "ALLOW_PASSWORD_RESET",
            "is true: LibreChat's password reset serves only local accounts, which cannot log in while the switch is on; set ALLOW_PASSWORD_RESET=false",
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn item_10_1_open_registration_is_a_problem_while_the_switch_is_on() {
        let on = ("USE_CUSTOM_BACKEND_AUTH", " TRUE ");
        let found = check(&vars(&[on, ("ALLOW_REGISTRATION", "true")]));
        assert_eq!(found.len(), 1);
        assert_eq!(
            (found[0].level, found[0].check.as_str()),
            (PROBLEM, "ALLOW_REGISTRATION")
        );
        assert!(check(&vars(&[on, ("ALLOW_REGISTRATION", "false")])).is_empty());
        assert!(check(&vars(&[on])).is_empty());
        let reset = check(&vars(&[on, ("ALLOW_PASSWORD_RESET", "True")]));
        assert_eq!(
            (reset[0].level, reset[0].check.as_str()),
            (INFO, "ALLOW_PASSWORD_RESET")
        );
        // Switch off: LibreChat's own login; its registration is its business.
        let off = check(&vars(&[("ALLOW_REGISTRATION", "true")]));
        assert_eq!((off.len(), off[0].level), (1, INFO));
    }
}
