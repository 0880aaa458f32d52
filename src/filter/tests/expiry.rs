//! `close_on_expiry` in the contexts: sockets reset once their token expires, in bounded
//! batches, and forgotten when they end first.

use super::*;

#[test]
fn close_on_expiry_resets_a_socket_once_its_token_expires() {
    let (host, mut root) = start(&inline(
        json!({"close_on_expiry": true, "clock_skew_seconds": 0}),
    ));
    let bearer = format!("Bearer {}", token(NOW + 30));
    assert_eq!(
        request(&host, &root, 100, "/ws", &[("authorization", &bearer)]),
        Action::Continue
    );
    host.take_effects();
    assert_eq!(host.metric("wsgate.expiry_tracked"), 1);
    host.enter(ROOT);
    host.set_now(NOW_MS + 29_000);
    root.on_tick();
    assert!(host.take_effects().is_empty());
    host.set_now(NOW_MS + 30_000);
    root.on_tick();
    assert_eq!(host.take_effects(), [Effect::Reset(100)]);
    assert_eq!(host.metric("wsgate.closed_on_expiry"), 1);
    assert_eq!(host.metric("wsgate.expiry_tracked"), 0);
    assert_eq!(host.effective(), ROOT);
}

/// A thousand sockets expiring together are closed 256 a tick, ticks coming every 1 ms
/// until none waits: Envoy's V8 did not survive about a thousand resets in one call.
#[test]
fn a_mass_expiry_is_closed_in_bounded_batches_on_fast_ticks() {
    let (host, mut root) = start(&inline(
        json!({"close_on_expiry": true, "clock_skew_seconds": 0}),
    ));
    let bearer = format!("Bearer {}", token(NOW + 30));
    for id in 100..1100 {
        assert_eq!(
            request(&host, &root, id, "/ws", &[("authorization", &bearer)]),
            Action::Continue
        );
    }
    host.take_effects();
    assert_eq!(host.metric("wsgate.expiry_tracked"), 1000);
    host.enter(ROOT);
    host.set_now(NOW_MS + 30_000);
    let mut batches = Vec::new();
    let mut periods = Vec::new();
    for _ in 0..10 {
        root.on_tick();
        let effects = host.take_effects();
        let resets = effects
            .iter()
            .filter(|effect| matches!(effect, Effect::Reset(_)))
            .count();
        periods.extend(effects.into_iter().filter_map(|effect| match effect {
            Effect::TickPeriod(period) => Some(period.as_millis()),
            _ => None,
        }));
        if resets > 0 {
            batches.push(resets);
        }
    }
    assert_eq!(batches, [256, 256, 256, 232]);
    assert_eq!(periods, [1, 100]);
    assert_eq!(host.metric("wsgate.closed_on_expiry"), 1000);
    assert_eq!(host.metric("wsgate.expiry_tracked"), 0);
}

#[test]
fn an_ended_stream_is_forgotten() {
    let (host, mut root) = start(&inline(
        json!({"close_on_expiry": true, "clock_skew_seconds": 0}),
    ));
    let bearer = format!("Bearer {}", token(NOW + 30));
    host.request(
        100,
        &[
            (":method", "GET"),
            (":path", "/ws"),
            ("connection", "Upgrade"),
            ("upgrade", "websocket"),
            ("authorization", &bearer),
        ],
    );
    let mut stream = root.stream(100);
    assert_eq!(stream.on_http_request_headers(5, false), Action::Continue);
    assert_eq!(host.metric("wsgate.expiry_tracked"), 1);
    assert!(stream.on_done());
    assert_eq!(host.metric("wsgate.expiry_tracked"), 0);
    host.end(100);
    host.take_effects();
    host.set_now(NOW_MS + 60_000);
    root.on_tick();
    assert!(host.take_effects().is_empty());
    assert_eq!(host.metric("wsgate.closed_on_expiry"), 0);
}
