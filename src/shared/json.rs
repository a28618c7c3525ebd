//! JSON from outside (backend answers, backend events) read with one rule more than serde_json's:
//! an object with a key twice is refused. Parsers differ on which of the two wins, and a value that
//! one reader sees and another does not is how a check gets bypassed.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// Why a body is not usable JSON.
#[derive(Debug, PartialEq, Eq)]
pub enum JsonError {
    NotJson,
    DuplicateKey,
}

/// The document, or why not: not JSON at all, or an object with a repeated key (at any depth).
pub fn parse_unique(body: &[u8]) -> Result<Value, JsonError> {
    match serde_json::from_slice::<Unique>(body) {
        Ok(Unique(v)) => Ok(v),
        Err(e) if e.to_string().starts_with(DUPLICATE) => Err(JsonError::DuplicateKey),
        Err(_) => Err(JsonError::NotJson),
    }
}

const DUPLICATE: &str = "duplicate key";

struct Unique(Value);

impl<'de> Deserialize<'de> for Unique {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(UniqueVisitor).map(Unique)
    }
}

struct UniqueVisitor;

impl<'de> Visitor<'de> for UniqueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("JSON")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Unique(v)) = seq.next_element()? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                return Err(de::Error::custom(DUPLICATE));
            }
            let Unique(v) = map.next_value()?;
            out.insert(key, v);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_21_11d_a_repeated_key_is_refused_at_any_depth() {
        assert_eq!(
            parse_unique(br#"{"a":1,"b":[true,null,"x",{"c":2.5}]}"#),
            Ok(serde_json::json!({"a":1,"b":[true,null,"x",{"c":2.5}]}))
        );
        for twice in [
            r#"{"active":false,"active":true}"#,
            r#"{"user":{"id":"u-1","id":"u-2"}}"#,
            r#"[{"sub":"a","x":1,"sub":"b"}]"#,
        ] {
            assert_eq!(
                parse_unique(twice.as_bytes()),
                Err(JsonError::DuplicateKey),
                "{twice}"
            );
        }
        // The same key in sibling objects is not a repeat.
        assert!(parse_unique(br#"[{"id":1},{"id":2}]"#).is_ok());
        assert_eq!(parse_unique(b"{"), Err(JsonError::NotJson));
        assert_eq!(parse_unique(b"nope"), Err(JsonError::NotJson));
        // A key spelled with an escape is the same key.
        assert_eq!(
            parse_unique(br#"{"active":false,"\u0061ctive":true}"#),
            Err(JsonError::DuplicateKey)
        );
    }
}
