//! The policies beyond a valid token: `claims` and `origins` (per rule, or top level in the
//! single-issuer form), `max_sockets_per_identity` with `identity_claim` (per provider), and
//! `keys_unavailable_status` (plugin-wide).

use serde_json::Value;

use crate::config::rules::{object, string};
use crate::config::{bounded, non_empty_strings, ConfigError};
use crate::decision::policy::{ClaimRequirement, SocketLimit};
use crate::deny::KeysUnavailableStatus;

/// The default `identity_claim`.
pub const DEFAULT_IDENTITY_CLAIM: &str = "sub";
/// `max_sockets_per_identity`: one to a million.
const MAX_SOCKETS_RANGE: (u64, u64) = (1, 1_000_000);

/// `claims`: a non-empty array of `{"name": ..., "values": [...]}`.
pub(crate) fn claims(field: &str, raw: &Value) -> Result<Vec<ClaimRequirement>, ConfigError> {
    let entries = raw
        .as_array()
        .filter(|entries| !entries.is_empty())
        .ok_or_else(|| {
            ConfigError::new(field, "must be a non-empty array of {\"name\", \"values\"}")
        })?;
    entries
        .iter()
        .enumerate()
        .map(|(index, entry)| {
            let item = format!("{field}[{index}]");
            let members = object(&item, entry, &["name", "values"])?;
            let name_field = format!("{item}.name");
            let name = members
                .get("name")
                .ok_or_else(|| ConfigError::new(&name_field, "is required"))?;
            let name = string(&name_field, name)?;
            if name.is_empty() || name.split('.').any(str::is_empty) {
                return Err(ConfigError::new(
                    &name_field,
                    "must name a claim: a non-empty name, or a dotted path without empty parts",
                ));
            }
            let values_field = format!("{item}.values");
            let values = members
                .get("values")
                .and_then(Value::as_array)
                .ok_or_else(|| ConfigError::new(&values_field, "must be an array of strings"))?
                .iter()
                .enumerate()
                .map(|(at, value)| {
                    string(&format!("{values_field}[{at}]"), value).map(str::to_owned)
                })
                .collect::<Result<Vec<String>, ConfigError>>()?;
            Ok(ClaimRequirement {
                name: name.to_owned(),
                values: non_empty_strings(&values_field, values)?,
            })
        })
        .collect()
}

/// `origins`: a non-empty array, each an origin as browsers send it, `scheme://host[:port]`;
/// lower-cased.
pub(crate) fn origins(field: &str, raw: &Value) -> Result<Vec<String>, ConfigError> {
    let listed = raw
        .as_array()
        .filter(|listed| !listed.is_empty())
        .ok_or_else(|| {
            ConfigError::new(
                field,
                "must be a non-empty array of origins (leave it out to admit any)",
            )
        })?;
    listed
        .iter()
        .enumerate()
        .map(|(index, origin)| {
            let item = format!("{field}[{index}]");
            let origin = string(&item, origin)?;
            let lower = origin.to_ascii_lowercase();
            let refuse = |why: &str| Err(ConfigError::new(&item, format!("{origin:?} {why}")));
            let Some((scheme, authority)) = lower.split_once("://") else {
                return refuse(
                    "is not an origin: write it as browsers send it, scheme://host[:port]",
                );
            };
            if scheme != "https" && scheme != "http" {
                return refuse("is not an http or https origin");
            }
            if authority.is_empty() || authority.contains(['/', '?', '#', '@', ' ', '*', ',']) {
                return refuse(
                    "is not an origin: no path, query, user or wildcard (scheme://host[:port])",
                );
            }
            let default_port = if scheme == "https" { ":443" } else { ":80" };
            if authority.ends_with(default_port) {
                return refuse("names the default port, which browsers never send: drop it");
            }
            Ok(lower)
        })
        .collect()
}

/// `max_sockets_per_identity` and `identity_claim`: the limit, if any.
pub(crate) fn socket_limit(
    max: Option<u64>,
    identity_claim: Option<String>,
) -> Result<Option<SocketLimit>, ConfigError> {
    let Some(max) = max else {
        if identity_claim.is_some() {
            return Err(ConfigError::new(
                "identity_claim",
                "only applies with \"max_sockets_per_identity\"",
            ));
        }
        return Ok(None);
    };
    let max = bounded("max_sockets_per_identity", Some(max), MAX_SOCKETS_RANGE, 1)?;
    let identity_claim = identity_claim.unwrap_or_else(|| DEFAULT_IDENTITY_CLAIM.to_owned());
    if identity_claim.is_empty() {
        return Err(ConfigError::new(
            "identity_claim",
            "must be a non-empty string",
        ));
    }
    Ok(Some(SocketLimit {
        max: u32::try_from(max).unwrap_or(u32::MAX),
        identity_claim,
    }))
}

/// `keys_unavailable_status`: 503 (the default) or 401.
pub(crate) fn keys_unavailable_status(
    raw: Option<u64>,
) -> Result<KeysUnavailableStatus, ConfigError> {
    match raw {
        None | Some(503) => Ok(KeysUnavailableStatus::ServiceUnavailable),
        Some(401) => Ok(KeysUnavailableStatus::Unauthorized),
        Some(_) => Err(ConfigError::new(
            "keys_unavailable_status",
            "must be 503 (retry later) or 401 (as jwt_authn answers)",
        )),
    }
}
