//! The VM state the contexts share: a decision that cannot reach it fails closed.

use super::*;
use crate::decision::{Decision, DenyReason};
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
    assert!(matches!(
        plugin.decide(&head, NOW_MS),
        Some(Decision::Allow(_))
    ));
    let inside = plugin.with_state(|_| plugin.decide(&head, NOW_MS));
    let Some(Some(Decision::Deny(denial))) = inside else {
        panic!("refused, not {inside:?}")
    };
    assert_eq!(denial.reason, DenyReason::KeysUnavailable);
}
