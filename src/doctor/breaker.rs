//! The circuit breaker: its configuration, how it relates to the user-info budget, and the state
//! of each backend host's breaker after doctor's own probes of the backend URLs (`backend.rs`),
//! which go through a breaker configured as the service's.

use super::finding::{finding, Finding, INFO, OK, PROBLEM};
use crate::backend::breaker::{BreakerState, Breakers};
use crate::config::Config;

pub fn check(cfg: &Config, breakers: &Breakers) -> Vec<Finding> {
    let b = cfg.breaker;
    let mut out = Vec::new();
    if b.failures == 0 {
        out.push(finding(
            INFO,
            "breaker",
            format!(
                "off (BACKEND_BREAKER_FAILURES=0): a failing backend still receives every call; at most {} calls in flight per host and lane (BACKEND_MAX_PENDING)",
                b.max_pending
            ),
        ));
    } else {
        out.push(finding(
            OK,
            "breaker",
            format!(
                "each lane (login, token, session, keys) opens after {} failures in a row with no answer from the host in between (timeouts, connection errors, 5xx; a host that cannot be reached counts in every lane), then answers at once for {} ms, then lets {} probe call(s) through at a time; at most {} calls in flight per host and lane",
                b.failures,
                b.cooldown.as_millis(),
                b.probes,
                b.max_pending
            ),
        ));
    }
    if cfg.userinfo_budget.max_concurrent > b.max_pending {
        out.push(finding(
            INFO,
            "BACKEND_USERINFO_MAX_CONCURRENT",
            format!(
                "{} is above BACKEND_MAX_PENDING ({}): user-info calls are held to BACKEND_MAX_PENDING first",
                cfg.userinfo_budget.max_concurrent, b.max_pending
            ),
        ));
    }
    let states = breakers.states();
    let mut hosts: Vec<&str> = states.iter().map(|h| h.origin.as_str()).collect();
    hosts.dedup();
    for origin in hosts {
        let lanes: Vec<_> = states.iter().filter(|h| h.origin == origin).collect();
        let check = format!("breaker {origin}");
        if b.failures == 0 {
            out.push(finding(INFO, &check, "off"));
            continue;
        }
        if lanes
            .iter()
            .all(|h| h.state == BreakerState::Closed && h.failures == 0)
        {
            out.push(finding(OK, &check, "closed after doctor's probes"));
            continue;
        }
        for h in lanes {
            let check = format!("breaker {origin} {}", h.lane.name());
            let f = match h.state {
                BreakerState::Open => finding(
                    PROBLEM,
                    &check,
                    format!(
                        "open after doctor's probes: the service would answer its {} calls to this host at once (BACKEND_CIRCUIT_OPEN) for {} ms",
                        h.lane.name(),
                        b.cooldown.as_millis()
                    ),
                ),
                BreakerState::HalfOpen => finding(
                    INFO,
                    &check,
                    format!("{} after doctor's probes", h.state.name()),
                ),
                BreakerState::Closed if h.failures > 0 => finding(
                    INFO,
                    &check,
                    format!(
                        "closed after doctor's probes, {} of {} failures in a row",
                        h.failures, b.failures
                    ),
                ),
                BreakerState::Closed => continue,
            };
            out.push(f);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::breaker::{Lane, Outcome};
    use crate::config::tests::sample_vars;
    use std::sync::Arc;

    #[test]
    fn item_11_3_doctor_shows_the_configuration_and_each_hosts_state() {
        let mut vars = sample_vars();
        vars.insert("BACKEND_BREAKER_FAILURES".into(), "2".into());
        vars.insert("BACKEND_MAX_PENDING".into(), "10".into());
        let cfg = Config::from_vars(&vars).unwrap();
        let b = Arc::new(Breakers::new(cfg.breaker, cfg.backend_urls()));
        let url = cfg.auth_url.clone();
        let lines = |b: &Breakers| -> Vec<(String, String)> {
            check(&cfg, b)
                .into_iter()
                .map(|f| (format!("{} {}", f.level, f.check), f.detail))
                .collect()
        };
        let l = lines(&b);
        assert!(
            l[0].1.starts_with(
                "each lane (login, token, session, keys) opens after 2 failures in a row"
            ),
            "{l:?}"
        );
        assert_eq!(l[1].0, "info BACKEND_USERINFO_MAX_CONCURRENT");
        assert_eq!(
            l[2],
            (
                "ok breaker http://127.0.0.1:9".into(),
                "closed after doctor's probes".into()
            )
        );
        assert_eq!(l.len(), 3); // one host for the three URLs
        b.admit(&url, Lane::Login, false)
            .unwrap()
            .finish(Outcome::Failed);
        assert_eq!(
            lines(&b)[2],
            (
                "info breaker http://127.0.0.1:9 login".into(),
                "closed after doctor's probes, 1 of 2 failures in a row".into()
            )
        );
        assert_eq!(lines(&b).len(), 3); // the other lanes are clean: not listed
        b.admit(&url, Lane::Login, false)
            .unwrap()
            .finish(Outcome::Failed);
        let l = lines(&b);
        assert_eq!(l[2].0, "problem breaker http://127.0.0.1:9 login");
        assert!(l[2]
            .1
            .starts_with("open after doctor's probes: the service would answer its login calls"));
        vars.insert("BACKEND_BREAKER_FAILURES".into(), "0".into());
        let off = Config::from_vars(&vars).unwrap();
        let f = check(&off, &Breakers::new(off.breaker, off.backend_urls()));
        assert!(f[0].detail.starts_with("off (BACKEND_BREAKER_FAILURES=0)"));
        assert_eq!(f.last().unwrap().detail, "off");
    }
}
