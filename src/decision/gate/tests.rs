//! Unit tests of [`super`]: one provider here, several in `providers`.

use super::*;
use crate::config::{Config, KeySource};
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
    (config.gate(), keys)
}

fn versioned(keys: &KeySet, version: u64) -> VersionedKeys {
    VersionedKeys {
        version,
        keys: std::rc::Rc::new(keys.clone()),
    }
}

/// [`Gate::decide_by`] for a guarded `head`, with the module's verifiers.
fn cached(
    gate: &Gate,
    head: &RequestHead,
    keys: &VersionedKeys,
    now_ms: u64,
    cache: &mut TokenCache,
) -> (Outcome, CacheUse) {
    let rule = gate.rule_for(head.path()).expect("a guarded path");
    let mut keys = FixedKeys(Some(keys.clone()));
    let outcome = gate.decide_by(&rule, head, &mut keys, now_ms, Some(cache), &InModule);
    let used = outcome.cache;
    (outcome, used)
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
    assert_eq!(decision.tokens.headers(), ["authorization"]);
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
        let outcome = gate.decide(&head, Some(&keys), NOW_MS).unwrap();
        (outcome.deny_reason().expect("refused"), outcome.tokens)
    };
    let (bad, tokens) = refused(&[("authorization", &bearer)]);
    assert!(matches!(
        bad,
        DenyReason::BadSignature | DenyReason::Malformed
    ));
    assert_eq!(tokens.headers(), ["authorization"]);
    // Two tokens: every place one was, so each is cut.
    let (two, tokens) = refused(&[("authorization", &bearer), ("authorization", &bearer)]);
    assert_eq!(two, DenyReason::MultipleTokens);
    assert_eq!(tokens.headers(), ["authorization"]);
    let (none, tokens) = refused(&[]);
    assert_eq!(none, DenyReason::MissingToken);
    assert!(tokens.is_empty());
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
    assert_eq!(first.verdict, second.verdict);
    assert!(first.identity().is_some());
}

#[test]
fn a_cached_token_of_a_rotated_out_key_is_refused_at_once() {
    let (gate, keys) = setup();
    let bearer = format!("Bearer {}", token());
    let head = upgrade("/ws", &[("authorization", &bearer)]);
    let mut cache = TokenCache::new(16, crate::token::token_cache::MAX_CACHE_BYTES);
    let (first, _) = cached(&gate, &head, &versioned(&keys, 1), NOW * 1000, &mut cache);
    assert!(first.identity().is_some());
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
    assert!(first.identity().is_some());
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
    let outcome = gate.decide(&head, Some(&keys), NOW_MS).unwrap();
    let identity = outcome.identity().expect("allowed");
    assert_eq!(identity.claim_str("sub"), Some("s"));
}

mod policies;
mod providers;
