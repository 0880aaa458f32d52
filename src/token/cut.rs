//! How to cut a request's tokens out of what goes upstream and what Envoy logs, as
//! `jwt_authn`'s `JwtLocation::removeJwt` does: worked out by the extractor in the same pass
//! that found the tokens ([`TokenSources::scan`](crate::token::extractor::TokenSources::scan)),
//! so the query, the cookies and the subprotocol entries are split once per request.
//!
//! Every copy the extractor counted is cut, with the separators it splits on; the other
//! pieces are kept as the client sent them, each after the separators that preceded it since
//! the piece before it (the first kept one without any).

/// What cutting the tokens of one request takes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenCut {
    /// Configured header names that held a token: each goes in every spelling.
    headers: Vec<String>,
    /// The `:path` without its token parameters, or without its whole query when a copy
    /// only a decoding proxy would see was there.
    path: Option<String>,
    /// Each `Cookie` value left once its token cookies are cut (empty ones dropped), when a
    /// cookie held a token.
    cookies: Option<Vec<String>>,
    /// The `Sec-WebSocket-Protocol` entries left once the token entries are cut, when an
    /// entry held a token.
    subprotocols: Option<Vec<String>>,
}

impl TokenCut {
    /// Whether there is nothing to cut: the request carried no token.
    pub fn is_empty(&self) -> bool {
        self == &TokenCut::default()
    }

    /// Header names that held a token.
    pub fn headers(&self) -> &[String] {
        &self.headers
    }

    /// The `:path` to send on, when it held a token.
    pub fn path(&self) -> Option<&str> {
        self.path.as_deref()
    }

    /// The `Cookie` values to send on, when one held a token.
    pub fn cookies(&self) -> Option<&[String]> {
        self.cookies.as_deref()
    }

    /// The subprotocol entries to offer on, when one held a token.
    pub fn subprotocols(&self) -> Option<&[String]> {
        self.subprotocols.as_deref()
    }

    pub(crate) fn header(&mut self, name: &str) {
        if !self.headers.iter().any(|seen| seen == name) {
            self.headers.push(name.to_owned());
        }
    }

    pub(crate) fn set_path(&mut self, path: String) {
        self.path = Some(path);
    }

    pub(crate) fn set_cookies(&mut self, kept: Vec<String>) {
        self.cookies = Some(kept);
    }

    pub(crate) fn set_subprotocols(&mut self, kept: Vec<String>) {
        self.subprotocols = Some(kept);
    }
}

/// Rebuilds a separated text without the pieces cut from it, while the extractor walks its
/// pieces: [`Kept::keep`] or [`Kept::cut`] each piece, [`Kept::separator`] after each.
#[derive(Debug, Default)]
pub(crate) struct Kept {
    text: String,
    /// The separators since the last piece.
    run: String,
    /// Whether a piece was cut.
    pub cut_any: bool,
}

impl Kept {
    /// Keeps `piece`, after the separators that preceded it (none before the first kept one).
    pub fn keep(&mut self, piece: &str) {
        if !self.text.is_empty() {
            self.text.push_str(&self.run);
        }
        self.text.push_str(piece);
        self.run.clear();
    }

    /// Cuts a piece, and the separators before it.
    pub fn cut(&mut self) {
        self.cut_any = true;
        self.run.clear();
    }

    /// The separator that ended a piece, if any (an empty piece keeps the run growing).
    pub fn separator(&mut self, after: Option<char>) {
        self.run.extend(after);
    }

    /// What was kept.
    pub fn into_text(self) -> String {
        self.text
    }
}
