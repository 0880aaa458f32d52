//! The rule's `origins` before the token, its `claims` after, from the cache too, and the
//! provider's socket limit asked of the [`SharedView`] only for an admitted identity.

use super::*;
use crate::quota::SocketQuota;
use crate::shared::memory::Memory;

fn gate_with(extra: serde_json::Value) -> (Gate, KeySet) {
    let mut config = json!({
        "issuer": "https://issuer.example",
        "audiences": ["api"],
        "jwks": jwks(&[(&RSA_2048, "r")]),
    });
    for (name, value) in extra.as_object().cloned().unwrap_or_default() {
        config[name] = value;
    }
    let config = Config::parse(config.to_string().as_bytes()).unwrap();
    let KeySource::Inline(keys) = config.providers[0].keys.clone() else {
        panic!("inline keys")
    };
    (config.gate(), keys)
}

fn signed(roles: &[&str]) -> String {
    RSA_2048.sign(
        json!({"kid": "r"}),
        &json!({"iss": "https://issuer.example", "aud": "api", "sub": "s",
                "roles": roles, "exp": NOW + 60}),
    )
}

fn reason(outcome: &Outcome) -> Option<DenyReason> {
    outcome.deny_reason()
}

#[test]
fn a_foreign_origin_is_refused_before_its_token_is_looked_at() {
    let (gate, keys) = gate_with(json!({"origins": ["https://app.example.com"]}));
    let decide = |extra: &[(&str, &str)]| gate.decide(&upgrade("/ws", extra), Some(&keys), NOW_MS);
    let cross_site = decide(&[("origin", "https://evil.example")]).unwrap();
    assert_eq!(reason(&cross_site), Some(DenyReason::OriginNotAllowed));
    let bearer = format!("Bearer {}", signed(&[]));
    let with_token = decide(&[("origin", "null"), ("authorization", &bearer)]).unwrap();
    assert_eq!(reason(&with_token), Some(DenyReason::OriginNotAllowed));
    assert!(
        !with_token.tokens.is_empty(),
        "the refused token is still cut"
    );
    let listed = decide(&[
        ("origin", "https://app.example.com"),
        ("authorization", &bearer),
    ]);
    assert_eq!(reason(&listed.unwrap()), None);
}

#[test]
fn claims_are_checked_on_every_decision_the_cache_answers_too() {
    let (gate, keys) =
        gate_with(json!({"claims": [{"name": "roles", "values": ["media.stream"]}]}));
    let keys = versioned(&keys, 1);
    let mut cache = TokenCache::new(16, 1 << 20);
    let reader = format!("Bearer {}", signed(&["reader"]));
    let head = upgrade("/ws", &[("authorization", &reader)]);
    for expected in [CacheUse::Miss, CacheUse::Hit] {
        let (outcome, used) = cached(&gate, &head, &keys, NOW_MS, &mut cache);
        assert_eq!(used, expected);
        assert_eq!(reason(&outcome), Some(DenyReason::ClaimsNotSatisfied));
        let Verdict::Deny(denial) = &outcome.verdict else {
            panic!("denied")
        };
        assert_eq!(
            denial.claimed.sub.as_deref(),
            Some("s"),
            "logged as claimed"
        );
    }
    let streamer = format!("Bearer {}", signed(&["media.stream"]));
    let head = upgrade("/ws", &[("authorization", &streamer)]);
    let (outcome, _) = cached(&gate, &head, &keys, NOW_MS, &mut cache);
    assert_eq!(reason(&outcome), None);
}

/// Keys for every provider, and sockets counted in one shared store.
struct Counted<'a> {
    keys: VersionedKeys,
    quota: SocketQuota<&'a Memory>,
}

impl SharedView for Counted<'_> {
    fn keys(&mut self, _: ProviderId) -> KeysNow {
        KeysNow::Ready(self.keys.clone())
    }

    fn refetch(&mut self, _: ProviderId) -> Option<Wait> {
        None
    }

    fn take_slot(
        &mut self,
        issuer: &str,
        who: &str,
        limit: u32,
    ) -> Result<Option<Slot>, DenyReason> {
        self.quota
            .acquire(issuer, who, limit, NOW_MS)
            .map(Some)
            .map_err(crate::quota::Refusal::reason)
    }
}

impl<'a> Counted<'a> {
    /// `keys` for every provider, and sockets counted in `store` as one VM.
    fn new(keys: &KeySet, store: &'a Memory) -> Self {
        let quota = SocketQuota::new(store, "q", 1);
        quota.start(NOW_MS);
        Counted {
            keys: versioned(keys, 1),
            quota,
        }
    }
}

#[test]
fn only_an_admitted_identity_takes_a_slot() {
    let (gate, keys) = gate_with(json!({
        "max_sockets_per_identity": 1,
        "claims": [{"name": "roles", "values": ["media.stream"]}],
    }));
    let store = Memory::default();
    let mut view = Counted::new(&keys, &store);
    let mut decide = |roles: &[&str]| {
        let bearer = format!("Bearer {}", signed(roles));
        let head = upgrade("/ws", &[("authorization", &bearer)]);
        let rule = gate.rule_for("/ws").unwrap();
        gate.decide_by(&rule, &head, &mut view, NOW_MS, None, &InModule)
    };
    let refused = decide(&["reader"]);
    assert_eq!(
        (reason(&refused), refused.slot),
        (Some(DenyReason::ClaimsNotSatisfied), None)
    );
    let first = decide(&["media.stream"]);
    assert_eq!(reason(&first), None);
    assert!(first.slot.is_some());
    let second = decide(&["media.stream"]);
    assert_eq!(
        (reason(&second), second.slot),
        (Some(DenyReason::TooManySockets), None)
    );
}

/// An identity a count cannot hold is refused for its claims (403), not as unavailable
/// (a 503 the client would retry forever).
#[test]
fn an_identity_too_long_to_count_fails_the_claims() {
    let (gate, keys) = gate_with(json!({"max_sockets_per_identity": 1}));
    let store = Memory::default();
    let mut view = Counted::new(&keys, &store);
    let long = "x".repeat(crate::quota::MAX_IDENTITY_BYTES + 1);
    let token = RSA_2048.sign(
        json!({"kid": "r"}),
        &json!({"iss": "https://issuer.example", "aud": "api", "sub": long, "exp": NOW + 60}),
    );
    let bearer = format!("Bearer {token}");
    let head = upgrade("/ws", &[("authorization", &bearer)]);
    let rule = gate.rule_for("/ws").unwrap();
    let outcome = gate.decide_by(&rule, &head, &mut view, NOW_MS, None, &InModule);
    assert_eq!(reason(&outcome), Some(DenyReason::ClaimsNotSatisfied));
}
