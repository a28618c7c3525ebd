//! An index as a model defines it (keys and the options that change what it does), matched
//! against the `listIndexes` entries of a collection, and shown as the mongosh command that
//! creates it.

use mongodb::bson::{Bson, Document};
use mongodb::IndexModel;

#[derive(Debug, Clone, PartialEq)]
pub struct IndexSpec {
    /// In order: `{email: 1, tenantId: 1}` is not `{tenantId: 1, email: 1}`.
    pub keys: Document,
    pub unique: bool,
    pub sparse: bool,
    /// `expireAfterSeconds`: a TTL index.
    pub ttl: Option<i64>,
    pub partial: Option<Document>,
}

impl IndexSpec {
    pub fn new(keys: Document) -> Self {
        IndexSpec {
            keys,
            unique: false,
            sparse: false,
            ttl: None,
            partial: None,
        }
    }
    pub fn unique(mut self) -> Self {
        self.unique = true;
        self
    }
    pub fn sparse(mut self) -> Self {
        self.sparse = true;
        self
    }
    pub fn ttl(mut self, seconds: i64) -> Self {
        self.ttl = Some(seconds);
        self
    }
    pub fn partial(mut self, filter: Document) -> Self {
        self.partial = Some(filter);
        self
    }

    /// The spec of an index the package creates itself (one source of truth with its creation).
    pub fn from_model(m: &IndexModel) -> Self {
        let o = m.options.as_ref();
        IndexSpec {
            keys: m.keys.clone(),
            unique: o.and_then(|o| o.unique).unwrap_or(false),
            sparse: o.and_then(|o| o.sparse).unwrap_or(false),
            ttl: o
                .and_then(|o| o.expire_after)
                .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX)),
            partial: o.and_then(|o| o.partial_filter_expression.clone()),
        }
    }

    /// MongoDB's default name: `email_1_tenantId_1`.
    pub fn default_name(&self) -> String {
        self.keys
            .iter()
            .map(|(k, v)| format!("{k}_{}", fmt_value(v)))
            .collect::<Vec<_>>()
            .join("_")
    }

    /// Same keys in the same order and the same options. Servers answer `unique: true` or `1`,
    /// key directions as int or double: compared as numbers.
    pub fn matches(&self, ix: &Document) -> bool {
        self.same_keys(ix)
            && flag(ix, "unique") == self.unique
            && flag(ix, "sparse") == self.sparse
            && number(ix, "expireAfterSeconds") == self.ttl.map(|t| t as f64)
            && ix.get_document("partialFilterExpression").ok() == self.partial.as_ref()
    }

    pub fn same_keys(&self, ix: &Document) -> bool {
        let Ok(keys) = ix.get_document("key") else {
            return false;
        };
        keys.len() == self.keys.len()
            && keys
                .iter()
                .zip(self.keys.iter())
                .all(|((k1, v1), (k2, v2))| k1 == k2 && same_value(v1, v2))
    }

    /// `{unique: true, expireAfterSeconds: 0}`, or empty without options.
    pub fn fmt_options(&self) -> String {
        let mut o = Vec::new();
        if self.unique {
            o.push("unique: true".to_string());
        }
        if self.sparse {
            o.push("sparse: true".to_string());
        }
        if let Some(t) = self.ttl {
            o.push(format!("expireAfterSeconds: {t}"));
        }
        if let Some(p) = &self.partial {
            o.push(format!("partialFilterExpression: {}", fmt_doc(p)));
        }
        if o.is_empty() {
            String::new()
        } else {
            format!("{{{}}}", o.join(", "))
        }
    }

    /// `{email: 1, tenantId: 1} unique`, as named in a line of the report.
    pub fn describe(&self) -> String {
        let o = self.fmt_options();
        if o.is_empty() {
            fmt_doc(&self.keys)
        } else {
            format!("{} {o}", fmt_doc(&self.keys))
        }
    }

    /// `db.users.createIndex({email: 1, tenantId: 1}, {unique: true})`.
    pub fn create_command(&self, collection: &str) -> String {
        let o = self.fmt_options();
        if o.is_empty() {
            format!("db.{collection}.createIndex({})", fmt_doc(&self.keys))
        } else {
            format!("db.{collection}.createIndex({}, {o})", fmt_doc(&self.keys))
        }
    }
}

fn same_value(a: &Bson, b: &Bson) -> bool {
    match (number_of(a), number_of(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

pub fn index_name(ix: &Document) -> String {
    ix.get_str("name").unwrap_or("an index").to_string()
}

/// A boolean option (servers may answer `true` or `1`).
pub fn flag(ix: &Document, name: &str) -> bool {
    match ix.get(name) {
        Some(Bson::Boolean(b)) => *b,
        Some(other) => number_of(other).is_some_and(|n| n != 0.0),
        None => false,
    }
}

pub fn number_of(b: &Bson) -> Option<f64> {
    match b {
        Bson::Int32(n) => Some(f64::from(*n)),
        Bson::Int64(n) => Some(*n as f64),
        Bson::Double(n) => Some(*n),
        _ => None,
    }
}

pub fn number(ix: &Document, name: &str) -> Option<f64> {
    ix.get(name).and_then(number_of)
}

/// `email_1_tenantId_1, unique`, `expiration_1, TTL 0 s`.
pub fn describe_index(ix: &Document) -> String {
    let mut parts = vec![index_name(ix)];
    if flag(ix, "unique") {
        parts.push("unique".into());
    }
    if flag(ix, "sparse") {
        parts.push("sparse".into());
    }
    if let Some(ttl) = number(ix, "expireAfterSeconds") {
        parts.push(format!("TTL {ttl} s"));
    }
    parts.join(", ")
}

/// The keys of a `listIndexes` entry: `{email: 1, tenantId: 1}`.
pub fn fmt_keys(ix: &Document) -> String {
    match ix.get_document("key") {
        Ok(keys) => fmt_doc(keys),
        Err(_) => "{}".into(),
    }
}

/// mongosh-like: `{googleId: {$exists: true}}`.
pub fn fmt_doc(d: &Document) -> String {
    let parts: Vec<String> = d
        .iter()
        .map(|(k, v)| format!("{k}: {}", fmt_value(v)))
        .collect();
    format!("{{{}}}", parts.join(", "))
}

fn fmt_value(v: &Bson) -> String {
    match v {
        Bson::Document(d) => fmt_doc(d),
        Bson::String(s) => format!("\"{s}\""),
        Bson::Boolean(b) => b.to_string(),
        other => match number_of(other) {
            Some(n) => format!("{n}"),
            None => "?".into(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::doc;

    #[test]
    fn matching_compares_keys_in_order_and_every_option() {
        let spec = IndexSpec::new(doc! {"googleId": 1, "tenantId": 1})
            .unique()
            .partial(doc! {"googleId": {"$exists": true}});
        let listed = doc! {
            "v": 2, "key": {"googleId": 1.0, "tenantId": 1_i64}, "name": "googleId_1_tenantId_1",
            "unique": true, "partialFilterExpression": {"googleId": {"$exists": true}},
        };
        assert!(spec.matches(&listed));
        let mut not_unique = listed.clone();
        not_unique.remove("unique");
        assert!(!spec.matches(&not_unique));
        assert!(spec.same_keys(&not_unique));
        let reversed = doc! {"key": {"tenantId": 1, "googleId": 1}, "unique": 1,
        "partialFilterExpression": {"googleId": {"$exists": true}}};
        assert!(!spec.matches(&reversed));
        assert_eq!(
            spec.create_command("users"),
            "db.users.createIndex({googleId: 1, tenantId: 1}, {unique: true, partialFilterExpression: {googleId: {$exists: true}}})"
        );
        assert_eq!(spec.default_name(), "googleId_1_tenantId_1");
        let ttl = IndexSpec::new(doc! {"expiration": 1}).ttl(0);
        assert!(ttl.matches(&doc! {"key": {"expiration": 1}, "expireAfterSeconds": 0}));
        assert!(!ttl.matches(&doc! {"key": {"expiration": 1}, "expireAfterSeconds": 60}));
        assert!(!ttl.matches(&doc! {"key": {"expiration": 1}}));
        assert_eq!(
            ttl.create_command("sessions"),
            "db.sessions.createIndex({expiration: 1}, {expireAfterSeconds: 0})"
        );
        assert_eq!(
            IndexSpec::new(doc! {"user": 1, "createdAt": -1}).default_name(),
            "user_1_createdAt_-1"
        );
    }
}
