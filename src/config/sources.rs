//! The token-source fields (`from_headers`, `from_params`, `from_cookies`,
//! `from_subprotocol`) as [`TokenSources`].

use crate::config::raw::SourcesSection;
use crate::config::ConfigError;
use crate::request::header_name::is_token;
use crate::token::extractor::{HeaderSource, TokenSources};

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

impl TryFrom<SourcesSection> for TokenSources {
    type Error = ConfigError;

    /// The configured sources, defaults for those not given. Refuses header names that
    /// cannot carry a token, parameter and cookie names that a backend could spell two ways
    /// (they are compared percent-decoded, ignoring ASCII case), a subprotocol prefix that
    /// is not a token, and a configuration that leaves no source at all.
    fn try_from(raw: SourcesSection) -> Result<Self, ConfigError> {
        let defaults = TokenSources::default();
        let from_headers = match raw.from_headers {
            None => defaults.from_headers,
            Some(entries) => entries
                .into_iter()
                .enumerate()
                .map(|(index, entry)| {
                    let name = entry.name.to_ascii_lowercase();
                    if !is_token(&name) || NOT_TOKEN_HEADERS.contains(&name.as_str()) {
                        return Err(ConfigError::new(
                            &format!("from_headers[{index}].name"),
                            format!("{name:?} is not a header name that can carry a token"),
                        ));
                    }
                    Ok(HeaderSource {
                        name,
                        value_prefix: entry.value_prefix,
                    })
                })
                .collect::<Result<_, _>>()?,
        };
        let from_params = names(
            "from_params",
            raw.from_params,
            &['&', ';', '=', '?', '#', '[', ']'],
        )?;
        let from_cookies = names("from_cookies", raw.from_cookies, &[';', '=', ',', '[', ']'])?;
        let from_subprotocol = match raw.from_subprotocol {
            None => None,
            Some(entry) if is_token(&entry.prefix) => Some(entry.prefix),
            Some(_) => {
                return Err(ConfigError::new(
                    "from_subprotocol.prefix",
                    "must be a non-empty subprotocol token",
                ))
            }
        };
        let sources = TokenSources {
            from_headers,
            from_params,
            from_cookies,
            from_subprotocol,
        };
        let none_left = TokenSources {
            from_headers: Vec::new(),
            ..TokenSources::default()
        };
        if sources == none_left {
            return Err(ConfigError::new(
                "from_headers",
                "no token source is left: give at least one",
            ));
        }
        Ok(sources)
    }
}

/// `field`'s names: non-empty ASCII, free of `forbidden`, `%`, `+` and spaces.
fn names(
    field: &str,
    names: Option<Vec<String>>,
    forbidden: &[char],
) -> Result<Vec<String>, ConfigError> {
    let names = names.unwrap_or_default();
    for (index, name) in names.iter().enumerate() {
        let usable = !name.is_empty()
            && name.is_ascii()
            && !name.contains(forbidden)
            && !name.contains(['%', '+'])
            && !name.contains(char::is_whitespace);
        if !usable {
            return Err(ConfigError::new(
                &format!("{field}[{index}]"),
                format!(
                    "{name:?} must be a non-empty ASCII name without {forbidden:?}, '%', '+' or \
                     spaces (names are compared percent-decoded, ignoring ASCII case)"
                ),
            ));
        }
    }
    Ok(names)
}
