//! wsgate's RSA backend (src/rsa_verify.rs) against the `rsa` crate that jwt-compact uses:
//! the same verdict on signatures by fresh keys of each size and every RS*/PS* algorithm, on
//! tampered messages and on corrupted signatures. (The Wycheproof vectors in wycheproof.rs
//! check both against known answers.)

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use jwt_compact::alg::{ModulusBits, Rsa, RsaPublicKey, RsaSignature};
use jwt_compact::{Algorithm, AlgorithmSignature};
use testbed::keys::TestKey;
use wsgate::signature::{JwsAlgorithm, VerifyingKey};

#[test]
fn both_backends_agree() {
    let mut checked = 0;
    // 4096-bit keys take long to generate; the Wycheproof vectors cover that size.
    for bits in [ModulusBits::TwoKibibytes, ModulusBits::ThreeKibibytes] {
        let key = TestKey::rsa(bits);
        let TestKey::Rsa(private) = &key else {
            panic!("an RSA key")
        };
        let public = RsaPublicKey::from(private.as_ref());
        let jwk = key.public_jwk("k");
        let decode = |name: &str| wsgate::base64url::decode(jwk[name].as_str().unwrap()).unwrap();
        let ours = VerifyingKey::rsa(&decode("n"), &decode("e")).unwrap();
        for alg in [
            JwsAlgorithm::Rs256,
            JwsAlgorithm::Rs384,
            JwsAlgorithm::Rs512,
            JwsAlgorithm::Ps256,
            JwsAlgorithm::Ps384,
            JwsAlgorithm::Ps512,
        ] {
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
                    assert_eq!(mine, theirs, "{bits:?} {} {what}", alg.name());
                    assert_eq!(mine, what == "valid", "{bits:?} {} {what}", alg.name());
                    checked += 1;
                }
            }
        }
    }
    eprintln!("rsa backends: {checked} verdicts, all equal");
}
