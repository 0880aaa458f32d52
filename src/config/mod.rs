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
//! with no usable key are all errors, and each error names its field by its path
//! (`from_headers[1].name`), because the plugin refuses to start on any of them.
//!
//! The document is read in three steps: [`strict_json`] refuses duplicate members; serde
//! reads it into [`raw::RawConfig`] (`deny_unknown_fields`, every type checked; `blame`
//! finds the path of a value serde refused); then each section is converted where its rules live:
//! [`TokenSources`], [`UpstreamPolicy`], [`CorrelationHeader::configured`] and
//! [`RemoteKeys`] beside their types, the scalars and the key source here.

use std::fmt;

use serde_json::Value;

use crate::decision::record::CorrelationHeader;
use crate::decision::upstream::UpstreamPolicy;
use crate::encoding::strict_json;
use crate::keys::fetch::RemoteKeys;
use crate::keys::jwks::{KeyLimits, KeyReport, KeySet, MAX_RSA_KEY_BITS_LIMIT};
use crate::request::spelling;
use crate::signature::{Crypto, MIN_RSA_MODULUS_BITS};
use crate::token::authenticator::{Authenticator, DEFAULT_MAX_TOKEN_BYTES};
use crate::token::claims::ClaimsPolicy;
use crate::token::extractor::TokenSources;
use crate::token::token_cache::DEFAULT_JWT_CACHE_SIZE;

mod blame;
pub(crate) mod raw;

use raw::{RawConfig, RemoteSection, SourcesSection, UpstreamSection};

/// Every field the configuration accepts, in documentation order: the fields of
/// [`raw::RawConfig`], as serde reads them.
pub fn fields() -> &'static [&'static str] {
    raw::field_names()
}

/// Default guarded path.
pub const DEFAULT_PATH: &str = "/ws";
/// Default clock skew, as Envoy's `jwt_authn` uses.
pub const DEFAULT_CLOCK_SKEW_SECONDS: u64 = 60;
const MAX_CLOCK_SKEW_SECONDS: u64 = 3600;
const MAX_TOKEN_BYTES_RANGE: (u64, u64) = (256, 64 * 1024);

/// A configuration error, naming the field at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The path of the field at fault (`from_headers[1].name`), or `configuration` for the
    /// document as a whole.
    pub field: String,
    pub problem: String,
}

impl ConfigError {
    pub(crate) fn new(field: &str, problem: impl Into<String>) -> Self {
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

/// `value` of `field` if within `min..=max`, `default` if not given.
pub(crate) fn bounded(
    field: &str,
    value: Option<u64>,
    (min, max): (u64, u64),
    default: u64,
) -> Result<u64, ConfigError> {
    match value {
        None => Ok(default),
        Some(value) if (min..=max).contains(&value) => Ok(value),
        Some(_) => Err(ConfigError::new(
            field,
            format!("must be an integer from {min} to {max}"),
        )),
    }
}

/// `bounded`, as a `usize`.
fn bounded_usize(
    field: &str,
    value: Option<u64>,
    range: (u64, u64),
    default: usize,
) -> Result<usize, ConfigError> {
    let default = u64::try_from(default).unwrap_or(u64::MAX);
    usize::try_from(bounded(field, value, range, default)?)
        .map_err(|_| ConfigError::new(field, "is too large"))
}

/// Where verification keys come from.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// A key set given in the configuration (`jwks`).
    Inline(KeySet),
    /// Keys fetched from the issuer.
    Remote(RemoteKeys),
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
    /// Which code verifies signatures.
    pub crypto: Crypto,
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
        let document = || {
            strict_json::parse_object(bytes)
                .map(Value::Object)
                .map_err(|error| {
                    ConfigError::new("configuration", format!("is not a JSON object: {error}"))
                })
        };
        let raw = match read(document()?) {
            Ok(raw) => raw,
            Err(message) => {
                // Only a refused document is parsed again, for blame to take apart; an
                // accepted one is read once, without a copy.
                let document = document()?;
                let field = blame::blame(&document, &message, |probe| read(probe).map(drop));
                return Err(ConfigError::new(&field, message));
            }
        };

        let paths = match raw.paths {
            None => vec![DEFAULT_PATH.to_owned()],
            Some(paths) => non_empty_strings("paths", paths)?,
        };
        for (index, path) in paths.iter().enumerate() {
            if !path.starts_with('/') || path.contains(['?', '#']) {
                return Err(ConfigError::new(
                    &format!("paths[{index}]"),
                    format!(
                        "{path:?} is not a path (it must start with '/' and have no query or \
                         fragment)"
                    ),
                ));
            }
            if !spelling::is_foldable(path) {
                return Err(ConfigError::new(
                    &format!("paths[{index}]"),
                    format!(
                        "{path:?} is not ASCII once percent-decoded: wsgate compares paths \
                         ignoring ASCII case only, so it could not guard every spelling of it"
                    ),
                ));
            }
        }
        let issuer = match raw.issuer {
            None => return Err(ConfigError::new("issuer", "is required")),
            Some(issuer) if issuer.is_empty() => {
                return Err(ConfigError::new("issuer", "must be a non-empty string"))
            }
            Some(issuer) => issuer,
        };
        let audiences = match raw.audiences {
            None => return Err(ConfigError::new("audiences", "is required")),
            Some(audiences) => non_empty_strings("audiences", audiences)?,
        };
        let clock_skew_seconds = bounded(
            "clock_skew_seconds",
            raw.clock_skew_seconds,
            (0, MAX_CLOCK_SKEW_SECONDS),
            DEFAULT_CLOCK_SKEW_SECONDS,
        )?;
        let max_token_bytes = bounded_usize(
            "max_token_bytes",
            raw.max_token_bytes,
            MAX_TOKEN_BYTES_RANGE,
            DEFAULT_MAX_TOKEN_BYTES,
        )?;
        let key_limits = KeyLimits {
            max_rsa_key_bits: bounded_usize(
                "max_rsa_key_bits",
                raw.max_rsa_key_bits,
                (MIN_RSA_MODULUS_BITS as u64, MAX_RSA_KEY_BITS_LIMIT as u64),
                KeyLimits::default().max_rsa_key_bits,
            )?,
        };
        let jwt_cache_size = bounded_usize(
            "jwt_cache_size",
            raw.jwt_cache_size,
            (0, 1_000_000),
            DEFAULT_JWT_CACHE_SIZE,
        )?;
        let upstream = UpstreamPolicy::try_from(UpstreamSection {
            claim_to_headers: raw.claim_to_headers,
            forward_payload_header: raw.forward_payload_header,
            forward: raw.forward,
        })?;
        let sources = TokenSources::try_from(SourcesSection {
            from_headers: raw.from_headers,
            from_params: raw.from_params,
            from_cookies: raw.from_cookies,
            from_subprotocol: raw.from_subprotocol,
        })?;
        let correlation = CorrelationHeader::configured(raw.correlation_headers)?;
        let crypto = match raw.crypto.as_deref() {
            None => Crypto::default(),
            Some(name) => Crypto::from_name(name).ok_or_else(|| {
                ConfigError::new(
                    "crypto",
                    format!("{name:?} is not one of \"auto\", \"host\", \"wasm\""),
                )
            })?,
        };
        let remote = |source: &'static str, url: String| RemoteSection {
            source,
            url,
            cluster: raw.cluster.clone(),
            jwks_cluster: raw.jwks_cluster.clone(),
            fetch_timeout_ms: raw.fetch_timeout_ms,
            refresh_interval_seconds: raw.refresh_interval_seconds,
            min_refresh_interval_seconds: raw.min_refresh_interval_seconds,
            max_document_bytes: raw.max_document_bytes,
        };
        // Fields that only mean something with a remote key source, and whether each is given.
        let remote_fields = [
            ("cluster", raw.cluster.is_some()),
            ("jwks_cluster", raw.jwks_cluster.is_some()),
            ("fetch_timeout_ms", raw.fetch_timeout_ms.is_some()),
            (
                "refresh_interval_seconds",
                raw.refresh_interval_seconds.is_some(),
            ),
            (
                "min_refresh_interval_seconds",
                raw.min_refresh_interval_seconds.is_some(),
            ),
            ("max_document_bytes", raw.max_document_bytes.is_some()),
        ];
        let (keys, skipped_keys) = match (raw.jwks, raw.jwks_uri, raw.openid_config_url) {
            (None, None, None) => {
                return Err(ConfigError::new(
                    "jwks",
                    "a key source is required: one of \"jwks\", \"jwks_uri\" or \
                     \"openid_config_url\"",
                ))
            }
            (Some(jwks), None, None) => {
                if let Some((remote_only, _)) = remote_fields.iter().find(|(_, given)| *given) {
                    return Err(ConfigError::new(
                        remote_only,
                        "only applies with \"jwks_uri\" or \"openid_config_url\"",
                    ));
                }
                let (keys, report) = inline_jwks(&jwks, key_limits)?;
                (KeySource::Inline(keys), report.warnings().collect())
            }
            (None, Some(url), None) => (
                KeySource::Remote(RemoteKeys::try_from(remote("jwks_uri", url))?),
                Vec::new(),
            ),
            (None, None, Some(url)) => (
                KeySource::Remote(RemoteKeys::try_from(remote("openid_config_url", url))?),
                Vec::new(),
            ),
            (jwks, jwks_uri, _) => {
                // The second of the three given, in that order.
                let second = if jwks.is_some() && jwks_uri.is_some() {
                    "jwks_uri"
                } else {
                    "openid_config_url"
                };
                return Err(ConfigError::new(
                    second,
                    "only one of \"jwks\", \"jwks_uri\" and \"openid_config_url\" may be given",
                ));
            }
        };

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
            close_on_expiry: raw.close_on_expiry.unwrap_or(false),
            jwt_cache_size,
            upstream,
            correlation,
            skipped_keys,
            crypto,
        })
    }
}

/// The document as serde reads it, or serde's message.
fn read(document: Value) -> Result<RawConfig, String> {
    serde_json::from_value(document).map_err(|error| error.to_string())
}

/// A non-empty list of non-empty strings.
fn non_empty_strings(field: &str, items: Vec<String>) -> Result<Vec<String>, ConfigError> {
    if items.is_empty() {
        return Err(ConfigError::new(
            field,
            "must be a non-empty array of non-empty strings",
        ));
    }
    if let Some(index) = items.iter().position(String::is_empty) {
        return Err(ConfigError::new(
            &format!("{field}[{index}]"),
            "must be a non-empty string",
        ));
    }
    Ok(items)
}

fn inline_jwks(value: &Value, limits: KeyLimits) -> Result<(KeySet, KeyReport), ConfigError> {
    let parsed = match value {
        Value::String(text) => KeySet::parse(text.as_bytes(), limits),
        Value::Object(jwks) => KeySet::from_object(jwks, limits),
        _ => {
            return Err(ConfigError::new(
                "jwks",
                "must be a JWKS, as a JSON string or object",
            ))
        }
    };
    parsed.map_err(|error| ConfigError::new("jwks", error.to_string()))
}

#[cfg(test)]
mod tests;
