//! `envoy/envoy-acs.yaml` as shipped holds thousands of authenticated WebSockets at once.
//!
//! The file runs with its addresses moved to loopback and its issuer to a test one (plain
//! HTTP, so its TLS block goes): 2000 sockets, 20 callers' tokens, held open through a real
//! Envoy to an upstream that keeps them. Every one is accepted, carries bytes both ways, and
//! is counted by Envoy and wsgate; the gate still refuses at that load. Their tokens then
//! expire together, and the file's `close_on_expiry` closes all 2000 within 2 s, the VM
//! alive after it (a single tick resetting them all had killed it). And the test can fail:
//! the same file without its circuit breakers stops at Envoy's default 1024.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::json;

use testbed::client;
use testbed::crowd::{self, Crowd};
use testbed::envoy::{self, Envoy};
use testbed::issuer::Issuer;
use testbed::keys::RSA_2048;
use testbed::shipped;

const FILE: &str = "envoy-acs.yaml";
const SOCKETS: usize = 2000;
const CALLERS: usize = 20;
/// The audience placeholder the file ships with.
const AUDIENCE: &str = "00000000-0000-0000-0000-000000000000";
/// The file sets no `clock_skew_seconds`: wsgate's default, as `jwt_authn`'s.
const SKEW: u64 = 60;
/// The tokens' `exp`, this many seconds ago: still inside the skew, so accepted, and closed
/// when the skew runs out, [`CLOSE_IN`] seconds from now (room for a slow machine to open,
/// count and echo 2000 sockets first: about 2 s here).
const EXPIRED_AGO: u64 = 40;
const CLOSE_IN: u64 = SKEW - EXPIRED_AGO;
const ACS: &str = "https://acscallautomation.communication.azure.com";

/// The file's moves: loopback addresses, the test issuer in ACS's place, the built module.
fn moves(issuer: &Issuer, upstream: &crowd::Upstream) -> Vec<(String, String)> {
    let tls = shipped::block(FILE, "    transport_socket:", "  - name: websocket_backend")
        .unwrap_or_else(|drift| panic!("{drift}"));
    vec![
        (
            "address: 0.0.0.0, port_value: 10000".into(),
            "address: 127.0.0.1, port_value: 0".into(),
        ),
        ("port_value: 9901".into(), "port_value: 0".into()),
        (
            "port_value: 8080".into(),
            format!("port_value: {}", upstream.addr().port()),
        ),
        (tls, String::new()),
        ("type: LOGICAL_DNS".into(), "type: STATIC".into()),
        (
            "address: acscallautomation.communication.azure.com, port_value: 443".into(),
            format!("address: 127.0.0.1, port_value: {}", issuer.addr().port()),
        ),
        (
            format!("{ACS}/calling/.well-known/acsopenidconfiguration"),
            issuer.discovery_url(),
        ),
        (
            format!("\"issuer\": \"{ACS}\""),
            format!("\"issuer\": \"{}\"", issuer.issuer()),
        ),
        (
            "filename: target/wasm32-wasip1/release/wsgate.wasm".into(),
            format!("filename: {}", envoy::module_path().display()),
        ),
    ]
}

/// The stack, and a crowd of [`SOCKETS`] upgrades opening through it on tokens expiring at
/// `exp` (all signed with that one `exp`).
fn hold(extra_moves: &[(String, String)], exp: u64) -> (Issuer, crowd::Upstream, Envoy, Crowd) {
    let issuer = Issuer::start(&[(&RSA_2048, "acs-key")]);
    let upstream = crowd::Upstream::start();
    let mut all = moves(&issuer, &upstream);
    all.extend_from_slice(extra_moves);
    let config = shipped::config(FILE, &all).unwrap_or_else(|drift| panic!("{drift}"));
    let envoy = Envoy::start_yaml(&config);
    let tokens: Vec<String> = (0..CALLERS)
        .map(|caller| {
            RSA_2048.sign(
                json!({"kid": "acs-key", "typ": "JWT"}),
                &json!({"iss": issuer.issuer(), "aud": AUDIENCE, "sub": format!("caller-{caller}"),
                        "iat": exp.min(testbed::now()), "exp": exp}),
            )
        })
        .collect();
    let heads = (0..SOCKETS)
        .map(|i| {
            crowd::upgrade_head(
                "/ws",
                &[
                    ("authorization", &format!("Bearer {}", tokens[i % CALLERS])),
                    ("x-ms-call-correlation-id", &format!("call-{i}")),
                ],
            )
        })
        .collect();
    let crowd = Crowd::open(envoy.listener(), heads, 64);
    (issuer, upstream, envoy, crowd)
}

fn stat(envoy: &Envoy, name: &str) -> u64 {
    envoy.stats(name).get(name).copied().unwrap_or(0)
}

#[test]
fn the_acs_config_holds_2000_authenticated_sockets() {
    let exp = testbed::now() - EXPIRED_AGO;
    let (issuer, upstream, envoy, crowd) = hold(&[], exp);
    let took = crowd
        .wait_settled(Duration::from_secs(120))
        .unwrap_or_else(|| {
            panic!(
                "{} of {SOCKETS} handshakes answered in 120 s",
                crowd.opened() + crowd.refused().len()
            )
        });
    eprintln!("{SOCKETS} handshakes answered in {took:?}");
    let refused = crowd.refused();
    assert!(
        refused.is_empty(),
        "{} of {SOCKETS} refused, e.g. {:?}",
        refused.len(),
        refused.first()
    );
    assert_eq!(crowd.opened(), SOCKETS);
    assert_eq!(upstream.open(), SOCKETS, "sockets open at the upstream");
    assert_eq!(stat(&envoy, "wasmcustom.wsgate.allowed"), SOCKETS as u64);
    assert_eq!(
        stat(&envoy, "cluster.websocket_backend.upstream_cx_active"),
        SOCKETS as u64
    );
    assert_eq!(
        stat(&envoy, "http.ingress.downstream_rq_active"),
        SOCKETS as u64
    );
    // At that load the gate still decides: no token, no socket.
    let refused = client::websocket(envoy.listener(), "/ws", &[]).unwrap_err();
    assert_eq!(refused.status, 401);
    // Every socket carries bytes both ways.
    assert_eq!(crowd.echo_all(Duration::from_secs(60)), SOCKETS);
    assert_eq!(crowd.still_open(), SOCKETS, "no socket was closed");
    assert_eq!(
        stat(&envoy, "wasmcustom.wsgate.expiry_tracked"),
        SOCKETS as u64
    );
    // Their tokens expire together: every one is closed within 2 s, none before. The client
    // sees a close only after Envoy's 1 s delayed close, so wsgate's own count is checked
    // just before the deadline too.
    let due = UNIX_EPOCH + Duration::from_secs(exp + SKEW);
    let just_before = due - Duration::from_millis(300);
    assert!(
        SystemTime::now() < just_before,
        "opening and checking 2000 sockets took past their expiry: raise EXPIRED_AGO's margin"
    );
    while SystemTime::now() < just_before {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        stat(&envoy, "wasmcustom.wsgate.closed_on_expiry"),
        0,
        "a socket was closed before its token expired"
    );
    let deadline = Instant::now() + Duration::from_secs(CLOSE_IN + 30);
    while crowd.closed_at().len() < SOCKETS {
        assert!(
            Instant::now() < deadline,
            "{} of {SOCKETS} closed 30 s after their tokens expired",
            crowd.closed_at().len()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let closed = crowd.closed_at();
    assert!(
        closed.iter().all(|at| *at >= due),
        "a socket closed before exp"
    );
    let last = closed.iter().max().unwrap().duration_since(due).unwrap();
    eprintln!("the last of {SOCKETS} closed {last:?} after exp");
    assert!(
        last <= Duration::from_secs(2),
        "the last closed {last:?} after exp"
    );
    assert_eq!(
        stat(&envoy, "wasmcustom.wsgate.closed_on_expiry"),
        SOCKETS as u64
    );
    assert_eq!(stat(&envoy, "wasmcustom.wsgate.expiry_tracked"), 0);
    // The VM lived through it, and the gate still decides.
    assert_eq!(envoy.vm_failures(), 0, "{}", envoy.log());
    let fresh = issuer.mint("caller-after", AUDIENCE, 600).unwrap();
    let (_socket, accepted) = client::websocket(
        envoy.listener(),
        "/ws",
        &[("authorization", &format!("Bearer {fresh}"))],
    )
    .unwrap_or_else(|refused| panic!("refused after the expiry: {refused:?}"));
    assert_eq!(accepted.status, 101);
    // Closed, they leave nothing open behind them.
    drop(crowd);
    let deadline = Instant::now() + Duration::from_secs(30);
    while upstream.open() > 1 || stat(&envoy, "cluster.websocket_backend.upstream_cx_active") > 1 {
        assert!(
            Instant::now() < deadline,
            "{} upstream sockets still open 30 s after their clients closed",
            upstream.open()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn without_its_circuit_breakers_the_same_file_stops_at_envoys_default() {
    let breakers = shipped::block(FILE, "    circuit_breakers:", "    type: STATIC")
        .unwrap_or_else(|drift| panic!("{drift}"));
    // Tokens that outlive the test: no socket may close while the limit is counted.
    let (_issuer, upstream, envoy, crowd) =
        hold(&[(breakers, String::new())], testbed::now() + 3600);
    // The first 1024 connect; the rest wait in the cluster's pending queue for a connection
    // that never comes (the crowd keeps 64 handshakes in flight, so 64 wait; past 1024
    // pending Envoy would answer 503).
    let pending = "cluster.websocket_backend.upstream_rq_pending_active";
    let deadline = Instant::now() + Duration::from_secs(60);
    while crowd.opened() < 1024 || stat(&envoy, pending) < 64 {
        assert!(
            Instant::now() < deadline,
            "{} upgraded, {} pending after 60 s",
            crowd.opened(),
            stat(&envoy, pending)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(crowd.opened(), 1024, "Envoy's default max_connections");
    assert_eq!(upstream.open(), 1024);
    assert_eq!(stat(&envoy, pending), 64);
    assert!(crowd.refused().is_empty(), "{:?}", crowd.refused());
    assert!(stat(&envoy, "cluster.websocket_backend.upstream_cx_overflow") > 0);
}
