//! Where the bearer token is, named as Envoy's `jwt_authn` names its sources:
//! `from_headers` (default `Authorization: Bearer <token>`, RFC 6750 §2.1), `from_params`
//! (query parameters), `from_cookies`, and `from_subprotocol`, one entry of
//! `Sec-WebSocket-Protocol` (browsers cannot set headers on a WebSocket, but can offer
//! subprotocols; a JWT is made of characters a subprotocol token may hold).
//!
//! Exactly one token across all sources is accepted. Two or more, from one source or from
//! several, are refused rather than one being picked: a valid and an invalid token side by
//! side is the classic way to slip past a check that reads one while the backend reads the
//! other. Envoy folds repeated headers into one comma-separated value, and a token can never
//! contain a comma, so each comma-separated item of a header counts on its own.

use crate::decision::DenyReason;
use crate::request::RequestHead;

/// A header that may carry the token after a prefix (`jwt_authn`'s `JwtHeader`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderSource {
    /// Lower-case header name.
    pub name: String,
    /// What precedes the token, matched without regard to ASCII case (`"Bearer "`); empty
    /// for a header that holds the bare token.
    pub value_prefix: String,
}

/// Every place a token may come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSources {
    pub from_headers: Vec<HeaderSource>,
    pub from_params: Vec<String>,
    pub from_cookies: Vec<String>,
    /// The prefix of the `Sec-WebSocket-Protocol` entry that carries the token.
    pub from_subprotocol: Option<String>,
}

impl Default for TokenSources {
    /// `Authorization: Bearer <token>` only.
    fn default() -> Self {
        TokenSources {
            from_headers: vec![HeaderSource {
                name: "authorization".to_owned(),
                value_prefix: "Bearer ".to_owned(),
            }],
            from_params: Vec::new(),
            from_cookies: Vec::new(),
            from_subprotocol: None,
        }
    }
}

/// Where a token was found, so it can be removed from what goes upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenLocation {
    Header {
        name: String,
    },
    Param {
        name: String,
    },
    Cookie {
        name: String,
    },
    /// The whole `Sec-WebSocket-Protocol` entry (prefix and token).
    Subprotocol {
        entry: String,
    },
}

/// A token and where it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundToken {
    pub token: String,
    pub location: TokenLocation,
}

impl TokenSources {
    /// The one token of `head`: `Ok(None)` when there is none,
    /// [`DenyReason::MultipleTokens`] when there is more than one.
    pub fn extract(&self, head: &RequestHead) -> Result<Option<FoundToken>, DenyReason> {
        let mut found = Vec::new();
        for source in &self.from_headers {
            for item in head.values(&source.name).flat_map(|value| value.split(',')) {
                if let Some(token) = after_prefix(item, &source.value_prefix) {
                    found.push(FoundToken {
                        token: token.to_owned(),
                        location: TokenLocation::Header {
                            name: source.name.clone(),
                        },
                    });
                }
            }
        }
        for (name, value) in query_pairs(head.first(":path").unwrap_or_default()) {
            if self.from_params.iter().any(|param| param == name) {
                found.push(FoundToken {
                    token: value.to_owned(),
                    location: TokenLocation::Param {
                        name: name.to_owned(),
                    },
                });
            }
        }
        for (name, value) in head.values("cookie").flat_map(cookie_pairs) {
            if self.from_cookies.iter().any(|cookie| cookie == name) {
                found.push(FoundToken {
                    token: value.to_owned(),
                    location: TokenLocation::Cookie {
                        name: name.to_owned(),
                    },
                });
            }
        }
        if let Some(prefix) = &self.from_subprotocol {
            for entry in head
                .values("sec-websocket-protocol")
                .flat_map(|value| value.split(','))
            {
                let entry = entry.trim();
                if let Some(token) = entry.strip_prefix(prefix.as_str()) {
                    found.push(FoundToken {
                        token: token.to_owned(),
                        location: TokenLocation::Subprotocol {
                            entry: entry.to_owned(),
                        },
                    });
                }
            }
        }
        match found.len() {
            0 => Ok(None),
            1 => Ok(found.pop()),
            _ => Err(DenyReason::MultipleTokens),
        }
    }
}

/// The credentials after `prefix` (ASCII case ignored, surrounding spaces dropped); `None`
/// when `item` does not start with it. A prefix ending in a space also matches the bare
/// scheme (`"Bearer"` gives an empty token, which verification then refuses).
fn after_prefix<'a>(item: &'a str, prefix: &str) -> Option<&'a str> {
    let item = item.trim_matches(' ');
    let scheme = prefix.trim_end_matches(' ');
    let head = item.get(..scheme.len())?;
    let rest = item.get(scheme.len()..)?;
    if !head.eq_ignore_ascii_case(scheme) {
        return None;
    }
    if scheme.len() < prefix.len() && !(rest.is_empty() || rest.starts_with(' ')) {
        return None; // "Bearerabc" is not "Bearer abc"
    }
    Some(rest.trim_matches(' '))
}

/// `name=value` pairs of the query of `path`, in order.
pub fn query_pairs(path: &str) -> impl Iterator<Item = (&str, &str)> {
    let query = path.split_once('?').map_or("", |(_, query)| query);
    let query = query.split('#').next().unwrap_or_default();
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
}

/// `name=value` pairs of one `Cookie` header value.
pub fn cookie_pairs(value: &str) -> impl Iterator<Item = (&str, &str)> {
    value
        .split(';')
        .map(str::trim)
        .filter(|pair| !pair.is_empty())
        .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_sources() -> TokenSources {
        TokenSources {
            from_headers: vec![
                HeaderSource {
                    name: "authorization".into(),
                    value_prefix: "Bearer ".into(),
                },
                HeaderSource {
                    name: "x-token".into(),
                    value_prefix: String::new(),
                },
            ],
            from_params: vec!["access_token".into()],
            from_cookies: vec!["session".into()],
            from_subprotocol: Some("access_token.".into()),
        }
    }

    fn extract(
        sources: &TokenSources,
        pairs: &[(&str, &str)],
    ) -> Result<Option<FoundToken>, DenyReason> {
        let mut all = vec![(":path", "/ws")];
        all.extend_from_slice(pairs);
        if let Some((_, path)) = pairs.iter().find(|(name, _)| *name == ":path") {
            all[0] = (":path", path);
        }
        sources.extract(&RequestHead::new(all))
    }

    fn token(values: &[&str]) -> Result<Option<String>, DenyReason> {
        let pairs: Vec<(&str, &str)> = values.iter().map(|v| ("authorization", *v)).collect();
        extract(&TokenSources::default(), &pairs).map(|found| found.map(|f| f.token))
    }

    #[test]
    fn finds_the_bearer_token_whatever_the_scheme_case() {
        assert_eq!(token(&["Bearer abc"]), Ok(Some("abc".into())));
        assert_eq!(token(&["bearer abc"]), Ok(Some("abc".into())));
        assert_eq!(token(&["BEARER   abc  "]), Ok(Some("abc".into())));
    }

    #[test]
    fn no_bearer_is_no_token() {
        assert_eq!(token(&[]), Ok(None));
        assert_eq!(token(&["Basic dXNlcjpwYXNz"]), Ok(None));
        assert_eq!(token(&["Bearerabc"]), Ok(None));
        assert_eq!(token(&["Bear"]), Ok(None));
        assert_eq!(token(&["é"]), Ok(None));
    }

    #[test]
    fn an_empty_bearer_is_an_empty_token() {
        assert_eq!(token(&["Bearer"]), Ok(Some(String::new())));
        assert_eq!(token(&["Bearer   "]), Ok(Some(String::new())));
    }

    #[test]
    fn two_bearer_tokens_are_refused() {
        assert_eq!(
            token(&["Bearer a", "Bearer b"]),
            Err(DenyReason::MultipleTokens)
        );
        assert_eq!(
            token(&["Bearer a", "Bearer a"]),
            Err(DenyReason::MultipleTokens)
        );
        // As Envoy folds two headers into one value.
        assert_eq!(
            token(&["Bearer a,Bearer b"]),
            Err(DenyReason::MultipleTokens)
        );
        assert_eq!(
            token(&["Bearer a, bearer b"]),
            Err(DenyReason::MultipleTokens)
        );
        // Another scheme beside a bearer token is not a second token.
        assert_eq!(token(&["Basic x", "Bearer a"]), Ok(Some("a".into())));
    }

    #[test]
    fn each_source_alone() {
        let sources = all_sources();
        let cases: [(&[(&str, &str)], TokenLocation); 5] = [
            (
                &[("authorization", "Bearer t")],
                TokenLocation::Header {
                    name: "authorization".into(),
                },
            ),
            (
                &[("x-token", "t")],
                TokenLocation::Header {
                    name: "x-token".into(),
                },
            ),
            (
                &[(":path", "/ws?room=1&access_token=t&x=2")],
                TokenLocation::Param {
                    name: "access_token".into(),
                },
            ),
            (
                &[("cookie", "theme=dark; session=t; lang=en")],
                TokenLocation::Cookie {
                    name: "session".into(),
                },
            ),
            (
                &[("sec-websocket-protocol", "access_token.t, chat.v1")],
                TokenLocation::Subprotocol {
                    entry: "access_token.t".into(),
                },
            ),
        ];
        for (pairs, location) in cases {
            let found = extract(&sources, pairs).unwrap().unwrap();
            assert_eq!(
                found,
                FoundToken {
                    token: "t".into(),
                    location
                },
                "{pairs:?}"
            );
        }
    }

    #[test]
    fn two_sources_at_once_are_refused() {
        let sources = all_sources();
        for pairs in [
            vec![
                ("authorization", "Bearer a"),
                (":path", "/ws?access_token=b"),
            ],
            vec![
                ("cookie", "session=a"),
                ("sec-websocket-protocol", "access_token.b"),
            ],
            vec![(":path", "/ws?access_token=a&access_token=b")],
            vec![("cookie", "session=a"), ("cookie", "session=b")],
            vec![("sec-websocket-protocol", "access_token.a, access_token.b")],
            vec![("x-token", "a"), ("authorization", "Bearer a")],
        ] {
            assert_eq!(
                extract(&sources, &pairs),
                Err(DenyReason::MultipleTokens),
                "{pairs:?}"
            );
        }
    }

    #[test]
    fn unconfigured_sources_are_not_read() {
        let only_header = TokenSources::default();
        for pairs in [
            vec![(":path", "/ws?access_token=t")],
            vec![("cookie", "session=t")],
            vec![("sec-websocket-protocol", "access_token.t")],
        ] {
            assert_eq!(extract(&only_header, &pairs), Ok(None), "{pairs:?}");
        }
    }

    #[test]
    fn query_and_cookie_pairs() {
        assert_eq!(
            query_pairs("/p?a=1&b&c=3=4#f").collect::<Vec<_>>(),
            [("a", "1"), ("b", ""), ("c", "3=4")]
        );
        assert_eq!(query_pairs("/p").count(), 0);
        assert_eq!(
            cookie_pairs(" a=1 ;b=2;; c").collect::<Vec<_>>(),
            [("a", "1"), ("b", "2"), ("c", "")]
        );
    }
}
