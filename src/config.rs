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
//! Keys come from exactly one of `jwks` (inline), `jwks_uri` (fetched) or
//! `openid_config_url` (OpenID Connect discovery, then the `jwks_uri` it names). The two
//! remote forms need `cluster`, the Envoy cluster that reaches the issuer, and take
//! `jwks_cluster` (discovery only, when the keys live on another host), `fetch_timeout_ms`,
//! `refresh_interval_seconds`, `min_refresh_interval_seconds` and `max_document_bytes`.
//!
//! Parsing is strict: unknown fields, duplicate fields, missing `issuer`/`audiences`, no key
//! source or two, wrong types, remote settings without a remote source, and an inline key set
//! with no usable key are all errors, and each error names its field, because the plugin
//! refuses to start on any of them.

use std::fmt;

use serde_json::{Map, Value};

use crate::decision::record::{default_correlation_headers, CorrelationHeader};
use crate::decision::upstream::{ClaimToHeader, UpstreamPolicy};
use crate::encoding::strict_json;
use crate::keys::fetch::Endpoint;
use crate::keys::jwks::{KeyLimits, KeyReport, KeySet, MAX_RSA_KEY_BITS_LIMIT};
use crate::request::spelling;
use crate::signature::MIN_RSA_MODULUS_BITS;
use crate::token::authenticator::{Authenticator, DEFAULT_MAX_TOKEN_BYTES};
use crate::token::claims::ClaimsPolicy;
use crate::token::extractor::{HeaderSource, TokenSources};

/// Every field the configuration accepts, in documentation order.
pub const FIELDS: [&str; 25] = [
    "paths",
    "issuer",
    "audiences",
    "jwks",
    "jwks_uri",
    "openid_config_url",
    "cluster",
    "jwks_cluster",
    "fetch_timeout_ms",
    "refresh_interval_seconds",
    "min_refresh_interval_seconds",
    "max_document_bytes",
    "max_rsa_key_bits",
    "clock_skew_seconds",
    "max_token_bytes",
    "claim_to_headers",
    "forward_payload_header",
    "forward",
    "correlation_headers",
    "from_headers",
    "from_params",
    "from_cookies",
    "from_subprotocol",
    "close_on_expiry",
    "jwt_cache_size",
];

/// Fields that only mean something with a remote key source.
const REMOTE_FIELDS: [&str; 6] = [
    "cluster",
    "jwks_cluster",
    "fetch_timeout_ms",
    "refresh_interval_seconds",
    "min_refresh_interval_seconds",
    "max_document_bytes",
];

/// Default guarded path.
pub const DEFAULT_PATH: &str = "/ws";
/// Default clock skew, as Envoy's `jwt_authn` uses.
pub const DEFAULT_CLOCK_SKEW_SECONDS: u64 = 60;
const MAX_CLOCK_SKEW_SECONDS: u64 = 3600;
const MAX_TOKEN_BYTES_RANGE: (u64, u64) = (256, 64 * 1024);
/// Default timeout of one fetch.
pub const DEFAULT_FETCH_TIMEOUT_MS: u64 = 5_000;
/// Default interval between scheduled refreshes.
pub const DEFAULT_REFRESH_INTERVAL_SECONDS: u64 = 600;
/// Default shortest interval between unknown-`kid` refetches.
pub const DEFAULT_MIN_REFRESH_INTERVAL_SECONDS: u64 = 30;
/// Default cap on a discovery or JWKS document.
pub const DEFAULT_MAX_DOCUMENT_BYTES: u64 = 256 * 1024;

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
    /// Keys fetched from the issuer.
    Remote(RemoteKeys),
}

/// The first document to fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteDocument {
    /// An OpenID Connect discovery document (`openid_config_url`); its `jwks_uri` is then
    /// fetched through `jwks_cluster`.
    Discovery {
        discovery: Endpoint,
        jwks_cluster: String,
    },
    /// The JWKS itself (`jwks_uri`).
    Jwks(Endpoint),
}

/// How keys are fetched from the issuer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteKeys {
    pub document: RemoteDocument,
    pub fetch_timeout_ms: u64,
    pub refresh_interval_seconds: u64,
    pub min_refresh_interval_seconds: u64,
    pub max_document_bytes: usize,
}

impl RemoteKeys {
    /// The URL of the first document, which also names the shared key set.
    pub fn source_url(&self) -> &str {
        match &self.document {
            RemoteDocument::Discovery { discovery, .. } => &discovery.url,
            RemoteDocument::Jwks(jwks) => &jwks.url,
        }
    }
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
    /// What a key set may hold (`max_rsa_key_bits`), inline or fetched.
    pub key_limits: KeyLimits,
    /// Where tokens are looked for.
    pub sources: TokenSources,
    /// Close an accepted WebSocket when its token expires (plus skew).
    pub close_on_expiry: bool,
    /// Entries of the per-VM verified-token cache; 0 turns it off.
    pub jwt_cache_size: usize,
    /// What the upstream receives with an accepted request.
    pub upstream: UpstreamPolicy,
    /// Request headers carried into logs and access logs.
    pub correlation: Vec<CorrelationHeader>,
    /// What an inline set left out, and why: one line each, for the start-up log.
    pub skipped_keys: Vec<String>,
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
        if let Some(bad) = paths.iter().find(|path| !spelling::is_foldable(path)) {
            return Err(ConfigError::new(
                "paths",
                format!(
                    "{bad:?} is not ASCII once percent-decoded: wsgate compares paths ignoring \
                     ASCII case only, so it could not guard every spelling of it"
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
        let key_limits = key_limits(&object)?;
        let (keys, skipped_keys) = key_source(&object, key_limits)?;
        let upstream = upstream_policy(&object)?;
        let sources = token_sources(&object)?;
        let close_on_expiry = boolean(&object, "close_on_expiry")?;
        let jwt_cache_size = integer(&object, "jwt_cache_size", (0, 1_000_000))?
            .map_or(
                Ok(crate::token::token_cache::DEFAULT_JWT_CACHE_SIZE),
                usize::try_from,
            )
            .map_err(|_| ConfigError::new("jwt_cache_size", "is too large"))?;
        let correlation = correlation_headers(&object)?;

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
            keys,
            key_limits,
            sources,
            close_on_expiry,
            jwt_cache_size,
            upstream,
            correlation,
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

/// Headers wsgate may never be asked to write or to read as correlation values.
const RESERVED_HEADERS: [&str; 12] = [
    "authorization",
    "host",
    "connection",
    "upgrade",
    "content-length",
    "transfer-encoding",
    "te",
    "keep-alive",
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-protocol",
    "sec-websocket-extensions",
];

/// Whether `text` is an HTTP token (RFC 9110 §5.6.2): what header names and WebSocket
/// subprotocols are made of. Never empty.
fn is_token(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// A lower-cased header name, refusing pseudo-headers, non-token characters and the
/// headers the handshake and the token depend on.
fn header_name(value: &Value, field: &str) -> Result<String, ConfigError> {
    let name = value
        .as_str()
        .filter(|name| !name.is_empty())
        .ok_or_else(|| ConfigError::new(field, "header names must be non-empty strings"))?
        .to_ascii_lowercase();
    if !is_token(&name) {
        return Err(ConfigError::new(
            field,
            format!("{name:?} is not a valid header name"),
        ));
    }
    if RESERVED_HEADERS.contains(&name.as_str()) {
        return Err(ConfigError::new(field, format!("{name:?} is reserved")));
    }
    Ok(name)
}

fn upstream_policy(object: &Map<String, Value>) -> Result<UpstreamPolicy, ConfigError> {
    let mut claim_to_headers = Vec::new();
    if let Some(value) = object.get("claim_to_headers") {
        let entries = value.as_array().ok_or_else(|| {
            ConfigError::new(
                "claim_to_headers",
                "must be an array of {\"header_name\", \"claim_name\"}",
            )
        })?;
        for entry in entries {
            let shape = || {
                ConfigError::new(
                    "claim_to_headers",
                    "each entry is {\"header_name\": ..., \"claim_name\": ...}",
                )
            };
            let entry = entry.as_object().ok_or_else(shape)?;
            if entry.len() != 2 {
                return Err(shape());
            }
            let header_name = header_name(
                entry.get("header_name").ok_or_else(shape)?,
                "claim_to_headers",
            )?;
            let claim_name = entry
                .get("claim_name")
                .and_then(Value::as_str)
                .filter(|name| !name.is_empty())
                .ok_or_else(shape)?
                .to_owned();
            claim_to_headers.push(ClaimToHeader {
                header_name,
                claim_name,
            });
        }
    }
    let forward_payload_header = match object.get("forward_payload_header") {
        None => None,
        Some(value) => Some(header_name(value, "forward_payload_header")?),
    };
    let mut seen: Vec<&str> = claim_to_headers
        .iter()
        .map(|entry| entry.header_name.as_str())
        .collect();
    seen.extend(forward_payload_header.as_deref());
    seen.sort_unstable();
    if let Some(pair) = seen.windows(2).find(|pair| pair.first() == pair.get(1)) {
        let field = if forward_payload_header.as_deref() == pair.first().copied() {
            "forward_payload_header"
        } else {
            "claim_to_headers"
        };
        return Err(ConfigError::new(
            field,
            format!(
                "header {:?} is written twice",
                pair.first().copied().unwrap_or_default()
            ),
        ));
    }
    let forward = boolean(object, "forward")?;
    Ok(UpstreamPolicy {
        claim_to_headers,
        forward_payload_header,
        forward,
    })
}

fn boolean(object: &Map<String, Value>, field: &str) -> Result<bool, ConfigError> {
    match object.get(field) {
        None => Ok(false),
        Some(Value::Bool(flag)) => Ok(*flag),
        Some(_) => Err(ConfigError::new(field, "must be true or false")),
    }
}

/// A list of non-empty strings free of `forbidden` characters.
fn names(
    object: &Map<String, Value>,
    field: &str,
    forbidden: &[char],
) -> Result<Vec<String>, ConfigError> {
    let Some(value) = object.get(field) else {
        return Ok(Vec::new());
    };
    let problem = || {
        ConfigError::new(
            field,
            format!(
                "must be an array of non-empty ASCII names without {forbidden:?}, '%', '+' or \
                 spaces (names are compared percent-decoded, ignoring ASCII case)"
            ),
        )
    };
    value
        .as_array()
        .ok_or_else(problem)?
        .iter()
        .map(|item| {
            item.as_str()
                .filter(|name| {
                    !name.is_empty()
                        && name.is_ascii()
                        && !name.contains(forbidden)
                        && !name.contains(['%', '+'])
                        && !name.contains(char::is_whitespace)
                })
                .map(str::to_owned)
                .ok_or_else(problem)
        })
        .collect()
}

/// Headers that cannot carry a token: the handshake's own, and those with a source of
/// their own (`from_cookies`, `from_subprotocol`).
const NOT_TOKEN_HEADERS: [&str; 8] = [
    "host",
    "connection",
    "upgrade",
    "cookie",
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-protocol",
    "sec-websocket-extensions",
];

fn token_sources(object: &Map<String, Value>) -> Result<TokenSources, ConfigError> {
    let defaults = TokenSources::default();
    let from_headers = match object.get("from_headers") {
        None => defaults.from_headers,
        Some(value) => {
            let shape = || {
                ConfigError::new(
                    "from_headers",
                    "must be an array of {\"name\", \"value_prefix\"}",
                )
            };
            let mut headers = Vec::new();
            for entry in value.as_array().ok_or_else(shape)? {
                let entry = entry.as_object().ok_or_else(shape)?;
                if entry
                    .keys()
                    .any(|key| key != "name" && key != "value_prefix")
                {
                    return Err(shape());
                }
                let name = entry
                    .get("name")
                    .and_then(Value::as_str)
                    .map(str::to_ascii_lowercase)
                    .filter(|name| is_token(name) && !NOT_TOKEN_HEADERS.contains(&name.as_str()))
                    .ok_or_else(|| {
                        ConfigError::new(
                            "from_headers",
                            "each \"name\" must be a header name that can carry a token",
                        )
                    })?;
                let value_prefix = match entry.get("value_prefix") {
                    None => String::new(),
                    Some(Value::String(prefix)) => prefix.clone(),
                    Some(_) => return Err(shape()),
                };
                headers.push(HeaderSource { name, value_prefix });
            }
            headers
        }
    };
    let from_params = names(object, "from_params", &['&', '=', '?', '#'])?;
    let from_cookies = names(object, "from_cookies", &[';', '=', ','])?;
    let from_subprotocol = match object.get("from_subprotocol") {
        None => None,
        Some(Value::Object(entry)) if entry.len() == 1 => {
            let prefix = entry
                .get("prefix")
                .and_then(Value::as_str)
                .filter(|prefix| is_token(prefix))
                .ok_or_else(|| {
                    ConfigError::new(
                        "from_subprotocol",
                        "\"prefix\" must be a non-empty subprotocol token",
                    )
                })?;
            Some(prefix.to_owned())
        }
        Some(_) => {
            return Err(ConfigError::new(
                "from_subprotocol",
                "must be {\"prefix\": \"...\"}",
            ))
        }
    };
    let sources = TokenSources {
        from_headers,
        from_params,
        from_cookies,
        from_subprotocol,
    };
    if sources
        == (TokenSources {
            from_headers: Vec::new(),
            ..TokenSources::default()
        })
    {
        return Err(ConfigError::new(
            "from_headers",
            "no token source is left: give at least one",
        ));
    }
    Ok(sources)
}

/// Names the log line and access log already use.
const RECORD_FIELDS: [&str; 8] = [
    "decision",
    "reason",
    "status",
    "path",
    "iss",
    "sub",
    "claimed_iss",
    "claimed_sub",
];

fn correlation_headers(object: &Map<String, Value>) -> Result<Vec<CorrelationHeader>, ConfigError> {
    let Some(value) = object.get("correlation_headers") else {
        return Ok(default_correlation_headers());
    };
    let entries = value.as_object().ok_or_else(|| {
        ConfigError::new(
            "correlation_headers",
            "must be an object of {\"field_name\": \"header-name\"}",
        )
    })?;
    let mut correlation = Vec::new();
    for (field, header) in entries {
        let valid = !field.is_empty()
            && field
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            && !RECORD_FIELDS.contains(&field.as_str());
        if !valid {
            return Err(ConfigError::new(
                "correlation_headers",
                format!(
                    "{field:?} must be lower-case letters, digits and '_', and not one of {}",
                    RECORD_FIELDS.join(", ")
                ),
            ));
        }
        let header = header_name(header, "correlation_headers")?;
        correlation.push(CorrelationHeader {
            field: field.clone(),
            header,
        });
    }
    Ok(correlation)
}

fn key_limits(object: &Map<String, Value>) -> Result<KeyLimits, ConfigError> {
    let range = (MIN_RSA_MODULUS_BITS as u64, MAX_RSA_KEY_BITS_LIMIT as u64);
    let mut limits = KeyLimits::default();
    if let Some(bits) = integer(object, "max_rsa_key_bits", range)? {
        limits.max_rsa_key_bits = usize::try_from(bits)
            .map_err(|_| ConfigError::new("max_rsa_key_bits", "is too large"))?;
    }
    Ok(limits)
}

fn key_source(
    object: &Map<String, Value>,
    limits: KeyLimits,
) -> Result<(KeySource, Vec<String>), ConfigError> {
    let sources: Vec<&str> = ["jwks", "jwks_uri", "openid_config_url"]
        .into_iter()
        .filter(|field| object.contains_key(*field))
        .collect();
    match sources.as_slice() {
        [] => Err(ConfigError::new(
            "jwks",
            "a key source is required: one of \"jwks\", \"jwks_uri\" or \"openid_config_url\"",
        )),
        ["jwks"] => {
            if let Some(remote_only) = REMOTE_FIELDS
                .iter()
                .find(|field| object.contains_key(**field))
            {
                return Err(ConfigError::new(
                    remote_only,
                    "only applies with \"jwks_uri\" or \"openid_config_url\"",
                ));
            }
            let (keys, report) = inline_jwks(object.get("jwks"), limits)?;
            Ok((KeySource::Inline(keys), report.warnings().collect()))
        }
        [remote] => Ok((KeySource::Remote(remote_keys(object, remote)?), Vec::new())),
        [_, second, ..] => Err(ConfigError::new(
            second,
            "only one of \"jwks\", \"jwks_uri\" and \"openid_config_url\" may be given",
        )),
    }
}

fn inline_jwks(
    value: Option<&Value>,
    limits: KeyLimits,
) -> Result<(KeySet, KeyReport), ConfigError> {
    let parsed = match value {
        Some(Value::String(text)) => KeySet::parse(text.as_bytes(), limits),
        Some(Value::Object(jwks)) => KeySet::from_object(jwks, limits),
        _ => {
            return Err(ConfigError::new(
                "jwks",
                "must be a JWKS, as a JSON string or object",
            ))
        }
    };
    parsed.map_err(|error| ConfigError::new("jwks", error.to_string()))
}

fn remote_keys(object: &Map<String, Value>, source: &str) -> Result<RemoteKeys, ConfigError> {
    let url = required_string(object, source)?;
    let cluster = match object.get("cluster") {
        None => {
            return Err(ConfigError::new(
                "cluster",
                format!("is required with \"{source}\""),
            ))
        }
        Some(_) => required_string(object, "cluster")?,
    };
    let endpoint =
        Endpoint::parse(&url, &cluster).map_err(|problem| ConfigError::new(source, problem))?;
    let document = if source == "openid_config_url" {
        let jwks_cluster = match object.get("jwks_cluster") {
            None => cluster,
            Some(_) => required_string(object, "jwks_cluster")?,
        };
        RemoteDocument::Discovery {
            discovery: endpoint,
            jwks_cluster,
        }
    } else {
        if object.contains_key("jwks_cluster") {
            return Err(ConfigError::new(
                "jwks_cluster",
                "only applies with \"openid_config_url\"; with \"jwks_uri\" use \"cluster\"",
            ));
        }
        RemoteDocument::Jwks(endpoint)
    };
    let fetch_timeout_ms =
        integer(object, "fetch_timeout_ms", (100, 60_000))?.unwrap_or(DEFAULT_FETCH_TIMEOUT_MS);
    let refresh_interval_seconds = integer(object, "refresh_interval_seconds", (1, 7 * 86_400))?
        .unwrap_or(DEFAULT_REFRESH_INTERVAL_SECONDS);
    let min_refresh_interval_seconds =
        integer(object, "min_refresh_interval_seconds", (0, 86_400))?
            .unwrap_or(DEFAULT_MIN_REFRESH_INTERVAL_SECONDS.min(refresh_interval_seconds));
    if min_refresh_interval_seconds > refresh_interval_seconds {
        return Err(ConfigError::new(
            "min_refresh_interval_seconds",
            "must not exceed \"refresh_interval_seconds\"",
        ));
    }
    let max_document_bytes = integer(object, "max_document_bytes", (1024, 16 * 1024 * 1024))?
        .unwrap_or(DEFAULT_MAX_DOCUMENT_BYTES);
    Ok(RemoteKeys {
        document,
        fetch_timeout_ms,
        refresh_interval_seconds,
        min_refresh_interval_seconds,
        max_document_bytes: usize::try_from(max_document_bytes)
            .map_err(|_| ConfigError::new("max_document_bytes", "is too large"))?,
    })
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
        let KeySource::Inline(keys) = &config.keys else {
            panic!("inline")
        };
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
        let KeySource::Inline(keys) = &config.keys else {
            panic!("inline")
        };
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
                c.insert("paths".into(), json!(["/m%C3%A9dia"]));
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

    fn remote(extra: Value) -> Value {
        let mut value = base();
        value.as_object_mut().unwrap().remove("jwks");
        for (key, item) in extra.as_object().unwrap() {
            value[key] = item.clone();
        }
        value
    }

    #[test]
    fn discovery_with_defaults() {
        let value = remote(json!({
            "openid_config_url": "https://acscallautomation.communication.azure.com/calling/.well-known/acsopenidconfiguration",
            "cluster": "acs"
        }));
        let KeySource::Remote(keys) = parse(&value).unwrap().keys else {
            panic!("remote")
        };
        let RemoteDocument::Discovery {
            discovery,
            jwks_cluster,
        } = &keys.document
        else {
            panic!("discovery")
        };
        assert_eq!(
            discovery.authority,
            "acscallautomation.communication.azure.com"
        );
        assert_eq!(
            discovery.path,
            "/calling/.well-known/acsopenidconfiguration"
        );
        assert_eq!(jwks_cluster, "acs");
        assert_eq!(
            (
                keys.fetch_timeout_ms,
                keys.refresh_interval_seconds,
                keys.min_refresh_interval_seconds,
                keys.max_document_bytes
            ),
            (5_000, 600, 30, 256 * 1024)
        );
    }

    #[test]
    fn jwks_uri_with_every_setting() {
        let value = remote(json!({
            "jwks_uri": "http://127.0.0.1:8081/keys",
            "cluster": "issuer",
            "fetch_timeout_ms": 1000,
            "refresh_interval_seconds": 5,
            "min_refresh_interval_seconds": 2,
            "max_document_bytes": 4096
        }));
        let KeySource::Remote(keys) = parse(&value).unwrap().keys else {
            panic!("remote")
        };
        assert_eq!(
            keys.document,
            RemoteDocument::Jwks(Endpoint::parse("http://127.0.0.1:8081/keys", "issuer").unwrap())
        );
        assert_eq!(keys.source_url(), "http://127.0.0.1:8081/keys");
        assert_eq!(
            (
                keys.fetch_timeout_ms,
                keys.refresh_interval_seconds,
                keys.min_refresh_interval_seconds,
                keys.max_document_bytes
            ),
            (1000, 5, 2, 4096)
        );
    }

    #[test]
    fn key_source_errors_name_their_field() {
        assert_eq!(error_field(&remote(json!({}))), "jwks");
        assert_eq!(
            error_field(&remote(json!({"jwks_uri": "https://i/k"}))),
            "cluster"
        );
        assert_eq!(
            error_field(&remote(json!({"jwks_uri": "https://i/k", "cluster": ""}))),
            "cluster"
        );
        assert_eq!(
            error_field(&remote(json!({"jwks_uri": "ftp://i/k", "cluster": "c"}))),
            "jwks_uri"
        );
        assert_eq!(
            error_field(&remote(json!({"openid_config_url": 7, "cluster": "c"}))),
            "openid_config_url"
        );
        assert_eq!(
            error_field(&remote(
                json!({"jwks_uri": "https://i/k", "openid_config_url": "https://i/d", "cluster": "c"})
            )),
            "openid_config_url"
        );
        assert_eq!(
            error_field(&remote(
                json!({"jwks_uri": "https://i/k", "cluster": "c", "jwks_cluster": "d"})
            )),
            "jwks_cluster"
        );
        assert_eq!(
            error_field(&remote(
                json!({"jwks_uri": "https://i/k", "cluster": "c", "fetch_timeout_ms": 0})
            )),
            "fetch_timeout_ms"
        );
        assert_eq!(
            error_field(&remote(
                json!({"jwks_uri": "https://i/k", "cluster": "c", "refresh_interval_seconds": 10, "min_refresh_interval_seconds": 20})
            )),
            "min_refresh_interval_seconds"
        );
        assert_eq!(
            error_field(&remote(
                json!({"jwks_uri": "https://i/k", "cluster": "c", "max_document_bytes": 10})
            )),
            "max_document_bytes"
        );
        let mut both = base();
        both["jwks_uri"] = json!("https://i/k");
        assert_eq!(error_field(&both), "jwks_uri");
        let mut stray = base();
        stray["cluster"] = json!("c");
        assert_eq!(error_field(&stray), "cluster");
    }

    #[test]
    fn identity_and_correlation_settings() {
        let mut value = base();
        value["claim_to_headers"] = json!([{"header_name": "X-JWT-Sub", "claim_name": "sub"}]);
        value["forward_payload_header"] = json!("x-jwt-payload");
        value["forward"] = json!(true);
        value["correlation_headers"] = json!({"call_id": "x-call-id"});
        let config = parse(&value).unwrap();
        assert_eq!(config.upstream.claim_to_headers[0].header_name, "x-jwt-sub");
        assert_eq!(
            config.upstream.forward_payload_header.as_deref(),
            Some("x-jwt-payload")
        );
        assert!(config.upstream.forward);
        assert_eq!(
            config.correlation,
            [CorrelationHeader {
                field: "call_id".into(),
                header: "x-call-id".into()
            }]
        );
        let defaults = parse(&base()).unwrap();
        assert!(!defaults.upstream.forward);
        assert_eq!(defaults.correlation, default_correlation_headers());
    }

    #[test]
    fn identity_setting_errors_name_their_field() {
        let cases = [
            (
                "claim_to_headers",
                json!({"header_name": "x", "claim_name": "sub"}),
            ),
            ("claim_to_headers", json!([{"header_name": "x"}])),
            (
                "claim_to_headers",
                json!([{"header_name": "x", "claim_name": "sub", "extra": 1}]),
            ),
            (
                "claim_to_headers",
                json!([{"header_name": "authorization", "claim_name": "sub"}]),
            ),
            (
                "claim_to_headers",
                json!([{"header_name": ":path", "claim_name": "sub"}]),
            ),
            (
                "claim_to_headers",
                json!([{"header_name": "a b", "claim_name": "sub"}]),
            ),
            (
                "claim_to_headers",
                json!([{"header_name": "x", "claim_name": "sub"}, {"header_name": "X", "claim_name": "iss"}]),
            ),
            ("forward_payload_header", json!(1)),
            ("forward", json!("yes")),
            ("correlation_headers", json!(["x-a"])),
            ("correlation_headers", json!({"Bad-Name": "x-a"})),
            ("correlation_headers", json!({"sub": "x-a"})),
            ("correlation_headers", json!({"call": "host"})),
        ];
        for (field, setting) in cases {
            let mut value = base();
            value[field] = setting.clone();
            assert_eq!(error_field(&value), field, "{setting}");
        }
        let mut clash = base();
        clash["claim_to_headers"] = json!([{"header_name": "x-p", "claim_name": "sub"}]);
        clash["forward_payload_header"] = json!("x-p");
        assert_eq!(error_field(&clash), "forward_payload_header");
    }

    #[test]
    fn token_sources_and_close_on_expiry() {
        let defaults = parse(&base()).unwrap();
        assert_eq!(defaults.sources, TokenSources::default());
        assert!(!defaults.close_on_expiry);
        let mut value = base();
        value["from_headers"] =
            json!([{"name": "X-Token"}, {"name": "authorization", "value_prefix": "Bearer "}]);
        value["from_params"] = json!(["access_token"]);
        value["from_cookies"] = json!(["session"]);
        value["from_subprotocol"] = json!({"prefix": "access_token."});
        value["close_on_expiry"] = json!(true);
        let config = parse(&value).unwrap();
        assert_eq!(
            config.sources.from_headers[0],
            HeaderSource {
                name: "x-token".into(),
                value_prefix: String::new()
            }
        );
        assert_eq!(config.sources.from_params, ["access_token"]);
        assert_eq!(config.sources.from_cookies, ["session"]);
        assert_eq!(
            config.sources.from_subprotocol.as_deref(),
            Some("access_token.")
        );
        assert!(config.close_on_expiry);
        // Only a query parameter.
        let mut only_param = base();
        only_param["from_headers"] = json!([]);
        only_param["from_params"] = json!(["t"]);
        assert!(parse(&only_param).unwrap().sources.from_headers.is_empty());
    }

    #[test]
    fn token_source_errors_name_their_field() {
        let with = |field: &str, setting: Value| {
            let mut value = base();
            value[field] = setting;
            error_field(&value)
        };
        assert_eq!(with("from_headers", json!([])), "from_headers");
        assert_eq!(
            with("from_headers", json!([{"name": "cookie"}])),
            "from_headers"
        );
        assert_eq!(
            with("from_headers", json!([{"name": "sec-websocket-protocol"}])),
            "from_headers"
        );
        assert_eq!(
            with("from_headers", json!([{"name": "x", "prefix": "B"}])),
            "from_headers"
        );
        assert_eq!(with("from_headers", json!({"name": "x"})), "from_headers");
        assert_eq!(with("from_params", json!(["a&b"])), "from_params");
        assert_eq!(with("from_params", json!([""])), "from_params");
        assert_eq!(
            with("from_params", json!(["access%5Ftoken"])),
            "from_params"
        );
        assert_eq!(
            with("from_cookies", json!(["s\u{e9}ssion"])),
            "from_cookies"
        );
        assert_eq!(with("from_cookies", json!(["a;b"])), "from_cookies");
        assert_eq!(
            with("from_subprotocol", json!({"prefix": ""})),
            "from_subprotocol"
        );
        assert_eq!(
            with("from_subprotocol", json!({"prefix": "a b"})),
            "from_subprotocol"
        );
        assert_eq!(
            with("from_subprotocol", json!("access_token.")),
            "from_subprotocol"
        );
        assert_eq!(with("close_on_expiry", json!(1)), "close_on_expiry");
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
        assert!(
            config.skipped_keys[0].contains("symmetric"),
            "{:?}",
            config.skipped_keys
        );
    }

    #[test]
    fn max_rsa_key_bits_bounds_the_keys() {
        let big = testbed::keys::rsa_jwk_of_bits(6144, "big");
        let mut value = base();
        value["jwks"]["keys"].as_array_mut().unwrap().push(big);
        let config = parse(&value).unwrap();
        assert_eq!(config.key_limits.max_rsa_key_bits, 4096, "the default");
        assert_eq!(config.skipped_keys.len(), 1);
        assert!(
            config.skipped_keys[0].contains("6144 bits; max_rsa_key_bits is 4096"),
            "{:?}",
            config.skipped_keys
        );
        value["max_rsa_key_bits"] = json!(8192);
        let config = parse(&value).unwrap();
        assert!(config.skipped_keys.is_empty(), "{:?}", config.skipped_keys);
        for bad in [json!(2047), json!(8193), json!("4096")] {
            value["max_rsa_key_bits"] = bad;
            assert_eq!(error_field(&value), "max_rsa_key_bits");
        }
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
