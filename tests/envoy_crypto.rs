//! Signatures verified by Envoy itself (`crypto`), seen from outside through a real Envoy:
//! the self-test's log line, every algorithm accepted and refused as the module would, and
//! the attack catalogue decided alike by the host's verifier and the module's.
//!
//! Each test starts its own Envoy (V8, the built module) and echo upstream on free loopback
//! ports. Run `make build` first; a missing module or Envoy fails the test loudly.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::Duration;

use serde_json::{json, Value};
use testbed::client;
use testbed::echo::Echo;
use testbed::envoy::{self, Envoy};
use testbed::keys::{jwks, TestKey, ED25519, P256, RSA_2048};

const ISSUER: &str = "https://issuer.example";
const AUDIENCE: &str = "my-resource-id";

fn start(config: &Value) -> (Echo, Envoy) {
    let echo = Echo::start();
    let bootstrap = envoy::gate_bootstrap(echo.addr(), config);
    let envoy = Envoy::start(&bootstrap);
    (echo, envoy)
}

fn token(key: &TestKey, kid: &str, alg: &str) -> String {
    let now = testbed::now();
    key.sign(
        json!({ "kid": kid, "alg": alg }),
        &json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "caller-1", "exp": now + 600}),
    )
}

/// The token with one bit of its signature's first byte flipped.
fn tampered(token: &str) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let (input, signature) = token.rsplit_once('.').unwrap();
    let mut signature = b64.decode(signature).unwrap();
    signature[0] ^= 1;
    format!("{input}.{}", b64.encode(signature))
}

fn status(envoy: &Envoy, token: &str) -> u16 {
    let bearer = format!("Bearer {token}");
    match client::websocket(envoy.listener(), "/ws", &[("authorization", &bearer)]) {
        Ok((_, response)) => response.status,
        Err(response) => response.status,
    }
}

#[test]
fn envoy_verifies_rs_and_es256_itself_once_its_self_test_passes() {
    let keys = jwks(&[(&RSA_2048, "rsa"), (&P256, "ec"), (&ED25519, "ed")]);
    let (_echo, envoy) = start(&json!({
        "issuer": ISSUER, "audiences": [AUDIENCE], "jwks": keys, "crypto": "host",
    }));
    let log = envoy.log_with("signatures: ", Duration::from_secs(10));
    assert!(
        log.contains(
            "signatures: host for RS256 RS384 RS512 ES256; wasm for PS256 PS384 PS512 EdDSA"
        ),
        "{log}"
    );
    let tokens = [
        token(&RSA_2048, "rsa", "RS256"),
        token(&RSA_2048, "rsa", "RS384"),
        token(&RSA_2048, "rsa", "RS512"),
        token(&P256, "ec", "ES256"),
        token(&RSA_2048, "rsa", "PS256"),
        token(&ED25519, "ed", "EdDSA"),
    ];
    for token in &tokens {
        assert_eq!(status(&envoy, token), 101, "{}", &token[..40]);
        assert_eq!(
            status(&envoy, &tampered(token)),
            401,
            "tampered {}",
            &token[..40]
        );
    }
    let log = envoy.log_with("reason=bad_signature", Duration::from_secs(10));
    assert_eq!(
        log.matches("reason=bad_signature").count(),
        tokens.len(),
        "{log}"
    );
}

#[test]
fn the_attack_catalogue_is_decided_alike_by_envoys_verifier_and_the_modules() {
    let now = testbed::now();
    let (jwks, attacks) = testbed::attacks::catalogue(ISSUER, AUDIENCE, now);
    let mut outcomes = Vec::new();
    for crypto in ["host", "wasm"] {
        let (echo, envoy) = start(&json!({
            "issuer": ISSUER, "audiences": [AUDIENCE], "jwks": jwks, "crypto": crypto,
        }));
        let mut seen = Vec::new();
        for attack in attacks.iter().filter(|attack| attack.over_http) {
            let refused = attack.send(envoy.listener(), "/ws");
            seen.push((attack.name, refused.status));
        }
        assert!(
            echo.seen().is_empty(),
            "{crypto}: no attack may reach the upstream"
        );
        let log = envoy.log();
        let reasons: Vec<String> = log
            .lines()
            .filter_map(|line| line.split("reason=").nth(1))
            .map(|rest| rest.split(' ').next().unwrap_or_default().to_owned())
            .collect();
        assert_eq!(reasons.len(), seen.len(), "{crypto}: one line per attack");
        outcomes.push((seen, reasons));
    }
    assert_eq!(
        outcomes[0], outcomes[1],
        "host and wasm decide every attack alike"
    );
}
