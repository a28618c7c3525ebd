//! `librechat-custom-backend-auth doctor`: the effective configuration with secrets redacted
//! (`env.rs`), then one file per check: `NODE_ENV` as LibreChat starts (`node_env.rs`), the
//! backend URLs (`backend.rs`) and the circuit breaker's state after those probes (`breaker.rs`),
//! the database (`database.rs`) with LibreChat's models' indexes (`librechat_indexes.rs`), the
//! package's own (`own_indexes.rs`) and `MONGO_AUTO_INDEX` (`auto_index.rs`). Each check answers
//! lines of the report (`finding.rs`); the database checks share their reads (`mongo.rs`).
//!
//! Nothing here prints a secret, and no error text of the driver or of an HTTP answer is copied
//! (either may echo a connection string or a request).
//!
//! May use: shared, identity, config, tokens, backend, store.

mod accounts;
mod auto_index;
mod backend;
mod breaker;
mod database;
mod env;
mod finding;
mod index_spec;
mod librechat_indexes;
mod mongo;
mod node_env;
mod own_indexes;

use std::collections::HashMap;
use std::sync::Arc;

use crate::backend::breaker::Breakers;
use crate::config::Config;

use env::effective_config;
use finding::{finding, Finding, OK, PROBLEM};

/// The whole report: the effective configuration, then the checks. An invalid configuration is
/// the only problem when it does not validate.
pub async fn diagnose(vars: &HashMap<String, String>) -> (Vec<(String, String)>, Vec<Finding>) {
    let mut shown = effective_config(vars);
    if node_env::is_set(vars).is_none() {
        // Its default row speaks of development's cookies; the checks below run as production.
        if let Some(row) = shown.iter_mut().find(|(name, _)| name == "NODE_ENV") {
            row.1 = "(not set) checked as production, which `npm run backend` sets".into();
        }
    }
    let (checked, node_env) = node_env::as_started(vars);
    let mut findings: Vec<Finding> = node_env.into_iter().collect();
    match Config::from_vars(&checked) {
        Err(e) => findings.push(finding(
            PROBLEM,
            "configuration",
            format!("[{}] {}", e.code(), e),
        )),
        Ok(cfg) => {
            findings.push(finding(OK, "configuration", "valid"));
            findings.extend(accounts::check(vars));
            findings.extend(run(&cfg, &auto_index::read(vars)).await);
        }
    }
    (shown, findings)
}

/// The checks of a valid configuration: backend URLs and database, run concurrently; then the
/// breaker's state after the backend probes.
async fn run(cfg: &Config, auto: &auto_index::AutoIndex) -> Vec<Finding> {
    let breakers = Arc::new(Breakers::new(cfg.breaker, cfg.backend_urls()));
    let (mut out, db) = tokio::join!(
        backend::check_backend(cfg, &breakers),
        database::check_db(cfg, auto)
    );
    out.extend(breaker::check(cfg, &breakers));
    out.extend(db);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::sample_vars;

    #[tokio::test]
    async fn invalid_configuration_is_the_only_finding() {
        let mut vars = sample_vars();
        vars.insert("BACKEND_TIMEOUT_MS".into(), "0".into());
        vars.insert("BACKEND_ALLOW_INSECURE_HTTP".into(), "true".into());
        let (shown, findings) = diagnose(&vars).await;
        assert!(!shown.is_empty());
        assert_eq!(findings.len(), 2); // NODE_ENV checked as production, then the problem
        assert_eq!(findings[1].level, PROBLEM);
        assert!(findings[1]
            .detail
            .starts_with("[CONFIG_INVALID] BACKEND_TIMEOUT_MS:"));
    }

    #[tokio::test]
    async fn item_22_6_an_unset_node_env_is_shown_as_checked_not_as_developments_cookies() {
        let mut vars = sample_vars();
        vars.insert("BACKEND_TIMEOUT_MS".into(), "0".into()); // invalid: no network check runs
        let (shown, _) = diagnose(&vars).await;
        let row = shown
            .iter()
            .find(|(n, _)| n == "NODE_ENV")
            .map(|(_, v)| v.as_str());
        assert_eq!(
            row,
            Some("(not set) checked as production, which `npm run backend` sets")
        );
        vars.insert("NODE_ENV".into(), "development".into());
        let (shown, _) = diagnose(&vars).await;
        let row = shown
            .iter()
            .find(|(n, _)| n == "NODE_ENV")
            .map(|(_, v)| v.clone());
        assert_eq!(row.as_deref(), Some("development"));
    }
}
