//! A VM that dies does not open the gate: Envoy's Wasm `failure_policy`, as every config
//! under `envoy/` ships it, through a real Envoy, a real issuer and a real upstream.
//!
//! The test-only canary build (Cargo.toml's `trap-canary`) panics, a Wasm trap, on a request
//! carrying `x-wsgate-trap`. After that trap:
//! - with `FAIL_CLOSED`, every request the filter sees is refused by Envoy, a valid token's
//!   too, and nothing more reaches the upstream;
//! - with `FAIL_RELOAD` and the backoff every config under `envoy/` ships, Envoy starts a
//!   new VM on a later request: the gate serves again, still refusing what it refused before;
//! - and, the control, with `FAIL_OPEN` a request with no token reaches the upstream.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use testbed::client;
use testbed::envoy;
use testbed::issuer::Issuer;
use testbed::keys::{RSA_2048, RSA_2048_OTHER};
use testbed::stack::Stack;

const AUDIENCE: &str = "failure-policy";
const TRAP: (&str, &str) = ("x-wsgate-trap", "1");

/// Envoy (one worker) with the canary build, keys from `issuer`, and `policy` set on the
/// Wasm filter's plugin config (`failure_policy`, `reload_config`).
fn start(policy: &Value) -> Stack {
    let issuer = Issuer::start(&[(&RSA_2048, "k")]);
    let plugin = json!({
        "issuer": issuer.issuer(),
        "audiences": [AUDIENCE],
        "cluster": "issuer",
        "openid_config_url": issuer.discovery_url(),
    });
    let mut filter = envoy::wasm_filter(&plugin, &envoy::canary_module_path());
    for (key, value) in policy.as_object().unwrap() {
        filter["typed_config"]["config"][key] = value.clone();
    }
    Stack::start(vec![("issuer", issuer)], 1, |upstream| {
        envoy::bootstrap(upstream, vec![filter])
    })
}

fn token(stack: &Stack, key: &testbed::keys::TestKey) -> String {
    key.sign(
        json!({ "kid": "k" }),
        &json!({"iss": stack.issuer("issuer").issuer(), "aud": AUDIENCE, "sub": "caller",
                "exp": testbed::now() + 600}),
    )
}

/// The status of a WebSocket upgrade to `/ws` with `headers` (101 when accepted).
fn upgrade(stack: &Stack, headers: &[(&str, &str)]) -> u16 {
    match client::websocket(stack.envoy.listener(), "/ws", headers) {
        Ok((mut socket, response)) => {
            socket.close(None).ok();
            response.status
        }
        Err(refused) => refused.status,
    }
}

/// Requests the upstream has seen so far.
fn forwarded(stack: &Stack) -> usize {
    stack.echo.seen().len()
}

/// Kills the VM with the marker header, and checks the trap happened (one more in the log)
/// and went nowhere.
fn trap(stack: &Stack, bearer: &str) {
    let before = forwarded(stack);
    let traps = stack.envoy.log().matches("trap-canary").count();
    let status = upgrade(stack, &[("authorization", bearer), TRAP]);
    assert_ne!(status, 101, "the trapping request must not be accepted");
    let deadline = Instant::now() + Duration::from_secs(5);
    while stack.envoy.log().matches("trap-canary").count() == traps {
        assert!(Instant::now() < deadline, "no trap logged");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        forwarded(stack),
        before,
        "the trapping request must not reach the upstream"
    );
    assert!(stack.envoy.vm_failures() > 0, "no VM failure logged");
}

#[test]
fn a_dead_vm_with_fail_closed_refuses_everything_and_forwards_nothing() {
    let stack = start(&json!({ "failure_policy": "FAIL_CLOSED" }));
    let bearer = format!("Bearer {}", token(&stack, &RSA_2048));
    assert_eq!(upgrade(&stack, &[("authorization", &bearer)]), 101);
    assert_eq!(upgrade(&stack, &[]), 401);
    trap(&stack, &bearer);

    let before = forwarded(&stack);
    for _ in 0..20 {
        let status = upgrade(&stack, &[("authorization", &bearer)]);
        assert_eq!(status, 503, "a valid token after the VM died");
        assert_eq!(upgrade(&stack, &[]), 503, "no token after the VM died");
        let plain = client::request(stack.envoy.listener(), "GET", "/health", &[]);
        assert_eq!(plain.status, 503, "an unguarded request after the VM died");
    }
    assert_eq!(
        forwarded(&stack),
        before,
        "nothing reaches the upstream once the VM is dead"
    );
}

#[test]
fn a_dead_vm_with_fail_reload_is_replaced_and_guards_again() {
    let stack = start(&json!({
        "failure_policy": "FAIL_RELOAD",
        // As every config under envoy/ ships it (tests/envoy_configs.rs checks they do).
        "reload_config": { "backoff": { "base_interval": "1s" } }
    }));
    let bearer = format!("Bearer {}", token(&stack, &RSA_2048));
    let forged = format!("Bearer {}", token(&stack, &RSA_2048_OTHER));
    assert_eq!(upgrade(&stack, &[("authorization", &bearer)]), 101);
    trap(&stack, &bearer);

    // Until the new VM serves (Envoy reloads on a request once the backoff has passed),
    // nothing is accepted that the gate would refuse, and nothing refused is forwarded.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut refused_meanwhile = 0;
    loop {
        let before = forwarded(&stack);
        for headers in [vec![], vec![("authorization", forged.as_str())]] {
            let status = upgrade(&stack, &headers);
            assert!(
                status == 401 || status == 503,
                "a request the gate refuses got {status} while the VM was replaced"
            );
        }
        assert_eq!(forwarded(&stack), before, "a refused request was forwarded");
        match upgrade(&stack, &[("authorization", &bearer)]) {
            101 => break,
            503 => refused_meanwhile += 1,
            other => panic!("a valid token got {other} while the VM was replaced"),
        }
        assert!(Instant::now() < deadline, "the VM was not reloaded in 10 s");
        std::thread::sleep(Duration::from_millis(50));
    }
    // The new VM is the whole gate again, with its keys from the issuer.
    assert_eq!(upgrade(&stack, &[]), 401);
    assert_eq!(upgrade(&stack, &[("authorization", &forged)]), 401);
    assert_eq!(upgrade(&stack, &[("authorization", &bearer)]), 101);
    let plain = client::request(stack.envoy.listener(), "GET", "/ws", &[]);
    assert_eq!(plain.status, 400);
    eprintln!("valid tokens refused with 503 before the reload: {refused_meanwhile}");
    // And it can die and come back again.
    trap(&stack, &bearer);
    let deadline = Instant::now() + Duration::from_secs(10);
    while upgrade(&stack, &[("authorization", &bearer)]) != 101 {
        assert!(
            Instant::now() < deadline,
            "the VM was not reloaded a second time"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(upgrade(&stack, &[]), 401);
}

/// The control: with `FAIL_OPEN`, the same dead VM lets a request with no token through to
/// the upstream, which is what the tests above would see if a shipped policy opened.
#[test]
fn the_control_with_fail_open_a_dead_vm_opens_the_gate() {
    let stack = start(&json!({ "failure_policy": "FAIL_OPEN" }));
    let bearer = format!("Bearer {}", token(&stack, &RSA_2048));
    assert_eq!(upgrade(&stack, &[]), 401);
    let before = forwarded(&stack);
    let _ = upgrade(&stack, &[("authorization", &bearer), TRAP]);
    stack.envoy.log_with("trap-canary", Duration::from_secs(5));
    assert_eq!(upgrade(&stack, &[]), 101, "no token, and forwarded");
    assert!(forwarded(&stack) > before);
}
