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
//!
//! Query parameter and cookie names count in any spelling a backend may read as the
//! configured name ([`spelling::same_name`]): `access%5Ftoken` and `ACCESS_TOKEN` are
//! `access_token` to ASP.NET Core, so beside a verified `access_token` they are a second
//! token, and alone they are the token. Header names count in any spelling a CGI-style
//! backend folds into one variable ([`same_spelling`]: `x_token` is `x-token`).
//!
//! Every separator some backend splits on separates: a query on `&` and `;` (older Rack,
//! Python's `parse_qs` before 3.9.2 and Go before 1.17 split on `;`), a `Cookie` on `;`, `,`
//! and blanks (ASP.NET Core splits on the first two, quotes or not; Python's `SimpleCookie`
//! on whitespace), the scheme from the credentials on any whitespace or other non-token
//! character (`Bearer<TAB>x`, counted but refused alone). Names with an array suffix
//! (`access_token[0]`) are the name. A parameter that only a
//! decoding proxy would reveal (`/ws%3Faccess_token=x`, `?a=%26access_token=x`) is not a
//! token wsgate can cut, but it is one a backend may read: beside another token it makes
//! two ([`DenyReason::MultipleTokens`]); alone, the request has no token wsgate accepts
//! (as for `jwt_authn`, which reads the raw query only).

use crate::deny::DenyReason;
use crate::request::header_name::{is_token_char, same_spelling};
use crate::request::{path, path_only, spelling, RequestHead};
use crate::token::cut::{Kept, TokenCut};

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

impl TokenSources {
    /// Every kind of source: `Authorization: Bearer`, a bare `x-token` header, the
    /// `access_token` parameter, the `session` cookie and the `access_token.` subprotocol
    /// (for tests).
    #[cfg(test)]
    pub(crate) fn every_source() -> TokenSources {
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
}

/// Where a token was found. Parameter and cookie names are the configured ones: the client
/// may have spelled them otherwise. (How to cut it is the scan's [`TokenCut`].)
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

/// Every token of a request, found in one pass, and how to cut them all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scan {
    /// Each token, in source order.
    pub found: Vec<FoundToken>,
    /// Copies only a decoding proxy would reveal.
    pub hidden: usize,
    pub cut: TokenCut,
}

impl Scan {
    /// The one token: `Ok(None)` when there is none, [`DenyReason::MultipleTokens`] when
    /// there is more than one (revealed copies included).
    pub fn one(&mut self) -> Result<Option<FoundToken>, DenyReason> {
        match (self.found.len(), self.hidden) {
            (0, _) => Ok(None),
            (1, 0) => Ok(self.found.pop()),
            _ => Err(DenyReason::MultipleTokens),
        }
    }
}

impl TokenSources {
    /// The one token of `head`: `Ok(None)` when there is none,
    /// [`DenyReason::MultipleTokens`] when there is more than one.
    pub fn extract(&self, head: &RequestHead) -> Result<Option<FoundToken>, DenyReason> {
        self.scan(head).one()
    }

    /// Every token of `head`, how many more copies only a decoding proxy reveals, and how
    /// to cut them all: one pass over its headers, query, cookies and subprotocols.
    pub fn scan(&self, head: &RequestHead) -> Scan {
        let mut found = Vec::new();
        let mut cut = TokenCut::default();
        for source in &self.from_headers {
            let values = head.values_where(|name| same_spelling(name, &source.name));
            for item in values.flat_map(|value| value.split(',')) {
                if let Some(token) = after_prefix(item, &source.value_prefix) {
                    cut.header(&source.name);
                    found.push(FoundToken {
                        token: token.to_owned(),
                        location: TokenLocation::Header {
                            name: source.name.clone(),
                        },
                    });
                }
            }
        }
        let mut hidden = 0;
        // Only a configured query source reads the query: the default costs nothing here.
        if !self.from_params.is_empty() {
            let path = head.first(":path").unwrap_or_default();
            let mut kept = Kept::default();
            let mut in_query = 0;
            for (piece, after) in pieces(query_of(path), QUERY_SEPARATORS) {
                if !piece.is_empty() {
                    let (name, value) = pair(piece);
                    match self.from_params.iter().find(|param| is_param(name, param)) {
                        Some(param) => {
                            in_query += 1;
                            kept.cut();
                            found.push(FoundToken {
                                token: value.to_owned(),
                                location: TokenLocation::Param {
                                    name: param.clone(),
                                },
                            });
                        }
                        None => kept.keep(piece),
                    }
                }
                kept.separator(after);
            }
            hidden = self.revealed_params(path).saturating_sub(in_query);
            if hidden > 0 {
                // A copy hidden in the path or behind an encoded separator cannot be cut
                // alone: the path goes on without its query, and without what decoding
                // would reveal.
                cut.set_path(path::without_revealed_query(path_only(path)).to_owned());
            } else if kept.cut_any {
                let base = path_only(path);
                let kept = kept.into_text();
                cut.set_path(if kept.is_empty() {
                    base.to_owned()
                } else {
                    format!("{base}?{kept}")
                });
            }
        }
        if !self.from_cookies.is_empty() {
            self.scan_cookies(head, &mut found, &mut cut);
        }
        if let Some(prefix) = &self.from_subprotocol {
            let mut kept = Vec::new();
            let mut cut_any = false;
            let offered = head.pairs_where(|name| same_spelling(name, SUBPROTOCOL_HEADER));
            for (name, value) in offered {
                for entry in value.split(',') {
                    let entry = entry.trim();
                    if let Some(token) = entry.strip_prefix(prefix.as_str()) {
                        cut_any = true;
                        found.push(FoundToken {
                            token: token.to_owned(),
                            location: TokenLocation::Subprotocol {
                                entry: entry.to_owned(),
                            },
                        });
                    } else if name == SUBPROTOCOL_HEADER && !entry.is_empty() {
                        // Another spelling of the header is never the handshake's: it
                        // goes whole.
                        kept.push(entry.to_owned());
                    }
                }
            }
            if cut_any {
                cut.set_subprotocols(kept);
            }
        }
        Scan { found, hidden, cut }
    }

    /// The token cookies of `head`, and each `Cookie` value without them.
    fn scan_cookies(&self, head: &RequestHead, found: &mut Vec<FoundToken>, cut: &mut TokenCut) {
        let mut values = Vec::new();
        let mut cut_any = false;
        for value in head.values("cookie") {
            let mut kept = Kept::default();
            for (piece, after) in pieces(value, COOKIE_SEPARATORS) {
                if !piece.is_empty() {
                    let (name, value) = pair(piece);
                    let cookie = Some(name)
                        .filter(|_| !piece.trim_matches(spelling::is_blank).is_empty())
                        .and_then(|name| {
                            self.from_cookies
                                .iter()
                                .find(|cookie| is_cookie(name, cookie))
                        });
                    match cookie {
                        Some(cookie) => {
                            kept.cut();
                            found.push(FoundToken {
                                token: value.to_owned(),
                                location: TokenLocation::Cookie {
                                    name: cookie.clone(),
                                },
                            });
                        }
                        None => kept.keep(piece),
                    }
                }
                kept.separator(after);
            }
            cut_any |= kept.cut_any;
            values.push(kept.into_text());
        }
        if cut_any {
            values.retain(|kept| !kept.is_empty());
            cut.set_cookies(values);
        }
    }

    /// How many token parameters the query of `path` holds once the whole `:path` is
    /// percent-decoded, as a decoding proxy would forward it: a `?` revealed in the path
    /// starts the query there, any later `?` or `#` then separates too (the raw query runs
    /// on after it, and a fragment would end it only for some), and `%26` or `%3B`
    /// separate. A path that cannot be decoded counts as one more copy: fail closed.
    fn revealed_params(&self, path: &str) -> usize {
        let Some(mut decoded) = spelling::decode_fully(path, false) else {
            return usize::MAX;
        };
        if let Some(first) = decoded.iter().position(|&byte| byte == b'?') {
            for byte in decoded.iter_mut().skip(first + 1) {
                if matches!(*byte, b'?' | b'#') {
                    *byte = b'&';
                }
            }
        }
        query_pairs(&String::from_utf8_lossy(&decoded))
            .filter(|(name, _)| self.from_params.iter().any(|param| is_param(name, param)))
            .count()
    }
}

/// The credentials after `prefix` (ASCII case ignored, surrounding blanks dropped); `None`
/// when `item` does not start with it. A prefix ending in a space matches its scheme
/// followed by any character that cannot continue a scheme name: a space, the bare scheme
/// (`"Bearer"` gives an empty token), and also a tab, any other blank or a `:`, which some
/// backends split on. Those are counted as a token, so that beside another they make two,
/// but kept as they are: `Bearer<TAB>x` alone is the token `<TAB>x`, which
/// verification refuses as `jwt_authn` and ASP.NET's JwtBearer do (RFC 7235 §2.1 separates
/// a scheme from its credentials with spaces only).
fn after_prefix<'a>(item: &'a str, prefix: &str) -> Option<&'a str> {
    let item = item.trim_matches(spelling::is_blank);
    let scheme = prefix.trim_end_matches(' ');
    let head = item.get(..scheme.len())?;
    let rest = item.get(scheme.len()..)?;
    if !head.eq_ignore_ascii_case(scheme) {
        return None;
    }
    match rest.chars().next() {
        Some(next) if scheme.len() < prefix.len() && is_token_char(next) => None, // "Bearerabc"
        Some(next) if next != ' ' && scheme.len() < prefix.len() => Some(rest),
        _ => Some(rest.trim_matches(spelling::is_blank)),
    }
}

/// Whether the query parameter name `raw`, as sent, names `param` in any spelling
/// (percent-decoded, `+` as a space, case ignored, an array suffix such as `[]` or `[0]`
/// dropped: Express's `qs`, PHP and Rack read `access_token[0]` as `access_token`).
pub fn is_param(raw: &str, param: &str) -> bool {
    spelling::same_name(raw, param, true)
}

/// Whether the cookie name `raw`, as sent, names `cookie` in any spelling
/// (percent-decoded, case ignored, an array suffix dropped).
pub fn is_cookie(raw: &str, cookie: &str) -> bool {
    spelling::same_name(raw, cookie, false)
}

/// The header that offers WebSocket subprotocols.
pub const SUBPROTOCOL_HEADER: &str = "sec-websocket-protocol";

/// What separates query parameters: `&`, and `;` (older Rack, Python's `parse_qs` before
/// 3.9.2 and Go before 1.17 split on it too).
pub const QUERY_SEPARATORS: &[char] = &['&', ';'];

/// What separates cookies: `;`, `,` (ASP.NET Core's parser splits on both, and
/// resynchronises at either after a stray `"` or space), and blanks (Python's
/// `SimpleCookie`, behind aiohttp, ends a pair at whitespace; the last value wins).
pub const COOKIE_SEPARATORS: &[char] = &[';', ',', ' ', '\t'];

/// Each piece of `text` between `separators`, with the separator that ended it (`None` for
/// the last): the one splitting both the extractor and the cut use, so that the cut removes
/// exactly the copies the extractor counted.
pub fn pieces<'a>(
    text: &'a str,
    separators: &'a [char],
) -> impl Iterator<Item = (&'a str, Option<char>)> + 'a {
    text.split_inclusive(separators).map(move |piece| {
        match piece.chars().next_back().filter(|c| separators.contains(c)) {
            Some(end) => (
                piece
                    .get(..piece.len() - end.len_utf8())
                    .unwrap_or_default(),
                Some(end),
            ),
            None => (piece, None),
        }
    })
}

/// A piece's `name` and `value` (the value empty when there is no `=`), blanks around
/// each dropped.
pub fn pair(piece: &str) -> (&str, &str) {
    let (name, value) = piece.split_once('=').unwrap_or((piece, ""));
    (
        name.trim_matches(spelling::is_blank),
        value.trim_matches(spelling::is_blank),
    )
}

/// The query of `path`: after its first `?`, up to a `#`.
pub fn query_of(path: &str) -> &str {
    let query = path.split_once('?').map_or("", |(_, query)| query);
    query.split('#').next().unwrap_or_default()
}

/// `name=value` pairs of the query of `path`, in order, split on every
/// [`QUERY_SEPARATORS`].
pub fn query_pairs(path: &str) -> impl Iterator<Item = (&str, &str)> {
    pieces(query_of(path), QUERY_SEPARATORS)
        .filter(|(piece, _)| !piece.is_empty())
        .map(|(piece, _)| pair(piece))
}

/// `name=value` pairs of one `Cookie` header value, split on every [`COOKIE_SEPARATORS`].
pub fn cookie_pairs(value: &str) -> impl Iterator<Item = (&str, &str)> {
    pieces(value, COOKIE_SEPARATORS)
        .filter(|(piece, _)| !piece.trim_matches(spelling::is_blank).is_empty())
        .map(|(piece, _)| pair(piece))
}

#[cfg(test)]
mod tests;
