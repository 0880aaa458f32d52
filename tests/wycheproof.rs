//! Wycheproof (C2SP/wycheproof, Apache-2.0) test vectors, from `../shared/vectors/wycheproof`
//! (or `WSGATE_VECTORS`): the JOSE signature vectors through wsgate's parser and signature
//! step, and the primitive vectors through the signature seam itself. A missing vector
//! directory fails loudly.
//!
//! JWS payloads are the bytes `foo`, not claims, so these exercise headers, keys and
//! signatures; claims have their own tests.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::PathBuf;

use serde_json::{json, Value};
use wsgate::authenticator::verify_signature;
use wsgate::jwks::KeySet;
use wsgate::jws::CompactJws;
use wsgate::signature::{JwsAlgorithm, VerifyingKey};

fn vectors() -> PathBuf {
    let dir = std::env::var_os("WSGATE_VECTORS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../shared/vectors/wycheproof"
            ))
        });
    assert!(
        dir.join("json_web_signature_test.json").is_file(),
        "Wycheproof vectors not found at {} (set WSGATE_VECTORS)",
        dir.display()
    );
    dir
}

fn load(name: &str) -> Value {
    let path = vectors().join(name);
    serde_json::from_slice(
        &std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
    .unwrap()
}

/// Known mislabels upstream, excluded by id.
const MISLABELLED: [(u64, &str); 5] = [
    (
        357,
        "same bytes as tc367/tc370, labelled valid (upstream issue 236)",
    ),
    (
        367,
        "same bytes as tc357, labelled invalid (upstream issue 236)",
    ),
    (
        370,
        "same bytes as tc357, labelled invalid (upstream issue 236)",
    ),
    (372, "contains '?' yet labelled valid"),
    (373, "contains '?' yet labelled valid"),
];

#[test]
fn json_web_signature_vectors() {
    let suite = load("json_web_signature_test.json");
    let (
        mut verified,
        mut refused_invalid,
        mut refused_unsupported,
        mut refused_pinned,
        mut excluded,
        mut total,
    ) = (0, 0, 0, 0, 0, 0);
    for group in suite["testGroups"].as_array().unwrap() {
        // Symmetric groups carry only a private `oct` key: wsgate never uses one, so it has
        // no usable key and refuses every HS* token, valid or not.
        let key = group.get("public").unwrap_or(&group["private"]);
        let keys = KeySet::from_object(
            json!({ "keys": [key] }).as_object().unwrap(),
            Default::default(),
        )
        .ok()
        .map(|(set, _)| set);
        for case in group["tests"].as_array().unwrap() {
            total += 1;
            let id = case["tcId"].as_u64().unwrap();
            if MISLABELLED
                .iter()
                .any(|(excluded_id, _)| *excluded_id == id)
            {
                excluded += 1;
                continue;
            }
            // JSON serialisation is handed over as the string a client would send.
            let token = match &case["jws"] {
                Value::String(compact) => compact.clone(),
                other => other.to_string(),
            };
            let accepted = keys.as_ref().is_some_and(|keys| {
                CompactJws::parse(&token, 64 * 1024)
                    .and_then(|jws| verify_signature(&jws, keys))
                    .is_ok()
            });
            let alg = header_alg(&token);
            let supported =
                keys.is_some() && alg.as_deref().and_then(JwsAlgorithm::from_name).is_some();
            // wsgate policy (RFC 7517 §4.4): a JWK's `alg` pins the algorithm it verifies.
            let pinned_elsewhere = key
                .get("alg")
                .and_then(Value::as_str)
                .is_some_and(|own| Some(own) != alg.as_deref());
            let label = format!(
                "tc{id} ({}, {}, alg {alg:?})",
                group["comment"], case["comment"]
            );
            match case["result"].as_str().unwrap() {
                "invalid" => {
                    assert!(!accepted, "{label}: invalid, but accepted");
                    refused_invalid += 1;
                }
                "valid" if supported && pinned_elsewhere => {
                    assert!(
                        !accepted,
                        "{label}: the JWK's alg pins another algorithm, but accepted"
                    );
                    refused_pinned += 1;
                }
                "valid" if supported => {
                    assert!(accepted, "{label}: valid and supported, but refused");
                    verified += 1;
                }
                "valid" => {
                    assert!(
                        !accepted,
                        "{label}: valid but of an algorithm or key wsgate refuses"
                    );
                    refused_unsupported += 1;
                }
                other => panic!("{label}: unexpected result {other}"),
            }
        }
    }
    eprintln!(
        "wycheproof JWS: {total} cases: {verified} valid verified, {refused_unsupported} valid refused \
         (HS*/ES521/oct keys wsgate never accepts), {refused_pinned} valid refused (JWK alg pins another \
         algorithm), {refused_invalid} invalid refused, {excluded} mislabels excluded"
    );
    assert_eq!(total, suite["numberOfTests"].as_u64().unwrap() as usize);
    assert_eq!(
        verified + refused_unsupported + refused_pinned + refused_invalid + excluded,
        total
    );
    assert!(verified >= 30, "too few valid vectors verified: {verified}");
}

fn header_alg(token: &str) -> Option<String> {
    use base64::Engine as _;
    let header = token.split('.').next()?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .ok()?;
    serde_json::from_slice::<Value>(&bytes)
        .ok()?
        .get("alg")?
        .as_str()
        .map(str::to_owned)
}

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

fn b64(text: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .unwrap()
}

/// Runs every case of a primitive suite: `key` builds the key of a group (or says why not),
/// `signature` turns a case's `sig` into the JWS form. Returns (valid, invalid, acceptable).
fn primitive_suite(
    file: &str,
    alg: JwsAlgorithm,
    key: impl Fn(&Value) -> Option<VerifyingKey>,
    signature: impl Fn(&[u8]) -> Option<Vec<u8>>,
) -> (usize, usize, usize) {
    let suite = load(file);
    let (mut valid, mut invalid, mut acceptable) = (0, 0, 0);
    for group in suite["testGroups"].as_array().unwrap() {
        let key = key(group);
        for case in group["tests"].as_array().unwrap() {
            let message = hex(case["msg"].as_str().unwrap());
            let verified = match (&key, signature(&hex(case["sig"].as_str().unwrap()))) {
                (Some(key), Some(sig)) => key.verify(alg, &message, &sig),
                _ => false,
            };
            let label = format!("{file} tc{} ({})", case["tcId"], case["comment"]);
            match case["result"].as_str().unwrap() {
                "valid" => {
                    assert!(verified, "{label}: valid, but refused");
                    valid += 1;
                }
                "invalid" => {
                    assert!(!verified, "{label}: invalid, but verified");
                    invalid += 1;
                }
                _ => acceptable += 1,
            }
        }
    }
    eprintln!("{file}: {valid} valid verified, {invalid} invalid refused, {acceptable} acceptable (either way)");
    (valid, invalid, acceptable)
}

fn rsa_from_jwk(group: &Value) -> Option<VerifyingKey> {
    let jwk = group.get("keyJwk").or_else(|| group.get("publicKeyJwk"))?;
    VerifyingKey::rsa(&b64(jwk["n"].as_str()?), &b64(jwk["e"].as_str()?)).ok()
}

#[test]
fn rsa_pkcs1_vectors() {
    for (file, alg) in [
        (
            "primitives/rsa_signature_2048_sha256_test.json",
            JwsAlgorithm::Rs256,
        ),
        (
            "primitives/rsa_signature_2048_sha384_test.json",
            JwsAlgorithm::Rs384,
        ),
        (
            "primitives/rsa_signature_2048_sha512_test.json",
            JwsAlgorithm::Rs512,
        ),
        (
            "primitives/rsa_signature_3072_sha256_test.json",
            JwsAlgorithm::Rs256,
        ),
        (
            "primitives/rsa_signature_4096_sha256_test.json",
            JwsAlgorithm::Rs256,
        ),
    ] {
        let (valid, invalid, _) =
            primitive_suite(file, alg, rsa_from_jwk, |sig| Some(sig.to_vec()));
        assert!(valid > 0 && invalid > 0, "{file}");
    }
}

#[test]
fn rsa_pss_vectors() {
    let (valid, invalid, _) = primitive_suite(
        "primitives/rsa_pss_2048_sha256_mgf1_32_test.json",
        JwsAlgorithm::Ps256,
        rsa_from_jwk,
        |sig| Some(sig.to_vec()),
    );
    assert!(valid > 0 && invalid > 0);
}

#[test]
fn ed25519_vectors() {
    let (valid, invalid, _) = primitive_suite(
        "primitives/ed25519_test.json",
        JwsAlgorithm::EdDsa,
        |group| VerifyingKey::ed25519(&b64(group["publicKeyJwk"]["x"].as_str()?)).ok(),
        |sig| Some(sig.to_vec()),
    );
    assert!(valid > 0 && invalid > 0);
}

/// ECDSA vectors carry DER signatures; JWS carries `r || s` (RFC 7518 §3.4). Only strict
/// DER converts: any other encoding counts as a refusal, as it must.
#[test]
fn ecdsa_p256_vectors() {
    let (valid, invalid, _) = primitive_suite(
        "primitives/ecdsa_secp256r1_sha256_test.json",
        JwsAlgorithm::Es256,
        |group| {
            let key = &group["publicKey"];
            VerifyingKey::p256(
                &left_pad(&hex(key["wx"].as_str()?))?,
                &left_pad(&hex(key["wy"].as_str()?))?,
            )
            .ok()
        },
        der_to_raw,
    );
    assert!(valid > 0 && invalid > 0);
}

/// A big-endian unsigned number as exactly 32 bytes.
fn left_pad(bytes: &[u8]) -> Option<Vec<u8>> {
    let first = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    let magnitude = &bytes[first..];
    (magnitude.len() <= 32).then(|| {
        let mut out = vec![0; 32 - magnitude.len()];
        out.extend_from_slice(magnitude);
        out
    })
}

fn der_to_raw(der: &[u8]) -> Option<Vec<u8>> {
    let body = der_element(der, 0x30)?;
    if !body.1.is_empty() {
        return None; // trailing bytes after the SEQUENCE
    }
    let (r, rest) = der_element(body.0, 0x02)?;
    let (s, rest) = der_element(rest, 0x02)?;
    if !rest.is_empty() {
        return None;
    }
    let mut raw = der_unsigned(r)?;
    raw.extend(der_unsigned(s)?);
    Some(raw)
}

/// One DER element with `tag` and a short-form length (every P-256 signature fits in one).
fn der_element(bytes: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&have, rest) = bytes.split_first()?;
    let (&len, rest) = rest.split_first()?;
    if have != tag || len >= 0x80 || rest.len() < len as usize {
        return None;
    }
    Some(rest.split_at(len as usize))
}

/// A minimal, non-negative DER INTEGER as 32 bytes.
fn der_unsigned(content: &[u8]) -> Option<Vec<u8>> {
    let (&first, rest) = content.split_first()?;
    if first & 0x80 != 0 {
        return None; // negative
    }
    if first == 0 && rest.first().is_some_and(|b| b & 0x80 == 0) {
        return None; // not minimal
    }
    left_pad(content)
}
