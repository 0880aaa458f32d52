//! The configuration document as serde reads it: every field, its JSON type, nothing more.
//! Unknown fields are refused (`deny_unknown_fields`); a field given as `null` is refused
//! too, rather than taken as absent. Ranges and cross-field rules are checked where each
//! section is converted, beside the type that owns them.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use serde_json::Value;

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

    /// The same error, its field named under `prefix` (`providers.acs`; the document as a
    /// whole becomes `prefix` itself); unchanged when `prefix` is empty.
    pub(crate) fn under(mut self, prefix: &str) -> Self {
        if !prefix.is_empty() {
            self.field = if self.field == "configuration" {
                prefix.to_owned()
            } else {
                format!("{prefix}.{}", self.field)
            };
        }
        self
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

/// A non-empty list of non-empty strings.
pub(crate) fn non_empty_strings(
    field: &str,
    items: Vec<String>,
) -> Result<Vec<String>, ConfigError> {
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

/// Every field of the plugin configuration. Its field list, from [`field_names`], is the
/// one list the README's table is checked against.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfig {
    #[serde(default, deserialize_with = "present")]
    pub paths: Option<Vec<String>>,
    #[serde(default, deserialize_with = "present")]
    pub issuer: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub audiences: Option<Vec<String>>,
    /// A JWKS, as a JSON string or object.
    #[serde(default, deserialize_with = "present")]
    pub jwks: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    pub jwks_uri: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub openid_config_url: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub cluster: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub jwks_cluster: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub fetch_timeout_ms: Option<u64>,
    #[serde(default, deserialize_with = "present")]
    pub refresh_interval_seconds: Option<u64>,
    #[serde(default, deserialize_with = "present")]
    pub min_refresh_interval_seconds: Option<u64>,
    #[serde(default, deserialize_with = "present")]
    pub max_document_bytes: Option<u64>,
    #[serde(default, deserialize_with = "present")]
    pub max_rsa_key_bits: Option<u64>,
    #[serde(default, deserialize_with = "present")]
    pub clock_skew_seconds: Option<u64>,
    #[serde(default, deserialize_with = "present")]
    pub max_lifetime_seconds: Option<u64>,
    #[serde(default, deserialize_with = "present")]
    pub max_stale_keys_seconds: Option<u64>,
    #[serde(default, deserialize_with = "present")]
    pub max_token_bytes: Option<u64>,
    #[serde(default, deserialize_with = "present")]
    pub claim_to_headers: Option<Vec<RawClaimToHeader>>,
    #[serde(default, deserialize_with = "present")]
    pub forward_payload_header: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub forward: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    /// `{"field": "header-name"}`; the values are checked to be strings where the section is
    /// converted (a map of strings of its own would cost the module another map type).
    pub correlation_headers: Option<serde_json::Map<String, Value>>,
    #[serde(default, deserialize_with = "present")]
    pub from_headers: Option<Vec<RawHeaderSource>>,
    #[serde(default, deserialize_with = "present")]
    pub from_params: Option<Vec<String>>,
    #[serde(default, deserialize_with = "present")]
    pub from_cookies: Option<Vec<String>>,
    #[serde(default, deserialize_with = "present")]
    pub from_subprotocol: Option<RawSubprotocol>,
    #[serde(default, deserialize_with = "present")]
    pub claims: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    pub origins: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    pub max_sockets_per_identity: Option<u64>,
    #[serde(default, deserialize_with = "present")]
    pub identity_claim: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub keys_unavailable_status: Option<u64>,
    #[serde(default, deserialize_with = "present")]
    pub close_on_expiry: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    pub access_log_fields: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    pub log_allowed: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    pub jwt_cache_size: Option<u64>,
    #[serde(default, deserialize_with = "present")]
    pub crypto: Option<String>,
    /// Several issuers: `jwt_authn`'s `providers`, by name (in name order: serde_json's map).
    /// Each provider is read as a document of this same type, holding only provider
    /// fields: a struct of its own would cost the module about 35 KB of serde code.
    #[serde(default, deserialize_with = "present")]
    pub providers: Option<serde_json::Map<String, Value>>,
    /// `jwt_authn`'s `rules`, with `providers`: read by hand where rules are converted, for
    /// the same reason.
    #[serde(default, deserialize_with = "present")]
    pub rules: Option<Value>,
}

impl RawConfig {
    /// The provider fields given (the single-issuer form's, or one provider's), in
    /// declaration order.
    pub fn provider_fields_given(&self) -> impl Iterator<Item = &'static str> {
        [
            ("issuer", self.issuer.is_some()),
            ("audiences", self.audiences.is_some()),
            ("jwks", self.jwks.is_some()),
            ("jwks_uri", self.jwks_uri.is_some()),
            ("openid_config_url", self.openid_config_url.is_some()),
            ("cluster", self.cluster.is_some()),
            ("jwks_cluster", self.jwks_cluster.is_some()),
            ("fetch_timeout_ms", self.fetch_timeout_ms.is_some()),
            (
                "refresh_interval_seconds",
                self.refresh_interval_seconds.is_some(),
            ),
            (
                "min_refresh_interval_seconds",
                self.min_refresh_interval_seconds.is_some(),
            ),
            ("max_document_bytes", self.max_document_bytes.is_some()),
            ("clock_skew_seconds", self.clock_skew_seconds.is_some()),
            ("max_lifetime_seconds", self.max_lifetime_seconds.is_some()),
            (
                "max_stale_keys_seconds",
                self.max_stale_keys_seconds.is_some(),
            ),
            ("claim_to_headers", self.claim_to_headers.is_some()),
            (
                "forward_payload_header",
                self.forward_payload_header.is_some(),
            ),
            ("forward", self.forward.is_some()),
            (
                "max_sockets_per_identity",
                self.max_sockets_per_identity.is_some(),
            ),
            ("identity_claim", self.identity_claim.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, given)| given.then_some(name))
    }

    /// The first field given that is not a provider field (`paths` included): what one
    /// entry of `providers` may not hold.
    pub fn first_not_of_a_provider(&self) -> Option<&'static str> {
        [
            ("paths", self.paths.is_some()),
            ("max_rsa_key_bits", self.max_rsa_key_bits.is_some()),
            ("max_token_bytes", self.max_token_bytes.is_some()),
            ("correlation_headers", self.correlation_headers.is_some()),
            ("from_headers", self.from_headers.is_some()),
            ("from_params", self.from_params.is_some()),
            ("from_cookies", self.from_cookies.is_some()),
            ("from_subprotocol", self.from_subprotocol.is_some()),
            ("claims", self.claims.is_some()),
            ("origins", self.origins.is_some()),
            (
                "keys_unavailable_status",
                self.keys_unavailable_status.is_some(),
            ),
            ("close_on_expiry", self.close_on_expiry.is_some()),
            ("access_log_fields", self.access_log_fields.is_some()),
            ("log_allowed", self.log_allowed.is_some()),
            ("jwt_cache_size", self.jwt_cache_size.is_some()),
            ("crypto", self.crypto.is_some()),
            ("providers", self.providers.is_some()),
            ("rules", self.rules.is_some()),
        ]
        .into_iter()
        .find_map(|(name, given)| given.then_some(name))
    }
}

/// One `claim_to_headers` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawClaimToHeader {
    pub header_name: String,
    pub claim_name: String,
}

/// One `from_headers` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHeaderSource {
    pub name: String,
    #[serde(default)]
    pub value_prefix: String,
}

/// `from_subprotocol`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSubprotocol {
    pub prefix: String,
}

/// A field that, when given, must hold a `T` (`null` included in "given").
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(deserializer).map(Some)
}

/// The field names of [`RawConfig`], in declaration order, as serde's derive lists them.
pub(crate) fn field_names() -> &'static [&'static str] {
    /// A deserializer that only asks to be handed a struct, and keeps its field list.
    struct Fields<'a>(&'a mut &'static [&'static str]);

    impl<'de> Deserializer<'de> for Fields<'_> {
        type Error = de::value::Error;

        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(de::Error::custom("only a struct"))
        }

        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            fields: &'static [&'static str],
            _visitor: V,
        ) -> Result<V::Value, Self::Error> {
            *self.0 = fields;
            Err(de::Error::custom("field names read"))
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
            identifier ignored_any
        }
    }

    let mut fields: &'static [&'static str] = &[];
    let _read_only_the_names = RawConfig::deserialize(Fields(&mut fields));
    fields
}

/// The token-source fields (`from_*`), for [`TokenSources`](crate::token::extractor::TokenSources).
#[derive(Debug, Default)]
pub(crate) struct SourcesSection {
    pub from_headers: Option<Vec<RawHeaderSource>>,
    pub from_params: Option<Vec<String>>,
    pub from_cookies: Option<Vec<String>>,
    pub from_subprotocol: Option<RawSubprotocol>,
}

/// What the upstream receives, for
/// [`UpstreamPolicy`](crate::decision::upstream::UpstreamPolicy).
#[derive(Debug, Default)]
pub(crate) struct UpstreamSection {
    pub claim_to_headers: Option<Vec<RawClaimToHeader>>,
    pub forward_payload_header: Option<String>,
    pub forward: Option<bool>,
}

/// A remote key source, for [`RemoteKeys`](crate::keys::remote::RemoteKeys).
#[derive(Debug)]
pub(crate) struct RemoteSection {
    /// `jwks_uri` or `openid_config_url`: the field that named the source.
    pub source: &'static str,
    pub url: String,
    pub cluster: Option<String>,
    pub jwks_cluster: Option<String>,
    pub fetch_timeout_ms: Option<u64>,
    pub refresh_interval_seconds: Option<u64>,
    pub min_refresh_interval_seconds: Option<u64>,
    pub max_document_bytes: Option<u64>,
    pub max_stale_keys_seconds: Option<u64>,
}
