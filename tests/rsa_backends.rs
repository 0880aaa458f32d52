//! wsgate's RSA backend (src/signature/rsa.rs) against the `rsa` crate that jwt-compact uses:
//! the same verdict on signatures by fresh keys of each size and every RS*/PS* algorithm, on
//! tampered messages and on corrupted signatures, including moduli whose size is not a
//! multiple of 32 or 8 bits (PSS with bits = 1 mod 8 has an encoded message a byte shorter
//! than the modulus). Also: `n`/`e` with leading zero bytes, and the exponent bound.
//! (The Wycheproof vectors in wycheproof.rs check both against known answers;
//! `make fuzz`'s `rsa_differential` target compares them on fuzzed keys and signatures.)

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use jwt_compact::alg::{ModulusBits, Rsa, RsaPublicKey, RsaSignature};
use jwt_compact::{Algorithm, AlgorithmSignature};
use testbed::keys::TestKey;
use wsgate::signature::{JwsAlgorithm, KeyFamily, VerifyingKey};

/// RS256/384/512 and PS256/384/512.
fn rsa_algs() -> impl Iterator<Item = JwsAlgorithm> {
    JwsAlgorithm::ALL
        .into_iter()
        .filter(|alg| alg.family() == KeyFamily::Rsa)
}

fn n_and_e(key: &TestKey) -> (Vec<u8>, Vec<u8>) {
    let jwk = key.public_jwk("k");
    let decode =
        |name: &str| wsgate::encoding::base64url::decode(jwk[name].as_str().unwrap()).unwrap();
    (decode("n"), decode("e"))
}

/// Both backends on valid, tampered and corrupted signatures by `key`; the verdicts given.
fn compare(key: &TestKey, what_key: &str) -> usize {
    let TestKey::Rsa(private) = key else {
        panic!("an RSA key")
    };
    let public = RsaPublicKey::from(private.as_ref());
    let (n, e) = n_and_e(key);
    let ours = VerifyingKey::rsa(&n, &e).unwrap();
    let mut checked = 0;
    for alg in rsa_algs() {
        let reference: Rsa = alg.name().parse().unwrap();
        for round in 0..4u8 {
            let message = format!("header.payload-{round}-{}", alg.name()).into_bytes();
            let signature = key.signature(alg.name(), &message);
            let mut tampered_message = message.clone();
            tampered_message[0] ^= 1;
            let mut flipped = signature.clone();
            let at = (round as usize * 37) % flipped.len();
            flipped[at] ^= 0x40;
            for (what, msg, sig) in [
                ("valid", &message, &signature),
                ("tampered message", &tampered_message, &signature),
                ("flipped signature bit", &message, &flipped),
            ] {
                let theirs = RsaSignature::try_from_slice(sig)
                    .is_ok_and(|s| reference.verify_signature(&s, &public, msg));
                let mine = ours.verify(alg, msg, sig);
                assert_eq!(mine, theirs, "{what_key} {} {what}", alg.name());
                assert_eq!(mine, what == "valid", "{what_key} {} {what}", alg.name());
                checked += 1;
            }
        }
    }
    checked
}

#[test]
fn both_backends_agree() {
    let mut checked = 0;
    // 4096-bit keys take long to generate; the Wycheproof vectors cover that size.
    for bits in [ModulusBits::TwoKibibytes, ModulusBits::ThreeKibibytes] {
        checked += compare(&TestKey::rsa(bits), &format!("{bits:?}"));
    }
    eprintln!("rsa backends: {checked} verdicts, all equal");
}

/// Moduli of 2049 and 2057 bits (= 1 mod 8: PSS's encoded message is one byte shorter than
/// the modulus, and its top byte all masked), 2055 (the top byte nearly empty) and 2072
/// and 2080 (whole bytes, not whole 32-bit limbs).
#[test]
fn odd_sized_moduli_agree() {
    let mut checked = 0;
    for bits in [2049, 2055, 2057, 2072, 2080] {
        let key = TestKey::rsa_of_bits(bits);
        let (n, _) = n_and_e(&key);
        assert_eq!(wsgate::signature::rsa_modulus_bits(&n), bits);
        checked += compare(&key, &format!("{bits}-bit"));
    }
    eprintln!("odd-sized moduli: {checked} verdicts, all equal");
}

/// Some libraries write `n` (and `e`) with a leading zero byte; BoringSSL, and so Envoy's
/// `jwt_authn`, reads them as the same numbers. So does wsgate, from a JWKS too.
#[test]
fn leading_zero_bytes_in_n_and_e_are_the_same_key() {
    let key = &*testbed::keys::RSA_2048;
    let (n, e) = n_and_e(key);
    let message = b"header.payload";
    for alg in rsa_algs() {
        let signature = key.signature(alg.name(), message);
        for zeros in [1, 2, 9] {
            let padded = |bytes: &[u8]| [vec![0u8; zeros], bytes.to_vec()].concat();
            let ours = VerifyingKey::rsa(&padded(&n), &padded(&e)).unwrap();
            assert!(
                ours.verify(alg, message, &signature),
                "{} {zeros}",
                alg.name()
            );
            let mut wrong_length = signature.clone();
            wrong_length.insert(0, 0);
            assert!(!ours.verify(alg, message, &wrong_length), "{}", alg.name());
        }
    }
    let b64 = wsgate::encoding::base64url::encode;
    let jwks = serde_json::json!({"keys": [{"kty": "RSA", "kid": "z",
        "n": b64(&[&[0u8][..], &n].concat()), "e": b64(&[0, 1, 0, 1])}]});
    let (set, report) =
        wsgate::keys::jwks::KeySet::parse(jwks.to_string().as_bytes(), Default::default()).unwrap();
    assert!(report.skipped.is_empty(), "{report:?}");
    let signature = key.signature("RS256", message);
    let jwk = set
        .candidates(JwsAlgorithm::Rs256, Some("z"))
        .next()
        .unwrap();
    assert!(jwk.key().verify(JwsAlgorithm::Rs256, message, &signature));
}

/// The public exponent must be odd, at least 3 and below 2^32.
#[test]
fn exponents_above_2_to_the_32_are_refused() {
    let (n, _) = n_and_e(&testbed::keys::RSA_2048);
    let accepted = |e: u64| VerifyingKey::rsa(&n, &e.to_be_bytes()).is_ok();
    assert!(accepted(3) && accepted(65_537) && accepted(u64::from(u32::MAX)));
    for e in [1, 2, 65_536, (1 << 32) + 1, (1 << 33) - 1, u64::MAX] {
        assert!(!accepted(e), "e = {e}");
    }
    let nine_bytes = [1u8, 0, 0, 0, 0, 0, 0, 0, 1];
    assert!(VerifyingKey::rsa(&n, &nine_bytes).is_err());
}
