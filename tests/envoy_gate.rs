//! The gate with inline keys, seen from outside through a real Envoy: status codes, bodies,
//! `WWW-Authenticate`, what reached the WebSocket upstream, and Envoy's log.
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
use testbed::client::{self, Response};
use testbed::echo::Echo;
use testbed::envoy::{self, Envoy};
use testbed::keys::{jwks, TestKey, ED25519, P256, RSA_2048, RSA_2048_OTHER};
use testbed::stack::Stack;

const ISSUER: &str = "https://issuer.example";
const AUDIENCE: &str = "my-resource-id";

fn plugin_config() -> Value {
    json!({
        "paths": ["/ws"],
        "issuer": ISSUER,
        "audiences": [AUDIENCE],
        "jwks": jwks(&[(&RSA_2048, "rsa"), (&P256, "ec"), (&ED25519, "ed")]).to_string(),
        "clock_skew_seconds": 60,
        "log_allowed": true
    })
}

fn start(config: &Value) -> Stack {
    Stack::gate(config, Vec::new(), 1)
}

fn claims() -> Value {
    let now = testbed::now();
    json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "caller-1", "iat": now, "exp": now + 600})
}

fn token(key: &TestKey, kid: &str) -> String {
    key.sign(json!({ "kid": kid, "typ": "JWT" }), &claims())
}

fn upgrade(stack: &Stack, token: Option<&str>) -> Result<(client::Socket, Response), Response> {
    let bearer = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = bearer
        .iter()
        .map(|b| ("authorization", b.as_str()))
        .collect();
    client::websocket(stack.envoy.listener(), "/ws", &headers)
}

fn assert_unauthorized(refused: &Response, error: Option<&str>) {
    assert_eq!(refused.status, 401, "{refused:?}");
    assert_eq!(refused.body, "Unauthorized WebSocket connection.");
    let challenge = refused
        .header("www-authenticate")
        .expect("WWW-Authenticate on a 401");
    match error {
        None => assert_eq!(challenge, "Bearer"),
        Some(code) => {
            assert!(challenge.starts_with("Bearer "), "{challenge}");
            assert!(
                challenge.contains(&format!("error=\"{code}\"")),
                "{challenge}"
            );
        }
    }
}

#[test]
fn a_plain_get_on_the_guarded_path_is_400() {
    let stack = start(&plugin_config());
    let response = client::request(stack.envoy.listener(), "GET", "/ws", &[]);
    assert_eq!(response.status, 400);
    assert_eq!(response.body, "WebSocket connection expected.");
    assert_eq!(response.header("www-authenticate"), None);
    // Even with a valid token: it is the upgrade that is missing.
    let bearer = format!("authorization: Bearer {}", token(&RSA_2048, "rsa"));
    let response = client::request(stack.envoy.listener(), "GET", "/ws?x=1", &[&bearer]);
    assert_eq!(response.status, 400);
    assert!(
        stack.echo.seen().is_empty(),
        "nothing may reach the upstream"
    );
}

#[test]
fn an_upgrade_without_a_token_is_401() {
    let stack = start(&plugin_config());
    let refused = upgrade(&stack, None).unwrap_err();
    assert_unauthorized(&refused, None);
    let basic = client::websocket(
        stack.envoy.listener(),
        "/ws",
        &[("authorization", "Basic dXNlcjpwYXNz")],
    )
    .unwrap_err();
    assert_unauthorized(&basic, None);
    assert!(stack.echo.seen().is_empty());
}

#[test]
fn invalid_tokens_are_401_invalid_token() {
    let stack = start(&plugin_config());
    let now = testbed::now();
    let with = |claim: &str, value: Value| {
        let mut c = claims();
        c[claim] = value;
        RSA_2048.sign(json!({"kid": "rsa"}), &c)
    };
    let none_token = format!(
        "{}.{}.",
        testbed_b64(br#"{"alg":"none","kid":"rsa"}"#),
        testbed_b64(claims().to_string().as_bytes())
    );
    let cases: Vec<(&str, String)> = vec![
        (
            "bad signature",
            RSA_2048_OTHER.sign(json!({"kid": "rsa"}), &claims()),
        ),
        ("expired", with("exp", json!(now - 3600))),
        ("not yet valid", with("nbf", json!(now + 3600))),
        ("wrong iss", with("iss", json!("https://evil.example"))),
        ("wrong aud", with("aud", json!("someone-else"))),
        (
            "unknown kid",
            RSA_2048.sign(json!({"kid": "rotated-away"}), &claims()),
        ),
        ("alg none", none_token),
        (
            "alg none, signed",
            RSA_2048.sign(json!({"kid": "rsa", "alg": "none"}), &claims()),
        ),
        ("garbage", "not-a-jwt".to_owned()),
    ];
    for (name, bad) in &cases {
        let refused = upgrade(&stack, Some(bad)).map(|_| ()).expect_err(name);
        assert_eq!(refused.status, 401, "{name}");
        assert_unauthorized(&refused, Some("invalid_token"));
    }
    assert!(
        stack.echo.seen().is_empty(),
        "no refused request may reach the upstream"
    );
    let log = stack.envoy.log();
    for reason in [
        "bad_signature",
        "expired",
        "not_yet_valid",
        "wrong_issuer",
        "wrong_audience",
        "unknown_key",
        "unsupported_algorithm",
        "malformed",
    ] {
        assert!(
            log.contains(&format!("decision=deny reason={reason} ")),
            "no log line for {reason}:\n{log}"
        );
    }
    // No token, nor any piece of one (logged values are cut to 128 characters, so a whole
    // token would never be found even if one leaked; tests/envoy_leaks.rs shows this check
    // catches a cut one).
    let tokens: Vec<&str> = cases.iter().map(|(_, bad)| bad.as_str()).collect();
    let leaks = testbed::leaks::token_fragments(&log, &tokens);
    assert!(
        leaks.is_empty(),
        "a token leaked into Envoy's log: {leaks:?}"
    );
}

#[test]
fn two_authorization_headers_are_401() {
    let stack = start(&plugin_config());
    let good = format!("Bearer {}", token(&RSA_2048, "rsa"));
    let refused = client::websocket(
        stack.envoy.listener(),
        "/ws",
        &[("authorization", &good), ("authorization", "Bearer x.y.z")],
    )
    .unwrap_err();
    assert_unauthorized(&refused, Some("invalid_request"));
}

#[test]
fn valid_tokens_of_each_family_open_an_echoing_socket() {
    let stack = start(&plugin_config());
    for (key, kid) in [(&*RSA_2048, "rsa"), (&*P256, "ec"), (&*ED25519, "ed")] {
        let (mut socket, response) = upgrade(&stack, Some(&token(key, kid)))
            .unwrap_or_else(|refused| panic!("{kid}: refused with {refused:?}"));
        assert_eq!(response.status, 101, "{kid}");
        assert_eq!(
            client::echo(&mut socket, &format!("hello {kid}")),
            format!("hello {kid}")
        );
        socket.close(None).ok();
    }
    let seen = stack.echo.seen();
    assert_eq!(seen.len(), 3);
    assert!(seen
        .iter()
        .all(|s| s.path == "/ws" && s.header("upgrade") == Some("websocket")));
    let log = stack.envoy.log();
    assert_eq!(
        log.matches("decision=allow path=/ws iss=https://issuer.example sub=caller-1")
            .count(),
        3,
        "{log}"
    );
}

#[test]
fn other_paths_pass_untouched_to_the_upstream() {
    let stack = start(&plugin_config());
    let response = client::request(stack.envoy.listener(), "GET", "/health", &[]);
    assert_eq!(response.status, 200);
    assert_eq!(response.body, "upstream saw GET /health");
    let (mut socket, _) =
        client::websocket(stack.envoy.listener(), "/other", &[]).expect("unguarded upgrade");
    assert_eq!(client::echo(&mut socket, "free"), "free");
}

#[test]
fn a_bad_configuration_is_refused_and_the_log_names_the_field() {
    let echo = Echo::start();
    let cases = [
        ("audiences", {
            let mut c = plugin_config();
            c.as_object_mut().unwrap().remove("audiences");
            c
        }),
        ("issuer", {
            let mut c = plugin_config();
            c.as_object_mut().unwrap().remove("issuer");
            c
        }),
        ("jwks", {
            let mut c = plugin_config();
            c["jwks"] = json!({"keys": []});
            c
        }),
        ("audience", {
            let mut c = plugin_config();
            c["audience"] = json!("typo");
            c
        }),
    ];
    for (field, config) in cases {
        let bootstrap = envoy::gate_bootstrap(echo.addr(), &config);
        let refusal = Envoy::expect_refusal(&bootstrap);
        assert!(
            refusal.status.is_some_and(|status| !status.success()),
            "Envoy should exit non-zero for a bad {field}"
        );
        let needle = format!("invalid plugin configuration: field \"{field}\"");
        assert!(
            refusal.log.contains(&needle),
            "log does not name {field}:\n{}",
            refusal.log
        );
    }
}

fn testbed_b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[test]
fn the_attack_catalogue_through_envoy() {
    let now = testbed::now();
    let (jwks, attacks) = testbed::attacks::catalogue(ISSUER, AUDIENCE, now);
    let stack = start(&json!({ "issuer": ISSUER, "audiences": [AUDIENCE], "jwks": jwks }));
    let mut expected_lines = Vec::new();
    for attack in attacks.iter().filter(|attack| attack.over_http) {
        let refused = attack.send(stack.envoy.listener(), "/ws");
        assert_eq!(refused.status, 401, "{}", attack.name);
        assert_eq!(
            refused.body, "Unauthorized WebSocket connection.",
            "{}",
            attack.name
        );
        expected_lines.push((attack.name, format!("reason={} ", attack.reason)));
    }
    assert!(
        stack.echo.seen().is_empty(),
        "no attack may reach the upstream"
    );
    let log = stack.envoy.log();
    let decided: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("decision=deny"))
        .collect();
    assert_eq!(
        decided.len(),
        expected_lines.len(),
        "one log line per attack"
    );
    for (line, (name, reason)) in decided.iter().zip(&expected_lines) {
        assert!(
            line.contains(reason.as_str()),
            "{name}: expected {reason} in {line}"
        );
    }
    assert!(!log.contains("panicked"), "{log}");
    // Exact: the catalogue's 64 attacks less the one an HTTP/1.1 codec cannot carry (a
    // control byte in the header value). A dropped attack, or one that stops being sent,
    // fails here (SECURITY.md quotes both numbers).
    assert_eq!(attacks.len(), 64);
    assert_eq!(expected_lines.len(), 63);
}

/// Key bounds through Envoy: an RSA key over `max_rsa_key_bits` and keys past the first
/// 100 usable ones are skipped with a warning naming why, and the keys kept still verify.
#[test]
fn oversized_and_surplus_keys_are_skipped_with_a_warning() {
    let mut keys = vec![
        RSA_2048.public_jwk("rsa"),
        testbed::keys::rsa_jwk_of_bits(6144, "big"),
    ];
    keys.extend((0..120).map(|i| P256.public_jwk(&format!("ec-{i}"))));
    let config = json!({
        "issuer": ISSUER,
        "audiences": [AUDIENCE],
        "jwks": json!({ "keys": keys }).to_string(),
    });
    let stack = start(&config);
    let log = stack.envoy.log();
    assert!(
        log.contains("RSA modulus has 6144 bits; max_rsa_key_bits is 4096"),
        "{log}"
    );
    assert!(
        log.contains("21 more key(s) beyond the limits: wsgate keeps the first 100 usable keys"),
        "{log}"
    );
    let (mut socket, _) = upgrade(&stack, Some(&token(&RSA_2048, "rsa"))).unwrap();
    assert_eq!(client::echo(&mut socket, "kept"), "kept");
    let (mut socket, _) = upgrade(&stack, Some(&token(&P256, "ec-98"))).unwrap();
    assert_eq!(client::echo(&mut socket, "kept"), "kept");
    let refused = upgrade(&stack, Some(&token(&P256, "ec-99"))).unwrap_err();
    assert_unauthorized(&refused, Some("invalid_token"));

    // Raised to 8192, the big key is kept (it is a fake modulus: nothing verifies with it).
    let mut raised = config.clone();
    raised["max_rsa_key_bits"] = json!(8192);
    let stack = start(&raised);
    assert!(
        !stack.envoy.log().contains("6144 bits"),
        "{}",
        stack.envoy.log()
    );
}

/// Traffic on a route where the Wasm filter is disabled per route
/// (`envoy.config.route.v3.FilterConfig { disabled: true }`) never enters the module: no
/// decision, no log line, no stat. docs/deploying.md's example disables it only for requests
/// without an `upgrade` header, so no WebSocket can take the disabled route: an upgrade to
/// `/static/..;/ws` (Tomcat and Jetty serve it as `/ws`) still meets the gate.
#[test]
fn a_route_with_the_filter_disabled_never_enters_the_module() {
    let echo = Echo::start();
    // /static/feed is on the guarded list, to show that a disabled route is not entered at
    // all: the guard goes with it, which is why only requests that cannot become a
    // WebSocket may take such a route.
    let config = envoy::with_settings(plugin_config(), &json!({"paths": ["/ws", "/static/feed"]}));
    let mut bootstrap = envoy::gate_bootstrap(echo.addr(), &config);
    let hcm = &mut bootstrap["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
        ["typed_config"];
    hcm["route_config"]["virtual_hosts"][0]["routes"] = json!([
        {
            "match": {
                "prefix": "/static/",
                "headers": [{ "name": "upgrade", "present_match": true, "invert_match": true }]
            },
            "route": { "cluster": "upstream" },
            "typed_per_filter_config": {
                "envoy.filters.http.wasm": {
                    "@type": "type.googleapis.com/envoy.config.route.v3.FilterConfig",
                    "disabled": true
                }
            }
        },
        { "match": { "prefix": "/" }, "route": { "cluster": "upstream" } }
    ]);
    let envoy = Envoy::start(&bootstrap);
    let stats = || {
        envoy
            .stats("wsgate")
            .into_iter()
            .filter(|(name, _)| name.ends_with("wsgate.allowed") || name.ends_with("wsgate.denied"))
            .map(|(_, value)| value)
            .sum::<u64>()
    };
    let plain = client::request(envoy.listener(), "GET", "/static/feed", &[]);
    assert_eq!(plain.status, 200, "{plain:?}: the module never saw it");
    assert_eq!(stats(), 0);
    // Upgrades never take the disabled route: guarded whatever their path.
    for path in [
        "/static/feed",
        "/static/..;/ws",
        "/static/%2e%2e;/ws",
        "/ws",
    ] {
        let refused = client::websocket(envoy.listener(), path, &[])
            .map(|_| ())
            .expect_err("no token");
        assert_unauthorized(&refused, None);
    }
    assert_eq!(
        stats(),
        4,
        "one decision per upgrade, none for the plain request"
    );
    assert!(
        echo.seen().iter().all(|seen| seen.path == "/static/feed"),
        "{:?}",
        echo.seen()
    );
    let log = envoy.log();
    assert_eq!(log.matches("decision=").count(), 4, "{log}");
}
