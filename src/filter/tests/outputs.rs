//! What operators see of the glue's work, and the switches for it: the log level follows
//! the host's, and `access_log_fields: false` sets no filter state.

use super::*;

#[test]
fn access_log_fields_false_sets_no_filter_state_and_changes_nothing_else() {
    let (host, root) = start(&inline(json!({"access_log_fields": false})));
    let bearer = format!("Bearer {}", token(NOW + 60));
    assert_eq!(
        request(&host, &root, 100, "/ws", &[("authorization", &bearer)]),
        Action::Continue
    );
    assert_eq!(request(&host, &root, 101, "/ws", &[]), Action::Pause);
    let effects = host.take_effects();
    assert!(
        !effects
            .iter()
            .any(|effect| matches!(effect, Effect::SetProperty { .. })),
        "{effects:?}"
    );
    assert_eq!(replies(&effects).len(), 1);
    assert_eq!(header(&host, 100, "authorization"), None);
    assert_eq!(host.metric("wsgate.allowed"), 1);
    assert_eq!(host.metric("wsgate.denied.missing_token"), 1);
}

#[test]
fn the_log_level_is_the_hosts_and_inline_keys_tick_to_follow_it() {
    let (host, _root) = start(&inline(json!({})));
    for level in [log::LevelFilter::Warn, log::LevelFilter::Debug] {
        host.set_log_level(Some(level));
        assert_eq!(super::super::log_level::follow(&host), Some(level));
    }
    host.set_log_level(None);
    assert_eq!(
        super::super::log_level::follow(&host),
        None,
        "left as it was"
    );
    let host = Recording::new(&inline(json!({})), NOW_MS);
    assert!(GateRoot::new(ROOT, host.clone()).on_configure(0));
    assert_eq!(
        host.take_effects(),
        [Effect::TickPeriod(super::super::plugin::TICK)]
    );
}
