//! One line of doctor's report, and its levels.

pub const OK: &str = "ok";
pub const PROBLEM: &str = "problem";
pub const INFO: &str = "info";

/// One line of the report. `check` names what was checked (a variable, `database`, a collection).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub level: &'static str,
    pub check: String,
    pub detail: String,
}

pub fn finding(level: &'static str, check: &str, detail: impl Into<String>) -> Finding {
    Finding {
        level,
        check: check.to_string(),
        detail: detail.into(),
    }
}
