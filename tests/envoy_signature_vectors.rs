//! The Wycheproof signature vectors that Envoy's crypto can take (RSA PKCS#1 v1.5 with
//! SHA-256/384/512 at 2048, 3072 and 4096 bits; ECDSA P-256 with SHA-256, P-384 with SHA-384
//! and P-521 with SHA-512, as JWS writes them, `r || s`), decided inside a real Envoy twice:
//! by Envoy's `verify_signature` (BoringSSL), given the key and signature in the forms wsgate
//! prepares for it, and by wsgate's own verifiers. The two must agree on every case, and each
//! must match the label. ES384 and ES512 have no module verifier: Envoy's verdicts alone are
//! held to the labels.
//!
//! The module under test here is the probe (`testbed/probe`, built by `make build` beside
//! the filter), which runs wsgate's `envoy_verify` and `VerifyingKey` code as the filter
//! does. (The Wycheproof JWS vectors cannot do this through the gate itself: their payload
//! is `foo`, which the gate refuses as claims before any signature is checked.)

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::Duration;

use base64::Engine as _;
use serde_json::{json, Value};
use testbed::echo::Echo;
use testbed::envoy::{self, Envoy};
use testbed::vectors::{hex, left_pad_to, load};

const RSA_FILES: [&str; 9] = [
    "rsa_signature_2048_sha256_test.json",
    "rsa_signature_2048_sha384_test.json",
    "rsa_signature_2048_sha512_test.json",
    "rsa_signature_3072_sha256_test.json",
    "rsa_signature_3072_sha384_test.json",
    "rsa_signature_3072_sha512_test.json",
    "rsa_signature_4096_sha256_test.json",
    "rsa_signature_4096_sha384_test.json",
    "rsa_signature_4096_sha512_test.json",
];
/// ECDSA in JWS's form (IEEE P1363): file, JWS algorithm, coordinate width.
const ES_FILES: [(&str, &str, usize); 3] = [
    ("ecdsa_secp256r1_sha256_p1363_test.json", "ES256", 32),
    ("ecdsa_secp384r1_sha384_p1363_test.json", "ES384", 48),
    ("ecdsa_secp521r1_sha512_p1363_test.json", "ES512", 66),
];

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// One case as the test knows it: where it is from, and its label.
struct Case {
    label: String,
    result: String,
}

/// The probe's configuration for every file, and the cases in the same order.
fn vectors() -> (Value, Vec<Case>) {
    let mut groups = Vec::new();
    let mut cases = Vec::new();
    let mut add = |file: &str, group: &Value, mut entry: Value| {
        let mut pairs = Vec::new();
        for case in group["tests"].as_array().unwrap() {
            pairs.push(json!([
                b64(&hex(case["msg"].as_str().unwrap())),
                b64(&hex(case["sig"].as_str().unwrap()))
            ]));
            cases.push(Case {
                label: format!("{file} tc{} ({})", case["tcId"], case["comment"]),
                result: case["result"].as_str().unwrap().to_owned(),
            });
        }
        entry["cases"] = Value::Array(pairs);
        groups.push(entry);
    };
    for file in RSA_FILES {
        let suite = load(&format!("primitives/{file}"));
        for group in suite["testGroups"].as_array().unwrap() {
            let alg = match group["sha"].as_str().unwrap() {
                "SHA-256" => "RS256",
                "SHA-384" => "RS384",
                "SHA-512" => "RS512",
                other => panic!("{file}: unexpected hash {other}"),
            };
            let key = &group["publicKey"];
            let entry = json!({
                "alg": alg,
                "n": b64(&hex(key["modulus"].as_str().unwrap())),
                "e": b64(&hex(key["publicExponent"].as_str().unwrap())),
            });
            add(file, group, entry);
        }
    }
    for (file, alg, width) in ES_FILES {
        let suite = load(&format!("primitives/{file}"));
        for group in suite["testGroups"].as_array().unwrap() {
            let key = &group["publicKey"];
            let coordinate =
                |name: &str| b64(&left_pad_to(&hex(key[name].as_str().unwrap()), width).unwrap());
            let entry = json!({ "alg": alg, "x": coordinate("wx"), "y": coordinate("wy") });
            add(file, group, entry);
        }
    }
    (json!({ "groups": groups }), cases)
}

/// The probe's verdict strings, from the first VM that logged them.
fn verdicts(envoy: &Envoy) -> (Vec<char>, Vec<char>) {
    let log = envoy.log_with("probe: host=", Duration::from_secs(120));
    let Some(line) = log.lines().find(|line| line.contains("probe: host=")) else {
        panic!("the probe logged no verdicts within 120 s:\n{log}");
    };
    let rest = line.split("probe: host=").nth(1).unwrap();
    let (host, wasm) = rest.split_once(" wasm=").unwrap();
    (host.trim().chars().collect(), wasm.trim().chars().collect())
}

#[test]
fn envoys_verifier_and_wsgates_decide_every_rs_and_es_vector_alike() {
    let (config, cases) = vectors();
    let echo = Echo::start();
    let bootstrap = envoy::bootstrap(
        echo.addr(),
        vec![envoy::wasm_filter(&config, &envoy::probe_module_path())],
    );
    let envoy = Envoy::start(&bootstrap);
    let (host, wasm) = verdicts(&envoy);
    assert_eq!(host.len(), cases.len(), "one host verdict per case");
    assert_eq!(wasm.len(), cases.len(), "one wasm verdict per case");

    let (mut valid, mut invalid, mut acceptable, mut not_asked) = (0, 0, 0, 0);
    let mut host_only_cases = 0;
    for ((case, &host), &wasm) in cases.iter().zip(&host).zip(&wasm) {
        let label = &case.label;
        assert!(
            matches!(host, '0' | '1' | 'n'),
            "{label}: Envoy answered {host:?} (k: no key, e: an error status or an answer that does not parse)"
        );
        // '-': ES384 and ES512, which only Envoy verifies (P-384 and P-521 cases).
        let host_only = wasm == '-';
        assert!(matches!(wasm, '0' | '1' | '-'), "{label}: wasm {wasm:?}");
        // 'n': the signature has no form Envoy takes (an ECDSA signature that is not twice
        // its curve's width); the filter then verifies it in the module, which refuses it
        // (for ES384 and ES512, nothing verifies it: refused too).
        let host_accepts = host == '1';
        let wasm_accepts = if host_only { host_accepts } else { wasm == '1' };
        assert_eq!(
            host_accepts, wasm_accepts,
            "{label} ({}): Envoy {host}, wsgate {wasm}",
            case.result
        );
        host_only_cases += usize::from(host_only);
        match case.result.as_str() {
            "valid" => {
                assert!(wasm_accepts, "{label}: valid, but refused");
                valid += 1;
            }
            "invalid" => {
                assert!(!wasm_accepts, "{label}: invalid, but accepted");
                invalid += 1;
            }
            _ => acceptable += 1,
        }
        not_asked += usize::from(host == 'n');
    }
    eprintln!(
        "{} cases through Envoy: {valid} valid, {invalid} invalid, {acceptable} acceptable, \
         decided alike ({host_only_cases} ES384/ES512 by Envoy alone); {not_asked} ECDSA \
         signatures not twice their curve's width, never handed to Envoy",
        cases.len()
    );
    // The counts of tests/wycheproof.rs, so a group silently dropped cannot pass.
    // ES384: 193 valid and 87 invalid of 280; ES512: 231 and 87 of 318.
    assert_eq!(valid, 68 + 173 + 193 + 231);
    assert_eq!(invalid, 2253 + 89 + 87 + 87);
    assert_eq!(acceptable, 9);
    assert_eq!(host_only_cases, 280 + 318);
    assert_eq!(
        not_asked, 54,
        "ECDSA signatures of another length than twice their curve's width (21 ES256)"
    );
    assert_eq!(envoy.vm_failures(), 0, "{}", envoy.log());
}
