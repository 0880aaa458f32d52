//! The upstream fields (`claim_to_headers`, `forward_payload_header`, `forward`) as an
//! [`UpstreamPolicy`].

use crate::config::raw::UpstreamSection;
use crate::config::ConfigError;
use crate::decision::upstream::{ClaimToHeader, UpstreamPolicy};
use crate::request::header_name;

impl TryFrom<UpstreamSection> for UpstreamPolicy {
    type Error = ConfigError;

    /// The configured policy. Header names must be ones wsgate may own
    /// ([`header_name::owned`]), claim names non-empty, and no header written twice.
    fn try_from(raw: UpstreamSection) -> Result<Self, ConfigError> {
        let claim_to_headers = raw
            .claim_to_headers
            .unwrap_or_default()
            .into_iter()
            .enumerate()
            .map(|(index, entry)| {
                let field = |name: &str| format!("claim_to_headers[{index}].{name}");
                let header_name = header_name::owned(&entry.header_name)
                    .map_err(|problem| ConfigError::new(&field("header_name"), problem))?;
                if entry.claim_name.is_empty() {
                    return Err(ConfigError::new(&field("claim_name"), "must not be empty"));
                }
                Ok(ClaimToHeader {
                    header_name,
                    claim_name: entry.claim_name,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let forward_payload_header = raw
            .forward_payload_header
            .map(|name| header_name::owned(&name))
            .transpose()
            .map_err(|problem| ConfigError::new("forward_payload_header", problem))?;
        let mut seen: Vec<&str> = Vec::new();
        let written = claim_to_headers
            .iter()
            .enumerate()
            .map(|(index, entry)| {
                (
                    format!("claim_to_headers[{index}].header_name"),
                    &entry.header_name,
                )
            })
            .chain(
                forward_payload_header
                    .iter()
                    .map(|name| ("forward_payload_header".to_owned(), name)),
            );
        for (field, name) in written {
            if seen.contains(&name.as_str()) {
                return Err(ConfigError::new(
                    &field,
                    format!("header {name:?} is written twice"),
                ));
            }
            seen.push(name);
        }
        Ok(UpstreamPolicy {
            claim_to_headers,
            forward_payload_header,
            forward: raw.forward.unwrap_or(false),
        })
    }
}
