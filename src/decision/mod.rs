//! What the gate decided, and every reason it can refuse a request.
//!
//! [`DenyReason`] is the one status enum: each variant has one HTTP status, one name (used in
//! the log line and as the stat counter suffix) and one RFC 6750 `WWW-Authenticate`
//! challenge. The body is one of the two fixed strings of the ASP.NET middleware wsgate
//! replaces, or for a failure inside the proxy a third fixed sentence; no token byte is ever
//! echoed.

pub mod gate;
pub mod record;
pub mod rules;
pub mod stats;
pub mod upstream;

use std::rc::Rc;

use serde_json::{Map, Value};

use crate::token::extractor::TokenLocation;

/// Body of the 400 sent for a request that is not a WebSocket upgrade.
pub const NOT_WEBSOCKET_BODY: &str = "WebSocket connection expected.";
/// Body of every 401.
pub const UNAUTHORIZED_BODY: &str = "Unauthorized WebSocket connection.";
/// Body of the 500 sent when the proxy could not make the request safe to forward.
pub const EDIT_FAILED_BODY: &str = "WebSocket connection could not be forwarded safely.";

/// Why a request on a guarded path was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DenyReason {
    /// Not a WebSocket upgrade.
    NotWebSocket,
    /// No bearer token.
    MissingToken,
    /// More than one bearer token.
    MultipleTokens,
    /// Token longer than `max_token_bytes`.
    TokenTooLarge,
    /// Not a well-formed compact JWS, or a claim of the wrong type.
    Malformed,
    /// `alg` outside the allowlist (`none`, HS*, anything unknown).
    UnsupportedAlgorithm,
    /// No key of the set fits the token's `kid` and `alg`.
    UnknownKey,
    /// No fitting key verifies the signature.
    BadSignature,
    /// No `kid`, and more keys fit its algorithm than wsgate tries for one token
    /// ([`crate::token::authenticator::MAX_KEYS_WITHOUT_KID`]).
    AmbiguousKey,
    /// No `exp` claim.
    MissingExpiry,
    /// `exp` (plus skew) has passed.
    Expired,
    /// `nbf` (minus skew) has not come yet.
    NotYetValid,
    /// Its lifetime (`exp - iat`, or `exp - now` without `iat`) exceeds
    /// `max_lifetime_seconds`.
    LifetimeTooLong,
    /// `iss` is not the configured issuer.
    WrongIssuer,
    /// `aud` names none of the configured audiences.
    WrongAudience,
    /// There is no key set to verify with.
    KeysUnavailable,
    /// The token was valid, but the host refused to remove the token or a client copy of
    /// an identity header, or to set one: forwarding could leak the token or a forged
    /// identity, so the request fails closed with a 500.
    UpstreamEditFailed,
    /// The host would not hand over the request's headers, so nothing about the request
    /// can be trusted: refused with a 500, never passed on.
    RequestUnreadable,
}

impl DenyReason {
    /// Every reason, in the order stats and docs list them.
    pub const ALL: [DenyReason; 18] = [
        Self::NotWebSocket,
        Self::MissingToken,
        Self::MultipleTokens,
        Self::TokenTooLarge,
        Self::Malformed,
        Self::UnsupportedAlgorithm,
        Self::UnknownKey,
        Self::BadSignature,
        Self::AmbiguousKey,
        Self::MissingExpiry,
        Self::Expired,
        Self::NotYetValid,
        Self::LifetimeTooLong,
        Self::WrongIssuer,
        Self::WrongAudience,
        Self::KeysUnavailable,
        Self::UpstreamEditFailed,
        Self::RequestUnreadable,
    ];

    /// The snake_case name used in logs and stats.
    pub fn name(self) -> &'static str {
        match self {
            Self::NotWebSocket => "not_websocket",
            Self::MissingToken => "missing_token",
            Self::MultipleTokens => "multiple_tokens",
            Self::TokenTooLarge => "token_too_large",
            Self::Malformed => "malformed",
            Self::UnsupportedAlgorithm => "unsupported_algorithm",
            Self::UnknownKey => "unknown_key",
            Self::BadSignature => "bad_signature",
            Self::AmbiguousKey => "ambiguous_key",
            Self::MissingExpiry => "missing_expiry",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::LifetimeTooLong => "lifetime_too_long",
            Self::WrongIssuer => "wrong_issuer",
            Self::WrongAudience => "wrong_audience",
            Self::KeysUnavailable => "keys_unavailable",
            Self::UpstreamEditFailed => "upstream_edit_failed",
            Self::RequestUnreadable => "request_unreadable",
        }
    }

    /// A fixed, token-free sentence for `error_description`.
    fn description(self) -> &'static str {
        match self {
            Self::NotWebSocket => "WebSocket upgrade expected",
            Self::MissingToken => "no bearer token",
            Self::MultipleTokens => "more than one bearer token",
            Self::TokenTooLarge => "the token is too large",
            Self::Malformed => "the token is malformed",
            Self::UnsupportedAlgorithm => "the token's algorithm is not accepted",
            Self::UnknownKey => "the token's signing key is unknown",
            Self::BadSignature => "the token's signature is invalid",
            Self::AmbiguousKey => "the token names no key and too many could fit",
            Self::MissingExpiry => "the token has no expiry",
            Self::Expired => "the token has expired",
            Self::NotYetValid => "the token is not yet valid",
            Self::LifetimeTooLong => "the token's lifetime is too long",
            Self::WrongIssuer => "the token's issuer is not accepted",
            Self::WrongAudience => "the token's audience is not accepted",
            Self::KeysUnavailable => "signing keys are unavailable",
            Self::UpstreamEditFailed => "the request could not be made safe to forward",
            Self::RequestUnreadable => "the host did not hand over the request's headers",
        }
    }

    /// The local reply for this reason.
    pub fn reply(self) -> LocalReply {
        if matches!(self, Self::UpstreamEditFailed | Self::RequestUnreadable) {
            return LocalReply {
                status: 500,
                body: EDIT_FAILED_BODY,
                www_authenticate: None,
            };
        }
        let challenge = match self {
            Self::NotWebSocket => None,
            // RFC 6750 §3.1: no error code when the request carried no credentials.
            Self::MissingToken => Some("Bearer".to_owned()),
            // RFC 6750 §3.1: "uses more than one method to include an access token".
            Self::MultipleTokens => Some(format!(
                "Bearer error=\"invalid_request\", error_description=\"{}\"",
                self.description()
            )),
            _ => Some(format!(
                "Bearer error=\"invalid_token\", error_description=\"{}\"",
                self.description()
            )),
        };
        match challenge {
            None => LocalReply {
                status: 400,
                body: NOT_WEBSOCKET_BODY,
                www_authenticate: None,
            },
            Some(challenge) => LocalReply {
                status: 401,
                body: UNAUTHORIZED_BODY,
                www_authenticate: Some(challenge),
            },
        }
    }
}

impl std::fmt::Display for DenyReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A response the proxy sends itself instead of forwarding the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalReply {
    pub status: u32,
    pub body: &'static str,
    /// The `WWW-Authenticate` value, on a 401.
    pub www_authenticate: Option<String>,
}

/// The verified identity of an accepted request. Claims and payload are shared, not copied,
/// between the token cache and each request it answers.
#[derive(Debug, Clone, PartialEq)]
pub struct Identity {
    /// Every claim of the verified payload.
    pub claims: Rc<Map<String, Value>>,
    /// The payload exactly as signed (canonical base64url), for `forward_payload_header`.
    pub payload: Rc<str>,
    /// Where the token was, once the gate knows.
    pub location: Option<TokenLocation>,
    /// The provider that verified it (an index into the configuration's providers).
    pub provider: usize,
}

impl Identity {
    /// A string claim, when present as a string.
    pub fn claim_str(&self, name: &str) -> Option<&str> {
        self.claims.get(name).and_then(Value::as_str)
    }

    /// When the token stops being valid, in milliseconds since the epoch: `exp` plus
    /// `skew_seconds` (a verified token always has a numeric `exp`).
    pub fn expires_at_ms(&self, skew_seconds: u64) -> Option<u64> {
        let exp = self.claims.get("exp").and_then(Value::as_f64)?;
        let at = (exp + skew_seconds as f64) * 1000.0;
        (at.is_finite() && at >= 0.0).then(|| at.min(u64::MAX as f64) as u64)
    }
}

/// What a refused token said about itself, unverified: for the operator's log line only,
/// never for a decision.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Claimed {
    pub iss: Option<String>,
    pub sub: Option<String>,
}

impl Claimed {
    /// `iss` and `sub` when they are strings.
    pub fn from_claims(claims: &Map<String, Value>) -> Self {
        let text = |name: &str| claims.get(name).and_then(Value::as_str).map(str::to_owned);
        Claimed {
            iss: text("iss"),
            sub: text("sub"),
        }
    }
}

/// A refusal: its reason, what the token claimed when it got far enough to be read, where
/// the one token was (so a refused token can be cut from what Envoy logs, too), and the
/// provider whose policy refused it, once the gate chose one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    pub reason: DenyReason,
    pub claimed: Claimed,
    /// Where each token of the request was (one, or several for `multiple_tokens`), so
    /// that every one is cut before Envoy logs the request.
    pub locations: Vec<crate::token::extractor::TokenLocation>,
    pub provider: Option<usize>,
}

impl From<DenyReason> for Denial {
    fn from(reason: DenyReason) -> Self {
        Denial {
            reason,
            claimed: Claimed::default(),
            locations: Vec::new(),
            provider: None,
        }
    }
}

/// What to do with a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Guarded and accepted.
    Allow(Identity),
    /// Guarded and refused.
    Deny(Denial),
}

impl Decision {
    /// The deny reason, for a refusal.
    #[cfg(test)]
    pub fn deny_reason(&self) -> Option<DenyReason> {
        match self {
            Self::Deny(denial) => Some(denial.reason),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_snake_case() {
        let mut names: Vec<_> = DenyReason::ALL.iter().map(|r| r.name()).collect();
        assert!(names
            .iter()
            .all(|n| n.chars().all(|c| c.is_ascii_lowercase() || c == '_')));
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), DenyReason::ALL.len());
    }

    #[test]
    fn not_websocket_is_a_plain_400() {
        let reply = DenyReason::NotWebSocket.reply();
        assert_eq!(reply.status, 400);
        assert_eq!(reply.body, "WebSocket connection expected.");
        assert_eq!(reply.www_authenticate, None);
    }

    /// Not the client's fault, and no challenge would help: a 500 with a fixed body.
    #[test]
    fn a_refused_header_edit_is_a_500() {
        let reply = DenyReason::UpstreamEditFailed.reply();
        assert_eq!(reply.status, 500);
        assert_eq!(
            reply.body,
            "WebSocket connection could not be forwarded safely."
        );
        assert_eq!(reply.www_authenticate, None);
    }

    #[test]
    fn every_auth_failure_is_a_401_with_a_challenge() {
        let auth_failures = DenyReason::ALL.into_iter().filter(|reason| {
            !matches!(
                reason,
                DenyReason::NotWebSocket
                    | DenyReason::UpstreamEditFailed
                    | DenyReason::RequestUnreadable
            )
        });
        for reason in auth_failures {
            let reply = reason.reply();
            assert_eq!(reply.status, 401, "{reason}");
            assert_eq!(reply.body, "Unauthorized WebSocket connection.");
            let challenge = reply.www_authenticate.unwrap();
            assert!(challenge.starts_with("Bearer"), "{challenge}");
            match reason {
                DenyReason::MissingToken => assert_eq!(challenge, "Bearer"),
                DenyReason::MultipleTokens => {
                    assert!(challenge.contains("error=\"invalid_request\""))
                }
                _ => assert!(challenge.contains("error=\"invalid_token\""), "{challenge}"),
            }
        }
    }
}
