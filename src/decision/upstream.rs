//! What the upstream receives with a request on a guarded path, named as Envoy's `jwt_authn`
//! names it: `claim_to_headers`, `forward_payload_header` and `forward`.
//!
//! On every guarded request, accepted or not, any client-sent copy of a header wsgate owns
//! (each `claim_to_headers` header, the `forward_payload_header`) is removed, in every
//! spelling a backend may read as it (`x_jwt_sub` is `HTTP_X_JWT_SUB` to CGI-style servers,
//! see [`header_name::same_spelling`]), so a client can never inject an identity. On an
//! accepted request those headers are then set from the verified token, and unless
//! `forward` is true the token is cut from wherever it came: its header removed in every
//! spelling, its query parameter cut from `:path` in whatever spelling it came (the others
//! kept as sent, in order), its cookie removed from `Cookie`, its entry removed from
//! `Sec-WebSocket-Protocol` (the other offered subprotocols kept, so the upstream's 101
//! still negotiates one of them). A refused request has every token it carried cut, however
//! many, so that Envoy's access log holds none. Requests on other paths are not touched.

use serde_json::Value;

use crate::decision::{Outcome, Verdict};
use crate::request::header_name;
use crate::request::RequestHead;
use crate::token::cut::TokenCut;
use crate::token::extractor::SUBPROTOCOL_HEADER;
use crate::token::identity::Identity;

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

    /// Sets header `name` to `kept` joined by `separator`, or removes it when nothing is kept.
    fn set_or_remove(&mut self, name: &str, kept: &[String], separator: &str) {
        if kept.is_empty() {
            self.remove.push(name.to_owned());
        } else {
            self.set.push((name.to_owned(), kept.join(separator)));
        }
    }

    /// Adds every header of `head` whose name is a spelling of `name`
    /// ([`header_name::same_spelling`]) to the headers to remove.
    fn remove_spellings(&mut self, head: &RequestHead, name: &str) {
        for sent in head.names_where(|sent| header_name::same_spelling(sent, name)) {
            self.remove_once(sent);
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
    /// The header changes `outcome` calls for, with this one policy.
    pub fn edits(&self, outcome: &Outcome, head: &RequestHead) -> HeaderEdits {
        let owned: Vec<String> = self.owned().cloned().collect();
        edits(&owned, Some(self), outcome, head)
    }

    /// The headers this policy writes, so removes from every guarded request.
    pub fn owned(&self) -> impl Iterator<Item = &String> {
        self.claim_to_headers
            .iter()
            .map(|entry| &entry.header_name)
            .chain(&self.forward_payload_header)
    }
}

/// The header changes `outcome` calls for. Every header in `owned` (what any provider
/// writes) is removed from every guarded request: a client must not send one that another
/// provider's callers would be trusted with. An accepted request then gets what `policy`,
/// its provider's, sets, and keeps its token only if that policy `forward`s it.
pub fn edits(
    owned: &[String],
    policy: Option<&UpstreamPolicy>,
    outcome: &Outcome,
    head: &RequestHead,
) -> HeaderEdits {
    let mut edits = HeaderEdits::default();
    for name in owned {
        edits.remove_once(name);
        edits.remove_spellings(head, name);
    }
    let Verdict::Allow(identity) = &outcome.verdict else {
        // Nothing goes upstream, but Envoy's access log may write `:path` (or any header):
        // a refused token, perhaps valid elsewhere, is cut whatever `forward` says.
        remove_tokens(&outcome.tokens, head, &mut edits);
        return edits;
    };
    // The provider that verified it is always configured; were it not, nothing is set and
    // the token is cut.
    if !policy.is_some_and(|policy| policy.forward) {
        remove_tokens(&outcome.tokens, head, &mut edits);
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

/// Cuts the tokens `cut` names out of what goes upstream (and what Envoy logs): every copy
/// the extractor counted, worked out when it found them ([`TokenCut`]).
fn remove_tokens(cut: &TokenCut, head: &RequestHead, edits: &mut HeaderEdits) {
    for name in cut.headers() {
        edits.remove_spellings(head, name);
    }
    if let Some(path) = cut.path() {
        edits.set.push((":path".to_owned(), path.to_owned()));
    }
    if let Some(kept) = cut.cookies() {
        edits.set_or_remove("cookie", kept, "; ");
    }
    if let Some(kept) = cut.subprotocols() {
        // Another spelling of the header is never the handshake's: it goes whole.
        for sent in head.names_where(|sent| {
            sent != SUBPROTOCOL_HEADER && header_name::same_spelling(sent, SUBPROTOCOL_HEADER)
        }) {
            edits.remove_once(sent);
        }
        edits.set_or_remove(SUBPROTOCOL_HEADER, kept, ", ");
    }
}

/// A claim by name, or by dotted path through nested objects, rendered as a header value:
/// strings as they are, numbers and booleans as JSON writes them.
fn claim_value(identity: &Identity, name: &str) -> Option<String> {
    match identity.claim(name)? {
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
mod tests;
