//! `NODE_ENV` as LibreChat starts: `npm run backend` (and so LibreChat's Docker image, whose CMD
//! runs it) sets `NODE_ENV=production` (`cross-env` in LibreChat's package.json, v0.8.8-rc1), over
//! whatever `.env` says, since dotenv does not override a set variable. A configuration checked
//! without it (an `http://` backend URL) may then be refused at start. So: unset, doctor checks
//! as production and says so; set to something else, it checks as set and says what production
//! will do.

use std::borrow::Cow;
use std::collections::HashMap;

use super::finding::{finding, Finding, INFO};
use crate::config::Config;

const VAR: &str = "NODE_ENV";

pub(super) fn is_set(vars: &HashMap<String, String>) -> Option<&str> {
    vars.get(VAR).map(|v| v.trim()).filter(|v| !v.is_empty())
}

/// The variables to check (with `NODE_ENV=production` when it is unset), and the line saying so.
pub fn as_started(
    vars: &HashMap<String, String>,
) -> (Cow<'_, HashMap<String, String>>, Option<Finding>) {
    match is_set(vars) {
        None => {
            let mut v = vars.clone();
            v.insert(VAR.into(), "production".into());
            let line = finding(
                INFO,
                VAR,
                "not set here: checked as production, which `npm run backend` and LibreChat's Docker image set (set NODE_ENV=development to check for `npm run backend:dev`)",
            );
            (Cow::Owned(v), Some(line))
        }
        Some("production") => (Cow::Borrowed(vars), None),
        Some(other) => {
            let mut v = vars.clone();
            v.insert(VAR.into(), "production".into());
            let under_production = match Config::from_vars(&v) {
                Ok(_) => "accepts this configuration too".to_string(),
                Err(e) => format!("refuses it at start: [{}] {}", e.code(), e),
            };
            let line = finding(
                INFO,
                VAR,
                format!(
                    "is \"{}\": checked as such, but `npm run backend` and LibreChat's Docker image start with NODE_ENV=production, whatever .env says; production {under_production}",
                    other.chars().take(40).collect::<String>()
                ),
            );
            (Cow::Borrowed(vars), Some(line))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::sample_vars;

    #[test]
    fn item_10_6_checked_as_production_when_unset() {
        let vars = sample_vars(); // http:// backend URLs, no NODE_ENV
        let (checked, line) = as_started(&vars);
        assert_eq!(
            checked.get("NODE_ENV").map(String::as_str),
            Some("production")
        );
        assert!(line
            .unwrap()
            .detail
            .starts_with("not set here: checked as production"));
        assert!(Config::from_vars(&checked).is_err());

        let mut dev = sample_vars();
        dev.insert("NODE_ENV".into(), "development".into());
        let (checked, line) = as_started(&dev);
        assert_eq!(
            checked.get("NODE_ENV").map(String::as_str),
            Some("development")
        );
        let line = line.unwrap();
        assert_eq!(line.level, INFO);
        assert!(
            line.detail.contains("production refuses it at start: [CONFIG_INVALID] BACKEND_AUTH_URL: must use https://"),
            "{}",
            line.detail
        );

        let mut prod = dev.clone();
        prod.insert("NODE_ENV".into(), "production".into());
        assert!(as_started(&prod).1.is_none());
    }
}
