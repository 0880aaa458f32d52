//! #28's policies through a real Envoy with two workers: `claims` (strings, arrays, `scp`
//! words, nested claims), `origins` (allowed, absent, other, other port, `null`), and
//! `max_sockets_per_identity` holding across workers, each refusal with its status, body,
//! headers, counter and log line.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use testbed::client::{self, Response, Socket};
use testbed::keys::{jwks, RSA_2048};
use testbed::stack::Stack;

const ISSUER: &str = "https://acs.example";
const AUDIENCE: &str = "media";

fn token(claims: Value) -> String {
    let mut all = json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "alice",
                         "exp": testbed::now() + 600});
    for (name, value) in claims.as_object().cloned().unwrap_or_default() {
        all[name] = value;
    }
    RSA_2048.sign(json!({"kid": "k"}), &all)
}

fn open(
    stack: &Stack,
    path: &str,
    token: &str,
    extra: &[(&str, &str)],
) -> Result<(Socket, client::Response), Response> {
    let bearer = format!("Bearer {token}");
    let mut headers = vec![("authorization", bearer.as_str())];
    headers.extend_from_slice(extra);
    client::websocket(stack.listener(), path, &headers)
}

fn denied(stack: &Stack, reason: &str) -> u64 {
    stack
        .envoy
        .stats("wsgate")
        .get(&format!("wasmcustom.wsgate.denied.{reason}"))
        .copied()
        .unwrap_or(0)
}

fn forbidden(refused: &Response) {
    assert_eq!(refused.status, 403, "{refused:?}");
    assert_eq!(refused.body, "Forbidden WebSocket connection.");
}

#[test]
fn claims_and_origins_refuse_with_403() {
    let plugin = json!({
        "providers": {"acs": {"issuer": ISSUER, "audiences": [AUDIENCE],
                              "jwks": jwks(&[(&RSA_2048, "k")])}},
        "rules": [
            {"match": {"path": "/ws"}, "requires": {"provider_name": "acs"},
             "claims": [{"name": "roles", "values": ["media.stream"]}]},
            {"match": {"path": "/scoped"}, "requires": {"provider_name": "acs"},
             "claims": [{"name": "scp", "values": ["media.stream"]}]},
            {"match": {"path": "/nested"}, "requires": {"provider_name": "acs"},
             "claims": [{"name": "realm_access.roles", "values": ["ops"]}]},
            {"match": {"path": "/browser"}, "requires": {"provider_name": "acs"},
             "origins": ["https://app.example.com"]}
        ]
    });
    let stack = Stack::gate(&plugin, vec![], 2);
    let accepted = |path: &str, claims: Value| open(&stack, path, &token(claims), &[]).is_ok();
    let insufficient = |path: &str, claims: Value| {
        let refused = open(&stack, path, &token(claims), &[])
            .map(|_| ())
            .unwrap_err();
        forbidden(&refused);
        let challenge = refused.header("www-authenticate").unwrap_or_default();
        assert!(
            challenge.starts_with("Bearer error=\"insufficient_scope\""),
            "{challenge}"
        );
    };
    // Strings and arrays.
    assert!(accepted("/ws", json!({"roles": "media.stream"})));
    assert!(accepted(
        "/ws",
        json!({"roles": ["reader", "media.stream"]})
    ));
    insufficient("/ws", json!({"roles": ["reader"]}));
    insufficient("/ws", json!({"roles": "media"}));
    insufficient("/ws", json!({}));
    // `scp` words: a prefix of a scope is not the scope.
    assert!(accepted(
        "/scoped",
        json!({"scp": "calls.read media.stream"})
    ));
    insufficient("/scoped", json!({"scp": "media"}));
    insufficient("/scoped", json!({"scp": "media.streamer"}));
    // Nested claims.
    assert!(accepted(
        "/nested",
        json!({"realm_access": {"roles": ["ops"]}})
    ));
    insufficient("/nested", json!({"realm_access": {"roles": ["dev"]}}));
    // A token that does not verify is still a 401.
    let forged = token(json!({"roles": "media.stream"})).replace(".eyJ", ".eyK");
    assert_eq!(
        open(&stack, "/ws", &forged, &[])
            .map(|_| ())
            .unwrap_err()
            .status,
        401
    );
    assert_eq!(denied(&stack, "claims_not_satisfied"), 6);

    // Origins.
    let good = token(json!({}));
    let from = |origin: Option<&str>| {
        let extra: Vec<(&str, &str)> = origin.map(|o| ("origin", o)).into_iter().collect();
        open(&stack, "/browser", &good, &extra).map(|_| ())
    };
    assert!(from(Some("https://app.example.com")).is_ok());
    assert!(
        from(None).is_ok(),
        "no Origin: a server, judged on its token"
    );
    for other in [
        "https://evil.example",
        "https://app.example.com:8443",
        "null",
    ] {
        forbidden(&from(Some(other)).unwrap_err());
    }
    // Cross-site without a token: refused for its origin, before its token.
    let bare = client::websocket(
        stack.listener(),
        "/browser",
        &[("origin", "https://evil.example")],
    );
    forbidden(&bare.map(|_| ()).unwrap_err());
    assert_eq!(denied(&stack, "origin_not_allowed"), 4);
    let log = stack.envoy.log();
    assert!(
        log.contains("reason=origin_not_allowed status=403 provider=-"),
        "{log}"
    );
    assert!(
        log.contains("reason=claims_not_satisfied status=403 provider=acs"),
        "{log}"
    );
    assert_eq!(stack.envoy.vm_failures(), 0, "{log}");
}

/// The worker thread that logged the decision for the request carrying `correlation`.
fn worker_of(stack: &Stack, correlation: &str) -> String {
    let needle = format!("correlation_id={correlation} ");
    let log = stack.envoy.log_with(&needle, Duration::from_secs(5));
    let line = log.lines().find(|line| line.contains(&needle)).unwrap();
    // Envoy's default format: [time][thread][level][logger] ...
    line.split('[')
        .nth(2)
        .unwrap()
        .trim_end_matches(']')
        .to_owned()
}

#[test]
fn the_socket_quota_holds_across_workers_and_frees_a_slot_when_a_socket_closes() {
    let plugin = json!({
        "issuer": ISSUER, "audiences": [AUDIENCE], "jwks": jwks(&[(&RSA_2048, "k")]),
        "max_sockets_per_identity": 2,
        // Accepted requests' lines at info: which worker decided each is read from them.
        "log_allowed": true
    });
    // Exact balance: each new connection goes to the worker holding the fewest, so two held
    // sockets land on the two workers.
    let stack = Stack::start(vec![], 2, |upstream| {
        let mut bootstrap = testbed::envoy::gate_bootstrap(upstream, &plugin);
        let listener = &mut bootstrap["static_resources"]["listeners"][0];
        listener["enable_reuse_port"] = json!(false);
        listener["connection_balance_config"] = json!({"exact_balance": {}});
        bootstrap
    });
    let alice = token(json!({"sub": "alice"}));
    let open_as = |token: &str, correlation: &str| {
        open(
            &stack,
            "/ws",
            token,
            &[("x-ms-call-correlation-id", correlation)],
        )
    };
    let (mut first, _) = open_as(&alice, "a1").expect("alice's first socket");
    let (mut second, _) = open_as(&alice, "a2").expect("alice's second socket");
    assert_ne!(
        worker_of(&stack, "a1"),
        worker_of(&stack, "a2"),
        "the two sockets landed on one worker"
    );
    assert_eq!(client::echo(&mut first, "one"), "one");
    assert_eq!(client::echo(&mut second, "two"), "two");
    for attempt in ["a3", "a4"] {
        let refused = open_as(&alice, attempt).map(|_| ()).unwrap_err();
        assert_eq!(refused.status, 429, "{refused:?}");
        assert_eq!(refused.body, "Too many WebSocket connections.");
        assert_eq!(refused.header("retry-after"), Some("10"));
    }
    let bob = token(json!({"sub": "bob"}));
    let (_bobs, _) = open_as(&bob, "b1").expect("another identity is unaffected");
    assert_eq!(denied(&stack, "too_many_sockets"), 2);
    assert!(stack
        .envoy
        .log()
        .contains("reason=too_many_sockets status=429"));

    // Alice closes one: her slot frees once Envoy ends the stream.
    first.close(None).ok();
    drop(first);
    let started = Instant::now();
    let (mut third, _) = loop {
        match open_as(&alice, "a5") {
            Ok(opened) => break opened,
            Err(refused) => {
                assert_eq!(refused.status, 429, "{refused:?}");
                assert!(
                    started.elapsed() < Duration::from_secs(5),
                    "the slot was never freed"
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    };
    assert_eq!(client::echo(&mut third, "three"), "three");
    assert_eq!(
        open_as(&alice, "a6").map(|_| ()).unwrap_err().status,
        429,
        "two open again"
    );
    assert_eq!(stack.envoy.vm_failures(), 0, "{}", stack.envoy.log());
}

/// A slot also frees when the proxy closes the socket: `close_on_expiry` ends it at `exp`,
/// and the identity may open another at once.
#[test]
fn a_socket_closed_on_expiry_gives_its_slot_back() {
    let plugin = json!({
        "issuer": ISSUER, "audiences": [AUDIENCE], "jwks": jwks(&[(&RSA_2048, "k")]),
        "max_sockets_per_identity": 1, "close_on_expiry": true, "clock_skew_seconds": 0
    });
    let stack = Stack::gate(&plugin, vec![], 2);
    let short = token(json!({"exp": testbed::now() + 2}));
    let (mut expiring, _) = open(&stack, "/ws", &short, &[]).expect("the first socket");
    let long = token(json!({}));
    assert_eq!(
        open(&stack, "/ws", &long, &[])
            .map(|_| ())
            .unwrap_err()
            .status,
        429
    );
    // The proxy closes the expiring socket; the client sees its end.
    let started = Instant::now();
    while expiring.read().is_ok() {}
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "never closed on expiry"
    );
    let started = Instant::now();
    while open(&stack, "/ws", &long, &[]).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the slot never came back"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(stack.envoy.vm_failures(), 0, "{}", stack.envoy.log());
}
