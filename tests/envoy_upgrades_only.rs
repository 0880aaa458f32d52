//! `envoy/envoy-upgrades-only.yaml` as shipped (moved onto free loopback ports): Envoy hands
//! wsgate only requests that can become WebSockets, and no upgrade gets past it that way.
//!
//! Every spelling of an upgrade, over HTTP/1.1 and HTTP/2 (extended CONNECT), on a guarded
//! path is refused without a token and accepted with one, and no refused one reaches the
//! upstream. What the file gives up is shown too: a plain request to a guarded path reaches
//! the backend (its answer, not wsgate's 400), client-sent identity headers with it.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use testbed::client;
use testbed::echo::Echo;
use testbed::envoy::{self, Envoy};
use testbed::h2ws;
use testbed::issuer::Issuer;
use testbed::keys::RSA_2048;
use testbed::shipped;
use testbed::stack::Stack;

const AUDIENCE: &str = "my-resource-id";

const FILE: &str = "envoy-upgrades-only.yaml";

/// The file keeps requests that are not upgrades from the filter twice over: a route on
/// which it is disabled, and a matcher that skips it. Each is tested alone too.
#[derive(Clone, Copy, Debug)]
enum Layers {
    Both,
    RouteOnly,
    MatcherOnly,
}

const VARIANTS: [Layers; 3] = [Layers::Both, Layers::RouteOnly, Layers::MatcherOnly];

fn start(layers: Layers) -> Stack {
    let issuer = Issuer::start(&[(&RSA_2048, "k")]);
    let echo = Echo::start();
    let mut moves = shipped::demo_moves(&issuer, &echo, &envoy::module_path());
    match layers {
        Layers::Both => {}
        // The matcher's first condition made always false (`:method` is always there): it
        // never skips.
        Layers::RouteOnly => moves.push((
            "header_name: upgrade\n".into(),
            "header_name: \":method\"\n".into(),
        )),
        Layers::MatcherOnly => {
            let route = shipped::block(
                FILE,
                "              # A request with no Upgrade header",
                "              - match: { prefix: \"/\" }",
            )
            .unwrap_or_else(|drift| panic!("{drift}"));
            moves.push((route, String::new()));
        }
    }
    let config = shipped::config(FILE, &moves).unwrap_or_else(|drift| panic!("{drift}"));
    let envoy = Envoy::start_yaml(&config);
    Stack::around(envoy, echo, vec![("issuer", issuer)])
}

/// An HTTP/1.1 request to `path` with `lines` (each `name: value`), sent as written.
fn raw(stack: &Stack, path: &str, lines: &[&str]) -> client::Response {
    let mut request = format!("GET {path} HTTP/1.1\r\nhost: gate\r\n");
    for line in lines {
        request.push_str(line);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    client::raw(stack.envoy.listener(), request.as_bytes())
}

/// What becomes of an upgrade attempt without a token.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Outcome {
    /// wsgate's 401.
    Gate,
    /// Envoy's 403 for an upgrade it is not configured to proxy; no filter runs.
    Envoy403,
    /// Not an upgrade to Envoy: the backend gets a plain GET, Upgrade header removed.
    Plain,
}

const KEY: &str = "sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==";
const VERSION: &str = "sec-websocket-version: 13";

#[test]
fn every_upgrade_meets_the_gate_and_only_plain_requests_skip_it() {
    for layers in VARIANTS {
        eprintln!("layers: {layers:?}");
        every_upgrade_meets_the_gate(layers);
    }
}

fn every_upgrade_meets_the_gate(layers: Layers) {
    let stack = start(layers);
    let token = stack
        .issuer("issuer")
        .mint("caller", AUDIENCE, 600)
        .unwrap();

    // Upgrade attempts spelled every way, on guarded paths (one reached through `..;`, which
    // Envoy's normalize_path keeps). Each is refused by wsgate, refused by Envoy (an upgrade
    // it does not proxy), or, when Envoy does not take it for an upgrade, reaches the
    // backend as a plain request with its Upgrade header removed: never an upgrade that
    // skipped the gate.
    use Outcome::*;
    let attempts: [(&[&str], Outcome); 6] = [
        (
            &["connection: Upgrade", "upgrade: websocket", KEY, VERSION],
            Gate,
        ),
        (
            &[
                "connection: keep-alive, Upgrade",
                "upgrade: WebSocket",
                KEY,
                VERSION,
            ],
            Gate,
        ),
        (
            &[
                "Connection: upgrade",
                "Upgrade: websocket",
                "Upgrade: h2c",
                KEY,
                VERSION,
            ],
            Envoy403,
        ),
        (
            &["connection: Upgrade", "upgrade: ", KEY, VERSION],
            Envoy403,
        ),
        (
            &["connection: Upgrade", "upgrade: websocket/13", KEY, VERSION],
            Envoy403,
        ),
        // No `connection: upgrade`: Envoy's codec drops the Upgrade header.
        (&["upgrade: websocket", KEY, VERSION], Plain),
    ];
    for path in ["/ws", "/ws?room=1", "/static/..;/ws", "/ws/"] {
        for (lines, expected) in attempts {
            let before = stack.echo.seen().len();
            let response = raw(&stack, path, lines);
            let reached: Vec<_> = stack.echo.seen().split_off(before);
            let what = format!(
                "{layers:?}: {path} {lines:?}: {} {:?}",
                response.status, response.body
            );
            match expected {
                Gate => assert_eq!(
                    (response.status, response.body.as_str()),
                    (401, "Unauthorized WebSocket connection."),
                    "{what}"
                ),
                Envoy403 => assert_eq!(response.status, 403, "{what}"),
                Plain => {
                    assert_eq!(response.status, 200, "{what}");
                    assert_eq!(reached.len(), 1, "{what}");
                    assert_eq!(reached[0].header("upgrade"), None, "{what}");
                }
            }
            if expected != Plain {
                assert!(reached.is_empty(), "{what}: reached the upstream");
            }
        }
    }
    // HTTP/2's extended CONNECT carries no Upgrade header on the wire: Envoy turns it into
    // one before any filter runs, so it meets the gate too.
    let refused = h2ws::echo(stack.envoy.listener(), "/ws", &[], "x").unwrap_err();
    assert_eq!(refused.status, 401);
    assert_eq!(
        stack.echo.seen().len(),
        4,
        "only the plain requests reached the upstream"
    );

    // With a token, both kinds are accepted.
    let (_socket, accepted) = client::websocket(
        stack.envoy.listener(),
        "/ws",
        &[("authorization", &format!("Bearer {token}"))],
    )
    .unwrap_or_else(|refused| panic!("refused {refused:?}"));
    assert_eq!(accepted.status, 101);
    let (status, reply) = h2ws::echo(
        stack.envoy.listener(),
        "/ws",
        &[("authorization", &format!("Bearer {token}"))],
        "over h2",
    )
    .unwrap_or_else(|refused| panic!("refused {refused:?}"));
    assert_eq!((status, reply.as_str()), (200, "over h2"));
    let seen = stack.echo.seen().split_off(4);
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(seen
        .iter()
        .all(|head| head.header("x-jwt-sub") == Some("caller")));
}

#[test]
fn a_plain_request_skips_the_filter_with_what_that_gives_up() {
    for layers in VARIANTS {
        eprintln!("layers: {layers:?}");
        a_plain_request_skips_the_filter(layers);
    }
}

fn a_plain_request_skips_the_filter(layers: Layers) {
    let stack = start(layers);
    // An unrelated request: served by the backend, and wsgate never ran (no decision).
    let health = client::request(stack.envoy.listener(), "GET", "/health", &[]);
    assert_eq!(health.status, 200);
    // Given up: the 400 for a plain request on a guarded path comes from the backend now
    // (here the echo upstream's 200), and a client-sent identity header is not removed.
    let plain = client::request(stack.envoy.listener(), "GET", "/ws", &["x-jwt-sub: forged"]);
    assert_eq!(
        (plain.status, plain.body.as_str()),
        (200, "upstream saw GET /ws"),
        "a plain request on the guarded path skips wsgate in this configuration"
    );
    let seen = stack.echo.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].header("x-jwt-sub"), Some("forged"));
    let log = stack.envoy.log();
    assert!(
        !log.contains("decision="),
        "wsgate decided a request it should not have seen:\n{log}"
    );
    // The same request as an upgrade attempt is the gate's again, forged header or not.
    let refused = raw(
        &stack,
        "/ws",
        &[
            "connection: Upgrade",
            "upgrade: websocket",
            KEY,
            VERSION,
            "x-jwt-sub: forged",
        ],
    );
    assert_eq!(refused.status, 401);
    assert_eq!(stack.echo.seen().len(), 2);
}
