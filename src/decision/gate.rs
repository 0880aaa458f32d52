//! The per-request decision: which rule guards this path, is it a WebSocket upgrade, and
//! does it carry exactly one token that a provider the rule accepts verifies.
//!
//! The gate is pure: the glue hands it the request, a way to read each provider's current
//! key set (or none, when keys are not available yet) and the host's time, and applies the
//! [`Decision`].
//!
//! A token is matched to a provider by its unverified `iss`, among the providers the rule
//! accepts, and verified with that provider's keys and policy only: a key of one provider
//! never verifies a token that claims another's issuer. A rule with one provider skips the
//! match: that provider's policy refuses a foreign `iss` itself (`wrong_issuer`).

use std::borrow::Cow;

use serde_json::Value;

use crate::config::Config;
use crate::decision::rules::Rule;
use crate::decision::{Claimed, Decision, Denial, DenyReason, Identity};
use crate::keys::jwks::{KeySet, VersionedKeys};
use crate::request::path::NormalPath;
use crate::request::upgrade;
use crate::request::RequestHead;
use crate::signature::{InModule, Verifier};
use crate::token::authenticator::Authenticator;
use crate::token::extractor::{FoundToken, TokenSources};
use crate::token::jws::CompactJws;
use crate::token::token_cache::TokenCache;

/// Decides requests for one plugin configuration.
#[derive(Debug, Clone)]
pub struct Gate {
    /// Each provider's verification policy, by provider index.
    providers: Vec<Authenticator>,
    rules: Vec<Rule>,
    /// For a path that cannot be normalised: the providers every rule accepts.
    undecidable: Rule,
    sources: TokenSources,
    /// `max_token_bytes`, a plugin-wide setting that every provider's policy carries:
    /// checked before a token is matched to a provider, and before the cache hashes it.
    max_token_bytes: usize,
}

/// Each provider's current key set, by provider index; read only for the provider a
/// token is matched to.
pub type KeysOf<'a> = dyn FnMut(usize) -> Option<VersionedKeys> + 'a;

impl Gate {
    /// A gate for `config`'s rules and providers.
    pub fn new(config: &Config) -> Gate {
        Gate {
            providers: config
                .providers
                .iter()
                .map(|provider| provider.authenticator.clone())
                .collect(),
            rules: config.rules.clone(),
            undecidable: Rule::undecidable(&config.rules),
            sources: config.sources.clone(),
            max_token_bytes: config
                .providers
                .first()
                .map_or(0, |provider| provider.authenticator.max_token_bytes),
        }
    }

    /// `clock_skew_seconds` of provider `index`: how long past `exp` its tokens still count.
    pub fn clock_skew_seconds(&self, index: usize) -> u64 {
        self.providers
            .get(index)
            .map_or(0, |provider| provider.policy.clock_skew_seconds)
    }

    /// The rule that decides requests to `path`, a `:path` value: for each of its readings
    /// ([`NormalPath::readings`]: query and fragment ignored, `..` and `;` parameters taken
    /// every way a backend may take them), the first rule whose match fits. `None`: no
    /// reading is guarded. One rule: that rule. Several: a backend may serve the request as
    /// any of their paths, so only the providers all of them accept may pass
    /// ([`Rule::common`]); a path that cannot be normalised is decided the same way over
    /// every rule. Lets the glue pass unguarded requests on after reading one header instead
    /// of all.
    pub fn rule_for(&self, path: &str) -> Option<Cow<'_, Rule>> {
        let mut matched: Vec<&Rule> = Vec::new();
        for reading in NormalPath::readings(path) {
            let rule = match reading {
                NormalPath::Undecidable => &self.undecidable,
                reading => match self.rules.iter().find(|rule| rule.matches(&reading)) {
                    Some(rule) => rule,
                    None => continue,
                },
            };
            if !matched.iter().any(|seen| std::ptr::eq(*seen, rule)) {
                matched.push(rule);
            }
        }
        match matched.as_slice() {
            [] => None,
            [one] => Some(Cow::Borrowed(*one)),
            several => Some(Cow::Owned(Rule::common(
                several,
                "(several rules)".to_owned(),
            ))),
        }
    }

    /// The rule that decides `head`, from its `:path` (see [`Gate::rule_for`]).
    pub fn rule_of(&self, head: &RequestHead) -> Option<Cow<'_, Rule>> {
        self.rule_for(head.first(":path").unwrap_or_default())
    }

    /// Decides `head` with `keys` for every provider at `now_ms` (milliseconds since the
    /// epoch), without a cache; `None` when its path is not guarded (it passes untouched).
    pub fn decide(
        &self,
        head: &RequestHead,
        keys: Option<&KeySet>,
        now_ms: u64,
    ) -> Option<Decision> {
        let keys = keys.map(|keys| VersionedKeys {
            version: 0,
            keys: std::rc::Rc::new(keys.clone()),
        });
        self.decide_cached(head, &mut |_| keys.clone(), now_ms, None, &InModule)
            .map(|(decision, _)| decision)
    }

    /// Decides `head` at `now_ms` (milliseconds since the epoch) with each provider's keys
    /// from `keys`, answering from `cache` when it holds the token and filling it, tied to
    /// the provider's key-set version, when a token verifies; `verifier` does the signature
    /// arithmetic. `None` when no rule matches the path.
    pub fn decide_cached(
        &self,
        head: &RequestHead,
        keys: &mut KeysOf<'_>,
        now_ms: u64,
        cache: Option<&mut TokenCache>,
        verifier: &dyn Verifier,
    ) -> Option<(Decision, CacheUse)> {
        let rule = self.rule_of(head)?;
        Some(self.decide_by(&rule, head, keys, now_ms, cache, verifier))
    }

    /// [`Gate::decide_cached`] for a request whose `rule` the glue has already found with
    /// this gate's [`Gate::rule_for`], so that its path is normalised once. Crate-private:
    /// a rule from elsewhere would decide with whatever providers it names.
    pub(crate) fn decide_by(
        &self,
        rule: &Rule,
        head: &RequestHead,
        keys: &mut KeysOf<'_>,
        now_ms: u64,
        cache: Option<&mut TokenCache>,
        verifier: &dyn Verifier,
    ) -> (Decision, CacheUse) {
        // A refused request's tokens are still found, every one, so that each is cut
        // before Envoy logs the request (upstream::edits).
        let refused = |reason: DenyReason| {
            let denial = Denial {
                locations: self.sources.locations(head),
                ..reason.into()
            };
            (Decision::Deny(denial), CacheUse::Off)
        };
        if !upgrade::is_websocket_upgrade(head) {
            return refused(DenyReason::NotWebSocket);
        }
        let found = match self.sources.extract(head) {
            Ok(Some(found)) => found,
            Ok(None) => return refused(DenyReason::MissingToken),
            Err(reason) => return refused(reason),
        };
        let (verified, used) = self.verify(rule, &found, keys, now_ms, cache, verifier);
        // A refused token is cut from the request too (upstream::edits): nothing goes
        // upstream, but Envoy's access log may write `:path`.
        let decision = match verified {
            Ok(mut identity) => {
                identity.location = Some(found.location);
                Decision::Allow(identity)
            }
            Err(mut denial) => {
                denial.locations = vec![found.location];
                Decision::Deny(denial)
            }
        };
        (decision, used)
    }

    /// The found token's verification, through the cache when there is one.
    fn verify(
        &self,
        rule: &Rule,
        found: &FoundToken,
        keys: &mut KeysOf<'_>,
        now_ms: u64,
        cache: Option<&mut TokenCache>,
        verifier: &dyn Verifier,
    ) -> (Result<Identity, Denial>, CacheUse) {
        // The size cap comes before anything else, hashing for the cache included.
        let oversized = found.token.len() > self.max_token_bytes;
        let Some(cache) = cache.filter(|_| !oversized) else {
            let verified = self.authenticate(rule, &found.token, keys, now_ms, verifier);
            return (verified.map(|(identity, _)| identity), CacheUse::Off);
        };
        let current = |provider: usize| keys(provider).map(|current| current.version);
        if let Some(identity) = cache.get(&found.token, now_ms, current) {
            // Verified by a provider this rule may not accept: decided afresh (and so
            // refused, as that provider is the one its `iss` names).
            if rule.accepts(identity.provider) {
                return (Ok(identity), CacheUse::Hit);
            }
        }
        match self.authenticate(rule, &found.token, keys, now_ms, verifier) {
            Ok((identity, version)) => {
                let skew = self.clock_skew_seconds(identity.provider);
                if let Some(deadline) = identity.expires_at_ms(skew) {
                    cache.insert(&found.token, version, &identity, deadline);
                }
                (Ok(identity), CacheUse::Miss)
            }
            // Nothing was verified: no keys to verify with.
            Err(denial) if denial.reason == DenyReason::KeysUnavailable => {
                (Err(denial), CacheUse::Off)
            }
            Err(denial) => (Err(denial), CacheUse::Miss),
        }
    }

    /// Verifies `token` with the provider `rule` accepts for it and that provider's keys;
    /// the identity, and the version of the key set that verified it.
    fn authenticate(
        &self,
        rule: &Rule,
        token: &str,
        keys: &mut KeysOf<'_>,
        now_ms: u64,
        verifier: &dyn Verifier,
    ) -> Result<(Identity, u64), Denial> {
        // A rule with one provider: without its keys nothing can be decided, so the token is
        // not looked at (as before there were several providers; the request waits for them).
        let only = match rule.providers.as_slice() {
            [only] => match keys(*only) {
                Some(current) => Some(current),
                None => {
                    return Err(Denial {
                        provider: Some(*only),
                        ..DenyReason::KeysUnavailable.into()
                    })
                }
            },
            _ => None,
        };
        let jws = CompactJws::parse(token, self.max_token_bytes)?;
        let claims = jws.claims()?;
        let Some((index, authenticator)) = self.provider_for(rule, &claims) else {
            return Err(Denial {
                claimed: Claimed::from_claims(&claims),
                ..DenyReason::WrongIssuer.into()
            });
        };
        let chosen = |mut denial: Denial| {
            denial.provider = Some(index);
            denial
        };
        let Some(current) = only.or_else(|| keys(index)) else {
            return Err(chosen(Denial {
                claimed: Claimed::from_claims(&claims),
                ..DenyReason::KeysUnavailable.into()
            }));
        };
        let mut identity = authenticator
            .authenticate_parsed(&jws, claims, &current.keys, now_ms / 1000, verifier)
            .map_err(chosen)?;
        identity.provider = index;
        Ok((identity, current.version))
    }

    /// The provider `rule` accepts whose issuer the token's `iss` names; the one provider
    /// of a rule that accepts one, whatever `iss` says.
    fn provider_for(
        &self,
        rule: &Rule,
        claims: &serde_json::Map<String, Value>,
    ) -> Option<(usize, &Authenticator)> {
        if let [only] = rule.providers.as_slice() {
            return Some((*only, self.providers.get(*only)?));
        }
        let iss = claims.get("iss").and_then(Value::as_str)?;
        rule.providers
            .iter()
            .filter_map(|&index| Some((index, self.providers.get(index)?)))
            .find(|(_, provider)| provider.policy.issuer == iss)
    }
}

/// Whether a decision used the token cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheUse {
    /// Answered from the cache.
    Hit,
    /// Verified, and cached when valid.
    Miss,
    /// No cache, or decided before any token was looked at.
    Off,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::KeySource;
    use crate::token::extractor::TokenLocation;
    use serde_json::json;
    use testbed::keys::{jwks, RSA_2048};

    const NOW: u64 = 1_800_000_000;
    const NOW_MS: u64 = NOW * 1000;

    fn setup() -> (Gate, KeySet) {
        let config = json!({
            "paths": ["/ws", "/media"],
            "issuer": "https://issuer.example",
            "audiences": ["api"],
            "jwks": jwks(&[(&RSA_2048, "r")]),
        });
        let config = Config::parse(config.to_string().as_bytes()).unwrap();
        let KeySource::Inline(keys) = config.providers[0].keys.clone() else {
            panic!("inline keys")
        };
        (Gate::new(&config), keys)
    }

    fn versioned(keys: &KeySet, version: u64) -> VersionedKeys {
        VersionedKeys {
            version,
            keys: std::rc::Rc::new(keys.clone()),
        }
    }

    /// [`Gate::decide_cached`] for a guarded `head`, with the module's verifiers.
    fn cached(
        gate: &Gate,
        head: &RequestHead,
        keys: &VersionedKeys,
        now_ms: u64,
        cache: &mut TokenCache,
    ) -> (Decision, CacheUse) {
        gate.decide_cached(
            head,
            &mut |_| Some(keys.clone()),
            now_ms,
            Some(cache),
            &InModule,
        )
        .expect("a guarded path")
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
        for path in ["/", "/wsx", "/ws2", "/w", "/api", "/media/x"] {
            let head = RequestHead::new([(":method", "GET"), (":path", path)]);
            assert_eq!(gate.decide(&head, Some(&keys), NOW_MS), None, "{path}");
        }
    }

    #[test]
    fn every_spelling_of_a_guarded_path_is_guarded() {
        let (gate, keys) = setup();
        for path in [
            "/WS", "/ws/", "//ws", "/%77s", "/ws;x=1", "/./ws", "/ws%2F", "/Media",
        ] {
            let head = upgrade(path, &[]);
            assert_eq!(
                gate.decide(&head, Some(&keys), NOW_MS)
                    .unwrap()
                    .deny_reason(),
                Some(DenyReason::MissingToken),
                "{path}"
            );
        }
    }

    #[test]
    fn guarded_paths_match_without_the_query() {
        let (gate, keys) = setup();
        let guards = |path: &str| gate.rule_for(path).is_some();
        assert!(guards("/media?x=1") && guards("/ws#f"));
        assert!(!guards("/wsx?/ws") && !guards(""));
        let head = RequestHead::new([(":method", "GET"), (":path", "/media?x=1")]);
        assert_eq!(
            gate.decide(&head, Some(&keys), NOW_MS)
                .unwrap()
                .deny_reason(),
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
        let decision = gate.decide(&head, Some(&keys), NOW_MS).unwrap();
        assert_eq!(decision.deny_reason(), Some(DenyReason::NotWebSocket));
        // The token is still located, so that it is cut before Envoy logs the request.
        let Decision::Deny(denial) = decision else {
            panic!("refused")
        };
        assert_eq!(
            denial.locations,
            [TokenLocation::Header {
                name: "authorization".into()
            }]
        );
    }

    #[test]
    fn a_refusal_says_where_its_one_token_was() {
        let (gate, keys) = setup();
        let bearer = format!("Bearer {}x", token());
        let upgrade = [
            (":method", "GET"),
            (":path", "/ws"),
            ("connection", "Upgrade"),
            ("upgrade", "websocket"),
        ];
        let refused = |extra: &[(&str, &str)]| {
            let head = RequestHead::new(upgrade.iter().chain(extra).copied());
            match gate.decide(&head, Some(&keys), NOW_MS) {
                Some(Decision::Deny(denial)) => denial,
                other => panic!("{extra:?}: {other:?}"),
            }
        };
        let bad = refused(&[("authorization", &bearer)]);
        assert!(matches!(
            bad.reason,
            DenyReason::BadSignature | DenyReason::Malformed
        ));
        assert_eq!(bad.locations.len(), 1);
        // Two tokens: every place one was, so each is cut.
        let two = refused(&[("authorization", &bearer), ("authorization", &bearer)]);
        assert_eq!(two.reason, DenyReason::MultipleTokens);
        assert_eq!(
            two.locations,
            [TokenLocation::Header {
                name: "authorization".into()
            }]
        );
        let none = refused(&[]);
        assert_eq!(none.reason, DenyReason::MissingToken);
        assert!(none.locations.is_empty());
    }

    #[test]
    fn missing_and_multiple_tokens() {
        let (gate, keys) = setup();
        assert_eq!(
            gate.decide(&upgrade("/ws", &[]), Some(&keys), NOW_MS)
                .unwrap()
                .deny_reason(),
            Some(DenyReason::MissingToken)
        );
        let bearer = format!("Bearer {}", token());
        let two = upgrade(
            "/ws",
            &[("authorization", &bearer), ("authorization", &bearer)],
        );
        assert_eq!(
            gate.decide(&two, Some(&keys), NOW_MS)
                .unwrap()
                .deny_reason(),
            Some(DenyReason::MultipleTokens)
        );
        let empty = upgrade("/ws", &[("authorization", "Bearer ")]);
        assert_eq!(
            gate.decide(&empty, Some(&keys), NOW_MS)
                .unwrap()
                .deny_reason(),
            Some(DenyReason::Malformed)
        );
    }

    #[test]
    fn no_keys_is_keys_unavailable() {
        let (gate, _) = setup();
        let bearer = format!("Bearer {}", token());
        let head = upgrade("/ws", &[("authorization", &bearer)]);
        assert_eq!(
            gate.decide(&head, None, NOW_MS).unwrap().deny_reason(),
            Some(DenyReason::KeysUnavailable)
        );
    }

    #[test]
    fn a_cache_hit_decides_as_a_miss_did() {
        let (gate, keys) = setup();
        let bearer = format!("Bearer {}", token());
        let head = upgrade("/ws", &[("authorization", &bearer)]);
        let mut cache = TokenCache::new(16, crate::token::token_cache::MAX_CACHE_BYTES);
        let (first, used) = cached(&gate, &head, &versioned(&keys, 1), NOW * 1000, &mut cache);
        assert_eq!(used, CacheUse::Miss);
        let (second, used) = cached(&gate, &head, &versioned(&keys, 1), NOW * 1000, &mut cache);
        assert_eq!(used, CacheUse::Hit);
        assert_eq!(first, second);
        assert!(matches!(first, Decision::Allow(_)));
    }

    #[test]
    fn a_cached_token_of_a_rotated_out_key_is_refused_at_once() {
        let (gate, keys) = setup();
        let bearer = format!("Bearer {}", token());
        let head = upgrade("/ws", &[("authorization", &bearer)]);
        let mut cache = TokenCache::new(16, crate::token::token_cache::MAX_CACHE_BYTES);
        let (first, _) = cached(&gate, &head, &versioned(&keys, 1), NOW * 1000, &mut cache);
        assert!(matches!(first, Decision::Allow(_)));
        // The issuer rotates: version 2 no longer holds the key.
        let rotated = KeySet::parse(
            jwks(&[(&testbed::keys::P256, "other")])
                .to_string()
                .as_bytes(),
            Default::default(),
        )
        .unwrap()
        .0;
        let (after, used) = cached(
            &gate,
            &head,
            &versioned(&rotated, 2),
            NOW * 1000,
            &mut cache,
        );
        assert_eq!(used, CacheUse::Miss);
        assert_eq!(after.deny_reason(), Some(DenyReason::UnknownKey));
    }

    #[test]
    fn an_expired_cached_token_is_refused() {
        let (gate, keys) = setup();
        let bearer = format!("Bearer {}", token()); // exp = NOW + 60, skew 60
        let head = upgrade("/ws", &[("authorization", &bearer)]);
        let mut cache = TokenCache::new(16, crate::token::token_cache::MAX_CACHE_BYTES);
        let (first, _) = cached(&gate, &head, &versioned(&keys, 1), NOW * 1000, &mut cache);
        assert!(matches!(first, Decision::Allow(_)));
        let later = (NOW + 121) * 1000;
        let (after, used) = cached(&gate, &head, &versioned(&keys, 1), later, &mut cache);
        assert_eq!(used, CacheUse::Miss, "the entry is past its deadline");
        assert_eq!(after.deny_reason(), Some(DenyReason::Expired));
    }

    #[test]
    fn a_valid_upgrade_is_allowed_with_its_identity() {
        let (gate, keys) = setup();
        let bearer = format!("Bearer {}", token());
        let head = upgrade("/ws?room=1", &[("authorization", &bearer)]);
        match gate.decide(&head, Some(&keys), NOW_MS).unwrap() {
            Decision::Allow(identity) => assert_eq!(identity.claim_str("sub"), Some("s")),
            other => panic!("expected Allow, got {other:?}"),
        }
    }
}

#[cfg(test)]
mod provider_tests;
