//! The per-request decision: is this path guarded, is it a WebSocket upgrade, and does it
//! carry exactly one valid token.
//!
//! The gate is pure: the glue hands it the request, the current key set (or none, when keys
//! are not available yet) and the host's time, and applies the [`Decision`].

use crate::authenticator::Authenticator;
use crate::config::Config;
use crate::decision::{Decision, Denial, DenyReason, Identity};
use crate::extractor::TokenSources;
use crate::jwks::KeySet;
use crate::request::RequestHead;
use crate::upgrade;

/// Decides requests for one plugin configuration.
#[derive(Debug, Clone)]
pub struct Gate {
    paths: Vec<String>,
    authenticator: Authenticator,
    sources: TokenSources,
}

impl Gate {
    /// A gate for `config`'s paths and verification policy.
    pub fn new(config: &Config) -> Gate {
        Gate {
            paths: config.paths.clone(),
            authenticator: config.authenticator.clone(),
            sources: config.sources.clone(),
        }
    }

    /// Whether requests to `path` (query ignored) are guarded.
    pub fn guards(&self, head: &RequestHead) -> bool {
        let path = head.path();
        self.paths.iter().any(|guarded| guarded == path)
    }

    /// Decides `head` with `keys` at `now` (seconds since the epoch).
    pub fn decide(&self, head: &RequestHead, keys: Option<&KeySet>, now: u64) -> Decision {
        if !self.guards(head) {
            return Decision::Unguarded;
        }
        match self.authorize(head, keys, now) {
            Ok(identity) => Decision::Allow(identity),
            Err(reason) => Decision::Deny(reason),
        }
    }

    fn authorize(
        &self,
        head: &RequestHead,
        keys: Option<&KeySet>,
        now: u64,
    ) -> Result<Identity, Denial> {
        if !upgrade::is_websocket_upgrade(head) {
            return Err(DenyReason::NotWebSocket.into());
        }
        let found = self
            .sources
            .extract(head)?
            .ok_or(DenyReason::MissingToken)?;
        let keys = keys.ok_or(DenyReason::KeysUnavailable)?;
        let mut identity = self.authenticator.authenticate(&found.token, keys, now)?;
        identity.location = Some(found.location);
        Ok(identity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::KeySource;
    use serde_json::json;
    use testbed::keys::{jwks, RSA_2048};

    const NOW: u64 = 1_800_000_000;

    fn setup() -> (Gate, KeySet) {
        let config = json!({
            "paths": ["/ws", "/media"],
            "issuer": "https://issuer.example",
            "audiences": ["api"],
            "jwks": jwks(&[(&RSA_2048, "r")]),
        });
        let config = Config::parse(config.to_string().as_bytes()).unwrap();
        let KeySource::Inline(keys) = config.keys.clone() else {
            panic!("inline keys")
        };
        (Gate::new(&config), keys)
    }

    fn token() -> String {
        RSA_2048.sign(
            json!({"kid": "r"}),
            &json!({"iss": "https://issuer.example", "aud": "api", "sub": "s", "exp": NOW + 60}),
        )
    }

    fn upgrade(path: &str, extra: &[(&str, &str)]) -> RequestHead {
        let mut pairs = vec![
            (":method", "GET"),
            (":path", path),
            ("connection", "Upgrade"),
            ("upgrade", "websocket"),
        ];
        pairs.extend_from_slice(extra);
        RequestHead::new(pairs)
    }

    #[test]
    fn other_paths_pass_untouched() {
        let (gate, keys) = setup();
        for path in ["/", "/wsx", "/ws/", "/WS", "/api"] {
            let head = RequestHead::new([(":method", "GET"), (":path", path)]);
            assert_eq!(
                gate.decide(&head, Some(&keys), NOW),
                Decision::Unguarded,
                "{path}"
            );
        }
    }

    #[test]
    fn guarded_paths_match_without_the_query() {
        let (gate, keys) = setup();
        let head = RequestHead::new([(":method", "GET"), (":path", "/media?x=1")]);
        assert_eq!(
            gate.decide(&head, Some(&keys), NOW).deny_reason(),
            Some(DenyReason::NotWebSocket)
        );
    }

    #[test]
    fn not_an_upgrade_comes_before_the_token() {
        let (gate, keys) = setup();
        let bearer = format!("Bearer {}", token());
        let head = RequestHead::new([
            (":method", "GET"),
            (":path", "/ws"),
            ("authorization", bearer.as_str()),
        ]);
        assert_eq!(
            gate.decide(&head, Some(&keys), NOW).deny_reason(),
            Some(DenyReason::NotWebSocket)
        );
    }

    #[test]
    fn missing_and_multiple_tokens() {
        let (gate, keys) = setup();
        assert_eq!(
            gate.decide(&upgrade("/ws", &[]), Some(&keys), NOW)
                .deny_reason(),
            Some(DenyReason::MissingToken)
        );
        let bearer = format!("Bearer {}", token());
        let two = upgrade(
            "/ws",
            &[("authorization", &bearer), ("authorization", &bearer)],
        );
        assert_eq!(
            gate.decide(&two, Some(&keys), NOW).deny_reason(),
            Some(DenyReason::MultipleTokens)
        );
        let empty = upgrade("/ws", &[("authorization", "Bearer ")]);
        assert_eq!(
            gate.decide(&empty, Some(&keys), NOW).deny_reason(),
            Some(DenyReason::Malformed)
        );
    }

    #[test]
    fn no_keys_is_keys_unavailable() {
        let (gate, _) = setup();
        let bearer = format!("Bearer {}", token());
        let head = upgrade("/ws", &[("authorization", &bearer)]);
        assert_eq!(
            gate.decide(&head, None, NOW).deny_reason(),
            Some(DenyReason::KeysUnavailable)
        );
    }

    #[test]
    fn a_valid_upgrade_is_allowed_with_its_identity() {
        let (gate, keys) = setup();
        let bearer = format!("Bearer {}", token());
        let head = upgrade("/ws?room=1", &[("authorization", &bearer)]);
        match gate.decide(&head, Some(&keys), NOW) {
            Decision::Allow(identity) => assert_eq!(identity.claim_str("sub"), Some("s")),
            other => panic!("expected Allow, got {other:?}"),
        }
    }
}
