//! Issuer faults through a real Envoy: for each way an issuer can fail, no false accept
//! (a key the faulty issuer offers is never trusted), valid tokens keep working on the cached
//! key set, no wasm panic, and the listener keeps answering.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::{Duration, Instant};

use serde_json::json;
use testbed::client;
use testbed::echo::Echo;
use testbed::envoy::{self, Envoy};
use testbed::issuer::{Behaviour, Issuer};
use testbed::keys::{TestKey, RSA_2048, RSA_2048_OTHER};

const AUDIENCE: &str = "my-resource-id";

fn stat(envoy: &Envoy, name: &str) -> u64 {
    envoy
        .stats("wsgate")
        .get(&format!("wasmcustom.wsgate.{name}"))
        .copied()
        .unwrap_or(0)
}

fn wait_for(envoy: &Envoy, name: &str, above: u64, what: &str) {
    let started = Instant::now();
    while stat(envoy, name) <= above {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{what}: {name} stayed at {above}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Envoy with `concurrency` workers and wsgate fetching keys from `issuer` by discovery,
/// refreshing every second, with `settings` over that.
fn start(issuer: &Issuer, settings: serde_json::Value, concurrency: usize) -> (Echo, Envoy) {
    let echo = Echo::start();
    let plugin = envoy::with_settings(
        json!({
            "issuer": issuer.issuer(),
            "audiences": [AUDIENCE],
            "openid_config_url": issuer.discovery_url(),
            "cluster": "issuer",
            "refresh_interval_seconds": 1,
            "min_refresh_interval_seconds": 1
        }),
        &settings,
    );
    let mut bootstrap = envoy::gate_bootstrap(echo.addr(), &plugin);
    envoy::add_cluster(&mut bootstrap, "issuer", issuer.addr());
    (echo, Envoy::start_with(&bootstrap, concurrency))
}

#[test]
fn no_issuer_fault_leads_to_a_false_accept_or_a_lost_key_set() {
    let issuer = Issuer::start(&[(&RSA_2048, "good")]);
    let (_echo, envoy) = start(&issuer, json!({"fetch_timeout_ms": 1000}), 1);

    let now = testbed::now();
    let token = |key: &TestKey, kid: &str| {
        let claims = json!({"iss": issuer.issuer(), "aud": AUDIENCE, "sub": "s", "exp": now + 600});
        format!("Bearer {}", key.sign(json!({ "kid": kid }), &claims))
    };
    let good = token(&RSA_2048, "good");
    let evil = token(&RSA_2048_OTHER, "evil");
    let accepted = |bearer: &str| {
        client::websocket(envoy.listener(), "/ws", &[("authorization", bearer)]).is_ok()
    };
    assert!(accepted(&good), "the first key set");

    let faults: Vec<(&str, Behaviour)> = vec![
        ("refused connection", Behaviour::Down),
        ("timeout", Behaviour::Slow(Duration::from_millis(2500))),
        ("slow drip", Behaviour::Drip(Duration::from_millis(100))),
        ("500", Behaviour::Status(500)),
        ("404", Behaviour::Status(404)),
        ("truncated body", Behaviour::Truncated),
        ("10 MiB body", Behaviour::Oversized(10 * 1024 * 1024)),
        ("malformed JSON", Behaviour::Malformed),
        ("HTML error page", Behaviour::Html),
        ("JWKS with no usable key", Behaviour::NoUsableKey),
        ("discovery naming another issuer", Behaviour::WrongIssuer),
        ("discovery without jwks_uri", Behaviour::NoJwksUri),
    ];
    for (name, fault) in faults {
        // The faulty issuer also offers a key an attacker holds: trusting anything it sends
        // would let the evil token in.
        issuer.set_keys(&[(&RSA_2048, "good"), (&RSA_2048_OTHER, "evil")]);
        let failed = stat(&envoy, "jwks_fetch_failed");
        issuer.set_behaviour(fault);
        wait_for(&envoy, "jwks_fetch_failed", failed, name);
        assert!(
            !accepted(&evil),
            "{name}: a key from the faulty issuer was trusted"
        );
        assert!(accepted(&good), "{name}: the cached key set was lost");

        issuer.set_keys(&[(&RSA_2048, "good")]);
        let succeeded = stat(&envoy, "jwks_fetch_success");
        issuer.set_behaviour(Behaviour::Normal);
        wait_for(
            &envoy,
            "jwks_fetch_success",
            succeeded,
            &format!("recovery after {name}"),
        );
        eprintln!("{name}: failed fetch, no false accept, cached keys kept, recovered");
    }

    // A JWKS served as text/plain is still a JWKS: accepted, and no failure counted.
    let failed = stat(&envoy, "jwks_fetch_failed");
    let succeeded = stat(&envoy, "jwks_fetch_success");
    issuer.set_behaviour(Behaviour::WrongContentType);
    wait_for(&envoy, "jwks_fetch_success", succeeded, "text/plain JWKS");
    assert_eq!(stat(&envoy, "jwks_fetch_failed"), failed);
    assert!(accepted(&good));

    let failures = envoy.vm_failures();
    assert_eq!(
        failures,
        0,
        "Envoy's log shows a VM failure:\n{}",
        envoy.log()
    );
    assert_eq!(
        client::request(envoy.listener(), "GET", "/ws", &[]).status,
        400,
        "the listener still answers"
    );
}

/// #25: keys are not trusted forever while refreshes fail. With `max_stale_keys_seconds` 2,
/// an issuer that stays down has its keys dropped in every worker: the drop is logged and
/// counted once, tokens are refused as `keys_unavailable` (503 with `Retry-After`, #28), and
/// the first successful fetch brings them back (101).
#[test]
fn keys_are_dropped_past_max_stale_keys_seconds_and_come_back_with_a_fetch() {
    let issuer = Issuer::start(&[(&RSA_2048, "good")]);
    let settings = json!({"fetch_timeout_ms": 500, "max_stale_keys_seconds": 2});
    let (_echo, envoy) = start(&issuer, settings, 2);
    let claims = json!({"iss": issuer.issuer(), "aud": AUDIENCE, "sub": "s",
                        "exp": testbed::now() + 600});
    let bearer = format!("Bearer {}", RSA_2048.sign(json!({"kid": "good"}), &claims));
    let open = || client::websocket(envoy.listener(), "/ws", &[("authorization", &bearer)]);
    assert!(open().is_ok(), "the first key set");

    issuer.set_behaviour(Behaviour::Down);
    wait_for(&envoy, "jwks_keys_dropped", 0, "the keys dropped");
    let log = envoy.log_with("dropped", Duration::from_secs(5));
    assert!(log.contains("jwks: key set version 1 dropped"), "{log}");
    // Every worker refuses (several sockets, so both workers decide some).
    for _ in 0..4 {
        let refused = open().map(|_| ()).expect_err("keys dropped");
        assert_eq!(refused.status, 503, "{refused:?}");
        assert_eq!(refused.header("retry-after"), Some("5"), "{refused:?}");
        assert_eq!(refused.header("www-authenticate"), None, "{refused:?}");
    }
    assert!(
        envoy.log().contains("reason=keys_unavailable"),
        "{}",
        envoy.log()
    );

    let succeeded = stat(&envoy, "jwks_fetch_success");
    issuer.set_behaviour(Behaviour::Normal);
    wait_for(&envoy, "jwks_fetch_success", succeeded, "the issuer back");
    // Each worker picks the fresh state up on its next tick (100 ms).
    let started = Instant::now();
    while open().is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "never trusted again"
        );
    }
    for _ in 0..4 {
        assert!(open().is_ok(), "the keys are trusted again");
    }
    assert_eq!(stat(&envoy, "jwks_keys_dropped"), 1, "dropped once");
    assert_eq!(envoy.vm_failures(), 0, "{}", envoy.log());
}
