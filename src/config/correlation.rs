//! `correlation_headers`: the request headers carried into logs and access logs.

use crate::config::ConfigError;
use crate::decision::record::{default_correlation_headers, CorrelationHeader, RECORD_FIELDS};
use crate::request::header_name;

/// The configured `correlation_headers` (`{"field_name": "header-name"}`), or the
/// defaults when not given. Field names are lower-case letters, digits and `_` and
/// not one the record already uses; header names are ones wsgate may read as plain
/// values ([`header_name::owned`]).
pub(crate) fn correlation_headers(
    raw: Option<serde_json::Map<String, serde_json::Value>>,
) -> Result<Vec<CorrelationHeader>, ConfigError> {
    let Some(entries) = raw else {
        return Ok(default_correlation_headers());
    };
    entries
        .into_iter()
        .map(|(field, header)| {
            let path = format!("correlation_headers.{field}");
            let valid = !field.is_empty()
                && field
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
                && !RECORD_FIELDS.contains(&field.as_str());
            if !valid {
                return Err(ConfigError::new(
                    &path,
                    format!(
                        "the field name must be lower-case letters, digits and '_', and \
                         not one of {}",
                        RECORD_FIELDS.join(", ")
                    ),
                ));
            }
            let Some(header) = header.as_str() else {
                return Err(ConfigError::new(
                    &path,
                    "must be a header name, as a string",
                ));
            };
            let header =
                header_name::owned(header).map_err(|problem| ConfigError::new(&path, problem))?;
            Ok(CorrelationHeader { field, header })
        })
        .collect()
}
