//! The package's own indexes: its unique index on `users` (one account per backend identity,
//! `src/store/users.rs`) and those of its own collections (pending 2FA logins, revocations, backend
//! events, second-factor challenges). The package creates them itself at first use, whatever `MONGO_AUTO_INDEX` says;
//! `customBackendMeta` has only `_id`.

use std::time::Duration;

use mongodb::bson::{doc, Bson, Document};

use super::finding::{finding, Finding, INFO, OK, PROBLEM};
use super::index_spec::{describe_index, flag, fmt_keys, index_name, number_of, IndexSpec};
use super::mongo::{db_reason, list_indexes};

/// Our own unique index (`src/store/users.rs`): one account per backend identity. It is created by the
/// first login that creates a user, so its absence is only information; a different index under
/// its name or keys is a problem (creating ours would fail).
pub fn check_source_index(indexes: &[Document]) -> Finding {
    use crate::store::users::{source_index_filter, source_index_keys, SOURCE_INDEX_NAME};
    let want_keys = fmt_keys(&doc! { "key": source_index_keys() });
    let create = format!(
        "db.users.createIndex({want_keys}, {{unique: true, partialFilterExpression: {{provider: \"{}\"}}, name: \"{SOURCE_INDEX_NAME}\"}})",
        crate::identity::PROVIDER
    );
    let candidate = indexes
        .iter()
        .find(|ix| ix.get_str("name") == Ok(SOURCE_INDEX_NAME))
        .or_else(|| indexes.iter().find(|ix| fmt_keys(ix) == want_keys));
    let Some(ix) = candidate else {
        let old = indexes
            .iter()
            .any(|ix| ix.get_str("name") == Ok(crate::store::users::OLD_SOURCE_INDEX_NAME));
        let replaces = if old {
            format!(
                " (the older {} without tenantId is there: the package replaces it then)",
                crate::store::users::OLD_SOURCE_INDEX_NAME
            )
        } else {
            String::new()
        };
        return finding(
            INFO,
            "users",
            format!(
                "index {SOURCE_INDEX_NAME} (unique {want_keys} for provider \"{}\") not created yet: the first login of a new backend user creates it{replaces}, or create it: {create}",
                crate::identity::PROVIDER
            ),
        );
    };
    let filter_ok = ix.get_document("partialFilterExpression").ok() == Some(&source_index_filter());
    if fmt_keys(ix) == want_keys && flag(ix, "unique") && filter_ok {
        return finding(
            OK,
            "users",
            format!(
                "index {want_keys} ({}, partial: provider \"{}\")",
                describe_index(ix),
                crate::identity::PROVIDER
            ),
        );
    }
    finding(
        PROBLEM,
        "users",
        format!(
            "index {} on {} is not the package's unique index on {want_keys} for provider \"{}\"; new backend users cannot be created while it is in the way: drop it (db.users.dropIndex(\"{}\")) and create the right one: {create}",
            index_name(ix),
            fmt_keys(ix),
            crate::identity::PROVIDER,
            index_name(ix),
        ),
    )
}

/// Backend identities with more than one account (left by older versions without our index):
/// while there are any, our unique index cannot be created and no new backend user can log in.
pub async fn check_duplicate_identities(db: &mongodb::Database, timeout: Duration) -> Vec<Finding> {
    let reply = db
        .run_command(doc! {
            "aggregate": "users",
            "pipeline": [
                { "$match": { "provider": crate::identity::PROVIDER } },
                // One account per backend identity and tenant.
                { "$group": { "_id": { "id": "$idOnTheSource", "tenant": "$tenantId" }, "n": { "$sum": 1 } } },
                { "$match": { "n": { "$gt": 1 } } },
                { "$count": "identities" },
            ],
            "cursor": {},
        })
        .await;
    let found = reply.map(|r| {
        r.get_document("cursor")
            .and_then(|c| c.get_array("firstBatch"))
            .ok()
            .and_then(|a| a.first())
            .and_then(Bson::as_document)
            .and_then(|d| d.get("identities"))
            .and_then(number_of)
            .unwrap_or(0.0)
    });
    match found {
        Ok(n) if n < 1.0 => vec![],
        Ok(n) => vec![finding(
            PROBLEM,
            "users",
            format!(
                "{} backend identities have more than one account (provider \"{}\", same idOnTheSource in one tenant); merge or remove the extra accounts, else the package's unique index cannot be created and new backend users cannot log in",
                n,
                crate::identity::PROVIDER
            ),
        )],
        Err(e) => vec![finding(
            PROBLEM,
            "users",
            format!("cannot look for duplicate backend identities ({})", db_reason(&e, timeout)),
        )],
    }
}

/// One of the package's own collections, created with its indexes at first use.
pub struct OwnCollection {
    pub name: &'static str,
    pub indexes: Vec<mongodb::IndexModel>,
    /// What creates it (said while it does not exist yet).
    pub created_by: &'static str,
}

/// The package's own collections with indexes: pending 2FA logins, revocations, backend events, second-factor challenges.
pub fn own_collections() -> [OwnCollection; 4] {
    [
        OwnCollection {
            name: crate::store::sessions::PENDING_COLLECTION,
            indexes: crate::store::sessions::pending_indexes(),
            created_by: "the first login that waits for LibreChat's 2FA step",
        },
        OwnCollection {
            name: crate::store::revocation::REVOCATIONS_COLLECTION,
            indexes: crate::store::revocation::revocation_indexes(),
            created_by: "the first server that connects",
        },
        OwnCollection {
            name: crate::store::events::EVENTS_COLLECTION,
            indexes: crate::store::events::event_indexes(),
            created_by: "the first backend event",
        },
        OwnCollection {
            name: crate::store::challenges::CHALLENGES_COLLECTION,
            indexes: crate::store::challenges::challenge_indexes(),
            created_by: "the first login the backend answers with a second-factor challenge",
        },
    ]
}

/// An own collection: absent until its first use, which creates it with its indexes. Present
/// without them means their creation failed.
pub fn check_own_indexes(own: &OwnCollection, exists: bool, indexes: &[Document]) -> Vec<Finding> {
    let collection = own.name;
    if !exists {
        return vec![finding(
            INFO,
            collection,
            format!(
                "not created yet: {} creates it with its indexes",
                own.created_by
            ),
        )];
    }
    let specs: Vec<IndexSpec> = own.indexes.iter().map(IndexSpec::from_model).collect();
    let missing: Vec<Finding> = specs
        .iter()
        .filter(|s| !indexes.iter().any(|ix| s.matches(ix)))
        .map(|s| {
            finding(
                PROBLEM,
                collection,
                format!(
                    "missing the package's index {}; create it: {}",
                    s.describe(),
                    s.create_command(collection)
                ),
            )
        })
        .collect();
    if !missing.is_empty() {
        return missing;
    }
    vec![finding(
        OK,
        collection,
        format!(
            "the package's {} indexes are present ({})",
            specs.len(),
            specs
                .iter()
                .map(IndexSpec::default_name)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    )]
}

/// The own collections' state, read from the database.
pub async fn own_state(
    db: &mongodb::Database,
    collections: &[String],
    timeout: Duration,
) -> Vec<Finding> {
    let mut out = Vec::new();
    for own in own_collections() {
        if !collections.iter().any(|c| c == own.name) {
            out.extend(check_own_indexes(&own, false, &[]));
            continue;
        }
        match list_indexes(db, own.name).await {
            Ok(ix) => out.extend(check_own_indexes(&own, true, &ix)),
            Err(e) => out.push(finding(
                PROBLEM,
                own.name,
                format!("cannot list the indexes ({})", db_reason(&e, timeout)),
            )),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_8_8_doctor_checks_the_source_index() {
        use crate::store::users::SOURCE_INDEX_NAME;
        let base = [doc! {"key": {"_id": 1}, "name": "_id_"}];
        assert_eq!(check_source_index(&base).level, INFO);
        let good = doc! {
            "key": {"provider": 1, "idOnTheSource": 1, "tenantId": 1}, "name": SOURCE_INDEX_NAME, "unique": true,
            "partialFilterExpression": {"provider": "custom-backend"},
        };
        let f = check_source_index(&[base[0].clone(), good]);
        assert_eq!(f.level, OK, "{}", f.detail);
        let not_unique = doc! {
            "key": {"provider": 1, "idOnTheSource": 1, "tenantId": 1}, "name": "p_i",
            "partialFilterExpression": {"provider": "custom-backend"},
        };
        let f = check_source_index(&[not_unique]);
        assert_eq!(f.level, PROBLEM);
        assert!(f.detail.contains("dropIndex(\"p_i\")"), "{}", f.detail);
        let not_partial = doc! {
            "key": {"provider": 1, "idOnTheSource": 1, "tenantId": 1}, "name": SOURCE_INDEX_NAME, "unique": true,
        };
        assert_eq!(check_source_index(&[not_partial]).level, PROBLEM);
        let other_keys =
            doc! {"key": {"idOnTheSource": 1}, "name": SOURCE_INDEX_NAME, "unique": true};
        assert_eq!(check_source_index(&[other_keys]).level, PROBLEM);
        // The index of versions before tenants: replaced at the next first login, said so.
        let old = doc! {
            "key": {"provider": 1, "idOnTheSource": 1}, "name": crate::store::users::OLD_SOURCE_INDEX_NAME,
            "unique": true, "partialFilterExpression": {"provider": "custom-backend"},
        };
        let f = check_source_index(&[old]);
        assert_eq!(f.level, INFO);
        assert!(f.detail.contains("replaces it"), "{}", f.detail);
    }

    #[test]
    fn item_10_6_pending_2fa_indexes() {
        let [pending, ..] = own_collections();
        let check_pending_indexes =
            |exists, ix: &[Document]| check_own_indexes(&pending, exists, ix);
        assert_eq!(check_pending_indexes(false, &[])[0].level, INFO);
        let f = check_pending_indexes(true, &[doc! {"key": {"_id": 1}, "name": "_id_"}]);
        assert_eq!(f.len(), 2);
        assert!(f.iter().all(|f| f.level == PROBLEM));
        assert!(f[1].detail.ends_with(
            "create it: db.customBackendPending2fa.createIndex({expiresAt: 1}, {expireAfterSeconds: 0})"
        ));
        let both = [
            doc! {"key": {"user": 1, "createdAt": -1}, "name": "user_1_createdAt_-1"},
            doc! {"key": {"expiresAt": 1}, "name": "expiresAt_1", "expireAfterSeconds": 0},
        ];
        let f = check_pending_indexes(true, &both);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].level, OK);
        assert!(f[0].detail.contains("user_1_createdAt_-1, expiresAt_1"));
    }

    #[test]
    fn item_11_1_revocation_and_event_indexes() {
        let [_, revocations, events, _] = own_collections();
        let f = check_own_indexes(&revocations, false, &[]);
        assert_eq!(f[0].level, INFO);
        assert!(f[0].detail.contains("first server that connects"));
        let f = check_own_indexes(
            &revocations,
            true,
            &[doc! {"key": {"at": 1}, "name": "at_1"}],
        );
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].level, PROBLEM);
        assert!(f[0].detail.ends_with(
            "create it: db.customBackendRevocations.createIndex({expiresAt: 1}, {expireAfterSeconds: 0})"
        ));
        let both = [
            doc! {"key": {"userId": 1, "time": -1}, "name": "userId_1_time_-1"},
            doc! {"key": {"expiresAt": 1}, "name": "expiresAt_1", "expireAfterSeconds": 0},
        ];
        assert_eq!(check_own_indexes(&events, true, &both)[0].level, OK);
    }
}
