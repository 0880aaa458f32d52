//! The path guard fails closed, seen through a real Envoy with its defaults (no
//! `normalize_path`, no `merge_slashes`, escaped slashes kept): every spelling of a guarded
//! path that some backend serves as that path is guarded, unrelated paths are not, and a
//! token parameter or cookie counts in whatever spelling it comes.
//!
//! Each test starts its own Envoy (V8, the built module) and echo upstream on free loopback
//! ports. Run `make build` first; a missing module or Envoy fails the test loudly.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use serde_json::{json, Value};
use testbed::client;
use testbed::echo::Echo;
use testbed::envoy::{self, Envoy};
use testbed::keys::{jwks, RSA_2048};
use testbed::stack::Stack;

const ISSUER: &str = "https://issuer.example";
const AUDIENCE: &str = "my-resource-id";

fn start() -> Stack {
    let config = json!({
        "paths": ["/ws", "/calls/media"],
        "issuer": ISSUER,
        "audiences": [AUDIENCE],
        "jwks": jwks(&[(&RSA_2048, "rsa")]).to_string(),
        "from_params": ["access_token"],
        "from_cookies": ["session"],
        "claim_to_headers": [{"header_name": "x-jwt-sub", "claim_name": "sub"}],
    });
    Stack::gate(&config, Vec::new(), 1)
}

fn token() -> String {
    let now = testbed::now();
    RSA_2048.sign(
        json!({"kid": "rsa"}),
        &json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "caller-1", "exp": now + 600}),
    )
}

/// The spellings of `/ws` (and `/calls/media`) from the issue and SECURITY.md: case,
/// trailing and repeated slashes, percent-encoding (slashes and backslashes included), `;`
/// parameters, dot segments, NUL, and the long s that .NET upper-cases to `S`.
const VARIANTS: [&str; 23] = [
    "/WS",
    "/Ws",
    "/ws/",
    "//ws",
    "/%77s",
    "/%57%53",
    "/%2577s",
    "/ws;x=1",
    "/;x/ws",
    "/./ws",
    "/x/../ws",
    "/x/..;/ws",
    "/%2e/ws",
    "/ws%2F",
    "/%2Fws",
    "/%5Cws",
    "/ws%3Bx=1",
    "/ws%00.json",
    "/ws%3Fx=1",
    "/w%C5%BF",
    "/ws/?room=1",
    "/CALLS//Media/",
    "/calls/x/%2e%2e/media",
];

#[test]
fn every_spelling_of_a_guarded_path_is_guarded() {
    let stack = start();
    for path in VARIANTS {
        let refused = client::raw_handshake(stack.envoy.listener(), path, &[]);
        assert_eq!(refused.status, 401, "{path}: {refused:?}");
        assert_eq!(refused.body, "Unauthorized WebSocket connection.", "{path}");
        assert_eq!(refused.header("www-authenticate"), Some("Bearer"), "{path}");
        let plain = client::request(stack.envoy.listener(), "GET", path, &[]);
        assert_eq!(plain.status, 400, "{path}: {plain:?}");
        assert_eq!(plain.body, "WebSocket connection expected.", "{path}");
    }
    assert!(
        stack.echo.seen().is_empty(),
        "no spelling may reach the upstream: {:?}",
        stack.echo.seen()
    );
    let log = stack.envoy.log();
    assert!(
        log.contains("reason=missing_token"),
        "each refusal is logged with its reason:\n{log}"
    );
}

#[test]
fn unrelated_paths_are_not_guarded() {
    let stack = start();
    for path in [
        "/wsx",
        "/w",
        "/ws2",
        "/xws",
        "/ws/x",
        "/calls",
        "/calls/mediax",
    ] {
        let response = client::raw_handshake(stack.envoy.listener(), path, &[]);
        assert_eq!(response.status, 101, "{path}: {response:?}");
        assert!(
            stack.echo.last_on(path).is_some(),
            "{path} reached the upstream"
        );
    }
}

/// A valid token on another spelling is accepted, and the upstream gets the path exactly
/// as the client sent it, less the token parameter in whatever spelling it came.
#[test]
fn the_upstream_gets_the_path_as_sent_less_the_token() {
    let stack = start();
    let path = format!("/WS;v=1/?room=%41&Access%5Ftoken={}&x", token());
    let response = client::raw_handshake(stack.envoy.listener(), &path, &[]);
    assert_eq!(response.status, 101, "{response:?}");
    let seen = stack.echo.seen().pop().unwrap();
    assert_eq!(seen.path, "/WS;v=1/?room=%41&x");
    assert_eq!(seen.header("x-jwt-sub"), Some("caller-1"));
}

/// A verified token beside a second one in another spelling: refused, since the upstream
/// (reading names percent-decoded, ignoring case) could act on the one never verified.
#[test]
fn a_second_token_in_another_spelling_is_refused() {
    let stack = start();
    let good = token();
    // (path, extra header lines)
    type Case<'a> = (String, Vec<(&'a str, Vec<u8>)>);
    let cases: [Case; 5] = [
        (
            format!("/ws?access_token={good}&access%5Ftoken=OTHER"),
            vec![],
        ),
        (
            format!("/ws?access_token={good}&ACCESS_TOKEN=OTHER"),
            vec![],
        ),
        (
            format!("/ws?access_token={good}&access%255Ftoken=OTHER"),
            vec![],
        ),
        (
            "/ws".to_owned(),
            vec![(
                "cookie",
                format!("session={good}; SESSION=OTHER").into_bytes(),
            )],
        ),
        (
            format!("/ws?access_token={good}"),
            vec![("cookie", b"%73ession=OTHER".to_vec())],
        ),
    ];
    for (path, headers) in &cases {
        let extra: Vec<(&str, &[u8])> = headers.iter().map(|(n, v)| (*n, v.as_slice())).collect();
        let refused = client::raw_handshake(stack.envoy.listener(), path, &extra);
        assert_eq!(refused.status, 401, "{path} {headers:?}: {refused:?}");
        let challenge = refused.header("www-authenticate").unwrap();
        assert!(
            challenge.contains("error=\"invalid_request\""),
            "{challenge}"
        );
    }
    assert!(stack.echo.seen().is_empty());
    let stats = stack.envoy.stats("wsgate");
    let refused: u64 = stats
        .iter()
        .filter(|(name, _)| name.contains("multiple_tokens"))
        .map(|(_, count)| count)
        .sum();
    assert_eq!(refused, cases.len() as u64, "{stats:?}");
}

/// The operator's layer: with Envoy's own normalisation on (as every shipped config has
/// it), an escaped slash is redirected before wsgate runs, and what Envoy does not
/// normalise (case, `;`) wsgate still guards.
#[test]
fn with_envoy_normalisation_both_layers_hold() {
    let config: Value = json!({
        "issuer": ISSUER,
        "audiences": [AUDIENCE],
        "jwks": jwks(&[(&RSA_2048, "rsa")]).to_string(),
    });
    let echo = Echo::start();
    let mut bootstrap = envoy::gate_bootstrap(echo.addr(), &config);
    let hcm = &mut bootstrap["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
        ["typed_config"];
    hcm["normalize_path"] = json!(true);
    hcm["merge_slashes"] = json!(true);
    hcm["path_with_escaped_slashes_action"] = json!("UNESCAPE_AND_REDIRECT");
    let envoy = Envoy::start(&bootstrap);
    let redirected = client::raw_handshake(envoy.listener(), "/ws%2F", &[]);
    assert!(
        (300..400).contains(&redirected.status),
        "an escaped slash is redirected by Envoy: {redirected:?}"
    );
    for path in ["/WS", "//ws", "/x/../ws", "/ws;x=1"] {
        let refused = client::raw_handshake(envoy.listener(), path, &[]);
        assert_eq!(refused.status, 401, "{path}: {refused:?}");
    }
    assert!(echo.seen().is_empty());
}
