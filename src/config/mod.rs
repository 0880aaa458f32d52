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
//! Several issuers take `jwt_authn`'s shape instead: `providers`, a map of named
//! [`Provider`]s each holding the issuer's fields above (the claims policy, one key source,
//! what the upstream receives), and `rules`, which paths each provider guards
//! ([`Rule`](crate::decision::rules::Rule)). The single-issuer form is shorthand for one
//! unnamed provider with an exact-path rule per `paths` entry; mixing the two is an error
//! naming both fields. The remaining fields are plugin-wide.
//!
//! Parsing is strict: unknown fields, duplicate fields, missing `issuer`/`audiences`, no key
//! source or two, wrong types, remote settings without a remote source, and an inline key set
//! with no usable key are all errors, and each error names its field by its path
//! (`from_headers[1].name`), because the plugin refuses to start on any of them.
//!
//! The document is read in three steps: [`strict_json`] refuses duplicate members; serde
//! reads it into [`raw::RawConfig`] (`deny_unknown_fields`, every type checked; `blame`
//! finds the path of a value serde refused); then each section is converted by a file of its
//! own here (`sources`, `upstream`, `correlation`, `remote`, `rules`) into the type the
//! core uses, and the scalars, the providers and their key sources in this one. Each entry
//! of `providers` is read as a document of the same [`raw::RawConfig`] type, then held to
//! provider fields only. [`ConfigError`] and the raw document live in `raw`, the lowest
//! file: the core's folders never import `config`; `config` imports them.

use serde_json::Value;

use crate::decision::gate::{Gate, ProviderPolicy};
use crate::decision::policy::SocketLimit;
use crate::decision::record::CorrelationHeader;
use crate::decision::rules::Rule;
use crate::decision::upstream::UpstreamPolicy;
use crate::deny::Replies;
use crate::encoding::strict_json;
use crate::keys::jwks::{KeyLimits, KeyReport, KeySet, MAX_RSA_KEY_BITS_LIMIT};
use crate::keys::remote::RemoteKeys;
use crate::signature::{Crypto, MIN_RSA_MODULUS_BITS};
use crate::token::authenticator::{Authenticator, DEFAULT_MAX_TOKEN_BYTES};
use crate::token::claims::ClaimsPolicy;
use crate::token::extractor::TokenSources;
use crate::token::token_cache::DEFAULT_JWT_CACHE_SIZE;

mod blame;
mod correlation;
mod policies;
pub(crate) mod raw;
mod remote;
mod rules;
mod sources;
mod upstream;

pub use raw::ConfigError;
pub(crate) use raw::{bounded, non_empty_strings};

use raw::{RawConfig, RemoteSection, SourcesSection, UpstreamSection};

/// Every field the configuration accepts, in documentation order: the fields of
/// [`raw::RawConfig`], as serde reads them.
pub fn fields() -> &'static [&'static str] {
    raw::field_names()
}

/// Default clock skew, as Envoy's `jwt_authn` uses.
pub const DEFAULT_CLOCK_SKEW_SECONDS: u64 = 60;
const MAX_CLOCK_SKEW_SECONDS: u64 = 3600;
const MAX_TOKEN_BYTES_RANGE: (u64, u64) = (256, 64 * 1024);
/// `max_lifetime_seconds`: a second to ten years.
const MAX_LIFETIME_SECONDS_RANGE: (u64, u64) = (1, 10 * 366 * 86_400);

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

/// What belongs to one issuer (`jwt_authn`'s `JwtProvider`): its claims policy, its keys and
/// what the upstream receives with its tokens.
#[derive(Debug, Clone)]
pub struct Provider {
    /// Its name in `providers`; `None` in the single-issuer form, whose logs, access logs
    /// and stats name no provider.
    pub name: Option<String>,
    /// How its tokens are verified.
    pub authenticator: Authenticator,
    /// Its verification keys.
    pub keys: KeySource,
    /// What the upstream receives with a token it verified.
    pub upstream: UpstreamPolicy,
    /// `max_sockets_per_identity`, when its identities' sockets are counted.
    pub socket_limit: Option<SocketLimit>,
    /// What its inline set left out, and why: one line each, for the start-up log.
    pub skipped_keys: Vec<String>,
}

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The issuers, in name order; [`Rule`]s and decisions refer to them by index.
    pub providers: Vec<Provider>,
    /// Which paths are guarded and by which providers, tried in order.
    pub rules: Vec<Rule>,
    /// What a key set may hold (`max_rsa_key_bits`), inline or fetched.
    pub key_limits: KeyLimits,
    /// Where tokens are looked for.
    pub sources: TokenSources,
    /// Close an accepted WebSocket when its token expires (plus skew).
    pub close_on_expiry: bool,
    /// Set the access-log fields (Envoy filter state `wasm.wsgate.*`) of each decision.
    pub access_log_fields: bool,
    /// Log accepted requests at `info` (else at `debug`; refusals are always at `warn`).
    pub log_allowed: bool,
    /// Entries of the per-VM verified-token cache; 0 turns it off.
    pub jwt_cache_size: usize,
    /// Request headers carried into logs and access logs.
    pub correlation: Vec<CorrelationHeader>,
    /// Which code verifies signatures.
    pub crypto: Crypto,
    /// How refusals are answered (`keys_unavailable_status`).
    pub replies: Replies,
}

impl Config {
    /// The gate that decides requests for this configuration.
    pub fn gate(&self) -> Gate {
        let providers = self
            .providers
            .iter()
            .map(|provider| ProviderPolicy {
                name: provider.name.clone(),
                authenticator: provider.authenticator.clone(),
                upstream: provider.upstream.clone(),
                socket_limit: provider.socket_limit.clone(),
            })
            .collect();
        Gate::new(
            providers,
            self.rules.clone(),
            self.sources.clone(),
            self.replies,
        )
    }

    /// Parses and validates the plugin configuration.
    pub fn parse(bytes: &[u8]) -> Result<Config, ConfigError> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(ConfigError::new(
                "configuration",
                "is empty; wsgate needs at least \"issuer\", \"audiences\" and \"jwks\"",
            ));
        }
        let document = strict_json::parse_object(bytes)
            .map(Value::Object)
            .map_err(|error| {
                ConfigError::new("configuration", format!("is not a JSON object: {error}"))
            })?;
        let mut raw = read_blamed(document)?;

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
            ..KeyLimits::default()
        };
        let jwt_cache_size = bounded_usize(
            "jwt_cache_size",
            raw.jwt_cache_size,
            (0, 1_000_000),
            DEFAULT_JWT_CACHE_SIZE,
        )?;
        let (providers, rules) = providers_and_rules(&mut raw, key_limits, max_token_bytes)?;
        let sources = TokenSources::try_from(SourcesSection {
            from_headers: raw.from_headers,
            from_params: raw.from_params,
            from_cookies: raw.from_cookies,
            from_subprotocol: raw.from_subprotocol,
        })?;
        let correlation = correlation::correlation_headers(raw.correlation_headers)?;
        let replies = Replies {
            keys_unavailable: policies::keys_unavailable_status(raw.keys_unavailable_status)?,
        };
        let crypto = match raw.crypto.as_deref() {
            None => Crypto::default(),
            Some(name) => Crypto::from_name(name).ok_or_else(|| {
                ConfigError::new(
                    "crypto",
                    format!("{name:?} is not one of \"auto\", \"host\", \"wasm\""),
                )
            })?,
        };
        Ok(Config {
            providers,
            rules,
            key_limits,
            sources,
            close_on_expiry: raw.close_on_expiry.unwrap_or(false),
            access_log_fields: raw.access_log_fields.unwrap_or(true),
            log_allowed: raw.log_allowed.unwrap_or(false),
            jwt_cache_size,
            correlation,
            crypto,
            replies,
        })
    }
}

/// The providers and rules, from `providers` and `rules` or from the single-issuer form
/// (top-level provider fields and `paths`), which may not be mixed.
fn providers_and_rules(
    raw: &mut RawConfig,
    key_limits: KeyLimits,
    max_token_bytes: usize,
) -> Result<(Vec<Provider>, Vec<Rule>), ConfigError> {
    let paths = raw.paths.take();
    let claims = match raw.claims.take() {
        Some(raw_claims) => Some(policies::claims("claims", &raw_claims)?),
        None => None,
    };
    let origins = match raw.origins.take() {
        Some(raw_origins) => Some(policies::origins("origins", &raw_origins)?),
        None => None,
    };
    let (raw_providers, raw_rules) = match (raw.providers.take(), raw.rules.take()) {
        (None, None) => {
            let provider = Provider::configure(None, raw, key_limits, max_token_bytes, "")?;
            let rules = rules::exact_paths(paths, claims.unwrap_or_default(), origins)?;
            return Ok((vec![provider], rules));
        }
        (Some(_), None) => {
            return Err(ConfigError::new(
                "rules",
                "is required with \"providers\": it says which paths each provider guards",
            ))
        }
        (None, Some(_)) => {
            return Err(ConfigError::new(
                "providers",
                "is required with \"rules\": it names the providers the rules require",
            ))
        }
        (Some(providers), Some(rules)) => (providers, rules),
    };
    let mixed = raw
        .provider_fields_given()
        .chain(paths.is_some().then_some("paths"))
        .chain(claims.is_some().then_some("claims"))
        .chain(origins.is_some().then_some("origins"))
        .next();
    if let Some(field) = mixed {
        return Err(ConfigError::new(
            "providers",
            format!(
                "cannot be combined with the single-issuer field \"{field}\": give it inside \
                 a provider (\"paths\", \"claims\" and \"origins\": in rules)"
            ),
        ));
    }
    if raw_providers.is_empty() {
        return Err(ConfigError::new(
            "providers",
            "must name at least one provider",
        ));
    }
    let mut providers: Vec<Provider> = Vec::new();
    for (name, document) in raw_providers {
        let field = format!("providers.{name}");
        if !is_provider_name(&name) {
            return Err(ConfigError::new(
                &field,
                "a provider name is 1 to 64 ASCII letters, digits, '_' and '-' (it names \
                 stats and log fields)",
            ));
        }
        let mut raw_provider = read_provider(document).map_err(|error| error.under(&field))?;
        let provider = Provider::configure(
            Some(&name),
            &mut raw_provider,
            key_limits,
            max_token_bytes,
            &field,
        )?;
        let issuer = &provider.authenticator.policy.issuer;
        if let Some(other) = providers
            .iter()
            .find(|other| &other.authenticator.policy.issuer == issuer)
        {
            return Err(ConfigError::new(
                &format!("{field}.issuer"),
                format!(
                    "is provider \"{}\"'s issuer too: a token's provider is the one its \
                     \"iss\" names, so each provider needs an issuer of its own",
                    other.name.as_deref().unwrap_or_default()
                ),
            ));
        }
        providers.push(provider);
    }
    let names: Vec<&str> = providers
        .iter()
        .map(|provider| provider.name.as_deref().unwrap_or_default())
        .collect();
    let rules = rules::configured(&raw_rules, &names)?;
    Ok((providers, rules))
}

/// One entry of `providers`, read as a document of provider fields only; errors name their
/// field within it.
fn read_provider(document: Value) -> Result<RawConfig, ConfigError> {
    if !document.is_object() {
        return Err(ConfigError::new(
            "configuration",
            "a provider must be a JSON object",
        ));
    }
    let provider = read_blamed(document)?;
    if let Some(field) = provider.first_not_of_a_provider() {
        return Err(ConfigError::new(
            field,
            "is not a provider field: it belongs at the top level, for every provider \
             (\"paths\": as rules)",
        ));
    }
    Ok(provider)
}

/// Whether `name` may name a provider.
fn is_provider_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The fields that only mean something with a remote key source.
const REMOTE_ONLY: [&str; 7] = [
    "cluster",
    "jwks_cluster",
    "fetch_timeout_ms",
    "refresh_interval_seconds",
    "min_refresh_interval_seconds",
    "max_document_bytes",
    "max_stale_keys_seconds",
];

impl Provider {
    /// The provider `name` from the provider fields of `raw` (taken out of it); errors name
    /// their field under `prefix` (`providers.acs`, or nothing in the single-issuer form).
    fn configure(
        name: Option<&str>,
        raw: &mut RawConfig,
        key_limits: KeyLimits,
        max_token_bytes: usize,
        prefix: &str,
    ) -> Result<Provider, ConfigError> {
        Self::configure_unprefixed(name, raw, key_limits, max_token_bytes)
            .map_err(|error| error.under(prefix))
    }

    fn configure_unprefixed(
        name: Option<&str>,
        raw: &mut RawConfig,
        key_limits: KeyLimits,
        max_token_bytes: usize,
    ) -> Result<Provider, ConfigError> {
        let remote_only = raw
            .provider_fields_given()
            .find(|field| REMOTE_ONLY.contains(field));
        let issuer = match raw.issuer.take() {
            None => return Err(ConfigError::new("issuer", "is required")),
            Some(issuer) if issuer.is_empty() => {
                return Err(ConfigError::new("issuer", "must be a non-empty string"))
            }
            Some(issuer) => issuer,
        };
        let audiences = match raw.audiences.take() {
            None => return Err(ConfigError::new("audiences", "is required")),
            Some(audiences) => non_empty_strings("audiences", audiences)?,
        };
        let clock_skew_seconds = bounded(
            "clock_skew_seconds",
            raw.clock_skew_seconds,
            (0, MAX_CLOCK_SKEW_SECONDS),
            DEFAULT_CLOCK_SKEW_SECONDS,
        )?;
        let max_lifetime_seconds = raw
            .max_lifetime_seconds
            .map(|seconds| {
                bounded(
                    "max_lifetime_seconds",
                    Some(seconds),
                    MAX_LIFETIME_SECONDS_RANGE,
                    seconds,
                )
            })
            .transpose()?;
        let socket_limit = policies::socket_limit(
            raw.max_sockets_per_identity.take(),
            raw.identity_claim.take(),
        )?;
        let upstream = UpstreamPolicy::try_from(UpstreamSection {
            claim_to_headers: raw.claim_to_headers.take(),
            forward_payload_header: raw.forward_payload_header.take(),
            forward: raw.forward.take(),
        })?;
        let remote = |source: &'static str, url: String| RemoteSection {
            source,
            url,
            cluster: raw.cluster.clone(),
            jwks_cluster: raw.jwks_cluster.clone(),
            fetch_timeout_ms: raw.fetch_timeout_ms,
            refresh_interval_seconds: raw.refresh_interval_seconds,
            min_refresh_interval_seconds: raw.min_refresh_interval_seconds,
            max_document_bytes: raw.max_document_bytes,
            max_stale_keys_seconds: raw.max_stale_keys_seconds,
        };
        let (keys, skipped_keys) = match (
            raw.jwks.take(),
            raw.jwks_uri.take(),
            raw.openid_config_url.take(),
        ) {
            (None, None, None) => {
                return Err(ConfigError::new(
                    "jwks",
                    "a key source is required: one of \"jwks\", \"jwks_uri\" or \
                     \"openid_config_url\"",
                ))
            }
            (Some(jwks), None, None) => {
                if let Some(remote_only) = remote_only {
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
        Ok(Provider {
            name: name.map(str::to_owned),
            authenticator: Authenticator {
                policy: ClaimsPolicy {
                    issuer,
                    audiences,
                    clock_skew_seconds,
                    max_lifetime_seconds,
                },
                max_token_bytes,
            },
            keys,
            upstream,
            socket_limit,
            skipped_keys,
        })
    }
}

/// The document as serde reads it; a refusal names the value at fault (see [`blame`]).
fn read_blamed(document: Value) -> Result<RawConfig, ConfigError> {
    // Kept only for blame, which takes a refused document apart.
    let copy = document.clone();
    read(document).map_err(|message| {
        let field = blame::blame(&copy, &message, &|probe| read(probe).map(drop));
        ConfigError::new(&field, message)
    })
}

/// The document as serde reads it, or serde's message.
fn read(document: Value) -> Result<RawConfig, String> {
    serde_json::from_value(document).map_err(|error| error.to_string())
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
