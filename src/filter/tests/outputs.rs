//! What operators see of the glue's work, and the switches for it: the log level follows
//! the host's, and `access_log_fields: false` sets no filter state.

use super::super::log_level::LogLevel;
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

/// The host calls of a warm request (#31), pinned: reading the path, then the headers, the
/// clock, the cache-hit counter, the token cut, the five access-log fields, the `allowed`
/// counter; nothing when it ends (no slot to give back: the clock is not read). A call
/// added to this path through the `Host` trait shows here (bench/results/2026-12-05-
/// host-calls.md prices them); the log line goes through the `log` crate, not the trait, and
/// tests/envoy_identity.rs checks that an accepted request writes none at `info`.
#[test]
fn a_warm_request_makes_these_host_calls_and_no_more() {
    let (host, root) = start(&inline(json!({})));
    let bearer = format!("Bearer {}", token(NOW + 60));
    let headers = [
        ("authorization", bearer.as_str()),
        ("x-ms-call-correlation-id", "c-1"),
        ("x-ms-call-connection-id", "n-1"),
    ];
    assert_eq!(
        request(&host, &root, 100, "/ws", &headers),
        Action::Continue
    );
    host.take_calls();
    // The same token again, answered from the token cache, on a stream that then ends.
    let mut all = vec![
        (":method", "GET"),
        (":path", "/ws"),
        ("connection", "Upgrade"),
        ("upgrade", "websocket"),
    ];
    all.extend_from_slice(&headers);
    host.request(101, &all);
    let mut stream = root.stream(101);
    assert_eq!(
        stream.on_http_request_headers(all.len(), false),
        Action::Continue
    );
    stream.on_done();
    assert_eq!(
        host.take_calls(),
        [
            "get_map_value",
            "get_map_bytes",
            "get_current_time_nanoseconds",
            "increment_metric",
            "set_map_value",
            "set_property",
            "set_property",
            "set_property",
            "set_property",
            "set_property",
            "increment_metric",
        ]
    );
    assert_eq!(host.metric("wsgate.jwt_cache_hit"), 1);
}

// `log::max_level` is global to the test process, which runs tests in parallel and
// configures plugins (and so sets it) in many of them: these tests check what `follow`
// read and applied, and leave the global level alone as an assertion.
#[test]
fn the_log_level_is_the_hosts_and_inline_keys_tick_to_follow_it() {
    let (host, _root) = start(&inline(json!({})));
    let mut level = LogLevel::default();
    for host_level in [log::LevelFilter::Warn, log::LevelFilter::Debug] {
        host.set_log_level(Some(host_level));
        assert_eq!(level.follow(&host), Some(host_level));
    }
    // A host that cannot tell, or refuses: the level stays as it was.
    host.set_log_level(None);
    assert_eq!(level.follow(&host), None);
    assert_eq!(level.follow(&host), None);
    host.set_log_level(Some(log::LevelFilter::Info));
    host.refuse("proxy_get_log_level");
    assert_eq!(level.follow(&host), None);

    let host = Recording::new(&inline(json!({})), NOW_MS);
    assert!(GateRoot::new(ROOT, host.clone()).on_configure(0));
    assert_eq!(
        host.take_effects(),
        [Effect::TickPeriod(super::super::plugin::TICK)]
    );
}
