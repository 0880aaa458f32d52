//! What the upstream receives with a request on a guarded path, named as Envoy's `jwt_authn`
//! names it: `claim_to_headers`, `forward_payload_header` and `forward`.
//!
//! On every guarded request, accepted or not, any client-sent copy of a header wsgate owns
//! (each `claim_to_headers` header, the `forward_payload_header`) is removed, in every
//! spelling a backend may read as it (`x_jwt_sub` is `HTTP_X_JWT_SUB` to CGI-style servers,
//! see [`header_name::same_spelling`]), so a client can never inject an identity. On an accepted request those headers are then set from the
//! verified token, and unless `forward` is true the token is cut from wherever it came: its
//! header removed in every spelling, its query parameter cut from `:path` in whatever
//! spelling it came (the others kept, in order, the path as the client sent it), its cookie
//! removed from `Cookie`, its entry removed from `Sec-WebSocket-Protocol` (the other
//! offered subprotocols kept, so the upstream's 101 still negotiates one of them). Requests on
//! other paths are not touched.

use serde_json::Value;

use crate::config::raw::UpstreamSection;
use crate::config::ConfigError;
use crate::decision::{Decision, Identity};
use crate::request::header_name;
use crate::request::path_only;
use crate::request::spelling;
use crate::request::RequestHead;
use crate::token::extractor::{
    is_cookie, is_param, TokenLocation, COOKIE_SEPARATORS, QUERY_SEPARATORS,
};

/// One claim copied into one request header (`jwt_authn`'s `claim_to_headers` entry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimToHeader {
    /// Lower-case header name.
    pub header_name: String,
    /// A top-level claim name, or a dotted path to a nested one (`realm.roles.0` is not a
    /// path: arrays are not entered).
    pub claim_name: String,
}

/// How identity reaches the upstream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpstreamPolicy {
    pub claim_to_headers: Vec<ClaimToHeader>,
    /// Lower-case header name for the verified payload (base64url, as signed).
    pub forward_payload_header: Option<String>,
    /// Keep the token where it was for the upstream.
    pub forward: bool,
}

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

/// Header changes for one request, in order: remove, then set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderEdits {
    pub remove: Vec<String>,
    pub set: Vec<(String, String)>,
    /// `claim_to_headers` entries whose claim was absent, not a string, number or boolean,
    /// or not a valid header value; their header is simply not set.
    pub unset: Vec<String>,
}

/// A header change the host refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EditFailed {
    /// The header that could not be removed or set.
    pub header: String,
}

impl HeaderEdits {
    /// Adds `name` to the headers to remove, unless it is there already.
    fn remove_once(&mut self, name: &str) {
        if !self.remove.iter().any(|removed| removed == name) {
            self.remove.push(name.to_owned());
        }
    }

    /// Applies every edit through `apply` (`(name, None)` removes, `(name, Some(value))`
    /// sets; it returns whether the host did it), in order: removals, then sets. Stops at
    /// the first refusal: a header that could not be removed may still hold the token or a
    /// forged identity, and one that could not be set leaves the upstream without the
    /// verified one, so the request must not go on.
    pub fn apply(
        &self,
        mut apply: impl FnMut(&str, Option<&str>) -> bool,
    ) -> Result<(), EditFailed> {
        let removals = self.remove.iter().map(|name| (name.as_str(), None));
        let sets = self
            .set
            .iter()
            .map(|(name, value)| (name.as_str(), Some(value.as_str())));
        for (name, value) in removals.chain(sets) {
            if !apply(name, value) {
                return Err(EditFailed {
                    header: name.to_owned(),
                });
            }
        }
        Ok(())
    }
}

impl UpstreamPolicy {
    /// The header changes `decision` calls for, with this one policy.
    pub fn edits(&self, decision: &Decision, head: &RequestHead) -> HeaderEdits {
        edits(std::slice::from_ref(self), decision, head)
    }

    /// The headers this policy writes, so removes from every guarded request.
    fn owned(&self) -> impl Iterator<Item = &String> {
        self.claim_to_headers
            .iter()
            .map(|entry| &entry.header_name)
            .chain(&self.forward_payload_header)
    }
}

/// The header changes `decision` calls for, with `policies` by provider index: a header any
/// provider writes is removed from every guarded request (a client must not send one that
/// another provider's callers would be trusted with); an accepted request then gets what
/// its own provider's policy sets, and keeps its token only if that policy `forward`s it.
pub fn edits(policies: &[UpstreamPolicy], decision: &Decision, head: &RequestHead) -> HeaderEdits {
    let mut edits = HeaderEdits::default();
    for name in policies.iter().flat_map(UpstreamPolicy::owned) {
        edits.remove_once(name);
        for sent in head.names_where(|sent| header_name::same_spelling(sent, name)) {
            edits.remove_once(sent);
        }
    }
    let identity = match decision {
        Decision::Allow(identity) => identity,
        Decision::Deny(denial) => {
            // Nothing goes upstream, but Envoy's access log may write `:path` (or any
            // header): a refused token, perhaps valid elsewhere, is cut whatever
            // `forward` says.
            if let Some(location) = &denial.location {
                remove_token(location, head, &mut edits);
            }
            return edits;
        }
    };
    // The provider that verified it is always configured; were it not, nothing is set and
    // the token is cut.
    let policy = policies.get(identity.provider);
    if !policy.is_some_and(|policy| policy.forward) {
        if let Some(location) = &identity.location {
            remove_token(location, head, &mut edits);
        }
    }
    let Some(policy) = policy else {
        return edits;
    };
    for entry in &policy.claim_to_headers {
        match claim_value(identity, &entry.claim_name).filter(|value| is_header_value(value)) {
            Some(value) => edits.set.push((entry.header_name.clone(), value)),
            None => edits.unset.push(entry.header_name.clone()),
        }
    }
    if let Some(header) = &policy.forward_payload_header {
        edits
            .set
            .push((header.clone(), identity.payload.to_string()));
    }
    edits
}

/// Cuts the token out of what goes upstream: every copy the extractor would have counted.
fn remove_token(location: &TokenLocation, head: &RequestHead, edits: &mut HeaderEdits) {
    let mut set_or_remove = |name: &str, kept: Vec<String>, separator: &str| {
        if kept.is_empty() {
            edits.remove.push(name.to_owned());
        } else {
            edits.set.push((name.to_owned(), kept.join(separator)));
        }
    };
    match location {
        TokenLocation::Header { name } => {
            for sent in head.names_where(|sent| header_name::same_spelling(sent, name)) {
                edits.remove_once(sent);
            }
        }
        TokenLocation::Param { name } => {
            let path = head.first(":path").unwrap_or_default();
            let base = path_only(path);
            let query = path.split_once('?').map_or("", |(_, query)| query);
            let kept = cut_pieces(query, QUERY_SEPARATORS, &|piece| {
                is_param(piece.split_once('=').map_or(piece, |(key, _)| key), name)
            });
            let path = if kept.is_empty() {
                base.to_owned()
            } else {
                format!("{base}?{kept}")
            };
            edits.set.push((":path".to_owned(), path));
        }
        TokenLocation::Cookie { name } => {
            let kept: Vec<String> = head
                .values("cookie")
                .map(|value| {
                    cut_pieces(value, COOKIE_SEPARATORS, &|piece| {
                        is_cookie(
                            piece.split_once('=').map_or(piece, |(key, _)| key).trim(),
                            name,
                        )
                    })
                })
                .filter(|kept| !kept.trim().is_empty())
                .collect();
            set_or_remove("cookie", kept, "; ");
        }
        TokenLocation::Subprotocol { entry } => {
            let kept: Vec<String> = head
                .values("sec-websocket-protocol")
                .flat_map(|value| value.split(','))
                .map(str::trim)
                .filter(|offered| !offered.is_empty() && offered != entry)
                .map(str::to_owned)
                .collect();
            set_or_remove("sec-websocket-protocol", kept, ", ");
        }
    }
}

/// `text` without the pieces between `separators` that `cut` picks; the others are kept as
/// they were sent, each after the separator that preceded it (the first kept one without
/// one), the first trimmed of blanks.
fn cut_pieces(text: &str, separators: [char; 2], cut: &dyn Fn(&str) -> bool) -> String {
    let mut kept = String::with_capacity(text.len());
    let mut before: Option<char> = None;
    let mut rest = text;
    loop {
        let (piece, after, tail) = match rest.find(separators) {
            Some(at) => {
                let separator = rest.get(at..).and_then(|tail| tail.chars().next());
                let width = separator.map_or(1, char::len_utf8);
                (
                    rest.get(..at).unwrap_or_default(),
                    separator,
                    rest.get(at + width..).unwrap_or_default(),
                )
            }
            None => (rest, None, ""),
        };
        if !piece.trim().is_empty() && !cut(piece) {
            if !kept.is_empty() {
                kept.push(before.unwrap_or('&'));
            }
            kept.push_str(if kept.is_empty() {
                piece.trim_matches(spelling::is_blank)
            } else {
                piece
            });
        }
        before = after;
        if after.is_none() {
            return kept;
        }
        rest = tail;
    }
}

/// A claim by name, or by dotted path through nested objects, rendered as a header value:
/// strings as they are, numbers and booleans as JSON writes them.
fn claim_value(identity: &Identity, name: &str) -> Option<String> {
    let found = identity.claims.get(name).or_else(|| {
        let mut parts = name.split('.');
        let first = identity.claims.get(parts.next()?)?;
        parts.try_fold(first, |value, part| value.get(part))
    })?;
    match found {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        _ => None,
    }
}

/// Whether `value` can be a header value: no control characters (tab allowed).
fn is_header_value(value: &str) -> bool {
    value.chars().all(|c| c == '\t' || !c.is_control())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::{Denial, DenyReason};
    use serde_json::json;

    fn policy(forward: bool) -> UpstreamPolicy {
        UpstreamPolicy {
            claim_to_headers: vec![
                ClaimToHeader {
                    header_name: "x-jwt-sub".into(),
                    claim_name: "sub".into(),
                },
                ClaimToHeader {
                    header_name: "x-jwt-tenant".into(),
                    claim_name: "org.tenant".into(),
                },
                ClaimToHeader {
                    header_name: "x-jwt-level".into(),
                    claim_name: "level".into(),
                },
                ClaimToHeader {
                    header_name: "x-jwt-admin".into(),
                    claim_name: "admin".into(),
                },
                ClaimToHeader {
                    header_name: "x-jwt-url".into(),
                    claim_name: "https://example.com/role".into(),
                },
                ClaimToHeader {
                    header_name: "x-jwt-roles".into(),
                    claim_name: "roles".into(),
                },
                ClaimToHeader {
                    header_name: "x-jwt-missing".into(),
                    claim_name: "nope".into(),
                },
                ClaimToHeader {
                    header_name: "x-jwt-evil".into(),
                    claim_name: "evil".into(),
                },
            ],
            forward_payload_header: Some("x-jwt-payload".into()),
            forward,
        }
    }

    fn allow() -> Decision {
        let claims = json!({
            "sub": "alice", "org": {"tenant": "t-1"}, "level": 3, "admin": false,
            "https://example.com/role": "ops", "roles": ["a", "b"], "evil": "a\r\nx-injected: 1"
        });
        Decision::Allow(Identity {
            claims: claims.as_object().unwrap().clone().into(),
            payload: "eyJzdWIiOiJhbGljZSJ9".into(),
            location: Some(TokenLocation::Header {
                name: "authorization".into(),
            }),
            provider: 0,
        })
    }

    fn head() -> RequestHead {
        RequestHead::new([(":path", "/ws"), ("authorization", "Bearer t")])
    }

    fn allow_from(location: TokenLocation) -> Decision {
        let Decision::Allow(mut identity) = allow() else {
            panic!("allow() is an Allow")
        };
        identity.location = Some(location);
        Decision::Allow(identity)
    }

    #[test]
    fn an_accepted_request_gets_the_identity_and_loses_the_token() {
        let edits = policy(false).edits(&allow(), &head());
        assert!(
            edits.remove.contains(&"x-jwt-sub".to_owned()),
            "client copies go first"
        );
        assert!(edits.remove.contains(&"authorization".to_owned()));
        let set: Vec<(&str, &str)> = edits
            .set
            .iter()
            .map(|(h, v)| (h.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            set,
            [
                ("x-jwt-sub", "alice"),
                ("x-jwt-tenant", "t-1"),
                ("x-jwt-level", "3"),
                ("x-jwt-admin", "false"),
                ("x-jwt-url", "ops"),
                ("x-jwt-payload", "eyJzdWIiOiJhbGljZSJ9"),
            ]
        );
        assert_eq!(edits.unset, ["x-jwt-roles", "x-jwt-missing", "x-jwt-evil"]);
    }

    #[test]
    fn forward_keeps_the_token() {
        assert!(!policy(true)
            .edits(&allow(), &head())
            .remove
            .contains(&"authorization".to_owned()));
    }

    #[test]
    fn a_refused_request_still_loses_client_copies() {
        let edits =
            policy(false).edits(&Decision::Deny(Denial::from(DenyReason::Expired)), &head());
        assert_eq!(edits.remove.len(), 9);
        assert!(edits.remove.contains(&"x-jwt-payload".to_owned()));
        assert!(edits.set.is_empty());
    }

    #[test]
    fn the_token_is_cut_from_wherever_it_came() {
        let plain = UpstreamPolicy::default();
        // (where the token was, request headers, headers removed, headers set)
        type Case<'a> = (
            TokenLocation,
            &'a [(&'a str, &'a str)],
            &'a [&'a str],
            &'a [(&'a str, &'a str)],
        );
        let cases: [Case; 7] = [
            (
                TokenLocation::Header {
                    name: "x-token".into(),
                },
                &[("x-token", "t")],
                &["x-token"],
                &[],
            ),
            (
                TokenLocation::Param {
                    name: "access_token".into(),
                },
                &[(":path", "/ws?room=1&access_token=t&flag&x=2")],
                &[],
                &[(":path", "/ws?room=1&flag&x=2")],
            ),
            (
                TokenLocation::Param {
                    name: "access_token".into(),
                },
                &[(":path", "/ws?access_token=t")],
                &[],
                &[(":path", "/ws")],
            ),
            (
                // Another spelling of the name; the path as the client sent it.
                TokenLocation::Param {
                    name: "access_token".into(),
                },
                &[(":path", "/WS;v=1/?a=%41&Access%5Ftoken=t")],
                &[],
                &[(":path", "/WS;v=1/?a=%41")],
            ),
            (
                TokenLocation::Cookie {
                    name: "session".into(),
                },
                &[("cookie", "SESSION=t; theme=dark")],
                &[],
                &[("cookie", "theme=dark")],
            ),
            (
                TokenLocation::Cookie {
                    name: "session".into(),
                },
                &[("cookie", "theme=dark; session=t"), ("cookie", "lang=en")],
                &[],
                &[("cookie", "theme=dark; lang=en")],
            ),
            (
                TokenLocation::Subprotocol {
                    entry: "access_token.t".into(),
                },
                &[("sec-websocket-protocol", "access_token.t, chat.v1, chat.v2")],
                &[],
                &[("sec-websocket-protocol", "chat.v1, chat.v2")],
            ),
        ];
        for (location, pairs, removed, set) in cases {
            let head = RequestHead::new(pairs.iter().copied());
            let edits = plain.edits(&allow_from(location.clone()), &head);
            // A refused token is cut the same way, `forward` or not: nothing goes upstream,
            // but what Envoy logs must not hold it either.
            let refused = Decision::Deny(Denial {
                location: Some(location.clone()),
                ..Denial::from(DenyReason::BadSignature)
            });
            assert_eq!(plain.edits(&refused, &head), edits, "{location:?}");
            let forwarding = UpstreamPolicy {
                forward: true,
                ..UpstreamPolicy::default()
            };
            assert_eq!(forwarding.edits(&refused, &head), edits, "{location:?}");
            assert_eq!(edits.remove, removed, "{location:?}");
            let set_pairs: Vec<(&str, &str)> = edits
                .set
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str()))
                .collect();
            assert_eq!(set_pairs, set, "{location:?}");
        }
        let only_token = plain.edits(
            &allow_from(TokenLocation::Subprotocol {
                entry: "access_token.t".into(),
            }),
            &RequestHead::new([("sec-websocket-protocol", "access_token.t")]),
        );
        assert_eq!(only_token.remove, ["sec-websocket-protocol"]);
        let forwarded = UpstreamPolicy {
            forward: true,
            ..UpstreamPolicy::default()
        };
        let kept = forwarded.edits(
            &allow_from(TokenLocation::Param {
                name: "access_token".into(),
            }),
            &RequestHead::new([(":path", "/ws?access_token=t")]),
        );
        assert_eq!(kept, HeaderEdits::default());
    }

    /// #25: a client copy of an owned header goes in every spelling a CGI-style backend
    /// reads as it, on every guarded request; a header that only looks alike stays.
    #[test]
    fn owned_headers_go_in_every_spelling() {
        let head = RequestHead::new([
            (":path", "/ws"),
            ("x_jwt_sub", "admin"),
            ("X-JWT_Sub", "admin"),
            ("x_jwt_payload", "e30"),
            ("x-jwt-subject", "kept"),
            ("x_jwt_sub_", "kept"),
        ]);
        for decision in [allow(), Decision::Deny(Denial::from(DenyReason::Expired))] {
            let edits = policy(false).edits(&decision, &head);
            for spelling in [
                "x-jwt-sub",
                "x_jwt_sub",
                "x-jwt_sub",
                "x-jwt-payload",
                "x_jwt_payload",
            ] {
                assert!(
                    edits.remove.iter().any(|r| r == spelling),
                    "{spelling}: {edits:?}"
                );
            }
            assert!(!edits
                .remove
                .iter()
                .any(|r| r.starts_with("x-jwt-subject") || r == "x_jwt_sub_"));
        }
    }

    /// Every copy the extractor would count is cut, with the separators it splits on, and
    /// the rest is kept as it was sent.
    #[test]
    fn the_token_is_cut_behind_every_separator() {
        let plain = UpstreamPolicy::default();
        let cut = |location: TokenLocation, pairs: &[(&str, &str)]| {
            plain.edits(
                &allow_from(location),
                &RequestHead::new(pairs.iter().copied()),
            )
        };
        let param = || TokenLocation::Param {
            name: "access_token".into(),
        };
        let edits = cut(param(), &[(":path", "/ws?room=1;access_token=t&x=2;y")]);
        assert_eq!(
            edits.set,
            [(":path".to_owned(), "/ws?room=1&x=2;y".to_owned())]
        );
        let edits = cut(param(), &[(":path", "/ws?access_token=t;x=2")]);
        assert_eq!(edits.set, [(":path".to_owned(), "/ws?x=2".to_owned())]);
        let cookie = TokenLocation::Cookie {
            name: "session".into(),
        };
        let edits = cut(cookie.clone(), &[("cookie", "a=1, session=t; b=2")]);
        assert_eq!(edits.set, [("cookie".to_owned(), "a=1; b=2".to_owned())]);
        let edits = cut(cookie, &[("cookie", "session=t"), ("cookie", "a=1")]);
        assert_eq!(edits.set, [("cookie".to_owned(), "a=1".to_owned())]);
        let header = TokenLocation::Header {
            name: "x-token".into(),
        };
        let edits = cut(header, &[("x_token", "t")]);
        assert_eq!(edits.remove.last().map(String::as_str), Some("x_token"));
    }

    #[test]
    fn edits_apply_in_order_and_stop_at_the_first_refusal() {
        let edits = HeaderEdits {
            remove: vec!["x-jwt-sub".into(), "authorization".into()],
            set: vec![("x-jwt-sub".into(), "alice".into())],
            unset: vec![],
        };
        let mut seen = Vec::new();
        let all = edits.apply(|name, value| {
            seen.push((name.to_owned(), value.map(str::to_owned)));
            true
        });
        assert_eq!(all, Ok(()));
        assert_eq!(
            seen,
            [
                ("x-jwt-sub".to_owned(), None),
                ("authorization".to_owned(), None),
                ("x-jwt-sub".to_owned(), Some("alice".to_owned())),
            ]
        );
        let mut tried = 0;
        let refused = edits.apply(|name, _| {
            tried += 1;
            name != "authorization"
        });
        assert_eq!(
            refused,
            Err(EditFailed {
                header: "authorization".into()
            })
        );
        assert_eq!(tried, 2, "nothing is set after a refused removal");
    }
}
