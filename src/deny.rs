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
/// Body of every 403: a verified token, or a request, that a policy does not admit.
pub const FORBIDDEN_BODY: &str = "Forbidden WebSocket connection.";
/// Body of the 429 sent when an identity holds as many sockets as it may.
pub const TOO_MANY_BODY: &str = "Too many WebSocket connections.";
/// Body of the 503 sent when the proxy cannot decide yet (no keys, no quota store).
pub const UNAVAILABLE_BODY: &str = "WebSocket service temporarily unavailable.";
/// `Retry-After` (seconds) of a 429: no one knows when a socket of that identity ends.
pub const TOO_MANY_RETRY_AFTER_SECONDS: u32 = 10;
/// `Retry-After` (seconds) of a 503: about one key-fetch retry.
pub const UNAVAILABLE_RETRY_AFTER_SECONDS: u32 = 5;

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
    /// There is no key set to verify with: 503 with `Retry-After` (or 401 with
    /// `keys_unavailable_status: 401`), since the client's credentials may be fine.
    KeysUnavailable,
    /// The request's `Origin` is present and not one of the rule's `origins`, or is `null`:
    /// 403, before any token is looked at.
    OriginNotAllowed,
    /// A verified token whose claims fail the rule's `claims` (or lack the provider's
    /// `identity_claim` when it counts sockets): 403 with `insufficient_scope`.
    ClaimsNotSatisfied,
    /// The identity already holds `max_sockets_per_identity` open sockets: 429 with
    /// `Retry-After`.
    TooManySockets,
    /// The shared socket count could not be read or written (other VMs kept winning, or its
    /// bucket is full): 503 with `Retry-After`, failing closed.
    QuotaUnavailable,
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
    pub const ALL: [DenyReason; 22] = [
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
        Self::OriginNotAllowed,
        Self::ClaimsNotSatisfied,
        Self::TooManySockets,
        Self::QuotaUnavailable,
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
            Self::OriginNotAllowed => "origin_not_allowed",
            Self::ClaimsNotSatisfied => "claims_not_satisfied",
            Self::TooManySockets => "too_many_sockets",
            Self::QuotaUnavailable => "quota_unavailable",
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
            Self::OriginNotAllowed => "the request's origin is not allowed",
            Self::ClaimsNotSatisfied => "the token's claims do not allow this connection",
            Self::TooManySockets => "this identity holds as many connections as it may",
            Self::QuotaUnavailable => "connections cannot be counted now",
            Self::UpstreamEditFailed => "the request could not be made safe to forward",
            Self::RequestUnreadable => "the host did not hand over the request's headers",
        }
    }

    /// The local reply for this reason, as configured by default (see [`Replies`]).
    pub fn reply(self) -> LocalReply {
        Replies::default().reply(self)
    }
}

/// The status a refusal for [`DenyReason::KeysUnavailable`] gets (`keys_unavailable_status`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum KeysUnavailableStatus {
    /// 503 with `Retry-After`: the client's credentials may be fine, so it should retry.
    #[default]
    ServiceUnavailable,
    /// 401 with `invalid_token`, as before 503 existed (and as `jwt_authn` answers).
    Unauthorized,
}

/// How refusals are answered: every reason's fixed reply, but for the configured status of
/// `keys_unavailable`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Replies {
    pub keys_unavailable: KeysUnavailableStatus,
}

impl Replies {
    /// The local reply for `reason`.
    pub fn reply(&self, reason: DenyReason) -> LocalReply {
        let reply = |status: u32, body: &'static str| LocalReply {
            status,
            body,
            www_authenticate: None,
            retry_after: None,
        };
        let unavailable = LocalReply {
            retry_after: Some(UNAVAILABLE_RETRY_AFTER_SECONDS),
            ..reply(503, UNAVAILABLE_BODY)
        };
        let challenge = match reason {
            DenyReason::UpstreamEditFailed | DenyReason::RequestUnreadable => {
                return reply(500, EDIT_FAILED_BODY)
            }
            DenyReason::NotWebSocket => return reply(400, NOT_WEBSOCKET_BODY),
            DenyReason::OriginNotAllowed => return reply(403, FORBIDDEN_BODY),
            DenyReason::TooManySockets => {
                return LocalReply {
                    retry_after: Some(TOO_MANY_RETRY_AFTER_SECONDS),
                    ..reply(429, TOO_MANY_BODY)
                }
            }
            DenyReason::QuotaUnavailable => return unavailable,
            DenyReason::KeysUnavailable
                if self.keys_unavailable == KeysUnavailableStatus::ServiceUnavailable =>
            {
                return unavailable
            }
            // RFC 6750 §3.1: the token is valid but does not grant what the request needs.
            DenyReason::ClaimsNotSatisfied => {
                return LocalReply {
                    www_authenticate: Some(format!(
                        "Bearer error=\"insufficient_scope\", error_description=\"{}\"",
                        reason.description()
                    )),
                    ..reply(403, FORBIDDEN_BODY)
                }
            }
            // RFC 6750 §3.1: no error code when the request carried no credentials.
            DenyReason::MissingToken => "Bearer".to_owned(),
            // RFC 6750 §3.1: "uses more than one method to include an access token".
            DenyReason::MultipleTokens => format!(
                "Bearer error=\"invalid_request\", error_description=\"{}\"",
                reason.description()
            ),
            _ => format!(
                "Bearer error=\"invalid_token\", error_description=\"{}\"",
                reason.description()
            ),
        };
        LocalReply {
            www_authenticate: Some(challenge),
            ..reply(401, UNAUTHORIZED_BODY)
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
    /// The `WWW-Authenticate` value, on a 401 or a claims 403.
    pub www_authenticate: Option<String>,
    /// The `Retry-After` value in seconds, on a 429 or a 503.
    pub retry_after: Option<u32>,
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
    fn policies_answer_403_429_and_503_with_what_clients_need() {
        let claims = DenyReason::ClaimsNotSatisfied.reply();
        assert_eq!(
            (claims.status, claims.body),
            (403, "Forbidden WebSocket connection.")
        );
        assert!(claims
            .www_authenticate
            .unwrap()
            .starts_with("Bearer error=\"insufficient_scope\""));
        let origin = DenyReason::OriginNotAllowed.reply();
        assert_eq!((origin.status, origin.www_authenticate), (403, None));
        let quota = DenyReason::TooManySockets.reply();
        assert_eq!(
            (quota.status, quota.body),
            (429, "Too many WebSocket connections.")
        );
        assert_eq!(quota.retry_after, Some(10));
        for reason in [DenyReason::KeysUnavailable, DenyReason::QuotaUnavailable] {
            let reply = reason.reply();
            assert_eq!(reply.status, 503, "{reason}");
            assert_eq!(reply.body, "WebSocket service temporarily unavailable.");
            assert_eq!(reply.retry_after, Some(5));
            assert_eq!(reply.www_authenticate, None);
        }
        let as_before = Replies {
            keys_unavailable: KeysUnavailableStatus::Unauthorized,
        }
        .reply(DenyReason::KeysUnavailable);
        assert_eq!((as_before.status, as_before.retry_after), (401, None));
        assert!(as_before
            .www_authenticate
            .unwrap()
            .contains("invalid_token"));
    }

    #[test]
    fn every_auth_failure_is_a_401_with_a_challenge() {
        let auth_failures = DenyReason::ALL.into_iter().filter(|reason| {
            !matches!(
                reason,
                DenyReason::NotWebSocket
                    | DenyReason::UpstreamEditFailed
                    | DenyReason::RequestUnreadable
                    | DenyReason::KeysUnavailable
                    | DenyReason::OriginNotAllowed
                    | DenyReason::ClaimsNotSatisfied
                    | DenyReason::TooManySockets
                    | DenyReason::QuotaUnavailable
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
