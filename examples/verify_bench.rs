//! Native micro-benchmark of each signature backend (part of `make bench`): microseconds per
//! verification, natively, to set against what the same work costs in WebAssembly.
//!
//!     cargo run --release --example verify_bench

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::Instant;

use jwt_compact::alg::{Rsa, RsaPublicKey, RsaSignature};
use jwt_compact::{Algorithm, AlgorithmSignature};
use testbed::keys::{TestKey, ED25519, P256, RSA_2048};
use wsgate::signature::{JwsAlgorithm, VerifyingKey};

fn key_of(key: &TestKey) -> VerifyingKey {
    let jwk = key.public_jwk("k");
    let field = |name: &str| {
        wsgate::encoding::base64url::decode(jwk[name].as_str().unwrap_or_default())
            .unwrap_or_default()
    };
    match key {
        TestKey::Rsa(_) => VerifyingKey::rsa(&field("n"), &field("e")),
        TestKey::P256(_) => VerifyingKey::p256(&field("x"), &field("y")),
        TestKey::Ed25519(_) => VerifyingKey::ed25519(&field("x")),
        // No arithmetic in the module: Envoy verifies these (not measured here).
        TestKey::P384(_) | TestKey::P521(_) => panic!("ES384/ES512 are verified by the host"),
    }
    .unwrap_or_else(|error| panic!("key: {error}"))
}

fn time(label: &str, rounds: u32, mut verify: impl FnMut() -> bool) {
    assert!(verify(), "{label}: does not verify");
    let started = Instant::now();
    for _ in 0..rounds {
        assert!(verify());
    }
    let micros = started.elapsed().as_secs_f64() * 1e6 / f64::from(rounds);
    println!("| {label} | {micros:.1} |");
}

fn main() {
    let message = b"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJiZW5jaCJ9";
    println!("| native verification | microseconds |\n|---|---|");
    let rsa = key_of(&RSA_2048);
    let rsa_signature = RSA_2048.signature("RS256", message);
    time("RS256 2048, wsgate rsa_verify (32-bit limbs)", 2000, || {
        rsa.verify(JwsAlgorithm::Rs256, message, &rsa_signature)
    });
    let TestKey::Rsa(private) = &*RSA_2048 else {
        return;
    };
    let public = RsaPublicKey::from(private.as_ref());
    let reference = Rsa::rs256();
    time(
        "RS256 2048, jwt-compact rsa 0.9 (num-bigint-dig)",
        500,
        || {
            RsaSignature::try_from_slice(&rsa_signature)
                .is_ok_and(|s| reference.verify_signature(&s, &public, message))
        },
    );
    let ps = RSA_2048.signature("PS256", message);
    time("PS256 2048, wsgate rsa_verify", 2000, || {
        rsa.verify(JwsAlgorithm::Ps256, message, &ps)
    });
    let ec = key_of(&P256);
    let ec_signature = P256.signature("ES256", message);
    time("ES256, p256 (jwt-compact)", 2000, || {
        ec.verify(JwsAlgorithm::Es256, message, &ec_signature)
    });
    let ed = key_of(&ED25519);
    let ed_signature = ED25519.signature("EdDSA", message);
    time("EdDSA, ed25519-dalek (jwt-compact)", 2000, || {
        ed.verify(JwsAlgorithm::EdDsa, message, &ed_signature)
    });
}
