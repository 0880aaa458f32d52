//! The plugin configuration: the JSON `configuration` value of Envoy's Wasm filter.
//!
//! ```json
//! {
//!   "paths": ["/ws"],
//!   "issuer": "https://issuer.example",
//!   "audiences": ["my-resource-id"],
//!   "jwks": "{\"keys\":[...]}",
//!   "clock_skew_seconds": 60,
//!   "max_token_bytes": 8192
//! }
//! ```
//!
//! Parsing is strict: unknown fields, duplicate fields, missing `issuer`/`audiences`/`jwks`,
//! wrong types and a key set with no usable key are all errors, and each error names its
//! field, because the plugin refuses to start on any of them.

use std::fmt;

use serde_json::{Map, Value};

use crate::authenticator::{Authenticator, DEFAULT_MAX_TOKEN_BYTES};
use crate::claims::ClaimsPolicy;
use crate::jwks::{KeySet, SkippedKey};
use crate::strict_json;

/// Every field the configuration accepts, in documentation order.
pub const FIELDS: [&str; 6] = [
    "paths",
    "issuer",
    "audiences",
    "jwks",
    "clock_skew_seconds",
    "max_token_bytes",
];

/// Default guarded path.
pub const DEFAULT_PATH: &str = "/ws";
/// Default clock skew, as Envoy's `jwt_authn` uses.
pub const DEFAULT_CLOCK_SKEW_SECONDS: u64 = 60;
const MAX_CLOCK_SKEW_SECONDS: u64 = 3600;
const MAX_TOKEN_BYTES_RANGE: (u64, u64) = (256, 64 * 1024);

/// A configuration error, naming the field at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The field at fault, or `configuration` for the document as a whole.
    pub field: String,
    pub problem: String,
}

impl ConfigError {
    fn new(field: &str, problem: impl Into<String>) -> Self {
        ConfigError {
            field: field.to_owned(),
            problem: problem.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "field \"{}\": {}", self.field, self.problem)
    }
}

impl std::error::Error for ConfigError {}

/// Where verification keys come from.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// A key set given in the configuration (`jwks`).
    Inline(KeySet),
}

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Exact paths (query ignored) the gate guards.
    pub paths: Vec<String>,
    /// How tokens are verified.
    pub authenticator: Authenticator,
    /// The verification keys.
    pub keys: KeySource,
    /// Keys of an inline set that were left out, and why (for the start-up log).
    pub skipped_keys: Vec<SkippedKey>,
}

impl Config {
    /// Parses and validates the plugin configuration.
    pub fn parse(bytes: &[u8]) -> Result<Config, ConfigError> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(ConfigError::new(
                "configuration",
                "is empty; wsgate needs at least \"issuer\", \"audiences\" and \"jwks\"",
            ));
        }
        let object = strict_json::parse_object(bytes).map_err(|error| {
            ConfigError::new("configuration", format!("is not a JSON object: {error}"))
        })?;
        if let Some(unknown) = object.keys().find(|key| !FIELDS.contains(&key.as_str())) {
            return Err(ConfigError::new(
                unknown,
                format!("is not a known field (known fields: {})", FIELDS.join(", ")),
            ));
        }

        let paths = match object.get("paths") {
            None => vec![DEFAULT_PATH.to_owned()],
            Some(value) => string_list(value, "paths")?,
        };
        if let Some(bad) = paths
            .iter()
            .find(|path| !path.starts_with('/') || path.contains(['?', '#']))
        {
            return Err(ConfigError::new(
                "paths",
                format!(
                    "{bad:?} is not a path (it must start with '/' and have no query or fragment)"
                ),
            ));
        }
        let issuer = required_string(&object, "issuer")?;
        let audiences = match object.get("audiences") {
            None => return Err(ConfigError::new("audiences", "is required")),
            Some(value) => string_list(value, "audiences")?,
        };
        let clock_skew_seconds =
            integer(&object, "clock_skew_seconds", (0, MAX_CLOCK_SKEW_SECONDS))?
                .unwrap_or(DEFAULT_CLOCK_SKEW_SECONDS);
        let max_token_bytes = integer(&object, "max_token_bytes", MAX_TOKEN_BYTES_RANGE)?
            .map_or(Ok(DEFAULT_MAX_TOKEN_BYTES), usize::try_from)
            .map_err(|_| ConfigError::new("max_token_bytes", "is too large"))?;
        let (keys, skipped_keys) = inline_jwks(&object)?;

        Ok(Config {
            paths,
            authenticator: Authenticator {
                policy: ClaimsPolicy {
                    issuer,
                    audiences,
                    clock_skew_seconds,
                },
                max_token_bytes,
            },
            keys: KeySource::Inline(keys),
            skipped_keys,
        })
    }
}

fn required_string(object: &Map<String, Value>, field: &str) -> Result<String, ConfigError> {
    match object.get(field) {
        None => Err(ConfigError::new(field, "is required")),
        Some(Value::String(text)) if !text.is_empty() => Ok(text.clone()),
        Some(_) => Err(ConfigError::new(field, "must be a non-empty string")),
    }
}

fn string_list(value: &Value, field: &str) -> Result<Vec<String>, ConfigError> {
    let problem = || ConfigError::new(field, "must be a non-empty array of non-empty strings");
    let items = value
        .as_array()
        .filter(|items| !items.is_empty())
        .ok_or_else(problem)?;
    items
        .iter()
        .map(|item| {
            item.as_str()
                .filter(|text| !text.is_empty())
                .map(str::to_owned)
                .ok_or_else(problem)
        })
        .collect()
}

fn integer(
    object: &Map<String, Value>,
    field: &str,
    (min, max): (u64, u64),
) -> Result<Option<u64>, ConfigError> {
    match object.get(field) {
        None => Ok(None),
        Some(value) => value
            .as_u64()
            .filter(|number| (min..=max).contains(number))
            .map(Some)
            .ok_or_else(|| {
                ConfigError::new(field, format!("must be an integer from {min} to {max}"))
            }),
    }
}

fn inline_jwks(object: &Map<String, Value>) -> Result<(KeySet, Vec<SkippedKey>), ConfigError> {
    let parsed = match object.get("jwks") {
        None => {
            return Err(ConfigError::new(
                "jwks",
                "is required (a JWKS as a JSON string or object)",
            ))
        }
        Some(Value::String(text)) => KeySet::parse(text.as_bytes()),
        Some(Value::Object(jwks)) => KeySet::from_object(jwks),
        Some(_) => {
            return Err(ConfigError::new(
                "jwks",
                "must be a JWKS, as a JSON string or object",
            ))
        }
    };
    parsed.map_err(|error| ConfigError::new("jwks", error.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use testbed::keys::{jwks, P256, RSA_2048};

    fn base() -> Value {
        json!({
            "issuer": "https://issuer.example",
            "audiences": ["api"],
            "jwks": jwks(&[(&RSA_2048, "r")]),
        })
    }

    fn parse(value: &Value) -> Result<Config, ConfigError> {
        Config::parse(value.to_string().as_bytes())
    }

    fn error_field(value: &Value) -> String {
        parse(value).map(|_| ()).unwrap_err().field
    }

    #[test]
    fn minimal_configuration_takes_defaults() {
        let config = parse(&base()).unwrap();
        assert_eq!(config.paths, ["/ws"]);
        assert_eq!(config.authenticator.policy.clock_skew_seconds, 60);
        assert_eq!(config.authenticator.max_token_bytes, 8192);
        let KeySource::Inline(keys) = &config.keys;
        assert_eq!(keys.len(), 1);
    }

    #[test]
    fn every_field_is_read() {
        let mut value = base();
        value["paths"] = json!(["/ws", "/media"]);
        value["clock_skew_seconds"] = json!(0);
        value["max_token_bytes"] = json!(4096);
        value["jwks"] = Value::String(jwks(&[(&RSA_2048, "r"), (&P256, "e")]).to_string());
        let config = parse(&value).unwrap();
        assert_eq!(config.paths, ["/ws", "/media"]);
        assert_eq!(config.authenticator.policy.clock_skew_seconds, 0);
        assert_eq!(config.authenticator.max_token_bytes, 4096);
        let KeySource::Inline(keys) = &config.keys;
        assert_eq!(keys.len(), 2);
    }

    #[test]
    fn errors_name_their_field() {
        let edit = |f: &dyn Fn(&mut Map<String, Value>)| {
            let mut value = base();
            f(value.as_object_mut().unwrap());
            error_field(&value)
        };
        assert_eq!(
            edit(&|c| {
                c.insert("issuers".into(), json!("x"));
            }),
            "issuers"
        );
        assert_eq!(
            edit(&|c| {
                c.remove("issuer");
            }),
            "issuer"
        );
        assert_eq!(
            edit(&|c| {
                c.insert("issuer".into(), json!(""));
            }),
            "issuer"
        );
        assert_eq!(
            edit(&|c| {
                c.remove("audiences");
            }),
            "audiences"
        );
        assert_eq!(
            edit(&|c| {
                c.insert("audiences".into(), json!([]));
            }),
            "audiences"
        );
        assert_eq!(
            edit(&|c| {
                c.insert("audiences".into(), json!("api"));
            }),
            "audiences"
        );
        assert_eq!(
            edit(&|c| {
                c.remove("jwks");
            }),
            "jwks"
        );
        assert_eq!(
            edit(&|c| {
                c.insert("jwks".into(), json!({"keys": []}));
            }),
            "jwks"
        );
        assert_eq!(
            edit(&|c| {
                c.insert("jwks".into(), json!("{not json"));
            }),
            "jwks"
        );
        assert_eq!(
            edit(&|c| {
                c.insert("jwks".into(), json!({"keys": [{"kty": "oct", "k": "AA"}]}));
            }),
            "jwks"
        );
        assert_eq!(
            edit(&|c| {
                c.insert("paths".into(), json!(["ws"]));
            }),
            "paths"
        );
        assert_eq!(
            edit(&|c| {
                c.insert("paths".into(), json!(["/ws?x=1"]));
            }),
            "paths"
        );
        assert_eq!(
            edit(&|c| {
                c.insert("clock_skew_seconds".into(), json!(-1));
            }),
            "clock_skew_seconds"
        );
        assert_eq!(
            edit(&|c| {
                c.insert("clock_skew_seconds".into(), json!("60"));
            }),
            "clock_skew_seconds"
        );
        assert_eq!(
            edit(&|c| {
                c.insert("max_token_bytes".into(), json!(10));
            }),
            "max_token_bytes"
        );
    }

    #[test]
    fn whole_document_errors() {
        assert_eq!(Config::parse(b"").unwrap_err().field, "configuration");
        assert_eq!(Config::parse(b"[]").unwrap_err().field, "configuration");
        let dup = br#"{"issuer":"a","issuer":"b"}"#;
        let error = Config::parse(dup).unwrap_err();
        assert_eq!(error.field, "configuration");
        assert!(
            error.problem.contains("duplicate member name \"issuer\""),
            "{error}"
        );
    }

    #[test]
    fn skipped_keys_are_reported() {
        let mut value = base();
        value["jwks"]["keys"]
            .as_array_mut()
            .unwrap()
            .push(json!({"kty": "oct", "k": "AA"}));
        let config = parse(&value).unwrap();
        assert_eq!(config.skipped_keys.len(), 1);
    }

    #[test]
    fn error_messages_read_well() {
        let mut value = base();
        value.as_object_mut().unwrap().remove("audiences");
        assert_eq!(
            parse(&value).unwrap_err().to_string(),
            "field \"audiences\": is required"
        );
    }
}
