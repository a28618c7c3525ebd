//! `MONGO_AUTO_INDEX`: whether LibreChat creates its models' indexes when it starts. LibreChat
//! (`api/db/connect.js`, v0.8.8-rc1) passes mongoose `autoIndex: isEnabled(value)` whenever the
//! variable is defined, so anything but `true` (case-insensitive) turns index creation off, the
//! empty value of its `.env.example` included; only unset leaves mongoose's default (on).

use std::collections::HashMap;

use super::finding::{finding, Finding, INFO, PROBLEM};

pub const VAR: &str = "MONGO_AUTO_INDEX";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AutoIndex {
    Unset,
    On,
    /// How the value is shown (it is no secret).
    Off(String),
}

pub fn read(vars: &HashMap<String, String>) -> AutoIndex {
    match vars.get(VAR) {
        None => AutoIndex::Unset,
        Some(v) if v.trim().eq_ignore_ascii_case("true") => AutoIndex::On,
        Some(v) if v.trim().is_empty() => {
            AutoIndex::Off("empty (as in LibreChat's .env.example)".into())
        }
        Some(v) => AutoIndex::Off(format!("\"{}\"", v.chars().take(40).collect::<String>())),
    }
}

/// The line naming why LibreChat's indexes are missing, or warning that they will be after an
/// upgrade. `required`: missing ones every LibreChat since v0.7.9 defines; `newer`: missing ones
/// only newer LibreChat defines (a missing collection counts with all its indexes).
pub fn cause(auto: &AutoIndex, required: usize, newer: usize) -> Option<Finding> {
    // Counted apart: the LibreChat in use may define fewer than this package knows of.
    let counts = if newer == 0 {
        format!("{required}")
    } else {
        format!("{required}, and {newer} that only a newer LibreChat defines")
    };
    match (auto, required, newer) {
        (AutoIndex::Off(shown), 0, 0) => Some(finding(
            INFO,
            VAR,
            format!(
                "is {shown}: LibreChat creates no indexes; the ones checked are present, but the new indexes of a LibreChat upgrade will not be created: set {VAR}=true for the first start after an upgrade"
            ),
        )),
        (AutoIndex::Off(shown), 0, _) => Some(finding(
            INFO,
            VAR,
            format!(
                "is {shown}, which turns LibreChat's index creation off: the {newer} missing indexes are ones only newer LibreChat defines; if the LibreChat in use defines them, this is why: set {VAR}=true and start LibreChat once, or create them with the commands above"
            ),
        )),
        (AutoIndex::Off(shown), _, _) => Some(finding(
            PROBLEM,
            VAR,
            format!(
                "is {shown}, which turns LibreChat's index creation off (anything but true does): that is why its indexes are missing ({counts}). Set {VAR}=true and start LibreChat once (it creates every model's indexes, on all its collections; keep it, or set it back afterwards), or create them with the commands above"
            ),
        )),
        (_, 0, _) => None,
        (state, _, _) => Some(finding(
            INFO,
            VAR,
            format!(
                "{}: LibreChat creates its models' indexes when it starts, so the missing ones ({counts}) were never created by the LibreChat in use: start it once against this database, or create them with the commands above (indexes only a newer LibreChat defines come with the upgrade)",
                if *state == AutoIndex::On { "is true" } else { "not set" }
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(v: Option<&str>) -> AutoIndex {
        let mut vars = HashMap::new();
        if let Some(v) = v {
            vars.insert(VAR.to_string(), v.to_string());
        }
        read(&vars)
    }

    #[test]
    fn item_10_6_read_as_librechat_reads_it() {
        assert_eq!(with(None), AutoIndex::Unset);
        assert_eq!(with(Some(" TRUE ")), AutoIndex::On);
        assert!(matches!(with(Some("")), AutoIndex::Off(s) if s.starts_with("empty")));
        assert_eq!(with(Some("1")), AutoIndex::Off("\"1\"".into()));
        assert_eq!(with(Some("yes")), AutoIndex::Off("\"yes\"".into()));
        let off = with(Some(""));
        let f = cause(&off, 3, 1).unwrap();
        assert_eq!((f.level, f.check.as_str()), (PROBLEM, VAR));
        assert!(f.detail.contains(
            "that is why its indexes are missing (3, and 1 that only a newer LibreChat defines). Set MONGO_AUTO_INDEX=true and start LibreChat once"
        ));
        assert_eq!(cause(&off, 0, 0).unwrap().level, INFO);
        assert_eq!(cause(&off, 0, 2).unwrap().level, INFO);
        assert_eq!(cause(&AutoIndex::Unset, 0, 0), None);
        // Only indexes newer LibreChat defines are missing: nothing to say.
        assert_eq!(cause(&AutoIndex::Unset, 0, 1), None);
        assert_eq!(cause(&AutoIndex::On, 2, 0).unwrap().level, INFO);
    }
}
