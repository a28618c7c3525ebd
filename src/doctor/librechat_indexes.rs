//! The indexes LibreChat's models define on the collections the package reads and writes
//! (`users`, `sessions`, `balances`), exactly as `@librechat/data-schemas` 0.0.71 defines them
//! (`schema.indexes()` of `createModels`; `__test__/doctor.spec.js` compares this list with the
//! installed data-schemas at test time, so it cannot drift unnoticed).
//!
//! LibreChat's versions differ: v0.7.9 to v0.8.4 define `unique {email: 1}` and `unique sparse`
//! provider ids, v0.8.5 added `tenantId` to them, and only data-schemas 0.0.71 (after LibreChat
//! v0.8.8-rc1, commit 0ab3414c, whose source is data-schemas 0.0.68) defines `unique {user: 1,
//! refreshTokenHash: 1}` on `sessions`. So an index that every LibreChat from v0.7.9 defines, in
//! the current or an older form, is required (missing: PROBLEM); one that only newer LibreChat
//! defines is reported as INFO when missing (a healthy older database lacks it).

use mongodb::bson::{doc, Document};

/// The provider-id fields of LibreChat's user schema, each with an index of its own.
const PROVIDER_ID_FIELDS: [&str; 8] = [
    "googleId",
    "facebookId",
    "openidId",
    "samlId",
    "ldapId",
    "githubId",
    "discordId",
    "appleId",
];

use super::finding::{finding, Finding, INFO, OK, PROBLEM};
use super::index_spec::{describe_index, fmt_keys, index_name, IndexSpec};

/// The data-schemas version this list was taken from and is tested against.
pub const DATA_SCHEMAS_VERSION: &str = "0.0.71";

/// LibreChat's collections whose indexes are checked.
pub const COLLECTIONS: [&str; 3] = ["users", "sessions", "balances"];

pub struct Expected {
    pub collection: &'static str,
    pub spec: IndexSpec,
    /// What older LibreChat defines in its place (accepted), with the versions that do.
    pub older: Vec<(IndexSpec, &'static str)>,
    /// `None`: every LibreChat since v0.7.9 defines it. `Some(v)`: the first that does.
    pub since: Option<&'static str>,
}

fn e(collection: &'static str, spec: IndexSpec) -> Expected {
    Expected {
        collection,
        spec,
        older: vec![],
        since: None,
    }
}

impl Expected {
    fn or(mut self, spec: IndexSpec, versions: &'static str) -> Self {
        self.older.push((spec, versions));
        self
    }
    fn since(mut self, version: &'static str) -> Self {
        self.since = Some(version);
        self
    }
}

const UP_TO_0_8_4: &str = "LibreChat v0.7.9 to v0.8.4";

/// In the order of `schema.indexes()`.
pub fn expected() -> Vec<Expected> {
    let mut list = vec![
        e("users", IndexSpec::new(doc! {"email": 1}))
            .or(IndexSpec::new(doc! {"email": 1}).unique(), UP_TO_0_8_4),
        e("users", IndexSpec::new(doc! {"expiresAt": 1}).ttl(604_800)),
        e("users", IndexSpec::new(doc! {"idOnTheSource": 1}).sparse()).since("LibreChat v0.8.0"),
        e("users", IndexSpec::new(doc! {"tenantId": 1})).since("LibreChat v0.8.5"),
        e(
            "users",
            IndexSpec::new(doc! {"email": 1, "tenantId": 1}).unique(),
        )
        .or(IndexSpec::new(doc! {"email": 1}).unique(), UP_TO_0_8_4),
        e("users", IndexSpec::new(doc! {"role": 1, "tenantId": 1})).since("LibreChat v0.8.5"),
        e(
            "users",
            IndexSpec::new(doc! {"idOnTheSource": 1, "openidIssuer": 1, "tenantId": 1}),
        )
        .since("LibreChat v0.8.6"),
    ];
    for field in PROVIDER_ID_FIELDS {
        let exists = doc! { field: { "$exists": true } };
        let mut keys = doc! { field: 1 };
        if field == "openidId" {
            keys.insert("openidIssuer", 1);
        }
        keys.insert("tenantId", 1);
        let mut x = e(
            "users",
            IndexSpec::new(keys).unique().partial(exists.clone()),
        );
        if field == "openidId" {
            x = x.or(
                IndexSpec::new(doc! { field: 1, "tenantId": 1 })
                    .unique()
                    .partial(exists),
                "LibreChat v0.8.5",
            );
        }
        list.push(x.or(
            IndexSpec::new(doc! { field: 1 }).unique().sparse(),
            UP_TO_0_8_4,
        ));
    }
    list.extend([
        e("sessions", IndexSpec::new(doc! {"expiration": 1}).ttl(0)),
        e("sessions", IndexSpec::new(doc! {"tenantId": 1})).since("LibreChat v0.8.5"),
        e(
            "sessions",
            IndexSpec::new(doc! {"user": 1, "refreshTokenHash": 1}).unique(),
        )
        .since("@librechat/data-schemas 0.0.71 (after LibreChat v0.8.8-rc1)"),
        e("balances", IndexSpec::new(doc! {"user": 1})),
        e("balances", IndexSpec::new(doc! {"tenantId": 1})).since("LibreChat v0.8.5"),
    ]);
    list
}

/// What checking one collection found: its lines, and how many of LibreChat's indexes are
/// missing (for the line on `MONGO_AUTO_INDEX`): required ones, and ones only newer LibreChat
/// defines.
pub struct Checked {
    pub findings: Vec<Finding>,
    pub missing: usize,
    pub missing_newer: usize,
}

/// One line per missing index (PROBLEM when every LibreChat since v0.7.9 defines it, INFO when
/// only newer LibreChat does), each with the command that creates it, then a count. With `tenants`
/// in use (docs/tenants.md), LibreChat's tenant-aware indexes are required in their current form:
/// an older form without `tenantId` (`unique {email: 1}`) refuses the same email in two tenants.
pub fn check_collection(collection: &str, indexes: &[Document], tenants: bool) -> Checked {
    let expected: Vec<Expected> = expected()
        .into_iter()
        .filter(|x| x.collection == collection)
        .collect();
    let mut findings = Vec::new();
    let mut missing = 0;
    let mut missing_newer = 0;
    for x in &expected {
        let tenant_aware = tenants && x.spec.keys.contains_key("tenantId");
        let current = indexes.iter().any(|ix| x.spec.matches(ix));
        let older = indexes
            .iter()
            .any(|ix| x.older.iter().any(|(old, _)| old.matches(ix)));
        if current || (older && !tenant_aware) {
            continue;
        }
        missing += 1;
        // Demanded now: counted with the required ones (the line on MONGO_AUTO_INDEX).
        if x.since.is_some() && !tenant_aware {
            missing_newer += 1;
        }
        let older = x
            .older
            .iter()
            .map(|(old, versions)| format!("; {versions}: {}", old.describe()))
            .collect::<String>();
        let level = if x.since.is_some() && !tenant_aware {
            INFO
        } else {
            PROBLEM
        };
        let mut why = match (x.since, older.is_empty()) {
            (Some(v), _) => format!(" (defined by {v} and newer{older})"),
            (None, true) => String::new(),
            (None, false) => format!(" ({})", older.trim_start_matches("; ")),
        };
        if tenant_aware {
            why.push_str(", needed with tenants in use");
        }
        // The same keys with other options: creating the index fails until that one is dropped.
        let clash = indexes.iter().find(|ix| x.spec.same_keys(ix));
        let detail = match clash {
            Some(ix) => format!(
                "index {} on {} ({}) is not LibreChat's {}{why}; drop it (db.{collection}.dropIndex(\"{}\")) and create it: {}",
                index_name(ix),
                fmt_keys(ix),
                describe_index(ix),
                x.spec.describe(),
                index_name(ix),
                x.spec.create_command(collection)
            ),
            None => format!(
                "missing index {}{why}; create it: {}",
                x.spec.describe(),
                x.spec.create_command(collection)
            ),
        };
        findings.push(finding(level, collection, detail));
    }
    let n = expected.len();
    findings.push(finding(
        if missing == 0 { OK } else { INFO },
        collection,
        format!(
            "{} of the {n} indexes LibreChat's models define are present (as of @librechat/data-schemas {DATA_SCHEMAS_VERSION})",
            n - missing
        ),
    ));
    Checked {
        findings,
        missing,
        missing_newer,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(x: &IndexSpec) -> Document {
        let mut d = doc! {"v": 2, "key": x.keys.clone(), "name": x.default_name()};
        if x.unique {
            d.insert("unique", true);
        }
        if x.sparse {
            d.insert("sparse", true);
        }
        if let Some(t) = x.ttl {
            d.insert("expireAfterSeconds", t);
        }
        if let Some(p) = &x.partial {
            d.insert("partialFilterExpression", p.clone());
        }
        d
    }

    fn levels(f: &[Finding]) -> Vec<&str> {
        f.iter().map(|f| f.level).collect()
    }

    #[test]
    fn the_current_models_pass_and_the_sessions_user_index_is_not_demanded() {
        for c in COLLECTIONS {
            let all: Vec<Document> = expected()
                .iter()
                .filter(|x| x.collection == c)
                .map(|x| listed(&x.spec))
                .collect();
            let r = check_collection(c, &all, false);
            assert_eq!(r.missing, 0);
            assert_eq!(levels(&r.findings), vec![OK]);
        }
        // LibreChat v0.8.8-rc1 defines no {user, refreshTokenHash} index on sessions.
        let rc1 = [
            listed(&IndexSpec::new(doc! {"expiration": 1}).ttl(0)),
            listed(&IndexSpec::new(doc! {"tenantId": 1})),
        ];
        let r = check_collection("sessions", &rc1, false);
        assert_eq!(levels(&r.findings), vec![INFO, INFO]);
        assert!(r.findings[0]
            .detail
            .contains("missing index {user: 1, refreshTokenHash: 1} {unique: true} (defined by @librechat/data-schemas 0.0.71"));
    }

    #[test]
    fn a_v0_7_9_database_passes_with_infos_for_newer_indexes() {
        let mut old = vec![
            listed(&IndexSpec::new(doc! {"email": 1}).unique()),
            listed(&IndexSpec::new(doc! {"expiresAt": 1}).ttl(604_800)),
        ];
        for f in PROVIDER_ID_FIELDS {
            old.push(listed(&IndexSpec::new(doc! { f: 1 }).unique().sparse()));
        }
        let r = check_collection("users", &old, false);
        assert!(
            r.findings.iter().all(|f| f.level != PROBLEM),
            "{:?}",
            r.findings
        );
        assert_eq!(r.missing, 4); // idOnTheSource, tenantId, role+tenantId, idOnTheSource+…

        // With tenants in use, the same database is not enough: its unique {email: 1} (and the
        // provider ids without tenantId) would refuse the same person in a second tenant.
        let r = check_collection("users", &old, true);
        let problems: Vec<&Finding> = r.findings.iter().filter(|f| f.level == PROBLEM).collect();
        assert!(problems.iter().any(|f| f
            .detail
            .contains("{email: 1, tenantId: 1} {unique: true}")
            && f.detail.contains("needed with tenants in use")));
        assert_eq!(r.missing_newer, 1); // idOnTheSource alone (no tenantId in it)
        assert_eq!(problems.len(), r.missing - r.missing_newer);
    }

    #[test]
    fn required_indexes_missing_or_different_are_problems() {
        let r = check_collection("sessions", &[], false);
        assert_eq!(r.findings[0].level, PROBLEM);
        assert_eq!(
            r.findings[0].detail,
            "missing index {expiration: 1} {expireAfterSeconds: 0}; create it: db.sessions.createIndex({expiration: 1}, {expireAfterSeconds: 0})"
        );
        let wrong_ttl = [doc! {"key": {"expiration": 1}, "name": "e", "expireAfterSeconds": 60}];
        let r = check_collection("sessions", &wrong_ttl, false);
        assert_eq!(r.findings[0].level, PROBLEM);
        assert!(r.findings[0]
            .detail
            .starts_with("index e on {expiration: 1} (e, TTL 60 s) is not LibreChat's {expiration: 1} {expireAfterSeconds: 0}; drop it (db.sessions.dropIndex(\"e\"))"));
        let weak_email = [doc! {"key": {"email": 1}, "name": "email_1"}];
        let r = check_collection("users", &weak_email, false);
        let unique_email = r
            .findings
            .iter()
            .find(|f| f.detail.contains("{email: 1, tenantId: 1} {unique: true}"))
            .unwrap();
        assert_eq!(unique_email.level, PROBLEM);
        assert!(unique_email
            .detail
            .contains("(LibreChat v0.7.9 to v0.8.4: {email: 1} {unique: true})"));
    }

    #[test]
    fn required_means_every_librechat_since_v0_7_9() {
        // The ones only newer LibreChat defines, by version (checked in LibreChat's history:
        // packages/data-schemas/src/schema/{user,session,balance}.ts at each tag).
        let newer: Vec<(String, &str, &str)> = expected()
            .iter()
            .filter_map(|x| x.since.map(|s| (x.spec.default_name(), x.collection, s)))
            .collect();
        assert_eq!(newer.len(), 7, "{newer:?}");
        assert!(newer.contains(&(
            "user_1_refreshTokenHash_1".into(),
            "sessions",
            "@librechat/data-schemas 0.0.71 (after LibreChat v0.8.8-rc1)"
        )));
        assert_eq!(expected().len(), 15 + 3 + 2);
    }
}
