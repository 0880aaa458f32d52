//! Every reason the gate refuses a request, and what each maps to: one HTTP status, one
//! name (the log line's `reason` and the stat counter suffix) and one RFC 6750
//! `WWW-Authenticate` challenge.
//!
//! A leaf: it imports nothing of the crate, so every layer may name a reason. The body is one
//! of the two fixed strings of the ASP.NET middleware wsgate replaces, or for a failure inside
//! the proxy a third fixed sentence; no token byte is ever echoed.

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
    /// ((`MAX_KEYS_WITHOUT_KID` in `token::authenticator`)).
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
