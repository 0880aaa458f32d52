//! The VM state the contexts share: a decision that cannot reach it fails closed.

use super::*;
use crate::deny::DenyReason;
use crate::request::RequestHead;

/// A host call that re-entered wsgate while the state is borrowed would leave a request
/// with no keys and no token cache: it is refused (`keys_unavailable`), even for a token
/// the cache holds and the keys verify.
#[test]
fn a_decision_that_cannot_reach_the_vm_state_refuses() {
    let (host, root) = start(&inline(json!({})));
    let bearer = format!("Bearer {}", token(NOW + 60));
    assert_eq!(
        request(&host, &root, 100, "/ws", &[("authorization", &bearer)]),
        Action::Continue,
        "accepted, and now cached"
    );
    let Some(plugin) = root.plugin() else {
        panic!("configured")
    };
    let head = RequestHead::new([
        (":method", "GET"),
        (":path", "/ws"),
        ("connection", "Upgrade"),
        ("upgrade", "websocket"),
        ("authorization", bearer.as_str()),
    ]);
    let rule = plugin.settings.gate.rule_for("/ws").expect("guarded");
    let outside = plugin.decide(&rule, &head, NOW_MS, true);
    assert!(outside.identity().is_some(), "{outside:?}");
    let inside = plugin.with_state(|_| plugin.decide(&rule, &head, NOW_MS, true));
    let reason = inside.as_ref().and_then(|outcome| outcome.deny_reason());
    assert_eq!(reason, Some(DenyReason::KeysUnavailable), "{inside:?}");
}
