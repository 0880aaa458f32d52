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
use testbed::keys::{jwks, TestKey, ED25519, P256, P384, P521, RSA_2048};

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
    client::upgrade_status(envoy.listener(), "/ws", &[("authorization", &bearer)])
}

#[test]
fn envoy_verifies_rs_and_es_itself_once_its_self_test_passes() {
    let keys = jwks(&[
        (&RSA_2048, "rsa"),
        (&P256, "ec"),
        (&P384, "p384"),
        (&P521, "p521"),
        (&ED25519, "ed"),
    ]);
    let (_echo, envoy) = start(&json!({
        "issuer": ISSUER, "audiences": [AUDIENCE], "jwks": keys, "crypto": "host",
    }));
    let log = envoy.log_with("signatures: ", Duration::from_secs(10));
    assert!(
        log.contains(
            "signatures: host for RS256 RS384 RS512 ES256 ES384 ES512; wasm for PS256 PS384 \
             PS512 EdDSA"
        ),
        "{log}"
    );
    let tokens = [
        token(&RSA_2048, "rsa", "RS256"),
        token(&RSA_2048, "rsa", "RS384"),
        token(&RSA_2048, "rsa", "RS512"),
        token(&P256, "ec", "ES256"),
        token(&P384, "p384", "ES384"),
        token(&P521, "p521", "ES512"),
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

/// ES384 and ES512 (#30): RFC 7518 §3.4 binds each to its curve, which Envoy's own
/// `jwt_authn` does not check (it accepts the first two confusions below with a 101). Without
/// the host's verifier (`crypto: wasm`) nothing verifies them: their keys are left out,
/// logged, and their tokens refused.
#[test]
fn es384_and_es512_are_bound_to_their_curves_and_need_the_host() {
    let keys = jwks(&[(&P256, "ec"), (&P384, "p384"), (&P521, "p521")]);
    let (echo, envoy) = start(&json!({
        "issuer": ISSUER, "audiences": [AUDIENCE], "jwks": keys, "crypto": "auto",
    }));
    assert_eq!(status(&envoy, &token(&P384, "p384", "ES384")), 101);
    assert_eq!(status(&envoy, &token(&P521, "p521", "ES512")), 101);
    // The P-384 key signing with SHA-256 as "ES256", with SHA-512 as "ES512"; the P-521 key
    // as "ES384"; the P-256 key as "ES384".
    let confusions = [
        token(&P384, "p384", "ES256"),
        token(&P384, "p384", "ES512"),
        token(&P521, "p521", "ES384"),
        token(&P256, "ec", "ES384"),
    ];
    for confused in &confusions {
        assert_eq!(status(&envoy, confused), 401, "{}", &confused[..60]);
    }
    let log = envoy.log_with("reason=unknown_key", Duration::from_secs(10));
    assert_eq!(
        log.matches("reason=unknown_key").count(),
        confusions.len(),
        "{log}"
    );
    assert_eq!(
        echo.seen().len(),
        2,
        "only the two right tokens went upstream"
    );

    let (_echo, envoy) = start(&json!({
        "issuer": ISSUER, "audiences": [AUDIENCE], "jwks": keys, "crypto": "wasm",
    }));
    let log = envoy.log_with("signatures: ", Duration::from_secs(10));
    assert!(
        log.contains(
            "signatures: wasm for RS256 RS384 RS512 PS256 PS384 PS512 ES256 EdDSA; \
                      none for ES384 ES512 (their keys are ignored)"
        ),
        "{log}"
    );
    assert!(log.contains("jwks: ignoring 2 P-384/P-521 key(s)"), "{log}");
    assert_eq!(status(&envoy, &token(&P384, "p384", "ES384")), 401);
    assert_eq!(status(&envoy, &token(&P256, "ec", "ES256")), 101);
}

/// The catalogue through both verifiers: every case refused, none upstream, and each with its
/// deny reason, except that without the host's verifier the P-384 and P-521 keys are dropped,
/// so the cases naming them are refused as `unknown_key` instead.
#[test]
fn the_attack_catalogue_is_decided_alike_by_envoys_verifier_and_the_modules() {
    let now = testbed::now();
    let (jwks, attacks) = testbed::attacks::catalogue(ISSUER, AUDIENCE, now);
    let sent: Vec<_> = attacks.iter().filter(|attack| attack.over_http).collect();
    assert!(
        sent.iter().filter(|attack| attack.host_curve).count() >= 6,
        "the ES384/ES512 cases are sent"
    );
    for crypto in ["host", "wasm"] {
        let (echo, envoy) = start(&json!({
            "issuer": ISSUER, "audiences": [AUDIENCE], "jwks": jwks, "crypto": crypto,
        }));
        for attack in &sent {
            let refused = attack.send(envoy.listener(), "/ws");
            assert_eq!(refused.status, 401, "{crypto}: {}", attack.name);
        }
        assert!(
            echo.seen().is_empty(),
            "{crypto}: no attack may reach the upstream"
        );
        let log = envoy.log();
        let reasons: Vec<&str> = log
            .lines()
            .filter_map(|line| line.split("reason=").nth(1))
            .map(|rest| rest.split(' ').next().unwrap_or_default())
            .collect();
        let expected: Vec<&str> = sent
            .iter()
            .map(|attack| match crypto {
                "host" => attack.reason,
                _ => attack.reason_without_host_curves(),
            })
            .collect();
        assert_eq!(reasons, expected, "{crypto}: one line per attack, in order");
    }
}
