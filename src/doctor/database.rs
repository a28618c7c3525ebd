//! The database: reachable, LibreChat's collections with their models' indexes
//! (`librechat_indexes.rs`), the package's own indexes (`own_indexes.rs`), and the cause when
//! LibreChat's are missing (`auto_index.rs`).

use std::time::Duration;

use mongodb::bson::{doc, Document};
use mongodb::options::ClientOptions;

use super::auto_index::{self, AutoIndex};
use super::finding::{finding, Finding, INFO, OK, PROBLEM};
use super::librechat_indexes;
use super::mongo::{db_reason, list_indexes};
use super::own_indexes;
use crate::config::Config;

pub async fn check_db(cfg: &Config, auto: &AutoIndex) -> Vec<Finding> {
    // Same options as the service (`Service::db`).
    let mut opts = match ClientOptions::parse(&cfg.mongo_uri).await {
        Ok(o) => o,
        Err(e) => {
            let why = match *e.kind {
                mongodb::error::ErrorKind::DnsResolve { .. } => {
                    "the host name cannot be resolved (DNS lookup of the mongodb+srv:// record failed)"
                }
                _ => "is not a valid MongoDB connection string",
            };
            return vec![finding(PROBLEM, "MONGO_URI", why)];
        }
    };
    let hosts = opts
        .hosts
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",");
    opts.server_selection_timeout = Some(cfg.db_timeout);
    opts.connect_timeout = Some(cfg.db_timeout);
    opts.app_name = Some("librechat-custom-backend-auth doctor".into());
    let client = match mongodb::Client::with_options(opts) {
        Ok(c) => c,
        Err(e) => {
            return vec![finding(
                PROBLEM,
                "database",
                format!(
                    "cannot connect to {hosts} ({})",
                    db_reason(&e, cfg.db_timeout)
                ),
            )]
        }
    };
    let db = client
        .default_database()
        .unwrap_or_else(|| client.database("test"));
    // Tenants are in use when this configuration places users in them or the database has any.
    let configured = cfg.trust_tenant_header || !cfg.mapping.user_tenant.is_empty();
    let out = check_db_contents(&db, &hosts, cfg.db_timeout, auto, configured).await;
    client.shutdown().await;
    out
}

async fn check_db_contents(
    db: &mongodb::Database,
    hosts: &str,
    timeout: Duration,
    auto: &AutoIndex,
    tenants_configured: bool,
) -> Vec<Finding> {
    let name = db.name().to_string();
    if let Err(e) = db.run_command(doc! { "ping": 1 }).await {
        return vec![finding(
            PROBLEM,
            "database",
            format!("unreachable at {hosts} ({})", db_reason(&e, timeout)),
        )];
    }
    let mut out = vec![finding(
        OK,
        "database",
        format!("reachable at {hosts}, database \"{name}\""),
    )];
    let collections = match db.list_collection_names().await {
        Ok(c) => c,
        Err(e) => {
            out.push(finding(
                PROBLEM,
                "database",
                format!("cannot list the collections ({})", db_reason(&e, timeout)),
            ));
            return out;
        }
    };
    let tenants = tenants_configured || tenant_users(db).await;
    if tenants {
        out.push(finding(
            INFO,
            "tenants",
            "in use (TRUST_TENANT_HEADER, BACKEND_TENANT_FIELD or users with a tenantId): LibreChat's tenant-aware indexes are required",
        ));
    }
    let (mut required, mut newer) = (0, 0);
    for collection in librechat_indexes::COLLECTIONS {
        if !collections.iter().any(|c| c == collection) {
            for x in librechat_indexes::expected() {
                match (x.collection == collection, x.since) {
                    (false, _) => {}
                    (true, None) => required += 1,
                    (true, Some(_)) => newer += 1,
                }
            }
            out.push(missing_collection(collection, &name, auto));
            continue;
        }
        let indexes = match list_indexes(db, collection).await {
            Ok(ix) => ix,
            Err(e) => {
                out.push(finding(
                    PROBLEM,
                    collection,
                    format!("cannot list the indexes ({})", db_reason(&e, timeout)),
                ));
                continue;
            }
        };
        let checked = librechat_indexes::check_collection(collection, &indexes, tenants);
        required += checked.missing - checked.missing_newer;
        newer += checked.missing_newer;
        out.extend(checked.findings);
        if collection == "users" {
            let ours = own_indexes::check_source_index(&indexes);
            let absent = ours.level == INFO;
            out.push(ours);
            if absent {
                out.extend(own_indexes::check_duplicate_identities(db, timeout).await);
            }
        }
    }
    out.extend(own_indexes::own_state(db, &collections, timeout).await);
    out.extend(auto_index::cause(auto, required, newer));
    out
}

/// Whether any user has a `tenantId` (an unanswered query counts as none: the lines on the
/// collections say what is wrong with the database).
async fn tenant_users(db: &mongodb::Database) -> bool {
    db.collection::<Document>("users")
        .find_one(doc! { "tenantId": { "$exists": true } })
        .projection(doc! { "_id": 1 })
        .await
        .is_ok_and(|d| d.is_some())
}

/// With `MONGO_AUTO_INDEX` off a collection may appear only at LibreChat's first write to it
/// (`MONGO_AUTO_CREATE` off too, as in LibreChat's `.env.example`), without indexes; the line on
/// `MONGO_AUTO_INDEX` says the rest. Otherwise LibreChat's start creates it with its indexes (an
/// index build creates its collection), so LibreChat never started against this database.
fn missing_collection(collection: &str, db: &str, auto: &AutoIndex) -> Finding {
    match auto {
        AutoIndex::Off(_) => finding(
            INFO,
            collection,
            format!("collection not created yet in database \"{db}\" (LibreChat creates it at start-up, or at its first write with MONGO_AUTO_CREATE off, and with {} off without its indexes)", auto_index::VAR),
        ),
        _ => finding(
            PROBLEM,
            collection,
            format!("collection missing in database \"{db}\"; start LibreChat once against this database (it creates the collections and their indexes), and check that MONGO_URI names LibreChat's database"),
        ),
    }
}
