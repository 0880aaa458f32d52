//! Keys from the issuer, through a real Envoy and a real HTTP issuer on loopback: OpenID
//! Connect discovery and JWKS fetched with `dispatch_http_call`, shared by the worker VMs,
//! refreshed on schedule and on an unknown `kid`, kept through issuer outages.
//!
//! Each test asserts what the issuer saw (hits per document), what the client got, and that
//! Envoy's log shows no wasm panic and the listener still answers.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use testbed::client::{self, Response};
use testbed::envoy;
use testbed::issuer::{Behaviour, Issuer, DISCOVERY_PATH, JWKS_PATH};
use testbed::keys::{TestKey, P256, RSA_2048, RSA_2048_OTHER};
use testbed::stack::Stack;

const AUDIENCE: &str = "my-resource-id";

/// Envoy with `concurrency` workers, wsgate configured for `issuer` plus `settings`.
fn start(issuer: &Issuer, settings: Value, concurrency: usize) -> Stack {
    let plugin = envoy::with_settings(
        json!({ "issuer": issuer.issuer(), "audiences": [AUDIENCE], "cluster": "issuer" }),
        &settings,
    );
    Stack::gate(&plugin, vec![("issuer", issuer.clone())], concurrency)
}

fn discovery(issuer: &Issuer) -> Value {
    json!({ "openid_config_url": issuer.discovery_url() })
}

fn token(stack: &Stack, key: &TestKey, kid: &str) -> String {
    let now = testbed::now();
    key.sign(
        json!({ "kid": kid }),
        &json!({"iss": stack.issuer("issuer").issuer(), "aud": AUDIENCE, "sub": "caller", "exp": now + 600}),
    )
}

fn connect(stack: &Stack, token: &str) -> Result<u16, Response> {
    let bearer = format!("Bearer {token}");
    client::websocket(stack.envoy.listener(), "/ws", &[("authorization", &bearer)]).map(
        |(mut socket, response)| {
            assert_eq!(client::echo(&mut socket, "ping"), "ping");
            socket.close(None).ok();
            response.status
        },
    )
}

fn accepted(stack: &Stack, token: &str) -> bool {
    connect(stack, token).is_ok()
}

/// The deny reason of a 401, from its `WWW-Authenticate` description.
fn refused_with(stack: &Stack, token: &str) -> String {
    match connect(stack, token) {
        Ok(status) => panic!("expected a refusal, got {status}"),
        Err(response) => {
            assert_eq!(response.status, 401);
            response
                .header("www-authenticate")
                .unwrap_or_default()
                .to_owned()
        }
    }
}

fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    started.elapsed()
}

/// No wasm panic or VM failure in the log, and the listener still answers.
fn assert_healthy(stack: &Stack) {
    let failures = stack.envoy.vm_failures();
    assert_eq!(
        failures,
        0,
        "Envoy's log shows a VM failure:\n{}",
        stack.envoy.log()
    );
    let response = client::request(stack.envoy.listener(), "GET", "/ws", &[]);
    assert_eq!(response.status, 400, "the listener must keep answering");
}

#[test]
fn one_discovery_and_one_jwks_fetch_serve_every_worker() {
    let issuer = Issuer::start(&[(&RSA_2048, "k1")]);
    let settings =
        envoy::with_settings(discovery(&issuer), &json!({"refresh_interval_seconds": 2}));
    let stack = start(&issuer, settings, 2);
    let good = token(&stack, &RSA_2048, "k1");
    for _ in 0..12 {
        assert!(accepted(&stack, &good));
    }
    // Waited for a cause, not for time: the issuer's third JWKS request (the first fetch and
    // two scheduled refreshes, 1.8-2 s apart). Both VMs tick ten times a second all along,
    // so a second VM fetching too would show as two requests close together.
    wait_until("two scheduled refreshes", Duration::from_secs(20), || {
        issuer.hits(JWKS_PATH) >= 3
    });
    let gap = issuer.shortest_gap(JWKS_PATH).expect("three fetches");
    assert!(
        gap >= Duration::from_millis(1500),
        "two JWKS fetches {gap:?} apart"
    );
    assert_eq!(
        issuer.hits(DISCOVERY_PATH),
        issuer.hits(JWKS_PATH),
        "one discovery per refresh for all workers"
    );
    assert_eq!(
        stack.envoy.log().matches("jwks: 1 usable key(s)").count(),
        1,
        "logged once"
    );
    assert_healthy(&stack);
}

#[test]
fn a_direct_jwks_uri_works_too() {
    let issuer = Issuer::start(&[(&P256, "ec")]);
    let stack = start(&issuer, json!({ "jwks_uri": issuer.jwks_url() }), 1);
    assert!(accepted(&stack, &token(&stack, &P256, "ec")));
    assert_eq!(issuer.hits(DISCOVERY_PATH), 0);
    assert_eq!(issuer.hits(JWKS_PATH), 1);
}

#[test]
fn the_first_request_waits_for_the_first_fetch() {
    let issuer = Issuer::start(&[(&RSA_2048, "k1")]);
    issuer.set_behaviour(Behaviour::Slow(Duration::from_millis(800)));
    let stack = start(&issuer, discovery(&issuer), 1);
    let started = Instant::now();
    assert!(
        accepted(&stack, &token(&stack, &RSA_2048, "k1")),
        "paused, then accepted"
    );
    assert!(issuer.hits(JWKS_PATH) == 1, "accepted on the first fetch");
    eprintln!("first request decided after {:?}", started.elapsed());
    assert_healthy(&stack);
}

/// A key the issuer adds is fetched on its first token, without waiting for a refresh. The
/// scheduled refresh is far away (300 s), so every fetch counted here is the unknown-`kid`
/// refetch: under load a 2 s refresh used to land in the window and count as a second fetch.
#[test]
fn rotation_a_new_key_is_fetched_at_once() {
    let issuer = Issuer::start(&[(&RSA_2048, "k1")]);
    let settings = json!({
        "openid_config_url": issuer.discovery_url(),
        "refresh_interval_seconds": 300,
        "min_refresh_interval_seconds": 1
    });
    let stack = start(&issuer, settings, 2);
    let old = token(&stack, &RSA_2048, "k1");
    assert!(accepted(&stack, &old));
    assert_eq!(issuer.hits(JWKS_PATH), 1, "the first fetch");

    issuer.set_keys(&[(&RSA_2048, "k1"), (&RSA_2048_OTHER, "k2")]);
    assert!(
        accepted(&stack, &token(&stack, &RSA_2048_OTHER, "k2")),
        "new key accepted at once"
    );
    assert_eq!(issuer.hits(JWKS_PATH), 2, "one refetch, for both workers");
    assert!(accepted(&stack, &old), "the old key still works");
    assert_healthy(&stack);
}

/// A key the issuer drops stops verifying after the next scheduled refresh.
#[test]
fn rotation_a_removed_key_is_refused_after_refresh() {
    let issuer = Issuer::start(&[(&RSA_2048, "k1"), (&RSA_2048_OTHER, "k2")]);
    let settings = json!({
        "openid_config_url": issuer.discovery_url(),
        "refresh_interval_seconds": 2,
        "min_refresh_interval_seconds": 1
    });
    let stack = start(&issuer, settings, 2);
    let old = token(&stack, &RSA_2048, "k1");
    assert!(accepted(&stack, &old));

    issuer.set_keys(&[(&RSA_2048_OTHER, "k2")]);
    let before = issuer.hits(JWKS_PATH);
    wait_until("a scheduled refresh", Duration::from_secs(10), || {
        issuer.hits(JWKS_PATH) > before
    });
    std::thread::sleep(Duration::from_millis(300)); // that refresh is published
    let challenge = refused_with(&stack, &old);
    assert!(challenge.contains("signing key is unknown"), "{challenge}");
    assert!(accepted(&stack, &token(&stack, &RSA_2048_OTHER, "k2")));
    assert_healthy(&stack);
}

#[test]
fn a_flood_of_unknown_kids_fetches_at_most_once_per_interval() {
    let issuer = Issuer::start(&[(&RSA_2048, "k1")]);
    let settings =
        json!({ "openid_config_url": issuer.discovery_url(), "min_refresh_interval_seconds": 30 });
    let stack = start(&issuer, settings, 2);
    assert!(accepted(&stack, &token(&stack, &RSA_2048, "k1")));
    let before = issuer.hits(JWKS_PATH);
    let started = Instant::now();
    for i in 0..200 {
        let challenge = refused_with(
            &stack,
            &token(&stack, &RSA_2048, &format!("random-{i}-{}", testbed::now())),
        );
        assert!(challenge.contains("signing key is unknown"), "{challenge}");
    }
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_secs(30),
        "the flood must fit in one interval ({elapsed:?})"
    );
    let fetches = issuer.hits(JWKS_PATH) - before;
    eprintln!("200 random kids in {elapsed:?}: {fetches} JWKS fetch(es)");
    // Exactly one: the first unknown kid is granted a refetch (none ran before), and the
    // other 199 fall within min_refresh_interval_seconds (30).
    assert_eq!(
        fetches, 1,
        "{fetches} fetches for 200 random kids within one interval"
    );
    assert!(accepted(&stack, &token(&stack, &RSA_2048, "k1")));
    assert_healthy(&stack);
}

#[test]
fn valid_tokens_keep_working_through_an_issuer_outage() {
    let issuer = Issuer::start(&[(&RSA_2048, "k1")]);
    let settings =
        json!({ "openid_config_url": issuer.discovery_url(), "refresh_interval_seconds": 1 });
    let stack = start(&issuer, settings, 2);
    let good = token(&stack, &RSA_2048, "k1");
    assert!(accepted(&stack, &good));
    issuer.set_behaviour(Behaviour::Down);
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(4) {
        assert!(
            accepted(&stack, &good),
            "refused during the outage after {:?}",
            started.elapsed()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = stack.envoy.log();
    // Envoy answers a refused connection itself, with a 503.
    let warnings = log.matches("jwks: fetch failed:").count();
    assert_eq!(
        warnings, 1,
        "one warning per state change, not per attempt:\n{log}"
    );
    assert!(log.contains("keeping the last 1 key(s)"), "{log}");
    issuer.set_behaviour(Behaviour::Normal);
    wait_until("recovery is logged", Duration::from_secs(10), || {
        stack.envoy.log().contains("jwks: recovered")
    });
    assert_healthy(&stack);
}

#[test]
fn issuer_down_from_the_start_then_recovery_within_one_backoff_step() {
    let issuer = Issuer::start(&[(&RSA_2048, "k1")]);
    issuer.set_behaviour(Behaviour::Down);
    let stack = start(&issuer, discovery(&issuer), 1);
    let good = token(&stack, &RSA_2048, "k1");
    // 503 with Retry-After while the issuer is unreachable, then 101 once it answers (#28).
    let unavailable = connect(&stack, &good).expect_err("no keys yet");
    assert_eq!(unavailable.status, 503, "{unavailable:?}");
    assert_eq!(unavailable.header("retry-after"), Some("5"));
    assert_eq!(
        unavailable.body,
        "WebSocket service temporarily unavailable."
    );
    std::thread::sleep(Duration::from_secs(2));
    issuer.set_behaviour(Behaviour::Normal);
    // Down for about 2 s: at most 3 failures so far, so the next step is at most 4 s away.
    let took = wait_until("recovery", Duration::from_secs(5), || {
        accepted(&stack, &good)
    });
    eprintln!("recovered {took:?} after the issuer came back");
    assert_healthy(&stack);
}
