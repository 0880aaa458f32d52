//! JSON parsed strictly: an object that names the same member twice is an error.
//!
//! RFC 7515 §5.2 and RFC 8725 ask a JWS consumer to reject duplicate header members, since
//! two parsers that keep different copies (first wins, last wins) disagree about what was
//! signed. `serde_json` silently keeps the last one, so every JSON document wsgate reads from
//! the network or from its configuration goes through [`parse`] instead: token headers and
//! payloads, key sets, and the plugin configuration.

use std::collections::BTreeSet;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Why a document is not strict JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StrictJsonError {
    /// Not JSON at all, or JSON with a duplicate member name; the message says which.
    Syntax(String),
    /// Valid JSON, but not an object where an object was required.
    NotAnObject,
}

impl fmt::Display for StrictJsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Syntax(message) => f.write_str(message),
            Self::NotAnObject => f.write_str("expected a JSON object"),
        }
    }
}

/// Parses `bytes` as one JSON value, refusing duplicate member names at any depth.
pub fn parse(bytes: &[u8]) -> Result<Value, StrictJsonError> {
    serde_json::from_slice::<StrictValue>(bytes)
        .map(|strict| strict.0)
        .map_err(|error| StrictJsonError::Syntax(error.to_string()))
}

/// Parses `bytes` as a JSON object, refusing duplicate member names at any depth.
pub fn parse_object(bytes: &[u8]) -> Result<Map<String, Value>, StrictJsonError> {
    match parse(bytes)? {
        Value::Object(map) => Ok(map),
        _ => Err(StrictJsonError::NotAnObject),
    }
}

/// A [`Value`] whose deserialisation fails on duplicate member names.
struct StrictValue(Value);

impl<'de> Deserialize<'de> for StrictValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(StrictValue)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("a number that is not finite"))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(StrictValue(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut seen = BTreeSet::new();
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            if !seen.insert(key.clone()) {
                return Err(de::Error::custom(format_args!(
                    "duplicate member name {key:?}"
                )));
            }
            let StrictValue(value) = access.next_value()?;
            map.insert(key, value);
        }
        Ok(Value::Object(map))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_documents() {
        let value = parse(br#"{"a":[1,-2,3.5,"x",null,true,{"b":{}}]}"#).unwrap();
        assert_eq!(value["a"][3], "x");
        assert_eq!(value["a"][1], -2);
    }

    #[test]
    fn refuses_duplicates_at_the_top() {
        let error = parse_object(br#"{"alg":"RS256","alg":"none"}"#).unwrap_err();
        assert!(
            error.to_string().contains("duplicate member name \"alg\""),
            "{error}"
        );
    }

    #[test]
    fn refuses_duplicates_when_nested() {
        assert!(parse(br#"[{"k":{"a":1,"a":2}}]"#).is_err());
    }

    #[test]
    fn same_name_in_sibling_objects_is_fine() {
        assert!(parse(br#"[{"a":1},{"a":2}]"#).is_ok());
    }

    #[test]
    fn object_required_where_asked() {
        assert_eq!(parse_object(b"[1]"), Err(StrictJsonError::NotAnObject));
        assert!(matches!(
            parse_object(b"{"),
            Err(StrictJsonError::Syntax(_))
        ));
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let deep = "[".repeat(100_000);
        assert!(parse(deep.as_bytes()).is_err());
    }
}
