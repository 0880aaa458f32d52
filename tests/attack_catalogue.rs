//! The attack catalogue (testbed::attacks) against the core: every case by name, refused with
//! 401 and exactly its deny reason. The Envoy test runs the cases an HTTP/1.1 codec carries.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use serde_json::json;
use testbed::attacks::catalogue;
use wsgate::config::{Config, KeySource};
use wsgate::decision::Verdict;
use wsgate::request::RequestHead;

const ISSUER: &str = "https://issuer.example";
const AUDIENCE: &str = "api";

#[test]
fn every_attack_is_refused_with_its_reason() {
    let now = testbed::now();
    let (jwks, attacks) = catalogue(ISSUER, AUDIENCE, now);
    let config = Config::parse(
        json!({"issuer": ISSUER, "audiences": [AUDIENCE], "jwks": jwks})
            .to_string()
            .as_bytes(),
    )
    .unwrap();
    assert_eq!(
        config.providers[0].skipped_keys.len(),
        5,
        "weak, exponent-one, enc and both 'twice' keys are unusable: {:?}",
        config.providers[0].skipped_keys
    );
    let KeySource::Inline(keys) = &config.providers[0].keys else {
        panic!("inline")
    };
    let gate = config.gate();

    let mut names = std::collections::BTreeSet::new();
    for attack in &attacks {
        assert!(
            names.insert(attack.name),
            "duplicate case name {}",
            attack.name
        );
        let mut headers = vec![
            (":method".to_owned(), "GET".to_owned()),
            (":path".to_owned(), "/ws".to_owned()),
            ("connection".to_owned(), "Upgrade".to_owned()),
            ("upgrade".to_owned(), "websocket".to_owned()),
        ];
        headers.extend(
            attack
                .authorization
                .iter()
                .map(|value| ("authorization".to_owned(), value.clone())),
        );
        let decision = gate.decide(&RequestHead::new(headers), Some(keys), now * 1000);
        let Some(Verdict::Deny(denial)) = decision.as_ref().map(|outcome| &outcome.verdict) else {
            panic!("{}: not refused: {decision:?}", attack.name)
        };
        assert_eq!(denial.reason.name(), attack.reason, "{}", attack.name);
        assert_eq!(denial.reason.reply().status, 401, "{}", attack.name);
    }
    // Exact (testbed/src/attacks.rs; SECURITY.md quotes it): an attack dropped from the
    // catalogue fails here.
    assert_eq!(attacks.len(), 64, "the catalogue's size");
}

#[test]
fn the_catalogue_control_token_is_accepted() {
    // The same keys and claims, honestly signed, pass: the refusals above are about the attacks.
    let now = testbed::now();
    let (jwks, _) = catalogue(ISSUER, AUDIENCE, now);
    let config = Config::parse(
        json!({"issuer": ISSUER, "audiences": [AUDIENCE], "jwks": jwks})
            .to_string()
            .as_bytes(),
    )
    .unwrap();
    let KeySource::Inline(keys) = &config.providers[0].keys else {
        panic!("inline")
    };
    let token = testbed::keys::RSA_2048.sign(
        json!({"kid": "good"}),
        &json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "victim", "exp": now + 600}),
    );
    let head = RequestHead::new([
        (":method", "GET"),
        (":path", "/ws"),
        ("connection", "Upgrade"),
        ("upgrade", "websocket"),
        ("authorization", &format!("Bearer {token}")),
    ]);
    let outcome = config.gate().decide(&head, Some(keys), now * 1000);
    assert!(matches!(
        outcome.map(|outcome| outcome.verdict),
        Some(Verdict::Allow(_))
    ));
}
